"""The trace of the emulated timeline against its oracle, the tiles' ops log: every op drawn
where the plan puts it, with the op's own duration, in a file a trace viewer accepts."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from emulator.chip.plan import Plan
from emulator.report.trace import NOC_KINDS, op_name, trace_events, write_trace
from emulator.run import run_emulation
from emulator.spec import load_chip, load_network, with_fields

LOG_SAMPLES = 2


# tiny-mlp: one PE core per layer; digits-mlp on the tiny chip: a layer on two PE cores, layers
# on two tiles (NoC flows between tiles); tiny-conv with the crossbar gradient datapath (its
# GRADs on the layers' morphable arrays, drawn on their home tiles)
CASES = [
    ("tiny-mlp", "tiny", {}),
    ("digits-mlp", "tiny", {}),
    ("tiny-conv", "tiny", {"tile.grad_datapath": "crossbar"}),
]


@pytest.fixture(scope="module", params=CASES, ids=[net for net, _, _ in CASES])
def run(request: pytest.FixtureRequest) -> tuple[Plan, list[dict[str, Any]], dict[str, Any]]:
    name, chip_name, fields = request.param
    net, chip = load_network(name), with_fields(load_chip(chip_name), fields)
    result = run_emulation(net, chip, runtime="local", epochs=1, log_samples=LOG_SAMPLES)
    plan = Plan(chip, net, 0, "sdfa", net.training.lr, net.training.optimizer)
    ops = result["ops_log"]
    return plan, ops, trace_events(plan, ops)


def _events(trace: dict[str, Any], ph: str) -> list[dict[str, Any]]:
    return [e for e in trace["traceEvents"] if e["ph"] == ph]


def _core_names(trace: dict[str, Any]) -> dict[int, str]:
    return {e["pid"]: e["args"]["name"] for e in _events(trace, "M") if e["name"] == "process_name"}


def test_top_level_and_json(run: tuple, tmp_path: Path) -> None:
    _, ops, trace = run
    assert set(trace) == {"traceEvents", "displayTimeUnit", "otherData"}
    assert trace["displayTimeUnit"] == "ns"
    assert trace["otherData"]["samples"] == list(range(LOG_SAMPLES))
    assert trace["otherData"]["ops"] == len(ops)
    path = write_trace(tmp_path / "run.trace.json", trace)
    assert json.loads(path.read_text()) == trace


def test_required_keys(run: tuple) -> None:
    _, _, trace = run
    required = {
        "X": {"name", "ph", "ts", "pid", "tid", "dur", "cat"},
        "M": {"name", "ph", "pid", "tid", "args"},
        "s": {"name", "ph", "ts", "pid", "tid", "id", "cat"},
        "f": {"name", "ph", "ts", "pid", "tid", "id", "cat", "bp"},
    }
    for event in trace["traceEvents"]:
        assert required[event["ph"]] <= set(event), event
        if event["ph"] == "M":
            assert "name" in event["args"] or "sort_index" in event["args"]
        else:
            assert isinstance(event["ts"], float)


def test_one_process_per_core_in_plan_order(run: tuple) -> None:
    plan, _, trace = run
    names = _core_names(trace)
    assert [names[pid] for pid in sorted(names)] == plan.cores
    order = {
        e["pid"]: e["args"]["sort_index"]
        for e in _events(trace, "M")
        if e["name"] == "process_sort_index"
    }
    assert sorted(names, key=order.__getitem__) == sorted(names)
    threads = {(e["pid"], e["tid"]) for e in _events(trace, "M") if e["name"] == "thread_name"}
    used = {(e["pid"], e["tid"]) for e in trace["traceEvents"] if e["ph"] != "M"}
    assert used <= threads


def test_ts_monotone_per_track(run: tuple) -> None:
    _, _, trace = run
    last: dict[tuple[int, int], float] = {}
    for event in trace["traceEvents"]:
        if event["ph"] == "M":
            continue
        track = (event["pid"], event["tid"])
        assert event["ts"] >= last.get(track, 0.0), event
        last[track] = event["ts"]


def test_slices_do_not_overlap_within_a_track(run: tuple) -> None:
    _, _, trace = run
    end: dict[tuple[int, int], float] = {}
    for event in _events(trace, "X"):
        track = (event["pid"], event["tid"])
        assert event["ts"] >= end.get(track, 0.0) - 1e-12, event
        end[track] = event["ts"] + event["dur"]


def test_every_core_has_a_slice(run: tuple) -> None:
    plan, _, trace = run
    names = _core_names(trace)
    cores = Counter(names[e["pid"]] for e in _events(trace, "X"))
    assert all(cores[core] >= 1 for core in plan.cores), cores


def test_slice_durations_are_the_ops(run: tuple) -> None:
    plan, ops, trace = run
    by_name: dict[str, list[dict[str, Any]]] = {}
    for op in ops:
        by_name.setdefault(op_name(op, len(plan.layers)), []).append(op)
    assert all(len(same) == 1 for same in by_name.values())
    for event in _events(trace, "X"):
        (op,) = by_name[event["name"]]
        assert event["cat"] == op["kind"]
        assert event["ts"] * 1e6 == pytest.approx(op["start_ps"], abs=1e-3)
        assert event["dur"] * 1e6 == pytest.approx(op["end_ps"] - op["start_ps"], abs=1e-3)
        assert event["args"]["start_ps"] == op["start_ps"]
        assert event["args"]["end_ps"] == op["end_ps"]
        assert event["args"]["resource"] == op["resource"]


def test_every_op_is_drawn_where_the_plan_puts_it(run: tuple) -> None:
    plan, ops, trace = run
    names = _core_names(trace)
    drawn = Counter((e["name"], names[e["pid"]]) for e in _events(trace, "X"))
    layers = len(plan.layers)
    assert plan.feedback is not None
    for op in ops:
        name, kind = op_name(op, layers), op["kind"]
        if kind in ("XBAR_READ", "WRITE"):
            cores = list(plan.layers[op["layer"]].pes)
        elif kind == "NEURON" or (kind == "GRAD" and op["resource"].startswith("gradxbar:")):
            cores = [plan.layers[op["layer"]].home]
        elif kind == "GRAD":
            cores = ["tile-" + op["resource"].removeprefix("grad:t")]
        elif kind == "FEEDBACK":
            cores = [*plan.feedback.pes, plan.feedback.home]
        else:
            src, dst = op["resource"].removeprefix("noc:").split(">")
            cores = [f"tile-{src[1:]}", f"tile-{dst[1:]}"]
        for core, times in Counter(cores).items():  # a same-tile transfer: out and in
            assert drawn[name, core] == times, (name, core)


def test_xbar_reads_per_pe(run: tuple) -> None:
    plan, ops, trace = run
    names = _core_names(trace)
    logged = Counter(op["layer"] for op in ops if op["kind"] == "XBAR_READ")
    per_pe = Counter(names[e["pid"]] for e in _events(trace, "X") if e["cat"] == "XBAR_READ")
    for layer in plan.layers:
        assert logged[layer.index] > 0
        for pe in layer.pes:
            assert per_pe[pe] == logged[layer.index], pe


def test_flows_pair_up_from_source_to_destination(run: tuple) -> None:
    _, ops, trace = run
    names = _core_names(trace)
    starts = {e["id"]: e for e in _events(trace, "s")}
    ends = {e["id"]: e for e in _events(trace, "f")}
    assert len(starts) == len(_events(trace, "s"))
    assert starts.keys() == ends.keys()
    assert len(starts) == sum(op["kind"] in NOC_KINDS for op in ops)
    for flow, s in starts.items():
        f = ends[flow]
        assert f["bp"] == "e"
        assert (s["cat"], s["name"]) == (f["cat"], f["name"]) == ("noc", s["name"])
        assert f["ts"] >= s["ts"]
        src, dst = names[s["pid"]], names[f["pid"]]
        assert src.startswith("tile-") and dst.startswith("tile-")


def test_flows_bind_to_one_enclosing_noc_slice(run: tuple) -> None:
    _, _, trace = run
    slices = _events(trace, "X")
    for flow in _events(trace, "s") + _events(trace, "f"):
        enclosing = [
            e
            for e in slices
            if (e["pid"], e["tid"], e["name"]) == (flow["pid"], flow["tid"], flow["name"])
            and e["ts"] <= flow["ts"] <= e["ts"] + e["dur"] + 1e-12
        ]
        others = [
            e
            for e in slices
            if (e["pid"], e["tid"]) == (flow["pid"], flow["tid"])
            and e["name"] != flow["name"]
            and e["ts"] <= flow["ts"] <= e["ts"] + e["dur"]
        ]
        assert len(enclosing) == 1 and not others, flow


def test_empty_log_and_unknown_kind(run: tuple) -> None:
    plan, ops, _ = run
    empty = trace_events(plan, [])
    assert not [e for e in empty["traceEvents"] if e["ph"] != "M"]
    with pytest.raises(ValueError, match="op kind 'ERR'"):
        trace_events(plan, [{**ops[0], "kind": "ERR"}])
