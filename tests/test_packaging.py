"""The package installs as a wheel (not editable) and runs from anywhere: the shipped chip and
network files travel inside it (``emulator/spec/presets``, package data).

Nothing here may come from the base interpreter the environment under test was made from (a
fresh venv's base has an old setuptools, no ``wheel`` and no ``ray``): the wheel is built by
the interpreter under test, and the new environment sees the dependencies of that interpreter
only, never the base's site-packages.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PIP = (sys.executable, "-m", "pip")


def _site_dirs() -> list[str]:
    """The interpreter under test's own site-packages (its dependencies, not the base's)."""
    paths = sysconfig.get_paths()
    return sorted({paths["purelib"], paths["platlib"]})


def _run(argv: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=timeout)


@pytest.mark.slow
def test_a_non_editable_install_runs_the_main_job(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    built = _run(
        [*PIP, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(ROOT)],
        cwd=tmp_path,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = wheels.glob("pipesdfa_emulator-*.whl")

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=False, with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    env_site = _run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        cwd=tmp_path,
    ).stdout.strip()
    # A .pth line only puts a folder on sys.path: the .pth files inside it (the editable
    # checkout's finder among them) are not run, so `emulator` can come from the wheel only.
    Path(env_site, "under-test.pth").write_text("\n".join(_site_dirs()) + "\n")
    installed = _run(
        [*PIP, "--python", str(python), "install", "--quiet", "--no-deps", str(wheel)],
        cwd=tmp_path,
    )
    assert installed.returncode == 0, installed.stderr[-2000:]

    probe = (
        "import json, sys, emulator, ray; "
        "print(json.dumps([emulator.__file__, ray.__file__, sys.path]))"
    )
    where = _run([str(python), "-c", probe], cwd=tmp_path)
    assert where.returncode == 0, where.stderr[-2000:]
    emulator_file, ray_file, path = json.loads(where.stdout)
    assert Path(emulator_file).is_relative_to(env_dir)  # the wheel, not the checkout
    assert any(Path(ray_file).is_relative_to(d) for d in _site_dirs())  # the env under test's
    base_site = sysconfig.get_paths(vars={"base": sys.base_prefix, "platbase": sys.base_prefix})
    if sys.prefix != sys.base_prefix:  # under a venv, its base's site-packages stays unseen
        assert base_site["purelib"] not in path

    pipesdfa = env_dir / "bin" / "pipesdfa"
    run = _run([str(pipesdfa), "run", "--runtime", "local", "--epochs", "1", "--json"], tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout)
    assert (result["network"], result["chip"]) == ("digits-mlp", "pipesdfa-edge")
    assert result["comparison"]["baseline"] == "pipelayer"  # a base: file, found inside too
    shipped = _run(
        [str(pipesdfa), "map", "--chip", "pipelayer-edge", "--network", "tiny-conv", "--json"],
        cwd=tmp_path,
        timeout=60,
    )
    assert shipped.returncode == 0, shipped.stderr
