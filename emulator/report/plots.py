"""Figures of a run as PNG files: the pipeline Gantt chart, energy breakdowns, scaling curves
and sensitivity tornadoes, drawn to be read in a paper at the default size.

Each figure is built by a ``*_figure`` function on its own :class:`~matplotlib.figure.Figure`
(no pyplot, no GUI, no global state) and returned with its title, for tests to inspect; the
function of the plain name draws it, saves a PNG whose ``Title`` text chunk is the title
(:func:`_save`, Agg canvas) and returns that title.

Conventions shared by every figure:

* no offset or scientific multiplier on a linear axis (``ScalarFormatter(useOffset=False)``);
  a log axis where the values span a decade or more;
* units on values: energies in pJ, nJ, µJ, mJ or J chosen by magnitude (:func:`energy_unit`),
  ratios with ``x``;
* one colour per energy component in every figure, and one legend order, both keyed by
  :data:`emulator.cost.COMPONENTS` (:func:`component_colors`);
* the chips compared, and the activity they are costed on, named on the figure.
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
from matplotlib.axis import Axis
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import (
    EngFormatter,
    FuncFormatter,
    LogLocator,
    MaxNLocator,
    NullFormatter,
    ScalarFormatter,
)

from emulator.cost import COMPONENTS

WRITE_COLOR = "#333333"
TOTAL_COLOR = "#555555"
LOW_COLOR = "#4477aa"  # Paul Tol's bright blue and red: colour-blind safe, distinct in grey
HIGH_COLOR = "#ee6677"
SAMPLE_COLORS = ("#0077bb", "#ee7733", "#009988", "#cc3311", "#33bbee", "#ee3377", "#bbbbbb")
"""The Gantt's samples (Paul Tol's vibrant set): not the energy components' colours."""
CONFIG_HATCHES = ("", "///", "...", "xxx", "\\\\\\", "ooo")
"""Configurations told apart in :func:`energy_breakdown`: the first solid, then hatched."""
_ROW_RE = re.compile(r"^(xbar|neuron):(\d+)$")
_GRAD_RE = re.compile(r"^grad:t(\d+)$")
_ENERGY_UNITS = ((1e12, "J"), (1e9, "mJ"), (1e6, "µJ"), (1e3, "nJ"), (1.0, "pJ"))
_TIME_UNITS = ((1e9, "ms"), (1e6, "µs"), (1e3, "ns"))
_METRICS = {
    "samples_per_s": "throughput (samples/s)",
    "time_ns_per_sample": "time per sample",
    "energy_pj_per_sample": "energy per sample",
    "speedup": "speedup vs baseline (x)",
    "energy_ratio": "energy ratio, baseline / PipeSDFA (x)",
    "wall_speedup": "emulator wall-clock speedup (x)",
    "parallel_efficiency": "parallel efficiency",
    "utilisation": "utilisation",
}
"""Axis labels (with units) of the metrics the CLI plots; other keys are labelled as given."""


def _save(fig: Figure, path: str | Path, title: str) -> str:
    FigureCanvasAgg(fig)
    fig.savefig(Path(path), format="png", dpi=120, metadata={"Title": title})
    return title


def energy_unit(pj: float) -> tuple[float, str]:
    """The unit to write an energy of ``pj`` picojoules in.

    Parameters
    ----------
    pj
        The largest energy (pJ) to be written in the unit.

    Returns
    -------
    tuple[float, str]
        (picojoules per unit, unit name): ``(1e3, "nJ")`` for 218 000 pJ (218 nJ),
        ``(1e6, "µJ")`` for 2.4e8 pJ (240 µJ).
    """
    for scale, unit in _ENERGY_UNITS:
        if abs(pj) >= scale:
            return scale, unit
    return 1.0, "pJ"


def format_energy(pj: float) -> str:
    """``pj`` picojoules in the unit its magnitude calls for, 3 significant digits."""
    scale, unit = energy_unit(pj)
    return f"{pj / scale:.3g} {unit}"


def _times(value: float, _pos: Any = None) -> str:
    """A ratio tick: ``0.5x``, ``2x``, ``10x``, ``1,000x``."""
    return f"{value:,.0f}x" if value >= 1000 else f"{value:.3g}x"


