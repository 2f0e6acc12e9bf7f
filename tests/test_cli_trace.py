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
    path, energy = tmp_path / "run.png", tmp_path / "energy.png"
    (tmp_path / "run-energy.png").write_text("the user's own file")  # never named: left alone
    argv = ["run", *TINY, "--plot", str(path), "--energy-plot", str(energy), "--json"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["plots"] == [str(path), str(energy)]
    assert (tmp_path / "run-energy.png").read_text() == "the user's own file"
    assert "pipeline" in _png(path)[2]["Title"]
    title = _png(energy)[2]["Title"]
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
    err = capsys.readouterr().err.strip()
    assert err.endswith(f"--plot {bad}: {bad.parent}: No such file or directory"), err


def test_an_unwritable_output_is_refused_before_the_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every option naming an output is checked before the command starts: a folder given
    as the file, a missing folder; the work never runs."""
    import emulator.commands.studies as studies

    def never(*_args: object, **_kw: object) -> None:
        raise AssertionError("the run started")

    monkeypatch.setattr(studies, "_emulate", never)
    for argv, option, path, why in [
        (["trace", *TINY, "--out"], "--out", tmp_path, "is a folder, not a file"),
        (["run", *TINY, "--energy-plot"], "--energy-plot", tmp_path / "no" / "e.png", None),
        (["train", "--activity-out"], "--activity-out", tmp_path / "no" / "a.json", None),
    ]:
        assert main([*argv, str(path)]) == 2
        err = capsys.readouterr().err.strip()
        assert f"{option} {path}: " in err
        assert err.endswith(why or "No such file or directory"), err


def test_a_failed_write_leaves_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that fails half-way (the disk says no) keeps the user's file as it was, and
    no temporary file is left; a file that existed keeps its permission bits."""
    import builtins

    from emulator.outputs import OutputError, write_atomic

    path = tmp_path / "kept.json"
    path.write_text("old")
    path.chmod(0o640)
    write_atomic(path, "new")
    assert path.read_text() == "new" and path.stat().st_mode & 0o777 == 0o640
    real_open = builtins.open

    class HalfWritten:  # the temporary file is made, then the disk fills up
        def __init__(self, file: object) -> None:
            self.file = real_open(file, "wb")  # type: ignore[call-overload]

        def __enter__(self) -> HalfWritten:
            return self

        def __exit__(self, *exc: object) -> None:
            self.file.close()

        def write(self, data: bytes) -> int:
            self.file.write(data[:2])
            raise OSError(28, "No space left on device")

    def full_disk(file: object, *args: object, **kw: object) -> object:
        if str(file).endswith(".tmp"):
            return HalfWritten(file)
        return real_open(file, *args, **kw)  # type: ignore[call-overload]

    monkeypatch.setattr(builtins, "open", full_disk)
    with pytest.raises(OutputError, match="No space left on device"):
        write_atomic(path, "half")
    monkeypatch.undo()
    assert path.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["kept.json"]
