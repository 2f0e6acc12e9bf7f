"""The figures: each a valid PNG whose Title text chunk is the title returned, read back by a
PNG chunk parser of our own (not matplotlib's), for small hand-made inputs; bad input refused."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

import pytest

from emulator.cost import COMPONENTS
from emulator.report.plots import (
    component_colors,
    energy_breakdown,
    pipeline_gantt,
    scaling_curves,
    sensitivity_tornado,
)

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
