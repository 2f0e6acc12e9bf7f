"""Hostile input and unkind operators: every resource bounded, nothing leaked, no hang.

Each test stands for one row of the README's reliability table: what was tried, and what
the user must see. A refusal must come before the allocation or the wait (the tests give
inputs that would take petabytes, or block for ever, if read as they claim).
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import emulator.runtime.checkpoint as ckpt
from emulator.cli import main
from emulator.cost import Activity
from emulator.cost.model import CostModel
from emulator.cost.schedule import _Average, _schedule, op_count
from emulator.data.datasets import DatasetError, load_dataset
from emulator.learning.needs import training_needs
from emulator.limits import (
    OP_BYTES,
    LimitError,
    check_fits,
    excerpt,
    read_regular,
)
from emulator.run import run_emulation
from emulator.runtime.ray_runtime import ACTOR_BYTES
from emulator.runtime.session import (
    SessionError,
    is_loopback,
    prepare_token,
    sweep_stale,
)
from emulator.spec import TopologyError, load_chip, load_network
from emulator.train import run_training

SECRET = "$6$s3cr3tSALT$hashhashhashhash"


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


def _finishes(work: Callable[[], Any], seconds: float = 20.0) -> Any:
    """``work()``'s result or exception, failing the test (not hanging it) past ``seconds``."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = work()
        except BaseException as err:
            box["error"] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s: it blocks"
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _yaml(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# ------------------------------------------------------------- 1. the Ray token


def test_a_local_run_gets_a_private_token_made_before_ray(tmp_path: Path) -> None:
    env: dict[str, str] = {"XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    path = prepare_token(env, local=True)
    assert path == tmp_path / "cfg" / "pipesdfa" / "ray-token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert env["RAY_AUTH_MODE"] == "token" and env["RAY_AUTH_TOKEN_PATH"] == str(path)
    token = path.read_text()
    assert len(token) == 64 and prepare_token(dict(env), local=True) == path
    assert path.read_text() == token  # made once, then reused


@pytest.mark.parametrize("local", [True, False])
def test_a_token_file_others_can_read_is_refused(tmp_path: Path, local: bool) -> None:
    token = tmp_path / "token"
    token.write_text("x" * 64)
    token.chmod(0o644)
    env = {"RAY_AUTH_TOKEN_PATH": str(token)}
    with pytest.raises(SessionError, match=r"readable by other users \(mode 0644\).*chmod 600"):
        prepare_token(env, local=local)
    token.chmod(0o600)
    assert prepare_token(env, local=local) == token


def test_rays_default_token_is_checked_for_a_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("y" * 64)
    (tmp_path / ".ray" / "auth_token").chmod(0o644)
    with pytest.raises(SessionError, match=r"auth_token: the Ray token is readable"):
        prepare_token({}, local=False)
    assert prepare_token({"RAY_AUTH_MODE": "disabled"}, local=False) is None  # user's choice


# --------------------------------------------------- 2. an address with nothing behind it


def _clean_env(home: Path) -> dict[str, str]:
    """This environment for a fresh ``pipesdfa`` process with its own home: no Ray token
    settings of this test process (the session's Ray set them) or the user's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    return env | {"HOME": str(home), "XDG_CONFIG_HOME": str(home / "cfg")}


def _pipesdfa(*argv: str, home: Path, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "emulator.cli", *argv],
        capture_output=True,
        text=True,
        env=_clean_env(home),
        timeout=timeout,
    )


def test_an_address_nobody_answers_fails_fast(tmp_path: Path) -> None:
    start = time.monotonic()
    done = _pipesdfa("run", "--address", "127.0.0.1:1", "--epochs", "1", home=tmp_path)
    assert done.returncode == 2 and time.monotonic() - start < 20
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("pipesdfa run: --address 127.0.0.1:1: cannot connect")


def test_an_address_that_never_lets_the_run_in_gives_up(tmp_path: Path) -> None:
    """A port that accepts and says nothing (not a Ray head): Ray's client would wait for
    ever inside C++; the run ends, exit 2, after --connect-timeout and a short grace."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    port = server.getsockname()[1]
    start = time.monotonic()
    try:
        done = _pipesdfa(
            *("run", "--address", f"127.0.0.1:{port}", "--connect-timeout", "1"),
            *("--epochs", "1"),
            home=tmp_path,
        )
    finally:
        server.close()
    assert done.returncode == 2
    assert time.monotonic() - start < 60
    assert f"127.0.0.1:{port}: the cluster did not let this run in within 1 s" in done.stderr


@pytest.mark.parametrize(
    ("address", "loopback"),
    [("127.0.0.1:6379", True), ("localhost:1", True), ("[::1]:6379", True), ("10.0.0.2:1", False)],
)
def test_a_loopback_address_stays_on_loopback(address: str, loopback: bool) -> None:
    assert is_loopback(address) is loopback


# ------------------------------------------------ 3. inputs that eat memory or time


@pytest.mark.parametrize("flag", ["--network", "--chip"])
def test_a_device_or_a_pipe_is_not_read_as_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str
) -> None:
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    other = ["--chip", "tiny"] if flag == "--network" else ["--network", "tiny-mlp"]
    for path, kind in ((fifo, "a named pipe"), (Path("/dev/zero"), "a character device")):
        code, err = _finishes(lambda p=path: _cli(capsys, "compare", flag, str(p), *other))
        assert code == 2 and f"{path}: {kind}, not a regular file" in err


def test_an_oversized_or_alias_bomb_file_is_refused_unread(tmp_path: Path) -> None:
    big = _yaml(tmp_path, "big.yaml", "name: x\n" + "# padding\n" * 120_000)
    with pytest.raises(TopologyError, match=r"big\.yaml: 1\.1 MiB, over the 1\.0 MiB"):
        load_network(big)
    lines = ["a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for name, prev in zip("bcdefg", "abcdef", strict=True):
        lines.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 10)}]")
    bomb = _yaml(tmp_path, "bomb.yaml", "\n".join(lines) + "\n")
    with pytest.raises(TopologyError, match=r"more than 100,000 values once its aliases"):
        _finishes(lambda: load_network(bomb), 10)


