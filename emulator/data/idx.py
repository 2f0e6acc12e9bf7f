"""MNIST-style IDX files (images and labels, optionally gzipped)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from emulator.data.base import (
    Dataset,
    DatasetError,
    check_labels,
    class_count,
    data_folder,
    dims_text,
    open_data,
    read_upto,
    scale_pixels,
    shape_samples,
)
from emulator.limits import available_memory, human_bytes

IDX_IMAGES_MAGIC = 0x00000803  # uint8 data, 3 dims: count, rows, columns
IDX_LABELS_MAGIC = 0x00000801  # uint8 data, 1 dim: count


def load(data, input_shape, num_classes) -> Dataset:
    """MNIST-style IDX files (any image size), optionally gzipped."""
    folder = data_folder("mnist-idx", data, "a folder holding the four IDX files")
    images_train, y_train = _read_idx_pair(folder, "train", num_classes)
    images_test, y_test = _read_idx_pair(folder, "t10k", num_classes)
    if images_test.shape[1:] != images_train.shape[1:]:
        raise DatasetError(
            f"{_find_idx(folder, 't10k-images', 'idx3')}: images are "
            f"{dims_text(images_test.shape[1:])} but the training images are "
            f"{dims_text(images_train.shape[1:])}"
        )
    return Dataset(
        name="mnist-idx",
        x_train=shape_samples("mnist-idx", scale_pixels(images_train), 1, input_shape),
        y_train=y_train,
        x_test=shape_samples("mnist-idx", scale_pixels(images_test), 1, input_shape),
        y_test=y_test,
        num_classes=class_count(num_classes, y_train, y_test),
        temporal=False,
    )


def _read_idx_pair(
    folder: Path, stem: str, num_classes: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, H, W) uint8 and labels (N,) int64 of one split, checked against each other."""
    images_path = _find_idx(folder, f"{stem}-images", "idx3")
    labels_path = _find_idx(folder, f"{stem}-labels", "idx1")
    images = _parse_idx(images_path, IDX_IMAGES_MAGIC, 3)
    labels = _parse_idx(labels_path, IDX_LABELS_MAGIC, 1).astype(np.int64)
    if len(labels) != len(images):
        raise DatasetError(
            f"{labels_path}: holds {len(labels)} labels but {images_path.name} "
            f"holds {len(images)} images"
        )
    check_labels(labels, num_classes, str(labels_path))
    return images, labels


def _find_idx(folder: Path, stem: str, kind: str) -> Path:
    """The IDX file for `stem`, under the usual or the dotted name, plain or gzipped."""
    names = (f"{stem}-{kind}-ubyte", f"{stem}.{kind}-ubyte")
    for name in names:
        for suffix in ("", ".gz"):
            if (folder / (name + suffix)).is_file():
                return folder / (name + suffix)
    raise DatasetError(
        f"{folder / names[0]}: file not found (also looked for {names[0]}.gz, {names[1]}, "
        f"{names[1]}.gz)"
    )


IDX_BYTES_PER_VALUE = 6
"""Memory one IDX value takes once loaded (the uint8 value, its float32 pixel, slack): the
header's dims times this must fit this machine's free memory before any data is read."""


def _parse_idx(path: Path, magic: int, ndims: int) -> np.ndarray:
    """Parse an IDX file of uint8 data: big-endian int32 magic, `ndims` int32 sizes, data.

    The header is read first and its dims checked against this machine's memory; then
    exactly the bytes it declares are read (a gzip bomb is not inflated past them)."""
    header = 4 + 4 * ndims
    with open_data(path) as stream:
        head = read_upto(stream, path, header)
        if len(head) < header:
            raise DatasetError(
                f"{path}: {len(head)} bytes is too short for the {header}-byte header"
            )
        found = int.from_bytes(head[:4], "big")
        if found != magic:
            raise DatasetError(f"{path}: expected magic {magic}, found {found}")
        dims = tuple(int.from_bytes(head[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndims))
        declared = math.prod(dims)
        if declared == 0:
            raise DatasetError(f"{path}: holds no data (header declares {dims_text(dims)})")
        free = available_memory()
        if declared * IDX_BYTES_PER_VALUE > free:
            raise DatasetError(
                f"{path}: header declares {dims_text(dims)} ({human_bytes(declared)} of data, "
                f"{human_bytes(declared * IDX_BYTES_PER_VALUE)} once loaded), more than this "
                f"machine's {human_bytes(free)} of free memory"
            )
        raw = read_upto(stream, path, declared + 1)
    if len(raw) != declared:
        held = f"{len(raw)}" if len(raw) <= declared else "more"
        raise DatasetError(
            f"{path}: header declares {dims_text(dims)} ({declared} bytes of data) "
            f"but the file holds {held}"
        )
    return np.frombuffer(raw, np.uint8).reshape(dims)
