"""``pipesdfa map`` and ``pipesdfa compare`` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emulator.cli import main
from emulator.cost import Activity
from emulator.spec import load_chip, load_network

# docs/sources.md#vw-sdk (Rhe et al., DATE 2022): published cycles on a 512 × 512 array.
VW_SDK_TABLE = [
    ("224,224,3,3,64", 49_284, 12_321, 6_216),
    ("112,112,3,128,128", 36_300, 36_300, 12_100),
    ("112,112,7,3,64", 11_236, 2_809, 1_431),
    ("14,14,3,256,256", 720, 720, 504),
]


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(("conv", "im2col", "sdk", "vw_sdk"), VW_SDK_TABLE)
def test_map_conv_reproduces_the_vw_sdk_table(
    capsys: pytest.CaptureFixture[str], conv: str, im2col: int, sdk: int, vw_sdk: int
) -> None:
    out = _json(capsys, "map", "--conv", conv, "--array", "512x512", "--json")
    assert (out["im2col"], out["sdk"], out["vw_sdk"]) == (im2col, sdk, vw_sdk)
    assert len(out["window"]) == 2


def test_map_network_json_adds_up(capsys: pytest.CaptureFixture[str]) -> None:
    out = _json(capsys, "map", "--chip", "pipesdfa-edge", "--network", "digits-mlp", "--json")
    layers = out["layers"]
    assert [r["kind"] for r in layers] == ["fc", "fc", "feedback"]
    assert sum(r["weight_arrays"] + r["feedback_arrays"] for r in layers) == out["arrays_used"]
    # BPTT's transposed copies are rows of their own, after the layers; the first layer
    # never back-propagates, so only the second has one: Wᵀ is 10 × 128, on one 128-row
    # block × ⌈128 / 16⌉ column blocks (16-bit weights on 4-bit cells: 128 / (2 · 4) = 16)
    out = _json(capsys, "map", "--chip", "pipelayer", "--network", "digits-mlp", "--json")
    layers = out["layers"]
    assert [r["kind"] for r in layers] == ["fc", "fc", "transpose"]
    assert (layers[2]["weighted"], layers[2]["n_in"], layers[2]["n_out"]) == (1, 10, 128)
    assert [r["transpose_arrays"] for r in layers] == [0, 8, 8]
    assert sum(r["weight_arrays"] for r in layers) + 8 == out["arrays_used"]
    # 64 × 128 on 128-row arrays holding 128 / (2 · 8/2) = 16 weights per row: 8 arrays.
    assert layers[0]["weight_arrays"] == 8
    assert out["arrays_total"] == 16 * 4 * 8


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        # tiny: 64 × 64 arrays, 16 weights per row (8-bit on 4-bit cells, differential);
        # 2312-1000: 37 × 63 arrays, 1000-10: 16 × 1, feedback 10 × 1000 in pairs: 1 × 32.
        (
            ["map", "--chip", "tiny", "--network", "nmnist-mlp2"],
            f"needs {37 * 63 + 16 + 32} crossbars (weights {37 * 63 + 16} + feedback 32)",
        ),
        (["map", "--conv", "1,2,3"], "--conv H,W,K,IC,OC: expected 5 positive integers"),
        (["map", "--chip", "tiny"], "give --chip and --network"),
        (["compare", "--network", "nmnist-mlp2"], "--grow places it"),
        (["compare", "--network", "digits-mlp", "--chip", "pipelayer"], "needs a pipesdfa chip"),
    ],
)
def test_bad_requests_are_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_compare_json_is_consistent(capsys: pytest.CaptureFixture[str]) -> None:
    out = _json(capsys, "compare", "--network", "digits-mlp", "--json")
    ps, pl = out["pipesdfa"], out["pipelayer"]
    assert out["speedup"] == pytest.approx(pl["time_ns_per_batch"] / ps["time_ns_per_batch"])
    assert out["energy_ratio"] == pytest.approx(
        pl["energy_pj_per_sample"] / ps["energy_pj_per_sample"]
    )
    assert ps["energy_pj_per_sample"] == pytest.approx(sum(ps["energy_breakdown_pj"].values()))
    assert ps["time_ns_per_sample"] == pytest.approx(ps["time_ns_per_batch"] / out["batch"])
    assert set(out["ablation"]) == {"time_steps", "data", "batch"}
    assert all(a["slowdown"] >= 1 for a in out["ablation"].values())


def test_compare_grows_both_chips_alike(capsys: pytest.CaptureFixture[str]) -> None:
    out = _json(capsys, "compare", "--network", "nmnist-mlp2", "--grow", "--json")
    assert out["pipesdfa"]["mapping"]["mesh"] == out["pipelayer"]["mapping"]["mesh"] != "4x4"


def test_measured_activity_feeds_compare(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "activity.json"
    _json(
        capsys,
        "train",
        "--network",
        "tiny-mlp",
        "--chip",
        "tiny",
        "--epochs",
        "1",
        "--activity-out",
        str(path),
        "--json",
    )
    activity = Activity.model_validate_json(path.read_text())
    # An MLP layer's input spikes are the previous layer's output spikes.
    assert activity.input_rates[1] == pytest.approx(activity.output_rates[0])
    assert 0 < activity.input_rates[0] < 1 and activity.write_fraction is not None
    measured = _json(
        capsys,
        "compare",
        "--network",
        "tiny-mlp",
        "--chip",
        "tiny",
        "--activity",
        str(path),
        "--json",
    )
    uniform = _json(capsys, "compare", "--network", "tiny-mlp", "--chip", "tiny", "--json")
    assert (
        measured["pipesdfa"]["energy_pj_per_sample"] != uniform["pipesdfa"]["energy_pj_per_sample"]
    )
    assert main(["compare", "--network", "digits-mlp", "--activity", str(path)]) == 2
    assert "measured on 'tiny-mlp'" in capsys.readouterr().err


def test_compare_paper_lists_every_network(capsys: pytest.CaptureFixture[str]) -> None:
    out = _json(capsys, "compare", "--paper", "--json")
    assert len(out["networks"]) == 8
    for row in out["networks"]:
        assert list(row["versus"]) == ["pipelayer", "pipelayer-edge"]
        for result in row["versus"].values():
            assert result["speedup"] > 0 and result["energy_ratio"] > 0
            assert result["line"].startswith(row["network"])
    import emulator.compare

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(emulator.compare, "PAPER_NETWORKS", ("braille-3fc",))
        one = _json(capsys, "compare", "--paper", "--baseline", "pipelayer-nvsim", "--json")
    assert [list(row["versus"]) for row in one["networks"]] == [["pipelayer-nvsim"]]


def test_compare_sensitivity_moves_each_assumption_on_both_chips(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from emulator.compare import compare
    from emulator.sensitivity import ASSUMPTIONS
    from emulator.spec import load_chip, load_network, with_fields

    plot = tmp_path / "tornado.png"
    argv = ["compare", "--network", "braille-3fc", "--sensitivity", "--json", "--plot", str(plot)]
    out = _json(capsys, *argv)
    assert out["plot"] == str(plot) and plot.stat().st_size > 0
    rows = out["sensitivity"]
    assert {r["field"] for r in rows} == {a.field for a in ASSUMPTIONS}
    influence = [r["influence"] for r in rows]
    assert influence == sorted(influence, reverse=True)
    net = load_network("braille-3fc")
    act = Activity.uniform(net, 0.1)
    picked = rows[:3] + [r for r in rows[3:] if r["field"].startswith("activity.")]
    for row in picked:  # each end is compare on both chips with the field set alike
        for k, value in enumerate((row["low"], row["high"])):
            names, at = ("pipesdfa-edge", "pipelayer"), act
            if row["field"] == "activity.spike_rate":  # every layer's inputs and outputs
                at = Activity.uniform(net, value)
            elif row["field"] == "activity.error_bit_rate":
                at = act.model_copy(update={"error_bit_rate": value})
            elif row["field"].startswith("activity."):  # one value per layer
                name = row["field"].removeprefix("activity.")
                at = act.model_copy(update={name: [value] * len(act.input_rates)})
            else:
                chips = [with_fields(load_chip(n), {row["field"]: value}) for n in names]
            if at is not act:
                chips = [load_chip(n) for n in names]
            alone = compare(net, *chips, at, batch=net.training.batch)
            assert row["speedup"][k] == pytest.approx(alone["speedup"], rel=1e-12)
            assert row["energy_ratio"][k] == pytest.approx(alone["energy_ratio"], rel=1e-12)
    shipped = compare(net, load_chip("pipesdfa-edge"), load_chip("pipelayer"), act, batch=32)
    assert out["speedup"] == shipped["speedup"]
    readout = next(r for r in rows if r["field"] == "crossbar.serial_readout")
    assert readout["speedup"][1] is None and "needs readout: if_counter" in readout["note"]


def test_the_sweep_covers_the_spike_rate_and_what_the_chip_measures(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The spike rate has its row, and the write-fraction and pulse ranges hold what
    training on the chip measures on digits (train --chip --activity-out)."""
    measured = tmp_path / "activity.json"
    argv = ["train", "--chip", "pipesdfa-edge", "--epochs", "5", "--activity-out", str(measured)]
    assert main([*argv, "--json"]) == 0
    capsys.readouterr()
    act = Activity.model_validate_json(measured.read_text())
    out = _json(capsys, "compare", "--network", "digits-mlp", "--sensitivity", "--json")
    rows = {r["field"]: r for r in out["sensitivity"]}
    rate = rows["activity.spike_rate"]
    assert rate["low"] <= min(act.input_rates + act.output_rates)
    assert rate["high"] >= max(act.input_rates + act.output_rates)
    assert rate["speedup"][0] != rate["speedup"][1]  # the spikes move the verdict
    fraction, pulses = rows["activity.write_fraction"], rows["activity.pulses_per_cell"]
    assert act.write_fraction and act.pulses_per_cell
    assert fraction["low"] <= min(act.write_fraction) and fraction["high"] == 1.0
    assert pulses["low"] <= min(act.pulses_per_cell) <= max(act.pulses_per_cell) <= pulses["high"]
    assert "measured" in fraction["source"] and "assumed" in rate["source"]
    assert out["activity"].startswith("assumed: spike rate 0.1")


