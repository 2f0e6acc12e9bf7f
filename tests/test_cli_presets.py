"""Presets that explain themselves and mistakes that teach: ``presets``, ``show``,
``validate NAME``, ``--version``, suggestions for names and fields, no abbreviated options,
defaults in ``--help``."""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

from emulator import spec
from emulator.cli import main

PRESETS = Path(spec.PRESETS)


def _out(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def test_presets_lists_every_shipped_file_with_its_description(capsys) -> None:
    rows = json.loads(_out(capsys, "presets", "--json"))
    chips = sorted(f.stem for f in PRESETS.glob("*.yaml"))
    networks = sorted(f.stem for f in (PRESETS / "networks").glob("*.yaml"))
    assert [r["name"] for r in rows if r["kind"] == "chip"] == chips
    assert [r["name"] for r in rows if r["kind"] == "network"] == networks
    edge = next(r for r in rows if r["name"] == "pipesdfa-edge")
    assert edge["description"].startswith(spec.load_chip("pipesdfa-edge").description[:20])
    text = _out(capsys, "presets")
    assert all(name in text for name in chips + networks)


def test_show_prints_a_preset_with_its_base_merged_and_defaults_filled(capsys) -> None:
    """pipelayer-edge.yaml is five lines on pipesdfa-edge: shown whole, it is that chip with
    its dataflow and name changed, and it loads back as the same chip."""
    shown = yaml.safe_load(_out(capsys, "show", "pipelayer-edge"))
    raw = yaml.safe_load((PRESETS / "pipelayer-edge.yaml").read_text())
    assert "base" in raw and "base" not in shown
    assert spec.ChipSpec.model_validate(shown) == spec.load_chip("pipelayer-edge")
    edge = spec.load_chip("pipesdfa-edge").model_dump(mode="json")
    assert shown["crossbar"] == edge["crossbar"] and shown["dataflow"] == "pipelayer"
    net = json.loads(_out(capsys, "show", "digits-mlp", "--json"))
    assert spec.NetworkSpec.model_validate(net) == spec.load_network("digits-mlp")


def test_version(capsys) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"pipesdfa {version('pipesdfa-emulator')}"


def test_an_abbreviated_option_is_refused(capsys) -> None:
    with pytest.raises(SystemExit) as done:
        main(["compare", "--network", "tiny-mlp", "--baselin", "pipelayer"])
    assert done.value.code == 2 and "unrecognized arguments: --baselin" in capsys.readouterr().err


def test_help_shows_defaults(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "the PipeSDFA chip (default: pipesdfa-edge)" in text
    assert "uniform activity (default: 0.1)" in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["map", "--chip", "pipesdfa-edg", "--network", "digits-mlp"],
            "(did you mean 'pipesdfa-edge'?)",
        ),
        (["map", "--chip", "tiny", "--network", "digit-mlp"], "(did you mean 'digits-mlp'?)"),
        (["scale", "--set", "tile.pe=2,4"], "no field 'pe' in tile (did you mean 'tile.pes'?)"),
        (["scale"], "give at least one --set FIELD=v1,v2,..."),
    ],
)
def test_mistakes_get_a_hint(capsys, argv: list[str], message: str) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_a_misspelt_yaml_key_gets_the_closest_field(tmp_path: Path) -> None:
    path = tmp_path / "chip.yaml"
    path.write_text("base: tiny\nname: t\ncrossbar:\n  rowz: 64\n")
    with pytest.raises(spec.TopologyError) as err:
        spec.load_chip(path)
    assert "crossbar.rowz: Extra inputs are not permitted (did you mean 'rows'?)" in str(err.value)


def test_trace_trains_one_epoch_unless_told(capsys) -> None:
    from emulator.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["trace", "--out", "t.json"]).epochs == 1
    assert parser.parse_args(["trace", "--out", "t.json", "--epochs", "3"]).epochs == 3
    assert parser.parse_args(["run"]).epochs is None  # run keeps the network file's


def test_map_counts_read_as_english(capsys) -> None:
    first = _out(capsys, "map", "--chip", "pipesdfa-edge", "--network", "digits-mlp")
    first = first.splitlines()[0]
    assert "3 PE cores, 1 tile; " in first and "on tiles" in _out(
        capsys, "map", "--chip", "tiny", "--network", "tiny-mlp"
    )


