"""Mapping a network onto the chip: each layer's option (im2col or a VW-SDK window), the
transposed copies and the feedback group, and placement on PE cores and tiles.

Matrices are cut into blocks by :mod:`emulator.physics.tiling`; conv windows and their
cycle counts come from :mod:`emulator.physics.vwsdk`.

A conv layer on a chip serves the chip's clock, not VW-SDK's single array: the cost model
reads all of a layer's arrays at once, so a time step takes ``reads_per_step`` =
⌈positions / replicas⌉ read cycles (replicas = min(G, positions), G the chip's
``mapping.conv_replication``), whatever the number of arrays. Its options are im2col and every
window that fits one array (VW-SDK's candidates), each taking ⌈IC/ICt⌉·⌈OC/OCt⌉ arrays per copy
(im2col ⌈K²·IC/AR⌉·⌈OC/AC⌉; AC counts logical columns, so the slices and differential pairs
of a weight are in it). One rule on every chip, whatever its dataflow:

1. Every conv layer starts at the option with the fewest PE cores (im2col's: no window takes
   fewer arrays), and on them the fewest reads per step. These needs decide whether the
   network fits (:func:`pe_cores_needed`, so :func:`emulator.physics.growth.fit_chips` grows a chip
   by them, and a window never makes a network that fits in im2col not fit).
2. The chip's spare PE cores (all it has beyond those needs) then go to the windows: the
   layer with the most reads per step (on a tie the earlier one: the one setting the
   pipeline's clock) moves to its next option, the one with the fewest PE cores among those
   reading fewer times per step, if the spare PE cores hold the extra; a layer whose next
   option does not fit keeps what it has and drops out; until every layer has dropped out.

So every conv layer ends on the fewest reads per step among its options whose PE cores fit in
its own plus the spare ones left at the end (``fitting`` of ``candidates`` in ``pipesdfa
map``); on equal reads on fewer PE cores, then fewer arrays, then im2col before any window,
then VW-SDK's tie-break (fewer single-array cycles, then as above). A chip with room for
every layer's fastest window gives every layer that window, on either dataflow; a chip whose
feedback group or transposed copies leave less room gives less. The VW-SDK count of the
option taken stays reported (``cycles``, beside VW-SDK's own ``vwsdk_cycles``).

Placement (:func:`map_network`): weighted layers in network order, then the feedback group,
then the transposed copies; each starts on a fresh PE core (a PE core serves one layer),
filling each PE core's ``pe.crossbars`` arrays before the next; PE cores are taken in order
within a tile, tiles in order. Tile t sits at the mesh node of a serpentine (boustrophedon)
walk over the mesh rows: row 0 left to right, row 1 right to left, …, so consecutive tiles
are neighbours. Pool layers take no arrays.

Transposed copies (a dataflow that back-propagates through W, :data:`READS_TRANSPOSE`, with
``crossbar.transpose: copy``): layer l ≥ 1 keeps Wᵀ on arrays of its own, with Wᵀ's own
geometry: n_out rows × n_in logical columns, ⌈n_out/AR⌉·⌈n_in/AC⌉ arrays. For a conv layer Wᵀ
is the unrolled kernel matrix transposed, OC × K²·IC (the entries W's arrays hold, so a copy
written with W holds them once each), read once per output position: δ of the position's OC
channels in, K²·IC contributions to the input's error out, added up by the tile's adders.
The copy takes no window: one driving the δ of i·j neighbouring outputs at once would put
their (K+i−1)(K+j−1)·ICt inputs on an array's AC logical columns (16 on the shipped chips:
at most 4 outputs per read for K = 3), which is not modelled. Layer 0 has no copy: its error
would be the network input's, which nothing reads.

The feedback group: SDFA has ONE random matrix B (C × M, C = ``num_classes``, M = the widest
hidden layer's neurons) and hidden layer l uses its first n_l columns
(docs/algorithm.md#feedback), so
g_l = e·B[:, :n_l]/√M is the first n_l entries of g = e·B/√M. The chip therefore forms ONE
array group holding C × M (one differential pair per entry, :func:`feedback_blocks`), reads it
once per sample, and sends each hidden layer its prefix over the NoC. The group's blocks carry
the layer number :func:`feedback_layer` (the number of weighted layers, one past the last
weighted layer), so their ids read ``B{L}.r…c…``. Only a ``pipesdfa`` chip with at least one
hidden layer has the group (BPTT on a ``pipelayer`` chip has no random feedback).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from emulator.limits import check_fits, mesh_need
from emulator.physics.tiling import (
    Grid,
    ceil_div,
    cut,
    feedback_blocks,
    sizes,
)
from emulator.physics.vwsdk import ConvMapping, Window, candidate_windows, conv_cycles, preference
from emulator.spec import (
    ChipSpec,
    ConvLayer,
    FcLayer,
    NetworkSpec,
    PoolLayer,
    feedback_widths,
    layer_shapes,
    weighted_layers,
)


class MappingError(ValueError):
    """The network does not fit the chip; the message names both sides' numbers."""


