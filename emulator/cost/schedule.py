"""The three-level PipeSDFA pipeline and the PipeLayer schedule: operations, a deterministic
list schedule and the analytic cost model (docs/timing-model.md).

One training segment is ``batches`` batches of B samples (a replayed run: its samples in
batches of B, the last possibly smaller), T steps each, on the weighted layers l = 0..L−1 of a
network mapped by :func:`emulator.physics.mapping.map_network` (pool layers fold into the next
layer's input). Every operation has a resource, a duration and an energy per component. An op
starts at max(its inputs' finish, its resource's free time); ops are issued in the fixed order
below and each resource serves them first come, first served in that order (no back-filling),
so the schedule is deterministic. Times are integer picoseconds: every op's duration is its
formula in ns rounded once to the nearest ps (:func:`ps`), then only integers are added and
compared, so any emulation that rounds each op the same way reproduces every time exactly.

Per-op costs: :class:`CostModel` composes every op's duration, energy per component (pJ) and
counters (:class:`OpCost`) from the physical rules of :mod:`emulator.cost.physical` (one
function per physical operation, used by both dataflows), from the op (kind, layer, tile) and
that op's own activity only: XBAR_READ(l, n, t) the fraction of layer l's inputs active at
step t of sample n; GRAD(l, n, k) sample n's mean input rate of layer l over the T steps;
FEEDBACK(n) and ERR(l, n, t) sample n's error bit rate; WRITE(l, b) and WRITE_T(l, b) batch
b's (fraction of layer l's cells written, mean pulses per written cell); NEURON and the NoC
ops none. :func:`simulate` (the fast path) evaluates every op at an :class:`Activity`'s
average rates (the chip's ``activity`` section where it has none); :func:`simulate_run` at
each op's own rates recorded in an :class:`OpActivity`. A distributed emulation that takes
each op's OpCost from the same CostModel call and follows the issue order below reproduces
simulate_run's times exactly.

Resources: ``xbar:l`` layer l's weight arrays (forward reads, its WRITE; with
``crossbar.transpose: bidirectional`` also its ERRs), ``neuron:l`` layer l's neuron-unit lanes
(a tile hosting two layers' cores updates both in parallel), ``grad:tK`` tile K's gradient
unit (shared by every layer on tile K), ``gradxbar:l`` layer l's morphable arrays
(``tile.grad_datapath: crossbar``), ``feedback`` the formed feedback group, ``xbarT:l`` layer
l's transposed copy (ERR and WRITE_T). NoC ops take ``noc:tA>tB`` and are contention-free
(their resource is never exclusive).

The ops, composed of the physical rules (``then``: one after the other, ``beside``: at once):

- XBAR_READ(l, n, t): an array read of one copy of W at the input rate, for every position
  (conv: the window positions; energy × positions, duration × ⌈positions / replicas⌉),
  beside the buffer writing the input frame and reading the positions' rows.
- NEURON(l, n, t): one neuron step of the layer's n_l neurons beside the buffer saving their
  membrane potentials (``tile.membrane_bits`` each): every step, in BOTH dataflows (SDFA's
  δ_l[t] = g_l ⊙ σ'(v_l[t]) needs v_l[t] after g_l arrives, after step T).
- NOC_*: a NoC transfer between the layers' first tiles (hops of the XY route, or the detour
  around dead links; same tile: free). Spikes are bit-packed (the receiving layer's input
  frame, after any pool: the sender pools); errors, projected errors and partial sums travel
  and are buffered as ``tile.value_bits`` values (``xb.error_bits`` is only the width they
  are quantised to when applied bit-serially to an array).
- FEEDBACK(n) (SDFA): a bit-serial read of the formed group with e (2·(error_bits − 1) sign
  planes at the error bit rate), beside e written into and read from the buffer; then g's
  prefix (the layer's feedback width, after its pools) to every hidden layer's first tile.
- ERR(l, n, t) (BPTT, l ≥ 1): a bit-serial read of Wᵀ with δ_l[t] (the same rule as FEEDBACK's
  read, on the layer's cells, every position), beside the buffer reading δ_l[t]; it turns
  δ_l[t] into the error of layer l−1's outputs.
- GRAD(l, n, k) (both): on the layer's home (k = 0) T backward neuron steps
  (δ_l[t] = err_l[t] ⊙ σ'(v_l[t])) beside the buffer reading the T input frames (input data
  reuse), the T membranes and the buffered error (SDFA: one value per output, g being the same
  at every step; BPTT: one per step; written on arrival and read once); then the weight
  gradient Σ_t δ_l[t]·s_{l−1}[t]ᵀ: ``digital``, T·n_l·rate·fan_in MACs split over the tiles
  holding the weights by the entries each holds; ``crossbar``, δ of every (step, position)
  written into morphable arrays (``error_bits`` values from the reset level) and one read per
  input with its spike train, the results added by the tile's adders. Counters
  ``reuse_saved_*``: what the re-read frames would cost again over the NoC from layer l−1.
- WRITE(l, b): write pulses into every replica's cells (rows in sequence, arrays in
  parallel); with ``crossbar.update: read_merge_write`` each row of one copy is read first.
  WRITE_T(l, b) (a dataflow reading Wᵀ from a copy): the same pulses into the copy, at once.
- Tile buffer: each access takes ⌈bits / ``tile.buffer_bus_bits``⌉ × ``buffer_latency_ns``
  (beside the op's work). A tile keeps, for every layer it homes and sample in flight (2 with
  the data level on), the T input frames, the T membranes and the buffered errors; what does
  not fit ``tile.buffer_kb`` spills (frames kept first, then membranes, then errors), and the
  spilled share of every access of that class crosses the NoC to the global buffer beside
  the corner router (0, 0) (:meth:`CostModel.buffer_need_bits`).

Dependencies and op order. Batches b = 0, 1, … in order; within batch b its samples n in
order (global ids 0..samples−1); per sample all forward ops layer by layer, then the backward.
:attr:`Schedule.ops` lists every op in issue order. Every exclusive resource serves its ops in
issue order, each starting at max(ready, the end of the previous op on that resource)
(:func:`start_ps`); a NoC op starts when ready. ready = the latest end of the ops it waits for
(0 if none) and of its sample's gate.

PipeSDFA, all three pipeline levels on (issue order; "←" = waits for):

1. Forward, l = 0..L−1: for t = 0..T−1, XBAR_READ(l,n,t) on ``xbar:l`` ← (l ≥ 1)
   NOC_SPIKES(l,n,t), then NEURON(l,n,t) on ``neuron:l`` ← XBAR_READ(l,n,t); then (l < L−1)
   NOC_SPIKES(l+1,n,t) for t = 0..T−1 on ``noc:tA>tB`` (A, B: layer l's and l+1's first
   tiles) ← NEURON(l,n,t). Layer 0's input is on its tile: XBAR_READ(0,n,t) waits for nothing
   (but ``xbar:0``). With time_steps off the only change: XBAR_READ(l,n,t), l ≥ 1, ←
   NOC_SPIKES(l,n,T−1) for every t (layer by layer; :func:`xbar_ready_ps`).
2. (With a feedback group, i.e. ≥ 1 hidden layer) NOC_ERROR(n) (output layer's first tile →
   the group's first tile) ← NEURON(L−1,n,T−1); FEEDBACK(n) on ``feedback`` ← NOC_ERROR(n);
   NOC_FEEDBACK(l,n) for l = 0..L−2 (the group's first tile → layer l's first tile) ←
   FEEDBACK(n).
3. GRAD(l,n,k) for l = L−1, 0, 1, …, L−2 (the output layer's error is ready first) and in
   each layer k over :meth:`CostModel.grad_tiles` (the tiles holding its weights, in order;
   the crossbar datapath: k = 0 only): the output layer's ← NEURON(L−1,n,T−1); a hidden
   layer's ← NEURON(l,n,T−1) and NOC_FEEDBACK(l,n). No layer-to-layer backward dependency.
4. After the batch's last sample n_B: WRITE(l,b) for l = 0..L−1 on ``xbar:l`` ← every
   GRAD(l,n_B,·) (then WRITE_T(l,b), if the layer has a transposed copy, ← the same).
   Batch b+1's ops of layer l wait for WRITE(l,b) only through ``xbar:l`` (issued before
   them).

So ``xbar:l`` serves XBAR_READ(l,n,t) for the batch's samples and steps in order, then
WRITE(l,b), then batch b+1's; ``neuron:l`` NEURON(l,n,t) in (n, t) order; ``feedback``
FEEDBACK(n) in sample order; ``grad:tK`` the GRADs on tile K in step 3's order, sample by
sample (a tile may serve several layers). With a level off (sample n's gate applies to every
XBAR_READ(·,n,·)): data off, the gate of a sample that is not its batch's first is the end of
every GRAD(·,n−1,·); batch off, the gate of batch b+1's samples (data on: all of them; data
off: its first) is the end of every WRITE(·,b), and every WRITE(·,b) ← every GRAD(·,n_B,·).

PipeLayer (BPTT): per sample the forward (time steps pipelined), then GRAD(L−1,n,·) ←
NEURON(L−1,n,T−1); then for l = L−1..1, for t = T−1..0: ERR(l,n,t) on ``xbarT:l`` (or
``xbar:l``, bidirectional) ← NEURON(L−1,n,T−1) (l = L−1) or NOC_BACKPROP(l,n,t) (the error
from above), then NOC_BACKPROP(l−1,n,t) ← ERR(l,n,t) (ERR(l,n,t+1) precedes it on its
arrays), then GRAD(l−1,n,·) ← NOC_BACKPROP(l−1,n,0). Updates only at batch end: every
WRITE(·,b) and WRITE_T(·,b) ← all of batch b's GRADs, and the gate of batch b+1's samples
(data on: all of them; data off: its first) is every write's end (the pipeline drains).
data off: the gate of a sample that is not its batch's first is the end of every
GRAD(·,n−1). PipeLayer ignores
``chip.pipeline`` except ``data`` (its forward is time-step pipelined, as PipeSDFA's).

Totals: the segment ends at the latest op end (:attr:`Schedule.time_ps_total`). Energy per
component and counters are Σ, over the distinct OpCosts in order of first issue (one per
CostModel method and arguments, so one per op template under :func:`simulate`), of the
number of ops issued × the OpCost's value. Every energy is ≥ 0, so any order of summing the
same N op energies (e.g. per op, per core, then over cores) lies within about N·2⁻⁵³ relative
of the exact sum, and two orders within twice that: below 1e-9 for N up to 4·10⁶ ops per
component (typically √N·2⁻⁵³, ~1e-13). Times need no tolerance.

Reported: the batch period = end of the last batch's writes − end of the previous batch's
(the first batch's: from 0), per sample = period / the last batch's samples (B unless a
replayed run's last batch is smaller); energy per sample = segment energy / samples; cycles =
round(period / clock period); and the segment totals above.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from emulator.cost.activity import Activity, OpActivity, error_bit_rate, write_activity
from emulator.cost.area import area_mm2, leakage_mw, static_energy_pj
from emulator.cost.model import CostModel
from emulator.cost.timeline import OpCost, Timeline, is_exclusive
from emulator.limits import check_fits, schedule_need
from emulator.physics.mapping import ChipMapping
from emulator.spec import ChipSpec, NetworkSpec, PipelineSpec

COMPONENTS = (
    "read",
    "dac",
    "readout",
    "shift_add",
    "neuron",
    "noc",
    "buffer",
    "spill",
    "feedback",
    "error_backprop",
    "grad",
    "write",
    "static",
)
"""Energy components, in report order (``static``: leakage × time, :mod:`emulator.cost.area`)."""

COUNTERS = (
    "ops",
    "array_reads",
    "conversions",
    "macs",
    "cells_written",
    "pulses",
    "noc_bits",
    "buffer_bits",
    "spilled_bits",
    "grad_cells_written",
    "grad_pulses",
    "reuse_saved_bits",
    "reuse_saved_pj",
)
"""Counters of a segment (totals over every op)."""

# ------------------------------------------------------------------------------ ops


@dataclass(slots=True)
class Op:
    """One scheduled operation; times in integer ps, energy per component in pJ.

    ``layer`` is the layer served (FEEDBACK and NOC_ERROR: the feedback group's number L; NoC
    ops: the receiving layer); ``step`` is -1 for per-sample ops, ``sample`` -1 for WRITE.
    ``energy_pj`` is its :class:`OpCost`'s (read-only, shared by every op of that cost).
    """

    kind: str
    layer: int
    batch: int
    sample: int
    step: int
    resource: str
    start_ps: int
    end_ps: int
    energy_pj: Mapping[str, float]

    @property
    def start_ns(self) -> float:
        """Start time, ns."""
        return self.start_ps / 1000

    @property
    def end_ns(self) -> float:
        """End time, ns."""
        return self.end_ps / 1000

    @property
    def exclusive(self) -> bool:
        """Whether the op holds its resource (NoC ops do not: contention-free)."""
        return is_exclusive(self.resource)


def xbar_ready_ps(
    spikes_in_ps: Sequence[int] | None, step: int, *, time_steps: bool, gate_ps: int = 0
) -> int:
    """When XBAR_READ(l, n, ``step``) may start, resources aside (module doc, issue order).

    ``spikes_in_ps`` are the ends of NOC_SPIKES(l, n, t) for t = 0..T−1 (None for layer 0,
    whose input is on its tile). Time steps pipelined: step t waits for its own spikes; off:
    every step waits for step T−1's (layer by layer). ``gate_ps`` is the sample's gate (0 with
    the data and batch levels on).
    """
    if spikes_in_ps is None:
        return gate_ps
    arrival = spikes_in_ps[step] if time_steps else spikes_in_ps[-1]
    return arrival if arrival > gate_ps else gate_ps


def grad_ready_ps(neuron_end_ps: int, feedback_ps: int) -> int:
    """When GRAD(l, n, ·) may start, resources aside: after sample n's last NEURON(l, n, T−1)
    and the arrival of its error (PipeSDFA: NOC_FEEDBACK(l, n); the output layer: 0)."""
    return neuron_end_ps if neuron_end_ps > feedback_ps else feedback_ps


def grad_order(layers: int) -> tuple[int, ...]:
    """The layers' GRADs of one sample in issue order: the output layer first (its error is
    ready first), then the hidden layers 0..L−2."""
    return (layers - 1, *range(layers - 1))


# -------------------------------------------------------------------------- timeline


class _Issue:
    """The analytic model's issue of ops on one :class:`Timeline`, with the op list."""

    GUARD_OPS = 500_000
    """Ops kept before ``guard`` runs (≈ 85 MB): below it no schedule is checked, so the
    common case pays nothing; at it, one that would not fit memory stops there."""

    def __init__(self, keep_ops: bool = True, guard: Callable[[], None] | None = None) -> None:
        self.timeline = Timeline()
        self.ops: list[Op] = []
        self.keep_ops = keep_ops
        self.guard = guard

    def run(self, cost: OpCost, batch: int, sample: int, step: int, ready: int) -> int:
        """Issue one op of cost ``cost``; returns its end time."""
        start = self.timeline.stamp(cost, ready)
        end = start + cost.dur_ps
        if self.keep_ops:
            self.ops.append(
                Op(
                    cost.kind,
                    cost.layer,
                    batch,
                    sample,
                    step,
                    cost.resource,
                    start,
                    end,
                    cost.energy_pj,
                )
            )
            if len(self.ops) == self.GUARD_OPS and self.guard is not None:
                self.guard()
        return end