def test_a_ray_that_cannot_start_is_one_line_naming_the_limit() -> None:
    import resource

    from emulator.runtime.session import start_failure

    boom = RuntimeError("The current node timed out during startup.\nmore lines")
    free = resource.RLIM_INFINITY
    capped = start_failure(
        boom, {"RLIMIT_AS": (3_000_000 * 1024, free), "RLIMIT_NOFILE": (4096, 4096)}
    )
    assert "ulimit -v 3,000,000 KiB" in capped and capped.endswith("--runtime local")
    files = start_failure(boom, {"RLIMIT_AS": (free, free), "RLIMIT_NOFILE": (30, 4096)})
    assert "only 30 open files" in files and "ulimit -n" in files
    other = start_failure(boom, {"RLIMIT_AS": (free, free), "RLIMIT_NOFILE": (4096, 4096)})
    assert other == (
        "Ray did not start: 'The current node timed out during startup.'; or run without Ray: "
        "--runtime local"
    )
    assert all("\n" not in line for line in (capped, files, other))


def test_ray_under_an_address_space_cap_says_so_in_one_line(tmp_path: Path) -> None:
    """The real thing: `pipesdfa run` under `ulimit -v` (Ray's processes cannot map their
    memory) ends at once with one line naming the cap and --runtime local, exit 2; a cap
    that leaves room passes the check."""
    from emulator.runtime.session import MIN_ADDRESS_SPACE, check_address_space

    check_address_space(MIN_ADDRESS_SPACE)  # enough: no error
    import subprocess
    import sys

    script = "ulimit -v 3000000; exec " + f"{sys.executable} -m emulator.cli run --epochs 1"
    done = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=180
    )
    assert done.returncode == 2, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("pipesdfa run: Ray did not start: the address-space limit")
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (["run", "--runtime", "locl"], "invalid choice: 'locl' (did you mean 'local'?)"),
        (["tran"], "invalid choice: 'tran' (did you mean 'train'?)"),
        (["schema", "chp"], "(did you mean 'chip'?)"),
    ],
)
def test_a_mistyped_choice_names_the_closest(capsys, argv: list[str], hint: str) -> None:
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 2 and hint in capsys.readouterr().err


def test_a_cluster_that_refuses_the_run_says_how_to_give_its_token() -> None:
    """No token given: the line says where one goes; a token given, or auth off: no hint."""
    from emulator.runtime.session import refused

    err = ConnectionError("Failed to connect to Ray cluster at 10.0.0.1:6379\nmore")
    bare = refused("10.0.0.1:6379", err, None, {})
    assert bare.startswith("--address 10.0.0.1:6379: Ray did not connect: ")
    assert "RAY_AUTH_TOKEN_PATH" in bare and bare.endswith("--runtime local")
    given = refused("h:1", err, Path("/t"), {"RAY_AUTH_TOKEN_PATH": "/t"})
    off = refused("h:1", err, None, {"RAY_AUTH_MODE": "disabled"})
    assert "RAY_AUTH_TOKEN_PATH" not in given and "RAY_AUTH_TOKEN_PATH" not in off
    assert all("\n" not in line for line in (bare, given, off))


def test_ray_s_native_retry_warnings_are_silenced_while_it_connects(capfd) -> None:
    """What the C++ client writes to descriptor 2 while connecting goes nowhere; ours after."""
    import os

    from emulator.runtime.session import _native_stderr_quiet

    with _native_stderr_quiet():
        os.write(2, b"gcs_client.cc:210: Failed to get cluster ID\n")
    os.write(2, b"ours\n")
    assert capfd.readouterr().err == "ours\n"


def test_a_file_standing_on_a_shipped_network_is_a_network(tmp_path: Path, capsys) -> None:
    """No ``layers`` of its own, but ``base: tiny-mlp``: read as a network, not a chip."""
    path = tmp_path / "mine.yaml"
    path.write_text("base: tiny-mlp\nname: mine\ntime_steps: 6\n")
    assert _out(capsys, "validate", str(path)).strip() == f"{path}: ok (network mine)"
    assert spec.load_network(path).time_steps == 6
