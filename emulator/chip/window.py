"""Frames and windows, shared by every core: the window of samples a frame covers, how a
frame is built and checked, and the controller's window credit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from emulator.learning import EVAL_BATCH
from emulator.runtime.frames import Frame

CONTROLLER = "controller"
IN_FLIGHT = 2
"""Batches the controller lets into the chip at once (its flow control)."""


def window_credit(batch: int, frame_samples: int | None, in_flight: int = IN_FLIGHT) -> int:
    """Windows a controller feeding ``batch``-sample training batches (and evaluation
    batches of :data:`EVAL_BATCH`) in windows of ``frame_samples`` may have in the chip: the
    bound (:attr:`Plan.window_credit`) past which cores refuse frames instead of buffering."""
    if frame_samples is None:
        return in_flight
    return in_flight * -(-max(batch, EVAL_BATCH) // frame_samples)


class CreditError(ValueError):
    """A frame beyond the window credit: buffering it would let a queue grow without bound."""


@dataclass(frozen=True)
class Window:
    """A window of samples of one batch: what one frame of each kind covers."""

    seq: int  # global window number, in send order
    mode: str  # "train" or "eval"
    version: int  # updates that must be applied before its forward
    event: tuple[int, int]  # (epoch, batch) or (EVAL_EVENT_*, eval batch)
    first: int  # first row of the batch
    size: int  # samples in the window
    total: int  # samples in the batch
    base: int = -1  # the run's id of the batch's first training sample (-1: evaluation)

    def meta(self, **extra: Any) -> dict[str, Any]:
        """The window as frame metadata."""
        return {
            "seq": self.seq,
            "mode": self.mode,
            "version": self.version,
            "event": list(self.event),
            "first": self.first,
            "total": self.total,
            "base": self.base,
        } | extra

    @classmethod
    def of(cls, frame: Frame, size: int) -> Window:
        """The window a frame carries."""
        m = frame.meta
        event = m["event"]
        assert isinstance(event, list)
        return cls(
            int(m["seq"]),
            str(m["mode"]),
            int(m["version"]),
            (event[0], event[1]),
            int(m["first"]),
            size,
            int(m["total"]),
            int(m["base"]),
        )


def _frame(
    kind: str, src: str, dst: str, layer: int, w: Window, data: np.ndarray | None, **meta: Any
) -> Frame:
    """A frame of ``data`` (n_packets, …) for window ``w``: one packet per row."""
    n = 1 if data is None else len(data)
    return Frame.pack(
        kind, src, dst, layer, w.version, [-1] * n, [-1] * n, [0.0] * n, data, w.meta(**meta)
    )


def expect(frame: Frame, values: int, core: str) -> None:
    """Refuse (ValueError) a frame whose packets do not carry ``values`` values each."""
    if frame.values_per_packet != values:
        raise ValueError(
            f"{core}: a {frame.kind} frame for layer {frame.layer} carries "
            f"{frame.values_per_packet} values per packet, not {values}"
        )


def _steps_major(x: np.ndarray) -> np.ndarray:
    """(T, W, …) → (T·W, …) packets, step-major."""
    return x.reshape(x.shape[0] * x.shape[1], *x.shape[2:])
