"""The figures: each a valid PNG whose Title text chunk is the title returned, read back by a
PNG chunk parser of our own (not matplotlib's), for small hand-made inputs; bad input refused."""

from __future__ import annotations

import itertools
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.text import Text

from emulator.cost import COMPONENTS
from emulator.report.curves import scaling_curves, scaling_figure
from emulator.report.gantt import gantt_figure, pipeline_gantt
from emulator.report.plots import (
    component_colors,
    component_order,
    energy_breakdown,
    energy_figure,
    format_energy,
)
from emulator.report.tornado import sensitivity_tornado, tornado_figure

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png(path: Path) -> tuple[int, int, dict[str, str]]:
    """(width, height, tEXt chunks) of a PNG, every chunk's CRC checked."""
    data = path.read_bytes()
    assert data[:8] == SIGNATURE
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, kind
        chunks.append((kind, body))
        pos += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    width, height = struct.unpack(">II", chunks[0][1][:8])
    text = {}
    for kind, body in chunks:
        if kind == b"tEXt":
            key, value = body.split(b"\0", 1)
            text[key.decode("latin-1")] = value.decode("latin-1")
    return width, height, text


def _check(path: Path, title: str) -> None:
    width, height, text = _png(path)
    assert width > 0 and height > 0
    assert text["Title"] == title


def _op(kind: str, layer: int, resource: str, sample: int, step: int, start: int, end: int):
    return {
        "core": "tile-0",
        "kind": kind,
        "layer": layer,
        "resource": resource,
        "batch": 0,
        "sample": sample,
        "step": step,
        "start_ps": start,
        "end_ps": end,
    }


def _ops(samples: int = 2, steps: int = 3) -> list[dict[str, Any]]:
    """Two layers streaming ``samples`` samples of ``steps`` steps, then the batch's WRITEs."""
    ops, read, neuron = [], 40_000, 1_000
    for n in range(samples):
        for t in range(steps):
            s0 = (n * steps + t) * read
            ops += [
                _op("XBAR_READ", 0, "xbar:0", n, t, s0, s0 + read),
                _op("NEURON", 0, "neuron:0", n, t, s0 + read, s0 + read + neuron),
                _op("NOC_SPIKES", 1, "noc:t0>t0", n, t, s0 + read + neuron, s0 + read + neuron),
                _op("XBAR_READ", 1, "xbar:1", n, t, s0 + read + neuron, s0 + 2 * read + neuron),
            ]
        end = (n + 1) * steps * read + read
        ops += [
            _op("FEEDBACK", 2, "feedback", n, -1, end, end + 200_000),
            _op("GRAD", 0, "grad:t0", n, -1, end + 200_000, end + 230_000),
        ]
    ops += [_op("WRITE", k, f"xbar:{k}", -1, -1, 5_000_000 + k, 9_000_000) for k in (0, 1)]
    return ops


@pytest.mark.parametrize("write_gap", [False, True])
def test_pipeline_gantt(tmp_path: Path, write_gap: bool) -> None:
    ops = _ops()
    if not write_gap:  # WRITEs right after the samples: one time axis
        late = {"start_ps": 600_000, "end_ps": 800_000}
        ops = [op if op["kind"] != "WRITE" else {**op, **late} for op in ops]
    title = pipeline_gantt(ops, tmp_path / "gantt.png", samples=2)
    assert "samples 0 to 1" in title
    _check(tmp_path / "gantt.png", title)


def test_pipeline_gantt_own_title_and_fewer_samples(tmp_path: Path) -> None:
    path = tmp_path / "gantt.png"
    assert pipeline_gantt(_ops(), path, samples=1, title="first sample") == "first sample"
    _check(path, "first sample")


