"""How far each documented assumption moves the verdict: both chips alike with one field at
its low and its high end (``pipesdfa compare --sensitivity``), on one network or every
paper network (:func:`paper_sensitivity`, the points spread over processes).
"""

from __future__ import annotations

import math
import os
import time
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from emulator.compare import (
    PAPER_NETWORKS,
    PAPER_RANGES,
    PAPER_RATE,
    activity_source,
    check_dataflows,
    shared_activity,
    versus,
)
from emulator.cost import Activity, simulate
from emulator.physics.growth import fit_chips
from emulator.physics.mapping import MappingError
from emulator.spec import (
    ChipSpec,
    NetworkSpec,
    SweepError,
    load_chip,
    load_network,
    with_fields,
)


@dataclass(frozen=True)
class Assumption:
    """A modelling choice with its documented range: ``field`` (dotted chip path) at
    ``low`` and ``high`` on both chips alike; ``source`` says where the range comes from."""

    field: str
    low: Any
    high: Any
    source: str


ASSUMPTIONS: tuple[Assumption, ...] = (
    Assumption("crossbar.error_bits", 4, 16, "assumed 8; 16 = a 16-bit datapath value"),
    Assumption(
        "crossbar.converters", 1, 128, "ISAAC: one ADC per crossbar; PipeLayer: one per column"
    ),
    Assumption("crossbar.adc_energy_pj", 0.79, 2.38, "ISAAC 4-bit and 10-bit ADC"),
    Assumption("crossbar.serial_readout", "per_plane", "integrated", "PipeLayer's I&F integrates"),
    Assumption("crossbar.transpose", "copy", "bidirectional", "not published (Wᵀ's read)"),
    Assumption("crossbar.update", "pulse", "read_merge_write", "PipeLayer reads out, merges"),
    Assumption("tile.grad_datapath", "digital", "crossbar", "PipeLayer: crossbar MVMs"),
    Assumption(
        "tile.grad_energy_pj_per_mac", 0.03, 0.3, "45 nm 8-bit add (Horowitz 2014); assumed"
    ),
    Assumption("tile.grad_macs_per_ns", 16.0, 256.0, "assumed"),
    Assumption("tile.neuron_energy_pj", 0.03, 0.3, "assumed"),
    Assumption("tile.buffer_kb", 16.0, 256.0, "assumed, around ISAAC's 64 KB"),
    Assumption("tile.membrane_bits", 8, 32, "assumed"),
    Assumption("tile.value_bits", 8, 32, "assumed"),
    Assumption("device.read_energy_pj", 0.025, 1.08, "V²·Gmax·t (NeuroSim V2.1); NVSim"),
    Assumption("device.write_energy_pj", 2.0, 3910.0, "assumed at 2 V; NVSim (PipeLayer)"),
    Assumption("device.write_latency_ns", 10.0, 300_000.0, "assumed; NeuroSim RealDevice 300 µs"),
    Assumption(
        "activity.spike_rate",
        0.02,
        0.45,
        "assumed 0.02 (a sparse event stream); measured on digits-mlp, pipesdfa-edge: inputs "
        "0.31, hidden 0.45, outputs 0.10 (pipesdfa train --chip pipesdfa-edge --activity-out)",
    ),
    Assumption("activity.error_bit_rate", 0.1, 0.5, "assumed"),
    Assumption(
        "activity.write_fraction",
        0.01,
        1.0,
        "measured on digits-mlp, pipesdfa-edge: 0.010 and 0.016 of the cells per batch "
        "(pipesdfa train --chip pipesdfa-edge --activity-out); 1.0: every cell, every batch",
    ),
    Assumption(
        "activity.pulses_per_cell",
        1.0,
        31.0,
        "1: one pulse; 31: the device's whole range (pulse_levels − 1); measured on "
        "digits-mlp, pipesdfa-edge: 15.3 per written cell",
    ),
    Assumption("mapping.conv_replication", 1, 16, "PipeLayer's G: no single published value"),
    Assumption(
        "leakage.router_mw", 0.1, 10.0, "assumed 1 mW; 10 mW = a quarter of ISAAC's 42 mW router"
    ),
    Assumption("leakage.buffer_mw_per_kb", 0.001, 0.1, "assumed 0.01 mW per KB"),
    Assumption("leakage.gating", "none", "unused_tiles", "a design choice (power gating)"),
)
"""Every assumption ``compare --sensitivity`` moves, with its documented range."""


def _with_activity(activity: Activity, field: str, value: Any) -> Activity:
    """``activity`` with one of its assumptions (``activity.<name>``) set on every layer:
    ``spike_rate`` is every input and output rate; the others override what was measured."""
    n, name = len(activity.input_rates), field.removeprefix("activity.")
    if name == "spike_rate":
        return activity.model_copy(update={"input_rates": [value] * n, "output_rates": [value] * n})
    if name == "error_bit_rate":
        return activity.model_copy(update={name: value})
    return activity.model_copy(update={name: [value] * n})


