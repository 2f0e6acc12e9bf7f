"""The list schedule and cost model: closed forms derived here from the chip file's fields,
dependency and resource checks over the op list, and the Activity file format.

Durations follow the documented rule of :mod:`emulator.cost.schedule`: each op's formula in ns is
rounded once to integer picoseconds (``_ps`` below), then times only add.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict

import numpy as np
import pytest
from pydantic import ValidationError

from emulator.cost import (
    COMPONENTS,
    Activity,
    CostModel,
    Op,
    OpActivity,
    Schedule,
    simulate,
    simulate_run,
    start_ps,
    xbar_ready_ps,
)
from emulator.physics.growth import fit_chips
from emulator.spec import ChipSpec, NetworkSpec, load_chip, load_network


def _ps(ns: float) -> int:
    return round(ns * 1000)


def _net(widths: list[int], steps: int, classes: int | None = None) -> NetworkSpec:
    return NetworkSpec.model_validate(
        {
            "name": "t",
            "input_shape": [widths[0]],
            "time_steps": steps,
            "num_classes": classes or widths[-1],
            "layers": [{"type": "fc", "out": n} for n in widths[1:]],
        }
    )


def _with(chip: ChipSpec, **pipeline: bool) -> ChipSpec:
    return chip.model_copy(update={"pipeline": chip.pipeline.model_copy(update=pipeline)})


def _pipelayer(chip: ChipSpec) -> ChipSpec:
    return chip.model_copy(update={"dataflow": "pipelayer"})


def _by_key(s: Schedule) -> dict[tuple, list[Op]]:
    ops: dict[tuple, list[Op]] = defaultdict(list)
    for op in s.ops:
        ops[op.kind, op.layer, op.sample, op.step].append(op)
    return ops


def _energy_by_component(parts: list[tuple[float, dict[str, float]]]) -> dict[str, float]:
    out = dict.fromkeys(COMPONENTS, 0.0)
    for count, energy in parts:
        for k, v in energy.items():
            out[k] += count * v
    return out


def _assert_energy(s: Schedule, expected: dict[str, float]) -> None:
    for c in COMPONENTS:
        assert s.energy_pj_per_sample[c] == pytest.approx(expected[c], rel=1e-12, abs=1e-12), c
    assert s.total_pj_per_sample == pytest.approx(sum(expected.values()), rel=1e-12)


# --------------------------------------------------------------- one layer, by hand

T, B, RATE = 3, 2, 0.25


@pytest.fixture
def one_layer() -> tuple[ChipSpec, NetworkSpec, Activity]:
    chip, net = load_chip("tiny"), _net([16, 4], T)
    return chip, net, Activity.uniform(net, RATE)


def _forward_costs(chip: ChipSpec) -> dict:
    """fc 16→4 on one tiny array: its read cycle, neuron step and per-step energies."""
    xb, dev, tile = chip.crossbar, chip.device, chip.tile
    slices = xb.weight_bits // xb.cell_bits  # 2 cells of 4 bits per 8-bit magnitude
    pair_cells = 2 * slices  # a differential pair per slice
    cpc = slices if xb.readout == "adc" else pair_cells  # readouts per logical column
    cycle = dev.read_latency_ns + 4 * cpc * xb.adc_latency_ns  # 4 logical columns, one ADC
    xbar = {
        "read": RATE * 16 * 4 * pair_cells * dev.read_energy_pj,
        "readout": 4 * cpc * xb.adc_energy_pj,
        "shift_add": 4 * (cpc - 1) * tile.shift_add_energy_pj,  # one row block
        "buffer": (16 + 16) * tile.buffer_energy_pj_per_bit,  # frame written + read
    }
    neuron = {
        "neuron": 4 * tile.neuron_energy_pj,
        "buffer": 4 * 16 * tile.buffer_energy_pj_per_bit,  # membrane saved
    }
    return {
        "cycle": cycle,
        "cpc": cpc,
        "cells": 16 * 4 * pair_cells,
        "xbar": xbar,
        "neuron": neuron,
    }


def _static_mw(chip: ChipSpec) -> float:
    """The whole chip's leakage (nothing gated, a digital gradient unit, spikes in), by its
    counts: per array its readout units, shift-add and cells; per PE core its registers; per
    tile its neuron unit, gradient lanes, buffer and bus; per node a router; the chip's
    off-chip interface."""
    k, xb, tile = chip.leakage, chip.crossbar, chip.tile
    readout = k.adc_mw if xb.readout == "adc" else k.if_counter_mw
    arrays = chip.tiles * tile.pes * chip.pe.crossbars
    lanes = tile.grad_macs_per_ns * 1000 / chip.clock_mhz
    per_tile = k.neuron_unit_mw + lanes * k.grad_mw_per_lane + tile.buffer_kb * k.buffer_mw_per_kb
    per_tile += tile.pes * k.pe_registers_mw + k.bus_mw
    per_array = xb.converters * readout + k.shift_add_mw + k.array_mw
    nodes = chip.noc.nodes * k.router_mw
    return arrays * per_array + chip.tiles * per_tile + nodes + k.io_mw


def _grad_costs(
    chip: ChipSpec, error_values: int, rate: float = RATE
) -> tuple[int, dict[str, float]]:
    """GRAD of the fc 16→4 layer on one tile: δ over T steps (T neuron steps) beside the
    buffer accesses one after the other (T frames, T membranes, the error written and read),
    then the MACs."""
    tile = chip.tile
    macs = T * 4 * rate * 16  # T · n_l · rate · fan_in
    parts = [T * 16, T * 4 * tile.membrane_bits, 2 * error_values * tile.value_bits]
    bits = sum(parts)
    access = sum(math.ceil(b / tile.buffer_bus_bits) * tile.buffer_latency_ns for b in parts)
    head = max(T * tile.neuron_latency_ns, access)
    energy = {
        "grad": macs * tile.grad_energy_pj_per_mac,
        "neuron": T * 4 * tile.neuron_energy_pj,
        "buffer": bits * tile.buffer_energy_pj_per_bit,
    }
    return _ps(head + macs / tile.grad_macs_per_ns), energy


def test_one_layer_pipesdfa_by_hand(one_layer: tuple) -> None:
    chip, net, act = one_layer
    dev, tile, xb = chip.device, chip.tile, chip.crossbar
    f = _forward_costs(chip)
    x, nu = _ps(f["cycle"]), _ps(tile.neuron_latency_ns)
    g, grad = _grad_costs(chip, 4)  # SDFA's error is g_l, the same at every step: n_l values
    pulses = (dev.pulse_levels - 1) / (2**xb.cell_bits - 1)  # one level step
    w = _ps(16 * math.ceil(pulses) * dev.write_latency_ns)  # 16 rows in sequence
    assert x > nu and T * x > g
    # Sample 0's reads run back to back (x > nu): its last neuron step ends at T·x + nu, then
    # its gradient. Sample 1 follows on the arrays at T·x (data level); its gradient ends at
    # 2T·x + nu + g; then the write.
    end = 2 * T * x + nu + g + w
    s = simulate(chip, net, act, batch=B, batches=1)
    assert [op.kind for op in s.ops if op.sample == 0] == ["XBAR_READ", "NEURON"] * T + ["GRAD"]
    grads = [op for op in s.ops if op.kind == "GRAD"]
    assert [(op.start_ps, op.end_ps) for op in grads] == [
        (T * x + nu, T * x + nu + g),
        (2 * T * x + nu, 2 * T * x + nu + g),
    ]
    assert s.batch_end_ns == [end / 1000]
    assert s.time_ns_per_batch == end / 1000
    assert s.time_ns_per_sample == end / 1000 / B
    assert s.cycles == round(end / 1000 * chip.clock_mhz / 1000)
    write = {"write": 0.5 * f["cells"] * pulses * dev.write_energy_pj}
    static = {"static": _static_mw(chip) * end / 1000}  # leakage × the batch, mW·ns = pJ
    parts = [(T, f["xbar"]), (T, f["neuron"]), (1, grad), (1 / B, write), (1 / B, static)]
    _assert_energy(s, _energy_by_component(parts))
    assert s.counters["macs"] == pytest.approx(B * T * 4 * RATE * 16)
    assert s.counters["reuse_saved_bits"] == B * T * 16
    assert s.counters["reuse_saved_pj"] == 0  # layer 0's input enters on its own tile


def test_one_layer_inference_by_hand(one_layer: tuple) -> None:
    """dataflow inference: the forward alone, samples back to back on the arrays (the data
    level), nothing learnt: no GRAD, FEEDBACK, ERR or WRITE, no feedback arrays; energy the
    reads, the neuron steps and the leakage over the batch."""
    chip, net, act = one_layer
    chip = chip.model_copy(update={"dataflow": "inference"})
    f = _forward_costs(chip)
    x, nu = _ps(f["cycle"]), _ps(chip.tile.neuron_latency_ns)
    s = simulate(chip, net, act, batch=B, batches=1)
    assert {op.kind for op in s.ops} == {"XBAR_READ", "NEURON"}
    assert s.mapping.feedback is None and not s.mapping.transposes
    end = 2 * T * x + nu  # sample 1 reads from T·x on, its last neuron step ends at 2T·x + nu
    assert s.time_ps_total == end
    static = {"static": _static_mw(chip) * end / 1000}
    _assert_energy(s, _energy_by_component([(T, f["xbar"]), (T, f["neuron"]), (1 / B, static)]))


def test_one_layer_pipelayer_differs_only_by_its_buffered_errors(one_layer: tuple) -> None:
    """One layer, the same chip with dataflow pipelayer: no error to propagate (no ERR), and
    so no transposed copy of W (layer 0's Wᵀ would carry the error of the network input,
    which nothing reads): the only difference is BPTT's per-step errors in the buffer (T·n_l
    values, not n_l)."""
    chip, net, act = one_layer
    sdfa = simulate(chip, net, act, batch=B, batches=1)
    chip = _pipelayer(chip)
    dev, tile, xb = chip.device, chip.tile, chip.crossbar
    f = _forward_costs(chip)
    x, nu = _ps(f["cycle"]), _ps(tile.neuron_latency_ns)
    g, grad = _grad_costs(chip, T * 4)
    pulses = (dev.pulse_levels - 1) / (2**xb.cell_bits - 1)
    w = _ps(16 * math.ceil(pulses) * dev.write_latency_ns)
    s = simulate(chip, net, act, batch=B, batches=1)
    assert [op.kind for op in s.ops if op.sample == -1] == ["WRITE"]
    assert not [op for op in s.ops if op.kind in ("ERR", "FEEDBACK", "WRITE_T")]
    grads = [op for op in s.ops if op.kind == "GRAD"]
    assert [(op.start_ps, op.end_ps) for op in grads] == [
        (T * x + nu, T * x + nu + g),
        (2 * T * x + nu, 2 * T * x + nu + g),
    ]
    assert s.time_ns_per_batch == (2 * T * x + nu + g + w) / 1000
    g_sdfa, _ = _grad_costs(chip, 4)
    assert g - g_sdfa == _ps(1.0)  # reading T·n_l errors takes one more bus access
    assert s.time_ps_total - sdfa.time_ps_total == g - g_sdfa
    write = {"write": 0.5 * f["cells"] * pulses * dev.write_energy_pj}  # W only
    static = {"static": _static_mw(chip) * s.time_ns_total}
    parts = [(T, f["xbar"]), (T, f["neuron"]), (1, grad), (1 / B, write), (1 / B, static)]
    _assert_energy(s, _energy_by_component(parts))
    for part in ("read", "readout", "shift_add", "neuron", "grad", "noc", "write"):
        assert s.energy_pj_per_sample[part] == sdfa.energy_pj_per_sample[part], part


# ---------------------------------------------------------------- two layers: the fill


def test_two_layer_fill_with_time_steps_on_and_off() -> None:
    chip, net = load_chip("tiny"), _net([16, 8, 4], 4)
    xb, tile = chip.crossbar, chip.tile
    slices, steps = xb.weight_bits // xb.cell_bits, net.time_steps
    x0 = _ps(chip.device.read_latency_ns + 8 * slices * xb.adc_latency_ns)  # 8 columns
    x1 = _ps(chip.device.read_latency_ns + 4 * slices * xb.adc_latency_ns)  # 4 columns
    nu = _ps(tile.neuron_latency_ns)
    assert x0 >= x1 >= nu
    act = Activity.uniform(net, 0.1)
    on = simulate(chip, net, act, batch=1, batches=1)
    off = simulate(_with(chip, time_steps=False), net, act, batch=1, batches=1)
    # Both layers sit on tile 0 (0 hops): layer 1's step t starts as layer 0's neuron step t
    # ends, (t+1)·x0 + nu, and never waits for itself (x1 ≤ x0). Off: after layer 0's T steps.
    fill_on = steps * x0 + nu + x1 + nu
    fill_off = steps * x0 + nu + steps * x1 + nu
    last = ("NEURON", 1, 0, steps - 1)
    assert _by_key(on)[last][0].end_ps == fill_on
    assert _by_key(off)[last][0].end_ps == fill_off
    # Everything after the forward is the same, shifted by the fill difference.
    assert round(1000 * (off.time_ns_per_batch - on.time_ns_per_batch)) == (steps - 1) * x1


# ---------------------------------------------------------------------- NoC, reuse


def test_noc_hops_serialisation_and_the_reuse_counter() -> None:
    # 64 → 128 → 10 on tiny: layer 0's 8 arrays fill tile 0, layer 1 and the group on tile 1.
    chip, net = load_chip("tiny"), _net([64, 128, 10], 2)
    s = simulate(chip, net, Activity.uniform(net, 0.2), batch=3, batches=2)
    assert [lm.tiles for lm in s.mapping.layers] == [(0,), (1,)]
    assert s.mapping.feedback_tiles == (1,)
    noc = chip.noc
    hops = 1  # the 1x2 mesh's two nodes are neighbours
    spikes = [op for op in s.ops if op.kind == "NOC_SPIKES"]
    bits = 128  # layer 0's spikes, bit-packed
    period = 1000 / chip.clock_mhz
    assert {op.end_ps - op.start_ps for op in spikes} == {
        _ps(hops * noc.hop_latency_ns + math.ceil(bits / noc.flit_bits) * period)
    }
    assert spikes[0].energy_pj == {"noc": bits * hops * noc.energy_pj_per_bit_hop}
    # g's prefix for layer 0 crosses back to tile 0; e stays on tile 1 (0 ns, no energy)
    g = [op for op in s.ops if op.kind == "NOC_FEEDBACK"]
    assert {op.layer for op in g} == {0}
    bits = 128 * chip.tile.value_bits  # g's 128-value prefix as on-chip fixed point
    assert g[0].energy_pj == {"noc": bits * hops * noc.energy_pj_per_bit_hop}
    errors = [op for op in s.ops if op.kind == "NOC_ERROR"]
    assert {op.end_ps - op.start_ps for op in errors} == {0}
    samples, steps = 6, net.time_steps
    assert s.counters["reuse_saved_bits"] == samples * steps * (64 + 128)
    assert s.counters["reuse_saved_pj"] == pytest.approx(
        samples * steps * 128 * hops * noc.energy_pj_per_bit_hop
    )


# ----------------------------------------------------------- dependencies, resources


def _check_resources(s: Schedule) -> None:
    by_resource: dict[str, list[Op]] = defaultdict(list)
    for op in s.ops:
        assert op.end_ps >= op.start_ps >= 0
        if op.exclusive:
            by_resource[op.resource].append(op)
    for ops in by_resource.values():
        ops.sort(key=lambda op: (op.start_ps, op.end_ps))
        for a, b in itertools.pairwise(ops):
            assert b.start_ps >= a.end_ps, (a, b)


def _after(later: Op, earlier: Op) -> None:
    assert later.start_ps >= earlier.end_ps, (earlier, later)


def _check_forward(s: Schedule, net: NetworkSpec, steps_pipelined: bool) -> None:
    ops, steps, layers = _by_key(s), net.time_steps, len(s.mapping.layers)
    for (kind, i, n, t), found in ops.items():
        if kind == "NEURON":
            _after(found[0], ops["XBAR_READ", i, n, t][0])
        if kind == "XBAR_READ" and i > 0:
            _after(found[0], ops["NOC_SPIKES", i, n, t][0])
            _after(found[0], ops["NEURON", i - 1, n, t if steps_pipelined else steps - 1][0])
    assert len([op for op in s.ops if op.kind == "NEURON"]) == layers * steps * s.batch * 2


def _check_pipesdfa(s: Schedule, net: NetworkSpec, chip: ChipSpec) -> None:
    ops, steps, last = _by_key(s), net.time_steps, len(s.mapping.layers) - 1
    group = last + 1
    for n in range(2 * s.batch):
        out = ops["NEURON", last, n, steps - 1][0]
        _after(ops["NOC_ERROR", group, n, -1][0], out)
        _after(ops["FEEDBACK", group, n, -1][0], ops["NOC_ERROR", group, n, -1][0])
        for i in range(last + 1):
            for grad in ops["GRAD", i, n, -1]:
                _after(grad, ops["NEURON", i, n, steps - 1][0])
                if i < last:
                    _after(ops["NOC_FEEDBACK", i, n, -1][0], ops["FEEDBACK", group, n, -1][0])
                    _after(grad, ops["NOC_FEEDBACK", i, n, -1][0])
        if not chip.pipeline.data and n + 1 < 2 * s.batch:
            for i in range(last + 1):
                for grad in ops["GRAD", i, n, -1]:
                    _after(ops["XBAR_READ", 0, n + 1, 0][0], grad)
    writes = [op for op in s.ops if op.kind == "WRITE"]
    for write in writes:
        batch = range(write.batch * s.batch, (write.batch + 1) * s.batch)
        layers = range(last + 1) if not chip.pipeline.batch else [write.layer]
        for n in batch:
            for i in layers:
                for grad in ops["GRAD", i, n, -1]:
                    _after(write, grad)
        if write.batch == 0:
            waiting = range(last + 1) if not chip.pipeline.batch else [write.layer]
            for i in waiting:
                _after(ops["XBAR_READ", i, s.batch, 0][0], write)


def _check_pipelayer(s: Schedule, net: NetworkSpec) -> None:
    ops, steps, last = _by_key(s), net.time_steps, len(s.mapping.layers) - 1
    for n in range(2 * s.batch):
        out = ops["NEURON", last, n, steps - 1][0]
        for i in range(last, 0, -1):
            for t in range(steps):
                err = ops["ERR", i, n, t][0]
                _after(err, out)
                if t + 1 < steps:
                    _after(err, ops["ERR", i, n, t + 1][0])  # back in time
                if i < last:
                    _after(err, ops["NOC_BACKPROP", i, n, t][0])
                    _after(ops["NOC_BACKPROP", i, n, t][0], ops["ERR", i + 1, n, t][0])
        _after(ops["GRAD", last, n, -1][0], out)
        for i in range(last):
            _after(ops["GRAD", i, n, -1][0], ops["NOC_BACKPROP", i, n, 0][0])
    grads = [op for op in s.ops if op.kind == "GRAD"]
    for write in (op for op in s.ops if op.kind == "WRITE"):
        for grad in grads:
            if grad.batch == write.batch:
                _after(write, grad)
            if grad.batch > write.batch:  # the pipeline drains: batch b+1 after every write
                _after(grad, write)
        for i in range(last + 1):
            if write.batch == 0:
                _after(ops["XBAR_READ", i, s.batch, 0][0], write)


CASES = [
    ("digits-mlp", "pipesdfa-edge", {}),
    ("digits-mlp", "pipesdfa-edge", {"time_steps": False}),
    ("digits-mlp", "pipesdfa-edge", {"data": False}),
    ("digits-mlp", "pipesdfa-edge", {"batch": False}),
    ("tiny-mlp", "tiny", {"time_steps": False, "data": False, "batch": False}),
    ("digits-mlp", "pipelayer", {}),
    ("digits-mlp", "pipelayer", {"data": False}),
    ("braille-3fc", "pipelayer", {}),
    ("braille-3fc", "pipesdfa-edge", {}),
]


@pytest.mark.parametrize(("network", "chip_name", "off"), CASES, ids=str)
def test_the_schedule_respects_dependencies_and_resources(
    network: str, chip_name: str, off: dict
) -> None:
    net, chip = load_network(network), _with(load_chip(chip_name), **off)
    s = simulate(chip, net, Activity.uniform(net, 0.1), batch=3)
    _check_resources(s)
    pipelayer = chip.dataflow == "pipelayer"
    _check_forward(s, net, chip.pipeline.time_steps or pipelayer)
    if pipelayer:
        _check_pipelayer(s, net)
    else:
        _check_pipesdfa(s, net, chip)


def test_energy_totals_equal_the_sum_over_ops() -> None:
    net = load_network("digits-mlp")
    for chip in (load_chip("pipesdfa-edge"), load_chip("pipelayer")):
        s = simulate(chip, net, Activity.uniform(net, 0.1), batch=4)
        total = dict.fromkeys(COMPONENTS, 0.0)
        for op in s.ops:
            for k, v in op.energy_pj.items():
                total[k] += v
        total["static"] = s.leakage_mw * max(op.end_ps for op in s.ops) / 1000  # no op's own
        for c in COMPONENTS:
            assert s.energy_pj_per_sample[c] == pytest.approx(total[c] / 8, rel=1e-9)
        assert s.counters["ops"] == len(s.ops)


def test_pipelayer_ignores_the_time_step_and_batch_switches() -> None:
    net, chip = load_network("digits-mlp"), load_chip("pipelayer")
    act = Activity.uniform(net, 0.1)
    base = simulate(chip, net, act, batch=4)
    other = simulate(_with(chip, time_steps=False, batch=False), net, act, batch=4)
    assert [(op.start_ps, op.end_ps) for op in other.ops] == [
        (op.start_ps, op.end_ps) for op in base.ops
    ]
    slower = simulate(_with(chip, data=False), net, act, batch=4)
    assert slower.time_ns_per_batch > base.time_ns_per_batch


@pytest.mark.parametrize("network", ["digits-mlp", "braille-3fc", "nmnist-mlp3"])
def test_two_batches_give_the_steady_state_period(network: str) -> None:
    net = load_network(network)
    for chip in fit_chips(net, load_chip("pipesdfa-edge"), load_chip("pipelayer")):
        act, batch = Activity.uniform(net, 0.1), net.training.batch
        two = simulate(chip, net, act, batch=batch, batches=2)
        four = simulate(chip, net, act, batch=batch, batches=4)
        assert two.time_ns_per_batch == four.time_ns_per_batch


def test_write_activity_sets_write_time_and_energy() -> None:
    chip, net = load_chip("tiny"), _net([16, 4], 2)
    act = Activity(
        network="t",
        input_rates=[0.1],
        output_rates=[0.1],
        write_fraction=[0.25],
        pulses_per_cell=[2.5],
    )
    s = simulate(chip, net, act, batch=1, batches=1)
    (write,) = [op for op in s.ops if op.kind == "WRITE"]
    assert write.end_ps - write.start_ps == _ps(16 * 3 * chip.device.write_latency_ns)
    cells = 16 * 4 * 2 * (chip.crossbar.weight_bits // chip.crossbar.cell_bits)
    assert write.energy_pj == {"write": 0.25 * cells * 2.5 * chip.device.write_energy_pj}
    idle = act.model_copy(update={"write_fraction": [0.0]})
    (write,) = [
        op for op in simulate(chip, net, idle, batch=1, batches=1).ops if op.kind == "WRITE"
    ]
    assert write.end_ps == write.start_ps and write.energy_pj == {}


# ------------------------------------------------------------------------- activity


def test_activity_round_trips_through_json() -> None:
    act = Activity(
        network="digits-mlp",
        input_rates=[0.2, 0.05],
        output_rates=[0.05, 0.1],
        write_fraction=[0.4, 0.6],
        pulses_per_cell=[3.0, 1.5],
        error_bit_rate=0.3,
    )
    assert Activity.model_validate_json(act.model_dump_json()) == act


def test_uniform_activity() -> None:
    net = load_network("dvsgesture-convnet")  # 7 weighted layers among 12
    act = Activity.uniform(net, 0.1)
    assert act.network == net.name
    assert act.input_rates == act.output_rates == [0.1] * 7
    assert act.write_fraction is None and act.pulses_per_cell is None
    act.check(net)


def test_bad_activity_is_refused() -> None:
    with pytest.raises(ValidationError, match="output_rates: 1 values"):
        Activity(network="x", input_rates=[0.1, 0.1], output_rates=[0.1])
    with pytest.raises(ValidationError):
        Activity(network="x", input_rates=[1.5], output_rates=[0.1])
    with pytest.raises(ValidationError):
        Activity.model_validate({"network": "x", "input_rates": [], "output_rates": [], "y": 1})
    net = load_network("digits-mlp")
    with pytest.raises(ValueError, match="3 layers, but digits-mlp has 2"):
        simulate(
            load_chip("pipesdfa-edge"),
            net,
            Activity(network="digits-mlp", input_rates=[0.1] * 3, output_rates=[0.1] * 3),
            batch=1,
        )
    with pytest.raises(ValueError, match="measured on 'other'"):
        Activity.uniform(net, 0.1).model_copy(update={"network": "other"}).check(net)


# ------------------------------------------------------------ per-op costs, replayed runs


def _times(s: Schedule) -> list[tuple]:
    return [
        (op.kind, op.layer, op.batch, op.sample, op.step, op.resource, op.start_ps, op.end_ps)
        for op in s.ops
    ]


def _record(chip: ChipSpec, net: NetworkSpec, rate: float, batch: int, samples: int) -> dict:
    """A uniform run's record as a plain dict, to edit."""
    act = Activity.uniform(net, rate)
    return OpActivity.from_activity(chip, net, act, batch=batch, samples=samples).model_dump()