def _plain(axis: Axis) -> None:
    """Plain numbers on a linear axis: no offset (``+2.747``), no ``1e5`` multiplier."""
    formatter = ScalarFormatter(useOffset=False)
    formatter.set_scientific(False)
    axis.set_major_formatter(formatter)


def _log_ratio_ticks(axis: Axis, lo: float, hi: float) -> None:
    """Ratio ticks (``2x``) on a log axis from ``lo`` to ``hi``, as dense as their span
    leaves room for (1-2-5 steps within about a decade, decades beyond), minor unlabelled."""
    decades = math.log10(hi / lo)
    subs = (1.0,) if decades > 2.5 else (1.0, 2.0, 5.0) if decades > 0.7 else range(1, 10)
    axis.set_major_locator(LogLocator(base=10, subs=tuple(subs)))
    axis.set_major_formatter(FuncFormatter(_times))
    axis.set_minor_formatter(NullFormatter())


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


def _time_unit(spans: Sequence[tuple[int, int]]) -> tuple[float, str]:
    """(ps per unit, unit) for a time axis: the unit in which the longest span is ≥ 1."""
    longest = max(max(hi - lo, 1) for lo, hi in spans)
    for scale, unit in _TIME_UNITS:
        if longest >= scale:
            return scale, unit
    return 1.0, "ps"


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
        The figure's title (a default says what is drawn); name the chip in it.

    Returns
    -------
    str
        The title.
    """
    fig, title = gantt_figure(ops, samples=samples, title=title)
    return _save(fig, path, title)


def gantt_figure(
    ops: Sequence[Mapping[str, Any]], *, samples: int = 3, title: str | None = None
) -> tuple[Figure, str]:
    """The figure of :func:`pipeline_gantt` and its title, unsaved.

    One row per resource, time along x in the unit its span calls for (ns, µs or ms, plain
    numbers, no offset); the batch's WRITEs, which wait for the whole batch, on a broken
    axis of their own when the samples would be squeezed; odd time steps drawn lighter.

    Parameters
    ----------
    ops, samples, title
        As for :func:`pipeline_gantt`.

    Returns
    -------
    tuple[Figure, str]
        The figure and its title.
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
    colors = {n: SAMPLE_COLORS[i % len(SAMPLE_COLORS)] for i, n in enumerate(shown)}
    spans = _gantt_spans(chosen)
    scale, unit = _time_unit(spans)
    fig = Figure(figsize=(11, 1.6 + 0.45 * len(rows)), layout="constrained")
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
                (op["end_ps"] - op["start_ps"]) / scale,
                left=op["start_ps"] / scale,
                height=0.7,
                color=color,
                alpha=0.55 if op["step"] >= 0 and op["step"] % 2 else 1.0,  # odd steps lighter
                edgecolor=color,  # a ps-short op still shows as a line
                linewidth=0.5,
            )
        pad = max((hi - lo) * 0.02, 1.0) / scale
        ax.set_xlim(lo / scale - pad, hi / scale + pad)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6 if ax is axes[0] else 3))
        _plain(ax.xaxis)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(rows)), rows)
    axes[0].invert_yaxis()
    axes[0].set_ylabel("resource")
    for left, right in itertools.pairwise(axes):  # a broken time axis
        left.spines["right"].set_linestyle((0, (4, 4)))
        right.spines["left"].set_linestyle((0, (4, 4)))
        right.tick_params(axis="y", left=False)
    broken = ", axis broken: the batch's WRITEs wait for all its samples" if len(axes) > 1 else ""
    fig.supxlabel(f"emulated time ({unit}){broken}", fontsize="medium")
    fig.suptitle(textwrap.fill(title, 100))
    handles = [Patch(color=colors[n], label=f"sample {n}") for n in shown]
    handles.append(Patch(color=colors[shown[0]], alpha=0.55, label="odd time steps"))
    if any(op["kind"] == "WRITE" for op in chosen):
        handles.append(Patch(color=WRITE_COLOR, label="WRITE (batch)"))
    axes[-1].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    return fig, title


