"""Benchmark: wall time of `pipesdfa compare --paper` (8 networks × 5 schedules each).

The issue's target is under 10 s on 2 cores. Prints the median of the repeats and the
per-network share. Usage: ``python tests/benchmarks/bench_compare.py [--repeats N]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

from emulator.compare import PAPER_NETWORKS, paper_comparison


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    total = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        paper_comparison()
        total.append(time.perf_counter() - start)
    per = {}
    for name in PAPER_NETWORKS:
        start = time.perf_counter()
        paper_comparison(networks=(name,))
        per[name] = time.perf_counter() - start
    median = statistics.median(total)
    print(f"compare --paper: median {median:.2f} s of {args.repeats} (target < 10 s)")
    for name, seconds in per.items():
        print(f"  {name:20s} {seconds:6.2f} s  {seconds / sum(per.values()):6.1%}")


if __name__ == "__main__":
    main()
