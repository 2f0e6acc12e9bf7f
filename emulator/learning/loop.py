"""The reference trainer's loop: inputs as spikes, batches in the run's order, accuracy."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from emulator.learning.model import ReferenceModel, weights_sha256
from emulator.learning.snn import events_to_steps, rate_encode
from emulator.rng import stream
from emulator.spec import NetworkSpec, training_options

EVAL_BATCH = 256
"""Samples per forward pass when measuring accuracy (fixed, so eval events are too)."""

EVAL_EVENT_TEST = 1_000_000
EVAL_EVENT_TRAIN = 1_000_001
"""First element of the events of accuracy passes: (EVAL_EVENT_*, eval batch index)."""


class TrainingData(Protocol):
    """What :func:`train` needs of a dataset (``emulator.data.datasets.Dataset`` has it)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    temporal: bool
    num_classes: int


def network_inputs(
    net: NetworkSpec,
    x: np.ndarray,
    *,
    temporal: bool,
    seed: int,
    key: Sequence[int | str],
    sample_ids: np.ndarray,
) -> np.ndarray:
    """Samples → spikes (T, B, *input_shape): event frames transposed, static values rate-coded."""
    shape = tuple(net.input_shape)
    if temporal:
        return events_to_steps(x).reshape(x.shape[1], len(x), *shape)
    return rate_encode(x.reshape(len(x), *shape), net.time_steps, seed, key, sample_ids)


def accuracy(
    model: ReferenceModel,
    x: np.ndarray,
    y: np.ndarray,
    *,
    temporal: bool,
    seed: int,
    key: Sequence[int | str],
    event: int,
) -> float:
    """Fraction of samples predicted right, in batches of :data:`EVAL_BATCH`.

    Sample i is encoded with ``key`` and id i; eval batch j runs with event ``(event, j)``.
    """
    right = 0
    for j, start in enumerate(range(0, len(x), EVAL_BATCH)):
        ids = np.arange(start, min(start + EVAL_BATCH, len(x)))
        spikes = network_inputs(
            model.net, x[ids], temporal=temporal, seed=seed, key=key, sample_ids=ids
        )
        right += int(np.sum(model.predict(spikes, (event, j)) == y[ids]))
    return right / len(x)


def train(
    net: NetworkSpec,
    dataset: TrainingData,
    *,
    algorithm: str,
    seed: int,
    epochs: int | None = None,
    batch: int | None = None,
    lr: float | None = None,
    optimizer: str | None = None,
    model: ReferenceModel | None = None,
    progress: Callable[[int, int, float], None] | None = None,
    eval_each_epoch: bool = False,
) -> dict[str, Any]:
    """Train ``net`` on ``dataset`` and measure train and test accuracy at the end.

    Epoch k visits samples in ``stream(seed, "order", k).permutation(N)`` order, in batches of
    ``batch`` (the last may be smaller); static samples are rate-coded with key ``("train", k)``
    and their global ids; batch j's update is event ``(k, j)``. Unset ``epochs``, ``batch``,
    ``lr``, ``optimizer`` come from ``net.training``. A given ``model`` (e.g. crossbar-backed)
    is trained in place; ``algorithm``, ``lr`` and ``optimizer`` must then agree with it.
    ``progress(done_batches, total_batches, loss)`` runs after every batch;
    ``eval_each_epoch`` adds the test accuracy to each epoch's history entry.
    """
    t = training_options(net, epochs=epochs, batch=batch)
    epochs, batch = t.epochs, t.batch
    if model is None:
        model = ReferenceModel(net, algorithm=algorithm, seed=seed, lr=lr, optimizer=optimizer)
    else:
        _check_model(model, algorithm, lr, optimizer)
    n = len(dataset.x_train)
    per_epoch = math.ceil(n / batch)
    temporal = bool(dataset.temporal)
    history = []
    for epoch in range(epochs):
        start_time = time.perf_counter()
        order = stream(seed, "order", epoch).permutation(n)
        total = 0.0
        for j, start in enumerate(range(0, n, batch)):
            ids = order[start : start + batch]
            spikes = network_inputs(
                net,
                dataset.x_train[ids],
                temporal=temporal,
                seed=seed,
                key=("train", epoch),
                sample_ids=ids,
            )
            loss = model.train_batch(spikes, dataset.y_train[ids], (epoch, j))
            total += loss * len(ids)
            if progress is not None:
                progress(epoch * per_epoch + j + 1, epochs * per_epoch, loss)
        entry: dict[str, Any] = {
            "epoch": epoch,
            "loss": total / n,
            "seconds": time.perf_counter() - start_time,
        }
        if eval_each_epoch:
            entry["test_accuracy"] = _test_accuracy(model, dataset, seed)
        history.append(entry)
    return {
        "train_accuracy": accuracy(
            model,
            dataset.x_train,
            dataset.y_train,
            temporal=temporal,
            seed=seed,
            key=("train-eval",),
            event=EVAL_EVENT_TRAIN,
        ),
        "test_accuracy": _test_accuracy(model, dataset, seed),
        "epochs": epochs,
        "algorithm": model.algorithm,
        "seed": seed,
        "batch": batch,
        "lr": model.optimizer.lr,
        "optimizer": model.optimizer.name,
        "loss": history[-1]["loss"] if history else None,
        "weights_sha256": weights_sha256(model.weights()),
        "history": history,
    }


def _test_accuracy(model: ReferenceModel, dataset: TrainingData, seed: int) -> float:
    return accuracy(
        model,
        dataset.x_test,
        dataset.y_test,
        temporal=bool(dataset.temporal),
        seed=seed,
        key=("test",),
        event=EVAL_EVENT_TEST,
    )


def _check_model(
    model: ReferenceModel, algorithm: str, lr: float | None, optimizer: str | None
) -> None:
    if model.algorithm != algorithm:
        raise ValueError(f"algorithm: {algorithm!r} but the model trains with {model.algorithm!r}")
    if lr is not None and lr != model.optimizer.lr:
        raise ValueError(f"lr: {lr} but the model's optimizer has lr {model.optimizer.lr}")
    if optimizer is not None and optimizer != model.optimizer.name:
        raise ValueError(f"optimizer: {optimizer!r} but the model uses {model.optimizer.name!r}")
