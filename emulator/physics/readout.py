"""What a crossbar read is given and gives back: the checks of its input (spikes, values,
sizes), the sign-magnitude bit planes of a multi-bit input, the read-noise window, and the
readout that turns column currents into values (an ADC, or an I&F counter).
"""

from __future__ import annotations

import numpy as np

from emulator.spec import ChipSpec

EventRows = tuple[int, int]
"""(first vector, vectors in the whole event) of a read that applies part of an event."""


def noise_shape(shape: tuple[int, ...], window: EventRows | None) -> tuple[tuple[int, ...], slice]:
    """The whole event's noise shape (batch axis first) and the rows this read takes."""
    first, total = window_rows(shape[0], window)
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


def adc_values(diff: np.ndarray, chip: ChipSpec) -> np.ndarray:
    """ADC values of pair differences (in level steps), in place: rounded, saturating at
    ±(2**(adc_bits−1) − 1)."""
    lim = 2 ** (chip.crossbar.adc_bits - 1) - 1
    np.rint(diff, out=diff)
    return np.clip(diff, -lim, lim, out=diff)


def counter_values(signal: np.ndarray, chip: ChipSpec) -> np.ndarray:
    """I&F counter values of (…, 2, slices) column signals (in level steps): each column
    counted, saturating at [0, 2**adc_bits − 1], then subtracted digitally → (…, slices)."""
    counts = np.clip(np.rint(signal), 0, 2**chip.crossbar.adc_bits - 1)
    return counts[..., 0, :] - counts[..., 1, :]


def readout(signal: np.ndarray, chip: ChipSpec) -> tuple[np.ndarray, int]:
    """Quantise (…, 2, slices) column signals (in level steps) to signed slice values.

    "adc": one conversion per differential pair of the difference (:func:`adc_values`);
    "if_counter": one counter per column (:func:`counter_values`). Returns the (…, slices) values
    and the count of conversions.
    """
    if chip.crossbar.readout == "adc":
        values = adc_values(signal[..., 0, :] - signal[..., 1, :], chip)
        return values, values.size
    return counter_values(signal, chip), signal.size


def check_size(name: str, value: int, limit: int, what: str) -> None:
    if not 1 <= value <= limit:
        raise ValueError(f"{name}: {value} must be between 1 and {limit} ({what})")


def as_int_array(a: np.ndarray, shape: tuple[int, ...], name: str) -> np.ndarray:
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


def as_spikes(spikes: np.ndarray, n_in: int) -> np.ndarray:
    """Binary (B, n_in) spikes as float64; ValueError on a bad shape or a non-binary value."""
    return binary(spike_shape(spikes, n_in))


def spike_shape(spikes: np.ndarray, n_in: int, ndim: int = 2) -> np.ndarray:
    """``spikes`` as an array of (B, n_in) ((T, B, n_in) with ``ndim`` 3) numbers; ValueError
    otherwise."""
    x = np.asarray(spikes)
    if x.ndim != ndim or x.shape[-1] != n_in:
        lead = "B" if ndim == 2 else "T, B"
        raise ValueError(f"spikes: expected shape ({lead}, {n_in}), got {x.shape}")
    if x.dtype.kind not in "biuf":
        raise ValueError(f"spikes: expected numbers 0/1, got dtype {x.dtype}")
    return x


def binary(x: np.ndarray) -> np.ndarray:
    """``x`` as float64; ValueError unless every value is 0 or 1 (a read checks only the rows
    it applies)."""
    if not ((x == 0) | (x == 1)).all():
        raise ValueError("spikes: values must be 0 or 1 (binary spikes, no DAC)")
    return x.astype(np.float64)


def as_values(values: np.ndarray, n_in: int) -> np.ndarray:
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


def window_rows(n: int, window: EventRows | None) -> tuple[int, int]:
    """(first, total) of a read of ``n`` vectors per step (the whole event: (0, n))."""
    if window is None:
        return 0, n
    first, total = window
    if first < 0 or first + n > total:
        raise ValueError(f"window: vectors {first}..{first + n} exceed the event's {total}")
    return first, total
