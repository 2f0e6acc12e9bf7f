"""A dependency-free progress bar on stderr, shown only on a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Redraws one status line: ``label [####....] done/total  extra``.

    Silent when ``enabled`` is false or the stream is not a terminal (pipes, CI, --json).
    """

    def __init__(self, label: str, *, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = enabled and self.stream.isatty()
        self._last = 0.0
        self._drawn = False

    def update(self, done: int, total: int, loss: float | None = None) -> None:
        """Show ``done`` of ``total`` (redraws at most 10 times a second, and at the end)."""
        if not self.enabled:
            return
        now = time.monotonic()
        if done < total and now - self._last < 0.1:
            return
        self._last = now
        width = 30
        filled = width * done // max(total, 1)
        extra = f"  loss {loss:.4f}" if loss is not None else ""
        bar = "#" * filled + "." * (width - filled)
        self.stream.write(f"\r{self.label} [{bar}] {done}/{total}{extra}")
        self.stream.flush()
        self._drawn = True

    def note(self, text: str) -> None:
        """Print one line now (an event worth seeing as it happens), above the bar; shown
        on pipes too."""
        if self._drawn:
            self.stream.write("\n")
            self._drawn = False
        self.stream.write(f"{self.label}: {text}\n")
        self.stream.flush()

    def close(self) -> None:
        """End the status line."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
