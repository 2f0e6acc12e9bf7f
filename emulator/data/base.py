"""What every dataset reader shares: the :class:`Dataset` it returns, the one-line
:class:`DatasetError`, bounded reads of the user's files, binning events into frames, and
the checks of shapes and labels."""

from __future__ import annotations

import contextlib
import gzip
import math
import os
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from emulator.limits import available_memory, human_bytes, open_regular


class DatasetError(ValueError):
    """A dataset could not be loaded; str(err) is one line 'PATH: reason' (or 'NAME: reason')."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """Train and test arrays of one dataset.

    Static data (`temporal` False): x is float32 in [0, 1], shape (N, *sample_shape).
    Temporal data (`temporal` True): x is uint8 spikes (0 or 1), shape (N, T, *sample_shape),
    event data already binned into T frames. Labels are int64, shape (N,), in
    [0, num_classes). `eq=False` because field-wise `==` on arrays has no single truth value.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    temporal: bool

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one sample (one frame for temporal data)."""
        return tuple(self.x_train.shape[2 if self.temporal else 1 :])


Report = Callable[[int, int], None]
"""``report(done, total)``: recordings read so far, of all the dataset's."""


@dataclass
class Tally:
    """Counts the recordings read and reports each to an optional :data:`Report`."""

    total: int
    report: Report | None
    done: int = 0

    def step(self) -> None:
        self.done += 1
        if self.report is not None:
            self.report(self.done, self.total)


MAX_EVENT_FILE_BYTES = 64 << 20
"""Largest N-MNIST recording read (one is ≈ 20 KB)."""


@contextlib.contextmanager
def open_data(path: Path) -> Iterator[BinaryIO]:
    """A regular data file open for reading, gunzipped when its name ends in .gz."""
    stream, _ = open_regular(path, "data file", error=DatasetError)
    with stream:
        if path.suffix != ".gz":
            yield stream
            return
        with gzip.GzipFile(fileobj=stream, mode="rb") as unzipped:
            yield unzipped


def read_upto(stream: BinaryIO, path: Path, limit: int) -> bytes:
    """At most ``limit`` bytes of ``stream`` (fewer only at its end)."""
    try:
        return stream.read(limit)
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(f"{path}: cannot read ({reason_of(exc)})") from exc


def scale_pixels(images: np.ndarray) -> np.ndarray:
    """uint8 images (N, H, W) to float32 in [0, 1], flattened to (N, H*W)."""
    return images.reshape(len(images), -1).astype(np.float32) / np.float32(255)


def binned(
    ts: np.ndarray,
    where: tuple[np.ndarray, ...],
    time_steps: int,
    shape: tuple[int, ...],
    t_max: float | None = None,
) -> np.ndarray:
    """Binary frames (T, *shape) of one recording's events over [0, t_max] (default: its last
    timestamp): event i (at ``ts[i]``, position ``where[·][i]``) falls in frame ⌊ts·T/t_max⌋,
    an event at t_max in frame T − 1; a position is 1 if at least one event hit it in that
    frame. Integer timestamps (N-MNIST, µs) are binned in exact integer arithmetic, over their
    own last timestamp (``t_max`` is for float seconds)."""
    frames = np.zeros((time_steps, *shape), dtype=np.uint8)
    if ts.size == 0:
        return frames
    if ts.dtype.kind in "iu":
        t_max = max(int(ts.max()), 1)  # a recording whose events all sit at 0 fills frame 0
        frame = ts * time_steps // t_max
    else:
        t_max = float(ts.max()) if t_max is None else t_max
        frame = np.floor(ts * (time_steps / t_max)).astype(np.int64) if t_max > 0 else ts * 0
    frames[(np.minimum(frame, time_steps - 1).astype(np.int64), *where)] = 1
    return frames


def on_sensor(path: Path, x: np.ndarray, y: np.ndarray, side: int) -> None:
    """DatasetError naming the first event off a ``side`` × ``side`` sensor, if any."""
    outside = np.flatnonzero((x >= side) | (y >= side))
    if outside.size:
        i = outside[0]
        raise DatasetError(
            f"{path}: event {i} at x={x[i]}, y={y[i]} lies outside the {side}x{side} sensor"
        )


