"""One cost function per physical operation, used by every dataflow
(docs/cost-model.md#fairness).

Each function returns a :class:`Cost`: a duration in ns, energy per component in pJ and
counters. :class:`emulator.cost.schedule.CostModel` builds every scheduled op of both dataflows
from these and nothing else, so two chips that differ only in ``dataflow`` cost every shared
operation identically; the dataflows differ only in which operations they issue, how many
and when. ``xb`` = ``chip.crossbar``, ``dev`` = ``chip.device``, ``tile`` = ``chip.tile``.

========================  ============================================================
operation                 rule
========================  ============================================================
array read                :func:`array_read`: an input applied to a set of arrays at
                          one position, all arrays in parallel. ``planes`` pulses (1
                          for binary spikes; a bit-serial multi-bit input: one per
                          bit plane); cells: planes · active · rows · columns · cells
                          per column × ``dev.read_energy_pj``; then the readout.
readout                   inside :func:`array_read`: ``readouts`` = row blocks ·
                          columns · readouts per column (ADC: one per differential
                          pair per slice, the pair subtracted in analog; I&F counter:
                          one per physical column) per readout round; rounds = planes
                          (``xb.serial_readout: per_plane``) or 1 (``integrated``: the
                          counter integrates the train). Each array's readouts share
                          its ``xb.converters`` units in turn. Energy × ``xb.adc_energy_pj``.
                          With sample-and-holds (:func:`has_sample_hold`) a plane's
                          pulse overlaps the previous plane's readout (two stages:
                          pulse + (planes − 1) · max(pulse, round) + round); without
                          them pulses and rounds alternate.
shift-add                 inside :func:`array_read`: each output column adds its
                          partial values (rounds · row blocks · readouts per column) −
                          1 times, × ``tile.shift_add_energy_pj``.
neuron step               :func:`neuron_steps`: neurons · steps × ``tile.neuron_energy_pj``,
                          steps × ``tile.neuron_latency_ns`` (a forward update or a
                          backward surrogate-gradient step, δ = err ⊙ σ'(v)).
buffer access             :func:`buffer_access`: bits × ``tile.buffer_energy_pj_per_bit``,
                          ⌈bits / ``buffer_bus_bits``⌉ × ``buffer_latency_ns``; the
                          tile's spilled share also crosses the NoC to the global buffer.
NoC transfer              :func:`transfer`: :func:`emulator.cost.noc.transfer_ns` and
                          :func:`emulator.cost.noc.transfer_energy_pj`.
gradient MAC              :func:`grad_macs`: macs × ``tile.grad_energy_pj_per_mac``,
                          macs / ``tile.grad_macs_per_ns``.
write pulses              :func:`write_rows`: cells · pulses × ``dev.write_energy_pj``;
                          rows in sequence, the cells of a row in parallel,
                          ⌈pulses⌉ × ``dev.write_latency_ns`` per row.
========================  ============================================================
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from emulator.cost import noc
from emulator.physics.crossbar import Counters
from emulator.spec import ChipSpec


@dataclass(frozen=True)
class Cost:
    """A duration (ns), energy per component (pJ) and counters of some physical work."""

    ns: float = 0.0
    energy_pj: Mapping[str, float] = field(default_factory=dict)
    counters: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "energy_pj", MappingProxyType(_nonzero(self.energy_pj)))
        object.__setattr__(self, "counters", MappingProxyType(dict(self.counters)))

    def then(self, *others: Cost) -> Cost:
        """This work, then ``others`` in sequence: durations add."""
        return _combine((self, *others), sum)

    def beside(self, *others: Cost) -> Cost:
        """This work and ``others`` at once (overlapped): the longest duration."""
        return _combine((self, *others), max)

    def repeated(self, energy_times: float, ns_times: float | None = None) -> Cost:
        """Energy and counters × ``energy_times``, duration × ``ns_times`` (default the same):
        e.g. P positions read on G replicas take ⌈P/G⌉ cycles but P reads' energy."""
        k = energy_times if ns_times is None else ns_times
        return Cost(
            self.ns * k,
            {c: v * energy_times for c, v in self.energy_pj.items()},
            {c: v * energy_times for c, v in self.counters.items()},
        )

    def into(self, component: str) -> Cost:
        """The same work with all its energy booked to one component."""
        return Cost(self.ns, {component: sum(self.energy_pj.values())}, self.counters)


