"""The home of a layer on its tile: it buffers the layer's input windows (input data reuse),
forwards them to the layer's PE cores, adds their partial sums in block order, runs the
neurons and pools, sends the spikes on, stamps the forward's ops; at the end of a batch it
turns the error into the layer's update (:func:`emulator.learning.local_gradient`, the
layer's own optimizer, stochastic rounding to codes) and stamps the WRITE once every PE core
has programmed it and every gradient is done."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from emulator.chip.clock import Clock
from emulator.chip.frames import (
    Error,
    Frame,
    GradJobs,
    Spikes,
    Update,
    Written,
    tile_name,
)
from emulator.chip.plan import LayerPlan, Plan
from emulator.chip.window import (
    CONTROLLER,
    Window,
    check_credit,
    check_part,
    expect,
    sum_in_block_order,
)
from emulator.cost import grad_ready_ps, rate, write_rates, xbar_ready_ps
from emulator.learning import local_gradient, make_optimizer, output_spike_error, spike_error
from emulator.learning.snn import Neuron, pool_steps
from emulator.physics.blocks import block_part, update_steps
from emulator.spec import epoch_lr


class Tile(Protocol):
    """What a layer's home uses of the tile it sits on (:class:`~emulator.chip.tile.TileCore`,
    which holds its homes: the home names this, not the class, so neither imports the
    other)."""

    name: str
    plan: Plan
    neuron: Neuron
    clock: Clock

    def grads(
        self, layer: int, k: int, jobs: list[tuple[int, int, int]], size: int, batch: int
    ) -> list[Frame]:
        """Gradient jobs for the tile's own unit."""
        ...


@dataclass
class _Batch:
    """A homed layer's record of one training batch."""

    total: int
    base: int
    event: tuple[int, int]
    x: np.ndarray
    h: np.ndarray
    s: np.ndarray
    g: np.ndarray | None = None
    forward_rows: int = 0
    error_rows: int = 0


