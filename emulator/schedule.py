"""The three-level PipeSDFA pipeline and the PipeLayer schedule: operations, a deterministic
list schedule and the analytic cost model (DESIGN.md §3).

One training segment is ``batches`` batches of B samples, T steps each, on the weighted layers
l = 0..L−1 of a network mapped by :func:`emulator.mapping.map_network` (pool layers fold into
the next layer's input). Every operation has a resource, a duration and an energy per
component. An op starts at max(its inputs' finish, its resource's free time); ops are issued in
the fixed order below and each resource serves them first come, first served in that order (no
back-filling), so the schedule is deterministic. Times are integer picoseconds: every op's
duration is its formula in ns rounded once to the nearest ps (:func:`ps`), then only integers
are added and compared, so any emulation that rounds each op the same way reproduces every
time exactly. Energies are pJ per component; a total is Σ over op templates (kind, layer, tile)
in a fixed order of count × the template's energy, so it does not depend on op order either.

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
  a = ``Activity.error_bit_rate``; then g's prefix (n_l values) goes to every hidden layer's
  first tile (one NOC op each).
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

Dependencies and op order (per batch b, samples n in order; per sample all forward ops layer by
layer, steps in order, then the backward):

- Forward: XBAR(l,n,t) ← NOC(l−1→l,n,t) (time_steps off: ← NOC(l−1→l,n,T−1), layer by layer);
  NEURON(l,n,t) ← XBAR(l,n,t); NOC(l→l+1,n,t) ← NEURON(l,n,t). Layer 0's input is on its tile.
- PipeSDFA: NOC(e) ← NEURON(L−1,n,T−1); FEEDBACK(n) ← NOC(e); NOC(g→l) ← FEEDBACK(n); then
  LOCAL_GRAD ops, the output layer's first (its error is ready at NEURON(L−1,n,T−1)), then
  hidden layers 0..L−2 (← NOC(g→l) and NEURON(l,n,T−1)), each layer's tiles in order. No
  layer-to-layer backward dependency. data off: XBAR(0,n+1,0) ← every LOCAL_GRAD(·,n). batch
  on: WRITE(l,b) ← layer l's last LOCAL_GRAD of batch b; layer l's batch b+1 waits for
  WRITE(l,b) only (its resource ``xbar:l``). batch off: every WRITE(·,b) ← all of batch b's
  LOCAL_GRADs and every layer's batch b+1 ← all WRITE(·,b).
- PipeLayer (BPTT): ERR(l,n,t) for l = L−1..1, t = T−1..0, ← NEURON(L−1,n,T−1) (l = L−1) or
  NOC(l+1→l,n,t) (the error from above) and, through ``xbarT:l``, ERR(l,n,t+1); NOC(l→l−1)
  ← ERR(l,n,t). GRAD(l,n), l = L−1..0, ← the last error of layer l (NOC(l+1→l,n,0); the
  output layer: NEURON(L−1,n,T−1)). Updates only at batch end: every WRITE(·,b) ← all of
  batch b's GRADs, and batch b+1 starts after every WRITE (the pipeline drains). data off:
  XBAR(0,n+1,0) ← every GRAD(·,n). PipeLayer
  ignores ``chip.pipeline`` except ``data`` (its forward is time-step pipelined, as PipeSDFA's).

Reported: the batch period = end of the last batch's WRITEs − end of the previous batch's
(the first batch's: from 0), per sample = period / B; energy per sample = segment energy /
(batches·B); cycles = round(period / clock period).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

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
    """XY-routing hops between two tiles' mesh nodes (Manhattan distance)."""
    return noc.hops(mapping.positions[tile_a], mapping.positions[tile_b])


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
    ``energy_pj`` is shared by every op of the same template: do not modify it.
    """

    kind: str
    layer: int
    batch: int
    sample: int
    step: int
    resource: str
    start_ps: int
    end_ps: int
    energy_pj: dict[str, float]

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


@dataclass
class _Cost:
    """An op template: everything but the times. ``count`` counts the ops issued."""

    kind: str
    layer: int
    resource: str
    dur: int
    energy: dict[str, float]
    counters: dict[str, float] = field(default_factory=dict)
    count: int = 0
    exclusive: bool = field(init=False)

    def __post_init__(self) -> None:
        self.exclusive = is_exclusive(self.resource)


class _Timeline:
    """The list scheduler: each op starts at max(ready, its resource's free time)."""

    def __init__(self) -> None:
        self.free: dict[str, int] = {}
        self.ops: list[Op] = []
        self.costs: list[_Cost] = []
        self._known: set[int] = set()

    def run(self, cost: _Cost, batch: int, sample: int, step: int, ready: int) -> int:
        """Issue one op of template ``cost``; returns its end time."""
        start = ready
        if cost.exclusive:
            free = self.free.get(cost.resource, 0)
            start = ready if ready > free else free
            self.free[cost.resource] = start + cost.dur
        if id(cost) not in self._known:  # first use fixes the template's place in the sums
            self._known.add(id(cost))
            self.costs.append(cost)
        cost.count += 1
        self.ops.append(
            Op(
                cost.kind,
                cost.layer,
                batch,
                sample,
                step,
                cost.resource,
                start,
                start + cost.dur,
                cost.energy,
            )
        )
        return start + cost.dur


# -------------------------------------------------------------------------- templates


@dataclass
class _Layer:
    """The op templates of one weighted layer."""

    xbar: _Cost
    neuron: _Cost
    spikes_in: _Cost | None  # NOC of the spikes from layer l−1 (None for layer 0)
    write: _Cost
    grads: list[_Cost] = field(default_factory=list)  # PipeSDFA: one per tile
    g_in: _Cost | None = None  # PipeSDFA: NOC of g's prefix (hidden layers)
    err: _Cost | None = None  # PipeLayer: transposed read (l ≥ 1)
    err_out: _Cost | None = None  # PipeLayer: NOC of the error to layer l−1 (l ≥ 1)
    grad: _Cost | None = None  # PipeLayer: gradient arrays


@dataclass
class _Model:
    """Everything one dataflow's batch loop needs."""

    chip: ChipSpec
    net: NetworkSpec
    mapping: ChipMapping
    layers: list[_Layer]
    error_out: _Cost | None = None  # PipeSDFA: NOC of e to the feedback group
    feedback: _Cost | None = None


def _energy(**parts: float) -> dict[str, float]:
    return {k: v for k, v in parts.items() if v}


def _merge(*dicts: dict[str, float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for d in dicts:
        for k, v in d.items():
            out[k] = out.get(k, 0.0) + v
    return out


def _scaled(energy: dict[str, float], into: str, factor: float = 1.0) -> dict[str, float]:
    """All of ``energy`` summed into one component, times ``factor``."""
    return {into: factor * sum(energy.values())}


def _noc(chip: ChipSpec, m: ChipMapping, kind: str, layer: int, bits: int, a: int, b: int) -> _Cost:
    h = hops(m, a, b)
    energy = _energy(noc=noc.transfer_energy_pj(chip, bits, h))
    counters = {"noc_bits": float(bits * h)}
    return _Cost(
        kind, layer, f"noc:t{a}>t{b}", ps(noc.transfer_ns(chip, bits, h)), energy, counters
    )


def _inputs(net: NetworkSpec) -> list[int]:
    """Input frame size (bits per step) of every weighted layer, after any pool."""
    shapes = layer_shapes(net)
    return [math.prod(shapes[i]) for i in _weighted(net)]


def _forward(chip: ChipSpec, net: NetworkSpec, m: ChipMapping, act: Activity) -> list[_Layer]:
    """XBAR_READ, NEURON, spike NOC and WRITE templates of every layer (both dataflows)."""
    buf = chip.tile.buffer_energy_pj_per_bit
    inputs, layers = _inputs(net), []
    for lm, bits_in, rate in zip(m.layers, inputs, act.input_rates, strict=True):
        i, reads = lm.weighted, lm.reads_per_step
        read = {k: reads * v for k, v in read_energy_pj(chip, lm, rate).items()}
        frame = bits_in + reads * lm.rows  # written once, read by the arrays
        xbar = _Cost(
            "XBAR_READ",
            i,
            f"xbar:{i}",
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
        saved = lm.neurons * MEMBRANE_BITS
        neuron = _Cost(
            "NEURON",
            i,
            f"neuron:{i}",
            ps(chip.tile.neuron_latency_ns),
            _energy(neuron=lm.neurons * chip.tile.neuron_energy_pj, buffer=saved * buf),
            {"buffer_bits": saved},
        )
        spikes_in = None
        if i > 0:
            src, dst = m.layers[i - 1].tiles[0], lm.tiles[0]
            spikes_in = _noc(chip, m, "NOC_SPIKES", i, bits_in, src, dst)
        layers.append(_Layer(xbar, neuron, spikes_in, _write(chip, lm, act, i)))
    return layers


def _write_activity(chip: ChipSpec, act: Activity, i: int) -> tuple[float, float]:
    """(fraction of cells written per batch, mean pulses per written cell) of layer l."""
    fraction = act.write_fraction[i] if act.write_fraction else DEFAULT_WRITE_FRACTION
    pulses = act.pulses_per_cell[i] if act.pulses_per_cell else default_pulses_per_cell(chip)
    return fraction, pulses


def _write(chip: ChipSpec, lm: LayerMapping, act: Activity, i: int) -> _Cost:
    fraction, pulses = _write_activity(chip, act, i)
    written = fraction * lm.cells
    return _Cost(
        "WRITE",
        i,
        f"xbar:{i}",
        ps(write_ns(chip, lm, fraction, pulses)),
        _energy(write=written * pulses * chip.device.write_energy_pj),
        {"cells_written": written, "pulses": written * pulses},
    )


def _pipesdfa_model(chip: ChipSpec, net: NetworkSpec, act: Activity) -> _Model:
    """Forward templates plus the feedback group, g multicast and per-tile local gradients."""
    m = map_network(chip, net)
    layers = _forward(chip, net, m, act)
    model = _Model(chip, net, m, layers)
    buf, out = chip.tile.buffer_energy_pj_per_bit, m.layers[-1]
    if m.feedback is not None:
        fb, group = m.feedback, m.feedback.weighted
        e_bits = noc.packet_bits("error", net.num_classes)
        model.error_out = _noc(chip, m, "NOC_ERROR", group, e_bits, out.tiles[0], fb.tiles[0])
        r = bit_serial_reads(chip)
        model.feedback = _Cost(
            "FEEDBACK",
            group,
            "feedback",
            ps(r * read_cycle_ns(chip, fb)),
            _merge(
                _scaled(read_energy_pj(chip, fb, act.error_bit_rate, r), "feedback"),
                _energy(buffer=2 * e_bits * buf),
            ),
            {
                "array_reads": r * fb.feedback_arrays,
                "buffer_bits": 2 * e_bits,
                "conversions": r * fb.row_blocks * fb.columns * conversions_per_column(chip, fb),
            },
        )
        for lm in m.layers[:-1]:
            bits = noc.packet_bits("feedback", lm.neurons)
            layers[lm.weighted].g_in = _noc(
                chip, m, "NOC_FEEDBACK", lm.weighted, bits, fb.tiles[0], lm.tiles[0]
            )
    for lm, layer, bits_in, rate in zip(
        m.layers, layers, _inputs(net), act.input_rates, strict=True
    ):
        layer.grads = _local_grads(chip, net, m, lm, bits_in, rate)
    return model


def _local_grads(
    chip: ChipSpec, net: NetworkSpec, m: ChipMapping, lm: LayerMapping, bits_in: int, rate: float
) -> list[_Cost]:
    """One LOCAL_GRAD template per tile of the layer; the buffer traffic on its first tile."""
    t, error_in = net.time_steps, noc.packet_bits("feedback", lm.neurons)
    macs = local_grad_macs(net, lm, rate)
    reuse = t * bits_in  # the buffered input frames, instead of a second NoC fetch
    buffered = reuse + t * lm.neurons * MEMBRANE_BITS + 2 * error_in
    src_hops = hops(m, m.layers[lm.weighted - 1].tiles[0], lm.tiles[0]) if lm.weighted else 0
    saved_pj = reuse * src_hops * chip.noc.energy_pj_per_bit_hop
    grads = []
    for k, (tile, weights) in enumerate(zip(lm.tiles, lm.tile_weights, strict=True)):
        share = macs * weights / (lm.n_in * lm.n_out)
        energy = _energy(local_grad=share * chip.tile.grad_energy_pj_per_mac)
        counters = {"macs": share}
        if k == 0:
            energy = _merge(energy, _energy(buffer=buffered * chip.tile.buffer_energy_pj_per_bit))
            counters |= {
                "buffer_bits": buffered,
                "reuse_saved_bits": reuse,
                "reuse_saved_pj": saved_pj,
            }
        dur = ps(share / chip.tile.grad_macs_per_ns)
        grads.append(_Cost("LOCAL_GRAD", lm.weighted, f"grad:t{tile}", dur, energy, counters))
    return grads


def _pipelayer_model(chip: ChipSpec, net: NetworkSpec, act: Activity) -> _Model:
    """Forward templates plus BPTT's transposed reads, error NoC, crossbar gradients."""
    m = map_network(chip, net)
    layers = _forward(chip, net, m, act)
    r, t = bit_serial_reads(chip), net.time_steps
    buf = chip.tile.buffer_energy_pj_per_bit
    for lm, layer, bits_in in zip(m.layers, layers, _inputs(net), strict=True):
        i, reads, cycle = lm.weighted, lm.reads_per_step, read_cycle_ns(chip, lm)
        per_read = read_energy_pj(chip, lm, act.error_bit_rate, r)
        conversions = r * reads * lm.row_blocks * lm.columns * conversions_per_column(chip, lm)
        if i > 0:
            delta = noc.packet_bits("error", lm.neurons)  # δ_l[t] read into the copy
            layer.err = _Cost(
                "ERR",
                i,
                f"xbarT:{i}",
                ps(r * reads * cycle),
                _merge(_scaled(per_read, "error_backprop", reads), _energy(buffer=delta * buf)),
                {
                    "array_reads": r * reads * lm.weight_arrays,
                    "conversions": conversions,
                    "buffer_bits": delta,
                },
            )
            src, dst = lm.tiles[0], m.layers[i - 1].tiles[0]
            bits = noc.packet_bits("error", bits_in)
            layer.err_out = _noc(chip, m, "NOC_BACKPROP", i - 1, bits, src, dst)
        deltas = noc.packet_bits("error", t * lm.neurons)  # δ_l[t] of every step
        buffered = t * bits_in + t * lm.neurons * MEMBRANE_BITS + 2 * deltas
        layer.grad = _Cost(
            "GRAD",
            i,
            f"gradxbar:{i}",
            ps(t * r * reads * cycle),
            _merge(_scaled(per_read, "grad", t * reads), _energy(buffer=buffered * buf)),
            {
                "array_reads": t * r * reads * lm.weight_arrays,
                "conversions": t * conversions,
                "buffer_bits": buffered,
            },
        )
        layer.write = _pipelayer_write(chip, lm, act)
    return _Model(chip, net, m, layers)


def _pipelayer_write(chip: ChipSpec, lm: LayerMapping, act: Activity) -> _Cost:
    """Read every row out, merge, write back; both copies of W get the pulses in parallel."""
    fraction, pulses = _write_activity(chip, act, lm.weighted)
    written = 2 * fraction * lm.cells
    dur, conversions, readout = 0, 0, 0.0
    if fraction > 0 and pulses > 0:  # a row is read out (one read cycle) before its pulses
        dur = ps(lm.array_rows * read_cycle_ns(chip, lm) + write_ns(chip, lm, fraction, pulses))
        conversions = lm.rows * lm.columns * conversions_per_column(chip, lm)
        cells = lm.rows * lm.columns * cells_per_column(chip, lm)
        readout = cells * chip.device.read_energy_pj + conversions * chip.crossbar.adc_energy_pj
    energy = _energy(write=written * pulses * chip.device.write_energy_pj + readout)
    counters = {"cells_written": written, "pulses": written * pulses, "conversions": conversions}
    return _Cost("WRITE", lm.weighted, f"xbar:{lm.weighted}", dur, energy, counters)


# ----------------------------------------------------------------------------- batches


def _forward_sample(
    tl: _Timeline, model: _Model, steps_pipelined: bool, b: int, n: int, gate: int
) -> list[int]:
    """Issue sample n's forward; returns each layer's last NEURON end."""
    t_steps, ends = model.net.time_steps, []
    arrivals = [gate] * t_steps
    for i, layer in enumerate(model.layers):
        if i and not steps_pipelined:  # layer by layer: wait for the previous layer's step T
            arrivals = [arrivals[-1]] * t_steps
        out = []
        for t in range(t_steps):
            end = tl.run(layer.xbar, b, n, t, max(arrivals[t], gate))
            out.append(tl.run(layer.neuron, b, n, t, end))
        ends.append(out[-1])
        if i + 1 < len(model.layers):
            noc = model.layers[i + 1].spikes_in
            assert noc is not None
            arrivals = [tl.run(noc, b, n, t, e) for t, e in enumerate(out)]
    return ends


def _pipesdfa_batch(
    tl: _Timeline, model: _Model, pipe: PipelineSpec, b: int, batch: int, gate: int
) -> tuple[int, int]:
    """One PipeSDFA batch; returns (the time batch b+1 may start, the end of its writes)."""
    layers, last = model.layers, len(model.layers) - 1
    data_gate, last_grad = gate, [0] * len(layers)
    for n in range(b * batch, (b + 1) * batch):
        ends = _forward_sample(tl, model, pipe.time_steps, b, n, data_gate)
        g_ready = [0] * len(layers)
        if model.feedback is not None:
            assert model.error_out is not None
            e = tl.run(model.error_out, b, n, -1, ends[last])
            done = tl.run(model.feedback, b, n, -1, e)
            for i, layer in enumerate(layers[:-1]):
                assert layer.g_in is not None
                g_ready[i] = tl.run(layer.g_in, b, n, -1, done)
        for i in (last, *range(last)):  # the output layer's error is ready first
            ready = max(g_ready[i], ends[i])
            last_grad[i] = max(tl.run(cost, b, n, -1, ready) for cost in layers[i].grads)
        data_gate = gate if pipe.data else max(last_grad)
    all_grads = max(last_grad)
    ends = [
        tl.run(layer.write, b, -1, -1, last_grad[i] if pipe.batch else all_grads)
        for i, layer in enumerate(layers)
    ]
    return (0 if pipe.batch else max(ends)), max(ends)


def _pipelayer_batch(
    tl: _Timeline, model: _Model, pipe: PipelineSpec, b: int, batch: int, gate: int
) -> tuple[int, int]:
    """One PipeLayer batch (BPTT); returns (the time batch b+1 may start, the writes' end):
    the same, since the pipeline drains."""
    layers, last, t_steps = model.layers, len(model.layers) - 1, model.net.time_steps
    data_gate, grad_end = gate, 0
    for n in range(b * batch, (b + 1) * batch):
        ends = _forward_sample(tl, model, True, b, n, data_gate)
        arrivals = [ends[last]] * t_steps  # error of the output layer's spikes, per step
        sample_grads = [tl.run(_grad(layers[last]), b, n, -1, ends[last])]
        for i in range(last, 0, -1):
            layer = layers[i]
            assert layer.err is not None and layer.err_out is not None
            back = [0] * t_steps
            for t in range(t_steps - 1, -1, -1):
                back[t] = tl.run(layer.err_out, b, n, t, tl.run(layer.err, b, n, t, arrivals[t]))
            arrivals = back
            sample_grads.append(tl.run(_grad(layers[i - 1]), b, n, -1, back[0]))
        grad_end = max(grad_end, *sample_grads)
        data_gate = gate if pipe.data else max(sample_grads)
    end = max(tl.run(layer.write, b, -1, -1, grad_end) for layer in layers)
    return end, end


def _grad(layer: _Layer) -> _Cost:
    assert layer.grad is not None
    return layer.grad


_Dataflow = tuple[
    Callable[[ChipSpec, NetworkSpec, Activity], _Model],
    Callable[[_Timeline, _Model, PipelineSpec, int, int, int], tuple[int, int]],
]

DATAFLOWS: dict[str, _Dataflow] = {
    "pipesdfa": (_pipesdfa_model, _pipesdfa_batch),
    "pipelayer": (_pipelayer_model, _pipelayer_batch),
}
"""The one place the dataflows differ: (op templates, batch loop) per ``chip.dataflow``."""


# ---------------------------------------------------------------------------- schedule


@dataclass
class Schedule:
    """A simulated training segment and its analytic totals."""

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


def simulate(
    chip: ChipSpec, net: NetworkSpec, activity: Activity, *, batch: int, batches: int = 2
) -> Schedule:
    """Schedule ``batches`` batches of ``batch`` samples of ``net`` on ``chip`` (module doc)."""
    if batch < 1 or batches < 1:
        raise ValueError(f"batch ({batch}) and batches ({batches}) must be positive")
    activity.check(net)
    build, run_batch = DATAFLOWS[chip.dataflow]
    model = build(chip, net, activity)
    tl, gate, batch_end = _Timeline(), 0, []
    for b in range(batches):
        gate, end = run_batch(tl, model, chip.pipeline, b, batch, gate)
        batch_end.append(end)
    period = batch_end[-1] - (batch_end[-2] if batches > 1 else 0)
    samples = batches * batch
    energy = {c: 0.0 for c in COMPONENTS}
    counters = {c: 0.0 for c in COUNTERS}
    for cost in tl.costs:  # template order: first use
        for k, v in cost.energy.items():
            energy[k] += cost.count * v
        for k, v in cost.counters.items():
            counters[k] += cost.count * v
        counters["ops"] += cost.count
    per_sample = {k: v / samples for k, v in energy.items()}
    return Schedule(
        ops=tl.ops,
        mapping=model.mapping,
        batch=batch,
        batches=batches,
        batch_end_ns=[e / 1000 for e in batch_end],
        time_ns_per_batch=period / 1000,
        time_ns_per_sample=period / 1000 / batch,
        energy_pj_per_sample=per_sample,
        total_pj_per_sample=sum(per_sample.values()),
        cycles=round(period / 1000 * chip.clock_mhz / 1000),
        counters=counters,
    )