class _Rates(Protocol):
    """The activity of each op, by its indices: averages or a recorded run."""

    def input_rates(self, layer: int, sample: int) -> Iterable[float]: ...
    def grad_rate(self, layer: int, sample: int) -> float: ...
    def error_bit_rate(self, sample: int) -> float: ...
    def write(self, layer: int, batch: int) -> tuple[float, float]: ...


class _Average:
    """Every op at an :class:`Activity`'s average rates (the fast path)."""

    def __init__(self, chip: ChipSpec, net: NetworkSpec, act: Activity) -> None:
        self._rates = act.input_rates  # a layer's input rate, every step; its GRAD's too
        self._steps = net.time_steps
        self._ebr = error_bit_rate(chip, act)
        self._writes = [write_activity(chip, act, i) for i in range(len(self._rates))]

    def input_rates(self, layer: int, sample: int) -> Iterable[float]:
        return itertools.repeat(self._rates[layer], self._steps)

    def grad_rate(self, layer: int, sample: int) -> float:
        return self._rates[layer]

    def error_bit_rate(self, sample: int) -> float:
        return self._ebr

    def write(self, layer: int, batch: int) -> tuple[float, float]:
        return self._writes[layer]


class _Replay:
    """Every op at its own recorded rates."""

    def __init__(self, record: OpActivity) -> None:
        self._r = record

    def input_rates(self, layer: int, sample: int) -> Iterable[float]:
        return self._r.input_rates[sample][layer]

    def grad_rate(self, layer: int, sample: int) -> float:
        return self._r.grad_rates[sample][layer]

    def error_bit_rate(self, sample: int) -> float:
        return self._r.error_bit_rates[sample]

    def write(self, layer: int, batch: int) -> tuple[float, float]:
        return self._r.writes[batch][layer]


