"""Tests for emulator/learning/snn.py: hand-computed traces, closed forms and direct loops."""

from __future__ import annotations

import numpy as np
import pytest

from emulator.learning.snn import (
    Neuron,
    atan_spike,
    atan_surrogate,
    col2im,
    conv2d,
    events_to_steps,
    fc,
    im2col,
    pool,
    pool_backward,
    rate_encode,
)
from emulator.rng import stream
from emulator.spec import NeuronSpec


class Matrix:
    """The smallest backend: exact ``x @ W.T``."""

    def __init__(self, w):
        self.w = np.asarray(w, dtype=np.float64)

    def matmul(self, x, event):
        return x @ self.w.T

    def weights(self):
        return self.w

    def apply_update(self, delta, event):
        self.w = self.w + delta


# ------------------------------------------------------------------------ neuron

# Hand-computed 3-step traces, θ = 1: (model, reset, inputs, H, S, V).
TRACES = [
    # LIF τ=2: H = V + (X - V)/2.  t0: 1.2 fires; t1: V=0 → 0.5; t2: 0.5 + (1.5-0.5)/2 = 1.0 fires.
    ("lif", "zero", [2.4, 1.0, 1.5], [1.2, 0.5, 1.0], [1, 0, 1], [0.0, 0.5, 0.0]),
    # subtract: V = 0.2 after t0; t1: 0.2 + 0.4 = 0.6; t2: 0.6 + 0.45 = 1.05 fires, V = 0.05.
    ("lif", "subtract", [2.4, 1.0, 1.5], [1.2, 0.6, 1.05], [1, 0, 1], [0.2, 0.6, 0.05]),
    # IF: H = V + X.
    ("if", "zero", [0.6, 0.5, 0.7], [0.6, 1.1, 0.7], [0, 1, 0], [0.6, 0.0, 0.7]),
    ("if", "subtract", [0.6, 0.5, 0.7], [0.6, 1.1, 0.8], [0, 1, 0], [0.6, 0.1, 0.8]),
]


@pytest.mark.parametrize(("model", "reset", "x", "h", "s", "v"), TRACES)
def test_neuron_steps_match_hand_trace(model, reset, x, h, s, v):
    neuron = Neuron(model=model, tau=2.0, threshold=1.0, reset=reset)
    pot = np.zeros(1)
    for t in range(3):
        ht, st, pot = neuron.step(pot, np.array([x[t]]))
        assert ht[0] == pytest.approx(h[t])
        assert st[0] == s[t]
        assert pot[0] == pytest.approx(v[t])
    hh, ss = neuron.run(np.array(x)[:, None])
    np.testing.assert_allclose(hh[:, 0], h)
    np.testing.assert_array_equal(ss[:, 0], s)


def test_neuron_fires_at_exact_threshold():
    assert Neuron().fire(np.array([1.0]))[0] == 1.0
    assert Neuron().fire(np.array([np.nextafter(1.0, 0)]))[0] == 0.0


def test_neuron_from_spec():
    spec = NeuronSpec(model="if", tau=3.0, threshold=0.5, reset="subtract", surrogate_alpha=4.0)
    assert Neuron.from_spec(spec, smooth=True) == Neuron("if", 3.0, 0.5, "subtract", 4.0, True)


@pytest.mark.parametrize("alpha", [1.0, 2.0, 4.0])
def test_surrogate_closed_form_and_derivative_of_primitive(alpha):
    assert atan_surrogate(np.array(0.0), alpha) == pytest.approx(alpha / 2)
    assert atan_spike(np.array(0.0), alpha) == pytest.approx(0.5)
    x = np.linspace(-2, 2, 41)
    eps = 1e-6
    numeric = (atan_spike(x + eps, alpha) - atan_spike(x - eps, alpha)) / (2 * eps)
    np.testing.assert_allclose(atan_surrogate(x, alpha), numeric, rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("model", ["lif", "if"])
@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_neuron_backward_equals_finite_differences_of_smooth_neuron(model, reset):
    neuron = Neuron(model=model, reset=reset, smooth=True)
    rng = np.random.default_rng(1)
    x = rng.uniform(0.0, 2.5, (5, 3))
    c = rng.normal(size=(5, 3))  # loss = Σ c·S

    def loss(currents):
        return float(np.sum(c * neuron.run(currents)[1]))

    h, s = neuron.run(x)
    grad = neuron.backward(h, s, c)
    numeric = np.zeros_like(x)
    eps = 1e-6
    for idx in np.ndindex(x.shape):
        d = np.zeros_like(x)
        d[idx] = eps
        numeric[idx] = (loss(x + d) - loss(x - d)) / (2 * eps)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)


# ---------------------------------------------------------------------- encoders


