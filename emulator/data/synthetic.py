"""A seeded synthetic dataset for tests and smoke runs: Gaussian images, or Poisson event
frames for event-encoded networks."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emulator.data.base import (
    Dataset,
    event_dataset,
    refuse_data,
    zero_frames,
)

SYNTHETIC_TRAIN_PER_CLASS = 40
SYNTHETIC_TEST_PER_CLASS = 10
SYNTHETIC_NOISE = 0.1
SYNTHETIC_EVENT_RATE = 0.1
"""Mean events per channel and step of the synthetic event set (its class maps spread
uniformly over [0, 0.2]); near the 0.1 spike rate the cost model assumes elsewhere."""


def load(
    data, seed: int, input_shape, num_classes, events: bool = False, time_steps: int = 1
) -> Dataset:
    """Seeded prototype-plus-noise classes; small, file-free, and easy to learn. With
    ``events``, :func:`_synthetic_events` instead."""
    refuse_data("synthetic", data, "it is generated from --seed")
    shape = input_shape or (64,)
    rng = np.random.default_rng(seed)
    if events:
        return _synthetic_events(rng, shape, num_classes or 10, time_steps)
    # Uniform random prototypes sit far apart next to 0.1 noise, so the classes separate.
    prototypes = rng.random((num_classes or 10, *shape))
    x_train, y_train = _synthetic_split(rng, prototypes, SYNTHETIC_TRAIN_PER_CLASS)
    x_test, y_test = _synthetic_split(rng, prototypes, SYNTHETIC_TEST_PER_CLASS)
    return Dataset(
        name="synthetic",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        num_classes=len(prototypes),
        temporal=False,
    )


def _synthetic_events(
    rng: np.random.Generator, shape: tuple[int, ...], num_classes: int, time_steps: int
) -> Dataset:
    """Seeded Poisson events: each class a map of channel rates, uniform in
    [0, 2·SYNTHETIC_EVENT_RATE] (mean SYNTHETIC_EVENT_RATE per step), and each sample T binary
    frames drawn from its class's map, a step at a time (so no float array of the whole set
    exists); for the event-encoded networks without a download."""
    rates = rng.random((num_classes, *shape)) * (2 * SYNTHETIC_EVENT_RATE)
    splits = []
    for per_class, what in (
        (SYNTHETIC_TRAIN_PER_CLASS, "training"),
        (SYNTHETIC_TEST_PER_CLASS, "test"),
    ):
        labels = rng.permutation(np.repeat(np.arange(num_classes), per_class))
        x = zero_frames(Path("synthetic"), len(labels), f"{what} samples", time_steps, shape)
        for n, label in enumerate(labels):
            for t in range(time_steps):
                x[n, t] = rng.random(shape) < rates[label]
        splits.append((x, labels.astype(np.int64)))
    return event_dataset("synthetic", *splits, shape, num_classes)


def _synthetic_split(
    rng: np.random.Generator, prototypes: np.ndarray, per_class: int
) -> tuple[np.ndarray, np.ndarray]:
    """`per_class` noisy copies of each prototype, in shuffled order."""
    labels = rng.permutation(np.repeat(np.arange(len(prototypes)), per_class))
    noise = rng.standard_normal((len(labels), *prototypes.shape[1:]))
    x = np.clip(prototypes[labels] + SYNTHETIC_NOISE * noise, 0.0, 1.0).astype(np.float32)
    return x, labels.astype(np.int64)
