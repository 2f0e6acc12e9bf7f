"""The event-based Braille letters (a pickle of records, read by a restricted unpickler)."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from emulator.data.base import (
    Dataset,
    DatasetError,
    binned,
    check_labels,
    data_folder,
    event_dataset,
    read_bytes,
    reason_of,
    zero_frames,
)

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


def load(data, time_steps: int, input_shape, num_classes) -> Dataset:
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
    check_labels(labels, num_classes, str(path))
    shape = (2 * samples[0][0],)
    window = max((float(t.max()) for _, t, _ in samples if t.size), default=0.0)
    if window == 0.0:
        raise DatasetError(f"{path}: no recording has an event after time 0")
    x = zero_frames(path, len(samples), "recordings", time_steps, shape)
    for i, (_, times, channels) in enumerate(samples):
        x[i] = binned(times, (channels,), time_steps, shape, window)
    rank = np.zeros(len(labels), dtype=np.int64)  # each recording's place among its letter's
    for letter in np.unique(labels):
        where = np.flatnonzero(labels == letter)
        rank[where] = np.arange(len(where))
    test = rank % BRAILLE_TEST_EVERY == BRAILLE_TEST_EVERY - 1
    train_split, test_split = (x[~test], labels[~test]), (x[test], labels[test])
    return event_dataset("braille", train_split, test_split, input_shape, num_classes)


def _braille_file(data) -> Path:
    """The .pkl named by --data, or the one ``data_braille_letters*.pkl`` in that folder."""
    if data is not None and Path(data).expanduser().is_file():
        return Path(data).expanduser()
    folder = data_folder(
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
    raw = read_bytes(path, MAX_BRAILLE_BYTES)
    try:
        top = _RecordUnpickler(raw, path).load()
    except DatasetError:
        raise
    except Exception as exc:  # a damaged pickle raises any of a dozen types
        raise DatasetError(f"{path}: not a readable pickle, cut short? ({reason_of(exc)})") from exc
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
