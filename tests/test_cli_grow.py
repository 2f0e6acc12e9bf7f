"""``--grow`` on run, trace, train and map: a network too big for the chip runs on the chip
grown to the smallest square mesh that holds it, the same as a chip file written that way."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emulator.cli import main

SMALL = """base: tiny
name: tiny-1x1
tiles: 1
noc: {mesh: 1x1}
tile: {pes: 1}
"""
# tiny-mlp needs 3 PE cores; one tile of one PE core holds none of it. A 2x2 mesh holds it.
GROWN = SMALL.replace("tiles: 1", "tiles: 4").replace("mesh: 1x1", "mesh: 2x2")


@pytest.fixture
def chips(tmp_path: Path) -> tuple[str, str]:
    small, grown = tmp_path / "small.yaml", tmp_path / "grown.yaml"
    small.write_text(SMALL)
    grown.write_text(GROWN)
    return str(small), str(grown)


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("command", ["map", "train", "run"])
def test_without_grow_a_network_too_big_is_one_line_naming_grow(
    chips: tuple[str, str], command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = {"map": [], "train": ["--epochs", "1"], "run": ["--runtime", "local", "--epochs", "1"]}
    argv = [command, "--chip", chips[0], "--network", "tiny-mlp", *extra[command]]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "--grow places it" in err and len(err.splitlines()) == 1


def test_map_grows_to_the_smallest_square_mesh(
    chips: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    out = _json(capsys, "map", "--chip", chips[0], "--network", "tiny-mlp", "--grow", "--json")
    assert out["chip"] == "tiny-1x1@2x2" and out["pe_cores_used"] == 3
    assert main(["map", "--chip", chips[0], "--network", "tiny-mlp", "--grow"]) == 0
    err = capsys.readouterr().err
    assert "tiny-1x1 grown to a 2x2 mesh (4 tiles) to hold tiny-mlp" in err


def test_train_and_run_on_a_grown_chip_are_the_grown_file_s(
    chips: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--network", "tiny-mlp", "--epochs", "1", "--json"]
    trained = _json(capsys, "train", "--chip", chips[0], "--grow", *common)
    by_file = _json(capsys, "train", "--chip", chips[1], *common)
    assert trained["chip"] == "tiny-1x1@2x2"
    assert trained["weights_sha256"] == by_file["weights_sha256"]
    assert trained["counters"] == by_file["counters"]
    ran = _json(capsys, "run", "--chip", chips[0], "--grow", "--runtime", "local", *common)
    assert ran["chip"] == "tiny-1x1@2x2"
    assert ran["weights_sha256"] == trained["weights_sha256"]  # the reference's bits
    assert ran["comparison"]["baseline"].endswith("@2x2")  # the baseline grown alike


def test_trace_grows_too(
    chips: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "trace.json"
    argv = ["trace", "--chip", chips[0], "--network", "tiny-mlp", "--runtime", "local"]
    summary = _json(capsys, *argv, "--grow", "--epochs", "1", "--out", str(out), "--json")
    assert summary["trace"] == str(out) and out.stat().st_size > 0
    names = {e.get("args", {}).get("name") for e in json.loads(out.read_text())["traceEvents"]}
    assert any(str(n).startswith("tile-") for n in names if n)
