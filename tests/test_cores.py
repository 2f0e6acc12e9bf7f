"""Each core on its own: hand-made frames in, the frames and state expected out.

The network is tiny-mlp (64-32-10, T = 4) on the tiny chip: layer 0's two blocks on pe-0-0,
layer 1 on pe-0-1, both homed on tile-0, the feedback group on pe-1-0 homed on tile-1. The
oracles are closed forms (a noise-free crossbar read is spikes @ codes), the learning rule's
functions (the reference model's) and the schedule's cost model.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from emulator.chip import Controller, PECore, TileCore
from emulator.chip.frames import (
    Error,
    Feedback,
    Frame,
    GradDone,
    GradJobs,
    Psum,
    Spikes,
    Update,
    Window,
    Written,
    decode,
    encode,
)
from emulator.chip.plan import Plan
from emulator.chip.window import CreditError
from emulator.cost import grad_order
from emulator.learning import feedback_scale, output_error
from emulator.learning.snn import Neuron
from emulator.spec import load_chip, load_network, with_fields

T = 4


EXACT = {
    "device.read_noise_sigma": 0.0,
    "device.c2c_sigma": 0.0,
    "device.pulse_levels": 16,  # one pulse per level of a 4-bit cell
    "crossbar.adc_bits": 16,
}
"""No read or write noise, levels on whole pulses, no readout saturation: a read is
spikes @ codes."""


def _plan(credit: int = 2, **fields: object) -> Plan:
    """tiny-mlp on the tiny chip, exact reads."""
    chip = with_fields(load_chip("tiny"), {**EXACT, **fields})
    return Plan(chip, load_network("tiny-mlp"), 0, "sdfa", 0.01, "adam", 0, credit)


def _window(seq: int = 0, size: int = 3, total: int = 3, first: int = 0, version: int = 0):
    return Window(
        seq=seq,
        mode="train",
        version=version,
        event=(0, version),
        first=first,
        size=size,
        total=total,
        base=version * total,
    )


def _spikes(rng: np.random.Generator, w: Window, features: int) -> np.ndarray:
    return rng.random((T, w.size, features)) < 0.3


def _wire(frames: list[Frame]) -> list[Frame]:
    """Every frame a core sends goes through the codec, as between actors."""
    return [decode(encode(f)) for f in frames]


# ----------------------------------------------------------------------------- PE core


def test_a_pe_core_reads_a_window_and_answers_with_its_blocks_partial_sums() -> None:
    plan = _plan()
    pe = PECore(plan, "pe-0-0")
    w = _window()
    x = _spikes(np.random.default_rng(0), w, 64)
    (psum,) = _wire(pe.handle(Frame.pack(Spikes(window=w), "tile-0", "pe-0-0", 0, 0, x, 2)))
    assert (psum.src, psum.dst, psum.layer, psum.kind) == ("pe-0-0", "tile-0", 0, "psum")
    assert psum.header == Psum(window=w, blocks=[0, 1])
    data = psum.array()
    assert data.shape == (T, w.size, 32)  # both blocks' columns side by side
    codes = pe.bank.codes[0]  # (64, 32) as programmed: both blocks in one row band
    # without read noise a read is spikes @ codes, up to the 2⁻²⁴ µS conductance grid
    np.testing.assert_allclose(data, x.astype(float) @ codes, atol=1e-3)
    assert pe.bank.block_counters()[0].reads == T * w.size


def test_a_pe_core_programs_updates_in_order_and_refuses_what_is_too_far_ahead() -> None:
    plan = _plan()
    pe = PECore(plan, "pe-0-1")
    size = 32 * 10
    steps = np.zeros((1, size), dtype=np.int64)
    steps[0, :5] = [1, -1, 2, 0, 3]
    second = Frame.pack(Update(event=(0, 1)), "tile-0", "pe-0-1", 1, 1, steps)
    assert pe.handle(second) == []  # update 1 waits for update 0
    first = Frame.pack(Update(event=(0, 0)), "tile-0", "pe-0-1", 1, 0, steps)
    before = pe.bank.codes[0][:, :10].copy()
    answers = _wire(pe.handle(first))
    assert [a.header.version for a in answers] == [0, 1] and pe.applied == 2
    assert all(isinstance(a.header, Written) and a.dst == "tile-0" for a in answers)
    np.testing.assert_array_equal(pe.bank.codes[0][:, :10], before + 2 * steps.reshape(32, 10))
    assert answers[0].header.cells_written > 0 and answers[0].header.pulses > 0
    with pytest.raises(CreditError, match="a update frame of batch 9"):
        pe.handle(Frame.pack(Update(event=(0, 9)), "tile-0", "pe-0-1", 1, 9, steps))
    with pytest.raises(ValueError, match=r"carries a \[1, 3\] payload"):
        pe.handle(Frame.pack(Update(event=(0, 2)), "tile-0", "pe-0-1", 1, 2, steps[:, :3]))


def test_the_feedback_group_s_pe_core_reads_the_error_bit_serially() -> None:
    plan = _plan()
    pe = PECore(plan, "pe-1-0")
    w = _window(size=2, total=2)
    e = np.random.default_rng(1).normal(size=(2, 10))
    frame = Frame.pack(Error(window=w, ready_ps=[0, 0]), "tile-1", "pe-1-0", 2, 0, e)
    (psum,) = _wire(pe.handle(frame))
    assert psum.header == Psum(window=w, blocks=[0]) and psum.dst == "tile-1"
    read = psum.array()  # (W, M): e·B up to 8-bit sign-magnitude error quantisation
    b = pe.formed[0].matrix
    step = np.abs(e).max(axis=1, keepdims=True) / 127
    assert np.all(np.abs(read - e @ b) <= step / 2 * np.abs(b).sum(axis=0) + np.abs(b).max())


# -------------------------------------------------------------------------------- tile


def test_a_layer_home_forwards_a_window_and_runs_the_neurons_on_the_summed_psums() -> None:
    plan = _plan()
    tile = TileCore(plan, "tile-0")
    w = _window()
    x = _spikes(np.random.default_rng(2), w, 64)
    spikes = Frame.pack(Spikes(window=w), "controller", "tile-0", 0, 0, x, 2)
    (to_pe,) = _wire(tile.handle(spikes))
    assert (to_pe.dst, to_pe.src) == ("pe-0-0", "tile-0")
    np.testing.assert_array_equal(to_pe.array(), x)  # input data reuse: kept at home too
    np.testing.assert_array_equal(tile.homes[0].batches[0].x, x)
    psums = np.random.default_rng(3).normal(size=(T, w.size, 32)) * 20
    answer = Frame.pack(Psum(window=w, blocks=[0, 1]), "pe-0-0", "tile-0", 0, 0, psums, 2)
    (out,) = _wire(tile.handle(answer))
    layer = plan.layers[0]
    _, s = Neuron.from_spec(plan.net.neuron).run(psums * layer.lsb)  # summed in block order
    assert (out.dst, out.layer) == ("tile-0", 1)  # layer 1 is homed on the same tile
    np.testing.assert_array_equal(out.array(), s.astype(bool))
    # its ops are stamped: a read and a neuron step per sample and step, spikes on the NoC
    ready = out.header.ready_ps
    assert ready is not None and len(ready) == T * w.size
    assert tile.clock.ops == 3 * T * w.size  # XBAR_READ, NEURON, NOC_SPIKES
    costs = plan.costs
    rates = x.sum(axis=2)[:, 0] / 64  # sample 0's input rate at each step
    end = 0
    for t in range(T):
        end += costs.xbar(0, float(rates[t])).dur_ps  # its reads run back to back
        assert ready[t * w.size] >= end + costs.neuron(0).dur_ps
    with pytest.raises(ValueError, match="window 0 of layer 0 again"):
        tile.handle(spikes)


def test_the_output_home_turns_the_error_into_each_pe_core_s_update() -> None:
    plan = _plan()
    tile = TileCore(plan, "tile-0")
    home = tile.homes[1]
    w = _window(size=2, total=2)
    rng = np.random.default_rng(4)
    x = _spikes(rng, w, 32)
    tile.handle(
        Frame.pack(Spikes(window=w, ready_ps=[0] * (T * 2)), "tile-0", "tile-0", 1, 0, x, 2)
    )
    psums = rng.normal(size=(T, 2, 10)) * 40
    tile.handle(Frame.pack(Psum(window=w, blocks=[0]), "pe-0-1", "tile-0", 1, 0, psums, 2))
    e = rng.normal(size=(2, 10)) * 0.1
    updates = _wire(tile.handle(Frame.pack(Error(window=w), "controller", "tile-0", 1, 0, e)))
    (update,) = [f for f in updates if f.kind == "update"]
    assert (update.dst, update.header) == ("pe-0-1", Update(event=(0, 0)))
    assert update.array().shape == (1, 32 * 10) and update.array().any()
    assert home.written == {0: [0, 0, 0]}  # the WRITE waits for the PE core's answer
    written = Written(version=0, cells_written=7, pulses=9)
    assert tile.handle(Frame.pack(written, "pe-0-1", "tile-0", 1, 0)) == []
    # ... and for sample 1's gradient, which the unit serves after sample 0's of layer 0
    assert home.applied == 0 and 1 not in home.grad_end
    ops = tile.clock.ops
    assert tile.grads(0, 0, [(0, 0, 9), (1, 0, 11)], T * 64, 0) == []
    assert tile.clock.ops == ops + 4  # GRAD(0,0), GRAD(1,1), GRAD(0,1), then the WRITE
    assert home.applied == 1 and home.trained == 2
    assert home.record_writes[0] == (7 / plan.mapping.layers[1].cells, 9 / 7)


def test_the_gradient_unit_stamps_in_the_schedule_s_order_whatever_the_arrival() -> None:
    plan = _plan()
    tile = TileCore(plan, "tile-0")
    unit = tile.unit
    assert unit.order == [(layer, 0) for layer in grad_order(2)]  # both layers on tile-0
    size = T * 64
    # layer 0's job for sample 0 arrives first, but the output layer's comes first in order
    assert tile.grads(0, 0, [(0, 100, 30)], size, 0) == []
    assert unit.next == (0, 0)
    done = tile.grads(1, 0, [(0, 50, 10)], T * 32, 0)
    assert unit.next == (1, 0) and done == []  # both ends go to the homes on this tile
    costs = plan.costs
    g1 = costs.grad(1, 0, 10 / (T * 32), 1)
    g0 = costs.grad(0, 0, 30 / size, 1)
    assert tile.homes[1].grad_end[0] == {0: 50 + g1.dur_ps}
    assert tile.homes[0].grad_end[0] == {0: max(100, 50 + g1.dur_ps) + g0.dur_ps}
    with pytest.raises(ValueError, match="gradient jobs of samples already done"):
        tile.grads(0, 0, [(0, 0, 0)], size, 0)


def test_a_remote_gradient_unit_reports_back_to_the_layer_s_home() -> None:
    plan = _plan(**{"tile.pes": 1, "pe.crossbars": 1, "noc.mesh": "1x4", "tiles": 4})
    layer0 = plan.mapping.layers[0]
    assert len(layer0.weight_tiles) == 2  # its two blocks' arrays on two tiles
    home, other = (f"tile-{layer0.tiles[k]}" for k in (0, 1))
    tile = TileCore(plan, other)
    jobs = GradJobs(k=1, size=T * 64, samples=[0], ready_ps=[10], active=[5])
    (report,) = _wire(tile.handle(Frame.pack(jobs, home, other, 0, 0)))
    end = 10 + plan.costs.grad(0, 1, 5 / (T * 64), 1).dur_ps
    assert (report.dst, report.layer) == (home, 0)
    assert report.header == GradDone(k=1, samples=[0], ends_ps=[end])


def test_the_feedback_home_assembles_g_and_sends_each_hidden_layer_its_prefix() -> None:
    plan = _plan()
    tile = TileCore(plan, "tile-1")
    group = plan.feedback
    assert group is not None
    rng = np.random.default_rng(5)
    windows = [_window(seq=k, size=2, total=4, first=2 * k) for k in (0, 1)]
    for w in windows:
        e = rng.normal(size=(2, 10))
        head = Error(window=w, ready_ps=[7, 8])
        (to_pe,) = tile.handle(Frame.pack(head, "controller", "tile-1", 2, 0, e))
        assert to_pe.dst == "pe-1-0"
    # window 1's read arrives first: it waits for window 0's (samples go in order)
    reads = [rng.normal(size=(2, group.width)) for _ in windows]
    late = Frame.pack(Psum(window=windows[1], blocks=[0]), "pe-1-0", "tile-1", 2, 0, reads[1])
    assert tile.handle(late) == []
    early = Frame.pack(Psum(window=windows[0], blocks=[0]), "pe-1-0", "tile-1", 2, 0, reads[0])
    out = _wire(tile.handle(early))
    assert [(f.dst, f.layer, f.header.window.seq) for f in out] == [
        ("tile-0", 0, 0),
        ("tile-0", 0, 1),
    ]
    for f, read in zip(out, reads, strict=True):
        assert isinstance(f.header, Feedback) and len(f.header.ready_ps) == 2
        np.testing.assert_array_equal(f.array(), read[:, :32] * feedback_scale(group.width))
    assert tile.feedback is not None and sorted(tile.feedback.record) == [0, 1, 2, 3]


# -------------------------------------------------------------------------- controller


def test_the_controller_evaluates_in_batches_of_the_network_s_eval_batch() -> None:
    """``training.eval_batch`` sizes every evaluation batch (and so keys its read noise), and
    the window credit grows with it."""
    from emulator.chip import window_credit
    from emulator.train import load_for

    plan = _plan(credit=window_credit(4, 256, 2))
    data = load_for(plan.net, "digits", None, 0)
    for size in (7, 256):
        net = plan.net.model_copy(
            update={"training": plan.net.training.model_copy(update={"eval_batch": size})}
        )
        sized = dataclasses.replace(plan, net=net)
        controller = Controller(sized, data, epochs=1, batch=4, frame_samples=2)
        evals = [
            (split, len(ids), e) for mode, split, ids, e in controller.batches if mode == "eval"
        ]
        test = [n for split, n, _ in evals if split == "test"]
        assert test == [min(size, len(data.x_test) - k) for k in range(0, len(data.x_test), size)]
        assert [e[1] for split, _, e in evals if split == "test"] == list(range(len(test)))
    assert window_credit(4, 7, 2) == 8 and window_credit(4, 9, 2) == 10


def test_the_controller_feeds_windows_and_answers_outputs_with_the_output_error() -> None:
    from emulator.chip import window_credit
    from emulator.train import load_for

    plan = _plan(credit=window_credit(4, 256, 2))
    data = load_for(plan.net, "digits", None, 0)
    controller = Controller(plan, data, epochs=1, batch=4, frame_samples=2)
    frames = controller.start()
    assert [(f.dst, f.header.window.seq, f.header.window.first) for f in frames] == [
        ("tile-0", 0, 0),
        ("tile-0", 1, 2),
        ("tile-0", 2, 0),
        ("tile-0", 3, 2),
    ]  # two batches in flight, two windows each
    assert frames[0].array().shape == (T, 2, 64)
    out = np.zeros((T, 4, 10), bool)
    out[:, :, 3] = True  # every sample votes for class 3
    labels = data.y_train[np.array(controller.pending[0].ids)]
    answers = []
    for k in (0, 1):
        w = frames[k].header.window
        head = Spikes(window=w, error_ps=[1, 2])
        part = out[:, 2 * k : 2 * k + 2]
        answers += controller.handle(Frame.pack(head, "tile-0", "controller", 2, 0, part, 2))
    errors = [f for f in answers if isinstance(f.header, Error)]
    assert {f.dst for f in errors} == {"tile-0", "tile-1"}  # the output layer and the group
    fr = out.mean(axis=0).astype(float).reshape(4, 10, -1).mean(axis=2)
    expected = output_error(fr, labels, 1)
    to_home = np.concatenate([f.array() for f in errors if f.dst == "tile-0"])
    np.testing.assert_array_equal(to_home, expected)
    assert [f.header.ready_ps for f in errors if f.dst == "tile-1"] == [[1, 2], [1, 2]]
    assert controller.losses == [pytest.approx(float(np.mean((fr - np.eye(10)[labels]) ** 2)))]
    assert math.isclose(controller.done_batches, 1)
