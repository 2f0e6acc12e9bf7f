"""Layer and feedback backends that run on a chip's crossbars (``pipesdfa train --chip``).

A :class:`ChipLayer` holds one weighted layer as integer weight codes programmed into the
crossbar blocks of :mod:`emulator.physics.mapping`; its matrix products are crossbar reads summed in
block order, and its updates are programming pulses. A :class:`ChipFeedback` holds the one
random feedback matrix in formed, never-programmed arrays. Both implement the
backend protocols of :mod:`emulator.learning`, so the reference trainer runs unchanged.
"""

from __future__ import annotations

import numpy as np

from emulator.physics.crossbar import Counters, Crossbar, FormedCrossbar
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
    xbar.program(_part(codes, block))
    return xbar


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
        out = np.zeros((x.shape[0], self.shape[0]))
        for block, xbar in zip(self.blocks, self.xbars, strict=True):
            out[:, block.out_start : block.out_stop] += xbar.read(
                x[:, block.in_start : block.in_stop], event
            )
        return out * self.lsb

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
        rng = stream(self.seed, "update", self.layer, *event)
        steps = stochastic_round(delta.T / self.lsb, rng)
        for block, xbar in zip(self.blocks, self.xbars, strict=True):
            part = _part(steps, block)
            if part.any():
                xbar.update(part)

    def counters(self) -> Counters:
        """Summed counters of this layer's crossbars."""
        return _sum_counters(self.xbars)


class ChipFeedback:
    """The random feedback matrix B (C × M), held once in formed, never-programmed arrays.

    g_l = e·B[:, :n_l]/√M is the first n_l entries of g = e·B/√M (DESIGN.md §2), so one
    bit-serial read of the group per sample serves every hidden layer: each takes its prefix.
    """

    def __init__(
        self, chip: ChipSpec, n_classes: int, widths: dict[int, int], *, seed: int, group: int
    ) -> None:
        self.widths = widths
        self.width = max(widths.values())
        self.scale = 1.0 / np.sqrt(self.width)
        self.blocks = feedback_blocks(chip, group, n_classes, self.width)
        self.arrays = [
            FormedCrossbar(chip, b.n_in, b.n_out, seed=seed, xbar_id=b.id) for b in self.blocks
        ]
        self._last: tuple[tuple[int, ...], np.ndarray, np.ndarray] | None = None

    def project(self, e: np.ndarray, layer: int, event: tuple[int, ...]) -> np.ndarray:
        """g_l for hidden layer ``layer``: the prefix of the group's one read for this event."""
        if self._last is None or self._last[0] != event or not np.array_equal(self._last[1], e):
            self._last = (event, e.copy(), self._read(e, event))
        return self._last[2][:, : self.widths[layer]]

    def _read(self, e: np.ndarray, event: tuple[int, ...]) -> np.ndarray:
        out = np.zeros((e.shape[0], self.width))
        for block, array in zip(self.blocks, self.arrays, strict=True):
            out[:, block.out_start : block.out_stop] += array.read_bitserial(
                e[:, block.in_start : block.in_stop], event
            )
        return out * self.scale

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


def _part(matrix: np.ndarray, block: Block) -> np.ndarray:
    return matrix[block.in_start : block.in_stop, block.out_start : block.out_stop]


def _sum_counters(xbars: list[Crossbar] | list[FormedCrossbar]) -> Counters:
    total = Counters()
    for xbar in xbars:
        total.add(xbar.counters)
    return total
