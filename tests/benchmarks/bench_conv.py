"""Benchmark: the reference trainer on the paper's DVS-Gesture ConvNet, beside numpy's GEMM.

``dvsgesture-convnet`` (5 conv blocks + FC 2048-1024-110, LIF, T = 30, 2×128×128 event frames
at a 3 % event rate, ideal weights) trains ``--batches`` batches of ``--batch`` samples and
evaluates one, per algorithm, with one BLAS thread. It prints seconds per training and per
evaluated sample (best batch after the first, which pays the memory's first touch), the
multiply-adds of a training step (forward, weight gradient, and for ``bptt`` the input
gradient) and the fraction of numpy's float64 GEMM rate that makes, measured in the same run.
The rest of a step is memory traffic: im2col patches, pooling, the neuron's traces.

Run it twice with ``PYTHONPATH`` at two commits for a before/after ratio.

Usage: ``python tests/benchmarks/bench_conv.py [--batch B] [--batches N]
[--algorithms sdfa,bptt] [--json]``
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy loads

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from bench_limit import gemm_rate  # noqa: E402  (this folder is on sys.path)

from emulator.learning import weight_shapes  # noqa: E402
from emulator.learning.model import ReferenceModel  # noqa: E402
from emulator.spec import ConvLayer, layer_shapes, load_network, weighted_layers  # noqa: E402

EVENT_RATE = 0.03


def forward_macs(net) -> int:
    """Multiply-adds of one sample's forward over all T steps."""
    shapes, total = layer_shapes(net), 0
    for index, i in enumerate(weighted_layers(net)):
        n_out, n_in = weight_shapes(net)[index]
        positions = math.prod(shapes[i + 1][1:]) if isinstance(net.layers[i], ConvLayer) else 1
        total += positions * n_out * n_in
    return total * net.time_steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network", default="dvsgesture-convnet")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--algorithms", default="sdfa,bptt")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    net = load_network(args.network)
    rng = np.random.default_rng(0)
    shape = (net.time_steps, args.batch, *net.input_shape)
    x = (rng.random(shape) < EVENT_RATE).astype(np.uint8)
    y = rng.integers(0, net.num_classes, args.batch)
    gemm = gemm_rate()
    rows = []
    for algorithm in args.algorithms.split(","):
        model = ReferenceModel(net, algorithm=algorithm, seed=0)
        train = []
        for k in range(args.batches):
            start = time.perf_counter()
            model.train_batch(x, y, (0, k))
            train.append(time.perf_counter() - start)
        start = time.perf_counter()
        model.predict(x, (1, 0))
        evaluate = time.perf_counter() - start
        passes = 3 if algorithm == "bptt" else 2  # forward, ∂W, and ∂input under BPTT
        macs = forward_macs(net) * passes
        best = min(train[1:] or train) / args.batch
        rows.append(
            {
                "algorithm": algorithm,
                "train_s_per_sample": best,
                "train_s_all": [t / args.batch for t in train],
                "eval_s_per_sample": evaluate / args.batch,
                "train_macs_per_sample": macs,
                "fraction_of_gemm": macs / best / gemm,
            }
        )
    if args.json:
        print(json.dumps({"network": net.name, "gemm_macs_per_s": gemm, "runs": rows}))
        return
    print(f"{net.name}, batch {args.batch}, numpy GEMM {gemm / 1e9:.1f} G MAC/s on one thread")
    for r in rows:
        print(
            f"{r['algorithm']:>5}: train {r['train_s_per_sample']:.2f} s/sample "
            f"({r['train_macs_per_sample'] / 1e9:.1f} G MAC: {r['fraction_of_gemm']:.2f} of "
            f"GEMM), evaluate {r['eval_s_per_sample']:.2f} s/sample"
        )


if __name__ == "__main__":
    main()