def _nonzero(energy: Mapping[str, float]) -> dict[str, float]:
    return {k: v for k, v in energy.items() if v}


def _combine(costs: tuple[Cost, ...], duration: Callable[[Iterable[float]], float]) -> Cost:
    energy: dict[str, float] = {}
    counters: dict[str, float] = {}
    for cost in costs:
        for k, v in cost.energy_pj.items():
            energy[k] = energy.get(k, 0.0) + v
        for k, v in cost.counters.items():
            counters[k] = counters.get(k, 0.0) + v
    return Cost(duration(c.ns for c in costs), energy, counters)


# ----------------------------------------------------------------------------- arrays


@dataclass(frozen=True)
class Arrays:
    """A set of arrays one read applies an input to, all in parallel.

    A matrix of ``rows`` inputs × ``columns`` logical columns cut into ``row_blocks`` ×
    (count / row_blocks) arrays; the fullest array holds ``array_rows`` × ``array_columns``.
    A logical column takes ``cells_per_column`` physical cells per row (a differential pair
    per slice) and gives ``slices`` partial values per readout round.
    """

    rows: int
    columns: int
    row_blocks: int
    array_rows: int
    array_columns: int
    count: int
    cells_per_column: int
    slices: int


def cell_read_pj(chip: ChipSpec, cells: float) -> float:
    """``cells`` cell reads (an active row's cells, per pulse): × ``device.read_energy_pj``."""
    return cells * chip.device.read_energy_pj


def readout_pj(chip: ChipSpec, readouts: float) -> float:
    """``readouts`` conversions or counter readouts: × ``crossbar.adc_energy_pj``."""
    return readouts * chip.crossbar.adc_energy_pj


def pulse_pj(chip: ChipSpec, pulses: float) -> float:
    """``pulses`` programming pulses: × ``device.write_energy_pj``."""
    return pulses * chip.device.write_energy_pj


def counted_energy_pj(chip: ChipSpec, counters: Counters) -> dict[str, float]:
    """The energy of a crossbar model's counted actions (:class:`Counters`), by kind, pJ:
    priced as :func:`array_read` and :func:`write_rows` price them."""
    return {
        "read": cell_read_pj(chip, counters.cell_reads),
        "readout": readout_pj(chip, counters.conversions),
        "write": pulse_pj(chip, counters.pulses),
    }


def readouts_per_column(chip: ChipSpec, arrays: Arrays) -> int:
    """Readouts of one logical column per round: ADC one per pair per slice (the pair is
    subtracted in analog), I&F counter one per physical column."""
    return arrays.slices if chip.crossbar.readout == "adc" else arrays.cells_per_column