def energy_breakdown(
    breakdowns: Mapping[str, Mapping[str, float]],
    path: str | Path,
    *,
    title: str | None = None,
    activity: Mapping[str, str] | None = None,
) -> str:
    """Energy per component of each configuration, side by side on a log axis.

    The layout chosen: per-component grouped bars on a log energy axis, the configurations'
    bars side by side in each group (the first solid, the others hatched) and the totals as
    the first group, annotated with their value and unit. A stacked linear bar hides the
    breakdown of a configuration whose total is a small fraction of another's (PipeSDFA's
    beside PipeLayer's, often 5 to 25× apart); on a log axis both breakdowns, and each
    component's ratio between them, stay readable. Components zero in every configuration
    are left out (a footnote names them); a zero in one configuration is marked ``0``.

    Parameters
    ----------
    breakdowns
        Configuration → component → energy (pJ), e.g. ``{"PipeSDFA": {...}, "PipeLayer":
        {...}}``. Components missing from a configuration count 0.
    path
        Where to write the PNG.
    title
        The figure's title (default "Energy breakdown"); name the chips in it.
    activity
        Configuration → where its activity came from, written under the bars.

    Returns
    -------
    str
        The title.
    """
    fig, title = energy_figure(breakdowns, title=title, activity=activity)
    return _save(fig, path, title)


def energy_figure(
    breakdowns: Mapping[str, Mapping[str, float]],
    *,
    title: str | None = None,
    activity: Mapping[str, str] | None = None,
) -> tuple[Figure, str]:
    """The figure of :func:`energy_breakdown` and its title, unsaved.

    Parameters
    ----------
    breakdowns, title, activity
        As for :func:`energy_breakdown`.

    Returns
    -------
    tuple[Figure, str]
        The figure and its title.
    """
    if not breakdowns:
        raise ValueError("energy_breakdown: no configurations to draw")
    for config, parts in breakdowns.items():
        if not parts:
            raise ValueError(f"energy_breakdown: configuration {config!r} has no components")
        for name, value in parts.items():
            if not math.isfinite(value) or value < 0:
                raise ValueError(
                    f"energy_breakdown: {config!r} {name!r} = {value} pJ is not a finite "
                    "non-negative energy"
                )
    if len(breakdowns) > len(CONFIG_HATCHES):
        raise ValueError(f"energy_breakdown: more than {len(CONFIG_HATCHES)} configurations")
    title = title or "Energy breakdown"
    configs = list(breakdowns)
    named = component_order([name for parts in breakdowns.values() for name in parts])
    components = [n for n in named if any(breakdowns[c].get(n, 0.0) > 0 for c in configs)]
    empty = [n for n in named if n not in components]
    totals = {c: sum(breakdowns[c].values()) for c in configs}
    if not components:
        raise ValueError("energy_breakdown: every component is 0 pJ, nothing to draw")
    groups = ["total", *components]
    colors = {"total": TOTAL_COLOR, **component_colors(components)}
    fig = Figure(figsize=(max(6.0, 0.5 * len(groups) * len(configs) ** 0.5 + 2.5), 5.0))
    fig.set_layout_engine("constrained")
    ax = fig.add_subplot()
    width = 0.8 / len(configs)
    positive = [v for c in configs for v in (*breakdowns[c].values(), totals[c]) if v > 0]
    bottom = 10 ** math.floor(math.log10(min(positive)))
    for k, config in enumerate(configs):
        offset = (k - (len(configs) - 1) / 2) * width
        values = [totals[config], *(breakdowns[config].get(n, 0.0) for n in components)]
        xs = [g + offset for g in range(len(groups))]
        ax.bar(
            xs,
            values,
            width=width * 0.95,
            color=[colors[g] for g in groups],
            hatch=CONFIG_HATCHES[k],
            edgecolor="black",
            linewidth=0.4,
        )
        for x, value in zip(xs, values, strict=True):
            if value <= 0:
                ax.annotate("0", (x, bottom), ha="center", va="bottom", fontsize="x-small")
        ax.annotate(
            format_energy(totals[config]),
            (xs[0], totals[config]),
            xytext=(0, 2),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize="x-small",
            rotation=90,  # upright, the bars beside it are narrow
        )
    ax.set_yscale("log")
    ax.set_ylim(bottom, max(positive) * 12.0)  # room for the totals
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: format_energy(v)))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_ylabel("energy (log scale)")
    ax.set_xticks(range(len(groups)), groups, rotation=35, ha="right", rotation_mode="anchor")
    ax.set_xlabel("energy component")
    ax.grid(axis="y", which="major", alpha=0.3)
    ax.set_axisbelow(True)
    ax.set_title(textwrap.fill(title, 80), fontsize="medium")
    handles = [
        Patch(
            facecolor="#dddddd",
            edgecolor="black",
            linewidth=0.4,
            hatch=CONFIG_HATCHES[k],
            label=f"{config}: {format_energy(totals[config])} in all",
        )
        for k, config in enumerate(configs)
    ]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    lines = [f"activity of {config}: {source}" for config, source in (activity or {}).items()]
    if empty:
        lines.append(f"0 pJ in every configuration, not drawn: {', '.join(empty)}")
    if lines:
        note = "\n".join(textwrap.fill(line, 120, subsequent_indent="    ") for line in lines)
        fig.supxlabel(note, fontsize="x-small", ha="left", x=0.01)
    return fig, title


