"""The frames the cores exchange and their msgpack codec, and the cores' names.

A *frame* is the real message between actors: many packets of one kind and one layer for one
destination over a window of samples, stored column-wise so that encoding is a single msgpack
call. Ray costs ≈ 0.25–0.4 ms of CPU per actor→actor message whatever its size up to ~96 KB,
and ≈ 1.5 ms above ~100 KB (the object store): send few, large frames (``DESIGN.md`` §4).

Wire format of the payload (all packets' payloads concatenated in packet order):

- ``bits`` (kind ``spikes``): each packet's binary vector, flattened in C order and packed with
  ``np.packbits(..., bitorder="little")``: value ``i`` is bit ``i % 8`` (least significant
  first) of byte ``i // 8``; each packet is padded with zero bits to a whole byte, so one
  packet of ``n`` spikes takes ``ceil(n / 8)`` bytes.
- ``f8`` (``psum``, ``error``, ``feedback``): little-endian IEEE float64, C order.
- ``i8`` (``update``): little-endian int64 weight-code deltas, C order.
- ``none`` (``control``): no payload; the shape is ``[]``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

import msgpack
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from emulator.cost.noc import KINDS, packet_bits
from emulator.spec import ChipSpec

Kind = Literal["spikes", "psum", "error", "feedback", "update", "control"]
Dtype = Literal["bits", "f8", "i8", "none"]

KIND_DTYPE: dict[str, str] = dict(zip(KINDS, ("bits", "f8", "f8", "f8", "i8", "none"), strict=True))
"""The payload encoding of each message kind."""

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