def _run(chip: ChipSpec, net: NetworkSpec, record: dict) -> Schedule:
    return simulate_run(chip, net, OpActivity.model_validate(record))


REPLAY_CASES = [
    ("pipesdfa-edge", {}),
    ("pipesdfa-edge", {"time_steps": False}),
    ("pipesdfa-edge", {"data": False}),
    ("pipesdfa-edge", {"batch": False}),
    ("pipesdfa-edge", {"data": False, "batch": False}),
    ("pipelayer", {}),
    ("pipelayer", {"data": False}),
]


@pytest.mark.parametrize(("chip_name", "off"), REPLAY_CASES, ids=str)
def test_a_uniform_record_replays_simulate(chip_name: str, off: dict) -> None:
    net, chip = load_network("digits-mlp"), _with(load_chip(chip_name), **off)
    act = Activity.uniform(net, 0.15)
    fast = simulate(chip, net, act, batch=3, batches=2)
    record = OpActivity.from_activity(chip, net, act, batch=3, samples=6)
    run = simulate_run(chip, net, record)
    assert _times(run) == _times(fast)
    assert [op.energy_pj for op in run.ops] == [op.energy_pj for op in fast.ops]
    assert run.batch_end_ps == fast.batch_end_ps
    assert run.time_ps_total == fast.time_ps_total == max(op.end_ps for op in fast.ops)
    assert run.time_ns_total == fast.time_ps_total / 1000
    assert (run.time_ns_per_batch, run.time_ns_per_sample, run.cycles) == (
        fast.time_ns_per_batch,
        fast.time_ns_per_sample,
        fast.cycles,
    )
    for c in COMPONENTS:
        assert run.energy_pj_total[c] == pytest.approx(fast.energy_pj_total[c], rel=1e-12)
        assert fast.energy_pj_total[c] == pytest.approx(6 * fast.energy_pj_per_sample[c])
    assert run.counters == pytest.approx(fast.counters, rel=1e-12)
    assert (run.samples, run.batches, run.batch) == (6, 2, 3)


