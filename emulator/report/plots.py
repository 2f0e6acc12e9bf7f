"""Figures of a run as PNG files: the pipeline Gantt chart, energy breakdowns, scaling curves.

Each function draws on its own :class:`~matplotlib.figure.Figure` with the Agg canvas (no
pyplot, no GUI, no global state), saves a PNG whose ``Title`` text chunk is the figure's title,
and returns that title.
"""

from __future__ import annotations

import itertools
import math
import re
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from emulator.cost import COMPONENTS

WRITE_COLOR = "#333333"
_ROW_RE = re.compile(r"^(xbar|neuron):(\d+)$")
_GRAD_RE = re.compile(r"^grad:t(\d+)$")


def _save(fig: Figure, path: str | Path, title: str) -> str:
    FigureCanvasAgg(fig)
    fig.savefig(Path(path), format="png", dpi=120, metadata={"Title": title})
    return title


def _row_key(resource: str) -> tuple[int, int, int, str]:
    """Rows top to bottom: each layer's arrays then its neurons, the feedback group, the
    tiles' gradient units, then anything else by name."""
    if match := _ROW_RE.match(resource):
        return (0, int(match[2]), 0 if match[1] == "xbar" else 1, "")
    if resource == "feedback":
        return (1, 0, 0, "")
    if match := _GRAD_RE.match(resource):
        return (2, int(match[1]), 0, "")
    return (3, 0, 0, resource)


def _gantt_spans(ops: Sequence[Mapping[str, Any]]) -> list[tuple[int, int]]:
    """Time spans (ps) to draw: one, or the samples' ops and the WRITEs on a broken axis when
    the samples would get under a quarter of one (the WRITEs wait for the whole batch)."""
    writes = [op for op in ops if op["kind"] == "WRITE"]
    others = [op for op in ops if op["kind"] != "WRITE"]
    everything = (min(op["start_ps"] for op in ops), max(op["end_ps"] for op in ops))
    if not writes or not others:
        return [everything]
    first = (min(op["start_ps"] for op in others), max(op["end_ps"] for op in others))
    last = (min(op["start_ps"] for op in writes), max(op["end_ps"] for op in writes))
    if last[0] <= first[1] or first[1] - first[0] >= (everything[1] - everything[0]) / 4:
        return [everything]
    return [first, last]


def pipeline_gantt(
    ops: Sequence[Mapping[str, Any]],
    path: str | Path,
    *,
    samples: int = 3,
    title: str | None = None,
) -> str:
    """Gantt chart of the first ``samples`` samples' ops and their batches' WRITEs.

    Parameters
    ----------
    ops
        An ops log (``run_emulation(..., log_samples=N)["ops_log"]``). NoC ops are left out.
    path
        Where to write the PNG.
    samples
        How many samples (global ids 0..samples−1) to draw, one colour each; WRITEs in grey.
    title
        The figure's title (a default says what is drawn).

    Returns
    -------
    str
        The title.
    """
    if samples < 1:
        raise ValueError(f"pipeline_gantt: samples must be ≥ 1, got {samples}")
    chosen = [op for op in ops if 0 <= op["sample"] < samples]
    batches = {op["batch"] for op in chosen}
    chosen += [op for op in ops if op["kind"] == "WRITE" and op["batch"] in batches]
    chosen = [op for op in chosen if not op["resource"].startswith("noc:")]
    if not any(op["sample"] >= 0 for op in chosen):
        raise ValueError(
            "pipeline_gantt: no ops of samples 0.."
            f"{samples - 1} in the log (run the emulation with log_samples ≥ 1)"
        )
    shown = sorted({op["sample"] for op in chosen if op["sample"] >= 0})
    rows = sorted({op["resource"] for op in chosen}, key=_row_key)
    title = title or f"Pipeline: samples {shown[0]} to {shown[-1]} and their batch WRITEs"
    colors = {n: f"C{i % 10}" for i, n in enumerate(shown)}
    spans = _gantt_spans(chosen)
    fig = Figure(figsize=(11, 1.2 + 0.45 * len(rows)), layout="constrained")
    ratios = [2, 1][: len(spans)]
    axes = fig.subplots(1, len(spans), sharey=True, squeeze=False, width_ratios=ratios)[0]
    for ax, (lo, hi) in zip(axes, spans, strict=True):
        for op in chosen:
            if op["end_ps"] < lo or op["start_ps"] > hi:
                continue
            write = op["kind"] == "WRITE"
            color = WRITE_COLOR if write else colors[op["sample"]]
            ax.barh(
                rows.index(op["resource"]),
                (op["end_ps"] - op["start_ps"]) / 1e6,
                left=op["start_ps"] / 1e6,
                height=0.7,
                color=color,
                alpha=0.6 if op["step"] >= 0 and op["step"] % 2 else 1.0,  # odd steps lighter
                edgecolor=color,  # a ps-short op still shows as a line
                linewidth=0.5,
            )
        pad = max((hi - lo) * 0.02, 1.0) / 1e6
        ax.set_xlim(lo / 1e6 - pad, hi / 1e6 + pad)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(rows)), rows)
    axes[0].invert_yaxis()
    for left, right in itertools.pairwise(axes):  # a broken time axis
        left.spines["right"].set_linestyle((0, (4, 4)))
        right.spines["left"].set_linestyle((0, (4, 4)))
        right.tick_params(axis="y", left=False)
    fig.supxlabel("emulated time (µs)" + (", axis broken" if len(axes) > 1 else ""))
    fig.suptitle(title)
    handles = [Patch(color=colors[n], label=f"sample {n}") for n in shown]
    if any(op["kind"] == "WRITE" for op in chosen):
        handles.append(Patch(color=WRITE_COLOR, label="WRITE"))
    axes[-1].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    return _save(fig, path, title)


