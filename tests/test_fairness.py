"""Fairness (docs/cost-model.md#fairness): one cost rule per physical operation for both
dataflows, every
hardware choice a chip field that moves the cost in its documented direction on both
dataflows alike, and no chip field that changes nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from pydantic import BaseModel

from emulator.cost import CostModel, OpCost, Schedule, simulate
from emulator.learning import init_weights
from emulator.physics.blocks import ChipFeedback, ChipLayer
from emulator.physics.growth import fit_chips
from emulator.physics.mapping import MappingError
from emulator.spec import (
    ChipSpec,
    NetworkSpec,
    SweepError,
    load_chip,
    load_network,
    with_fields,
)

SHARED = ("XBAR_READ", "NEURON", "NOC_SPIKES", "WRITE")
"""Ops both dataflows issue with the same arguments (GRAD: the same but for its error)."""


def _json(op: OpCost) -> str:
    return json.dumps(
        [op.kind, op.layer, op.resource, op.dur_ps, dict(op.energy_pj), dict(op.counters)]
    )


def _pair(network: str, mesh: int | None = None) -> tuple[NetworkSpec, ChipSpec, ChipSpec]:
    """The network on the edge chip and on the edge chip with PipeLayer's dataflow, grown
    alike (:func:`fit_chips`), or both on a ``mesh`` × ``mesh`` mesh of edge tiles."""
    net = load_network(network)
    chips = load_chip("pipesdfa-edge"), load_chip("pipelayer-edge")
    if mesh is None:
        sdfa, bptt = fit_chips(net, *chips)
    else:
        sdfa, bptt = (
            with_fields(chip, {"tiles": mesh * mesh, "noc.mesh": f"{mesh}x{mesh}"})
            for chip in chips
        )
    return net, sdfa, bptt


def _activity(net: NetworkSpec, rate: float = 0.1):
    from emulator.cost import Activity

    return Activity.uniform(net, rate)


# A conv layer spends its chip's spare PE cores on faster windows, and the feedback group and
# the transposed copies leave the two chips unequal spares on fit_chips' mesh (11×11 here);
# on 24×24 both have room for every conv layer's fastest window, so their W sit alike.
@pytest.mark.parametrize(("network", "mesh"), [("nmnist-mlp3", None), ("dvsgesture-convnet", 24)])
def test_chips_differing_only_in_dataflow_cost_every_shared_op_alike(
    network: str, mesh: int | None
) -> None:
    net, sdfa, bptt = _pair(network, mesh)
    a, b = CostModel(sdfa, net), CostModel(bptt, net)
    # W sits alike (BPTT's transposed copies come after every layer)
    assert [(lm.pes, lm.tiles) for lm in a.mapping.layers] == [
        (lm.pes, lm.tiles) for lm in b.mapping.layers
    ]
    # the same rule at the same arguments gives the same cost, to the last bit of its JSON
    # (GRAD where the home tile's buffer spills its errors alike: BPTT keeps T times more)
    steps = net.time_steps
    for i, lm in enumerate(a.mapping.layers):
        errors = (lm.tiles[0], "errors")
        for rate in (0.02, 0.1, 0.4):
            assert _json(a.xbar(i, rate)) == _json(b.xbar(i, rate))
            if a.spill.get(errors) != b.spill.get(errors):
                continue
            for k in a.grad_tiles(i):
                for error_steps in (1, steps):
                    assert _json(a.grad(i, k, rate, error_steps)) == _json(
                        b.grad(i, k, rate, error_steps)
                    )
        assert _json(a.neuron(i)) == _json(b.neuron(i))
        assert a.noc_spikes(i) == b.noc_spikes(i)
        assert _json(a.write(i, 0.5, 3.0)) == _json(b.write(i, 0.5, 3.0))
    # the forward's buffer classes spill alike; only the errors a dataflow keeps differ
    assert {k: v for k, v in a.spill.items() if k[1] != "errors"} == {
        k: v for k, v in b.spill.items() if k[1] != "errors"
    }
    # in the schedules: every shared op of every sample and step costs the same
    sa = simulate(sdfa, net, _activity(net), batch=4)
    sb = simulate(bptt, net, _activity(net), batch=4)
    # the same silicon: the same area and leakage; static energy differs by the time alone
    assert sa.area_mm2 == sb.area_mm2 and sa.leakage_mw == sb.leakage_mw
    for s in (sa, sb):
        assert s.energy_pj_total["static"] == pytest.approx(s.leakage_mw * s.time_ns_total)
    for kind in SHARED:
        ops_a = [(o.layer, o.sample, o.step, o.end_ps - o.start_ps, o.energy_pj) for o in sa.ops]
        ops_b = [(o.layer, o.sample, o.step, o.end_ps - o.start_ps, o.energy_pj) for o in sb.ops]
        kinds_a = [o.kind for o in sa.ops]
        kinds_b = [o.kind for o in sb.ops]
        mine = [x for x, k in zip(ops_a, kinds_a, strict=True) if k == kind]
        theirs = [x for x, k in zip(ops_b, kinds_b, strict=True) if k == kind]
        assert mine == theirs, kind


def test_the_weight_gradient_differs_only_by_the_error_it_reads() -> None:
    """PipeLayer's ΔW and PipeSDFA's local gradient compute the same Σ_t δ[t]·s[t−1]ᵀ: on
    the same chip their GRADs differ only by the buffered error, one value per output for
    SDFA (g is the same at every step) and one per step for BPTT, written and read once
    (in the tile buffer, or its spilled share in the global buffer over the NoC)."""
    net, sdfa, bptt = _pair("nmnist-mlp3")
    sa = simulate(sdfa, net, _activity(net), batch=4)
    sb = simulate(bptt, net, _activity(net), batch=4)
    tile, steps = sdfa.tile, net.time_steps
    sent = [1000, 1000, 10]  # the errors of each layer's outputs
    grads_a = _energy_by_layer(sa, "GRAD")
    grads_b = _energy_by_layer(sb, "GRAD")
    for layer, outputs in enumerate(sent):
        a, b = grads_a[layer], grads_b[layer]
        moved = ("buffer", "spill")
        assert {k: v for k, v in a.items() if k not in moved} == {
            k: v for k, v in b.items() if k not in moved
        }
        extra = 2 * (steps - 1) * outputs * tile.value_bits * tile.buffer_energy_pj_per_bit
        assert b["buffer"] - a["buffer"] == pytest.approx(8 * extra, rel=1e-12)  # 8 samples
        assert b.get("spill", 0.0) >= a.get("spill", 0.0)
    spilled = {k for k in CostModel(bptt, net).spill}
    assert spilled and all(cls == "errors" for _, cls in spilled)


def _energy_by_layer(s: Schedule, kind: str) -> dict[int, dict[str, float]]:
    out: dict[int, dict[str, float]] = {}
    for op in s.ops:
        if op.kind == kind:
            row = out.setdefault(op.layer, {})
            for c, v in op.energy_pj.items():
                row[c] = row.get(c, 0.0) + v
    return out


# --------------------------------------------------------------- fields and directions


def _busy(kind: str) -> Callable[[Schedule], float]:
    def metric(s: Schedule) -> float:
        return sum(op.end_ps - op.start_ps for op in s.ops if op.kind == kind)

    metric.__name__ = f"{kind} time"
    return metric


def _energy(*components: str) -> Callable[[Schedule], float]:
    def metric(s: Schedule) -> float:
        return sum(s.energy_pj_per_sample[c] for c in components)

    metric.__name__ = "+".join(components) + " energy"
    return metric


def _period(s: Schedule) -> float:
    return s.time_ns_per_batch


# field, low, high, network, metric, direction per dataflow (pipesdfa, pipelayer): +1 the
# metric rises from low to high, -1 it falls, 0 it stays; base: extra fields of both chips
FIELDS: list[tuple[str, Any, Any, str, Callable[[Schedule], float], tuple[int, int], dict]] = [
    ("crossbar.converters", 1, 16, "digits-mlp", _busy("XBAR_READ"), (-1, -1), {}),
    ("crossbar.converters", 1, 16, "digits-mlp", _energy("readout", "read"), (0, 0), {}),
    (
        "crossbar.serial_readout",
        "per_plane",
        "integrated",
        "braille-3fc",
        _energy("feedback", "error_backprop"),
        (-1, -1),
        {"crossbar.readout": "if_counter"},
    ),
    (
        "crossbar.error_bits",
        4,
        12,
        "braille-3fc",
        _energy("feedback", "error_backprop"),
        (1, 1),
        {},
    ),
    ("crossbar.transpose", "copy", "bidirectional", "digits-mlp", _energy("write"), (0, -1), {}),
    ("crossbar.update", "pulse", "read_merge_write", "digits-mlp", _energy("write"), (1, 1), {}),
    ("crossbar.update", "pulse", "read_merge_write", "digits-mlp", _busy("WRITE"), (1, 1), {}),
    ("tile.membrane_bits", 8, 32, "digits-mlp", _energy("buffer"), (1, 1), {}),
    ("tile.value_bits", 8, 32, "braille-3fc", _energy("noc"), (1, 1), {}),
    ("tile.grad_datapath", "digital", "crossbar", "digits-mlp", _energy("grad"), (1, 1), {}),
    ("tile.buffer_kb", 0.25, 64.0, "digits-mlp", _energy("spill"), (-1, -1), {}),
    ("tile.buffer_kb", 0.25, 64.0, "digits-mlp", _period, (-1, -1), {}),
    ("tile.buffer_bus_bits", 32, 1024, "digits-mlp", _busy("NEURON"), (-1, -1), {}),
    ("tile.buffer_latency_ns", 0.5, 4.0, "digits-mlp", _busy("NEURON"), (1, 1), {}),
    ("mapping.conv_replication", 1, 4, "tiny-conv", _busy("XBAR_READ"), (-1, -1), {}),
    ("mapping.conv_replication", 1, 4, "tiny-conv", _energy("write"), (1, 1), {}),
    ("mapping.conv_replication", 1, 4, "digits-mlp", _period, (0, 0), {}),  # no conv layer
    (
        "activity.error_bit_rate",
        0.1,
        0.5,
        "braille-3fc",
        _energy("feedback", "error_backprop"),
        (1, 1),
        {},
    ),
    ("activity.write_fraction", 0.1, 0.9, "digits-mlp", _energy("write"), (1, 1), {}),
    ("activity.pulses_per_cell", 1.0, 5.0, "digits-mlp", _busy("WRITE"), (1, 1), {}),
    ("activity.pulses_per_cell", 1.0, 5.0, "digits-mlp", _energy("write"), (1, 1), {}),
]


@pytest.mark.parametrize(
    ("field", "low", "high", "network", "metric", "directions", "base"),
    FIELDS,
    ids=[f"{f[0]}-{f[4].__name__}-{f[3]}" for f in FIELDS],
)
def test_a_chip_field_moves_its_cost_the_documented_way_on_both_dataflows(
    field: str,
    low: Any,
    high: Any,
    network: str,
    metric: Callable[[Schedule], float],
    directions: tuple[int, int],
    base: dict,
) -> None:
    net = load_network(network)
    for dataflow, direction in zip(("pipesdfa", "pipelayer"), directions, strict=True):
        chip = with_fields(load_chip("pipesdfa-edge"), {"dataflow": dataflow, **base})
        at = [
            metric(simulate(with_fields(chip, {field: v}), net, _activity(net), batch=4))
            for v in (low, high)
        ]
        assert np.sign(at[1] - at[0]) == direction, (dataflow, at)


def test_the_weight_range_field_sets_the_layer_lsb() -> None:
    chip = load_chip("pipesdfa-edge")
    w = init_weights(load_network("digits-mlp"), 0)[0]
    lsbs = [
        ChipLayer(with_fields(chip, {"crossbar.weight_range_over_init": r}), w, layer=0, seed=0).lsb
        for r in (2.0, 4.0, 8.0)
    ]
    code_max = 2**chip.crossbar.weight_bits - 1
    assert lsbs == [pytest.approx(r * np.abs(w).max() / code_max) for r in (2.0, 4.0, 8.0)]


# ----------------------------------------------------------------------- every field live

NOT_PERTURBED = {"name", "description", "dataflow"}  # free text; both dataflows are observed

DAC_FIELDS = (
    "crossbar.dac_energy_pj",
    "area.dac_um2",
    "area.sample_hold_um2",
    "leakage.dac_mw",
    "leakage.sample_hold_mw",
)
"""Fields of a multi-bit input's DACs and sample-and-holds (``crossbar.input_bits`` > 1)."""

