"""``pipesdfa run``: train on the emulated chip, cores as actors (or in-process), and compare.

Builds the :class:`~emulator.chip.plan.Plan`, starts a runtime, lets the
:class:`~emulator.chip.Controller` train and evaluate, then gathers the weights (their
``weights_sha256`` is the reference's: same blocks, same order, same keyed streams), the
crossbar counters and the NoC traffic.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
)

from emulator.chip import Controller, run_sha, window_credit
from emulator.chip.plan import Plan
from emulator.compare import recorded_training
from emulator.cost import OpActivity, simulate_run
from emulator.cost.area import area_mm2, static_energy_pj
from emulator.cost.physical import counted_energy_pj
from emulator.cost.schedule import check_schedule
from emulator.learning.needs import training_needs
from emulator.limits import check_fits, mesh_need
from emulator.physics.crossbar import Counters
from emulator.physics.growth import fit_chip
from emulator.runtime.checkpoint import (
    MAX_RESTARTS,
    CheckpointError,
    Checkpoints,
    RunIdentity,
    find,
    foreign_checkpoints,
    holds_checkpoints,
)
from emulator.runtime.session import CONNECT_TIMEOUT_S, ray_session
from emulator.spec import ChipSpec, NetworkSpec, load_chip, training_options
from emulator.train import check_batch, fault_summary, load_for

Runtime = Literal["ray", "local"]
RUNTIMES: tuple[str, ...] = get_args(Runtime)


class RunConfig(BaseModel):
    """Everything one emulated run needs (``pipesdfa run``, ``trace``, ``scale --mode
    emulate``): validated once, training defaults resolved once (:meth:`resolved`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    network: NetworkSpec = Field(description="The network to train.")
    chip: ChipSpec = Field(description="The PipeSDFA chip its cores emulate.")
    dataset: str = Field("digits", description="Dataset name (emulator.data.datasets).")
    data: str | None = Field(None, description="Dataset folder, if the dataset has one.")
    runtime: Runtime = Field("ray", description="Ray actors or in-process.")
    address: str | None = Field(None, description="Ray cluster address (None: local Ray).")
    algorithm: Literal["sdfa", "sdfa-local-bptt"] = Field("sdfa", description="The rule.")
    epochs: PositiveInt | None = Field(None, description="Epochs (None: the network file's).")
    batch: PositiveInt | None = Field(None, description="Batch (None: the network file's).")
    lr: PositiveFloat | None = Field(None, description="Learning rate (None: the file's).")
    optimizer: Literal["adam", "sgd"] | None = Field(None, description="None: the file's.")
    seed: NonNegativeInt = Field(
        0, description="The run's seed: every keyed stream derives from it."
    )
    frame_samples: PositiveInt | None = Field(
        None, description="Samples per frame window (None: a whole batch)."
    )
    cores_per_actor: PositiveInt = Field(1, description="Cores sharing one Ray actor.")
    shuffle_seed: int | None = Field(
        None, description="In-process runtime: deliver frames in a shuffled order (tests)."
    )
    baseline: ChipSpec | str = Field("pipelayer", description="PipeLayer chip (file or name).")
    log_samples: NonNegativeInt = Field(0, description="Samples whose ops are logged.")
    cpus: PositiveInt | None = Field(None, description="Start Ray with this many CPUs.")
    checkpoint_dir: str | None = Field(None, description="Save checkpoints into this folder.")
    checkpoint_every: PositiveInt | None = Field(
        None, description="Training batches between checkpoints (with a folder: an epoch)."
    )
    checkpoint_keep: PositiveInt = Field(2, description="Newest checkpoints kept.")
    resume: str | None = Field(None, description="Continue the run checkpointed here.")
    inject_failure: tuple[str, NonNegativeInt] | None = Field(
        None, description="(core, training batch): crash that core's Ray actor there."
    )
    max_restarts: NonNegativeInt = Field(
        MAX_RESTARTS, description="Dead actors survived before the run gives up."
    )
    connect_timeout: PositiveFloat = Field(
        CONNECT_TIMEOUT_S, description="Seconds to reach the cluster at address."
    )
    ray_temp: str | None = Field(
        None, description="Ray's temp folder, kept (None: a private one, removed at the end)."
    )
    ray_logs: bool = Field(False, description="Show Ray's own log lines (quiet by default).")

    def resolved(self) -> RunConfig:
        """This run with the network file's training defaults filled in."""
        t = training_options(
            self.network,
            epochs=self.epochs,
            batch=self.batch,
            lr=self.lr,
            optimizer=self.optimizer,
        )
        return self.model_copy(
            update={"epochs": t.epochs, "batch": t.batch, "lr": t.lr, "optimizer": t.optimizer}
        )


class Comparison(BaseModel):
    """PipeLayer, by the cost model, on its own activity measured as the run's is."""

    baseline: str = Field(description="The PipeLayer chip (grown to hold the network).")
    activity: dict[str, str] = Field(
        description="Where each side's activity came from (pipesdfa, pipelayer): both measured."
    )
    baseline_training: dict[str, Any] = Field(
        description="The BPTT training that measured PipeLayer's activity: train_accuracy, "
        "test_accuracy, weights_sha256."
    )
    pipelayer: dict[str, Any] = Field(
        description="Its time_ns, energy_pj, energy_breakdown_pj and area_mm2 for the run's "
        "training."
    )
    speedup: float | None = Field(description="PipeLayer's time over the emulated chip's.")
    energy_ratio: float | None = Field(description="PipeLayer's energy over the chip's.")


class RunResult(BaseModel):
    """What an emulated run measured: the ``--json`` of ``pipesdfa run`` (its schema:
    ``pipesdfa schema run``)."""

    network: str = Field(description="Network name.")
    chip: str = Field(description="Chip name.")
    dataset: str = Field(description="Dataset name.")
    runtime: str = Field(description="ray or local.")
    algorithm: str = Field(description="The learning rule.")
    seed: int = Field(description="The run's seed.")
    epochs: int = Field(description="Epochs trained.")
    batch: int = Field(description="Samples per batch.")
    frame_samples: int | None = Field(description="Samples per frame window.")
    cores_per_actor: int | None = Field(description="Cores per Ray actor (None: local).")
    train_accuracy: float = Field(description="Accuracy on the training set.")
    test_accuracy: float = Field(description="Accuracy on the test set.")
    loss: float | None = Field(description="The last training batch's loss.")
    weights_sha256: str = Field(description="SHA-256 of the trained weights (README).")
    counters: dict[str, dict[str, int]] = Field(
        description="Crossbar counters of the weight arrays and of the feedback arrays."
    )
    crossbar_energy_pj: dict[str, dict[str, float]] = Field(
        description="Their cell-read, readout and write energy, pJ."
    )
    cycles: int = Field(description="Emulated training time in clock cycles.")
    time_ns: float = Field(description="Emulated training time, ns.")
    energy_pj: float = Field(description="Emulated training energy, pJ.")
    energy_breakdown_pj: dict[str, float] = Field(description="By component, pJ.")
    area_mm2: float = Field(description="The emulated chip's area, mm² (emulator.cost.area).")
    samples_trained: int = Field(description="Training samples.")
    time_ns_per_sample: float | None = Field(description="Emulated time per sample, ns.")
    energy_pj_per_sample: float | None = Field(description="Energy per sample, pJ.")
    noc_bits: float = Field(description="Emulated NoC bit-hops.")
    ops: float = Field(description="Ops stamped on the emulated timeline.")
    frames: int = Field(description="Frames the cores and the controller received.")
    packets: int = Field(description="Packets in those frames.")
    frames_rejected: int = Field(description="Malformed frames refused and counted.")
    faults: dict[str, Any] = Field(description="Stuck cells and dead links injected.")
    checkpoints: dict[str, Any] = Field(description="dir, saved, last and resumed batch.")
    recoveries: list[dict[str, Any]] = Field(description="Dead actors and what was replayed.")
    actors: int = Field(description="Ray actors (0: local).")
    cores: dict[str, int] = Field(description="Tiles and PE cores emulated.")
    placement: list[dict[str, Any]] = Field(description="Where each actor ran, its frames.")
    comparison: Comparison | None = Field(description="PipeLayer on the same activity.")
    ops_log: list[dict[str, Any]] | None = Field(
        None, description="The logged ops (with log_samples), for traces and plots."
    )
    wall_s: float = Field(description="Wall-clock seconds of the run.")
    phases_s: dict[str, float] = Field(
        description="Wall-clock seconds of its phases: start (the runtime and the cores up, "
        "the chip programmed), train, evaluate, finish (reports, timeline, comparison, the "
        "runtime down).",
    )

    def as_json(self) -> dict[str, Any]:
        """The JSON-able result (``ops_log`` only where ops were logged)."""
        return self.model_dump(mode="json", exclude={"ops_log"} if self.ops_log is None else None)


def run(
    cfg: RunConfig,
    *,
    progress: Callable[[int, int, float], None] | None = None,
    notify: Callable[[str], None] | None = None,
    loading: Callable[[int, int], None] | None = None,
) -> RunResult:
    """Train ``cfg.network`` on ``cfg.chip`` through the cores, with PipeLayer (``baseline``)
    evaluated by the cost model on the run's own activity. ``cpus``: start Ray with that many
    CPUs and keep the core actors on that many cores.

    Checkpoints (:mod:`emulator.runtime.checkpoint`): every ``checkpoint_every`` training
    batches (default with ``checkpoint_dir``: once per epoch) into ``checkpoint_dir`` (None:
    kept in memory, for recovery only), the newest ``checkpoint_keep`` kept; ``resume``
    continues the run whose checkpoint is there (and saves on into that folder unless
    ``checkpoint_dir`` says otherwise). ``inject_failure`` (core, batch) crashes the Ray actor
    holding that core at that batch; up to ``max_restarts`` failures are survived, each told
    to ``notify`` as it happens; ``progress(done, total, loss)`` after each training batch,
    ``loading(done, total)`` after each recording of the dataset read."""
    start = time.perf_counter()
    cfg = cfg.resolved()
    assert cfg.epochs and cfg.batch and cfg.lr and cfg.optimizer
    net, chip, batch, window = cfg.network, cfg.chip, cfg.batch, cfg.frame_samples
    check_fits([*training_needs(net, batch), mesh_need(chip)])
    plan = Plan(
        chip,
        net,
        cfg.seed,
        cfg.algorithm,
        cfg.lr,
        cfg.optimizer,
        cfg.log_samples,
        window_credit(batch, net.training.eval_batch, window),
        cfg.epochs,
    )
    checkpoint_dir = cfg.checkpoint_dir
    if checkpoint_dir is None and cfg.resume is not None:
        checkpoint_dir = str(_checkpoint_root(cfg.resume))
    identity = RunIdentity(
        network=net.model_dump(mode="json"),
        chip=chip.model_dump(mode="json"),
        dataset=cfg.dataset,
        data=None if cfg.data is None else os.path.abspath(cfg.data),
        algorithm=cfg.algorithm,
        epochs=cfg.epochs,
        batch=batch,
        lr=cfg.lr,
        optimizer=cfg.optimizer,
        seed=cfg.seed,
        frame_samples=window,
    )
    checkpoints = Checkpoints(
        identity, plan.cores, directory=checkpoint_dir, keep=cfg.checkpoint_keep
    )
    checkpoints.open()  # before any work: a bad or busy folder is refused now
    try:
        return _run(cfg, plan, checkpoints, start, progress, notify, loading)
    finally:
        checkpoints.close()


def _run(
    cfg: RunConfig,
    plan: Plan,
    checkpoints: Checkpoints,
    start: float,
    progress: Callable[[int, int, float], None] | None,
    notify: Callable[[str], None] | None,
    loading: Callable[[int, int], None] | None = None,
) -> RunResult:
    """:func:`run` once its checkpoint folder is held."""
    assert cfg.epochs and cfg.batch
    net, chip, batch, window = cfg.network, cfg.chip, cfg.batch, cfg.frame_samples
    checkpoint_dir, checkpoint_every = checkpoints.directory, cfg.checkpoint_every
    if cfg.resume is None and checkpoint_dir is not None and holds_checkpoints(checkpoint_dir):
        raise CheckpointError(
            f"{checkpoint_dir}: holds checkpoints of an earlier run; continue it with "
            "--resume, or choose an empty folder"
        )
    same = (
        cfg.resume is not None
        and checkpoint_dir is not None
        and (find(cfg.resume).parent.resolve() == checkpoint_dir.resolve())
    )  # resuming in its own folder: the resume's own check names what differs
    if checkpoint_dir is not None and checkpoints.config is not None and not same:
        foreign = foreign_checkpoints(checkpoint_dir, checkpoints.config)
        if foreign:  # saving here would prune them and point latest at this run
            name, why = foreign[0]
            raise CheckpointError(
                f"{checkpoint_dir}: holds checkpoints of another run ({name}: {why}); "
                "this run's saves would prune them: give --checkpoint another folder"
            )
    data_set = load_for(net, cfg.dataset, cfg.data, cfg.seed, loading)
    check_batch(batch, len(data_set.x_train), cfg.dataset)
    if checkpoint_dir is not None and checkpoint_every is None:
        checkpoint_every = -(-len(data_set.x_train) // batch)  # once per epoch
    controller = Controller(
        plan,
        data_set,
        epochs=cfg.epochs,
        batch=batch,
        frame_samples=window,
        checkpoint_every=checkpoint_every,
        progress=progress,
    )
    if cfg.inject_failure is not None:
        _check_failure(cfg.inject_failure, cfg.runtime, plan, controller.train_batches)
    baseline = _chip(cfg.baseline)
    if baseline.dataflow != "pipelayer":
        raise ValueError(f"baseline: {baseline.name} is a {baseline.dataflow} chip, not pipelayer")
    baseline = fit_chip(baseline, net)
    for costed in (chip, baseline):  # their replays come after training: check them now
        check_schedule(costed, net, controller.batch_sizes())
    saved = checkpoints.resume(cfg.resume, controller) if cfg.resume is not None else None
    if cfg.runtime == "local":
        from emulator.runtime.local import LocalRuntime

        rt = LocalRuntime(plan, shuffle_seed=cfg.shuffle_seed)
        if saved is not None:
            _restore(rt, saved, cfg.resume)
        rt.run(controller, checkpoints)
        reports, actors, placement, recoveries = rt.reports(), 0, [], []
        rejected = rt.inbox.rejected
        frames, packets = rt.frames, rt.packets
    else:
        from emulator.runtime.ray_runtime import RayRuntime

        with ray_session(
            cfg.address,
            cfg.cpus,
            ray_logs=cfg.ray_logs,
            connect_timeout=cfg.connect_timeout,
            temp_dir=cfg.ray_temp,
        ):
            rt = RayRuntime(
                plan,
                cores_per_actor=cfg.cores_per_actor,
                cpus=cfg.cpus,
                fail_at=cfg.inject_failure,
                max_restarts=cfg.max_restarts,
                notify=notify,
            )
            try:
                if saved is not None:
                    _restore(rt, saved, cfg.resume)
                rt.run(controller, checkpoints)
                recoveries = rt.recoveries
                reports, placement = rt.reports(), rt.placement()
                rejected = sum(p["rejected"] for p in placement)
                # every frame is counted once, where it arrives: the driver, or an actor
                frames = rt.frames + sum(p["frames"] for p in placement)
                packets = rt.packets + sum(p["packets"] for p in placement)
            finally:
                rt.shutdown()
        actors = len(rt.actors)
    counters = _counters(reports)
    timeline = emulated_timeline(plan, reports, controller.batch_sizes())
    comparison = None
    if timeline.record is not None:
        if notify is not None:
            notify(f"training BPTT on {baseline.name}'s crossbar model for PipeLayer's activity")
        record, training = recorded_training(
            net,
            baseline,
            data_set,
            algorithm="bptt",
            seed=cfg.seed,
            epochs=cfg.epochs,
            batch=batch,
            lr=cfg.lr,
            optimizer=cfg.optimizer,
        )
        comparison = compare_run(plan, timeline, baseline, record, training)
    return RunResult(
        network=net.name,
        chip=chip.name,
        dataset=cfg.dataset,
        runtime=cfg.runtime,
        algorithm=cfg.algorithm,
        seed=cfg.seed,
        epochs=cfg.epochs,
        batch=batch,
        frame_samples=window,
        cores_per_actor=cfg.cores_per_actor if cfg.runtime == "ray" else None,
        **controller.accuracy(),
        loss=controller.losses[-1] if controller.losses else None,
        weights_sha256=run_sha(plan, reports),
        counters={k: c.as_dict() for k, c in counters.items()},
        crossbar_energy_pj={k: counted_energy_pj(chip, c) for k, c in counters.items()},
        **timeline.summary,
        area_mm2=sum(area_mm2(chip, net, plan.mapping).values()),
        frames=frames,
        packets=packets,
        frames_rejected=rejected,
        faults=fault_summary(chip, [s for r in reports for s in r.get("stuck", [])]),
        checkpoints=checkpoints.summary(),
        recoveries=recoveries,
        actors=actors,
        cores={"tiles": len(plan.tiles), "pe_cores": len(plan.pe_cores)},
        placement=placement,
        comparison=comparison,
        ops_log=ops_log(reports) if cfg.log_samples else None,
        wall_s=(end := time.perf_counter()) - start,
        phases_s=_phases(start, end, controller.moments),
    )


def _phases(start: float, end: float, moments: dict[str, float]) -> dict[str, float]:
    """The run's phases from the controller's moments (first feed, training answered, all
    answered); empty where a moment is missing (a resumed run that had nothing left)."""
    if not {"fed", "trained", "answered"} <= set(moments):
        return {}
    return {
        "start": moments["fed"] - start,
        "train": moments["trained"] - moments["fed"],
        "evaluate": moments["answered"] - moments["trained"],
        "finish": end - moments["answered"],
    }


def run_emulation(net: NetworkSpec, chip: ChipSpec, **options: Any) -> dict[str, Any]:
    """:func:`run` of ``RunConfig(network=net, chip=chip, **options)`` as a JSON-able dict
    (``progress``, ``notify`` and ``loading`` are passed to :func:`run`)."""
    hooks = {k: options.pop(k) for k in ("progress", "notify", "loading") if k in options}
    return run(RunConfig(network=net, chip=chip, **options), **hooks).as_json()


def _checkpoint_root(resume: str) -> Path:
    """The folder a resumed run saves into: the one holding the checkpoint it resumes."""
    return find(resume).parent


def _check_failure(fail_at: tuple[str, int], runtime: str, plan: Plan, train_batches: int) -> None:
    if runtime != "ray":
        raise ValueError("inject_actor_failure: needs the Ray runtime (actors to kill)")
    if fail_at[0] not in plan.cores:
        raise ValueError(
            f"inject_actor_failure: no core named {fail_at[0]!r} on this chip "
            f"(its cores: {', '.join(plan.cores)})"
        )
    if not 0 <= fail_at[1] < train_batches:
        raise ValueError(
            f"inject_actor_failure: batch {fail_at[1]} is not in this run's "
            f"{train_batches} training batches (0 … {train_batches - 1})"
        )


def _restore(rt: Any, states: dict[str, bytes], resume: str | None) -> None:
    try:
        rt.restore(states)
    except ValueError as err:
        raise CheckpointError(f"{resume}: {err}") from None


@dataclass
class Timeline:
    """The emulated timeline the cores stamped, and the per-op activity they recorded."""

    record: OpActivity | None
    time_ps: int
    energy_pj: dict[str, float]
    counters: dict[str, float]
    summary: dict[str, Any]


def emulated_timeline(
    plan: Plan, reports: list[dict[str, Any]], batch_sizes: list[int]
) -> Timeline:
    """Add up the tiles' clocks (in plan order) and assemble their records into the run's
    :class:`~emulator.cost.OpActivity`, which :func:`~emulator.cost.simulate_run`
    replays as the oracle."""
    tiles = [r for r in reports if "clock" in r]
    energy: dict[str, float] = {}
    counters: dict[str, float] = {}
    end = 0
    for report in tiles:
        clock = report["clock"]
        for k, v in clock["energy_pj"].items():
            energy[k] = energy.get(k, 0.0) + v
        for k, v in clock["counters"].items():
            counters[k] = counters.get(k, 0.0) + v
        counters["ops"] = counters.get("ops", 0.0) + clock["ops"]
        end = max(end, clock["end_ps"])
    record = _record(plan, tiles, batch_sizes)
    energy["static"] = static_energy_pj(plan.chip, plan.net, plan.mapping, end / 1000)
    clock_mhz = plan.chip.clock_mhz
    samples = sum(batch_sizes)
    total_pj = sum(energy.values())
    summary = {
        "cycles": round(end / 1000 * clock_mhz / 1000),
        "time_ns": end / 1000,
        "energy_pj": total_pj,
        "energy_breakdown_pj": energy,
        "samples_trained": samples,
        "time_ns_per_sample": end / 1000 / samples if samples else None,
        "energy_pj_per_sample": total_pj / samples if samples else None,
        "noc_bits": counters.get("noc_bits", 0.0),
        "ops": counters.get("ops", 0.0),
    }
    return Timeline(record, end, energy, counters, summary)


def _chip(chip: str | ChipSpec) -> ChipSpec:
    return chip if isinstance(chip, ChipSpec) else load_chip(chip)


LOG_FIELDS = ("kind", "layer", "resource", "batch", "sample", "step", "start_ps", "end_ps")


def ops_log(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The logged ops of every tile (``core``: the tile that stamped it), by start time."""
    ops = [
        {"core": report["name"], **dict(zip(LOG_FIELDS, op, strict=True))}
        for report in reports
        if "clock" in report
        for op in report["clock"]["log"]
    ]
    return sorted(ops, key=lambda op: (op["start_ps"], op["end_ps"], op["core"]))


def compare_run(
    plan: Plan,
    timeline: Timeline,
    baseline: ChipSpec,
    record: OpActivity,
    training: dict[str, Any],
) -> dict[str, Any]:
    """PipeLayer on the same network, costed on its own measured activity (``record``: BPTT
    trained on its chip's crossbar model, :func:`emulator.compare.recorded_training`, whose
    accuracies and SHA-256 are ``training``) by the cost model, beside the emulated run
    (the cores' record)."""
    assert timeline.record is not None
    pl = simulate_run(baseline, plan.net, record)
    pl_energy = sum(pl.energy_pj_total.values())
    ps_energy = sum(timeline.energy_pj.values())
    return {
        "baseline": baseline.name,
        "pipelayer": {
            "time_ns": pl.time_ns_total,
            "energy_pj": pl_energy,
            "energy_breakdown_pj": dict(pl.energy_pj_total),
            "area_mm2": sum(pl.area_mm2.values()),
        },
        "speedup": pl.time_ps_total / timeline.time_ps if timeline.time_ps else None,
        "energy_ratio": pl_energy / ps_energy if ps_energy else None,
        "activity": {
            "pipesdfa": f"measured: the emulated cores' {plan.algorithm} training "
            f"({timeline.record.samples:,} samples)",
            "pipelayer": f"measured: BPTT trained by the reference model on {baseline.name}'s "
            f"crossbar model, same data, seed and epochs ({record.samples:,} samples)",
        },
        "baseline_training": training,
    }


def _record(plan: Plan, tiles: list[dict[str, Any]], batch_sizes: list[int]) -> OpActivity | None:
    samples = sum(batch_sizes)
    if not samples:
        return None
    layers = len(plan.layers)
    inputs: list[list[list[float]]] = [[[] for _ in range(layers)] for _ in range(samples)]
    grads = [[0.0] * layers for _ in range(samples)]
    writes: list[list[tuple[float, float]]] = [[(0.0, 0.0)] * layers for _ in batch_sizes]
    errors = [0.0] * samples
    for report in tiles:
        for layer, per_sample in report["inputs"].items():
            for n, rates in per_sample.items():
                inputs[int(n)][int(layer)] = list(rates)
        for layer, per_sample in report["grads"].items():
            for n, value in per_sample.items():
                grads[int(n)][int(layer)] = value
        for layer, per_batch in report["writes"].items():
            for b, value in per_batch.items():
                writes[int(b)][int(layer)] = tuple(value)
        for n, value in report["errors"].items():
            errors[int(n)] = value
    return OpActivity(
        network=plan.net.name,
        batch=max(batch_sizes),
        samples=samples,
        input_rates=inputs,
        grad_rates=grads,
        error_bit_rates=errors,
        writes=writes,
        batch_sizes=batch_sizes,
    )


def _counters(reports: list[dict[str, Any]]) -> dict[str, Counters]:
    """Crossbar counters summed over the weight arrays and over the feedback arrays."""
    total = {"weights": Counters(), "feedback": Counters()}
    for report in reports:
        if "codes" not in report:
            continue
        for counts in report["counters"]:
            total["feedback" if report["feedback"] else "weights"].add(Counters(**counts))
    return total
