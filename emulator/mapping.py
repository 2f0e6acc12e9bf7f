"""Mapping weight matrices onto crossbar blocks, conv layers by VW-SDK, layers onto the chip.

A weighted layer's matrix (n_out × n_in; for conv the im2col matrix OC × IC·K·K) is cut into
blocks of at most ``rows`` inputs × ``weights_per_row`` outputs, one crossbar each. Partial sums
of a column of blocks are accumulated in ascending row-block order, everywhere (DESIGN.md §4).
The random feedback matrix of a hidden layer (C × n_l) is cut the same way onto formed arrays
holding one differential pair per entry.

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

Placement (:func:`map_network`): weighted layers in network order; each layer starts on a
fresh PE core (a PE core serves one layer); its weight arrays come first, then its feedback
arrays, filling each PE core's ``pe.crossbars`` arrays before the next; PE cores are taken in
order within a tile, tiles in order. Tile t sits at the mesh node of a serpentine
(boustrophedon) walk over the mesh rows: row 0 left to right, row 1 right to left, …, so
consecutive tiles are neighbours. Pool layers take no arrays. Hidden layers get feedback arrays
for their C × n_l random matrix (C = ``num_classes``, n_l = the layer's output neurons); the
output layer and every layer of a ``pipelayer`` chip (BPTT has no random feedback) get none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from emulator.topology import ChipSpec, ConvLayer, FcLayer, NetworkSpec, layer_shapes


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
    """Blocks of a hidden layer's random feedback matrix: one differential pair per entry."""
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


@dataclass(frozen=True)
class LayerMapping:
    """One weighted layer on the chip.

    ``n_in`` × ``n_out`` is the weight matrix (conv: K·K·IC × OC). ``reads_per_step`` is the
    array read cycles per time step per sample with all of the layer's arrays read in
    parallel: 1 for fc, the window positions for conv. ``utilisation`` is used cells over the
    cells of the arrays the layer occupies: each stored logical weight (conv: K²·IC·OC, times
    i·j duplicated kernels under VW-SDK; the zero padding of a shifted kernel is not counted)
    takes 2·slices cells, each feedback entry 2.
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
    tiles: tuple[int, ...]
    utilisation: float

    @property
    def arrays(self) -> int:
        """Weight and feedback arrays together."""
        return self.weight_arrays + self.feedback_arrays


@dataclass(frozen=True)
class ChipMapping:
    """A network placed on a chip: its weighted layers, totals and the tiles' mesh nodes."""

    chip: ChipSpec
    layers: tuple[LayerMapping, ...]
    arrays_used: int
    arrays_total: int
    pes_used: int
    tiles_used: int
    positions: tuple[tuple[int, int], ...]

    def as_rows(self) -> list[dict[str, Any]]:
        """One JSON-able dict per weighted layer, for tables and ``--json``."""
        return [
            {
                "index": lm.index,
                "weighted": lm.weighted,
                "kind": lm.kind,
                "scheme": lm.scheme,
                "window": list(lm.window) if lm.window else None,
                "n_in": lm.n_in,
                "n_out": lm.n_out,
                "weight_arrays": lm.weight_arrays,
                "feedback_arrays": lm.feedback_arrays,
                "reads_per_step": lm.reads_per_step,
                "pes": [list(pe) for pe in lm.pes],
                "tiles": list(lm.tiles),
                "utilisation": lm.utilisation,
            }
            for lm in self.layers
        ]


def serpentine(rows: int, cols: int, tiles: int) -> tuple[tuple[int, int], ...]:
    """Mesh (row, col) of tiles 0..tiles−1: row 0 left to right, row 1 right to left, …"""
    walk = []
    for t in range(tiles):
        r, c = divmod(t, cols)
        walk.append((r, c if r % 2 == 0 else cols - 1 - c))
    return tuple(walk)


@dataclass(frozen=True)
class _Need:
    """What one weighted layer needs, before placement."""

    index: int
    kind: str
    scheme: str
    window: tuple[int, int] | None
    n_in: int
    n_out: int
    weight_arrays: int
    feedback_arrays: int
    reads_per_step: int
    used_cells: int


