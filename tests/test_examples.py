"""The examples a researcher starts from run as written, and what they print is what the
emulator computes (each checked against its oracle here, not against a recorded output)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from emulator.compare import compare
from emulator.cost import Activity
from emulator.physics.growth import fit_chips
from emulator.sensitivity import sensitivity
from emulator.spec import load_chip, load_network, with_fields
from emulator.train import run_training

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(name: str, cwd: Path, *args: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.splitlines()


def _value(lines: list[str], key: str) -> str:
    (line,) = [line for line in lines if line.startswith(f"{key}: ")]
    return line.split(": ", 1)[1]


def test_every_example_is_tested() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == [
        "compare_my_network.py",
        "sweep_a_chip_field.py",
        "train_on_the_edge_chip.py",
    ]


def test_training_on_the_edge_chip_gives_the_reference_s_weights(tmp_path: Path) -> None:
    lines = _run("train_on_the_edge_chip.py", tmp_path)
    reference = run_training(
        load_network("digits-mlp"),
        chip=load_chip("pipesdfa-edge"),
        dataset="digits",
        data=None,
        algorithm="sdfa",
        seed=0,
        epochs=2,
    )
    assert _value(lines, "weights sha256") == reference["weights_sha256"]
    assert _value(lines, "test accuracy") == f"{reference['test_accuracy']:.4f}"
    assert int(_value(lines, "emulated cycles")) > 0
    assert float(_value(lines, "speedup vs pipelayer")) > 0


def test_the_sweep_prints_the_cost_model_s_points_and_plots_them(tmp_path: Path) -> None:
    lines = _run("sweep_a_chip_field.py", tmp_path, "out.png")
    net = load_network("nmnist-mlp3")
    for rows, line in zip((64, 128, 256), lines, strict=False):
        chips = [
            with_fields(load_chip(n), {"crossbar.rows": rows})
            for n in ("pipesdfa-edge", "pipelayer")
        ]
        a, b = fit_chips(net, *chips)
        r = compare(net, a, b, Activity.uniform(net, 0.1), batch=net.training.batch)
        m = re.match(
            r"rows (\d+): mesh (\S+), (\S+) samples/s, speedup (\S+), energy ratio (\S+)", line
        )
        assert m is not None, line
        assert (int(m[1]), m[2]) == (rows, a.noc.mesh)
        assert float(m[3]) == pytest.approx(1e9 / r["pipesdfa"]["time_ns_per_sample"], rel=1e-5)
        assert float(m[4]) == pytest.approx(r["speedup"], rel=1e-3)
        assert float(m[5]) == pytest.approx(r["energy_ratio"], rel=1e-3)
    assert lines[-1] == "plot: out.png" and (tmp_path / "out.png").stat().st_size > 0


def test_comparing_one_s_own_network(tmp_path: Path) -> None:
    lines = _run("compare_my_network.py", tmp_path)
    source = (EXAMPLES / "compare_my_network.py").read_text()
    text = re.search(r'NETWORK = """(.*?)"""', source, re.S)
    assert text is not None
    (tmp_path / "net.yaml").write_text(text[1])
    net = load_network(tmp_path / "net.yaml")
    activity, chip = Activity.uniform(net, 0.1), load_chip("pipesdfa-edge")
    for name, line in zip(("pipelayer", "pipelayer-edge"), lines, strict=False):
        a, b = fit_chips(net, chip, load_chip(name))
        r = compare(net, a, b, activity, batch=net.training.batch)
        assert (
            line == f"vs {name}: speedup {r['speedup']:.4g}, energy ratio {r['energy_ratio']:.4g}"
        )
    rows = sensitivity(net, chip, load_chip("pipelayer"), activity, batch=net.training.batch)
    fields = [line.split(" ", 1)[0] for line in lines[2:]]
    assert fields == [row["field"] for row in rows["sensitivity"][:3]]
