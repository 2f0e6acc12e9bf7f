"""Chip and network files: shipped files load, bad files fail with FILE: field: reason."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator import spec
from emulator.cli import main
from emulator.compare import PAPER_NETWORKS

SHIPPED = sorted(spec.PRESETS.glob("*.yaml")) + sorted(spec.PRESETS.glob("networks/*.yaml"))


def _edge() -> dict:
    return yaml.safe_load((spec.PRESETS / "pipesdfa-edge.yaml").read_text())


def _digits() -> dict:
    return yaml.safe_load((spec.PRESETS / "networks/digits-mlp.yaml").read_text())


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_files_are_valid(path: Path) -> None:
    loaded = spec.load_file(path)
    assert loaded.name == path.stem


def test_shipped_names_resolve() -> None:
    assert spec.load_chip("tiny").tiles <= 2
    assert spec.load_chip("tiny").tile.pes <= 2
    for name in [*PAPER_NETWORKS, "digits-mlp"]:
        assert spec.load_network(name).name == name


def test_paper_network_shapes_match_figures() -> None:
    # docs/sources.md#sdfa, "SDFA networks and accuracies".
    for depth in (2, 3, 4, 5):
        net = spec.load_network(f"nmnist-mlp{depth}")
        assert math.prod(net.input_shape) == 2312
        assert (net.time_steps, net.training.batch, net.neuron.model) == (10, 128, "lif")
        assert [layer.out for layer in net.layers] == [1000] * (depth - 1) + [10]
    shd = spec.load_network("shd-3fc")
    assert (shd.input_shape, shd.time_steps, shd.neuron.model) == ([700], 100, "if")
    assert [layer.out for layer in shd.layers] == [100, 100, 20]
    conv = spec.load_network("dvsgesture-convnet")
    shapes = spec.layer_shapes(conv)
    assert math.prod(shapes[10]) == 2048  # the flattened input of FC 2048-1024-110
    assert shapes[-1] == (110,) and conv.num_classes == 11 and conv.time_steps == 30
    digits = spec.load_network("digits-mlp")
    assert digits.input_shape == [64] and digits.num_classes == 10


def _differing(a: spec.ChipSpec, b: spec.ChipSpec) -> set[str]:
    """Dotted fields whose values differ between two chips."""
    da, db = a.model_dump(), b.model_dump()
    return {
        f"{section}.{key}"
        for section, value in da.items()
        if isinstance(value, dict)
        for key in value
        if value[key] != db[section][key]
    } | {key for key, value in da.items() if not isinstance(value, dict) and value != db[key]}


def test_the_baseline_presets_differ_from_edge_only_where_they_say() -> None:
    edge = spec.load_chip("pipesdfa-edge")
    # The algorithm alone: only the dataflow changes.
    only = spec.load_chip("pipelayer-edge")
    assert _differing(edge, only) == {"name", "description", "dataflow"}
    # PipeLayer as published: its architecture on the same device and periphery figures.
    assert _differing(edge, spec.load_chip("pipelayer")) == {
        "name",
        "description",
        "dataflow",
        "tile.grad_datapath",
        "crossbar.cell_bits",
        "crossbar.weight_bits",
        "crossbar.readout",
        "crossbar.converters",
        "crossbar.serial_readout",
        "crossbar.update",
    }
    # The published-technology variant adds only PipeLayer's NVSim read/write figures
    # (docs/sources.md#pipelayer: read 29.31 ns / 1.08 pJ, write 50.88 ns / 3.91 nJ).
    nvsim = spec.load_chip("pipelayer-nvsim")
    assert _differing(spec.load_chip("pipelayer"), nvsim) == {
        "name",
        "description",
        "device.read_latency_ns",
        "device.read_energy_pj",
        "device.write_latency_ns",
        "device.write_energy_pj",
    }
    device = nvsim.device
    assert (device.read_latency_ns, device.read_energy_pj) == (29.31, 1.08)
    assert (device.write_latency_ns, device.write_energy_pj) == (50.88, 3910.0)
    pipelayer = spec.load_chip("pipelayer").crossbar
    assert pipelayer.weight_bits // pipelayer.cell_bits == 4
    assert pipelayer.converters == pipelayer.cols  # an I&F counter per column


def test_a_file_stands_on_its_base(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text(
        "base: pipesdfa-edge\nname: mine\ncrossbar: {error_bits: 6}\nnoc: {dead_links: []}\n"
    )
    (tmp_path / "child.yaml").write_text("base: mine\nname: child\ntile: {pes: 2}\n")
    (tmp_path / "path.yaml").write_text("base: ./child.yaml\nname: by-path\n")
    edge, child = spec.load_chip("pipesdfa-edge"), spec.load_chip(tmp_path / "child.yaml")
    # sections merge field by field; a sibling file's name wins over a shipped one
    assert _differing(edge, child) == {"name", "crossbar.error_bits", "tile.pes"}
    assert child.crossbar.error_bits == 6 and child.crossbar.cell_bits == edge.crossbar.cell_bits
    assert spec.load_chip(tmp_path / "path.yaml").tile.pes == 2
    schema = spec.json_schema("chip")
    assert "base" in schema["properties"] and "base" not in schema.get("required", [])


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"a.yaml": "base: a\nname: a\n"}, "base: 'a' leads back to a file of its own chain"),
        (
            {"a.yaml": "base: b\nname: a\n", "b.yaml": "base: a\nname: b\n"},
            "leads back to a file of its own chain",
        ),
        ({"a.yaml": "base: nowhere-at-all\nname: a\n"}, "base: "),
        ({"a.yaml": "base: [1, 2]\nname: a\n"}, "base: expected a file name or path, got a list"),
        (
            {"a.yaml": "base: b\nname: a\n", "b.yaml": "- not a mapping\n"},
            "b.yaml: (file): expected a mapping of fields",
        ),
        (
            {"a.yaml": "base: pipesdfa-edge\nname: a\ncrossbar: {converters: 129}\n"},
            "crossbar.converters: 129 readout units exceed the 128 columns",
        ),
    ],
)
def test_a_bad_base_is_one_line_naming_the_file(
    tmp_path: Path, files: dict[str, str], message: str
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(spec.TopologyError) as err:
        spec.load_chip(tmp_path / "a.yaml")
    text = str(err.value)
    assert text.startswith(str(tmp_path / "a.yaml")) and message in text
    assert "\n" not in text


def _write(tmp_path: Path, data: dict | str, name: str = "f.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def _chip_with(**changes: object) -> dict:
    data = _edge()
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = data
        for part in parents:
            node = node[part]
        node[leaf] = value
    return data


BAD_CHIPS = {
    "unknown field": (_chip_with(crossbar__rowz=3), "crossbar.rowz", "Extra inputs"),
    "wrong type": (_chip_with(crossbar__rows="many"), "crossbar.rows", "integer"),
    "non-positive size": (_chip_with(tile__pes=0), "tile.pes", "greater than 0"),
    "weight bits": (_chip_with(crossbar__weight_bits=7), "crossbar.weight_bits", "multiple"),
    "too many tiles": (_chip_with(tiles=17), "tiles", "exceed"),
    "unknown dataflow": (_chip_with(dataflow="isaac"), "dataflow", "pipesdfa"),
    "bad mesh": (_chip_with(noc__mesh="4 by 4"), "noc.mesh", "pattern"),
    "conductance range": (_chip_with(device__g_max_us=0.5), "device.g_max_us", "greater"),
}


@pytest.mark.parametrize("case", sorted(BAD_CHIPS))
def test_bad_chip_files_name_the_field(tmp_path: Path, case: str) -> None:
    data, field, reason = BAD_CHIPS[case]
    path = _write(tmp_path, data)
    with pytest.raises(spec.TopologyError) as err:
        spec.load_chip(path)
    assert str(err.value).startswith(f"{path}: {field}: ")
    assert reason in str(err.value)
    assert "\n" not in str(err.value)


def _net_with(**changes: object) -> dict:
    data = _digits()
    data.update(changes)
    return data


BAD_NETWORKS = {
    "unknown neuron": (_net_with(neuron={"model": "izhikevich"}), "neuron.model", "lif"),
    "input mismatch": (
        _net_with(layers=[{"type": "fc", "out": 32}, {"type": "fc", "out": 10, "in_features": 30}]),
        "layers.1.in_features",
        "outputs 32",
    ),
    "conv on flat input": (
        _net_with(layers=[{"type": "conv", "out_channels": 4}, {"type": "fc", "out": 10}]),
        "layers.0",
        "[C, H, W]",
    ),
    "votes": (_net_with(layers=[{"type": "fc", "out": 15}]), "num_classes", "multiple"),
    "unknown layer": (_net_with(layers=[{"type": "lstm", "out": 10}]), "layers.0", "tag"),
    "missing field": (
        {k: v for k, v in _digits().items() if k != "time_steps"},
        "time_steps",
        "required",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_NETWORKS))
def test_bad_network_files_name_the_field(tmp_path: Path, case: str) -> None:
    data, field, reason = BAD_NETWORKS[case]
    path = _write(tmp_path, data)
    with pytest.raises(spec.TopologyError) as err:
        spec.load_network(path)
    assert str(err.value).startswith(f"{path}: {field}: "), str(err.value)
    assert reason in str(err.value)


def test_yaml_syntax_error_gives_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "name: x\ndataflow: pipesdfa\ncrossbar: {rows: 12\n")
    with pytest.raises(spec.TopologyError, match=r"line 4, column 1: YAML syntax error"):
        spec.load_chip(path)


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(spec.TopologyError, match=r"nope\.yaml: file not found"):
        spec.load_chip(tmp_path / "nope.yaml")
    with pytest.raises(spec.TopologyError, match="expected a mapping of fields, got an empty"):
        spec.load_chip(_write(tmp_path, ""))


def test_validate_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = spec.PRESETS / "tiny.yaml"
    assert main(["validate", str(good), str(spec.PRESETS / "networks/digits-mlp.yaml")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"{good}: ok (chip tiny)",
        f"{good.parent}/networks/digits-mlp.yaml: ok (network digits-mlp)",
    ]
    bad = _write(tmp_path, _chip_with(tiles=99))
    assert main(["validate", str(good), str(bad), str(tmp_path / "gone.yaml")]) == 2
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [f"{good}: ok (chip tiny)"]
    assert captured.err.splitlines() == [
        f"{bad}: tiles: 99 tiles exceed the 4x4 mesh's 16 nodes",
        f"{tmp_path / 'gone.yaml'}: file not found",
    ]
    assert "Traceback" not in captured.err


@pytest.mark.parametrize(
    ("kind", "field"), [("chip", "dataflow"), ("network", "layers"), ("checkpoint", "config")]
)
def test_schema_command(kind: str, field: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", kind]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["additionalProperties"] is False
    assert field in schema["properties"]
    # Every field of every model carries a description.
    for model in [schema, *schema.get("$defs", {}).values()]:
        for name, prop in model.get("properties", {}).items():
            assert prop.get("description"), f"{model.get('title')}.{name} has no description"


# ---------------------------------------------------------------- property-based loading

_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 300), st.floats(allow_nan=True), st.text(max_size=8)
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
_FIELDS = [
    "name",
    "dataflow",
    "tiles",
    "noc",
    "tile",
    "pe",
    "crossbar",
    "device",
    "pipeline",
    "layers",
    "input_shape",
    "time_steps",
    "num_classes",
    "neuron",
    "encoding",
]


@settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.sampled_from(["pipesdfa-edge.yaml", "networks/digits-mlp.yaml"]),
    st.dictionaries(st.sampled_from(_FIELDS), _VALUES, max_size=3),
    st.binary(max_size=60),
)
def test_any_file_loads_or_fails_with_a_topology_error(
    tmp_path_factory: pytest.TempPathFactory, shipped: str, patch: dict, junk: bytes
) -> None:
    """A shipped file with fields replaced by arbitrary YAML values, and arbitrary bytes:
    either a valid spec or a TopologyError naming the file — never another exception."""
    data = yaml.safe_load((spec.PRESETS / shipped).read_text()) | patch
    path = tmp_path_factory.mktemp("fuzz") / "f.yaml"
    for content in (yaml.safe_dump(data).encode(), junk):
        path.write_bytes(content)
        try:
            spec.load_file(path)
        except spec.TopologyError as err:
            assert str(err).startswith(str(path))
