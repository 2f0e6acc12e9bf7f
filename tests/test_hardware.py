"""Chip-backed backends against the ideal reference: closed forms and the ideal model."""

from __future__ import annotations

import numpy as np
import pytest

from emulator.learning import ReferenceModel, feedback_widths
from emulator.physics.blocks import ChipFeedback, ChipLayer, stochastic_round
from emulator.physics.tiling import weight_blocks
from emulator.rng import stream
from emulator.spec import load_chip, load_network
from emulator.train import chip_model


def _ideal_chip():
    """The tiny chip with a noise-free, linear device whose pulse grid matches its levels."""
    chip = load_chip("tiny")
    device = chip.device.model_copy(
        update={"c2c_sigma": 0.0, "read_noise_sigma": 0.0, "d2d_sigma": 0.0, "pulse_levels": 16}
    )
    return chip.model_copy(update={"device": device})


def test_chip_layer_reads_are_the_quantised_product() -> None:
    chip = _ideal_chip()
    rng = np.random.default_rng(1)
    w = rng.uniform(-0.5, 0.5, (40, 150))  # 3 row blocks × 3 column blocks on 64 × 64 arrays
    layer = ChipLayer(chip, w, layer=0, seed=3)
    assert len(layer.blocks) == len(weight_blocks(chip, 0, 150, 40)) == 9
    code_max = 2**chip.crossbar.weight_bits - 1
    codes = np.clip(np.rint(w / layer.lsb), -code_max, code_max)
    np.testing.assert_allclose(layer.weights(), codes * layer.lsb, rtol=0, atol=1e-5 * layer.lsb)
    x = (rng.random((5, 150)) < 0.1).astype(np.uint8)
    # Sparse inputs keep every slice sum inside the 8-bit ADC range: the read is exact.
    read = layer.matmul(x[None], (0,))[0]  # one time step
    np.testing.assert_allclose(read, x @ (codes * layer.lsb).T, atol=1e-12)
    assert np.max(np.abs(layer.weights() - w)) <= layer.lsb / 2 + 1e-12


def test_chip_layer_update_moves_codes_by_the_rounded_delta() -> None:
    chip = _ideal_chip()
    w = np.zeros((4, 8))
    w[0, 0] = 1.0
    layer = ChipLayer(chip, w, layer=2, seed=0)
    before = layer.weights()
    delta = np.full((4, 8), 2.25 * layer.lsb)
    layer.apply_update(delta, (7, 1))
    steps = np.rint((layer.weights() - before) / layer.lsb)
    # Stochastic rounding of 2.25 LSB gives 2 or 3, unbiased: the mean over 32 weights is near.
    assert set(np.unique(steps)) <= {2.0, 3.0}
    expected = stochastic_round(np.full((8, 4), 2.25), stream(0, "update", 2, 7, 1)).T
    np.testing.assert_array_equal(steps, expected)


def test_stochastic_round_is_unbiased() -> None:
    x = np.full(200_000, -1.3)
    r = stochastic_round(x, np.random.default_rng(0))
    assert set(np.unique(r)) == {-2, -1}
    assert abs(r.mean() - (-1.3)) < 0.005


def test_shared_feedback_group_gives_each_layer_a_prefix() -> None:
    chip = _ideal_chip()
    fb = ChipFeedback(chip, 10, {0: 100, 1: 30}, seed=4, group=2)
    e = np.random.default_rng(0).normal(size=(3, 10))
    g0 = fb.project(e, 0, (5,))
    g1 = fb.project(e, 1, (5,))
    np.testing.assert_array_equal(g1, g0[:, :30])
    assert fb.counters().reads == 2 * (chip.crossbar.error_bits - 1) * 3 * len(fb.blocks)
    b = fb.matrix()
    assert b.shape == (10, 100)
    # Noise-free arrays: the read is e·B up to the error quantisation (8-bit, per vector);
    # the rule scales it by 1/√M (emulator.learning.feedback_scale).
    step = np.abs(e).max(axis=1, keepdims=True) / (2 ** (chip.crossbar.error_bits - 1) - 1)
    bound = step / 2 * np.abs(b).sum(axis=0) + np.abs(b).max()
    assert np.all(np.abs(g0 - e @ b) <= bound + 1e-9)


def test_chip_model_has_one_feedback_group_and_the_network_shapes() -> None:
    net = load_network("tiny-mlp")
    model = chip_model(net, load_chip("tiny"), algorithm="sdfa", seed=0)
    assert isinstance(model, ReferenceModel)
    assert model.feedback.width == max(feedback_widths(net))
    assert all(b.id.startswith("B2.") for b in model.feedback.blocks)


@pytest.mark.parametrize("algorithm", ["sdfa", "bptt"])
def test_chip_model_trains_a_batch(algorithm: str) -> None:
    net = load_network("tiny-mlp")
    model = chip_model(net, load_chip("tiny"), algorithm=algorithm, seed=0)
    x = (np.random.default_rng(0).random((net.time_steps, 8, 64)) < 0.3).astype(np.uint8)
    before = [w.copy() for w in model.weights()]
    model.train_batch(x, np.arange(8) % 10, (0, 0))
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.weights(), strict=True))
