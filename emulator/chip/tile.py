"""The tile: the home of its layers (input buffering, partial sums, neurons, updates), and
the :class:`Clock` that stamps its ops on the emulated timeline."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emulator.chip.clock import Clock
from emulator.chip.plan import LayerPlan, Plan
from emulator.chip.window import CONTROLLER, CreditError, Window, expect
from emulator.cost import grad_order, grad_ready_ps, xbar_ready_ps
from emulator.learning import (
    feedback_scale,
    local_gradient,
    make_optimizer,
    output_spike_error,
    spike_error,
)
from emulator.learning.snn import Neuron, pool
from emulator.physics.blocks import add_blocks, block_part, update_steps
from emulator.physics.crossbar import bit_planes
from emulator.runtime.frames import (
    Error,
    Feedback,
    Frame,
    GradDone,
    GradJobs,
    Psum,
    Spikes,
    Update,
    Written,
    tile_name,
)


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


@dataclass
class _Homed:
    """A layer whose home is this tile."""

    plan: LayerPlan
    optimizer: Any
    next_seq: int = 0
    applied: int = 0  # updates applied (and their WRITE stamped)
    trained: int = 0  # training samples of those updates: their timing is forgotten
    inbox: dict[int, Frame] = field(default_factory=dict)  # input windows by seq
    psums: dict[int, list[Frame]] = field(default_factory=dict)
    windows: dict[int, Window] = field(default_factory=dict)
    batches: dict[int, _Batch] = field(default_factory=dict)
    # timing: NEURON(l, n, T−1) end and Σ_t active inputs of each training sample
    neuron_end: dict[int, int] = field(default_factory=dict)
    active: dict[int, int] = field(default_factory=dict)
    grad_end: dict[int, dict[int, int]] = field(default_factory=dict)  # sample → tile k → end
    written: dict[int, list[int]] = field(default_factory=dict)  # version → [acks, cells, pulses]
    last_sample: dict[int, int] = field(default_factory=dict)  # version → its last sample
    record_inputs: dict[int, list[float]] = field(default_factory=dict)
    record_grad: dict[int, float] = field(default_factory=dict)
    record_writes: dict[int, tuple[float, float]] = field(default_factory=dict)


def rate(active: int, size: int) -> float:
    """A fraction of inputs active: the one formula every core records and costs with."""
    return active / size


class TileCore:
    """A tile: the home of some layers and perhaps of the feedback group; its digital
    gradient unit serves the GRADs of every layer with weights on it."""

    def __init__(self, plan: Plan, name: str) -> None:
        self.plan, self.name = plan, name
        self.neuron = Neuron.from_spec(plan.net.neuron)
        self.costs = plan.costs
        self.clock = Clock(plan.log_samples)
        self.homed = {
            layer.index: _Homed(layer, make_optimizer(plan.optimizer, plan.lr))
            for layer in plan.layers
            if layer.home == name
        }
        fb = plan.feedback
        self.feedback_home = fb is not None and fb.home == name
        self.fb_parts: dict[int, list[Frame]] = {}
        self.fb_errors: dict[int, tuple[list[int], list[float]]] = {}  # seq → ready, rates
        self.fb_done: dict[int, tuple[Window, np.ndarray]] = {}
        self.fb_next = 0
        self.record_errors: dict[int, float] = {}
        me = int(name.split("-")[1])
        self.grad_order = [
            (layer, k)
            for layer in grad_order(len(plan.layers))
            for k in self.costs.grad_tiles(layer)
            if plan.mapping.layers[layer].tiles[k] == me
        ]
        self.grad_jobs: dict[tuple[int, int, int], tuple[int, float, int]] = {}
        self.grad_next = (0, 0)  # (sample, index into grad_order)

    def handle(self, frame: Frame) -> list[Frame]:
        """Dispatch by kind (and by layer for the feedback group's frames)."""
        group = len(self.plan.layers)
        if frame.layer == group and not self.feedback_home:
            raise ValueError(f"{self.name}: does not hold the feedback group")
        head, steps = frame.header, self.plan.net.time_steps
        if isinstance(head, Spikes):
            home = self.homed[frame.layer]
            expect(frame, (steps, head.window.size, *home.plan.in_shape), self.name)
            seq = head.window.seq
            if seq < home.next_seq or seq in home.inbox:
                raise ValueError(f"{self.name}: window {seq} of layer {frame.layer} again")
            self._credit(seq, home.next_seq, f"layer {frame.layer}'s input")
            home.inbox[seq] = frame
            return self._advance(home)
        if isinstance(head, Psum) and frame.layer == group:
            fb = self.plan.feedback
            assert fb is not None  # feedback_home
            self._expected(frame, self.fb_errors, self.fb_parts, len(fb.pes))
            return self._feedback_part(frame)
        if isinstance(head, Psum):
            home = self.homed[frame.layer]
            self._expected(frame, home.windows, home.psums, len(home.plan.pes))
            home.psums.setdefault(head.window.seq, []).append(frame)
            return self._advance(home)
        if isinstance(head, Error) and frame.layer == group:
            seq = head.window.seq
            if seq < self.fb_next or seq in self.fb_errors or seq in self.fb_done:
                raise ValueError(f"{self.name}: the error of window {seq} again")
            self._credit(seq, self.fb_next, "the feedback group's")
            return self._scatter_error(frame)
        if isinstance(head, Error | Feedback):
            home = self.homed[frame.layer]
            self._credit(frame.batch, home.applied, f"layer {frame.layer}'s batch", 1)
            return self._error(home, frame)
        if isinstance(head, Written):
            return self._written(self.homed[frame.layer], head)
        if isinstance(head, GradJobs):
            return self._remote_grads(frame.layer, frame.batch, head)
        if isinstance(head, GradDone):
            return self._grads_done_local(self.homed[frame.layer], head.k, _ends(head))
        raise ValueError(f"{self.name}: cannot handle a {frame.kind} frame for {frame.layer}")

    def _credit(self, seq: int, first: int, what: str, extra: int = 0) -> None:
        """Refuse a window (or batch) too far ahead of ``first``, the oldest one expected."""
        if not first <= seq < first + self.plan.window_credit + extra:
            raise CreditError(
                f"{self.name}: {what} {seq} is outside the window credit "
                f"[{first}, {first + self.plan.window_credit + extra})"
            )

    def _expected(self, frame: Frame, started: dict, parts: dict, expected: int) -> None:
        """Refuse a partial result of a window not started here, or one too many."""
        seq = frame.window.seq
        if seq not in started or len(parts.get(seq, [])) >= expected:
            raise ValueError(f"{self.name}: an unexpected psum of window {seq}")

    # forward ----------------------------------------------------------------------------

    def _advance(self, home: _Homed) -> list[Frame]:
        """Forward the next input windows whose turn has come; finish those whose partial
        sums are all in. Windows go strictly in ``seq`` order."""
        out: list[Frame] = []
        while True:
            seq = home.next_seq
            if seq in home.inbox and seq not in home.windows:
                frame = home.inbox[seq]
                if frame.batch > home.applied:
                    break
                out += self._start_window(home, frame)
                continue
            if seq in home.windows and len(home.psums.get(seq, [])) == len(home.plan.pes):
                out += self._finish_window(home, seq)
                home.next_seq += 1
                continue
            break
        return out

    def _start_window(self, home: _Homed, frame: Frame) -> list[Frame]:
        layer, x, w = home.plan, frame.array(), frame.window
        home.windows[w.seq] = w
        if w.mode == "train":  # input data reuse: kept for the local gradient
            batch = self._batch(home, w)
            batch.x[:, w.first : w.first + w.size] = x
        return [frame.model_copy(update={"src": self.name, "dst": pe}) for pe in layer.pes]

    def _batch(self, home: _Homed, w: Window) -> _Batch:
        if w.version not in home.batches:
            steps, layer = self.plan.net.time_steps, home.plan
            home.batches[w.version] = _Batch(
                w.total,
                w.base,
                w.event,
                np.zeros((steps, w.total, *layer.in_shape)),
                np.zeros((steps, w.total, *layer.out_shape)),
                np.zeros((steps, w.total, *layer.out_shape)),
            )
            home.last_sample[w.version] = w.base + w.total - 1
        return home.batches[w.version]

    def _currents(self, home: _Homed, w: Window, frames: list[Frame]) -> np.ndarray:
        """(T, W, *out) currents: partial sums added in block order, as ChipLayer.matmul."""
        layer, steps, p = home.plan, self.plan.net.time_steps, home.plan.positions
        parts: dict[int, np.ndarray] = {}
        for f in frames:
            data, offset = f.array(), 0  # (T, W·P, columns of the sender's blocks)
            for j in _blocks(f):
                width = layer.blocks[j].n_out
                parts[j] = data[:, :, offset : offset + width]
                offset += width
        currents = []
        for t in range(steps):
            at_t = [parts[j][t] for j in range(len(layer.blocks))]
            out = add_blocks(layer.blocks, at_t, w.size * p, layer.out_shape[0]) * layer.lsb
            if p > 1:
                oc, ho, wo = layer.out_shape
                out = out.reshape(w.size, ho, wo, oc).transpose(0, 3, 1, 2)
            currents.append(out)
        return np.stack(currents)

    def _finish_window(self, home: _Homed, seq: int) -> list[Frame]:
        layer, w = home.plan, home.windows.pop(seq)
        inputs = home.inbox.pop(seq)
        steps = self.plan.net.time_steps
        h, s = self.neuron.run(self._currents(home, w, home.psums.pop(seq)))
        sent = s
        for i in layer.pool_after:
            spec = self.plan.net.layers[i]
            flat = pool(sent.reshape(steps * w.size, *sent.shape[2:]), spec.mode, spec.kernel)
            sent = flat.reshape(steps, w.size, *flat.shape[1:])
        out: list[Frame] = []
        meta: dict[str, Any] = {}
        if w.mode == "train":
            batch = home.batches[w.version]
            batch.h[:, w.first : w.first + w.size] = h
            batch.s[:, w.first : w.first + w.size] = s
            batch.forward_rows += w.size
            x = inputs.array().reshape(steps, w.size, -1)
            arrivals = inputs.header.ready_ps
            meta, grads = self._stamp_forward(home, w, x, arrivals)
            out += grads + self._try_update(home, w.version)
        nxt = layer.index + 1
        dst = self.plan.layers[nxt].home if nxt < len(self.plan.layers) else CONTROLLER
        head = Spikes(window=w, **meta)
        out.append(Frame.pack(head, self.name, dst, nxt, w.version, sent.astype(bool), 2))
        return out

    def _stamp_forward(
        self, home: _Homed, w: Window, x: np.ndarray, arrivals: Any
    ) -> tuple[dict[str, Any], list[Frame]]:
        """XBAR_READ and NEURON of every sample and step of a training window, then its
        spikes' NoC ops; the output layer's errors leave for the feedback group, and its
        local gradients may start."""
        layer, costs, b = home.plan, self.costs, w.version
        steps, size = self.plan.net.time_steps, x.shape[2]
        pipelined = self.plan.chip.pipeline.time_steps
        last = layer.index == len(self.plan.layers) - 1
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
                end = self.clock.run(costs.xbar(layer.index, rates[t]), ready, b, n, t)
                ends.append(self.clock.run(costs.neuron(layer.index), end, b, n, t))
            home.record_inputs[n] = rates
            home.active[n] = int(active[:, i].sum())
            home.neuron_end[n] = ends[-1]
            if not last:
                for t in range(steps):
                    sent[t].append(self.clock.run(noc, ends[t], b, n, t) if noc else ends[t])
            else:
                errors.append(self.clock.run(noc, ends[-1], b, n) if noc else ends[-1])
                jobs.append((n, ends[-1], home.active[n]))
        if not last:
            return {"ready_ps": [e for per_step in sent for e in per_step]}, []
        return {"error_ps": errors}, self._grad_jobs(home, jobs, b)

    # backward ---------------------------------------------------------------------------

    def _error(self, home: _Homed, frame: Frame) -> list[Frame]:
        e, w = frame.array(), frame.window
        expect(frame, (w.size, math.prod(home.plan.send_shape)), self.name)
        batch = self._batch(home, w)
        if batch.g is None:
            batch.g = np.zeros((w.total, *home.plan.send_shape))
        out: list[Frame] = []
        if isinstance(frame.header, Error):  # the output layer's own: ∂loss/∂s_L[t] = e/T
            e = output_spike_error(e, self.plan.net.time_steps)
        else:  # a hidden layer's g: its local gradients may start
            ready = frame.header.ready_ps
            jobs = []
            for i in range(w.size):
                n = w.base + w.first + i
                jobs.append((n, grad_ready_ps(home.neuron_end[n], ready[i]), home.active[n]))
            out += self._grad_jobs(home, jobs, w.version)
        batch.g[w.first : w.first + w.size] = e.reshape(w.size, *home.plan.send_shape)
        batch.error_rows += w.size
        return out + self._try_update(home, w.version)

    def _try_update(self, home: _Homed, version: int) -> list[Frame]:
        batch = home.batches.get(version)
        if batch is None or batch.forward_rows < batch.total or batch.error_rows < batch.total:
            return []
        del home.batches[version]
        layer = home.plan
        net = self.plan.net
        grad_s = spike_error(net, layer.net_index, batch.s, batch.g)
        spec = net.layers[layer.net_index]
        grad = local_gradient(
            spec, self.neuron, self.plan.algorithm, batch.h, batch.s, batch.x, grad_s
        )
        (delta,) = home.optimizer.step([grad])
        steps = update_steps(
            delta, layer.lsb, seed=self.plan.seed, layer=layer.index, event=batch.event
        )
        home.written[version] = [0, 0, 0]
        frames = []
        for pe in layer.pes:
            parts = [block_part(steps, layer.blocks[j]).ravel() for j in layer.blocks_of(pe)]
            head = Update(event=batch.event)
            data = np.concatenate(parts)[None, :]
            frames.append(Frame.pack(head, self.name, pe, layer.index, version, data))
        return frames

    def _written(self, home: _Homed, head: Written) -> list[Frame]:
        acks = home.written[head.version]
        acks[0] += 1
        acks[1] += head.cells_written
        acks[2] += head.pulses
        return self._try_write(home, head.version)

    def _try_write(self, home: _Homed, version: int) -> list[Frame]:
        """WRITE(l, b) once every PE core has programmed and every tile's last local
        gradient of the batch has ended; then the next batch may enter the layer."""
        layer = home.plan
        acks = home.written.get(version)
        ends = home.grad_end.get(home.last_sample.get(version, -1), {})
        grads = len(self.costs.grad_tiles(layer.index))
        if acks is None or acks[0] < len(layer.pes) or len(ends) < grads:
            return []
        del home.written[version]
        _, cells, pulses = acks
        fraction = cells / self.plan.mapping.layers[layer.index].cells
        per_cell = pulses / cells if cells else 0.0
        self.clock.run(
            self.costs.write(layer.index, fraction, per_cell), max(ends.values()), version
        )
        home.record_writes[version] = (fraction, per_cell)
        home.trained = home.last_sample.pop(version) + 1
        home.applied += 1
        for timing in (home.neuron_end, home.active, home.grad_end):  # bounded: forget the batch
            for n in [n for n in timing if n < home.trained]:
                del timing[n]
        return self._advance(home)

    # the gradient unit -------------------------------------------------------------------

    def _grad_jobs(self, home: _Homed, jobs: list[tuple[int, int, int]], batch: int) -> list[Frame]:
        """GRAD(l, n, k) for every gradient tile k of the layer: (sample, ready, active)."""
        layer = home.plan
        size = self.plan.net.time_steps * math.prod(layer.in_shape)
        for n, _, active in jobs:
            home.record_grad[n] = rate(active, size)
        out = []
        tiles = self.plan.mapping.layers[layer.index].tiles
        for k in self.costs.grad_tiles(layer.index):
            dst = tile_name(tiles[k])
            if dst == self.name:
                out += self._queue_grads(layer.index, k, jobs, size, batch)
                continue
            head = GradJobs(
                k=k,
                size=size,
                samples=[n for n, _, _ in jobs],
                ready_ps=[r for _, r, _ in jobs],
                active=[a for _, _, a in jobs],
            )
            out.append(Frame.pack(head, self.name, dst, layer.index, batch))
        return out

    def _remote_grads(self, layer: int, batch: int, head: GradJobs) -> list[Frame]:
        jobs = list(zip(head.samples, head.ready_ps, head.active, strict=True))
        if any(n < self.grad_next[0] for n, _, _ in jobs):
            raise ValueError(f"{self.name}: gradient jobs of samples already done")
        return self._queue_grads(layer, head.k, jobs, head.size, batch)

    def _queue_grads(self, layer: int, k: int, jobs, size: int, batch: int) -> list[Frame]:
        for n, ready, active in jobs:
            self.grad_jobs[(n, layer, k)] = (ready, rate(active, size), batch)
        return self._run_grad_unit()

    def _run_grad_unit(self) -> list[Frame]:
        """Stamp GRADs in the schedule's issue order: sample by sample, the output
        layer first, then the hidden layers, each layer's tiles in order."""
        done: dict[tuple[int, int], list[tuple[int, int]]] = {}
        n, i = self.grad_next
        while self.grad_order:
            layer, k = self.grad_order[i]
            job = self.grad_jobs.pop((n, layer, k), None)
            if job is None:
                break
            ready, r, b = job
            cost = self.costs.grad(layer, k, r, self.costs.error_steps())
            end = self.clock.run(cost, ready, b, n)
            done.setdefault((layer, k), []).append((n, end))
            i += 1
            if i == len(self.grad_order):
                n, i = n + 1, 0
        self.grad_next = (n, i)
        out = []
        for (layer, k), ends in done.items():
            home = self.plan.layers[layer].home
            if home == self.name:
                out += self._grads_done_local(self.homed[layer], k, ends)
                continue
            head = GradDone(k=k, samples=[n for n, _ in ends], ends_ps=[e for _, e in ends])
            out.append(Frame.pack(head, self.name, home, layer, -1))
        return out

    def _grads_done_local(self, home: _Homed, k: int, ends: list[tuple[int, int]]) -> list[Frame]:
        out = []
        for n, end in ends:
            if n >= home.trained:  # a late report of a written batch's sample is not needed
                home.grad_end.setdefault(n, {})[k] = end
        for version, last in list(home.last_sample.items()):
            if any(n == last for n, _ in ends):
                out += self._try_write(home, version)
        return out

    # feedback group ---------------------------------------------------------------------

    def _scatter_error(self, frame: Frame) -> list[Frame]:
        fb = self.plan.feedback
        assert fb is not None
        head = frame.header
        assert isinstance(head, Error)
        if head.ready_ps is None or len(head.ready_ps) != head.window.size:
            raise ValueError(f"{self.name}: the feedback group's error needs its ready_ps")
        e = frame.array()
        planes, _ = bit_planes(e, self.plan.chip.crossbar.error_bits)
        reads = planes.shape[0] * planes.shape[1]
        rates = [rate(int(planes[:, :, i].sum()), reads * e.shape[1]) for i in range(len(e))]
        self.fb_errors[head.window.seq] = (head.ready_ps, rates)
        return [frame.model_copy(update={"src": self.name, "dst": pe}) for pe in fb.pes]

    def _feedback_part(self, frame: Frame) -> list[Frame]:
        fb = self.plan.feedback
        assert fb is not None
        w = frame.window
        parts = self.fb_parts.setdefault(w.seq, [])
        parts.append(frame)
        if len(parts) < len(fb.pes):
            return []
        del self.fb_parts[w.seq]
        blocks: dict[int, np.ndarray] = {}
        for f in parts:
            data, offset = f.array(), 0  # (W, columns of the sender's blocks)
            for j in _blocks(f):
                width = fb.blocks[j].n_out
                blocks[j] = data[:, offset : offset + width]
                offset += width
        in_order = [blocks[j] for j in range(len(fb.blocks))]  # as ChipFeedback._read
        g = add_blocks(fb.blocks, in_order, w.size, fb.width)
        self.fb_done[w.seq] = (w, g * feedback_scale(fb.width))
        return self._run_feedback()

    def _run_feedback(self) -> list[Frame]:
        """FEEDBACK(n) in sample order, then each hidden layer's prefix of g."""
        out = []
        while self.fb_next in self.fb_done:
            w, g = self.fb_done.pop(self.fb_next)
            ready, rates = self.fb_errors.pop(self.fb_next)
            self.fb_next += 1
            hidden = self.plan.layers[:-1]
            arrive: list[list[int]] = [[] for _ in hidden]
            for i in range(w.size):
                self.record_errors[w.base + w.first + i] = rates[i]
                n = w.base + w.first + i
                end = self.clock.run(self.costs.feedback(rates[i]), ready[i], w.version, n)
                for layer in hidden:
                    noc = self.costs.noc_feedback(layer.index)
                    arrive[layer.index].append(
                        self.clock.run(noc, end, w.version, n) if noc else end
                    )
            for layer in hidden:
                head = Feedback(window=w, ready_ps=arrive[layer.index])
                prefix = g[:, : math.prod(layer.send_shape)]
                out.append(
                    Frame.pack(head, self.name, layer.home, layer.index, w.version, prefix)
                )
        return out

    # checkpoints ------------------------------------------------------------------------

    def settled(self, batches: int, samples: int) -> bool:
        """Nothing buffered or queued, ``batches`` updates written in every homed layer, the
        gradient unit and the feedback group through ``samples`` training samples."""
        homes = all(
            h.applied >= batches
            and not (h.inbox or h.psums or h.windows or h.batches or h.written or h.last_sample)
            for h in self.homed.values()
        )
        grads = not self.grad_jobs and (not self.grad_order or self.grad_next[0] >= samples)
        feedback = not (self.fb_parts or self.fb_errors or self.fb_done) and (
            not self.feedback_home or len(self.record_errors) >= samples
        )
        return homes and grads and feedback

    def state(self) -> dict[str, Any]:
        """What the run changed, when :meth:`settled`: optimizer moments, the clock, the
        progress counters and the activity record."""
        return {
            "homed": {
                i: {
                    "optimizer": h.optimizer.state_dict(),
                    "next_seq": h.next_seq,
                    "applied": h.applied,
                    "trained": h.trained,
                    "neuron_end": h.neuron_end,
                    "active": h.active,
                    "grad_end": h.grad_end,
                    "record_inputs": h.record_inputs,
                    "record_grad": h.record_grad,
                    "record_writes": h.record_writes,
                }
                for i, h in self.homed.items()
            },
            "clock": self.clock.state(),
            "grad_next": list(self.grad_next),
            "fb_next": self.fb_next,
            "record_errors": self.record_errors,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Take back :meth:`state` (of a tile of the same plan)."""
        saved = {int(i): h for i, h in state["homed"].items()}
        if set(saved) != set(self.homed):
            raise ValueError(
                f"{self.name}: saved layers {sorted(saved)}, the tile homes {sorted(self.homed)}"
            )
        for i, h in saved.items():
            home = self.homed[i] = _Homed(self.homed[i].plan, self.homed[i].optimizer)
            if h["optimizer"].get("name") != home.optimizer.name:
                raise ValueError(
                    f"{self.name}: layer {i}'s saved optimizer is {h['optimizer'].get('name')}, "
                    f"this run's is {home.optimizer.name}"
                )
            home.optimizer.load_state_dict(h["optimizer"])
            home.next_seq, home.applied = int(h["next_seq"]), int(h["applied"])
            home.trained = int(h["trained"])
            home.neuron_end = _ints(h["neuron_end"])
            home.active = _ints(h["active"])
            home.grad_end = {int(n): _ints(e) for n, e in h["grad_end"].items()}
            home.record_inputs = {int(n): list(r) for n, r in h["record_inputs"].items()}
            home.record_grad = {int(n): float(r) for n, r in h["record_grad"].items()}
            home.record_writes = {int(b): tuple(w) for b, w in h["record_writes"].items()}
        self.clock.restore(state["clock"])
        n, i = state["grad_next"]
        self.grad_next = (int(n), int(i))
        self.grad_jobs = {}
        self.fb_next = int(state["fb_next"])
        self.fb_parts, self.fb_errors, self.fb_done = {}, {}, {}
        self.record_errors = {int(n): float(r) for n, r in state["record_errors"].items()}

    def report(self) -> dict[str, Any]:
        """This tile's timeline totals and its part of the run's per-op activity record."""
        return {
            "name": self.name,
            "clock": self.clock.report(),
            "inputs": {i: h.record_inputs for i, h in self.homed.items()},
            "grads": {i: h.record_grad for i, h in self.homed.items()},
            "writes": {i: h.record_writes for i, h in self.homed.items()},
            "errors": self.record_errors,
        }


def _ints(d: dict[Any, Any]) -> dict[int, int]:
    return {int(k): int(v) for k, v in d.items()}


def _blocks(frame: Frame) -> list[int]:
    """The blocks whose columns a partial-sum frame holds, side by side."""
    head = frame.header
    assert isinstance(head, Psum)
    return head.blocks


def _ends(head: GradDone) -> list[tuple[int, int]]:
    return list(zip(head.samples, head.ends_ps, strict=True))
