"""The network-on-chip: packets, frames, the msgpack codec, XY routing and the link model.

A *packet* is the emulated unit of traffic (kind, src, dst, layer, sample, step, emulated time,
payload). A *frame* is the real message between actors: many packets of one kind and one layer
for one destination over a window of samples, stored column-wise so that encoding is a single
msgpack call. Ray costs ≈ 0.25–0.4 ms of CPU per actor→actor message whatever its size up to
~96 KB, and ≈ 1.5 ms above ~100 KB (the object store): send few, large frames, and keep each
under :data:`MAX_FRAME_BYTES` with :func:`split` (``DESIGN.md`` §4, "Packets vs frames").

Wire format of the payload (all packets' payloads concatenated in packet order):

- ``bits`` (kind ``spikes``): each packet's binary vector, flattened in C order and packed with
  ``np.packbits(..., bitorder="little")``: value ``i`` is bit ``i % 8`` (least significant
  first) of byte ``i // 8``; each packet is padded with zero bits to a whole byte, so one
  packet of ``n`` spikes takes ``ceil(n / 8)`` bytes.
- ``f8`` (``psum``, ``error``, ``feedback``): little-endian IEEE float64, C order.
- ``i8`` (``update``): little-endian int64 weight-code deltas, C order.
- ``none`` (``control``): no payload; the shape is ``[]``.

Wire *bytes* (what the emulator's actors exchange) differ from emulated wire *bits* (what the
chip's NoC would carry): :func:`value_bits` gives the latter, and :func:`transfer_ns` /
:func:`transfer_energy_pj` are the one place the NoC cost formulas live.

Mesh positions are ``(row, col)``; node index = ``row * cols + col``. XY routing moves along X
(the column index) first, then along Y (the row index).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgpack
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from emulator.topology import ChipSpec

Kind = Literal["spikes", "psum", "error", "feedback", "update", "control"]
Dtype = Literal["bits", "f8", "i8", "none"]
Position = tuple[int, int]
Link = tuple[Position, Position]

KIND_DTYPE: dict[str, str] = {
    "spikes": "bits",
    "psum": "f8",
    "error": "f8",
    "feedback": "f8",
    "update": "i8",
    "control": "none",
}
"""The payload encoding of each packet kind."""


def value_bits(chip: ChipSpec, kind: str) -> int:
    """Emulated NoC bits per payload value of a packet kind.

    A spike is one bit; a control packet carries no payload bits; partial sums, errors,
    projected errors and weight-code deltas travel as ``chip.tile.value_bits``-bit on-chip
    values (16 by default, ISAAC's datapath), although the emulator computes them in float64.
    Packet headers are not modelled: a packet's wire size is its payload.
    """
    if kind not in KIND_DTYPE:
        raise ValueError(f"kind: {kind!r} is not one of {', '.join(KIND_DTYPE)}")
    return {"spikes": 1, "control": 0}.get(kind, chip.tile.value_bits)


MAX_FRAME_BYTES = 96 * 1024
"""Keep encoded frames under this (≈ 96 KB): larger Ray messages go through the object store."""

_BYTES_PER_VALUE = {"f8": 8, "i8": 8, "none": 0}
_WIRE_DTYPE = {"f8": np.dtype("<f8"), "i8": np.dtype("<i8")}
_INT64_MAX = 2**63 - 1
_MAX_PACKET_VALUES = 2**32  # far above any frame's payload; keeps numpy shapes in range
_CORE = r"^(controller|tile-(0|[1-9][0-9]{0,5})|pe-(0|[1-9][0-9]{0,5})-(0|[1-9][0-9]{0,5}))$"
_CORE_RE = re.compile(_CORE)


class FrameError(ValueError):
    """A frame cannot be built or decoded; ``str(err)`` is a one-line reason."""


# ----------------------------------------------------------------------------- names


def tile_name(tile: int) -> str:
    """Core name of tile ``tile``: ``tile-T``."""
    return f"tile-{tile}"


def pe_name(tile: int, pe: int) -> str:
    """Core name of PE core ``pe`` of tile ``tile``: ``pe-T-P``."""
    return f"pe-{tile}-{pe}"


def parse_core(name: str) -> tuple[str, int, int]:
    """``("controller", -1, -1)``, ``("tile", T, -1)`` or ``("pe", T, P)`` from a core name."""
    if not _CORE_RE.match(name):
        raise ValueError(f"not a core name: {name!r} (controller, tile-T or pe-T-P)")
    if name == "controller":
        return ("controller", -1, -1)
    parts = name.split("-")
    if parts[0] == "tile":
        return ("tile", int(parts[1]), -1)
    return ("pe", int(parts[1]), int(parts[2]))


# ----------------------------------------------------------------------------- packets


def packet_bits(chip: ChipSpec, kind: str, values: int) -> int:
    """Emulated NoC bits of one packet carrying ``values`` payload values (:func:`value_bits`)."""
    return value_bits(chip, kind) * values


@dataclass(frozen=True)
class Packet:
    """One emulated packet; ``payload`` is None for ``control``."""

    kind: str
    src: str
    dst: str
    layer: int
    batch: int
    sample: int
    step: int
    time_ns: float
    payload: np.ndarray | None


CoreName = Annotated[str, Field(pattern=_CORE)]
Index = Annotated[int, Field(ge=-1, le=_INT64_MAX)]
TimeNs = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Dim = Annotated[int, Field(ge=0, le=_INT64_MAX)]
MetaValue = int | float | str | list[int]


class Frame(BaseModel):
    """Many packets of one kind and one layer for one destination, stored column-wise.

    Column ``i`` of ``samples``, ``steps`` and ``times_ns`` describes packet ``i``; ``payload``
    holds every packet's payload in packet order (see the module docstring for the encoding).
    ``layer``, ``batch``, samples and steps use -1 for "not applicable". Build one with
    :meth:`pack`, read it with :meth:`array`; the wire codec is :func:`encode` / :func:`decode`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    kind: Kind = Field(description="Packet kind; fixes the payload dtype (KIND_DTYPE).")
    src: CoreName = Field(description="Sending core: controller, tile-T or pe-T-P.")
    dst: CoreName = Field(description="Receiving core.")
    layer: Index = Field(description="Network layer (0-based), -1 for none.")
    batch: Index = Field(description="Batch index, -1 for none.")
    samples: list[Index] = Field(description="Sample index of each packet.")
    steps: list[Index] = Field(description="Time step of each packet, -1 for none.")
    times_ns: list[TimeNs] = Field(description="Emulated send time of each packet, ns.")
    shape: list[Dim] = Field(max_length=8, description="Shape of one packet's payload.")
    dtype: Dtype = Field(description="Payload encoding: bits, f8, i8 or none.")
    payload: bytes = Field(description="All packets' payloads concatenated in packet order.")
    meta: dict[str, MetaValue] = Field(
        default_factory=dict, description="Small extras (e.g. window first sample and total)."
    )

    @model_validator(mode="after")
    def _consistent(self) -> Frame:
        n = len(self.samples)
        if len(self.steps) != n or len(self.times_ns) != n:
            raise ValueError(
                f"columns: samples, steps and times_ns have unequal lengths "
                f"({n}, {len(self.steps)}, {len(self.times_ns)})"
            )
        if KIND_DTYPE[self.kind] != self.dtype:
            raise ValueError(
                f"dtype: {self.dtype!r} does not match kind {self.kind!r} "
                f"(expected {KIND_DTYPE[self.kind]!r})"
            )
        if self.dtype == "none" and self.shape:
            raise ValueError(f"shape: must be [] for kind {self.kind!r}, got {self.shape}")
        if math.prod(d for d in self.shape if d) > _MAX_PACKET_VALUES:
            raise ValueError(f"shape: {self.shape} exceeds {_MAX_PACKET_VALUES} values per packet")
        expected = n * self.bytes_per_packet
        if len(self.payload) != expected:
            raise ValueError(
                f"payload: {len(self.payload)} bytes, expected {expected} "
                f"({n} packets × {self.bytes_per_packet} bytes of {self.dtype} {self.shape})"
            )
        return self

    # -- sizes

    @property
    def n_packets(self) -> int:
        """Packets in this frame."""
        return len(self.samples)

    @property
    def values_per_packet(self) -> int:
        """Payload values of one packet (0 for control)."""
        return 0 if self.dtype == "none" else math.prod(self.shape)

    @property
    def bytes_per_packet(self) -> int:
        """Encoded payload bytes of one packet."""
        if self.dtype == "bits":
            return -(-math.prod(self.shape) // 8)
        return _BYTES_PER_VALUE[self.dtype] * math.prod(self.shape)

    def bits_per_packet(self, chip: ChipSpec) -> int:
        """Emulated NoC bits of one packet's payload on ``chip`` (:func:`packet_bits`)."""
        return packet_bits(chip, self.kind, self.values_per_packet)

    # -- building and reading

    @classmethod
    def pack(
        cls,
        kind: str,
        src: str,
        dst: str,
        layer: int,
        batch: int,
        samples: Sequence[int] | np.ndarray,
        steps: Sequence[int] | np.ndarray,
        times_ns: Sequence[float] | np.ndarray,
        data: np.ndarray | None,
        meta: dict[str, MetaValue] | None = None,
    ) -> Frame:
        """Build a frame from columns and ``data`` of shape (n_packets, *packet_shape).

        ``data`` is bool or 0/1 integers for ``spikes``, real values for ``psum``, ``error``
        and ``feedback`` (stored as float64), integers for ``update`` (int64), None for
        ``control``. Raises :class:`FrameError` on any inconsistency.
        """
        if kind not in KIND_DTYPE:
            raise FrameError(f"kind: unknown kind {kind!r} (one of {', '.join(KIND_DTYPE)})")
        dtype = KIND_DTYPE[kind]
        samples_l = [int(s) for s in samples]
        shape, payload = _pack_payload(kind, dtype, data, len(samples_l))
        fields = {
            "kind": kind,
            "src": src,
            "dst": dst,
            "layer": int(layer),
            "batch": int(batch),
            "samples": samples_l,
            "steps": [int(s) for s in steps],
            "times_ns": [float(t) for t in times_ns],
            "shape": shape,
            "dtype": dtype,
            "payload": payload,
            "meta": dict(meta or {}),
        }
        try:
            return cls.model_validate(fields)
        except ValidationError as err:
            raise FrameError(_summarise(err)) from None

    def array(self) -> np.ndarray:
        """The payloads as one array of shape (n_packets, *shape).

        bool for ``bits``, float64 for ``f8``, int64 for ``i8``; ``none`` gives an empty
        float64 array of shape (n_packets, 0). The array is a fresh, writable copy.
        """
        n = self.n_packets
        if self.dtype == "none":
            return np.zeros((n, 0))
        if self.dtype == "bits":
            count = math.prod(self.shape)
            packed = np.frombuffer(self.payload, np.uint8).reshape(n, self.bytes_per_packet)
            bits = np.unpackbits(packed, axis=1, count=count, bitorder="little")
            return bits.view(bool).reshape(n, *self.shape)  # 0/1 bytes are valid bools
        wire = _WIRE_DTYPE[self.dtype]
        native = np.float64 if self.dtype == "f8" else np.int64
        return np.frombuffer(self.payload, wire).astype(native).reshape(n, *self.shape)

    def select(self, start: int, stop: int) -> Frame:
        """The frame holding packets ``start:stop`` (same kind, ends, layer, batch and meta)."""
        start, stop, _ = slice(start, stop).indices(self.n_packets)
        stop = max(start, stop)
        b = self.bytes_per_packet
        return self.model_copy(
            update={
                "samples": self.samples[start:stop],
                "steps": self.steps[start:stop],
                "times_ns": self.times_ns[start:stop],
                "payload": self.payload[start * b : stop * b],
            }
        )

    def packets(self) -> Iterator[Packet]:
        """The frame's packets in order."""
        data = self.array()
        for i in range(self.n_packets):
            yield Packet(
                kind=self.kind,
                src=self.src,
                dst=self.dst,
                layer=self.layer,
                batch=self.batch,
                sample=self.samples[i],
                step=self.steps[i],
                time_ns=self.times_ns[i],
                payload=None if self.dtype == "none" else data[i],
            )


def _pack_payload(
    kind: str, dtype: str, data: np.ndarray | None, n: int
) -> tuple[list[int], bytes]:
    """(packet shape, payload bytes) of ``data`` for ``n`` packets; FrameError if unfit."""
    if dtype == "none":
        if data is not None:
            raise FrameError(f"data: kind {kind!r} carries no payload, got an array")
        return [], b""
    if data is None:
        raise FrameError(f"data: kind {kind!r} needs an array of shape (n_packets, ...)")
    arr = np.asarray(data)
    if arr.ndim < 1 or arr.shape[0] != n:
        raise FrameError(f"data: shape {arr.shape} does not start with the {n} packets")
    shape = [int(d) for d in arr.shape[1:]]
    if dtype == "bits":
        if arr.dtype != bool and (arr.dtype.kind not in "iu" or ((arr != 0) & (arr != 1)).any()):
            raise FrameError(f"data: spikes must be bool or 0/1 integers, got {arr.dtype}")
        flat = np.ascontiguousarray(arr, dtype=np.uint8).reshape(n, math.prod(shape))
        return shape, np.packbits(flat, axis=1, bitorder="little").tobytes()
    wire = _WIRE_DTYPE[dtype]
    if dtype == "f8" and not np.can_cast(arr.dtype, np.float64, "safe"):
        raise FrameError(f"data: {kind} values must be real numbers, got {arr.dtype}")
    if dtype == "i8":
        if arr.dtype.kind not in "iu":
            raise FrameError(f"data: update values must be integers, got {arr.dtype}")
        if arr.size and arr.dtype.kind == "u" and int(arr.max()) > _INT64_MAX:
            raise FrameError("data: update values do not fit int64")
    return shape, np.ascontiguousarray(arr, dtype=wire).tobytes()


# ----------------------------------------------------------------------------- codec


def encode(frame: Frame) -> bytes:
    """One msgpack message (a map of the frame's fields, binary payload)."""
    fields = {name: getattr(frame, name) for name in Frame.model_fields}  # no copy, unlike dump
    return msgpack.packb(fields, use_bin_type=True)


def decode(data: bytes, *, known: set[str] | None = None) -> Frame:
    """Validate and rebuild a frame; raises :class:`FrameError` (and nothing else) if invalid.

    ``known``, when given, is the set of core names this receiver accepts as destination.
    """
    try:
        obj = msgpack.unpackb(data, raw=False)
    except Exception as err:  # msgpack raises many types (ValueError, TypeError, StackError…)
        reason = _one_line(err) or type(err).__name__
        raise FrameError(f"not msgpack: {reason}") from None
    if not isinstance(obj, dict):
        raise FrameError(f"not a frame: expected a msgpack map, got {type(obj).__name__}")
    try:
        frame = Frame.model_validate(obj)
    except ValidationError as err:
        raise FrameError(_summarise(err)) from None
    if known is not None and frame.dst not in known:
        raise FrameError(f"dst: unknown destination {frame.dst!r}")
    return frame


def split(frame: Frame, max_bytes: int = MAX_FRAME_BYTES) -> list[Frame]:
    """Split ``frame`` by packets into consecutive frames each encoding to ≤ ``max_bytes``.

    Returns ``[frame]`` when it already fits. Raises :class:`FrameError` when a single packet
    does not fit. Every piece keeps the frame's kind, ends, layer, batch and meta.
    """
    size = len(encode(frame))
    if size <= max_bytes:
        return [frame]
    n = frame.n_packets
    per_packet = size / max(n, 1)  # includes a share of the header: an over-estimate
    pieces: list[Frame] = []
    start = 0
    while start < n:
        k = max(1, min(n - start, int(max_bytes // per_packet)))
        piece = frame.select(start, start + k)
        piece_size = len(encode(piece))
        while piece_size > max_bytes:
            if k == 1:
                raise FrameError(
                    f"split: one {frame.kind} packet encodes to {piece_size} bytes, "
                    f"more than max_bytes={max_bytes}"
                )
            k = max(1, min(k - 1, int(k * max_bytes / piece_size)))
            piece = frame.select(start, start + k)
            piece_size = len(encode(piece))
        pieces.append(piece)
        start += k
    return pieces


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text[:200]


def _loc_part(part: str | int) -> str:
    """A field path part as text; odd keys (newlines, long) are shown quoted and cut short."""
    text = str(part)
    return text if re.fullmatch(r"[\w-]{1,40}", text) else repr(text)[:40]


def _summarise(err: ValidationError) -> str:
    """One line: the first error's field and reason, and how many more there are."""
    errors = err.errors(include_url=False)
    first = errors[0]
    loc = ".".join(_loc_part(p) for p in first["loc"])
    msg = first["msg"].removeprefix("Value error, ")
    m = re.match(r"^(\w+): (.*)$", msg)
    if m and not loc:  # a model-level check names its field first
        loc, msg = m[1], m[2]
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"bad frame: {loc or '(frame)'}: {_one_line(ValueError(msg))}{more}"


# ----------------------------------------------------------------------------- routing


def node_index(pos: Position, cols: int) -> int:
    """Node index of mesh position ``(row, col)``: ``row * cols + col``."""
    return pos[0] * cols + pos[1]


def node_position(node: int, cols: int) -> Position:
    """Mesh position ``(row, col)`` of node index ``node``."""
    return divmod(node, cols)


def _position(pos: Position) -> Position:
    return (int(pos[0]), int(pos[1]))


def xy_route(src: Position, dst: Position) -> list[Link]:
    """Directed links of dimension-ordered XY routing from ``src`` to ``dst``.

    Positions are ``(row, col)``. The packet first moves along X (the column index) in the
    source row, then along Y (the row index) in the destination column. Empty if src == dst.
    """
    (r, c), (r1, c1) = src, dst
    links: list[Link] = []
    step = 1 if c1 > c else -1
    while c != c1:
        links.append(((r, c), (r, c + step)))
        c += step
    step = 1 if r1 > r else -1
    while r != r1:
        links.append(((r, c), (r + step, c)))
        r += step
    return links


class RouteError(ValueError):
    """No route between two nodes: dead links cut them apart."""


def route(src: Position, dst: Position, chip: ChipSpec) -> list[Link]:
    """The links a packet takes on ``chip``'s mesh: XY routing, or, when a dead link
    (``noc.dead_links``) lies on it, YX routing, or else the shortest detour (breadth-first,
    neighbours tried in the order +col, −col, +row, −row, so the choice is deterministic)."""
    dead = chip.noc.dead()
    xy = xy_route(src, dst)
    if not dead or not dead.intersection(xy):
        return xy
    yx = _yx_route(src, dst)
    if not dead.intersection(yx):
        return yx
    return _detour(src, dst, chip.noc.rows, chip.noc.cols, dead)


def _yx_route(src: Position, dst: Position) -> list[Link]:
    """Y first, then X."""
    flipped = xy_route((src[1], src[0]), (dst[1], dst[0]))
    return [((a[1], a[0]), (b[1], b[0])) for a, b in flipped]


def _detour(
    src: Position, dst: Position, rows: int, cols: int, dead: frozenset[Link]
) -> list[Link]:
    previous: dict[Position, Position] = {src: src}
    frontier = [src]
    while frontier and dst not in previous:
        nxt = []
        for r, c in frontier:
            for node in ((r, c + 1), (r, c - 1), (r + 1, c), (r - 1, c)):
                if (
                    0 <= node[0] < rows
                    and 0 <= node[1] < cols
                    and node not in previous
                    and ((r, c), node) not in dead
                ):
                    previous[node] = (r, c)
                    nxt.append(node)
        frontier = nxt
    if dst not in previous:
        raise RouteError(f"noc.dead_links: no route from node {src} to node {dst}")
    links, node = [], dst
    while node != src:
        links.append((previous[node], node))
        node = previous[node]
    return links[::-1]


def hops(src: Position, dst: Position) -> int:
    """Router hops between two positions: the Manhattan distance."""
    return abs(src[0] - dst[0]) + abs(src[1] - dst[1])


def transfer_ns(chip: ChipSpec, bits: int, hops: int) -> float:
    """Contention-free NoC latency of one packet, ns.

    ``hops × hop_latency_ns + ceil(bits / flit_bits) × (1000 / clock_mhz)``: router hops plus
    serialisation at one flit per clock cycle. A same-node transfer (0 hops) does not use the
    NoC and costs 0; 0 bits cost no serialisation.
    """
    if hops == 0:
        return 0.0
    flits = -(-bits // chip.noc.flit_bits)
    return hops * chip.noc.hop_latency_ns + flits * (1000.0 / chip.clock_mhz)


def transfer_energy_pj(chip: ChipSpec, bits: int, hops: int) -> float:
    """NoC energy of moving ``bits`` over ``hops`` hops, pJ: bits × hops × energy per bit-hop.

    The integer bit-hops are formed first, so summing bit-hops and converting once gives the
    same number as this function applied to the sum.
    """
    return (bits * hops) * chip.noc.energy_pj_per_bit_hop


class LinkModel:
    """Traffic counters of the mesh under XY routing; merges exactly across actors.

    Every count is an integer, so merging is exact and order-independent; energy is derived
    from the bit-hops when asked. Same-node sends (0 hops) count as packets and bits (and on the
    traffic matrix's diagonal) but put no flits on the NoC.
    """

    def __init__(self, chip: ChipSpec) -> None:
        self.chip = chip
        self.rows, self.cols = chip.noc.rows, chip.noc.cols
        self._traffic = np.zeros((chip.noc.nodes, chip.noc.nodes), dtype=np.int64)
        self._links: dict[Link, int] = {}
        self.packets = 0
        self.bits = 0
        self.flits = 0
        self.hop_bits = 0

    def _check(self, pos: Position) -> None:
        if not (0 <= pos[0] < self.rows and 0 <= pos[1] < self.cols):
            raise ValueError(f"position {pos} is outside the {self.chip.noc.mesh} mesh")

    def send(self, src_pos: Position, dst_pos: Position, bits: int, packets: int = 1) -> None:
        """Record ``packets`` packets of ``bits`` payload bits each from src to dst."""
        src_pos, dst_pos = _position(src_pos), _position(dst_pos)  # plain ints: msgpack-able
        self._check(src_pos)
        self._check(dst_pos)
        if bits < 0 or packets < 0:
            raise ValueError(f"bits ({bits}) and packets ({packets}) must be ≥ 0")
        total = bits * packets
        path = route(src_pos, dst_pos, self.chip)
        n = len(path)
        self.packets += packets
        self.bits += total
        self._traffic[node_index(src_pos, self.cols), node_index(dst_pos, self.cols)] += total
        if n == 0:
            return
        self.flits += packets * -(-bits // self.chip.noc.flit_bits)
        self.hop_bits += total * n
        for link in path:
            self._links[link] = self._links.get(link, 0) + total

    def traffic_matrix(self) -> np.ndarray:
        """(nodes × nodes) bits sent from node i to node j (node = row·cols + col); a copy."""
        return self._traffic.copy()

    def link_bits(self) -> dict[str, int]:
        """Bits carried by each used directed link, keyed ``"r,c->r,c"``, in sorted link order."""
        return {
            f"{a[0]},{a[1]}->{b[0]},{b[1]}": v for (a, b), v in sorted(self._links.items()) if v
        }

    def totals(self) -> dict[str, int | float]:
        """packets, bits, flits, hop_bits (Σ bits × hops) and energy_pj."""
        return {
            "packets": self.packets,
            "bits": self.bits,
            "flits": self.flits,
            "hop_bits": self.hop_bits,
            "energy_pj": transfer_energy_pj(self.chip, self.hop_bits, 1),
        }

    def merge(self, other: LinkModel) -> None:
        """Add ``other``'s counts to these, in place (exact, so any merge order agrees)."""
        if (other.rows, other.cols) != (self.rows, self.cols):
            raise ValueError(
                f"cannot merge a {other.chip.noc.mesh} link model into a {self.chip.noc.mesh} one"
            )
        self._traffic += other._traffic
        for link, v in other._links.items():
            self._links[link] = self._links.get(link, 0) + v
        self.packets += other.packets
        self.bits += other.bits
        self.flits += other.flits
        self.hop_bits += other.hop_bits

    def to_dict(self) -> dict[str, Any]:
        """Counts as plain data (msgpack-able), for gathering from actors."""
        return {
            "mesh": self.chip.noc.mesh,
            "traffic": self._traffic.tolist(),
            "links": [[a[0], a[1], b[0], b[1], v] for (a, b), v in sorted(self._links.items())],
            "packets": self.packets,
            "bits": self.bits,
            "flits": self.flits,
            "hop_bits": self.hop_bits,
        }

    @classmethod
    def from_dict(cls, chip: ChipSpec, data: dict[str, Any]) -> LinkModel:
        """Rebuild a model of ``chip`` from :meth:`to_dict` output."""
        if data["mesh"] != chip.noc.mesh:
            raise ValueError(f"counts are for a {data['mesh']} mesh, the chip is {chip.noc.mesh}")
        model = cls(chip)
        model._traffic = np.array(data["traffic"], dtype=np.int64).reshape(model._traffic.shape)
        model._links = {((r, c), (r1, c1)): v for r, c, r1, c1, v in data["links"]}
        for key in ("packets", "bits", "flits", "hop_bits"):
            setattr(model, key, int(data[key]))
        return model
