"""The list scheduler's rule and books, one copy for the analytic schedule
(:mod:`emulator.cost.schedule`) and for every tile's clock (:class:`emulator.chip.clock.Clock`).

An op of cost :class:`OpCost` starts at max(its inputs' latest end, its resource's free time)
(:func:`start_ps`; the contention-free NoC: at once), on resources served in issue order. The
books keep each distinct cost's count and fold them into exact sums: energy and counters are
integers in units of 1/:data:`FIXED`, so a total is the exact sum of its ops whatever order
they were stamped in (frame windows, delivery order, actor grouping) — the same bits in the
analytic model and in every runtime.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

FIXED = 2**64
"""Energy and counters are summed in units of 1/FIXED (Python integers): every float of
magnitude ≥ 2⁻¹¹ is an exact multiple of it."""


def _fixed(value: float) -> int:
    return round(value * FIXED)


def is_exclusive(resource: str) -> bool:
    """Every resource serves one op at a time, except the contention-free NoC ("noc:…")."""
    return not resource.startswith("noc:")


def start_ps(ready_ps: int, free_ps: int, resource: str) -> int:
    """When an op starts: at ``ready_ps`` (its inputs' latest end) on the NoC, else also not
    before ``free_ps``, the end of the previous op (in issue order) on its resource."""
    if not is_exclusive(resource):
        return ready_ps
    return ready_ps if ready_ps > free_ps else free_ps


@dataclass(frozen=True)
class OpCost:
    """Everything of one op but its times: duration, energy per component, counters.

    Built only by :class:`emulator.cost.model.CostModel`; ``energy_pj`` and ``counters`` are
    read-only mappings.
    """

    kind: str
    layer: int
    resource: str
    dur_ps: int
    energy_pj: Mapping[str, float]
    counters: Mapping[str, float]
    exclusive: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "energy_pj", MappingProxyType(dict(self.energy_pj)))
        object.__setattr__(self, "counters", MappingProxyType(dict(self.counters)))
        object.__setattr__(self, "exclusive", is_exclusive(self.resource))


class Timeline:
    """Resources' free times, the latest end, and exact books of every op stamped."""

    def __init__(self) -> None:
        self.free: dict[str, int] = {}
        self.end = 0
        self.ops = 0
        self._issued: dict[int, list[Any]] = {}  # id(cost) → [cost, ops] since the last fold
        self._sums: dict[str, dict[str, int]] = {"energy_pj": {}, "counters": {}}

    def stamp(self, cost: OpCost, ready: int) -> int:
        """Issue one op of ``cost`` ready at ``ready`` ps (after every earlier op on its
        resource); returns its start."""
        start = ready
        if cost.exclusive:  # start_ps(ready, free, cost.resource), inlined: the hot path
            free = self.free.get(cost.resource, 0)
            start = ready if ready > free else free
            self.free[cost.resource] = start + cost.dur_ps
        entry = self._issued.get(id(cost))
        if entry is None:
            self._issued[id(cost)] = [cost, 1]
        else:
            entry[1] += 1
        self.ops += 1
        end = start + cost.dur_ps
        if end > self.end:
            self.end = end
        return start

    def sums(self) -> dict[str, dict[str, int]]:
        """The exact books: energy and counters in units of 1/:data:`FIXED`."""
        for cost, n in self._issued.values():
            for part, values in (("energy_pj", cost.energy_pj), ("counters", cost.counters)):
                book = self._sums[part]
                for k, v in values.items():
                    book[k] = book.get(k, 0) + n * _fixed(v)
        self._issued = {}
        return self._sums

    @property
    def energy(self) -> dict[str, float]:
        """Energy by component, pJ."""
        return {k: n / FIXED for k, n in self.sums()["energy_pj"].items()}

    @property
    def counters(self) -> dict[str, float]:
        """Counters by name."""
        return {k: n / FIXED for k, n in self.sums()["counters"].items()}

    def state(self) -> dict[str, Any]:
        """The books and free times (the exact sums as decimal strings: they outgrow
        msgpack's 64-bit integers)."""
        sums = {part: {k: str(n) for k, n in d.items()} for part, d in self.sums().items()}
        return {"sums": sums, "free": dict(self.free), "end_ps": self.end, "ops": self.ops}

    def restore(self, state: dict[str, Any]) -> None:
        """Take back :meth:`state`."""
        self.free = {str(k): int(v) for k, v in state["free"].items()}
        self._sums = {
            part: {str(k): int(n) for k, n in state["sums"][part].items()}
            for part in ("energy_pj", "counters")
        }
        self._issued = {}
        self.end, self.ops = int(state["end_ps"]), int(state["ops"])
