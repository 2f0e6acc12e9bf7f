"""The three-level PipeSDFA pipeline and the PipeLayer schedule: operations, a deterministic
list schedule and the analytic cost model (DESIGN.md §3).

One training segment is ``batches`` batches of B samples (a replayed run: its samples in
batches of B, the last possibly smaller), T steps each, on the weighted layers l = 0..L−1 of a
network mapped by :func:`emulator.mapping.map_network` (pool layers fold into the next layer's
input). Every operation has a resource, a duration and an energy per component. An op starts
at max(its inputs' finish, its resource's free time); ops are issued in the fixed order below
and each resource serves them first come, first served in that order (no back-filling), so the
schedule is deterministic. Times are integer picoseconds: every op's duration is its formula in
ns rounded once to the nearest ps (:func:`ps`), then only integers are added and compared, so
any emulation that rounds each op the same way reproduces every time exactly.

Per-op costs: :class:`CostModel` is the one place an op's duration, energy per component (pJ)
and counters are computed (:class:`OpCost`), from the op (kind, layer, tile) and that op's
own activity only: XBAR_READ(l, n, t) the fraction of layer l's inputs active at step t of
sample n; LOCAL_GRAD(l, n) sample n's mean input rate of layer l over the T steps; FEEDBACK(n)
(PipeLayer: ERR and GRAD of sample n) sample n's error bit rate; WRITE(l, b) batch b's
(fraction of layer l's cells written, mean pulses per written cell); NEURON and the NoC ops
none. :func:`simulate` (the fast path) evaluates every op at an :class:`Activity`'s average
rates; :func:`simulate_run` at each op's own rates recorded in an :class:`OpActivity`. A
distributed emulation that takes each op's OpCost from the same CostModel call and follows the
issue order below reproduces simulate_run's times exactly.

Resources: ``xbar:l`` layer l's weight arrays (forward reads and its WRITE), ``neuron:l``
layer l's neuron-unit lanes (a tile hosting two layers' cores updates both in parallel),
``grad:tK`` tile K's digital gradient unit (shared by every layer on tile K), ``feedback``
the formed feedback group, ``xbarT:l`` and ``gradxbar:l`` PipeLayer's transposed copy and
gradient arrays of layer l. NoC ops take ``noc:tA>tB`` and are contention-free (their resource
is never exclusive).

Costs (one place; ``xb`` = ``chip.crossbar``, ``dev`` = ``chip.device``, ``tile`` = ``chip.tile``):

- Readout per logical column per read, ``cpc``: "adc" one conversion per differential pair per
  slice (``xb.slices``; the feedback group: 1), "if_counter" one per physical column (2×).
  ONE ADC per crossbar (ISAAC: 8 ADCs per IMA of 8 crossbars), all arrays of a layer in
  parallel, so a read cycle is ``dev.read_latency_ns + array_columns·cpc·xb.adc_latency_ns``
  (the fullest array, :func:`read_cycle_ns`).
- A read of a layer with a fraction a of its rows active: cells a·rows·columns·(cells per
  logical column) × ``dev.read_energy_pj``; conversions row_blocks·columns·cpc ×
  ``xb.adc_energy_pj``; shift-adds (every output column sums its row_blocks·cpc partial values,
  and bit-serial reads sum R times as many) columns·(R·row_blocks·cpc − 1) ×
  ``tile.shift_add_energy_pj`` (:func:`read_energy_pj`).
- XBAR_READ(l, n, t): reads_per_step read cycles (conv: window positions in sequence); a = the
  input spike rate. NEURON(l, n, t): ``tile.neuron_latency_ns``; n_l × ``tile.neuron_energy_pj``.
- NOC: bits over hops = Manhattan distance between the mesh nodes of the first tiles (XY
  routing): hops·``noc.hop_latency_ns`` + ⌈bits/``noc.flit_bits``⌉ clock periods of
  serialisation; energy bits·hops·``noc.energy_pj_per_bit_hop``; same tile: 0 ns, 0 pJ (the
  tile buffer only). Spikes are bit-packed: the receiving layer's input frame (after any pool;
  the sender pools) per step. Errors and projected errors travel and are buffered as
  :data:`emulator.noc.VALUE_BITS` values (16-bit fixed point); ``xb.error_bits`` is only the
  width they are quantised to when applied bit-serially to an array. The NoC formulas are
  :func:`emulator.noc.transfer_ns` and :func:`emulator.noc.transfer_energy_pj`.
- Tile buffer, bits × ``tile.buffer_energy_pj_per_bit`` (capacity not checked): every input
  frame is written once and read by the arrays (reads_per_step·rows bits) per step; every
  neuron's membrane potential (MEMBRANE_BITS) is saved each step and read once by the
  gradient, in BOTH dataflows (PipeSDFA's δ_l[t] = g_l ⊙ σ'(v_l[t]) needs v_l[t] after g_l
  arrives, after step T); the local gradient / PipeLayer GRAD re-reads the T input frames
  (input data reuse) and writes + reads its error input (PipeSDFA: n_l values once; PipeLayer:
  δ_l[t] for every step); PipeLayer's ERR reads δ_l[t]; the feedback group writes + reads e.
- FEEDBACK(n): R = 2·(error_bits − 1) bit-serial reads (sign-magnitude planes) of the group,
  a = the sample's error bit rate (``Activity.error_bit_rate`` on average); then g's prefix
  (n_l values) goes to every hidden layer's first tile (one NOC op each).
- LOCAL_GRAD(l, n): MACs = T·n_l·(input rate)·fan_in (fan_in: the matrix's input rows, conv
  K²·IC; binary spikes: additions only for active inputs). Each tile of layer l computes the
  gradient of the weights its arrays hold: MACs·(its entries / n_in·n_out) in that share /
  ``tile.grad_macs_per_ns``, energy × ``tile.grad_energy_pj_per_mac``. The re-read input frames
  would otherwise come again over the NoC from layer l−1's tile: counters ``reuse_saved_bits``
  and ``reuse_saved_pj`` (T·inputs·hops·energy per bit-hop; 0 for layer 0, whose input enters
  on its own tile).
- WRITE(l, b): rows in sequence, arrays in parallel, the cells of a row in parallel:
  array_rows·⌈pulses per cell⌉·``dev.write_latency_ns`` (a row takes as many pulse slots as its
  cells' mean pulse count rounded up; every used row is written when the write fraction is
  > 0); energy cells·fraction·pulses·``dev.write_energy_pj``. Defaults (assumption): fraction
  0.5, pulses per cell (pulse_levels − 1)/(2^cell_bits − 1) (one level step).
- PipeLayer ERR(l, n, t): R·reads_per_step reads of layer l's transposed copy, costed as
  forward reads of the same blocks with a = error_bit_rate; it turns δ_l[t] into the error of
  layer l−1's spikes (only l ≥ 1: no error is needed for the network input). GRAD(l, n):
  T·R·reads_per_step reads of layer l's gradient arrays (same geometry). WRITE: each row is
  read out (one read cycle), merged and written back; both copies of W (forward and
  transposed) get the pulses, in parallel: array_rows·(read cycle + ⌈pulses⌉·write latency);
  pulses of both copies and the read-out count as ``write`` energy. The gradient arrays' own
  writes of inputs/errors per sample are not costed (in PipeLayer's favour).

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
3. LOCAL_GRAD(l,n,k) for l = L−1, 0, 1, …, L−2 (the output layer's error is ready first) and
   in each layer k = 0..len(tiles)−1, on ``grad:t{tiles[k]}``: the output layer's ←
   NEURON(L−1,n,T−1); a hidden layer's ← NEURON(l,n,T−1) and NOC_FEEDBACK(l,n). No
   layer-to-layer backward dependency.
4. After the batch's last sample n_B: WRITE(l,b) for l = 0..L−1 on ``xbar:l`` ← every
   LOCAL_GRAD(l,n_B,·). Batch b+1's ops of layer l wait for WRITE(l,b) only through
   ``xbar:l`` (issued before them).

So ``xbar:l`` serves XBAR_READ(l,n,t) for the batch's samples and steps in order, then
WRITE(l,b), then batch b+1's; ``neuron:l`` NEURON(l,n,t) in (n, t) order; ``feedback``
FEEDBACK(n) in sample order; ``grad:tK`` the LOCAL_GRADs on tile K in step 3's order, sample
by sample (a tile may serve several layers). With a level off (sample n's gate applies to
every XBAR_READ(·,n,·)): data off, the gate of a sample that is not its batch's first is the
end of every LOCAL_GRAD(·,n−1,·); batch off, the gate of batch b+1's samples (data on: all
of them; data off: its first) is the end of every WRITE(·,b), and every WRITE(·,b) ← every
LOCAL_GRAD(·,n_B,·).

PipeLayer (BPTT): per sample the forward (time steps pipelined), then GRAD(L−1,n) on
``gradxbar:L−1`` ← NEURON(L−1,n,T−1); then for l = L−1..1, for t = T−1..0: ERR(l,n,t) on
``xbarT:l`` ← NEURON(L−1,n,T−1) (l = L−1) or NOC_BACKPROP(l,n,t) (the error from above),
then NOC_BACKPROP(l−1,n,t) ← ERR(l,n,t) (ERR(l,n,t+1) precedes it on ``xbarT:l``), then
GRAD(l−1,n) ← NOC_BACKPROP(l−1,n,0). Updates only at batch end: every WRITE(·,b) ← all of
batch b's GRADs, and the gate of batch b+1's samples (data on: all of them; data off: its
first) is every WRITE's end (the pipeline drains). data off: the gate of a sample that is not
its batch's first is the end of every GRAD(·,n−1). PipeLayer ignores
``chip.pipeline`` except ``data`` (its forward is time-step pipelined, as PipeSDFA's).

Totals: the segment ends at the latest op end (:attr:`Schedule.time_ps_total`). Energy per
component and counters are Σ, over the distinct OpCosts in order of first issue (one per
CostModel method and arguments, so one per op template under :func:`simulate`), of the
number of ops issued × the OpCost's value. Every energy is ≥ 0, so any order of summing the
same N op energies (e.g. per op, per core, then over cores) lies within about N·2⁻⁵³ relative
of the exact sum, and two orders within twice that: below 1e-9 for N up to 4·10⁶ ops per
component (typically √N·2⁻⁵³, ~1e-13). Times need no tolerance.

Reported: the batch period = end of the last batch's WRITEs − end of the previous batch's
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

from emulator import noc
from emulator.mapping import ChipMapping, LayerMapping, map_network
from emulator.topology import ChipSpec, NetworkSpec, PipelineSpec, layer_shapes

MEMBRANE_BITS = 16
"""Bits of a buffered membrane potential (our assumption, both dataflows)."""

DEFAULT_WRITE_FRACTION = 0.5
"""Fraction of a layer's weight cells written per batch without a measured activity (assumed)."""