class UnsupportedNetworkError(ValueError):
    """No chip of this kind can run the network, whatever its size."""


def check_chip_network(net: NetworkSpec) -> None:
    """Refuse a network whose layers would read other than binary spikes: an avg pool's
    fractions (the crossbars' inputs are spikes, with no DAC)."""
    for i, layer in enumerate(net.layers):
        if isinstance(layer, PoolLayer) and layer.mode == "avg":
            raise UnsupportedNetworkError(
                f"network {net.name}: layer {i} is an avg pool, whose fractional outputs no "
                "crossbar can read (a chip's inputs are binary spikes, with no DAC); use "
                "mode: max"
            )


CRITERION = "fewest reads_per_step among the fitting options; then fewer arrays"
"""How a conv layer's mapping is chosen, as ``pipesdfa map`` shows it (module docstring)."""


@dataclass(frozen=True)
class LayerMapping:
    """One weighted layer (or the feedback group, or a layer's transposed copy) on the chip.

    ``n_in`` × ``n_out`` is the weight matrix (conv: K·K·IC × OC; the feedback group: C × M;
    a transposed copy: Wᵀ, n_out × n_in of its layer). ``positions`` is the input positions
    one time step applies to the unit's arrays (1 for fc, the window positions for conv, the
    output positions for a conv layer's transposed copy); ``replicas`` the copies of its
    arrays (conv: the chip's ``mapping.conv_replication`` G, fc: 1), which share the
    positions, so a step takes ``reads_per_step`` = ⌈positions / replicas⌉ read cycles.
    ``block_arrays`` is the arrays of one copy, ``weight_arrays`` = block_arrays × replicas
    every array holding W, and ``transpose_arrays`` those of the layer's transposed copy of W
    (a dataflow that reads Wᵀ from a copy, ``crossbar.transpose: copy``, every layer but the
    first; else 0), placed after every layer and the feedback group as a unit of kind
    "transpose" (:attr:`ChipMapping.transposes`, :meth:`ChipMapping.transpose`), so that W
    sits where it sits on a chip whose dataflow reads no Wᵀ.

    A conv layer's choice (module docstring): ``cycles`` is the single-array cycle count of
    the mapping it takes (positions × block_arrays), ``vwsdk_cycles``/``vwsdk_window`` VW-SDK's
    own minimum and window (:func:`conv_cycles`), ``candidates`` the mappings it may take
    (im2col and every window that fits one array) and ``fitting`` those whose PE cores fit in
    its own and the chip's spare ones; all None for fc layers, the group and the copies.

    The arrays form a ``row_blocks`` × (arrays / row_blocks) grid. ``rows`` is the rows used
    summed down one column of blocks and ``columns`` the logical columns used summed along one
    row of blocks (fc: n_in and n_out; im2col: K²·IC and OC; VW-SDK: window area · IC and i·j ·
    OC, the duplicated kernels; the group: C and M; a copy: n_out and n_in of its layer), so
    rows × columns × cells per logical column is every cell of the used rectangles.
    ``array_rows``/``array_columns`` are those of the fullest array. ``cells`` counts the cells
    of one copy holding weights (VW-SDK: each of its ``copies`` duplicated kernels; the group: 2
    per entry), ``utilisation`` is the cells of every copy over the cells of the arrays the unit
    occupies. ``neurons`` is the layer's output neurons (conv: OC·H·W before any pool; the
    group: M; a copy: its layer's). ``tile_arrays[k]`` is the arrays held on tile ``tiles[k]``
    and ``tile_weights[k]`` the distinct matrix entries they hold (arrays in block order, row
    block then column block, then the replicas; a duplicated VW-SDK kernel and a replica hold no
    new entry), summing to n_in · n_out (a transposed copy: 0 everywhere).
    """

    index: int
    weighted: int
    kind: str
    scheme: str
    window: tuple[int, int] | None
    n_in: int
    n_out: int
    weight_arrays: int
    feedback_arrays: int
    reads_per_step: int
    pes: tuple[tuple[int, int], ...]
    positions: int
    replicas: int
    block_arrays: int
    transpose_arrays: int
    tiles: tuple[int, ...]
    utilisation: float
    rows: int
    columns: int
    row_blocks: int
    array_rows: int
    array_columns: int
    cells: int
    neurons: int
    tile_arrays: tuple[int, ...]
    tile_weights: tuple[int, ...]
    copies: int = 1
    cycles: int | None = None
    vwsdk_cycles: int | None = None
    vwsdk_window: tuple[int, int] | None = None
    candidates: int | None = None
    fitting: int | None = None

    @property
    def arrays(self) -> int:
        """The arrays this unit occupies: weights (with replicas), or the feedback group's,
        or (kind "transpose") the transposed copy's."""
        copy = self.transpose_arrays if self.kind == "transpose" else 0
        return self.weight_arrays + self.feedback_arrays + copy

    @property
    def unique_cells(self) -> int:
        """The cells of one copy of W without its duplicated kernels (``cells`` / ``copies``):
        what a measured write fraction is a fraction of; a WRITE programs every duplicate
        and every replica alike."""
        return self.cells // self.copies

    @property
    def weight_tiles(self) -> tuple[int, ...]:
        """Indices k into :attr:`tiles` of the tiles holding distinct weights, in order."""
        return tuple(k for k, n in enumerate(self.tile_weights) if n > 0)

    def as_row(self) -> dict[str, Any]:
        """A JSON-able dict of the fields shown in tables and ``--json``."""
        return {
            "index": self.index,
            "weighted": self.weighted,
            "kind": self.kind,
            "scheme": self.scheme,
            "window": list(self.window) if self.window else None,
            "n_in": self.n_in,
            "n_out": self.n_out,
            "weight_arrays": self.weight_arrays,
            "transpose_arrays": self.transpose_arrays,
            "feedback_arrays": self.feedback_arrays,
            "replicas": self.replicas,
            "reads_per_step": self.reads_per_step,
            "cycles": self.cycles,
            "vwsdk_cycles": self.vwsdk_cycles,
            "vwsdk_window": list(self.vwsdk_window) if self.vwsdk_window else None,
            "candidates": self.candidates,
            "fitting": self.fitting,
            "criterion": CRITERION if self.candidates else None,
            "pes": [list(pe) for pe in self.pes],
            "tiles": list(self.tiles),
            "utilisation": self.utilisation,
        }


