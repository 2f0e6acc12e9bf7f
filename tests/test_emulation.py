"""The distributed emulation against its oracles: the reference model (weights, accuracy,
crossbar counters) and the analytic schedule replayed on the run's activity (cycles, energy).
Every runtime, frame window, delivery order and actor grouping must give the same bits."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

import emulator.run as emulation
from emulator.chip.plan import Plan
from emulator.cli import main
from emulator.cost import simulate_run
from emulator.spec import ChipSpec, NetworkSpec, load_chip, load_network
from emulator.train import run_training

CASES = {
    "tiny": ("tiny-mlp", "tiny"),
    "edge": ("digits-mlp", "pipesdfa-edge"),
    "conv": ("tiny-conv", "tiny"),  # the feedback enters after the max-pool
}


def _reference(network: str, chip: str) -> dict[str, Any]:
    return run_training(
        load_network(network),
        chip=load_chip(chip),
        dataset="digits",
        data=None,
        algorithm="sdfa",
        seed=0,
        epochs=1,
    )


@pytest.fixture(scope="module")
def references() -> dict[str, dict[str, Any]]:
    return {case: _reference(*names) for case, names in CASES.items()}


@pytest.fixture(scope="module")
def in_process() -> dict[str, dict[str, Any]]:
    """Each case once in process, whole batches in order: the timeline the others must equal."""
    return {case: _run(case, runtime="local") for case in CASES}


def _same_timeline(result: dict[str, Any], other: dict[str, Any]) -> None:
    """Cycles, energy and NoC counters bit for bit (exact sums: windows and delivery order
    stamp the same ops in other orders)."""
    for key in ("time_ns", "cycles", "energy_pj", "energy_breakdown_pj", "noc_bits", "ops"):
        assert result[key] == other[key], key


def _run(case: str, **kw: Any) -> dict[str, Any]:
    network, chip = CASES[case]
    return emulation.run_emulation(load_network(network), load_chip(chip), epochs=1, **kw)


def _same_as_reference(result: dict[str, Any], reference: dict[str, Any]) -> None:
    assert result["weights_sha256"] == reference["weights_sha256"]
    assert result["test_accuracy"] == reference["test_accuracy"]
    assert result["train_accuracy"] == reference["train_accuracy"]
    assert result["counters"] == reference["counters"]
    assert result["faults"] == reference["faults"]


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize(("frame_samples", "shuffle"), [(None, None), (7, 5)])
def test_local_runtime_matches_the_reference(
    case: str, frame_samples: int | None, shuffle: int | None, references: dict, in_process: dict
) -> None:
    result = _run(case, runtime="local", frame_samples=frame_samples, shuffle_seed=shuffle)
    _same_as_reference(result, references[case])
    _same_timeline(result, in_process[case])
    phases = result["phases_s"]
    assert list(phases) == ["start", "train", "evaluate", "finish"]
    assert min(phases.values()) >= 0 and sum(phases.values()) <= result["wall_s"]


@pytest.mark.parametrize(
    ("case", "cores_per_actor"), [("tiny", 1), ("tiny", 2), ("edge", 1), ("edge", 2), ("conv", 2)]
)
def test_ray_runtime_matches_the_reference(
    case: str, cores_per_actor: int, references: dict, in_process: dict, ray_cluster: None
) -> None:
    result = _run(case, runtime="ray", cores_per_actor=cores_per_actor, frame_samples=16)
    _same_as_reference(result, references[case])
    _same_timeline(result, in_process[case])
    network, chip = CASES[case]
    plan = Plan(load_chip(chip), load_network(network), 0, "sdfa", 0.1, "adam")
    cores = len(plan.tiles) + len(plan.pe_cores)
    assert result["cores"] == {"tiles": len(plan.tiles), "pe_cores": len(plan.pe_cores)}
    assert result["actors"] == -(-cores // cores_per_actor)
    names = sorted(p["actor"] for p in result["placement"])
    if cores_per_actor == 1:
        assert names == sorted(plan.cores)  # tile-T and pe-T-P: one actor per core
    else:  # dealt round-robin: each layer's PE cores spread over the actors
        actors = result["actors"]
        got = {p["actor"]: p["cores"] for p in result["placement"]}
        assert got == {f"cores-{g}": plan.cores[g::actors] for g in range(actors)}
    assert sum(len(p["cores"]) for p in result["placement"]) == cores
    for p in result["placement"]:  # what each actor did and the memory it peaked at
        assert p["messages"] > 0 and p["busy_s"] > 0 and p["peak_rss_bytes"] > 2**20
        assert p["messages"] <= p["frames"]  # frames for one actor travel together


def _timeline(
    case: str,
    captured: dict,
    chip: ChipSpec | None = None,
    net: NetworkSpec | None = None,
    **kw: Any,
):
    network, chip_name = CASES[case]
    net = net or load_network(network)
    chip = chip or load_chip(chip_name)
    result = emulation.run_emulation(net, chip, runtime="local", epochs=1, **kw)
    return result, captured["timeline"], chip, net


@pytest.mark.parametrize("case", sorted(CASES))
def test_emulated_cycles_and_energy_equal_the_schedule(case: str, kept_timeline: dict) -> None:
    result, timeline, chip, net = _timeline(case, kept_timeline, frame_samples=10, shuffle_seed=1)
    oracle = simulate_run(chip, net, timeline.record)
    assert timeline.time_ps == oracle.time_ps_total  # integers, exactly
    assert result["cycles"] == round(oracle.time_ns_total * chip.clock_mhz / 1000)
    for part, value in oracle.energy_pj_total.items():
        assert timeline.energy_pj.get(part, 0.0) == pytest.approx(value, rel=1e-9, abs=1e-9)
    assert result["energy_pj"] == pytest.approx(sum(oracle.energy_pj_total.values()), rel=1e-9)
    assert timeline.counters["ops"] == oracle.counters["ops"]  # every op stamped once


def test_time_steps_off_and_a_layer_across_tiles_still_match(kept_timeline: dict) -> None:
    """A 64-96-10 network on 2-array PE cores: layer 0 spans tiles 0 and 1, so its local
    gradients run on two tiles' units and their ends travel back to its home."""
    chip = load_chip("tiny")
    chip = chip.model_copy(
        update={
            "noc": chip.noc.model_copy(update={"mesh": "2x2"}),
            "tiles": 4,
            "pe": chip.pe.model_copy(update={"crossbars": 2}),
            "pipeline": chip.pipeline.model_copy(update={"time_steps": False}),
        }
    )
    net = load_network("tiny-mlp")
    net = net.model_copy(
        update={"layers": [net.layers[0].model_copy(update={"out": 96}), net.layers[1]]}
    )
    plan = Plan(chip, net, 0, "sdfa", 0.01, "adam")
    assert len(plan.mapping.layers[0].tiles) == 2
    result, timeline, _, _ = _timeline("tiny", kept_timeline, chip=chip, net=net, shuffle_seed=2)
    oracle = simulate_run(chip, net, timeline.record)
    assert timeline.time_ps == oracle.time_ps_total
    assert result["energy_pj"] == pytest.approx(sum(oracle.energy_pj_total.values()), rel=1e-9)


