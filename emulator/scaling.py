"""``pipesdfa scale``: sweeps of chip fields by dotted path, analytic or emulated, and the
emulator's own scaling over CPU count.

A sweep names the fields it varies (``--set tile.pes=2,4,8 --set noc.mesh=2x2,4x4``; CrossSim's
dotted overrides): every combination is one point. The PipeLayer baseline gets the same
overrides, so both chips are swept alike. Sweeping ``noc.mesh`` without ``tiles`` puts one
tile on every node (``tiles`` follows the mesh), since a chip file's ``tiles`` may not exceed
its mesh.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import yaml

from emulator.compare import compare
from emulator.cost import Activity, simulate
from emulator.physics.mapping import MappingError, map_network
from emulator.run import RunResult
from emulator.spec import ChipSpec, NetworkSpec, SweepError


def parse_sets(sets: Sequence[str]) -> list[tuple[str, list[Any]]]:
    """``["tile.pes=2,4,8"]`` → ``[("tile.pes", [2, 4, 8])]``; values are YAML scalars."""
    fields = []
    for item in sets:
        name, sep, values = item.partition("=")
        if not sep or not name or not values:
            raise SweepError(f"--set {item!r}: expected FIELD=v1,v2,...")
        parsed = [_scalar(name, v) for v in values.split(",")]
        fields.append((name.strip(), parsed))
    names = [name for name, _ in fields]
    if len(set(names)) != len(names):
        raise SweepError(f"--set: a field is given twice ({', '.join(names)})")
    return fields


def _scalar(name: str, text: str) -> Any:
    try:
        value = yaml.safe_load(text.strip())
    except yaml.YAMLError:
        raise SweepError(f"--set {name}: cannot read value {text!r}") from None
    if isinstance(value, dict | list) or value is None:
        raise SweepError(f"--set {name}: {text!r} is not a single value")
    return value


def points(fields: list[tuple[str, list[Any]]]) -> list[dict[str, Any]]:
    """Every combination of the swept values, in order."""
    names = [name for name, _ in fields]
    return [
        dict(zip(names, combo, strict=True))
        for combo in itertools.product(*(values for _, values in fields))
    ]


def label(point: dict[str, Any]) -> str:
    """``tile.pes=4 noc.mesh=2x2``."""
    return " ".join(f"{k}={v}" for k, v in point.items())


def _placed(chip: ChipSpec, net: NetworkSpec) -> dict[str, Any]:
    """Whether ``net`` fits ``chip``, and how much of it it uses."""
    try:
        mapping = map_network(chip, net)
    except MappingError as err:
        return {"fits": False, "reason": str(err)}
    return {
        "fits": True,
        "utilisation": mapping.arrays_used / mapping.arrays_total,
        "arrays_used": mapping.arrays_used,
        "pe_cores_used": mapping.pes_used,
        "tiles_used": mapping.tiles_used,
    }


def analytic_point(
    chip: ChipSpec, baseline: ChipSpec, net: NetworkSpec, activity: Activity, batch: int
) -> dict[str, Any]:
    """One sweep point by the cost model: throughput, energy, utilisation, PipeLayer ratios
    (None, with ``baseline_reason``, where the baseline chip cannot hold the network)."""
    placed = _placed(chip, net)
    if not placed["fits"]:
        return placed
    held = _placed(baseline, net)
    if not held["fits"]:
        s = simulate(chip, net, activity, batch=batch)
        return placed | {
            "samples_per_s": 1e9 / s.time_ns_per_sample,
            "time_ns_per_sample": s.time_ns_per_sample,
            "energy_pj_per_sample": s.total_pj_per_sample,
            "speedup": None,
            "energy_ratio": None,
            "baseline_reason": held["reason"],
        }
    result = compare(net, chip, baseline, activity, batch=batch)
    ps = result["pipesdfa"]
    return placed | {
        "samples_per_s": 1e9 / ps["time_ns_per_sample"],
        "time_ns_per_sample": ps["time_ns_per_sample"],
        "energy_pj_per_sample": ps["energy_pj_per_sample"],
        "speedup": result["speedup"],
        "energy_ratio": result["energy_ratio"],
    }


def emulate_point(chip: ChipSpec, net: NetworkSpec, run: Callable[[], RunResult]) -> dict[str, Any]:
    """One sweep point through the cores (``run`` trains on ``chip``): the emulated chip's
    throughput and energy, and the PipeLayer ratios on the run's activity."""
    placed = _placed(chip, net)
    if not placed["fits"]:
        return placed
    result = run()
    comparison = result.comparison
    assert result.time_ns_per_sample is not None
    return placed | {
        "samples_per_s": 1e9 / result.time_ns_per_sample,
        "time_ns_per_sample": result.time_ns_per_sample,
        "energy_pj_per_sample": result.energy_pj_per_sample,
        "speedup": comparison.speedup if comparison else None,
        "energy_ratio": comparison.energy_ratio if comparison else None,
        "test_accuracy": result.test_accuracy,
        "weights_sha256": result.weights_sha256,
        "cycles": result.cycles,
        "actors": result.actors,
        "wall_s": result.wall_s,
    }


def cpu_scaling(runs: dict[int, RunResult]) -> dict[str, Any]:
    """Wall-clock speedup and parallel efficiency over CPU counts (the emulator's own
    scaling), and whether the emulated results are identical at every count."""
    counts = sorted(runs)
    base = counts[0]

    def same(r: RunResult) -> tuple:
        return (r.weights_sha256, r.cycles, r.energy_pj, r.test_accuracy)

    rows = []
    for c in counts:
        speedup = runs[base].wall_s / runs[c].wall_s
        rows.append(
            {
                "cpus": c,
                "wall_s": runs[c].wall_s,
                "wall_speedup": speedup,
                "parallel_efficiency": speedup / (c / base),
                "identical": same(runs[c]) == same(runs[base]),
            }
        )
    return {"runs": rows, "identical": all(r["identical"] for r in rows)}
