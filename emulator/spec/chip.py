"""Chip files: the pydantic models of one emulated chip (NoC, tiles, PE cores, crossbars,
device, mapping choices, assumed activity, pipeline switches).

Every field carries its unit in its name and a description that says where its default comes
from (``docs/sources.md``), or that it is assumed.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_FIELD_VALUE = 1e15
"""The largest magnitude a number in a chip or network file may have: every quantity here,
in its field's units, is far smaller (the largest shipped is 300,000 ns); beyond it the
sums of the cost model overflow (1e308 pJ) long before they mean anything."""


class Spec(BaseModel):
    """Base of every file model: unknown fields are errors, instances are immutable, real
    numbers are finite and at most :data:`MAX_FIELD_VALUE` in magnitude (whole numbers have
    their own bounds: a seed may be any word; counts meet the memory checks)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _bounded(cls, value: Any) -> Any:
        if isinstance(value, float) and abs(value) > MAX_FIELD_VALUE:
            raise ValueError(f"{value:g} is beyond {MAX_FIELD_VALUE:g}, the most a field may hold")
        return value


PosInt = Annotated[int, Field(gt=0)]
PosFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]

# ----------------------------------------------------------------------------- chip


class NocSpec(Spec):
    """The network-on-chip: a 2-D mesh with XY routing."""

    mesh: str = Field(
        "2x2",
        pattern=r"^[1-9][0-9]*x[1-9][0-9]*$",
        description="Mesh size as ROWSxCOLS router nodes, one tile per node (our assumption).",
    )
    flit_bits: PosInt = Field(256, description="Bits per flit (ISAAC router, 256-bit flits).")
    hop_latency_ns: PosFloat = Field(1.0, description="Latency of one router hop, ns (assumed).")
    energy_pj_per_bit_hop: NonNegFloat = Field(
        0.081,
        description="Link + router energy per bit per hop, pJ (ISAAC router 20.74 pJ / 256 bits).",
    )

    dead_links: list[Annotated[str, Field(pattern=r"^\d+,\d+-\d+,\d+$")]] = Field(
        default_factory=list,
        description="Broken links between neighbouring routers, 'r,c-r,c' (both directions); "
        "routes detour around them.",
    )

    @model_validator(mode="after")
    def _links(self) -> NocSpec:
        for i, link in enumerate(self.dead_links):
            a, b = (tuple(int(v) for v in end.split(",")) for end in link.split("-"))
            inside = all(0 <= r < self.rows and 0 <= c < self.cols for r, c in (a, b))
            if not inside or abs(a[0] - b[0]) + abs(a[1] - b[1]) != 1:
                raise ValueError(
                    f"dead_links.{i}: {link!r} is not a link between neighbouring nodes of "
                    f"the {self.mesh} mesh"
                )
        return self

    def dead(self) -> frozenset[tuple[tuple[int, int], tuple[int, int]]]:
        """The dead links, in both directions."""
        out = set()
        for link in self.dead_links:
            a, b = (tuple(int(v) for v in end.split(",")) for end in link.split("-"))
            out |= {(a, b), (b, a)}
        return frozenset(out)

    @property
    def rows(self) -> int:
        """Mesh rows."""
        return int(self.mesh.split("x")[0])

    @property
    def cols(self) -> int:
        """Mesh columns."""
        return int(self.mesh.split("x")[1])

    @property
    def nodes(self) -> int:
        """Router nodes in the mesh."""
        return self.rows * self.cols