CONDITIONAL = {
    ("pipelayer", "tile.grad_energy_pj_per_mac"): "the crossbar datapath runs no MACs",
    ("pipelayer", "tile.grad_macs_per_ns"): "the crossbar datapath runs no MACs",
    ("pipelayer", "crossbar.readout"): "its integrated errors need an I&F counter",
    ("pipesdfa-edge", "crossbar.serial_readout"): "an ADC cannot integrate (pipelayer moves it)",
    ("pipesdfa-edge", "area.if_counter_um2"): "an ADC chip has no counter (pipelayer moves it)",
    ("pipesdfa-edge", "leakage.if_counter_mw"): "an ADC chip has no counter (pipelayer moves it)",
    ("pipelayer", "area.adc_um2"): "a counter chip has no ADC (pipesdfa-edge moves it)",
    ("pipelayer", "leakage.adc_mw"): "a counter chip has no ADC (pipesdfa-edge moves it)",
    **{
        (chip, "crossbar.weight_encoding"): "offset is for inference chips (the test below)"
        for chip in ("pipesdfa-edge", "pipelayer")
    },
    **{
        (chip, path): "spikes need no DAC (input_bits 1; the DAC test below moves it)"
        for chip in ("pipesdfa-edge", "pipelayer")
        for path in DAC_FIELDS
    },
}
"""(chip, field) where the field cannot move anything on that chip, and why; each of them
moves on the other chip (the other case of the test below)."""

