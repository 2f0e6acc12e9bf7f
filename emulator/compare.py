"""PipeSDFA against PipeLayer on the same network: time, energy, ablations, dominant terms,
and how far each modelling assumption moves the verdict.

:func:`compare` schedules one network on a PipeSDFA chip and on a PipeLayer chip
(:func:`emulator.cost.simulate`, both costed by the same physical rules), then on the
PipeSDFA chip with each pipeline level switched off in turn. :func:`paper_comparison` does it
for every paper network against both shipped baselines (``topologies/pipelayer.yaml``,
PipeLayer as published, and ``topologies/pipelayer-edge.yaml``, the edge chip with PipeLayer's
dataflow) and puts our speedup and energy ratio beside the paper's ranges
(docs/sources.md#pipesdfa).
:func:`sensitivity` moves each documented assumption (:data:`ASSUMPTIONS`) to its low and
high end on both chips alike. Nothing here is fitted to the paper: the numbers are what the
model gives, and ``dominant_terms`` names the terms behind them.

Growing a chip (:func:`~emulator.physics.growth.fit_chips`): a network that does not fit
every chip given is placed on chips grown by one rule, applied identically to all: the
smallest square mesh of k × k identical tiles (``tiles`` = k², one per node; everything else
unchanged) that holds the network on every chip. Chips that all hold it keep their size.
"""

from __future__ import annotations

import time
from typing import Any

from emulator.cost import COMPONENTS, Activity, OpActivity, Schedule, simulate
from emulator.cost.area import area_mm2
from emulator.cost.physical import error_planes
from emulator.cost.record import TrainingRecorder
from emulator.learning import TrainingData, train
from emulator.limits import check_fits, mesh_need
from emulator.physics.growth import fit_chips, grown_chip
from emulator.physics.mapping import map_network
from emulator.spec import (
    ChipSpec,
    NetworkSpec,
    load_chip,
    load_network,
)
from emulator.train import chip_model
from emulator.units import si

PAPER_NETWORKS = (
    "nmnist-mlp2",
    "nmnist-mlp3",
    "nmnist-mlp4",
    "nmnist-mlp5",
    "shd-3fc",
    "braille-3fc",
    "dvsgesture-convnet",
    "dvsgesture-vgg11",
)
"""The paper's networks (docs/sources.md#sdfa), as shipped network files."""

PAPER_RANGES = {"speedup": (1.1, 10.5), "energy_ratio": (1.37, 2.1)}
"""PipeSDFA vs PipeLayer as published (Ren et al., ICCAD 2025; docs/sources.md#pipesdfa)."""

PAPER_RATE = 0.1
"""Spike rate of every layer in the paper table (our assumption; uniform Activity)."""

LEVELS = ("time_steps", "data", "batch")
"""The pipeline levels the ablation switches off, one at a time."""

# ------------------------------------------------------------------------------ chips


def chip_area_mm2(chip: ChipSpec, net: NetworkSpec) -> float:
    """The whole chip's area, mm², with ``net`` placed on it (:mod:`emulator.cost.area`)."""
    return sum(area_mm2(chip, net, map_network(chip, net)).values())


def iso_area(net: NetworkSpec, chip: ChipSpec, baseline: ChipSpec) -> tuple[ChipSpec, ChipSpec]:
    """Both chips at equal silicon, as near as square meshes allow: grown alike to hold
    ``net`` (:func:`fit_chips`), then the smaller of the two grown by whole mesh rows and
    columns (k × k tiles, one per node) to the largest mesh whose area does not pass the
    other's."""
    a, b = fit_chips(net, chip, baseline)
    areas = chip_area_mm2(a, net), chip_area_mm2(b, net)
    small, large = (0, 1) if areas[0] < areas[1] else (1, 0)
    pair = [a, b]
    k = pair[small].noc.rows
    base = chip if small == 0 else baseline
    while True:
        bigger = grown_chip(base, k + 1)
        check_fits([mesh_need(bigger)])
        if chip_area_mm2(bigger, net) > areas[large]:
            break
        pair[small], k = bigger, k + 1
    return pair[0], pair[1]


# ------------------------------------------------------------------- measured baseline


