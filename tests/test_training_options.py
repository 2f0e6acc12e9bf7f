"""The network file's training options: learning-rate schedules, the loss, the initialisation,
and the validation split that keeps the best epoch; each the same on the reference and on the
chip's cores."""

from __future__ import annotations

import math

import numpy as np
import pytest

from emulator.learning import (
    INIT_GAIN,
    ReferenceModel,
    init_weights,
    train,
    validation_split,
    weight_shapes,
)
from emulator.learning.rule import loss_value, output_error
from emulator.run import run_emulation
from emulator.spec import epoch_lr, load_chip, load_network
from emulator.train import load_for, run_training


def _net(**training):
    net = load_network("tiny-mlp")
    return net.model_copy(update={"training": net.training.model_copy(update=training)})


@pytest.mark.parametrize(
    ("options", "want"),
    [
        ({"schedule": "constant"}, [0.2] * 5),
        ({"schedule": "step", "step_epochs": 2, "step_gamma": 0.5}, [0.2, 0.2, 0.1, 0.1, 0.05]),
        ({"schedule": "cosine"}, [0.1 * (1 + math.cos(math.pi * k / 5)) for k in range(5)]),
    ],
)
def test_epoch_lr_closed_forms(options, want) -> None:
    training = _net(lr=0.2, epochs=5, **options).training
    np.testing.assert_allclose([epoch_lr(training, k) for k in range(5)], want, rtol=1e-15)


def test_cross_entropy_error_is_the_gradient_of_its_loss() -> None:
    rng = np.random.default_rng(0)
    fr, y = rng.random((4, 3)), np.array([0, 2, 1, 1])
    e = output_error(fr, y, group=1, kind="cross_entropy")
    numeric = np.zeros_like(fr)
    for idx in np.ndindex(fr.shape):
        step = np.zeros_like(fr)
        step[idx] = 1e-6
        up = loss_value(fr + step, y, "cross_entropy")
        down = loss_value(fr - step, y, "cross_entropy")
        numeric[idx] = (up - down) / 2e-6
    np.testing.assert_allclose(e, numeric, atol=1e-8)
    p = np.exp(fr) / np.exp(fr).sum(axis=1, keepdims=True)
    assert loss_value(fr, y, "cross_entropy") == pytest.approx(-np.log(p[np.arange(4), y]).mean())


def test_pytorch_init_is_the_unscaled_bound() -> None:
    scaled, pytorch = _net(init="scaled"), _net(init="pytorch")
    for w_s, w_p, (_, fan_in) in zip(
        init_weights(scaled, 3), init_weights(pytorch, 3), weight_shapes(scaled), strict=True
    ):
        np.testing.assert_allclose(w_s, INIT_GAIN * w_p, rtol=1e-12)  # one stream, two gains
        assert np.abs(w_p).max() <= 1 / math.sqrt(fan_in)


def test_the_chip_s_cores_follow_the_schedule_and_the_loss() -> None:
    """Cosine schedule, cross-entropy and PyTorch's init: the in-process cores train the bits
    of the reference on the same chip (their tiles take each epoch's rate from the one
    schedule, the controller the error from the one loss)."""
    net = _net(schedule="cosine", loss="cross_entropy", init="pytorch", lr=0.05)
    chip = load_chip("tiny")
    common = {"dataset": "digits", "seed": 0, "epochs": 3, "batch": 64}
    reference = run_training(net, chip=chip, data=None, algorithm="sdfa", **common)
    emulated = run_emulation(net, chip, runtime="local", **common)
    assert emulated["weights_sha256"] == reference["weights_sha256"]
    assert reference["lr"] == 0.05  # the run's rate; each epoch's is in the history
    assert [h["lr"] for h in reference["history"]] == pytest.approx(
        [0.025 * (1 + math.cos(math.pi * k / 3)) for k in range(3)]
    )
    constant = run_training(
        _net(loss="cross_entropy", init="pytorch", lr=0.05),
        chip=chip,
        data=None,
        algorithm="sdfa",
        **common,
    )
    assert constant["weights_sha256"] != reference["weights_sha256"]  # the schedule is live


def test_validation_split_is_seeded_disjoint_and_checked() -> None:
    train_ids, val_ids = validation_split(100, 0.2, seed=4)
    assert len(val_ids) == 20 and len(train_ids) == 80
    assert set(train_ids).isdisjoint(val_ids) and set(train_ids) | set(val_ids) == set(range(100))
    again = validation_split(100, 0.2, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(again, (train_ids, val_ids), strict=True))
    assert len(validation_split(10, 0.0, 0)[1]) == 0
    with pytest.raises(ValueError, match="leaves 0 for validation"):
        validation_split(3, 0.2, 0)


def test_the_best_epoch_s_weights_are_kept() -> None:
    """The kept weights are those after the best epoch: the same run stopped there ends with
    them (a constant learning rate, so the shorter run is the longer one's prefix)."""
    net = _net(lr=0.05)
    data = load_for(net, "digits", None, 0)
    common = {"algorithm": "sdfa", "seed": 1, "batch": 64, "val_fraction": 0.25}
    long = train(net, data, epochs=4, **common)
    accuracies = [h["val_accuracy"] for h in long["history"]]
    assert long["best_epoch"] == int(np.argmax(accuracies))
    assert long["val_accuracy"] == max(accuracies) and long["val_samples"] == len(data.x_train) // 4
    assert all(0 <= h["train_accuracy"] <= 1 for h in long["history"])
    short = train(net, data, epochs=long["best_epoch"] + 1, **common)
    assert short["weights_sha256"] == long["weights_sha256"]
    assert short["test_accuracy"] == long["test_accuracy"]


def test_train_command_takes_a_validation_fraction(capsys) -> None:
    import json

    from emulator.cli import main

    argv = ["train", "--network", "tiny-mlp", "--epochs", "2", "--val-fraction", "0.2", "--json"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["best_epoch"] in (0, 1) and "val_accuracy" in result["history"][0]
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--network", "tiny-mlp", "--val-fraction", "1.5"])
    assert exit_.value.code == 2 and "must be in [0, 1)" in capsys.readouterr().err


def test_reference_model_defaults_to_the_file_s_init() -> None:
    net = _net(init="pytorch")
    model = ReferenceModel(net, algorithm="sdfa", seed=2)
    for w, expected in zip(model.weights(), init_weights(net, 2), strict=True):
        np.testing.assert_array_equal(w, expected)