def readout_ns(chip: ChipSpec, arrays: Arrays) -> float:
    """One readout round of the fullest array: its readouts share its converters in turn."""
    readouts = arrays.array_columns * readouts_per_column(chip, arrays)
    return -(-readouts // chip.crossbar.converters) * chip.crossbar.adc_latency_ns


def has_sample_hold(chip: ChipSpec) -> bool:
    """Whether each column has a sample-and-hold: with multi-bit inputs
    (``crossbar.input_bits`` > 1) read out plane by plane (as ISAAC); not with spikes, nor
    where an I&F counter integrates the whole train (``serial_readout: integrated``). It
    holds a plane's column values while the next plane is pulsed, so pulses and readouts
    overlap; its area and leakage are counted where it exists (:mod:`emulator.cost.area`)."""
    xb = chip.crossbar
    return xb.input_bits > 1 and xb.serial_readout == "per_plane"


def read_ns(chip: ChipSpec, arrays: Arrays, planes: int, rounds: int) -> float:
    """``planes`` pulses and ``rounds`` readout rounds of ``arrays``: in turn, or with
    sample-and-holds and a round per plane, the pulse of one plane beside the readout of
    the one before (a two-stage pipeline)."""
    pulse, readout = chip.device.read_latency_ns, readout_ns(chip, arrays)
    if rounds == planes > 1 and has_sample_hold(chip):
        return pulse + (planes - 1) * max(pulse, readout) + readout
    return planes * pulse + rounds * readout


def array_read(chip: ChipSpec, arrays: Arrays, active: float, planes: int = 1) -> Cost:
    """Apply one input (a fraction ``active`` of its rows driven per pulse) to ``arrays``.

    ``planes`` > 1: a bit-serial multi-bit input, one pulse per bit plane; read out per
    plane, or once when ``crossbar.serial_readout`` is ``integrated``.
    """
    xb = chip.crossbar
    rounds = 1 if planes > 1 and xb.serial_readout == "integrated" else planes
    per_column = readouts_per_column(chip, arrays)
    cells = arrays.rows * arrays.columns * arrays.cells_per_column
    readouts = rounds * arrays.row_blocks * arrays.columns * per_column
    shift_adds = arrays.columns * (rounds * arrays.row_blocks * per_column - 1)
    return Cost(
        read_ns(chip, arrays, planes, rounds),
        {
            "read": cell_read_pj(chip, planes * active * cells),
            "readout": readout_pj(chip, readouts),
            "shift_add": shift_adds * chip.tile.shift_add_energy_pj,
        },
        {"array_reads": planes * arrays.count, "conversions": readouts},
    )


def input_drive(chip: ChipSpec, arrays: Arrays, active: float) -> Cost:
    """The DACs of a multi-bit input's bit planes (``crossbar.input_bits``): each plane
    drives its active rows of every array, one activation each (``dac_energy_pj``), in the
    read's own pulse (no time of its own)."""
    xb = chip.crossbar
    driven = active * arrays.rows * (arrays.count / arrays.row_blocks)
    return Cost(0.0, {"dac": xb.input_bits * driven * xb.dac_energy_pj})


def error_planes(chip: ChipSpec) -> int:
    """Bit-plane pulses of one multi-bit error vector: a positive and a negative plane per
    magnitude bit of ``crossbar.error_bits`` (sign-magnitude)."""
    return 2 * (chip.crossbar.error_bits - 1)


# ------------------------------------------------------------------------- digital work


def neuron_steps(chip: ChipSpec, neurons: int, steps: int = 1) -> Cost:
    """``steps`` neuron-unit steps over ``neurons`` neurons (lanes in parallel)."""
    tile = chip.tile
    return Cost(steps * tile.neuron_latency_ns, {"neuron": steps * neurons * tile.neuron_energy_pj})


def grad_macs(chip: ChipSpec, macs: float) -> Cost:
    """``macs`` multiply-accumulates of a tile's gradient unit."""
    tile = chip.tile
    return Cost(
        macs / tile.grad_macs_per_ns,
        {"grad": macs * tile.grad_energy_pj_per_mac},
        {"macs": macs},
    )


@dataclass(frozen=True)
class Spill:
    """A tile's buffer overflow: the ``fraction`` of its accesses that go to the global
    buffer instead, ``hops`` router hops away."""

    fraction: float = 0.0
    hops: int = 0


def buffer_access(chip: ChipSpec, bits: float, spill: Spill = Spill()) -> Cost:
    """``bits`` written or read in a tile buffer; the spilled share crosses the NoC."""
    tile = chip.tile
    local = Cost(
        -(-bits // tile.buffer_bus_bits) * tile.buffer_latency_ns,
        {"buffer": bits * tile.buffer_energy_pj_per_bit},
        {"buffer_bits": bits},
    )
    if not spill.fraction or not bits:
        return local
    spilled = bits * spill.fraction
    trip = transfer(chip, spilled, spill.hops)
    return local.then(Cost(trip.ns, {"spill": trip.energy_pj["noc"]}, {"spilled_bits": spilled}))


def transfer(chip: ChipSpec, bits: float, hops: int) -> Cost:
    """``bits`` over ``hops`` router hops (0 hops: on the tile, free)."""
    return Cost(
        noc.transfer_ns(chip, bits, hops),
        {"noc": noc.transfer_energy_pj(chip, bits, hops)},
        {"noc_bits": bits * hops},
    )


def write_rows(chip: ChipSpec, rows: int, cells: float, pulses: float) -> Cost:
    """Program ``cells`` cells with ``pulses`` mean pulses each, ``rows`` rows in sequence
    (the fullest array's; arrays in parallel), a row's cells in parallel."""
    dev = chip.device
    if not cells or not pulses:
        return Cost(0.0, {}, {"cells_written": cells, "pulses": 0.0})
    return Cost(
        rows * math.ceil(pulses) * dev.write_latency_ns,
        {"write": pulse_pj(chip, cells * pulses)},
        {"cells_written": cells, "pulses": cells * pulses},
    )
