"""Tests of emulator.noc: frames and their codec, splitting, XY routing, NoC costs, link model.

Expected values are hand examples or closed forms written here, never the module's output.
"""

from __future__ import annotations

import itertools
import math

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.cost.noc import (
    RouteError,
    hops,
    node_index,
    node_position,
    route,
    transfer_energy_pj,
    transfer_ns,
    value_bits,
    xy_route,
)
from emulator.runtime.frames import (
    KIND_DTYPE,
    MAX_FRAME_BYTES,
    Frame,
    FrameError,
    decode,
    encode,
    parse_core,
    pe_name,
    split,
    tile_name,
)
from emulator.spec import ChipSpec

FUZZ = settings(
    max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)


def make_chip(**noc) -> ChipSpec:
    """A chip on a 4x4 mesh, 500 MHz clock (2 ns per flit), 256-bit flits, 1.5 ns per hop."""
    base = {"mesh": "4x4", "flit_bits": 256, "hop_latency_ns": 1.5, "energy_pj_per_bit_hop": 0.081}
    return ChipSpec.model_validate(
        {"name": "t", "dataflow": "pipesdfa", "clock_mhz": 500.0, "noc": {**base, **noc}}
    )


def columns(n: int) -> dict:
    return {
        "samples": [i // 4 for i in range(n)],
        "steps": [i % 4 for i in range(n)],
        "times_ns": [0.5 * i for i in range(n)],
    }


def frame(kind: str, data: np.ndarray | None, n: int | None = None, **kw) -> Frame:
    n = len(data) if data is not None else n
    args = {"src": "tile-0", "dst": "pe-1-2", "layer": 1, "batch": 0, **columns(n), **kw}
    return Frame.pack(kind, data=data, **args)


# ----------------------------------------------------------------------------- frames


def test_core_names() -> None:
    assert tile_name(3) == "tile-3" and pe_name(3, 1) == "pe-3-1"
    assert parse_core("controller") == ("controller", -1, -1)
    assert parse_core("tile-12") == ("tile", 12, -1)
    assert parse_core("pe-2-7") == ("pe", 2, 7)
    for bad in ("tile-", "tile-01", "pe-1", "Controller", "tile-1 "):
        with pytest.raises(ValueError, match="not a core name"):
            parse_core(bad)


def test_bit_packing_hand_example() -> None:
    # Little bit order: value i is bit i % 8 of byte i // 8.
    # [1,0,1,1,0,0,0,0 | 1] -> byte 0 = 1 + 4 + 8 = 13, byte 1 = 1 (padded with zeros).
    f = frame("spikes", np.array([[1, 0, 1, 1, 0, 0, 0, 0, 1]], dtype=np.uint8))
    assert f.payload == bytes([13, 1])
    assert f.shape == [9] and f.dtype == "bits"
    assert f.bytes_per_packet == 2 and f.bits_per_packet(make_chip()) == 9
    # Two packets: each padded to whole bytes on its own.
    f2 = frame("spikes", np.array([[1] * 9, [0] * 8 + [1]], dtype=bool))
    assert f2.payload == bytes([255, 1, 0, 1])


def test_round_trip_every_kind() -> None:
    rng = np.random.default_rng(0)
    spikes = rng.random((7, 3, 11)) < 0.3
    floats = rng.standard_normal((5, 4, 6))
    floats[0, 0, :6] = [-0.0, np.nan, np.inf, -np.inf, 5e-324, np.finfo(np.float64).max]
    ints = rng.integers(-1000, 1000, (6, 2, 3), dtype=np.int64)
    ints[0, 0, :2] = [np.iinfo(np.int64).min, np.iinfo(np.int64).max]
    cases = [
        ("spikes", spikes),
        ("psum", floats),
        ("error", floats[:, 0]),
        ("feedback", floats[:, :, 0]),
        ("update", ints),
    ]
    for kind, data in cases:
        f = frame(kind, data, meta={"first": 3, "total": 10, "tag": "x", "r": 0.5, "ix": [1, 2]})
        g = decode(encode(f), known={"pe-1-2"})
        assert g == f
        out = g.array()
        assert out.shape == data.shape
        assert out.dtype == {"spikes": bool, "update": np.int64}.get(kind, np.float64)
        if kind in ("psum", "error", "feedback"):  # bit-exact, nan, -0.0 and subnormals included
            np.testing.assert_array_equal(out.view(np.uint64), data.view(np.uint64))
        else:
            np.testing.assert_array_equal(out, data)
        assert out.flags.writeable
    ctrl = frame("control", None, n=3)
    assert ctrl.shape == [] and ctrl.dtype == "none" and ctrl.payload == b""
    assert ctrl.bits_per_packet(make_chip()) == 0
    g = decode(encode(ctrl))
    assert g == ctrl and g.array().shape == (3, 0)


def test_packets_view() -> None:
    data = np.arange(6, dtype=np.int64).reshape(3, 2)
    f = frame("update", data)
    pk = list(f.packets())
    assert [p.sample for p in pk] == [0, 0, 0] and [p.step for p in pk] == [0, 1, 2]
    assert [p.time_ns for p in pk] == [0.0, 0.5, 1.0]
    np.testing.assert_array_equal(pk[2].payload, [4, 5])
    assert all(p.kind == "update" and p.dst == "pe-1-2" and p.layer == 1 for p in pk)
    assert next(frame("control", None, n=1).packets()).payload is None


def test_bits_per_packet_follow_the_chip_value_width() -> None:
    chip = make_chip()
    wide = chip.model_copy(update={"tile": chip.tile.model_copy(update={"value_bits": 24})})
    widths = {kind: value_bits(chip, kind) for kind in KIND_DTYPE}
    assert widths == {
        "spikes": 1,
        "psum": 16,
        "error": 16,
        "feedback": 16,
        "update": 16,
        "control": 0,
    }
    assert {kind: value_bits(wide, kind) for kind in KIND_DTYPE} == widths | {
        "psum": 24,
        "error": 24,
        "feedback": 24,
        "update": 24,
    }
    assert frame("psum", np.zeros((2, 4, 8))).bits_per_packet(chip) == 16 * 32
    assert frame("psum", np.zeros((2, 4, 8))).bits_per_packet(wide) == 24 * 32
    assert frame("spikes", np.zeros((2, 128), bool)).bits_per_packet(wide) == 128
    with pytest.raises(ValueError, match="kind"):
        value_bits(chip, "gossip")


def test_encoded_size_1000_spike_packets() -> None:
    n, neurons = 1000, 128
    f = frame("spikes", np.random.default_rng(1).random((n, neurons)) < 0.5)
    size = len(encode(f))
    payload = n * neurons // 8  # 16 bytes per packet: bit-packed
    # Columns: samples 0..249 and steps 0..3 (1-2 byte msgpack ints), times 9-byte float64s.
    sample_bytes = sum(1 if s < 128 else 2 for s in f.samples)
    cols = sample_bytes + n * 1 + n * 9
    assert payload + cols < size < payload + cols + 200  # one small header for the whole frame
    assert size < n * neurons / 4  # far below one byte per spike
    assert size < n * 100  # far below one ~100-byte header per packet
    assert len(msgpack.unpackb(encode(f))) == 12  # one map: the frame's fields


# ----------------------------------------------------------------------------- errors


def valid_map() -> dict:
    return msgpack.unpackb(encode(frame("spikes", np.ones((2, 9), bool))))


def bad(obj: object) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xc1", r"^not msgpack: "),
        (b"\x92\x01", r"^not msgpack: .*incomplete"),
        (bad([1, 2]), r"^not a frame: expected a msgpack map, got list$"),
        (bad(3), r"^not a frame: expected a msgpack map, got int$"),
        (bad({**valid_map(), "kind": "bogus"}), r"^bad frame: kind: Input should be 'spikes'"),
        (bad({**valid_map(), "extra": 1}), r"^bad frame: extra: Extra inputs are not permitted$"),
        (bad({**valid_map(), "layer": -2}), r"^bad frame: layer: .*greater than or equal to -1"),
        (bad({**valid_map(), "layer": "1"}), r"^bad frame: layer: Input should be a valid integer"),
        (bad({**valid_map(), "payload": "ab"}), r"^bad frame: payload: .*valid bytes"),
        (bad({**valid_map(), "dst": "tile-x"}), r"^bad frame: dst: String should match pattern"),
        (bad({**valid_map(), "times_ns": [0.0, -1.0]}), r"^bad frame: times_ns.1: .*greater"),
        (
            bad({k: v for k, v in valid_map().items() if k != "payload"}),
            r"^bad frame: payload: Field required$",
        ),
        (
            bad({**valid_map(), "steps": [0]}),
            r"^bad frame: columns: samples, steps and times_ns have unequal lengths \(2, 1, 2\)$",
        ),
        (
            bad({**valid_map(), "payload": b"\x00\x00\x00"}),
            r"^bad frame: payload: 3 bytes, expected 4 \(2 packets × 2 bytes of bits \[9\]\)$",
        ),
        (
            bad({**valid_map(), "dtype": "f8"}),
            r"^bad frame: dtype: 'f8' does not match kind 'spikes' \(expected 'bits'\)$",
        ),
        (
            bad({**valid_map(), "kind": "x", "layer": -5}),
            r"^bad frame: kind: .* \(\+1 more\)$",
        ),
    ],
)
def test_decode_errors(data: bytes, message: str) -> None:
    with pytest.raises(FrameError, match=message) as info:
        decode(data)
    assert "\n" not in str(info.value)


