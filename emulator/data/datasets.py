"""Dataset loaders: fixed train/test arrays for the emulator's SNN training runs.

Seven sources: scikit-learn's bundled 8x8 digits, MNIST-style IDX files, N-MNIST event
recordings, the Spiking Heidelberg Digits (SHD, HDF5), IBM's DVS128 Gesture recordings
(AEDAT 3.1) and the event-based Braille letters (a pickle of records) binned into spike frames,
and a seeded synthetic set for tests and smoke runs.
Every loader returns a `Dataset`; every failure is a one-line `DatasetError` that names the
file (or the dataset) at fault.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import math
import os
import pickle
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from emulator.limits import available_memory, human_bytes, open_regular

DATASETS: tuple[str, ...] = (
    "digits",
    "mnist-idx",
    "nmnist",
    "shd",
    "dvsgesture",
    "braille",
    "synthetic",
)

IDX_IMAGES_MAGIC = 0x00000803  # uint8 data, 3 dims: count, rows, columns
IDX_LABELS_MAGIC = 0x00000801  # uint8 data, 1 dim: count

NMNIST_SENSOR = 34  # N-MNIST recordings are 34x34 pixels
NMNIST_FRAME_SHAPE = (2, NMNIST_SENSOR, NMNIST_SENSOR)  # (polarity, y, x)
NMNIST_EVENT_BYTES = 5

SHD_CHANNELS = 700  # cochlea model channels (Cramer et al. 2020)
SHD_FILES = ("shd_train.h5", "shd_test.h5")

DVS_SENSOR = 128  # the DVS128's pixels per side
DVS_POLARITY_EVENT = 1  # AEDAT 3.1 event type of a polarity event
DVS_TRIALS = ("trials_to_train.txt", "trials_to_test.txt")
MAX_AEDAT_BYTES = 1 << 30
"""Largest AEDAT recording read (the published ones are ≈ 10–60 MB)."""

BRAILLE_LETTERS = ("Space", *"ABCDEFGHIJKLMNOPQRSTUVWXYZ")
"""The 27 classes of the Braille reading set (Müller-Cleve et al. 2022), in label order."""
BRAILLE_FILES = "data_braille_letters*.pkl"
BRAILLE_TEST_EVERY = 5
"""Every 5th recording of each letter, in file order, is a test sample (a fixed 80/20 split,
stratified by letter; the set publishes no split, the SDFA authors split it 80/20)."""
MAX_BRAILLE_BYTES = 256 << 20
"""Largest Braille pickle read (the published ones are a few MB; a pickle's list can repeat
one object by reference, so its size in memory is not bounded by the file's alone)."""
BRAILLE_PICKLE_GLOBALS = frozenset(
    {
        # What numpy arrays and scalars need to unpickle, and nothing that runs other code.
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # bytes in protocol 2 pickles
    }
)

SYNTHETIC_TRAIN_PER_CLASS = 40
SYNTHETIC_TEST_PER_CLASS = 10
SYNTHETIC_NOISE = 0.1
SYNTHETIC_EVENT_RATE = 0.1
"""Mean events per channel and step of the synthetic event set (its class maps spread
uniformly over [0, 0.2]); near the 0.1 spike rate the cost model assumes elsewhere."""


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
class _Tally:
    """Counts the recordings read and reports each to an optional :data:`Report`."""

    total: int
    report: Report | None
    done: int = 0

    def step(self) -> None:
        self.done += 1
        if self.report is not None:
            self.report(self.done, self.total)


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
            return _load_digits(data, shape, num_classes)
        if name == "mnist-idx":
            return _load_mnist_idx(data, shape, num_classes)
        if name == "nmnist":
            return _load_nmnist(data, time_steps, shape, num_classes, progress)
        if name == "shd":
            return _load_shd(data, time_steps, shape, num_classes)
        if name == "dvsgesture":
            return _load_dvsgesture(data, time_steps, shape, num_classes, progress)
        if name == "braille":
            return _load_braille(data, time_steps, shape, num_classes)
        return _load_synthetic(data, seed, shape, num_classes, events, time_steps)
    except OSError as exc:
        # Backstop: a stat or listing that fails mid-load must still read as 'PATH: reason'.
        raise DatasetError(f"{exc.filename or name}: {_reason(exc)}") from exc


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


# --- digits ---------------------------------------------------------------------------------


def _load_digits(data, input_shape, num_classes) -> Dataset:
    """scikit-learn's bundled 8x8 digits, split 80/20 with a fixed stratified split."""
    _refuse_data("digits", data, "it is bundled with scikit-learn")
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
    _check_labels(y, num_classes, "digits")
    return Dataset(
        name="digits",
        x_train=_shape_samples("digits", x_train, 1, input_shape),
        y_train=y_train,
        x_test=_shape_samples("digits", x_test, 1, input_shape),
        y_test=y_test,
        num_classes=_class_count(num_classes, y_train, y_test),
        temporal=False,
    )


# --- mnist-idx ------------------------------------------------------------------------------


def _load_mnist_idx(data, input_shape, num_classes) -> Dataset:
    """MNIST-style IDX files (any image size), optionally gzipped."""
    folder = _data_folder("mnist-idx", data, "a folder holding the four IDX files")
    images_train, y_train = _read_idx_pair(folder, "train", num_classes)
    images_test, y_test = _read_idx_pair(folder, "t10k", num_classes)
    if images_test.shape[1:] != images_train.shape[1:]:
        raise DatasetError(
            f"{_find_idx(folder, 't10k-images', 'idx3')}: images are "
            f"{_dims(images_test.shape[1:])} but the training images are "
            f"{_dims(images_train.shape[1:])}"
        )
    return Dataset(
        name="mnist-idx",
        x_train=_shape_samples("mnist-idx", _scale_pixels(images_train), 1, input_shape),
        y_train=y_train,
        x_test=_shape_samples("mnist-idx", _scale_pixels(images_test), 1, input_shape),
        y_test=y_test,
        num_classes=_class_count(num_classes, y_train, y_test),
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
    _check_labels(labels, num_classes, str(labels_path))
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
    with _open_data(path) as stream:
        head = _read_upto(stream, path, header)
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
            raise DatasetError(f"{path}: holds no data (header declares {_dims(dims)})")
        free = available_memory()
        if declared * IDX_BYTES_PER_VALUE > free:
            raise DatasetError(
                f"{path}: header declares {_dims(dims)} ({human_bytes(declared)} of data, "
                f"{human_bytes(declared * IDX_BYTES_PER_VALUE)} once loaded), more than this "
                f"machine's {human_bytes(free)} of free memory"
            )
        raw = _read_upto(stream, path, declared + 1)
    if len(raw) != declared:
        held = f"{len(raw)}" if len(raw) <= declared else "more"
        raise DatasetError(
            f"{path}: header declares {_dims(dims)} ({declared} bytes of data) "
            f"but the file holds {held}"
        )
    return np.frombuffer(raw, np.uint8).reshape(dims)


MAX_EVENT_FILE_BYTES = 64 << 20
"""Largest N-MNIST recording read (one is ≈ 20 KB)."""


@contextlib.contextmanager
def _open_data(path: Path) -> Iterator[BinaryIO]:
    """A regular data file open for reading, gunzipped when its name ends in .gz."""
    stream, _ = open_regular(path, "data file", error=DatasetError)
    with stream:
        if path.suffix != ".gz":
            yield stream
            return
        with gzip.GzipFile(fileobj=stream, mode="rb") as unzipped:
            yield unzipped


def _read_upto(stream: BinaryIO, path: Path, limit: int) -> bytes:
    """At most ``limit`` bytes of ``stream`` (fewer only at its end)."""
    try:
        return stream.read(limit)
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(f"{path}: cannot read ({_reason(exc)})") from exc


def _scale_pixels(images: np.ndarray) -> np.ndarray:
    """uint8 images (N, H, W) to float32 in [0, 1], flattened to (N, H*W)."""
    return images.reshape(len(images), -1).astype(np.float32) / np.float32(255)


# --- nmnist ---------------------------------------------------------------------------------


def _load_nmnist(
    data, time_steps: int, input_shape, num_classes, progress: Report | None
) -> Dataset:
    """N-MNIST recordings (Train/<digit>/*.bin, Test/<digit>/*.bin) binned into spike frames."""
    folder = _data_folder("nmnist", data, "a folder holding Train/<digit>/*.bin and Test/")
    splits = [(folder / name, _nmnist_files(folder / name)) for name in ("Train", "Test")]
    tally = _Tally(sum(len(files) for _, files in splits), progress)
    train, test = (
        _read_nmnist_split(split, files, time_steps, num_classes, tally) for split, files in splits
    )
    return _event_dataset("nmnist", train, test, input_shape, num_classes)


def _read_nmnist_split(
    split: Path, files: list[tuple[Path, int]], time_steps: int, num_classes, tally: _Tally
) -> tuple[np.ndarray, np.ndarray]:
    """Spike frames (N, T, 2, 34, 34) uint8 and labels (N,) int64 of one split's files."""
    labels = np.array([label for _, label in files], dtype=np.int64)
    _check_labels(labels, num_classes, str(split))
    x = _frames(split, len(files), "recordings", time_steps, NMNIST_FRAME_SHAPE)
    for i, (path, _) in enumerate(files):
        x[i] = _spike_frames(path, time_steps)
        tally.step()
    return x, labels


def _nmnist_files(split: Path) -> list[tuple[Path, int]]:
    """(file, label) for every .bin under split/<label>/, in label then file-name order."""
    if not split.is_dir():
        raise DatasetError(f"{split}: no such folder (N-MNIST needs Train/<digit>/*.bin and Test/)")
    files = []
    for class_dir in _list_dir(split):
        if class_dir.name.startswith(".") or not class_dir.is_dir():
            continue  # stray files and hidden folders hold no samples
        if not class_dir.name.isdigit():
            raise DatasetError(f"{class_dir}: class folders must be named by their digit label")
        label = int(class_dir.name)
        files += [(path, label) for path in _list_dir(class_dir) if path.suffix == ".bin"]
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
    return _binned(ts, (polarity, y, x), time_steps, NMNIST_FRAME_SHAPE)


def _binned(
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


def _read_events(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """x, y, polarity, timestamp (µs) of each 40-bit event in an N-MNIST .bin file.

    Layout per event (Orchard et al. 2015): byte 0 x, byte 1 y, byte 2 bit 7 polarity,
    byte 2 bits 6..0 then bytes 3 and 4 a 23-bit big-endian timestamp.
    """
    raw = _read_bytes(path)
    if len(raw) % NMNIST_EVENT_BYTES:
        raise DatasetError(
            f"{path}: {len(raw)} bytes is not a whole number of {NMNIST_EVENT_BYTES}-byte events"
        )
    events = np.frombuffer(raw, np.uint8).reshape(-1, NMNIST_EVENT_BYTES).astype(np.int64)
    x, y = events[:, 0], events[:, 1]
    _on_sensor(path, x, y, NMNIST_SENSOR)
    polarity = events[:, 2] >> 7
    ts = ((events[:, 2] & 0x7F) << 16) | (events[:, 3] << 8) | events[:, 4]
    return x, y, polarity, ts


def _on_sensor(path: Path, x: np.ndarray, y: np.ndarray, side: int) -> None:
    """DatasetError naming the first event off a ``side`` × ``side`` sensor, if any."""
    outside = np.flatnonzero((x >= side) | (y >= side))
    if outside.size:
        i = outside[0]
        raise DatasetError(
            f"{path}: event {i} at x={x[i]}, y={y[i]} lies outside the {side}x{side} sensor"
        )


def _frames(
    where: Path, count: int, what: str, time_steps: int, shape: tuple[int, ...]
) -> np.ndarray:
    """Zeroed uint8 frames (count, T, *shape), preallocated (the full set is large, and
    stacking would hold it twice); DatasetError if they would not fit free memory."""
    need, free = count * time_steps * math.prod(shape), available_memory()
    if need > free:
        raise DatasetError(
            f"{where}: {count:,} {what} × time_steps {time_steps:,} × {_dims(shape)} frames "
            f"take {human_bytes(need)}, more than this machine's {human_bytes(free)} of free "
            "memory: use fewer time_steps"
        )
    return np.zeros((count, time_steps, *shape), dtype=np.uint8)


def _event_dataset(name: str, train, test, input_shape, num_classes) -> Dataset:
    """An event dataset of binned frames (N, T, …): each frame shaped for the network."""
    (x_train, y_train), (x_test, y_test) = train, test
    return Dataset(
        name=name,
        x_train=_shape_samples(name, x_train, 2, input_shape),
        y_train=y_train,
        x_test=_shape_samples(name, x_test, 2, input_shape),
        y_test=y_test,
        num_classes=_class_count(num_classes, y_train, y_test),
        temporal=True,
    )


# --- shd ------------------------------------------------------------------------------------


def _load_shd(data, time_steps: int, input_shape, num_classes) -> Dataset:
    """The Spiking Heidelberg Digits: shd_train.h5 and shd_test.h5 (gunzipped) as published,
    each sample's spikes binned into T frames of the 700 channels."""
    folder = _data_folder("shd", data, "a folder holding shd_train.h5 and shd_test.h5")
    h5py = _h5py("shd")
    train, test = (_read_shd(folder / name, time_steps, num_classes, h5py) for name in SHD_FILES)
    return _event_dataset("shd", train, test, input_shape, num_classes)


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
        raise DatasetError(f"{path}: not a readable HDF5 file ({_reason(exc)})") from exc
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
    _check_labels(labels, num_classes, str(path))
    x = _frames(path, len(labels), "samples", time_steps, (SHD_CHANNELS,))
    for i, (t, u) in enumerate(zip(times, units, strict=True)):
        x[i] = _binned(*_shd_sample(path, i, t, u), time_steps, (SHD_CHANNELS,))
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


# --- dvsgesture -----------------------------------------------------------------------------


def _load_dvsgesture(
    data, time_steps: int, input_shape, num_classes, progress: Report | None
) -> Dataset:
    """IBM DVS128 Gesture as published (DvsGesture.tar.gz unpacked): the recordings
    ``userNN_<lighting>.aedat`` (AEDAT 3.1), their ``…_labels.csv`` (class, start and end in µs,
    one gesture per row) and ``trials_to_train.txt`` / ``trials_to_test.txt`` naming the
    recordings of each split. Each gesture is one sample, binned into T frames (2, 128, 128)
    over [its start, its last event], pooled down by an integer factor when the network asks
    for a smaller frame (2, 128/k, 128/k): a position fires if any of its k × k pixels did."""
    folder = _data_folder(
        "dvsgesture",
        data,
        "a folder holding the .aedat recordings, their _labels.csv and "
        "trials_to_train.txt / trials_to_test.txt",
    )
    frame = _dvs_frame(input_shape)
    splits = [(folder / listing, _dvs_recordings(folder, listing)) for listing in DVS_TRIALS]
    tally = _Tally(sum(len(recordings) for _, recordings in splits), progress)
    train, test = (
        _read_dvs_split(listing, recordings, time_steps, frame, num_classes, tally)
        for listing, recordings in splits
    )
    return _event_dataset("dvsgesture", train, test, input_shape, num_classes)


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
    text = _read_bytes(folder / listing).decode("utf-8", "replace")
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
    tally: _Tally,
) -> tuple[np.ndarray, np.ndarray]:
    """Frames (N, T, *frame) uint8 and labels (N,) of the gestures of the recordings a trial
    list names, one recording in memory at a time."""
    labels = np.array([g[0] for _, rows in gestures for g in rows], dtype=np.int64)
    _check_labels(labels, num_classes, str(listing))
    x = _frames(listing, len(labels), "gestures", time_steps, frame)
    k, i = DVS_SENSOR // frame[1], 0
    for path, rows in gestures:
        ts, xs, ys, ps = _read_aedat(path)
        for _, start, end in rows:
            inside = (ts >= start) & (ts < end)
            if not inside.any():
                raise DatasetError(f"{path}: the gesture from {start} to {end} µs holds no events")
            where = (ps[inside], ys[inside] // k, xs[inside] // k)
            x[i] = _binned(ts[inside] - start, where, time_steps, frame)
            i += 1
        tally.step()
    return x, labels


def _read_dvs_labels(path: Path) -> list[tuple[int, int, int]]:
    """(class − 1, start µs, end µs) of each gesture row of a ``…_labels.csv``."""
    text = _read_bytes(path).decode("utf-8", "replace").splitlines()
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
    raw = _read_bytes(path, MAX_AEDAT_BYTES)
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
    _on_sensor(path, x, y, DVS_SENSOR)
    return ts, x, y, polarity


# --- braille --------------------------------------------------------------------------------


def _load_braille(data, time_steps: int, input_shape, num_classes) -> Dataset:
    """The event-based Braille letters (Müller-Cleve et al. 2022, Zenodo 7050094,
    ``reading_braille_data.zip``): one ``data_braille_letters_th_<θ>.pkl`` holding a list of
    records, each with its ``letter`` (Space, A–Z) and its ``events``: per taxel (12 on the
    iCub fingertip), the ON and the OFF event times in seconds. Channel ``2·taxel + k`` (k = 0
    ON, 1 OFF); every recording is binned into T frames over the same window [0, the file's
    last event], since all were taken sliding at one speed; every 5th recording of each
    letter is a test sample."""
    path = _braille_file(data)
    records = _braille_records(path)
    if not records:
        raise DatasetError(f"{path}: holds no recordings")
    labels = np.empty(len(records), dtype=np.int64)
    samples = []
    for i, record in enumerate(records):
        labels[i], taxels, times, channels = _braille_record(path, i, record)
        if samples and taxels != samples[0][0]:
            raise DatasetError(
                f"{path}: recording {i} has {taxels} taxels, recording 0 has {samples[0][0]}"
            )
        samples.append((taxels, times, channels))
    _check_labels(labels, num_classes, str(path))
    shape = (2 * samples[0][0],)
    window = max((float(t.max()) for _, t, _ in samples if t.size), default=0.0)
    if window == 0.0:
        raise DatasetError(f"{path}: no recording has an event after time 0")
    x = _frames(path, len(samples), "recordings", time_steps, shape)
    for i, (_, times, channels) in enumerate(samples):
        x[i] = _binned(times, (channels,), time_steps, shape, window)
    rank = np.zeros(len(labels), dtype=np.int64)  # each recording's place among its letter's
    for letter in np.unique(labels):
        where = np.flatnonzero(labels == letter)
        rank[where] = np.arange(len(where))
    test = rank % BRAILLE_TEST_EVERY == BRAILLE_TEST_EVERY - 1
    train_split, test_split = (x[~test], labels[~test]), (x[test], labels[test])
    return _event_dataset("braille", train_split, test_split, input_shape, num_classes)


def _braille_file(data) -> Path:
    """The .pkl named by --data, or the one ``data_braille_letters*.pkl`` in that folder."""
    if data is not None and Path(data).expanduser().is_file():
        return Path(data).expanduser()
    folder = _data_folder(
        "braille", data, "a data_braille_letters_th_<threshold>.pkl file or its folder"
    )
    found = sorted(folder.glob(BRAILLE_FILES)) + sorted(folder.glob(BRAILLE_FILES + ".gz"))
    if len(found) != 1:
        names = ", ".join(p.name for p in found) or f"no {BRAILLE_FILES}"
        raise DatasetError(
            f"{folder}: {names}: give --data one file (one encoding threshold)"
            if found
            else f"{folder}: {names} (unzip reading_braille_data.zip from Zenodo 7050094)"
        )
    return found[0]


class _RecordUnpickler(pickle.Unpickler):
    """Unpickles lists, dicts, strings, numbers and numpy arrays, and refuses every other
    global: loading a pickle may otherwise run any code its writer chose."""

    def __init__(self, raw: bytes, path: Path) -> None:
        super().__init__(io.BytesIO(raw))
        self.path = path

    def find_class(self, module: str, name: str):
        if (module, name) in BRAILLE_PICKLE_GLOBALS:
            return super().find_class(module, name)
        if module.split(".")[0] == "pandas":
            raise DatasetError(
                f"{self.path}: holds a pandas DataFrame, not the published list of records; "
                "convert it where pandas is trusted: pickle.dump(pandas.read_pickle(IN)"
                ".to_dict('records'), open(OUT, 'wb'))"
            )
        raise DatasetError(
            f"{self.path}: the pickle asks for {module}.{name}, which a Braille file never "
            "needs; refused, since unpickling it could run code"
        )


def _braille_records(path: Path) -> list:
    """The file's records: a list of dicts, or one dict of columns (``letter``, ``events``),
    each column a list or a dict by row index (pandas' ``to_dict()``)."""
    raw = _read_bytes(path, MAX_BRAILLE_BYTES)
    try:
        top = _RecordUnpickler(raw, path).load()
    except DatasetError:
        raise
    except Exception as exc:  # a damaged pickle raises any of a dozen types
        raise DatasetError(f"{path}: not a readable pickle, cut short? ({_reason(exc)})") from exc
    if isinstance(top, dict) and {"letter", "events"} <= top.keys():
        columns = [top["letter"], top["events"]]
        columns = [list(c.values()) if isinstance(c, dict) else list(c) for c in columns]
        if len(columns[0]) != len(columns[1]):
            raise DatasetError(
                f"{path}: {len(columns[0])} letters but {len(columns[1])} event lists"
            )
        return [{"letter": a, "events": b} for a, b in zip(*columns, strict=True)]
    if not isinstance(top, list | tuple):
        raise DatasetError(
            f"{path}: holds a {type(top).__name__}; a Braille file holds a list of records "
            "with 'letter' and 'events'"
        )
    return list(top)


def _braille_record(path: Path, i: int, record) -> tuple[int, int, np.ndarray, np.ndarray]:
    """Recording ``i``'s label, its taxel count, and its events' times and channels, checked."""
    if not isinstance(record, dict) or not {"letter", "events"} <= record.keys():
        raise DatasetError(f"{path}: recording {i} is not a record with 'letter' and 'events'")
    letter = record["letter"]
    if letter not in BRAILLE_LETTERS:
        raise DatasetError(f"{path}: recording {i}: letter {letter!r} is not one of Space, A..Z")
    taxels = record["events"]
    if not isinstance(taxels, list | tuple | np.ndarray) or len(taxels) == 0:
        raise DatasetError(f"{path}: recording {i} ({letter}) is empty: no taxels")
    times, channels = [], []
    for taxel, pair in enumerate(taxels):
        if not isinstance(pair, list | tuple | np.ndarray) or len(pair) != 2:
            raise DatasetError(
                f"{path}: recording {i}, taxel {taxel}: expected two event lists (ON, OFF)"
            )
        for k, when in enumerate(pair):
            try:
                t = np.asarray([] if when is None else when, dtype=np.float64).reshape(-1)
            except (TypeError, ValueError):
                t = np.array([np.nan])
            if not np.isfinite(t).all() or (t < 0).any():
                raise DatasetError(
                    f"{path}: recording {i}, taxel {taxel}: event times must be finite seconds >= 0"
                )
            times.append(t)
            channels.append(np.full(t.size, 2 * taxel + k, dtype=np.int64))
    label = BRAILLE_LETTERS.index(letter)
    return label, len(taxels), np.concatenate(times), np.concatenate(channels)


# --- description ----------------------------------------------------------------------------


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


# --- synthetic ------------------------------------------------------------------------------


def _load_synthetic(
    data, seed: int, input_shape, num_classes, events: bool = False, time_steps: int = 1
) -> Dataset:
    """Seeded prototype-plus-noise classes; small, file-free, and easy to learn. With
    ``events``, :func:`_synthetic_events` instead."""
    _refuse_data("synthetic", data, "it is generated from --seed")
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
        x = _frames(Path("synthetic"), len(labels), f"{what} samples", time_steps, shape)
        for n, label in enumerate(labels):
            for t in range(time_steps):
                x[n, t] = rng.random(shape) < rates[label]
        splits.append((x, labels.astype(np.int64)))
    return _event_dataset("synthetic", *splits, shape, num_classes)


def _synthetic_split(
    rng: np.random.Generator, prototypes: np.ndarray, per_class: int
) -> tuple[np.ndarray, np.ndarray]:
    """`per_class` noisy copies of each prototype, in shuffled order."""
    labels = rng.permutation(np.repeat(np.arange(len(prototypes)), per_class))
    noise = rng.standard_normal((len(labels), *prototypes.shape[1:]))
    x = np.clip(prototypes[labels] + SYNTHETIC_NOISE * noise, 0.0, 1.0).astype(np.float32)
    return x, labels.astype(np.int64)


# --- shared checks --------------------------------------------------------------------------


def _shape_samples(
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


def _check_labels(labels: np.ndarray, num_classes: int | None, where: str) -> None:
    """Labels must index one of the network's `num_classes` outputs."""
    if num_classes is None or labels.size == 0:
        return
    worst = int(labels.max())
    if worst >= num_classes:
        raise DatasetError(
            f"{where}: label {worst} is outside [0, {num_classes}); "
            f"the network has {num_classes} classes"
        )


def _class_count(num_classes: int | None, *labels: np.ndarray) -> int:
    """The caller's class count, else the largest label + 1 (at least 2)."""
    if num_classes is not None:
        return num_classes
    return max(2, *(int(y.max()) + 1 for y in labels))


def _data_folder(name: str, data: str | os.PathLike | None, what: str) -> Path:
    """The existing folder named by --data."""
    if data is None:
        raise DatasetError(f"{name} needs --data FOLDER ({what})")
    folder = Path(data).expanduser()
    if not folder.is_dir():
        reason = "not a folder" if folder.exists() else "no such folder"
        raise DatasetError(f"{folder}: {reason}")
    return folder


def _refuse_data(name: str, data: str | os.PathLike | None, why: str) -> None:
    """Datasets without files take no --data; a given one is a mistake worth reporting."""
    if data is not None:
        raise DatasetError(f"{name}: takes no --data ({why}), got {os.fspath(data)}")


def _read_bytes(path: Path, cap: int = MAX_EVENT_FILE_BYTES) -> bytes:
    """The contents of a regular file, gunzipped when its name ends in .gz; refused past
    ``cap`` bytes (uncompressed)."""
    with _open_data(path) as stream:
        raw = _read_upto(stream, path, cap + 1)
    if len(raw) > cap:
        raise DatasetError(f"{path}: more than the {human_bytes(cap)} a recording may hold")
    return raw


def _list_dir(folder: Path) -> list[Path]:
    """The folder's entries, sorted by name."""
    try:
        return sorted(folder.iterdir())
    except OSError as exc:
        raise DatasetError(f"{folder}: cannot list ({_reason(exc)})") from exc


def _reason(exc: BaseException) -> str:
    """A one-line reason, without the path the message already starts with."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(text.split())


def _dims(dims: tuple[int, ...]) -> str:
    return "x".join(str(n) for n in dims)
