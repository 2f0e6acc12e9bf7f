"""A tile's gradient unit: GRAD(l, n, k) of every layer with weights on its tile, stamped in
the schedule's issue order (:func:`emulator.cost.grad_order`: sample by sample, the output
layer first, each layer's tiles in order) whatever order the jobs arrive in."""

from __future__ import annotations

from typing import Any

from emulator.chip.clock import Clock
from emulator.chip.plan import Plan
from emulator.cost import grad_order, rate

Ends = list[tuple[int, int]]
"""(sample, end ps) of finished gradients."""


class GradientUnit:
    """The gradient jobs waiting on one tile and the next one due."""

    def __init__(self, plan: Plan, tile: int, clock: Clock) -> None:
        self.plan, self.clock, self.costs = plan, clock, plan.costs
        self.order = [
            (layer, k)
            for layer in grad_order(len(plan.layers))
            for k in self.costs.grad_tiles(layer)
            if plan.mapping.layers[layer].tiles[k] == tile
        ]
        self.jobs: dict[tuple[int, int, int], tuple[int, float, int]] = {}
        self.next = (0, 0)  # (sample, index into order)

    def queue(
        self, layer: int, k: int, jobs: list[tuple[int, int, int]], size: int, batch: int
    ) -> dict[tuple[int, int], Ends]:
        """Add jobs (sample, ready ps, active inputs of ``size``) of GRAD(layer, ·, k); stamp
        every job now due; returns the finished ones by (layer, k)."""
        if any(n < self.next[0] for n, _, _ in jobs):
            raise ValueError("gradient jobs of samples already done")
        for n, ready, active in jobs:
            self.jobs[(n, layer, k)] = (ready, rate(active, size), batch)
        return self._run()

    def _run(self) -> dict[tuple[int, int], Ends]:
        done: dict[tuple[int, int], Ends] = {}
        n, i = self.next
        while self.order:
            layer, k = self.order[i]
            job = self.jobs.pop((n, layer, k), None)
            if job is None:
                break
            ready, r, b = job
            cost = self.costs.grad(layer, k, r, self.costs.error_steps())
            done.setdefault((layer, k), []).append((n, self.clock.run(cost, ready, b, n)))
            i += 1
            if i == len(self.order):
                n, i = n + 1, 0
        self.next = (n, i)
        return done

    def settled(self, samples: int) -> bool:
        """No job waits and every one of ``samples`` training samples is done."""
        return not self.jobs and (not self.order or self.next[0] >= samples)

    def state(self) -> list[int]:
        """The next job due (the jobs themselves are none when settled)."""
        return list(self.next)

    def restore(self, state: Any) -> None:
        """Take back :meth:`state`."""
        n, i = state
        self.next, self.jobs = (int(n), int(i)), {}
