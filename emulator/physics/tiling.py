"""Cutting a weight matrix into crossbar blocks.

A weighted layer's matrix (n_out × n_in; for conv the im2col matrix OC × IC·K·K) is cut into
blocks of at most ``rows`` inputs × ``weights_per_row`` outputs, one crossbar each. Partial sums
of a column of blocks are accumulated in ascending row-block order, everywhere
(docs/architecture.md#determinism).
The random feedback matrix (C × M, shared by every hidden layer) is cut the same way onto
formed arrays holding one differential pair per entry.

A conv layer's VW-SDK windows (:mod:`emulator.physics.vwsdk`) and the feedback group are
cut by the same :func:`cut`.
"""

from __future__ import annotations

from dataclasses import dataclass

from emulator.limits import CUT_BYTES, Need, check_fits
from emulator.spec import (
    ChipSpec,
)


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


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


@dataclass(frozen=True)
class Grid:
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


def sizes(total: int, per_block: int) -> tuple[int, ...]:
    """Sizes of the blocks that cut ``total`` into pieces of at most ``per_block``."""
    return tuple(min(per_block, total - start) for start in range(0, total, per_block))


def cut(rows: int, columns: int, ar: int, ac: int) -> Grid:
    """A rows × columns matrix cut into blocks of at most ar rows × ac columns (refused first,
    LimitError, if its block sizes alone would not fit this machine's memory)."""
    cuts = ceil_div(rows, ar) + ceil_div(columns, ac)
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
    entries = (sizes(rows, ar), sizes(columns, ac))
    return Grid(
        rows,
        columns,
        ceil_div(rows, ar),
        ceil_div(columns, ac),
        min(rows, ar),
        min(columns, ac),
        entries,
    )
