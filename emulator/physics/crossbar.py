"""Crossbar blocks: programmable weight arrays and never-programmed random feedback arrays.

A :class:`Crossbar` holds an (n_in × n_out) slice of a signed integer weight matrix. Each
weight is sign + magnitude; the magnitude is bit-sliced over ``slices`` cells (LSB slice
first) and the sign picks the polarity of a differential pair: for c > 0 the G⁺ cells hold the
slices and the G⁻ cells sit at level 0, for c < 0 the reverse. Binary spikes read the array in
one analog step; an ADC (or integrate-and-fire counters) and a shift-add turn column currents
back into code units. A :class:`FormedCrossbar` holds the SDFA feedback matrix in the random
conductances left by forming (ESGNN) and is read bit-serially with multi-bit error values.

Every random draw comes from a keyed stream (:func:`emulator.rng.stream`): device-to-device
factors from ``(seed, xbar_id, "d2d")``, write noise from ``(seed, xbar_id, "write", i)`` for
the i-th program/update call, read noise from ``(seed, xbar_id, "read", *event)``, forming from
``(seed, xbar_id, "forming")``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from emulator.physics import device as dev
from emulator.rng import stream
from emulator.spec import ChipSpec


@dataclass
class Counters:
    """Operation counts of one or more crossbars; energy follows from a :class:`ChipSpec`."""

    reads: int = 0
    """Read operations (one input vector applied to the array)."""
    active_rows: int = 0
    """Sum over reads of rows whose input bit is 1."""
    cell_reads: int = 0
    """Sum over reads of active rows × physical columns used."""
    conversions: int = 0
    """ADC conversions or I&F counter readouts."""
    cells_written: int = 0
    """Cells whose level changed in a write."""
    pulses: int = 0
    """Programming pulses applied."""
    rows_written: int = 0
    """Rows with at least one cell written (writes go row by row)."""

    def add(self, other: Counters) -> None:
        """Add ``other``'s counts to these, in place."""
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def energy_pj(self, chip: ChipSpec) -> dict[str, float]:
        """Energy by kind, pJ: cell reads, readout conversions, write pulses."""
        return {
            "read": self.cell_reads * chip.device.read_energy_pj,
            "readout": self.conversions * chip.crossbar.adc_energy_pj,
            "write": self.pulses * chip.device.write_energy_pj,
        }

    def as_dict(self) -> dict[str, int]:
        """The counts as a plain dict."""
        return dataclasses.asdict(self)