# ----------------------------------------------------------------------------- batches


def _forward_sample(
    tl: _Issue, cm: CostModel, rates: _Rates, steps_pipelined: bool, b: int, n: int, gate: int
) -> list[int]:
    """Issue sample n's forward; returns each layer's last NEURON end."""
    ends: list[int] = []
    spikes_in: list[int] | None = None  # layer 0's input is on its tile
    for i in range(cm.layers):
        neuron, out = cm.neuron(i), []
        for t, rate in enumerate(rates.input_rates(i, n)):
            ready = xbar_ready_ps(spikes_in, t, time_steps=steps_pipelined, gate_ps=gate)
            end = tl.run(cm.xbar(i, rate), b, n, t, ready)
            out.append(tl.run(neuron, b, n, t, end))
        ends.append(out[-1])
        if i + 1 < cm.layers:
            spikes = cm.noc_spikes(i + 1)
            assert spikes is not None
            spikes_in = [tl.run(spikes, b, n, t, e) for t, e in enumerate(out)]
    return ends


def _pipesdfa_batch(
    tl: _Issue,
    cm: CostModel,
    rates: _Rates,
    pipe: PipelineSpec,
    b: int,
    samples: range,
    gate: int,
) -> tuple[int, int]:
    """One PipeSDFA batch; returns (the time batch b+1 may start, the end of its writes)."""
    layers, last = cm.layers, cm.layers - 1
    data_gate, last_grad = gate, [0] * layers
    error_out = cm.noc_error()
    for n in samples:
        ends = _forward_sample(tl, cm, rates, pipe.time_steps, b, n, data_gate)
        g_ready = [0] * layers
        if error_out is not None:
            feedback = cm.feedback(rates.error_bit_rate(n))
            assert feedback is not None
            done = tl.run(feedback, b, n, -1, tl.run(error_out, b, n, -1, ends[last]))
            for i in range(last):
                g_in = cm.noc_feedback(i)
                assert g_in is not None
                g_ready[i] = tl.run(g_in, b, n, -1, done)
        for i in grad_order(layers):
            last_grad[i] = _grads(tl, cm, rates, b, n, i, grad_ready_ps(ends[i], g_ready[i]))
        data_gate = gate if pipe.data else max(last_grad)
    all_grads = max(last_grad)
    ends = [
        _writes(tl, cm, rates, b, i, last_grad[i] if pipe.batch else all_grads)
        for i in range(layers)
    ]
    return (0 if pipe.batch else max(ends)), max(ends)


