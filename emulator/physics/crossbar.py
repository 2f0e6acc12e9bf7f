"""Crossbar blocks: programmable weight arrays and never-programmed random feedback arrays.

A :class:`CrossbarBank` holds several weight blocks (a layer's, or a PE core's share) side by
side by row band and reads them all over every time step in one product per band; a
:class:`Crossbar` is a bank of one block: an (n_in × n_out) slice of a signed integer weight
matrix. Each weight is sign + magnitude; the magnitude is bit-sliced over ``slices`` cells
(LSB slice first) and the sign picks the polarity of a differential pair: for c > 0 the G⁺
cells hold the slices and the G⁻ cells sit at level 0, for c < 0 the reverse. Binary spikes
read the array in one analog step; an ADC (or integrate-and-fire counters) and a shift-add
turn column currents back into code units. A :class:`FormedCrossbar` holds the SDFA feedback
matrix in the random conductances left by forming (ESGNN) and is read bit-serially with
multi-bit error values.

Every random draw comes from a keyed stream (:func:`emulator.rng.stream`): device-to-device
factors from ``(seed, xbar_id, "d2d")``, write noise from ``(seed, xbar_id, "write", i)`` for
the i-th program/update call (one draw per pulsed cell, in order), read noise from
``(seed, xbar_id, "read", *event)`` (the whole event at once: every step of a layer's window),
forming from ``(seed, xbar_id, "forming")``: each block's own, whatever bank it sits in.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from emulator.physics import device as dev
from emulator.physics.readout import (
    EventRows,
    adc_values,
    as_int_array,
    binary,
    check_size,
    counter_values,
    spike_shape,
    window_rows,
)
from emulator.physics.tiling import Block
from emulator.rng import stream
from emulator.spec import ChipSpec


@dataclass
class Counters:
    """Operation counts of one or more crossbars (priced by
    :func:`emulator.cost.physical.counted_energy_pj`, the cost model's own rules)."""

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

    def as_dict(self) -> dict[str, int]:
        """The counts as a plain dict."""
        return dataclasses.asdict(self)


class CrossbarBank:
    """Crossbar blocks of one matrix, stored together so that a read of every block over every
    time step is a few large products (one per row band), not one small product per block and
    step.

    ``blocks`` (of :mod:`emulator.physics.mapping`) must come in row-major order, and the
    blocks of one row band must cover consecutive columns: a whole layer (``ChipLayer``) or a
    PE core's share of it. Each block is still its own array: its cells, its random streams
    (keyed by its id, never by the bank it sits in, so any grouping of blocks gives the same
    bits), its counters and its write count. Each weight is sign + magnitude; the magnitude is
    bit-sliced over ``slices`` cells (LSB slice first) and the sign picks the polarity of a
    differential pair: for c > 0 the G⁺ cells hold the slices and the G⁻ cells sit at level
    0, for c < 0 the reverse.

    A row band ``r`` stores its blocks side by side: ``conductances[r]`` float64
    (rows, columns, 2, slices), ``levels[r]`` (the target levels), ``codes[r]`` int64
    (rows, columns) and, with device-to-device variation, ``span_us[r]`` (ΔG·d per cell).
    """

    def __init__(
        self, chip: ChipSpec, blocks: Sequence[Block], *, seed: int, inputs: int | None = None
    ) -> None:
        xb = chip.crossbar
        if not blocks:
            raise ValueError("blocks: a bank needs at least one block")
        if xb.weight_encoding != "differential":
            raise ValueError(
                f"{chip.name}: crossbar.weight_encoding {xb.weight_encoding!r} is costed, not "
                "emulated: the crossbar model holds differential pairs"
            )
        self.chip, self.seed, self.blocks = chip, seed, list(blocks)
        self.inputs = inputs if inputs is not None else max(b.in_stop for b in blocks)
        """Width of the input vectors: the whole matrix's rows, of which each band reads its
        own."""
        self.cell_bits, self.slices = xb.cell_bits, xb.slices
        self.n_levels = 2**xb.cell_bits
        self.code_max = 2**xb.weight_bits - 1
        self.delta_g_level_us = dev.delta_g_us(chip.device) / (self.n_levels - 1)
        self.bands = _bands(self.blocks, xb.rows, xb.weights_per_row)
        self.n_out = sum(b.n_out for b in self.blocks)
        self.conductances: list[np.ndarray] = []
        self.levels: list[np.ndarray] = []
        self.codes: list[np.ndarray] = []
        self.span_us: list[np.ndarray | float] = []
        self.stuck_low: list[np.ndarray | None] = []
        self.stuck_high: list[np.ndarray | None] = []
        self._read_matrix: list[np.ndarray] = []
        for r, band in enumerate(self.bands):
            shape = (band.rows, band.columns, 2, self.slices)
            self.conductances.append(np.full(shape, dev.snap(chip.device.g_min_us)))
            self.levels.append(np.zeros(shape, dtype=_level_type(self.cell_bits)))
            self.codes.append(np.zeros(shape[:2], dtype=np.int64))
            self.span_us.append(self._d2d_span(band))
            low, high = self._stuck(band)
            self.stuck_low.append(low)
            self.stuck_high.append(high)
            self._hold_stuck(r, slice(None))
            self._read_matrix.append(self._matrix(r))
        self.counters = np.zeros((len(self.blocks), len(_COUNTS)), dtype=np.int64)
        self.writes = np.zeros(len(self.blocks), dtype=np.int64)

    def _block_shape(self, block: Block) -> tuple[int, int, int, int]:
        return (block.n_in, block.n_out, 2, self.slices)

    def _d2d_span(self, band: _Band) -> np.ndarray | float:
        """ΔG·d per cell, d from each block's ``(seed, id, "d2d")`` stream; ΔG when every
        d is 1 (no variation: nothing is stored per cell)."""
        device = self.chip.device
        if device.d2d_sigma == 0:
            return dev.delta_g_us(device)
        parts = [
            dev.d2d_factors(device, self._block_shape(b), stream(self.seed, b.id, "d2d"))
            for b in band.blocks
        ]
        return dev.delta_g_us(device) * np.concatenate(parts, axis=1)

    def _stuck(self, band: _Band) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The band's cells stuck at Gmin and at Gmax (:func:`_stuck_cells` of each block)."""
        maps = [_stuck_cells(self.chip, b.id, self._block_shape(b)) for b in band.blocks]
        if maps[0][0] is None:
            return None, None
        low = np.concatenate([m[0] for m in maps], axis=1)
        return low, np.concatenate([m[1] for m in maps], axis=1)

    # ------------------------------------------------------------------------ reading

    def read(
        self, spikes: np.ndarray, event: tuple[int, ...], *, window: EventRows | None = None
    ) -> np.ndarray:
        """Apply binary spike vectors (T, N, n_in) to every block; return each block's partial
        result side by side, (T, N, Σ n_out) float64 in code units, in block order.

        One analog read per vector and block: column currents plus read noise, quantised per
        slice by the readout, then shift-added. An ADC converts the difference of a pair: its
        Gmin references cancel, and the pair's two independent noises N(0, σ) add up to
        N(0, σ√2) on the difference, one draw. I&F counters count each column (minus a Gmin
        reference per active row), saturating at [0, 2**adc_bits − 1]. Block b's noise of
        event ``event`` is ``stream(seed, b.id, "read", *event)`` drawn (T, total, columns):
        ``window`` = (first, total) says these are vectors first.. of ``total`` per step, and
        they get the noise of one read of the whole event. Without noise or saturation the
        result is ``spikes @ codes`` (up to the pulse grid).
        """
        x = spike_shape(spikes, self.inputs, ndim=3)
        steps, n = x.shape[:2]
        first, total = window_rows(n, window)
        out = np.empty((steps, n, self.n_out))
        device = self.chip.device
        adc = self.chip.crossbar.readout == "adc"
        per_weight = self.slices if adc else 2 * self.slices
        sigma = device.read_noise_sigma * dev.delta_g_us(device) * (math.sqrt(2) if adc else 1)
        for r, band in enumerate(self.bands):
            rngs = [stream(self.seed, b.id, "read", *event) for b in band.blocks] if sigma else []
            chunk = max(1, READ_BYTES // (8 * n * band.columns * per_weight))
            for t0 in range(0, steps, chunk):  # a few steps at a time: the same bits
                t1 = min(t0 + chunk, steps)
                rows = binary(x[t0:t1, :, band.in_start : band.in_stop]).reshape(-1, band.rows)
                current = (rows @ self._read_matrix[r]).reshape(t1 - t0, n, -1)
                col = 0
                for b, rng in zip(band.blocks, rngs, strict=False):  # none without noise
                    width = b.n_out * per_weight
                    z = dev.noise_normal(rng, (t1 - t0, total, width))[:, first : first + n]
                    z *= sigma
                    current[..., col : col + width] += z
                    col += width
                active = rows.sum(axis=1).reshape(t1 - t0, n)
                if adc:
                    current *= 1.0 / self.delta_g_level_us
                    values = adc_values(current, self.chip)
                else:
                    current -= device.g_min_us * active[..., None]
                    current *= 1.0 / self.delta_g_level_us
                    values = counter_values(
                        current.reshape(t1 - t0, n, -1, 2, self.slices), self.chip
                    )
                values = values.reshape(t1 - t0, n, band.columns, self.slices)
                lo = band.offset
                out[t0:t1, :, lo : lo + band.columns] = values @ self._slice_weights()
                self._count_reads(band, (t1 - t0) * n, int(active.sum()), per_weight)
        return out

    def _matrix(self, r: int) -> np.ndarray:
        """What a read multiplies: G⁺ − G⁻ per slice (ADC) or every column (I&F counters)."""
        g = self.conductances[r]
        if self.chip.crossbar.readout == "adc":
            return (g[:, :, 0, :] - g[:, :, 1, :]).reshape(g.shape[0], -1)
        return g.reshape(g.shape[0], -1)

    def _count_reads(self, band: _Band, vectors: int, active: int, per_weight: int) -> None:
        for j in band.indices:
            b = self.blocks[j]
            c = self.counters[j]
            c[_READS] += vectors
            c[_ACTIVE] += active
            c[_CELL_READS] += active * b.n_out * 2 * self.slices
            c[_CONVERSIONS] += vectors * b.n_out * per_weight

    def _slice_weights(self) -> np.ndarray:
        return 2.0 ** (self.cell_bits * np.arange(self.slices))

    # ------------------------------------------------------------------------ writing

    def program(self, codes: np.ndarray, *, first_column: int = 0) -> None:
        """Program the matrix ``codes`` (int (n_in, n_out) of the whole matrix the blocks cut,
        or of its columns from ``first_column`` on; clipped to ±code_max) from the current
        state."""
        for r, band in enumerate(self.bands):
            lo = band.out_start - first_column
            part = as_int_array(
                codes[band.in_start : band.in_stop, lo : lo + band.columns],
                (band.rows, band.columns),
                "codes",
            )
            self._write(r, np.clip(part, -self.code_max, self.code_max), band.indices)

    def update_blocks(self, deltas: Sequence[np.ndarray]) -> None:
        """Add integer code deltas, one (n_in, n_out) array per block in order (clipped to
        ±code_max); only changed cells get pulses, a block with no step gets no write."""
        if len(deltas) != len(self.blocks):
            raise ValueError(f"deltas: {len(deltas)} arrays for {len(self.blocks)} blocks")
        for r, band in enumerate(self.bands):
            parts = [
                as_int_array(deltas[j], (self.blocks[j].n_in, self.blocks[j].n_out), "delta")
                for j in band.indices
            ]
            self._update_band(r, np.concatenate(parts, axis=1))

    def update(self, deltas: np.ndarray) -> None:
        """:meth:`update_blocks` with the deltas of the whole matrix the blocks cut, (inputs,
        last block's out_stop) integers."""
        d = as_int_array(deltas, (self.inputs, self.bands[-1].out_stop), "delta")
        for r, band in enumerate(self.bands):
            self._update_band(r, d[band.in_start : band.in_stop, band.out_start : band.out_stop])

    def _update_band(self, r: int, delta: np.ndarray) -> None:
        band = self.bands[r]
        stepped = np.flatnonzero(delta.any(axis=0))  # the band's columns with a step
        written = np.unique(band.owner[stepped]).tolist()
        if not written:
            return
        d = np.clip(delta, -2 * self.code_max, 2 * self.code_max)
        self._write(r, np.clip(self.codes[r] + d, -self.code_max, self.code_max), written)

    def _write(self, r: int, codes: np.ndarray, written: Sequence[int]) -> None:
        """Move band ``r`` to ``codes``: pulses on the cells whose level changes, each with
        cycle-to-cycle noise from its block's ``(seed, id, "write", i)`` stream (the i-th
        write of that block), drawn for its changed cells in order."""
        band, device = self.bands[r], self.chip.device
        weights = np.flatnonzero(codes != self.codes[r])
        per_weight = 2 * self.slices
        old = self.levels[r].reshape(-1, per_weight)[weights]
        new = code_levels(codes.ravel()[weights], self.cell_bits, self.slices)
        new = new.reshape(-1, per_weight)
        pulses = dev.pulses_between(old, new, self.n_levels, device.pulse_levels)
        changed = new != old
        pulsed = pulses != 0
        cells = (weights[:, None] * per_weight + np.arange(per_weight))[pulsed]
        n = pulses[pulsed]
        column = (cells // per_weight) % band.columns
        owner = band.owner[column]  # the bank's block of each pulsed cell
        noise = np.zeros(len(cells))
        if device.c2c_sigma > 0:
            small = owner.astype(np.int16) if len(self.blocks) < 2**15 else owner
            order = np.argsort(small, kind="stable")  # a radix sort on 16-bit keys
            ends = np.cumsum(np.bincount(owner, minlength=len(self.blocks)))
            for j in written:
                mine = order[(ends[j - 1] if j else 0) : ends[j]]
                rng = stream(self.seed, self.blocks[j].id, "write", int(self.writes[j]))
                noise[mine] = dev.noise_normal(rng, (1, len(mine)))[0]
        self.writes[list(written)] += 1
        g = self.conductances[r].reshape(-1)
        span = self.span_us[r]
        span = span if np.isscalar(span) else span.reshape(-1)[cells]
        g[cells] = dev.apply_pulses(g[cells], n, span, device, noise)
        self._hold_stuck(r, cells)
        self._count_writes(band, weights, changed, owner, n)
        self.levels[r].reshape(-1, per_weight)[weights] = new
        self.codes[r] = codes.astype(np.int64)
        if self.chip.crossbar.readout == "adc":  # the I&F matrix is a view of the cells
            pairs = self.conductances[r].reshape(-1, 2, self.slices)[weights]
            matrix = self._read_matrix[r].reshape(band.rows * band.columns, self.slices)
            matrix[weights] = pairs[:, 0, :] - pairs[:, 1, :]

    def _count_writes(
        self,
        band: _Band,
        weights: np.ndarray,
        changed: np.ndarray,
        pulsed_owner: np.ndarray,
        pulses: np.ndarray,
    ) -> None:
        """Cells whose level changed, pulses and rows written, per block: ``changed`` (the
        changed weights' cells), ``pulses`` of the pulsed cells and their blocks."""
        blocks = len(self.blocks)
        pulsed = np.bincount(pulsed_owner, weights=np.abs(pulses), minlength=blocks)
        self.counters[:, _PULSES] += np.rint(pulsed).astype(np.int64)
        weight = weights[np.flatnonzero(changed) // changed.shape[1]]  # one per changed cell
        owner = band.owner[weight % band.columns]
        self.counters[:, _CELLS_WRITTEN] += np.bincount(owner, minlength=blocks)
        first = band.indices[0]  # the band's blocks are consecutive in the bank
        hit = np.zeros((band.rows, len(band.indices)), dtype=bool)
        hit[weight // band.columns, owner - first] = True
        self.counters[first : first + len(band.indices), _ROWS_WRITTEN] += hit.sum(axis=0)

    def _hold_stuck(self, r: int, cells: np.ndarray | slice) -> None:
        """Stuck cells keep their conductance whatever was written (the writer does not know)."""
        low, high = self.stuck_low[r], self.stuck_high[r]
        if low is None and high is None:
            return
        device = self.chip.device
        g = self.conductances[r].reshape(-1)
        for mask, level in ((low, device.g_min_us), (high, device.g_max_us)):
            if mask is not None:
                at = mask.reshape(-1)[cells]
                values = g[cells]
                values[at] = dev.snap(level)
                g[cells] = values

    # ------------------------------------------------------------------------ reports

    def block_codes(self) -> list[np.ndarray]:
        """Each block's noise-free analog value of its weights, code units, (n_in, n_out).

        Σ_k 2^(cell_bits·k)·(G⁺_k − G⁻_k)/ΔG_level, from the actual conductances.
        """
        out = []
        for r, band in enumerate(self.bands):
            g = self.conductances[r]
            diff = g[:, :, 0, :] - g[:, :, 1, :]
            values = diff / self.delta_g_level_us @ self._slice_weights()
            for j in band.indices:
                b = self.blocks[j]
                lo = b.out_start - band.out_start
                out.append(values[:, lo : lo + b.n_out])
        return out

    def block_counters(self) -> list[Counters]:
        """Each block's counters."""
        return [Counters(*(int(v) for v in row)) for row in self.counters]

    def total_counters(self) -> Counters:
        """The blocks' counters summed."""
        return Counters(*(int(v) for v in self.counters.sum(axis=0)))

    def block_stuck(self) -> list[tuple[int, int]]:
        """Cells stuck at Gmin and at Gmax, per block."""
        out = []
        for r, band in enumerate(self.bands):
            for j in band.indices:
                b = self.blocks[j]
                lo = b.out_start - band.out_start
                out.append(
                    tuple(
                        0 if m is None else int(m[:, lo : lo + b.n_out].sum())
                        for m in (self.stuck_low[r], self.stuck_high[r])
                    )
                )
        return out

    @property
    def cells(self) -> int:
        """Cells the blocks hold (both polarities, every slice)."""
        return sum(g.size for g in self.conductances)

    def state(self) -> dict[str, Any]:
        """What a write changes (conductances, levels, codes, counters, writes so far); the
        rest (d2d spans, stuck cells) follows from the chip, the seed and the blocks' ids."""
        return {
            "conductances": list(self.conductances),
            "levels": list(self.levels),
            "codes": list(self.codes),
            "counters": self.counters,
            "writes": self.writes,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Take back :meth:`state` (copied, shapes and types checked)."""
        for key in ("conductances", "levels", "codes"):
            saved, held = state[key], getattr(self, key)
            if len(saved) != len(held):
                raise ValueError(f"{key}: {len(saved)} row bands saved, the bank has {len(held)}")
            setattr(self, key, [_restored(s, key, h) for s, h in zip(saved, held, strict=True)])
        self.counters = _restored(state["counters"], "counters", self.counters)
        self.writes = _restored(state["writes"], "writes", self.writes)
        self._read_matrix = [self._matrix(r) for r in range(len(self.bands))]


READ_BYTES = 32 << 20
"""Largest column-current array one product of a read makes; a bigger read goes a few time
steps at a time (each block's noise stream is drawn on in order, so the bits are the same)."""

_COUNTS = tuple(f.name for f in dataclasses.fields(Counters))
_READS, _ACTIVE, _CELL_READS, _CONVERSIONS, _CELLS_WRITTEN, _PULSES, _ROWS_WRITTEN = range(7)


@dataclass(frozen=True)
class _Band:
    """The blocks of a bank that share a row band: side by side over consecutive columns."""

    blocks: tuple[Block, ...]
    indices: tuple[int, ...]  # their places in the bank
    owner: np.ndarray  # the bank's block of each of the band's columns
    offset: int  # its first column among the bank's outputs (block order)

    @property
    def in_start(self) -> int:
        return self.blocks[0].in_start

    @property
    def in_stop(self) -> int:
        return self.blocks[0].in_stop

    @property
    def out_start(self) -> int:
        return self.blocks[0].out_start

    @property
    def out_stop(self) -> int:
        return self.blocks[-1].out_stop

    @property
    def rows(self) -> int:
        return self.in_stop - self.in_start

    @property
    def columns(self) -> int:
        return self.out_stop - self.out_start


def _bands(blocks: Sequence[Block], rows: int, columns: int) -> list[_Band]:
    """Group ``blocks`` into row bands; ValueError unless each band's blocks follow one
    another over consecutive columns and fit the array."""
    groups: list[list[int]] = []
    for j, b in enumerate(blocks):
        check_size("n_in", b.n_in, rows, "crossbar.rows")
        check_size("n_out", b.n_out, columns, "logical columns (crossbar.weights_per_row)")
        prev = blocks[groups[-1][-1]] if groups else None
        if prev is not None and (prev.in_start, prev.in_stop) == (b.in_start, b.in_stop):
            if b.out_start != prev.out_stop:
                raise ValueError(f"blocks: {b.id} does not follow {prev.id} in its row band")
            groups[-1].append(j)
        else:
            groups.append([j])
    bands, offset = [], 0
    for group in groups:
        owner = np.concatenate([np.full(blocks[j].n_out, j) for j in group])
        bands.append(_Band(tuple(blocks[j] for j in group), tuple(group), owner, offset))
        offset += len(owner)
    return bands


def one_block(xbar_id: str, n_in: int, n_out: int) -> Block:
    """A lone array's block, named ``xbar_id`` (its streams' key)."""
    return _NamedBlock("weight", 0, 0, 0, 0, n_in, 0, n_out, xbar_id)


@dataclass(frozen=True)
class _NamedBlock(Block):
    """A block with a given id (a lone :class:`Crossbar`)."""

    name: str = ""

    @property
    def id(self) -> str:
        return self.name


def _restored(saved: Any, key: str, like: np.ndarray) -> np.ndarray:
    """A copy of the ``saved`` array ``key``, refused (ValueError) unless it has ``like``'s
    shape and type."""
    value = np.asarray(saved)
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


def _level_type(cell_bits: int) -> type:
    """The smallest integer type that holds a cell's levels 0 … 2**cell_bits − 1."""
    return np.int16 if cell_bits < 15 else np.int64


def code_levels(codes: np.ndarray, cell_bits: int, slices: int) -> np.ndarray:
    """Cell levels (…, 2, slices) of sign-magnitude codes: polarity 0 = G⁺, 1 = G⁻, LSB first."""
    c = np.asarray(codes, dtype=np.int64)
    shifts = cell_bits * np.arange(slices)
    kind = _level_type(cell_bits)
    mag = ((np.abs(c)[..., None] >> shifts) & (2**cell_bits - 1)).astype(kind)
    out = np.zeros((*c.shape, 2, slices), dtype=kind)
    out[..., 0, :] = mag * (c > 0)[..., None]
    out[..., 1, :] = mag * (c < 0)[..., None]
    return out
