"""Where a runtime opens a frame: decode, check, hand to its core — and refuse what is bad.

A malformed frame (not msgpack, not a frame, an unknown destination, or one its core cannot
use: wrong shape, wrong layer) is rejected, counted and its reason kept; it never takes the
core or its actor down. A run whose frames were refused stalls, and says why.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emulator.chip.frames import Frame, FrameError, decode

KEPT_REASONS = 10
"""How many rejection reasons an inbox keeps (the count goes on)."""


class Inbox:
    """Decodes frames for a set of cores, counting what it delivers and what it refuses."""

    def __init__(self, known: set[str]) -> None:
        self.known = known
        self.frames = 0
        self.packets = 0
        self.rejected = 0
        self.reasons: list[str] = []

    def open(self, data: bytes, cores: Mapping[str, Any]) -> list[Frame]:
        """The frames its core sends in answer to ``data``; [] when ``data`` is refused."""
        try:
            frame = decode(data, known=self.known)
            out = cores[frame.dst].handle(frame)
        except (FrameError, ValueError, KeyError, IndexError, TypeError) as err:
            self.rejected += 1
            if len(self.reasons) < KEPT_REASONS:
                self.reasons.append(f"{type(err).__name__}: {err}".splitlines()[0][:300])
            return []
        self.frames += 1
        self.packets += frame.n_packets
        return out

    def report(self) -> dict[str, Any]:
        """Counts and the first reasons."""
        return {"rejected": self.rejected, "reasons": list(self.reasons)}


def stall_reasons(reports: list[dict[str, Any]]) -> str:
    """``; N frames refused: reason, …`` for a stall message ('' if none was refused)."""
    refused = sum(r["rejected"] for r in reports)
    if not refused:
        return ""
    reasons = [reason for r in reports for reason in r["reasons"]][:3]
    return f"; {refused} frames refused: " + " | ".join(reasons)