def recorded_training(
    net: NetworkSpec,
    chip: ChipSpec,
    data_set: TrainingData,
    *,
    algorithm: str,
    seed: int,
    epochs: int,
    batch: int,
    lr: float,
    optimizer: str,
) -> tuple[OpActivity, dict[str, Any]]:
    """A dataflow's activity measured as the cores measure PipeSDFA's: ``net`` trained with
    ``algorithm`` by the reference model on ``chip``'s crossbar model, every training batch
    recorded (:class:`~emulator.cost.record.TrainingRecorder`). ``run`` measures PipeLayer's
    so: BPTT with the run's data, seed, epochs, batch and optimizer. Returns the record and
    the training's accuracies and weights' SHA-256."""
    model = chip_model(net, chip, algorithm=algorithm, seed=seed, lr=lr, optimizer=optimizer)
    recorder = TrainingRecorder(chip, net, model)
    result = train(
        net,
        data_set,
        algorithm=algorithm,
        seed=seed,
        epochs=epochs,
        batch=batch,
        lr=lr,
        optimizer=optimizer,
        model=model,
        observe=recorder,
    )
    keys = ("train_accuracy", "test_accuracy", "weights_sha256")
    return recorder.record(), {k: result[k] for k in keys}


# ---------------------------------------------------------------------------- compare


def _mapping_summary(s: Schedule) -> dict[str, Any]:
    m = s.mapping
    return {
        "chip": m.chip.name,
        "mesh": m.chip.noc.mesh,
        "arrays": m.arrays_used,
        "feedback_arrays": m.feedback_arrays,
        "pe_cores": m.pes_used,
        "tiles": m.tiles_used,
    }


def _result(s: Schedule) -> dict[str, Any]:
    return s.summary() | {"mapping": _mapping_summary(s)}


def _switched_off(chip: ChipSpec, level: str) -> ChipSpec:
    pipeline = chip.pipeline.model_copy(update={level: False})
    return chip.model_copy(update={"pipeline": pipeline})


def check_dataflows(chip: ChipSpec, baseline: ChipSpec) -> None:
    if chip.dataflow != "pipesdfa" or baseline.dataflow != "pipelayer":
        raise ValueError(
            f"compare: needs a pipesdfa chip and a pipelayer baseline, got "
            f"{chip.dataflow} ({chip.name}) and {baseline.dataflow} ({baseline.name})"
        )


def shared_activity(activity: Activity, chip: ChipSpec) -> Activity:
    """``activity`` with what it did not measure filled from ``chip``'s assumed values
    (``chip.activity``: the PipeSDFA chip's), so that both sides of a comparison are costed on
    one activity. Pulses per written cell stay each chip's own one level step unless measured
    or set: that is the cells' physics, not an activity."""
    n = len(activity.input_rates)
    a = chip.activity
    fill: dict[str, Any] = {}
    if activity.write_fraction is None:
        fill["write_fraction"] = [a.write_fraction] * n
    if activity.error_bit_rate is None:
        fill["error_bit_rate"] = a.error_bit_rate
    if activity.pulses_per_cell is None and a.pulses_per_cell is not None:
        fill["pulses_per_cell"] = [a.pulses_per_cell] * n
    return activity.model_copy(update=fill)


def activity_source(activity: Activity, chip: ChipSpec, origin: str) -> str:
    """One line saying where ``activity`` came from: ``origin`` (what measured it, or the
    assumed spike rate) and which fields were assumed from ``chip``'s activity."""
    a = chip.activity
    assumed = []
    if activity.write_fraction is None:
        assumed.append(f"write_fraction {a.write_fraction:g}")
    if activity.error_bit_rate is None:
        assumed.append(f"error_bit_rate {a.error_bit_rate:g}")
    if activity.pulses_per_cell is None:
        pulses = (
            "one level step of each chip's cells"
            if a.pulses_per_cell is None
            else a.pulses_per_cell
        )
        assumed.append(f"pulses_per_cell {pulses}")
    if not assumed:
        return origin
    return f"{origin}; assumed from {chip.name}'s activity: {', '.join(assumed)}"


def versus(
    net: NetworkSpec,
    ps: Schedule,
    baseline: ChipSpec,
    activity: Activity,
    *,
    batches: int = 2,
    keep_ops: bool = True,
) -> dict[str, Any]:
    """PipeLayer (``baseline``) at ``activity`` against an already simulated PipeSDFA schedule
    ``ps``: its result, ``speedup`` and ``energy_ratio`` (and the dominant terms with
    ``keep_ops``)."""
    pl = simulate(
        baseline,
        net,
        activity,
        batch=ps.batch,
        batches=batches,
        keep_ops=keep_ops,
    )
    out = {
        "pipelayer": _result(pl),
        "speedup": pl.time_ns_per_batch / ps.time_ns_per_batch,
        "energy_ratio": pl.total_pj_per_sample / ps.total_pj_per_sample,
    }
    if keep_ops:
        out["dominant_terms"] = dominant_terms(net, ps, pl)
    return out


