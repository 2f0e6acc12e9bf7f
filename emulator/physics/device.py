"""RRAM cell populations: levels, pulse programming, variation, read noise, forming.

Pure functions over arrays of cells (any shape), conductances in µS. The update model is
NeuroSim's: identical pulses move a cell along a nonlinear potentiation or depression curve,
each cell's range is scaled by a fixed device-to-device factor, and every write adds
cycle-to-cycle noise that grows with √pulses. Randomness always comes in as a generator
from :func:`emulator.rng.stream`, so the caller decides which keyed stream a draw uses.
"""

from __future__ import annotations

import functools
import math
from statistics import NormalDist

import numpy as np

from emulator.spec import DeviceSpec, FormingSpec

MIN_D2D_FACTOR = 0.05
"""Smallest device-to-device range factor: a cell keeps at least 5 % of the nominal range."""

GRID_US = 2.0**-24
"""Conductances are stored on this grid (6e-8 µS, far below any device's precision).

A column current is a sum of conductances of the active rows; on this dyadic grid every such
sum is exact in float64 (each term < 2**31 grid steps, a column < 2**20 rows), so a read gives
the same bits whatever the BLAS blocking, batch size or frame window
(docs/architecture.md#determinism).
"""


def snap(g_us: np.ndarray) -> np.ndarray:
    """Conductances rounded to :data:`GRID_US`."""
    return np.round(np.asarray(g_us, dtype=np.float64) / GRID_US) * GRID_US


def delta_g_us(device: DeviceSpec) -> float:
    """Nominal conductance range ΔG = Gmax − Gmin, µS."""
    return device.g_max_us - device.g_min_us


def curve(x: np.ndarray, nu: float) -> np.ndarray:
    """NeuroSim update curve f(x, ν) = (1 − e^(−νx)) / (1 − e^(−ν)); f(x, 0) = x.

    ``x`` is the pulse position as a fraction of the full range, the result the conductance
    fraction; f(0) = 0 and f(1) = 1 for every ν.
    """
    x = np.asarray(x, dtype=np.float64)
    if nu == 0:
        return x
    return np.expm1(-nu * x) / np.expm1(-nu)


def curve_inverse(y: np.ndarray, nu: float) -> np.ndarray:
    """Inverse of :func:`curve`: the pulse fraction x with f(x, ν) = y, for y in [0, 1]."""
    y = np.clip(np.asarray(y, dtype=np.float64), 0.0, 1.0)
    if nu == 0:
        return y
    return -np.log1p(y * np.expm1(-nu)) / nu


def pulse_position(level: np.ndarray, levels: int, pulse_levels: int) -> np.ndarray:
    """Pulses from Gmin that reach target ``level``: round(k·P/(L−1)), P = pulse_levels − 1.

    Integer arithmetic, half up; L − 1 = 2**cell_bits − 1 is odd, so there are no ties anyway.
    """
    k = np.asarray(level, dtype=np.int64)
    span = levels - 1
    return (2 * k * (pulse_levels - 1) + span) // (2 * span)


def pulses_between(old: np.ndarray, new: np.ndarray, levels: int, pulse_levels: int) -> np.ndarray:
    """Signed pulses that move level ``old`` to ``new`` (> 0 potentiation, < 0 depression),
    through a table of every level's :func:`pulse_position`."""
    table = pulse_position(np.arange(levels), levels, pulse_levels)
    if table[-1] < 2**15:  # narrow, so the lookups move few bytes
        table = table.astype(np.int16)
    return np.take(table, new).astype(np.int64) - np.take(table, old)


@functools.cache
def _gauss16() -> np.ndarray:
    """N(0, 1)'s inverse CDF at the centres of 65,536 equiprobable bins (float32)."""
    inv = NormalDist().inv_cdf
    return np.array([inv((i + 0.5) / 65536) for i in range(65536)], dtype=np.float32)