class TileSpec(Spec):
    """A tile: PE cores, a tile buffer, accumulators, neuron units and a gradient unit."""

    pes: PosInt = Field(4, description="PE cores per tile.")
    buffer_kb: PosFloat = Field(
        64.0,
        description="Tile buffer capacity, KB (ISAAC eDRAM 64 KB). What the schedule keeps "
        "on a tile beyond it (input frames, membrane potentials, errors of the samples in "
        "flight) spills to the global buffer: that share of every access crosses the NoC.",
    )
    buffer_energy_pj_per_bit: NonNegFloat = Field(
        0.08, description="Tile buffer access energy per bit, pJ (ISAAC eDRAM 20.45 pJ/256 b)."
    )
    buffer_bus_bits: PosInt = Field(
        256,
        description="Tile buffer access width, bits (ISAAC): an access of b bits takes "
        "ceil(b / buffer_bus_bits) × buffer_latency_ns.",
    )
    buffer_latency_ns: PosFloat = Field(
        1.0, description="Latency of one buffer access of buffer_bus_bits, ns (assumed)."
    )
    membrane_bits: PosInt = Field(
        16,
        description="Bits of a buffered membrane potential, kept every step for the "
        "gradient (assumed: ISAAC's 16-bit datapath).",
    )
    value_bits: PosInt = Field(
        16,
        description="Bits of a multi-bit value on the NoC and in the buffer: partial sums, "
        "errors, projected errors, weight-code deltas (assumed: ISAAC's 16-bit datapath).",
    )
    shift_add_energy_pj: NonNegFloat = Field(
        0.021, description="Energy of one 16-bit shift-add / accumulate op, pJ (ISAAC)."
    )
    neuron_energy_pj: NonNegFloat = Field(
        0.1,
        description="Energy of one LIF/IF neuron update (forward) or surrogate-gradient step "
        "(backward), pJ (our assumption; not published).",
    )
    neuron_latency_ns: PosFloat = Field(
        1.0, description="Latency of one neuron-unit step over a tile's neurons, ns (assumed)."
    )
    grad_datapath: Literal["digital", "crossbar"] = Field(
        "digital",
        description="How the weight gradient Σ_t δ[t]·s[t−1]ᵀ is computed: 'digital', the "
        "tile's gradient unit at grad_macs_per_ns and grad_energy_pj_per_mac (one addition "
        "per active input spike); 'crossbar', as PipeLayer published: δ of every step is "
        "written into morphable arrays and each input's spike train reads them (one MVM per "
        "input), the per-sample results accumulated by the gradient unit.",
    )
    grad_energy_pj_per_mac: NonNegFloat = Field(
        0.1,
        description="Gradient unit energy per multiply-accumulate (an addition for a binary "
        "spike), pJ (assumed; 45 nm: 16-bit add 0.05 pJ, 32-bit add 0.1 pJ, Horowitz, "
        "ISSCC 2014).",
    )
    grad_macs_per_ns: PosFloat = Field(
        64.0, description="Gradient unit throughput, MACs per ns (assumed)."
    )


class PeSpec(Spec):
    """A PE core: crossbars with their periphery (readout, shift-add)."""

    crossbars: PosInt = Field(8, description="Crossbars per PE core (ISAAC: 8 per IMA).")


class CrossbarSpec(Spec):
    """One crossbar array and its readout."""

    rows: PosInt = Field(128, description="Word lines (inputs) per crossbar (PipeLayer, ISAAC).")
    cols: PosInt = Field(128, description="Bit lines (cell columns) per crossbar.")
    cell_bits: PosInt = Field(2, description="Bits stored per cell (ISAAC: 2).")
    weight_bits: PosInt = Field(
        8, description="Magnitude bits per weight; bit-sliced over weight_bits/cell_bits cells."
    )
    weight_encoding: Literal["differential", "offset"] = Field(
        "differential",
        description="How a signed weight sits in cells: 'differential', a pair per slice "
        "(G⁺ − G⁻, the sign picking which cell holds the slices; an update moves either "
        "way); 'offset', ISAAC's biased encoding, one cell per slice holding the weight "
        "plus a bias the shift-add subtracts (half the columns and cell reads per weight; "
        "costed for dataflow: inference only, as the crossbar model trains pairs).",
    )
    readout: Literal["adc", "if_counter"] = Field(
        "adc", description="Column readout: an ADC, or an integrate-and-fire counter (PipeLayer)."
    )
    input_bits: PosInt = Field(
        1,
        description="Bits of each forward input, fed one bit plane per read through a 1-bit "
        "DAC per row and a sample-and-hold per column (1: spikes, no DAC; ISAAC: 16).",
    )
    dac_energy_pj: NonNegFloat = Field(
        0.417,
        description="Energy of one 1-bit DAC activation (a row driven in one bit plane of a "
        "multi-bit input), pJ (ISAAC: 4 mW for 8x128 DACs at 10 MHz).",
    )
    adc_bits: PosInt = Field(
        8, description="Bits of the ADC (or of the I&F counter); the output saturates beyond."
    )
    adc_energy_pj: NonNegFloat = Field(
        1.667, description="Energy per conversion (or per counter readout), pJ (ISAAC 8-bit)."
    )
    adc_latency_ns: NonNegFloat = Field(
        0.833, description="Latency of one conversion, ns (ISAAC 1.2 GS/s)."
    )
    converters: PosInt = Field(
        1,
        description="Readout units (ADCs or I&F counters) per crossbar; the columns of a read "
        "share them in turn (ISAAC: one ADC per crossbar; PipeLayer: an I&F counter per "
        "column, i.e. cols).",
    )
    error_bits: PosInt = Field(
        8,
        description="Bits of an error value (sign-magnitude) applied bit-serially to feedback "
        "or transposed reads: 2·(error_bits − 1) binary planes (assumed).",
    )
    serial_readout: Literal["per_plane", "integrated"] = Field(
        "per_plane",
        description="Readout of a bit-serial (multi-bit) input: 'per_plane', every bit plane "
        "converted and shift-added; 'integrated', the I&F counter integrates the whole "
        "weighted-spike train and is read once (PipeLayer; needs readout: if_counter).",
    )
    transpose: Literal["copy", "bidirectional"] = Field(
        "copy",
        description="How a dataflow that back-propagates through W reads Wᵀ: 'copy', a "
        "transposed copy in arrays of its own, written with W (PipeLayer as we read it); "
        "'bidirectional', the same arrays driven from the column side (no copy, but the "
        "forward reads and the transposed reads share the arrays).",
    )
    update: Literal["pulse", "read_merge_write"] = Field(
        "pulse",
        description="How a weight update is programmed: 'pulse', pulses from the levels the "
        "chip keeps; 'read_merge_write', every row read out first, merged with the update, "
        "written back (PipeLayer).",
    )
    weight_range_over_init: PosFloat = Field(
        4.0,
        description="A layer's weight range (code_max × LSB) as a multiple of its largest "
        "initial weight (assumed; sets the LSB, so the update resolution).",
    )

    @property
    def slices(self) -> int:
        """Cells per weight magnitude (per polarity)."""
        return self.weight_bits // self.cell_bits

    @property
    def columns_per_weight(self) -> int:
        """Physical columns per logical weight column: a differential pair per slice, or
        one cell per slice with ``weight_encoding: offset``."""
        return self.slices if self.weight_encoding == "offset" else 2 * self.slices

    @property
    def weights_per_row(self) -> int:
        """Logical output columns one crossbar holds."""
        return self.cols // self.columns_per_weight


