"""The package installs as a wheel (not editable) and runs from anywhere: the shipped chip and
network files travel inside it (``emulator/spec/presets``, package data)."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_a_non_editable_install_runs_the_main_job(tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    # the dependencies come from this interpreter's site-packages; the project itself is
    # built into a wheel and installed into the new environment
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet"]
    done = subprocess.run(
        [*install, "--no-deps", "--no-build-isolation", str(ROOT)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    where = subprocess.run(
        [str(python), "-c", "import emulator; print(emulator.__file__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(env_dir)  # not the checkout
    pipesdfa = env_dir / "bin" / "pipesdfa"
    run = subprocess.run(
        [str(pipesdfa), "run", "--runtime", "local", "--epochs", "1", "--json"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout)
    assert (result["network"], result["chip"]) == ("digits-mlp", "pipesdfa-edge")
    assert result["comparison"]["baseline"] == "pipelayer"  # a base: file, found inside too
    shipped = subprocess.run(
        [str(pipesdfa), "map", "--chip", "pipelayer-edge", "--network", "tiny-conv", "--json"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert shipped.returncode == 0, shipped.stderr