def _grads(tl: _Issue, cm: CostModel, rates: _Rates, b: int, n: int, layer: int, ready: int) -> int:
    """GRAD(layer, n, k) on each of the layer's gradient tiles; returns the latest end."""
    rate, steps = rates.grad_rate(layer, n), cm.error_steps()
    return max(
        tl.run(cm.grad(layer, k, rate, steps), b, n, -1, ready) for k in cm.grad_tiles(layer)
    )


def _writes(tl: _Issue, cm: CostModel, rates: _Rates, b: int, layer: int, ready: int) -> int:
    """WRITE(layer, b), and WRITE_T into a transposed copy if the layer has one."""
    fraction, pulses = rates.write(layer, b)
    end = tl.run(cm.write(layer, fraction, pulses), b, -1, -1, ready)
    copy = cm.write_transpose(layer, fraction, pulses)
    return max(end, tl.run(copy, b, -1, -1, ready)) if copy is not None else end


def _pipelayer_batch(
    tl: _Issue,
    cm: CostModel,
    rates: _Rates,
    pipe: PipelineSpec,
    b: int,
    samples: range,
    gate: int,
) -> tuple[int, int]:
    """One PipeLayer batch (BPTT); returns (the time batch b+1 may start, the writes' end):
    the same, since the pipeline drains."""
    last, t_steps = cm.layers - 1, cm.net.time_steps
    data_gate, grad_end = gate, 0
    for n in samples:
        ends = _forward_sample(tl, cm, rates, True, b, n, data_gate)
        ebr = rates.error_bit_rate(n)
        arrivals = [ends[last]] * t_steps  # error of the output layer's spikes, per step
        sample_grads = [_grads(tl, cm, rates, b, n, last, ends[last])]
        for i in range(last, 0, -1):
            err, err_out = cm.err(i, ebr), cm.noc_backprop(i - 1)
            assert err is not None and err_out is not None
            back = [0] * t_steps
            for t in range(t_steps - 1, -1, -1):
                back[t] = tl.run(err_out, b, n, t, tl.run(err, b, n, t, arrivals[t]))
            arrivals = back
            sample_grads.append(_grads(tl, cm, rates, b, n, i - 1, back[0]))
        grad_end = max(grad_end, *sample_grads)
        data_gate = gate if pipe.data else max(sample_grads)
    end = max(_writes(tl, cm, rates, b, i, grad_end) for i in range(cm.layers))
    return end, end


