"""The physical cost rules (emulator/cost/physical.py), each against its closed form derived
here from the chip file's fields."""

from __future__ import annotations

import math

import numpy as np
import pytest

from emulator.cost.physical import (
    Arrays,
    Cost,
    Spill,
    array_read,
    buffer_access,
    error_planes,
    grad_macs,
    has_sample_hold,
    neuron_steps,
    readout_ns,
    transfer,
    write_rows,
)
from emulator.physics.formed import FormedCrossbar
from emulator.spec import ChipSpec, load_chip, with_fields

# 300 inputs × 40 logical columns of 2-bit cells, 8-bit weights: 4 slices, a pair each
ARRAYS = Arrays(
    rows=300,
    columns=40,
    row_blocks=3,
    array_rows=128,
    array_columns=16,
    count=9,
    cells_per_column=8,
    slices=4,
)


def _edge(**fields: object) -> ChipSpec:
    return with_fields(load_chip("pipesdfa-edge"), dict(fields))


def test_a_binary_read_by_hand() -> None:
    chip = _edge()
    dev, xb, tile = chip.device, chip.crossbar, chip.tile
    cost = array_read(chip, ARRAYS, 0.25)
    per_column = 4  # an ADC converts each slice's pair difference
    assert cost.ns == dev.read_latency_ns + 16 * per_column * xb.adc_latency_ns
    assert cost.energy_pj == {
        "read": 0.25 * 300 * 40 * 8 * dev.read_energy_pj,
        "readout": 3 * 40 * per_column * xb.adc_energy_pj,
        "shift_add": 40 * (3 * per_column - 1) * tile.shift_add_energy_pj,
    }
    assert cost.counters == {"array_reads": 9, "conversions": 3 * 40 * per_column}


@pytest.mark.parametrize(("converters", "rounds"), [(1, 64), (7, 10), (64, 1), (128, 1)])
def test_converters_share_an_array_s_readouts(converters: int, rounds: int) -> None:
    chip = _edge(**{"crossbar.converters": converters})
    assert readout_ns(chip, ARRAYS) == rounds * chip.crossbar.adc_latency_ns
    one = array_read(_edge(), ARRAYS, 0.25)
    assert array_read(chip, ARRAYS, 0.25).energy_pj == one.energy_pj  # the same conversions


def test_an_i_and_f_counter_reads_each_physical_column() -> None:
    chip = _edge(**{"crossbar.readout": "if_counter"})
    cost = array_read(chip, ARRAYS, 0.25)
    assert cost.counters["conversions"] == 3 * 40 * 8
    assert cost.ns == chip.device.read_latency_ns + 16 * 8 * chip.crossbar.adc_latency_ns


@pytest.mark.parametrize("readout", ["per_plane", "integrated"])
def test_a_bit_serial_read_per_plane_or_integrated(readout: str) -> None:
    chip = _edge(**{"crossbar.readout": "if_counter", "crossbar.serial_readout": readout})
    dev, xb, tile = chip.device, chip.crossbar, chip.tile
    planes = error_planes(chip)
    assert planes == 2 * (xb.error_bits - 1) == 14
    rounds = planes if readout == "per_plane" else 1
    cost = array_read(chip, ARRAYS, 0.25, planes)
    assert cost.ns == planes * dev.read_latency_ns + rounds * 16 * 8 * xb.adc_latency_ns
    assert cost.energy_pj["read"] == planes * 0.25 * 300 * 40 * 8 * dev.read_energy_pj
    assert cost.energy_pj["readout"] == rounds * 3 * 40 * 8 * xb.adc_energy_pj
    assert cost.energy_pj["shift_add"] == pytest.approx(
        40 * (rounds * 3 * 8 - 1) * tile.shift_add_energy_pj
    )
    assert cost.counters["array_reads"] == planes * 9


def test_sample_and_holds_overlap_each_pulse_with_the_previous_readout() -> None:
    """Multi-bit inputs read out plane by plane hold each plane's columns while the next is
    pulsed: a two-stage pipeline (first pulse, then the longer stage per later plane, then
    the last readout); spikes' bit-serial errors have no hold and alternate; an integrating
    counter needs none."""
    multibit = _edge(**{"crossbar.input_bits": 16})
    pulse, rnd = multibit.device.read_latency_ns, readout_ns(multibit, ARRAYS)
    assert has_sample_hold(multibit) and rnd > pulse
    assert array_read(multibit, ARRAYS, 0.25, 16).ns == pulse + 15 * rnd + rnd
    slow = with_fields(multibit, {"device.read_latency_ns": 100.0})  # the pulse is longer
    assert array_read(slow, ARRAYS, 0.25, 16).ns == 100.0 + 15 * 100.0 + rnd
    assert not has_sample_hold(_edge())
    assert array_read(_edge(), ARRAYS, 0.25, 14).ns == 14 * (pulse + rnd)
    integrating = _edge(
        **{
            "crossbar.input_bits": 16,
            "crossbar.readout": "if_counter",
            "crossbar.serial_readout": "integrated",
        }
    )
    assert not has_sample_hold(integrating)