def energy_breakdown(
    breakdowns: Mapping[str, Mapping[str, float]],
    path: str | Path,
    *,
    title: str | None = None,
    activity: Mapping[str, str] | None = None,
) -> str:
    """Stacked bars of energy per component, one bar per configuration.

    Parameters
    ----------
    breakdowns
        Configuration → component → energy (pJ), e.g. ``{"PipeSDFA": {...}, "PipeLayer":
        {...}}``. Components missing from a configuration count 0.
    path
        Where to write the PNG.
    title
        The figure's title (default "Energy breakdown").
    activity
        Configuration → where its activity came from, written under the bars.

    Returns
    -------
    str
        The title.
    """
    if not breakdowns:
        raise ValueError("energy_breakdown: no configurations to draw")
    components: dict[str, None] = {}
    for config, parts in breakdowns.items():
        if not parts:
            raise ValueError(f"energy_breakdown: configuration {config!r} has no components")
        for name, value in parts.items():
            if not math.isfinite(value) or value < 0:
                raise ValueError(
                    f"energy_breakdown: {config!r} {name!r} = {value} pJ is not a finite "
                    "non-negative energy"
                )
            components[name] = None
    totals = [sum(parts.values()) for parts in breakdowns.values()]
    scale, unit = (1e6, "µJ") if max(totals) >= 1e6 else (1e3, "nJ")
    title = title or "Energy breakdown"
    configs = list(breakdowns)
    fig = Figure(figsize=(max(4.0, 1.4 * len(configs) + 3.0), 4.5), layout="constrained")
    ax = fig.add_subplot()
    bottom = [0.0] * len(configs)
    colors = component_colors(components)
    for name in components:
        heights = [breakdowns[c].get(name, 0.0) / scale for c in configs]
        ax.bar(configs, heights, bottom=bottom, label=name, color=colors[name], width=0.6)
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    for x, total in enumerate(bottom):
        ax.annotate(f"{total:.3g}", (x, total), ha="center", va="bottom", fontsize="small")
    ax.set_ylabel(f"energy ({unit})")
    ax.set_title(textwrap.fill(title, 60), fontsize="medium")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    if activity:
        lines = [f"activity of {config}: {source}" for config, source in activity.items()]
        note = "\n".join(textwrap.fill(line, 110, subsequent_indent="    ") for line in lines)
        fig.supxlabel(note, fontsize="x-small", ha="left", x=0.01)
    return _save(fig, path, title)


def component_colors(names: Sequence[str] | Mapping[str, Any]) -> dict[str, str]:
    """A colour of its own for every energy component: the schedule's components keep
    theirs in every plot (tab20, dark hues first), other names take the colours after."""
    cmap = colormaps["tab20"]
    palette = [to_hex(cmap(i)) for i in (*range(0, 20, 2), *range(1, 20, 2))]
    known = list(COMPONENTS)
    extra = [name for name in names if name not in known]
    if len(known) + len(extra) > len(palette):
        raise ValueError(f"component_colors: more than {len(palette)} components")
    order = known + extra
    return {name: palette[order.index(name)] for name in names}


