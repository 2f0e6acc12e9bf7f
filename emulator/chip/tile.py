"""The tile: one core with three rooms — the homes of its layers (:mod:`emulator.chip.home`),
its gradient unit (:mod:`emulator.chip.gradient_unit`) and, on one tile, the home of the
feedback group (:mod:`emulator.chip.feedback_home`) — sharing the tile's :class:`Clock`."""

from __future__ import annotations

from typing import Any

from emulator.chip.clock import Clock
from emulator.chip.feedback_home import FeedbackHome
from emulator.chip.frames import (
    Error,
    Feedback,
    Frame,
    GradDone,
    GradJobs,
    Psum,
    Spikes,
    Written,
)
from emulator.chip.gradient_unit import GradientUnit
from emulator.chip.home import LayerHome
from emulator.chip.plan import Plan
from emulator.cost import rate
from emulator.learning.snn import Neuron

__all__ = ["TileCore", "rate"]


class TileCore:
    """A tile: the home of some layers and perhaps of the feedback group; its gradient unit
    serves the GRADs of every layer with weights on it."""

    def __init__(self, plan: Plan, name: str) -> None:
        self.plan, self.name = plan, name
        self.neuron = Neuron.from_spec(plan.net.neuron)
        self.clock = Clock(plan.log_samples)
        self.unit = GradientUnit(plan, int(name.split("-")[1]), self.clock)
        self.homes = {
            layer.index: LayerHome(self, layer) for layer in plan.layers if layer.home == name
        }
        fb = plan.feedback
        self.feedback = (
            FeedbackHome(plan, fb, name, self.clock) if fb is not None and fb.home == name else None
        )

    def handle(self, frame: Frame) -> list[Frame]:
        """Dispatch by kind, to the layer's home or the feedback group's."""
        group = len(self.plan.layers)
        if frame.layer == group:
            return self._to_group(frame)
        head = frame.header
        if isinstance(head, GradJobs):
            return self.grads(frame.layer, head.k, _jobs(head), head.size, frame.batch)
        home = self.homes.get(frame.layer)
        if home is None:
            raise ValueError(f"{self.name}: is not the home of layer {frame.layer}")
        if isinstance(head, Spikes):
            return home.spikes_in(frame)
        if isinstance(head, Psum):
            return home.psum_in(frame)
        if isinstance(head, Error | Feedback):
            return home.error_in(frame)
        if isinstance(head, Written):
            return home.written_in(head)
        if isinstance(head, GradDone):
            return home.grads_done(head.k, list(zip(head.samples, head.ends_ps, strict=True)))
        raise ValueError(f"{self.name}: cannot handle a {frame.kind} frame for {frame.layer}")

    def _to_group(self, frame: Frame) -> list[Frame]:
        if self.feedback is None:
            raise ValueError(f"{self.name}: does not hold the feedback group")
        if isinstance(frame.header, Error):
            return self.feedback.error_in(frame)
        if isinstance(frame.header, Psum):
            return self.feedback.part_in(frame)
        raise ValueError(f"{self.name}: the feedback group cannot use a {frame.kind} frame")

    def grads(
        self, layer: int, k: int, jobs: list[tuple[int, int, int]], size: int, batch: int
    ) -> list[Frame]:
        """Gradient jobs for this tile's unit; the finished ones to their layers' homes."""
        try:
            done = self.unit.queue(layer, k, jobs, size, batch)
        except ValueError as err:
            raise ValueError(f"{self.name}: {err}") from None
        out: list[Frame] = []
        for (i, part), ends in done.items():
            home = self.plan.layers[i].home
            if home == self.name:
                out += self.homes[i].grads_done(part, ends)
                continue
            head = GradDone(k=part, samples=[n for n, _ in ends], ends_ps=[e for _, e in ends])
            out.append(Frame.pack(head, self.name, home, i, -1))
        return out

    # checkpoints ------------------------------------------------------------------------

    def settled(self, batches: int, samples: int) -> bool:
        """Nothing buffered or queued, ``batches`` updates written in every homed layer, the
        gradient unit and the feedback group through ``samples`` training samples."""
        homes = all(home.settled(batches) for home in self.homes.values())
        feedback = self.feedback is None or self.feedback.settled(samples)
        return homes and self.unit.settled(samples) and feedback

    def state(self) -> dict[str, Any]:
        """What the run changed, when :meth:`settled`: optimizer moments, the clock, the
        progress counters and the activity record."""
        group = self.feedback.state() if self.feedback else {"fb_next": 0, "record_errors": {}}
        return {
            "homed": {i: home.state() for i, home in self.homes.items()},
            "clock": self.clock.state(),
            "grad_next": self.unit.state(),
            **group,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Take back :meth:`state` (of a tile of the same plan)."""
        saved = {int(i): h for i, h in state["homed"].items()}
        if set(saved) != set(self.homes):
            raise ValueError(
                f"{self.name}: saved layers {sorted(saved)}, the tile homes {sorted(self.homes)}"
            )
        for i, h in saved.items():
            self.homes[i] = LayerHome(self, self.homes[i].plan)
            self.homes[i].restore(h)
        self.clock.restore(state["clock"])
        self.unit.restore(state["grad_next"])
        if self.feedback is not None:
            self.feedback.restore(state)

    def report(self) -> dict[str, Any]:
        """This tile's timeline totals and its part of the run's per-op activity record."""
        return {
            "name": self.name,
            "clock": self.clock.report(),
            "inputs": {i: h.record_inputs for i, h in self.homes.items()},
            "grads": {i: h.record_grad for i, h in self.homes.items()},
            "writes": {i: h.record_writes for i, h in self.homes.items()},
            "errors": self.feedback.record if self.feedback else {},
        }


def _jobs(head: GradJobs) -> list[tuple[int, int, int]]:
    return list(zip(head.samples, head.ready_ps, head.active, strict=True))
