"""PipeSDFA against PipeLayer on the same network: time, energy, ablations, dominant terms.

:func:`compare` schedules one network on a PipeSDFA chip and on a PipeLayer chip
(:func:`emulator.schedule.simulate`), then on the PipeSDFA chip with each pipeline level
switched off in turn. :func:`paper_comparison` does it for every paper network on the shipped
chips (``topologies/pipesdfa-edge.yaml`` vs ``topologies/pipelayer.yaml``) and puts our speedup
and energy ratio beside the paper's ranges (FIGURES.md). Nothing here is fitted to the paper:
the numbers are what the model gives, and ``dominant_terms`` names the terms behind them.

Growing a chip (:func:`fit_chips`): a network that does not fit every chip given is placed on
chips grown by one rule, applied identically to all: the smallest square mesh of k × k
identical tiles (``tiles`` = k², one per node; everything else unchanged) that holds the
network on every chip. Chips that all hold it keep their size.
"""

from __future__ import annotations

import math
import time
from typing import Any

from emulator.mapping import MappingError, map_network, pe_cores_needed
from emulator.report import si
from emulator.schedule import COMPONENTS, Activity, Schedule, bit_serial_reads, simulate
from emulator.topology import ChipSpec, NetworkSpec, load_chip, load_network

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
"""The paper's networks (FIGURES.md, SDFA networks), as shipped network files."""

PAPER_RANGES = {"speedup": (1.1, 10.5), "energy_ratio": (1.37, 2.1)}
"""PipeSDFA vs PipeLayer as published (Ren et al., ICCAD 2025; FIGURES.md)."""

PAPER_RATE = 0.1
"""Spike rate of every layer in the paper table (our assumption; uniform Activity)."""

LEVELS = ("time_steps", "data", "batch")
"""The pipeline levels the ablation switches off, one at a time."""

# ------------------------------------------------------------------------------ chips


def _grown(chip: ChipSpec, k: int) -> ChipSpec:
    """``chip`` on a k × k mesh with one tile per node."""
    noc = chip.noc.model_copy(update={"mesh": f"{k}x{k}"})
    return chip.model_copy(update={"name": f"{chip.name}@{k}x{k}", "tiles": k * k, "noc": noc})


def _fits(chip: ChipSpec, net: NetworkSpec) -> bool:
    try:
        map_network(chip, net)
    except MappingError:
        return False
    return True