def test_pipelayer_comparison_uses_the_run_activity(kept_timeline: dict) -> None:
    result = _timeline("tiny", kept_timeline)[0]
    c = result["comparison"]
    assert c["baseline"] == "pipelayer"
    assert c["speedup"] == pytest.approx(c["pipelayer"]["time_ns"] / result["time_ns"])
    assert c["energy_ratio"] == pytest.approx(c["pipelayer"]["energy_pj"] / result["energy_pj"])
    assert c["speedup"] > 1 and c["energy_ratio"] > 1


def test_run_command_json(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "run",
        "--runtime",
        "local",
        "--chip",
        "tiny",
        "--network",
        "tiny-mlp",
        "--epochs",
        "1",
        "--json",
    ]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    for key in (
        "test_accuracy",
        "weights_sha256",
        "cycles",
        "time_ns",
        "energy_pj",
        "energy_breakdown_pj",
        "packets",
        "frames",
        "noc_bits",
        "actors",
        "wall_s",
        "comparison",
    ):
        assert key in out, key
    assert set(out["comparison"]) >= {"speedup", "energy_ratio"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--chip", "pipelayer"], "the emulation runs the pipesdfa dataflow"),
        (["--network", "nmnist-mlp2"], "crossbars (weights"),
        (["--dataset", "nmnist"], "nmnist needs --data FOLDER"),
    ],
)
def test_run_refuses_what_it_cannot_do(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["run", "--runtime", "local", "--epochs", "1", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("level", ["data", "batch"])
def test_emulation_refuses_data_and_batch_ablations(level: str) -> None:
    chip = load_chip("tiny")
    chip = chip.model_copy(update={"pipeline": chip.pipeline.model_copy(update={level: False})})
    with pytest.raises(ValueError, match=f"pipeline.{level} is off"):
        Plan(chip, load_network("tiny-mlp"), 0, "sdfa", 0.01, "adam")


def _bad_messages() -> list[bytes]:
    """Not msgpack; a map that is no frame; a frame for nobody; a frame its core cannot use."""
    from emulator.chip.frames import Frame, Spikes, Window, Written, encode

    w = Window(seq=0, mode="train", version=0, event=(0, 0), first=0, size=1, total=32, base=0)
    wrong_shape = Frame.pack(
        Spikes(window=w), "controller", "tile-0", 0, 0, np.array([[[1, 0, 1]]], bool), 2
    )
    nobody = Frame.pack(Written(version=0, cells_written=0, pulses=0), "controller", "pe-9-9", 0, 0)
    return [b"\xc1garbage", encode_map({"kind": "spikes"}), encode(nobody), encode(wrong_shape)]


def encode_map(data: dict) -> bytes:
    import msgpack

    return msgpack.packb(data)


def test_malformed_frames_are_refused_counted_and_change_nothing(references: dict) -> None:
    from emulator.chip import Controller, run_sha
    from emulator.runtime.local import LocalRuntime
    from emulator.train import load_for

    net, chip = load_network("tiny-mlp"), load_chip("tiny")
    plan = Plan(chip, net, 0, "sdfa", net.training.lr, net.training.optimizer)
    controller = Controller(
        plan, load_for(net, "digits", None, 0), epochs=1, batch=32, frame_samples=None
    )
    rt = LocalRuntime(plan, shuffle_seed=4)
    rt.injected = _bad_messages()
    rt.run(controller)
    assert rt.inbox.rejected == len(rt.injected)
    assert any("unknown destination" in r for r in rt.inbox.reasons)
    assert run_sha(plan, rt.reports()) == references["tiny"]["weights_sha256"]


def test_a_ray_actor_survives_malformed_frames(references: dict, ray_cluster: None) -> None:
    import ray

    from emulator.chip import Controller, run_sha
    from emulator.runtime.ray_runtime import RayRuntime
    from emulator.train import load_for

    net, chip = load_network("tiny-mlp"), load_chip("tiny")
    plan = Plan(chip, net, 0, "sdfa", net.training.lr, net.training.optimizer)
    controller = Controller(
        plan, load_for(net, "digits", None, 0), epochs=1, batch=32, frame_samples=None
    )
    rt = RayRuntime(plan)
    try:
        ray.get(rt.actors[0].deliver.remote(_bad_messages()))  # one message of junk frames
        rt.run(controller)
        places = rt.placement()
        assert sum(p["rejected"] for p in places) == len(_bad_messages())
        assert run_sha(plan, rt.reports()) == references["tiny"]["weights_sha256"]
    finally:
        rt.shutdown()


def test_frames_beyond_the_window_credit_are_refused(references: dict) -> None:
    """Back-pressure: no core buffers more than the controller's credit of windows, so a
    frame from far ahead (a bug, or junk) is refused instead of queued for ever."""
    import numpy as np

    from emulator.chip import Controller, run_sha
    from emulator.chip.frames import Frame, Update, encode
    from emulator.runtime.local import LocalRuntime
    from emulator.train import load_for

    net, chip = load_network("tiny-mlp"), load_chip("tiny")
    plan = Plan(chip, net, 0, "sdfa", net.training.lr, net.training.optimizer)
    data = load_for(net, "digits", None, 0)
    first = Controller(plan, data, epochs=1, batch=32, frame_samples=None).start()[0]
    far = first.window.model_copy(update={"seq": plan.window_credit})
    ahead = first.model_copy(update={"header": first.header.model_copy(update={"window": far})})
    layer = plan.layers[0]
    pe = layer.pes[0]
    size = sum(layer.blocks[j].n_in * layer.blocks[j].n_out for j in layer.blocks_of(pe))
    update = Frame.pack(
        Update(event=(0, 5)), layer.home, pe, 0, 5, np.zeros((1, size), dtype=np.int64)
    )
    controller = Controller(plan, data, epochs=1, batch=32, frame_samples=None)
    rt = LocalRuntime(plan, shuffle_seed=2)
    rt.injected = [encode(ahead), encode(update)]
    rt.run(controller)
    assert rt.inbox.rejected == 2
    assert sum("outside the window credit" in r for r in rt.inbox.reasons) == 1
    assert sum("0 updates applied" in r for r in rt.inbox.reasons) == 1
    assert run_sha(plan, rt.reports()) == references["tiny"]["weights_sha256"]
    with pytest.raises(ValueError, match="need 74 windows in the chip; the plan allows 2"):
        Controller(plan, data, epochs=1, batch=32, frame_samples=7)


def test_the_run_s_json_is_its_typed_result(
    in_process: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    """``pipesdfa run --json`` is :class:`RunResult` (``pipesdfa schema run``): every key
    the schema names, no other, each value of its declared type."""
    from emulator.run import RunResult

    assert main(["schema", "run"]) == 0
    schema = json.loads(capsys.readouterr().out)
    result = in_process["tiny"]
    assert set(result) == set(schema["properties"]) - {"ops_log"}
    assert RunResult.model_validate(result).as_json() == result
    assert set(schema["required"]) == set(schema["properties"]) - {"ops_log"}
