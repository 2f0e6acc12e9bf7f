"""Dataset loaders: fixed train/test arrays for the emulator's SNN training runs.

Seven sources: scikit-learn's bundled 8x8 digits, MNIST-style IDX files, N-MNIST event
recordings, the Spiking Heidelberg Digits (SHD, HDF5), IBM's DVS128 Gesture recordings
(AEDAT 3.1) and the event-based Braille letters (a pickle of records) binned into spike frames,
and a seeded synthetic set for tests and smoke runs.
Every loader returns a `Dataset`; every failure is a one-line `DatasetError` that names the
file (or the dataset) at fault. One module per format (:mod:`emulator.data.digits`, ``idx``,
``nmnist``, ``shd``, ``dvsgesture``, ``braille``, ``synthetic``) on what they share
(:mod:`emulator.data.base`); this module picks the reader.
"""

from __future__ import annotations

import math
import os

import numpy as np

from emulator.data import braille, digits, dvsgesture, idx, nmnist, shd, synthetic
from emulator.data.base import (
    Dataset,
    DatasetError,
    Report,
    reason_of,
)

__all__ = ["DATASETS", "Dataset", "DatasetError", "describe", "load_dataset"]

DATASETS: tuple[str, ...] = (
    "digits",
    "mnist-idx",
    "nmnist",
    "shd",
    "dvsgesture",
    "braille",
    "synthetic",
)


def load_dataset(
    name: str,
    data: str | os.PathLike | None = None,
    *,
    time_steps: int = 1,
    seed: int = 0,
    input_shape: tuple[int, ...] | None = None,
    num_classes: int | None = None,
    progress: Report | None = None,
    events: bool = False,
) -> Dataset:
    """Load one of `DATASETS`.

    Parameters
    ----------
    name : one of `DATASETS`.
    data : folder holding the files (mnist-idx, nmnist, shd, dvsgesture, braille; braille also
        takes the .pkl file itself); must be None for digits and synthetic.
    time_steps : frames per sample for event data; static datasets ignore it.
    seed : only the synthetic set depends on it; the digits split is fixed on purpose.
    input_shape : shape the network expects per sample (per frame); samples are reshaped to it.
        For synthetic it sets the sample shape (default (64,)).
    num_classes : the network's class count; labels must lie below it, and it becomes
        `Dataset.num_classes`. For synthetic it sets the class count (default 10).
        Without it, num_classes is the largest label + 1 (at least 2).
    progress : called as ``progress(done, total)`` after each recording the readers of many
        files read (nmnist, dvsgesture), for a progress line.
    events : synthetic only: seeded Poisson event frames (T = ``time_steps``) in the input
        shape, for an event-encoded network, instead of static samples.

    Raises
    ------
    DatasetError
        On any unreadable, malformed or mismatching input; the message names the file.
    """
    _check_arguments(name, time_steps, input_shape, num_classes)
    shape = None if input_shape is None else tuple(int(n) for n in input_shape)
    try:
        if name == "digits":
            return digits.load(data, shape, num_classes)
        if name == "mnist-idx":
            return idx.load(data, shape, num_classes)
        if name == "nmnist":
            return nmnist.load(data, time_steps, shape, num_classes, progress)
        if name == "shd":
            return shd.load(data, time_steps, shape, num_classes)
        if name == "dvsgesture":
            return dvsgesture.load(data, time_steps, shape, num_classes, progress)
        if name == "braille":
            return braille.load(data, time_steps, shape, num_classes)
        return synthetic.load(data, seed, shape, num_classes, events, time_steps)
    except OSError as exc:
        # Backstop: a stat or listing that fails mid-load must still read as 'PATH: reason'.
        raise DatasetError(f"{exc.filename or name}: {reason_of(exc)}") from exc


def _check_arguments(
    name: str, time_steps: int, input_shape: tuple[int, ...] | None, num_classes: int | None
) -> None:
    """Reject an unknown name or meaningless options before touching any file."""
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if time_steps < 1:
        raise DatasetError(f"{name}: time_steps must be at least 1, got {time_steps}")
    if num_classes is not None and num_classes < 2:
        raise DatasetError(f"{name}: num_classes must be at least 2, got {num_classes}")
    if input_shape is not None and (len(input_shape) == 0 or min(input_shape) < 1):
        raise DatasetError(
            f"{name}: input shape must be one or more positive sizes, got {list(input_shape)}"
        )


def describe(dataset: Dataset) -> dict:
    """What a loaded dataset holds, JSON-able: sample counts and shape, per-class counts, and
    for event data the spike rate (ones per value), the samples with no spike and the input
    channels that never fire in either split; for static data the value range and mean."""
    out: dict = {
        "dataset": dataset.name,
        "temporal": dataset.temporal,
        "train_samples": len(dataset.x_train),
        "test_samples": len(dataset.x_test),
        "sample_shape": list(dataset.sample_shape),
        "num_classes": dataset.num_classes,
        "class_counts": {
            split: np.bincount(y, minlength=dataset.num_classes).tolist()
            for split, y in (("train", dataset.y_train), ("test", dataset.y_test))
        },
    }
    splits = {"train": dataset.x_train, "test": dataset.x_test}
    if dataset.temporal:
        out["time_steps"] = int(dataset.x_train.shape[1])
        out["spike_rate"] = {k: float(x.mean()) if x.size else 0.0 for k, x in splits.items()}
        out["empty_samples"] = {
            k: int((x.reshape(len(x), -1).max(axis=1, initial=0) == 0).sum())
            for k, x in splits.items()
        }
        fired = np.zeros(math.prod(dataset.sample_shape), dtype=bool)
        for x in splits.values():
            fired |= x.reshape(-1, fired.size).any(axis=0)
        out["silent_channels"] = int((~fired).sum())
    else:
        both = [x for x in splits.values() if x.size]
        out["value_range"] = [min(float(x.min()) for x in both), max(float(x.max()) for x in both)]
        out["value_mean"] = float(np.mean([x.mean() for x in both]))
    return out
