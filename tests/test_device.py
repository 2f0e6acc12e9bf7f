"""Tests of emulator.physics.device: update curves, pulse grid, variation and forming statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from emulator.physics import device as dev
from emulator.rng import stream
from emulator.spec import DeviceSpec, FormingSpec

G_MIN, G_MAX = 1.0, 10.0
DG = G_MAX - G_MIN


def spec(**fields) -> DeviceSpec:
    """A noise-free linear device unless ``fields`` say otherwise."""
    base = dict(
        g_min_us=G_MIN,
        g_max_us=G_MAX,
        d2d_sigma=0.0,
        c2c_sigma=0.0,
        read_noise_sigma=0.0,
        nonlinearity_ltp=0.0,
        nonlinearity_ltd=0.0,
    )
    return DeviceSpec(**{**base, **fields})


def f_closed(x: float, nu: float) -> float:
    return x if nu == 0 else (1 - math.exp(-nu * x)) / (1 - math.exp(-nu))


RNG = np.random.default_rng(0)  # only for test inputs, never for the model


# ------------------------------------------------------------------------------ curves


@pytest.mark.parametrize("nu", [0.0, 2.4, 4.88, -1.5])
def test_curve_matches_closed_form_and_inverts(nu):
    x = np.linspace(0, 1, 11)
    expected = [f_closed(v, nu) for v in x]
    np.testing.assert_allclose(dev.curve(x, nu), expected, rtol=1e-12, atol=1e-15)
    assert dev.curve(np.array([0.0, 1.0]), nu).tolist() == [0.0, 1.0]
    np.testing.assert_allclose(dev.curve_inverse(dev.curve(x, nu), nu), x, atol=1e-12)


def test_pulse_position_rounds_k_p_over_l_minus_1():
    # P = 31, L = 4: 31/3 = 10.33 -> 10, 62/3 = 20.67 -> 21, 31.
    assert dev.pulse_position(np.arange(4), 4, 32).tolist() == [0, 10, 21, 31]
    # P = 30: the grid hits every level exactly.
    assert dev.pulse_position(np.arange(4), 4, 31).tolist() == [0, 10, 20, 30]
    assert dev.pulses_between(np.array([3, 1]), np.array([1, 2]), 4, 32).tolist() == [-21, 11]


# -------------------------------------------------------------------------- pulses


def test_potentiation_nonlinear_closed_form():
    d = spec(nonlinearity_ltp=2.4, pulse_levels=33)  # P = 32
    span = np.full(3, DG * 1.3)  # a cell with a 30 % larger range
    g0 = np.full(3, G_MIN)
    g = dev.apply_pulses(g0, np.array([32, 16, 40]), span, d, stream(0, "t"))
    half = G_MIN + span[0] * f_closed(0.5, 2.4)
    np.testing.assert_allclose(
        g, [G_MIN + span[0], half, G_MIN + span[0]], rtol=0, atol=dev.GRID_US
    )
    # Two writes of 8 pulses land where one write of 16 does (position found by inversion).
    g8 = dev.apply_pulses(g0, np.full(3, 8), span, d, stream(0, "t"))
    g16 = dev.apply_pulses(g8, np.full(3, 8), span, d, stream(0, "t"))
    np.testing.assert_allclose(g16, half, rtol=0, atol=4 * dev.GRID_US)


def test_depression_nonlinear_closed_form():
    d = spec(nonlinearity_ltd=-4.88, pulse_levels=33)
    span = np.full(2, DG)
    top = np.full(2, G_MAX)
    g = dev.apply_pulses(top, np.array([-16, -32]), span, d, stream(0, "t"))
    np.testing.assert_allclose(
        g, [G_MAX - DG * f_closed(0.5, 4.88), G_MIN], rtol=0, atol=dev.GRID_US
    )


def test_linear_update_is_n_times_step():
    d = spec(pulse_levels=32)  # P = 31
    span = DG * np.array([1.0, 0.8, 1.2, 1.0])
    g0 = G_MIN + span * np.array([0.2, 0.5, 0.9, 0.0])
    n = np.array([5, -7, 10, -3])
    g = dev.apply_pulses(g0, n, span, d, stream(0, "t"))
    expected = np.clip(g0 + n * span / 31, G_MIN, G_MIN + span)
    np.testing.assert_allclose(g, expected, rtol=0, atol=dev.GRID_US)
    assert g[2] == dev.snap(G_MIN + span[2]) and g[3] == G_MIN  # clamped at both ends


def test_zero_pulses_leave_cells_exactly_unchanged():
    d = spec(c2c_sigma=0.5)
    g0 = G_MIN + DG * RNG.random(100)
    g = dev.apply_pulses(g0, np.zeros(100, int), np.full(100, DG), d, stream(0, "t"))
    assert np.array_equal(g, g0)


@pytest.mark.parametrize("pulse_levels, n", [(3, 1), (9, 4), (17, 8)])
def test_c2c_sigma_grows_with_sqrt_pulses(pulse_levels, n):
    # n = P/2 puts the cell mid-range, >= 3.5 σ from both clips.
    d = spec(c2c_sigma=0.05, pulse_levels=pulse_levels)
    cells = 40_000
    g = dev.apply_pulses(
        np.full(cells, G_MIN), np.full(cells, n), np.full(cells, DG), d, stream(3, "c2c")
    )
    sigma = 0.05 * DG * math.sqrt(n)
    assert np.mean(g) == pytest.approx(G_MIN + DG / 2, abs=5 * sigma / math.sqrt(cells))
    assert np.std(g) == pytest.approx(sigma, rel=0.03)


# ---------------------------------------------------------------- variation, noise, forming


def test_d2d_factor_statistics_and_floor():
    d = dev.d2d_factors(spec(d2d_sigma=0.1), (200, 200), stream(1, "d2d"))
    assert d.std() == pytest.approx(0.1, abs=0.003)
    assert d.mean() == pytest.approx(1.0, abs=0.003)
    wide = dev.d2d_factors(spec(d2d_sigma=2.0), (1000,), stream(1, "d2d"))
    assert wide.min() == dev.MIN_D2D_FACTOR
    assert np.array_equal(dev.d2d_factors(spec(), (5,), stream(1, "x")), np.ones(5))


def test_read_noise_sigma_is_fraction_of_range():
    noise = dev.read_noise(spec(read_noise_sigma=0.02), (100_000,), stream(2, "r"))
    assert noise.std() == pytest.approx(0.02 * DG, rel=0.02)
    assert not dev.read_noise(spec(), (4,), stream(2, "r")).any()


def test_formed_conductances_statistics():
    forming = FormingSpec(
        formed_fraction=0.3, formed_g_us=40.0, formed_sigma_log=0.25, pristine_g_us=0.1
    )
    g = dev.formed_conductances(forming, (100_000,), stream(4, "f"))
    pristine = g == dev.snap(0.1)
    assert pristine.mean() == pytest.approx(0.7, abs=0.006)
    logs = np.log(g[~pristine])
    assert np.exp(np.median(logs)) == pytest.approx(40.0, rel=0.01)
    assert logs.std() == pytest.approx(0.25, rel=0.02)


def test_noise_normal_is_a_standard_normal_drawn_in_any_parts() -> None:
    from statistics import NormalDist

    z = dev.noise_normal(stream(3, "z"), (200, 1001))
    assert z.dtype == np.float32 and z.shape == (200, 1001)
    assert abs(z.mean()) < 5 / math.sqrt(z.size) and z.std() == pytest.approx(1.0, abs=0.005)
    edge = NormalDist().inv_cdf(0.5 / 65536)  # the extreme bin centre, ≈ −4.33
    assert z.min() >= edge - 1e-6 and z.max() <= -edge + 1e-6
    inside = np.mean(np.abs(z) < 1.0)  # P(|Z| < 1) = 0.6827
    assert inside == pytest.approx(0.6827, abs=0.005)
    rng = stream(3, "z")
    parts = [dev.noise_normal(rng, (k, 1001)) for k in (1, 99, 100)]
    np.testing.assert_array_equal(np.concatenate(parts), z)  # the first axis in parts
