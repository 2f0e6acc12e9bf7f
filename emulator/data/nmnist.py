"""N-MNIST recordings (Orchard et al. 2015): 40-bit events of a 34x34 sensor, binned into
spike frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emulator.data.base import (
    Dataset,
    DatasetError,
    Report,
    Tally,
    binned,
    check_labels,
    data_folder,
    event_dataset,
    list_dir,
    on_sensor,
    read_bytes,
    zero_frames,
)

NMNIST_SENSOR = 34  # N-MNIST recordings are 34x34 pixels
NMNIST_FRAME_SHAPE = (2, NMNIST_SENSOR, NMNIST_SENSOR)  # (polarity, y, x)
NMNIST_EVENT_BYTES = 5


def load(data, time_steps: int, input_shape, num_classes, progress: Report | None) -> Dataset:
    """N-MNIST recordings (Train/<digit>/*.bin, Test/<digit>/*.bin) binned into spike frames."""
    folder = data_folder("nmnist", data, "a folder holding Train/<digit>/*.bin and Test/")
    splits = [(folder / name, _nmnist_files(folder / name)) for name in ("Train", "Test")]
    tally = Tally(sum(len(files) for _, files in splits), progress)
    train, test = (
        _read_nmnist_split(split, files, time_steps, num_classes, tally) for split, files in splits
    )
    return event_dataset("nmnist", train, test, input_shape, num_classes)


def _read_nmnist_split(
    split: Path, files: list[tuple[Path, int]], time_steps: int, num_classes, tally: Tally
) -> tuple[np.ndarray, np.ndarray]:
    """Spike frames (N, T, 2, 34, 34) uint8 and labels (N,) int64 of one split's files."""
    labels = np.array([label for _, label in files], dtype=np.int64)
    check_labels(labels, num_classes, str(split))
    x = zero_frames(split, len(files), "recordings", time_steps, NMNIST_FRAME_SHAPE)
    for i, (path, _) in enumerate(files):
        x[i] = _spike_frames(path, time_steps)
        tally.step()
    return x, labels


def _nmnist_files(split: Path) -> list[tuple[Path, int]]:
    """(file, label) for every .bin under split/<label>/, in label then file-name order."""
    if not split.is_dir():
        raise DatasetError(f"{split}: no such folder (N-MNIST needs Train/<digit>/*.bin and Test/)")
    files = []
    for class_dir in list_dir(split):
        if class_dir.name.startswith(".") or not class_dir.is_dir():
            continue  # stray files and hidden folders hold no samples
        if not class_dir.name.isdigit():
            raise DatasetError(f"{class_dir}: class folders must be named by their digit label")
        label = int(class_dir.name)
        files += [(path, label) for path in list_dir(class_dir) if path.suffix == ".bin"]
    if not files:
        raise DatasetError(f"{split}: no <digit>/*.bin files found")
    # Sorted so the sample order, and with it any seeded run, is the same on every machine.
    return sorted(files, key=lambda item: (item[1], item[0].name))


def _spike_frames(path: Path, time_steps: int) -> np.ndarray:
    """Bin one recording into (T, 2, 34, 34) binary frames over [0, its last timestamp].

    Frame t holds events with t <= ts * T / t_max < t + 1; the last event falls in frame
    T - 1. A pixel is 1 if at least one event of that polarity hit it in that frame.
    """
    x, y, polarity, ts = _read_events(path)
    return binned(ts, (polarity, y, x), time_steps, NMNIST_FRAME_SHAPE)


def _read_events(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """x, y, polarity, timestamp (µs) of each 40-bit event in an N-MNIST .bin file.

    Layout per event (Orchard et al. 2015): byte 0 x, byte 1 y, byte 2 bit 7 polarity,
    byte 2 bits 6..0 then bytes 3 and 4 a 23-bit big-endian timestamp.
    """
    raw = read_bytes(path)
    if not raw:
        raise DatasetError(f"{path}: an empty recording (0 bytes, no events)")
    if len(raw) % NMNIST_EVENT_BYTES:
        raise DatasetError(
            f"{path}: {len(raw)} bytes is not a whole number of {NMNIST_EVENT_BYTES}-byte events"
        )
    events = np.frombuffer(raw, np.uint8).reshape(-1, NMNIST_EVENT_BYTES).astype(np.int64)
    x, y = events[:, 0], events[:, 1]
    on_sensor(path, x, y, NMNIST_SENSOR)
    polarity = events[:, 2] >> 7
    ts = ((events[:, 2] & 0x7F) << 16) | (events[:, 3] << 8) | events[:, 4]
    return x, y, polarity, ts
