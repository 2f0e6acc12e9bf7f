"""What every core's frames share: the window of samples a frame covers (the typed
:class:`~emulator.chip.frames.Window` header), the size check on an arriving payload, and
the controller's window credit."""

from __future__ import annotations

from collections.abc import Sequence

from emulator.chip.frames import CONTROLLER, Frame, Psum, Window
from emulator.physics.blocks import add_blocks
from emulator.physics.tiling import Block

__all__ = [
    "CONTROLLER",
    "IN_FLIGHT",
    "CreditError",
    "Window",
    "check_credit",
    "check_part",
    "expect",
    "sum_in_block_order",
    "window_credit",
]

IN_FLIGHT = 2
"""Batches the controller lets into the chip at once (its flow control)."""


def window_credit(
    batch: int, eval_batch: int, frame_samples: int | None, in_flight: int = IN_FLIGHT
) -> int:
    """Windows a controller feeding ``batch``-sample training batches (and evaluation
    batches of ``eval_batch``) in windows of ``frame_samples`` may have in the chip: the
    bound (:attr:`Plan.window_credit`) past which cores refuse frames instead of buffering."""
    if frame_samples is None:
        return in_flight
    return in_flight * -(-max(batch, eval_batch) // frame_samples)


class CreditError(ValueError):
    """A frame beyond the window credit: buffering it would let a queue grow without bound."""


def expect(frame: Frame, shape: tuple[int, ...], core: str) -> None:
    """Refuse (ValueError) a frame whose payload is not of ``shape`` (a -1 matches any size
    of that axis)."""
    got = tuple(frame.shape)
    if len(got) != len(shape) or any(s not in (-1, g) for s, g in zip(shape, got, strict=True)):
        raise ValueError(
            f"{core}: a {frame.kind} frame for layer {frame.layer} carries a {list(got)} "
            f"payload, not {[s if s >= 0 else '*' for s in shape]}"
        )


def check_credit(core: str, credit: int, seq: int, first: int, what: str, extra: int = 0) -> None:
    """Refuse a window (or batch) ``seq`` too far ahead of ``first``, the oldest expected:
    buffering it would let a queue grow without bound."""
    if not first <= seq < first + credit + extra:
        raise CreditError(
            f"{core}: {what} {seq} is outside the window credit [{first}, {first + credit + extra})"
        )


def check_part(core: str, frame: Frame, started: dict, parts: dict, expected: int) -> None:
    """Refuse a partial result of a window not started here, or one too many."""
    seq = frame.window.seq
    if seq not in started or len(parts.get(seq, [])) >= expected:
        raise ValueError(f"{core}: an unexpected psum of window {seq}")


def sum_in_block_order(frames: list[Frame], blocks: Sequence[Block], n_out: int, core: str):
    """The partial results of every PE core of a group added in block order into
    (…, n_out): each core's frame carries its consecutive blocks side by side; ValueError
    unless together they are every block once."""

    def first(f: Frame) -> int:
        head = f.header
        assert isinstance(head, Psum)
        return head.blocks[0] if head.blocks else len(blocks)

    ordered = sorted(frames, key=first)
    got = [j for f in ordered for j in f.header.blocks]  # type: ignore[union-attr]
    if got != list(range(len(blocks))):
        raise ValueError(f"{core}: partial sums of blocks {got}, not 0..{len(blocks) - 1}")
    out = None
    for f in ordered:
        mine = [blocks[j] for j in f.header.blocks]  # type: ignore[union-attr]
        out = add_blocks(mine, f.array(), n_out, out=out)
    return out