NETWORKS = ("digits-mlp", "tiny-conv", "braille-3fc")  # fc, conv + pool, across two tiles


def _observe(chip: ChipSpec) -> list[Any]:
    """What a chip field can change: the analytic model on both dataflows (an fc, a conv
    and a two-tile network) and the crossbar numerics (a layer's reads and update, the
    feedback group's read)."""
    out: list[Any] = []
    for network in NETWORKS:
        net = load_network(network)
        for dataflow in ("pipesdfa", "pipelayer"):
            try:
                s = simulate(
                    chip.model_copy(update={"dataflow": dataflow}),
                    net,
                    _activity(net),
                    batch=4,
                    keep_ops=False,
                )
                out.append(json.dumps(s.summary(), sort_keys=True))
            except (MappingError, ValueError) as err:
                out.append(str(err))
    w = init_weights(load_network("digits-mlp"), 0)[0]
    layer = ChipLayer(chip, w, layer=0, seed=0)
    rng = np.random.default_rng(0)
    x = (rng.random((8, w.shape[1])) < 0.5).astype(float)
    y = layer.matmul(x[None], (0,))
    layer.apply_update(rng.normal(0.0, 0.05, w.shape), (1,))
    g = ChipFeedback(chip, 10, {0: 128}, seed=0, group=2).project(rng.normal(size=(4, 10)), 0, (0,))
    out.append(np.concatenate([y.ravel(), layer.weights().ravel(), g.ravel()]).tobytes())
    return out


