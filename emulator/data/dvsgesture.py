"""IBM's DVS128 Gesture recordings (AEDAT 3.1) and their trial labels, binned into frames."""

from __future__ import annotations

import math
import struct
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
    on_sensor,
    read_bytes,
    zero_frames,
)

DVS_SENSOR = 128  # the DVS128's pixels per side
DVS_POLARITY_EVENT = 1  # AEDAT 3.1 event type of a polarity event
DVS_TRIALS = ("trials_to_train.txt", "trials_to_test.txt")
MAX_AEDAT_BYTES = 1 << 30
"""Largest AEDAT recording read (the published ones are ≈ 10–60 MB)."""


def load(data, time_steps: int, input_shape, num_classes, progress: Report | None) -> Dataset:
    """IBM DVS128 Gesture as published (DvsGesture.tar.gz unpacked): the recordings
    ``userNN_<lighting>.aedat`` (AEDAT 3.1), their ``…_labels.csv`` (class, start and end in µs,
    one gesture per row) and ``trials_to_train.txt`` / ``trials_to_test.txt`` naming the
    recordings of each split. Each gesture is one sample, binned into T frames (2, 128, 128)
    over [its start, its last event], pooled down by an integer factor when the network asks
    for a smaller frame (2, 128/k, 128/k): a position fires if any of its k × k pixels did."""
    folder = data_folder(
        "dvsgesture",
        data,
        "a folder holding the .aedat recordings, their _labels.csv and "
        "trials_to_train.txt / trials_to_test.txt",
    )
    frame = _dvs_frame(input_shape)
    splits = [(folder / listing, _dvs_recordings(folder, listing)) for listing in DVS_TRIALS]
    tally = Tally(sum(len(recordings) for _, recordings in splits), progress)
    train, test = (
        _read_dvs_split(listing, recordings, time_steps, frame, num_classes, tally)
        for listing, recordings in splits
    )
    return event_dataset("dvsgesture", train, test, input_shape, num_classes)


