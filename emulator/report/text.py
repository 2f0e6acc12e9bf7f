"""Results as text: the tables and summaries the commands print (their ``--json`` forms are
the results themselves)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from emulator.report.tables import table
from emulator.units import count, si

if TYPE_CHECKING:
    from emulator.run import RunResult


def energy_rows(ours: dict[str, float], theirs: dict[str, float]) -> list[list[str]]:
    """One row per energy component either side spent (both breakdowns' keys, in order),
    so the rows add up to both totals."""
    rows = []
    for part in dict.fromkeys([*ours, *theirs]):
        value, other = ours.get(part, 0.0), theirs.get(part, 0.0)
        if value or other:
            rows.append([f"  {part}", si(value, "pJ"), si(other, "pJ")])
    return rows


def activity_lines(activity: dict[str, str]) -> list[str]:
    """Where each side's activity came from, a line each."""
    return [f"activity of {side}: {source}" for side, source in activity.items()]


def compare_text(r: dict[str, Any]) -> str:
    """``pipesdfa compare`` on one network."""
    ps, pl = r["pipesdfa"], r["pipelayer"]
    lines = [
        f"{r['network']}, batch {r['batch']}: PipeSDFA on {ps['mapping']['chip']} vs "
        f"PipeLayer on {pl['mapping']['chip']}",
        "",
    ]
    rows = [
        ["time per batch", si(ps["time_ns_per_batch"], "ns"), si(pl["time_ns_per_batch"], "ns")],
        ["time per sample", si(ps["time_ns_per_sample"], "ns"), si(pl["time_ns_per_sample"], "ns")],
        [
            "energy per sample",
            si(ps["energy_pj_per_sample"], "pJ"),
            si(pl["energy_pj_per_sample"], "pJ"),
        ],
    ]
    rows.insert(0, ["area", f"{ps['area_mm2']:.3g} mm²", f"{pl['area_mm2']:.3g} mm²"])
    rows += energy_rows(ps["energy_breakdown_pj"], pl["energy_breakdown_pj"])
    lines.append(table(rows, ["", "PipeSDFA", "PipeLayer"]))
    lines.append("")
    lines += activity_lines(r["activity"])
    lines.append(f"speedup {r['speedup']:.3g}x   energy ratio {r['energy_ratio']:.3g}x")
    ablation = ", ".join(
        f"{level} off {a['slowdown']:.3g}x slower" for level, a in r["ablation"].items()
    )
    lines.append(f"ablation (PipeSDFA): {ablation}")
    lines.extend(f"  - {term}" for term in r["dominant_terms"])
    return "\n".join(lines)


def paper_text(result: dict[str, Any]) -> str:
    """``pipesdfa compare --paper``: every paper network against each baseline."""
    lo_s, hi_s = result["paper"]["speedup"]
    lo_e, hi_e = result["paper"]["energy_ratio"]
    baselines = result["chips"]["baselines"]
    rows = [
        [r["network"], r["batch"], r["mesh"], r["pipesdfa"]["area_mm2"]]
        + [
            x
            for b in baselines
            for x in (
                r["versus"][b]["speedup"],
                r["versus"][b]["energy_ratio"],
                r["versus"][b]["pipelayer"]["area_mm2"],
            )
        ]
        for r in result["networks"]
    ]
    header = ["network", "batch", "mesh", "area mm²"]
    for b in baselines:
        header += [f"speedup vs {b}", f"energy vs {b}", f"{b} mm²"]
    lines = [
        f"PipeSDFA ({result['chips']['pipesdfa']}) vs PipeLayer "
        f"({', '.join(baselines)}), spike rate {result['spike_rate']}; "
        f"paper: speedup {lo_s}–{hi_s}x, energy ratio {lo_e}–{hi_e}x",
        "",
        table(rows, header),
        "",
    ]
    lines.extend(f"- {r['versus'][b]['line']}" for r in result["networks"] for b in baselines)
    lines.append(f"({result['wall_s']:.2f} s)")
    return "\n".join(lines)


def sensitivity_text(result: dict[str, Any]) -> str:
    """One table per network (a paper result holds several) of how each assumption moves
    the speedup and the energy ratio."""
    networks = result.get("networks", [result])
    lines = []
    for r in networks:
        lines += [
            f"{r['network']}, batch {r['batch']}: PipeSDFA ({r['chips']['pipesdfa']}) vs "
            f"PipeLayer ({r['chips']['pipelayer']}): speedup {r['speedup']:.3g}x, "
            f"energy ratio {r['energy_ratio']:.3g}x as shipped",
            "",
        ]
        rows = [
            [x["field"], str(x["low"]), str(x["high"]), *x["speedup"], *x["energy_ratio"]]
            for x in r["sensitivity"]
        ]
        header = ["field", "low", "high", "speedup low", "high", "energy low", "high"]
        lines += [table(rows, header), ""]
        lines += [f"- {x['field']}: {x['note']}" for x in r["sensitivity"] if "note" in x]
        lines += [f"- {x['field']}: {x['source']}" for x in r["sensitivity"][:3]]
        lines.append("")
    if "wall_s" in result:
        lines.append(f"({result['wall_s']:.2f} s)")
    if "plot" in result:
        lines.append(f"plot: {result['plot']}")
    return "\n".join(lines).rstrip()


def run_text(r: RunResult) -> str:
    """``pipesdfa run``: the run, its accuracy and the comparison."""
    where = f"{r.runtime} runtime"
    if r.runtime == "ray":
        where += f", {r.actors} actors ({r.cores['tiles']} tiles + {r.cores['pe_cores']} PE cores)"
    lines = [
        f"{r.network} on {r.chip} · {r.dataset} · {r.algorithm} · "
        f"{r.epochs} epochs · seed {r.seed} · {where}",
        f"  train accuracy {r.train_accuracy:.4f}   test accuracy {r.test_accuracy:.4f}"
        f"   wall {r.wall_s:.1f} s   {r.frames:,} frames, {r.packets:,} packets",
        f"  weights sha256 {r.weights_sha256}",
    ]
    if r.phases_s:
        phases = ", ".join(f"{k} {v:.1f} s" for k, v in r.phases_s.items())
        lines.append(f"  wall by phase: {phases}")
    ckpt = r.checkpoints
    if ckpt["resumed_from_batch"] is not None:
        lines.append(f"  resumed after training batch {ckpt['resumed_from_batch']}")
    if ckpt["dir"] and ckpt["saved"]:
        lines.append(
            f"  {ckpt['saved']} checkpoints saved in {ckpt['dir']} "
            f"(the last after training batch {ckpt['last_after_batch']})"
        )
    for rec in r.recoveries:
        lines.append(
            f"  actor {', '.join(rec['actors'])} died: restarted, back to batch "
            f"{rec['restored_to_batch']}, {rec['replayed_batches']} batches replayed"
        )
    c = r.comparison
    if c is not None:
        pl = c.pipelayer
        rows = [
            ["area", f"{r.area_mm2:.3g} mm²", f"{pl['area_mm2']:.3g} mm²"],
            ["emulated time", si(r.time_ns, "ns"), si(pl["time_ns"], "ns")],
            ["energy", si(r.energy_pj, "pJ"), si(pl["energy_pj"], "pJ")],
        ]
        rows += energy_rows(r.energy_breakdown_pj, pl["energy_breakdown_pj"])
        bl = c.baseline_training
        lines += [
            "",
            f"Training on the chip ({r.samples_trained:,} samples, {r.cycles:,} cycles) vs "
            f"PipeLayer ({c.baseline}), each on its own measured activity:",
            table(rows, ["", "PipeSDFA (emulated)", "PipeLayer (cost model)"]),
            f"speedup {c.speedup:.3g}x   energy ratio {c.energy_ratio:.3g}x",
            *activity_lines(c.activity),
            f"  (PipeLayer's BPTT there: train accuracy {bl['train_accuracy']:.4f}, "
            f"test accuracy {bl['test_accuracy']:.4f})",
        ]
    return "\n".join(lines)


def scale_text(result: dict[str, Any]) -> str:
    """``pipesdfa scale``: one row per point of the sweep."""
    lines = [
        f"{result['network']} on {result['chip']} (vs {result['baseline']}), "
        f"{result['mode']} sweep of {', '.join(result['fields'])}",
        "",
    ]
    rows = []
    for r in result["points"]:
        if not r["fits"]:
            rows.append([r["label"], "does not fit", None, None, None, None])
            continue
        rows.append(
            [
                r["label"],
                r["samples_per_s"],
                si(r["energy_pj_per_sample"], "pJ"),
                r["utilisation"],
                r["speedup"],
                r["energy_ratio"],
            ]
        )
    header = ["point", "samples/s", "energy/sample", "utilisation", "speedup", "energy ratio"]
    lines.append(table(rows, header))
    for r in result["points"]:
        if not r["fits"]:
            lines.append(f"- {r['label']}: {r['reason']}")
        if r.get("baseline_reason"):
            lines.append(f"- {r['label']}: no ratios: {r['baseline_reason']}")
        scaling = r.get("cpu_scaling")
        if scaling:
            lines.append(f"- {r['label']}: the emulator on 1 .. N CPUs (wall clock):")
            lines.append(
                table(
                    [
                        [
                            x["cpus"],
                            x["wall_s"],
                            x["wall_speedup"],
                            x["parallel_efficiency"],
                            "yes" if x["identical"] else "NO",
                        ]
                        for x in scaling["runs"]
                    ],
                    ["cpus", "wall s", "speedup", "efficiency", "identical results"],
                )
            )
    if "plot" in result:
        lines.append(f"plot: {result['plot']}")
    return "\n".join(lines)


def calibrate_text(result: dict[str, Any]) -> str:
    """``pipesdfa calibrate``: each published figure beside ours, and the term behind it."""
    rows = [
        [
            r["chip"],
            r["figure"],
            r["unit"],
            f"{r['published']:g}",
            r["ours"],
            f"{r['error']:+.1%}",
            r["status"],
        ]
        for r in result["rows"]
    ]
    header = ["chip", "figure", "unit", "published", "ours", "error", "status"]
    tol = f"{result['tolerance']:.0%}"
    lines = [
        f"The cost model against published chips (within: |error| <= {tol}; nothing fitted)",
        "",
        table(rows, header),
        "",
    ]
    for r in result["rows"]:
        lines.append(f"- {r['chip']} {r['figure']} ({r['status']}): {r['term']}")
    lines.append("")
    for name, c in result["chips"].items():
        conditions = ", ".join(f"{k}={v}" for k, v in c["conditions"].items())
        power = ", ".join(f"{k} {v:.3g}" for k, v in sorted(c["power_w"].items(), key=_big))
        lines += [
            f"{name}: {c['preset']}{f' with {conditions}' if conditions else ''} ({c['source']})",
            f"  workload: {c['workload']}; {c['arrays']:,} arrays, {c['gops']:.4g} GOPS/s, "
            f"{si(c['ns_per_sample'], 'ns')} per input",
            f"  power W: {power}",
        ]
    return "\n".join(lines)


def _big(item: tuple[str, float]) -> float:
    return -item[1]


def checkpoint_text(info: dict[str, Any]) -> str:
    """``pipesdfa checkpoint``: which run a checkpoint holds and how far it got."""
    run = info["run"]
    lines = [
        f"{info['path']}: ok, after training batch {info['batches_done']} of "
        f"{info['train_batches']} ({info['samples_done']} samples), written {info['created']}",
        f"  {run['network']} on {run['chip']} · {run['dataset']} · {run['algorithm']} · "
        f"{run['epochs']} epochs · batch {run['batch']} · lr {run['lr']} {run['optimizer']} · "
        f"seed {run['seed']} · {info['cores']} cores · {info['bytes'] / 2**20:.1f} MiB",
    ]
    if len(info["checkpoints"]) > 1:
        lines.append(f"  in this folder: {', '.join(info['checkpoints'])}")
    return "\n".join(lines)


def dataset_text(info: dict[str, Any]) -> str:
    """``pipesdfa data``: what a dataset holds, as read for a network."""
    frames = f"{info['time_steps']} frames of " if info["temporal"] else ""
    lines = [
        f"{info['dataset']} for {info['network']}: {info['train_samples']:,} training and "
        f"{info['test_samples']:,} test samples, {frames}{info['sample_shape']}, "
        f"{info['num_classes']} classes, read in {info['wall_s']:.1f} s"
    ]
    if info["temporal"]:
        rate, empty = info["spike_rate"], info["empty_samples"]
        lines.append(
            f"  spike rate {rate['train']:.4f} (train), {rate['test']:.4f} (test); samples "
            f"with no spike {empty['train']} / {empty['test']}; input channels that never "
            f"fire {info['silent_channels']:,} of {math.prod(info['sample_shape']):,}"
        )
    else:
        low, high = info["value_range"]
        lines.append(f"  values in [{low:g}, {high:g}], mean {info['value_mean']:.4f}")
    counts = info["class_counts"]
    lines.append(
        "  samples per class (train/test): "
        + ", ".join(
            f"{c}: {a}/{b}"
            for c, (a, b) in enumerate(zip(counts["train"], counts["test"], strict=True))
        )
    )
    return "\n".join(lines)


def train_text(result: dict[str, Any]) -> str:
    """``pipesdfa train``: accuracies, the weights' hash and the epoch kept."""
    where = f"on chip {result['chip']}" if result["chip"] else "ideal weights"
    lines = [
        f"{result['network']} · {result['dataset']} · {result['algorithm']} ({where}) · "
        f"{result['epochs']} epochs · seed {result['seed']}\n"
        f"  train accuracy {result['train_accuracy']:.4f}   "
        f"test accuracy {result['test_accuracy']:.4f}   wall {result['wall_s']:.1f} s\n"
        f"  weights sha256 {result['weights_sha256']}"
    ]
    if "best_epoch" in result:
        lines.append(
            f"  kept epoch {result['best_epoch']}: the best validation accuracy "
            f"{result['val_accuracy']:.4f} ({result['val_samples']} samples held out)"
        )
    return "\n".join(lines)


def conv_text(shape: tuple[int, ...], result: dict[str, Any]) -> str:
    """``pipesdfa map --conv``: one conv layer's cycles on one array, by scheme."""
    h, w, k, ic, oc, rows, cols = shape
    window = result["window"]
    return (
        f"{h}x{w} input, {k}x{k}x{ic}x{oc} kernel on a {rows}x{cols} array: "
        f"im2col {result['im2col']}, SDK {result['sdk']}, VW-SDK {result['vw_sdk']} cycles "
        f"({result['scheme']}, window {window[0]}x{window[1]})"
    )


def map_text(summary: dict[str, Any]) -> str:
    """``pipesdfa map``: the network on the chip, its area by part, one row per layer."""
    area = summary["area_breakdown_mm2"]
    first = (
        f"{summary['network']} on {summary['chip']}: {summary['arrays_used']:,} of "
        f"{summary['arrays_total']:,} crossbars, {count(summary['pe_cores_used'], 'PE core')}, "
        f"{count(summary['tiles_used'], 'tile')}; {summary['area_mm2']:.3g} mm² ("
        + ", ".join(f"{part} {mm2:.3g}" for part, mm2 in area.items() if mm2)
        + ")"
    )
    table_rows = [
        [
            {"feedback": "B", "transpose": f"{r['index']}T"}.get(r["kind"], r["index"]),
            r["kind"],
            r["scheme"],
            "x".join(map(str, r["window"])) if r["window"] else None,
            f"{r['n_in']}x{r['n_out']}",
            r["weight_arrays"]
            + r["feedback_arrays"]
            + (r["kind"] == "transpose") * r["transpose_arrays"],
            len(r["pes"]),
            ",".join(map(str, r["tiles"])),
            r["reads_per_step"],
            r["utilisation"],
        ]
        for r in summary["layers"]
    ]
    header = [
        "layer",
        "kind",
        "scheme",
        "window",
        "matrix",
        "crossbars",
        "PEs",
        "on tiles",
        "reads/step",
        "utilisation",
    ]
    return first + "\n" + table(table_rows, header)