def test_decode_unknown_destination() -> None:
    data = encode(frame("control", None, n=1))
    assert decode(data, known={"pe-1-2", "tile-0"}).dst == "pe-1-2"
    with pytest.raises(FrameError, match=r"^dst: unknown destination 'pe-1-2'$"):
        decode(data, known={"tile-0"})


@pytest.mark.parametrize(
    ("kind", "data", "message"),
    [
        ("bogus", None, r"^kind: unknown kind 'bogus'"),
        ("control", np.zeros((2, 1)), r"^data: kind 'control' carries no payload"),
        ("psum", None, r"^data: kind 'psum' needs an array"),
        ("psum", np.zeros((3, 2)), r"^data: shape \(3, 2\) does not start with the 2 packets"),
        ("spikes", np.array([[0, 2], [1, 1]]), r"^data: spikes must be bool or 0/1 integers"),
        ("spikes", np.zeros((2, 2)), r"^data: spikes must be bool or 0/1 integers"),
        ("psum", np.zeros((2, 2), complex), r"^data: psum values must be real numbers"),
        ("update", np.zeros((2, 2)), r"^data: update values must be integers"),
        ("update", np.full((2, 1), 2**63, np.uint64), r"^data: update values do not fit int64"),
    ],
)
def test_pack_errors(kind: str, data: np.ndarray | None, message: str) -> None:
    with pytest.raises(FrameError, match=message):
        Frame.pack(kind, "tile-0", "tile-1", 0, 0, [0, 1], [0, 1], [0.0, 1.0], data)


