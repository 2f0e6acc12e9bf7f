"""Benchmark: what checkpoints and a recovery cost in wall time, side by side in one run.

On the same chip, network and seed (default: the edge chip, digits-mlp, 2 epochs + the
evaluation every run does), interleaved and repeated, the order rotated each repeat: the
in-process runtime without checkpoints, with one checkpoint per epoch on disk, and with one
after every batch; then Ray undisturbed, Ray with a checkpoint after every batch (in memory),
and the same with a PE core's actor crashed at training batch 2 (replayed from the last
checkpoint). Prints medians, the ratios, the size and save time of one checkpoint, and checks
every run ended with the same weights_sha256.

Usage: ``python tests/benchmarks/bench_checkpoint.py [--repeats N] [--epochs E] [--json]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import ray

import emulator.runtime.checkpoint as ckpt
from emulator.run import run_emulation
from emulator.runtime.session import use_local_token
from emulator.spec import load_chip, load_network


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chip", default="pipesdfa-edge")
    parser.add_argument("--network", default="digits-mlp")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
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
    save_s: list[float] = []
    save = ckpt.save

    def timed_save(*a, **kw):  # the time of each checkpoint write, from inside the run
        t = time.perf_counter()
        out = save(*a, **kw)
        save_s.append(time.perf_counter() - t)
        return out

    ckpt.save = timed_save
    sizes: list[int] = []

    def run(runtime: str, **kw) -> dict:
        with tempfile.TemporaryDirectory() as tmp:
            if kw.pop("disk", False):
                kw["checkpoint_dir"] = tmp
            result = run_emulation(net, chip, runtime=runtime, epochs=args.epochs, **kw)
            sizes.extend(p.stat().st_size for p in Path(tmp).glob("ckpt-*/state.msgpack"))
        return result

    cases = {
        "local": lambda: run("local"),
        "local, checkpoint per epoch": lambda: run("local", disk=True),
        "local, checkpoint per batch": lambda: run("local", disk=True, checkpoint_every=1),
        "ray": lambda: run("ray"),
        "ray, checkpoint per batch": lambda: run("ray", checkpoint_every=1),
        "ray, crash at batch 2": lambda: run(
            "ray", checkpoint_every=1, inject_failure=("pe-0-1", 2)
        ),
    }
    walls: dict[str, list[float]] = {name: [] for name in cases}
    shas: set[str] = set()
    with contextlib.redirect_stdout(sys.stderr):  # Ray reports the dead worker on stdout
        names = list(cases)
        for r in range(args.repeats):
            for name in names[r % len(names) :] + names[: r % len(names)]:  # rotated
                t = time.perf_counter()
                result = cases[name]()
                walls[name].append(time.perf_counter() - t)
                shas.add(result["weights_sha256"])
    ray.shutdown()
    median = {name: statistics.median(w) for name, w in walls.items()}
    out = {
        "chip": args.chip,
        "network": args.network,
        "epochs": args.epochs,
        "repeats": args.repeats,
        "wall_s": median,
        "per_epoch_vs_none": median["local, checkpoint per epoch"] / median["local"],
        "per_batch_vs_none": median["local, checkpoint per batch"] / median["local"],
        "ray_per_batch_vs_none": median["ray, checkpoint per batch"] / median["ray"],
        "crash_vs_same_checkpoints": median["ray, crash at batch 2"]
        / median["ray, checkpoint per batch"],
        "checkpoint_bytes": statistics.median(sizes) if sizes else None,
        "checkpoint_save_s": statistics.median(save_s) if save_s else None,
        "same_weights_sha256": len(shas) == 1,
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(
        f"{args.network} on {args.chip}, {args.epochs} epochs + evaluation, median of "
        f"{args.repeats}:"
    )
    for name, wall in median.items():
        print(f"  {name:30s} {wall:7.2f} s")
    print(f"  checkpoint per epoch / none  = {out['per_epoch_vs_none']:.2f}")
    print(f"  checkpoint per batch / none  = {out['per_batch_vs_none']:.2f}")
    print(f"  Ray, checkpoint per batch / none = {out['ray_per_batch_vs_none']:.2f}")
    print(f"  Ray with a crash / without (both per batch) = {out['crash_vs_same_checkpoints']:.2f}")
    print(
        f"  one checkpoint: {out['checkpoint_bytes'] / 1024:.0f} KiB, written in "
        f"{out['checkpoint_save_s'] * 1000:.1f} ms"
    )
    print(f"  same weights_sha256 in every run: {out['same_weights_sha256']}")


if __name__ == "__main__":
    main()
