"""``pipesdfa trace`` and the ``--plot`` options, end to end on the tiny chip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emulator.cli import main
from tests.test_plots import _png

TINY = ["--runtime", "local", "--chip", "tiny", "--network", "tiny-mlp", "--epochs", "1"]


def test_trace_command_writes_a_trace_and_a_gantt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, gantt = tmp_path / "trace.json", tmp_path / "gantt.png"
    argv = ["trace", *TINY, "--out", str(out), "--samples", "2", "--plot", str(gantt), "--json"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    events = json.loads(out.read_text())["traceEvents"]
    assert summary["events"] == len(events)
    slices = [e for e in events if e["ph"] == "X"]
    assert {e["args"]["sample"] for e in slices if "sample" in e["args"]} == {0, 1}
    assert _png(gantt)[2]["Title"].startswith("Pipeline: samples 0 to 1")


def test_run_plot_writes_gantt_and_energy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "run.png"
    assert main(["run", *TINY, "--plot", str(path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["plots"] == [str(path), str(tmp_path / "run-energy.png")]
    assert "pipeline" in _png(path)[2]["Title"]
    title = _png(tmp_path / "run-energy.png")[2]["Title"]
    chips = f"PipeSDFA ({result['chip']}) vs PipeLayer ({result['comparison']['baseline']})"
    assert title == f"{result['network']}: training energy, {chips}"
    assert "ops_log" not in result


def test_compare_plot_and_unwritable_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "energy.png"
    assert main(["compare", "--network", "digits-mlp", "--plot", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["plot"] == str(path)
    title = "digits-mlp: energy per sample, PipeSDFA (pipesdfa-edge) vs PipeLayer (pipelayer)"
    assert _png(path)[2]["Title"] == title
    bad = tmp_path / "missing" / "x.png"
    assert main(["compare", "--network", "digits-mlp", "--plot", str(bad)]) == 2
    assert capsys.readouterr().err.strip().endswith(f"{bad}: No such file or directory")
