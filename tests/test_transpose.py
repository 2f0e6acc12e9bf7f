"""Wᵀ is Wᵀ: back-propagation (BPTT, op ERR) reads Wᵀ with Wᵀ's own geometry, and only the
layers that back-propagate keep a transposed copy (WRITE_T writes Wᵀ's own cells).

Every expected number is derived here from the chip file's raw fields and the network file:
W of a layer is n_in × n_out (conv: the unrolled K²·IC × OC), so Wᵀ is n_out × n_in, cut
into crossbars of ``rows`` rows × ``cols`` physical columns, ``2 · weight_bits/cell_bits``
physical columns per weight (a differential pair per slice).
"""

from __future__ import annotations

import math

import pytest

from emulator.cost import CostModel
from emulator.physics.growth import fit_chip
from emulator.spec import ChipSpec, NetworkSpec, load_chip, load_network, with_fields

RATE = 0.25  # the error bit rate the ERRs are read at


def _slices(chip: ChipSpec) -> int:
    return chip.crossbar.weight_bits // chip.crossbar.cell_bits


def _per_weight(chip: ChipSpec) -> int:
    """Physical columns of one weight: a differential pair per slice."""
    return 2 * _slices(chip)


def _copy_arrays(chip: ChipSpec, n_in: int, n_out: int) -> int:
    """Wᵀ (n_out × n_in): ⌈n_out / rows⌉ row blocks × ⌈n_in · columns per weight / cols⌉."""
    xb = chip.crossbar
    return math.ceil(n_out / xb.rows) * math.ceil(n_in * _per_weight(chip) / xb.cols)


def _planes(chip: ChipSpec) -> int:
    """Bit-serial pulses of one error vector: a sign plane per magnitude bit, two signs."""
    return 2 * (chip.crossbar.error_bits - 1)


def _readout(chip: ChipSpec) -> tuple[int, int]:
    """(readout rounds of one bit-serial read, readouts per output line per round): an ADC
    converts every plane, a slice's pair at a time; an integrating counter reads the whole
    train once, each physical column."""
    xb = chip.crossbar
    rounds = 1 if xb.serial_readout == "integrated" else _planes(chip)
    per_line = _slices(chip) if xb.readout == "adc" else _per_weight(chip)
    return rounds, per_line