def test_compare_paper_sensitivity_covers_every_paper_network(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from emulator.compare import PAPER_NETWORKS

    out = _json(
        capsys, "compare", "--paper", "--sensitivity", "--baseline", "pipelayer-edge", "--json"
    )
    assert [r["network"] for r in out["networks"]] == list(PAPER_NETWORKS)
    assert out["chips"] == {"pipesdfa": "pipesdfa-edge", "pipelayer": "pipelayer-edge"}
    conv = {r["network"]: r for r in out["networks"]}["dvsgesture-convnet"]
    g = next(r for r in conv["sensitivity"] if r["field"] == "mapping.conv_replication")
    assert g["influence"] > 0  # G moves a conv net ...
    mlp = {r["network"]: r for r in out["networks"]}["nmnist-mlp2"]
    g = next(r for r in mlp["sensitivity"] if r["field"] == "mapping.conv_replication")
    assert g["influence"] == 0  # ... and not an MLP


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--paper", "--plot", "x.png"], "--plot: with --paper, give --sensitivity"),
        (
            ["--network", "digits-mlp", "--baseline", "pipelayer", "--baseline", "pipelayer-edge"],
            "--baseline: one baseline",
        ),
        (["--paper", "--sensitivity", "--baseline", "a", "--baseline", "b"], "--baseline: one"),
        (["--paper", "--baseline", "pipesdfa-edge"], "needs a pipesdfa chip"),
        (["--network", "digits-mlp", "--baseline", "pipesdfa-edge"], "needs a pipesdfa chip"),
    ],
)
def test_compare_refuses_bad_combinations(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["compare", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_map_compare_and_iso_area_report_the_chips_area(capsys: pytest.CaptureFixture[str]) -> None:
    """Area by part in map --json, beside each side in compare, and --iso-area's chips."""
    from emulator.cost.area import PARTS

    out = _json(capsys, "map", "--chip", "pipelayer", "--network", "digits-mlp", "--json")
    assert set(out["area_breakdown_mm2"]) == set(PARTS)
    assert out["area_mm2"] == pytest.approx(sum(out["area_breakdown_mm2"].values()))
    iso = _json(capsys, "compare", "--network", "dvsgesture-convnet", "--iso-area", "--json")
    ps, pl = iso["pipesdfa"], iso["pipelayer"]
    from emulator.physics.growth import fit_chips

    _, fitted = fit_chips(
        load_network("dvsgesture-convnet"), load_chip("pipesdfa-edge"), load_chip("pipelayer")
    )
    grown = ps["mapping"]["chip"].removeprefix("pipesdfa-edge@")  # PipeLayer's is the larger
    assert pl["mapping"]["chip"] == f"pipelayer@{fitted.noc.mesh}"
    assert int(grown.split("x")[0]) > fitted.noc.rows
    assert 0.9 * pl["area_mm2"] < ps["area_mm2"] <= pl["area_mm2"]