def ablation(
    net: NetworkSpec, chip: ChipSpec, ps: Schedule, activity: Activity, *, batches: int = 2
) -> dict[str, Any]:
    """Each pipeline level of ``chip`` switched off in turn: batch period and slowdown."""
    out = {}
    for level in LEVELS:
        off = simulate(
            _switched_off(chip, level),
            net,
            activity,
            batch=ps.batch,
            batches=batches,
            keep_ops=False,
        )
        out[level] = {
            "time_ns_per_batch": off.time_ns_per_batch,
            "slowdown": off.time_ns_per_batch / ps.time_ns_per_batch,
        }
    return out


def compare(
    net: NetworkSpec,
    chip: ChipSpec,
    baseline: ChipSpec,
    activity: Activity,
    *,
    batch: int,
    batches: int = 2,
    baseline_activity: Activity | None = None,
    origins: tuple[str, str] = ("assumed", "assumed"),
) -> dict[str, Any]:
    """PipeSDFA (``chip``) vs PipeLayer (``baseline``) on ``net``, with PipeSDFA's ablations.

    ``speedup`` is PipeLayer's batch period over PipeSDFA's, ``energy_ratio`` PipeLayer's
    energy per sample over PipeSDFA's; each ablation's ``slowdown`` is its batch period over
    the full pipeline's. Both chips are costed on ``activity`` (what it did not measure
    filled from ``chip``'s assumed values, :func:`shared_activity`), or the baseline on its
    own ``baseline_activity`` (filled alike); ``origins`` says what measured each (or that
    it was assumed), and ``activity`` in the result says it per side in one line.
    """
    check_dataflows(chip, baseline)
    theirs = activity if baseline_activity is None else baseline_activity
    ours, theirs_full = shared_activity(activity, chip), shared_activity(theirs, chip)
    ps = simulate(chip, net, ours, batch=batch, batches=batches)
    return {
        "network": net.name,
        "batch": batch,
        "activity": {
            "pipesdfa": activity_source(activity, chip, origins[0]),
            "pipelayer": activity_source(theirs, chip, origins[1]),
        },
        "pipesdfa": _result(ps),
        **versus(net, ps, baseline, theirs_full, batches=batches),
        "ablation": ablation(net, chip, ps, ours, batches=batches),
    }


# ---------------------------------------------------------------------- dominant terms


WRITES = ("WRITE", "WRITE_T")
"""The ops of a batch's update (a layer's arrays and its transposed copy)."""


def _interval(s: Schedule) -> tuple[str, float]:
    """The steady-state interval: the resource busiest with non-write ops in the last batch,
    and its busy time per sample, ns."""
    busy: dict[str, int] = {}
    last = s.batches - 1
    for op in s.ops:
        if op.exclusive and op.batch == last and op.kind not in WRITES:
            busy[op.resource] = busy.get(op.resource, 0) + op.end_ps - op.start_ps
    resource = max(busy, key=lambda r: (busy[r], r))
    return resource, busy[resource] / 1000 / s.batch


def _kinds_on(s: Schedule, resource: str) -> str:
    kinds = dict.fromkeys(op.kind for op in s.ops if op.resource == resource)
    for write in WRITES:
        kinds.pop(write, None)
    return "+".join(kinds)


def _longest(s: Schedule, kind: str) -> float:
    return max((op.end_ps - op.start_ps for op in s.ops if op.kind == kind), default=0) / 1000


def _time_terms(net: NetworkSpec, ps: Schedule, pl: Schedule) -> list[str]:
    terms = []
    for name, s in (("PipeLayer", pl), ("PipeSDFA", ps)):
        resource, interval = _interval(s)
        period, write = s.time_ns_per_batch, _longest(s, "WRITE")
        terms.append(
            f"{name} batch {si(period, 'ns')}: B={s.batch} × {si(interval, 'ns')}/sample "
            f"on {resource} "
            f"({_kinds_on(s, resource)}) = {100 * s.batch * interval / period:.0f} %, "
            f"WRITE {si(write, 'ns')} = {100 * write / period:.0f} %"
        )
    if len(pl.mapping.layers) > 1:
        depth = len(pl.mapping.layers) - 1 + net.time_steps - 1
        terms.append(
            f"PipeLayer backward depth (L−1)+(T−1) = {depth} ERR stages of up to "
            f"{si(_longest(pl, 'ERR'), 'ns')} ({error_planes(pl.mapping.chip)} bit-serial "
            f"reads per step)"
        )
    return terms