def _leaves(model: BaseModel, prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            out += _leaves(value, f"{prefix}{name}.")
        else:
            out.append((prefix + name, value))
    return out


def _other_values(chip: ChipSpec, path: str, value: Any) -> list[Any]:
    """Other values to try, first the ones most likely to matter."""
    options = type(chip).model_json_schema()  # enum choices from the schema
    leaf = path.split(".")[-1]
    for definition in options.get("$defs", {}).values():
        enum = definition.get("properties", {}).get(leaf, {}).get("enum")
        if enum:
            return [v for v in enum if v != value]
    if path == "noc.mesh":
        return ["1x1", "3x3"]
    if path == "noc.dead_links":
        return [["0,0-0,1"]]
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [v for v in (value * 2, value + 1, value // 2, value - 1, 1) if v >= 0]
    if isinstance(value, float):
        return [value * 2, value / 2, value / 1000, value + 1, 0.5]
    if value is None:
        return [3.0]
    return []


@pytest.mark.parametrize("chip_name", ["pipesdfa-edge", "pipelayer"])
def test_every_chip_field_changes_a_result(chip_name: str) -> None:
    """A field in a chip file changes the result, or it does not exist (the developers'
    guide): each leaf field, set to another valid value, moves the analytic model or the
    numerics (stuck-cell seeds are tried with stuck cells present)."""
    chip = with_fields(load_chip(chip_name), {"device.faults.stuck_at_gmin": 0.01})
    seen = _observe(chip)
    dead = []
    for path, value in _leaves(chip):
        if path in NOT_PERTURBED or (chip_name, path) in CONDITIONAL:
            continue
        moved = False
        for other in _other_values(chip, path, value):
            try:
                changed = with_fields(chip, {path: other})
            except SweepError:
                continue
            if _observe(changed) != seen:
                moved = True
                break
        if not moved:
            dead.append(path)
    assert dead == [], dead
    for (_name, path), _ in CONDITIONAL.items():  # each moves on the other shipped chip
        assert any(path == p for p, _ in _leaves(chip)), path


@pytest.mark.parametrize("chip_name", ["pipesdfa-edge", "pipelayer"])
def test_a_multibit_input_makes_the_dac_fields_live(chip_name: str) -> None:
    """With ``crossbar.input_bits`` > 1 every DAC field moves a result (the sample-and-hold's
    where the planes are read out one by one), and the reads take one plane per bit: time
    and energy grow."""
    chip = with_fields(load_chip(chip_name), {"crossbar.input_bits": 8})
    seen = _observe(chip)
    held = chip.crossbar.serial_readout == "per_plane"  # an integrating counter holds none
    for path in DAC_FIELDS if held else [p for p in DAC_FIELDS if "sample_hold" not in p]:
        value = dict(_leaves(chip))[path]
        assert _observe(with_fields(chip, {path: value * 2 + 1})) != seen, path
    net = load_network("digits-mlp")
    one, eight = (
        simulate(with_fields(chip, {"crossbar.input_bits": b}), net, _activity(net), batch=4)
        for b in (1, 8)
    )
    assert one.energy_pj_per_sample["dac"] == 0 < eight.energy_pj_per_sample["dac"]
    assert eight.time_ns_per_sample > one.time_ns_per_sample


def test_the_offset_encoding_halves_an_inference_chip_s_columns_and_cell_reads() -> None:
    """ISAAC's biased encoding: one cell per slice instead of a pair, so an array holds twice
    the weights per row, a layer takes half the arrays and half the cell reads, and the
    conversions stay (one per slice of each weight); the trained dataflows refuse it, and
    the crossbar model, which holds pairs, says so."""
    isaac = load_chip("isaac")
    pairs = with_fields(isaac, {"crossbar.weight_encoding": "differential"})
    assert isaac.crossbar.weights_per_row == 2 * pairs.crossbar.weights_per_row == 16
    net = load_network("digits-mlp")
    offset, pair = (simulate(c, net, _activity(net), batch=4) for c in (isaac, pairs))
    for a, b in zip(offset.mapping.layers, pair.mapping.layers, strict=True):
        assert 2 * a.arrays == b.arrays
    assert offset.counters["conversions"] == pair.counters["conversions"]
    read = offset.energy_pj_per_sample["read"], pair.energy_pj_per_sample["read"]
    assert read[0] == pytest.approx(read[1] / 2)
    with pytest.raises(SweepError, match="inference"):
        with_fields(load_chip("pipesdfa-edge"), {"crossbar.weight_encoding": "offset"})
    with pytest.raises(ValueError, match="differential pairs"):
        ChipLayer(isaac, init_weights(net, 0)[0], layer=0, seed=0)


AREA_AND_LEAKAGE = [
    ("area.array_um2", "arrays"),
    ("area.shift_add_um2", "shift_adds"),
    ("area.neuron_unit_um2", "neuron_units"),
    ("area.grad_um2_per_lane", "grad_lanes"),
    ("area.buffer_um2_per_kb", "buffer_kb"),
    ("area.router_um2", "routers"),
    ("leakage.neuron_unit_mw", None),
    ("leakage.grad_mw_per_lane", None),
    ("leakage.buffer_mw_per_kb", None),
    ("leakage.router_mw", None),
    ("leakage.shift_add_mw", None),
    ("leakage.array_mw", None),
    ("area.pe_registers_um2", "pe_registers"),
    ("area.bus_um2", "buses"),
    ("area.io_um2", "io"),
    ("leakage.pe_registers_mw", None),
    ("leakage.bus_mw", None),
    ("leakage.io_mw", None),
]


@pytest.mark.parametrize(("path", "part"), AREA_AND_LEAKAGE)
def test_area_and_leakage_move_their_figure_up_on_both_dataflows(path: str, part) -> None:
    """More area per unit: that part's area grows by exactly the units counted; more leakage
    per unit: the static energy grows, and nothing else does; on both dataflows alike."""
    from emulator.cost.area import inventory

    net = load_network("braille-3fc")
    for name in ("pipesdfa-edge", "pipelayer"):
        chip = load_chip(name)
        value = dict(_leaves(chip))[path]
        more = with_fields(chip, {path: value + 1.0})
        a, b = (simulate(c, net, _activity(net), batch=4, keep_ops=False) for c in (chip, more))
        if part is not None:
            count = inventory(chip, net, a.mapping)[part]
            grown = b.area_mm2[part] - a.area_mm2[part]
            assert grown == pytest.approx(count / 1e6) and count > 0, (name, path)
        else:
            static = b.energy_pj_total["static"] - a.energy_pj_total["static"]
            assert static > 0 and b.leakage_mw > a.leakage_mw, (name, path)
            others = {k: v for k, v in a.energy_pj_total.items() if k != "static"}
            assert others == {k: v for k, v in b.energy_pj_total.items() if k != "static"}


def test_static_energy_is_leakage_times_time_and_gating_powers_off_idle_tiles() -> None:
    """Static energy = powered leakage × the segment's time (closed form), for both chips;
    gating the unused tiles leaves only the used tiles' parts leaking."""
    from emulator.cost.area import leakage_mw

    net = load_network("digits-mlp")  # one tile of sixteen
    for name in ("pipesdfa-edge", "pipelayer"):
        chip = load_chip(name)
        s = simulate(chip, net, _activity(net), batch=4, keep_ops=False)
        assert s.energy_pj_total["static"] == pytest.approx(s.leakage_mw * s.time_ns_total)
        gated = with_fields(chip, {"leakage.gating": "unused_tiles"})
        g = simulate(gated, net, _activity(net), batch=4, keep_ops=False)
        per_tile = sum(leakage_mw(chip, net, s.mapping).values()) / chip.tiles
        assert g.leakage_mw < s.leakage_mw
        assert s.mapping.tiles_used < chip.tiles
        if chip.tile.grad_datapath == "digital":  # no off-mesh arrays: exactly per tile
            assert g.leakage_mw == pytest.approx(per_tile * s.mapping.tiles_used)


def test_iso_area_puts_both_chips_on_equal_silicon() -> None:
    """compare --iso-area: both hold the network, the smaller chip's mesh is the largest
    whose area does not pass the other's (one more row and column would)."""
    from emulator.compare import chip_area_mm2, iso_area
    from emulator.physics.growth import fit_chips, grown_chip

    net = load_network("dvsgesture-convnet")
    edge, published = load_chip("pipesdfa-edge"), load_chip("pipelayer")
    a, b = iso_area(net, edge, published)
    fa, fb = fit_chips(net, edge, published)
    assert b == fb and a.noc.rows > fa.noc.rows  # PipeLayer's counters make it the larger
    area_a, area_b = chip_area_mm2(a, net), chip_area_mm2(b, net)
    assert area_a <= area_b < chip_area_mm2(grown_chip(edge, a.noc.rows + 1), net)
