"""The progress line of long commands on stderr (rich): done/total, rate, elapsed and time
left, the last loss; shown only on a terminal."""

from __future__ import annotations

import sys
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


class Progress:
    """One status line: ``label ━━━━╸── done/total  pct  elapsed  left  loss``.

    Silent when ``enabled`` is false or the stream is not a terminal (pipes, CI, --json);
    :meth:`note` prints on pipes too.
    """

    def __init__(self, label: str, *, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = enabled and self.stream.isatty()
        self._bar: _Rich | None = None
        self._task = 0

    def _start(self, total: int) -> _Rich:
        bar = _Rich(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[loss]}"),
            console=Console(file=self.stream),
            transient=False,
        )
        bar.start()
        self._task = bar.add_task(self.label, total=total, loss="")
        return bar

    def update(self, done: int, total: int, loss: float | None = None) -> None:
        """Show ``done`` of ``total`` (rich redraws it at most ten times a second)."""
        if not self.enabled:
            return
        if self._bar is None:
            self._bar = self._start(total)
        extra = f"loss {loss:.4f}" if loss is not None else ""
        self._bar.update(self._task, completed=done, total=total, loss=extra)

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
