"""Sensitivity tornadoes: how far each documented assumption moves the verdict, per network
(the conventions of :mod:`emulator.report.plots`)."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from emulator.report.plots import (
    HIGH_COLOR,
    LOW_COLOR,
    chips_line,
    log_ratio_ticks,
    ratio_text,
    save_png,
)


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


def sensitivity_tornado(
    results: Sequence[Mapping[str, Any]],
    path: str | Path,
    *,
    title: str | None = None,
    min_move: float = 0.05,
) -> str:
    """Tornado charts of :func:`emulator.sensitivity.sensitivity` results.

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
    return save_png(fig, path, title)


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
    chips = {chips_line(r.get("chips")) for r in results}
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
                f"{result['network']}: {label} {ratio_text(result[key])} as shipped",
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
                chip = f" ({chips_line(r.get('chips'))})" if not shared else ""
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
    log_ratio_ticks(ax.xaxis, lo, hi)
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