class Crossbar:
    """One programmable crossbar block holding an (n_in × n_out) slice of a signed weight matrix
    as integer codes.

    Attributes
    ----------
    code_max : int
        Largest code magnitude, 2**weight_bits − 1 (the sign comes from the differential pair).
    codes : np.ndarray
        int64 (n_in, n_out), the target codes currently programmed.
    levels : np.ndarray
        int64 (n_in, n_out, 2, slices), target level of every cell; axis 2 is the polarity
        (0 = G⁺, 1 = G⁻), axis 3 the slice (LSB first). Physical column of (j, polarity, k)
        is ``j·2·slices + polarity·slices + k``.
    conductances : np.ndarray
        float64 (n_in, n_out, 2, slices), actual conductance of every cell, µS.
    span_us : np.ndarray
        float64 (n_in, n_out, 2, slices), each cell's range ΔG_cell = ΔG·d (d2d factor d).
    counters : Counters
        Reads, conversions and writes done so far.
    """

    def __init__(self, chip: ChipSpec, n_in: int, n_out: int, *, seed: int, xbar_id: str) -> None:
        xb = chip.crossbar
        _check_size("n_in", n_in, xb.rows, "crossbar.rows")
        _check_size(
            "n_out", n_out, xb.weights_per_row, "logical columns (crossbar.weights_per_row)"
        )
        self.chip = chip
        self.n_in, self.n_out = n_in, n_out
        self.seed, self.xbar_id = seed, xbar_id
        self.cell_bits, self.slices = xb.cell_bits, xb.slices
        self.n_levels = 2**xb.cell_bits
        self.code_max = 2**xb.weight_bits - 1
        self.delta_g_level_us = dev.delta_g_us(chip.device) / (self.n_levels - 1)
        shape = (n_in, n_out, 2, self.slices)
        d = dev.d2d_factors(chip.device, shape, stream(seed, xbar_id, "d2d"))
        self.span_us = dev.delta_g_us(chip.device) * d
        self.conductances = dev.snap(np.full(shape, chip.device.g_min_us))
        self.levels = np.zeros(shape, dtype=np.int64)
        self.codes = np.zeros((n_in, n_out), dtype=np.int64)
        self.counters = Counters()
        self._writes = 0
        self.stuck_low, self.stuck_high = _stuck_cells(chip, xbar_id, shape)
        self._hold_stuck()

    def _hold_stuck(self) -> None:
        """Stuck cells keep their conductance whatever was written (the writer does not know)."""
        if self.stuck_low is None:
            return
        device = self.chip.device
        g = np.where(self.stuck_low, dev.snap(device.g_min_us), self.conductances)
        self.conductances = np.where(self.stuck_high, dev.snap(device.g_max_us), g)

    @property
    def stuck(self) -> tuple[int, int]:
        """Cells stuck at Gmin and at Gmax."""
        if self.stuck_low is None:
            return 0, 0
        return int(self.stuck_low.sum()), int(self.stuck_high.sum())

    @property
    def physical_columns(self) -> int:
        """Cell columns used: a differential pair per slice per logical column."""
        return self.n_out * 2 * self.slices

    def program(self, codes: np.ndarray) -> None:
        """Program ``codes`` (int (n_in, n_out), clipped to ±code_max) from the current state."""
        new = _as_int_array(codes, (self.n_in, self.n_out), "codes")
        self._write(np.clip(new, -self.code_max, self.code_max))

    def update(self, delta: np.ndarray) -> None:
        """Add integer code deltas (clipped to ±code_max); only changed cells get pulses."""
        d = _as_int_array(delta, (self.n_in, self.n_out), "delta")
        d = np.clip(d, -2 * self.code_max, 2 * self.code_max)
        self._write(np.clip(self.codes + d, -self.code_max, self.code_max))

    def _write(self, codes: np.ndarray) -> None:
        new_levels = code_levels(codes, self.cell_bits, self.slices)
        pulses = dev.pulses_between(
            self.levels, new_levels, self.n_levels, self.chip.device.pulse_levels
        )
        rng = stream(self.seed, self.xbar_id, "write", self._writes)
        self._writes += 1
        self.conductances = dev.apply_pulses(
            self.conductances, pulses, self.span_us, self.chip.device, rng
        )
        self._hold_stuck()
        changed = new_levels != self.levels
        self.counters.cells_written += int(changed.sum())
        self.counters.pulses += int(np.abs(pulses).sum())
        self.counters.rows_written += int(changed.reshape(self.n_in, -1).any(axis=1).sum())
        self.levels = new_levels
        self.codes = codes.astype(np.int64)

    def read(
        self, spikes: np.ndarray, event: tuple[int, ...], *, window: EventRows | None = None
    ) -> np.ndarray:
        """Apply binary spike vectors (B, n_in); return (B, n_out) float64 in code units.

        One analog read per vector: column currents plus read noise, minus a Gmin reference
        column per active row, quantised per slice by the readout, then shift-added. Without
        noise or saturation the result is ``spikes @ codes`` (up to the pulse grid).
        ``window`` = (first, total) says these are vectors first.. of an event of ``total``
        vectors: each gets the noise it would get in one read of the whole event.
        """
        x = _as_spikes(spikes, self.n_in)
        b = x.shape[0]
        current = x @ self.conductances.reshape(self.n_in, -1)
        rng = stream(self.seed, self.xbar_id, "read", *event)
        shape, rows = _noise_shape(current.shape, window)
        current += dev.read_noise(self.chip.device, shape, rng, rows)
        active = x.sum(axis=1)
        signal = (current - self.chip.device.g_min_us * active[:, None]) / self.delta_g_level_us
        signal = signal.reshape(b, self.n_out, 2, self.slices)
        slice_values, conversions = _readout(signal, self.chip)
        self._count_reads(b, active, conversions)
        return slice_values @ self._slice_weights()

    def effective_codes(self) -> np.ndarray:
        """Noise-free analog value of each weight, code units.

        Σ_k 2^(cell_bits·k)·(G⁺_k − G⁻_k)/ΔG_level, from the actual conductances.
        """
        diff = self.conductances[:, :, 0, :] - self.conductances[:, :, 1, :]
        return diff / self.delta_g_level_us @ self._slice_weights()

    def _slice_weights(self) -> np.ndarray:
        return 2.0 ** (self.cell_bits * np.arange(self.slices))

    def state(self) -> dict[str, Any]:
        """What a write changes (conductances, levels, codes, counters, writes so far); the
        rest (d2d spans, stuck cells) follows from the chip, the seed and the array's id."""
        return {
            "conductances": self.conductances,
            "levels": self.levels,
            "codes": self.codes,
            "counters": self.counters.as_dict(),
            "writes": self._writes,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Take back :meth:`state` (copied, shapes and types checked)."""
        self.conductances = _restored(state, "conductances", self.conductances)
        self.levels = _restored(state, "levels", self.levels)
        self.codes = _restored(state, "codes", self.codes)
        self.counters = Counters(**state["counters"])
        self._writes = int(state["writes"])

    def _count_reads(self, b: int, active: np.ndarray, conversions: int) -> None:
        total = int(active.sum())
        self.counters.reads += b
        self.counters.active_rows += total
        self.counters.cell_reads += total * self.physical_columns
        self.counters.conversions += conversions


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
        _check_size("n_in", n_in, xb.rows, "crossbar.rows")
        _check_size("n_out", n_out, xb.cols // 2, "differential pairs (crossbar.cols // 2)")
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
        v = _as_values(values, self.n_in)
        x, scale = bit_planes(v, self.chip.crossbar.error_bits)  # (planes, sign, B, n_in)
        current = x @ self.conductances.reshape(self.n_in, -1)
        rng = stream(self.seed, self.xbar_id, "read", *event)
        # (planes, sign, B, cols): the batch axis is third, so draw with it first and move it.
        shape, rows = _noise_shape(
            current.shape[2:3] + current.shape[:2] + current.shape[3:], window
        )
        current += np.moveaxis(dev.read_noise(self.chip.device, shape, rng, rows), 0, 2)
        active = x.sum(axis=-1)
        forming = self.chip.device.forming
        signal = (current - forming.pristine_g_us * active[..., None]) / forming.formed_g_us
        signal = signal.reshape(*signal.shape[:-1], self.n_out, 2, 1)
        weights = 2.0 ** np.arange(signal.shape[0])
        if self.chip.crossbar.serial_readout == "integrated":  # one count of the whole train
            total, conversions = _readout(np.tensordot(weights, signal, axes=1), self.chip)
            acc = total[0, ..., 0] - total[1, ..., 0]
        else:  # every plane read out, then shift-added
            plane_values, conversions = _readout(signal, self.chip)
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


def _restored(state: dict[str, Any], key: str, like: np.ndarray) -> np.ndarray:
    """A copy of ``state[key]``, refused (ValueError) unless it has ``like``'s shape and type."""
    value = np.asarray(state[key])
    if value.shape != like.shape or value.dtype != like.dtype:
        raise ValueError(
            f"{key}: {value.dtype}{list(value.shape)} does not fit this array's "
            f"{like.dtype}{list(like.shape)}"
        )
    return value.copy()


def _stuck_cells(
    chip: ChipSpec, xbar_id: str, shape: tuple[int, ...]
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The fault map of one array: cells stuck at Gmin and at Gmax (None: no faults).

    Drawn from ``stream(faults.seed, xbar_id, "stuck")``, so an array's faults depend only on
    the chip file and the array, never on the run's seed or the order arrays are built.
    """
    faults = chip.device.faults
    if faults.stuck_at_gmin == 0 and faults.stuck_at_gmax == 0:
        return None, None
    u = stream(faults.seed, xbar_id, "stuck").random(shape)
    low = u < faults.stuck_at_gmin
    return low, ~low & (u < faults.stuck_at_gmin + faults.stuck_at_gmax)


EventRows = tuple[int, int]
"""(first vector, vectors in the whole event) of a read that applies part of an event."""


def _noise_shape(shape: tuple[int, ...], window: EventRows | None) -> tuple[tuple[int, ...], slice]:
    """The whole event's noise shape (batch axis first) and the rows this read takes."""
    if window is None:
        return shape, slice(None)
    first, total = window
    if first < 0 or first + shape[0] > total:
        raise ValueError(f"window: vectors {first}..{first + shape[0]} exceed the event's {total}")
    return (total, *shape[1:]), slice(first, first + shape[0])


def bit_planes(values: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Sign-magnitude bit planes of real row vectors (B, n) quantised to ``bits`` bits.

    Each row v gets scale m = max|v| and magnitudes q = round(|v|/m·(2**(bits−1) − 1)) (an
    all-zero row gives zeros). Returns binary planes (bits − 1, 2, B, n) float64, axis 1 the
    sign (0 = positive part, 1 = negative part), LSB plane first, and the per-row factor
    m/(2**(bits−1) − 1) that turns shift-added planes back into values.
    """
    q_max = 2 ** (bits - 1) - 1
    m = np.abs(values).max(axis=1, initial=0.0)
    q = np.rint(np.abs(values) / np.where(m > 0, m, 1.0)[:, None] * q_max).astype(np.int64)
    planes = (q[None] >> np.arange(bits - 1)[:, None, None]) & 1
    x = np.stack([planes * (values > 0), planes * (values < 0)], axis=1)
    return x.astype(np.float64), m / q_max


def code_levels(codes: np.ndarray, cell_bits: int, slices: int) -> np.ndarray:
    """Cell levels (…, 2, slices) of sign-magnitude codes: polarity 0 = G⁺, 1 = G⁻, LSB first."""
    c = np.asarray(codes, dtype=np.int64)
    shifts = cell_bits * np.arange(slices)
    mag = (np.abs(c)[..., None] >> shifts) & (2**cell_bits - 1)
    plus = np.where(c[..., None] > 0, mag, 0)
    minus = np.where(c[..., None] < 0, mag, 0)
    return np.stack([plus, minus], axis=-2)


def _readout(signal: np.ndarray, chip: ChipSpec) -> tuple[np.ndarray, int]:
    """Quantise (…, 2, slices) column signals (in level steps) to signed slice values.

    "adc": one conversion per differential pair of the difference, saturating at
    ±(2**(adc_bits−1) − 1); "if_counter": one counter per column, saturating at
    [0, 2**adc_bits − 1], subtracted digitally. Returns the (…, slices) values and the count
    of conversions.
    """
    bits = chip.crossbar.adc_bits
    if chip.crossbar.readout == "adc":
        lim = 2 ** (bits - 1) - 1
        values = np.clip(np.rint(signal[..., 0, :] - signal[..., 1, :]), -lim, lim)
        return values, values.size
    counts = np.clip(np.rint(signal), 0, 2**bits - 1)
    return counts[..., 0, :] - counts[..., 1, :], counts.size


def _check_size(name: str, value: int, limit: int, what: str) -> None:
    if not 1 <= value <= limit:
        raise ValueError(f"{name}: {value} must be between 1 and {limit} ({what})")


def _as_int_array(a: np.ndarray, shape: tuple[int, ...], name: str) -> np.ndarray:
    """``a`` as int64 of exactly ``shape``; integer-valued floats accepted, else ValueError."""
    arr = np.asarray(a)
    if arr.shape != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {arr.shape}")
    if arr.dtype.kind in "iu":
        if arr.size and arr.dtype.kind == "u" and arr.max() > np.iinfo(np.int64).max:
            raise ValueError(f"{name}: values exceed the int64 range")
        return arr.astype(np.int64)
    if arr.dtype.kind != "f":
        raise ValueError(f"{name}: expected integer codes, got dtype {arr.dtype}")
    if not np.isfinite(arr).all() or (np.abs(arr) >= 2.0**63).any():
        raise ValueError(f"{name}: values must be finite and within the int64 range")
    if (arr != np.round(arr)).any():
        raise ValueError(f"{name}: values must be integers")
    return arr.astype(np.int64)


def _as_spikes(spikes: np.ndarray, n_in: int) -> np.ndarray:
    """Binary (B, n_in) spikes as float64; ValueError on a bad shape or a non-binary value."""
    x = np.asarray(spikes)
    if x.ndim != 2 or x.shape[1] != n_in:
        raise ValueError(f"spikes: expected shape (B, {n_in}), got {x.shape}")
    if x.dtype.kind not in "biuf":
        raise ValueError(f"spikes: expected numbers 0/1, got dtype {x.dtype}")
    if not ((x == 0) | (x == 1)).all():
        raise ValueError("spikes: values must be 0 or 1 (binary spikes, no DAC)")
    return x.astype(np.float64)


def _as_values(values: np.ndarray, n_in: int) -> np.ndarray:
    """Finite real (B, n_in) values as float64; ValueError otherwise."""
    v = np.asarray(values)
    if v.ndim != 2 or v.shape[1] != n_in:
        raise ValueError(f"values: expected shape (B, {n_in}), got {v.shape}")
    if v.dtype.kind not in "biuf":
        raise ValueError(f"values: expected real numbers, got dtype {v.dtype}")
    v = v.astype(np.float64)
    if not np.isfinite(v).all():
        raise ValueError("values: must be finite")
    return v
