"""Both sides of a comparison get their activity by one rule: the reference trainer's record
(:class:`emulator.cost.record.TrainingRecorder`) is, for SDFA on a PipeSDFA chip, exactly the
record the emulated cores keep; PipeLayer's is the same recorder on BPTT; and the chips'
assumed ``activity`` fields then decide nothing in ``run`` or in ``compare --activity``."""

from __future__ import annotations

import json

import pytest

import emulator.run as emulation
from emulator.cli import main
from emulator.compare import recorded_training
from emulator.physics.mapping import map_network
from emulator.spec import load_chip, load_network, training_options, with_fields
from emulator.train import load_for, run_training

CASES = {"tiny": ("tiny-mlp", "tiny"), "conv": ("tiny-conv", "tiny")}


def _cores_record(network: str, chip: str, kept: dict):
    result = emulation.run_emulation(
        load_network(network), load_chip(chip), runtime="local", epochs=2, frame_samples=7
    )
    return result, kept["timeline"].record


def _reference_record(network: str, chip: str, algorithm: str):
    net = load_network(network)
    t = training_options(net, epochs=2)
    record, result = recorded_training(
        net,
        load_chip(chip),
        load_for(net, "digits", None, 0),
        algorithm=algorithm,
        seed=0,
        epochs=2,
        batch=t.batch,
        lr=t.lr,
        optimizer=t.optimizer,
    )
    return result, record


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_reference_records_what_the_cores_record(case: str, kept_timeline: dict) -> None:
    result, cores = _cores_record(*CASES[case], kept_timeline)
    reference, recorded = _reference_record(*CASES[case], "sdfa")
    assert result["weights_sha256"] == reference["weights_sha256"]  # the same training
    assert recorded.samples == cores.samples and recorded.sizes() == cores.sizes()
    assert recorded == cores  # every op's rates, every batch's writes, bit for bit
    assert any(w > 0 for batch in recorded.writes for w, _ in batch)  # writes were seen
    # a fraction of one copy's cells (duplicated kernels are programmed alike, not counted)
    unique = [
        lm.unique_cells
        for lm in map_network(load_chip(CASES[case][1]), load_network(CASES[case][0])).layers
    ]
    for batch in recorded.writes:
        for (fraction, _), cells in zip(batch, unique, strict=True):
            assert fraction <= 1 and abs(fraction * cells - round(fraction * cells)) < 1e-6


def test_the_baseline_is_costed_on_its_own_bptt_training() -> None:
    """``run``'s PipeLayer side is BPTT trained on the baseline chip's crossbar model (the
    reference trainer is the oracle), and says so."""
    net, chip = load_network("tiny-mlp"), load_chip("tiny")
    result = emulation.run_emulation(
        net, chip, runtime="local", epochs=1, baseline="pipelayer-edge"
    )
    bptt = run_training(
        net,
        chip=load_chip("pipelayer-edge"),
        dataset="digits",
        data=None,
        algorithm="bptt",
        seed=0,
        epochs=1,
    )
    c = result["comparison"]
    assert c["baseline_training"]["weights_sha256"] == bptt["weights_sha256"]
    assert c["baseline_training"]["test_accuracy"] == bptt["test_accuracy"]
    assert c["activity"]["pipesdfa"].startswith("measured: the emulated cores' sdfa")
    assert c["activity"]["pipelayer"].startswith("measured: BPTT")


def _assumed(chip, **values):
    return with_fields(chip, {f"activity.{k}": v for k, v in values.items()})


def test_a_baselines_assumed_activity_decides_nothing_in_run() -> None:
    net, chip = load_network("tiny-mlp"), load_chip("tiny")
    plain = load_chip("pipelayer-edge")
    other = _assumed(plain, write_fraction=0.95, error_bit_rate=0.9, pulses_per_cell=7.0)
    a = emulation.run_emulation(net, chip, runtime="local", epochs=1, baseline=plain)
    b = emulation.run_emulation(net, chip, runtime="local", epochs=1, baseline=other)
    assert a["comparison"] == b["comparison"]


def test_a_baselines_assumed_activity_decides_nothing_in_compare_activity(
    tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One measured file costs both chips (its writes too): the baselines' own assumptions
    are never read; a second file is the baseline's own."""
    ours, theirs = tmp_path / "ps.json", tmp_path / "pl.json"
    for path, chip, algorithm in ((ours, "tiny", "sdfa"), (theirs, "pipelayer-edge", "bptt")):
        code = main(
            [
                "train",
                "--network",
                "tiny-mlp",
                "--chip",
                chip,
                "--algorithm",
                algorithm,
                "--epochs",
                "1",
                "--activity-out",
                str(path),
                "--json",
            ]
        )
        assert code == 0
    capsys.readouterr()
    plain = load_chip("pipelayer-edge")
    other = _assumed(plain, write_fraction=0.95, error_bit_rate=0.9, pulses_per_cell=7.0)
    files = {}
    for name, chip in (("plain", plain), ("other", other)):
        files[name] = tmp_path / f"{name}.yaml"
        files[name].write_text(json.dumps(chip.model_dump(mode="json")))

    def compare(baseline, *extra: str) -> dict:
        argv = ["compare", "--network", "tiny-mlp", "--chip", "tiny", "--baseline", baseline]
        assert main([*argv, "--activity", str(ours), *extra, "--json"]) == 0
        return json.loads(capsys.readouterr().out)

    same = compare(str(files["plain"])), compare(str(files["other"]))
    for key in ("speedup", "energy_ratio", "pipelayer"):
        assert same[0][key] == same[1][key], key
    assert same[0]["activity"] == {
        "pipesdfa": f"measured: {ours}",
        "pipelayer": f"measured: {ours}",
    }
    own = compare(str(files["plain"]), "--baseline-activity", str(theirs))
    assert own["activity"]["pipelayer"] == f"measured: {theirs}"
    assert own["pipelayer"] != same[0]["pipelayer"]  # its own measured writes and spikes


def test_a_write_programs_every_duplicated_kernel() -> None:
    """A measured write fraction is of one copy's cells; the WRITE charges it on every
    duplicated VW-SDK kernel and every replica (closed form)."""
    from emulator.cost import CostModel
    from emulator.physics.mapping import map_network

    net, chip = load_network("tiny-conv"), load_chip("tiny")
    lm = map_network(chip, net).layers[0]
    assert lm.scheme == "vw-sdk" and lm.copies > 1
    assert lm.unique_cells * lm.copies == lm.cells
    op = CostModel(chip, net).write(0, 0.25, 3.0)
    pulses = 0.25 * lm.unique_cells * lm.copies * lm.replicas * 3.0
    assert op.energy_pj["write"] == pytest.approx(pulses * chip.device.write_energy_pj)


def test_the_run_table_lists_every_component_either_side_spent() -> None:
    """Rows for the union of both breakdowns (a part only one side spends included), so
    the rows add up to both totals."""
    from emulator.report.text import energy_rows

    ours = {"read": 2.0, "feedback": 3.0, "write": 0.0}
    theirs = {"read": 5.0, "error_backprop": 7.0, "noc": 1.0, "spill": 0.0}
    rows = energy_rows(ours, theirs)
    assert [r[0].strip() for r in rows] == ["read", "feedback", "error_backprop", "noc"]
