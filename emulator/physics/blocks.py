"""A layer's crossbar blocks: reads, block-order sums and updates, as functions that both
the reference model's backends and the chip's cores call (one copy of the arithmetic).

A layer's matrix is cut into the blocks of :mod:`emulator.physics.mapping`; a
:class:`~emulator.physics.crossbar.CrossbarBank` holds weight blocks and reads them all over
every time step at once, :func:`read_formed` reads formed blocks bit-serially with real errors,
:func:`add_blocks` adds the partial results in block order and :func:`update_steps` rounds an
update to integer code steps (the bank programs each block's part).
A :class:`ChipLayer` (``pipesdfa train --chip``) holds one weighted layer's blocks; a
:class:`ChipFeedback` the one random feedback matrix in formed, never-programmed arrays. Both
implement the backend protocols of :mod:`emulator.learning`, so the reference trainer runs
unchanged; a PE core holds its share of the blocks and a tile adds the partial results.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from emulator.physics.crossbar import Counters, CrossbarBank
from emulator.physics.formed import FormedCrossbar
from emulator.physics.readout import EventRows
from emulator.physics.tiling import Block, feedback_blocks, weight_blocks
from emulator.rng import stream
from emulator.spec import ChipSpec, CrossbarSpec


def stochastic_round(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Round to an integer up with probability equal to the fraction (unbiased)."""
    x = np.ascontiguousarray(x)
    low = np.floor(x)
    up = rng.random(x.shape) < x - low
    return low.astype(np.int64) + up


def initial_codes(
    w: np.ndarray, crossbar: CrossbarSpec, *, lsb: float | None = None
) -> tuple[np.ndarray, float]:
    """Initial weights (n_out, n_in) as codes (n_in, n_out) and the layer's LSB.

    The layer's range (code_max × LSB) is ``crossbar.weight_range_over_init`` times its
    largest initial weight; give ``lsb`` when ``w`` is only part of the layer.
    """
    code_max = 2**crossbar.weight_bits - 1
    if lsb is None:
        bound = float(np.max(np.abs(w))) or 1.0
        lsb = crossbar.weight_range_over_init * bound / code_max
    return np.clip(np.rint(w.T / lsb), -code_max, code_max).astype(np.int64), lsb


def block_part(matrix: np.ndarray, block: Block) -> np.ndarray:
    """A block's part of a (n_in, n_out) matrix."""
    return matrix[block.in_start : block.in_stop, block.out_start : block.out_stop]


def read_formed(
    blocks: Sequence[Block],
    arrays: Sequence[FormedCrossbar],
    x: np.ndarray,
    event: tuple[int, ...],
    window: EventRows | None = None,
) -> np.ndarray:
    """Each formed block's bit-serial result of real values ``x`` (N, n_in), side by side in
    block order; ``window``: these are vectors first.. of an event of ``total`` vectors (each
    gets its noise of the whole event)."""
    parts = [
        array.read_bitserial(x[:, b.in_start : b.in_stop], event, window=window)
        for b, array in zip(blocks, arrays, strict=True)
    ]
    return np.concatenate(parts, axis=-1)


def add_blocks(
    blocks: Sequence[Block], parts: np.ndarray, n_out: int, *, out: np.ndarray | None = None
) -> np.ndarray:
    """Partial results side by side in block order (…, Σ n_out) added into (…, n_out) (a new
    array, or ``out``), in block order (docs/architecture.md#determinism); consecutive
    blocks of a row band go as one slice."""
    if out is None:
        out = np.zeros((*parts.shape[:-1], n_out))
    offset, j = 0, 0
    while j < len(blocks):
        start, stop = blocks[j].out_start, blocks[j].out_stop
        j += 1
        while (
            j < len(blocks)
            and blocks[j].out_start == stop
            and blocks[j].in_start == blocks[j - 1].in_start
        ):
            stop = blocks[j].out_stop
            j += 1
        out[..., start:stop] += parts[..., offset : offset + stop - start]
        offset += stop - start
    return out


def update_steps(
    delta: np.ndarray, lsb: float, *, seed: int, layer: int, event: tuple[int, ...]
) -> np.ndarray:
    """An update (n_out, n_in) as integer code steps (n_in, n_out), stochastically rounded
    from the stream ``(seed, "update", layer, *event)``."""
    return stochastic_round(delta.T / lsb, stream(seed, "update", layer, *event))


class ChipLayer:
    """A weighted layer stored as weight codes in the crossbar blocks of one bank."""

    def __init__(self, chip: ChipSpec, w: np.ndarray, *, layer: int, seed: int) -> None:
        n_out, n_in = w.shape
        self.layer = layer
        self.seed = seed
        codes, self.lsb = initial_codes(w, chip.crossbar)
        self.blocks = weight_blocks(chip, layer, n_in, n_out)
        self.bank = CrossbarBank(chip, self.blocks, seed=seed, inputs=n_in)
        self.bank.program(codes)
        self.shape = (n_out, n_in)
        self.updates = 0

    def matmul(self, x: np.ndarray, event: tuple[int, ...]) -> np.ndarray:
        """Crossbar reads of binary ``x`` (T, N, n_in) over every step at once, partial sums
        added in block order: (T, N, n_out)."""
        return add_blocks(self.blocks, self.bank.read(x, event), self.shape[0]) * self.lsb

    def weights(self) -> np.ndarray:
        """The weights the conductances hold now (noise-free read), (n_out, n_in)."""
        codes = np.zeros(self.shape[::-1])
        for block, eff in zip(self.blocks, self.bank.block_codes(), strict=True):
            codes[block.in_start : block.in_stop, block.out_start : block.out_stop] = eff
        return codes.T * self.lsb

    def apply_update(self, delta: np.ndarray, event: tuple[int, ...]) -> None:
        """Program ``delta`` (n_out, n_in): stochastically rounded to codes, then pulses."""
        self.updates += 1
        steps = update_steps(delta, self.lsb, seed=self.seed, layer=self.layer, event=event)
        self.bank.update(steps)

    def counters(self) -> Counters:
        """Summed counters of this layer's crossbars."""
        return self.bank.total_counters()

    def snapshot(self) -> dict[str, Any]:
        """The cells' state now (copies), for :meth:`restore`."""
        state = self.bank.state()
        return {k: [a.copy() for a in state[k]] for k in ("conductances", "levels", "codes")}

    def restore(self, state: dict[str, Any]) -> None:
        """Take back a :meth:`snapshot`'s cells; the counters keep every operation done."""
        self.bank.restore({**state, "counters": self.bank.counters, "writes": self.bank.writes})


class ChipFeedback:
    """The random feedback matrix B (C × M), held once in formed, never-programmed arrays.

    g_l = e·B[:, :n_l]/√M is the first n_l entries of g = e·B/√M (docs/algorithm.md#feedback),
    so one bit-serial read of the group per sample serves every hidden layer: each takes its prefix
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
        return add_blocks(self.blocks, read_formed(self.blocks, self.arrays, e, event), self.width)

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


def _sum_counters(xbars: list[FormedCrossbar]) -> Counters:
    total = Counters()
    for xbar in xbars:
        total.add(xbar.counters)
    return total
