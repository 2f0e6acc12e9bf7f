"""``pipesdfa scale``: dotted overrides, analytic sweeps, CPU scaling of the emulator."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from emulator import scaling, spec
from emulator.cli import main
from emulator.spec import load_chip


def test_parse_sets_reads_yaml_scalars() -> None:
    assert scaling.parse_sets(["tile.pes=2,4,8", "noc.mesh=2x2,4x4", "device.d2d_sigma=0,0.1"]) == [
        ("tile.pes", [2, 4, 8]),
        ("noc.mesh", ["2x2", "4x4"]),
        ("device.d2d_sigma", [0, 0.1]),
    ]
    assert scaling.points(scaling.parse_sets(["a=1,2", "b=x,y"])) == [
        {"a": 1, "b": "x"},
        {"a": 1, "b": "y"},
        {"a": 2, "b": "x"},
        {"a": 2, "b": "y"},
    ]


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["tile.pes"], "expected FIELD=v1,v2"),
        (["tile.pes=1", "tile.pes=2"], "given twice"),
        (["tile.pez=2"], "no field 'pez'"),
        (["tiles.pes=2"], "'tiles' is not a section"),
        (["tile.pes=0"], "tile.pes: Input should be greater than 0"),
        (["crossbar.weight_bits=7"], "not a multiple"),
    ],
)
def test_bad_sets_name_the_field(sets: list[str], message: str) -> None:
    with pytest.raises(spec.SweepError, match=message):
        for point in scaling.points(scaling.parse_sets(sets)):
            spec.with_fields(load_chip("pipesdfa-edge"), point)


def test_sweeping_the_mesh_puts_a_tile_on_every_node() -> None:
    chip = spec.with_fields(load_chip("pipesdfa-edge"), {"noc.mesh": "2x3"})
    assert (chip.noc.rows, chip.noc.cols, chip.tiles) == (2, 3, 6)
    kept = spec.with_fields(load_chip("pipesdfa-edge"), {"noc.mesh": "8x8", "tiles": 5})
    assert kept.tiles == 5


def test_analytic_sweep_over_pes(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "scale",
        "--network",
        "nmnist-mlp3",
        "--set",
        "tile.pes=2,4,8",
        "--set",
        "noc.mesh=8x8",
        "--json",
    ]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    rows = {r["point"]["tile.pes"]: r for r in out["points"]}
    assert not rows[2]["fits"] and "needs" in rows[2]["reason"]
    for pes in (4, 8):
        row = rows[pes]
        # Utilisation is crossbars used over the chip's: 64 tiles × pes × 8 crossbars.
        assert row["utilisation"] == pytest.approx(row["arrays_used"] / (64 * pes * 8))
        assert row["samples_per_s"] == pytest.approx(1e9 / row["time_ns_per_sample"])
    # PipeLayer (16-bit weights on 4-bit cells, a transposed copy Wᵀ of every layer but the
    # first) needs 150 + 63 + 1 + 63 + 8 = 285 PE cores:
    # at 4 per tile the 8x8 mesh holds PipeSDFA but not the baseline, so no ratios there.
    assert rows[4]["speedup"] is None and "pipelayer" in rows[4]["baseline_reason"]
    assert rows[8]["speedup"] > 1 and rows[8]["energy_ratio"] > 1


def test_scale_plot_is_written(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "scale.png"
    assert main(["scale", "--set", "crossbar.rows=64,128", "--plot", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["plot"] == str(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cpu_scaling_gives_identical_emulated_results(tmp_path) -> None:
    """Ray is started once per CPU count, so this runs in its own process."""
    argv = [
        "scale",
        "--mode",
        "emulate",
        "--chip",
        "tiny",
        "--network",
        "tiny-mlp",
        "--set",
        "tile.pes=2",
        "--cpus",
        "1,2",
        "--json",
    ]
    done = subprocess.run(
        [sys.executable, "-m", "emulator.cli", *argv],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    point = json.loads(done.stdout)["points"][0]
    runs = point["cpu_scaling"]["runs"]
    assert [r["cpus"] for r in runs] == [1, 2]
    assert point["cpu_scaling"]["identical"] and all(r["identical"] for r in runs)
    assert runs[0]["wall_speedup"] == 1.0
    assert runs[1]["parallel_efficiency"] == pytest.approx(runs[1]["wall_speedup"] / 2)