def component_order(names: Sequence[str] | Mapping[str, Any]) -> list[str]:
    """``names`` once each, in the one order every figure and legend uses.

    Parameters
    ----------
    names
        Energy component names (repeats allowed).

    Returns
    -------
    list[str]
        The schedule's components in :data:`emulator.cost.COMPONENTS` order, then other
        names in the order first given.
    """
    given = dict.fromkeys(names)
    return [n for n in COMPONENTS if n in given] + [n for n in given if n not in COMPONENTS]


def component_colors(names: Sequence[str] | Mapping[str, Any]) -> dict[str, str]:
    """A colour of its own for every energy component, the same in every figure.

    Parameters
    ----------
    names
        The components to colour.

    Returns
    -------
    dict[str, str]
        Name → hex colour: the schedule's components keep theirs, keyed by their place in
        :data:`emulator.cost.COMPONENTS` (tab20, dark hues first), other names take the
        colours after them in the order given.
    """
    cmap = colormaps["tab20"]
    palette = [to_hex(cmap(i)) for i in (*range(0, 20, 2), *range(1, 20, 2))]
    known = list(COMPONENTS)
    extra = [name for name in dict.fromkeys(names) if name not in known]
    if len(known) + len(extra) > len(palette):
        raise ValueError(f"component_colors: more than {len(palette)} components")
    order = known + extra
    return {name: palette[order.index(name)] for name in names}


def _moves(row: Mapping[str, Any], result: Mapping[str, Any], min_move: float) -> bool:
    """Whether an end of ``row`` moves the speedup or the energy ratio by ``min_move`` (a
    fraction) or more from its value as shipped."""
    for key in ("speedup", "energy_ratio"):
        base = result[key]
        for value in row[key]:
            if value is None or value <= 0 or base <= 0:
                continue
            if abs(math.log(value / base)) >= math.log1p(min_move):
                return True
    return False


def _chips_line(chips: Mapping[str, str] | None) -> str:
    if not chips:
        return ""
    return f"PipeSDFA ({chips.get('pipesdfa', '?')}) vs baseline {chips.get('pipelayer', '?')}"


def sensitivity_tornado(
    results: Sequence[Mapping[str, Any]],
    path: str | Path,
    *,
    title: str | None = None,
    min_move: float = 0.05,
) -> str:
    """Tornado charts of :func:`emulator.compare.sensitivity` results.

    Per network a row of two panels (speedup, energy ratio): one pair of bars per
    assumption, the low end's (blue, hatched) and the high end's (red) side by side so
    neither hides the other, each from the value as shipped to the ratio at that end, on a
    log axis of ratio ticks (``2x``); the most influential assumption on top. Assumptions
    that move neither ratio by ``min_move`` or more at either end are left out, a footnote
    says how many; an end that does not apply is marked ``n/a``. The chips and the activity
    of each result are named (title and footnote).

    Parameters
    ----------
    results
        One sensitivity result per network (``sensitivity`` rows sorted by influence; the
        ``chips`` and ``activity`` entries, where present, are drawn).
    path
        Where to write the PNG.
    title
        The figure's title (default "How far each assumption moves the verdict", with the
        chips where all the results share them).
    min_move
        The smallest relative move (0.05: 5 %) of either ratio that keeps an assumption;
        smaller ones are too short to read on the log axis.

    Returns
    -------
    str
        The title.
    """
    fig, title = tornado_figure(results, title=title, min_move=min_move)
    return _save(fig, path, title)