def _ratios(
    net: NetworkSpec, chip: ChipSpec, baseline: ChipSpec, activity: Activity, batch: int
) -> tuple[float, float]:
    """(speedup, energy ratio) of ``chip`` vs ``baseline``, grown alike if needed, both on
    ``activity`` (filled from ``chip``'s assumed values, :func:`shared_activity`)."""
    a, b = fit_chips(net, chip, baseline)
    activity = shared_activity(activity, a)
    ps = simulate(a, net, activity, batch=batch, keep_ops=False)
    result = versus(net, ps, b, activity, keep_ops=False)
    return result["speedup"], result["energy_ratio"]


def _at(
    job: tuple[NetworkSpec, ChipSpec, ChipSpec, Activity, int, str, Any],
) -> dict[str, Any]:
    """The ratios with one field set on both chips (an ``activity.`` one on the activity both
    are costed on), or why that value does not apply."""
    net, chip, baseline, activity, batch, field, value = job
    try:
        if field.startswith("activity."):
            a, b, activity = chip, baseline, _with_activity(activity, field, value)
        else:
            a, b = with_fields(chip, {field: value}), with_fields(baseline, {field: value})
        speedup, energy = _ratios(net, a, b, activity, batch)
    except SweepError as err:  # the value makes an invalid chip
        reason = str(err).removeprefix(f"--set {field}: ").removeprefix("chip: ")
        return {"speedup": None, "energy_ratio": None, "note": reason}
    except MappingError as err:
        return {"speedup": None, "energy_ratio": None, "note": str(err)}
    return {"speedup": speedup, "energy_ratio": energy}


def sensitivity(
    net: NetworkSpec,
    chip: ChipSpec,
    baseline: ChipSpec,
    activity: Activity,
    *,
    batch: int,
    assumptions: tuple[Assumption, ...] = ASSUMPTIONS,
    pool: Executor | None = None,
    origin: str = "assumed",
) -> dict[str, Any]:
    """How far each assumption moves the verdict on ``net``: for every assumption, both
    chips (the original ones, grown alike again if needed) with the field at its low and
    its high value, and the speedup and energy ratio there. Sorted by ``influence``, the
    largest |ln(ratio at an end / ratio as shipped)| of either ratio. ``pool`` runs the
    points in parallel; ``origin`` says where ``activity`` came from (the row ``activity``)."""
    check_dataflows(chip, baseline)
    speedup, energy = _ratios(net, chip, baseline, activity, batch)
    jobs = [
        (net, chip, baseline, activity, batch, a.field, value)
        for a in assumptions
        for value in (a.low, a.high)
    ]
    points = list(pool.map(_at, jobs) if pool else map(_at, jobs))
    rows = []
    for k, a in enumerate(assumptions):
        low, high = points[2 * k], points[2 * k + 1]
        row = {
            "field": a.field,
            "low": a.low,
            "high": a.high,
            "source": a.source,
            "speedup": [low["speedup"], high["speedup"]],
            "energy_ratio": [low["energy_ratio"], high["energy_ratio"]],
            "influence": _influence((speedup, energy), (low, high)),
        }
        notes = [f"{v}: {p['note']}" for v, p in ((a.low, low), (a.high, high)) if "note" in p]
        if notes:
            row["note"] = "; ".join(notes)
        rows.append(row)
    rows.sort(key=lambda r: -r["influence"])
    return {
        "network": net.name,
        "batch": batch,
        "chips": {"pipesdfa": chip.name, "pipelayer": baseline.name},
        "activity": activity_source(activity, chip, f"{origin} (both chips)"),
        "speedup": speedup,
        "energy_ratio": energy,
        "sensitivity": rows,
    }


def _influence(base: tuple[float, float], ends: tuple[dict, dict]) -> float:
    moves = [
        abs(math.log(end[key] / value))
        for end in ends
        for key, value in zip(("speedup", "energy_ratio"), base, strict=True)
        if end[key] is not None
    ]
    return max(moves, default=0.0)


def paper_sensitivity(
    networks: tuple[str, ...] | None = None,
    chip: str = "pipesdfa-edge",
    baseline: str = "pipelayer",
    rate: float = PAPER_RATE,
    workers: int | None = None,
) -> dict[str, Any]:
    """:func:`sensitivity` of every paper network on the shipped chips, the points spread
    over ``workers`` processes (default: the machine's CPUs); ``networks``: default
    :data:`PAPER_NETWORKS`."""
    start = time.perf_counter()
    networks = PAPER_NETWORKS if networks is None else networks
    ps_chip, pl_chip = load_chip(chip), load_chip(baseline)
    workers = workers or os.cpu_count() or 1
    with ProcessPoolExecutor(workers) if workers > 1 else nullcontext() as pool:
        rows = [
            sensitivity(
                net,
                ps_chip,
                pl_chip,
                Activity.uniform(net, rate),
                batch=net.training.batch,
                pool=pool,
                origin=f"assumed: spike rate {rate:g}, every layer",
            )
            for net in map(load_network, networks)
        ]
    return {
        "chips": {"pipesdfa": chip, "pipelayer": baseline},
        "spike_rate": rate,
        "paper": {k: list(v) for k, v in PAPER_RANGES.items()},
        "networks": rows,
        "wall_s": time.perf_counter() - start,
    }