def test_rate_encode_draws_each_sample_from_its_own_stream():
    x = np.array([[0.0, 0.5, 1.0], [0.3, 0.9, 0.1]])
    out = rate_encode(x, 4, seed=7, key=("train", 2), sample_ids=[11, 5])
    assert out.dtype == np.uint8 and out.shape == (4, 2, 3)
    for i, sample in enumerate([11, 5]):
        draws = stream(7, "encode", "train", 2, sample).random((4, 3))
        np.testing.assert_array_equal(out[:, i], draws < x[i])
    alone = rate_encode(x[1:], 4, seed=7, key=("train", 2), sample_ids=[5])
    np.testing.assert_array_equal(alone[:, 0], out[:, 1])


def test_rate_encode_probabilities():
    out = rate_encode(np.array([[0.0, 0.25, 1.0]]), 4000, seed=0, key=())
    assert out[:, 0, 0].sum() == 0 and out[:, 0, 2].sum() == 4000
    assert out[:, 0, 1].mean() == pytest.approx(0.25, abs=0.03)


def test_events_to_steps_transposes():
    x = np.arange(2 * 3 * 4).reshape(2, 3, 4) % 2
    out = events_to_steps(x)
    assert out.shape == (3, 2, 4) and out.dtype == np.uint8
    assert out[2, 1, 3] == x[1, 2, 3]


# --------------------------------------------------------------------- layer ops


def test_fc_flattens_and_uses_backend():
    w = np.arange(12.0).reshape(2, 6)
    x = np.ones((4, 3, 2, 3))  # (T, B, ...)
    np.testing.assert_allclose(fc(x, Matrix(w), ()), np.tile(w.sum(axis=1), (4, 3, 1)))


def direct_conv(x, w4, stride, padding):
    """Convolution by explicit loops: x (N, C, H, W), w4 (OC, C, K, K)."""
    n, _, h, wd = x.shape
    oc, _, k, _ = w4.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    ho, wo = (h + 2 * padding - k) // stride + 1, (wd + 2 * padding - k) // stride + 1
    out = np.zeros((n, oc, ho, wo))
    for b in range(n):
        for o in range(oc):
            for i in range(ho):
                for j in range(wo):
                    patch = xp[b, :, i * stride : i * stride + k, j * stride : j * stride + k]
                    out[b, o, i, j] = np.sum(patch * w4[o])
    return out


@pytest.mark.parametrize(("kernel", "stride", "padding"), [(3, 1, 0), (3, 2, 1), (2, 2, 0)])
def test_conv2d_matches_direct_loops(kernel, stride, padding):
    rng = np.random.default_rng(0)
    x = (rng.random((3, 2, 3, 6, 5)) < 0.5).astype(float)  # (T, N, C, H, W)
    w4 = rng.normal(size=(4, 3, kernel, kernel))
    out = conv2d(x, Matrix(w4.reshape(4, -1)), kernel, stride, padding, ())
    for t in range(3):
        np.testing.assert_allclose(out[t], direct_conv(x[t], w4, stride, padding))


@pytest.mark.parametrize(("kernel", "stride", "padding"), [(3, 1, 1), (3, 2, 1), (2, 2, 0)])
def test_col2im_is_adjoint_of_im2col(kernel, stride, padding):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 3, 7, 6))
    cols = im2col(x, kernel, stride, padding)
    c = rng.normal(size=cols.shape)
    back = col2im(c, x.shape, kernel, stride, padding)
    assert back.shape == x.shape
    assert np.sum(cols * c) == pytest.approx(np.sum(x * back))


def test_max_pool_of_spikes_is_or_and_crops():
    rng = np.random.default_rng(2)
    x = (rng.random((2, 3, 5, 4)) < 0.3).astype(float)
    out = pool(x, "max", 2)
    assert out.shape == (2, 3, 2, 2)
    for i in range(2):
        for j in range(2):
            window = x[:, :, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2]
            np.testing.assert_array_equal(out[:, :, i, j], np.any(window, axis=(2, 3)))


def test_max_pool_backward_routes_to_first_argmax():
    x = np.array([[[[1.0, 1.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 1.0]]]])  # 3×3, crops to 2×2
    grad = pool_backward(x, np.array([[[[5.0]]]]), "max", 2)
    expected = np.zeros((1, 1, 3, 3))
    expected[0, 0, 0, 0] = 5.0  # ties: (0,0), (0,1), (1,1) all 1; first in row-major order
    np.testing.assert_array_equal(grad, expected)
    x2 = np.array([[[[0.0, 0.2], [0.9, 0.1]]]])
    grad2 = pool_backward(x2, np.array([[[[3.0]]]]), "max", 2)
    np.testing.assert_array_equal(grad2, [[[[0.0, 0.0], [3.0, 0.0]]]])


def test_avg_pool_and_backward():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    np.testing.assert_allclose(pool(x, "avg", 2), [[[[2.5, 4.5], [10.5, 12.5]]]])
    g = np.array([[[[4.0, 8.0], [12.0, 16.0]]]])
    grad = pool_backward(x, g, "avg", 2)
    np.testing.assert_allclose(grad[0, 0, :2, :2], 1.0)
    np.testing.assert_allclose(grad[0, 0, 2:, 2:], 4.0)
    np.testing.assert_allclose(grad.sum(), g.sum())