def _inference_batch(
    tl: _Issue,
    cm: CostModel,
    rates: _Rates,
    pipe: PipelineSpec,
    b: int,
    samples: range,
    gate: int,
) -> tuple[int, int]:
    """One inference batch: every sample's forward and nothing learnt (no error, gradient or
    write); the next sample enters as soon as layer 1 is free (data level on) or once the
    last layer is done (off). Returns (the time batch b+1 may start, the batch's end)."""
    data_gate, end = gate, gate
    for n in samples:
        last = _forward_sample(tl, cm, rates, pipe.time_steps, b, n, data_gate)[-1]
        end = max(end, last)
        data_gate = gate if pipe.data else last
    return (0 if pipe.batch else end), end


_BatchLoop = Callable[[_Issue, CostModel, _Rates, PipelineSpec, int, range, int], tuple[int, int]]

DATAFLOWS: dict[str, _BatchLoop] = {
    "pipesdfa": _pipesdfa_batch,
    "pipelayer": _pipelayer_batch,
    "inference": _inference_batch,
}
"""The one place the dataflows' schedules differ: the batch loop per ``chip.dataflow``
(their op costs all come from :class:`CostModel`)."""


# ---------------------------------------------------------------------------- schedule


@dataclass
class Schedule:
    """A simulated training segment and its analytic totals.

    ``ops`` are in issue order. ``batch`` is the samples per batch (the last of ``batches``
    may hold fewer; ``samples`` in all). Segment totals: ``time_ps_total`` (the latest op
    end), ``energy_pj_total`` per component (``static``: the powered leakage over that time)
    and ``counters``; per sample: energy / samples, time = the last batch's period / its
    samples. ``area_mm2`` is the chip's area by part, ``leakage_mw`` its powered leakage
    (:mod:`emulator.cost.area`).
    """

    ops: list[Op]
    mapping: ChipMapping
    batch: int
    batches: int
    batch_end_ns: list[float]
    time_ns_per_batch: float
    time_ns_per_sample: float
    energy_pj_per_sample: dict[str, float]
    total_pj_per_sample: float
    cycles: int
    counters: dict[str, float]
    samples: int = 0
    batch_end_ps: list[int] = field(default_factory=list)
    time_ps_total: int = 0
    energy_pj_total: dict[str, float] = field(default_factory=dict)
    area_mm2: dict[str, float] = field(default_factory=dict)
    leakage_mw: float = 0.0

    @property
    def time_ns_total(self) -> float:
        """End of the segment's last op, ns."""
        return self.time_ps_total / 1000

    def busy_ns(self) -> dict[str, float]:
        """Busy time of every exclusive resource over the segment, ns."""
        busy: dict[str, int] = {}
        for op in self.ops:
            if op.exclusive:
                busy[op.resource] = busy.get(op.resource, 0) + op.end_ps - op.start_ps
        return {k: v / 1000 for k, v in busy.items()}

    def summary(self) -> dict[str, Any]:
        """The JSON-able numbers (no op list)."""
        return {
            "time_ns_per_batch": self.time_ns_per_batch,
            "time_ns_per_sample": self.time_ns_per_sample,
            "energy_pj_per_sample": self.total_pj_per_sample,
            "energy_breakdown_pj": dict(self.energy_pj_per_sample),
            "cycles": self.cycles,
            "counters": dict(self.counters),
            "area_mm2": sum(self.area_mm2.values()),
            "area_breakdown_mm2": dict(self.area_mm2),
            "leakage_mw": self.leakage_mw,
        }


