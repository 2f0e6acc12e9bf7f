"""The cost of every op of a network on a chip: :class:`CostModel` composes the physical rules
of :mod:`emulator.cost.physical` into the ops of both dataflows (the ops and their rules are
listed in :mod:`emulator.cost.schedule`'s docstring)."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, TypeVar, cast

from emulator.cost import noc
from emulator.cost.physical import (
    Arrays,
    Cost,
    Spill,
    array_read,
    buffer_access,
    error_planes,
    grad_macs,
    input_drive,
    neuron_steps,
    transfer,
    write_rows,
)
from emulator.cost.timeline import OpCost
from emulator.physics.mapping import READS_TRANSPOSE, ChipMapping, LayerMapping, map_network
from emulator.spec import ChipSpec, NetworkSpec, feedback_widths, layer_shapes, weighted_layers

BUFFER_CLASSES = ("frames", "membranes", "errors")
"""What a tile buffer keeps, in the order it holds them when it cannot hold everything."""


def ps(ns: float) -> int:
    """A duration in ns as integer picoseconds (rounded once, to the nearest)."""
    return round(ns * 1000)


def hops(mapping: ChipMapping, tile_a: int, tile_b: int) -> int:
    """Router hops between two tiles' mesh nodes: the XY route's (the Manhattan distance),
    or the detour's around dead links (:func:`emulator.cost.noc.route`)."""
    a, b = mapping.positions[tile_a], mapping.positions[tile_b]
    return len(noc.route(a, b, mapping.chip))


def fresh_pulses_per_cell(chip: ChipSpec) -> float:
    """Mean pulses to program a fresh multi-bit value from the reset level: half the pulse
    levels (uniformly distributed levels; an intermediate write of the crossbar datapath)."""
    return (chip.device.pulse_levels - 1) / 2


def local_grad_macs(net: NetworkSpec, unit: LayerMapping, input_rate: float) -> float:
    """T·n_l·rate·fan_in additions of the weight gradient Σ_t δ_l[t]·s_{l−1}[t]ᵀ."""
    return net.time_steps * unit.neurons * input_rate * unit.n_in


def weight_arrays(chip: ChipSpec, unit: LayerMapping) -> Arrays:
    """The arrays of one copy of a layer's W (``crossbar.columns_per_weight`` cells per
    logical column), or of the feedback group (a pair per entry)."""
    feedback = unit.kind == "feedback"
    slices = 1 if feedback else chip.crossbar.slices
    return Arrays(
        rows=unit.rows,
        columns=unit.columns,
        row_blocks=unit.row_blocks,
        array_rows=unit.array_rows,
        array_columns=unit.array_columns,
        count=unit.feedback_arrays if feedback else unit.block_arrays,
        cells_per_column=2 if feedback else chip.crossbar.columns_per_weight,
        slices=slices,
    )


def transposed_arrays(chip: ChipSpec, mapping: ChipMapping, layer: int) -> Arrays:
    """The arrays a read of weighted layer ``layer``'s Wᵀ applies δ to, with Wᵀ's geometry.

    With a transposed copy (``crossbar.transpose: copy``): the copy's own arrays, n_out rows
    × n_in logical columns (:func:`emulator.physics.mapping.map_network`). Without one
    (``bidirectional``): W's own arrays driven from the column side, so W's logical columns
    are the rows driven and W's rows the lines read out, the partial sums adding up over W's
    column blocks.
    """
    copy = mapping.transpose(layer)
    if copy is not None:
        return weight_arrays(chip, copy)
    lm, slices = mapping.layers[layer], chip.crossbar.slices
    return Arrays(
        rows=lm.columns,
        columns=lm.rows,
        row_blocks=lm.block_arrays // lm.row_blocks,
        array_rows=lm.array_columns,
        array_columns=lm.array_rows,
        count=lm.block_arrays,
        cells_per_column=chip.crossbar.columns_per_weight,
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


def _inputs(net: NetworkSpec) -> list[int]:
    """Input frame size (values per step: spikes) of every weighted layer, after any pool."""
    shapes = layer_shapes(net)
    return [math.prod(shapes[i]) for i in weighted_layers(net)]


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
        self._values_in = _inputs(net)
        # a frame's bits: a spike each, or crossbar.input_bits per multi-bit input
        self._bits_in = [v * chip.crossbar.input_bits for v in self._values_in]
        # values of the error of each layer's outputs as sent on (after its pools)
        self._sent = [*self._values_in[1:], self.mapping.layers[-1].neurons]
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
        streaming the frame in and the positions' rows out; a multi-bit input
        (``crossbar.input_bits``) in as many bit planes, each through the rows' DACs."""
        chip, lm = self.chip, self.mapping.layers[layer]
        arrays = weight_arrays(chip, lm)
        read = array_read(chip, arrays, float(input_rate), chip.crossbar.input_bits)
        if chip.crossbar.input_bits > 1:  # each plane's active rows driven by their DACs
            read = read.beside(input_drive(chip, arrays, float(input_rate)))
        reads = read.repeated(lm.positions, lm.reads_per_step)
        frame = self._bits_in[layer] + lm.positions * lm.rows * chip.crossbar.input_bits
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
        backward neuron steps; the output layer's run in reverse through its membrane
        recurrence, still one neuron step each) beside the buffer reads of the T input
        frames, the T membranes and the buffered error of the layer's outputs (after its pools;
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
        """WRITE_T of ``layer``: the same pulses into its transposed copy, its own cells
        (each weight once: no duplicated kernel) row by row (None without a copy)."""
        chip, copy = self.chip, self.mapping.transpose(layer)
        if copy is None:
            return None
        cells = float(fraction) * copy.cells * copy.replicas
        cost = write_rows(chip, copy.array_rows if fraction > 0 else 0, cells, float(pulses))
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
        """ERR of one step: δ_l[t] read from the buffer and applied bit-serially to Wᵀ with
        Wᵀ's geometry (``crossbar.transpose``: the copy, or the arrays themselves driven from
        the column side, :func:`transposed_arrays`), every position of the arrays read (None
        for layer 0: no error is needed for the network input)."""
        if layer == 0:
            return None
        chip, lm = self.chip, self.mapping.layers[layer]
        # a copy steps through its own positions (conv: every output); W's arrays, W's
        unit = self.mapping.transpose(layer) or lm
        arrays = transposed_arrays(chip, self.mapping, layer)
        read = array_read(chip, arrays, float(error_bit_rate), error_planes(chip))
        reads = read.repeated(unit.positions, unit.reads_per_step).into("error_backprop")
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
        bits = self._values(self._values_in[layer + 1])
        return self._noc("NOC_BACKPROP", layer, bits, src, dst)


def _without_writes(cost: Cost) -> dict[str, float]:
    """Counters of the crossbar datapath: its intermediate writes are not weight writes."""
    counters = dict(cost.counters)
    counters["grad_cells_written"] = counters.pop("cells_written", 0.0)
    counters["grad_pulses"] = counters.pop("pulses", 0.0)
    return counters