def _needs(chip: ChipSpec, net: NetworkSpec) -> list[_Need]:
    xb = chip.crossbar
    shapes = layer_shapes(net)
    weighted = [i for i, layer in enumerate(net.layers) if isinstance(layer, FcLayer | ConvLayer)]
    needs = []
    for w, index in enumerate(weighted):
        layer, shape_in = net.layers[index], shapes[index]
        neurons = math.prod(shapes[index + 1])
        if isinstance(layer, ConvLayer):
            c, h, wd = shape_in
            k, p = layer.kernel, layer.padding
            ar, ac = xb.rows, xb.weights_per_row
            cm = conv_cycles(
                h + 2 * p, wd + 2 * p, k, c, layer.out_channels, ar, ac, stride=layer.stride
            )
            n_in, n_out = k * k * c, layer.out_channels
            copies = (cm.window[0] - k + 1) * (cm.window[1] - k + 1)
            kind, scheme, window = "conv", cm.scheme, cm.window
            weight_arrays, reads = cm.tiles, cm.positions
        else:
            assert isinstance(layer, FcLayer)
            n_in, n_out = math.prod(shape_in), layer.out
            copies = 1
            kind, scheme, window = "fc", "fc", None
            weight_arrays, reads = len(weight_blocks(chip, w, n_in, n_out)), 1
        # BPTT (pipelayer) has no random feedback; the output layer needs none.
        has_feedback = w < len(weighted) - 1 and chip.dataflow != "pipelayer"
        feedback = len(feedback_blocks(chip, w, net.num_classes, neurons)) if has_feedback else 0
        used = copies * n_in * n_out * xb.columns_per_weight
        used += 2 * net.num_classes * neurons if has_feedback else 0
        needs.append(
            _Need(index, kind, scheme, window, n_in, n_out, weight_arrays, feedback, reads, used)
        )
    return needs


def map_network(chip: ChipSpec, net: NetworkSpec) -> ChipMapping:
    """Place ``net``'s weighted layers on ``chip`` (module docstring: the placement rule)."""
    needs = _needs(chip, net)
    per_pe, pes_per_tile = chip.pe.crossbars, chip.tile.pes
    pe_counts = [_ceil_div(n.weight_arrays + n.feedback_arrays, per_pe) for n in needs]
    pes_total = chip.tiles * pes_per_tile
    if sum(pe_counts) > pes_total:
        weights = sum(n.weight_arrays for n in needs)
        feedback = sum(n.feedback_arrays for n in needs)
        raise MappingError(
            f"network {net.name} needs {weights + feedback} crossbars (weights {weights} + "
            f"feedback {feedback}) on {sum(pe_counts)} PE cores but chip {chip.name} has "
            f"{chip.crossbars_total} crossbars on {pes_total} PE cores"
        )
    cells = chip.crossbar.rows * chip.crossbar.cols
    layers, next_pe = [], 0
    for w, (need, count) in enumerate(zip(needs, pe_counts, strict=True)):
        pes = tuple(divmod(g, pes_per_tile) for g in range(next_pe, next_pe + count))
        next_pe += count
        arrays = need.weight_arrays + need.feedback_arrays
        layers.append(
            LayerMapping(
                index=need.index,
                weighted=w,
                kind=need.kind,
                scheme=need.scheme,
                window=need.window,
                n_in=need.n_in,
                n_out=need.n_out,
                weight_arrays=need.weight_arrays,
                feedback_arrays=need.feedback_arrays,
                reads_per_step=need.reads_per_step,
                pes=pes,
                tiles=tuple(sorted({t for t, _ in pes})),
                utilisation=need.used_cells / (arrays * cells),
            )
        )
    return ChipMapping(
        chip=chip,
        layers=tuple(layers),
        arrays_used=sum(lm.arrays for lm in layers),
        arrays_total=chip.crossbars_total,
        pes_used=next_pe,
        tiles_used=len({t for lm in layers for t in lm.tiles}),
        positions=serpentine(chip.noc.rows, chip.noc.cols, chip.tiles),
    )