def tornado_figure(
    results: Sequence[Mapping[str, Any]], *, title: str | None = None, min_move: float = 0.05
) -> tuple[Figure, str]:
    """The figure of :func:`sensitivity_tornado` and its title, unsaved.

    Parameters
    ----------
    results, title, min_move
        As for :func:`sensitivity_tornado`.

    Returns
    -------
    tuple[Figure, str]
        The figure and its title.
    """
    if not results:
        raise ValueError("sensitivity_tornado: no results to draw")
    if min_move < 0:
        raise ValueError(f"sensitivity_tornado: min_move must be ≥ 0, got {min_move}")
    chips = {_chips_line(r.get("chips")) for r in results}
    shared = chips.pop() if len(chips) == 1 else ""
    if title is None:
        title = "How far each assumption moves the verdict" + (f": {shared}" if shared else "")
    kept = [[row for row in r["sensitivity"] if _moves(row, r, min_move)] for r in results]
    heights = [0.8 + 0.34 * max(len(rows), 1) for rows in kept]
    fig = Figure(figsize=(12.0, 1.6 + sum(heights) + 0.35 * len(results)))
    fig.set_layout_engine("constrained")
    grid = fig.subplots(len(results), 2, squeeze=False, height_ratios=heights)
    dropped = []
    for axes, result, rows in zip(grid, results, kept, strict=True):
        left = len(result["sensitivity"]) - len(rows)
        if left:
            dropped.append(f"{result['network']} {left} of {len(result['sensitivity'])}")
        ratios = (("speedup", "speedup"), ("energy_ratio", "energy ratio"))
        for ax, (key, label) in zip(axes, ratios, strict=True):
            _tornado(ax, result, rows, key, labels=ax is axes[0])
            ax.set_title(
                f"{result['network']}: {label} {_times(result[key])} as shipped",
                fontsize="medium",
            )
    handles = [
        Patch(facecolor=LOW_COLOR, hatch="///", edgecolor="white", label="at the low end"),
        Patch(facecolor=HIGH_COLOR, label="at the high end"),
        Line2D([], [], color="black", linewidth=1.0, label="as shipped"),
        Line2D([], [], color="grey", linestyle="--", linewidth=1.0, label="1x (parity)"),
    ]
    fig.legend(handles=handles, loc="outside right upper", fontsize="small")
    fig.suptitle(textwrap.fill(title, 100))
    lines = []
    if shared:
        lines.append(f"chips: {shared}")
    activities = {r.get("activity") for r in results} - {None}
    if len(activities) == 1:
        lines.append(f"activity: {activities.pop()}")
    else:
        for r in results:
            if r.get("activity"):
                chip = f" ({_chips_line(r.get('chips'))})" if not shared else ""
                lines.append(f"activity of {r['network']}{chip}: {r['activity']}")
    if dropped:
        lines.append(
            f"left out, as they move neither ratio by {min_move:.0%} or more at either end: "
            + "; ".join(dropped)
            + " assumptions"
        )
    if lines:
        note = "\n".join(textwrap.fill(line, 150, subsequent_indent="    ") for line in lines)
        fig.supxlabel(note, fontsize="x-small", ha="left", x=0.01)
    return fig, title


