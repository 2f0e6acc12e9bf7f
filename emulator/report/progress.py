"""The progress line of long commands on stderr (rich): done/total, samples per second,
elapsed and time left, the last loss; shown only on a terminal. Once the first batches have
been timed, one line estimates how long the rest of the training will take (on pipes too)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as _Rich

ESTIMATE_AFTER_S = 3.0
"""Seconds of timed batches (after the first, which carries the set-up) before the estimate."""

ESTIMATE_OVER_S = 20.0
"""The estimate is printed only for a run with at least this much training left."""


class Progress:
    """One status line: ``label ━━━━╸── done/total  pct  samples/s  elapsed  left  loss``.

    Silent when ``enabled`` is false or the stream is not a terminal (pipes, CI, --json);
    :meth:`note` prints on pipes too. ``batch``: samples per step (for samples/s and the
    estimate; the last batch of an epoch may be smaller, which the rate ignores).
    """

    def __init__(
        self,
        label: str,
        *,
        enabled: bool = True,
        stream: TextIO | None = None,
        batch: int | None = None,
        clock=time.monotonic,
    ) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.wanted = enabled
        self.enabled = enabled and self.stream.isatty()
        self.batch = batch
        self.clock = clock
        self._bar: _Rich | None = None
        self._task = 0
        self._first: tuple[int, float] | None = None  # (done, time) at the first update
        self.estimated: str | None = None

    def _start(self, total: int) -> _Rich:
        bar = _Rich(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[loss]}"),
            console=Console(file=self.stream),
            transient=False,
        )
        bar.start()
        self._task = bar.add_task(self.label, total=total, loss="", rate="")
        return bar

    def rate(self, done: int) -> float | None:
        """Samples per second since the first update (None before a second one)."""
        if self._first is None or self.batch is None or done <= self._first[0]:
            return None
        seconds = self.clock() - self._first[1]
        return (done - self._first[0]) * self.batch / seconds if seconds > 0 else None

    def update(self, done: int, total: int, loss: float | None = None) -> None:
        """Show ``done`` of ``total`` (rich redraws it at most ten times a second)."""
        if not self.wanted:
            return
        if self._first is None:
            self._first = (done, self.clock())
        rate = self.rate(done)
        self._estimate(done, total, rate)
        if not self.enabled:
            return
        if self._bar is None:
            self._bar = self._start(total)
        extra = f"loss {loss:.4f}" if loss is not None else ""
        shown = f"{rate:,.1f} samples/s" if rate is not None else ""
        self._bar.update(self._task, completed=done, total=total, loss=extra, rate=shown)

    def _estimate(self, done: int, total: int, rate: float | None) -> None:
        """Once, after :data:`ESTIMATE_AFTER_S` of timed batches: how long the rest takes."""
        if self.estimated is not None or rate is None or self._first is None:
            return
        if self.clock() - self._first[1] < ESTIMATE_AFTER_S or self.batch is None:
            return
        left = (total - done) * self.batch / rate
        self.estimated = ""
        if left < ESTIMATE_OVER_S:
            return
        self.estimated = (
            f"estimate: {_duration(left)} more for the {total - done} training batches left, "
            f"at the {rate:,.1f} samples/s of batches {self._first[0] + 1}-{done}; "
            "then the evaluation passes"
        )
        self.note(self.estimated)

    def note(self, text: str) -> None:
        """Print one line now (an event worth seeing as it happens), above the bar."""
        line = f"{self.label}: {text}"
        if self._bar is not None:
            self._bar.console.print(line, markup=False, highlight=False)
            return
        self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        """End the status line."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def _duration(seconds: float) -> str:
    """``1 h 02 min``, ``3 min 05 s`` or ``42 s``."""
    s = round(seconds)
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    if s >= 60:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s} s"