COMPONENTS = (
    "read",
    "readout",
    "shift_add",
    "neuron",
    "noc",
    "buffer",
    "feedback",
    "local_grad",
    "error_backprop",
    "grad",
    "write",
)
"""Energy components, in report order."""

COUNTERS = (
    "ops",
    "array_reads",
    "conversions",
    "macs",
    "cells_written",
    "pulses",
    "noc_bits",
    "buffer_bits",
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
        description=f"Fraction of each layer's cells written per batch "
        f"(default {DEFAULT_WRITE_FRACTION}).",
    )
    pulses_per_cell: list[Annotated[float, Field(ge=0.0)]] | None = Field(
        None,
        description="Mean programming pulses per written cell (default: one level step, "
        "(pulse_levels − 1)/(2^cell_bits − 1)).",
    )
    error_bit_rate: Rate = Field(
        0.25,
        description="Fraction of rows active in one bit-plane read of a multi-bit error "
        "(assumed: half the bits set, half the values of each sign).",
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
    ``act``: its measured values, else the defaults."""
    fraction = act.write_fraction[layer] if act.write_fraction else DEFAULT_WRITE_FRACTION
    pulses = act.pulses_per_cell[layer] if act.pulses_per_cell else default_pulses_per_cell(chip)
    return fraction, pulses


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
        description="[sample][layer]: the sample's mean input rate over the steps (LOCAL_GRAD)."
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
            error_bit_rates=[activity.error_bit_rate] * samples,
            writes=[list(writes) for _ in range(-(-samples // batch))],
        )


def _weighted(net: NetworkSpec) -> list[int]:
    return [i for i, layer in enumerate(net.layers) if layer.type != "pool"]


# ---------------------------------------------------------------------------- cost model


def ps(ns: float) -> int:
    """A duration in ns as integer picoseconds (rounded once, to the nearest)."""
    return round(ns * 1000)


def conversions_per_column(chip: ChipSpec, unit: LayerMapping) -> int:
    """Readouts per logical column per read: ADC one per pair per slice, I&F one per column."""
    slices = 1 if unit.kind == "feedback" else chip.crossbar.slices
    return slices if chip.crossbar.readout == "adc" else 2 * slices


def cells_per_column(chip: ChipSpec, unit: LayerMapping) -> int:
    """Physical cells per logical column per row: a pair per slice (feedback: one pair)."""
    return 2 if unit.kind == "feedback" else chip.crossbar.columns_per_weight


def read_cycle_ns(chip: ChipSpec, unit: LayerMapping) -> float:
    """One read of every array of ``unit`` in parallel: the pulse, then the fullest array's
    conversions on its one ADC."""
    conversions = unit.array_columns * conversions_per_column(chip, unit)
    return chip.device.read_latency_ns + conversions * chip.crossbar.adc_latency_ns


def read_energy_pj(
    chip: ChipSpec, unit: LayerMapping, active: float, reads: int = 1
) -> dict[str, float]:
    """Energy of ``reads`` (bit-serial) reads of every array of ``unit`` at one position.

    ``active`` is the fraction of rows driven. Returns read (cells), readout (conversions)
    and shift_add (partial sums over row blocks, slices and bit planes) in pJ.
    """
    cpc = conversions_per_column(chip, unit)
    cells = unit.rows * unit.columns * cells_per_column(chip, unit)
    conversions = unit.row_blocks * unit.columns * cpc
    shift_adds = unit.columns * (reads * unit.row_blocks * cpc - 1)
    return {
        "read": reads * active * cells * chip.device.read_energy_pj,
        "readout": reads * conversions * chip.crossbar.adc_energy_pj,
        "shift_add": shift_adds * chip.tile.shift_add_energy_pj,
    }


def bit_serial_reads(chip: ChipSpec) -> int:
    """Reads of one multi-bit error vector: a positive and a negative plane per magnitude bit."""
    return 2 * (chip.crossbar.error_bits - 1)


def hops(mapping: ChipMapping, tile_a: int, tile_b: int) -> int:
    """Router hops between two tiles' mesh nodes: the XY route's (the Manhattan distance),
    or the detour's around dead links (:func:`emulator.noc.route`)."""
    a, b = mapping.positions[tile_a], mapping.positions[tile_b]
    return len(noc.route(a, b, mapping.chip))


def default_pulses_per_cell(chip: ChipSpec) -> float:
    """One cell level step in identical pulses: (pulse_levels − 1)/(2^cell_bits − 1)."""
    return (chip.device.pulse_levels - 1) / (2**chip.crossbar.cell_bits - 1)


def write_ns(chip: ChipSpec, unit: LayerMapping, fraction: float, pulses: float) -> float:
    """Program a layer: its fullest array's rows in sequence, ⌈pulses⌉ slots each."""
    rows = unit.array_rows if fraction > 0 else 0
    return rows * math.ceil(pulses) * chip.device.write_latency_ns


def local_grad_macs(net: NetworkSpec, unit: LayerMapping, input_rate: float) -> float:
    """T·n_l·rate·fan_in additions of the local gradient Σ_t δ_l[t]·s_{l−1}[t]ᵀ."""
    return net.time_steps * unit.neurons * input_rate * unit.n_in


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


def _energy(**parts: float) -> dict[str, float]:
    return {k: v for k, v in parts.items() if v}


def _merge(*dicts: Mapping[str, float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for d in dicts:
        for k, v in d.items():
            out[k] = out.get(k, 0.0) + v
    return out


def _scaled(energy: Mapping[str, float], into: str, factor: float = 1.0) -> dict[str, float]:
    """All of ``energy`` summed into one component, times ``factor``."""
    return {into: factor * sum(energy.values())}


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


class CostModel:
    """The cost of every op of ``net`` on ``chip``: the one place durations, energies and
    counters are computed (formulas in the module doc).

    Maps the network once (:attr:`mapping`). Each method returns the :class:`OpCost` of one op
    given that op's own activity; results are cached per argument tuple (pass arguments
    positionally: the same object for the same arguments, so calling per op is cheap). Layers
    are weighted-layer numbers (``mapping.layers[layer]``). Methods of the other dataflow's
    ops still answer (their formulas do not depend on the dataflow) but its schedule never
    issues them; ``write`` is the WRITE of ``chip.dataflow``.
    """

    def __init__(self, chip: ChipSpec, net: NetworkSpec) -> None:
        self.chip, self.net = chip, net
        self.mapping: ChipMapping = map_network(chip, net)
        self._bits_in = _inputs(net)
        self._memo: dict[tuple[Any, ...], OpCost | None] = {}

    @property
    def layers(self) -> int:
        """Number of weighted layers L."""
        return len(self.mapping.layers)

    def _noc(self, kind: str, layer: int, bits: int, a: int, b: int) -> OpCost:
        h = hops(self.mapping, a, b)
        energy = _energy(noc=noc.transfer_energy_pj(self.chip, bits, h))
        counters = {"noc_bits": float(bits * h)}
        dur = ps(noc.transfer_ns(self.chip, bits, h))
        return OpCost(kind, layer, f"noc:t{a}>t{b}", dur, energy, counters)

    # -- forward (both dataflows)

    @_cached
    def xbar(self, layer: int, input_rate: float) -> OpCost:
        """XBAR_READ of ``layer`` at one step with a fraction ``input_rate`` of its inputs
        active: the buffered frame written once and read by the arrays."""
        chip, lm = self.chip, self.mapping.layers[layer]
        reads, buf = lm.reads_per_step, chip.tile.buffer_energy_pj_per_bit
        read = {k: reads * v for k, v in read_energy_pj(chip, lm, float(input_rate)).items()}
        frame = self._bits_in[layer] + reads * lm.rows
        return OpCost(
            "XBAR_READ",
            layer,
            f"xbar:{layer}",
            ps(reads * read_cycle_ns(chip, lm)),
            _merge(read, _energy(buffer=frame * buf)),
            {
                "array_reads": reads * lm.weight_arrays,
                "buffer_bits": frame,
                "conversions": reads
                * lm.row_blocks
                * lm.columns
                * conversions_per_column(chip, lm),
            },
        )

    @_cached
    def neuron(self, layer: int) -> OpCost:
        """NEURON of ``layer`` at one step: the update and the saved membrane potentials."""
        tile, lm = self.chip.tile, self.mapping.layers[layer]
        saved = lm.neurons * MEMBRANE_BITS
        return OpCost(
            "NEURON",
            layer,
            f"neuron:{layer}",
            ps(tile.neuron_latency_ns),
            _energy(
                neuron=lm.neurons * tile.neuron_energy_pj,
                buffer=saved * tile.buffer_energy_pj_per_bit,
            ),
            {"buffer_bits": saved},
        )

    @_cached
    def noc_spikes(self, layer: int) -> OpCost | None:
        """NOC_SPIKES of one step INTO ``layer`` from layer−1's first tile (None for layer 0)."""
        if layer == 0:
            return None
        src, dst = self.mapping.layers[layer - 1].tiles[0], self.mapping.layers[layer].tiles[0]
        return self._noc("NOC_SPIKES", layer, self._bits_in[layer], src, dst)

    @_cached
    def write(self, layer: int, fraction: float, pulses: float) -> OpCost:
        """WRITE of ``layer`` (``chip.dataflow``'s), a ``fraction`` of its cells written with
        ``pulses`` mean pulses per written cell."""
        fraction, pulses = float(fraction), float(pulses)
        if self.chip.dataflow == "pipelayer":
            return self._pipelayer_write(layer, fraction, pulses)
        chip, lm = self.chip, self.mapping.layers[layer]
        written = fraction * lm.cells
        return OpCost(
            "WRITE",
            layer,
            f"xbar:{layer}",
            ps(write_ns(chip, lm, fraction, pulses)),
            _energy(write=written * pulses * chip.device.write_energy_pj),
            {"cells_written": written, "pulses": written * pulses},
        )

    # -- PipeSDFA

    @_cached
    def noc_error(self) -> OpCost | None:
        """NOC_ERROR: e from the output layer's first tile to the feedback group's (None
        without a group)."""
        fb = self.mapping.feedback
        if fb is None:
            return None
        bits = noc.packet_bits("error", self.net.num_classes)
        out = self.mapping.layers[-1].tiles[0]
        return self._noc("NOC_ERROR", fb.weighted, bits, out, fb.tiles[0])

    @_cached
    def feedback(self, error_bit_rate: float) -> OpCost | None:
        """FEEDBACK: the group's bit-serial reads of e, a fraction ``error_bit_rate`` of its
        rows active per plane (None without a group)."""
        chip, fb = self.chip, self.mapping.feedback
        if fb is None:
            return None
        e_bits = noc.packet_bits("error", self.net.num_classes)
        r, buf = bit_serial_reads(chip), chip.tile.buffer_energy_pj_per_bit
        return OpCost(
            "FEEDBACK",
            fb.weighted,
            "feedback",
            ps(r * read_cycle_ns(chip, fb)),
            _merge(
                _scaled(read_energy_pj(chip, fb, float(error_bit_rate), r), "feedback"),
                _energy(buffer=2 * e_bits * buf),
            ),
            {
                "array_reads": r * fb.feedback_arrays,
                "buffer_bits": 2 * e_bits,
                "conversions": r * fb.row_blocks * fb.columns * conversions_per_column(chip, fb),
            },
        )

    @_cached
    def noc_feedback(self, layer: int) -> OpCost | None:
        """NOC_FEEDBACK: g's prefix to hidden ``layer``'s first tile (None for the output layer
        or without a group)."""
        fb = self.mapping.feedback
        if fb is None or layer == self.layers - 1:
            return None
        lm = self.mapping.layers[layer]
        bits = noc.packet_bits("feedback", lm.neurons)
        return self._noc("NOC_FEEDBACK", layer, bits, fb.tiles[0], lm.tiles[0])

    @_cached
    def local_grad(self, layer: int, k: int, input_rate: float) -> OpCost:
        """LOCAL_GRAD on tile ``mapping.layers[layer].tiles[k]``: its share of the MACs at the
        sample's mean input rate; the buffer traffic and reuse counters on the first tile."""
        chip, net, m = self.chip, self.net, self.mapping
        lm, bits_in = m.layers[layer], self._bits_in[layer]
        t, error_in = net.time_steps, noc.packet_bits("feedback", lm.neurons)
        macs = local_grad_macs(net, lm, float(input_rate))
        share = macs * lm.tile_weights[k] / (lm.n_in * lm.n_out)
        energy = _energy(local_grad=share * chip.tile.grad_energy_pj_per_mac)
        counters = {"macs": share}
        if k == 0:
            reuse = t * bits_in  # the buffered input frames, instead of a second NoC fetch
            buffered = reuse + t * lm.neurons * MEMBRANE_BITS + 2 * error_in
            src_hops = hops(m, m.layers[layer - 1].tiles[0], lm.tiles[0]) if layer else 0
            saved_pj = reuse * src_hops * chip.noc.energy_pj_per_bit_hop
            energy = _merge(energy, _energy(buffer=buffered * chip.tile.buffer_energy_pj_per_bit))
            counters |= {
                "buffer_bits": buffered,
                "reuse_saved_bits": reuse,
                "reuse_saved_pj": saved_pj,
            }
        dur = ps(share / chip.tile.grad_macs_per_ns)
        return OpCost("LOCAL_GRAD", layer, f"grad:t{lm.tiles[k]}", dur, energy, counters)

    # -- PipeLayer

    def _error_reads(self, layer: int, error_bit_rate: float) -> tuple[dict[str, float], int]:
        """(energy of one position's R bit-serial reads, their conversions) of ``layer``."""
        chip, lm = self.chip, self.mapping.layers[layer]
        r = bit_serial_reads(chip)
        per_read = read_energy_pj(chip, lm, float(error_bit_rate), r)
        conversions = (
            r * lm.reads_per_step * lm.row_blocks * lm.columns * conversions_per_column(chip, lm)
        )
        return per_read, conversions

    @_cached
    def err(self, layer: int, error_bit_rate: float) -> OpCost | None:
        """PipeLayer ERR of one step: R·reads_per_step reads of ``layer``'s transposed copy
        (None for layer 0: no error is needed for the network input)."""
        if layer == 0:
            return None
        chip, lm = self.chip, self.mapping.layers[layer]
        r, reads = bit_serial_reads(chip), lm.reads_per_step
        per_read, conversions = self._error_reads(layer, error_bit_rate)
        delta = noc.packet_bits("error", lm.neurons)  # δ_l[t] read into the copy
        buf = chip.tile.buffer_energy_pj_per_bit
        return OpCost(
            "ERR",
            layer,
            f"xbarT:{layer}",
            ps(r * reads * read_cycle_ns(chip, lm)),
            _merge(_scaled(per_read, "error_backprop", reads), _energy(buffer=delta * buf)),
            {
                "array_reads": r * reads * lm.weight_arrays,
                "conversions": conversions,
                "buffer_bits": delta,
            },
        )

    @_cached
    def noc_backprop(self, layer: int) -> OpCost | None:
        """PipeLayer NOC_BACKPROP of one step: the error of ``layer``'s spikes INTO ``layer``
        from layer+1's first tile (None for the output layer)."""
        if layer == self.layers - 1:
            return None
        src, dst = self.mapping.layers[layer + 1].tiles[0], self.mapping.layers[layer].tiles[0]
        bits = noc.packet_bits("error", self._bits_in[layer + 1])
        return self._noc("NOC_BACKPROP", layer, bits, src, dst)

    @_cached
    def grad(self, layer: int, error_bit_rate: float) -> OpCost:
        """PipeLayer GRAD of one sample: T·R·reads_per_step reads of ``layer``'s gradient
        arrays and the buffered frames, membranes and δ_l[t]."""
        chip, lm, t = self.chip, self.mapping.layers[layer], self.net.time_steps
        r, reads = bit_serial_reads(chip), lm.reads_per_step
        per_read, conversions = self._error_reads(layer, error_bit_rate)
        deltas = noc.packet_bits("error", t * lm.neurons)  # δ_l[t] of every step
        buffered = t * self._bits_in[layer] + t * lm.neurons * MEMBRANE_BITS + 2 * deltas
        buf = chip.tile.buffer_energy_pj_per_bit
        return OpCost(
            "GRAD",
            layer,
            f"gradxbar:{layer}",
            ps(t * r * reads * read_cycle_ns(chip, lm)),
            _merge(_scaled(per_read, "grad", t * reads), _energy(buffer=buffered * buf)),
            {
                "array_reads": t * r * reads * lm.weight_arrays,
                "conversions": t * conversions,
                "buffer_bits": buffered,
            },
        )

    def _pipelayer_write(self, layer: int, fraction: float, pulses: float) -> OpCost:
        """Read every row out, merge, write back; both copies of W get the pulses in
        parallel."""
        chip, lm = self.chip, self.mapping.layers[layer]
        written = 2 * fraction * lm.cells
        dur, conversions, readout = 0, 0, 0.0
        if fraction > 0 and pulses > 0:  # a row is read out (one read cycle) before its pulses
            cycles = lm.array_rows * read_cycle_ns(chip, lm)
            dur = ps(cycles + write_ns(chip, lm, fraction, pulses))
            conversions = lm.rows * lm.columns * conversions_per_column(chip, lm)
            cells = lm.rows * lm.columns * cells_per_column(chip, lm)
            readout = cells * chip.device.read_energy_pj + conversions * chip.crossbar.adc_energy_pj
        energy = _energy(write=written * pulses * chip.device.write_energy_pj + readout)
        counters = {
            "cells_written": written,
            "pulses": written * pulses,
            "conversions": conversions,
        }
        return OpCost("WRITE", layer, f"xbar:{layer}", dur, energy, counters)


# -------------------------------------------------------------------------- timeline


class _Timeline:
    """The list scheduler: each op starts at max(ready, its resource's free time)."""

    def __init__(self) -> None:
        self.free: dict[str, int] = {}
        self.ops: list[Op] = []
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
        self._ebr = act.error_bit_rate
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
            ready, rate = max(g_ready[i], ends[i]), rates.grad_rate(i, n)
            last_grad[i] = max(
                tl.run(cm.local_grad(i, k, rate), b, n, -1, ready)
                for k in range(len(cm.mapping.layers[i].tiles))
            )
        data_gate = gate if pipe.data else max(last_grad)
    all_grads = max(last_grad)
    ends = [
        tl.run(
            cm.write(i, *rates.write(i, b)), b, -1, -1, last_grad[i] if pipe.batch else all_grads
        )
        for i in range(layers)
    ]
    return (0 if pipe.batch else max(ends)), max(ends)


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
        sample_grads = [tl.run(cm.grad(last, ebr), b, n, -1, ends[last])]
        for i in range(last, 0, -1):
            err, err_out = cm.err(i, ebr), cm.noc_backprop(i - 1)
            assert err is not None and err_out is not None
            back = [0] * t_steps
            for t in range(t_steps - 1, -1, -1):
                back[t] = tl.run(err_out, b, n, t, tl.run(err, b, n, t, arrivals[t]))
            arrivals = back
            sample_grads.append(tl.run(cm.grad(i - 1, ebr), b, n, -1, back[0]))
        grad_end = max(grad_end, *sample_grads)
        data_gate = gate if pipe.data else max(sample_grads)
    end = max(
        tl.run(cm.write(i, *rates.write(i, b)), b, -1, -1, grad_end) for i in range(cm.layers)
    )
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


def _schedule(cm: CostModel, rates: _Rates, batch: int, sizes: list[int]) -> Schedule:
    """Issue every batch (``sizes[b]`` samples each) and total the costs (module doc)."""
    chip = cm.chip
    run_batch = DATAFLOWS[chip.dataflow]
    tl, gate, batch_end, first = _Timeline(), 0, [], 0
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
    chip: ChipSpec, net: NetworkSpec, activity: Activity, *, batch: int, batches: int = 2
) -> Schedule:
    """Schedule ``batches`` batches of ``batch`` samples of ``net`` on ``chip``, every op at
    ``activity``'s average rates (the fast path; module doc)."""
    if batch < 1 or batches < 1:
        raise ValueError(f"batch ({batch}) and batches ({batches}) must be positive")
    activity.check(net)
    cm = CostModel(chip, net)
    return _schedule(cm, _Average(chip, net, activity), batch, [batch] * batches)


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
