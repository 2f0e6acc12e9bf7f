"""Tests for emulator/data/: each loader reads back exactly what the test wrote."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from emulator.data.datasets import Dataset, DatasetError, load_dataset

# --- writers (the oracle: the arrays handed to them are what the loader must return) ---------


def write_idx(path: Path, magic: int, array: np.ndarray, *, dims=None, gz: bool = False) -> Path:
    """Write uint8 `array` as an IDX file; `dims` overrides the declared sizes."""
    dims = array.shape if dims is None else dims
    header = magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in dims)
    blob = header + array.astype(np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(blob))
    else:
        path.write_bytes(blob)
    return path


def write_mnist(folder: Path, rng, *, size=(5, 7), n_train=6, n_test=3, gz=False, dotted=False):
    """Write the four IDX files and return the arrays written."""
    folder.mkdir(parents=True, exist_ok=True)
    sep = "." if dotted else "-"
    arrays = {
        "train-images": rng.integers(0, 256, (n_train, *size)),
        "train-labels": rng.integers(0, 4, n_train),
        "t10k-images": rng.integers(0, 256, (n_test, *size)),
        "t10k-labels": rng.integers(0, 4, n_test),
    }
    for stem, array in arrays.items():
        kind, magic = ("idx3", 0x803) if stem.endswith("images") else ("idx1", 0x801)
        write_idx(folder / f"{stem}{sep}{kind}-ubyte", magic, array, gz=gz)
    return arrays


def write_events(path: Path, events: list[tuple[int, int, int, int]]) -> Path:
    """Write (x, y, polarity, ts) events in the 40-bit N-MNIST layout."""
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = bytearray()
    for x, y, polarity, ts in events:
        blob += bytes([x, y, (polarity << 7) | (ts >> 16), (ts >> 8) & 0xFF, ts & 0xFF])
    path.write_bytes(bytes(blob))
    return path


def frames(time_steps: int, spikes: list[tuple[int, int, int, int]]) -> np.ndarray:
    """Expected (T, 2312) frames with a 1 at each (t, polarity, y, x)."""
    out = np.zeros((time_steps, 2, 34, 34), dtype=np.uint8)
    for t, polarity, y, x in spikes:
        out[t, polarity, y, x] = 1
    return out.reshape(time_steps, 2312)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# --- mnist-idx --------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("dotted", [False, True])
def test_mnist_idx_reads_back_what_was_written(tmp_path, rng, gz, dotted):
    arrays = write_mnist(tmp_path, rng, gz=gz, dotted=dotted)
    ds = load_dataset("mnist-idx", tmp_path)
    expected_train = arrays["train-images"].reshape(6, 35).astype(np.float32) / np.float32(255)
    expected_test = arrays["t10k-images"].reshape(3, 35).astype(np.float32) / np.float32(255)
    np.testing.assert_array_equal(ds.x_train, expected_train)
    np.testing.assert_array_equal(ds.x_test, expected_test)
    np.testing.assert_array_equal(ds.y_train, arrays["train-labels"])
    np.testing.assert_array_equal(ds.y_test, arrays["t10k-labels"])
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.sample_shape == (35,) and not ds.temporal
    labels = np.concatenate([arrays["train-labels"], arrays["t10k-labels"]])
    assert ds.num_classes == max(2, labels.max() + 1)


def test_mnist_idx_reshapes_to_input_shape(tmp_path, rng):
    arrays = write_mnist(tmp_path, rng)
    ds = load_dataset("mnist-idx", str(tmp_path), input_shape=(5, 7), num_classes=4)
    assert ds.x_train.shape == (6, 5, 7) and ds.sample_shape == (5, 7)
    np.testing.assert_array_equal(ds.x_train * 255, arrays["train-images"])
    assert ds.num_classes == 4


def test_mnist_idx_bad_magic(tmp_path, rng):
    write_mnist(tmp_path, rng)
    path = write_idx(tmp_path / "train-images-idx3-ubyte", 1234, np.zeros((6, 5, 7)))
    with pytest.raises(DatasetError) as err:
        load_dataset("mnist-idx", tmp_path)
    assert str(err.value) == f"{path}: expected magic 2051, found 1234"


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx_truncated_file(tmp_path, rng, gz):
    write_mnist(tmp_path, rng)
    (tmp_path / "t10k-images-idx3-ubyte").unlink()
    short = np.zeros((3, 5, 6))  # 90 bytes where the header promises 3x5x7 = 105
    path = write_idx(tmp_path / "t10k-images-idx3-ubyte", 0x803, short, dims=(3, 5, 7), gz=gz)
    with pytest.raises(DatasetError) as err:
        load_dataset("mnist-idx", tmp_path)
    expected = f"{path}: header declares 3x5x7 (105 bytes of data) but the file holds 90"
    assert str(err.value) == expected


def test_mnist_idx_header_too_short(tmp_path, rng):
    write_mnist(tmp_path, rng)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00")
    with pytest.raises(DatasetError, match="train-labels-idx1-ubyte: 2 bytes is too short"):
        load_dataset("mnist-idx", tmp_path)


def test_mnist_idx_broken_gzip(tmp_path, rng):
    write_mnist(tmp_path, rng)
    (tmp_path / "train-labels-idx1-ubyte").unlink()
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DatasetError, match=r"train-labels-idx1-ubyte\.gz: cannot read"):
        load_dataset("mnist-idx", tmp_path)


def test_mnist_idx_count_mismatch(tmp_path, rng):
    write_mnist(tmp_path, rng)
    path = write_idx(tmp_path / "train-labels-idx1-ubyte", 0x801, np.zeros(5))
    with pytest.raises(DatasetError) as err:
        load_dataset("mnist-idx", tmp_path)
    expected = f"{path}: holds 5 labels but train-images-idx3-ubyte holds 6 images"
    assert str(err.value) == expected


def test_mnist_idx_empty(tmp_path, rng):
    write_mnist(tmp_path, rng)
    write_idx(tmp_path / "train-images-idx3-ubyte", 0x803, np.zeros((0, 5, 7)))
    write_idx(tmp_path / "train-labels-idx1-ubyte", 0x801, np.zeros(0))
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte: holds no data"):
        load_dataset("mnist-idx", tmp_path)


def test_mnist_idx_image_size_mismatch(tmp_path, rng):
    write_mnist(tmp_path, rng)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", 0x803, np.zeros((3, 4, 4)))
    with pytest.raises(DatasetError, match="images are 4x4 but the training images are 5x7"):
        load_dataset("mnist-idx", tmp_path)


def test_mnist_idx_label_beyond_network(tmp_path, rng):
    write_mnist(tmp_path, rng)
    path = write_idx(tmp_path / "train-labels-idx1-ubyte", 0x801, np.array([0, 1, 9, 2, 0, 1]))
    with pytest.raises(DatasetError) as err:
        load_dataset("mnist-idx", tmp_path, num_classes=4)
    assert str(err.value).startswith(f"{path}: label 9 is outside [0, 4)")


def test_mnist_idx_missing_folder_file_and_flag(tmp_path, rng):
    with pytest.raises(DatasetError, match="mnist-idx needs --data FOLDER"):
        load_dataset("mnist-idx")
    with pytest.raises(DatasetError, match="nope: no such folder"):
        load_dataset("mnist-idx", tmp_path / "nope")
    write_mnist(tmp_path, rng)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DatasetError) as err:
        load_dataset("mnist-idx", tmp_path)
    assert str(err.value).startswith(f"{tmp_path / 't10k-labels-idx1-ubyte'}: file not found")


# --- nmnist -----------------------------------------------------------------------------------

# t_max = 100 µs with T = 2: frame = floor(ts * 2 / 100), so ts 49 -> 0, ts 50 -> 1, 100 -> 1.
SAMPLE_A = [(0, 0, 0, 0), (1, 1, 0, 49), (5, 2, 1, 50), (33, 33, 1, 100)]
FRAMES_A = [(0, 0, 0, 0), (0, 0, 1, 1), (1, 1, 2, 5), (1, 1, 33, 33)]
# Largest 23-bit timestamp with polarity 1: the polarity bit must not leak into the time.
# Repeated events at one pixel still give a single spike (value 1, not 2).
T_MAX = 2**23 - 1
SAMPLE_B = [(3, 4, 1, 0), (3, 4, 1, 1), (3, 4, 0, T_MAX // 2), (7, 8, 1, T_MAX)]
FRAMES_B = [(0, 1, 4, 3), (0, 0, 4, 3), (1, 1, 8, 7)]


def write_nmnist(folder: Path) -> Path:
    write_events(folder / "Train" / "3" / "b.bin", SAMPLE_B)
    write_events(folder / "Train" / "0" / "a.bin", SAMPLE_A)
    write_events(folder / "Test" / "1" / "later.bin", SAMPLE_B)
    write_events(folder / "Test" / "1" / "again.bin", SAMPLE_A)
    (folder / "Train" / "README.txt").write_text("stray files are not samples")
    return folder


def test_nmnist_bins_events_by_hand(tmp_path):
    ds = load_dataset("nmnist", write_nmnist(tmp_path), time_steps=2)
    assert ds.temporal and ds.sample_shape == (2312,) and ds.x_train.dtype == np.uint8
    assert ds.x_train.shape == (2, 2, 2312) and ds.x_test.shape == (2, 2, 2312)
    np.testing.assert_array_equal(ds.y_train, [0, 3])  # label order, not write order
    np.testing.assert_array_equal(ds.y_test, [1, 1])
    np.testing.assert_array_equal(ds.x_train[0], frames(2, FRAMES_A))
    np.testing.assert_array_equal(ds.x_train[1], frames(2, FRAMES_B))
    np.testing.assert_array_equal(ds.x_test[0], frames(2, FRAMES_A))  # again.bin < later.bin
    np.testing.assert_array_equal(ds.x_test[1], frames(2, FRAMES_B))
    assert ds.num_classes == 4


def test_nmnist_single_step_and_conv_shape(tmp_path):
    ds = load_dataset(
        "nmnist", write_nmnist(tmp_path), time_steps=1, input_shape=(2, 34, 34), num_classes=10
    )
    assert ds.x_train.shape == (2, 1, 2, 34, 34) and ds.sample_shape == (2, 34, 34)
    single = [(0, polarity, y, x) for _, polarity, y, x in FRAMES_A]
    np.testing.assert_array_equal(ds.x_train[0].reshape(1, 2312), frames(1, single))
    assert ds.num_classes == 10


def test_nmnist_all_events_at_time_zero(tmp_path):
    write_nmnist(tmp_path)
    write_events(tmp_path / "Train" / "0" / "a.bin", [(2, 3, 1, 0), (4, 5, 0, 0)])
    ds = load_dataset("nmnist", tmp_path, time_steps=3)
    np.testing.assert_array_equal(ds.x_train[0], frames(3, [(0, 1, 3, 2), (0, 0, 5, 4)]))


def test_nmnist_empty_recording_is_refused(tmp_path):
    write_nmnist(tmp_path)
    path = tmp_path / "Train" / "0" / "a.bin"
    path.write_bytes(b"")
    with pytest.raises(DatasetError) as err:
        load_dataset("nmnist", tmp_path)
    assert str(err.value) == f"{path}: an empty recording (0 bytes, no events)"


def test_nmnist_bad_length(tmp_path):
    write_nmnist(tmp_path)
    path = tmp_path / "Train" / "0" / "a.bin"
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(DatasetError) as err:
        load_dataset("nmnist", tmp_path)
    assert str(err.value) == f"{path}: 19 bytes is not a whole number of 5-byte events"


def test_nmnist_event_outside_sensor(tmp_path):
    write_nmnist(tmp_path)
    path = write_events(tmp_path / "Test" / "1" / "empty.bin", [(1, 1, 0, 0), (1, 34, 0, 5)])
    with pytest.raises(DatasetError) as err:
        load_dataset("nmnist", tmp_path)
    assert str(err.value) == f"{path}: event 1 at x=1, y=34 lies outside the 34x34 sensor"


def test_nmnist_layout_errors(tmp_path):
    with pytest.raises(DatasetError, match="nmnist needs --data FOLDER"):
        load_dataset("nmnist")
    write_events(tmp_path / "Train" / "0" / "a.bin", SAMPLE_A)
    with pytest.raises(DatasetError, match=f"{tmp_path / 'Test'}: no such folder"):
        load_dataset("nmnist", tmp_path)
    (tmp_path / "Test" / "1").mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"Test: no <digit>/\*\.bin files found"):
        load_dataset("nmnist", tmp_path)
    write_events(tmp_path / "Test" / "one" / "a.bin", SAMPLE_A)
    with pytest.raises(DatasetError, match="one: class folders must be named by their digit"):
        load_dataset("nmnist", tmp_path)


def test_nmnist_label_and_shape_errors(tmp_path):
    write_nmnist(tmp_path)
    with pytest.raises(DatasetError, match="Train: label 3 is outside \\[0, 3\\)"):
        load_dataset("nmnist", tmp_path, num_classes=3)
    expected = (
        "nmnist: frames have 2312 values but the network expects input shape [64] (64 values)"
    )
    with pytest.raises(DatasetError) as err:
        load_dataset("nmnist", tmp_path, input_shape=(64,))
    assert str(err.value) == expected


# --- digits -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits")


def test_digits_shapes_and_range(digits):
    assert digits.x_train.shape == (1437, 64) and digits.x_test.shape == (360, 64)
    assert digits.x_train.dtype == np.float32 and digits.y_train.dtype == np.int64
    assert digits.sample_shape == (64,) and not digits.temporal and digits.num_classes == 10
    for x in (digits.x_train, digits.x_test):
        assert x.min() == 0.0 and x.max() == 1.0


def test_digits_split_is_stratified(digits):
    train = np.bincount(digits.y_train, minlength=10)
    test = np.bincount(digits.y_test, minlength=10)
    assert np.all(np.abs(test - 0.2 * (train + test)) <= 1)


def test_digits_split_ignores_seed(digits):
    other = load_dataset("digits", seed=7, time_steps=4)
    np.testing.assert_array_equal(other.x_train, digits.x_train)
    np.testing.assert_array_equal(other.y_test, digits.y_test)


def test_digits_reshape_and_errors(tmp_path):
    assert load_dataset("digits", input_shape=(1, 8, 8)).sample_shape == (1, 8, 8)
    with pytest.raises(DatasetError) as err:
        load_dataset("digits", input_shape=(2, 34, 34))
    expected = (
        "digits: samples have 64 values but the network expects input shape [2, 34, 34] "
        "(2312 values)"
    )
    assert str(err.value) == expected
    with pytest.raises(DatasetError, match="digits: takes no --data"):
        load_dataset("digits", tmp_path)
    with pytest.raises(DatasetError, match=r"digits: label 9 is outside \[0, 5\)"):
        load_dataset("digits", num_classes=5)


# --- synthetic --------------------------------------------------------------------------------


def test_synthetic_is_seeded():
    a, b = load_dataset("synthetic", seed=3), load_dataset("synthetic", seed=3)
    c = load_dataset("synthetic", seed=4)
    for field in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.x_train, c.x_train)


def test_synthetic_shapes_and_learnable():
    ds = load_dataset("synthetic", input_shape=(2, 3, 4), num_classes=3)
    assert ds.x_train.shape == (120, 2, 3, 4) and ds.x_test.shape == (30, 2, 3, 4)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.x_train.min() >= 0.0 and ds.x_train.max() <= 1.0
    assert ds.num_classes == 3 and not ds.temporal
    np.testing.assert_array_equal(np.bincount(ds.y_test), [10, 10, 10])
    # A nearest-centroid classifier must separate the classes.
    flat_train, flat_test = ds.x_train.reshape(120, -1), ds.x_test.reshape(30, -1)
    centroids = np.stack([flat_train[ds.y_train == c].mean(axis=0) for c in range(3)])
    distance = ((flat_test[:, None, :] - centroids[None]) ** 2).sum(axis=-1)
    assert (distance.argmin(axis=1) == ds.y_test).mean() >= 0.9


def test_synthetic_events_are_seeded_poisson_frames_in_the_input_shape():
    """Each class a rate map uniform in [0, 0.2]: frames are binary, the mean rate is 0.1 up
    to sampling noise, classes differ, and the same seed gives the same bits."""
    from emulator.data.synthetic import SYNTHETIC_EVENT_RATE

    kw = dict(time_steps=5, input_shape=(2, 6, 6), num_classes=3, events=True)
    ds = load_dataset("synthetic", seed=4, **kw)
    assert ds.temporal and ds.x_train.dtype == np.uint8
    assert ds.x_train.shape == (3 * 40, 5, 2, 6, 6) and ds.x_test.shape == (3 * 10, 5, 2, 6, 6)
    assert set(np.unique(ds.x_train)) <= {0, 1}
    cells = ds.x_train.size
    sigma = np.sqrt(SYNTHETIC_EVENT_RATE / cells)  # Bernoulli mean's spread, roughly
    assert abs(ds.x_train.mean() - SYNTHETIC_EVENT_RATE) < 6 * sigma + 0.01
    means = [ds.x_train[ds.y_train == c].mean(axis=(0, 1)) for c in range(3)]
    assert np.abs(means[0] - means[1]).mean() > 0.02  # the classes' maps differ
    again = load_dataset("synthetic", seed=4, **kw)
    assert np.array_equal(again.x_train, ds.x_train) and np.array_equal(again.y_test, ds.y_test)
    other = load_dataset("synthetic", seed=5, **kw)
    assert not np.array_equal(other.x_train, ds.x_train)


@pytest.mark.slow
def test_an_event_network_trains_on_synthetic_events(capsys):
    """shd-3fc (event-encoded, IF, T = 100) trains on the shipped synthetic events."""
    import json

    from emulator.cli import main

    argv = ["train", "--network", "shd-3fc", "--dataset", "synthetic", "--epochs", "1"]
    assert main([*argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["network"] == "shd-3fc" and out["dataset"] == "synthetic"
    assert 0.0 <= out["test_accuracy"] <= 1.0 and out["history"][0]["loss"] > 0


def test_synthetic_defaults(tmp_path):
    ds = load_dataset("synthetic")
    assert ds.x_train.shape == (400, 64) and ds.num_classes == 10
    with pytest.raises(DatasetError, match="synthetic: takes no --data"):
        load_dataset("synthetic", tmp_path)


# --- arguments --------------------------------------------------------------------------------


def test_unknown_name():
    with pytest.raises(DatasetError) as err:
        load_dataset("foo")
    expected = (
        "unknown dataset 'foo'; choose one of digits, mnist-idx, nmnist, shd, dvsgesture, "
        "braille, synthetic"
    )
    assert str(err.value) == expected


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"time_steps": 0}, "time_steps must be at least 1"),
        ({"num_classes": 1}, "num_classes must be at least 2"),
        ({"input_shape": (4, 0)}, "input shape must be one or more positive sizes"),
        ({"input_shape": ()}, "input shape must be one or more positive sizes"),
    ],
)
def test_bad_options(options, message):
    with pytest.raises(DatasetError, match=f"synthetic: {message}"):
        load_dataset("synthetic", **options)


def test_dataset_error_is_value_error():
    assert issubclass(DatasetError, ValueError)


# --- shd -------------------------------------------------------------------------------------

# Two samples by hand, times in seconds: the last spike of each sample lands in frame T − 1.
SHD_TRAIN = [
    ([0.0, 0.1, 0.25, 0.5], [0, 699, 0, 3], 7),  # T = 2: frames 0, 0, 1, 1
    ([0.2, 0.2, 0.4], [5, 5, 6], 19),  # frames 1, 1, 1 (0.2·2/0.4 = 1)
]
SHD_TEST = [([0.0], [1], 0)]  # all at 0: frame 0


def write_shd(path: Path, samples, *, drop: str | None = None, units_dtype="uint16") -> Path:
    """An SHD file in the published layout: spikes/times and spikes/units as one
    variable-length array per sample, labels, extra/ (left empty)."""
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        times = f.create_dataset("spikes/times", (len(samples),), dtype=h5py.vlen_dtype(np.float32))
        units = f.create_dataset(
            "spikes/units", (len(samples),), dtype=h5py.vlen_dtype(np.dtype(units_dtype))
        )
        for i, (t, u, _) in enumerate(samples):
            times[i] = np.asarray(t, np.float32)
            units[i] = np.asarray(u, units_dtype)
        f.create_dataset("labels", data=np.array([y for *_, y in samples], np.uint16))
        f.create_group("extra")
        if drop:
            del f[drop]
    return path


def write_shd_folder(folder: Path, train=SHD_TRAIN, test=SHD_TEST, **kw) -> Path:
    write_shd(folder / "shd_train.h5", train, **kw)
    write_shd(folder / "shd_test.h5", test)
    return folder


def test_shd_bins_spikes_by_hand(tmp_path):
    ds = load_dataset("shd", write_shd_folder(tmp_path), time_steps=2, num_classes=20)
    assert ds.temporal and ds.x_train.shape == (2, 2, 700) and ds.x_train.dtype == np.uint8
    np.testing.assert_array_equal(ds.y_train, [7, 19])
    np.testing.assert_array_equal(ds.y_test, [0])
    want = np.zeros((2, 2, 700), np.uint8)
    want[0, 0, [0, 699]] = 1
    want[0, 1, [0, 3]] = 1
    want[1, 1, [5, 6]] = 1
    np.testing.assert_array_equal(ds.x_train, want)
    assert ds.x_test[0, 0, 1] == 1 and ds.x_test.sum() == 1


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda f: write_shd_folder(f, drop="spikes/units"), "no spikes/units"),
        (lambda f: write_shd_folder(f, drop="labels"), "no labels"),
        (lambda f: write_shd_folder(f, train=[([0.1], [2], 25)]), "label 25 is outside"),
        (lambda f: write_shd_folder(f, train=[([], [], 1)]), "sample 0 has no spikes"),
        (lambda f: write_shd_folder(f, train=[([0.1], [700], 1)]), "units must be channels"),
        (lambda f: write_shd_folder(f, train=[([-0.1], [3], 1)]), "finite seconds"),
        (
            lambda f: write_shd_folder(f, train=[([0.1, 0.2], [1, 2], 1), ([0.1, 0.2], [1], 1)]),
            "sample 1 has 2 spike times but 1 units",
        ),
    ],
)
def test_shd_bad_files_are_one_line_naming_the_file(tmp_path, make, message):
    make(tmp_path)
    with pytest.raises(DatasetError, match=message) as err:
        load_dataset("shd", tmp_path, time_steps=4, num_classes=20)
    assert str(err.value).startswith(str(tmp_path / "shd_train.h5"))
    assert len(str(err.value).splitlines()) == 1


def test_shd_truncated_or_missing_files(tmp_path):
    folder = write_shd_folder(tmp_path)
    train = folder / "shd_train.h5"
    train.write_bytes(train.read_bytes()[:600])  # a download cut short
    with pytest.raises(DatasetError, match=r"shd_train\.h5: not a readable HDF5 file"):
        load_dataset("shd", folder, time_steps=2)
    train.rename(folder / "shd_train.h5.gz")
    with pytest.raises(DatasetError, match=r"shd_train\.h5: no such file .*gunzip it first"):
        load_dataset("shd", folder, time_steps=2)
    with pytest.raises(DatasetError, match="shd needs --data FOLDER"):
        load_dataset("shd", None, time_steps=2)


def test_shd_trains_end_to_end_from_the_command_line(tmp_path, capsys):
    """`pipesdfa train --network shd-3fc --dataset shd --data DIR` on files in the published
    layout (a few samples, T = 100 as the network file says)."""
    import json

    from emulator.cli import main

    rng = np.random.default_rng(0)
    samples = [
        (np.sort(rng.random(30)), rng.integers(0, 700, 30), int(y)) for y in rng.integers(0, 20, 8)
    ]
    write_shd_folder(tmp_path, train=samples, test=samples[:4])
    argv = ["train", "--network", "shd-3fc", "--dataset", "shd", "--data", str(tmp_path)]
    assert main([*argv, "--epochs", "1", "--batch", "4", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["dataset"] == "shd" and result["epochs"] == 1


def assert_train_and_run_agree(capsys, common: list[str]) -> None:
    """`train --chip pipesdfa-edge` and `run` in-process with ``common`` options end with the
    same weights and test accuracy."""
    import json

    from emulator.cli import main

    common = [*common, "--chip", "pipesdfa-edge", "--epochs", "1", "--json"]
    assert main(["train", *common]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert main(["run", *common, "--runtime", "local"]) == 0
    ran = json.loads(capsys.readouterr().out)
    assert ran["weights_sha256"] == trained["weights_sha256"]
    assert ran["test_accuracy"] == trained["test_accuracy"]


def test_shd_runs_the_same_bits_in_the_reference_and_the_cores(tmp_path, capsys):
    """The binned frames are the data of every runtime: `train --chip` and `run` (in-process)
    on the same SHD files end with the same weights."""
    rng = np.random.default_rng(1)
    samples = [
        (np.sort(rng.random(40)), rng.integers(0, 700, 40), int(y)) for y in rng.integers(0, 20, 6)
    ]
    write_shd_folder(tmp_path, train=samples, test=samples[:2])
    common = ["--network", "shd-3fc", "--dataset", "shd", "--data", str(tmp_path)]
    assert_train_and_run_agree(capsys, [*common, "--batch", "3"])


# --- dvsgesture ------------------------------------------------------------------------------


def write_aedat(path: Path, events, *, overflow: int = 0, other_packet: bool = True) -> Path:
    """An AEDAT 3.1 recording as the DVS128 Gesture set publishes it: '#' header lines, then
    packets (28-byte header, then 8-byte polarity events: x<<17 | y<<2 | p<<1 | valid, ts)."""
    import struct

    blob = b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n#!END-HEADER\r\n"
    if other_packet:  # a special-event packet (type 0) the reader must step over
        blob += struct.pack("<hhiiiiii", 0, 1, 8, 4, 0, 1, 1, 1) + struct.pack("<Ii", 5, 0)
    body = b"".join(
        struct.pack("<Ii", (x << 17) | (y << 2) | (p << 1) | valid, ts)
        for x, y, p, ts, valid in events
    )
    n = len(events)
    blob += struct.pack("<hhiiiiii", 1, 1, 8, 4, overflow, n, n, n) + body
    path.write_bytes(blob)
    return path


# gesture rows: class (1-based), start, end (µs); events (x, y, polarity, ts, valid)
DVS_TRAIN_EVENTS = [
    (3, 4, 1, 100, 1),  # gesture A, relative 0: frame 0
    (5, 6, 0, 250, 1),  # relative 150: 150·2 // 299 = 1
    (9, 9, 1, 260, 0),  # not valid: dropped
    (127, 127, 1, 399, 1),  # relative 299, the last: frame 1
    (1, 2, 0, 500, 1),  # gesture B, alone: frame 0
]


def write_dvsgesture(folder: Path, *, train_labels="3,100,400\n11,500,900\n", events=None):
    folder.mkdir(parents=True, exist_ok=True)
    write_aedat(folder / "user01_fluorescent.aedat", events or DVS_TRAIN_EVENTS)
    (folder / "user01_fluorescent_labels.csv").write_text(
        "class,startTime_usec,endTime_usec\n" + train_labels
    )
    write_aedat(folder / "user24_led.aedat", [(8, 8, 1, 0, 1)])
    (folder / "user24_led_labels.csv").write_text("class,startTime_usec,endTime_usec\n1,0,10\n")
    (folder / "trials_to_train.txt").write_text("user01_fluorescent.aedat\n")
    (folder / "trials_to_test.txt").write_text("user24_led.aedat\n\n")
    return folder


def test_dvsgesture_bins_gestures_by_hand(tmp_path):
    ds = load_dataset(
        "dvsgesture",
        write_dvsgesture(tmp_path),
        time_steps=2,
        input_shape=(2, 128, 128),
        num_classes=11,
    )
    assert ds.x_train.shape == (2, 2, 2, 128, 128) and ds.x_test.shape == (1, 2, 2, 128, 128)
    np.testing.assert_array_equal(ds.y_train, [2, 10])
    np.testing.assert_array_equal(ds.y_test, [0])
    want = np.zeros((2, 2, 2, 128, 128), np.uint8)
    want[0, 0, 1, 4, 3] = want[0, 1, 0, 6, 5] = want[0, 1, 1, 127, 127] = 1
    want[1, 0, 0, 2, 1] = 1
    np.testing.assert_array_equal(ds.x_train, want)


def test_dvsgesture_pools_to_the_network_s_frame(tmp_path):
    ds = load_dataset(
        "dvsgesture", write_dvsgesture(tmp_path), time_steps=1, input_shape=(2, 32, 32)
    )
    want = np.zeros((2, 32, 32), np.uint8)
    want[1, 1, 0] = want[0, 1, 1] = want[1, 31, 31] = 1  # ⌊y/4⌋, ⌊x/4⌋
    np.testing.assert_array_equal(ds.x_train[0, 0], want)
    with pytest.raises(DatasetError, match=r"not 2 polarities of a square frame"):
        load_dataset("dvsgesture", tmp_path, time_steps=1, input_shape=(2, 30, 30))


@pytest.mark.parametrize(
    ("make", "where", "message"),
    [
        (
            lambda f: (f / "user01_fluorescent.aedat").write_bytes(b"#!AER-DAT2.0\r\n"),
            "user01_fluorescent.aedat",
            "not an AEDAT 3 file",
        ),
        (
            lambda f: (f / "user01_fluorescent.aedat").write_bytes(
                (f / "user01_fluorescent.aedat").read_bytes()[:-5]
            ),
            "user01_fluorescent.aedat",
            "truncated",
        ),
        (
            lambda f: write_dvsgesture(f, train_labels="12,100,400\n"),
            "trials_to_train.txt",
            "label 11 is outside",
        ),
        (
            lambda f: write_dvsgesture(f, train_labels="3,1000,2000\n"),
            "user01_fluorescent.aedat",
            "holds no events",
        ),
        (
            lambda f: write_dvsgesture(f, train_labels="3,100\n"),
            "user01_fluorescent_labels.csv",
            "line 2: expected class,startTime_usec,endTime_usec",
        ),
        (
            lambda f: write_dvsgesture(f, events=[(200, 1, 1, 100, 1)]),
            "user01_fluorescent.aedat",
            "outside the 128x128 sensor",
        ),
    ],
)
def test_dvsgesture_bad_files_are_one_line_naming_the_file(tmp_path, make, where, message):
    write_dvsgesture(tmp_path)
    make(tmp_path)
    with pytest.raises(DatasetError, match=message) as err:
        load_dataset("dvsgesture", tmp_path, time_steps=2, num_classes=11)
    assert str(err.value).startswith(str(tmp_path / where))
    assert len(str(err.value).splitlines()) == 1


def test_dvsgesture_timestamps_carry_the_packet_overflow(tmp_path):
    folder = write_dvsgesture(tmp_path)
    write_aedat(folder / "user01_fluorescent.aedat", [(3, 4, 1, 100, 1)], overflow=1)
    (folder / "user01_fluorescent_labels.csv").write_text(
        f"class,startTime_usec,endTime_usec\n1,{2**31},{2**31 + 200}\n"
    )
    ds = load_dataset("dvsgesture", folder, time_steps=2, input_shape=(2, 128, 128))
    assert ds.x_train[0, 1, 1, 4, 3] == 1 and ds.x_train.sum() == 1  # its last event: frame T − 1


def write_small_dvs_network(path: Path) -> Path:
    """A network asking for 2x32x32 frames (DVS-Gesture pooled by 4)."""
    path.write_text(
        "name: dvs-small\ninput_shape: [2, 32, 32]\nencoding: events\ntime_steps: 4\n"
        "num_classes: 11\nlayers:\n  - {type: pool, mode: max, kernel: 4}\n"
        "  - {type: fc, out: 22}\n"
    )
    return path


def test_dvsgesture_trains_from_the_command_line(tmp_path, capsys):
    """`pipesdfa train --dataset dvsgesture --data DIR` with a network asking for 2x32x32."""
    import json

    from emulator.cli import main

    net = write_small_dvs_network(tmp_path / "net.yaml")
    data = write_dvsgesture(tmp_path / "data")
    argv = ["train", "--network", str(net), "--dataset", "dvsgesture", "--data", str(data)]
    assert main([*argv, "--epochs", "1", "--batch", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["dataset"] == "dvsgesture" and 0 <= result["test_accuracy"] <= 1


def test_dvsgesture_runs_the_same_bits_in_the_reference_and_the_cores(tmp_path, capsys):
    """Pooled DVS frames are the data of every runtime: `train --chip` and `run` agree."""
    net = write_small_dvs_network(tmp_path / "net.yaml")
    data = write_dvsgesture(tmp_path / "data")
    common = ["--network", str(net), "--dataset", "dvsgesture", "--data", str(data)]
    assert_train_and_run_agree(capsys, [*common, "--batch", "1"])


# --- braille ---------------------------------------------------------------------------------


def braille_record(letter: str, events) -> dict:
    """One recording as the published pickle holds it: its letter and, per taxel, the ON
    and OFF event times in seconds (lists, or numpy arrays as some exports have them)."""
    return {"letter": letter, "events": events, "timestamp": 0.0}


def braille_set(rng, letters=("Space", "A"), per_letter=5, taxels=12) -> list[dict]:
    """``per_letter`` recordings of each letter, letters interleaved, random events."""
    records = []
    for _ in range(per_letter):
        for letter in letters:
            events = [
                [sorted(rng.random(int(rng.integers(0, 4))).tolist()) for _ in range(2)]
                for _ in range(taxels)
            ]
            events[0][0] = np.sort(rng.random(3))  # every recording has events; numpy too
            records.append(braille_record(letter, events))
    return records


def write_braille(folder: Path, records, *, name="data_braille_letters_th_1.pkl") -> Path:
    import pickle

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(pickle.dumps(records, protocol=2))  # protocol 2: numpy via _codecs
    return path


def test_braille_bins_recordings_by_hand(tmp_path):
    """Channel 2·taxel + k (k = 0 ON, 1 OFF), one window [0, the file's last event] for
    every recording, every 5th recording of a letter in the test split."""
    empty = [[[], []] for _ in range(12)]
    records = []
    for i in range(5):
        for letter in ("Space", "B"):
            events = [[list(pair[0]), list(pair[1])] for pair in empty]
            events[1][0] = [0.3]  # taxel 1 ON: channel 2, frame ⌊0.3·4/2⌋ = 0
            events[5][1] = [1.0 + 0.1 * i]  # taxel 5 OFF: channel 11, frame 2
            if letter == "B" and i == 4:
                events[11][0] = [2.0]  # the file's last event: channel 22, frame 3
            records.append(braille_record(letter, events))
    write_braille(tmp_path, records)
    ds = load_dataset("braille", tmp_path, time_steps=4, num_classes=28)
    assert ds.temporal and ds.num_classes == 28
    assert ds.x_train.shape == (8, 4, 24) and ds.x_test.shape == (2, 4, 24)
    assert ds.y_train.tolist() == [0, 2] * 4 and ds.y_test.tolist() == [0, 2]
    last = np.zeros((4, 24), dtype=np.uint8)
    last[0, 2] = last[2, 11] = last[3, 22] = 1
    assert np.array_equal(ds.x_test[1], last)  # B's 5th recording
    assert np.array_equal(ds.x_test[0], last * (np.arange(24) != 22))
    first = np.zeros((4, 24), dtype=np.uint8)
    first[0, 2] = first[2, 11] = 1  # 1.0 s in the file's 2 s window, not its own 1 s one
    assert np.array_equal(ds.x_train[0], first)


def test_braille_reads_a_dict_of_columns_as_the_list_of_records(tmp_path):
    """pandas' ``to_dict()`` (columns by row index) and the records list give one dataset."""
    records = braille_set(np.random.default_rng(0))
    a = load_dataset("braille", write_braille(tmp_path / "a", records), time_steps=5)
    columns = {
        "letter": {i: r["letter"] for i, r in enumerate(records)},
        "events": {i: r["events"] for i, r in enumerate(records)},
    }
    b = load_dataset("braille", write_braille(tmp_path / "b", columns), time_steps=5)
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.x_test, b.x_test)
    assert np.array_equal(a.y_train, b.y_train) and a.x_train.any()