def zero_frames(
    where: Path, count: int, what: str, time_steps: int, shape: tuple[int, ...]
) -> np.ndarray:
    """Zeroed uint8 frames (count, T, *shape), preallocated (the full set is large, and
    stacking would hold it twice); DatasetError if they would not fit free memory."""
    need, free = count * time_steps * math.prod(shape), available_memory()
    if need > free:
        raise DatasetError(
            f"{where}: {count:,} {what} × time_steps {time_steps:,} × {dims_text(shape)} frames "
            f"take {human_bytes(need)}, more than this machine's {human_bytes(free)} of free "
            "memory: use fewer time_steps"
        )
    return np.zeros((count, time_steps, *shape), dtype=np.uint8)


def event_dataset(name: str, train, test, input_shape, num_classes) -> Dataset:
    """An event dataset of binned frames (N, T, …): each frame shaped for the network."""
    (x_train, y_train), (x_test, y_test) = train, test
    return Dataset(
        name=name,
        x_train=shape_samples(name, x_train, 2, input_shape),
        y_train=y_train,
        x_test=shape_samples(name, x_test, 2, input_shape),
        y_test=y_test,
        num_classes=class_count(num_classes, y_train, y_test),
        temporal=True,
    )


def shape_samples(
    name: str, x: np.ndarray, lead: int, input_shape: tuple[int, ...] | None
) -> np.ndarray:
    """Reshape everything after the first `lead` axes to `input_shape` (default: flat)."""
    size = math.prod(x.shape[lead:])
    if input_shape is None:
        return x.reshape(*x.shape[:lead], size)
    expected = math.prod(input_shape)
    if expected != size:
        noun = "frames" if lead == 2 else "samples"
        raise DatasetError(
            f"{name}: {noun} have {size} values but the network expects input shape "
            f"{list(input_shape)} ({expected} values)"
        )
    return x.reshape(*x.shape[:lead], *input_shape)


def check_labels(labels: np.ndarray, num_classes: int | None, where: str) -> None:
    """Labels must index one of the network's `num_classes` outputs."""
    if num_classes is None or labels.size == 0:
        return
    worst = int(labels.max())
    if worst >= num_classes:
        raise DatasetError(
            f"{where}: label {worst} is outside [0, {num_classes}); "
            f"the network has {num_classes} classes"
        )


def class_count(num_classes: int | None, *labels: np.ndarray) -> int:
    """The caller's class count, else the largest label + 1 (at least 2)."""
    if num_classes is not None:
        return num_classes
    return max(2, *(int(y.max()) + 1 for y in labels))


def data_folder(name: str, data: str | os.PathLike | None, what: str) -> Path:
    """The existing folder named by --data."""
    if data is None:
        raise DatasetError(f"{name} needs --data FOLDER ({what})")
    folder = Path(data).expanduser()
    if not folder.is_dir():
        reason = "not a folder" if folder.exists() else "no such folder"
        raise DatasetError(f"{folder}: {reason}")
    return folder


def refuse_data(name: str, data: str | os.PathLike | None, why: str) -> None:
    """Datasets without files take no --data; a given one is a mistake worth reporting."""
    if data is not None:
        raise DatasetError(f"{name}: takes no --data ({why}), got {os.fspath(data)}")


def read_bytes(path: Path, cap: int = MAX_EVENT_FILE_BYTES) -> bytes:
    """The contents of a regular file, gunzipped when its name ends in .gz; refused past
    ``cap`` bytes (uncompressed)."""
    with open_data(path) as stream:
        raw = read_upto(stream, path, cap + 1)
    if len(raw) > cap:
        raise DatasetError(f"{path}: more than the {human_bytes(cap)} a recording may hold")
    return raw


def list_dir(folder: Path) -> list[Path]:
    """The folder's entries, sorted by name."""
    try:
        return sorted(folder.iterdir())
    except OSError as exc:
        raise DatasetError(f"{folder}: cannot list ({reason_of(exc)})") from exc


def reason_of(exc: BaseException) -> str:
    """A one-line reason, without the path the message already starts with."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(text.split())


def dims_text(dims: tuple[int, ...]) -> str:
    return "x".join(str(n) for n in dims)
