"""scikit-learn's bundled 8x8 digits: the embedded default, nothing to download."""

from __future__ import annotations

import numpy as np

from emulator.data.base import (
    Dataset,
    check_labels,
    class_count,
    refuse_data,
    shape_samples,
)


def load(data, input_shape, num_classes) -> Dataset:
    """scikit-learn's bundled 8x8 digits, split 80/20 with a fixed stratified split."""
    refuse_data("digits", data, "it is bundled with scikit-learn")
    # Imported here: scikit-learn is slow to import and only this loader needs it.
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = (bunch.data / 16.0).astype(np.float32)  # pixel values are 0..16
    y = bunch.target.astype(np.int64)
    # random_state is fixed, not the run's seed, so accuracies compare across seeds.
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.2, stratify=y, random_state=0
    )
    check_labels(y, num_classes, "digits")
    return Dataset(
        name="digits",
        x_train=shape_samples("digits", x_train, 1, input_shape),
        y_train=y_train,
        x_test=shape_samples("digits", x_test, 1, input_shape),
        y_test=y_test,
        num_classes=class_count(num_classes, y_train, y_test),
        temporal=False,
    )