def test_reading_stops_at_the_cap_whatever_the_file_claims(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"z" * 100)
    assert read_regular(path, 100, "test file") == b"z" * 100
    with pytest.raises(LimitError, match=r"100 B, over the 99 B a test file may have"):
        read_regular(path, 99, "test file")


HUGE_STEPS = "base: digits-mlp\ntime_steps: 1000000000\n"


@pytest.mark.parametrize("command", [["train"], ["run", "--runtime", "local"], ["compare"]])
def test_a_billion_time_steps_is_refused_with_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    net = _yaml(tmp_path, "net.yaml", HUGE_STEPS)
    tracemalloc.start()
    try:
        code, err = _cli(capsys, *command, "--network", str(net))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert code == 2 and "time_steps 1,000,000,000" in err and "fewer time_steps" in err
    assert "this machine has" in err and peak < 200 * 2**20  # refused before allocating


@pytest.mark.parametrize("command", [["map"], ["compare"], ["run", "--runtime", "local"]])
def test_a_huge_mesh_is_refused_with_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    chip = _yaml(tmp_path, "chip.yaml", "base: tiny\ntiles: 100000000\nnoc: {mesh: 10000x10000}\n")
    code, err = _finishes(
        lambda: _cli(capsys, *command, "--chip", str(chip), "--network", "digits-mlp")
    )
    assert code == 2
    assert "noc.mesh 10000x10000 = 100,000,000 nodes" in err and "a smaller noc.mesh" in err


def test_growing_for_a_giant_layer_is_refused_before_growing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    net = _yaml(
        tmp_path,
        "giant.yaml",
        "base: digits-mlp\nlayers:\n  - {type: fc, out: 1000000000000}\n  - {type: fc, out: 10}\n",
    )
    code, err = _finishes(lambda: _cli(capsys, "compare", "--network", str(net), "--grow"))
    assert code == 2 and "the cut of a 64 × 1,000,000,000,000 weight matrix" in err
    assert "narrower layers" in err


def _idx(path: Path, dims: tuple[int, ...], payload: int, magic: int) -> None:
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(f">i{len(dims)}i", magic, *dims))
        block = bytes(1 << 20)
        for _ in range(payload >> 20):
            f.write(block)


