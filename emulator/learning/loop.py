"""The reference trainer's loop: inputs as spikes, batches in the run's order, accuracy."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from emulator.learning.model import Observer, ReferenceModel, weights_sha256
from emulator.learning.snn import events_to_steps, rate_encode
from emulator.rng import stream
from emulator.spec import NetworkSpec, epoch_lr, training_options

EVAL_EVENT_TEST = 1_000_000
EVAL_EVENT_TRAIN = 1_000_001
EVAL_EVENT_VAL = 1_000_002
"""First element of the events of accuracy passes: (EVAL_EVENT_*, eval batch index); a
validation pass adds its epoch: (EVAL_EVENT_VAL, epoch, eval batch index)."""


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
    tag: tuple[int, ...] = (),
    sample_ids: np.ndarray | None = None,
) -> float:
    """Fraction of samples predicted right, in batches of the network's ``eval_batch``.

    Sample i is encoded with ``key`` and id ``sample_ids[i]`` (default i); eval batch j runs
    with event ``(event, *tag, j)``.
    """
    right = 0
    ids_of = np.arange(len(x)) if sample_ids is None else np.asarray(sample_ids)
    size = model.net.training.eval_batch
    for j, start in enumerate(range(0, len(x), size)):
        rows = np.arange(start, min(start + size, len(x)))
        spikes = network_inputs(
            model.net, x[rows], temporal=temporal, seed=seed, key=key, sample_ids=ids_of[rows]
        )
        right += int(np.sum(model.predict(spikes, (event, *tag, j)) == y[rows]))
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
    val_fraction: float = 0.0,
    observe: Observer | None = None,
) -> dict[str, Any]:
    """Train ``net`` on ``dataset`` and measure train and test accuracy at the end.

    Epoch k visits samples in ``stream(seed, "order", k).permutation(N)`` order, in batches of
    ``batch`` (the last may be smaller); static samples are rate-coded with key ``("train", k)``
    and their global ids; batch j's update is event ``(k, j)``; its learning rate is the
    network file's schedule at epoch k (:func:`emulator.spec.epoch_lr`). Unset ``epochs``,
    ``batch``, ``lr``, ``optimizer`` come from ``net.training``. A given ``model`` (e.g.
    crossbar-backed) is trained in place; ``algorithm``, ``lr`` and ``optimizer`` must then
    agree with it. ``progress(done_batches, total_batches, loss)`` runs after every batch;
    ``eval_each_epoch`` adds the test accuracy to each epoch's history entry.

    ``val_fraction`` > 0 holds that share of the training set out (the last ones of
    ``stream(seed, "validation").permutation(N)``; the epochs then order the rest): each
    epoch's history gets its validation accuracy, and the weights of the best epoch (the
    first of the highest) are kept: the accuracies, ``weights_sha256`` and the model are the
    best epoch's, ``best_epoch`` says which. ``observe`` sees every training batch
    (:meth:`ReferenceModel.train_batch`).
    """
    t = training_options(net, epochs=epochs, batch=batch)
    epochs, batch = t.epochs, t.batch
    if model is None:
        model = ReferenceModel(net, algorithm=algorithm, seed=seed, lr=lr, optimizer=optimizer)
    else:
        _check_model(model, algorithm, lr, optimizer)
    schedule = t.model_copy(update={"lr": model.optimizer.lr})
    train_ids, val_ids = validation_split(len(dataset.x_train), val_fraction, seed)
    n = len(train_ids)
    per_epoch = math.ceil(n / batch)
    temporal = bool(dataset.temporal)
    history = []
    best: tuple[float, int, Any] | None = None  # (validation accuracy, epoch, snapshot)
    for epoch in range(epochs):
        start_time = time.perf_counter()
        model.optimizer.lr = epoch_lr(schedule, epoch)
        order = train_ids[stream(seed, "order", epoch).permutation(n)]
        total, right = 0.0, 0
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
            loss = model.train_batch(spikes, dataset.y_train[ids], (epoch, j), observe)
            right += int(np.sum(model.last_fr.argmax(axis=1) == dataset.y_train[ids]))
            total += loss * len(ids)
            if progress is not None:
                progress(epoch * per_epoch + j + 1, epochs * per_epoch, loss)
        entry: dict[str, Any] = {
            "epoch": epoch,
            "lr": model.optimizer.lr,
            "loss": total / n,
            "train_accuracy": right / n,  # during the epoch, as the weights moved
            "seconds": time.perf_counter() - start_time,
        }
        if len(val_ids):
            entry["val_accuracy"] = accuracy(
                model,
                dataset.x_train[val_ids],
                dataset.y_train[val_ids],
                temporal=temporal,
                seed=seed,
                key=("validation",),
                event=EVAL_EVENT_VAL,
                tag=(epoch,),
                sample_ids=val_ids,
            )
            if best is None or entry["val_accuracy"] > best[0]:
                best = (entry["val_accuracy"], epoch, model.snapshot())
        if eval_each_epoch:
            entry["test_accuracy"] = _test_accuracy(model, dataset, seed)
        history.append(entry)
    result: dict[str, Any] = {}
    if best is not None:
        model.restore(best[2])
        result = {"best_epoch": best[1], "val_accuracy": best[0], "val_samples": len(val_ids)}
    return {
        "train_accuracy": accuracy(
            model,
            dataset.x_train[train_ids],
            dataset.y_train[train_ids],
            temporal=temporal,
            seed=seed,
            key=("train-eval",),
            event=EVAL_EVENT_TRAIN,
            sample_ids=train_ids,
        ),
        "test_accuracy": _test_accuracy(model, dataset, seed),
        **result,
        "epochs": epochs,
        "algorithm": model.algorithm,
        "seed": seed,
        "batch": batch,
        "lr": schedule.lr,  # the first epoch's; each epoch's is in the history
        "optimizer": model.optimizer.name,
        "loss": history[-1]["loss"] if history else None,
        "weights_sha256": weights_sha256(model.weights()),
        "history": history,
    }


def validation_split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(training ids, validation ids) of a training set of ``n``: the validation set is the
    last ⌊fraction·n⌋ of ``stream(seed, "validation").permutation(n)``, both sorted; all of
    it trains when ``fraction`` is 0."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"val_fraction: must be in [0, 1), got {fraction}")
    held = math.floor(fraction * n)
    if fraction and not 0 < held < n:
        raise ValueError(
            f"val_fraction: {fraction} of {n} training samples leaves "
            f"{held} for validation and {n - held} for training; each needs at least one"
        )
    if not held:
        return np.arange(n), np.arange(0)
    order = stream(seed, "validation").permutation(n)
    return np.sort(order[:-held]), np.sort(order[-held:])


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