def sensitivity_tornado(
    results: Sequence[Mapping[str, Any]], path: str | Path, *, title: str | None = None
) -> str:
    """Tornado charts of :func:`emulator.compare.sensitivity` results: per network a row of
    two panels (speedup, energy ratio), one bar per assumption from its low end to its high
    end (log scale) around the shipped value, the most influential on top.

    Parameters
    ----------
    results
        One sensitivity result per network (``sensitivity`` rows sorted by influence).
    path
        Where to write the PNG.
    title
        The figure's title (default "How far each assumption moves the verdict").

    Returns
    -------
    str
        The title.
    """
    if not results:
        raise ValueError("sensitivity_tornado: no results to draw")
    title = title or "How far each assumption moves the verdict"
    rows = max(len(r["sensitivity"]) for r in results)
    fig = Figure(figsize=(12.0, 0.6 + len(results) * (0.28 * rows + 0.9)), layout="constrained")
    grid = fig.subplots(len(results), 2, squeeze=False)
    for axes, result in zip(grid, results, strict=True):
        ratios = (("speedup", "speedup"), ("energy_ratio", "energy ratio"))
        for ax, (key, label) in zip(axes, ratios, strict=True):
            _tornado(ax, result, key)
            ax.set_title(f"{result['network']}: {label} {result[key]:.3g}x", fontsize="medium")
    fig.suptitle(title)
    return _save(fig, path, title)


def _tornado(ax: Axes, result: Mapping[str, Any], key: str) -> None:
    base = result[key]
    rows = list(reversed(result["sensitivity"]))  # the most influential at the top
    for y, row in enumerate(rows):
        for value, color in zip(row[key], ("#4477aa", "#ee6677"), strict=True):
            if value is not None:
                ax.barh(y, value - base, left=base, color=color, height=0.7)
    ax.axvline(base, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_yticks(range(len(rows)), [f"{r['field']} {r['low']}…{r['high']}" for r in rows])
    ax.tick_params(axis="y", labelsize="x-small")
    ax.legend(
        handles=[Patch(color="#4477aa", label="low"), Patch(color="#ee6677", label="high")],
        fontsize="x-small",
        loc="lower right",
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _plot_value(value: Any) -> float:
    return float(value) if _is_number(value) else math.nan


def scaling_curves(
    points: Sequence[Mapping[str, Any]],
    path: str | Path,
    *,
    x: str,
    ys: Sequence[str],
    title: str | None = None,
) -> str:
    """One subplot per metric in ``ys`` against ``x``, over a sweep's points.

    Parameters
    ----------
    points
        The sweep: one dict per configuration with the key ``x`` and some of ``ys``; a missing
        or non-numeric y value (e.g. ``None``) is left as a gap.
    path
        Where to write the PNG.
    x
        The swept key: numbers give a numeric axis (points sorted by it), anything else (e.g.
        ``"2x2"``) a categorical axis in the points' order.
    ys
        Metric keys, e.g. ``"samples_per_s"``, ``"energy_pj_per_sample"``, ``"speedup"``.
    title
        The figure's title (default "Scaling over ``x``").

    Returns
    -------
    str
        The title.
    """
    if not points:
        raise ValueError("scaling_curves: no points to draw")
    if not ys:
        raise ValueError("scaling_curves: no y keys given")
    missing_x = [i for i, p in enumerate(points) if x not in p]
    if missing_x:
        raise ValueError(f"scaling_curves: x key {x!r} missing from points {missing_x}")
    known = sorted({key for p in points for key in p})
    for y in ys:
        if not any(y in p for p in points):
            raise ValueError(f"scaling_curves: unknown y key {y!r}; the points have {known}")
    numeric = all(_is_number(p[x]) for p in points)
    if numeric:
        points = sorted(points, key=lambda p: p[x])
        xs: list[float] = [float(p[x]) for p in points]
    else:
        xs = list(map(float, range(len(points))))
    title = title or f"Scaling over {x}"
    fig = Figure(figsize=(6.5, 2.4 * len(ys) + 0.8), layout="constrained")
    axes: list[Axes] = list(fig.subplots(len(ys), 1, sharex=True, squeeze=False)[:, 0])
    for i, (ax, y) in enumerate(zip(axes, ys, strict=True)):
        ax.plot(xs, [_plot_value(p.get(y)) for p in points], "o-", color=f"C{i % 10}")
        ax.set_ylabel(y)
        ax.grid(alpha=0.3)
        if not numeric:
            ax.set_xticks(xs, [str(p[x]) for p in points])
    axes[-1].set_xlabel(x)
    fig.suptitle(title)
    return _save(fig, path, title)
