"""A tile's share of the emulated timeline: the one list scheduler of
:mod:`emulator.cost.timeline` (the analytic schedule's too), and a log of the first samples'
ops for traces and Gantt charts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from emulator.cost import OpCost, Timeline


@dataclass(frozen=True)
class LoggedOp:
    """One stamped op, for traces and Gantt charts (times in ps; -1: not applicable)."""

    kind: str
    layer: int
    resource: str
    batch: int
    sample: int
    step: int
    start_ps: int
    end_ps: int


class Clock(Timeline):
    """The free time of each resource a core owns and the exact books of every op it stamped
    (:class:`~emulator.cost.Timeline`). The ops of the first ``log_samples`` training samples,
    and the WRITEs of their batches, are kept in :attr:`log`."""

    def __init__(self, log_samples: int = 0) -> None:
        super().__init__()
        self.log_samples = log_samples
        self.log: list[LoggedOp] = []
        self.logged_batches: set[int] = set()

    def run(self, cost: OpCost, ready: int, batch: int, sample: int = -1, step: int = -1) -> int:
        """Stamp one op (issued after every earlier op on its resource); returns its end."""
        start = self.stamp(cost, ready)
        end = start + cost.dur_ps
        if 0 <= sample < self.log_samples or (sample < 0 and batch in self.logged_batches):
            self.logged_batches.add(batch)
            self.log.append(
                LoggedOp(cost.kind, cost.layer, cost.resource, batch, sample, step, start, end)
            )
        return end

    def report(self) -> dict[str, Any]:
        """JSON-able totals and the logged ops."""
        return {
            "energy_pj": self.energy,
            "counters": self.counters,
            "end_ps": self.end,
            "ops": self.ops,
            "log": [list(vars(op).values()) for op in self.log],
        }

    def state(self) -> dict[str, Any]:
        """Everything but ``log_samples`` (a property of the run, not of the chip)."""
        return self.report() | super().state() | {"logged_batches": sorted(self.logged_batches)}

    def restore(self, state: dict[str, Any]) -> None:
        """Take back :meth:`state`."""
        super().restore(state)
        self.log = [LoggedOp(*op) for op in state["log"]]
        self.logged_batches = {int(b) for b in state["logged_batches"]}