class FormingSpec(Spec):
    """Conductance left by forming in never-programmed cells (the random feedback arrays)."""

    formed_fraction: float = Field(
        0.5,
        gt=0,
        le=1,
        description="Fraction of cells that form (ESGNN: programming voltage sets sparsity).",
    )
    formed_g_us: PosFloat = Field(
        50.0, description="Median conductance of a formed cell, µS (ESGNN: formed below 20 kΩ)."
    )
    formed_sigma_log: NonNegFloat = Field(
        0.3, description="Log-normal spread of formed conductances (assumed)."
    )
    pristine_g_us: NonNegFloat = Field(
        0.1, description="Conductance of an unformed (pristine) cell, µS (ESGNN: ≈ 10 MΩ)."
    )


class FaultSpec(Spec):
    """Stuck cells of the programmable arrays (a fault map fixed at manufacture)."""

    stuck_at_gmin: float = Field(
        0.0, ge=0, le=1, description="Fraction of cells stuck at Gmin (they ignore writes)."
    )
    stuck_at_gmax: float = Field(
        0.0, ge=0, le=1, description="Fraction of cells stuck at Gmax (they ignore writes)."
    )
    seed: Annotated[int, Field(ge=0)] = Field(
        0, description="Seed of the fault map (independent of the run's seed)."
    )

    @model_validator(mode="after")
    def _total(self) -> FaultSpec:
        if self.stuck_at_gmin + self.stuck_at_gmax > 1:
            raise ValueError("stuck_at_gmin: with stuck_at_gmax more than every cell")
        return self