def _schedule(
    cm: CostModel, rates: _Rates, batch: int, sizes: list[int], keep_ops: bool = True
) -> Schedule:
    """Issue every batch (``sizes[b]`` samples each) and total the costs (module doc)."""
    chip = cm.chip
    run_batch = DATAFLOWS[chip.dataflow]
    guard = functools.partial(check_schedule, chip, cm.net, sizes)
    tl, gate, batch_end, first = _Issue(keep_ops, guard), 0, [], 0
    for b, size in enumerate(sizes):
        gate, end = run_batch(tl, cm, rates, chip.pipeline, b, range(first, first + size), gate)
        batch_end.append(end)
        first += size
    period = batch_end[-1] - (batch_end[-2] if len(sizes) > 1 else 0)
    energy = dict.fromkeys(COMPONENTS, 0.0) | tl.timeline.energy
    energy["static"] = static_energy_pj(chip, cm.net, cm.mapping, tl.timeline.end / 1000)
    counters = dict.fromkeys(COUNTERS, 0.0) | tl.timeline.counters
    counters["ops"] = float(tl.timeline.ops)
    per_sample = {k: v / first for k, v in energy.items()}
    return Schedule(
        ops=tl.ops,
        mapping=cm.mapping,
        batch=batch,
        batches=len(sizes),
        batch_end_ns=[e / 1000 for e in batch_end],
        time_ns_per_batch=period / 1000,
        time_ns_per_sample=period / 1000 / sizes[-1],
        energy_pj_per_sample=per_sample,
        total_pj_per_sample=sum(per_sample.values()),
        cycles=round(period / 1000 * chip.clock_mhz / 1000),
        counters=counters,
        samples=first,
        batch_end_ps=batch_end,
        time_ps_total=tl.timeline.end,
        energy_pj_total=energy,
        area_mm2=area_mm2(chip, cm.net, cm.mapping),
        leakage_mw=sum(leakage_mw(chip, cm.net, cm.mapping).values()),
    )