@dataclass(frozen=True)
class ChipMapping:
    """A network placed on a chip: its weighted layers, the feedback group, totals, mesh nodes.

    ``layers`` holds the weighted layers only; ``feedback`` the shared feedback group, or None
    (a ``pipelayer`` chip, or a network without hidden layers); ``transposes`` the transposed
    copies of W (kind "transpose", one per layer, placed last; none unless the dataflow reads
    Wᵀ from copies).
    """

    chip: ChipSpec
    layers: tuple[LayerMapping, ...]
    feedback: LayerMapping | None
    transposes: tuple[LayerMapping, ...]
    arrays_used: int
    arrays_total: int
    pes_used: int
    tiles_used: int
    positions: tuple[tuple[int, int], ...]

    def transpose(self, layer: int) -> LayerMapping | None:
        """The transposed copy of weighted layer ``layer``'s W (None without one)."""
        return next((u for u in self.transposes if u.weighted == layer), None)

    @property
    def feedback_arrays(self) -> int:
        """Formed arrays of the feedback group (0 without one)."""
        return self.feedback.feedback_arrays if self.feedback else 0

    @property
    def feedback_pes(self) -> tuple[tuple[int, int], ...]:
        """(tile, PE core) of the feedback group's PE cores."""
        return self.feedback.pes if self.feedback else ()

    @property
    def feedback_tiles(self) -> tuple[int, ...]:
        """Tiles of the feedback group."""
        return self.feedback.tiles if self.feedback else ()

    def as_rows(self) -> list[dict[str, Any]]:
        """One JSON-able dict per weighted layer, one of kind "feedback" for the group, then
        one of kind "transpose" per transposed copy."""
        units = self.layers + ((self.feedback,) if self.feedback else ()) + self.transposes
        return [unit.as_row() for unit in units]