class LayerHome:
    """One layer homed on a tile: its windows, batches, timing and activity record."""

    def __init__(self, tile: Tile, layer: LayerPlan) -> None:
        self.tile, self.plan = tile, layer
        run = tile.plan
        self.optimizer: Any = make_optimizer(run.optimizer, run.lr)
        self.next_seq = 0
        self.applied = 0  # updates applied (and their WRITE stamped)
        self.trained = 0  # training samples of those updates: their timing is forgotten
        self.inbox: dict[int, Frame] = {}  # input windows by seq
        self.psums: dict[int, list[Frame]] = {}
        self.windows: dict[int, Window] = {}
        self.batches: dict[int, _Batch] = {}
        # timing: NEURON(l, n, T−1) end and Σ_t active inputs of each training sample
        self.neuron_end: dict[int, int] = {}
        self.active: dict[int, int] = {}
        self.grad_end: dict[int, dict[int, int]] = {}  # sample → tile k → end
        self.written: dict[int, list[int]] = {}  # version → [acks, cells, pulses]
        self.last_sample: dict[int, int] = {}  # version → its last sample
        self.record_inputs: dict[int, list[float]] = {}
        self.record_grad: dict[int, float] = {}
        self.record_writes: dict[int, tuple[float, float]] = {}

    # forward ----------------------------------------------------------------------------

    def spikes_in(self, frame: Frame) -> list[Frame]:
        """An input window; it goes on when its turn has come."""
        name, w = self.tile.name, frame.window
        expect(frame, (self.tile.plan.net.time_steps, w.size, *self.plan.in_shape), name)
        if w.seq < self.next_seq or w.seq in self.inbox:
            raise ValueError(f"{name}: window {w.seq} of layer {frame.layer} again")
        credit = self.tile.plan.window_credit
        check_credit(name, credit, w.seq, self.next_seq, f"layer {frame.layer}'s input")
        self.inbox[w.seq] = frame
        return self.advance()

    def psum_in(self, frame: Frame) -> list[Frame]:
        """A PE core's partial sums of a window started here."""
        check_part(self.tile.name, frame, self.windows, self.psums, len(self.plan.pes))
        self.psums.setdefault(frame.window.seq, []).append(frame)
        return self.advance()

    def advance(self) -> list[Frame]:
        """Forward the next input windows whose turn has come, while earlier ones are still
        being read (the PE cores read a window as soon as it is here); finish those whose
        partial sums are all in. Windows start, and finish, strictly in ``seq`` order."""
        out: list[Frame] = []
        while True:
            start = self.next_seq + len(self.windows)  # the started ones are next_seq..
            frame = self.inbox.get(start)
            if frame is not None and frame.batch <= self.applied:
                out += self._start_window(frame)
                continue
            seq = self.next_seq
            if seq in self.windows and len(self.psums.get(seq, [])) == len(self.plan.pes):
                out += self._finish_window(seq)
                self.next_seq += 1
                continue
            break
        return out

    def _start_window(self, frame: Frame) -> list[Frame]:
        x, w = frame.array(), frame.window
        self.windows[w.seq] = w
        if w.mode == "train":  # input data reuse: kept for the local gradient
            batch = self._batch(w)
            batch.x[:, w.first : w.first + w.size] = x
        return [frame.model_copy(update={"src": self.tile.name, "dst": pe}) for pe in self.plan.pes]

    def _batch(self, w: Window) -> _Batch:
        if w.version not in self.batches:
            steps, layer = self.tile.plan.net.time_steps, self.plan
            self.batches[w.version] = _Batch(
                w.total,
                w.base,
                w.event,
                np.zeros((steps, w.total, *layer.in_shape)),
                np.zeros((steps, w.total, *layer.out_shape)),
                np.zeros((steps, w.total, *layer.out_shape)),
            )
            self.last_sample[w.version] = w.base + w.total - 1
        return self.batches[w.version]

    def _currents(self, w: Window, frames: list[Frame]) -> np.ndarray:
        """(T, W, *out) currents: partial sums added in block order, as ChipLayer.matmul."""
        layer, steps = self.plan, self.tile.plan.net.time_steps
        out = sum_in_block_order(frames, layer.blocks, layer.out_shape[0], self.tile.name)
        out *= layer.lsb  # (T, W·P, n_out)
        if layer.positions > 1:
            oc, ho, wo = layer.out_shape
            return out.reshape(steps, w.size, ho, wo, oc).transpose(0, 1, 4, 2, 3)
        return out

    def _finish_window(self, seq: int) -> list[Frame]:
        run, layer, w = self.tile.plan, self.plan, self.windows.pop(seq)
        inputs = self.inbox.pop(seq)
        steps = run.net.time_steps
        h, s = self.tile.neuron.run(self._currents(w, self.psums.pop(seq)))
        sent = pool_steps(s, [run.net.layers[i] for i in layer.pool_after])
        out: list[Frame] = []
        meta: dict[str, Any] = {}
        if w.mode == "train":
            batch = self.batches[w.version]
            batch.h[:, w.first : w.first + w.size] = h
            batch.s[:, w.first : w.first + w.size] = s
            batch.forward_rows += w.size
            x = inputs.array().reshape(steps, w.size, -1)
            head = inputs.header
            assert isinstance(head, Spikes)
            meta, grads = self._stamp_forward(w, x, head.ready_ps)
            out += grads + self._try_update(w.version)
        nxt = layer.index + 1
        dst = run.layers[nxt].home if nxt < len(run.layers) else CONTROLLER
        head = Spikes(window=w, **meta)
        out.append(Frame.pack(head, self.tile.name, dst, nxt, w.version, sent.astype(bool), 2))
        return out

    def _stamp_forward(
        self, w: Window, x: np.ndarray, arrivals: list[int] | None
    ) -> tuple[dict[str, Any], list[Frame]]:
        """XBAR_READ and NEURON of every sample and step of a training window, then its
        spikes' NoC ops; the output layer's errors leave for the feedback group, and its
        gradients may start."""
        run, layer, clock = self.tile.plan, self.plan, self.tile.clock
        costs, b = run.costs, w.version
        steps, size = run.net.time_steps, x.shape[2]
        pipelined = run.chip.pipeline.time_steps
        last = layer.index == len(run.layers) - 1
        active = x.sum(axis=2).astype(int)  # (T, W)
        noc = costs.noc_spikes(layer.index + 1) if not last else costs.noc_error()
        sent: list[list[int]] = [[] for _ in range(steps)]
        errors: list[int] = []
        jobs: list[tuple[int, int, int]] = []
        for i in range(w.size):
            n = w.base + w.first + i
            spikes_in = (
                None if arrivals is None else [arrivals[t * w.size + i] for t in range(steps)]
            )
            rates = [rate(int(active[t, i]), size) for t in range(steps)]
            ends = []
            for t in range(steps):
                ready = xbar_ready_ps(spikes_in, t, time_steps=pipelined)
                end = clock.run(costs.xbar(layer.index, rates[t]), ready, b, n, t)
                ends.append(clock.run(costs.neuron(layer.index), end, b, n, t))
            self.record_inputs[n] = rates
            self.active[n] = int(active[:, i].sum())
            self.neuron_end[n] = ends[-1]
            if not last:
                for t in range(steps):
                    sent[t].append(clock.run(noc, ends[t], b, n, t) if noc else ends[t])
            else:
                errors.append(clock.run(noc, ends[-1], b, n) if noc else ends[-1])
                jobs.append((n, ends[-1], self.active[n]))
        if not last:
            return {"ready_ps": [e for per_step in sent for e in per_step]}, []
        return {"error_ps": errors}, self._grad_jobs(jobs, b)

    # backward ---------------------------------------------------------------------------

    def error_in(self, frame: Frame) -> list[Frame]:
        """The error of the layer's outputs for a window: the output layer's own e, or a
        hidden layer's g; the update once the whole batch is in."""
        name, credit = self.tile.name, self.tile.plan.window_credit
        check_credit(name, credit, frame.batch, self.applied, f"layer {frame.layer}'s batch", 1)
        e, w = frame.array(), frame.window
        expect(frame, (w.size, math.prod(self.plan.send_shape)), name)
        batch = self._batch(w)
        if batch.g is None:
            batch.g = np.zeros((w.total, *self.plan.send_shape))
        out: list[Frame] = []
        if isinstance(frame.header, Error):  # the output layer's own: ∂loss/∂s_L[t] = e/T
            e = output_spike_error(e, self.tile.plan.net.time_steps)
        else:  # a hidden layer's g: its gradients may start
            ready = frame.header.ready_ps
            jobs = []
            for i in range(w.size):
                n = w.base + w.first + i
                jobs.append((n, grad_ready_ps(self.neuron_end[n], ready[i]), self.active[n]))
            out += self._grad_jobs(jobs, w.version)
        batch.g[w.first : w.first + w.size] = e.reshape(w.size, *self.plan.send_shape)
        batch.error_rows += w.size
        return out + self._try_update(w.version)

    def _try_update(self, version: int) -> list[Frame]:
        batch = self.batches.get(version)
        if batch is None or batch.forward_rows < batch.total or batch.error_rows < batch.total:
            return []
        del self.batches[version]
        run, layer = self.tile.plan, self.plan
        grad_s = spike_error(run.net, layer.net_index, batch.s, batch.g)
        spec = run.net.layers[layer.net_index]
        last = layer.index == len(run.layers) - 1
        grad = local_gradient(
            spec, self.tile.neuron, run.algorithm, batch.h, batch.s, batch.x, grad_s, output=last
        )
        self.optimizer.lr = epoch_lr(run.schedule, batch.event[0])
        (delta,) = self.optimizer.step([grad])
        steps = update_steps(delta, layer.lsb, seed=run.seed, layer=layer.index, event=batch.event)
        self.written[version] = [0, 0, 0]
        frames = []
        for pe in layer.pes:
            parts = [block_part(steps, layer.blocks[j]).ravel() for j in layer.blocks_of(pe)]
            head = Update(event=batch.event)
            data = np.concatenate(parts)[None, :]
            frames.append(Frame.pack(head, self.tile.name, pe, layer.index, version, data))
        return frames

    def written_in(self, head: Written) -> list[Frame]:
        """A PE core has programmed the update of ``head.version``."""
        acks = self.written[head.version]
        acks[0] += 1
        acks[1] += head.cells_written
        acks[2] += head.pulses
        return self._try_write(head.version)

    def _try_write(self, version: int) -> list[Frame]:
        """WRITE(l, b) once every PE core has programmed and every tile's last gradient of
        the batch has ended; then the next batch may enter the layer."""
        run, layer = self.tile.plan, self.plan
        costs = run.costs
        acks = self.written.get(version)
        ends = self.grad_end.get(self.last_sample.get(version, -1), {})
        grads = len(costs.grad_tiles(layer.index))
        if acks is None or acks[0] < len(layer.pes) or len(ends) < grads:
            return []
        del self.written[version]
        _, cells, pulses = acks
        unique = run.mapping.layers[layer.index].unique_cells
        fraction, per_cell = write_rates(unique, cells, pulses)
        self.tile.clock.run(
            costs.write(layer.index, fraction, per_cell), max(ends.values()), version
        )
        self.record_writes[version] = (fraction, per_cell)
        self.trained = self.last_sample.pop(version) + 1
        self.applied += 1
        for timing in (self.neuron_end, self.active, self.grad_end):  # bounded: forget it
            for n in [n for n in timing if n < self.trained]:
                del timing[n]
        return self.advance()

    # gradients --------------------------------------------------------------------------

    def _grad_jobs(self, jobs: list[tuple[int, int, int]], batch: int) -> list[Frame]:
        """GRAD(l, n, k) for every gradient tile k of the layer: (sample, ready, active)."""
        run, layer = self.tile.plan, self.plan
        size = run.net.time_steps * math.prod(layer.in_shape)
        for n, _, active in jobs:
            self.record_grad[n] = rate(active, size)
        out = []
        tiles = run.mapping.layers[layer.index].tiles
        for k in run.costs.grad_tiles(layer.index):
            dst = tile_name(tiles[k])
            if dst == self.tile.name:
                out += self.tile.grads(layer.index, k, jobs, size, batch)
                continue
            head = GradJobs(
                k=k,
                size=size,
                samples=[n for n, _, _ in jobs],
                ready_ps=[r for _, r, _ in jobs],
                active=[a for _, _, a in jobs],
            )
            out.append(Frame.pack(head, self.tile.name, dst, layer.index, batch))
        return out

    def grads_done(self, k: int, ends: list[tuple[int, int]]) -> list[Frame]:
        """Gradients of the layer's tile k have ended; a batch's last one may let its WRITE
        go."""
        out = []
        for n, end in ends:
            if n >= self.trained:  # a late report of a written batch's sample is not needed
                self.grad_end.setdefault(n, {})[k] = end
        for version, last in list(self.last_sample.items()):
            if any(n == last for n, _ in ends):
                out += self._try_write(version)
        return out

    # checkpoints ------------------------------------------------------------------------

    def settled(self, batches: int) -> bool:
        """``batches`` updates written, nothing buffered."""
        busy = (
            self.inbox or self.psums or self.windows or self.batches or self.written
        ) or self.last_sample
        return self.applied >= batches and not busy

    def state(self) -> dict[str, Any]:
        """What the run changed, when settled."""
        return {
            "optimizer": self.optimizer.state_dict(),
            "next_seq": self.next_seq,
            "applied": self.applied,
            "trained": self.trained,
            "neuron_end": self.neuron_end,
            "active": self.active,
            "grad_end": self.grad_end,
            "record_inputs": self.record_inputs,
            "record_grad": self.record_grad,
            "record_writes": self.record_writes,
        }

    def restore(self, h: dict[str, Any]) -> None:
        """Take back :meth:`state` (of the same layer)."""
        if h["optimizer"].get("name") != self.optimizer.name:
            raise ValueError(
                f"{self.tile.name}: layer {self.plan.index}'s saved optimizer is "
                f"{h['optimizer'].get('name')}, this run's is {self.optimizer.name}"
            )
        self.optimizer.load_state_dict(h["optimizer"])
        self.next_seq, self.applied = int(h["next_seq"]), int(h["applied"])
        self.trained = int(h["trained"])
        self.neuron_end = _ints(h["neuron_end"])
        self.active = _ints(h["active"])
        self.grad_end = {int(n): _ints(e) for n, e in h["grad_end"].items()}
        self.record_inputs = {int(n): list(r) for n, r in h["record_inputs"].items()}
        self.record_grad = {int(n): float(r) for n, r in h["record_grad"].items()}
        self.record_writes = {int(b): tuple(w) for b, w in h["record_writes"].items()}


def _ints(d: dict[Any, Any]) -> dict[int, int]:
    return {int(k): int(v) for k, v in d.items()}
