"""A layer's crossbar blocks: reads, block-order sums and updates, as functions that both
the reference model's backends and the chip's cores call (one copy of the arithmetic).

A layer's matrix is cut into the blocks of :mod:`emulator.physics.mapping`: :func:`read_blocks`
applies an input to each block (binary spikes to weight arrays, real errors bit-serially to
formed arrays), :func:`add_blocks` adds the partial results in block order, :func:`update_steps`
rounds an update to integer code steps and :func:`program_blocks` programs each block's part.
A :class:`ChipLayer` (``pipesdfa train --chip``) holds one weighted layer's blocks; a
:class:`ChipFeedback` the one random feedback matrix in formed, never-programmed arrays. Both
implement the backend protocols of :mod:`emulator.learning`, so the reference trainer runs
unchanged; a PE core holds its share of the blocks and a tile adds the partial results.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from emulator.physics.crossbar import Counters, Crossbar, EventRows, FormedCrossbar
from emulator.physics.mapping import Block, feedback_blocks, weight_blocks
from emulator.rng import stream
from emulator.spec import ChipSpec, CrossbarSpec


def stochastic_round(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Round to an integer up with probability equal to the fraction (unbiased)."""
    low = np.floor(x)
    return (low + (rng.random(x.shape) < x - low)).astype(np.int64)


def initial_codes(w: np.ndarray, crossbar: CrossbarSpec) -> tuple[np.ndarray, float]:
    """Initial weights (n_out, n_in) as codes (n_in, n_out) and the layer's LSB.

    The layer's range (code_max × LSB) is ``crossbar.weight_range_over_init`` times its
    largest initial weight.
    """
    code_max = 2**crossbar.weight_bits - 1
    bound = float(np.max(np.abs(w))) or 1.0
    lsb = crossbar.weight_range_over_init * bound / code_max
    return np.clip(np.rint(w.T / lsb), -code_max, code_max).astype(np.int64), lsb


def program_block(chip: ChipSpec, block: Block, codes: np.ndarray, seed: int) -> Crossbar:
    """A crossbar for ``block`` programmed with its part of the layer's ``codes``."""
    xbar = Crossbar(chip, block.n_in, block.n_out, seed=seed, xbar_id=block.id)
    xbar.program(block_part(codes, block))
    return xbar


def block_part(matrix: np.ndarray, block: Block) -> np.ndarray:
    """A block's part of a (n_in, n_out) matrix."""
    return matrix[block.in_start : block.in_stop, block.out_start : block.out_stop]


def read_blocks(
    blocks: Sequence[Block],
    arrays: Sequence[Crossbar] | Sequence[FormedCrossbar],
    x: np.ndarray,
    event: tuple[int, ...],
    window: EventRows | None = None,
) -> list[np.ndarray]:
    """Each block's partial result of applying ``x`` (N, n_in) to its array: binary spikes to
    weight arrays, real values bit-serially to formed arrays; ``window``: these are vectors
    first.. of an event of ``total`` vectors (each gets its noise of the whole event)."""
    parts = []
    for block, array in zip(blocks, arrays, strict=True):
        rows = x[:, block.in_start : block.in_stop]
        if isinstance(array, FormedCrossbar):
            parts.append(array.read_bitserial(rows, event, window=window))
        else:
            parts.append(array.read(rows, event, window=window))
    return parts


def add_blocks(
    blocks: Sequence[Block], parts: Sequence[np.ndarray], rows: int, n_out: int
) -> np.ndarray:
    """The partial results added in block order into (rows, n_out) (DESIGN.md §4)."""
    out = np.zeros((rows, n_out))
    for block, part in zip(blocks, parts, strict=True):
        out[:, block.out_start : block.out_stop] += part
    return out


def update_steps(
    delta: np.ndarray, lsb: float, *, seed: int, layer: int, event: tuple[int, ...]
) -> np.ndarray:
    """An update (n_out, n_in) as integer code steps (n_in, n_out), stochastically rounded
    from the stream ``(seed, "update", layer, *event)``."""
    return stochastic_round(delta.T / lsb, stream(seed, "update", layer, *event))