class _Runs:
    """Unpickling this would run ``touch``: the reader must refuse before it does."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.target}",))


def _bad_braille(kind: str, tmp_path: Path):
    records = braille_set(np.random.default_rng(1))
    if kind == "letter":
        records[3]["letter"] = "ß"
    elif kind == "three lists":
        records[2]["events"][4] = [[0.1], [0.2], [0.3]]
    elif kind == "negative":
        records[1]["events"][0][1] = [-0.5]
    elif kind == "not a number":
        records[1]["events"][0][1] = ["soon"]
    elif kind == "no taxels":
        records[4]["events"] = []
    elif kind == "taxels differ":
        records[5]["events"] = records[5]["events"][:11]
    elif kind == "not records":
        records = {"letters": ["A"]}
    elif kind == "record":
        records[0] = ["A", []]
    elif kind == "code":
        records.append(_Runs(tmp_path / "ran"))
    elif kind == "label":
        records[0]["letter"] = "Z"
    return records


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("letter", "recording 3: letter 'ß' is not one of Space, A..Z"),
        ("three lists", r"recording 2, taxel 4: expected two event lists \(ON, OFF\)"),
        ("negative", "recording 1, taxel 0: event times must be finite seconds >= 0"),
        ("not a number", "recording 1, taxel 0: event times must be finite seconds >= 0"),
        ("no taxels", r"recording 4 \(Space\) is empty: no taxels"),
        ("taxels differ", "recording 5 has 11 taxels, recording 0 has 12"),
        ("not records", "holds a dict; a Braille file holds a list of records"),
        ("record", "recording 0 is not a record with 'letter' and 'events'"),
        ("code", "the pickle asks for posix.system, .*refused, since unpickling it could run"),
        ("label", r"label 26 is outside \[0, 2\)"),
    ],
)
def test_braille_bad_files_are_one_line_naming_the_file(tmp_path, kind, message):
    path = write_braille(tmp_path / "data", _bad_braille(kind, tmp_path))
    with pytest.raises(DatasetError, match=message) as err:
        load_dataset("braille", path, time_steps=4, num_classes=2 if kind == "label" else 28)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)
    assert not (tmp_path / "ran").exists()


def test_braille_refuses_pandas_and_cut_pickles_and_finds_its_file(tmp_path):
    folder = tmp_path / "data"
    path = write_braille(folder, braille_set(np.random.default_rng(2)))
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DatasetError, match=r"not a readable pickle, cut short\?"):
        load_dataset("braille", folder, time_steps=4)
    path.write_bytes(b"\x80\x02cpandas.core.frame\nDataFrame\nq\x00.")  # a DataFrame's global
    with pytest.raises(DatasetError, match=r"holds a pandas DataFrame.*to_dict\('records'\)"):
        load_dataset("braille", path, time_steps=4)
    path.unlink()
    with pytest.raises(DatasetError, match=r"no data_braille_letters\*\.pkl .*Zenodo 7050094"):
        load_dataset("braille", folder, time_steps=4)
    write_braille(folder, [], name="data_braille_letters_th_1.pkl")
    write_braille(folder, [], name="data_braille_letters_th_2.pkl")
    with pytest.raises(
        DatasetError, match=r"th_1\.pkl, data_braille_letters_th_2\.pkl: give --data"
    ):
        load_dataset("braille", folder, time_steps=4)
    with pytest.raises(DatasetError, match="holds no recordings"):
        load_dataset("braille", folder / "data_braille_letters_th_2.pkl", time_steps=4)


def test_braille_trains_end_to_end_from_the_command_line(tmp_path, capsys):
    """`pipesdfa train --network braille-3fc --dataset braille --data DIR` on a file in the
    published layout (12 taxels, T = 20 as the network file says)."""
    import json

    from emulator.cli import main

    write_braille(tmp_path, braille_set(np.random.default_rng(3), ("A", "B", "C")))
    argv = ["train", "--network", "braille-3fc", "--dataset", "braille", "--data", str(tmp_path)]
    assert main([*argv, "--epochs", "1", "--batch", "4", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["dataset"] == "braille" and result["epochs"] == 1


def test_braille_runs_the_same_bits_in_the_reference_and_the_cores(tmp_path, capsys):
    """`train --chip` and `run` (in-process) on the same Braille file end with the same
    weights and test accuracy, with evaluation batches of 2 (``training.eval_batch``), so that
    evaluation's read noise is keyed by the same batches in both."""

    import yaml

    from emulator.spec.files import load_network

    net = load_network("braille-3fc").model_dump(mode="json")
    net["training"]["eval_batch"] = 2
    network = tmp_path / "braille-eval2.yaml"
    network.write_text(yaml.safe_dump(net))
    write_braille(tmp_path / "data", braille_set(np.random.default_rng(4), ("A", "B", "C")))
    common = ["--network", str(network), "--dataset", "braille", "--data", str(tmp_path / "data")]
    assert_train_and_run_agree(capsys, [*common, "--batch", "4"])


