"""The Spiking Heidelberg Digits (Cramer et al. 2020): HDF5 spike trains of 700 channels."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emulator.data.base import (
    Dataset,
    DatasetError,
    binned,
    check_labels,
    data_folder,
    event_dataset,
    reason_of,
    zero_frames,
)

SHD_CHANNELS = 700  # cochlea model channels (Cramer et al. 2020)
SHD_FILES = ("shd_train.h5", "shd_test.h5")


def load(data, time_steps: int, input_shape, num_classes) -> Dataset:
    """The Spiking Heidelberg Digits: shd_train.h5 and shd_test.h5 (gunzipped) as published,
    each sample's spikes binned into T frames of the 700 channels."""
    folder = data_folder("shd", data, "a folder holding shd_train.h5 and shd_test.h5")
    h5py = _h5py("shd")
    train, test = (_read_shd(folder / name, time_steps, num_classes, h5py) for name in SHD_FILES)
    return event_dataset("shd", train, test, input_shape, num_classes)


def _h5py(name: str):
    try:
        import h5py
    except ImportError:
        raise DatasetError(
            f"{name}: reading HDF5 needs h5py (pip install -e '.[datasets]')"
        ) from None
    return h5py


def _read_shd(
    path: Path, time_steps: int, num_classes: int | None, h5py
) -> tuple[np.ndarray, np.ndarray]:
    """Spike frames (N, T, 700) uint8 and labels (N,) int64 of one SHD file: ``spikes/times``
    (seconds) and ``spikes/units`` (channels), one variable-length array per sample, and
    ``labels``; ``extra/`` is not needed."""
    if not path.is_file():
        gz = path.with_name(path.name + ".gz")
        hint = f" ({gz.name} is there: gunzip it first)" if gz.exists() else ""
        raise DatasetError(f"{path}: no such file{hint}")
    try:
        with h5py.File(path, "r") as f:
            arrays = []
            for key in ("spikes/times", "spikes/units", "labels"):
                if key not in f:
                    raise DatasetError(
                        f"{path}: no {key} (SHD files hold spikes/times, spikes/units, labels)"
                    )
                arrays.append(f[key][()])
    except OSError as exc:
        raise DatasetError(f"{path}: not a readable HDF5 file ({reason_of(exc)})") from exc
    times, units, raw_labels = arrays
    if not len(times) == len(units) == len(raw_labels):
        raise DatasetError(
            f"{path}: {len(times)} spike-time arrays, {len(units)} unit arrays and "
            f"{len(raw_labels)} labels: one of each per sample"
        )
    labels = np.asarray(raw_labels)
    if labels.ndim != 1 or labels.dtype.kind not in "iu" or (labels < 0).any():
        raise DatasetError(f"{path}: labels must be one non-negative integer per sample")
    labels = labels.astype(np.int64)
    check_labels(labels, num_classes, str(path))
    x = zero_frames(path, len(labels), "samples", time_steps, (SHD_CHANNELS,))
    for i, (t, u) in enumerate(zip(times, units, strict=True)):
        x[i] = binned(*_shd_sample(path, i, t, u), time_steps, (SHD_CHANNELS,))
    return x, labels


def _shd_sample(path: Path, i: int, t, u) -> tuple[np.ndarray, tuple[np.ndarray]]:
    """Sample ``i``'s spike times (float, s) and channels, checked."""
    t, u = np.asarray(t), np.asarray(u)
    if t.ndim != 1 or u.ndim != 1 or len(t) != len(u):
        raise DatasetError(
            f"{path}: sample {i} has {t.size} spike times but {u.size} units (truncated?)"
        )
    if not t.size:
        raise DatasetError(f"{path}: sample {i} has no spikes")
    if t.dtype.kind not in "fiu" or not np.isfinite(t).all() or (t < 0).any():
        raise DatasetError(f"{path}: sample {i}: spike times must be finite seconds >= 0")
    if u.dtype.kind not in "iu" or (u < 0).any() or (u >= SHD_CHANNELS).any():
        raise DatasetError(
            f"{path}: sample {i}: units must be channels 0..{SHD_CHANNELS - 1}, got "
            f"{u.min()}..{u.max()}"
        )
    return t.astype(np.float64), (u.astype(np.int64),)
