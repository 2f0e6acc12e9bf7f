"""Benchmark: our trainer beside a peer's, snnTorch's BPTT, on the same network and data.

The same LIF network (digits-mlp: 64-128-10, LIF τ = 2, threshold 1, reset to zero, ATan
surrogate α = 2, T = 8, rate-coded input), the same spikes (our encoder, the same sample
order and keys), the same initial weights (ours, copied into the peer, which computes in its
own float32; we compute in float64), MSE on the output
rates, Adam (lr 0.003, batch 32), the same epochs, trained by snnTorch (``snn.Leaky`` with
β = 1 − 1/τ fed 1/τ of the input current, immediate reset to zero) and by our ``bptt``,
``sdfa-local-bptt`` and ``sdfa``, over 3 seeds, on one thread; prints each one's test
accuracy (mean ± std over the seeds) and seconds per epoch, and our ``bptt``'s accuracy and
speed against snnTorch's. Two tasks: the digits, and the digits with N(0, 0.3) pixel noise
(a harder task; no harder image or event set ships offline here: torchvision's and tonic's
download).

Needs the optional extra ``[peer]`` (CPU torch as this machine's index serves it, snntorch):
``pip install -e '.[peer]'``.

Usage: ``python tests/benchmarks/bench_peer.py [--epochs E] [--seeds 0,1,2] [--json]``
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy and torch load: one thread each

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from emulator.data.datasets import Dataset  # noqa: E402
from emulator.learning import init_weights, network_inputs, train  # noqa: E402
from emulator.rng import stream  # noqa: E402
from emulator.spec import NetworkSpec, load_network  # noqa: E402
from emulator.train import load_for  # noqa: E402

OURS = ("bptt", "sdfa-local-bptt", "sdfa")


def noisy(data: Dataset, sigma: float = 0.3) -> Dataset:
    """The digits with seeded N(0, sigma) pixel noise, clipped to [0, 1]."""

    def add(x: np.ndarray, key: str) -> np.ndarray:
        z = stream(0, "bench-peer-noise", key).standard_normal(x.shape)
        return np.clip(x + sigma * z, 0.0, 1.0).astype(np.float32)

    return Dataset(
        name=f"digits+noise{sigma}",
        x_train=add(data.x_train, "train"),
        y_train=data.y_train,
        x_test=add(data.x_test, "test"),
        y_test=data.y_test,
        num_classes=data.num_classes,
        temporal=False,
    )


def snntorch_run(net: NetworkSpec, data: Dataset, seed: int, epochs: int) -> dict:
    """snnTorch BPTT on our spikes, from our initial weights; test accuracy, s/epoch."""
    import snntorch as snn
    import torch
    from snntorch import surrogate

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    t = net.training
    w1, w2 = init_weights(net, seed)
    fc1 = torch.nn.Linear(w1.shape[1], w1.shape[0], bias=False)
    fc2 = torch.nn.Linear(w2.shape[1], w2.shape[0], bias=False)
    with torch.no_grad():
        fc1.weight.copy_(torch.from_numpy(w1))  # float32: snnTorch's own precision
        fc2.weight.copy_(torch.from_numpy(w2))
    neuron = net.neuron
    beta, gain = 1.0 - 1.0 / neuron.tau, 1.0 / neuron.tau
    spike = surrogate.atan(alpha=neuron.surrogate_alpha)
    lif = [
        snn.Leaky(
            beta=beta,
            threshold=neuron.threshold,
            reset_mechanism="zero",
            reset_delay=False,
            spike_grad=spike,
        )
        for _ in range(2)
    ]
    optimizer = torch.optim.Adam([*fc1.parameters(), *fc2.parameters()], lr=t.lr)

    def rates(spikes: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(spikes.astype(np.float32))
        m1 = torch.zeros(x.shape[1], fc1.out_features)  # V[-1] = 0 for every batch
        m2 = torch.zeros(x.shape[1], fc2.out_features)
        out = []
        for step in range(x.shape[0]):
            s1, m1 = lif[0](gain * fc1(x[step]), m1)
            s2, m2 = lif[1](gain * fc2(s1), m2)
            out.append(s2)
        return torch.stack(out).mean(dim=0)

    n, seconds = len(data.x_train), []
    for epoch in range(epochs):
        start = time.perf_counter()
        order = stream(seed, "order", epoch).permutation(n)
        for first in range(0, n, t.batch):
            ids = order[first : first + t.batch]
            spikes = network_inputs(
                net,
                data.x_train[ids],
                temporal=False,
                seed=seed,
                key=("train", epoch),
                sample_ids=ids,
            )
            target = torch.nn.functional.one_hot(
                torch.from_numpy(data.y_train[ids]), net.num_classes
            ).float()
            loss = torch.nn.functional.mse_loss(rates(spikes), target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        seconds.append(time.perf_counter() - start)
    right = 0
    with torch.no_grad():
        size = net.training.eval_batch
        for first in range(0, len(data.x_test), size):
            ids = np.arange(first, min(first + size, len(data.x_test)))
            spikes = network_inputs(
                net, data.x_test[ids], temporal=False, seed=seed, key=("test",), sample_ids=ids
            )
            right += int((rates(spikes).argmax(dim=1).numpy() == data.y_test[ids]).sum())
    return {"test_accuracy": right / len(data.x_test), "s_per_epoch": statistics.mean(seconds)}


def ours_run(net: NetworkSpec, data: Dataset, seed: int, epochs: int, algorithm: str) -> dict:
    result = train(net, data, algorithm=algorithm, seed=seed, epochs=epochs)
    per_epoch = statistics.mean(h["seconds"] for h in result["history"])
    return {"test_accuracy": result["test_accuracy"], "s_per_epoch": per_epoch}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    net = load_network("digits-mlp")
    digits = load_for(net, "digits", None, 0)
    seeds = [int(s) for s in args.seeds.split(",")]
    report: dict = {"network": net.name, "epochs": args.epochs, "seeds": seeds, "tasks": {}}
    for data in (digits, noisy(digits)):
        rows: dict[str, list[dict]] = {name: [] for name in ("snntorch-bptt", *OURS)}
        for seed in seeds:
            rows["snntorch-bptt"].append(snntorch_run(net, data, seed, args.epochs))
            for algorithm in OURS:
                rows[algorithm].append(ours_run(net, data, seed, args.epochs, algorithm))
        summary = {
            name: {
                "test_accuracy": statistics.mean(r["test_accuracy"] for r in runs),
                "test_accuracy_std": statistics.pstdev(r["test_accuracy"] for r in runs),
                "s_per_epoch": statistics.mean(r["s_per_epoch"] for r in runs),
                "runs": runs,
            }
            for name, runs in rows.items()
        }
        peer, ours = summary["snntorch-bptt"], summary["bptt"]
        summary["bptt_minus_snntorch_points"] = 100 * (
            ours["test_accuracy"] - peer["test_accuracy"]
        )
        summary["bptt_speedup_over_snntorch"] = peer["s_per_epoch"] / ours["s_per_epoch"]
        report["tasks"][data.name] = summary
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{net.name}, {args.epochs} epochs, seeds {seeds}, one thread")
    for task, summary in report["tasks"].items():
        print(f"  {task}:")
        for name in ("snntorch-bptt", *OURS):
            row = summary[name]
            print(
                f"    {name:16s} test {100 * row['test_accuracy']:6.2f} ± "
                f"{100 * row['test_accuracy_std']:4.2f} %   {row['s_per_epoch']:6.3f} s/epoch"
            )
        print(
            f"    our bptt − snnTorch: {summary['bptt_minus_snntorch_points']:+.2f} points; "
            f"our bptt {summary['bptt_speedup_over_snntorch']:.1f}x faster per epoch"
        )


if __name__ == "__main__":
    main()
