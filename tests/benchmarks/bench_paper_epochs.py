"""Benchmark: how long an epoch of each paper network takes here, ideal and on the chip.

Each paper network (``emulator.compare.PAPER_NETWORKS``) trains ``--batches`` batches of
random input at its own shape and T (event frames at ``--rate``; the rate networks get
values in [0, 1] they encode themselves) in batches of the network file's size under
``sdfa``, after one warm-up batch: on ideal
weights (``pipesdfa train``) and on the edge chip grown to hold it (``pipesdfa train --chip
pipesdfa-edge --grow``, which trains the bits ``pipesdfa run`` does). It prints seconds per
training sample and the epoch that makes on the published training set (N-MNIST 60,000,
SHD 8,156, Braille 4,320 = 80 % of 5,400, DVS-Gesture 1,176), one BLAS thread. A network
whose chip would not fit this machine's memory says so instead.

Usage: ``python tests/benchmarks/bench_paper_epochs.py [--networks a,b] [--batch B]
[--batches N] [--skip-chip] [--json]``
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy loads

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from emulator.compare import PAPER_NETWORKS  # noqa: E402
from emulator.learning import ReferenceModel, network_inputs  # noqa: E402
from emulator.learning.needs import training_needs  # noqa: E402
from emulator.limits import LimitError, check_fits, mesh_need  # noqa: E402
from emulator.physics.growth import fit_chip  # noqa: E402
from emulator.spec import load_chip, load_network  # noqa: E402
from emulator.train import chip_model  # noqa: E402

TRAINING_SET = {"nmnist": 60_000, "shd": 8_156, "braille": 4_320, "dvsgesture": 1_176}


def per_sample(model: ReferenceModel, batch: int, batches: int, rate: float) -> float:
    """Seconds per training sample: the best of ``batches`` batches after a warm-up one."""
    net, rng = model.net, np.random.default_rng(0)
    temporal = net.encoding == "events"
    shape = (batch, net.time_steps, *net.input_shape) if temporal else (batch, *net.input_shape)
    x = (rng.random(shape) < rate).astype(np.uint8) if temporal else rng.random(shape)
    ids = np.arange(batch)
    spikes = network_inputs(net, x, temporal=temporal, seed=0, key=("train", 0), sample_ids=ids)
    y = rng.integers(0, net.num_classes, batch)
    best = float("inf")
    for k in range(batches + 1):
        start = time.perf_counter()
        model.train_batch(spikes, y, (0, k))
        if k:
            best = min(best, time.perf_counter() - start)
    return best / batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", default=",".join(PAPER_NETWORKS))
    parser.add_argument("--batch", type=int, help="samples per batch (default: the file's)")
    parser.add_argument("--batches", type=int, default=2)
    parser.add_argument("--rate", type=float, default=0.05, help="event rate of the frames")
    parser.add_argument("--skip-chip", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    for name in args.networks.split(","):
        net = load_network(name)
        batch = args.batch or net.training.batch
        samples = TRAINING_SET[name.split("-")[0]]
        row: dict = {"network": name, "batch": batch, "training_samples": samples}
        model = ReferenceModel(net, algorithm="sdfa", seed=0)
        row["ideal_s_per_sample"] = per_sample(model, batch, args.batches, args.rate)
        if not args.skip_chip:
            chip = fit_chip(load_chip("pipesdfa-edge"), net)
            row["chip"] = chip.name
            try:
                check_fits([*training_needs(net, batch), mesh_need(chip)])
                model = chip_model(net, chip, algorithm="sdfa", seed=0)
                row["chip_s_per_sample"] = per_sample(model, batch, args.batches, args.rate)
            except (LimitError, MemoryError) as err:
                row["chip_refused"] = str(err)
        rows.append(row)
        if not args.json:
            _print(row)
    if args.json:
        print(json.dumps(rows, indent=2))


def _print(row: dict) -> None:
    n = row["training_samples"]
    line = f"{row['network']:>19}: ideal {row['ideal_s_per_sample'] * 1e3:8.1f} ms/sample"
    line += f" ({_minutes(row['ideal_s_per_sample'] * n)} per epoch of {n:,})"
    if "chip_s_per_sample" in row:
        s = row["chip_s_per_sample"]
        line += f"; on {row['chip']} {s * 1e3:8.1f} ms/sample ({_minutes(s * n)})"
    elif "chip_refused" in row:
        line += f"; on {row['chip']}: {row['chip_refused']}"
    print(line, flush=True)


def _minutes(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.1f} min"


if __name__ == "__main__":
    main()
