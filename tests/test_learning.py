"""Tests for emulator/learning/: gradients against finite differences and hand computation."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import pytest

from emulator.learning import (
    Adam,
    IdealFeedback,
    IdealLayer,
    ReferenceModel,
    Sgd,
    feedback_scale,
    feedback_widths,
    init_weights,
    layer_init,
    mse_loss,
    network_inputs,
    train,
    weight_shapes,
    weights_sha256,
)
from emulator.rng import stream
from emulator.spec import NetworkSpec


def make_net(layers, input_shape, *, steps=3, classes=2, **neuron) -> NetworkSpec:
    return NetworkSpec(
        name="test",
        input_shape=input_shape,
        time_steps=steps,
        num_classes=classes,
        layers=layers,
        neuron=neuron,
    )


FC_NET = [{"type": "fc", "out": 5}, {"type": "fc", "out": 4}]  # 2 classes × 2 voters
CONV_NETS = {
    "conv-maxpool-conv-fc": (
        [1, 6, 6],
        [
            {"type": "conv", "out_channels": 2, "kernel": 3, "padding": 1},
            {"type": "pool", "mode": "max", "kernel": 2},
            {"type": "conv", "out_channels": 3, "kernel": 2},
            {"type": "fc", "out": 2},
        ],
    ),
    "conv-stride-avgpool-fc": (
        [2, 6, 6],
        [
            {"type": "conv", "out_channels": 3, "kernel": 3, "stride": 2, "padding": 1},
            {"type": "pool", "mode": "avg", "kernel": 2},
            {"type": "fc", "out": 4},
        ],
    ),
}


def spikes(net, batch, seed=0, p=0.5):
    rng = np.random.default_rng(seed)
    return (rng.random((net.time_steps, batch, *net.input_shape)) < p).astype(np.float64)


def model_with(net, weights, **kw) -> ReferenceModel:
    return ReferenceModel(net, seed=3, layer_backends=[IdealLayer(w) for w in weights], **kw)


def finite_differences(f, weights, layer, eps=1e-6):
    """Central differences of f(weights) w.r.t. every entry of weights[layer]."""
    grad = np.zeros_like(weights[layer])
    for idx in np.ndindex(grad.shape):
        plus = [w.copy() for w in weights]
        minus = [w.copy() for w in weights]
        plus[layer][idx] += eps
        minus[layer][idx] -= eps
        grad[idx] = (f(plus) - f(minus)) / (2 * eps)
    return grad


def rel_error(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


# ------------------------------------------------------------------------ BPTT


def check_bptt(net, x, y, gain):
    weights = init_weights(net, seed=1, gain=gain)
    grads = model_with(net, weights, algorithm="bptt", smooth=True).gradients(x, y)

    def loss(ws):
        model = model_with(net, ws, algorithm="bptt", smooth=True)
        return model.loss(model.forward(x).fr, y)

    for layer in range(len(weights)):
        numeric = finite_differences(loss, weights, layer)
        assert np.linalg.norm(numeric) > 1e-6
        assert rel_error(grads[layer], numeric) < 1e-5, layer


@pytest.mark.parametrize("model", ["lif", "if"])
@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_bptt_equals_finite_differences_fc(model, reset):
    net = make_net(FC_NET, [4], model=model, reset=reset)
    check_bptt(net, spikes(net, 2), np.array([0, 1]), gain=3.0 if model == "lif" else 1.5)


@pytest.mark.parametrize("name", sorted(CONV_NETS))
def test_bptt_equals_finite_differences_conv(name):
    shape, layers = CONV_NETS[name]
    net = make_net(layers, shape)
    check_bptt(net, spikes(net, 2), np.array([1, 0]), gain=3.0)


# ------------------------------------------------------------------------ SDFA


def sigma_prime(x, alpha=2.0):
    return alpha / (2 * (1 + (math.pi / 2 * alpha * x) ** 2))


def test_sdfa_hand_case():
    net = make_net(FC_NET, [3], steps=2)
    w1 = np.array([[2, 1, -1], [0.5, 2.5, 0], [1.5, -0.5, 2], [0.2, 0.3, 0.4], [3, 0, 0]])
    w2 = np.array([[1, 2, 0, 1, 2.5], [0, 0, 3, 1, 0], [2.5, 0, 0, 0, 0], [1, 1, 1, 1, 1.0]])
    b = np.arange(20.0).reshape(4, 5) / 10 - 1.0  # C_out × M, M = 5
    model = model_with(net, [w1, w2], algorithm="sdfa", feedback=IdealFeedback(b, [5]))
    x = np.array([[[1, 1, 0], [0, 1, 1]], [[1, 0, 1], [1, 1, 1]]], dtype=float)  # (T, B, 3)
    y = np.array([0, 1])
    trace = model.forward(x)
    h1, s1, h2, s2 = trace.h[0], trace.s[0], trace.h[1], trace.s[1]
    assert 0 < s1.sum() < s1.size and s2.sum() > 0  # a case where spikes and silence both occur

    # By hand: rates, voting (2 voters per class), MSE gradient, feedback, δ, ΔW; the
    # output layer back through its own membrane (LIF τ = 2, reset to zero through S).
    fr_out = (s2[0] + s2[1]) / 2  # (B, 4)
    fr = np.stack([fr_out[:, 0:2].mean(axis=1), fr_out[:, 2:4].mean(axis=1)], axis=1)
    target = np.array([[1.0, 0.0], [0.0, 1.0]])
    e_class = 2 * (fr - target) / (2 * 2)  # mean over B = 2 and C = 2
    e = np.repeat(e_class / 2, 2, axis=1)  # each voter gets its class's gradient / 2
    g1 = e @ b / math.sqrt(5)
    dw1 = np.zeros((5, 3))
    dw2 = np.zeros((4, 5))
    for t in range(2):
        for n in range(2):
            dw1 += np.outer(g1[n] * sigma_prime(h1[t, n] - 1.0), x[t, n])
    for n in range(2):
        grad_v = np.zeros(4)  # ∂loss/∂V[t] through H[t+1]
        for t in (1, 0):
            sg = sigma_prime(h2[t, n] - 1.0)
            grad_h = e[n] / 2 * sg + grad_v * ((1 - s2[t, n]) - h2[t, n] * sg)
            dw2 += np.outer(grad_h / 2, s1[t, n])  # ∂H/∂X = 1/τ
            grad_v = grad_h * (1 - 1 / 2)
    grads = model.gradients(x, y)
    np.testing.assert_allclose(grads[0], dw1, rtol=1e-12)
    np.testing.assert_allclose(grads[1], dw2, rtol=1e-12)


def test_sdfa_hidden_gradient_ignores_other_layers_weights():
    net = make_net([{"type": "fc", "out": 12}, {"type": "fc", "out": 4}], [6], steps=4)
    x = spikes(net, 3)
    y = np.array([0, 1, 1])
    w1, w2 = init_weights(net, seed=2, gain=5.0)
    w2_changed = w2 + np.random.default_rng(9).normal(0, 1e-4, w2.shape)
    grads = {}
    for algorithm in ("sdfa", "bptt"):
        a = model_with(net, [w1, w2], algorithm=algorithm)
        b = model_with(net, [w1, w2_changed], algorithm=algorithm)
        np.testing.assert_array_equal(a.forward(x).s[-1], b.forward(x).s[-1])  # same spikes
        grads[algorithm] = (a.gradients(x, y)[0], b.gradients(x, y)[0])
    np.testing.assert_array_equal(*grads["sdfa"])
    assert not np.array_equal(*grads["bptt"])  # the check can fail: BPTT reads W2


def test_sdfa_conv_hidden_layer_by_loops():
    net = make_net(
        [
            {"type": "conv", "out_channels": 2, "kernel": 3, "padding": 1},
            {"type": "pool", "mode": "max", "kernel": 2},
            {"type": "fc", "out": 2},
        ],
        [1, 5, 5],
        steps=2,
    )
    # The feedback enters after the pool (the authors' ConvBlock): 2 channels of 2x2.
    assert feedback_widths(net) == [8]
    model = ReferenceModel(net, algorithm="sdfa", seed=4)
    x = spikes(net, 2, seed=4)
    y = np.array([1, 0])
    trace = model.forward(x)
    e = model.output_error(trace.fr, y)
    g = (e @ model.feedback.matrix / math.sqrt(8)).reshape(2, 2, 2, 2)
    s, h = trace.s[0], trace.h[0]
    xp = np.pad(x, ((0, 0), (0, 0), (0, 0), (1, 1), (1, 1)))
    expected = np.zeros((2, 9))
    winners = set()
    for t, n, o, pi, pj in np.ndindex(2, 2, 2, 2, 2):
        # g of a pooled cell reaches its window's winner at step t only: the first position
        # (row-major) holding the window's max, its first spike or, with none, its first cell
        window = [(2 * pi + a, 2 * pj + b) for a in (0, 1) for b in (0, 1)]
        values = [s[t, n, o, r, c] for r, c in window]
        i, j = window[values.index(max(values))]
        winners.add((i - 2 * pi, j - 2 * pj))
        delta = g[n, o, pi, pj] * sigma_prime(h[t, n, o, i, j] - 1.0)
        expected[o] += delta * xp[t, n, 0, i : i + 3, j : j + 3].ravel()
    assert len(winners) > 1  # the route depends on the spikes, not a fixed position
    np.testing.assert_allclose(model.gradients(x, y)[0], expected, rtol=1e-12)


LOCAL_NETS = {
    "fc": ([4], [{"type": "fc", "out": 6}, {"type": "fc", "out": 5}, {"type": "fc", "out": 4}]),
    "conv-pool-fc": (
        [1, 4, 4],
        [*CONV_NETS["conv-maxpool-conv-fc"][1][:2], {"type": "fc", "out": 2}],
    ),
}


@pytest.mark.parametrize("name", sorted(LOCAL_NETS))
def test_sdfa_local_bptt_equals_injected_gradient(name):
    shape, layers = LOCAL_NETS[name]
    net = make_net(layers, shape, steps=3)
    x = spikes(net, 2, seed=5)
    y = np.array([0, 1])
    weights = init_weights(net, seed=6, gain=3.0)
    model = model_with(net, weights, algorithm="sdfa-local-bptt", smooth=True)
    trace = model.forward(x)
    e = model.output_error(trace.fr, y)
    grads = model.gradients(x, y)
    hidden = model.weighted[:-1]
    for index, i in enumerate(hidden):
        j = i  # the layer's output after the pools that follow it: where the feedback enters
        while net.layers[j + 1].type == "pool":
            j += 1
        g = model.feedback.project(e, index, ()) * feedback_scale(model.feedback_width)
        g = g.reshape(trace.s[j].shape[1:])

        def injected(ws, j=j, g=g):  # Σ_t Σ_b g·pool(σ(H_l[t])) with g held fixed
            smooth = model_with(net, ws, algorithm="bptt", smooth=True)
            return float(np.sum(g * smooth.forward(x).s[j]))

        numeric = finite_differences(injected, weights, index)
        assert rel_error(grads[index], numeric) < 1e-5, index

    def loss(ws):  # the output layer gets its true gradient
        m = model_with(net, ws, algorithm="bptt", smooth=True)
        return m.loss(m.forward(x).fr, y)

    last = len(weights) - 1
    assert rel_error(grads[last], finite_differences(loss, weights, last)) < 1e-5


@pytest.mark.parametrize("name", sorted(LOCAL_NETS))
def test_sdfa_gives_the_output_layer_its_true_gradient(name):
    """The output layer has no feedback after it: under sdfa too it back-propagates through
    its own membrane over the T steps (finite differences of the loss are the oracle); the
    hidden layers keep the surrogate-only rule (differs from sdfa-local-bptt's)."""
    shape, layers = LOCAL_NETS[name]
    net = make_net(layers, shape, steps=3)
    x, y = spikes(net, 2, seed=5), np.array([0, 1])
    weights = init_weights(net, seed=6, gain=3.0)
    sdfa = model_with(net, weights, algorithm="sdfa", smooth=True).gradients(x, y)
    local = model_with(net, weights, algorithm="sdfa-local-bptt", smooth=True).gradients(x, y)

    def loss(ws):
        m = model_with(net, ws, algorithm="bptt", smooth=True)
        return m.loss(m.forward(x).fr, y)

    last = len(weights) - 1
    assert rel_error(sdfa[last], finite_differences(loss, weights, last)) < 1e-5
    np.testing.assert_array_equal(sdfa[last], local[last])
    assert not np.allclose(sdfa[0], local[0])  # the hidden rule is still the hardware's


# ------------------------------------------------------------- feedback, voting


def test_feedback_uses_first_columns_and_the_rule_scales_by_sqrt_m():
    rng = np.random.default_rng(0)
    b = rng.normal(size=(3, 6))
    e = rng.normal(size=(2, 3))
    fb = IdealFeedback(b, [6, 4])
    for layer, n in enumerate([6, 4]):
        expected = np.zeros((2, n))
        for s in range(2):
            for j in range(n):
                expected[s, j] = sum(e[s, c] * b[c, j] for c in range(3))
        np.testing.assert_allclose(fb.project(e, layer, ()), expected, rtol=1e-12)
    assert feedback_scale(6) == 1 / math.sqrt(6)


def test_feedback_for_network_draws_one_matrix():
    net = make_net(
        [{"type": "fc", "out": 7}, {"type": "fc", "out": 3}, {"type": "fc", "out": 4}], [5]
    )
    fb = IdealFeedback.for_network(net, seed=11)
    assert fb.widths == [7, 3]
    np.testing.assert_array_equal(fb.matrix, stream(11, "feedback").standard_normal((4, 7)))


def test_voting_groups_and_output_error():
    net = make_net([{"type": "fc", "out": 6}], [4], classes=3)  # groups of 2
    model = ReferenceModel(net, algorithm="bptt", seed=0)
    trace = model.forward(spikes(net, 5, p=0.8))
    r = trace.rates
    np.testing.assert_allclose(trace.fr, (r[:, 0::2] + r[:, 1::2]) / 2)
    rates = np.random.default_rng(1).random((5, 6))
    y = np.array([0, 2, 1, 1, 0])

    def loss(flat):
        return mse_loss(flat.reshape(5, 3, 2).mean(axis=2), y)

    eps = 1e-6
    numeric = np.zeros_like(rates)
    for idx in np.ndindex(rates.shape):
        d = np.zeros_like(rates)
        d[idx] = eps
        numeric[idx] = (loss(rates + d) - loss(rates - d)) / (2 * eps)
    fr = rates.reshape(5, 3, 2).mean(axis=2)
    np.testing.assert_allclose(model.output_error(fr, y), numeric, rtol=1e-6)


# ------------------------------------------------------------ weights, updates


def test_weights_sha256_byte_order():
    ws = [np.arange(6.0).reshape(2, 3), np.array([[0.5, -1.25]])]
    blob = b"".join(w.astype("<f8").tobytes(order="C") for w in ws)
    assert weights_sha256(ws) == hashlib.sha256(blob).hexdigest()
    assert weights_sha256([ws[0].astype(np.float32), ws[1]]) == weights_sha256(ws)
    flipped = ws[1].copy()
    flipped.view(np.uint64)[0, 1] ^= 1  # lowest mantissa bit
    assert weights_sha256([ws[0], flipped]) != weights_sha256(ws)
    assert weights_sha256(ws[::-1]) != weights_sha256(ws)


def test_init_weights_follow_stream_and_bound():
    net = make_net(CONV_NETS["conv-stride-avgpool-fc"][1], [2, 6, 6])
    assert weight_shapes(net) == [(3, 18), (4, 3)]  # 6×6 → conv 3×3 → pool 1×1
    ws = init_weights(net, seed=5, gain=2.0)
    for index, w in enumerate(ws):
        bound = 2.0 / math.sqrt(w.shape[1])
        np.testing.assert_array_equal(w, stream(5, "init", index).uniform(-bound, bound, w.shape))
        assert np.abs(w).max() <= bound
        for first, stop in [(0, 1), (1, w.shape[0]), (2, 3)]:  # some rows, from where they sit
            part = layer_init(net, 5, index, gain=2.0, outputs=slice(first, stop))
            np.testing.assert_array_equal(part, w[first:stop])


def test_optimizers_closed_form():
    g = [np.array([[0.5, -2.0]])]
    np.testing.assert_allclose(Sgd(0.1).step(g)[0], [[-0.05, 0.2]])
    adam = Adam(0.01)
    np.testing.assert_allclose(adam.step(g)[0], [[-0.01, 0.01]], rtol=1e-6)  # m̂ = g, v̂ = g²
    g2 = [np.array([[1.5, -2.0]])]
    m = 0.9 * 0.1 * 0.5 + 0.1 * 1.5
    v = 0.999 * 0.001 * 0.25 + 0.001 * 2.25
    expected = -0.01 * (m / (1 - 0.81)) / (math.sqrt(v / (1 - 0.999**2)) + 1e-8)
    assert adam.step(g2)[0][0, 0] == pytest.approx(expected, rel=1e-12)


def test_train_batch_descends_the_gradient():
    net = make_net(FC_NET, [4])
    x, y = spikes(net, 4), np.array([0, 1, 1, 0])
    model = ReferenceModel(net, algorithm="bptt", seed=0, optimizer="sgd", lr=0.5, smooth=True)
    before = model.weights()
    grads = model.gradients(x, y)
    loss0 = model.train_batch(x, y)
    for w0, g, w1 in zip(before, grads, model.weights(), strict=True):
        np.testing.assert_allclose(w1, w0 - 0.5 * g, rtol=1e-12)
    assert model.loss(model.forward(x).fr, y) < loss0


class Recording(IdealLayer):
    def __init__(self, w):
        super().__init__(w)
        self.events = []

    def matmul(self, x, event):
        self.events.append(("matmul", event))
        return super().matmul(x, event)

    def apply_update(self, delta, event):
        self.events.append(("update", event))
        super().apply_update(delta, event)


def test_backends_read_every_step_at_once_under_the_batch_event():
    net = make_net(FC_NET, [4])
    backends = [Recording(w) for w in init_weights(net, 0)]
    model = ReferenceModel(net, algorithm="sdfa", seed=0, layer_backends=backends)
    model.train_batch(spikes(net, 2), np.array([0, 1]), (4, 7))
    for b in backends:
        assert b.events == [("matmul", (4, 7)), ("update", (4, 7))]


def test_state_dict_round_trip():
    net = make_net(FC_NET, [4])
    x, y = spikes(net, 4), np.array([0, 1, 1, 0])
    a = ReferenceModel(net, algorithm="sdfa", seed=0, lr=0.01)
    a.train_batch(x, y)
    b = ReferenceModel(net, algorithm="sdfa", seed=1, lr=0.01, feedback=a.feedback)
    b.load_state_dict(a.state_dict())
    a.train_batch(x, y)
    b.train_batch(x, y)  # differs unless weights and Adam moments were both restored
    assert weights_sha256(a.weights()) != weights_sha256(init_weights(net, 0))
    for wa, wb in zip(a.weights(), b.weights(), strict=True):
        np.testing.assert_allclose(wa, wb, rtol=1e-12)


# -------------------------------------------------------------------- training


@dataclass
class Toy:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    temporal: bool = False
    num_classes: int = 3


def toy_dataset(n_train=90, n_test=30, features=15, classes=3, seed=0) -> Toy:
    """Class c lights features [5c, 5c+5) at rate 0.9, the rest at 0.1, plus noise."""
    rng = np.random.default_rng(seed)

    def draw(n):
        y = np.arange(n) % classes
        x = np.full((n, features), 0.1)
        for i, c in enumerate(y):
            x[i, 5 * c : 5 * c + 5] = 0.9
        return np.clip(x + rng.normal(0, 0.05, x.shape), 0, 1), y

    return Toy(*draw(n_train), *draw(n_test))


TOY_NET = make_net([{"type": "fc", "out": 24}, {"type": "fc", "out": 3}], [15], steps=6, classes=3)


@pytest.mark.parametrize("algorithm", ["sdfa", "bptt", "sdfa-local-bptt"])
def test_training_learns_separable_data(algorithm):
    calls = []
    result = train(
        TOY_NET,
        toy_dataset(),
        algorithm=algorithm,
        seed=0,
        epochs=4,
        batch=10,
        lr=0.03,
        optimizer="adam",
        progress=lambda done, total, loss: calls.append((done, total)),
    )
    assert result["train_accuracy"] > 0.9
    assert result["test_accuracy"] > 0.9
    assert calls == [(k, 36) for k in range(1, 37)]
    assert len(result["history"]) == 4 and result["loss"] == result["history"][-1]["loss"]


def test_training_is_deterministic_per_seed():
    kw = {"algorithm": "sdfa", "epochs": 1, "batch": 16, "lr": 0.01, "optimizer": "adam"}
    data = toy_dataset()
    first = train(TOY_NET, data, seed=1, **kw)
    assert train(TOY_NET, data, seed=1, **kw)["weights_sha256"] == first["weights_sha256"]
    assert train(TOY_NET, data, seed=2, **kw)["weights_sha256"] != first["weights_sha256"]


def test_network_inputs_for_event_data():
    net = make_net(FC_NET, [2, 2], steps=3)
    x = (np.random.default_rng(0).random((4, 3, 4)) < 0.5).astype(np.uint8)  # (B, T, 4)
    out = network_inputs(net, x, temporal=True, seed=0, key=(), sample_ids=np.arange(4))
    assert out.shape == (3, 4, 2, 2)
    np.testing.assert_array_equal(out[1, 2].ravel(), x[2, 1])