def noise_normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """N(0, 1) noise (float32) of ``shape`` from 16-bit uniforms by inverse CDF: 65,536
    equiprobable values, ±4.33 at the extremes (the tails past are 1.5e-5 of the mass; read
    and write noise are ~1 % of a cell's range). Four values per 64-bit Philox output, and
    each slice along the first axis takes whole outputs, so drawing the first axis in parts,
    in order, gives the same numbers as drawing it whole. 4× faster than numpy's ziggurat."""
    lead, rest = (shape[0], math.prod(shape[1:])) if shape else (1, 1)
    words = -(-rest // 4)
    raw = rng.bit_generator.random_raw(lead * words).view(np.uint16).reshape(lead, 4 * words)
    return _gauss16()[raw[:, :rest]].reshape(shape)


def d2d_factors(device: DeviceSpec, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Fixed range factor d = max(1 + d2d_sigma·z, 0.05) per cell; ΔG_cell = ΔG·d."""
    z = rng.standard_normal(shape)
    return np.maximum(1.0 + device.d2d_sigma * z, MIN_D2D_FACTOR)


def _advance(y: np.ndarray, n: np.ndarray, nu: float, p: int) -> np.ndarray:
    """Conductance fraction ``y`` on the curve of ν, moved ``n`` pulses on (clamped to [0, P])."""
    if nu == 0:
        return np.clip(y + n / p, 0.0, 1.0)
    x = np.clip(curve_inverse(y, nu) * p + n, 0, p)
    return curve(x / p, nu)


def apply_pulses(
    g_us: np.ndarray,
    pulses: np.ndarray,
    span_us: np.ndarray,
    device: DeviceSpec,
    noise: np.random.Generator | np.ndarray,
) -> np.ndarray:
    """Conductances after ``pulses`` (signed, per cell) identical pulses; a new array.

    Each cell finds its position on the curve of the pulse direction (potentiation ν_ltp from
    Gmin, depression |ν_ltd| from Gmin + ``span_us``), moves ``|pulses|`` on, then gets
    cycle-to-cycle noise N(0, c2c_sigma·ΔG·√|pulses|) and is clipped to its own range. Cells
    with zero pulses are left exactly as they were. ``span_us`` is ΔG_cell. ``noise`` is a
    generator to draw one N(0, 1) per cell from (:func:`noise_normal`), or those draws.
    """
    g = np.asarray(g_us, dtype=np.float64)
    n = np.asarray(pulses, dtype=np.int64)
    p = device.pulse_levels - 1
    g_min = device.g_min_us
    g_top = g_min + span_us
    up = g_min + span_us * _advance((g - g_min) / span_us, n, device.nonlinearity_ltp, p)
    down = g_top - span_us * _advance((g_top - g) / span_us, -n, abs(device.nonlinearity_ltd), p)
    new = np.where(n > 0, up, down)
    if device.c2c_sigma > 0:
        sigma = device.c2c_sigma * delta_g_us(device) * np.sqrt(np.abs(n))
        z = noise_normal(noise, g.shape) if isinstance(noise, np.random.Generator) else noise
        new = new + sigma * z
    new = snap(np.clip(new, g_min, g_top))
    return np.where(n != 0, new, g)


def read_noise(
    device: DeviceSpec,
    shape: tuple[int, ...],
    rng: np.random.Generator,
    rows: slice = slice(None),
) -> np.ndarray:
    """Additive column-current noise N(0, read_noise_sigma·ΔG), µS, one draw per entry.

    ``shape`` is the whole event's (its batch axis first); ``rows`` picks the vectors this
    read applies, so a window of a batch gets the same noise as the whole batch read at once.
    """
    if device.read_noise_sigma == 0:
        return np.zeros(shape)[rows]
    return device.read_noise_sigma * delta_g_us(device) * noise_normal(rng, shape)[rows]


def formed_conductances(
    forming: FormingSpec, shape: tuple[int, ...], rng: np.random.Generator
) -> np.ndarray:
    """Conductances left by forming, µS: log-normal if the cell formed, else pristine.

    A cell forms with probability ``formed_fraction``; a formed cell's conductance is
    ``formed_g_us``·exp(``formed_sigma_log``·z), z ~ N(0, 1).
    """
    formed = rng.random(shape) < forming.formed_fraction
    g = forming.formed_g_us * np.exp(forming.formed_sigma_log * rng.standard_normal(shape))
    return snap(np.where(formed, g, forming.pristine_g_us))