def test_an_idx_gzip_bomb_is_not_inflated(tmp_path: Path) -> None:
    """The header is checked against this machine's memory before any data is read, and
    reading stops at the size the header promises."""
    _idx(tmp_path / "train-labels-idx1-ubyte.gz", (3,), 3, 0x801)
    images = tmp_path / "train-images-idx3-ubyte.gz"
    _idx(images, (10**6, 10**3, 10**3), 0, 0x803)
    with pytest.raises(DatasetError, match=r"declares 1000000x1000x1000 .* more than this"):
        load_dataset("mnist-idx", tmp_path)
    _idx(images, (3, 8, 8), 256 << 20, 0x803)  # 256 MiB of zeros behind a 192-byte header
    tracemalloc.start()
    try:
        with pytest.raises(DatasetError, match=r"declares 3x8x8 \(192 bytes .* holds more"):
            load_dataset("mnist-idx", tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20


def test_a_dataset_pickle_that_would_run_code_is_refused_unrun(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Braille pickle whose records hold an object that reduces to ``os.system``: `train`
    refuses it in one line, exit 2, before anything runs; so does a gzip bomb of one."""
    import pickle

    class Runs:
        def __reduce__(self) -> tuple:
            return (os.system, (f"touch {tmp_path / 'ran'}",))

    path = tmp_path / "data_braille_letters_th_1.pkl"
    path.write_bytes(pickle.dumps([{"letter": "A", "events": [[[0.1], []]]}, Runs()]))
    argv = ["train", "--network", "braille-3fc", "--dataset", "braille", "--data", str(path)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "asks for posix.system" in err and "\n" not in err
    assert not (tmp_path / "ran").exists()
    bomb = tmp_path / "bomb" / "data_braille_letters_th_1.pkl.gz"
    bomb.parent.mkdir()
    with gzip.open(bomb, "wb") as f:  # 300 MiB of zeros: past the 256 MiB a pickle may have
        for _ in range(300):
            f.write(bytes(1 << 20))
    assert main([*argv[:-1], str(bomb.parent)]) == 2
    assert "more than the 256.0 MiB" in capsys.readouterr().err


def test_the_estimates_bound_what_training_takes() -> None:
    """The training estimate against tracemalloc's peak of a real run: at least it, and not
    absurdly more (the refusal must not turn away what fits)."""
    net = load_network("digits-mlp").model_copy(update={"time_steps": 64})
    tracemalloc.start()
    try:
        run_training(
            net, chip=None, dataset="digits", data=None, algorithm="sdfa", seed=0, epochs=1
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    traces = training_needs(net, 32)[0].bytes
    assert traces >= peak - 60 * 2**20  # the dataset and interpreter state come on top
    assert traces <= 4 * peak


@pytest.mark.parametrize("chip_name", ["pipesdfa-edge", "pipelayer", "tiny"])
@pytest.mark.parametrize("net_name", ["digits-mlp", "tiny-conv"])
def test_the_op_count_is_the_schedules(chip_name: str, net_name: str) -> None:
    chip, net = load_chip(chip_name), load_network(net_name)
    sizes = [5, 5, 2]
    issued = _schedule(
        CostModel(chip, net), _Average(chip, net, Activity.uniform(net, 0.2)), 5, sizes
    )
    assert op_count(chip, net, sizes) == len(issued.ops)
    tracemalloc.start()
    try:
        again = _schedule(
            CostModel(chip, net), _Average(chip, net, Activity.uniform(net, 0.2)), 5, sizes
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= OP_BYTES * len(again.ops) + 2 * 2**20


def test_a_job_over_the_memory_given_names_the_largest_term() -> None:
    needs = training_needs(load_network("digits-mlp"), 32)
    check_fits(needs, available=2**40)
    with pytest.raises(
        LimitError, match=r"spike and membrane traces alone takes .*fewer time_steps"
    ):
        check_fits(needs, available=1)


# ----------------------------------------------------- 4. errors that print what they read


def test_a_wrong_file_is_not_printed_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shadow = _yaml(
        tmp_path, "shadow", "".join(f"user{i}:{SECRET}:20228:0:99999:7:::\n" for i in range(40))
    )
    code, err = _cli(capsys, "run", "--chip", str(shadow), "--runtime", "local")
    assert code == 2 and SECRET[:8] not in err and "s3cr3t" not in err
    assert len(err.splitlines()) <= 21  # at most 20 errors and a count
    assert "no field name" in err


def test_a_checkpoint_pointer_is_not_printed_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "latest").write_text(f"root:{SECRET}\n")
    code, err = _cli(capsys, "checkpoint", str(tmp_path))
    assert code == 2 and "s3cr3t" not in err and "bytes that name no checkpoint" in err
    big = tmp_path / "passwd"
    big.write_text(f"root:{SECRET}:0:0:root:/root:/bin/bash\n" * 50)
    (tmp_path / "latest").unlink()
    (tmp_path / "latest").symlink_to(big)
    code, err = _cli(capsys, "checkpoint", str(tmp_path))
    assert code == 2 and "s3cr3t" not in err and "over the 256 B a checkpoint pointer" in err


def test_an_excerpt_is_short_and_on_one_line() -> None:
    text = excerpt("line one\nline two " + "x" * 100)
    assert "\n" not in text and len(text) <= 40 and text.endswith("…")


# ------------------------------------------------------------------------ 5. checkpoints


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ckpt")
    run_emulation(
        load_network("tiny-mlp"),
        load_chip("tiny"),
        epochs=1,
        runtime="local",
        checkpoint_dir=str(folder),
        checkpoint_every=40,
    )
    return folder


def _tiny(**kw: Any) -> dict[str, Any]:
    return run_emulation(
        load_network("tiny-mlp"), load_chip("tiny"), epochs=1, runtime="local", **kw
    )


def test_checkpoints_are_private(saved: Path) -> None:
    for path in [saved, *saved.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), path


def test_a_shared_checkpoint_folder_keeps_its_mode(tmp_path: Path) -> None:
    """--checkpoint on a folder that exists (sticky and world-writable, or setgid and
    group-writable) leaves its mode as it was; what the run puts in it is private."""
    for mode in (0o1777, 0o2775):
        folder = tmp_path / f"shared-{mode:o}"
        folder.mkdir()
        folder.chmod(mode)
        _tiny(checkpoint_dir=str(folder), checkpoint_every=40)
        assert stat.S_IMODE(folder.stat().st_mode) == mode
        for path in folder.rglob("*"):
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path


def test_a_second_run_on_a_held_folder_is_refused_at_its_start(tmp_path: Path) -> None:
    held = ckpt.lock_folder(tmp_path / "c")
    batches: list[int] = []
    try:
        with pytest.raises(
            ckpt.CheckpointError, match=rf"in use by another run \(process {os.getpid()}\)"
        ):
            run_emulation(
                load_network("tiny-mlp"),
                load_chip("tiny"),
                epochs=1,
                runtime="local",
                checkpoint_dir=str(tmp_path / "c"),
                progress=lambda done, total, loss: batches.append(done),
            )
    finally:
        os.close(held)
    assert batches == []  # refused before any training
    ckpt.lock_folder(tmp_path / "c")  # free again once the holder is gone


def test_an_unusable_checkpoint_folder_is_refused_before_training() -> None:
    batches: list[int] = []
    with pytest.raises(ckpt.CheckpointError, match=r"/proc/1/nope: cannot hold checkpoints"):
        run_emulation(
            load_network("tiny-mlp"),
            load_chip("tiny"),
            epochs=1,
            runtime="local",
            checkpoint_dir="/proc/1/nope",
            progress=lambda done, total, loss: batches.append(done),
        )
    assert batches == []


@pytest.mark.parametrize(("field", "value"), [("batches_done", 0), ("config.seed", 7)])
def test_a_hand_edited_manifest_no_longer_matches_its_state(
    saved: Path, tmp_path: Path, field: str, value: int
) -> None:
    folder = tmp_path / "c"
    shutil.copytree(saved, folder)
    manifest = folder / (folder / "latest").read_text().strip() / "manifest.json"
    data = json.loads(manifest.read_text())
    *parents, leaf = field.split(".")
    node = data
    for part in parents:
        node = node[part]
    node[leaf] = value
    manifest.write_text(json.dumps(data))
    with pytest.raises(ckpt.CheckpointError, match=r"does not match the state saved with it"):
        ckpt.load(folder)


@pytest.mark.parametrize("name", ["state.msgpack", "manifest.json", "latest"])
def test_a_pipe_in_a_checkpoint_does_not_block(saved: Path, tmp_path: Path, name: str) -> None:
    folder = tmp_path / "c"
    shutil.copytree(saved, folder)
    target = (
        folder / name
        if name == "latest"
        else folder / (folder / "latest").read_text().strip() / name
    )
    target.unlink()
    os.mkfifo(target)
    with pytest.raises(ckpt.CheckpointError, match=r"a named pipe, not a regular file"):
        _finishes(lambda: ckpt.load(folder), 10)


# ----------------------------------------------------------- 6. signals and give-ups


def test_sigterm_ends_a_ray_run_like_ctrl_c_and_leaves_nothing(tmp_path: Path) -> None:
    """A local Ray run, stopped by SIGTERM once it has checkpoints: exit 143, one line saying
    how to resume; its token private, no ~/.ray token, its Ray temp folder and processes gone."""
    home = tmp_path / "home"
    home.mkdir()
    before = set(Path("/tmp").glob("pipesdfa-ray-*"))
    folder = tmp_path / "ck"
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "emulator.cli", "run", "--network", "tiny-mlp"),
            *("--chip", "tiny", "--epochs", "50", "--checkpoint", str(folder)),
            *("--checkpoint-every", "5", "--json"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=_clean_env(home),
    )
    try:
        deadline = time.monotonic() + 120
        while not (folder / "latest").exists():
            assert proc.poll() is None and time.monotonic() < deadline, "no checkpoint came"
            time.sleep(0.2)
        ours = set(Path("/tmp").glob("pipesdfa-ray-*")) - before
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143
    assert err.strip().splitlines()[-1] == (
        f"pipesdfa run: terminated; go on with the same options and --resume {folder}"
    )
    assert "Traceback" not in err
    token = home / "cfg" / "pipesdfa" / "ray-token"
    assert stat.S_IMODE(token.stat().st_mode) == 0o600
    assert not (home / ".ray").exists()
    assert len(ours) == 1 and not any(p.exists() for p in ours)


def test_giving_up_after_max_restarts_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], ray_cluster: None
) -> None:
    folder = tmp_path / "ck"
    argv = "run --network tiny-mlp --chip tiny --epochs 1 --inject-actor-failure pe-0-0@1"
    more = ("--max-restarts", "0", "--checkpoint", str(folder), "--checkpoint-every", "1")
    code, err = _cli(capsys, *argv.split(), *more)
    assert code == 1 and "Traceback" not in err
    (line,) = [x for x in err.splitlines() if x.startswith("pipesdfa run:")]
    assert "actor pe-0-0 died after 0 restarts (--max-restarts 0); the run gives up" in line
    assert line.endswith(f"--resume {folder}")


@pytest.mark.parametrize("command", ["train", "run"])
def test_a_negative_seed_names_the_option(capsys: pytest.CaptureFixture[str], command: str) -> None:
    with pytest.raises(SystemExit) as stop:
        main([command, "--seed", "-5"])
    assert stop.value.code == 2
    assert "argument --seed: must be >= 0, got -5" in capsys.readouterr().err


# --------------------------------------------------------------------- 7. smaller ones


@pytest.mark.parametrize("command", [["train"], ["run", "--runtime", "local"]])
def test_a_batch_larger_than_the_training_set_is_refused(
    capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    code, err = _cli(capsys, *command, "--batch", "100000", "--epochs", "1")
    assert code == 2 and "batch: 100,000 samples, but digits's training set has 1,437" in err


def test_the_actor_memory_estimate_covers_a_measured_actor(ray_cluster: None) -> None:
    """An actor process once the emulator's core code is imported, its PSS as Linux counts
    it: the per-actor figure the memory check uses must not be below it."""
    import ray

    @ray.remote(num_cpus=0)
    def pss() -> int:
        import emulator.runtime.ray_runtime  # noqa: F401 - what a core actor imports

        for line in Path("/proc/self/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
        return 0

    measured = ray.get(pss.remote())
    assert 0 < measured <= ACTOR_BYTES


def test_a_killed_runs_ray_folder_is_swept_by_the_next(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    stale, alive = tmp_path / "pipesdfa-ray-stale", tmp_path / "pipesdfa-ray-alive"
    for folder, pid in ((stale, dead.stdout.strip()), (alive, str(os.getpid()))):
        folder.mkdir()
        (folder / "owner.pid").write_text(pid + "\n")
    assert sweep_stale(str(tmp_path)) == [stale]
    assert not stale.exists() and alive.exists()


# ------------------------------------------------ numbers that are not numbers


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", "1e308"])
@pytest.mark.parametrize(
    ("kind", "text"),
    [
        ("chip", "base: tiny\nname: t\ndevice:\n  read_energy_pj: {v}\n"),
        ("network", "base: tiny-mlp\nname: n\ntraining:\n  lr: {v}\n"),
    ],
)
def test_a_non_finite_field_is_refused_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, text: str, value: str
) -> None:
    path = tmp_path / f"{kind}.yaml"
    path.write_text(text.format(v=value))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    field = "device.read_energy_pj" if kind == "chip" else "training.lr"
    reason = (
        "1e+308 is beyond 1e+15, the most a field may hold"
        if value == "1e308"
        else "Input should be a finite number"
    )
    assert err == f"{path}: {field}: {reason}"


def test_a_non_finite_activity_or_option_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "activity.json"
    bad.write_text('{"network": "tiny-mlp", "input_rates": [NaN, 0.1], "output_rates": [0.1, 0.1]}')
    argv = ["compare", "--network", "tiny-mlp", "--chip", "tiny", "--activity", str(bad)]
    assert main(argv) == 2
    assert "finite number" in capsys.readouterr().err
    for flag, value in (("--lr", "inf"), ("--lr", "nan")):
        with pytest.raises(SystemExit) as done:
            main(["train", "--epochs", "1", flag, value])
        assert done.value.code == 2
        assert f"must be a finite number, got {value}" in capsys.readouterr().err