def op_count(chip: ChipSpec, net: NetworkSpec, sizes: Sequence[int]) -> int:
    """Ops a schedule of batches of ``sizes`` samples issues, counted without issuing them.

    Every batch loop issues a·T + b ops per sample and c per batch (one op per layer and time
    step at most, by construction), so schedules of a one- and a two-step copy of ``net``, of
    one and two samples, give a, b and c (the batch loops are the only copy of what is issued).
    """

    key = (chip.model_dump_json(), net.model_copy(update={"time_steps": 1}).model_dump_json())
    per_step, per_sample, per_batch = _op_terms(key)
    return sum(sizes) * (per_step * net.time_steps + per_sample) + len(sizes) * per_batch


@functools.lru_cache(maxsize=256)
def _op_terms(key: tuple[str, str]) -> tuple[int, int, int]:
    """(a, b, c) of :func:`op_count` for the chip and network JSON in ``key``."""
    chip = ChipSpec.model_validate_json(key[0])
    net = NetworkSpec.model_validate_json(key[1])

    def ops(steps: int, batch_sizes: list[int]) -> int:
        small = net.model_copy(update={"time_steps": steps})
        rates = _Average(chip, small, Activity.uniform(small, 0.5))
        schedule = _schedule(CostModel(chip, small), rates, batch_sizes[0], batch_sizes, False)
        return int(schedule.counters["ops"])

    one, per_step = ops(1, [1]), ops(2, [1]) - ops(1, [1])
    per_sample = ops(1, [2]) - one - per_step
    return per_step, per_sample, one - per_step - per_sample


