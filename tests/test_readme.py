"""The README's quick start, as written: its two commands are the ones CI and a new user run,
and the first one's main job succeeds (with fewer epochs)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _quick_start() -> list[str]:
    """The shell commands of the README's quick-start section, in order."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)\n```", section, re.S)


def test_the_quick_start_has_the_two_commands_ci_runs() -> None:
    run, tests = _quick_start()
    assert run == "pip install -e . && pipesdfa run"
    assert tests == "pip install -e '.[test]' && python -m pytest -q"
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python -m pip install --quiet -e '.[test]'" in ci
    assert "\npython -m pytest -q\n" in ci  # exactly the README's test command


@pytest.mark.slow
def test_the_quick_start_s_main_job_runs_as_written(tmp_path: Path) -> None:
    run, _ = _quick_start()
    install, job = (part.strip() for part in run.split("&&"))
    assert shlex.split(install) == ["pip", "install", "-e", "."]  # this checkout, installed
    argv = shlex.split(job)
    assert argv == ["pipesdfa", "run"]
    script = Path(sys.executable).parent / "pipesdfa"
    done = subprocess.run(
        [str(script), *argv[1:], "--epochs", "1"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "test accuracy" in done.stdout and "speedup" in done.stdout
    assert "INFO" not in done.stderr and "WARNING" not in done.stderr  # Ray is quiet
