"""The commands that train, run and compare: ``train``, ``compare``, ``calibrate``, ``run``,
``trace`` and ``scale``; each reads its arguments, runs the study, prints its result as text
or JSON (:mod:`emulator.report` renders) and draws what ``--plot`` asks for."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from emulator import spec
from emulator.physics.growth import fit_chips
from emulator.report import text as render
from emulator.report.progress import Progress

if TYPE_CHECKING:
    from emulator.run import RunConfig, RunResult

from emulator.commands import (
    UserError,
    activity_of,
    fit_hint,
    grown,
    ints,
    load_activity,
    loading_bar,
    origin_of,
    user_errors,
)


def train_command(args: argparse.Namespace) -> int:
    from emulator.train import run_training

    net = spec.load_network(args.network)
    chip = spec.load_chip(args.chip) if args.chip else None
    if args.grow and chip is None:
        raise UserError("--grow: give --chip (the ideal reference has no chip to grow)")
    if args.grow and chip is not None:
        (chip,) = grown(args, net, chip)
    batch = spec.training_options(net, batch=args.batch).batch
    progress = Progress("train", enabled=not args.json, batch=batch)
    loading, loaded = loading_bar(args)
    try:
        result = run_training(
            net,
            chip=chip,
            dataset=args.dataset,
            data=args.data,
            algorithm=args.algorithm,
            seed=args.seed,
            epochs=args.epochs,
            batch=args.batch,
            lr=args.lr,
            optimizer=args.optimizer,
            progress=progress.update,
            activity_out=args.activity_out,
            val_fraction=args.val_fraction,
            loading=loaded,
        )
    except ValueError as err:  # a job over this machine's memory, a chip that cannot hold it
        raise UserError(fit_hint(err)) from None
    finally:
        loading.close()
        progress.close()
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(render.train_text(result))
    return 0


def compare_command(args: argparse.Namespace) -> int:
    from emulator import compare
    from emulator import sensitivity as sweep

    baselines = tuple(args.baseline or ())
    if len(baselines) > 1 and (args.sensitivity or not args.paper):
        raise UserError("--baseline: one baseline (several only with --paper, no --sensitivity)")
    if args.paper and args.sensitivity:
        result = user_errors(
            lambda: sweep.paper_sensitivity(
                chip=args.chip, baseline=baselines[0] if baselines else "pipelayer"
            )
        )
        return _compare_out(args, result, render.sensitivity_text, result["networks"])
    if args.paper:
        if args.plot:
            raise UserError("--plot: with --paper, give --sensitivity (a tornado chart)")
        result = user_errors(
            lambda: compare.paper_comparison(
                chip=args.chip, baselines=baselines or compare.PAPER_BASELINES
            )
        )
        return _compare_out(args, result, render.paper_text)
    if not args.network:
        raise UserError("give --network FILE (or --paper)")
    net = spec.load_network(args.network)
    chip = spec.load_chip(args.chip)
    baseline = spec.load_chip(baselines[0] if baselines else "pipelayer")
    activity, origin = activity_of(args, net), origin_of(args)
    theirs = None
    if args.baseline_activity:
        if args.sensitivity:
            raise UserError(
                "--baseline-activity: not with --sensitivity (one activity, both chips)"
            )
        theirs = load_activity(args.baseline_activity, net)
    origins = (origin, f"measured: {args.baseline_activity}" if theirs else origin)
    batch = spec.training_options(net, batch=args.batch).batch
    if args.sensitivity:
        result = user_errors(
            lambda: sweep.sensitivity(net, chip, baseline, activity, batch=batch, origin=origin)
        )
        return _compare_out(args, result, render.sensitivity_text, [result])

    def run() -> dict[str, Any]:
        if args.iso_area:
            a, b = compare.iso_area(net, chip, baseline)
        else:
            a, b = fit_chips(net, chip, baseline) if args.grow else (chip, baseline)
        return compare.compare(
            net, a, b, activity, batch=batch, baseline_activity=theirs, origins=origins
        )

    result = user_errors(run)
    if args.plot:
        from emulator.report.plots import energy_breakdown

        ps_name = result["pipesdfa"]["mapping"]["chip"]
        pl_name = result["pipelayer"]["mapping"]["chip"]
        energy_breakdown(
            {
                "PipeSDFA": result["pipesdfa"]["energy_breakdown_pj"],
                "PipeLayer": result["pipelayer"]["energy_breakdown_pj"],
            },
            args.plot,
            title=f"{net.name}: energy per sample, PipeSDFA ({ps_name}) vs PipeLayer ({pl_name})",
            activity={
                "PipeSDFA": result["activity"]["pipesdfa"],
                "PipeLayer": result["activity"]["pipelayer"],
            },
        )
        result["plot"] = args.plot
    return _compare_out(args, result, render.compare_text)


def _compare_out(
    args: argparse.Namespace,
    result: dict[str, Any],
    text: Callable[[dict[str, Any]], str],
    tornado: list[dict[str, Any]] | None = None,
) -> int:
    """Print ``result`` as JSON or text; with ``tornado`` and ``--plot``, draw the chart."""
    if tornado is not None and args.plot:
        from emulator.report.tornado import sensitivity_tornado

        sensitivity_tornado(tornado, args.plot)
        result["plot"] = args.plot
    print(json.dumps(result, indent=2) if args.json else text(result))
    return 0


def calibrate_command(args: argparse.Namespace) -> int:
    from emulator.calibrate import calibrate
    from emulator.report.text import calibrate_text

    result = calibrate()
    if args.plot:
        from emulator.report.plots import calibration_chart

        calibration_chart(result, args.plot)
        result["plot"] = args.plot
    print(json.dumps(result, indent=2) if args.json else calibrate_text(result))
    return 0


def run_command(args: argparse.Namespace) -> int:
    result = _emulate(args, _run_config(args, log_samples=3 if args.plot else 0))
    out = result.as_json()
    out.pop("ops_log", None)
    if args.plot or args.energy_plot:
        out["plots"] = _run_plots(args, result)
    print(json.dumps(out, indent=2) if args.json else render.run_text(result))
    return 0


def _run_plots(args: argparse.Namespace, result: RunResult) -> list[str]:
    """The Gantt (``--plot``) and the energy breakdown (``--energy-plot``) each asked for."""
    from emulator.report.gantt import pipeline_gantt
    from emulator.report.plots import energy_breakdown

    paths = []
    if args.plot:
        assert result.ops_log is not None
        pipeline_gantt(
            result.ops_log,
            args.plot,
            title=f"{result.network} on {result.chip}: pipeline of the first samples",
        )
        paths.append(args.plot)
    if args.energy_plot and result.comparison is not None:
        energy_breakdown(
            {
                "PipeSDFA (emulated)": result.energy_breakdown_pj,
                "PipeLayer (cost model)": result.comparison.pipelayer["energy_breakdown_pj"],
            },
            args.energy_plot,
            title=f"{result.network}: training energy, PipeSDFA ({result.chip}) vs PipeLayer "
            f"({result.comparison.baseline})",
            activity={
                "PipeSDFA": result.comparison.activity["pipesdfa"],
                "PipeLayer": result.comparison.activity["pipelayer"],
            },
        )
        paths.append(args.energy_plot)
    return paths


def trace_command(args: argparse.Namespace) -> int:
    from emulator.chip.plan import Plan
    from emulator.report.trace import trace_events, write_trace

    cfg = _run_config(args, log_samples=args.samples)
    result = _emulate(args, cfg)
    cfg = cfg.resolved()
    assert cfg.lr is not None and cfg.optimizer is not None and result.ops_log is not None
    plan = Plan(cfg.chip, cfg.network, cfg.seed, cfg.algorithm, cfg.lr, cfg.optimizer)
    events = trace_events(plan, result.ops_log)
    write_trace(args.out, events)
    summary = {
        "trace": args.out,
        "events": len(events["traceEvents"]),
        "samples": args.samples,
        "weights_sha256": result.weights_sha256,
    }
    if args.plot:
        from emulator.report.gantt import pipeline_gantt

        pipeline_gantt(result.ops_log, args.plot, samples=args.samples)
        summary["plot"] = args.plot
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(
            f"wrote {summary['events']} trace events of the first {args.samples} samples to "
            f"{args.out} (open in https://ui.perfetto.dev)"
        )
    return 0


RUN_OPTIONS = {
    "dataset": "dataset",
    "data": "data",
    "runtime": "runtime",
    "address": "address",
    "algorithm": "algorithm",
    "epochs": "epochs",
    "batch": "batch",
    "lr": "lr",
    "optimizer": "optimizer",
    "seed": "seed",
    "frame_samples": "frame_samples",
    "cores_per_actor": "cores_per_actor",
    "checkpoint": "checkpoint_dir",
    "checkpoint_every": "checkpoint_every",
    "checkpoint_keep": "checkpoint_keep",
    "resume": "resume",
    "inject_actor_failure": "inject_failure",
    "max_restarts": "max_restarts",
    "baseline": "baseline",
    "verbose": "ray_logs",
    "connect_timeout": "connect_timeout",
    "ray_temp": "ray_temp",
}
"""Command-line options of run/trace/scale → the RunConfig fields they set (an option a
command lacks, or leaves unset, keeps the field's default)."""


def _run_config(args: argparse.Namespace, **extra: Any) -> RunConfig:
    """The run the options of run/trace/scale describe."""
    from emulator.run import RunConfig

    options = {
        field: getattr(args, name)
        for name, field in RUN_OPTIONS.items()
        if getattr(args, name, None) is not None
    }
    net, chip = spec.load_network(args.network), spec.load_chip(args.chip)
    if getattr(args, "grow", False):
        baseline = spec.load_chip(args.baseline)
        chip, options["baseline"] = grown(args, net, chip, baseline)
    options |= {"network": net, "chip": chip}
    try:
        return RunConfig(**(options | extra))
    except ValidationError as err:  # e.g. a negative seed
        first = err.errors(include_url=False)[0]
        raise UserError(f"{first['loc'][0]}: {first['msg']}") from None


def _emulate(args: argparse.Namespace, cfg: RunConfig) -> RunResult:
    from emulator import run

    progress = Progress(args.command, enabled=not args.json, batch=cfg.resolved().batch)
    loading, loaded = loading_bar(args)
    try:  # stdout is for our answer: Ray prints its workers' errors there (a dead actor)
        with contextlib.redirect_stdout(sys.stderr):
            return run.run(cfg, progress=progress.update, notify=progress.note, loading=loaded)
    except ValueError as err:  # a network that does not fit, a chip the cores cannot run
        raise UserError(fit_hint(err)) from None
    finally:
        loading.close()
        progress.close()


def scale_command(args: argparse.Namespace) -> int:
    from emulator import scaling
    from emulator.cost import Activity

    net = spec.load_network(args.network)
    chip, baseline = spec.load_chip(args.chip), spec.load_chip(args.baseline)
    if not args.set:
        raise UserError(
            "give at least one --set FIELD=v1,v2,... to sweep, e.g. --set tile.pes=2,4,8 "
            "or --set noc.mesh=2x2,4x4 (`pipesdfa show pipesdfa-edge` lists the fields)"
        )
    try:
        fields = scaling.parse_sets(args.set)
        grid = scaling.points(fields)
        chips = [(p, spec.with_fields(chip, p), spec.with_fields(baseline, p)) for p in grid]
    except spec.SweepError as err:
        raise UserError(str(err)) from None
    cpus = ints(args.cpus, len(args.cpus.split(",")), "--cpus C1,C2,...") if args.cpus else None
    if cpus and args.mode != "emulate":
        raise UserError("--cpus measures the actor emulation: use it with --mode emulate")
    activity = (
        load_activity(args.activity, net)
        if args.activity
        else Activity.uniform(net, args.spike_rate)
    )
    batch = spec.training_options(net, batch=args.batch).batch
    progress = Progress("scale", enabled=not args.json)
    rows = []
    for k, (point, ps_chip, pl_chip) in enumerate(chips):
        row: dict[str, Any] = {"point": point, "label": scaling.label(point)}
        if args.mode == "analytic":
            row |= scaling.analytic_point(ps_chip, pl_chip, net, activity, batch)
        else:
            row |= _emulate_point(args, net, ps_chip, pl_chip, cpus)
        rows.append(row)
        progress.update(k + 1, len(chips))
    progress.close()
    result = {
        "chip": chip.name,
        "baseline": baseline.name,
        "network": net.name,
        "mode": args.mode,
        "fields": [name for name, _ in fields],
        "points": rows,
    }
    if args.plot:
        result["plot"] = _scale_plot(args, result)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(render.scale_text(result))
    identical = all(r.get("cpu_scaling", {}).get("identical", True) for r in rows)
    if not identical:
        print("pipesdfa scale: emulated results differ between CPU counts", file=sys.stderr)
        return 1
    return 0


def _emulate_point(args, net, ps_chip, pl_chip, cpus) -> dict[str, Any]:
    from emulator import run, scaling

    def once(c: int | None = None) -> RunResult:
        cfg = _run_config(args, chip=ps_chip, baseline=pl_chip, cpus=c)
        return run.run(cfg)

    if not cpus:
        return scaling.emulate_point(ps_chip, net, once)
    runs: dict[int, RunResult] = {}

    def each_count() -> RunResult:
        for c in cpus:
            runs[c] = once(c)
        return runs[cpus[-1]]

    point = scaling.emulate_point(ps_chip, net, each_count)
    if runs:
        point["cpu_scaling"] = scaling.cpu_scaling(runs)
    return point


def _scale_plot(args: argparse.Namespace, result: dict[str, Any]) -> str:
    from emulator.report.curves import scaling_curves

    fitting = [r for r in result["points"] if r["fits"]]
    if not fitting:
        raise UserError("--plot: no point of the sweep fits the chip")
    fields = result["fields"]
    one = len(fields) == 1  # one field swept: its values on the axis, its name under it
    points = [
        {
            "point": str(r["point"][fields[0]]) if one else r["label"],
            **{k: v for k, v in r.items() if k != "point"},
        }
        for r in fitting
    ]
    ys = ["samples_per_s", "energy_pj_per_sample", "speedup", "energy_ratio"]
    chips = f"PipeSDFA ({result['chip']}) vs baseline {result['baseline']}"
    if result["mode"] == "analytic":
        activity = f"{origin_of(args)} (both chips, cost model)"
    else:
        activity = "measured by each point's emulation (the baseline costed on it)"
    scaling_curves(
        points,
        args.plot,
        x="point",
        ys=ys,
        title=f"{result['network']}: scaling over {', '.join(fields)}, {chips}",
        xlabel=fields[0] if one else "point (" + ", ".join(fields) + ")",
        note=f"chips: {chips}; {result['mode']} sweep; activity: {activity}",
    )
    cpu = [r for r in fitting if "cpu_scaling" in r]
    if cpu:
        runs = [{"cpus": x["cpus"], **x} for x in cpu[0]["cpu_scaling"]["runs"]]
        path = Path(args.plot)
        cpu_path = str(path.with_name(path.stem + "-cpus" + path.suffix))
        scaling_curves(
            runs,
            cpu_path,
            x="cpus",
            ys=["wall_speedup", "parallel_efficiency"],
            title=f"{result['network']} on {result['chip']}: the emulator over CPU count",
            xlabel="CPUs",
            note=f"the emulation of the first point, {cpu[0]['label']}",
        )
    return str(args.plot)