class DeviceSpec(Spec):
    """The RRAM cell: conductance range, programming, variation, read/write costs."""

    g_min_us: PosFloat = Field(1.0, description="Minimum conductance, µS (NeuroSim V2.1 1 MΩ).")
    g_max_us: PosFloat = Field(10.0, description="Maximum conductance, µS (NeuroSim V2.1 100 kΩ).")
    pulse_levels: PosInt = Field(
        32, description="Conductance levels reachable by identical pulses (NeuroSim V2.1: 32)."
    )
    nonlinearity_ltp: float = Field(
        0.0, description="Potentiation nonlinearity ν (0 = linear; NeuroSim RealDevice 2.4)."
    )
    nonlinearity_ltd: float = Field(
        0.0, description="Depression nonlinearity ν (0 = linear; NeuroSim RealDevice -4.88)."
    )
    d2d_sigma: NonNegFloat = Field(
        0.0, description="Device-to-device σ of each cell's range, fraction (NeuroSim V2.1: 0)."
    )
    c2c_sigma: NonNegFloat = Field(
        0.003,
        description="Cycle-to-cycle σ per write, fraction of (Gmax-Gmin) × √pulses (NeuroSim).",
    )
    read_noise_sigma: NonNegFloat = Field(
        0.01,
        description="Read noise σ per column read, fraction of (Gmax-Gmin) (aihwkit: ~1 %).",
    )
    read_latency_ns: PosFloat = Field(10.0, description="Read pulse, ns (NeuroSim V2.1).")
    read_energy_pj: NonNegFloat = Field(
        0.025, description="Energy per active cell per read, pJ (V²·Gmax·t at 0.5 V, 10 ns)."
    )
    write_latency_ns: PosFloat = Field(50.0, description="Write pulse, ns (NeuroSim V2.1).")
    write_energy_pj: NonNegFloat = Field(
        8.0, description="Energy per write pulse, pJ (V²·Gmax·t at 4 V, 50 ns)."
    )
    forming: FormingSpec = Field(
        default_factory=FormingSpec, description="Forming randomness of the feedback arrays."
    )
    faults: FaultSpec = Field(
        default_factory=FaultSpec, description="Stuck cells of the programmable arrays."
    )

    @model_validator(mode="after")
    def _range(self) -> DeviceSpec:
        if self.g_max_us <= self.g_min_us:
            raise ValueError(
                f"g_max_us: {self.g_max_us} must be greater than g_min_us ({self.g_min_us})"
            )
        return self


class MappingSpec(Spec):
    """Mapping choices that apply to every layer alike."""

    conv_replication: PosInt = Field(
        1,
        description="Replication G of conv layers: each conv layer's weight arrays are "
        "duplicated G times and its window positions shared among the copies, so a step "
        "takes ceil(positions / G) read cycles (PipeLayer's parallelism granularity). The "
        "same G on both chips matches their area.",
    )


Rate = Annotated[float, Field(ge=0.0, le=1.0)]


class ActivitySpec(Spec):
    """Activity assumed where none is measured (an activity file overrides each value)."""

    error_bit_rate: Rate = Field(
        0.25,
        description="Fraction of rows active in one bit-plane read of a multi-bit error "
        "(assumed: half the bits set, half the values of each sign).",
    )
    write_fraction: Rate = Field(
        0.5, description="Fraction of a layer's weight cells written per batch (assumed)."
    )
    pulses_per_cell: NonNegFloat | None = Field(
        None,
        description="Mean programming pulses per written cell (default: one level step, "
        "(pulse_levels − 1)/(2^cell_bits − 1)).",
    )


class AreaSpec(Spec):
    """Silicon area of each component, µm² per unit (defaults: ISAAC's 32 nm component table,
    Shafiee et al., ISCA 2016; NeuRRAM, Wan et al., Nature 2022, and Aladdin's 40 nm adder as
    Accelergy's hwcomponents-library derives them; docs/sources.md#area), at the node each
    paper gives (only the I&F counter, the one part ISAAC lacks, is scaled to 32 nm)."""

    array_um2: NonNegFloat = Field(
        25.0,
        description="One crossbar array (cells and drivers), µm² (ISAAC: 8 arrays of 128x128 "
        "in 0.0002 mm²). Counts every array: on the mesh, and a crossbar gradient datapath's "
        "morphable arrays off it.",
    )
    adc_um2: NonNegFloat = Field(
        1200.0, description="One ADC, µm² (ISAAC: 8 ADCs of 8 bits at 1.28 GS/s in 0.0096 mm²)."
    )
    if_counter_um2: NonNegFloat = Field(
        24.2,
        description="One integrate-and-fire counter readout, µm² (NeuRRAM's I&F ADC, 400 µm² "
        "at 130 nm, scaled to ISAAC's 32 nm by node², (32/130)²; PipeLayer publishes none).",
    )
    dac_um2: NonNegFloat = Field(
        0.166,
        description="One 1-bit input DAC (a row of a multi-bit input), µm² (ISAAC: 8x128 DACs "
        "in 0.00017 mm²).",
    )
    sample_hold_um2: NonNegFloat = Field(
        0.039,
        description="One sample-and-hold (a column of a multi-bit input read), µm² (ISAAC: "
        "8x128 in 0.00004 mm²).",
    )
    shift_add_um2: NonNegFloat = Field(
        30.0,
        description="The shift-add of one crossbar, µm² (ISAAC: 4 shift-and-add units per 8 "
        "arrays in 0.00024 mm²).",
    )
    pe_registers_um2: NonNegFloat = Field(
        2870.0,
        description="A PE core's input and output registers, µm² (ISAAC: a 2 KB input "
        "register in 0.0021 mm² and a 256 B output register in 0.00077 mm² per IMA).",
    )
    neuron_unit_um2: NonNegFloat = Field(
        35584.0,
        description="A tile's neuron unit, µm² (assumed: 128 lanes of Aladdin's 40 nm 32-bit "
        "adder, 278 µm² each).",
    )
    grad_um2_per_lane: NonNegFloat = Field(
        278.0,
        description="One lane of a tile's gradient unit (tile.grad_macs_per_ns × 1000 / "
        "clock_mhz lanes), µm² (Aladdin's 40 nm 32-bit adder: with binary spikes a gradient "
        "MAC is an add).",
    )
    buffer_um2_per_kb: NonNegFloat = Field(
        1297.0,
        description="Tile buffer per KB, µm² (ISAAC: 64 KB eDRAM in 0.083 mm²).",
    )
    bus_um2: NonNegFloat = Field(
        90000.0,
        description="A tile's bus between its buffer and its PE cores, µm² (ISAAC: the "
        "eDRAM-to-IMA bus, 384 wires, 0.090 mm² per tile).",
    )
    router_um2: NonNegFloat = Field(
        37750.0,
        description="One mesh node's router and links, µm² (ISAAC: a router shared by 4 tiles "
        "in 0.151 mm²).",
    )
    io_um2: NonNegFloat = Field(
        0.0,
        description="The chip's off-chip interface, µm² (0: none modelled, the edge chip "
        "holds its network; ISAAC: HyperTransport, 22.88 mm²).",
    )


