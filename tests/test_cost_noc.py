"""The NoC as the cost model sees it: XY routing and detours, the transfer formulas, the
emulated bits of each message kind (emulator/cost/noc.py)."""

from __future__ import annotations

import itertools

import pytest

from emulator.cost.noc import (
    KINDS,
    RouteError,
    hops,
    node_index,
    node_position,
    route,
    transfer_energy_pj,
    transfer_ns,
    value_bits,
    xy_route,
)
from emulator.spec import ChipSpec


def make_chip(**noc) -> ChipSpec:
    """A chip on a 4x4 mesh, 500 MHz clock (2 ns per flit), 256-bit flits, 1.5 ns per hop."""
    base = {"mesh": "4x4", "flit_bits": 256, "hop_latency_ns": 1.5, "energy_pj_per_bit_hop": 0.081}
    return ChipSpec.model_validate(
        {"name": "t", "dataflow": "pipesdfa", "clock_mhz": 500.0, "noc": {**base, **noc}}
    )


def test_value_bits_follow_the_chip_value_width() -> None:
    chip = make_chip()
    wide = chip.model_copy(update={"tile": chip.tile.model_copy(update={"value_bits": 24})})
    widths = {kind: value_bits(chip, kind) for kind in KINDS}
    assert widths == {
        "spikes": 1,
        "psum": 16,
        "error": 16,
        "feedback": 16,
        "update": 16,
        "control": 0,
    }
    assert {kind: value_bits(wide, kind) for kind in KINDS} == widths | {
        "psum": 24,
        "error": 24,
        "feedback": 24,
        "update": 24,
    }
    with pytest.raises(ValueError, match="kind"):
        value_bits(chip, "gossip")


# ----------------------------------------------------------------------------- routing


def test_xy_route_hand_examples_4x4() -> None:
    # Positions are (row, col); X (columns) first, then Y (rows).
    assert xy_route((0, 0), (2, 3)) == [
        ((0, 0), (0, 1)),
        ((0, 1), (0, 2)),
        ((0, 2), (0, 3)),
        ((0, 3), (1, 3)),
        ((1, 3), (2, 3)),
    ]
    assert xy_route((3, 3), (1, 0)) == [
        ((3, 3), (3, 2)),
        ((3, 2), (3, 1)),
        ((3, 1), (3, 0)),
        ((3, 0), (2, 0)),
        ((2, 0), (1, 0)),
    ]
    assert xy_route((2, 1), (0, 1)) == [((2, 1), (1, 1)), ((1, 1), (0, 1))]
    assert xy_route((1, 1), (1, 1)) == []


def test_hops_is_manhattan_and_route_length() -> None:
    assert hops((0, 0), (3, 3)) == 6 and hops((3, 0), (0, 2)) == 5 and hops((2, 2), (2, 2)) == 0
    for a in itertools.product(range(4), repeat=2):
        for b in itertools.product(range(4), repeat=2):
            route = xy_route(a, b)
            assert len(route) == hops(a, b)
            assert all(hops(u, v) == 1 for u, v in route)
            assert (route[0][0], route[-1][1]) == (a, b) if route else a == b


def test_node_index() -> None:
    assert node_index((2, 3), 4) == 11 and node_position(11, 4) == (2, 3)


def test_transfer_closed_forms() -> None:
    chip = make_chip()  # 1.5 ns per hop, 256-bit flits, 2 ns per cycle, 0.081 pJ per bit-hop
    assert transfer_ns(chip, 600, 3) == pytest.approx(3 * 1.5 + 3 * 2.0)
    assert transfer_ns(chip, 256, 1) == pytest.approx(1.5 + 2.0)
    assert transfer_ns(chip, 257, 2) == pytest.approx(3.0 + 4.0)
    assert transfer_ns(chip, 0, 4) == pytest.approx(6.0)  # no bits: no serialisation
    assert transfer_ns(chip, 600, 0) == 0.0  # same tile: no NoC
    assert transfer_energy_pj(chip, 600, 3) == pytest.approx(600 * 3 * 0.081)
    assert transfer_energy_pj(chip, 600, 0) == 0.0


# ----------------------------------------------------------------------------- link model

SENDS = [((0, 0), (1, 2), 100), ((0, 1), (1, 1), 50), ((1, 2), (0, 0), 10), ((2, 2), (2, 2), 7)]


def _mesh(mesh: str, dead: list[str]) -> ChipSpec:
    return ChipSpec.model_validate(
        {"name": "m", "dataflow": "pipesdfa", "tiles": 1, "noc": {"mesh": mesh, "dead_links": dead}}
    )


def test_routes_detour_around_dead_links() -> None:
    clean = _mesh("3x3", [])
    assert route((0, 0), (2, 2), clean) == xy_route((0, 0), (2, 2))
    # XY goes along row 0 first; with (0,0)-(0,1) dead, YX (down column 0, then along row 2).
    chip = _mesh("3x3", ["0,0-0,1"])
    assert route((0, 0), (2, 2), chip) == [
        ((0, 0), (1, 0)),
        ((1, 0), (2, 0)),
        ((2, 0), (2, 1)),
        ((2, 1), (2, 2)),
    ]
    # Neighbours cut directly (both directions): the shortest detour is 3 hops.
    assert len(route((0, 1), (0, 0), chip)) == 3
    walled = _mesh("3x3", ["0,0-0,1", "0,0-1,0"])
    with pytest.raises(RouteError, match=r"no route from node \(0, 0\)"):
        route((0, 0), (2, 2), walled)


def test_dead_links_must_join_neighbours() -> None:
    with pytest.raises(ValueError, match=r"dead_links\.0: '0,0-1,1' is not a link"):
        _mesh("2x2", ["0,0-1,1"])


def test_a_detour_costs_its_extra_hops() -> None:
    from emulator.cost import CostModel
    from emulator.spec import load_chip, load_network

    tiny = load_chip("tiny")
    wide = tiny.model_copy(update={"noc": tiny.noc.model_copy(update={"mesh": "2x2"})})
    cut = wide.model_copy(update={"noc": wide.noc.model_copy(update={"dead_links": ["0,0-0,1"]})})
    net = load_network("digits-mlp")  # layer 1 on tile 0 at (0,0), layer 2 on tile 1 at (0,1)
    one, three = CostModel(wide, net).noc_spikes(1), CostModel(cut, net).noc_spikes(1)
    assert three.dur_ps - one.dur_ps == round(2 * wide.noc.hop_latency_ns * 1000)
