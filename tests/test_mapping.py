"""Mapping: VW-SDK conv cycles (published table, brute force) and placement on a chip.

The oracles here are computed independently of :mod:`emulator.physics.mapping`: ceil-products
from the chip file's raw fields, window positions counted by sliding a window over an output
grid, and channels packed into arrays one at a time.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from emulator.physics.growth import fit_chip, fit_chips
from emulator.physics.mapping import (
    MappingError,
    UnsupportedNetworkError,
    feedback_layer,
    map_network,
)
from emulator.physics.tiling import feedback_blocks
from emulator.physics.vwsdk import ConvMapping, conv_cycles
from emulator.spec import ChipSpec, NetworkSpec, load_chip, load_network

# ------------------------------------------------------------------------- conv cycles

# docs/sources.md#vw-sdk (Rhe et al., DATE 2022): (H, K, IC, OC) → im2col / SDK / VW-SDK on 512².
PUBLISHED = [
    ((224, 3, 3, 64), (49_284, 12_321, 6_216)),  # VGG13
    ((112, 3, 128, 128), (36_300, 36_300, 12_100)),  # VGG13
    ((112, 7, 3, 64), (11_236, 2_809, 1_431)),  # ResNet-18
    ((14, 3, 256, 256), (720, 720, 504)),  # ResNet-18
]


@pytest.mark.parametrize(("layer", "cycles"), PUBLISHED, ids=lambda v: str(v))
def test_conv_cycles_reproduce_the_published_table(layer: tuple, cycles: tuple) -> None:
    h, k, ic, oc = layer
    cm = conv_cycles(h, h, k, ic, oc, 512, 512)
    assert (cm.im2col, cm.sdk, cm.vw_sdk) == cycles
    assert cm.scheme == "vw-sdk"
    assert cm.positions * cm.tiles == cm.vw_sdk


def _slide(n_out: int, step: int) -> int:
    """Placements of a window computing ``step`` outputs that cover ``n_out`` outputs.

    The window advances by ``step``; the last one is pushed back against the edge.
    """
    done = np.zeros(n_out, dtype=bool)
    placements, start = 0, 0
    while not done.all():
        first = min(start, n_out - step)
        done[first : first + step] = True
        placements += 1
        start += step
    return placements


def _pack(items: int, size: int, capacity: int) -> list[int]:
    """Items per array when ``items`` of ``size`` cells each are added one at a time."""
    arrays: list[int] = []
    used = capacity
    for _ in range(items):
        if used + size > capacity:
            arrays.append(0)
            used = 0
        arrays[-1] += 1
        used += size
    return arrays


def _chosen(
    scheme: str, cycles: int, window: tuple, channels: list, kernels: list, positions: int
) -> dict:
    """ConvMapping's fields that describe the chosen mapping."""
    return {
        "scheme": scheme,
        "vw_sdk": cycles,
        "window": window,
        "ict": channels[0],
        "oct": kernels[0],
        "tiles": len(channels) * len(kernels),
        "positions": positions,
    }


def _brute(h: int, w: int, k: int, ic: int, oc: int, ar: int, ac: int) -> dict:
    """ConvMapping's fields by enumerating windows, their positions and their arrays."""
    out_h, out_w = h - k + 1, w - k + 1
    positions = _slide(out_h, 1) * _slide(out_w, 1)
    rows, kernels = _pack(k * k * ic, 1, ar), _pack(oc, 1, ac)  # im2col: unrolled rows
    im2col = positions * len(rows) * len(kernels)
    # ict of im2col is IC by convention (its rows are cut anywhere), so pass [ic] * len(rows)
    chosen = _chosen("im2col", im2col, (k, k), [ic] * len(rows), kernels, positions)
    sdk, best = im2col, None
    for i in range(1, out_h + 1):
        for j in range(1, out_w + 1):
            area = (k + i - 1) * (k + j - 1)
            if area > ar or i * j > ac:  # not even one channel or one kernel fits
                continue
            channels = _pack(ic, area, ar)  # each channel takes the window's rows
            kernels = _pack(oc, i * j, ac)  # each kernel is duplicated i·j times
            positions = _slide(out_h, i) * _slide(out_w, j)
            cycles = positions * len(channels) * len(kernels)
            if i == j > 1 and area * ic <= ar and i * j * oc <= ac:
                sdk = min(sdk, cycles)
            # tie-break: fewer array columns in all, smaller window, fewer window rows
            key = (cycles, i * j * oc * len(channels), area, k + i - 1)
            if cycles < im2col and (best is None or key < best):
                best = key
                window = (k + i - 1, k + j - 1)
                chosen = _chosen("vw-sdk", cycles, window, channels, kernels, positions)
    return {"im2col": im2col, "sdk": sdk} | chosen