def _matrices(net: NetworkSpec) -> list[tuple[int, int, int]]:
    """(n_in, n_out, output positions) of every weighted layer, from the network file."""
    shape = tuple(net.input_shape)
    out = []
    for layer in net.layers:
        if layer.type == "fc":
            n_in = math.prod(shape)
            out.append((n_in, layer.out, 1))
            shape = (layer.out,)
        elif layer.type == "conv":
            c, h, w = shape
            k, p, s = layer.kernel, layer.padding, layer.stride
            h, w = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
            out.append((k * k * c, layer.out_channels, h * w))
            shape = (layer.out_channels, h, w)
        else:
            c, h, w = shape
            shape = (c, h // layer.kernel, w // layer.kernel)
    return out


def _check_copies(chip: ChipSpec, net: NetworkSpec) -> None:
    """Each layer but the first has a copy of Wᵀ's closed-form arrays, placed after the
    layers; its ERR reads δ into Wᵀ's rows at every output position and converts Wᵀ's
    columns; its WRITE_T writes Wᵀ's cells, each weight once, row by row."""
    xb, dev = chip.crossbar, chip.device
    cm = CostModel(chip, net)
    m = cm.mapping
    matrices = _matrices(net)
    copies = [_copy_arrays(chip, n_in, n_out) for n_in, n_out, _ in matrices[1:]]
    assert [lm.transpose_arrays for lm in m.layers] == [0, *copies]
    assert [(t.weighted, t.n_in, t.n_out) for t in m.transposes] == [
        (w, n_out, n_in) for w, (n_in, n_out, _) in enumerate(matrices) if w > 0
    ]
    assert [t.arrays for t in m.transposes] == copies
    # the copies come after every layer, each on fresh PE cores
    first = sum(math.ceil(lm.weight_arrays / chip.pe.crossbars) for lm in m.layers)
    for t, arrays in zip(m.transposes, copies, strict=True):
        cores = math.ceil(arrays / chip.pe.crossbars)
        assert [t.pes[0], t.pes[-1]] == [
            divmod(g, chip.tile.pes) for g in (first, first + cores - 1)
        ]
        first += cores
    assert m.arrays_used == sum(lm.weight_arrays for lm in m.layers) + sum(copies)
    rounds, per_line = _readout(chip)
    planes = _planes(chip)
    for w, (n_in, n_out, positions) in enumerate(matrices):
        if w == 0:
            assert cm.err(0, RATE) is None and cm.write_transpose(0, 0.5, 2.0) is None
            continue
        err = cm.err(w, RATE)
        arrays = _copy_arrays(chip, n_in, n_out)
        # G = 1 on every shipped chip: one read per output position
        assert (
            err.counters["conversions"]
            == positions * rounds * math.ceil(n_out / xb.rows) * n_in * per_line
        )
        assert err.counters["array_reads"] == positions * planes * arrays
        assert err.resource == f"xbarT:{w}"
        # a read: every plane's pulse, then each round's readouts of the fullest array's
        # min(n_in, weights per row) columns sharing its converters (the buffer's δ is shorter)
        columns = min(n_in, xb.cols // _per_weight(chip)) * per_line
        ns = planes * dev.read_latency_ns
        ns += rounds * math.ceil(columns / xb.converters) * xb.adc_latency_ns
        assert err.dur_ps == round(positions * ns * 1000)
        write = cm.write_transpose(w, 0.5, 2.0)
        assert write.counters["cells_written"] == 0.5 * n_in * n_out * _per_weight(chip)
        assert write.dur_ps == round(min(n_out, xb.rows) * 2 * dev.write_latency_ns * 1000)


def test_an_mlp_reads_and_writes_wt_as_wt() -> None:
    """nmnist-mlp2 on the grown edge chip with PipeLayer's dataflow: 2312 → 1000 → 10; the
    1000 → 10 layer's Wᵀ is 10 × 1000, ⌈10/128⌉ · ⌈1000 · 8/128⌉ = 63 arrays (not W's 8),
    and its ERR converts ⌈10/128⌉ · 1000 · 4 values per plane (not ⌈1000/128⌉ · 10 · 4)."""
    net = load_network("nmnist-mlp2")
    chip = fit_chip(load_chip("pipelayer-edge"), net)
    assert _copy_arrays(chip, 1000, 10) == 63
    _check_copies(chip, net)
    err = CostModel(chip, net).err(1, RATE)
    assert err.counters["conversions"] == _planes(chip) * 1 * 1000 * 4


def test_a_conv_net_reads_and_writes_wt_as_wt() -> None:
    """dvsgesture-convnet on PipeLayer as published (16-bit weights on 4-bit cells, an
    integrating counter per column), grown: a conv layer's Wᵀ is OC × K²·IC, read at every
    output position whatever window W's forward uses, each weight once in its cells."""
    net = load_network("dvsgesture-convnet")
    chip = fit_chip(load_chip("pipelayer"), net)
    _check_copies(chip, net)
    # layer 1 (3×3, 32 → 64, 64×64 outputs): Wᵀ 64 × 288, ⌈64/128⌉ · ⌈288 · 8/128⌉ = 18
    assert CostModel(chip, net).mapping.layers[1].transpose_arrays == 18


@pytest.mark.parametrize("network", ["nmnist-mlp3", "dvsgesture-convnet"])
def test_bidirectional_arrays_read_wt_from_the_column_side(network: str) -> None:
    """No copy (``crossbar.transpose: bidirectional``): ERR drives W's logical columns and
    converts its rows, the partial sums adding up over W's column blocks, at W's positions
    on W's own arrays."""
    net = load_network(network)
    chip = with_fields(
        fit_chip(load_chip("pipelayer-edge"), net), {"crossbar.transpose": "bidirectional"}
    )
    cm = CostModel(chip, net)
    assert cm.mapping.transposes == () and not any(lm.transpose_arrays for lm in cm.mapping.layers)
    rounds, per_line = _readout(chip)
    for w, lm in enumerate(cm.mapping.layers):
        if w == 0:
            continue
        err = cm.err(w, RATE)
        column_blocks = lm.block_arrays // lm.row_blocks
        assert (
            err.counters["conversions"]
            == lm.positions * rounds * column_blocks * lm.rows * per_line
        )
        assert err.counters["array_reads"] == lm.positions * _planes(chip) * lm.block_arrays
        assert err.resource == f"xbar:{w}"
    if network == "nmnist-mlp3":  # 1000 → 1000: W's ⌈1000/16⌉ column blocks, not ⌈1000/128⌉
        err = cm.err(1, RATE)
        assert err.counters["conversions"] == _planes(chip) * math.ceil(1000 / 16) * 1000 * 4
