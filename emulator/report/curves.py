"""Scaling curves of ``pipesdfa scale``: each metric against the swept field, one line per
chip (the conventions of :mod:`emulator.report.plots`)."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import (
    EngFormatter,
    FuncFormatter,
)

from emulator.report.plots import (
    energy_unit,
    log_ratio_ticks,
    plain_axis,
    ratio_text,
    save_png,
)

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
    return save_png(fig, path, title)


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
                log_ratio_ticks(ax.yaxis, min(positive), max(positive))
        else:
            if finite and min(finite) >= 0:
                top = max(v for v in values if math.isfinite(v))
                ax.set_ylim(0, top * 1.25 if top > 0 else 1.0)  # room for the values
            plain_axis(ax.yaxis)
            if "(x)" in label:
                ax.yaxis.set_major_formatter(FuncFormatter(ratio_text))
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
        plain_axis(axes[-1].xaxis)
    else:
        axes[-1].set_xticks(xs, labels)
        if upright:
            axes[-1].tick_params(axis="x", labelrotation=90)
    axes[-1].set_xlabel(xlabel or x)
    fig.suptitle(textwrap.fill(title, 70))
    if note:
        fig.supxlabel(textwrap.fill(note, 110), fontsize="x-small", ha="left", x=0.01)
    return fig, title