def check_schedule(chip: ChipSpec, net: NetworkSpec, sizes: Sequence[int]) -> None:
    """Refuse (LimitError) a schedule whose ops would not fit this machine's memory (a run
    checks its replay before training; a schedule checks itself once it keeps
    ``_Issue.GUARD_OPS`` ops)."""
    ops = op_count(chip, net, sizes)
    what = f"the schedule of {len(sizes)} batches ({sum(sizes):,} samples) on {chip.name}"
    check_fits([schedule_need(ops, what, net.time_steps)])


def simulate(
    chip: ChipSpec,
    net: NetworkSpec,
    activity: Activity,
    *,
    batch: int,
    batches: int = 2,
    keep_ops: bool = True,
) -> Schedule:
    """Schedule ``batches`` batches of ``batch`` samples of ``net`` on ``chip``, every op at
    ``activity``'s average rates (the fast path; module doc). ``keep_ops=False`` leaves
    :attr:`Schedule.ops` empty (totals only: faster for sweeps)."""
    if batch < 1 or batches < 1:
        raise ValueError(f"batch ({batch}) and batches ({batches}) must be positive")
    activity.check(net)
    sizes = [batch] * batches
    cm = CostModel(chip, net)
    return _schedule(cm, _Average(chip, net, activity), batch, sizes, keep_ops)


def simulate_run(
    chip: ChipSpec, net: NetworkSpec, record: OpActivity, *, costs: CostModel | None = None
) -> Schedule:
    """The analytic model replayed on an emulated run: every op's cost from :class:`CostModel`
    at that op's own recorded activity, batches of ``record.batch`` samples (the last one
    possibly smaller), sample ids 0..samples−1, batch ids 0.. (module doc). ``costs``: a
    CostModel of the same chip and network to reuse (its cache too)."""
    record.check(net)
    if costs is None:
        costs = CostModel(chip, net)
    elif costs.chip != chip or costs.net != net:
        raise ValueError("simulate_run: costs is a CostModel of another chip or network")
    return _schedule(costs, _Replay(record), record.batch, record.sizes())
