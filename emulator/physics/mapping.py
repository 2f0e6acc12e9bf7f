"""Mapping weight matrices onto crossbar blocks, conv layers by VW-SDK, layers onto the chip.

A weighted layer's matrix (n_out × n_in; for conv the im2col matrix OC × IC·K·K) is cut into
blocks of at most ``rows`` inputs × ``weights_per_row`` outputs, one crossbar each. Partial sums
of a column of blocks are accumulated in ascending row-block order, everywhere (DESIGN.md §4).
The random feedback matrix (C × M, shared by every hidden layer) is cut the same way onto
formed arrays holding one differential pair per entry.

Conv layers (:func:`conv_cycles`, the one place the cycle formulas live; FIGURES.md, VW-SDK,
Rhe et al., DATE 2022) on an AR × AC array, AR = ``crossbar.rows`` inputs, AC =
``crossbar.weights_per_row`` logical weight columns:

- im2col: CC = (H−K+1)(W−K+1) · ⌈K²·IC/AR⌉ · ⌈OC/AC⌉.
- A parallel window of (K+i−1) × (K+j−1) inputs computes i·j outputs per cycle with
  ICt = min(IC, ⌊AR/((K+i−1)(K+j−1))⌋) ≥ 1 channels and OCt = min(OC, ⌊AC/(i·j)⌋) ≥ 1 kernels
  per array: CC = (⌈(H−K−i+1)/i⌉+1)(⌈(W−K−j+1)/j⌉+1) · ⌈IC/ICt⌉ · ⌈OC/OCt⌉.
- SDK: square windows (i = j) holding all IC channels and all i²·OC duplicated kernels in one
  array; i = 1 is im2col; the best i.
- VW-SDK: every window i, j ≥ 1 that fits the input; the minimum CC. Ties go to the window
  using fewer array columns in all (i·j·OC kernel columns per input-channel tile, times
  ⌈IC/ICt⌉ tiles), then to the smaller window area, then to fewer window rows. im2col is kept
  (window K × K) unless a window is strictly better.

A chip layer is mapped on its zero-padded input (H+2P, W+2P). VW-SDK assumes stride 1, so a
layer with stride > 1 uses im2col only, over its (H+2P−K)//S+1 × (W+2P−K)//S+1 positions.

Placement (:func:`map_network`): weighted layers in network order, then the feedback group;
each starts on a fresh PE core (a PE core serves one layer), filling each PE core's
``pe.crossbars`` arrays before the next; PE cores are taken in order within a tile, tiles in
order. Tile t sits at the mesh node of a serpentine (boustrophedon) walk over the mesh rows:
row 0 left to right, row 1 right to left, …, so consecutive tiles are neighbours. Pool layers
take no arrays.

The feedback group: SDFA has ONE random matrix B (C × M, C = ``num_classes``, M = the widest
hidden layer's neurons) and hidden layer l uses its first n_l columns (DESIGN.md §2), so
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

from emulator.limits import CUT_BYTES, Need, check_fits, mesh_need
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


@dataclass(frozen=True)
class Block:
    """One crossbar's share: inputs [in_start, in_stop) × outputs [out_start, out_stop)."""

    kind: str  # "weight" or "feedback"
    layer: int
    row: int
    col: int
    in_start: int
    in_stop: int
    out_start: int
    out_stop: int

    @property
    def id(self) -> str:
        """Stable name, also the key of the crossbar's random streams."""
        prefix = "W" if self.kind == "weight" else "B"
        return f"{prefix}{self.layer}.r{self.row}.c{self.col}"

    @property
    def n_in(self) -> int:
        """Rows used."""
        return self.in_stop - self.in_start

    @property
    def n_out(self) -> int:
        """Logical output columns used."""
        return self.out_stop - self.out_start


def tile_matrix(
    kind: str, layer: int, n_in: int, n_out: int, rows: int, outs_per_block: int
) -> list[Block]:
    """Cut an n_in × n_out matrix into blocks, row-major (row block, then column block)."""
    blocks = []
    for r, in_start in enumerate(range(0, n_in, rows)):
        for c, out_start in enumerate(range(0, n_out, outs_per_block)):
            blocks.append(
                Block(
                    kind,
                    layer,
                    r,
                    c,
                    in_start,
                    min(in_start + rows, n_in),
                    out_start,
                    min(out_start + outs_per_block, n_out),
                )
            )
    return blocks


