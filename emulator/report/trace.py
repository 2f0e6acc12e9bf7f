"""The emulated timeline as a Chrome / Perfetto trace (Trace Event Format, JSON object form).

Input: the ops the tiles stamped for the first training samples,
``run_emulation(..., log_samples=N)["ops_log"]`` (:func:`emulator.run.ops_log`). Open the
file in https://ui.perfetto.dev or chrome://tracing.

One *process* per core of the plan (tiles, then PE cores, in :attr:`Plan.cores` order), with
threads inside. Where each op is drawn (a complete ``X`` slice, ``cat`` = the op kind):

- XBAR_READ and WRITE of layer k: on every PE core of layer k ("arrays"): its arrays are read
  and written in parallel, so each PE gets the whole op.
- NEURON of layer k: on layer k's home tile, thread "neurons Lk".
- GRAD on resource ``grad:tK``: tile K, thread "gradient unit"; on ``gradxbar:L`` (the
  crossbar datapath): layer L's home tile, thread "gradient arrays L".
- FEEDBACK: every PE core of the feedback group ("arrays") and every tile the group sits on
  ("feedback group").
- NoC ops (``noc:tA>tB``): a slice on tile A's "NoC out" thread and one on tile B's "NoC in"
  thread (a same-tile transfer takes 0 ps and still shows as a zero-length slice), linked by a
  flow (``s`` on A at the op's start, ``f`` bound to the enclosing slice on B at its end).
  NoC ops are contention-free, so overlapping transfers go to further lanes ("NoC out 2", …).

Times: ``ts`` and ``dur`` in µs (the format's unit), ps / 1e6, as floats.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from emulator.chip.frames import tile_name
from emulator.chip.plan import LayerPlan, Plan
from emulator.outputs import write_atomic

NOC_KINDS = ("NOC_SPIKES", "NOC_ERROR", "NOC_FEEDBACK")
_NOC_RE = re.compile(r"^noc:t(\d+)>t(\d+)$")
_GRAD_RE = re.compile(r"^grad:t(\d+)$")
_PS_PER_US = 1e6

# Threads are keyed (group, index) so that they sort in this order on a core.
_NEURONS, _GRAD, _GRAD_ARRAYS, _FEEDBACK, _NOC_OUT, _NOC_IN, _ARRAYS = range(7)


def _thread_name(key: tuple[int, int]) -> str:
    group, index = key
    if group == _NEURONS:
        return f"neurons L{index}"
    if group == _GRAD_ARRAYS:
        return f"gradient arrays L{index}"
    lane = "" if index == 0 else f" {index + 1}"
    return {
        _GRAD: "gradient unit",
        _FEEDBACK: "feedback group",
        _NOC_OUT: f"NoC out{lane}",
        _NOC_IN: f"NoC in{lane}",
        _ARRAYS: f"arrays{lane}",
    }[group]


def op_name(op: dict[str, Any], layers: int) -> str:
    """A slice's name: ``XBAR_READ L0 n2 t3``, ``GRAD L1 n0``, ``FEEDBACK n0``,
    ``WRITE L0 b0`` (the layer is left out of the feedback group's ops, numbered ``layers``)."""
    parts = [op["kind"]]
    if 0 <= op["layer"] < layers:
        parts.append(f"L{op['layer']}")
    if op["sample"] >= 0:
        parts.append(f"n{op['sample']}")
    else:
        parts.append(f"b{op['batch']}")
    if op["step"] >= 0:
        parts.append(f"t{op['step']}")
    return " ".join(parts)


def noc_tiles(resource: str) -> tuple[str, str]:
    """(source, destination) tile cores of a NoC resource ``noc:tA>tB``."""
    match = _NOC_RE.match(resource)
    if match is None:
        raise ValueError(f"not a NoC resource: {resource!r} (noc:tA>tB)")
    return tile_name(int(match[1])), tile_name(int(match[2]))


class _Lanes:
    """Greedy lanes for slices that may overlap (the contention-free NoC): each slice goes to
    the first lane free before its start (strictly, so that a flow at a slice's end or start
    has one enclosing slice to bind to)."""

    def __init__(self) -> None:
        self.ends: dict[tuple[str, int], list[int]] = {}

    def take(self, core: str, group: int, start: int, end: int) -> int:
        ends = self.ends.setdefault((core, group), [])
        for lane, free in enumerate(ends):
            if free < start:
                ends[lane] = end
                return lane
        ends.append(end)
        return len(ends) - 1


class _Trace:
    """Slices and flows by core and thread; numbered into pids / tids at the end."""

    def __init__(self, plan: Plan) -> None:
        self.cores = list(dict.fromkeys(plan.cores))
        self.events: list[tuple[str, tuple[int, int], dict[str, Any]]] = []

    def add(self, core: str, thread: tuple[int, int], event: dict[str, Any]) -> None:
        if core not in self.cores:
            self.cores.append(core)
        self.events.append((core, thread, event))

    def finish(self) -> list[dict[str, Any]]:
        pids = {core: i + 1 for i, core in enumerate(self.cores)}
        threads: dict[str, set[tuple[int, int]]] = {}
        for core, thread, _ in self.events:
            threads.setdefault(core, set()).add(thread)
        tids = {
            (core, thread): i + 1
            for core, keys in threads.items()
            for i, thread in enumerate(sorted(keys))
        }
        out: list[dict[str, Any]] = []
        for core in self.cores:
            pid = pids[core]
            out.append(_meta("process_name", pid, 0, name=core))
            out.append(_meta("process_sort_index", pid, 0, sort_index=pid))
            for thread in sorted(threads.get(core, ())):
                tid = tids[core, thread]
                out.append(_meta("thread_name", pid, tid, name=_thread_name(thread)))
                out.append(_meta("thread_sort_index", pid, tid, sort_index=tid))
        tracks: dict[tuple[int, int], list[dict[str, Any]]] = {}
        for core, thread, event in self.events:
            pid, tid = pids[core], tids[core, thread]
            tracks.setdefault((pid, tid), []).append({**event, "pid": pid, "tid": tid})
        for key in sorted(tracks):
            # a slice before the flow events it encloses; a longer slice before a nested one
            out += sorted(tracks[key], key=lambda e: (e["ts"], e["ph"] != "X", -e.get("dur", 0.0)))
        return out


def _meta(event: str, pid: int, tid: int, **args: Any) -> dict[str, Any]:
    return {"name": event, "ph": "M", "pid": pid, "tid": tid, "args": args}


def _slice(op: dict[str, Any], name: str) -> dict[str, Any]:
    args = {k: op[k] for k in ("layer", "sample", "step", "batch") if op[k] >= 0}
    args |= {
        "resource": op["resource"],
        "start_ps": op["start_ps"],
        "end_ps": op["end_ps"],
        "stamped_by": op["core"],
    }
    return {
        "name": name,
        "cat": op["kind"],
        "ph": "X",
        "ts": op["start_ps"] / _PS_PER_US,
        "dur": (op["end_ps"] - op["start_ps"]) / _PS_PER_US,
        "args": args,
    }


def trace_events(plan: Plan, ops: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The trace of ``ops`` (an ops log of a run of ``plan``) as a Trace Event Format object.

    Parameters
    ----------
    plan
        The run's plan: which cores hold each layer and the feedback group.
    ops
        Logged ops: dicts with core, kind, layer, resource, batch, sample, step, start_ps,
        end_ps (:data:`emulator.run.LOG_FIELDS`).

    Returns
    -------
    dict
        ``{"traceEvents": [...], "displayTimeUnit": "ns", "otherData": {...}}``; each
        track's events in time order.
    """
    ops = sorted(ops, key=lambda op: (op["start_ps"], op["end_ps"]))
    trace, lanes, flows = _Trace(plan), _Lanes(), 0
    layers = len(plan.layers)
    for op in ops:
        kind, name = op["kind"], op_name(op, layers)
        event = _slice(op, name)
        if kind in ("XBAR_READ", "WRITE"):
            for pe in _layer(plan, op).pes:
                trace.add(pe, (_ARRAYS, 0), event)
        elif kind == "NEURON":
            trace.add(_layer(plan, op).home, (_NEURONS, op["layer"]), event)
        elif kind == "GRAD":
            match = _GRAD_RE.match(op["resource"])
            if op["resource"].startswith("gradxbar:"):  # the crossbar datapath's arrays
                trace.add(_layer(plan, op).home, (_GRAD_ARRAYS, op["layer"]), event)
            elif match is None:
                raise ValueError(f"GRAD on {op['resource']!r}: expected grad:tK or gradxbar:L")
            else:
                trace.add(tile_name(int(match[1])), (_GRAD, 0), event)
        elif kind == "FEEDBACK":
            if plan.feedback is None or plan.mapping.feedback is None:
                raise ValueError(f"{name}: the plan has no feedback group")
            for pe in plan.feedback.pes:
                trace.add(pe, (_ARRAYS, 0), event)
            for tile in plan.mapping.feedback.tiles:
                trace.add(tile_name(tile), (_FEEDBACK, 0), event)
        elif kind in NOC_KINDS:
            src, dst = noc_tiles(op["resource"])
            start, end = op["start_ps"], op["end_ps"]
            out = (_NOC_OUT, lanes.take(src, _NOC_OUT, start, end))
            into = (_NOC_IN, lanes.take(dst, _NOC_IN, start, end))
            flow = {"name": name, "cat": "noc", "id": flows}
            trace.add(src, out, event)
            trace.add(dst, into, event)
            trace.add(src, out, {**flow, "ph": "s", "ts": event["ts"]})
            trace.add(dst, into, {**flow, "ph": "f", "bp": "e", "ts": end / _PS_PER_US})
            flows += 1
        else:
            raise ValueError(f"op kind {kind!r} is not one the PipeSDFA tiles log")
    samples = sorted({op["sample"] for op in ops if op["sample"] >= 0})
    return {
        "traceEvents": trace.finish(),
        "displayTimeUnit": "ns",
        "otherData": {
            "network": plan.net.name,
            "chip": plan.chip.name,
            "algorithm": plan.algorithm,
            "seed": plan.seed,
            "samples": samples,
            "ops": len(ops),
            "flows": flows,
            "end_ps": max((op["end_ps"] for op in ops), default=0),
        },
    }


def _layer(plan: Plan, op: dict[str, Any]) -> LayerPlan:
    if not 0 <= op["layer"] < len(plan.layers):
        raise ValueError(f"{op['kind']} of layer {op['layer']}: the plan has {len(plan.layers)}")
    return plan.layers[op["layer"]]


def write_trace(path: str | Path, events: dict[str, Any]) -> Path:
    """Write a trace (:func:`trace_events`) as JSON, whole or not at all; returns the path."""
    return write_atomic(path, json.dumps(events, separators=(",", ":")))
