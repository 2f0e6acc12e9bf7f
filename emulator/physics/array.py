"""One crossbar array holding one block: a
:class:`~emulator.physics.crossbar.CrossbarBank` of a single matrix, the convenient form for
tests and notebooks."""

from __future__ import annotations

from typing import Any

import numpy as np

from emulator.physics.crossbar import Counters, CrossbarBank, one_block
from emulator.physics.readout import EventRows, as_int_array, as_spikes, check_size
from emulator.spec import ChipSpec


class Crossbar:
    """One programmable crossbar block holding an (n_in × n_out) slice of a signed weight
    matrix as integer codes: a :class:`CrossbarBank` of one block, read (B, n_in) → (B, n_out).

    Attributes
    ----------
    code_max : int
        Largest code magnitude, 2**weight_bits − 1 (the sign comes from the differential pair).
    codes : np.ndarray
        int64 (n_in, n_out), the target codes currently programmed.
    levels : np.ndarray
        (n_in, n_out, 2, slices), target level of every cell; axis 2 is the polarity
        (0 = G⁺, 1 = G⁻), axis 3 the slice (LSB first). Physical column of (j, polarity, k)
        is ``j·2·slices + polarity·slices + k``.
    conductances : np.ndarray
        float64 (n_in, n_out, 2, slices), actual conductance of every cell, µS.
    span_us : np.ndarray
        (n_in, n_out, 2, slices), each cell's range ΔG_cell = ΔG·d (d2d factor d).
    counters : Counters
        Reads, conversions and writes done so far.
    """

    def __init__(self, chip: ChipSpec, n_in: int, n_out: int, *, seed: int, xbar_id: str) -> None:
        xb = chip.crossbar
        check_size("n_in", n_in, xb.rows, "crossbar.rows")
        check_size("n_out", n_out, xb.weights_per_row, "logical columns (crossbar.weights_per_row)")
        self.n_in, self.n_out, self.xbar_id = n_in, n_out, xbar_id
        self.bank = CrossbarBank(chip, [one_block(xbar_id, n_in, n_out)], seed=seed)
        self.code_max = self.bank.code_max

    @property
    def conductances(self) -> np.ndarray:
        return self.bank.conductances[0]

    @property
    def levels(self) -> np.ndarray:
        return self.bank.levels[0]

    @property
    def codes(self) -> np.ndarray:
        return self.bank.codes[0]

    @property
    def span_us(self) -> np.ndarray:
        return np.broadcast_to(self.bank.span_us[0], self.conductances.shape)

    @property
    def stuck_low(self) -> np.ndarray | None:
        return self.bank.stuck_low[0]

    @property
    def stuck_high(self) -> np.ndarray | None:
        return self.bank.stuck_high[0]

    @property
    def counters(self) -> Counters:
        return self.bank.total_counters()

    @property
    def stuck(self) -> tuple[int, int]:
        """Cells stuck at Gmin and at Gmax."""
        return self.bank.block_stuck()[0]

    @property
    def physical_columns(self) -> int:
        """Cell columns used: a differential pair per slice per logical column."""
        return self.n_out * 2 * self.bank.slices

    def read(
        self, spikes: np.ndarray, event: tuple[int, ...], *, window: EventRows | None = None
    ) -> np.ndarray:
        """Apply binary spike vectors (B, n_in); return (B, n_out) float64 in code units
        (:meth:`CrossbarBank.read`, one step)."""
        x = as_spikes(spikes, self.n_in)
        return self.bank.read(x[None], event, window=window)[0]

    def program(self, codes: np.ndarray) -> None:
        """Program ``codes`` (int (n_in, n_out), clipped to ±code_max) from the current state."""
        self.bank.program(as_int_array(codes, (self.n_in, self.n_out), "codes"))

    def update(self, delta: np.ndarray) -> None:
        """Add integer code deltas (clipped to ±code_max); only changed cells get pulses."""
        self.bank.update_blocks([delta])

    def effective_codes(self) -> np.ndarray:
        """Noise-free analog value of each weight, code units (:meth:`CrossbarBank.block_codes`)."""
        return self.bank.block_codes()[0]

    def state(self) -> dict[str, Any]:
        """:meth:`CrossbarBank.state`."""
        return self.bank.state()

    def restore(self, state: dict[str, Any]) -> None:
        """:meth:`CrossbarBank.restore`."""
        self.bank.restore(state)
