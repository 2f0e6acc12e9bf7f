"""Area and static power of a chip, by one rule for every dataflow: each component's count on
the chip (:func:`inventory`) times its ``area`` and ``leakage`` fields; static energy is the
leakage of what is powered times the time it is powered (:func:`static_energy_pj`).

The counts: every crossbar on the mesh (``tiles × pes × crossbars``), plus the morphable
arrays a crossbar gradient datapath writes δ into (PipeLayer's, off the mesh: one set per
weighted layer, :func:`~emulator.cost.model.delta_arrays`); per array its ``converters``
readout units (ADCs or I&F counters, as ``crossbar.readout`` says) and one shift-add; with
multi-bit inputs (``crossbar.input_bits`` > 1) a DAC per row and, read out plane by plane,
a sample-and-hold per column (:func:`~emulator.cost.physical.has_sample_hold`); per PE core
its input and output registers; per tile a neuron unit, the gradient unit's lanes (its MACs
per cycle), ``buffer_kb`` of buffer and the bus between buffer and PE cores; per mesh node
a router; per chip its off-chip interface. With ``leakage.gating: unused_tiles`` the tiles
no unit is placed on, their arrays and their routers are powered off.
"""

from __future__ import annotations

from emulator.cost.model import delta_arrays
from emulator.cost.physical import has_sample_hold
from emulator.physics.mapping import ChipMapping
from emulator.spec import ChipSpec, NetworkSpec

PARTS = (
    "arrays",
    "converters",
    "dacs",
    "sample_holds",
    "shift_adds",
    "pe_registers",
    "neuron_units",
    "grad_lanes",
    "buffer_kb",
    "buses",
    "routers",
    "io",
)
"""The components counted, in the order every breakdown lists them (:data:`FIELDS`)."""


def morphable_arrays(chip: ChipSpec, net: NetworkSpec, mapping: ChipMapping) -> int:
    """Arrays a crossbar gradient datapath writes δ into (0 with a digital one)."""
    if chip.tile.grad_datapath != "crossbar":
        return 0
    return sum(delta_arrays(chip, net, lm).count for lm in mapping.layers)


def grad_lanes(chip: ChipSpec) -> float:
    """Lanes of a tile's gradient unit: the MACs it finishes per clock cycle."""
    return chip.tile.grad_macs_per_ns * 1000 / chip.clock_mhz


def inventory(
    chip: ChipSpec, net: NetworkSpec, mapping: ChipMapping, *, powered: bool = False
) -> dict[str, float]:
    """How many of each component (:data:`PARTS`) the chip has with ``net`` mapped;
    ``powered``: only those ``leakage.gating`` keeps powered."""
    tiles = nodes = None
    if powered and chip.leakage.gating == "unused_tiles":
        tiles = nodes = mapping.tiles_used
    return counts(chip, morphable=morphable_arrays(chip, net, mapping), tiles=tiles, nodes=nodes)


def counts(
    chip: ChipSpec, *, morphable: int = 0, tiles: int | None = None, nodes: int | None = None
) -> dict[str, float]:
    """How many of each component (:data:`PARTS`): ``morphable`` arrays off the mesh, on
    ``tiles`` tiles and ``nodes`` routers (default: all the chip has)."""
    tiles = chip.tiles if tiles is None else tiles
    nodes = chip.noc.nodes if nodes is None else nodes
    xb = chip.crossbar
    arrays = tiles * chip.tile.pes * chip.pe.crossbars + morphable
    return {
        "arrays": arrays,
        "converters": arrays * xb.converters,
        "dacs": arrays * xb.rows if xb.input_bits > 1 else 0,
        "sample_holds": arrays * xb.cols if has_sample_hold(chip) else 0,
        "shift_adds": arrays,
        "pe_registers": tiles * chip.tile.pes,
        "neuron_units": tiles,
        "grad_lanes": tiles * grad_lanes(chip),
        "buffer_kb": tiles * chip.tile.buffer_kb,
        "buses": tiles,
        "routers": nodes,
        "io": 1,
    }


FIELDS = {
    "arrays": ("array_um2", "array_mw"),
    "converters": ("adc_um2", "adc_mw"),  # an I&F counter's own with readout: if_counter
    "dacs": ("dac_um2", "dac_mw"),
    "sample_holds": ("sample_hold_um2", "sample_hold_mw"),
    "shift_adds": ("shift_add_um2", "shift_add_mw"),
    "pe_registers": ("pe_registers_um2", "pe_registers_mw"),
    "neuron_units": ("neuron_unit_um2", "neuron_unit_mw"),
    "grad_lanes": ("grad_um2_per_lane", "grad_mw_per_lane"),
    "buffer_kb": ("buffer_um2_per_kb", "buffer_mw_per_kb"),
    "buses": ("bus_um2", "bus_mw"),
    "routers": ("router_um2", "router_mw"),
    "io": ("io_um2", "io_mw"),
}
"""Each part's (``area.`` field, ``leakage.`` field), per unit."""


def _per_unit(chip: ChipSpec, what: str) -> dict[str, float]:
    """Each part's area (µm², ``what`` = "area") or leakage (mW, "leakage") per unit."""
    section, k = (chip.area, 0) if what == "area" else (chip.leakage, 1)
    fields = {part: pair[k] for part, pair in FIELDS.items()}
    if chip.crossbar.readout == "if_counter":
        fields["converters"] = ("if_counter_um2", "if_counter_mw")[k]
    return {part: getattr(section, name) for part, name in fields.items()}


def area_mm2(chip: ChipSpec, net: NetworkSpec, mapping: ChipMapping) -> dict[str, float]:
    """The chip's area by part, mm²."""
    return priced(chip, inventory(chip, net, mapping), "area")


def leakage_mw(chip: ChipSpec, net: NetworkSpec, mapping: ChipMapping) -> dict[str, float]:
    """The static power of what is powered, by part, mW."""
    return priced(chip, inventory(chip, net, mapping, powered=True), "leakage")


def priced(chip: ChipSpec, count: dict[str, float], what: str) -> dict[str, float]:
    """``count`` of each part (:func:`counts`) × its area (``what`` = "area", in mm²) or its
    leakage ("leakage", in mW)."""
    unit, scale = _per_unit(chip, what), 1e-6 if what == "area" else 1.0
    return {part: count[part] * unit[part] * scale for part in PARTS}


def static_energy_pj(
    chip: ChipSpec, net: NetworkSpec, mapping: ChipMapping, time_ns: float
) -> float:
    """Leakage × the time powered: the whole of ``time_ns`` (mW × ns = pJ)."""
    return sum(leakage_mw(chip, net, mapping).values()) * time_ns
