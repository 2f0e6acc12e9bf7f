"""The three-level PipeSDFA pipeline and the PipeLayer schedule: operations, a deterministic
list schedule and the analytic cost model (DESIGN.md §3).

One training segment is ``batches`` batches of B samples (a replayed run: its samples in
batches of B, the last possibly smaller), T steps each, on the weighted layers l = 0..L−1 of a
network mapped by :func:`emulator.physics.mapping.map_network` (pool layers fold into the
next layer's input). Every operation has a resource, a duration and an energy per
component. An op starts at max(its inputs' finish, its resource's free time); ops are issued in the fixed order below
and each resource serves them first come, first served in that order (no back-filling), so the
schedule is deterministic. Times are integer picoseconds: every op's duration is its formula in
ns rounded once to the nearest ps (:func:`ps`), then only integers are added and compared, so
any emulation that rounds each op the same way reproduces every time exactly.

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
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Annotated, Any, Protocol, TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field, model_validator

from emulator.cost import noc
from emulator.cost.physical import (
    Arrays,
    Cost,
    Spill,
    array_read,
    buffer_access,
    error_planes,
    grad_macs,
    neuron_steps,
    transfer,
    write_rows,
)
from emulator.physics.mapping import READS_TRANSPOSE, ChipMapping, LayerMapping, map_network
from emulator.spec import ChipSpec, NetworkSpec, PipelineSpec, feedback_widths, layer_shapes

COMPONENTS = (
    "read",
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
)
"""Energy components, in report order."""

BUFFER_CLASSES = ("frames", "membranes", "errors")
"""What a tile buffer keeps, in the order it holds them when it cannot hold everything."""

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

Rate = Annotated[float, Field(ge=0.0, le=1.0)]

# ------------------------------------------------------------------------------- activity


class Activity(BaseModel):
    """Spike and write activity of a network; also the file ``pipesdfa train --activity-out``.

    Lists hold one value per weighted layer, in order.
    """

    model_config = ConfigDict(extra="forbid")

    network: str = Field(description="Name of the network the activity was measured on.")
    input_rates: list[Rate] = Field(
        description="Mean fraction of each layer's input spikes that are 1, per step."
    )
    output_rates: list[Rate] = Field(description="Mean firing rate of each layer's neurons.")
    write_fraction: list[Rate] | None = Field(
        None,
        description="Fraction of each layer's cells written per batch (default: the chip's "
        "activity.write_fraction).",
    )
    pulses_per_cell: list[Annotated[float, Field(ge=0.0)]] | None = Field(
        None,
        description="Mean programming pulses per written cell (default: the chip's "
        "activity.pulses_per_cell, else one level step).",
    )
    error_bit_rate: Rate | None = Field(
        None,
        description="Fraction of rows active in one bit-plane read of a multi-bit error "
        "(default: the chip's activity.error_bit_rate).",
    )

    @model_validator(mode="after")
    def _lengths(self) -> Activity:
        n = len(self.input_rates)
        for name in ("output_rates", "write_fraction", "pulses_per_cell"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(f"{name}: {len(value)} values, but input_rates has {n}")
        return self

    @classmethod
    def uniform(cls, net: NetworkSpec, rate: float) -> Activity:
        """Every layer's inputs and neurons spike at ``rate``; default write activity."""
        n = len(_weighted(net))
        return cls(network=net.name, input_rates=[rate] * n, output_rates=[rate] * n)

    def check(self, net: NetworkSpec) -> None:
        """Raise ValueError unless this activity was measured on ``net``."""
        if self.network != net.name:
            raise ValueError(f"activity: measured on {self.network!r}, not on {net.name!r}")
        if len(self.input_rates) != len(_weighted(net)):
            raise ValueError(
                f"activity: {len(self.input_rates)} layers, but {net.name} has "
                f"{len(_weighted(net))} weighted layers"
            )


NonNegFloat = Annotated[float, Field(ge=0.0)]


def write_activity(chip: ChipSpec, act: Activity, layer: int) -> tuple[float, float]:
    """(fraction of cells written per batch, mean pulses per written cell) of ``layer`` under
    ``act``: its measured values, else the chip's assumed ones (``chip.activity``)."""
    fraction = chip.activity.write_fraction
    if act.write_fraction:
        fraction = act.write_fraction[layer]
    pulses = act.pulses_per_cell[layer] if act.pulses_per_cell else default_pulses_per_cell(chip)
    return fraction, pulses