def _tornado(
    ax: Axes,
    result: Mapping[str, Any],
    kept: Sequence[Mapping[str, Any]],
    key: str,
    *,
    labels: bool = True,
) -> None:
    """One panel: the low and high ends of each kept row, side by side, the first on top."""
    base = result[key]
    ax.set_xscale("log")
    ends = [v for row in kept for v in row[key] if v is not None and v > 0]
    span = max((abs(math.log(v / base)) for v in ends), default=0.0)
    span = max(span * 1.15, math.log(1.25))  # symmetric about the value as shipped
    lo, hi = base * math.exp(-span), base * math.exp(span)
    ax.set_xlim(lo, hi)
    for y, row in enumerate(kept):
        for value, dy, color, hatch in zip(
            row[key], (-0.19, 0.19), (LOW_COLOR, HIGH_COLOR), ("///", ""), strict=True
        ):
            if value is None or value <= 0:
                ax.annotate(
                    "n/a",
                    (base, y + dy),
                    xytext=(3, 0),
                    textcoords="offset points",
                    va="center",
                    fontsize="xx-small",
                    color="grey",
                )
                continue
            ax.barh(
                y + dy,
                value - base,
                left=base,
                height=0.36,
                color=color,
                hatch=hatch,
                edgecolor="white",
                linewidth=0.0,
            )
    ax.axvline(base, color="black", linewidth=1.0)
    if lo < 1.0 < hi:
        ax.axvline(1.0, color="grey", linestyle="--", linewidth=1.0)
    _log_ratio_ticks(ax.xaxis, lo, hi)
    ax.set_ylim(len(kept) - 0.5 if kept else 0.5, -0.5)  # the most influential at the top
    names = [f"{r['field']} {r['low']}…{r['high']}" for r in kept]
    ax.set_yticks(range(len(kept)), names if labels else [""] * len(kept))
    ax.tick_params(axis="y", labelsize="small", length=0 if not labels else 3.5)
    ax.set_xlabel("ratio at the low / high end (x), log scale", fontsize="small")
    ax.grid(axis="x", which="major", alpha=0.3)
    ax.set_axisbelow(True)
    if not kept:
        ax.text(
            0.5,
            0.5,
            "no assumption moves it",
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize="small",
            color="grey",
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
    xlabel: str | None = None,
    note: str | None = None,
) -> str:
    """One subplot per metric in ``ys`` against ``x``, over a sweep's points.

    Each y axis shows plain numbers with units (no offset such as ``+2.747``): a log axis
    where the metric's values span a factor 10 or more, else a linear axis from 0, so a
    change of 0.01 % looks flat rather than like a cliff. Energies (keys with ``_pj``) are
    written in pJ to J by magnitude, ratios with ``x``; the value is written by each point.

    Parameters
    ----------
    points
        The sweep: one dict per configuration with the key ``x`` and some of ``ys``; a missing
        or non-numeric y value (e.g. ``None``) is left as a gap.
    path
        Where to write the PNG.
    x
        The swept key: numbers give a numeric axis (points sorted by it), anything else (e.g.
        ``"2x2"``) a categorical axis in the points' order, long labels a field a line (turned
        upright if still too wide).
    ys
        Metric keys, e.g. ``"samples_per_s"``, ``"energy_pj_per_sample"``, ``"speedup"``.
    title
        The figure's title (default "Scaling over ``x``"); name the chips in it.
    xlabel
        The x axis's label (default ``x``).
    note
        A footnote, e.g. the chips and the activity the points are costed on.

    Returns
    -------
    str
        The title.
    """
    fig, title = scaling_figure(points, x=x, ys=ys, title=title, xlabel=xlabel, note=note)
    return _save(fig, path, title)


def _value_text(y: str, value: float, unit: str) -> str:
    """A point's value as written beside it: with its energy unit, ``x`` on a ratio,
    an engineering prefix on a throughput."""
    if unit:
        return f"{value:.4g} {unit}"
    if "(x)" in _METRICS.get(y, ""):
        return f"{value:.4g}x"
    if y == "samples_per_s":
        return EngFormatter(places=None, sep=" ").format_data(float(f"{value:.4g}"))
    return f"{value:.4g}"


