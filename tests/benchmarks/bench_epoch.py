"""Benchmark: one training epoch of sdfa vs bptt (and sdfa-local-bptt) on digits-mlp.

Prints wall time per epoch and the ratios to bptt, measured side by side in one run with
the algorithms interleaved (the machine is shared and noisy; the median of the repeats
is reported). Usage: ``python tests/benchmarks/bench_epoch.py [--repeats N] [--chip FILE]``.
"""

from __future__ import annotations

import argparse
import json
import statistics

from emulator.learning import ALGORITHMS, train
from emulator.spec import load_chip, load_network
from emulator.train import chip_model, load_for


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--network", default="digits-mlp")
    parser.add_argument("--chip", help="also run the layers on this chip's crossbars")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    net = load_network(args.network)
    chip = load_chip(args.chip) if args.chip else None
    data = load_for(net, "digits", None, 0)
    seconds: dict[str, list[float]] = {a: [] for a in ALGORITHMS}
    for repeat in range(args.repeats):
        for algorithm in ALGORITHMS:
            model = chip_model(net, chip, algorithm=algorithm, seed=repeat) if chip else None
            result = train(net, data, algorithm=algorithm, seed=repeat, epochs=1, model=model)
            # train() also measures accuracy at the end: count only the epoch itself.
            seconds[algorithm].append(result["history"][0]["seconds"])
    median = {a: statistics.median(s) for a, s in seconds.items()}
    report = {
        "network": net.name,
        "chip": chip.name if chip else None,
        "repeats": args.repeats,
        "epoch_s": median,
        "ratio_to_bptt": {a: median[a] / median["bptt"] for a in ALGORITHMS},
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(
        f"one epoch of {net.name} ({'chip ' + chip.name if chip else 'ideal weights'}), "
        f"median of {args.repeats}:"
    )
    for a in ALGORITHMS:
        print(f"  {a:16s} {median[a] * 1000:8.1f} ms   {report['ratio_to_bptt'][a]:.2f}x bptt")


if __name__ == "__main__":
    main()