def _energy_terms(ps: Schedule, pl: Schedule) -> list[str]:
    diff = {c: pl.energy_pj_per_sample[c] - ps.energy_pj_per_sample[c] for c in COMPONENTS}
    total = pl.total_pj_per_sample - ps.total_pj_per_sample
    top = sorted(COMPONENTS, key=lambda c: -abs(diff[c]))[:3]
    a, b = pl.mapping.chip, ps.mapping.chip
    copy = (
        " and its transposed copy" if any(lm.transpose_arrays for lm in pl.mapping.layers) else ""
    )
    why = {
        "write": f"{a.device.write_energy_pj:g} vs {b.device.write_energy_pj:g} pJ/pulse; "
        f"PipeLayer writes W{copy} ({a.crossbar.update} vs {b.crossbar.update})",
        "read": f"{a.device.read_energy_pj:g} vs {b.device.read_energy_pj:g} pJ/cell",
        "readout": f"{a.crossbar.readout} ({a.crossbar.serial_readout} errors) vs "
        f"{b.crossbar.readout}, {a.crossbar.adc_energy_pj:g} vs {b.crossbar.adc_energy_pj:g} "
        f"pJ/readout",
        "grad": f"weight gradients: {a.tile.grad_datapath} vs {b.tile.grad_datapath} datapath",
        "error_backprop": "PipeLayer's errors back through Wᵀ, every step and layer",
        "feedback": "PipeSDFA's one feedback read per sample",
        "spill": "buffer overflow to the global buffer over the NoC",
        "buffer": "BPTT buffers an error per step, SDFA one per sample",
    }
    terms = []
    for c in top:
        note = f"; {why[c]}" if c in why else ""
        share = f" = {100 * diff[c] / total:.0f} % of the difference" if total else ""
        terms.append(
            f"energy {c}: PipeLayer {si(pl.energy_pj_per_sample[c], 'pJ')} vs PipeSDFA "
            f"{si(ps.energy_pj_per_sample[c], 'pJ')} per sample{share}{note}"
        )
    return terms


def dominant_terms(net: NetworkSpec, ps: Schedule, pl: Schedule) -> list[str]:
    """Short sentences naming the terms behind the time and energy differences."""
    return _time_terms(net, ps, pl) + _energy_terms(ps, pl)


# -------------------------------------------------------------------------- the paper

PAPER_BASELINES = ("pipelayer", "pipelayer-edge")
"""The paper table's baselines: PipeLayer as published (its architecture and its algorithm)
and the edge chip running PipeLayer's dataflow (the algorithm and its pipeline alone)."""


def paper_comparison(
    networks: tuple[str, ...] | None = None,
    chip: str = "pipesdfa-edge",
    baselines: tuple[str, ...] = PAPER_BASELINES,
    rate: float = PAPER_RATE,
) -> dict[str, Any]:
    """Every paper network on ``chip`` and on each baseline (all grown alike where needed),
    at a uniform spike rate, its network file's batch: our speedup and energy ratio per
    baseline beside the paper's. Each row: the PipeSDFA result and ablation (once), and
    ``versus[baseline]`` with the baseline's result, ratios, dominant terms and ``line``.
    ``networks``: default :data:`PAPER_NETWORKS`."""
    start = time.perf_counter()
    networks = PAPER_NETWORKS if networks is None else networks
    ps_chip, others = load_chip(chip), [load_chip(b) for b in baselines]
    for other in others:
        check_dataflows(ps_chip, other)
    rows = []
    for name in networks:
        net = load_network(name)
        a, *grown = fit_chips(net, ps_chip, *others)
        uniform, batch = Activity.uniform(net, rate), net.training.batch
        act = shared_activity(uniform, a)  # one activity for every chip of the row
        ps = simulate(a, net, act, batch=batch)
        row: dict[str, Any] = {
            "network": name,
            "batch": batch,
            "mesh": a.noc.mesh,
            "activity": activity_source(uniform, a, f"assumed: spike rate {rate:g}, every layer"),
            "pipesdfa": _result(ps),
            "ablation": ablation(net, a, ps, act),
            "versus": {},
        }
        for label, b in zip(baselines, grown, strict=True):
            result = versus(net, ps, b, act)
            result["line"] = _line(name, batch, a.noc.mesh, label, result)
            row["versus"][label] = result
        rows.append(row)
    return {
        "chips": {"pipesdfa": chip, "baselines": list(baselines)},
        "spike_rate": rate,
        "paper": {k: list(v) for k, v in PAPER_RANGES.items()},
        "networks": rows,
        "wall_s": time.perf_counter() - start,
    }


def _line(network: str, batch: int, mesh: str, baseline: str, result: dict[str, Any]) -> str:
    lo_s, hi_s = PAPER_RANGES["speedup"]
    lo_e, hi_e = PAPER_RANGES["energy_ratio"]
    return (
        f"{network} vs {baseline} (B={batch}, {mesh} mesh): speedup "
        f"{result['speedup']:.2f} (paper {lo_s}–{hi_s}), energy ratio "
        f"{result['energy_ratio']:.3g} (paper {lo_e}–{hi_e}); "
        + "; ".join(result["dominant_terms"])
    )


# ------------------------------------------------------------------------ sensitivity