def test_pack_schema_error_is_frame_error() -> None:
    with pytest.raises(FrameError, match=r"^bad frame: columns: .*\(2, 1, 2\)$"):
        Frame.pack("control", "tile-0", "tile-1", 0, 0, [0, 1], [0], [0.0, 1.0], None)
    with pytest.raises(FrameError, match=r"^bad frame: src: String should match pattern"):
        Frame.pack("control", "core-0", "tile-1", 0, 0, [0], [0], [0.0], None)


# ----------------------------------------------------------------------------- fuzzing

BASES = [
    encode(frame("spikes", np.eye(3, 10, dtype=bool), meta={"first": 0, "total": 3})),
    encode(frame("psum", np.arange(8.0).reshape(2, 2, 2))),
    encode(frame("update", np.arange(-3, 3, dtype=np.int64).reshape(3, 2))),
    encode(frame("control", None, n=2)),
]

msgpack_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=12)
    | st.binary(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def only_frame_error(data: bytes) -> None:
    """decode either returns a frame that reads and re-encodes, or raises a one-line FrameError.

    Any other exception escapes and fails the test.
    """
    try:
        f = decode(data, known={"pe-1-2", "tile-0"})
    except FrameError as err:
        assert str(err) and "\n" not in str(err)
        return
    assert f.array().shape[0] == f.n_packets
    assert encode(decode(encode(f))) == encode(f)


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_arbitrary_bytes(data: bytes) -> None:
    only_frame_error(data)


@FUZZ
@given(
    st.sampled_from(BASES),
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=6),
    st.sampled_from(["replace", "insert", "delete", "truncate"]),
)
def test_fuzz_mutated_bytes(base: bytes, edits: list[tuple[int, int]], how: str) -> None:
    data = bytearray(base)
    for pos, byte in edits:
        i = pos % len(data) if data else 0
        if how == "replace" and data:
            data[i] = byte
        elif how == "insert":
            data.insert(i, byte)
        elif how == "delete" and data:
            del data[i]
        else:
            data = data[:i]
    only_frame_error(bytes(data))


