"""The pipeline Gantt chart of a schedule or an emulated run: one row per resource, ops as
bars coloured by sample (the conventions of :mod:`emulator.report.plots`)."""

from __future__ import annotations

import itertools
import re
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import (
    MaxNLocator,
)

from emulator.report.plots import (
    WRITE_COLOR,
    plain_axis,
    save_png,
)

SAMPLE_COLORS = ("#0077bb", "#ee7733", "#009988", "#cc3311", "#33bbee", "#ee3377", "#bbbbbb")
"""The Gantt's samples (Paul Tol's vibrant set): not the energy components' colours."""
_ROW_RE = re.compile(r"^(xbar|neuron):(\d+)$")
_GRAD_RE = re.compile(r"^grad:t(\d+)$")
_TIME_UNITS = ((1e9, "ms"), (1e6, "µs"), (1e3, "ns"))


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
    return save_png(fig, path, title)


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
        plain_axis(ax.xaxis)
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