def _dvs_frame(input_shape) -> tuple[int, int, int]:
    """The frame the network asks for: (2, 128/k, 128/k) for an integer k (default k = 1)."""
    if input_shape is None:
        return (2, DVS_SENSOR, DVS_SENSOR)
    size = math.prod(input_shape)
    side = math.isqrt(size // 2)
    if 2 * side * side != size or DVS_SENSOR % side:
        raise DatasetError(
            f"dvsgesture: the network's input {list(input_shape)} is not 2 polarities of a "
            f"square frame whose side divides {DVS_SENSOR}"
        )
    return (2, side, side)


def _dvs_recordings(folder: Path, listing: str) -> list[tuple[Path, list]]:
    """The recordings a trial list names, each with its gestures' (label, start, end)."""
    text = read_bytes(folder / listing).decode("utf-8", "replace")
    names = [line.strip() for line in text.splitlines() if line.strip()]
    if not names:
        raise DatasetError(f"{folder / listing}: names no recording")
    gestures = []
    for name in names:
        path = folder / name
        if path.suffix != ".aedat" or path.parent != folder:
            raise DatasetError(f"{folder / listing}: {name!r} is not a .aedat file of this folder")
        gestures.append((path, _read_dvs_labels(path.with_name(path.stem + "_labels.csv"))))
    return gestures


def _read_dvs_split(
    listing: Path,
    gestures: list[tuple[Path, list]],
    time_steps: int,
    frame: tuple[int, int, int],
    num_classes,
    tally: Tally,
) -> tuple[np.ndarray, np.ndarray]:
    """Frames (N, T, *frame) uint8 and labels (N,) of the gestures of the recordings a trial
    list names, one recording in memory at a time."""
    labels = np.array([g[0] for _, rows in gestures for g in rows], dtype=np.int64)
    check_labels(labels, num_classes, str(listing))
    x = zero_frames(listing, len(labels), "gestures", time_steps, frame)
    k, i = DVS_SENSOR // frame[1], 0
    for path, rows in gestures:
        ts, xs, ys, ps = _read_aedat(path)
        for _, start, end in rows:
            inside = (ts >= start) & (ts < end)
            if not inside.any():
                raise DatasetError(f"{path}: the gesture from {start} to {end} µs holds no events")
            where = (ps[inside], ys[inside] // k, xs[inside] // k)
            x[i] = binned(ts[inside] - start, where, time_steps, frame)
            i += 1
        tally.step()
    return x, labels


def _read_dvs_labels(path: Path) -> list[tuple[int, int, int]]:
    """(class − 1, start µs, end µs) of each gesture row of a ``…_labels.csv``."""
    text = read_bytes(path).decode("utf-8", "replace").splitlines()
    rows = []
    for n, line in enumerate(text[1:], start=2):  # the first line is the header
        if not line.strip():
            continue
        parts = line.split(",")
        try:
            label, start, end = (int(p) for p in parts)
        except ValueError:
            raise DatasetError(
                f"{path}: line {n}: expected class,startTime_usec,endTime_usec"
            ) from None
        if label < 1 or start < 0 or end <= start:
            raise DatasetError(
                f"{path}: line {n}: class {label} from {start} to {end} µs is not a gesture"
            )
        rows.append((label - 1, start, end))
    if not rows:
        raise DatasetError(f"{path}: no gesture rows")
    return rows


def _read_aedat(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Timestamps (µs), x, y, polarity of the valid polarity events of an AEDAT 3.1 file:
    '#' header lines ending with ``#!END-HEADER``, then packets of a 28-byte header
    (eventType, eventSource int16; eventSize, eventTSOffset, eventTSOverflow, eventCapacity,
    eventNumber, eventValid int32, little-endian) and ``eventCapacity`` events of
    ``eventSize`` bytes; a polarity event (type 1, 8 bytes) is a uint32 (bit 0 valid, bit 1
    polarity, bits 2-16 y, bits 17-31 x) and an int32 timestamp (bits 31+ from the
    packet's overflow)."""
    raw = read_bytes(path, MAX_AEDAT_BYTES)
    if not raw.startswith(b"#!AER-DAT3"):
        raise DatasetError(f"{path}: not an AEDAT 3 file (no #!AER-DAT3 first line)")
    end = raw.find(b"#!END-HEADER")
    if end < 0:
        raise DatasetError(f"{path}: the header has no #!END-HEADER line")
    offset = raw.index(b"\n", end) + 1
    parts = []
    while offset < len(raw):
        if offset + 28 > len(raw):
            raise DatasetError(f"{path}: truncated: a packet header at byte {offset} is cut short")
        kind, _, size, ts_offset, overflow, capacity, _, _ = struct.unpack_from(
            "<hhiiiiii", raw, offset
        )
        offset += 28
        length = size * capacity
        if size < 0 or capacity < 0 or offset + length > len(raw):
            raise DatasetError(
                f"{path}: truncated: a packet at byte {offset - 28} declares {length} bytes, "
                f"{len(raw) - offset} are left"
            )
        if kind == DVS_POLARITY_EVENT:
            if size != 8 or ts_offset != 4:
                raise DatasetError(
                    f"{path}: polarity events of {size} bytes (timestamp at byte "
                    f"{ts_offset}), not 8 (at 4)"
                )
            events = np.frombuffer(raw, "<u4", capacity * 2, offset).reshape(capacity, 2)
            data, ts = events[:, 0].astype(np.int64), events[:, 1].astype(np.int64)
            valid = (data & 1).astype(bool)
            parts.append((((overflow << 31) | ts)[valid], data[valid]))
        offset += length
    if not parts:
        raise DatasetError(f"{path}: no polarity events")
    ts = np.concatenate([t for t, _ in parts])
    data = np.concatenate([d for _, d in parts])
    x, y, polarity = data >> 17, (data >> 2) & 0x7FFF, (data >> 1) & 1
    on_sensor(path, x, y, DVS_SENSOR)
    return ts, x, y, polarity
