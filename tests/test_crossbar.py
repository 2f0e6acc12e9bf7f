"""Tests of emulator.physics.crossbar: programming, bit slicing, reads, noise, forming, counters.

Every expected value is a closed form or plain numpy written here, never the model's output.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from emulator.cost.physical import counted_energy_pj
from emulator.physics import device as dev
from emulator.physics.array import Crossbar
from emulator.physics.crossbar import Counters, CrossbarBank
from emulator.physics.formed import FormedCrossbar
from emulator.spec import ChipSpec

G_MIN, G_MAX = 1.0, 10.0
DG = G_MAX - G_MIN

IDEAL_DEVICE = {
    "g_min_us": G_MIN,
    "g_max_us": G_MAX,
    "pulse_levels": 31,  # P = 30: a multiple of L − 1 = 3, so levels sit exactly on the grid
    "d2d_sigma": 0.0,
    "c2c_sigma": 0.0,
    "read_noise_sigma": 0.0,
    "nonlinearity_ltp": 0.0,
    "nonlinearity_ltd": 0.0,
}


def make_chip(crossbar: dict | None = None, **device) -> ChipSpec:
    """A chip with an ideal device (and 128 × 128, 8-bit weights on 2-bit cells) by default."""
    forming = device.pop("forming", {})
    return ChipSpec.model_validate(
        {
            "name": "test",
            "dataflow": "pipesdfa",
            "crossbar": crossbar or {},
            "device": {**IDEAL_DEVICE, **device, "forming": forming},
        }
    )


def rng(seed: int = 0) -> np.random.Generator:
    """Test inputs only; the model draws from emulator.rng."""
    return np.random.default_rng(seed)


def digits(codes: np.ndarray, cell_bits: int, slices: int) -> list[np.ndarray]:
    """Unsigned base-2**cell_bits digits of |codes|, LSB first (plain integer arithmetic)."""
    base = 2**cell_bits
    return [np.abs(codes) // base**k % base for k in range(slices)]


# ------------------------------------------------------------------------ ideal reads


def test_ideal_read_equals_spikes_times_codes():
    chip = make_chip()
    codes = rng(1).integers(-255, 256, size=(32, 16))
    spikes = rng(2).integers(0, 2, size=(10, 32))
    xbar = Crossbar(chip, 32, 16, seed=0, xbar_id="a")
    xbar.program(codes)
    # Precondition: no per-slice sum reaches the 8-bit ADC's ±127.
    for dk in digits(codes, 2, 4):
        assert np.abs(spikes @ (np.sign(codes) * dk)).max() <= 127
    assert np.array_equal(xbar.read(spikes, (0,)), spikes @ codes)
    assert xbar.read(spikes, (0,)).dtype == np.float64
    np.testing.assert_allclose(xbar.effective_codes(), codes, atol=1e-9)
    assert np.array_equal(xbar.codes, codes) and xbar.codes.dtype == np.int64


@pytest.mark.parametrize("readout", ["adc", "if_counter"])
def test_saturating_read_matches_per_slice_saturation(readout):
    adc_bits = 4
    chip = make_chip({"readout": readout, "adc_bits": adc_bits})
    codes = rng(3).integers(-255, 256, size=(32, 16))
    spikes = rng(4).integers(0, 2, size=(6, 32))
    xbar = Crossbar(chip, 32, 16, seed=0, xbar_id="a")
    xbar.program(codes)
    expected = np.zeros((6, 16))
    for k, dk in enumerate(digits(codes, 2, 4)):
        if readout == "adc":
            value = np.clip(spikes @ (np.sign(codes) * dk), -7, 7)
        else:
            plus = np.clip(spikes @ np.where(codes > 0, dk, 0), 0, 15)
            minus = np.clip(spikes @ np.where(codes < 0, dk, 0), 0, 15)
            value = plus - minus
        expected += 4**k * value
    assert not np.array_equal(expected, spikes @ codes)  # the case does saturate
    assert np.array_equal(xbar.read(spikes, (0,)), expected)


def test_bit_slicing_hand_example():
    chip = make_chip()  # 8-bit weights, 2-bit cells: 4 slices
    code = -0b10110111  # magnitude slices, LSB first: 11, 01, 11, 10
    codes = np.zeros((4, 5), dtype=int)
    codes[2, 3] = code
    codes[0, 0] = 0b00100111  # positive: 11, 01, 10, 00
    xbar = Crossbar(chip, 4, 5, seed=0, xbar_id="a")
    xbar.program(codes)
    assert xbar.levels[2, 3, 1].tolist() == [3, 1, 3, 2]  # G⁻ holds a negative code
    assert xbar.levels[2, 3, 0].tolist() == [0, 0, 0, 0]
    assert xbar.levels[0, 0, 0].tolist() == [3, 1, 2, 0]
    assert xbar.levels[0, 0, 1].tolist() == [0, 0, 0, 0]
    step = DG / 3
    np.testing.assert_allclose(xbar.conductances[2, 3, 1], G_MIN + step * np.array([3, 1, 3, 2]))
    np.testing.assert_allclose(xbar.conductances[2, 3, 0], G_MIN)
    assert xbar.levels.sum() == 9 + 6  # nothing else was programmed


def test_program_clips_to_code_max():
    xbar = Crossbar(make_chip(), 2, 2, seed=0, xbar_id="a")
    assert xbar.code_max == 255
    xbar.program(np.array([[1000, -1000], [255, -3]]))
    assert xbar.codes.tolist() == [[255, -255], [255, -3]]
    xbar.update(np.array([[1, -1], [10**6, 0]]))
    assert xbar.codes.tolist() == [[255, -255], [255, -3]]


# ------------------------------------------------------------------------ pulse counts


def test_program_from_zero_counts_pulses():
    chip = make_chip(pulse_levels=32)  # P = 31: round(k·31/3) = 0, 10, 21, 31
    codes = rng(5).integers(-255, 256, size=(20, 16))
    codes[7] = 0  # a row left untouched
    xbar = Crossbar(chip, 20, 16, seed=0, xbar_id="a")
    xbar.program(codes)
    levels = np.stack(digits(codes, 2, 4))
    expected_pulses = sum(round(k * 31 / 3) for k in levels.ravel().tolist())
    c = xbar.counters
    assert c.pulses == expected_pulses
    assert c.cells_written == np.count_nonzero(levels)
    assert c.rows_written == 19
    assert (c.reads, c.conversions, c.cell_reads) == (0, 0, 0)


def test_update_one_to_four_counts_by_hand():
    chip = make_chip(pulse_levels=32)
    codes = np.zeros((3, 4), dtype=int)
    codes[1, 2] = 1
    xbar = Crossbar(chip, 3, 4, seed=0, xbar_id="a")
    xbar.program(codes)
    assert xbar.counters.pulses == 10 and xbar.counters.cells_written == 1
    before = Counters(**xbar.counters.as_dict())
    delta = np.zeros((3, 4), dtype=int)
    delta[1, 2] = 3  # 1 -> 4: G⁺ LSB slice 1 -> 0 (10 depression pulses), slice 1 0 -> 1 (10)
    xbar.update(delta)
    assert xbar.codes[1, 2] == 4
    assert xbar.levels[1, 2, 0].tolist() == [0, 1, 0, 0]
    assert xbar.counters.cells_written - before.cells_written == 2
    assert xbar.counters.pulses - before.pulses == 20
    assert xbar.counters.rows_written - before.rows_written == 1
    # A zero update changes nothing and costs nothing.
    xbar.update(np.zeros((3, 4), dtype=int))
    assert xbar.counters.pulses - before.pulses == 20
    # 4 -> -4: G⁺ slice 1 goes 1 -> 0, G⁻ slice 1 goes 0 -> 1.
    delta[1, 2] = -8
    xbar.update(delta)
    assert xbar.levels[1, 2].tolist() == [[0, 0, 0, 0], [0, 1, 0, 0]]
    assert xbar.counters.pulses - before.pulses == 40


# ------------------------------------------------------------------------ nonlinearity


def f_closed(x: float, nu: float) -> float:
    return (1 - math.exp(-nu * x)) / (1 - math.exp(-nu))


def test_nonlinear_programming_follows_the_curves():
    # One 2-bit slice per weight; P = 30, so level k is 10·k pulses from Gmin.
    chip = make_chip(
        {"weight_bits": 2, "cell_bits": 2}, nonlinearity_ltp=2.4, nonlinearity_ltd=-4.88
    )
    xbar = Crossbar(chip, 1, 3, seed=0, xbar_id="nl")
    xbar.program(np.array([[3, 1, 2]]))
    g = xbar.conductances[0, :, 0, 0]
    expected = [G_MAX, G_MIN + DG * f_closed(1 / 3, 2.4), G_MIN + DG * f_closed(2 / 3, 2.4)]
    np.testing.assert_allclose(g, expected, rtol=0, atol=dev.GRID_US)
    # 3 -> 2 depresses 10 pulses from Gmax; 1 -> 2 continues the LTP curve from where it is.
    xbar.update(np.array([[-1, 1, 0]]))
    g = xbar.conductances[0, :, 0, 0]
    expected = [G_MAX - DG * f_closed(1 / 3, 4.88), expected[2], expected[2]]
    np.testing.assert_allclose(g, expected, rtol=0, atol=dev.GRID_US)


def test_linear_programming_is_exact_levels():
    chip = make_chip({"weight_bits": 2, "cell_bits": 2})
    xbar = Crossbar(chip, 1, 4, seed=0, xbar_id="lin")
    xbar.program(np.array([[0, 1, 2, 3]]))
    np.testing.assert_allclose(xbar.conductances[0, :, 0, 0], G_MIN + DG / 3 * np.arange(4))


# ------------------------------------------------------------------------ statistics


def test_d2d_range_statistics():
    chip = make_chip({"weight_bits": 2, "cell_bits": 2}, d2d_sigma=0.1)
    xbar = Crossbar(chip, 128, 64, seed=11, xbar_id="d2d")
    xbar.program(np.full((128, 64), 3))  # every G⁺ cell driven to the top of its own range
    ratio = (xbar.conductances[..., 0, 0] - G_MIN) / DG
    assert ratio.std() == pytest.approx(0.1, abs=0.004)  # 5 standard errors over 8192 cells
    assert ratio.mean() == pytest.approx(1.0, abs=0.006)
    np.testing.assert_allclose(ratio, xbar.span_us[..., 0, 0] / DG)


def test_c2c_write_noise_statistics():
    # P = 6: level 1 is 2 pulses, G = Gmin + ΔG/3, σ = 0.05·ΔG·√2 (4.7 σ above Gmin).
    chip = make_chip({"weight_bits": 2, "cell_bits": 2}, c2c_sigma=0.05, pulse_levels=7)
    xbar = Crossbar(chip, 128, 64, seed=12, xbar_id="c2c")
    xbar.program(np.ones((128, 64), dtype=int))
    err = xbar.conductances[..., 0, 0] - (G_MIN + DG / 3)
    sigma = 0.05 * DG * math.sqrt(2)
    assert err.std() == pytest.approx(sigma, rel=0.04)
    assert abs(err.mean()) < 5 * sigma / math.sqrt(err.size)
    assert np.all(xbar.conductances[..., 1, 0] == G_MIN)  # unwritten cells get no noise


def read_errors(chip: ChipSpec, n_in: int, n_out: int, events: int, batch: int) -> np.ndarray:
    code_max = 2**chip.crossbar.weight_bits - 1
    codes = rng(6).integers(-code_max, code_max + 1, size=(n_in, n_out))
    xbar = Crossbar(chip, n_in, n_out, seed=13, xbar_id="rn")
    xbar.program(codes)
    errs = []
    for e in range(events):
        spikes = rng(100 + e).integers(0, 2, size=(batch, n_in))
        errs.append(xbar.read(spikes, (e,)) - spikes @ codes)
    return np.concatenate(errs)


def test_read_noise_single_slice():
    # σ per column = 1.0·ΔG; the differential pair in level steps: ΔG·√2/(ΔG/3) = 3√2.
    # Rounding adds 1/12 to the variance (Sheppard), negligible saturation at 12 bits.
    chip = make_chip({"weight_bits": 2, "cell_bits": 2, "adc_bits": 12}, read_noise_sigma=1.0)
    err = read_errors(chip, 32, 64, events=20, batch=32)
    sigma = math.sqrt((1.0 * 3 * math.sqrt(2)) ** 2 + 1 / 12)
    assert err.std() == pytest.approx(sigma, rel=0.03)
    assert abs(err.mean()) < 5 * sigma / math.sqrt(err.size)


def test_read_noise_propagates_through_shift_add():
    chip = make_chip({"weight_bits": 6, "cell_bits": 2, "adc_bits": 12}, read_noise_sigma=1.0)
    err = read_errors(chip, 32, 21, events=20, batch=32)
    per_slice = (1.0 * 3 * math.sqrt(2)) ** 2 + 1 / 12
    sigma = math.sqrt(sum(4 ** (2 * k) * per_slice for k in range(3)))
    assert err.std() == pytest.approx(sigma, rel=0.03)


# ------------------------------------------------------------------------ determinism

NOISY = {"d2d_sigma": 0.1, "c2c_sigma": 0.02, "read_noise_sigma": 0.05}


def test_reads_are_keyed_by_event():
    chip = make_chip(**NOISY)
    codes = rng(7).integers(-255, 256, size=(64, 16))
    spikes = rng(8).integers(0, 2, size=(8, 64))
    xbar = Crossbar(chip, 64, 16, seed=5, xbar_id="L1.b0")
    xbar.program(codes)
    first = xbar.read(spikes, (3, 1, 4))
    assert np.array_equal(xbar.read(spikes, (0,)), xbar.read(spikes, (0,)))
    assert np.array_equal(xbar.read(spikes, (3, 1, 4)), first)
    assert not np.array_equal(xbar.read(spikes, (3, 1, 5)), first)


def test_construction_and_call_order_do_not_matter():
    chip = make_chip(**NOISY)
    codes = rng(9).integers(-255, 256, size=(16, 8))
    spikes = rng(10).integers(0, 2, size=(4, 16))

    def build(order):
        xbars = {i: Crossbar(chip, 16, 8, seed=5, xbar_id=i) for i in order}
        for i in sorted(xbars):
            xbars[i].program(codes)
            xbars[i].update(np.ones_like(codes))
        return {i: (x.conductances, x.read(spikes, (2,))) for i, x in xbars.items()}

    ab, ba = build(["a", "b"]), build(["b", "a"])
    for i in "ab":
        assert np.array_equal(ab[i][0], ba[i][0]) and np.array_equal(ab[i][1], ba[i][1])
    assert not np.array_equal(ab["a"][0], ab["b"][0])  # different ids, different devices


# ------------------------------------------------------------------------ formed arrays


def test_formed_matrix_statistics():
    forming = {"formed_fraction": 0.5, "formed_g_us": 50.0, "formed_sigma_log": 0.3}
    chip = make_chip(forming=forming)
    fx = FormedCrossbar(chip, 128, 64, seed=1, xbar_id="B")
    m = fx.matrix
    assert m.shape == (128, 64) and m.dtype == np.float64
    assert m.std() == pytest.approx(1.0, abs=1e-12)
    assert abs(m.mean()) < 4 / math.sqrt(m.size)
    g = fx.conductances
    diff = g[..., 0] - g[..., 1]
    np.testing.assert_allclose(m, diff / diff.std())
    assert fx.scale_us == pytest.approx(diff.std())
    zero = (m == 0).mean()  # both cells unformed (pristine − pristine)
    assert zero == pytest.approx(0.25, abs=4 * math.sqrt(0.25 * 0.75 / m.size))
    assert np.isin(g, [dev.snap(0.1)]).mean() == pytest.approx(0.5, abs=0.02)


def test_formed_sparsity_follows_formed_fraction():
    chip = make_chip(forming={"formed_fraction": 0.8})
    m = FormedCrossbar(chip, 128, 64, seed=2, xbar_id="B").matrix
    assert (m == 0).mean() == pytest.approx(0.04, abs=4 * math.sqrt(0.04 * 0.96 / m.size))


def test_formed_one_hot_read_is_adc_rounded_entry():
    # One active row, all magnitude planes set: each plane reads round(diff/step) exactly, and
    # the planes sum to (2**(bits−1) − 1)·that, which the scale-back divides out again.
    chip = make_chip({"adc_bits": 12})
    fx = FormedCrossbar(chip, 16, 8, seed=3, xbar_id="B")
    step = chip.device.forming.formed_g_us
    diff = fx.conductances[..., 0] - fx.conductances[..., 1]
    expected = np.rint(diff / step) * step / fx.scale_us
    np.testing.assert_allclose(fx.read_bitserial(np.eye(16) * 2.5, (0,)), 2.5 * expected)
    np.testing.assert_allclose(fx.read_bitserial(-np.eye(16), (1,)), -expected)


@pytest.mark.parametrize("readout, roundings", [("adc", 1), ("if_counter", 2)])
def test_formed_ideal_read_within_quantisation_bound(readout, roundings):
    bits = 8
    chip = make_chip({"adc_bits": 16, "error_bits": bits, "readout": readout})
    fx = FormedCrossbar(chip, 64, 32, seed=4, xbar_id="B")
    v = rng(11).normal(size=(10, 64))
    v[3] = 0.0
    out = fx.read_bitserial(v, (0,))
    q_max = 2 ** (bits - 1) - 1
    m = np.abs(v).max(axis=1, keepdims=True)
    v_hat = np.sign(v) * np.round(np.abs(v) / np.where(m > 0, m, 1) * q_max) * m / q_max
    assert np.all(np.abs(v - v_hat) <= m / (2 * q_max) + 1e-12)
    # Each of the 2·(bits−1) reads is off by at most `roundings`·step/2 (the ADC rounds the
    # difference once, I&F counters round each column); plane b weighs 2**b, so the output
    # error is at most Σ_b 2**b·roundings·step·m/(q_max·s) = roundings·step·m/s.
    step = chip.device.forming.formed_g_us
    bound = roundings * step * m / fx.scale_us
    assert np.all(np.abs(out - v_hat @ fx.matrix) <= bound + 1e-9)
    assert not out[3].any()


@pytest.mark.parametrize("readout, per_read", [("adc", 1), ("if_counter", 2)])
def test_formed_counters_closed_form(readout, per_read):
    bits = 6
    chip = make_chip({"error_bits": bits, "readout": readout})
    n_in, n_out, batch = 20, 12, 7
    fx = FormedCrossbar(chip, n_in, n_out, seed=5, xbar_id="B")
    v = rng(12).normal(size=(batch, n_in))
    fx.read_bitserial(v, (0,))
    q_max = 2 ** (bits - 1) - 1
    q = np.round(np.abs(v) / np.abs(v).max(axis=1, keepdims=True) * q_max).astype(int)
    ones = sum(bin(x).count("1") for x in q.ravel().tolist())
    reads = 2 * (bits - 1) * batch
    c = fx.counters
    assert c.as_dict() == {
        "reads": reads,
        "active_rows": ones,
        "cell_reads": ones * 2 * n_out,
        "conversions": reads * n_out * per_read,
        "cells_written": 0,
        "pulses": 0,
        "rows_written": 0,
    }


def test_formed_is_never_programmed_and_deterministic():
    chip = make_chip(read_noise_sigma=0.05)
    a = FormedCrossbar(chip, 8, 4, seed=6, xbar_id="B1")
    b = FormedCrossbar(chip, 8, 4, seed=6, xbar_id="B1")
    assert not hasattr(a, "program") and not hasattr(a, "update")
    assert np.array_equal(a.matrix, b.matrix)
    v = rng(13).normal(size=(3, 8))
    assert np.array_equal(a.read_bitserial(v, (1, 2)), b.read_bitserial(v, (1, 2)))
    assert not np.array_equal(a.read_bitserial(v, (1, 2)), a.read_bitserial(v, (1, 3)))


# ------------------------------------------------------------------------ counters


def test_read_counters_closed_form():
    chip = make_chip({"readout": "if_counter"})
    xbar = Crossbar(chip, 10, 5, seed=0, xbar_id="a")
    spikes = rng(14).integers(0, 2, size=(6, 10))
    xbar.read(spikes, (0,))
    c = xbar.counters
    assert (c.reads, c.active_rows) == (6, spikes.sum())
    assert c.cell_reads == spikes.sum() * 8 * 5  # 2·S = 8 physical columns per weight
    assert c.conversions == 6 * 5 * 8  # one counter per physical column per vector
    adc = Crossbar(make_chip(), 10, 5, seed=0, xbar_id="a")
    adc.read(spikes, (0,))
    assert adc.counters.conversions == 6 * 5 * 4  # one ADC per differential pair


def test_counters_energy_add_and_dict():
    chip = make_chip(read_energy_pj=0.5, write_energy_pj=7.0)
    c = Counters(reads=2, active_rows=3, cell_reads=11, conversions=13, pulses=17)
    assert counted_energy_pj(chip, c) == {
        "read": 11 * 0.5,
        "readout": 13 * chip.crossbar.adc_energy_pj,
        "write": 17 * 7.0,
    }
    c.add(Counters(reads=1, cells_written=4, rows_written=2, pulses=3))
    assert c.as_dict() == {
        "reads": 3,
        "active_rows": 3,
        "cell_reads": 11,
        "conversions": 13,
        "cells_written": 4,
        "pulses": 20,
        "rows_written": 2,
    }


# ------------------------------------------------------------------------ validation


def test_size_validation():
    chip = make_chip()  # 128 rows, 16 logical columns (8 physical each)
    with pytest.raises(ValueError, match="n_in"):
        Crossbar(chip, 129, 4, seed=0, xbar_id="a")
    with pytest.raises(ValueError, match="n_out"):
        Crossbar(chip, 4, 17, seed=0, xbar_id="a")
    with pytest.raises(ValueError, match="n_in"):
        Crossbar(chip, 0, 4, seed=0, xbar_id="a")
    with pytest.raises(ValueError, match="n_out"):
        FormedCrossbar(chip, 4, 65, seed=0, xbar_id="a")
    with pytest.raises(ValueError, match="error_bits"):
        FormedCrossbar(make_chip({"error_bits": 1}), 4, 4, seed=0, xbar_id="a")


def test_input_validation():
    xbar = Crossbar(make_chip(), 4, 3, seed=0, xbar_id="a")
    with pytest.raises(ValueError, match="shape"):
        xbar.program(np.zeros((3, 4), dtype=int))
    with pytest.raises(ValueError, match="integers"):
        xbar.program(np.full((4, 3), 0.5))
    with pytest.raises(ValueError, match="int64"):
        xbar.program(np.full((4, 3), 1e30))
    with pytest.raises(ValueError, match="integer"):
        xbar.update(np.full((4, 3), "x"))
    with pytest.raises(ValueError, match="0 or 1"):
        xbar.read(np.full((2, 4), 2), (0,))
    with pytest.raises(ValueError, match="shape"):
        xbar.read(np.ones(4), (0,))
    xbar.program(np.full((4, 3), 2.0))  # integer-valued floats are codes
    assert xbar.codes.tolist() == [[2] * 3] * 4
    fx = FormedCrossbar(make_chip(), 4, 3, seed=0, xbar_id="b")
    with pytest.raises(ValueError, match="shape"):
        fx.read_bitserial(np.ones((2, 5)), (0,))
    with pytest.raises(ValueError, match="finite"):
        fx.read_bitserial(np.full((2, 4), np.nan), (0,))


def test_a_window_of_an_event_reads_the_same_bits_as_the_whole_event():
    # Noisy, nonlinear, d2d-varied cells: the window's rows must equal the whole-batch read
    # bit for bit (the frame window of the distributed runtime must not change a number).
    chip = make_chip(c2c_sigma=0.02, d2d_sigma=0.1, read_noise_sigma=0.05, nonlinearity_ltp=2.0)
    xbar = Crossbar(chip, 100, 8, seed=5, xbar_id="w")
    xbar.program(rng(1).integers(-255, 256, (100, 8)))
    spikes = (rng(2).random((24, 100)) < 0.3).astype(np.uint8)
    whole = xbar.read(spikes, (3, 4))
    for first, stop in [(0, 1), (1, 9), (9, 24), (23, 24)]:
        part = xbar.read(spikes[first:stop], (3, 4), window=(first, 24))
        assert np.array_equal(part, whole[first:stop])
    with pytest.raises(ValueError, match="window"):
        xbar.read(spikes[:5], (3, 4), window=(22, 24))


def test_a_window_of_feedback_reads_the_same_bits_as_the_whole_event():
    chip = make_chip(read_noise_sigma=0.05)
    formed = FormedCrossbar(chip, 10, 50, seed=1, xbar_id="b")
    values = rng(3).normal(size=(16, 10))
    whole = formed.read_bitserial(values, (7,))
    for first, stop in [(0, 3), (3, 16), (15, 16)]:
        part = formed.read_bitserial(values[first:stop], (7,), window=(first, 16))
        assert np.array_equal(part, whole[first:stop])


def test_stuck_cells_ignore_writes_and_follow_the_fault_map():
    chip = make_chip()
    faults = {"stuck_at_gmin": 0.05, "stuck_at_gmax": 0.1, "seed": 3}
    device = chip.device.model_copy(update={"faults": chip.device.faults.model_copy(update=faults)})
    chip = chip.model_copy(update={"device": device})
    xbar = Crossbar(chip, 128, 16, seed=0, xbar_id="w")
    low, high = xbar.stuck
    cells = 128 * 16 * 8
    assert abs(low / cells - 0.05) < 0.01 and abs(high / cells - 0.1) < 0.015
    xbar.program(rng(0).integers(-255, 256, (128, 16)))
    xbar.update(rng(1).integers(-3, 4, (128, 16)))
    g = xbar.conductances
    assert np.all(g[xbar.stuck_low] == dev.snap(chip.device.g_min_us))
    assert np.all(g[xbar.stuck_high] == dev.snap(chip.device.g_max_us))
    # The map is the chip file's: another run seed or array build order changes nothing.
    again = Crossbar(chip, 128, 16, seed=99, xbar_id="w")
    assert np.array_equal(again.stuck_low, xbar.stuck_low)


# ------------------------------------------------------------------------ banks of blocks


def _layer_blocks(chip: ChipSpec, n_in: int, n_out: int):
    from emulator.physics.tiling import weight_blocks

    return weight_blocks(chip, 0, n_in, n_out)


def test_a_bank_gives_each_block_the_bits_of_any_other_grouping(monkeypatch) -> None:
    # A layer of 3 row bands × 3 column blocks, noisy in every way, read and written as one
    # bank, as three banks split across bands, and block by block: the same bits everywhere,
    # and a read split into one time step at a time changes nothing either.
    chip = make_chip(
        {"rows": 32, "cols": 64},
        c2c_sigma=0.02,
        d2d_sigma=0.1,
        read_noise_sigma=0.05,
        nonlinearity_ltp=2.0,
        faults={"stuck_at_gmin": 0.02, "stuck_at_gmax": 0.01, "seed": 1},
    )
    n_in, n_out = 80, 20
    blocks = _layer_blocks(chip, n_in, n_out)
    assert len({b.row for b in blocks}) == 3 and len({b.col for b in blocks}) == 3
    codes = rng(1).integers(-255, 256, (n_in, n_out))
    steps = [rng(2 + k).integers(-3, 4, (n_in, n_out)) for k in range(2)]
    x = (rng(5).random((4, 6, n_in)) < 0.4).astype(np.uint8)
    groupings = [[blocks], [blocks[:4], blocks[4:7], blocks[7:]], [[b] for b in blocks]]
    results = []
    for grouping in groupings:
        parts, effective = [], []
        for group in grouping:
            bank = CrossbarBank(chip, group, seed=3, inputs=n_in)
            bank.program(codes)
            for s in steps:
                bank.update_blocks(
                    [s[b.in_start : b.in_stop, b.out_start : b.out_stop] for b in group]
                )
            parts.append(bank.read(x, (7, 1)))
            effective += bank.block_codes()
        results.append((np.concatenate(parts, axis=-1), effective))
    for got in results[1:]:
        assert np.array_equal(got[0], results[0][0])
        assert all(np.array_equal(a, b) for a, b in zip(got[1], results[0][1], strict=True))
    monkeypatch.setattr("emulator.physics.crossbar.READ_BYTES", 1)  # one step per product
    bank = CrossbarBank(chip, blocks, seed=3, inputs=n_in)
    bank.program(codes)
    for s in steps:
        bank.update_blocks([s[b.in_start : b.in_stop, b.out_start : b.out_stop] for b in blocks])
    assert np.array_equal(bank.read(x, (7, 1)), results[0][0])


def test_a_bank_reads_the_quantised_product_and_counts_per_block() -> None:
    chip = make_chip({"rows": 32, "cols": 64})  # ideal device, 8 logical columns per array
    n_in, n_out = 50, 12
    blocks = _layer_blocks(chip, n_in, n_out)
    codes = rng(3).integers(-255, 256, (n_in, n_out))
    bank = CrossbarBank(chip, blocks, seed=0, inputs=n_in)
    bank.program(codes)
    x = (rng(4).random((3, 5, n_in)) < 0.05).astype(float)
    out = bank.read(x, (0,))
    for j, b in enumerate(blocks):  # each block's columns: its rows' spikes @ its codes
        lo = sum(c.n_out for c in blocks[:j])
        want = (
            x[..., b.in_start : b.in_stop] @ codes[b.in_start : b.in_stop, b.out_start : b.out_stop]
        )
        np.testing.assert_allclose(out[..., lo : lo + b.n_out], want, atol=1e-3)
        c = bank.block_counters()[j]
        active = int(x[..., b.in_start : b.in_stop].sum())
        assert (c.reads, c.active_rows, c.cell_reads) == (15, active, active * b.n_out * 8)
        assert c.conversions == 15 * b.n_out * 4
    with pytest.raises(ValueError, match="0 or 1"):
        bank.read(np.full((1, 1, n_in), 2.0), (0,))
    with pytest.raises(ValueError, match="does not follow"):
        CrossbarBank(chip, [blocks[1], blocks[0]], seed=0)
