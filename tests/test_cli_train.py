"""``pipesdfa train``: JSON output, determinism, chip mode, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from emulator.cli import main

TINY = ["--network", "tiny-mlp", "--epochs", "1", "--json"]


def _train(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main(["train", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_keys_and_same_seed_same_weights(capsys: pytest.CaptureFixture[str]) -> None:
    first = _train(capsys, *TINY, "--seed", "3")
    for key in ("test_accuracy", "train_accuracy", "epochs", "algorithm", "seed", "wall_s"):
        assert key in first
    assert (first["epochs"], first["algorithm"], first["seed"]) == (1, "sdfa", 3)
    assert len(first["weights_sha256"]) == 64
    again = _train(capsys, *TINY, "--seed", "3")
    assert again["weights_sha256"] == first["weights_sha256"]
    assert again["test_accuracy"] == first["test_accuracy"]
    other = _train(capsys, *TINY, "--seed", "4")
    assert other["weights_sha256"] != first["weights_sha256"]


def test_chip_training_is_deterministic_and_counts(capsys: pytest.CaptureFixture[str]) -> None:
    args = [*TINY, "--chip", "tiny", "--batch", "64"]
    first = _train(capsys, *args)
    assert first["chip"] == "tiny"
    assert _train(capsys, *args)["weights_sha256"] == first["weights_sha256"]
    counters = first["counters"]["weights"]
    # 1437 training samples → 23 updates of 64; every forward read is one input vector.
    assert counters["pulses"] > 0 and counters["cells_written"] > 0
    assert first["counters"]["feedback"]["reads"] > 0
    assert first["energy_pj"]["feedback"]["write"] == 0.0  # the feedback is never programmed


def test_overrides_reach_the_trainer(capsys: pytest.CaptureFixture[str]) -> None:
    out = _train(
        capsys, *TINY, "--algorithm", "bptt", "--batch", "100", "--lr", "0.01", "--optimizer", "sgd"
    )
    assert (out["algorithm"], out["batch"], out["lr"], out["optimizer"]) == (
        "bptt",
        100,
        0.01,
        "sgd",
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dataset", "mnist-idx"], "mnist-idx needs --data FOLDER"),
        (["--dataset", "mnist-idx", "--data", "/no/such/dir"], "/no/such/dir"),
        (["--network", "nmnist-mlp2"], "digits: samples have 64 values"),
        (["--network", "/no/net.yaml"], "/no/net.yaml: file not found"),
        (["--chip", "nope"], "nope: no such file, and no shipped chip of that name"),
        (["--chip", "pipesdfa-edg"], "(did you mean 'pipesdfa-edge'?)"),
    ],
)
def test_bad_input_is_one_line(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["train", "--epochs", "1", *args]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_console_script_runs_as_a_module() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "emulator.cli", "validate", "tiny", "tiny-mlp", "tiny-mlq"],
        capture_output=True,
        text=True,
        check=False,
    )
    # Shipped names are validated as their files; an unknown one is named, with the closest.
    assert done.stdout.splitlines() == ["tiny: ok (chip tiny)", "tiny-mlp: ok (network tiny-mlp)"]
    assert done.returncode == 2 and "tiny-mlq: no such file" in done.stderr
    assert "(did you mean 'tiny-mlp'?)" in done.stderr


@pytest.mark.slow
def test_digits_accuracy_targets(capsys: pytest.CaptureFixture[str]) -> None:
    """The issue's targets on the embedded default: bptt ≥ 0.93; sdfa within 2 points of
    it; sdfa on the edge chip within 3 points of its own ideal-weight accuracy."""
    bptt = _train(capsys, "--algorithm", "bptt", "--json")
    sdfa = _train(capsys, "--algorithm", "sdfa", "--json")
    chip = _train(capsys, "--algorithm", "sdfa", "--chip", "pipesdfa-edge", "--json")
    assert bptt["test_accuracy"] >= 0.93
    assert sdfa["test_accuracy"] >= bptt["test_accuracy"] - 0.02
    assert chip["test_accuracy"] >= sdfa["test_accuracy"] - 0.03


@pytest.mark.slow
def test_one_percent_stuck_cells_cost_less_than_five_points(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Accuracy degrades gracefully: 1 % of the cells stuck (half at Gmin, half at Gmax)."""
    import yaml

    data = yaml.safe_load(Path("topologies/pipesdfa-edge.yaml").read_text())
    data["device"]["faults"] = {"stuck_at_gmin": 0.005, "stuck_at_gmax": 0.005, "seed": 1}
    faulty = tmp_path / "faulty.yaml"
    faulty.write_text(yaml.safe_dump(data))
    args = ["--algorithm", "sdfa", "--epochs", "8", "--json"]
    clean = _train(capsys, *args, "--chip", "pipesdfa-edge")
    stuck = _train(capsys, *args, "--chip", str(faulty))
    assert clean["faults"] == {"stuck_at_gmin": 0, "stuck_at_gmax": 0, "dead_links": []}
    cells = stuck["faults"]["stuck_at_gmin"] + stuck["faults"]["stuck_at_gmax"]
    assert 0.008 < cells / (64 * 128 * 8 + 128 * 10 * 8) < 0.012
    assert stuck["test_accuracy"] > clean["test_accuracy"] - 0.05