@FUZZ
@given(
    st.sampled_from(BASES),
    st.lists(
        st.tuples(
            st.sampled_from([*msgpack.unpackb(BASES[0]).keys(), "other"]),
            msgpack_values,
            st.booleans(),
        ),
        min_size=1,
        max_size=3,
    ),
)
def test_fuzz_mutated_fields(base: bytes, edits: list[tuple[str, object, bool]]) -> None:
    obj = msgpack.unpackb(base)
    for key, value, delete in edits:
        if delete:
            obj.pop(key, None)
        elif isinstance(obj.get(key), list) and obj[key] and not isinstance(value, list):
            obj[key][len(obj[key]) // 2] = value  # corrupt one entry of a column
        else:
            obj[key] = value
    only_frame_error(msgpack.packb(obj, use_bin_type=True))


# ----------------------------------------------------------------------------- split


def test_split_keeps_packets_in_order_and_fits() -> None:
    data = np.random.default_rng(2).standard_normal((1000, 64))  # ~540 KB encoded
    f = frame("psum", data, meta={"first": 0, "total": 250})
    size = len(encode(f))
    pieces = split(f, MAX_FRAME_BYTES)
    assert all(len(encode(p)) <= MAX_FRAME_BYTES for p in pieces)
    assert len(pieces) <= math.ceil(size / MAX_FRAME_BYTES) + 1
    np.testing.assert_array_equal(np.concatenate([p.array() for p in pieces]), data)
    for col in ("samples", "steps", "times_ns"):
        assert list(itertools.chain(*(getattr(p, col) for p in pieces))) == getattr(f, col)
    for p in pieces:
        assert decode(encode(p)) == p
        assert (p.kind, p.src, p.dst, p.layer, p.batch, p.meta) == (
            f.kind,
            f.src,
            f.dst,
            f.layer,
            f.batch,
            f.meta,
        )


def test_split_small_frame_and_impossible_split() -> None:
    f = frame("spikes", np.ones((10, 128), bool))
    assert split(f) == [f]
    pieces = split(f, 200)
    assert sum(p.n_packets for p in pieces) == 10 and all(len(encode(p)) <= 200 for p in pieces)
    with pytest.raises(FrameError, match=r"^split: one psum packet encodes to \d+ bytes"):
        split(frame("psum", np.zeros((2, 100))), 500)


# ----------------------------------------------------------------------------- routing


def test_xy_route_hand_examples_4x4() -> None:
    # Positions are (row, col); X (columns) first, then Y (rows).
    assert xy_route((0, 0), (2, 3)) == [
        ((0, 0), (0, 1)),
        ((0, 1), (0, 2)),
        ((0, 2), (0, 3)),
        ((0, 3), (1, 3)),
        ((1, 3), (2, 3)),
    ]
    assert xy_route((3, 3), (1, 0)) == [
        ((3, 3), (3, 2)),
        ((3, 2), (3, 1)),
        ((3, 1), (3, 0)),
        ((3, 0), (2, 0)),
        ((2, 0), (1, 0)),
    ]
    assert xy_route((2, 1), (0, 1)) == [((2, 1), (1, 1)), ((1, 1), (0, 1))]
    assert xy_route((1, 1), (1, 1)) == []


def test_hops_is_manhattan_and_route_length() -> None:
    assert hops((0, 0), (3, 3)) == 6 and hops((3, 0), (0, 2)) == 5 and hops((2, 2), (2, 2)) == 0
    for a in itertools.product(range(4), repeat=2):
        for b in itertools.product(range(4), repeat=2):
            route = xy_route(a, b)
            assert len(route) == hops(a, b)
            assert all(hops(u, v) == 1 for u, v in route)
            assert (route[0][0], route[-1][1]) == (a, b) if route else a == b


def test_node_index() -> None:
    assert node_index((2, 3), 4) == 11 and node_position(11, 4) == (2, 3)


def test_transfer_closed_forms() -> None:
    chip = make_chip()  # 1.5 ns per hop, 256-bit flits, 2 ns per cycle, 0.081 pJ per bit-hop
    assert transfer_ns(chip, 600, 3) == pytest.approx(3 * 1.5 + 3 * 2.0)
    assert transfer_ns(chip, 256, 1) == pytest.approx(1.5 + 2.0)
    assert transfer_ns(chip, 257, 2) == pytest.approx(3.0 + 4.0)
    assert transfer_ns(chip, 0, 4) == pytest.approx(6.0)  # no bits: no serialisation
    assert transfer_ns(chip, 600, 0) == 0.0  # same tile: no NoC
    assert transfer_energy_pj(chip, 600, 3) == pytest.approx(600 * 3 * 0.081)
    assert transfer_energy_pj(chip, 600, 0) == 0.0


# ----------------------------------------------------------------------------- link model

SENDS = [((0, 0), (1, 2), 100), ((0, 1), (1, 1), 50), ((1, 2), (0, 0), 10), ((2, 2), (2, 2), 7)]


def _mesh(mesh: str, dead: list[str]) -> ChipSpec:
    return ChipSpec.model_validate(
        {"name": "m", "dataflow": "pipesdfa", "tiles": 1, "noc": {"mesh": mesh, "dead_links": dead}}
    )


def test_routes_detour_around_dead_links() -> None:
    clean = _mesh("3x3", [])
    assert route((0, 0), (2, 2), clean) == xy_route((0, 0), (2, 2))
    # XY goes along row 0 first; with (0,0)-(0,1) dead, YX (down column 0, then along row 2).
    chip = _mesh("3x3", ["0,0-0,1"])
    assert route((0, 0), (2, 2), chip) == [
        ((0, 0), (1, 0)),
        ((1, 0), (2, 0)),
        ((2, 0), (2, 1)),
        ((2, 1), (2, 2)),
    ]
    # Neighbours cut directly (both directions): the shortest detour is 3 hops.
    assert len(route((0, 1), (0, 0), chip)) == 3
    walled = _mesh("3x3", ["0,0-0,1", "0,0-1,0"])
    with pytest.raises(RouteError, match=r"no route from node \(0, 0\)"):
        route((0, 0), (2, 2), walled)


def test_dead_links_must_join_neighbours() -> None:
    with pytest.raises(ValueError, match=r"dead_links\.0: '0,0-1,1' is not a link"):
        _mesh("2x2", ["0,0-1,1"])


def test_a_detour_costs_its_extra_hops() -> None:
    from emulator.cost import CostModel
    from emulator.spec import load_chip, load_network

    tiny = load_chip("tiny")
    wide = tiny.model_copy(update={"noc": tiny.noc.model_copy(update={"mesh": "2x2"})})
    cut = wide.model_copy(update={"noc": wide.noc.model_copy(update={"dead_links": ["0,0-0,1"]})})
    net = load_network("digits-mlp")  # layer 1 on tile 0 at (0,0), layer 2 on tile 1 at (0,1)
    one, three = CostModel(wide, net).noc_spikes(1), CostModel(cut, net).noc_spikes(1)
    assert three.dur_ps - one.dur_ps == round(2 * wide.noc.hop_latency_ns * 1000)