def test_pipeline_gantt_rejects_empty(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no ops of samples"):
        pipeline_gantt([], tmp_path / "gantt.png")
    writes_only = [op for op in _ops() if op["kind"] == "WRITE"]
    with pytest.raises(ValueError, match="log_samples"):
        pipeline_gantt(writes_only, tmp_path / "gantt.png")
    with pytest.raises(ValueError, match="samples must be"):
        pipeline_gantt(_ops(), tmp_path / "gantt.png", samples=0)
    assert not (tmp_path / "gantt.png").exists()


@pytest.mark.parametrize("scale", [1.0, 1e4])  # nJ and µJ axes
def test_energy_breakdown(tmp_path: Path, scale: float) -> None:
    breakdowns = {
        "PipeSDFA": {"read": 120.0 * scale, "readout": 300.0 * scale, "write": 50.0 * scale},
        "PipeLayer": {"read": 400.0 * scale, "write": 900.0 * scale, "buffer": 10.0 * scale},
    }
    path = tmp_path / "energy.png"
    title = energy_breakdown(breakdowns, path)
    assert title == "Energy breakdown"
    _check(path, title)
    assert energy_breakdown(breakdowns, path, title="digits-mlp") == "digits-mlp"
    _check(path, "digits-mlp")


@pytest.mark.parametrize(
    ("breakdowns", "message"),
    [
        ({}, "no configurations"),
        ({"PipeSDFA": {}}, "has no components"),
        ({"PipeSDFA": {"read": -1.0}}, "non-negative"),
        ({"PipeSDFA": {"read": float("nan")}}, "finite"),
    ],
)
def test_energy_breakdown_rejects(tmp_path: Path, breakdowns: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        energy_breakdown(breakdowns, tmp_path / "energy.png")


POINTS = [
    {"mesh": "1x1", "samples_per_s": 10.0, "speedup": 1.0, "parallel_efficiency": 1.0},
    {"mesh": "2x2", "samples_per_s": 35.0, "speedup": 3.5, "parallel_efficiency": 0.875},
    {"mesh": "4x4", "samples_per_s": 100.0, "speedup": None, "parallel_efficiency": None},
]


@pytest.mark.parametrize(
    ("points", "x"),
    [
        (POINTS, "mesh"),  # categorical
        ([{"cores": c, "speedup": s} for c, s in [(4, 3.1), (1, 1.0), (2, 1.9)]], "cores"),
    ],
)
def test_scaling_curves(tmp_path: Path, points: list[dict], x: str) -> None:
    ys = [y for y in ("samples_per_s", "speedup", "parallel_efficiency") if y in points[0]]
    path = tmp_path / "scaling.png"
    title = scaling_curves(points, path, x=x, ys=ys)
    assert title == f"Scaling over {x}"
    _check(path, title)


@pytest.mark.parametrize(
    ("x", "ys", "message"),
    [
        ("mesh", ["samples_per_s", "joules"], "unknown y key 'joules'"),
        ("mesh", [], "no y keys"),
        ("tiles", ["speedup"], "x key 'tiles' missing"),
    ],
)
def test_scaling_curves_rejects(tmp_path: Path, x: str, ys: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        scaling_curves(POINTS, tmp_path / "scaling.png", x=x, ys=ys)
    with pytest.raises(ValueError, match="no points"):
        scaling_curves([], tmp_path / "scaling.png", x=x, ys=["speedup"])


def test_every_energy_component_has_a_colour_of_its_own() -> None:
    colors = component_colors([*COMPONENTS, "other"])
    assert len(set(colors.values())) == len(COMPONENTS) + 1
    # a component keeps its colour whatever else a chart shows
    assert component_colors(["grad", "read"]) == {"grad": colors["grad"], "read": colors["read"]}


def test_sensitivity_tornado(tmp_path: Path) -> None:
    result = {
        "network": "n",
        "speedup": 2.0,
        "energy_ratio": 1.5,
        "sensitivity": [
            {
                "field": "a.b",
                "low": 1,
                "high": 2,
                "speedup": [1.0, 3.0],
                "energy_ratio": [1.4, 1.6],
            },
            {
                "field": "c.d",
                "low": "x",
                "high": "y",
                "speedup": [2.0, None],
                "energy_ratio": [1.5, None],
            },
        ],
    }
    path = tmp_path / "tornado.png"
    title = sensitivity_tornado([result, result | {"network": "m"}], path)
    assert title == "How far each assumption moves the verdict"
    _check(path, title)
    with pytest.raises(ValueError, match="no results"):
        sensitivity_tornado([], path)


# What the figures show: the Figure objects, drawn, inspected.


def _drawn(fig: Figure) -> Figure:
    FigureCanvasAgg(fig)
    fig.canvas.draw()
    return fig


def _texts(fig: Figure) -> str:
    """Every text drawn on the figure (titles, labels, footnotes, annotations)."""
    return "\n".join(t.get_text() for t in fig.findobj(Text))


def _bar_colours(fig: Figure) -> dict[str, set[tuple[float, ...]]]:
    """Group label → the face colours of its bars, in an :func:`energy_figure`."""
    ax = fig.axes[0]
    names = [t.get_text() for t in ax.get_xticklabels()]
    out: dict[str, set[tuple[float, ...]]] = {}
    for bar in ax.patches:
        if isinstance(bar, Rectangle):
            group = names[round(bar.get_x() + bar.get_width() / 2)]
            out.setdefault(group, set()).add(tuple(bar.get_facecolor()))
    return out


def test_scaling_axes_have_no_offset_and_start_at_zero() -> None:
    points = [
        {"pes": 2, "speedup": 2.7474, "energy_pj_per_sample": 218_323.0, "samples_per_s": 3e5},
        {"pes": 4, "speedup": 2.7477, "energy_pj_per_sample": 218_145.0, "samples_per_s": 3e5},
    ]
    ys = ["samples_per_s", "energy_pj_per_sample", "speedup"]
    fig, _ = scaling_figure(points, x="pes", ys=ys)
    _drawn(fig)
    for ax in fig.axes:
        assert ax.yaxis.get_major_formatter().get_offset() == ""
        assert ax.xaxis.get_major_formatter().get_offset() == ""
        assert ax.get_yscale() == "linear" and ax.get_ylim()[0] == 0  # a 0.01 % change is flat
    labels = [ax.get_ylabel().replace("\n", " ") for ax in fig.axes]
    assert "(nJ)" in labels[1] and "(x)" in labels[2]
    assert all(t.get_text().endswith("x") for t in fig.axes[2].get_yticklabels() if t.get_text())


def test_scaling_uses_a_log_axis_over_decades_and_names_the_chips() -> None:
    points = [{"mesh": m, "energy_pj_per_sample": e} for m, e in [("2x2", 1e3), ("8x8", 5e6)]]
    note = "chips: PipeSDFA (chip-a) vs baseline chip-b; activity: assumed"
    fig, title = scaling_figure(
        points, x="mesh", ys=["energy_pj_per_sample"], title="t: chip-a vs chip-b", note=note
    )
    _drawn(fig)
    assert fig.axes[0].get_yscale() == "log"
    assert "chip-a" in title and note in _texts(fig).replace("\n", " ")
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["2x2", "8x8"]


def test_scaling_slants_long_categorical_labels() -> None:
    points = [{"p": f"tile.pes={k} noc.mesh={k}x{k}", "speedup": 1.0 + k} for k in range(2, 9)]
    fig, _ = scaling_figure(points, x="p", ys=["speedup"])
    _drawn(fig)
    labels = fig.axes[0].get_xticklabels()
    assert labels[0].get_text().split("\n") == ["tile.pes=2", "noc.mesh=2x2"]
    boxes = [t.get_window_extent() for t in labels]
    assert not any(a.overlaps(b) for a, b in itertools.pairwise(boxes))


def _sensitivity(rows: list[dict]) -> dict[str, Any]:
    return {
        "network": "net",
        "chips": {"pipesdfa": "chip-a", "pipelayer": "chip-b"},
        "activity": "assumed: spike rate 0.1",
        "speedup": 5.0,
        "energy_ratio": 8.0,
        "sensitivity": rows,
    }


def _row(field: str, speedup: list, energy: list) -> dict[str, Any]:
    return {"field": field, "low": 1, "high": 2, "speedup": speedup, "energy_ratio": energy}


def test_tornado_drops_rows_that_move_nothing_and_says_how_many() -> None:
    result = _sensitivity(
        [
            _row("big.one", [0.6, 11.0], [4.0, 20.0]),
            _row("small.one", [5.5, 4.9], [8.0, 8.0]),  # 10 %: kept
            _row("flat.one", [5.01, 4.99], [8.0, 8.0]),
            _row("none.one", [None, None], [None, None]),
        ]
    )
    fig, title = tornado_figure([result])
    _drawn(fig)
    names = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert names == ["big.one 1…2", "small.one 1…2"]
    texts = _texts(fig).replace("\n", " ")
    assert "net 2 of 4" in texts and "5%" in texts
    assert "chip-a" in title and "chip-b" in title
    assert "assumed: spike rate 0.1" in texts
    fig, _ = tornado_figure([result], min_move=0.0005)
    assert len(fig.axes[0].get_yticklabels()) == 3


def test_tornado_low_and_high_bars_do_not_hide_each_other() -> None:
    fig, _ = tornado_figure([_sensitivity([_row("a.b", [10.0, 20.0], [9.0, 16.0])])])
    for ax in fig.axes:
        bars = [p for p in ax.patches if isinstance(p, Rectangle)]
        assert len(bars) == 2
        low, high = (b.get_bbox() for b in bars)
        assert low.y1 <= high.y0 or high.y1 <= low.y0  # side by side, not on top
        assert bars[0].get_hatch() != bars[1].get_hatch()


def test_tornado_ratio_axis_is_labelled_and_readable() -> None:
    rows = [_row("a.b", [0.8, 30.0], [7.5, 8.6]), _row("c.d", [4.0, 6.0], [7.9, 8.5])]
    fig, _ = tornado_figure([_sensitivity(rows)])
    _drawn(fig)
    for ax in fig.axes:
        assert ax.get_xscale() == "log"
        assert "(x)" in ax.get_xlabel() and "log scale" in ax.get_xlabel()
        labels = [t for t in ax.get_xticklabels() if t.get_text() and t.get_visible()]
        assert labels and all(t.get_text().endswith("x") for t in labels)
        boxes = [t.get_window_extent() for t in labels]
        assert not any(a.overlaps(b) for a, b in itertools.pairwise(boxes))


def test_a_component_keeps_its_colour_in_every_energy_plot() -> None:
    one, _ = energy_figure({"A": {"read": 1e3, "grad": 5e5}, "B": {"grad": 1e7, "static": 9e3}})
    two, _ = energy_figure({"X": {"static": 2.0, "dac": 3.0, "grad": 1.0}})
    first, second = _bar_colours(one), _bar_colours(two)
    expected = component_colors(COMPONENTS)
    for name in ("grad", "static"):
        assert first[name] == second[name] == {to_rgba(expected[name])}
    # the groups follow COMPONENTS order, whatever order the breakdowns give
    assert [t.get_text() for t in two.axes[0].get_xticklabels()] == [
        "total",
        "dac",
        "grad",
        "static",
    ]
    assert component_order(["static", "other", "read", "dac"]) == ["read", "dac", "static", "other"]


def test_energy_plot_is_on_a_log_axis_with_units() -> None:
    breakdowns = {
        "PipeSDFA": {"read": 2e3, "static": 2e5, "write": 0.0, "spill": 0.0},
        "PipeLayer": {"read": 2e3, "grad": 5e6, "static": 3e5, "spill": 0.0},
    }
    fig, _ = energy_figure(breakdowns, title="n: PipeSDFA (chip-a) vs PipeLayer (chip-b)")
    _drawn(fig)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    ticks = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert ticks and all(t.split()[-1] in {"pJ", "nJ", "µJ", "mJ", "J"} for t in ticks)
    texts = _texts(fig).replace("\n", " ")
    assert "202 nJ" in texts and "5.3 µJ" in texts  # the totals, with units
    assert "not drawn: spill" in texts  # 0 everywhere: left out, and said so
    assert "chip-a" in ax.get_title() and "chip-b" in ax.get_title()


def test_energy_units_follow_the_magnitude() -> None:
    assert [format_energy(v) for v in (12.0, 2.18e5, 2.36e8, 1.52e9)] == [
        "12 pJ",
        "218 nJ",
        "236 µJ",
        "1.52 mJ",
    ]


def test_gantt_time_axis_has_no_offset() -> None:
    late = 7_000_000_000_000  # 7 s into a run: µs labels would need an offset
    ops = [
        {**op, "start_ps": op["start_ps"] + late, "end_ps": op["end_ps"] + late} for op in _ops()
    ]
    fig, _ = gantt_figure(ops, samples=2)
    _drawn(fig)
    for ax in fig.axes:
        assert ax.xaxis.get_major_formatter().get_offset() == ""
        labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
        assert all(len(label) <= 10 for label in labels)
