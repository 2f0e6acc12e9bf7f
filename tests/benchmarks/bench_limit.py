"""Benchmark: how much of the machine the emulator uses, in cell-MAC/s beside numpy's GEMM.

One network at paper size (default: ``nmnist-mlp3``, 2312-1000-1000-10 LIF, T = 10, with rate
input from the synthetic set shaped 2×34×34: 400 training and 100 test samples, batch 32) on
the edge chip grown to hold it, trained for one epoch (``--epochs``) and evaluated, by the
reference trainer on the chip (``pipesdfa train --chip``), by the in-process runtime and by
Ray (``pipesdfa run``), side by side in one process. Every run uses one BLAS thread.

cell-MAC/s = samples forwarded (training and both evaluations) × T × physical cells (every
cell of every weight array: n_in × n_out × 2 polarities × slices) / wall seconds of the whole
call, each beside numpy's float64 GEMM rate on one thread measured in the same run
(a (T·B × 128) @ (128 × 4096) product, the shape of a batched crossbar read). Prints the
ratios the project targets (issue 11): reference and in-process ≥ 0.3 of the GEMM rate, Ray on
2 CPUs (``--cpus``: one actor per CPU) ≥ 1.3× the in-process runtime; and checks every run
trained the same weights.

Usage: ``python tests/benchmarks/bench_limit.py [--network NAME] [--epochs E] [--batch B]
[--cpus C[,C...]] [--cores-per-actor K] [--skip-ray] [--skip-reference] [--json]``
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy loads: one BLAS thread, as the targets say

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402

from emulator.chip.plan import Plan  # noqa: E402
from emulator.learning import weight_shapes  # noqa: E402
from emulator.physics.growth import fit_chip  # noqa: E402
from emulator.run import run_emulation  # noqa: E402
from emulator.spec import load_chip, load_network  # noqa: E402
from emulator.train import load_for, run_training  # noqa: E402


def gemm_rate(rows: int = 320, inner: int = 128, cols: int = 4096, repeats: int = 20) -> float:
    """numpy float64 GEMM multiply-adds per second (best of ``repeats``)."""
    rng = np.random.default_rng(0)
    a, b = rng.random((rows, inner)), rng.random((inner, cols))
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return rows * inner * cols / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chip", default="pipesdfa-edge")
    parser.add_argument("--network", default="nmnist-mlp3")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=1, help="more amortise Ray's start")
    parser.add_argument(
        "--cpus", default="2", help="Ray's CPUs, one actor each; a list (1,2,4,8,16) scales"
    )
    parser.add_argument("--cores-per-actor", type=int, default=None, help="Ray grouping")
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    net = load_network(args.network).model_copy(update={"encoding": "rate"})
    epochs = args.epochs
    chip = fit_chip(load_chip(args.chip), net)
    cells = sum(n_out * n_in for n_out, n_in in weight_shapes(net)) * 2 * chip.crossbar.slices
    data = load_for(net, "synthetic", None, 0)
    forwarded = (epochs + 1) * len(data.x_train) + len(data.x_test)  # training, evaluations
    common = {"dataset": "synthetic", "seed": 0, "batch": args.batch}

    def reference() -> dict:
        return run_training(net, chip=chip, data=None, algorithm="sdfa", epochs=epochs, **common)

    def local() -> dict:
        return run_emulation(net, chip, runtime="local", epochs=epochs, **common)

    def on_ray(cpus: int) -> Callable[[], dict]:
        per_actor = args.cores_per_actor or -(-len(_cores(net, chip)) // cpus)
        options = {"cpus": cpus, "cores_per_actor": per_actor, **common}
        return lambda: run_emulation(net, chip, runtime="ray", epochs=epochs, **options)

    runs = {} if args.skip_reference else {"reference": reference}
    runs["in-process"] = local
    counts = [int(c) for c in args.cpus.split(",")]
    for cpus in [] if args.skip_ray else counts:
        runs["ray" if len(counts) == 1 else f"ray@{cpus}"] = on_ray(cpus)
    rows, shas = {}, set()
    for name, fn in runs.items():
        gemm = gemm_rate()
        start = time.perf_counter()
        result = fn()
        wall = time.perf_counter() - start
        rate = forwarded * net.time_steps * cells / wall
        rows[name] = {"wall_s": wall, "cell_mac_per_s": rate, "gemm_mac_per_s": gemm}
        rows[name]["of_gemm"] = rate / gemm
        phases = result.get("phases_s") or {}
        if phases:  # the emulated runs: training and evaluation, without start and finish
            rows[name]["phases_s"] = phases
            rows[name]["loop_s"] = phases["train"] + phases["evaluate"]
        shas.add(result["weights_sha256"])
    on_rays = [name for name in rows if name.startswith("ray")]
    for name in on_rays:
        local, ray_row = rows["in-process"], rows[name]
        ray_row["vs_in_process"] = local["wall_s"] / ray_row["wall_s"]
        if "loop_s" in local and "loop_s" in ray_row:  # runs that time their phases
            ray_row["loop_vs_in_process"] = local["loop_s"] / ray_row["loop_s"]
        ray_row["vs_first_count"] = rows[on_rays[0]]["wall_s"] / ray_row["wall_s"]
    report = {
        "network": net.name,
        "chip": chip.name,
        "physical_cells": cells,
        "runs": rows,
        "same_weights": len(shas) == 1,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    trained = epochs * len(data.x_train)
    print(
        f"{net.name} on {chip.name}: {cells / 1e6:.1f} M physical cells, T = {net.time_steps}, "
        f"{epochs} epoch(s) of {len(data.x_train)} samples + evaluation of {forwarded - trained}"
    )
    for name, row in rows.items():
        extra = f", {row['vs_in_process']:.2f}x in-process" if "vs_in_process" in row else ""
        print(
            f"  {name:10s} {row['wall_s']:7.1f} s  {row['cell_mac_per_s'] / 1e9:6.2f} G cell-MAC/s"
            f"  = {row['of_gemm']:.2f} of GEMM ({row['gemm_mac_per_s'] / 1e9:.1f} G MAC/s){extra}"
        )
        if "phases_s" in row:
            phases = ", ".join(f"{k} {v:.1f}" for k, v in row["phases_s"].items())
            print(f"  {'':10s} phases (s): {phases}")
    for name in on_rays:
        loop = rows[name].get("loop_vs_in_process")
        print(
            f"  {name}: training + evaluation alone (no start-up, no finish) "
            + (f"{loop:.2f}x in-process" if loop else "not timed")
            + f"; whole call {rows[name]['vs_first_count']:.2f}x {on_rays[0]}"
        )
    print(f"  same weights_sha256 in every run: {report['same_weights']}")


def _cores(net, chip) -> list[str]:
    return Plan(chip, net, 0, "sdfa", 0.001, "adam").cores


if __name__ == "__main__":
    main()