def fit_chips(net: NetworkSpec, *chips: ChipSpec) -> tuple[ChipSpec, ...]:
    """``chips`` unchanged if each holds ``net``, else all grown to the smallest square mesh
    that holds it on every one of them (module docstring)."""
    if all(_fits(chip, net) for chip in chips):
        return chips
    tiles = max(-(-pe_cores_needed(chip, net) // chip.tile.pes) for chip in chips)
    k = math.isqrt(tiles - 1) + 1  # the smallest k with k² ≥ tiles
    while not all(_fits(_grown(chip, k), net) for chip in chips):
        k += 1  # never taken today: placement is tile-count bound; kept for safety
    return tuple(_grown(chip, k) for chip in chips)


def fit_chip(chip: ChipSpec, net: NetworkSpec) -> ChipSpec:
    """``chip``, or the smallest square-mesh chip like it that holds ``net``."""
    return fit_chips(net, chip)[0]


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


def compare(
    net: NetworkSpec,
    chip: ChipSpec,
    baseline: ChipSpec,
    activity: Activity,
    *,
    batch: int,
    batches: int = 2,
) -> dict[str, Any]:
    """PipeSDFA (``chip``) vs PipeLayer (``baseline``) on ``net``, with PipeSDFA's ablations.

    ``speedup`` is PipeLayer's batch period over PipeSDFA's, ``energy_ratio`` PipeLayer's
    energy per sample over PipeSDFA's; each ablation's ``slowdown`` is its batch period over
    the full pipeline's. Both chips see ``activity``'s spike rates; its write activity
    (measured on a PipeSDFA chip's weights and cells) applies to ``chip`` only, and the
    baseline keeps the default write activity.
    """
    if chip.dataflow != "pipesdfa" or baseline.dataflow != "pipelayer":
        raise ValueError(
            f"compare: needs a pipesdfa chip and a pipelayer baseline, got "
            f"{chip.dataflow} ({chip.name}) and {baseline.dataflow} ({baseline.name})"
        )
    ps = simulate(chip, net, activity, batch=batch, batches=batches)
    spikes_only = activity.model_copy(update={"write_fraction": None, "pulses_per_cell": None})
    pl = simulate(baseline, net, spikes_only, batch=batch, batches=batches)
    ablation = {}
    for level in LEVELS:
        off = simulate(_switched_off(chip, level), net, activity, batch=batch, batches=batches)
        ablation[level] = {
            "time_ns_per_batch": off.time_ns_per_batch,
            "slowdown": off.time_ns_per_batch / ps.time_ns_per_batch,
        }
    return {
        "network": net.name,
        "batch": batch,
        "pipesdfa": _result(ps),
        "pipelayer": _result(pl),
        "speedup": pl.time_ns_per_batch / ps.time_ns_per_batch,
        "energy_ratio": pl.total_pj_per_sample / ps.total_pj_per_sample,
        "ablation": ablation,
        "dominant_terms": dominant_terms(net, ps, pl),
    }


# ---------------------------------------------------------------------- dominant terms


def _interval(s: Schedule) -> tuple[str, float]:
    """The steady-state interval: the resource busiest with non-WRITE ops in the last batch,
    and its busy time per sample, ns."""
    busy: dict[str, int] = {}
    last = s.batches - 1
    for op in s.ops:
        if op.exclusive and op.batch == last and op.kind != "WRITE":
            busy[op.resource] = busy.get(op.resource, 0) + op.end_ps - op.start_ps
    resource = max(busy, key=lambda r: (busy[r], r))
    return resource, busy[resource] / 1000 / s.batch


def _kinds_on(s: Schedule, resource: str) -> str:
    kinds = dict.fromkeys(op.kind for op in s.ops if op.resource == resource)
    kinds.pop("WRITE", None)
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
            f"{si(_longest(pl, 'ERR'), 'ns')} ({bit_serial_reads(pl.mapping.chip)} bit-serial "
            f"reads per step)"
        )
    return terms


def _energy_terms(ps: Schedule, pl: Schedule) -> list[str]:
    diff = {c: pl.energy_pj_per_sample[c] - ps.energy_pj_per_sample[c] for c in COMPONENTS}
    total = pl.total_pj_per_sample - ps.total_pj_per_sample
    top = sorted(COMPONENTS, key=lambda c: -abs(diff[c]))[:3]
    a, b = pl.mapping.chip, ps.mapping.chip
    why = {
        "write": f"{a.device.write_energy_pj:g} vs {b.device.write_energy_pj:g} pJ/pulse",
        "read": f"{a.device.read_energy_pj:g} vs {b.device.read_energy_pj:g} pJ/cell",
        "grad": "PipeLayer gradients as crossbar MVMs",
        "error_backprop": "PipeLayer transposed reads",
        "feedback": "PipeSDFA feedback group",
        "local_grad": "PipeSDFA digital local gradients",
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


def paper_comparison(
    networks: tuple[str, ...] = PAPER_NETWORKS,
    chip: str = "pipesdfa-edge",
    baseline: str = "pipelayer",
    rate: float = PAPER_RATE,
) -> dict[str, Any]:
    """Every paper network on the default chips (grown alike where needed), at a uniform
    spike rate, its network file's batch: our speedup and energy ratio beside the paper's."""
    start = time.perf_counter()
    ps_chip, pl_chip = load_chip(chip), load_chip(baseline)
    rows = []
    for name in networks:
        net = load_network(name)
        a, b = fit_chips(net, ps_chip, pl_chip)
        result = compare(net, a, b, Activity.uniform(net, rate), batch=net.training.batch)
        result["line"] = _line(result)
        rows.append(result)
    return {
        "chips": {"pipesdfa": chip, "pipelayer": baseline},
        "spike_rate": rate,
        "paper": {k: list(v) for k, v in PAPER_RANGES.items()},
        "networks": rows,
        "wall_s": time.perf_counter() - start,
    }


def _line(result: dict[str, Any]) -> str:
    lo_s, hi_s = PAPER_RANGES["speedup"]
    lo_e, hi_e = PAPER_RANGES["energy_ratio"]
    mesh = result["pipesdfa"]["mapping"]["mesh"]
    return (
        f"{result['network']} (B={result['batch']}, {mesh} mesh): speedup "
        f"{result['speedup']:.2f} (paper {lo_s}–{hi_s}), energy ratio "
        f"{result['energy_ratio']:.3g} (paper {lo_e}–{hi_e}); "
        + "; ".join(result["dominant_terms"])
    )