def weight_blocks(chip: ChipSpec, layer: int, n_in: int, n_out: int) -> list[Block]:
    """Blocks of a weighted layer: bit slices × differential pairs per logical column."""
    xb = chip.crossbar
    return tile_matrix("weight", layer, n_in, n_out, xb.rows, xb.weights_per_row)


def feedback_blocks(chip: ChipSpec, layer: int, n_classes: int, n_neurons: int) -> list[Block]:
    """Blocks of the random feedback matrix (n_classes × n_neurons): a differential pair per
    entry; ``layer`` names the group (:func:`feedback_layer`)."""
    xb = chip.crossbar
    return tile_matrix("feedback", layer, n_classes, n_neurons, xb.rows, xb.cols // 2)


# ------------------------------------------------------------------------- conv (VW-SDK)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class ConvMapping:
    """Cycle counts of one conv layer on an AR × AC array, and the mapping chosen.

    ``im2col``, ``sdk`` and ``vw_sdk`` are array read cycles of each scheme (``vw_sdk`` is
    never above ``im2col``: im2col is the fallback). ``scheme`` is "vw-sdk" when a parallel
    window beats im2col, else "im2col". ``window`` is the chosen input window (K+i−1, K+j−1),
    (K, K) for im2col. ``ict``/``oct`` are the input/output channels one array holds (im2col:
    IC, cut into ⌈K²·IC/AR⌉ row tiles, and min(OC, AC)). ``tiles`` is the number of weight
    arrays, ⌈IC/ICt⌉·⌈OC/OCt⌉ (im2col: ⌈K²·IC/AR⌉·⌈OC/AC⌉); ``positions`` the window
    positions one array set steps through, so ``vw_sdk == positions * tiles``.
    """

    im2col: int
    sdk: int
    vw_sdk: int
    scheme: str
    window: tuple[int, int]
    ict: int
    oct: int
    tiles: int
    positions: int


@dataclass(frozen=True)
class _Window:
    """One parallel window (i × j outputs per cycle) and its cost."""

    i: int
    j: int
    ict: int
    oct: int
    positions: int
    tiles: int

    @property
    def cycles(self) -> int:
        """Array read cycles: every position on every array set."""
        return self.positions * self.tiles


def _positions(h: int, w: int, k: int, i: int, j: int) -> int:
    """Window positions that cover all (H−K+1) × (W−K+1) outputs, i × j at a time."""
    return (_ceil_div(h - k - i + 1, i) + 1) * (_ceil_div(w - k - j + 1, j) + 1)


def _window(
    h: int, w: int, k: int, ic: int, oc: int, ar: int, ac: int, i: int, j: int
) -> _Window | None:
    """The (K+i−1) × (K+j−1) window's cost, or None when it does not fit input or array."""
    rows, cols = k + i - 1, k + j - 1
    ict, oct_ = min(ic, ar // (rows * cols)), min(oc, ac // (i * j))
    if rows > h or cols > w or ict < 1 or oct_ < 1:
        return None
    tiles = _ceil_div(ic, ict) * _ceil_div(oc, oct_)
    return _Window(i, j, ict, oct_, _positions(h, w, k, i, j), tiles)


def conv_cycles(
    h: int, w: int, k: int, ic: int, oc: int, ar: int, ac: int, *, stride: int = 1
) -> ConvMapping:
    """im2col, SDK and VW-SDK cycles of a K × K conv over an H × W × IC input (no padding).

    ``ar``/``ac`` are the array's input rows and logical weight columns. With ``stride`` > 1
    only im2col applies (VW-SDK assumes stride 1): all three counts are im2col's.
    """
    if k > h or k > w:
        raise ValueError(f"kernel {k} is larger than the {h}×{w} input")
    positions = ((h - k) // stride + 1) * ((w - k) // stride + 1)
    tiles = _ceil_div(k * k * ic, ar) * _ceil_div(oc, ac)
    im2col = _Window(1, 1, ic, min(oc, ac), positions, tiles)
    if stride > 1:
        return _conv_mapping(im2col, im2col, im2col.cycles, k)
    sdk = im2col.cycles
    i = 2
    while k + i - 1 <= min(h, w) and (k + i - 1) ** 2 * ic <= ar and i * i * oc <= ac:
        sdk = min(sdk, _positions(h, w, k, i, i))  # one array holds the whole layer
        i += 1
    # (K+i−1)·(K+j−1) ≤ AR bounds both loops; taller or wider windows hold no channel.
    windows = [
        win
        for i in range(1, min(h - k + 1, ar // k - k + 1) + 1)
        for j in range(1, min(w - k + 1, ar // (k + i - 1) - k + 1) + 1)
        if (win := _window(h, w, k, ic, oc, ar, ac, i, j)) is not None
    ]
    best = min(windows, key=lambda win: _preference(win, k, ic, oc), default=im2col)
    return _conv_mapping(best if best.cycles < im2col.cycles else im2col, im2col, sdk, k)


def _preference(win: _Window, k: int, ic: int, oc: int) -> tuple[int, int, int, int]:
    """Ties on cycles go to fewer array columns in all, then smaller window, then fewer rows."""
    rows, cols = k + win.i - 1, k + win.j - 1
    columns = win.i * win.j * oc * _ceil_div(ic, win.ict)
    return (win.cycles, columns, rows * cols, rows)


def _conv_mapping(best: _Window, im2col: _Window, sdk: int, k: int) -> ConvMapping:
    return ConvMapping(
        im2col=im2col.cycles,
        sdk=sdk,
        vw_sdk=best.cycles,
        scheme="im2col" if best is im2col else "vw-sdk",
        window=(k + best.i - 1, k + best.j - 1),
        ict=best.ict,
        oct=best.oct,
        tiles=best.tiles,
        positions=best.positions,
    )


# ------------------------------------------------------------------------------ placement
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


@dataclass(frozen=True)
class LayerMapping:
    """One weighted layer (or the feedback group) on the chip.

    ``n_in`` × ``n_out`` is the weight matrix (conv: K·K·IC × OC; the feedback group: C × M).
    ``positions`` is the input positions one time step applies to the layer's arrays (1 for
    fc, the window positions for conv); ``replicas`` the copies of its arrays (conv: the
    chip's ``mapping.conv_replication`` G, fc: 1), which share the positions, so a step takes
    ``reads_per_step`` = ⌈positions / replicas⌉ read cycles. ``block_arrays`` is the arrays
    of one copy, ``weight_arrays`` = block_arrays × replicas every array holding W, and
    ``transpose_arrays`` those of its transposed copy of W (a dataflow that reads Wᵀ from a
    copy, ``crossbar.transpose: copy``; else 0), placed after every layer and the feedback
    group as a unit of kind "transpose" (:attr:`ChipMapping.transposes`), so that W sits
    where it sits on a chip whose dataflow reads no Wᵀ.

    The arrays form a ``row_blocks`` × (arrays / row_blocks) grid. ``rows`` is the rows used
    summed down one column of blocks and ``columns`` the logical columns used summed along one
    row of blocks (fc: n_in and n_out; im2col: K²·IC and OC; VW-SDK: window area · IC and
    i·j · OC, the duplicated kernels; the group: C and M), so rows × columns × cells per
    logical column is every cell of the used rectangles. ``array_rows``/``array_columns`` are
    those of the fullest array. ``cells`` counts the cells of one copy holding weights (VW-SDK:
    each duplicated kernel; the group: 2 per entry), ``utilisation`` is the cells of every
    copy over the cells of the arrays the layer occupies. ``neurons`` is the layer's output
    neurons (conv: OC·H·W before any pool; the group: M). ``tile_arrays[k]`` is the arrays
    held on tile ``tiles[k]`` and
    ``tile_weights[k]`` the distinct matrix entries they hold (arrays in block order, row block
    then column block, then the replicas; a duplicated VW-SDK kernel and a replica hold no new
    entry), summing to n_in · n_out (a transposed copy: 0 everywhere).
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

    @property
    def arrays(self) -> int:
        """The arrays this unit occupies: weights (with replicas), or the feedback group's,
        or (kind "transpose") the transposed copy's."""
        copy = self.transpose_arrays if self.kind == "transpose" else 0
        return self.weight_arrays + self.feedback_arrays + copy

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
class _Grid:
    """A matrix on a grid of arrays (see :class:`LayerMapping` for the fields)."""

    rows: int
    columns: int
    row_blocks: int
    col_blocks: int
    array_rows: int
    array_columns: int
    entries: tuple[tuple[int, ...], tuple[int, ...]]  # distinct matrix rows, columns per block

    @property
    def arrays(self) -> int:
        """Arrays of the grid."""
        return self.row_blocks * self.col_blocks

    def block_weights(self) -> list[int]:
        """Distinct matrix entries of each array, in block order."""
        rows, cols = self.entries
        return [r * c for r in rows for c in cols]


def _sizes(total: int, per_block: int) -> tuple[int, ...]:
    """Sizes of the blocks that cut ``total`` into pieces of at most ``per_block``."""
    return tuple(min(per_block, total - start) for start in range(0, total, per_block))


def _cut(rows: int, columns: int, ar: int, ac: int) -> _Grid:
    """A rows × columns matrix cut into blocks of at most ar rows × ac columns (refused first,
    LimitError, if its block sizes alone would not fit this machine's memory)."""
    cuts = _ceil_div(rows, ar) + _ceil_div(columns, ac)
    check_fits(
        [
            Need(
                f"the cut of a {rows:,} × {columns:,} weight matrix",
                cuts * CUT_BYTES,
                f"{cuts:,} block rows and columns × {CUT_BYTES} B",
                "narrower layers in the network file (or larger crossbar.rows and cols)",
            )
        ]
    )
    entries = (_sizes(rows, ar), _sizes(columns, ac))
    return _Grid(
        rows,
        columns,
        _ceil_div(rows, ar),
        _ceil_div(columns, ac),
        min(rows, ar),
        min(columns, ac),
        entries,
    )


@dataclass(frozen=True)
class _Need:
    """What one weighted layer (or the feedback group) needs, before placement."""

    index: int
    weighted: int
    kind: str
    scheme: str
    window: tuple[int, int] | None
    n_in: int
    n_out: int
    grid: _Grid
    positions: int
    cells: int
    neurons: int
    replicas: int = 1
    transpose: bool = False

    @property
    def arrays(self) -> int:
        """Every array the unit takes: its copies of W (the replicas)."""
        return self.grid.arrays * self.replicas

    def transposed(self) -> _Need:
        """The unit of this layer's transposed copy (as many arrays, no new entry)."""
        return dataclasses.replace(self, kind="transpose", scheme="transpose")


def _conv_need(chip: ChipSpec, layer: ConvLayer, shape_in: tuple[int, ...]) -> tuple:
    """(scheme, window, n_in, grid, reads per step, cells) of a conv layer."""
    xb = chip.crossbar
    c, h, wd = shape_in
    k, p, oc = layer.kernel, layer.padding, layer.out_channels
    ar, ac = xb.rows, xb.weights_per_row
    cm = conv_cycles(h + 2 * p, wd + 2 * p, k, c, oc, ar, ac, stride=layer.stride)
    copies = (cm.window[0] - k + 1) * (cm.window[1] - k + 1)
    if cm.scheme == "im2col":
        grid = _cut(k * k * c, oc, ar, ac)
    else:
        area = cm.window[0] * cm.window[1]
        blocks = (_ceil_div(c, cm.ict), _ceil_div(oc, cm.oct))
        # a block holds ICt channels of K² rows each and OCt kernels (copies hold no new entry)
        entries = (tuple(k * k * n for n in _sizes(c, cm.ict)), _sizes(oc, cm.oct))
        grid = _Grid(area * c, copies * oc, *blocks, area * cm.ict, copies * cm.oct, entries)
    assert grid.arrays == cm.tiles
    cells = copies * k * k * c * oc * xb.columns_per_weight
    return cm.scheme, cm.window, k * k * c, grid, cm.positions, cells


READS_TRANSPOSE = {"pipesdfa": False, "pipelayer": True}
"""Whether a dataflow reads Wᵀ (back-propagation through the weights): BPTT does, SDFA not."""


def _needs(chip: ChipSpec, net: NetworkSpec) -> list[_Need]:
    """The weighted layers' needs, then the feedback group's (pipesdfa, ≥ 1 hidden layer),
    then the transposed copies' (a dataflow reading Wᵀ from copies)."""
    xb = chip.crossbar
    shapes = layer_shapes(net)
    weighted = weighted_layers(net)
    copy = READS_TRANSPOSE[chip.dataflow] and xb.transpose == "copy"
    needs = []
    for w, index in enumerate(weighted):
        layer, shape_in = net.layers[index], shapes[index]
        neurons = math.prod(shapes[index + 1])
        replicas = 1
        if isinstance(layer, ConvLayer):
            scheme, window, n_in, grid, positions, cells = _conv_need(chip, layer, shape_in)
            kind, n_out = "conv", layer.out_channels
            replicas = min(chip.mapping.conv_replication, positions)
        else:
            assert isinstance(layer, FcLayer)
            n_in, n_out = math.prod(shape_in), layer.out
            kind, scheme, window, positions = "fc", "fc", None, 1
            grid = _cut(n_in, n_out, xb.rows, xb.weights_per_row)
            cells = n_in * n_out * xb.columns_per_weight
        needs.append(
            _Need(
                index,
                w,
                kind,
                scheme,
                window,
                n_in,
                n_out,
                grid,
                positions,
                cells,
                neurons,
                replicas,
                copy,
            )
        )
    # BPTT (pipelayer) has no random feedback; a network without hidden layers needs none.
    widths = feedback_widths(net)
    if widths and chip.dataflow != "pipelayer":
        c, m = net.num_classes, max(widths)
        grid = _cut(c, m, xb.rows, xb.cols // 2)
        assert grid.arrays == len(feedback_blocks(chip, len(needs), c, m))
        group = _Need(-1, len(needs), "feedback", "feedback", None, c, m, grid, 1, 2 * c * m, m)
        needs.append(group)
    return needs + [n.transposed() for n in needs if n.transpose]


def pe_cores_needed(chip: ChipSpec, net: NetworkSpec) -> int:
    """PE cores ``net`` takes on a chip like ``chip`` of any size (each unit on fresh cores)."""
    return sum(_ceil_div(n.arrays, chip.pe.crossbars) for n in _needs(chip, net))


def map_network(chip: ChipSpec, net: NetworkSpec) -> ChipMapping:
    """Place ``net``'s weighted layers and feedback group on ``chip`` (module docstring).
    A mesh too large for this machine's memory is refused first (LimitError)."""
    check_fits([mesh_need(chip)])
    check_chip_network(net)
    needs = _needs(chip, net)
    per_pe, pes_per_tile = chip.pe.crossbars, chip.tile.pes
    pe_counts = [_ceil_div(n.arrays, per_pe) for n in needs]
    pes_total = chip.tiles * pes_per_tile
    if sum(pe_counts) > pes_total:
        by_kind = {
            kind: sum(n.arrays for n in needs if n.kind == kind)
            for kind in ("feedback", "transpose")
        }
        weights = sum(n.arrays for n in needs) - sum(by_kind.values())
        copies = f" + transposed copies {by_kind['transpose']}" if by_kind["transpose"] else ""
        raise MappingError(
            f"network {net.name} needs {sum(n.arrays for n in needs)} crossbars (weights "
            f"{weights} + feedback {by_kind['feedback']}{copies}) on {sum(pe_counts)} PE cores "
            f"but chip {chip.name} has {chip.crossbars_total} crossbars on {pes_total} PE cores"
        )
    units, next_pe = [], 0
    for need, count in zip(needs, pe_counts, strict=True):
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
    copies = g.arrays * need.replicas
    return LayerMapping(
        index=need.index,
        weighted=need.weighted,
        kind=need.kind,
        scheme=need.scheme,
        window=need.window,
        n_in=need.n_in,
        n_out=need.n_out,
        weight_arrays=0 if feedback or copy else copies,
        feedback_arrays=arrays if feedback else 0,
        reads_per_step=_ceil_div(need.positions, need.replicas),
        pes=pes,
        positions=need.positions,
        replicas=need.replicas,
        block_arrays=g.arrays,
        transpose_arrays=copies if need.transpose else 0,
        tiles=tuple(on_tile),
        utilisation=need.cells * need.replicas / (arrays * chip.crossbar.rows * chip.crossbar.cols),
        rows=g.rows,
        columns=g.columns,
        row_blocks=g.row_blocks,
        array_rows=g.array_rows,
        array_columns=g.array_columns,
        cells=need.cells,
        neurons=need.neurons,
        tile_arrays=tuple(on_tile.values()),
        tile_weights=tuple(weights.values()),
    )