def test_neuron_steps_and_gradient_macs() -> None:
    chip = _edge()
    tile = chip.tile
    assert neuron_steps(chip, 1000, 10) == Cost(
        10 * tile.neuron_latency_ns, {"neuron": 10 * 1000 * tile.neuron_energy_pj}
    )
    assert grad_macs(chip, 6400.0) == Cost(
        6400 / tile.grad_macs_per_ns,
        {"grad": 6400 * tile.grad_energy_pj_per_mac},
        {"macs": 6400.0},
    )


def test_a_buffer_access_and_its_spilled_share() -> None:
    chip = _edge(**{"tile.buffer_bus_bits": 128, "tile.buffer_latency_ns": 2.0})
    tile, noc = chip.tile, chip.noc
    local = buffer_access(chip, 1000)
    assert local.ns == math.ceil(1000 / 128) * 2.0
    assert local.energy_pj == {"buffer": 1000 * tile.buffer_energy_pj_per_bit}
    spilled = buffer_access(chip, 1000, Spill(0.3, 4))
    trip = 4 * noc.hop_latency_ns + math.ceil(300 / noc.flit_bits) * 1000 / chip.clock_mhz
    assert spilled.ns == pytest.approx(local.ns + trip)
    assert spilled.energy_pj == {
        "buffer": 1000 * tile.buffer_energy_pj_per_bit,  # the global buffer's, for the share
        "spill": pytest.approx(300 * 4 * noc.energy_pj_per_bit_hop),
    }
    assert spilled.counters == {"buffer_bits": 1000, "spilled_bits": pytest.approx(300)}


def test_a_noc_transfer() -> None:
    chip = _edge()
    noc = chip.noc
    cost = transfer(chip, 600, 3)
    assert cost.ns == 3 * noc.hop_latency_ns + 3 * 1000 / chip.clock_mhz  # 3 flits of 256
    assert cost.energy_pj == {"noc": 600 * 3 * noc.energy_pj_per_bit_hop}
    assert transfer(chip, 600, 0) == Cost(0.0, {}, {"noc_bits": 0})  # on the tile: free


def test_writing_rows_of_cells() -> None:
    chip = _edge()
    dev = chip.device
    cost = write_rows(chip, 128, 5000.0, 2.5)
    assert cost.ns == 128 * 3 * dev.write_latency_ns  # ⌈2.5⌉ pulse slots per row
    assert cost.energy_pj == {"write": 5000 * 2.5 * dev.write_energy_pj}
    assert cost.counters == {"cells_written": 5000.0, "pulses": 12500.0}
    assert write_rows(chip, 128, 0.0, 2.5).ns == 0.0


def test_costs_compose_in_sequence_side_by_side_and_repeated() -> None:
    a = Cost(3.0, {"read": 1.0, "buffer": 2.0}, {"buffer_bits": 10})
    b = Cost(5.0, {"buffer": 0.5}, {"buffer_bits": 4, "macs": 1})
    assert a.then(b) == Cost(8.0, {"read": 1.0, "buffer": 2.5}, {"buffer_bits": 14, "macs": 1})
    assert a.beside(b) == Cost(5.0, {"read": 1.0, "buffer": 2.5}, {"buffer_bits": 14, "macs": 1})
    # 10 positions on 4 replicas: the energy of 10 reads in the time of ⌈10/4⌉
    assert a.repeated(10, 3) == Cost(9.0, {"read": 10.0, "buffer": 20.0}, {"buffer_bits": 100})
    assert a.into("feedback") == Cost(3.0, {"feedback": 3.0}, {"buffer_bits": 10})
    with pytest.raises(TypeError):
        a.energy_pj["read"] = 0.0  # type: ignore[index]


def test_an_integrating_counter_reads_the_error_train_once() -> None:
    """The formed feedback array read bit-serially: per plane, every plane of every sign is
    counted; integrated, each column is counted once over the weighted train, which keeps
    the sub-count fractions of the planes (closer to the exact product)."""
    base = {"crossbar.readout": "if_counter", "crossbar.adc_bits": 16}
    base |= {"device.read_noise_sigma": 0.0}
    e = np.random.default_rng(3).normal(size=(5, 10))
    out, conversions = {}, {}
    for mode in ("per_plane", "integrated"):
        chip = _edge(**base, **{"crossbar.serial_readout": mode})
        array = FormedCrossbar(chip, 10, 32, seed=1, xbar_id="B2.r0.c0")
        out[mode] = array.read_bitserial(e, (0,))
        conversions[mode] = array.counters.conversions
        exact = e @ array.matrix  # the errors quantised to 8 bits are close to e
    planes = 7  # magnitude planes of 8-bit sign-magnitude errors
    assert conversions["per_plane"] == planes * 2 * 5 * 32 * 2  # planes, signs, rows, pairs
    assert conversions["integrated"] == 2 * 5 * 32 * 2
    err = {mode: np.abs(out[mode] - exact).mean() for mode in out}
    assert err["integrated"] < err["per_plane"]
