"""What the cores say to each other: typed messages (a header per kind, an array payload),
their msgpack codec, and the cores' names.

A *frame* is one message between cores: a kind with its typed header (:data:`Header`, one
model per kind, every field declared with its meaning), and a payload array whose shape is
whole, so a receiver never reshapes by a convention it has to know from elsewhere (spikes
arrive as (T, W, *features), partial sums as (T, W·P, columns), errors as (W, C)). Frames go
to other actors as one msgpack map each: Ray costs ≈ 0.25–0.4 ms of CPU per actor→actor
message whatever its size up to ~96 KB, so the cores send few, large frames (a window of
samples each, docs/architecture.md#frames).

A frame's payload counts as packets, the emulated unit: its first ``packet_axes`` axes index
packets (a spikes frame: one per step and sample), the rest are one packet's values. Wire
format of the payload:

- ``bits`` (spikes): each packet's binary values, flattened in C order and packed with
  ``np.packbits(..., bitorder="little")``: value ``i`` is bit ``i % 8`` (least significant
  first) of byte ``i // 8``; each packet padded with zero bits to a whole byte.
- ``f8`` (psum, error, feedback): little-endian IEEE float64, C order.
- ``i1``, ``i2``, ``i4``, ``i8`` (update; psum whose values are all integers, as a weight
  block's shift-added readouts are): little-endian signed integers of 1, 2, 4 or 8 bytes, C
  order, the narrowest that holds every value (the receiver gets int64 or float64 back).
- ``none`` (written, grad, grad_done): no payload; the shape is ``[]`` (one packet).
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

import msgpack
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

MAX_FRAME_BYTES = 96 * 1024
"""Keep encoded frames under this (≈ 96 KB): larger Ray messages go through the object store."""

_INTS = ("i1", "i2", "i4", "i8")
_BYTES_PER_VALUE = {"f8": 8, "i1": 1, "i2": 2, "i4": 4, "i8": 8, "none": 0}
_WIRE_DTYPE = {name: np.dtype("<" + name) for name in ("f8", *_INTS)}
_INT64_MAX = 2**63 - 1
_MAX_VALUES = 2**32  # far above any frame's payload; keeps numpy shapes in range
_CORE = r"^(controller|tile-(0|[1-9][0-9]{0,5})|pe-(0|[1-9][0-9]{0,5})-(0|[1-9][0-9]{0,5}))$"
_CORE_RE = re.compile(_CORE)

CONTROLLER = "controller"
"""The controller's name."""


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
    if name == CONTROLLER:
        return ("controller", -1, -1)
    parts = name.split("-")
    if parts[0] == "tile":
        return ("tile", int(parts[1]), -1)
    return ("pe", int(parts[1]), int(parts[2]))


# ---------------------------------------------------------------------------- headers

Count = Annotated[int, Field(ge=0, le=_INT64_MAX)]
Index = Annotated[int, Field(ge=-1, le=_INT64_MAX)]
Picoseconds = Annotated[int, Field(ge=0, le=_INT64_MAX)]