class LeakageSpec(Spec):
    """Static (leakage) power of each component, mW per unit, charged as leakage × the time
    it is powered (``gating``) by one rule for every dataflow. ISAAC and PipeLayer publish
    total power at full rate, not its leakage; NeuRRAM's and Aladdin's static powers are as
    Accelergy's hwcomponents-library derives them (docs/sources.md#area); the rest assumed."""

    array_mw: NonNegFloat = Field(
        0.0,
        description="One crossbar array, mW (0: RRAM cells are non-volatile and draw nothing "
        "unread; a read's energy is dynamic).",
    )
    adc_mw: NonNegFloat = Field(
        1e-5, description="One ADC, mW (NeuRRAM's I&F ADC, 10 nW at 130 nm; ISAAC gives none)."
    )
    if_counter_mw: NonNegFloat = Field(
        1e-5, description="One I&F counter readout, mW (NeuRRAM's I&F ADC, 10 nW at 130 nm)."
    )
    dac_mw: NonNegFloat = Field(
        1e-5, description="One input DAC, mW (NeuRRAM's analog sample unit, 10 nW at 130 nm)."
    )
    sample_hold_mw: NonNegFloat = Field(
        1e-5, description="One sample-and-hold, mW (NeuRRAM's analog sample, 10 nW at 130 nm)."
    )
    shift_add_mw: NonNegFloat = Field(
        5e-6, description="One crossbar's shift-add, mW (NeuRRAM's shift-add, 5 nW at 130 nm)."
    )
    pe_registers_mw: NonNegFloat = Field(
        0.044,
        description="A PE core's input and output registers, mW (assumed: 3 % of ISAAC's "
        "1.47 mW for them, the share the buffer's leakage takes of ISAAC's eDRAM power).",
    )
    neuron_unit_mw: NonNegFloat = Field(
        0.307,
        description="A tile's neuron unit, mW (assumed: 128 lanes of Aladdin's 40 nm 32-bit "
        "adder, 2.4 µW each).",
    )
    grad_mw_per_lane: NonNegFloat = Field(
        0.0024, description="One gradient-unit lane, mW (Aladdin's 40 nm 32-bit adder, 2.4 µW)."
    )
    buffer_mw_per_kb: NonNegFloat = Field(
        0.01, description="Tile buffer per KB, mW (assumed: 0.64 mW for ISAAC's 64 KB)."
    )
    bus_mw: NonNegFloat = Field(
        0.21,
        description="A tile's buffer-to-PE bus, mW (assumed: 3 % of ISAAC's 7 mW for it, "
        "as the buffer's).",
    )
    router_mw: NonNegFloat = Field(
        1.0, description="One mesh node's router, mW (assumed: 1/42 of ISAAC's router power)."
    )
    io_mw: NonNegFloat = Field(
        0.0,
        description="The chip's off-chip interface, mW (0: none modelled; ISAAC: "
        "HyperTransport, 10.4 W).",
    )
    gating: Literal["none", "unused_tiles"] = Field(
        "none",
        description="What is powered: 'none' gates nothing (every component leaks the whole "
        "run); 'unused_tiles' powers off the tiles no layer uses, with their arrays and "
        "routers.",
    )


