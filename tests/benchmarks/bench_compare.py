"""Benchmark: wall time of `pipesdfa compare --paper` (8 networks, PipeSDFA with its three
ablations and two baselines each) and of `compare --paper --sensitivity` (8 networks × 19
assumptions × 2 ends × 2 chips, spread over the machine's CPUs).

The issue's target is under 10 s each on 2 cores. Prints the medians of the repeats and the
per-network share of `compare --paper`. Usage:
``python tests/benchmarks/bench_compare.py [--repeats N]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

from emulator.compare import PAPER_NETWORKS, paper_comparison
from emulator.sensitivity import paper_sensitivity


def _median(work: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    paper = _median(paper_comparison, args.repeats)
    sensitivity = _median(paper_sensitivity, args.repeats)
    per = {}
    for name in PAPER_NETWORKS:
        start = time.perf_counter()
        paper_comparison(networks=(name,))
        per[name] = time.perf_counter() - start
    cpus = os.cpu_count()
    print(f"compare --paper: median {paper:.2f} s of {args.repeats} (target < 10 s)")
    print(
        f"compare --paper --sensitivity: median {sensitivity:.2f} s of {args.repeats} on "
        f"{cpus} CPUs (target < 10 s)"
    )
    for name, seconds in per.items():
        print(f"  {name:20s} {seconds:6.2f} s  {seconds / sum(per.values()):6.1%}")


if __name__ == "__main__":
    main()