def error_bit_rate(chip: ChipSpec, act: Activity) -> float:
    """The error bit rate of ``act``, else the chip's assumed one."""
    return chip.activity.error_bit_rate if act.error_bit_rate is None else act.error_bit_rate


class OpActivity(BaseModel):
    """The activity of every op of one emulated run (JSON-able), replayed by
    :func:`simulate_run`: samples 0..samples−1 in batches of ``batch`` (the last may be
    smaller); layers are weighted layers, in order."""

    model_config = ConfigDict(extra="forbid")

    network: str = Field(description="Name of the network the run trained.")
    batch: int = Field(ge=1, description="Samples per batch (the last batch may hold fewer).")
    samples: int = Field(ge=1, description="Samples in the run.")
    input_rates: list[list[list[Rate]]] = Field(
        description="[sample][layer][step]: fraction of the layer's inputs active (XBAR_READ)."
    )
    grad_rates: list[list[Rate]] = Field(
        description="[sample][layer]: the sample's mean input rate over the steps (GRAD)."
    )
    error_bit_rates: list[Rate] = Field(
        description="[sample]: fraction of rows active per bit-plane read of the error "
        "(FEEDBACK; PipeLayer: ERR and GRAD)."
    )
    writes: list[list[tuple[Rate, NonNegFloat]]] = Field(
        description="[batch][layer]: (fraction of the layer's cells written, mean pulses per "
        "written cell) of the batch's WRITE."
    )
    batch_sizes: list[Annotated[int, Field(ge=1)]] | None = Field(
        None,
        description="Samples of each batch when not all but the last hold ``batch`` (a run "
        "of several epochs: each epoch's last batch may be smaller); they sum to samples.",
    )

    def sizes(self) -> list[int]:
        """Samples of every batch, in order."""
        if self.batch_sizes is not None:
            return list(self.batch_sizes)
        return [min(self.batch, self.samples - s) for s in range(0, self.samples, self.batch)]

    @model_validator(mode="after")
    def _lengths(self) -> OpActivity:
        for name in ("input_rates", "grad_rates", "error_bit_rates"):
            if len(getattr(self, name)) != self.samples:
                raise ValueError(f"{name}: {len(getattr(self, name))} samples, not {self.samples}")
        if self.batch_sizes is not None and sum(self.batch_sizes) != self.samples:
            raise ValueError(
                f"batch_sizes: they sum to {sum(self.batch_sizes)}, not {self.samples}"
            )
        batches = len(self.sizes())
        if len(self.writes) != batches:
            raise ValueError(f"writes: {len(self.writes)} batches, not {batches}")
        layers = len(self.input_rates[0])
        for name in ("input_rates", "grad_rates", "writes"):
            for i, row in enumerate(getattr(self, name)):
                if len(row) != layers:
                    raise ValueError(f"{name}[{i}]: {len(row)} layers, not {layers}")
        return self

    def check(self, net: NetworkSpec) -> None:
        """Raise ValueError unless this record fits ``net`` (name, layers, time steps)."""
        if self.network != net.name:
            raise ValueError(f"record: of {self.network!r}, not of {net.name!r}")
        layers = len(_weighted(net))
        if len(self.input_rates[0]) != layers:
            raise ValueError(
                f"record: {len(self.input_rates[0])} layers, but {net.name} has {layers} "
                f"weighted layers"
            )
        for n, sample in enumerate(self.input_rates):
            for i, steps in enumerate(sample):
                if len(steps) != net.time_steps:
                    raise ValueError(
                        f"record: input_rates[{n}][{i}] has {len(steps)} steps, not "
                        f"{net.time_steps}"
                    )

    @classmethod
    def from_activity(
        cls, chip: ChipSpec, net: NetworkSpec, activity: Activity, *, batch: int, samples: int
    ) -> OpActivity:
        """A run whose every op has ``activity``'s average rates (its default writes on
        ``chip``): :func:`simulate_run` on it reproduces :func:`simulate`."""
        activity.check(net)
        layers = range(len(activity.input_rates))
        steps = [[rate] * net.time_steps for rate in activity.input_rates]
        writes = [write_activity(chip, activity, i) for i in layers]
        return cls(
            network=net.name,
            batch=batch,
            samples=samples,
            input_rates=[[list(s) for s in steps] for _ in range(samples)],
            grad_rates=[list(activity.input_rates) for _ in range(samples)],
            error_bit_rates=[error_bit_rate(chip, activity)] * samples,
            writes=[list(writes) for _ in range(-(-samples // batch))],
        )


def _weighted(net: NetworkSpec) -> list[int]:
    return [i for i, layer in enumerate(net.layers) if layer.type != "pool"]


# ---------------------------------------------------------------------------- cost model


def ps(ns: float) -> int:
    """A duration in ns as integer picoseconds (rounded once, to the nearest)."""
    return round(ns * 1000)


def hops(mapping: ChipMapping, tile_a: int, tile_b: int) -> int:
    """Router hops between two tiles' mesh nodes: the XY route's (the Manhattan distance),
    or the detour's around dead links (:func:`emulator.noc.route`)."""
    a, b = mapping.positions[tile_a], mapping.positions[tile_b]
    return len(noc.route(a, b, mapping.chip))


def default_pulses_per_cell(chip: ChipSpec) -> float:
    """Pulses per written cell without a measured value: ``activity.pulses_per_cell``, else
    one cell level step in identical pulses, (pulse_levels − 1)/(2^cell_bits − 1)."""
    if chip.activity.pulses_per_cell is not None:
        return chip.activity.pulses_per_cell
    return (chip.device.pulse_levels - 1) / (2**chip.crossbar.cell_bits - 1)


def fresh_pulses_per_cell(chip: ChipSpec) -> float:
    """Mean pulses to program a fresh multi-bit value from the reset level: half the pulse
    levels (uniformly distributed levels; an intermediate write of the crossbar datapath)."""
    return (chip.device.pulse_levels - 1) / 2


def local_grad_macs(net: NetworkSpec, unit: LayerMapping, input_rate: float) -> float:
    """T·n_l·rate·fan_in additions of the weight gradient Σ_t δ_l[t]·s_{l−1}[t]ᵀ."""
    return net.time_steps * unit.neurons * input_rate * unit.n_in


def weight_arrays(chip: ChipSpec, unit: LayerMapping) -> Arrays:
    """The arrays of one copy of a layer's W (or of the feedback group: a pair per entry)."""
    feedback = unit.kind == "feedback"
    slices = 1 if feedback else chip.crossbar.slices
    return Arrays(
        rows=unit.rows,
        columns=unit.columns,
        row_blocks=unit.row_blocks,
        array_rows=unit.array_rows,
        array_columns=unit.array_columns,
        count=unit.feedback_arrays if feedback else unit.block_arrays,
        cells_per_column=2 * slices,
        slices=slices,
    )


def delta_arrays(chip: ChipSpec, net: NetworkSpec, unit: LayerMapping) -> Arrays:
    """The crossbar datapath's morphable arrays of one sample of ``unit``: δ of every (step,
    output position) in a row, one logical column per output channel, each value
    ``error_bits`` sign-magnitude on ⌈(error_bits − 1)/cell_bits⌉ cell pairs."""
    xb = chip.crossbar
    slices = -(-(xb.error_bits - 1) // xb.cell_bits)
    per_array = max(1, xb.cols // (2 * slices))
    rows = net.time_steps * (unit.neurons // unit.n_out)  # T · output positions
    col_blocks = -(-unit.n_out // per_array)
    row_blocks = -(-rows // xb.rows)
    return Arrays(
        rows=rows,
        columns=unit.n_out,
        row_blocks=row_blocks,
        array_rows=min(rows, xb.rows),
        array_columns=min(unit.n_out, per_array),
        count=row_blocks * col_blocks,
        cells_per_column=2 * slices,
        slices=slices,
    )


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


def is_exclusive(resource: str) -> bool:
    """Every resource serves one op at a time, except the contention-free NoC ("noc:…")."""
    return not resource.startswith("noc:")


def start_ps(ready_ps: int, free_ps: int, resource: str) -> int:
    """When an op starts: at ``ready_ps`` (its inputs' latest end) on the NoC, else also not
    before ``free_ps``, the end of the previous op (in issue order) on its resource."""
    if not is_exclusive(resource):
        return ready_ps
    return ready_ps if ready_ps > free_ps else free_ps


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


@dataclass(frozen=True)
class OpCost:
    """Everything of one op but its times: duration, energy per component, counters.

    Built only by :class:`CostModel`; ``energy_pj`` and ``counters`` are read-only mappings.
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


def _inputs(net: NetworkSpec) -> list[int]:
    """Input frame size (bits per step) of every weighted layer, after any pool."""
    shapes = layer_shapes(net)
    return [math.prod(shapes[i]) for i in _weighted(net)]


_F = TypeVar("_F", bound=Callable[..., Any])


def _cached(method: _F) -> _F:
    """Memoise a CostModel method per instance on its positional arguments."""
    name = method.__name__

    @functools.wraps(method)
    def wrapper(self: CostModel, *args: Any) -> Any:
        key = (name, *args)
        try:
            return self._memo[key]
        except KeyError:
            value = self._memo[key] = method(self, *args)
            return value

    return cast(_F, wrapper)


def _op(kind: str, layer: int, resource: str, cost: Cost) -> OpCost:
    return OpCost(kind, layer, resource, ps(cost.ns), cost.energy_pj, cost.counters)


class CostModel:
    """The cost of every op of ``net`` on ``chip``: the one place the physical rules of
    :mod:`emulator.cost.physical` are composed into scheduled ops (module doc).

    Maps the network once (:attr:`mapping`) and sizes every tile's buffer against what the
    schedule keeps in it (:attr:`spill`). Each method returns the :class:`OpCost` of one op
    given that op's own activity; results are cached per argument tuple (pass arguments
    positionally: the same object for the same arguments, so calling per op is cheap).
    Layers are weighted-layer numbers (``mapping.layers[layer]``). No op's cost rule looks
    at ``chip.dataflow``: it decides only which ops the batch loop of :data:`DATAFLOWS`
    issues, with which arguments, and so what the buffers keep (:meth:`error_steps`).
    """

    def __init__(self, chip: ChipSpec, net: NetworkSpec) -> None:
        self.chip, self.net = chip, net
        self.mapping: ChipMapping = map_network(chip, net)
        self._bits_in = _inputs(net)
        # values of the error of each layer's outputs as sent on (after its pools)
        self._sent = [*self._bits_in[1:], self.mapping.layers[-1].neurons]
        self._fb_widths = feedback_widths(net)
        self._memo: dict[tuple[Any, ...], Any] = {}
        self.spill: dict[tuple[int, str], Spill] = self._spills()

    @property
    def layers(self) -> int:
        """Number of weighted layers L."""
        return len(self.mapping.layers)

    # -- the tile buffers

    def error_steps(self) -> int:
        """Error values per neuron a layer buffers per sample: the dataflow's learning rule
        (SDFA's g is the same at every step: 1; BPTT's error differs per step: T)."""
        return self.net.time_steps if READS_TRANSPOSE[self.chip.dataflow] else 1

    def buffer_need_bits(self) -> dict[int, dict[str, float]]:
        """Bits each tile keeps in its buffer, by class (:data:`BUFFER_CLASSES`): for every
        layer it homes, per sample in flight (2 with the data level on: one being written
        while the previous one is used; else 1), the T input frames (input data reuse), the
        T membrane potentials and the buffered errors of its outputs; the feedback group's
        home keeps e."""
        chip, t = self.chip, self.net.time_steps
        flight = 2 if chip.pipeline.data else 1
        vb, mb = chip.tile.value_bits, chip.tile.membrane_bits
        need: dict[int, dict[str, float]] = {}

        def keep(tile: int, cls: str, bits: float) -> None:
            row = need.setdefault(tile, dict.fromkeys(BUFFER_CLASSES, 0.0))
            row[cls] += flight * bits

        for i, lm in enumerate(self.mapping.layers):
            keep(lm.tiles[0], "frames", t * self._bits_in[i])
            keep(lm.tiles[0], "membranes", t * lm.neurons * mb)
            keep(lm.tiles[0], "errors", self.error_steps() * self._sent[i] * vb)
        fb = self.mapping.feedback
        if fb is not None:
            keep(fb.tiles[0], "errors", self.net.num_classes * vb)
        return need

    def _spills(self) -> dict[tuple[int, str], Spill]:
        """What of each (tile, class) spills: the buffer holds the classes in the order of
        :data:`BUFFER_CLASSES` (the forward's frames and membranes before the errors, so
        the errors a dataflow keeps never push the forward's data out); a class that does
        not fit spills the share beyond the space left, to the global buffer beside the
        mesh's corner router (0, 0), one hop past it."""
        capacity = self.chip.tile.buffer_kb * 1024 * 8
        out = {}
        for tile, need in self.buffer_need_bits().items():
            left = capacity
            corner = len(noc.route(self.mapping.positions[tile], (0, 0), self.chip)) + 1
            for cls in BUFFER_CLASSES:
                if need[cls] > left:
                    out[tile, cls] = Spill(1 - left / need[cls], corner)
                left = max(0.0, left - need[cls])
        return out

    def _buffer(self, tile: int, cls: str, bits: float) -> Cost:
        return buffer_access(self.chip, bits, self.spill.get((tile, cls), Spill()))

    def _noc(self, kind: str, layer: int, bits: int, a: int, b: int) -> OpCost:
        cost = transfer(self.chip, bits, hops(self.mapping, a, b))
        return _op(kind, layer, f"noc:t{a}>t{b}", cost)

    def _values(self, values: int) -> int:
        """NoC and buffer bits of ``values`` multi-bit values."""
        return noc.packet_bits(self.chip, "error", values)

    # -- forward (both dataflows)

    @_cached
    def xbar(self, layer: int, input_rate: float) -> OpCost:
        """XBAR_READ of ``layer`` at one step with a fraction ``input_rate`` of its inputs
        active: every position read (⌈positions / replicas⌉ cycles), beside the buffer
        streaming the frame in and the positions' rows out."""
        chip, lm = self.chip, self.mapping.layers[layer]
        read = array_read(chip, weight_arrays(chip, lm), float(input_rate))
        reads = read.repeated(lm.positions, lm.reads_per_step)
        frame = self._bits_in[layer] + lm.positions * lm.rows
        buffered = self._buffer(lm.tiles[0], "frames", frame)
        return _op("XBAR_READ", layer, f"xbar:{layer}", reads.beside(buffered))

    @_cached
    def neuron(self, layer: int) -> OpCost:
        """NEURON of ``layer`` at one step: the update, beside saving the membrane potentials."""
        chip, lm = self.chip, self.mapping.layers[layer]
        saved = self._buffer(lm.tiles[0], "membranes", lm.neurons * chip.tile.membrane_bits)
        return _op("NEURON", layer, f"neuron:{layer}", neuron_steps(chip, lm.neurons).beside(saved))

    @_cached
    def noc_spikes(self, layer: int) -> OpCost | None:
        """NOC_SPIKES of one step INTO ``layer`` from layer−1's first tile (None for layer 0)."""
        if layer == 0:
            return None
        src, dst = self.mapping.layers[layer - 1].tiles[0], self.mapping.layers[layer].tiles[0]
        return self._noc("NOC_SPIKES", layer, self._bits_in[layer], src, dst)

    # -- the weight gradient and update (both dataflows)

    def grad_tiles(self, layer: int) -> tuple[int, ...]:
        """The k (indices into the layer's tiles) of its GRAD ops: the digital datapath
        splits the gradient over the tiles holding the weights, the crossbar datapath runs
        on the layer's morphable arrays (one op, k = 0)."""
        if self.chip.tile.grad_datapath == "crossbar":
            return (0,)
        return self.mapping.layers[layer].weight_tiles

    def _grad_resource(self, layer: int, k: int) -> str:
        if self.chip.tile.grad_datapath == "crossbar":
            return f"gradxbar:{layer}"
        return f"grad:t{self.mapping.layers[layer].tiles[k]}"

    @_cached
    def grad(self, layer: int, k: int, input_rate: float, error_steps: int) -> OpCost:
        """GRAD(l, n, k): sample n's weight gradient Σ_t δ_l[t]·s_{l−1}[t]ᵀ on tile k.

        First (k = 0, the layer's home) δ_l[t] = err_l[t] ⊙ σ'(v_l[t]) for every step (T
        backward neuron steps) beside the buffer reads of the T input frames, the T
        membranes and the buffered error of the layer's outputs (after its pools;
        ``error_steps`` values per output, written on arrival and read once), one access
        after the other; then the MACs on the datapath. Counters ``reuse_saved_*``: the
        re-read input frames would otherwise come again over the NoC from layer l−1.
        """
        chip, net, m = self.chip, self.net, self.mapping
        lm, t = m.layers[layer], net.time_steps
        rate = float(input_rate)
        head = Cost()
        if k == 0:
            reuse, home = t * self._bits_in[layer], lm.tiles[0]
            buffered = self._buffer(home, "frames", reuse).then(
                self._buffer(home, "membranes", t * lm.neurons * chip.tile.membrane_bits),
                self._buffer(home, "errors", 2 * self._values(error_steps * self._sent[layer])),
            )
            src = hops(m, m.layers[layer - 1].tiles[0], lm.tiles[0]) if layer else 0
            saved = Cost(
                counters={
                    "reuse_saved_bits": reuse,
                    "reuse_saved_pj": noc.transfer_energy_pj(chip, reuse, src),
                }
            )
            head = neuron_steps(chip, lm.neurons, t).beside(buffered)
            head = head.beside(saved)
        macs = local_grad_macs(net, lm, rate)
        if chip.tile.grad_datapath == "digital":
            body = grad_macs(chip, macs * lm.tile_weights[k] / (lm.n_in * lm.n_out))
        else:
            body = self._crossbar_grad(lm, rate)
        return _op("GRAD", layer, self._grad_resource(layer, k), head.then(body))

    def _crossbar_grad(self, lm: LayerMapping, rate: float) -> Cost:
        """δ written into the morphable arrays, one read per input (its spike train over the
        steps and positions, a fraction ``rate`` active), each read's n_out values added
        into the batch's gradient by the gradient unit's adders (shift-add energy)."""
        chip = self.chip
        arrays = delta_arrays(chip, self.net, lm)
        values = arrays.rows * arrays.columns
        write = write_rows(
            chip, arrays.array_rows, values * arrays.cells_per_column, fresh_pulses_per_cell(chip)
        )
        reads = array_read(chip, arrays, rate).repeated(lm.n_in)
        adds = Cost(energy_pj={"shift_add": lm.n_in * lm.n_out * chip.tile.shift_add_energy_pj})
        work = write.then(reads.beside(adds))
        return Cost(work.ns, {"grad": sum(work.energy_pj.values())}, _without_writes(work))

    @_cached
    def write(self, layer: int, fraction: float, pulses: float) -> OpCost:
        """WRITE of ``layer``: a ``fraction`` of its cells (every replica's) written with
        ``pulses`` mean pulses per written cell; with ``crossbar.update: read_merge_write``
        each row of one copy is read out first (one read cycle per row)."""
        chip, lm = self.chip, self.mapping.layers[layer]
        fraction, pulses = float(fraction), float(pulses)
        cells = fraction * lm.cells * lm.replicas
        cost = write_rows(chip, lm.array_rows if fraction > 0 else 0, cells, pulses)
        if chip.crossbar.update == "read_merge_write" and fraction > 0 and pulses > 0:
            arrays = weight_arrays(chip, lm)
            row = array_read(chip, arrays, arrays.row_blocks / arrays.rows)
            readback = row.repeated(lm.array_rows).into("write")
            cost = readback.then(cost)
        return _op("WRITE", layer, f"xbar:{layer}", cost)

    @_cached
    def write_transpose(self, layer: int, fraction: float, pulses: float) -> OpCost | None:
        """WRITE_T of ``layer``: the same pulses into its transposed copy (None without one)."""
        chip, lm = self.chip, self.mapping.layers[layer]
        if not lm.transpose_arrays:
            return None
        cells = float(fraction) * lm.cells * lm.replicas
        cost = write_rows(chip, lm.array_rows if fraction > 0 else 0, cells, float(pulses))
        return _op("WRITE_T", layer, f"xbarT:{layer}", cost)

    # -- SDFA: the error through the random feedback

    @_cached
    def noc_error(self) -> OpCost | None:
        """NOC_ERROR: e from the output layer's first tile to the feedback group's (None
        without a group)."""
        fb = self.mapping.feedback
        if fb is None:
            return None
        bits = self._values(self.net.num_classes)
        out = self.mapping.layers[-1].tiles[0]
        return self._noc("NOC_ERROR", fb.weighted, bits, out, fb.tiles[0])

    @_cached
    def feedback(self, error_bit_rate: float) -> OpCost | None:
        """FEEDBACK: the group's bit-serial read of e, a fraction ``error_bit_rate`` of its
        rows active per plane, beside e written into and read from the buffer (None without
        a group)."""
        chip, fb = self.chip, self.mapping.feedback
        if fb is None:
            return None
        read = array_read(chip, weight_arrays(chip, fb), float(error_bit_rate), error_planes(chip))
        e = self._buffer(fb.tiles[0], "errors", 2 * self._values(self.net.num_classes))
        return _op("FEEDBACK", fb.weighted, "feedback", read.into("feedback").beside(e))

    @_cached
    def noc_feedback(self, layer: int) -> OpCost | None:
        """NOC_FEEDBACK: g's prefix (the layer's feedback width, after its pools) to hidden
        ``layer``'s first tile (None for the output layer or without a group)."""
        fb = self.mapping.feedback
        if fb is None or layer == self.layers - 1:
            return None
        bits = self._values(self._fb_widths[layer])
        tile = self.mapping.layers[layer].tiles[0]
        return self._noc("NOC_FEEDBACK", layer, bits, fb.tiles[0], tile)

    # -- BPTT: the error back through Wᵀ

    @_cached
    def err(self, layer: int, error_bit_rate: float) -> OpCost | None:
        """ERR of one step: δ_l[t] read from the buffer and applied bit-serially to Wᵀ
        (``crossbar.transpose``: the copy, or the arrays themselves driven from the column
        side), every position (None for layer 0: no error is needed for the network input)."""
        if layer == 0:
            return None
        chip, lm = self.chip, self.mapping.layers[layer]
        read = array_read(chip, weight_arrays(chip, lm), float(error_bit_rate), error_planes(chip))
        reads = read.repeated(lm.positions, lm.reads_per_step).into("error_backprop")
        delta = self._buffer(lm.tiles[0], "errors", self._values(lm.neurons))
        resource = f"xbarT:{layer}" if lm.transpose_arrays else f"xbar:{layer}"
        return _op("ERR", layer, resource, reads.beside(delta))

    @_cached
    def noc_backprop(self, layer: int) -> OpCost | None:
        """NOC_BACKPROP of one step: the error of ``layer``'s spikes (its pooled outputs)
        INTO ``layer`` from layer+1's first tile (None for the output layer)."""
        if layer == self.layers - 1:
            return None
        src, dst = self.mapping.layers[layer + 1].tiles[0], self.mapping.layers[layer].tiles[0]
        bits = self._values(self._bits_in[layer + 1])
        return self._noc("NOC_BACKPROP", layer, bits, src, dst)


def _without_writes(cost: Cost) -> dict[str, float]:
    """Counters of the crossbar datapath: its intermediate writes are not weight writes."""
    counters = dict(cost.counters)
    counters["grad_cells_written"] = counters.pop("cells_written", 0.0)
    counters["grad_pulses"] = counters.pop("pulses", 0.0)
    return counters


# -------------------------------------------------------------------------- timeline


class _Timeline:
    """The list scheduler: each op starts at max(ready, its resource's free time)."""

    def __init__(self, keep_ops: bool = True) -> None:
        self.free: dict[str, int] = {}
        self.ops: list[Op] = []
        self.keep_ops = keep_ops
        self.costs: list[OpCost] = []  # distinct costs, in order of first issue
        self.counts: dict[int, int] = {}  # id(cost) → ops issued
        self.end = 0

    def run(self, cost: OpCost, batch: int, sample: int, step: int, ready: int) -> int:
        """Issue one op of cost ``cost``; returns its end time."""
        start = ready
        if cost.exclusive:  # start_ps(ready, free, cost.resource), inlined
            free = self.free.get(cost.resource, 0)
            start = ready if ready > free else free
            self.free[cost.resource] = start + cost.dur_ps
        key = id(cost)
        count = self.counts.get(key)
        if count is None:  # first issue fixes the cost's place in the sums
            self.costs.append(cost)
            count = 0
        self.counts[key] = count + 1
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
        if end > self.end:
            self.end = end
        return end


class _Rates(Protocol):
    """The activity of each op, by its indices: averages or a recorded run."""

    def input_rates(self, layer: int, sample: int) -> Sequence[float]: ...
    def grad_rate(self, layer: int, sample: int) -> float: ...
    def error_bit_rate(self, sample: int) -> float: ...
    def write(self, layer: int, batch: int) -> tuple[float, float]: ...


class _Average:
    """Every op at an :class:`Activity`'s average rates (the fast path)."""

    def __init__(self, chip: ChipSpec, net: NetworkSpec, act: Activity) -> None:
        self._inputs = [[rate] * net.time_steps for rate in act.input_rates]
        self._grads = act.input_rates
        self._ebr = error_bit_rate(chip, act)
        self._writes = [write_activity(chip, act, i) for i in range(len(act.input_rates))]

    def input_rates(self, layer: int, sample: int) -> Sequence[float]:
        return self._inputs[layer]

    def grad_rate(self, layer: int, sample: int) -> float:
        return self._grads[layer]

    def error_bit_rate(self, sample: int) -> float:
        return self._ebr

    def write(self, layer: int, batch: int) -> tuple[float, float]:
        return self._writes[layer]


class _Replay:
    """Every op at its own recorded rates."""

    def __init__(self, record: OpActivity) -> None:
        self._r = record

    def input_rates(self, layer: int, sample: int) -> Sequence[float]:
        return self._r.input_rates[sample][layer]

    def grad_rate(self, layer: int, sample: int) -> float:
        return self._r.grad_rates[sample][layer]

    def error_bit_rate(self, sample: int) -> float:
        return self._r.error_bit_rates[sample]

    def write(self, layer: int, batch: int) -> tuple[float, float]:
        return self._r.writes[batch][layer]


# ----------------------------------------------------------------------------- batches


def _forward_sample(
    tl: _Timeline, cm: CostModel, rates: _Rates, steps_pipelined: bool, b: int, n: int, gate: int
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
    tl: _Timeline,
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
        for i in (last, *range(last)):  # the output layer's error is ready first
            ready = max(g_ready[i], ends[i])
            last_grad[i] = _grads(tl, cm, rates, b, n, i, ready)
        data_gate = gate if pipe.data else max(last_grad)
    all_grads = max(last_grad)
    ends = [
        _writes(tl, cm, rates, b, i, last_grad[i] if pipe.batch else all_grads)
        for i in range(layers)
    ]
    return (0 if pipe.batch else max(ends)), max(ends)


def _grads(
    tl: _Timeline, cm: CostModel, rates: _Rates, b: int, n: int, layer: int, ready: int
) -> int:
    """GRAD(layer, n, k) on each of the layer's gradient tiles; returns the latest end."""
    rate, steps = rates.grad_rate(layer, n), cm.error_steps()
    return max(
        tl.run(cm.grad(layer, k, rate, steps), b, n, -1, ready) for k in cm.grad_tiles(layer)
    )


def _writes(tl: _Timeline, cm: CostModel, rates: _Rates, b: int, layer: int, ready: int) -> int:
    """WRITE(layer, b), and WRITE_T into a transposed copy if the layer has one."""
    fraction, pulses = rates.write(layer, b)
    end = tl.run(cm.write(layer, fraction, pulses), b, -1, -1, ready)
    copy = cm.write_transpose(layer, fraction, pulses)
    return max(end, tl.run(copy, b, -1, -1, ready)) if copy is not None else end


def _pipelayer_batch(
    tl: _Timeline,
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


_BatchLoop = Callable[
    [_Timeline, CostModel, _Rates, PipelineSpec, int, range, int], tuple[int, int]
]

DATAFLOWS: dict[str, _BatchLoop] = {
    "pipesdfa": _pipesdfa_batch,
    "pipelayer": _pipelayer_batch,
}
"""The one place the dataflows' schedules differ: the batch loop per ``chip.dataflow``
(their op costs all come from :class:`CostModel`)."""


# ---------------------------------------------------------------------------- schedule


@dataclass
class Schedule:
    """A simulated training segment and its analytic totals.

    ``ops`` are in issue order. ``batch`` is the samples per batch (the last of ``batches``
    may hold fewer; ``samples`` in all). Segment totals: ``time_ps_total`` (the latest op
    end), ``energy_pj_total`` per component and ``counters``; per sample: energy / samples,
    time = the last batch's period / its samples.
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
        }


def _schedule(
    cm: CostModel, rates: _Rates, batch: int, sizes: list[int], keep_ops: bool = True
) -> Schedule:
    """Issue every batch (``sizes[b]`` samples each) and total the costs (module doc)."""
    chip = cm.chip
    run_batch = DATAFLOWS[chip.dataflow]
    tl, gate, batch_end, first = _Timeline(keep_ops), 0, [], 0
    for b, size in enumerate(sizes):
        gate, end = run_batch(tl, cm, rates, chip.pipeline, b, range(first, first + size), gate)
        batch_end.append(end)
        first += size
    period = batch_end[-1] - (batch_end[-2] if len(sizes) > 1 else 0)
    energy = dict.fromkeys(COMPONENTS, 0.0)
    counters = dict.fromkeys(COUNTERS, 0.0)
    for cost in tl.costs:  # distinct costs, in order of first issue
        count = tl.counts[id(cost)]
        for k, v in cost.energy_pj.items():
            energy[k] += count * v
        for k, v in cost.counters.items():
            counters[k] += count * v
        counters["ops"] += count
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
        time_ps_total=tl.end,
        energy_pj_total=energy,
    )


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
    cm = CostModel(chip, net)
    sizes = [batch] * batches
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
