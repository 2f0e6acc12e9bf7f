"""Checkpoints, resume and actor-failure recovery: a run that was checkpointed, stopped and
resumed, or that lost an actor, ends with the bits of an undisturbed run (whose weights,
accuracies and crossbar counters are the reference model's); bad checkpoints are refused."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import emulator.runtime.checkpoint as ckpt
from emulator.cli import main
from emulator.run import run_emulation
from emulator.runtime.local import LocalRuntime
from emulator.runtime.session import RunFailed
from emulator.spec import load_chip, load_network
from emulator.train import run_training

NETWORK, CHIP = "tiny-mlp", "tiny"
SAME = ("weights_sha256", "train_accuracy", "test_accuracy", "loss", "counters", "faults")
TIMELINE = ("time_ns", "cycles", "energy_pj", "energy_breakdown_pj", "ops", "comparison")


def _run(**kw: Any) -> dict[str, Any]:
    return run_emulation(load_network(NETWORK), load_chip(CHIP), epochs=1, **kw)


@pytest.fixture(scope="module")
def undisturbed() -> dict[str, Any]:
    """The run without checkpoints, checked against the reference model."""
    result = _run(runtime="local")
    reference = run_training(
        load_network(NETWORK),
        chip=load_chip(CHIP),
        dataset="digits",
        data=None,
        algorithm="sdfa",
        seed=0,
        epochs=1,
    )
    for key in ("weights_sha256", "train_accuracy", "test_accuracy", "counters"):
        assert result[key] == reference[key]
    return result


def _same_run(result: dict[str, Any], undisturbed: dict[str, Any]) -> None:
    for key in SAME + TIMELINE:
        assert result[key] == undisturbed[key], key


# ------------------------------------------------------------------------------- codec


def test_state_codec_is_bit_exact_and_refuses_objects() -> None:
    rng = np.random.default_rng(1)
    state = {
        3: {"g": rng.normal(size=(4, 3, 2)), "levels": rng.integers(0, 4, (5,)), "n": 7},
        "flags": np.array([True, False]),
        "x": [np.float64(0.1), np.int64(-2)],
    }
    back = ckpt.unpack(ckpt.pack(state))
    assert back[3]["g"].tobytes() == state[3]["g"].tobytes()
    assert back[3]["levels"].dtype == np.int64 and back[3]["n"] == 7
    assert back["flags"].tolist() == [True, False] and back["x"] == [0.1, -2]
    with pytest.raises(TypeError, match="object"):
        ckpt.pack({"a": np.array([object()])})
    with pytest.raises(ValueError, match="not a checkpoint state"):
        ckpt.unpack(b"\xc1 not msgpack")


# ------------------------------------------------------------------- save, keep, resume


def test_checkpoints_resume_to_the_undisturbed_run(tmp_path: Path, undisturbed: dict) -> None:
    saved = _run(runtime="local", checkpoint_dir=str(tmp_path), checkpoint_every=10)
    _same_run(saved, undisturbed)  # draining the chip at each checkpoint changes nothing
    batches = -(-1437 // 32)  # digits' training split, tiny-mlp's batch
    assert saved["checkpoints"]["last_after_batch"] == batches
    assert saved["checkpoints"]["saved"] == len(range(10, batches, 10)) + 1
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert kept == [".lock", "ckpt-000040", f"ckpt-{batches:06d}", "latest"]  # keep=2
    assert (tmp_path / "latest").read_text().strip() == f"ckpt-{batches:06d}"
    manifest = json.loads((tmp_path / "ckpt-000040" / "manifest.json").read_text())
    assert manifest["batches_done"] == 40 and manifest["samples_done"] == 40 * 32

    resumed = _run(runtime="local", resume=str(tmp_path / "ckpt-000040"))
    _same_run(resumed, undisturbed)
    assert resumed["checkpoints"]["resumed_from_batch"] == 40
    assert resumed["frames"] < undisturbed["frames"] / 4  # only the last batches were run


def test_a_checkpoint_resumes_in_another_runtime(
    tmp_path: Path, undisturbed: dict, ray_cluster: None
) -> None:
    _run(runtime="local", frame_samples=8, checkpoint_dir=str(tmp_path), checkpoint_every=20)
    resumed = _run(runtime="ray", frame_samples=8, cores_per_actor=2, resume=str(tmp_path))
    _same_run(resumed, undisturbed)  # 8-sample windows stamp the same ops in another order
    assert resumed["checkpoints"]["resumed_from_batch"] == 45  # `latest`: after training


def test_a_crash_while_saving_leaves_the_last_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _run(runtime="local", checkpoint_dir=str(tmp_path), checkpoint_every=20)
    before = ckpt.load(tmp_path)[0].batches_done
    replace = os.replace

    def crash(src: Any, dst: Any) -> None:
        if Path(dst).name.startswith("ckpt-"):
            raise OSError("power cut")
        replace(src, dst)

    monkeypatch.setattr(ckpt.os, "replace", crash)
    manifest, state, folder = ckpt.load(tmp_path)
    with pytest.raises(OSError, match="power cut"):
        ckpt.save(tmp_path, manifest.model_copy(update={"batches_done": 99}), {}, state["cores"])
    assert ckpt.load(tmp_path)[0].batches_done == before  # `latest` still names a whole one
    assert folder.name == f"ckpt-{before:06d}"


# -------------------------------------------------------------------------- refusals


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ckpt")
    _run(runtime="local", checkpoint_dir=str(folder), checkpoint_every=40)
    return folder


def _copy(saved: Path, tmp_path: Path) -> Path:
    import shutil

    shutil.copytree(saved, tmp_path / "c")
    return tmp_path / "c"


def _latest(folder: Path) -> Path:
    return folder / (folder / "latest").read_text().strip()


def test_a_corrupt_state_file_is_refused(saved: Path, tmp_path: Path) -> None:
    folder = _copy(saved, tmp_path)
    state = _latest(folder) / "state.msgpack"
    data = bytearray(state.read_bytes())
    data[len(data) // 2] ^= 0xFF
    state.write_bytes(bytes(data))
    with pytest.raises(ckpt.CheckpointError, match=r"state\.msgpack: corrupt: .* the manifest"):
        _run(runtime="local", resume=str(folder))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: "{ not json", r"manifest\.json: not JSON"),
        (lambda m: json.dumps(m | {"version": 7}), rf"version: 7; .* reads version {ckpt.VERSION}"),
        (lambda m: json.dumps(m | {"batches_done": -1}), r"manifest\.json: batches_done: "),
        (lambda m: json.dumps({k: v for k, v in m.items() if k != "files"}), r"files: Field"),
        (
            lambda m: json.dumps(m | {"files": {"../state.msgpack": m["files"]["state.msgpack"]}}),
            r"manifest\.json: files\.\.\./state\.msgpack\.\[key\]: String should match",
        ),
    ],
)
def test_a_bad_manifest_is_refused(saved: Path, tmp_path: Path, edit: Any, message: str) -> None:
    folder = _copy(saved, tmp_path)
    manifest = _latest(folder) / "manifest.json"
    manifest.write_text(edit(json.loads(manifest.read_text())))
    with pytest.raises(ckpt.CheckpointError, match=message):
        _run(runtime="local", resume=str(folder))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"seed": 1}, r"made by a different run: config\.seed: the checkpoint has 0, this run 1"),
        ({"lr": 0.5}, r"config\.lr: the checkpoint has 0\.01, this run 0\.5"),
        ({"frame_samples": 8}, r"config\.frame_samples: the checkpoint has None, this run 8"),
    ],
)
def test_a_checkpoint_of_another_run_is_refused(saved: Path, change: dict, message: str) -> None:
    with pytest.raises(ckpt.CheckpointError, match=message):
        _run(runtime="local", resume=str(saved), **change)


def test_a_checkpoint_written_before_a_field_existed_is_the_run_with_its_default() -> None:
    """A network saved without ``training.eval_batch`` (written before the field existed)
    ran with the default, 256: it matches a run stating 256, not one asking for 8."""
    network = load_network(NETWORK).model_dump(mode="json")
    identity = {
        "network": network,
        "chip": load_chip(CHIP).model_dump(mode="json"),
        "dataset": "digits",
        "data": None,
        "algorithm": "sdfa",
        "epochs": 1,
        "batch": 32,
        "lr": 0.01,
        "optimizer": "adam",
        "seed": 0,
        "frame_samples": None,
    }
    old = json.loads(json.dumps(identity))
    del old["network"]["training"]["eval_batch"]
    saved = ckpt.RunIdentity.model_validate(old)
    assert ckpt.mismatch(saved, ckpt.RunIdentity.model_validate(identity)) is None
    network["training"]["eval_batch"] = 8
    wanted = ckpt.RunIdentity.model_validate(identity)
    assert ckpt.mismatch(saved, wanted) == (
        "config.network.training.eval_batch: the checkpoint has 256, this run 8"
    )


def test_a_resumed_run_does_not_save_into_another_run_s_folder(saved: Path, tmp_path: Path) -> None:
    """--resume A --checkpoint B where B holds another run's checkpoints: refused before
    training, B untouched (its saves would have pruned them and moved ``latest``)."""
    config = ckpt.load(saved)[0].config
    assert ckpt.foreign_checkpoints(saved, config) == []  # the run's own: none foreign
    other = _copy(saved, tmp_path)
    for manifest in other.glob("ckpt-*/manifest.json"):  # another run's: seed 1
        data = json.loads(manifest.read_text())
        data["config"]["seed"] = 1
        manifest.write_text(json.dumps(data))
    before = sorted(p.name for p in other.iterdir()), (other / "latest").read_text()
    message = r"holds checkpoints of another run \(ckpt-\d+: config\.seed: the checkpoint has 1"
    with pytest.raises(ckpt.CheckpointError, match=message):
        _run(runtime="local", resume=str(saved), checkpoint_dir=str(other))
    assert (sorted(p.name for p in other.iterdir()), (other / "latest").read_text()) == before


def test_a_finished_run_goes_on_for_more_epochs(saved: Path, tmp_path: Path) -> None:
    """Epoch e's batches do not depend on how many epochs follow: the checkpoint after a
    1-epoch run's training resumes as a 2-epoch run, which must equal the reference's."""
    folder = _copy(saved, tmp_path)
    net, chip = load_network(NETWORK), load_chip(CHIP)
    longer = run_emulation(net, chip, runtime="local", epochs=2, resume=str(folder))
    reference = run_training(
        net, chip=chip, dataset="digits", data=None, algorithm="sdfa", seed=0, epochs=2
    )
    for key in ("weights_sha256", "train_accuracy", "test_accuracy", "counters"):
        assert longer[key] == reference[key], key
    assert longer["checkpoints"]["resumed_from_batch"] == 45
    assert longer["checkpoints"]["last_after_batch"] == 90
    with pytest.raises(ckpt.CheckpointError, match="batches_done: 90 training batches, past"):
        _run(runtime="local", resume=str(folder))  # 1 epoch: that checkpoint is after its end


def test_another_chip_and_missing_folders_are_refused(saved: Path, tmp_path: Path) -> None:
    with pytest.raises(ckpt.CheckpointError, match=r"config\.chip\.name: the checkpoint has"):
        run_emulation(
            load_network(NETWORK), load_chip("pipesdfa-edge"), epochs=1, resume=str(saved)
        )
    with pytest.raises(ckpt.CheckpointError, match="no such checkpoint folder"):
        _run(runtime="local", resume=str(tmp_path / "nowhere"))
    with pytest.raises(ckpt.CheckpointError, match=r"not a checkpoint \(no manifest\.json"):
        _run(runtime="local", resume=str(tmp_path))
    with pytest.raises(ckpt.CheckpointError, match="holds checkpoints of an earlier run"):
        _run(runtime="local", checkpoint_dir=str(saved))  # nothing is overwritten


@pytest.mark.parametrize("runtime", ["local", "ray"])
def test_a_core_state_that_does_not_fit_is_refused(
    saved: Path, tmp_path: Path, runtime: str, ray_cluster: None
) -> None:
    """A checkpoint whose checksums hold but whose PE state has the wrong shape (written by
    another emulator version, say): refused naming the core, in either runtime."""
    folder = _copy(saved, tmp_path)
    manifest, state, _ = ckpt.load(folder)
    pe = ckpt.unpack(state["cores"]["pe-0-0"])
    g = pe["bank"]["conductances"][0]
    pe["bank"]["conductances"][0] = g[:-1]
    cores = state["cores"] | {"pe-0-0": ckpt.pack(pe)}
    ckpt.save(folder, manifest, state["controller"], cores)
    with pytest.raises(ckpt.CheckpointError, match=r"pe-0-0: its saved state does not fit: .*"):
        _run(runtime=runtime, resume=str(folder))


def test_the_checkpoint_command_checks_and_describes(
    saved: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["checkpoint", str(saved), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["path"] == str(saved / "ckpt-000045")  # `latest`
    assert (info["batches_done"], info["train_batches"], info["samples_done"]) == (45, 45, 1437)
    assert info["run"]["network"] == NETWORK and info["run"]["chip"] == CHIP
    assert info["run"]["seed"] == 0 and info["cores"] == 5
    assert info["checkpoints"] == ["ckpt-000040", "ckpt-000045"]
    assert info["bytes"] == (saved / "ckpt-000045" / "state.msgpack").stat().st_size
    folder = _copy(saved, tmp_path)
    (_latest(folder) / "state.msgpack").write_bytes(b"garbage")
    assert main(["checkpoint", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pipesdfa checkpoint: ") and "state.msgpack: corrupt" in err


def test_the_cli_refuses_a_bad_checkpoint_in_one_line(
    saved: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    folder = _copy(saved, tmp_path)
    (_latest(folder) / "state.msgpack").write_bytes(b"garbage")
    argv = ["run", "--runtime", "local", "--chip", CHIP, "--network", NETWORK, "--epochs", "1"]
    assert main([*argv, "--resume", str(folder), "--json"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pipesdfa run: ") and "state.msgpack: corrupt" in err
    assert len(err.splitlines()) == 1


# ---------------------------------------------------------------- settling and bounds


def test_cores_keep_no_timing_of_finished_batches() -> None:
    from emulator.chip import Controller
    from emulator.chip.plan import Plan
    from emulator.train import load_for

    net, chip = load_network(NETWORK), load_chip(CHIP)
    plan = Plan(chip, net, 0, "sdfa", net.training.lr, net.training.optimizer)
    data = load_for(net, "digits", None, 0)
    controller = Controller(plan, data, epochs=1, batch=32, frame_samples=None)
    runtime = LocalRuntime(plan)
    runtime.run(controller)
    for name in plan.tiles:
        tile = runtime.cores[name]
        assert tile.settled(controller.train_batches, controller.samples)
        for home in tile.homes.values():
            assert not (home.neuron_end or home.active or home.grad_end)  # memory is bounded
            assert home.trained == controller.samples
    homes = [n for n in plan.tiles if runtime.cores[n].homes]
    assert homes and not any(
        runtime.cores[n].settled(controller.train_batches + 1, 0) for n in homes
    )


# ------------------------------------------------------------------- actor failures


@pytest.mark.parametrize(
    ("core", "every", "cores_per_actor", "actor", "restored"),
    [
        ("pe-0-0", 1, 1, "pe-0-0", 2),  # a PE core's actor, from the checkpoint after batch 2
        ("tile-0", None, 2, "cores-0", 0),  # a tile's (the controller's peer), from the start
    ],
)
def test_a_dead_actor_is_restarted_and_the_run_ends_undisturbed(
    core: str,
    every: int | None,
    cores_per_actor: int,
    actor: str,
    restored: int,
    undisturbed: dict,
    ray_cluster: None,
) -> None:
    result = _run(
        runtime="ray",
        inject_failure=(core, 2),
        checkpoint_every=every,
        cores_per_actor=cores_per_actor,
    )
    _same_run(result, undisturbed)
    (recovery,) = result["recoveries"]
    assert recovery["actors"] == [actor]
    assert recovery["restored_to_batch"] == restored
    assert recovery["replayed_batches"] >= 3 - restored  # batch 2 was in the chip
    assert actor in {p["actor"] for p in result["placement"]}  # started again, same name


def test_recovery_with_windows_in_flight_mid_batch(undisturbed: dict, ray_cluster: None) -> None:
    """8-sample windows: when the actor dies, parts of a batch are in several cores; all of it
    is rolled back and replayed."""
    crashed = _run(runtime="ray", frame_samples=8, inject_failure=("pe-0-1", 7), checkpoint_every=5)
    _same_run(crashed, undisturbed)
    assert [r["restored_to_batch"] for r in crashed["recoveries"]] == [5]


def test_a_run_gives_up_after_max_restarts(ray_cluster: None) -> None:
    with pytest.raises(RunFailed, match=r"died after 0 restarts \(--max-restarts 0\)"):
        _run(runtime="ray", inject_failure=("pe-0-0", 1), max_restarts=0)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"runtime": "local"}, "needs the Ray runtime"),
        ({"runtime": "ray", "inject_failure": ("pe-9-9", 1)}, "no core named 'pe-9-9'"),
        ({"runtime": "ray", "inject_failure": ("pe-0-0", 45)}, r"batch 45 is not in .* 45 train"),
    ],
)
def test_a_bad_failure_injection_is_refused(kw: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _run(**({"inject_failure": ("pe-0-0", 1)} | kw))


def test_the_cli_checkpoints_resumes_and_survives_a_crash(
    tmp_path: Path, undisturbed: dict, ray_cluster: None, capsys: pytest.CaptureFixture
) -> None:
    argv = ["run", "--chip", CHIP, "--network", NETWORK, "--epochs", "1", "--json"]
    saving = ["--runtime", "local", "--checkpoint", str(tmp_path), "--checkpoint-every", "20"]
    saving += ["--checkpoint-keep", "3"]  # 20, 40 and 45
    assert main([*argv, *saving]) == 0
    first = json.loads(capsys.readouterr().out)
    crash = ["--resume", str(tmp_path / "ckpt-000020"), "--inject-actor-failure", "pe-0-0@30"]
    assert main([*argv, *crash]) == 0
    out, err = capsys.readouterr()
    assert "run: actor pe-0-0 died: started again, every core back to training batch 20" in err
    resumed = json.loads(out)  # stdout holds the answer alone, though Ray reported a dead worker
    assert first["weights_sha256"] == resumed["weights_sha256"] == undisturbed["weights_sha256"]
    assert resumed["checkpoints"]["resumed_from_batch"] == 20
    (recovery,) = resumed["recoveries"]
    assert recovery["restored_to_batch"] == 20  # the checkpoint it resumed from
    assert (tmp_path / "latest").read_text().strip() == "ckpt-000045"  # saved over, whole


# ------------------------------------------------------------------------------ fuzz

_DTYPES = st.sampled_from(["<f8", "<i8", "|b1", "|u1", "|O", "<U3", "<M8[s]", "bogus", 7])
_ARRAYS = st.builds(
    lambda dtype, shape, raw: msgpack.ExtType(1, msgpack.packb([dtype, shape, raw])),
    _DTYPES,
    st.one_of(st.lists(st.integers(-2, 9), max_size=3), st.text(max_size=3), st.none()),
    st.binary(max_size=64),
)


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=256),
        st.builds(
            lambda ext, junk: msgpack.packb({"cores": {"pe-0-0": ext}, "x": junk}),
            st.one_of(_ARRAYS, st.integers(0, 127).map(lambda c: msgpack.ExtType(c, b"\x00"))),
            st.binary(max_size=16),
        ),
    )
)
def test_a_checkpoint_state_decodes_to_data_or_a_value_error(data: bytes) -> None:
    """Whatever a state file holds, reading it gives data or one ValueError: never another
    exception, never an array of objects."""
    try:
        state = ckpt.unpack(data)
    except ValueError as err:
        assert str(err).startswith("not a checkpoint state")
        return
    assert all(a.dtype.kind in "biuf" for a in _arrays(state))


def _arrays(value: Any) -> list[np.ndarray]:
    if isinstance(value, np.ndarray):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return [a for v in value for a in _arrays(v)]
    return []


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--max-restarts", "-1"], "--max-restarts: must be >= 0, got -1"),
        (["--inject-actor-failure", "pe-0-0"], "expected CORE@BATCH (e.g. pe-0-1@2)"),
        (["--checkpoint-every", "0"], "--checkpoint-every: must be positive, got 0"),
    ],
)
def test_bad_recovery_options_are_refused_before_ray_starts(
    option: list[str], message: str, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["run", *option])
    assert stop.value.code == 2 and message in capsys.readouterr().err


def test_an_interrupted_run_says_how_to_go_on(
    saved: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import emulator.run

    def interrupted(*args: Any, **kw: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(emulator.run, "run", interrupted)
    assert main(["run", "--runtime", "local", "--checkpoint", str(saved)]) == 130
    err = capsys.readouterr().err.strip()
    assert err == f"pipesdfa run: interrupted; go on with the same options and --resume {saved}"
    assert main(["run", "--runtime", "local"]) == 130
    assert capsys.readouterr().err.strip() == (
        "pipesdfa run: interrupted; no checkpoint to resume from (--checkpoint DIR saves them)"
    )
