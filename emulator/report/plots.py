"""Figures of a run as PNG files: the pipeline Gantt chart, energy breakdowns, scaling curves
and sensitivity tornadoes, drawn to be read in a paper at the default size.

The energy breakdowns and the calibration chart are here, with what every figure shares;
the Gantt chart, the tornadoes and the scaling curves are in :mod:`emulator.report.gantt`,
:mod:`emulator.report.tornado` and :mod:`emulator.report.curves`.

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

import io
import math
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib import colormaps
from matplotlib.axis import Axis
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import (
    FuncFormatter,
    LogLocator,
    NullFormatter,
    ScalarFormatter,
)

from emulator.cost import COMPONENTS
from emulator.outputs import write_atomic

WRITE_COLOR = "#333333"
TOTAL_COLOR = "#555555"
LOW_COLOR = "#4477aa"  # Paul Tol's bright blue and red: colour-blind safe, distinct in grey
HIGH_COLOR = "#ee6677"
CONFIG_HATCHES = ("", "///", "...", "xxx", "\\\\\\", "ooo")
"""Configurations told apart in :func:`energy_breakdown`: the first solid, then hatched."""
_ENERGY_UNITS = ((1e12, "J"), (1e9, "mJ"), (1e6, "µJ"), (1e3, "nJ"), (1.0, "pJ"))


def save_png(fig: Figure, path: str | Path, title: str) -> str:
    FigureCanvasAgg(fig)
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=120, metadata={"Title": title})
    write_atomic(path, png.getvalue())  # whole or not at all: the user's old file stays
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


def ratio_text(value: float, _pos: Any = None) -> str:
    """A ratio tick: ``0.5x``, ``2x``, ``10x``, ``1,000x``."""
    return f"{value:,.0f}x" if value >= 1000 else f"{value:.3g}x"


def plain_axis(axis: Axis) -> None:
    """Plain numbers on a linear axis: no offset (``+2.747``), no ``1e5`` multiplier."""
    formatter = ScalarFormatter(useOffset=False)
    formatter.set_scientific(False)
    axis.set_major_formatter(formatter)


def log_ratio_ticks(axis: Axis, lo: float, hi: float) -> None:
    """Ratio ticks (``2x``) on a log axis from ``lo`` to ``hi``, as dense as their span
    leaves room for (1-2-5 steps within about a decade, decades beyond), minor unlabelled."""
    decades = math.log10(hi / lo)
    subs = (1.0,) if decades > 2.5 else (1.0, 2.0, 5.0) if decades > 0.7 else range(1, 10)
    axis.set_major_locator(LogLocator(base=10, subs=tuple(subs)))
    axis.set_major_formatter(FuncFormatter(ratio_text))
    axis.set_minor_formatter(NullFormatter())


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
    return save_png(fig, path, title)


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


def calibration_chart(result: Mapping[str, Any], path: str | Path) -> str:
    """Ours over published for every ``pipesdfa calibrate`` row (a log axis of ratios, the
    ±tolerance band shaded), each bar coloured by its status; returns the title."""
    fig, title = calibration_figure(result)
    return save_png(fig, path, title)


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
    ax.set_xticks([math.log10(t) for t in ticks], [ratio_text(t) for t in ticks])
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


def chips_line(chips: Mapping[str, str] | None) -> str:
    if not chips:
        return ""
    return f"PipeSDFA ({chips.get('pipesdfa', '?')}) vs baseline {chips.get('pipelayer', '?')}"
