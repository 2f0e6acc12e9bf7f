"""The home of the feedback group on its tile: it sends each output error to the group's PE
cores, adds their partial reads in block order into g = e·B/√M, stamps FEEDBACK(n) and sends
each hidden layer its prefix of g."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from emulator.chip.clock import Clock
from emulator.chip.frames import Error, Feedback, Frame
from emulator.chip.plan import FeedbackPlan, Plan
from emulator.chip.window import Window, check_credit, check_part, sum_in_block_order
from emulator.cost import error_bit_rates
from emulator.learning import feedback_scale


class FeedbackHome:
    """The feedback group's windows in flight, the next one due and the error bit rates."""

    def __init__(self, plan: Plan, group: FeedbackPlan, name: str, clock: Clock) -> None:
        self.plan, self.group, self.name, self.clock = plan, group, name, clock
        self.parts: dict[int, list[Frame]] = {}
        self.errors: dict[int, tuple[list[int], list[float]]] = {}  # seq → ready, rates
        self.done: dict[int, tuple[Window, np.ndarray]] = {}
        self.next = 0
        self.record: dict[int, float] = {}  # training sample → its error bit rate

    def error_in(self, frame: Frame) -> list[Frame]:
        """The output error of a window: to every PE core of the group, its bit rate kept."""
        head = frame.header
        assert isinstance(head, Error)
        seq = head.window.seq
        if seq < self.next or seq in self.errors or seq in self.done:
            raise ValueError(f"{self.name}: the error of window {seq} again")
        check_credit(self.name, self.plan.window_credit, seq, self.next, "the feedback group's")
        if head.ready_ps is None or len(head.ready_ps) != head.window.size:
            raise ValueError(f"{self.name}: the feedback group's error needs its ready_ps")
        rates = error_bit_rates(frame.array(), self.plan.chip.crossbar.error_bits)
        self.errors[seq] = (head.ready_ps, rates)
        return [frame.model_copy(update={"src": self.name, "dst": pe}) for pe in self.group.pes]

    def part_in(self, frame: Frame) -> list[Frame]:
        """A PE core's partial read; when all are in, g and the windows now due."""
        check_part(self.name, frame, self.errors, self.parts, len(self.group.pes))
        w = frame.window
        parts = self.parts.setdefault(w.seq, [])
        parts.append(frame)
        if len(parts) < len(self.group.pes):
            return []
        del self.parts[w.seq]
        g = sum_in_block_order(parts, self.group.blocks, self.group.width, self.name)
        self.done[w.seq] = (w, g * feedback_scale(self.group.width))
        return self._run()

    def _run(self) -> list[Frame]:
        """FEEDBACK(n) in sample order, then each hidden layer's prefix of g."""
        out = []
        costs = self.plan.costs
        while self.next in self.done:
            w, g = self.done.pop(self.next)
            ready, rates = self.errors.pop(self.next)
            self.next += 1
            hidden = self.plan.layers[:-1]
            arrive: list[list[int]] = [[] for _ in hidden]
            for i in range(w.size):
                n = w.base + w.first + i
                self.record[n] = rates[i]
                end = self.clock.run(costs.feedback(rates[i]), ready[i], w.version, n)
                for layer in hidden:
                    noc = costs.noc_feedback(layer.index)
                    arrive[layer.index].append(
                        self.clock.run(noc, end, w.version, n) if noc else end
                    )
            for layer in hidden:
                head = Feedback(window=w, ready_ps=arrive[layer.index])
                prefix = g[:, : math.prod(layer.send_shape)]
                out.append(Frame.pack(head, self.name, layer.home, layer.index, w.version, prefix))
        return out

    def settled(self, samples: int) -> bool:
        """Nothing in flight, and the errors of ``samples`` training samples read."""
        return not (self.parts or self.errors or self.done) and len(self.record) >= samples

    def state(self) -> dict[str, Any]:
        """The next window due and the error bit rates (nothing in flight when settled)."""
        return {"fb_next": self.next, "record_errors": self.record}

    def restore(self, state: dict[str, Any]) -> None:
        """Take back :meth:`state`."""
        self.next = int(state["fb_next"])
        self.parts, self.errors, self.done = {}, {}, {}
        self.record = {int(n): float(r) for n, r in state["record_errors"].items()}