def _random_cases(n: int) -> list[tuple[int, ...]]:
    rng = np.random.default_rng(2022)
    cases = []
    while len(cases) < n:
        h, w = (int(v) for v in rng.integers(3, 13, size=2))
        k = int(rng.integers(1, min(h, w, 4) + 1))
        ic, oc = (int(v) for v in rng.integers(1, 9, size=2))
        ar, ac = int(rng.integers(k * k, 65)), int(rng.integers(1, 17))
        cases.append((h, w, k, ic, oc, ar, ac))
    return cases


# Ties on cycles that the tie-break rule settles (columns vs area, then rows).
TIES = [(8, 6, 4, 16, 3, 75, 23), (3, 14, 2, 11, 2, 67, 21), (18, 18, 1, 3, 3, 58, 23)]


@pytest.mark.parametrize("case", _random_cases(40) + TIES, ids=lambda c: "x".join(map(str, c)))
def test_conv_cycles_match_brute_force_enumeration(case: tuple[int, ...]) -> None:
    cm = conv_cycles(*case)
    assert dataclasses.asdict(cm) == _brute(*case)
    assert cm.positions * cm.tiles == cm.vw_sdk


def test_ties_go_to_fewer_columns_then_smaller_window_then_fewer_rows() -> None:
    # 3×14 input, 2×2 kernel, IC 11, OC 2 on 67 × 21: windows 2×8 (i=1, j=7) and 3×5 (i=2,
    # j=4) both take 3 channel tiles (4 channels each) × 4 positions = 12 cycles; 2×8 uses
    # 7·2·3 = 42 array columns, 3×5 uses 8·2·3 = 48 (though its area, 15, is below 16).
    cm = conv_cycles(3, 14, 2, 11, 2, 67, 21)
    assert (cm.vw_sdk, cm.window, cm.ict, cm.oct, cm.tiles) == (12, (2, 8), 4, 2, 3)
    # 1×1 kernel: 1×6 and 6×1 tie on everything but rows; the flatter window wins.
    assert conv_cycles(18, 18, 1, 3, 3, 58, 23).window == (1, 6)


def test_a_window_too_small_to_win_falls_back_to_im2col() -> None:
    # 1×1 kernel, everything fits one array: im2col already computes one output per cycle
    # per array set, and every wider window needs more arrays (AC = 4 logical columns).
    cm = conv_cycles(4, 4, 1, 1, 4, 64, 4)
    assert (cm.scheme, cm.window, cm.vw_sdk, cm.im2col) == ("im2col", (1, 1), 16, 16)


