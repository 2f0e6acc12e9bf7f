"""The table of bad input files: each gives exit code 2 and one line ``FILE: field: reason``."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
import yaml

from emulator import spec
from emulator.cli import main

EDGE = yaml.safe_load((spec.PRESETS / "pipesdfa-edge.yaml").read_text())
DIGITS = yaml.safe_load((spec.PRESETS / "networks/digits-mlp.yaml").read_text())


def _chip(**sections: dict | object) -> dict:
    data = {**EDGE}
    for key, value in sections.items():
        data[key] = {**EDGE[key], **value} if isinstance(value, dict) else value
    return data


def _net(**fields: object) -> dict:
    return {**DIGITS, **fields}


FC10 = {"type": "fc", "out": 10}
# (file content, expected "field: reason" fragment after "FILE: ")
TOPOLOGY_CASES = {
    "chip-unknown-field": (_chip(crossbar={"rowz": 3}), "crossbar.rowz: Extra inputs"),
    "chip-wrong-type": (_chip(crossbar={"rows": "many"}), "crossbar.rows: Input should be"),
    "chip-zero-pes": (_chip(tile={"pes": 0}), "tile.pes: Input should be greater than 0"),
    "chip-weight-bits": (_chip(crossbar={"weight_bits": 7}), "crossbar.weight_bits: 7 is not"),
    "chip-tiles": (_chip(tiles=17), "tiles: 17 tiles exceed the 4x4 mesh"),
    "chip-dataflow": (_chip(dataflow="isaac"), "dataflow: Input should be"),
    "chip-mesh": (_chip(noc={"mesh": "4 by 4"}), "noc.mesh: String should match"),
    "chip-conductance": (_chip(device={"g_max_us": 0.5}), "device.g_max_us: 0.5 must be"),
    "chip-levels": (_chip(device={"pulse_levels": 3}), "device.pulse_levels: 3 levels"),
    "chip-columns": (_chip(crossbar={"cols": 4}), "crossbar.cols: 4 columns cannot"),
    "chip-yaml": ("name: x\ncrossbar: {rows: 12\n", "line 3, column 1: YAML syntax error"),
    "chip-empty": ("", "(file): expected a mapping of fields, got an empty file"),
    "net-neuron": (_net(neuron={"model": "izhikevich"}), "neuron.model: Input should be"),
    "net-sizes": (
        _net(layers=[{"type": "fc", "out": 32}, {**FC10, "in_features": 30}]),
        "layers.1.in_features: is 30 but the previous layer outputs 32",
    ),
    "net-conv-flat": (
        _net(layers=[{"type": "conv", "out_channels": 4}, FC10]),
        "layers.0: conv needs a [C, H, W] input",
    ),
    "net-votes": (_net(layers=[{"type": "fc", "out": 15}]), "num_classes: the last layer"),
    "net-layer-type": (_net(layers=[{"type": "lstm"}]), "layers.0: Input tag 'lstm'"),
    "net-missing": (
        {k: v for k, v in DIGITS.items() if k != "time_steps"},
        "time_steps: Field required",
    ),
}


def _write(path: Path, content: dict | str) -> Path:
    path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    return path


@pytest.mark.parametrize("case", sorted(TOPOLOGY_CASES))
def test_bad_topology_file(tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str) -> None:
    content, reason = TOPOLOGY_CASES[case]
    path = _write(tmp_path / f"{case}.yaml", content)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"{path}: ") and reason in err, err
    assert len(err.splitlines()) == 1


def _idx(path: Path, magic: int, dims: list[int], payload: bytes) -> None:
    path.write_bytes(struct.pack(">I", magic) + struct.pack(f">{len(dims)}I", *dims) + payload)


def _mnist(folder: Path, *, labels: bytes = b"\x01\x02", magic: int = 0x803) -> Path:
    folder.mkdir()
    for split in ("train", "t10k"):
        _idx(folder / f"{split}-images-idx3-ubyte", magic, [2, 8, 8], bytes(128))
        _idx(folder / f"{split}-labels-idx1-ubyte", 0x801, [2], labels)
    return folder


DATASET_CASES = {
    "idx-magic": (lambda d: _mnist(d, magic=1234), "expected magic 2051, found 1234"),
    "idx-labels": (lambda d: _mnist(d, labels=b"\x01\x63"), "99"),
    "idx-gzip": (
        lambda d: (
            _mnist(d),
            (d / "train-images-idx3-ubyte").unlink(),
            (d / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip"),
        )[0],
        "train-images-idx3-ubyte.gz",
    ),
}


@pytest.mark.parametrize("case", sorted(DATASET_CASES))
def test_bad_dataset_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str) -> None:
    make, reason = DATASET_CASES[case]
    folder = make(tmp_path / case)
    assert main(["train", "--dataset", "mnist-idx", "--data", str(folder), "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert reason in err and str(folder) in err and len(err.splitlines()) == 1, err
