"""The PE core: its crossbar blocks of one layer, or of the feedback group, as a message
handler."""

from __future__ import annotations

from typing import Any

import numpy as np

from emulator.chip.frames import Error, Frame, Psum, Spikes, Update, Written
from emulator.chip.plan import LayerPlan, Plan
from emulator.chip.window import CreditError, expect
from emulator.learning import layer_init
from emulator.learning.snn import im2col
from emulator.physics.blocks import initial_codes, read_formed
from emulator.physics.crossbar import CrossbarBank
from emulator.physics.formed import FormedCrossbar
from emulator.spec import ConvLayer


class PECore:
    """A PE core: its crossbar blocks of one layer, or of the feedback group."""

    def __init__(self, plan: Plan, name: str) -> None:
        self.plan, self.name = plan, name
        self.layer: LayerPlan | None = None
        self.block_ids: list[int] = []
        self.bank: CrossbarBank | None = None
        self.formed: list[FormedCrossbar] = []
        self.applied = 0  # updates applied
        self.feedback_rows = 0  # training errors read by its feedback arrays
        self.waiting: list[Frame] = []
        for layer in plan.layers:
            if name in layer.pes:
                self._hold_layer(layer)
        fb = plan.feedback
        if fb is not None and name in fb.pes:
            self.block_ids = fb.blocks_of(name)
            self.formed = [
                FormedCrossbar(plan.chip, b.n_in, b.n_out, seed=plan.seed, xbar_id=b.id)
                for b in (fb.blocks[j] for j in self.block_ids)
            ]

    def _hold_layer(self, layer: LayerPlan) -> None:
        self.layer = layer
        self.block_ids = layer.blocks_of(self.name)
        blocks = [layer.blocks[j] for j in self.block_ids]
        first, stop = min(b.out_start for b in blocks), max(b.out_stop for b in blocks)
        net, seed = self.plan.net, self.plan.seed
        n_in = max(b.in_stop for b in layer.blocks)
        codes = np.zeros((n_in, stop - first), dtype=np.int64)
        for lo, hi in _spans((b.out_start, b.out_stop) for b in blocks):  # its neurons only
            w = layer_init(net, seed, layer.index, outputs=slice(lo, hi))
            part, _ = initial_codes(w, self.plan.chip.crossbar, lsb=layer.lsb)
            codes[:, lo - first : hi - first] = part
        self.bank = CrossbarBank(self.plan.chip, blocks, seed=seed, inputs=n_in)
        self.bank.program(codes, first_column=first)

    def handle(self, frame: Frame) -> list[Frame]:
        """Reads, updates and feedback reads, each once its turn (``version``) has come."""
        self._check(frame)
        self.waiting.append(frame)
        out: list[Frame] = []
        progress = True
        while progress:
            progress = False
            for f in sorted(self.waiting, key=lambda f: (f.batch, f.kind != "update")):
                if self._ready(f):
                    self.waiting.remove(f)
                    out += self._run(f)
                    progress = True
                    break
        return out

    def _check(self, frame: Frame) -> None:
        """Refuse (ValueError) a frame this core cannot use, before buffering it."""
        credit = self.plan.window_credit
        if len(self.waiting) >= 2 * credit:  # reads and updates of the batches in flight
            raise CreditError(f"{self.name}: {len(self.waiting)} frames wait already")
        if frame.kind in ("spikes", "update") and not (
            frame.batch < self.applied + credit
            and (frame.kind == "spikes" or frame.batch >= self.applied)
        ):
            raise CreditError(
                f"{self.name}: a {frame.kind} frame of batch {frame.batch}, "
                f"{self.applied} updates applied"
            )
        steps = self.plan.net.time_steps
        if isinstance(frame.header, Spikes) and self.layer is not None:
            expect(frame, (steps, frame.window.size, *self.layer.in_shape), self.name)
        elif isinstance(frame.header, Update) and self.layer is not None:
            expect(frame, (1, sum(b.n_in * b.n_out for b in self._blocks())), self.name)
        elif isinstance(frame.header, Error) and self.formed:
            fb = self.plan.feedback
            assert fb is not None
            expect(frame, (frame.window.size, fb.rows), self.name)
        else:
            raise ValueError(f"{self.name}: cannot handle a {frame.kind} frame")

    def _ready(self, frame: Frame) -> bool:
        if frame.kind == "update":
            return frame.batch == self.applied
        if frame.kind == "spikes":
            return frame.batch <= self.applied
        return True

    def _run(self, frame: Frame) -> list[Frame]:
        if frame.kind == "spikes":
            return [self._read(frame)]
        if frame.kind == "update":
            return [self._update(frame)]
        return [self._feedback(frame)]  # _check let only these three kinds in

    def _read(self, frame: Frame) -> Frame:
        layer, bank = self.layer, self.bank
        assert layer is not None and bank is not None
        x, w = frame.array(), frame.window
        spec = self.plan.net.layers[layer.net_index]
        steps, p = x.shape[0], layer.positions
        if isinstance(spec, ConvLayer):
            flat = x.reshape(steps * w.size, *x.shape[2:])
            rows = im2col(flat, spec.kernel, spec.stride, spec.padding)
            rows = rows.reshape(steps, w.size * p, -1)
        else:
            rows = x.reshape(steps, w.size, -1)
        data = bank.read(rows, w.event, window=(w.first * p, w.total * p))  # (T, W·P, Σ cols)
        head = Psum(window=w, blocks=self.block_ids)
        return Frame.pack(head, self.name, layer.home, layer.index, w.version, data, 2)

    def _blocks(self):
        layer = self.layer
        assert layer is not None
        return [layer.blocks[j] for j in self.block_ids]

    def _update(self, frame: Frame) -> Frame:
        layer, bank = self.layer, self.bank
        assert layer is not None and bank is not None
        flat, before = frame.array()[0], self._written()
        steps, offset = [], 0
        for block in self._blocks():
            size = block.n_in * block.n_out
            steps.append(flat[offset : offset + size].reshape(block.n_in, block.n_out))
            offset += size
        bank.update_blocks(steps)
        self.applied += 1
        cells, pulses = (a - b for a, b in zip(self._written(), before, strict=True))
        head = Written(version=frame.batch, cells_written=cells, pulses=pulses)
        return Frame.pack(head, self.name, layer.home, layer.index, frame.batch)

    def _written(self) -> tuple[int, int]:
        if self.bank is None:
            return 0, 0
        total = self.bank.total_counters()
        return total.cells_written, total.pulses

    def _feedback(self, frame: Frame) -> Frame:
        fb = self.plan.feedback
        assert fb is not None
        e, w = frame.array(), frame.window
        self.feedback_rows += w.size
        blocks = [fb.blocks[j] for j in self.block_ids]
        data = read_formed(blocks, self.formed, e, w.event, (w.first, w.total))
        head = Psum(window=w, blocks=self.block_ids)  # data: (W, columns of this PE's blocks)
        return Frame.pack(head, self.name, fb.home, frame.layer, w.version, data)

    def settled(self, batches: int, samples: int) -> bool:
        """Nothing buffered, ``batches`` updates applied and the errors of ``samples``
        training samples read: the state a checkpoint after that batch holds."""
        return (
            not self.waiting
            and (self.layer is None or self.applied >= batches)
            and (not self.formed or self.feedback_rows >= samples)
        )

    def state(self) -> dict[str, Any]:
        """What the run changed (see :meth:`settled`); the rest follows from the plan."""
        return {
            "applied": self.applied,
            "feedback_rows": self.feedback_rows,
            "bank": None if self.bank is None else self.bank.state(),
            "formed": [a.state() for a in self.formed],
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Take back :meth:`state` (of a core of the same plan)."""
        if (state["bank"] is None) != (self.bank is None):
            raise ValueError(f"{self.name}: the saved core and this one hold different arrays")
        _same_count(self.name, "formed", state["formed"], self.formed)
        if self.bank is not None:
            self.bank.restore(state["bank"])
        for array, saved in zip(self.formed, state["formed"], strict=True):
            array.restore(saved)
        self.applied, self.feedback_rows = int(state["applied"]), int(state["feedback_rows"])
        self.waiting = []

    def report(self) -> dict[str, Any]:
        """Effective codes of its weight blocks and the counters of all its arrays."""
        bank = self.bank
        counters = [] if bank is None else bank.block_counters()
        counters += [a.counters for a in self.formed]
        return {
            "name": self.name,
            "layer": -1 if self.layer is None else self.layer.index,
            "blocks": self.block_ids,
            "codes": [] if bank is None else bank.block_codes(),
            "counters": [c.as_dict() for c in counters],
            "stuck": [] if bank is None else bank.block_stuck(),
            "feedback": bool(self.formed),
        }


def _spans(ranges) -> list[tuple[int, int]]:
    """The union of half-open ranges as sorted, disjoint spans."""
    spans: list[tuple[int, int]] = []
    for a, b in sorted(ranges):
        if spans and a <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], b))
        else:
            spans.append((a, b))
    return spans


def _same_count(core: str, what: str, saved: list, held: list) -> None:
    if len(saved) != len(held):
        raise ValueError(f"{core}: {len(saved)} saved {what}, the core holds {len(held)}")