def test_stride_above_one_uses_im2col_only() -> None:
    cm = conv_cycles(10, 10, 3, 4, 8, 128, 16, stride=2)
    positions = ((10 - 3) // 2 + 1) ** 2
    tiles = math.ceil(9 * 4 / 128) * math.ceil(8 / 16)
    assert cm == ConvMapping(
        im2col=positions * tiles,
        sdk=positions * tiles,
        vw_sdk=positions * tiles,
        scheme="im2col",
        window=(3, 3),
        ict=4,
        oct=8,
        tiles=tiles,
        positions=positions,
    )


# --------------------------------------------------------------------------- placement


def _logical_columns(chip: ChipSpec) -> int:
    """Weights per array row: a differential pair of weight_bits/cell_bits cells each."""
    xb = chip.crossbar
    return xb.cols // (2 * (xb.weight_bits // xb.cell_bits))


def _cells_per_weight(chip: ChipSpec) -> int:
    xb = chip.crossbar
    return 2 * (xb.weight_bits // xb.cell_bits)


def _feedback_arrays(chip: ChipSpec, classes: int, width: int) -> int:
    """C × M entries, one differential pair (2 cells) each, rows × cols/2 per array."""
    xb = chip.crossbar
    return math.ceil(classes / xb.rows) * math.ceil(width / (xb.cols // 2))


def _expected_pes(chip: ChipSpec, arrays_per_unit: list[int]) -> list[list[tuple[int, int]]]:
    """Each unit (layer or feedback group) on fresh PE cores, pe.crossbars arrays per core."""
    out, next_core = [], 0
    for arrays in arrays_per_unit:
        count = math.ceil(arrays / chip.pe.crossbars)
        out.append([divmod(g, chip.tile.pes) for g in range(next_core, next_core + count)])
        next_core += count
    return out


def test_digits_mlp_on_the_edge_chip() -> None:
    chip, net = load_chip("pipesdfa-edge"), load_network("digits-mlp")
    m = map_network(chip, net)
    xb, cpw = chip.crossbar, _cells_per_weight(chip)
    wpr, classes = _logical_columns(chip), net.num_classes
    weights = [math.ceil(64 / xb.rows) * math.ceil(128 / wpr), math.ceil(128 / xb.rows)]
    weights[1] *= math.ceil(10 / wpr)
    group = _feedback_arrays(chip, classes, 128)  # M = the one hidden layer's 128 neurons
    assert [lm.weight_arrays for lm in m.layers] == weights == [8, 1]
    assert [lm.feedback_arrays for lm in m.layers] == [0, 0]
    assert m.feedback_arrays == m.feedback.feedback_arrays == group == 2
    assert [(lm.index, lm.weighted, lm.kind, lm.scheme) for lm in m.layers] == [
        (0, 0, "fc", "fc"),
        (1, 1, "fc", "fc"),
    ]
    assert (m.feedback.weighted, m.feedback.kind, m.feedback.n_in, m.feedback.n_out) == (
        2,
        "feedback",
        classes,
        128,
    )
    assert [(lm.n_in, lm.n_out, lm.reads_per_step, lm.window) for lm in m.layers] == [
        (64, 128, 1, None),
        (128, 10, 1, None),
    ]
    pes = _expected_pes(chip, [*weights, group])
    assert [list(lm.pes) for lm in m.layers] == pes[:2] == [[(0, 0)], [(0, 1)]]
    assert list(m.feedback_pes) == pes[2] == [(0, 2)]
    assert [lm.tiles for lm in m.layers] == [(0,), (0,)]
    assert m.feedback_tiles == (0,)
    cells = xb.rows * xb.cols
    used = [64 * 128 * cpw, 128 * 10 * cpw]
    for lm, u, a in zip(m.layers, used, weights, strict=True):
        assert lm.cells == u
        assert lm.utilisation == pytest.approx(u / (a * cells))
    assert m.feedback.cells == 2 * classes * 128
    assert m.feedback.utilisation == pytest.approx(2 * classes * 128 / (group * cells))
    assert (m.arrays_used, m.pes_used, m.tiles_used) == (sum(weights) + group, 3, 1)
    assert m.arrays_total == chip.tiles * chip.tile.pes * chip.pe.crossbars


def test_fc_grids_count_rows_columns_and_the_fullest_array() -> None:
    chip, net = load_chip("pipesdfa-edge"), load_network("digits-mlp")
    xb, wpr = chip.crossbar, _logical_columns(chip)
    m = map_network(chip, net)
    first, second, group = (*m.layers, m.feedback)
    # 64 × 128 on 128-row arrays of 16 logical columns: one row block, 8 column blocks.
    assert (first.rows, first.columns, first.row_blocks) == (64, 128, 1)
    assert (first.array_rows, first.array_columns) == (64, min(128, wpr))
    assert (second.rows, second.columns, second.row_blocks) == (128, 10, 1)
    assert (second.array_rows, second.array_columns) == (min(128, xb.rows), 10)
    # the group: C rows × M pairs, cols/2 = 64 pairs per array
    assert (group.rows, group.columns, group.row_blocks) == (10, 128, 1)
    assert (group.array_rows, group.array_columns) == (10, xb.cols // 2)
    assert [lm.neurons for lm in m.layers] == [128, 10]
    assert [lm.tile_arrays for lm in (*m.layers, group)] == [(8,), (1,), (2,)]


def test_the_feedback_group_blocks_carry_the_layer_after_the_last() -> None:
    chip, net = load_chip("pipesdfa-edge"), load_network("digits-mlp")
    group = feedback_layer(net)
    assert group == 2  # two weighted layers: 0 and 1
    blocks = feedback_blocks(chip, group, net.num_classes, 128)
    assert [b.id for b in blocks] == ["B2.r0.c0", "B2.r0.c1"]
    assert len(blocks) == map_network(chip, net).feedback_arrays
    pooled = NetworkSpec.model_validate(
        {
            "name": "pooled",
            "input_shape": [1, 4, 4],
            "time_steps": 2,
            "num_classes": 2,
            "layers": [
                {"type": "conv", "out_channels": 2, "kernel": 3, "padding": 1},
                {"type": "pool", "kernel": 2},
                {"type": "fc", "out": 2},
            ],
        }
    )
    assert feedback_layer(pooled) == 2  # pool layers are not counted


def test_the_group_is_as_wide_as_the_widest_hidden_layer() -> None:
    chip, net = load_chip("pipesdfa-edge"), _mlp([64, 30, 200, 50, 10])
    m = map_network(chip, net)
    assert (m.feedback.n_in, m.feedback.n_out) == (10, 200)
    assert m.feedback_arrays == _feedback_arrays(chip, 10, 200) == 4
    assert all(lm.feedback_arrays == 0 for lm in m.layers)
    arrays = [lm.weight_arrays for lm in m.layers] + [m.feedback_arrays]
    pes = _expected_pes(chip, arrays)
    assert [list(lm.pes) for lm in m.layers] == pes[:-1]
    assert list(m.feedback_pes) == pes[-1]  # after the last layer, on fresh PE cores


def test_a_network_without_hidden_layers_has_no_group() -> None:
    m = map_network(load_chip("pipesdfa-edge"), _mlp([64, 10]))
    assert m.feedback is None
    assert (m.feedback_arrays, m.feedback_pes, m.feedback_tiles) == (0, (), ())
    assert [r["kind"] for r in m.as_rows()] == ["fc"]


def test_a_layer_across_tiles_counts_its_arrays_per_tile() -> None:
    # 128 × 400 on the edge chip: one row block × ⌈400/16⌉ = 25 arrays on 4 PE cores of 8
    # arrays, after layer 0's 8 arrays on core 0: cores 1, 2, 3 (tile 0, 24 arrays) and
    # core 4 (tile 1, the last array).
    chip = load_chip("pipesdfa-edge")
    m = map_network(chip, _mlp([64, 128, 400, 10]))
    second = m.layers[1]
    arrays = math.ceil(128 / chip.crossbar.rows) * math.ceil(400 / _logical_columns(chip))
    assert second.weight_arrays == arrays == 25
    per_pe = [min(chip.pe.crossbars, arrays - k * chip.pe.crossbars) for k in range(4)]
    pes = [divmod(g, chip.tile.pes) for g in range(1, 5)]
    assert list(second.pes) == pes
    assert second.tiles == (0, 1)
    assert second.tile_arrays == (sum(per_pe[:3]), per_pe[3]) == (24, 1)


def test_tiles_sit_on_a_serpentine_walk_of_the_mesh() -> None:
    chip = load_chip("pipesdfa-edge")
    m = map_network(chip, load_network("digits-mlp"))
    assert (chip.noc.rows, chip.noc.cols, chip.tiles) == (4, 4, 16)
    assert m.positions == (
        (0, 0), (0, 1), (0, 2), (0, 3),
        (1, 3), (1, 2), (1, 1), (1, 0),
        (2, 0), (2, 1), (2, 2), (2, 3),
        (3, 3), (3, 2), (3, 1), (3, 0),
    )  # fmt: skip
    for (r0, c0), (r1, c1) in zip(m.positions, m.positions[1:], strict=False):
        assert abs(r0 - r1) + abs(c0 - c1) == 1


def test_a_network_too_big_for_the_chip_names_the_numbers() -> None:
    chip, net = load_chip("tiny"), load_network("nmnist-mlp2")
    xb, wpr = chip.crossbar, _logical_columns(chip)
    n_in, hidden, classes = 2 * 34 * 34, 1000, net.num_classes
    w = [
        math.ceil(n_in / xb.rows) * math.ceil(hidden / wpr),
        math.ceil(hidden / xb.rows) * math.ceil(classes / wpr),
    ]
    f = _feedback_arrays(chip, classes, hidden)
    cores = sum(math.ceil(a / chip.pe.crossbars) for a in [*w, f])
    message = (
        f"network nmnist-mlp2 needs {sum(w) + f} crossbars (weights {sum(w)} + feedback {f}) "
        f"on {cores} PE cores but chip tiny has 16 crossbars on 4 PE cores"
    )
    with pytest.raises(MappingError) as err:
        map_network(chip, net)
    assert str(err.value) == message
    assert isinstance(err.value, ValueError)


def _mlp(widths: list[int], classes: int = 10) -> NetworkSpec:
    return NetworkSpec.model_validate(
        {
            "name": "test-mlp",
            "input_shape": [widths[0]],
            "time_steps": 2,
            "num_classes": classes,
            "layers": [{"type": "fc", "out": n} for n in widths[1:]],
        }
    )


def test_each_layer_starts_on_a_fresh_pe_core() -> None:
    # Four layers of one array each and the group's one array: 5 of tiny's 16 crossbars,
    # but 5 of its 4 PE cores.
    chip, net = load_chip("tiny"), _mlp([16, 16, 16, 16, 10])
    with pytest.raises(MappingError, match=r"needs 5 crossbars .* on 5 PE cores .* on 4 PE"):
        map_network(chip, net)
    m = map_network(chip, _mlp([16, 16, 16, 10]))
    assert [lm.pes for lm in m.layers] == [((0, 0),), ((0, 1),), ((1, 0),)]
    assert m.feedback_pes == ((1, 1),)
    assert [lm.tiles for lm in m.layers] == [(0,), (0,), (1,)]
    assert (m.pes_used, m.tiles_used, m.arrays_used) == (4, 2, 4)


def test_conv_layers_report_vw_sdk_and_take_the_fewest_reads_per_step() -> None:
    chip = load_chip("pipesdfa-edge")
    net = NetworkSpec.model_validate(
        {
            "name": "test-conv",
            "input_shape": [2, 8, 8],
            "time_steps": 2,
            "num_classes": 10,
            "layers": [
                {"type": "conv", "out_channels": 4, "kernel": 3, "padding": 1},
                {"type": "pool", "kernel": 2},
                {"type": "conv", "out_channels": 8, "kernel": 3, "stride": 2},
                {"type": "fc", "out": 10},
            ],
        }
    )
    m = map_network(chip, net)
    xb, wpr = chip.crossbar, _logical_columns(chip)
    cpw, cells = _cells_per_weight(chip), xb.rows * xb.cols
    # (padded H, K, IC, OC, stride, output neurons) of the two conv layers
    convs = [(8 + 2, 3, 2, 4, 1, 4 * 8 * 8), (4, 3, 4, 8, 2, 8 * 1 * 1)]
    assert [lm.index for lm in m.layers] == [0, 2, 3]
    for lm, (h, k, ic, oc, s, neurons) in zip(m.layers, convs, strict=False):
        cm = conv_cycles(h, h, k, ic, oc, xb.rows, wpr, stride=s)
        # VW-SDK's own single-array figures stay reported beside the chip's choice
        assert (lm.vwsdk_cycles, lm.vwsdk_window) == (cm.vw_sdk, cm.window)
        assert (lm.kind, lm.n_in, lm.n_out, lm.neurons) == ("conv", k * k * ic, oc, neurons)
        assert lm.cycles == lm.positions * lm.block_arrays
        # this small network leaves the chip room for any option: the fewest reads per
        # step, then the fewest arrays (G = 1: reads = positions)
        options = _conv_options(h, h, k, ic, oc, xb.rows, wpr) if s == 1 else []
        options = options or [((k, k), ((h - k) // s + 1) ** 2, _im2col_arrays(chip, k, ic, oc))]
        best = min((reads, arrays) for _, reads, arrays in options)
        assert (lm.reads_per_step, lm.weight_arrays) == best
        assert lm.window in [w for w, reads, arrays in options if (reads, arrays) == best]
        assert lm.candidates == len(options) and lm.fitting == len(options)
        assert lm.feedback_arrays == 0
        copies = (lm.window[0] - k + 1) * (lm.window[1] - k + 1)
        used = copies * k * k * ic * oc * cpw
        assert lm.cells == used
        assert lm.utilisation == pytest.approx(used / (lm.weight_arrays * cells))
    # one group for both hidden conv layers, fed after their pools (the authors' ConvBlock):
    # M = the wider pooled output, the first layer's 4·4·4 = 64 (its 4·8·8 neurons pooled)
    assert m.feedback.n_out == 64
    assert m.feedback_arrays == _feedback_arrays(chip, 10, 64) == 1
    first, second = m.layers[0], m.layers[1]
    assert first.scheme == "vw-sdk" and first.window != (3, 3)
    assert first.reads_per_step < (10 - 3 + 1) ** 2  # fewer reads than im2col's positions
    assert (second.scheme, second.window, second.reads_per_step) == ("im2col", (3, 3), 1)
    rows = json.loads(json.dumps(m.as_rows()))
    assert rows[0]["window"] == list(first.window)
    assert (rows[0]["vwsdk_cycles"], rows[0]["reads_per_step"]) == (
        first.vwsdk_cycles,
        first.reads_per_step,
    )
    assert rows[0]["criterion"].startswith("fewest reads_per_step")


def _im2col_arrays(chip: ChipSpec, k: int, ic: int, oc: int) -> int:
    """im2col: the K²·IC unrolled rows × OC kernels cut into rows × logical-column arrays."""
    return math.ceil(k * k * ic / chip.crossbar.rows) * math.ceil(oc / _logical_columns(chip))


def _conv_options(
    h: int, w: int, k: int, ic: int, oc: int, ar: int, ac: int
) -> list[tuple[tuple[int, int], int, int]]:
    """(window, positions, arrays) of im2col and of every parallel window a chip conv layer
    may take, by the docs/sources.md#vw-sdk formulas: window (K+i−1)×(K+j−1), ICt = min(IC,
    ⌊AR/((K+i−1)(K+j−1))⌋) ≥ 1, OCt = min(OC, ⌊AC/(i·j)⌋) ≥ 1, positions
    (⌈(H−K−i+1)/i⌉+1)(⌈(W−K−j+1)/j⌉+1), arrays ⌈IC/ICt⌉·⌈OC/OCt⌉ (AC counts logical
    columns: a weight's slices and differential pairs are in it)."""
    out = [((k, k), (h - k + 1) * (w - k + 1), math.ceil(k * k * ic / ar) * math.ceil(oc / ac))]
    for i in range(1, h - k + 2):
        for j in range(1, w - k + 2):
            rows, cols = k + i - 1, k + j - 1
            ict, oct_ = min(ic, ar // (rows * cols)), min(oc, ac // (i * j))
            if ict < 1 or oct_ < 1:
                continue
            positions = (math.ceil((h - k - i + 1) / i) + 1) * (math.ceil((w - k - j + 1) / j) + 1)
            out.append(((rows, cols), positions, math.ceil(ic / ict) * math.ceil(oc / oct_)))
    return out


def _conv_shapes(net: NetworkSpec) -> list[tuple[int, ...]]:
    """(padded H, padded W, K, IC, OC) of every conv layer, from the network file alone."""
    c, h, w = net.input_shape
    out = []
    for layer in net.layers:
        if layer.type == "conv":
            p, k = layer.padding, layer.kernel
            out.append((h + 2 * p, w + 2 * p, k, c, layer.out_channels))
            c, h, w = layer.out_channels, h + 2 * p - k + 1, w + 2 * p - k + 1
        elif layer.type == "pool":
            h, w = h // layer.kernel, w // layer.kernel
    return out


def test_the_first_dvsgesture_layer_reads_as_few_times_as_the_chip_allows() -> None:
    """The audit's case: dvsgesture-convnet's layer 0 (130×130 padded, 3×3, 2→32) ties at
    32,768 VW-SDK cycles in every window, but the chip reads a layer's arrays at once, so a
    step costs its positions: 16,384 in im2col on 2 arrays, 1,024 in a 6×6 window on 32."""
    net = load_network("dvsgesture-convnet")
    chip = fit_chip(load_chip("pipesdfa-edge"), net)
    xb, wpr = chip.crossbar, _logical_columns(chip)
    h, w, k, ic, oc = _conv_shapes(net)[0]
    options = _conv_options(h, w, k, ic, oc, xb.rows, wpr)
    assert min(p * a for _, p, a in options) == 32_768 == options[0][1] * options[0][2]
    fit = [(p, a) for _, p, a in options if a <= chip.crossbars_total]
    lm = map_network(chip, net).layers[0]
    assert lm.reads_per_step == min(fit)[0] == 1024
    assert lm.block_arrays == min(fit)[1] == 32  # the fewest arrays on equal reads
    assert (lm.vwsdk_cycles, lm.vwsdk_window, lm.cycles) == (32_768, (3, 3), 32_768)


@pytest.mark.parametrize("name", ["pipesdfa-edge", "pipelayer-edge"])
def test_every_conv_layer_takes_the_fewest_reads_its_room_allows(name: str) -> None:
    """On chips grown alike, whatever the dataflow: each conv layer's reads per step are the
    fewest among its options whose PE cores fit in its own plus the chip's spare ones, and
    on equal reads it takes the fewest arrays."""
    net = load_network("dvsgesture-convnet")
    chips = fit_chips(net, load_chip("pipesdfa-edge"), load_chip("pipelayer-edge"))
    chip = chips[["pipesdfa-edge", "pipelayer-edge"].index(name)]
    xb, wpr, per_pe = chip.crossbar, _logical_columns(chip), chip.pe.crossbars
    m = map_network(chip, net)
    spare = chip.tiles * chip.tile.pes - m.pes_used
    assert spare >= 0
    convs = [lm for lm in m.layers if lm.kind == "conv"]
    for lm, shape in zip(convs, _conv_shapes(net), strict=True):
        options = _conv_options(*shape, xb.rows, wpr)
        room = math.ceil(lm.block_arrays / per_pe) + spare
        fit = [(p, a) for _, p, a in options if math.ceil(a / per_pe) <= room]
        assert (lm.reads_per_step, lm.block_arrays) == min(fit)
        assert (lm.candidates, lm.fitting) == (len(options), len(fit))
    # the first layer sets the clock; the chip's spare PE cores took it to its fewest reads
    assert convs[0].reads_per_step == min(
        p for _, p, _ in _conv_options(*_conv_shapes(net)[0], xb.rows, wpr)
    )


def test_vw_sdk_grids_hold_windows_of_channels_and_duplicated_kernels() -> None:
    chip = load_chip("pipesdfa-edge")
    net = NetworkSpec.model_validate(
        {
            "name": "vw",
            "input_shape": [20, 10, 10],
            "time_steps": 2,
            "num_classes": 10,
            "layers": [{"type": "conv", "out_channels": 20, "kernel": 3}],
        }
    )
    xb, wpr = chip.crossbar, _logical_columns(chip)
    lm = map_network(chip, net).layers[0]
    assert lm.scheme == "vw-sdk"
    area, copies = lm.window[0] * lm.window[1], (lm.window[0] - 2) * (lm.window[1] - 2)
    ict, oct_ = min(20, xb.rows // area), min(20, wpr // copies)
    assert (lm.rows, lm.array_rows) == (area * 20, area * ict)
    assert (lm.columns, lm.array_columns) == (copies * 20, copies * oct_)
    assert lm.row_blocks == math.ceil(20 / ict)
    assert lm.weight_arrays == lm.row_blocks * math.ceil(20 / oct_)
    assert lm.array_rows <= xb.rows and lm.array_columns <= wpr


def test_im2col_grids_cut_the_unrolled_kernel_rows() -> None:
    chip = load_chip("pipesdfa-edge")
    xb, wpr = chip.crossbar, _logical_columns(chip)
    net = NetworkSpec.model_validate(
        {
            "name": "strided",
            "input_shape": [40, 9, 9],
            "time_steps": 2,
            "num_classes": 4,
            "layers": [{"type": "conv", "out_channels": 20, "kernel": 3, "stride": 2}],
        }
    )
    lm = map_network(chip, net).layers[0]
    assert (lm.scheme, lm.rows, lm.columns) == ("im2col", 9 * 40, 20)
    assert (lm.row_blocks, lm.array_rows, lm.array_columns) == (3, xb.rows, wpr)
    assert lm.weight_arrays == 3 * math.ceil(20 / wpr)


def test_pipelayer_has_no_feedback_arrays() -> None:
    chip, net = load_chip("pipelayer"), load_network("digits-mlp")
    assert chip.dataflow == "pipelayer"
    m = map_network(chip, net)
    xb, wpr = chip.crossbar, _logical_columns(chip)
    cpw = _cells_per_weight(chip)
    assert [lm.feedback_arrays for lm in m.layers] == [0, 0]
    assert m.feedback is None and m.feedback_arrays == 0
    first = m.layers[0]
    assert first.weight_arrays == math.ceil(64 / xb.rows) * math.ceil(128 / wpr)
    assert first.utilisation == pytest.approx(
        64 * 128 * cpw / (first.weight_arrays * xb.rows * xb.cols)
    )
    # BPTT reads Wᵀ from a transposed copy of its own (crossbar.transpose: copy), with Wᵀ's
    # geometry (128 → 10: 10 rows × 128 logical columns); layer 0 never back-propagates
    copy = math.ceil(10 / xb.rows) * math.ceil(128 / wpr)
    assert [lm.transpose_arrays for lm in m.layers] == [0, copy] == [0, 8]
    assert [(t.weighted, t.n_in, t.n_out, t.transpose_arrays) for t in m.transposes] == [
        (1, 10, 128, copy)
    ]
    assert m.arrays_used == sum(lm.weight_arrays for lm in m.layers) + copy
    bidirectional = chip.model_copy(
        update={"crossbar": chip.crossbar.model_copy(update={"transpose": "bidirectional"})}
    )
    m = map_network(bidirectional, net)
    assert [lm.transpose_arrays for lm in m.layers] == [0, 0]
    assert m.arrays_used == sum(lm.weight_arrays for lm in m.layers)


def test_conv_replication_copies_the_arrays_and_shares_the_positions() -> None:
    net = NetworkSpec.model_validate(
        {
            "name": "conv-g",
            "input_shape": [2, 12, 12],
            "time_steps": 2,
            "num_classes": 10,
            "layers": [
                {"type": "conv", "out_channels": 4, "kernel": 3},
                {"type": "fc", "out": 10},
            ],
        }
    )
    chip = load_chip("pipesdfa-edge")
    one = map_network(chip, net)
    for g in (2, 3, 4):
        grown = chip.model_copy(
            update={"mapping": chip.mapping.model_copy(update={"conv_replication": g})}
        )
        m = map_network(grown, net)
        conv, fc = m.layers
        base = one.layers[0]
        assert (conv.replicas, conv.block_arrays) == (g, base.block_arrays)
        assert conv.weight_arrays == g * base.weight_arrays
        assert conv.positions == base.positions
        assert conv.reads_per_step == math.ceil(base.positions / g)
        assert conv.cells == base.cells  # one copy; a write programs every replica
        assert sum(conv.tile_weights) == conv.n_in * conv.n_out  # replicas hold no new entry
        assert (fc.replicas, fc.weight_arrays) == (1, one.layers[1].weight_arrays)  # fc: none


def test_as_rows_is_json_with_one_row_per_weighted_layer_and_the_group() -> None:
    m = map_network(load_chip("pipesdfa-edge"), load_network("digits-mlp"))
    rows = json.loads(json.dumps(m.as_rows()))
    assert [(r["weighted"], r["kind"]) for r in rows] == [(0, "fc"), (1, "fc"), (2, "feedback")]
    assert rows[0]["pes"] == [[0, 0]]
    assert rows[0]["weight_arrays"] == m.layers[0].weight_arrays
    assert (rows[2]["feedback_arrays"], rows[2]["pes"]) == (2, [[0, 2]])


def test_an_avg_pool_is_refused_on_any_chip_and_a_leading_max_pool_runs(tmp_path, capsys):
    """An avg pool feeds fractions to the next crossbar, which reads binary spikes only:
    every chip command refuses it in one line, exit 2. A max pool before the first layer is
    input preprocessing: the controller pools what it sends, so `run` trains what `train
    --chip` trains."""
    from emulator.cli import main

    conv = load_network("tiny-conv").model_dump(mode="json")
    avg = json.loads(json.dumps(conv))
    avg["layers"][1]["mode"] = "avg"
    with pytest.raises(UnsupportedNetworkError, match="layer 1 is an avg pool"):
        map_network(load_chip("pipesdfa-edge"), NetworkSpec.model_validate(avg))
    path = tmp_path / "avg.json"
    path.write_text(json.dumps(avg))
    for command in ("run", "train", "map", "compare"):
        assert main([command, "--network", str(path), "--chip", "tiny"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.endswith("use mode: max") and "\n" not in err
    lead = json.loads(json.dumps(conv))
    lead["layers"].insert(0, {"type": "pool", "mode": "max", "kernel": 2})
    path = tmp_path / "lead.json"
    path.write_text(json.dumps(lead))
    common = ["--network", str(path), "--chip", "tiny", "--epochs", "1", "--json"]
    assert main(["train", *common]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert main(["run", *common, "--runtime", "local"]) == 0
    ran = json.loads(capsys.readouterr().out)
    assert ran["weights_sha256"] == trained["weights_sha256"]