class _Header(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Window(_Header):
    """A window of samples of one batch: what one frame of each kind covers."""

    seq: Count = Field(description="Global window number, in send order.")
    mode: Literal["train", "eval"] = Field(description="A training or an evaluation batch.")
    version: Count = Field(description="Updates that must be applied before its forward.")
    event: tuple[Index, Index] = Field(
        description="(epoch, batch) of training, or (EVAL_EVENT_*, eval batch)."
    )
    first: Count = Field(description="The window's first row of the batch.")
    size: Count = Field(description="Samples in the window.")
    total: Count = Field(description="Samples in the batch.")
    base: Index = Field(description="Run id of the batch's first training sample (-1: eval).")

    @model_validator(mode="after")
    def _inside(self) -> Window:
        if self.first + self.size > self.total:
            raise ValueError(
                f"first: rows {self.first}..{self.first + self.size} exceed the batch's "
                f"{self.total}"
            )
        return self


class Spikes(_Header):
    """Spikes of a window into a layer (or its outputs to the controller): (T, W, *shape)."""

    kind: Literal["spikes"] = "spikes"
    window: Window
    ready_ps: list[Picoseconds] | None = Field(
        None, description="When each (step, sample) arrived (step-major; layer 0: none)."
    )
    error_ps: list[Picoseconds] | None = Field(
        None, description="Output layer: when each sample's error left for the feedback group."
    )


class Psum(_Header):
    """A PE core's partial sums of a window, its blocks side by side: (T, W·P, columns) of a
    layer, (W, columns) of the feedback group."""

    kind: Literal["psum"] = "psum"
    window: Window
    blocks: list[Count] = Field(description="The blocks whose columns the payload holds.")


class Error(_Header):
    """The output error e of a window (W, C): to the output layer's home and the group."""

    kind: Literal["error"] = "error"
    window: Window
    ready_ps: list[Picoseconds] | None = Field(
        None, description="To the feedback group: when each sample's error arrived."
    )


class Feedback(_Header):
    """A hidden layer's prefix of g = e·B/√M for a window (W, width)."""

    kind: Literal["feedback"] = "feedback"
    window: Window
    ready_ps: list[Picoseconds] = Field(description="When each sample's g arrived.")


class Update(_Header):
    """A PE core's weight-code steps of one update, its blocks in order: (1, values)."""

    kind: Literal["update"] = "update"
    event: tuple[Index, Index] = Field(description="(epoch, batch) of the update.")


class Written(_Header):
    """A PE core has programmed an update."""

    kind: Literal["written"] = "written"
    version: Count = Field(description="The update's number.")
    cells_written: Count = Field(description="Cells whose level changed.")
    pulses: Count = Field(description="Programming pulses applied.")


class GradJobs(_Header):
    """Gradient jobs for another tile's gradient unit: GRAD(layer, n, k) of these samples."""

    kind: Literal["grad"] = "grad"
    k: Count = Field(description="Index of the receiving tile among the layer's tiles.")
    size: Count = Field(description="Inputs of the layer over the T steps (rate = active/size).")
    samples: list[Count] = Field(description="Training samples, in order.")
    ready_ps: list[Picoseconds] = Field(description="When each sample's gradient may start.")
    active: list[Count] = Field(description="Each sample's active inputs over the T steps.")

    @model_validator(mode="after")
    def _columns(self) -> GradJobs:
        if not len(self.samples) == len(self.ready_ps) == len(self.active):
            raise ValueError("samples: samples, ready_ps and active have unequal lengths")
        return self


class GradDone(_Header):
    """A tile's gradient unit has finished GRAD(layer, n, k) of these samples."""

    kind: Literal["grad_done"] = "grad_done"
    k: Count = Field(description="Index of the tile among the layer's tiles.")
    samples: list[Count] = Field(description="Training samples, in order.")
    ends_ps: list[Picoseconds] = Field(description="When each sample's gradient ended.")

    @model_validator(mode="after")
    def _columns(self) -> GradDone:
        if len(self.samples) != len(self.ends_ps):
            raise ValueError("samples: samples and ends_ps have unequal lengths")
        return self


Header = Annotated[
    Spikes | Psum | Error | Feedback | Update | Written | GradJobs | GradDone,
    Field(discriminator="kind"),
]
"""The header of a frame: its kind and the fields that kind carries."""

KIND_DTYPES: dict[str, tuple[str, ...]] = {
    "spikes": ("bits",),
    "psum": ("f8", *_INTS[:3]),
    "error": ("f8",),
    "feedback": ("f8",),
    "update": _INTS,
    "written": ("none",),
    "grad": ("none",),
    "grad_done": ("none",),
}
"""The payload encodings each kind may use (:meth:`Frame.pack` picks the narrowest)."""

Dtype = Literal["bits", "f8", "i1", "i2", "i4", "i8", "none"]
CoreName = Annotated[str, Field(pattern=_CORE)]
Dim = Annotated[int, Field(ge=0, le=_INT64_MAX)]


# ----------------------------------------------------------------------------- frames


class Frame(BaseModel):
    """One message: ``header`` (typed per kind), and a payload array of ``shape`` whose first
    ``packet_axes`` axes index packets. Build one with :meth:`pack`, read its array with
    :meth:`array`; the wire codec is :func:`encode` / :func:`decode`."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    src: CoreName = Field(description="Sending core: controller, tile-T or pe-T-P.")
    dst: CoreName = Field(description="Receiving core.")
    layer: Index = Field(description="Network layer (weighted, 0-based), -1 for none.")
    batch: Index = Field(description="Updates that precede it (a batch's version), -1: none.")
    header: Header = Field(description="The kind and what it carries.")
    shape: list[Dim] = Field(max_length=8, description="Shape of the payload array.")
    packet_axes: Annotated[int, Field(ge=0, le=8)] = Field(
        description="Leading axes of the shape that index packets."
    )
    dtype: Dtype = Field(description="Payload encoding: bits, f8, i1, i2, i4, i8 or none.")
    payload: bytes = Field(description="The array, encoded (module docstring).")

    @model_validator(mode="after")
    def _consistent(self) -> Frame:
        allowed = KIND_DTYPES[self.kind]
        if self.dtype not in allowed:
            raise ValueError(
                f"dtype: {self.dtype!r} does not match kind {self.kind!r} "
                f"(expected {' or '.join(repr(d) for d in allowed)})"
            )
        if self.dtype == "none" and self.shape:
            raise ValueError(f"shape: must be [] for kind {self.kind!r}, got {self.shape}")
        if self.packet_axes > len(self.shape):
            raise ValueError(f"packet_axes: {self.packet_axes} exceeds the shape {self.shape}")
        if math.prod(d for d in self.shape if d) > _MAX_VALUES:
            raise ValueError(f"shape: {self.shape} exceeds {_MAX_VALUES} values")
        expected = self.n_packets * self.bytes_per_packet
        if len(self.payload) != expected:
            raise ValueError(
                f"payload: {len(self.payload)} bytes, expected {expected} ({self.n_packets} "
                f"packets × {self.bytes_per_packet} bytes of {self.dtype} {self.shape})"
            )
        return self

    @property
    def kind(self) -> str:
        """The header's kind."""
        return self.header.kind

    @property
    def window(self) -> Window:
        """The window of a window-carrying frame (ValueError for the others)."""
        window = getattr(self.header, "window", None)
        if window is None:
            raise ValueError(f"a {self.kind} frame carries no window")
        return window

    @property
    def n_packets(self) -> int:
        """Packets in this frame (one for a frame without payload)."""
        return math.prod(self.shape[: self.packet_axes])

    @property
    def values_per_packet(self) -> int:
        """Payload values of one packet (0 without payload)."""
        return 0 if self.dtype == "none" else math.prod(self.shape[self.packet_axes :])

    @property
    def bytes_per_packet(self) -> int:
        """Encoded payload bytes of one packet."""
        if self.dtype == "bits":
            return -(-self.values_per_packet // 8)
        return _BYTES_PER_VALUE[self.dtype] * self.values_per_packet

    @classmethod
    def pack(
        cls,
        header: Any,
        src: str,
        dst: str,
        layer: int,
        batch: int,
        data: np.ndarray | None = None,
        packet_axes: int = 1,
    ) -> Frame:
        """A frame of ``header`` carrying ``data`` (None for the kinds without payload):
        bool or 0/1 integers for spikes, real values for psum, error and feedback (float64,
        or for psum the narrowest integers that hold them exactly), integers for update (the
        narrowest that hold them). Raises :class:`FrameError` on any inconsistency."""
        kind = header.kind
        shape, dtype, payload = _pack_payload(kind, KIND_DTYPES[kind], data, packet_axes)
        fields = {
            "src": src,
            "dst": dst,
            "layer": int(layer),
            "batch": int(batch),
            "header": header,
            "shape": shape,
            "packet_axes": packet_axes if data is not None else 0,
            "dtype": dtype,
            "payload": payload,
        }
        try:
            return cls.model_validate(fields)
        except ValidationError as err:
            raise FrameError(_summarise(err)) from None

    def array(self) -> np.ndarray:
        """The payload as an array of :attr:`shape` (a fresh, writable copy): bool for bits,
        int64 for an update, float64 for the other kinds; an empty float64 array without
        payload."""
        if self.dtype == "none":
            return np.zeros((0,))
        n = self.n_packets
        if self.dtype == "bits":
            count = self.values_per_packet
            packed = np.frombuffer(self.payload, np.uint8).reshape(n, self.bytes_per_packet)
            bits = np.unpackbits(packed, axis=1, count=count, bitorder="little")
            return bits.view(bool).reshape(self.shape)  # 0/1 bytes are valid bools
        wire = _WIRE_DTYPE[self.dtype]
        native = np.int64 if self.kind == "update" else np.float64
        return np.frombuffer(self.payload, wire).astype(native).reshape(self.shape)


def _pack_payload(
    kind: str, dtypes: tuple[str, ...], data: np.ndarray | None, packet_axes: int
) -> tuple[list[int], str, bytes]:
    """(shape, wire dtype, payload bytes) of ``data``; FrameError if it does not fit."""
    if dtypes == ("none",):
        if data is not None:
            raise FrameError(f"data: kind {kind!r} carries no payload, got an array")
        return [], "none", b""
    if data is None:
        raise FrameError(f"data: kind {kind!r} needs an array")
    arr = np.asarray(data)
    if arr.ndim < packet_axes:
        raise FrameError(f"data: shape {arr.shape} has fewer than {packet_axes} packet axes")
    shape = [int(d) for d in arr.shape]
    if dtypes == ("bits",):
        if arr.dtype != bool and (arr.dtype.kind not in "iu" or ((arr != 0) & (arr != 1)).any()):
            raise FrameError(f"data: spikes must be bool or 0/1 integers, got {arr.dtype}")
        n = math.prod(shape[:packet_axes])
        flat = np.ascontiguousarray(arr, dtype=np.uint8).reshape(n, -1)
        return shape, "bits", np.packbits(flat, axis=1, bitorder="little").tobytes()
    if "f8" in dtypes and not np.can_cast(arr.dtype, np.float64, "safe"):
        raise FrameError(f"data: {kind} values must be real numbers, got {arr.dtype}")
    if "f8" not in dtypes:
        if arr.dtype.kind not in "iu":
            raise FrameError(f"data: update values must be integers, got {arr.dtype}")
        if arr.size and arr.dtype.kind == "u" and int(arr.max()) > _INT64_MAX:
            raise FrameError("data: update values do not fit int64")
    dtype = _narrowest(arr, dtypes)
    return shape, dtype, np.ascontiguousarray(arr, dtype=_WIRE_DTYPE[dtype]).tobytes()


def _narrowest(arr: np.ndarray, dtypes: tuple[str, ...]) -> str:
    """The first integer type of ``dtypes`` that holds every value exactly, else f8 (or the
    widest integer type)."""
    ints = [d for d in dtypes if d in _INTS]
    if not arr.size or not ints:
        return dtypes[0]
    if arr.dtype.kind == "f" and not (np.isfinite(arr).all() and (arr == np.rint(arr)).all()):
        return "f8"
    low, high = arr.min(), arr.max()
    for d in ints:
        info = np.iinfo(_WIRE_DTYPE[d])
        if info.min <= low and high <= info.max:
            return d
    return "f8" if "f8" in dtypes else ints[-1]


# ----------------------------------------------------------------------------- codec


def encode(frame: Frame) -> bytes:
    """One msgpack message: a map of the frame's fields, the header as a map, binary
    payload."""
    fields = {name: getattr(frame, name) for name in Frame.model_fields if name != "header"}
    fields["header"] = frame.header.model_dump(mode="python")
    return msgpack.packb(fields, use_bin_type=True)


def decode(data: bytes, *, known: set[str] | None = None) -> Frame:
    """Validate and rebuild a frame; raises :class:`FrameError` (and nothing else) if invalid.

    ``known``, when given, is the set of core names this receiver accepts as destination.
    """
    try:
        obj = msgpack.unpackb(data, raw=False, use_list=True)
    except Exception as err:  # msgpack raises many types (ValueError, TypeError, StackError…)
        reason = _one_line(err) or type(err).__name__
        raise FrameError(f"not msgpack: {reason}") from None
    if not isinstance(obj, dict):
        raise FrameError(f"not a frame: expected a msgpack map, got {type(obj).__name__}")
    try:
        frame = Frame.model_validate(_tuples(obj))
    except ValidationError as err:
        raise FrameError(_summarise(err)) from None
    if known is not None and frame.dst not in known:
        raise FrameError(f"dst: unknown destination {frame.dst!r}")
    return frame


def _tuples(obj: dict[str, Any]) -> dict[str, Any]:
    """msgpack gives lists where the headers hold tuples (event): turn them back."""
    header = obj.get("header")
    if isinstance(header, dict):
        header = dict(header)
        for key in ("event",):
            if isinstance(header.get(key), list):
                header[key] = tuple(header[key])
        window = header.get("window")
        if isinstance(window, dict) and isinstance(window.get("event"), list):
            header["window"] = {**window, "event": tuple(window["event"])}
        obj = {**obj, "header": header}
    return obj


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
