"""Benchmark: emulated training samples per wall-second, reference vs in-process vs Ray.

One run of each on the same chip, network and seed (default: the edge chip, digits-mlp,
1 epoch, then the train/test evaluation every run does), measured side by side, repeated and
interleaved; prints the ratios the project targets (in-process ≥ 0.5× reference, Ray ≥ 0.25×
in-process on 2 cores) and a sweep of the frame window for Ray. Ray starts once, before the
clock (≈ 2–4 s); actor start-up is inside each Ray run.

Usage: ``python tests/benchmarks/bench_runtimes.py [--repeats N] [--epochs E]
[--windows 8,16,32] [--json]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import ray

from emulator.run import run_emulation
from emulator.runtime.session import use_local_token
from emulator.spec import load_chip, load_network
from emulator.train import run_training


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chip", default="pipesdfa-edge")
    parser.add_argument("--network", default="digits-mlp")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--windows", default="8,16,32", help="frame windows for the Ray sweep")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    chip, net = load_chip(args.chip), load_network(args.network)
    use_local_token()  # a private token, not the 0644 one Ray would make
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        _node_ip_address="127.0.0.1",
    )

    def reference() -> dict:
        return run_training(
            net,
            chip=chip,
            dataset="digits",
            data=None,
            algorithm="sdfa",
            seed=0,
            epochs=args.epochs,
        )

    def local() -> dict:
        return run_emulation(net, chip, runtime="local", epochs=args.epochs)

    def on_ray(window: int | None = None) -> dict:
        return run_emulation(net, chip, runtime="ray", epochs=args.epochs, frame_samples=window)

    runs = {"reference": reference, "in-process": local, "ray": on_ray}
    seconds: dict[str, list[float]] = {k: [] for k in runs}
    shas = set()
    samples = 0
    for _ in range(args.repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            result = fn()
            seconds[name].append(time.perf_counter() - start)
            shas.add(result["weights_sha256"])
            samples = result.get("samples_trained", samples)
    sweep = {}
    for window in (int(w) for w in args.windows.split(",")):
        start = time.perf_counter()
        result = on_ray(window)
        sweep[window] = {"wall_s": time.perf_counter() - start, "frames": result["frames"]}
        shas.add(result["weights_sha256"])
    median = {k: statistics.median(v) for k, v in seconds.items()}
    rate = {k: samples / v for k, v in median.items()}
    report = {
        "chip": chip.name,
        "network": net.name,
        "epochs": args.epochs,
        "samples_trained": samples,
        "median_wall_s": median,
        "samples_per_s": rate,
        "in_process_over_reference": rate["in-process"] / rate["reference"],
        "ray_over_in_process": rate["ray"] / rate["in-process"],
        "ray_window_sweep": sweep,
        "same_weights_everywhere": len(shas) == 1,
    }
    ray.shutdown()
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(
        f"{net.name} on {chip.name}, {args.epochs} epoch(s) ({samples} samples) + evaluation,"
        f" median of {args.repeats}:"
    )
    for name in runs:
        print(f"  {name:11s} {median[name]:7.2f} s  {rate[name]:8.1f} samples/s")
    print(f"  in-process / reference = {report['in_process_over_reference']:.2f} (target ≥ 0.5)")
    print(f"  ray / in-process       = {report['ray_over_in_process']:.2f} (target ≥ 0.25)")
    print(
        "  Ray frame window sweep: "
        + ", ".join(f"{w}: {v['wall_s']:.2f} s ({v['frames']} frames)" for w, v in sweep.items())
    )
    print(f"  same weights_sha256 in every run: {report['same_weights_everywhere']}")


if __name__ == "__main__":
    main()