def program_blocks(xbars: Sequence[Crossbar], steps: Sequence[np.ndarray]) -> None:
    """Program each block's code steps (n_in, n_out); a block with none gets no pulse."""
    for xbar, part in zip(xbars, steps, strict=True):
        if part.any():
            xbar.update(part)


class ChipLayer:
    """A weighted layer stored as weight codes in crossbar blocks."""

    def __init__(self, chip: ChipSpec, w: np.ndarray, *, layer: int, seed: int) -> None:
        n_out, n_in = w.shape
        self.layer = layer
        self.seed = seed
        codes, self.lsb = initial_codes(w, chip.crossbar)
        self.blocks = weight_blocks(chip, layer, n_in, n_out)
        self.xbars = [program_block(chip, b, codes, seed) for b in self.blocks]
        self.shape = (n_out, n_in)
        self.updates = 0

    def matmul(self, x: np.ndarray, event: tuple[int, ...]) -> np.ndarray:
        """Crossbar reads of binary ``x`` (N, n_in), partial sums added in block order."""
        parts = read_blocks(self.blocks, self.xbars, x, event)
        return add_blocks(self.blocks, parts, x.shape[0], self.shape[0]) * self.lsb

    def weights(self) -> np.ndarray:
        """The weights the conductances hold now (noise-free read), (n_out, n_in)."""
        codes = np.zeros(self.shape[::-1])
        for block, xbar in zip(self.blocks, self.xbars, strict=True):
            codes[block.in_start : block.in_stop, block.out_start : block.out_stop] = (
                xbar.effective_codes()
            )
        return codes.T * self.lsb

    def apply_update(self, delta: np.ndarray, event: tuple[int, ...]) -> None:
        """Program ``delta`` (n_out, n_in): stochastically rounded to codes, then pulses."""
        self.updates += 1
        steps = update_steps(delta, self.lsb, seed=self.seed, layer=self.layer, event=event)
        program_blocks(self.xbars, [block_part(steps, b) for b in self.blocks])

    def counters(self) -> Counters:
        """Summed counters of this layer's crossbars."""
        return _sum_counters(self.xbars)


class ChipFeedback:
    """The random feedback matrix B (C × M), held once in formed, never-programmed arrays.

    g_l = e·B[:, :n_l]/√M is the first n_l entries of g = e·B/√M (DESIGN.md §2), so one
    bit-serial read of the group per sample serves every hidden layer: each takes its prefix
    of e·B (the rule applies 1/√M, :func:`emulator.learning.feedback_scale`).
    """

    def __init__(
        self, chip: ChipSpec, n_classes: int, widths: dict[int, int], *, seed: int, group: int
    ) -> None:
        self.widths = widths
        self.width = max(widths.values())
        self.blocks = feedback_blocks(chip, group, n_classes, self.width)
        self.arrays = [
            FormedCrossbar(chip, b.n_in, b.n_out, seed=seed, xbar_id=b.id) for b in self.blocks
        ]
        self._last: tuple[tuple[int, ...], np.ndarray, np.ndarray] | None = None

    def project(self, e: np.ndarray, layer: int, event: tuple[int, ...]) -> np.ndarray:
        """The prefix of e·B for hidden layer ``layer`` from the group's one read per event."""
        if self._last is None or self._last[0] != event or not np.array_equal(self._last[1], e):
            self._last = (event, e.copy(), self._read(e, event))
        return self._last[2][:, : self.widths[layer]]

    def _read(self, e: np.ndarray, event: tuple[int, ...]) -> np.ndarray:
        parts = read_blocks(self.blocks, self.arrays, e, event)
        return add_blocks(self.blocks, parts, e.shape[0], self.width)

    def matrix(self) -> np.ndarray:
        """The matrix B (C × M) the formed arrays hold."""
        rows = max(b.in_stop for b in self.blocks)
        full = np.zeros((rows, self.width))
        for block, array in zip(self.blocks, self.arrays, strict=True):
            full[block.in_start : block.in_stop, block.out_start : block.out_stop] = array.matrix
        return full

    def counters(self) -> Counters:
        """Summed counters of the feedback arrays."""
        return _sum_counters(self.arrays)


def _sum_counters(xbars: list[Crossbar] | list[FormedCrossbar]) -> Counters:
    total = Counters()
    for xbar in xbars:
        total.add(xbar.counters)
    return total