def test_a_smaller_last_batch_appends_to_the_full_batches() -> None:
    net, chip = load_network("digits-mlp"), load_chip("pipesdfa-edge")
    act = Activity.uniform(net, 0.15)
    fast = simulate(chip, net, act, batch=3, batches=2)
    run = simulate_run(chip, net, OpActivity.from_activity(chip, net, act, batch=3, samples=7))
    assert _times(run)[: len(fast.ops)] == _times(fast)  # the issue order only appends
    last = run.ops[len(fast.ops) :]
    assert {op.batch for op in last} == {2}
    assert {op.sample for op in last} == {6, -1}  # the one sample, then the WRITEs
    xbars = [op for op in last if op.kind == "XBAR_READ"]
    assert len(xbars) == len(run.mapping.layers) * net.time_steps
    assert run.batches == 3 and len(run.batch_end_ps) == 3
    period = run.batch_end_ps[2] - run.batch_end_ps[1]
    assert run.time_ns_per_batch == period / 1000
    assert run.time_ns_per_sample == period / 1000  # over the last batch's one sample
    assert run.energy_pj_per_sample["read"] == pytest.approx(run.energy_pj_total["read"] / 7)


def test_one_samples_input_rates_change_only_its_xbar_energy() -> None:
    chip, net = load_chip("tiny"), _net([16, 8, 4], T)
    base = _record(chip, net, 0.2, batch=2, samples=4)
    doubled = _record(chip, net, 0.2, batch=2, samples=4)
    doubled["input_rates"][2] = [[0.4] * T, [0.4] * T]
    s0, s1 = _run(chip, net, base), _run(chip, net, doubled)
    assert _times(s1) == _times(s0)
    xb, dev = chip.crossbar, chip.device
    pair_cells = 2 * (xb.weight_bits // xb.cell_bits)
    # Δread of one step = Δa · rows · columns · cells per logical column · read energy
    delta = [
        0.2 * n_in * n_out * pair_cells * dev.read_energy_pj for n_in, n_out in [(16, 8), (8, 4)]
    ]
    for a, b in zip(s0.ops, s1.ops, strict=True):
        if a.kind == "XBAR_READ" and a.sample == 2:
            assert b.energy_pj["read"] == pytest.approx(a.energy_pj["read"] + delta[a.layer])
            assert {k: v for k, v in b.energy_pj.items() if k != "read"} == {
                k: v for k, v in a.energy_pj.items() if k != "read"
            }
        else:
            assert b.energy_pj == a.energy_pj, a
    extra = T * sum(delta)
    assert s1.energy_pj_total["read"] == pytest.approx(s0.energy_pj_total["read"] + extra)
    for c in COMPONENTS:
        if c != "read":
            assert s1.energy_pj_total[c] == pytest.approx(s0.energy_pj_total[c], rel=1e-12)


def test_more_write_pulses_lengthen_the_write_and_shift_the_next_batch() -> None:
    chip, net = load_chip("tiny"), _net([16, 4], T)
    base = _record(chip, net, 0.25, batch=2, samples=4)
    more = _record(chip, net, 0.25, batch=2, samples=4)
    fraction, pulses = more["writes"][0][0]
    more["writes"][0][0] = (fraction, 4.5)
    s0, s1 = _run(chip, net, base), _run(chip, net, more)
    lat = chip.device.write_latency_ns
    # 16 rows in sequence, ⌈pulses⌉ slots each
    old, new = _ps(16 * math.ceil(pulses) * lat), _ps(16 * math.ceil(4.5) * lat)
    assert new > old
    shift = new - old
    for a, b in zip(s0.ops, s1.ops, strict=True):
        if a.kind == "WRITE" and a.batch == 0:
            assert (a.end_ps - a.start_ps, b.end_ps - b.start_ps) == (old, new)
            assert b.start_ps == a.start_ps
            cells = 16 * 4 * 2 * (chip.crossbar.weight_bits // chip.crossbar.cell_bits)
            assert b.energy_pj == {"write": fraction * cells * 4.5 * chip.device.write_energy_pj}
        elif a.batch == 0:
            assert (b.start_ps, b.end_ps) == (a.start_ps, a.end_ps)
        else:  # batch 1 waits for the longer write on the arrays
            assert (b.start_ps, b.end_ps) == (a.start_ps + shift, a.end_ps + shift), a
    assert s1.batch_end_ps == [s0.batch_end_ps[0] + shift, s0.batch_end_ps[1] + shift]
    assert s1.time_ps_total == s0.time_ps_total + shift


def test_a_higher_grad_rate_lengthens_that_samples_gradient() -> None:
    chip, net = load_chip("tiny"), _net([16, 4], T)
    tile = chip.tile
    base = _record(chip, net, RATE, batch=B, samples=B)
    busy = _record(chip, net, RATE, batch=B, samples=B)
    busy["grad_rates"][1] = [0.75]
    s0, s1 = _run(chip, net, base), _run(chip, net, busy)
    (g0, _), (g1, _) = _grad_costs(chip, 4), _grad_costs(chip, 4, 0.75)
    grads0 = [op for op in s0.ops if op.kind == "GRAD"]
    grads1 = [op for op in s1.ops if op.kind == "GRAD"]
    assert [op.end_ps - op.start_ps for op in grads0] == [g0, g0]
    assert [op.end_ps - op.start_ps for op in grads1] == [g0, g1]
    assert [op.start_ps for op in grads1] == [op.start_ps for op in grads0]
    assert grads1[1].energy_pj["grad"] == pytest.approx(
        T * 4 * 0.75 * 16 * tile.grad_energy_pj_per_mac
    )
    assert s1.batch_end_ps == [s0.batch_end_ps[0] + g1 - g0]  # the write waits for it
    assert s1.counters["macs"] == pytest.approx(T * 4 * (RATE + 0.75) * 16)


def test_cost_model_results_are_cached_and_read_only() -> None:
    net, chip = load_network("braille-3fc"), load_chip("pipesdfa-edge")
    cm = CostModel(chip, net)
    assert cm.xbar(1, 0.1) is cm.xbar(1, 0.1)
    assert cm.xbar(1, 0.1) is not cm.xbar(1, 0.2)
    assert cm.xbar(1, 0.1) == CostModel(chip, net).xbar(1, 0.1)  # by value
    assert cm.grad(1, 1, 0.3, 1) is cm.grad(1, 1, 0.3, 1)
    assert cm.grad(1, 1, 0.3, 1).resource == f"grad:t{cm.mapping.layers[1].tiles[1]}"
    assert cm.write(0, 0.5, 2.0) is cm.write(0, 0.5, 2.0)
    assert cm.neuron(2) is cm.neuron(2) and cm.feedback(0.25) is cm.feedback(0.25)
    assert cm.noc_spikes(0) is None and cm.noc_spikes(1) is not None
    assert cm.noc_feedback(2) is None and cm.noc_feedback(0) is not None
    with pytest.raises(TypeError):
        cm.xbar(0, 0.1).energy_pj["read"] = 0.0  # type: ignore[index]
    pl = CostModel(_pipelayer(chip), net)
    assert pl.noc_error() is None and pl.feedback(0.25) is None
    assert pl.err(0, 0.25) is None and pl.noc_backprop(2) is None
    assert pl.noc_backprop(1) is not None and pl.noc_backprop(1).layer == 1
    assert pl.write(0, 0.5, 2.0) == cm.write(0, 0.5, 2.0)  # one rule: the chip decides
    assert cm.write_transpose(1, 0.5, 2.0) is None  # SDFA reads no Wᵀ: no copy
    assert pl.write_transpose(0, 0.5, 2.0) is None  # layer 0 never back-propagates: no copy
    # an fc copy holds each weight once, as W does: the same cells, the same pulses
    assert pl.write_transpose(1, 0.5, 2.0).energy_pj == pl.write(1, 0.5, 2.0).energy_pj
    # simulate_run takes each op's cost from the CostModel it is given
    act = Activity.uniform(net, 0.1)
    record = OpActivity.from_activity(chip, net, act, batch=1, samples=1)
    s = simulate_run(chip, net, record, costs=cm)
    xbar = next(op for op in s.ops if op.kind == "XBAR_READ" and op.layer == 1)
    assert xbar.energy_pj is cm.xbar(1, 0.1).energy_pj
    with pytest.raises(ValueError, match="another chip or network"):
        simulate_run(_pipelayer(chip), net, record, costs=cm)


def _random_record(
    chip: ChipSpec, net: NetworkSpec, batch: int, samples: int, seed: int = 0
) -> OpActivity:
    rng = np.random.default_rng(seed)
    layers = sum(layer.type != "pool" for layer in net.layers)
    steps = net.time_steps
    rates = np.round(rng.uniform(0, 0.3, (samples, layers, steps)), 3)
    batches = -(-samples // batch)
    return OpActivity(
        network=net.name,
        batch=batch,
        samples=samples,
        input_rates=rates.tolist(),
        grad_rates=rates.mean(axis=2).tolist(),
        error_bit_rates=np.round(rng.uniform(0.1, 0.4, samples), 3).tolist(),
        writes=[
            [(float(rng.uniform(0.2, 0.8)), float(rng.uniform(0.5, 4.0))) for _ in range(layers)]
            for _ in range(batches)
        ],
    )


def _documented_order(cm: CostModel, batch: int, samples: int) -> list[tuple]:
    """PipeSDFA's issue order as the module doc states it: (kind, layer, sample, step, k)."""
    order, layers, steps = [], cm.layers, cm.net.time_steps
    group = layers
    for first in range(0, samples, batch):
        for n in range(first, min(first + batch, samples)):
            for i in range(layers):
                for t in range(steps):
                    order += [("XBAR_READ", i, n, t, 0), ("NEURON", i, n, t, 0)]
                if i + 1 < layers:
                    order += [("NOC_SPIKES", i + 1, n, t, 0) for t in range(steps)]
            if cm.mapping.feedback is not None:
                order += [("NOC_ERROR", group, n, -1, 0), ("FEEDBACK", group, n, -1, 0)]
                order += [("NOC_FEEDBACK", i, n, -1, 0) for i in range(layers - 1)]
            for i in (layers - 1, *range(layers - 1)):
                order += [("GRAD", i, n, -1, k) for k in cm.mapping.layers[i].weight_tiles]
        order += [("WRITE", i, -1, -1, 0) for i in range(layers)]
    return order


@pytest.mark.parametrize("time_steps", [True, False])
def test_the_documented_issue_order_and_waits_reproduce_every_time(time_steps: bool) -> None:
    """An independent replay from the module doc: each op starts at
    start_ps(max of the ends it waits for, its resource's free time) with its CostModel
    duration, in the documented issue order (PipeSDFA, data and batch levels on)."""
    net, chip = (
        load_network("braille-3fc"),
        _with(load_chip("pipesdfa-edge"), time_steps=time_steps),
    )
    batch, samples = 2, 5
    record = _random_record(chip, net, batch, samples)
    cm = CostModel(chip, net)
    s = simulate_run(chip, net, record, costs=cm)
    assert [lm.tiles for lm in cm.mapping.layers] == [(0,), (0, 1), (1,)]  # shared tiles
    order = _documented_order(cm, batch, samples)
    assert [(op.kind, op.layer, op.sample, op.step) for op in s.ops] == [o[:4] for o in order]
    last_layer, steps = cm.layers - 1, net.time_steps
    end: dict[tuple, int] = {}
    free: dict[str, int] = defaultdict(int)
    grads: dict[tuple[int, int], int] = defaultdict(int)  # (layer, sample) → last end
    for op, (kind, i, n, t, k) in zip(s.ops, order, strict=True):
        b = op.batch
        if kind == "XBAR_READ":
            # layer 0's input is on its tile; time steps off: layer by layer
            ready = end["NOC_SPIKES", i, n, t if time_steps else steps - 1] if i else 0
            cost = cm.xbar(i, record.input_rates[n][i][t])
        elif kind == "NEURON":
            ready, cost = end["XBAR_READ", i, n, t], cm.neuron(i)
        elif kind == "NOC_SPIKES":
            ready, cost = end["NEURON", i - 1, n, t], cm.noc_spikes(i)
        elif kind == "NOC_ERROR":
            ready, cost = end["NEURON", last_layer, n, steps - 1], cm.noc_error()
        elif kind == "FEEDBACK":
            ready, cost = end["NOC_ERROR", i, n, -1], cm.feedback(record.error_bit_rates[n])
        elif kind == "NOC_FEEDBACK":
            ready, cost = end["FEEDBACK", last_layer + 1, n, -1], cm.noc_feedback(i)
        elif kind == "GRAD":
            ready = end["NEURON", i, n, steps - 1]
            if i < last_layer:
                ready = max(ready, end["NOC_FEEDBACK", i, n, -1])
            cost = cm.grad(i, k, record.grad_rates[n][i], 1)
        else:
            last_sample = min((b + 1) * batch, samples) - 1
            ready, cost = grads[i, last_sample], cm.write(i, *record.writes[b][i])
        assert cost is not None
        start = start_ps(ready, free[cost.resource], cost.resource)
        assert (op.resource, op.start_ps, op.end_ps) == (cost.resource, start, start + cost.dur_ps)
        assert op.energy_pj == cost.energy_pj
        if cost.exclusive:
            free[cost.resource] = op.end_ps
        end[kind, i, n, t] = max(end.get((kind, i, n, t), 0), op.end_ps)
        if kind == "GRAD":
            grads[i, n] = max(grads[i, n], op.end_ps)


def test_energy_summed_per_op_and_per_core_agrees_with_the_totals() -> None:
    net, chip = load_network("braille-3fc"), load_chip("pipesdfa-edge")
    s = simulate_run(chip, net, _random_record(chip, net, batch=2, samples=5, seed=3))
    per_resource: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(COMPONENTS, 0.0))
    for op in s.ops:  # each "core" sums its own ops in issue order ...
        for c, v in op.energy_pj.items():
            per_resource[op.resource][c] += v
    for c in COMPONENTS:  # ... then the cores' totals are added (leakage: no op's)
        total = sum(per_resource[r][c] for r in sorted(per_resource))
        if c == "static":
            total = s.leakage_mw * s.time_ns_total
        assert total == pytest.approx(s.energy_pj_total[c], rel=1e-9, abs=0.0)
    assert s.counters["ops"] == len(s.ops)
    assert sum(s.energy_pj_total.values()) == pytest.approx(5 * s.total_pj_per_sample)


def test_readiness_helpers() -> None:
    assert xbar_ready_ps(None, 2, time_steps=True, gate_ps=7) == 7  # layer 0
    assert xbar_ready_ps([5, 9, 12], 1, time_steps=True) == 9
    assert xbar_ready_ps([5, 9, 12], 1, time_steps=False) == 12  # layer by layer
    assert xbar_ready_ps([5, 9, 12], 0, time_steps=True, gate_ps=8) == 8
    assert start_ps(10, 15, "xbar:0") == 15 and start_ps(20, 15, "xbar:0") == 20
    assert start_ps(10, 15, "noc:t0>t1") == 10  # the NoC is contention-free


def test_op_activity_round_trips_and_refuses_bad_records() -> None:
    chip, net = load_chip("tiny"), _net([16, 8, 4], T)
    record = _random_record(chip, net, batch=2, samples=3)
    again = OpActivity.model_validate_json(record.model_dump_json())
    assert again == record
    assert isinstance(again.writes[1][0], tuple)
    good = record.model_dump()
    with pytest.raises(ValidationError, match="grad_rates: 2 samples, not 3"):
        OpActivity.model_validate(good | {"grad_rates": good["grad_rates"][:2]})
    with pytest.raises(ValidationError, match="writes: 1 batches, not 2"):
        OpActivity.model_validate(good | {"writes": good["writes"][:1]})
    with pytest.raises(ValidationError, match=r"grad_rates\[1\]: 1 layers, not 2"):
        OpActivity.model_validate(good | {"grad_rates": [[0.1, 0.1], [0.1], [0.1, 0.1]]})
    with pytest.raises(ValidationError):
        OpActivity.model_validate(good | {"error_bit_rates": [0.1, 1.5, 0.1]})
    with pytest.raises(ValidationError):
        OpActivity.model_validate(good | {"extra": 1})
    with pytest.raises(ValueError, match="3 steps, not 4"):
        simulate_run(chip, _net([16, 8, 4], 4), record)
    with pytest.raises(ValueError, match="2 layers, but t has 1"):
        simulate_run(chip, _net([16, 4], T), record)
    with pytest.raises(ValueError, match="of 'other'"):
        simulate_run(chip, net, record.model_copy(update={"network": "other"}))