@pytest.mark.slow
def test_the_paper_s_dvsgesture_convnet_trains_from_the_command_line(tmp_path, capsys):
    """`pipesdfa train --network dvsgesture-convnet --dataset dvsgesture --data DIR` on a
    folder in the published layout: 2×128×128 frames, T = 30, evaluation in batches of 8
    (about 1 GB per sample of traces; the 256-sample default would need 280 GB)."""
    import json

    from emulator.cli import main

    data = write_dvsgesture(tmp_path / "data")
    argv = ["train", "--network", "dvsgesture-convnet", "--dataset", "dvsgesture"]
    assert main([*argv, "--data", str(data), "--epochs", "1", "--batch", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["dataset"] == "dvsgesture" and result["network"] == "dvsgesture-convnet"
    assert 0 <= result["test_accuracy"] <= 1


def test_the_many_file_readers_report_each_recording_read(tmp_path):
    """`progress(done, total)` counts every recording of both splits, once, in order (the
    line `train` and `run` show while N-MNIST's 70,000 files or DVS-Gesture's 122
    recordings are read)."""
    for name, folder, total in (
        ("nmnist", write_nmnist(tmp_path / "nmnist"), 4),
        ("dvsgesture", write_dvsgesture(tmp_path / "dvs"), 2),
    ):
        calls: list[tuple[int, int]] = []
        load_dataset(name, folder, time_steps=2, progress=lambda d, t, c=calls: c.append((d, t)))
        assert calls == [(k, total) for k in range(1, total + 1)]


def test_pipesdfa_data_says_what_a_dataset_holds(tmp_path, capsys):
    """`pipesdfa data` reads the files as `train` would for the network and counts: 10
    recordings of 2 letters with one event each (so 1 spike in T × 24 values), but the
    first of each letter with none; only channels 2 (taxel 1 ON) and 7 (taxel 3 OFF) fire."""
    import json

    from emulator.cli import main

    records = []
    for i in range(5):
        for letter, (taxel, k) in (("A", (1, 0)), ("C", (3, 1))):
            events = [[[], []] for _ in range(12)]
            if i:
                events[taxel][k] = [0.1 * i]
            records.append(braille_record(letter, events))
    write_braille(tmp_path, records)
    argv = ["data", "--network", "braille-3fc", "--dataset", "braille", "--data", str(tmp_path)]
    assert main([*argv, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["train_samples"], info["test_samples"], info["time_steps"]) == (8, 2, 20)
    assert info["class_counts"]["train"][1] == info["class_counts"]["train"][3] == 4
    assert info["class_counts"]["test"] == [0, 1, 0, 1] + [0] * 24
    assert info["empty_samples"] == {"train": 2, "test": 0}
    assert info["spike_rate"]["train"] == pytest.approx(6 / (8 * 20 * 24))
    assert info["spike_rate"]["test"] == pytest.approx(2 / (2 * 20 * 24))
    assert info["silent_channels"] == 22
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "8 training and 2 test samples, 20 frames of [24], 28 classes" in text
    assert "input channels that never fire 22 of 24" in text
    assert main([*argv[:-1], str(tmp_path / "none")]) == 2
    assert "no such folder" in capsys.readouterr().err