def serpentine(rows: int, cols: int, tiles: int) -> tuple[tuple[int, int], ...]:
    """Mesh (row, col) of tiles 0..tiles−1: row 0 left to right, row 1 right to left, …"""
    walk = []
    for t in range(tiles):
        r, c = divmod(t, cols)
        walk.append((r, c if r % 2 == 0 else cols - 1 - c))
    return tuple(walk)


def feedback_layer(net: NetworkSpec) -> int:
    """Layer number of the feedback group's blocks: the number of weighted layers."""
    return len(weighted_layers(net))


@dataclass(frozen=True)
class _Option:
    """One mapping a conv layer may take: im2col, or a parallel window i × j (``win``),
    with ``replicas`` copies of its arrays sharing its ``positions``."""

    scheme: str
    kernel: int
    window: tuple[int, int]
    positions: int
    tiles: int  # arrays of one copy
    replicas: int
    rank: tuple[int, ...]  # the tie-break on equal reads and arrays (module docstring)
    win: Window | None = None  # None for im2col

    @property
    def arrays(self) -> int:
        """Every array the option takes: its copies."""
        return self.tiles * self.replicas

    @property
    def reads(self) -> int:
        """Read cycles of one time step: the positions shared among the copies."""
        return ceil_div(self.positions, self.replicas)


@dataclass(frozen=True)
class _Need:
    """What one weighted layer (or the feedback group, or a transposed copy) needs, before
    placement. A conv layer also carries every ``option`` it may take and VW-SDK's own
    result (``vwsdk``); its fields are those of the option it takes."""

    index: int
    weighted: int
    kind: str
    scheme: str
    window: tuple[int, int] | None
    n_in: int
    n_out: int
    grid: Grid
    positions: int
    cells: int
    neurons: int
    replicas: int = 1
    copies: int = 1  # VW-SDK: kernels duplicated in one block (i·j); else 1
    copy_arrays: int = 0  # the arrays of this layer's transposed copy (0: none)
    vwsdk: ConvMapping | None = None
    options: tuple[_Option, ...] = ()
    fitting: int | None = None  # options that fit in its PE cores and the spare ones

    @property
    def arrays(self) -> int:
        """Every array the unit takes: its copies of W (the replicas)."""
        return self.grid.arrays * self.replicas

    @property
    def reads(self) -> int:
        """Read cycles of one time step."""
        return ceil_div(self.positions, self.replicas)


