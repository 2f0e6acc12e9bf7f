"""The cores' messages: typed headers per kind, whole-shaped payloads, the msgpack codec, and
a decoder that refuses anything else in one line (fuzzed)."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.chip.frames import (
    KIND_DTYPES,
    Error,
    Feedback,
    Frame,
    FrameError,
    GradDone,
    GradJobs,
    Psum,
    Spikes,
    Update,
    Window,
    Written,
    decode,
    encode,
    parse_core,
    pe_name,
    tile_name,
)

FUZZ = settings(
    max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)

W = Window(seq=3, mode="train", version=1, event=(0, 4), first=2, size=3, total=8, base=40)


def pack(header: object, data: np.ndarray | None = None, packet_axes: int = 1) -> Frame:
    return Frame.pack(header, "tile-0", "pe-1-2", 1, 1, data, packet_axes)


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
    f = pack(Spikes(window=W), np.array([[1, 0, 1, 1, 0, 0, 0, 0, 1]], dtype=np.uint8))
    assert f.payload == bytes([13, 1])
    assert f.shape == [1, 9] and f.dtype == "bits"
    assert (f.n_packets, f.values_per_packet, f.bytes_per_packet) == (1, 9, 2)
    # Two packets: each padded to whole bytes on its own.
    f2 = pack(Spikes(window=W), np.array([[1] * 9, [0] * 8 + [1]], dtype=bool))
    assert f2.payload == bytes([255, 1, 0, 1])


def test_a_payload_keeps_its_whole_shape_and_counts_its_packets() -> None:
    spikes = np.random.default_rng(0).random((4, 3, 2, 5, 5)) < 0.3  # (T, W, C, H, W)
    f = pack(Spikes(window=W), spikes, packet_axes=2)
    assert (f.n_packets, f.values_per_packet) == (4 * 3, 2 * 5 * 5)  # a step of a sample each
    g = decode(encode(f))
    np.testing.assert_array_equal(g.array(), spikes)  # no reshape by convention
    assert g.array().shape == spikes.shape


HEADERS = [
    (Spikes(window=W, ready_ps=[1, 2, 3], error_ps=None), np.eye(3, 10, dtype=bool)),
    (Psum(window=W, blocks=[0, 4]), np.arange(24.0).reshape(2, 3, 4)),
    (Error(window=W, ready_ps=[5, 6, 7]), np.ones((3, 10))),
    (Feedback(window=W, ready_ps=[5, 6, 7]), np.ones((3, 16))),
    (Update(event=(0, 4)), np.arange(-3, 3, dtype=np.int64)[None, :]),
    (Written(version=1, cells_written=10, pulses=31), None),
    (GradJobs(k=1, size=640, samples=[40, 41], ready_ps=[9, 10], active=[3, 0]), None),
    (GradDone(k=1, samples=[40, 41], ends_ps=[19, 20]), None),
]


@pytest.mark.parametrize(("header", "data"), HEADERS, ids=lambda h: getattr(h, "kind", ""))
def test_round_trip_every_kind(header: object, data: np.ndarray | None) -> None:
    f = pack(header, data, packet_axes=2 if isinstance(header, Psum) else 1)
    g = decode(encode(f), known={"pe-1-2"})
    assert g == f and g.header == header and type(g.header) is type(header)
    assert g.dtype in KIND_DTYPES[g.kind]
    out = g.array()
    if data is None:
        assert g.shape == [] and g.payload == b"" and g.n_packets == 1 and out.size == 0
        return
    assert out.shape == data.shape
    assert out.dtype == {"spikes": bool, "update": np.int64}.get(g.kind, np.float64)
    np.testing.assert_array_equal(out, data)


@pytest.mark.parametrize(
    ("header", "data", "wire"),
    [
        (Update(event=(0, 1)), np.array([[-128, 127]]), "i1"),
        (Update(event=(0, 1)), np.array([[-129, 0]]), "i2"),
        (Update(event=(0, 1)), np.array([[2**31, 0]]), "i8"),
        (Psum(window=W, blocks=[0]), np.array([[[3.0, -32768.0]]]), "i2"),
        (Psum(window=W, blocks=[0]), np.array([[[3.0, 2.0**40]]]), "f8"),
        (Psum(window=W, blocks=[0]), np.array([[[3.0, 0.5]]]), "f8"),
        (Psum(window=W, blocks=[0]), np.array([[[3.0, np.inf]]]), "f8"),
    ],
)
def test_integer_payloads_travel_in_the_narrowest_exact_type(header, data, wire) -> None:
    f = pack(header, data, packet_axes=1)
    assert f.dtype == wire
    assert len(f.payload) == data.size * {"i1": 1, "i2": 2, "i4": 4, "i8": 8, "f8": 8}[wire]
    out = decode(encode(f)).array()
    assert out.dtype == (np.int64 if header.kind == "update" else np.float64)
    np.testing.assert_array_equal(out, data)


def test_floats_travel_bit_exact() -> None:
    values = np.array([[-0.0, np.nan, np.inf, -np.inf, 5e-324, np.finfo(np.float64).max]])
    out = decode(encode(pack(Feedback(window=W, ready_ps=[0]), values))).array()
    np.testing.assert_array_equal(out.view(np.uint64), values.view(np.uint64))


def test_one_msgpack_map_per_frame_far_below_a_byte_per_spike() -> None:
    spikes = np.random.default_rng(1).random((10, 100, 128)) < 0.5
    data = encode(pack(Spikes(window=W), spikes, packet_axes=2))
    assert len(msgpack.unpackb(data)) == len(Frame.model_fields)  # one map, one header
    payload = spikes.size // 8
    assert payload < len(data) < payload + 300  # the header is one, not one per packet


# ----------------------------------------------------------------------------- errors


def valid_map() -> dict:
    return msgpack.unpackb(encode(pack(Spikes(window=W), np.ones((2, 9), bool))))


def bad(obj: object) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def with_header(**fields: object) -> dict:
    obj = valid_map()
    return {**obj, "header": {**obj["header"], **fields}}


def with_window(**fields: object) -> dict:
    obj = valid_map()
    window = {**obj["header"]["window"], **fields}
    return {**obj, "header": {**obj["header"], "window": window}}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xc1", r"^not msgpack: "),
        (b"\x92\x01", r"^not msgpack: .*incomplete"),
        (bad([1, 2]), r"^not a frame: expected a msgpack map, got list$"),
        (bad(3), r"^not a frame: expected a msgpack map, got int$"),
        (bad(with_header(kind="bogus")), r"^bad frame: header: Input tag 'bogus'"),
        (bad(with_header(what="grad")), r"^bad frame: header.spikes.what: Extra inputs"),
        (bad(with_window(size=7)), r"^bad frame: header.spikes.window: .*exceed the batch's 8"),
        (bad(with_window(mode="test")), r"^bad frame: header.spikes.window.mode: Input should"),
        (bad(with_header(ready_ps=[1, -1])), r"^bad frame: header.spikes.ready_ps.1: .*greater"),
        (bad({**valid_map(), "extra": 1}), r"^bad frame: extra: Extra inputs are not permitted$"),
        (bad({**valid_map(), "layer": -2}), r"^bad frame: layer: .*greater than or equal to -1"),
        (bad({**valid_map(), "layer": "1"}), r"^bad frame: layer: Input should be a valid integer"),
        (bad({**valid_map(), "payload": "ab"}), r"^bad frame: payload: .*valid bytes"),
        (bad({**valid_map(), "dst": "tile-x"}), r"^bad frame: dst: String should match pattern"),
        (bad({**valid_map(), "packet_axes": 3}), r"^bad frame: packet_axes: 3 exceeds the shape"),
        (
            bad({k: v for k, v in valid_map().items() if k != "payload"}),
            r"^bad frame: payload: Field required$",
        ),
        (
            bad({**valid_map(), "payload": b"\x00\x00\x00"}),
            r"^bad frame: payload: 3 bytes, expected 4 \(2 packets × 2 bytes of bits \[2, 9\]\)$",
        ),
        (
            bad({**valid_map(), "dtype": "f8"}),
            r"^bad frame: dtype: 'f8' does not match kind 'spikes' \(expected 'bits'\)$",
        ),
    ],
)
def test_decode_errors(data: bytes, message: str) -> None:
    with pytest.raises(FrameError, match=message) as info:
        decode(data)
    assert "\n" not in str(info.value)


def test_decode_unknown_destination() -> None:
    data = encode(pack(Written(version=0, cells_written=0, pulses=0)))
    assert decode(data, known={"pe-1-2", "tile-0"}).dst == "pe-1-2"
    with pytest.raises(FrameError, match=r"^dst: unknown destination 'pe-1-2'$"):
        decode(data, known={"tile-0"})


@pytest.mark.parametrize(
    ("header", "data", "message"),
    [
        (Written(version=0, cells_written=0, pulses=0), np.zeros((2, 1)), r"carries no payload"),
        (Psum(window=W, blocks=[0]), None, r"^data: kind 'psum' needs an array"),
        (Spikes(window=W), np.array([[0, 2], [1, 1]]), r"^data: spikes must be bool or 0/1"),
        (Spikes(window=W), np.zeros((2, 2)), r"^data: spikes must be bool or 0/1 integers"),
        (Psum(window=W, blocks=[0]), np.zeros((2, 2), complex), r"psum values must be real"),
        (Update(event=(0, 1)), np.zeros((2, 2)), r"^data: update values must be integers"),
        (Update(event=(0, 1)), np.full((1, 2), 2**63, np.uint64), r"do not fit int64"),
        (Update(event=(0, 1)), np.zeros(3, np.int64), r"fewer than 2 packet axes"),
    ],
)
def test_pack_errors(header: object, data: np.ndarray | None, message: str) -> None:
    with pytest.raises(FrameError, match=message):
        Frame.pack(header, "tile-0", "tile-1", 0, 0, data, 2)


def test_headers_check_their_own_fields() -> None:
    with pytest.raises(ValueError, match="samples, ready_ps and active have unequal lengths"):
        GradJobs(k=0, size=1, samples=[1, 2], ready_ps=[0], active=[0, 0])
    with pytest.raises(ValueError, match="exceed the batch's"):
        Window(seq=0, mode="eval", version=0, event=(0, 0), first=5, size=5, total=8, base=-1)
    with pytest.raises(FrameError, match=r"^bad frame: src: String should match pattern"):
        Frame.pack(Written(version=0, cells_written=0, pulses=0), "core-0", "tile-1", 0, 0)
    with pytest.raises(ValueError, match="carries no window"):
        _ = pack(Update(event=(0, 1)), np.zeros((1, 2), np.int64)).window


# ----------------------------------------------------------------------------- fuzzing

BASES = [encode(pack(h, d, packet_axes=2 if isinstance(h, Psum) else 1)) for h, d in HEADERS[::2]]

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
    assert list(f.array().shape) == (f.shape or [0])
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
            st.booleans(),
        ),
        min_size=1,
        max_size=3,
    ),
)
def test_fuzz_mutated_fields(base: bytes, edits: list[tuple[str, object, bool, bool]]) -> None:
    obj = msgpack.unpackb(base)
    for key, value, delete, in_header in edits:
        target = obj["header"] if in_header and isinstance(obj.get("header"), dict) else obj
        if delete:
            target.pop(key, None)
        elif isinstance(target.get(key), list) and target[key] and not isinstance(value, list):
            target[key][len(target[key]) // 2] = value  # corrupt one entry of a list
        else:
            target[key] = value
    only_frame_error(msgpack.packb(obj, use_bin_type=True))