def scaling_figure(
    points: Sequence[Mapping[str, Any]],
    *,
    x: str,
    ys: Sequence[str],
    title: str | None = None,
    xlabel: str | None = None,
    note: str | None = None,
) -> tuple[Figure, str]:
    """The figure of :func:`scaling_curves` and its title, unsaved.

    Parameters
    ----------
    points, x, ys, title, xlabel, note
        As for :func:`scaling_curves`.

    Returns
    -------
    tuple[Figure, str]
        The figure and its title.
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
    labels = [str(p[x]) for p in points]
    if not numeric and sum(len(label) + 2 for label in labels) > 60:
        labels = [label.replace(" ", "\n") for label in labels]  # a field a line
    widest = max(len(line) for label in labels for line in label.split("\n"))
    upright = not numeric and (widest + 2) * len(labels) > 60  # still too wide: turn them
    lines = max(label.count("\n") + 1 for label in labels)
    extra = (0.09 * widest if upright else 0.18 * (lines - 1)) + (0.3 if note else 0.0)
    fig = Figure(figsize=(7.0, 2.3 * len(ys) + 1.0 + extra))
    fig.set_layout_engine("constrained")
    axes: list[Axes] = list(fig.subplots(len(ys), 1, sharex=True, squeeze=False)[:, 0])
    for i, (ax, y) in enumerate(zip(axes, ys, strict=True)):
        raw = [_plot_value(p.get(y)) for p in points]
        finite = [v for v in raw if math.isfinite(v)]
        scale, unit = energy_unit(max(map(abs, finite), default=1.0)) if "_pj" in y else (1.0, "")
        values = [v / scale for v in raw]
        ax.plot(xs, values, "o-", color=f"C{i % 10}")
        label = _METRICS.get(y, y)
        if unit:
            label = f"{label.removesuffix(' (pJ)')} ({unit})"
        ax.set_ylabel(textwrap.fill(label, 24), fontsize="small")
        positive = [v for v in values if math.isfinite(v) and v > 0]
        if positive and len(positive) == len(finite) and max(positive) >= 10 * min(positive):
            ax.set_yscale("log")
            if "(x)" in label:
                _log_ratio_ticks(ax.yaxis, min(positive), max(positive))
        else:
            if finite and min(finite) >= 0:
                top = max(v for v in values if math.isfinite(v))
                ax.set_ylim(0, top * 1.25 if top > 0 else 1.0)  # room for the values
            _plain(ax.yaxis)
            if "(x)" in label:
                ax.yaxis.set_major_formatter(FuncFormatter(_times))
            elif y == "samples_per_s":
                ax.yaxis.set_major_formatter(EngFormatter(sep=" "))
        for px, value in zip(xs, values, strict=True):
            if math.isfinite(value):
                ax.annotate(
                    _value_text(y, value, unit),
                    (px, value),
                    xytext=(0, 5),
                    textcoords="offset points",
                    ha="center",
                    va="bottom",
                    fontsize="x-small",
                )
        ax.grid(alpha=0.3)
        ax.margins(x=0.08)
    if numeric:
        _plain(axes[-1].xaxis)
    else:
        axes[-1].set_xticks(xs, labels)
        if upright:
            axes[-1].tick_params(axis="x", labelrotation=90)
    axes[-1].set_xlabel(xlabel or x)
    fig.suptitle(textwrap.fill(title, 70))
    if note:
        fig.supxlabel(textwrap.fill(note, 110), fontsize="x-small", ha="left", x=0.01)
    return fig, title


def calibration_chart(result: Mapping[str, Any], path: str | Path) -> str:
    """Ours over published for every ``pipesdfa calibrate`` row (a log axis of ratios, the
    ±tolerance band shaded), each bar coloured by its status; returns the title."""
    fig, title = calibration_figure(result)
    return _save(fig, path, title)


def calibration_figure(result: Mapping[str, Any]) -> tuple[Figure, str]:
    """The figure of :func:`calibration_chart` and its title."""
    rows = list(result["rows"])
    tol = result["tolerance"]
    title = "The cost model against published chips"
    fig = Figure(figsize=(9.0, 1.4 + 0.45 * len(rows)), layout="constrained")
    ax = fig.add_subplot()
    ratios = [r["ours"] / r["published"] for r in rows]
    labels = [f"{r['chip']}: {r['figure']} ({r['unit']})" for r in rows]
    colors = [LOW_COLOR if r["status"] == "within" else HIGH_COLOR for r in rows]
    ys = range(len(rows))[::-1]
    ax.barh(list(ys), [math.log10(x) for x in ratios], color=colors, height=0.6)
    ax.axvspan(math.log10(1 - tol), math.log10(1 + tol), color="#dddddd", zorder=0)
    ax.axvline(0.0, color=TOTAL_COLOR, linewidth=0.8)
    for y, x in zip(ys, ratios, strict=True):
        ax.text(math.log10(x), y, f" {x:.3g}x ", va="center", ha="left" if x >= 1 else "right")
    span = max(abs(math.log10(x)) for x in ratios) * 1.6 + 0.1
    ax.set_xlim(-span, span)
    ticks = [t for t in (0.01, 0.1, 0.2, 0.5, 1, 2, 5, 10, 100) if abs(math.log10(t)) <= span]
    ax.set_xticks([math.log10(t) for t in ticks], [_times(t) for t in ticks])
    ax.set_yticks(list(ys), labels)
    ax.set_xlabel(f"ours / published (shaded: within {tol:.0%})")
    ax.legend(
        handles=[
            Patch(color=LOW_COLOR, label="within"),
            Patch(color=HIGH_COLOR, label="gap (a parameter the paper does not give)"),
        ],
        loc="lower right",
        fontsize="small",
    )
    fig.suptitle(f"{title}: ours / published, nothing fitted")
    return fig, title
