"""The formed, never-programmed arrays of SDFA's random feedback (docs/algorithm.md#feedback):
conductances left by forming (:class:`~emulator.spec.FormingSpec`), read bit-serially with a
multi-bit error.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from emulator.physics import device as dev
from emulator.physics.crossbar import Counters
from emulator.physics.readout import (
    EventRows,
    as_values,
    bit_planes,
    check_size,
    noise_shape,
    readout,
)
from emulator.rng import stream
from emulator.spec import ChipSpec


class FormedCrossbar:
    """A never-programmed array holding a random matrix in its forming randomness (the SDFA
    feedback matrix).

    One differential pair (2 cells, no slicing) per entry; the physical column of
    (j, polarity) is ``2·j + polarity``.

    Attributes
    ----------
    conductances : np.ndarray
        float64 (n_in, n_out, 2) formed conductances, µS (axis 2: 0 = G⁺, 1 = G⁻).
    scale_us : float
        s, the std of all G⁺ − G⁻ of this array (the chip calibrates it once), µS.
    matrix : np.ndarray
        float64 (n_in, n_out), (G⁺ − G⁻)/s: zero mean in expectation, unit variance.
    counters : Counters
        Reads and conversions done so far (never any writes).
    """

    def __init__(self, chip: ChipSpec, n_in: int, n_out: int, *, seed: int, xbar_id: str) -> None:
        xb = chip.crossbar
        check_size("n_in", n_in, xb.rows, "crossbar.rows")
        check_size("n_out", n_out, xb.cols // 2, "differential pairs (crossbar.cols // 2)")
        if xb.error_bits < 2:
            raise ValueError(
                f"crossbar.error_bits: {xb.error_bits} leaves no magnitude bit for "
                "sign-magnitude errors (needs >= 2)"
            )
        self.chip = chip
        self.n_in, self.n_out = n_in, n_out
        self.seed, self.xbar_id = seed, xbar_id
        rng = stream(seed, xbar_id, "forming")
        self.conductances = dev.formed_conductances(chip.device.forming, (n_in, n_out, 2), rng)
        diff = self.conductances[:, :, 0] - self.conductances[:, :, 1]
        self.scale_us = float(diff.std())
        if not self.scale_us > 0:
            raise ValueError(
                f"FormedCrossbar {xbar_id!r}: all {n_in}x{n_out} differences are equal; "
                "the forming spec leaves no randomness to calibrate"
            )
        self.matrix = diff / self.scale_us
        self.counters = Counters()

    def read_bitserial(
        self, values: np.ndarray, event: tuple[int, ...], *, window: EventRows | None = None
    ) -> np.ndarray:
        """Multiply real vectors (B, n_in) by :attr:`matrix`, bit-serially; (B, n_out) float64.

        Each vector is quantised sign-magnitude to ``error_bits`` bits with scale max|v|; its
        positive and negative parts are applied one magnitude bit plane at a time
        (2·(error_bits − 1) binary reads), each read with read noise and a readout whose step
        is ``formed_g_us`` (I&F counters subtract a reference column of pristine cells);
        the planes are shift-added and scaled back by m/(2**(error_bits−1) − 1) and 1/s.
        With ``crossbar.serial_readout: integrated`` the counter integrates the planes'
        charge weighted 2^k (a weighted-spike train) and is read once, saturating as one
        count.
        ``window`` as for :meth:`Crossbar.read`.
        """
        v = as_values(values, self.n_in)
        x, scale = bit_planes(v, self.chip.crossbar.error_bits)  # (planes, sign, B, n_in)
        current = x @ self.conductances.reshape(self.n_in, -1)
        rng = stream(self.seed, self.xbar_id, "read", *event)
        # (planes, sign, B, cols): the batch axis is third, so draw with it first and move it.
        shape, rows = noise_shape(
            current.shape[2:3] + current.shape[:2] + current.shape[3:], window
        )
        current += np.moveaxis(dev.read_noise(self.chip.device, shape, rng, rows), 0, 2)
        active = x.sum(axis=-1)
        forming = self.chip.device.forming
        signal = (current - forming.pristine_g_us * active[..., None]) / forming.formed_g_us
        signal = signal.reshape(*signal.shape[:-1], self.n_out, 2, 1)
        weights = 2.0 ** np.arange(signal.shape[0])
        if self.chip.crossbar.serial_readout == "integrated":  # one count of the whole train
            total, conversions = readout(np.tensordot(weights, signal, axes=1), self.chip)
            acc = total[0, ..., 0] - total[1, ..., 0]
        else:  # every plane read out, then shift-added
            plane_values, conversions = readout(signal, self.chip)
            signed = plane_values[:, 0, ..., 0] - plane_values[:, 1, ..., 0]
            acc = np.tensordot(weights, signed, axes=1)
        self.counters.reads += int(np.prod(x.shape[:-1]))
        self.counters.active_rows += int(active.sum())
        self.counters.cell_reads += int(active.sum()) * 2 * self.n_out
        self.counters.conversions += conversions
        return acc * (forming.formed_g_us / self.scale_us) * scale[:, None]

    def state(self) -> dict[str, Any]:
        """Only the counters change: the formed conductances follow from the seed."""
        return {"counters": self.counters.as_dict()}

    def restore(self, state: dict[str, Any]) -> None:
        """Take back :meth:`state`."""
        self.counters = Counters(**state["counters"])