class PipelineSpec(Spec):
    """The three pipeline levels, each switchable for ablation."""

    time_steps: bool = Field(True, description="Layer l+1 runs step t while layer l runs t+1.")
    data: bool = Field(True, description="The next sample enters as soon as layer 1 is free.")
    batch: bool = Field(True, description="Weight writes proceed layer by layer as a wavefront.")


class ChipSpec(Spec):
    """One emulated chip."""

    name: str = Field(description="Chip name.")
    description: str = Field("", description="Free text.")
    dataflow: Literal["pipesdfa", "pipelayer", "inference"] = Field(
        description="pipesdfa (SDFA training), pipelayer (BPTT, PipeLayer schedule) or "
        "inference (the forward alone: nothing learnt, as ISAAC); only pipesdfa is emulated "
        "through the cores, the others by the cost model."
    )
    clock_mhz: PosFloat = Field(1000.0, description="Digital clock, MHz (our assumption).")
    tiles: PosInt = Field(4, description="Tiles on the chip, one per mesh node at most.")
    noc: NocSpec = Field(default_factory=NocSpec, description="Network-on-chip.")
    tile: TileSpec = Field(default_factory=TileSpec, description="Every tile.")
    pe: PeSpec = Field(default_factory=PeSpec, description="Every PE core.")
    crossbar: CrossbarSpec = Field(
        default_factory=CrossbarSpec, description="Every crossbar and its readout."
    )
    device: DeviceSpec = Field(default_factory=DeviceSpec, description="The RRAM cell.")
    mapping: MappingSpec = Field(
        default_factory=MappingSpec, description="Mapping choices (conv replication)."
    )
    activity: ActivitySpec = Field(
        default_factory=ActivitySpec, description="Activity assumed where none is measured."
    )
    pipeline: PipelineSpec = Field(
        default_factory=PipelineSpec, description="Pipeline levels on/off (ablation)."
    )
    area: AreaSpec = Field(default_factory=AreaSpec, description="Area of each component.")
    leakage: LeakageSpec = Field(
        default_factory=LeakageSpec, description="Static power of each component."
    )

    @model_validator(mode="after")
    def _consistent(self) -> ChipSpec:
        xb = self.crossbar
        if xb.weight_bits % xb.cell_bits:
            raise ValueError(
                f"crossbar.weight_bits: {xb.weight_bits} is not a multiple of "
                f"crossbar.cell_bits ({xb.cell_bits})"
            )
        if xb.cols < xb.columns_per_weight:
            raise ValueError(
                f"crossbar.cols: {xb.cols} columns cannot hold one weight, which needs "
                f"{xb.columns_per_weight} columns (differential pair × {xb.slices} slices)"
            )
        if self.tiles > self.noc.nodes:
            raise ValueError(
                f"tiles: {self.tiles} tiles exceed the {self.noc.mesh} mesh's "
                f"{self.noc.nodes} nodes"
            )
        if xb.converters > xb.cols:
            raise ValueError(
                f"crossbar.converters: {xb.converters} readout units exceed the "
                f"{xb.cols} columns they serve"
            )
        if xb.serial_readout == "integrated" and xb.readout != "if_counter":
            raise ValueError(
                "crossbar.serial_readout: 'integrated' needs readout: if_counter (an ADC "
                "converts every bit plane; only a counter integrates a spike train)"
            )
        if xb.weight_encoding == "offset" and self.dataflow != "inference":
            raise ValueError(
                "crossbar.weight_encoding: 'offset' is costed for dataflow: inference only "
                f"(not {self.dataflow}): the crossbar model trains differential pairs"
            )
        if self.device.pulse_levels < 2**xb.cell_bits:
            raise ValueError(
                f"device.pulse_levels: {self.device.pulse_levels} levels cannot store "
                f"{xb.cell_bits}-bit cells ({2**xb.cell_bits} levels)"
            )
        return self

    @property
    def crossbars_total(self) -> int:
        """Crossbars on the whole chip."""
        return self.tiles * self.tile.pes * self.pe.crossbars