def _conv_options(
    chip: ChipSpec, layer: ConvLayer, shape_in: tuple[int, ...]
) -> tuple[ConvMapping, tuple[_Option, ...]]:
    """VW-SDK's result for a conv layer on the chip's arrays, and every mapping the layer
    may take: im2col first, then (stride 1) every parallel window that fits one array."""
    xb = chip.crossbar
    c, h, wd = shape_in
    k, p, s, oc = layer.kernel, layer.padding, layer.stride, layer.out_channels
    ar, ac = xb.rows, xb.weights_per_row
    h, wd = h + 2 * p, wd + 2 * p
    cm = conv_cycles(h, wd, k, c, oc, ar, ac, stride=s)
    g = chip.mapping.conv_replication
    positions = ((h - k) // s + 1) * ((wd - k) // s + 1)
    tiles = ceil_div(k * k * c, ar) * ceil_div(oc, ac)
    options = [_Option("im2col", k, (k, k), positions, tiles, min(g, positions), (0,))]
    for win in candidate_windows(h, wd, k, c, oc, ar, ac) if s == 1 else []:
        # VW-SDK's own tie-break (:func:`preference`) after im2col
        rank = (1, *preference(win, k, c, oc))
        window, replicas = (k + win.i - 1, k + win.j - 1), min(g, win.positions)
        options.append(_Option("vw-sdk", k, window, win.positions, win.tiles, replicas, rank, win))
    return cm, tuple(options)


def _conv_need(
    chip: ChipSpec, index: int, weighted: int, layer: ConvLayer, shapes: list[tuple[int, ...]]
) -> _Need:
    """A conv layer's need at its first option (:func:`_fewest`), with all its options."""
    cm, options = _conv_options(chip, layer, shapes[index])
    k, c, oc = layer.kernel, shapes[index][0], layer.out_channels
    neurons = math.prod(shapes[index + 1])
    unmapped = Grid(0, 0, 0, 0, 0, 0, ((), ()))  # :func:`_take` sets it, and the rest
    need = _Need(index, weighted, "conv", "", None, k * k * c, oc, unmapped, 0, 0, neurons)
    need = dataclasses.replace(need, vwsdk=cm, options=options)
    return _take(chip, need, _fewest(chip, options))


def _take(chip: ChipSpec, need: _Need, option: _Option) -> _Need:
    """``need`` (a conv layer) mapped by ``option``: its grid, positions, cells, copies."""
    xb = chip.crossbar
    k = option.kernel
    c, oc = need.n_in // (k * k), need.n_out
    ar, ac = xb.rows, xb.weights_per_row
    win = option.win
    if win is None:
        grid = cut(k * k * c, oc, ar, ac)
        copies = 1
    else:
        area, copies = option.window[0] * option.window[1], win.i * win.j
        blocks = (ceil_div(c, win.ict), ceil_div(oc, win.oct))
        # a block holds ICt channels of K² rows each and OCt kernels (copies hold no new entry)
        entries = (tuple(k * k * n for n in sizes(c, win.ict)), sizes(oc, win.oct))
        grid = Grid(area * c, copies * oc, *blocks, area * win.ict, copies * win.oct, entries)
    assert grid.arrays == option.tiles
    return dataclasses.replace(
        need,
        scheme=option.scheme,
        window=option.window,
        grid=grid,
        positions=option.positions,
        cells=copies * k * k * c * oc * xb.columns_per_weight,
        replicas=option.replicas,
        copies=copies,
    )


READS_TRANSPOSE = {"pipesdfa": False, "pipelayer": True, "inference": False}
"""Whether a dataflow reads Wᵀ (back-propagation through the weights): BPTT does, SDFA and
inference not."""

READS_FEEDBACK = {"pipesdfa": True, "pipelayer": False, "inference": False}
"""Whether a dataflow reads the random feedback group: SDFA does; BPTT and inference not."""


def _transposed(chip: ChipSpec, need: _Need) -> _Need:
    """The transposed copy of a layer's W, with Wᵀ's own geometry: the n_out × n_in matrix
    (conv: OC × K²·IC, the unrolled kernel matrix transposed) cut into blocks of ``rows``
    outputs × ``weights_per_row`` inputs, read once per output position (δ of its OC
    channels in, K²·IC contributions out, added into the error of the layer's input by the
    adders) and replicated as the layer's forward arrays are (conv: G)."""
    xb = chip.crossbar
    grid = cut(need.n_out, need.n_in, xb.rows, xb.weights_per_row)
    positions = need.neurons // need.n_out  # conv: the output positions; fc: 1
    replicas = min(chip.mapping.conv_replication, positions) if need.kind == "conv" else 1
    cells = need.n_in * need.n_out * xb.columns_per_weight  # no duplicated kernel
    return _Need(
        need.index,
        need.weighted,
        "transpose",
        "transpose",
        None,
        need.n_out,
        need.n_in,
        grid,
        positions,
        cells,
        need.neurons,
        replicas,
    )


def _needs(chip: ChipSpec, net: NetworkSpec) -> list[_Need]:
    """The weighted layers' needs (conv layers at their first option, :func:`_fewest`),
    then the feedback group's (pipesdfa, ≥ 1 hidden layer), then the transposed copies' (a
    dataflow reading Wᵀ from copies, for every layer but the first)."""
    xb = chip.crossbar
    shapes = layer_shapes(net)
    weighted = weighted_layers(net)
    copy = READS_TRANSPOSE[chip.dataflow] and xb.transpose == "copy"
    needs, copies = [], []
    for w, index in enumerate(weighted):
        layer = net.layers[index]
        if isinstance(layer, ConvLayer):
            need = _conv_need(chip, index, w, layer, shapes)
        else:
            assert isinstance(layer, FcLayer)
            neurons = math.prod(shapes[index + 1])
            n_in, n_out = math.prod(shapes[index]), layer.out
            grid = cut(n_in, n_out, xb.rows, xb.weights_per_row)
            cells = n_in * n_out * xb.columns_per_weight
            need = _Need(index, w, "fc", "fc", None, n_in, n_out, grid, 1, cells, neurons)
        # layer 0's error would be the network input's: it never back-propagates (no ERR)
        if copy and w > 0:
            copies.append(_transposed(chip, need))
            need = dataclasses.replace(need, copy_arrays=copies[-1].arrays)
        needs.append(need)
    # Only SDFA reads random feedback; a network without hidden layers needs none.
    widths = feedback_widths(net)
    if widths and READS_FEEDBACK[chip.dataflow]:
        c, m = net.num_classes, max(widths)
        grid = cut(c, m, xb.rows, xb.cols // 2)
        assert grid.arrays == len(feedback_blocks(chip, len(needs), c, m))
        group = _Need(-1, len(needs), "feedback", "feedback", None, c, m, grid, 1, 2 * c * m, m)
        needs.append(group)
    return needs + copies


def _pes(chip: ChipSpec, arrays: int) -> int:
    """PE cores of a unit of ``arrays`` arrays (a unit starts on a fresh PE core)."""
    return ceil_div(arrays, chip.pe.crossbars)


def _step_key(chip: ChipSpec, option: _Option) -> tuple:
    """Order of the options a layer moves to: fewer PE cores, then fewer reads per step,
    then fewer arrays, then the tie-break rank."""
    return (_pes(chip, option.arrays), option.reads, option.arrays, option.rank)


def _fewest(chip: ChipSpec, options: tuple[_Option, ...]) -> _Option:
    """A conv layer's first option: the fewest PE cores (im2col's: no window takes fewer
    arrays), and on them the fewest reads per step."""
    return min(options, key=lambda option: _step_key(chip, option))


def _choose(chip: ChipSpec, needs: list[_Need]) -> list[_Need]:
    """Spend the chip's spare PE cores on the conv layers' windows (module docstring):
    the layer with the most reads per step (the earlier on a tie) moves to its next option,
    the fewest PE cores reading fewer times per step, while the spare PE cores hold it; a
    layer whose next option does not fit keeps its own."""
    spare = chip.tiles * chip.tile.pes - sum(_pes(chip, n.arrays) for n in needs)
    taken = {k: _fewest(chip, n.options) for k, n in enumerate(needs) if n.options}
    open_ = set(taken)
    while open_:
        k = max(open_, key=lambda k: (taken[k].reads, -k))
        now = taken[k]
        faster = [o for o in needs[k].options if o.reads < now.reads]
        nxt = min(faster, key=lambda o: _step_key(chip, o), default=None)
        extra = 0 if nxt is None else _pes(chip, nxt.arrays) - _pes(chip, now.arrays)
        if nxt is None or extra > spare:
            open_.discard(k)
            continue
        spare -= extra
        taken[k] = nxt
    out = list(needs)
    for k, option in taken.items():
        room = _pes(chip, option.arrays) + spare
        fitting = sum(_pes(chip, o.arrays) <= room for o in needs[k].options)
        out[k] = dataclasses.replace(_take(chip, needs[k], option), fitting=fitting)
    return out


def pe_cores_needed(chip: ChipSpec, net: NetworkSpec) -> int:
    """The fewest PE cores ``net`` takes on a chip like ``chip`` of any size (each unit on
    fresh cores; conv layers at their first option): :func:`map_network` places ``net`` on
    every chip with at least this many PE cores, spending the rest on conv windows."""
    return sum(_pes(chip, n.arrays) for n in _needs(chip, net))


def map_network(chip: ChipSpec, net: NetworkSpec) -> ChipMapping:
    """Place ``net``'s weighted layers and feedback group on ``chip`` (module docstring).
    A mesh too large for this machine's memory is refused first (LimitError)."""
    check_fits([mesh_need(chip)])
    check_chip_network(net)
    needs = _needs(chip, net)
    pes_total = chip.tiles * chip.tile.pes
    pes_needed = sum(_pes(chip, n.arrays) for n in needs)
    if pes_needed > pes_total:
        by_kind = {
            kind: sum(n.arrays for n in needs if n.kind == kind)
            for kind in ("feedback", "transpose")
        }
        weights = sum(n.arrays for n in needs) - sum(by_kind.values())
        copies = f" + transposed copies {by_kind['transpose']}" if by_kind["transpose"] else ""
        raise MappingError(
            f"network {net.name} needs {sum(n.arrays for n in needs)} crossbars (weights "
            f"{weights} + feedback {by_kind['feedback']}{copies}) on {pes_needed} PE cores "
            f"but chip {chip.name} has {chip.crossbars_total} crossbars on {pes_total} PE cores"
        )
    needs = _choose(chip, needs)
    units, next_pe = [], 0
    for need in needs:
        count = _pes(chip, need.arrays)
        units.append(_place(chip, need, next_pe, count))
        next_pe += count
    layers = tuple(u for u in units if u.kind not in ("feedback", "transpose"))
    group = [u for u in units if u.kind == "feedback"]
    return ChipMapping(
        chip=chip,
        layers=layers,
        feedback=group[0] if group else None,
        transposes=tuple(u for u in units if u.kind == "transpose"),
        arrays_used=sum(u.arrays for u in units),
        arrays_total=chip.crossbars_total,
        pes_used=next_pe,
        tiles_used=len({t for u in units for t in u.tiles}),
        positions=serpentine(chip.noc.rows, chip.noc.cols, chip.tiles),
    )


def _place(chip: ChipSpec, need: _Need, first_pe: int, count: int) -> LayerMapping:
    """``need`` on PE cores first_pe.. first_pe+count−1 (global numbers), arrays in order:
    one copy of W in block order, then its replicas."""
    per_pe, pes_per_tile = chip.pe.crossbars, chip.tile.pes
    arrays = need.arrays
    pes = tuple(divmod(g, pes_per_tile) for g in range(first_pe, first_pe + count))
    on_tile: dict[int, int] = {}
    weights: dict[int, int] = {}
    block_weights = need.grid.block_weights()  # distinct entries; later arrays hold none
    if need.kind == "transpose":
        block_weights = [0] * len(block_weights)
    for k, (tile, _) in enumerate(pes):
        on_tile[tile] = on_tile.get(tile, 0) + min(per_pe, arrays - k * per_pe)
        held = sum(block_weights[k * per_pe : (k + 1) * per_pe])
        weights[tile] = weights.get(tile, 0) + held
    feedback, copy = need.kind == "feedback", need.kind == "transpose"
    g = need.grid
    cm = need.vwsdk
    return LayerMapping(
        index=need.index,
        weighted=need.weighted,
        kind=need.kind,
        scheme=need.scheme,
        window=need.window,
        n_in=need.n_in,
        n_out=need.n_out,
        weight_arrays=0 if feedback or copy else arrays,
        feedback_arrays=arrays if feedback else 0,
        reads_per_step=need.reads,
        pes=pes,
        positions=need.positions,
        replicas=need.replicas,
        block_arrays=g.arrays,
        transpose_arrays=arrays if copy else need.copy_arrays,
        tiles=tuple(on_tile),
        utilisation=need.cells * need.replicas / (arrays * chip.crossbar.rows * chip.crossbar.cols),
        rows=g.rows,
        columns=g.columns,
        row_blocks=g.row_blocks,
        array_rows=g.array_rows,
        array_columns=g.array_columns,
        cells=need.cells,
        copies=need.copies,
        neurons=need.neurons,
        tile_arrays=tuple(on_tile.values()),
        tile_weights=tuple(weights.values()),
        cycles=need.positions * g.arrays if cm else None,
        vwsdk_cycles=cm.vw_sdk if cm else None,
        vwsdk_window=cm.window if cm else None,
        candidates=len(need.options) if cm else None,
        fitting=need.fitting,
    )
