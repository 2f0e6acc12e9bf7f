"""Chip and network files: pydantic models, YAML loading, JSON Schema.

A chip file describes one emulated chip (NoC, tiles, PE cores, crossbars, device); a network
file describes the SNN it trains. Every field carries its unit in its name and a description
that says where its default comes from (``../shared/reference/FIGURES.md``). A bad file fails
with :class:`TopologyError`, whose message is ``FILE: field.path: reason`` (one line per error).
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

TOPOLOGY_DIR = Path(__file__).resolve().parents[1] / "topologies"
"""Where the shipped chip files live (``topologies/``; networks in ``topologies/networks/``)."""


class TopologyError(ValueError):
    """A chip or network file is missing or invalid; ``str(err)`` is ``FILE: field: reason``."""


class Spec(BaseModel):
    """Base of every file model: unknown fields are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


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
    """A tile: PE cores, a tile buffer, accumulators, neuron units and a digital gradient unit."""

    pes: PosInt = Field(4, description="PE cores per tile.")
    buffer_kb: PosFloat = Field(64.0, description="Tile buffer size, KB (ISAAC eDRAM 64 KB).")
    buffer_energy_pj_per_bit: NonNegFloat = Field(
        0.08, description="Tile buffer access energy per bit, pJ (ISAAC eDRAM 20.45 pJ/256 b)."
    )
    buffer_bus_bits: PosInt = Field(256, description="Tile buffer access width, bits (ISAAC).")
    buffer_latency_ns: PosFloat = Field(
        1.0, description="Tile buffer access latency, ns (assumed)."
    )
    shift_add_energy_pj: NonNegFloat = Field(
        0.021, description="Energy of one 16-bit shift-add / accumulate op, pJ (ISAAC)."
    )
    neuron_energy_pj: NonNegFloat = Field(
        0.1, description="Energy of one LIF/IF neuron update, pJ (our assumption; not published)."
    )
    neuron_latency_ns: PosFloat = Field(
        1.0, description="Latency of one neuron-unit step over a tile's neurons, ns (assumed)."
    )
    grad_energy_pj_per_mac: NonNegFloat = Field(
        0.1, description="Digital local-gradient unit energy per multiply-accumulate, pJ (assumed)."
    )
    grad_macs_per_ns: PosFloat = Field(
        64.0, description="Digital local-gradient unit throughput, MACs per ns (assumed)."
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
    readout: Literal["adc", "if_counter"] = Field(
        "adc", description="Column readout: an ADC, or an integrate-and-fire counter (PipeLayer)."
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
    error_bits: PosInt = Field(
        8, description="Bits of an error value applied bit-serially to feedback/transposed reads."
    )

    @property
    def slices(self) -> int:
        """Cells per weight magnitude (per polarity)."""
        return self.weight_bits // self.cell_bits

    @property
    def columns_per_weight(self) -> int:
        """Physical columns per logical weight column: a differential pair per slice."""
        return 2 * self.slices

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


class PipelineSpec(Spec):
    """The three pipeline levels, each switchable for ablation."""

    time_steps: bool = Field(True, description="Layer l+1 runs step t while layer l runs t+1.")
    data: bool = Field(True, description="The next sample enters as soon as layer 1 is free.")
    batch: bool = Field(True, description="Weight writes proceed layer by layer as a wavefront.")


class ChipSpec(Spec):
    """One emulated chip."""

    name: str = Field(description="Chip name.")
    description: str = Field("", description="Free text.")
    dataflow: Literal["pipesdfa", "pipelayer"] = Field(
        description="pipesdfa (SDFA training) or pipelayer (BPTT, PipeLayer schedule)."
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
    pipeline: PipelineSpec = Field(
        default_factory=PipelineSpec, description="Pipeline levels on/off (ablation)."
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


# -------------------------------------------------------------------------- network


class NeuronSpec(Spec):
    """The spiking neuron after every weighted layer."""

    model: Literal["lif", "if"] = Field("lif", description="LIF (leaky) or IF (no leak).")
    tau: float = Field(2.0, ge=1.0, description="LIF time constant in steps (SDFA code: 2).")
    threshold: PosFloat = Field(1.0, description="Firing threshold (SDFA code: 1.0).")
    reset: Literal["zero", "subtract"] = Field(
        "zero", description="Reset to 0 (SDFA code) or subtract the threshold."
    )
    surrogate_alpha: PosFloat = Field(2.0, description="ATan surrogate α (SDFA code: 2).")


class FcLayer(Spec):
    """Fully connected layer (inputs are flattened)."""

    type: Literal["fc"] = Field(description="Layer kind.")
    out: PosInt = Field(description="Output neurons.")
    in_features: PosInt | None = Field(None, description="Optional check of the input size.")


class ConvLayer(Spec):
    """2-D convolution over (channels, height, width)."""

    type: Literal["conv"] = Field(description="Layer kind.")
    out_channels: PosInt = Field(description="Output channels.")
    kernel: PosInt = Field(3, description="Square kernel size.")
    stride: PosInt = Field(1, description="Stride.")
    padding: Annotated[int, Field(ge=0)] = Field(0, description="Zero padding on each side.")
    in_channels: PosInt | None = Field(None, description="Optional check of the input channels.")


class PoolLayer(Spec):
    """Spatial pooling of spikes (max = OR of spikes); no neuron follows it."""

    type: Literal["pool"] = Field(description="Layer kind.")
    mode: Literal["max", "avg"] = Field("max", description="max or avg pooling.")
    kernel: PosInt = Field(2, description="Square window.")


Layer = Annotated[FcLayer | ConvLayer | PoolLayer, Field(discriminator="type")]


class TrainingSpec(Spec):
    """Training defaults for this network (command-line flags override them)."""

    epochs: PosInt = Field(10, description="Epochs.")
    batch: PosInt = Field(32, description="Samples per weight update.")
    lr: PosFloat = Field(1e-3, description="Learning rate.")
    optimizer: Literal["adam", "sgd"] = Field("adam", description="Adam (SDFA code) or SGD.")


class NetworkSpec(Spec):
    """An SNN: input, time steps, neuron, layers."""

    name: str = Field(description="Network name.")
    description: str = Field("", description="Free text, with the source of the shapes.")
    input_shape: list[PosInt] = Field(description="One input frame: [features] or [C, H, W].")
    encoding: Literal["rate", "events"] = Field(
        "rate",
        description="rate: static values in [0,1] become Bernoulli spikes each step; "
        "events: the dataset supplies T binary frames.",
    )
    time_steps: PosInt = Field(description="Time steps T per sample.")
    num_classes: PosInt = Field(description="Classes; the last layer's outputs vote in groups.")
    neuron: NeuronSpec = Field(default_factory=NeuronSpec, description="Spiking neuron.")
    layers: list[Layer] = Field(min_length=1, description="Layers, input to output.")
    training: TrainingSpec = Field(default_factory=TrainingSpec, description="Training defaults.")

    @model_validator(mode="after")
    def _shapes(self) -> NetworkSpec:
        shapes = layer_shapes(self)
        if not isinstance(self.layers[-1], (FcLayer, ConvLayer)):
            raise ValueError("layers: the last layer must be fc or conv (the output neurons)")
        out = math.prod(shapes[-1])
        if out % self.num_classes:
            raise ValueError(
                f"num_classes: the last layer has {out} outputs, not a multiple of num_classes "
                f"({self.num_classes})"
            )
        return self


def layer_shapes(net: NetworkSpec) -> list[tuple[int, ...]]:
    """Output shape of every layer (index 0 is the input); raises ValueError on a mismatch."""
    shape = tuple(net.input_shape)
    shapes = [shape]
    for i, layer in enumerate(net.layers):
        where = f"layers.{i}"
        if isinstance(layer, FcLayer):
            n_in = math.prod(shape)
            if layer.in_features is not None and layer.in_features != n_in:
                raise ValueError(
                    f"{where}.in_features: is {layer.in_features} but the previous layer "
                    f"outputs {n_in} values {list(shape)}"
                )
            shape = (layer.out,)
        else:
            if len(shape) != 3:
                raise ValueError(
                    f"{where}: {layer.type} needs a [C, H, W] input, got {list(shape)}"
                )
            c, h, w = shape
            if isinstance(layer, ConvLayer):
                if layer.in_channels is not None and layer.in_channels != c:
                    raise ValueError(
                        f"{where}.in_channels: is {layer.in_channels} but the previous layer "
                        f"outputs {c} channels"
                    )
                k, s, p = layer.kernel, layer.stride, layer.padding
                h, w = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
                c = layer.out_channels
            else:
                h, w = h // layer.kernel, w // layer.kernel
            if h < 1 or w < 1:
                raise ValueError(f"{where}: the {layer.type} window is larger than its input")
            shape = (c, h, w)
        shapes.append(shape)
    return shapes


# -------------------------------------------------------------------------- loading

_KINDS: dict[str, type[Spec]] = {"chip": ChipSpec, "network": NetworkSpec}


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TopologyError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise TopologyError(f"{path}: cannot read: {err}") from None
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise TopologyError(f"{path}: {line}YAML syntax error: {err.problem}") from None
    except yaml.YAMLError as err:
        raise TopologyError(f"{path}: YAML syntax error: {err}") from None


def format_errors(path: Path, err: ValidationError) -> str:
    """Each pydantic error of the file at ``path`` as one ``FILE: field.path: reason`` line."""
    lines = []
    for e in err.errors(include_url=False):
        loc = ".".join(str(p) for p in e["loc"] if not _is_union_tag(p))
        msg = e["msg"].removeprefix("Value error, ")
        # A model-level check names its field at the start of its message.
        m = re.match(r"^([A-Za-z_]\w*(?:\.\w+)*): (.*)$", msg)
        if m:
            loc = f"{loc}.{m[1]}" if loc else m[1]
            msg = m[2]
        lines.append(f"{path}: {loc or '(file)'}: {msg}")
    return "\n".join(lines)


def _is_union_tag(part: object) -> bool:
    return part in ("fc", "conv", "pool")


def kind_of(data: Any) -> str:
    """Guess whether parsed YAML is a chip or a network file (networks have ``layers``)."""
    return "network" if isinstance(data, dict) and "layers" in data else "chip"


def load_file(path: str | os.PathLike, kind: str | None = None) -> ChipSpec | NetworkSpec:
    """Load and validate a chip or network file (``kind`` guessed from its keys if None)."""
    path = Path(path)
    data = _read_yaml(path)
    if not isinstance(data, dict):
        raise TopologyError(f"{path}: (file): expected a mapping of fields, got {_kind(data)}")
    kind = kind or kind_of(data)
    try:
        return _KINDS[kind].model_validate(data)
    except ValidationError as err:
        raise TopologyError(format_errors(path, err)) from None


def _kind(data: Any) -> str:
    return "an empty file" if data is None else f"a {type(data).__name__}"


def resolve(name_or_path: str | os.PathLike, kind: str) -> Path:
    """A file path, or a shipped topology by name (``tiny``, ``digits-mlp``)."""
    path = Path(name_or_path)
    if path.exists() or path.suffix in (".yaml", ".yml") or os.sep in str(name_or_path):
        return path
    folder = TOPOLOGY_DIR / "networks" if kind == "network" else TOPOLOGY_DIR
    return folder / f"{name_or_path}.yaml"


def load_chip(name_or_path: str | os.PathLike) -> ChipSpec:
    """Load a chip file by path or shipped name."""
    spec = load_file(resolve(name_or_path, "chip"), "chip")
    assert isinstance(spec, ChipSpec)
    return spec


def load_network(name_or_path: str | os.PathLike) -> NetworkSpec:
    """Load a network file by path or shipped name."""
    spec = load_file(resolve(name_or_path, "network"), "network")
    assert isinstance(spec, NetworkSpec)
    return spec


def json_schema(kind: str) -> dict[str, Any]:
    """JSON Schema of a chip or network file, for editors."""
    return _KINDS[kind].model_json_schema()
