"""The ``pipesdfa`` command line."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from pydantic import ValidationError

from emulator import spec
from emulator.data.datasets import DatasetError
from emulator.limits import LimitError
from emulator.report import text as render
from emulator.report.progress import Progress
from emulator.report.tables import count, table
from emulator.runtime.session import (
    CONNECT_TIMEOUT_S,
    RunFailed,
    SessionError,
    Terminated,
    exit_if_connect_hangs,
    handle_sigterm,
    is_loopback,
    loopback_ray,
)

if TYPE_CHECKING:
    from emulator.run import RunConfig, RunResult

EXIT_USAGE = 2
EXIT_TERMINATED = 128 + 15
"""Exit code after SIGTERM, as a shell reports a process it ended."""


class UserError(Exception):
    """A problem with what the user asked for: printed as one line, exit code 2."""


def _validate(args: argparse.Namespace) -> int:
    failed = False
    for name in args.files:
        try:
            loaded = spec.load_file(spec.resolve_any(name))
        except spec.TopologyError as err:
            print(err, file=sys.stderr)
            failed = True
            continue
        kind = "network" if isinstance(loaded, spec.NetworkSpec) else "chip"
        print(f"{name}: ok ({kind} {loaded.name})")
    return EXIT_USAGE if failed else 0


def _presets(args: argparse.Namespace) -> int:
    rows = spec.presets()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for kind in ("chip", "network"):
        print(f"{kind}s:")
        width = max(len(r["name"]) for r in rows if r["kind"] == kind)
        for r in rows:
            if r["kind"] == kind:
                print(f"  {r['name']:<{width}}  {r['description']}")
    print("\n`pipesdfa show NAME` prints one with its base: merged and every default filled")
    return 0


def _show(args: argparse.Namespace) -> int:
    loaded = spec.load_file(spec.resolve_any(args.file))
    data = loaded.model_dump(mode="json")
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        import yaml

        print(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), end="")
    return 0


def _schema(args: argparse.Namespace) -> int:
    if args.kind == "checkpoint":
        from emulator.runtime.checkpoint import Manifest

        schema = Manifest.model_json_schema()
    elif args.kind == "run":
        from emulator.run import RunResult

        schema = RunResult.model_json_schema()
    else:
        schema = spec.json_schema(args.kind)
    print(json.dumps(schema, indent=2))
    return 0


def _checkpoint(args: argparse.Namespace) -> int:
    from emulator.runtime.checkpoint import CheckpointError, describe

    try:
        info = describe(args.path)
    except CheckpointError as err:
        raise UserError(str(err)) from None
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    run = info["run"]
    print(
        f"{info['path']}: ok, after training batch {info['batches_done']} of "
        f"{info['train_batches']} ({info['samples_done']} samples), written {info['created']}"
    )
    print(
        f"  {run['network']} on {run['chip']} · {run['dataset']} · {run['algorithm']} · "
        f"{run['epochs']} epochs · batch {run['batch']} · lr {run['lr']} {run['optimizer']} · "
        f"seed {run['seed']} · {info['cores']} cores · {info['bytes'] / 2**20:.1f} MiB"
    )
    if len(info["checkpoints"]) > 1:
        print(f"  in this folder: {', '.join(info['checkpoints'])}")
    return 0


def _dataset(args: argparse.Namespace) -> int:
    """Read a dataset as ``train`` and ``run`` would for the network, and say what it holds."""
    import time

    from emulator.data.datasets import describe
    from emulator.learning.training import load_for

    net = spec.load_network(args.network)
    loading, loaded = _loading(args)
    start = time.perf_counter()
    try:
        info = describe(load_for(net, args.dataset, args.data, args.seed, loaded))
    finally:
        loading.close()
    info = {"network": net.name, **info, "wall_s": time.perf_counter() - start}
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    frames = f"{info['time_steps']} frames of " if info["temporal"] else ""
    print(
        f"{info['dataset']} for {net.name}: {info['train_samples']:,} training and "
        f"{info['test_samples']:,} test samples, {frames}{info['sample_shape']}, "
        f"{info['num_classes']} classes, read in {info['wall_s']:.1f} s"
    )
    if info["temporal"]:
        rate, empty = info["spike_rate"], info["empty_samples"]
        print(
            f"  spike rate {rate['train']:.4f} (train), {rate['test']:.4f} (test); samples "
            f"with no spike {empty['train']} / {empty['test']}; input channels that never "
            f"fire {info['silent_channels']:,} of {math.prod(info['sample_shape']):,}"
        )
    else:
        low, high = info["value_range"]
        print(f"  values in [{low:g}, {high:g}], mean {info['value_mean']:.4f}")
    counts = info["class_counts"]
    print(
        "  samples per class (train/test): "
        + ", ".join(
            f"{c}: {a}/{b}"
            for c, (a, b) in enumerate(zip(counts["train"], counts["test"], strict=True))
        )
    )
    return 0


def _train(args: argparse.Namespace) -> int:
    from emulator.learning.training import run_training

    net = spec.load_network(args.network)
    chip = spec.load_chip(args.chip) if args.chip else None
    if args.grow and chip is None:
        raise UserError("--grow: give --chip (the ideal reference has no chip to grow)")
    if args.grow and chip is not None:
        (chip,) = _grown(args, net, chip)
    batch = spec.training_options(net, batch=args.batch).batch
    progress = Progress("train", enabled=not args.json, batch=batch)
    loading, loaded = _loading(args)
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
        raise UserError(_fit_hint(err)) from None
    finally:
        loading.close()
        progress.close()
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        where = f"on chip {chip.name}" if chip else "ideal weights"
        print(
            f"{net.name} · {args.dataset} · {result['algorithm']} ({where}) · "
            f"{result['epochs']} epochs · seed {result['seed']}\n"
            f"  train accuracy {result['train_accuracy']:.4f}   "
            f"test accuracy {result['test_accuracy']:.4f}   wall {result['wall_s']:.1f} s\n"
            f"  weights sha256 {result['weights_sha256']}"
        )
        if "best_epoch" in result:
            print(
                f"  kept epoch {result['best_epoch']}: the best validation accuracy "
                f"{result['val_accuracy']:.4f} ({result['val_samples']} samples held out)"
            )
    return 0


def _map(args: argparse.Namespace) -> int:
    from emulator.physics import mapping

    if args.conv:
        h, w, k, ic, oc = _ints(args.conv, 5, "--conv H,W,K,IC,OC")
        rows, cols = _ints(args.array.replace("x", ","), 2, "--array RxC")
        cm = mapping.conv_cycles(h, w, k, ic, oc, rows, cols)
        result = {"im2col": cm.im2col, "sdk": cm.sdk, "vw_sdk": cm.vw_sdk}
        result |= {"window": list(cm.window), "scheme": cm.scheme, "tiles": cm.tiles}
        if args.json:
            print(json.dumps(result))
        else:
            print(
                f"{h}x{w} input, {k}x{k}x{ic}x{oc} kernel on a {rows}x{cols} array: "
                f"im2col {cm.im2col}, SDK {cm.sdk}, VW-SDK {cm.vw_sdk} cycles "
                f"({cm.scheme}, window {cm.window[0]}x{cm.window[1]})"
            )
        return 0
    if not args.chip or not args.network:
        raise UserError("give --chip and --network, or --conv H,W,K,IC,OC --array RxC")
    chip, net = spec.load_chip(args.chip), spec.load_network(args.network)
    if args.grow:
        (chip,) = _grown(args, net, chip)
    try:
        m = mapping.map_network(chip, net)
    except ValueError as err:
        raise UserError(_fit_hint(err)) from None
    rows = m.as_rows()
    from emulator.cost.area import area_mm2, leakage_mw

    area = area_mm2(chip, net, m)
    if args.json:
        summary = {
            "chip": chip.name,
            "network": net.name,
            "arrays_used": m.arrays_used,
            "arrays_total": m.arrays_total,
            "pe_cores_used": m.pes_used,
            "tiles_used": m.tiles_used,
            "area_mm2": sum(area.values()),
            "area_breakdown_mm2": area,
            "leakage_mw": sum(leakage_mw(chip, net, m).values()),
            "layers": rows,
        }
        print(json.dumps(summary, indent=2))
        return 0
    print(
        f"{net.name} on {chip.name}: {m.arrays_used:,} of {m.arrays_total:,} crossbars, "
        f"{count(m.pes_used, 'PE core')}, {count(m.tiles_used, 'tile')}; "
        f"{sum(area.values()):.3g} mm² ("
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
        for r in rows
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
    print(table(table_rows, header))
    return 0


def _ints(text: str, count: int, form: str) -> list[int]:
    parts = text.split(",")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != count or min(values) < 1:
        raise UserError(f"{form}: expected {count} positive integers, got {text!r}")
    return values


def _compare(args: argparse.Namespace) -> int:
    from emulator import compare

    baselines = tuple(args.baseline or ())
    if len(baselines) > 1 and (args.sensitivity or not args.paper):
        raise UserError("--baseline: one baseline (several only with --paper, no --sensitivity)")
    if args.paper and args.sensitivity:
        result = _user_errors(
            lambda: compare.paper_sensitivity(
                chip=args.chip, baseline=baselines[0] if baselines else "pipelayer"
            )
        )
        return _compare_out(args, result, render.sensitivity_text, result["networks"])
    if args.paper:
        if args.plot:
            raise UserError("--plot: with --paper, give --sensitivity (a tornado chart)")
        result = _user_errors(
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
    activity, origin = _activity(args, net), _origin(args)
    theirs = None
    if args.baseline_activity:
        if args.sensitivity:
            raise UserError(
                "--baseline-activity: not with --sensitivity (one activity, both chips)"
            )
        theirs = _load_activity(args.baseline_activity, net)
    origins = (origin, f"measured: {args.baseline_activity}" if theirs else origin)
    batch = spec.training_options(net, batch=args.batch).batch
    if args.sensitivity:
        result = _user_errors(
            lambda: compare.sensitivity(net, chip, baseline, activity, batch=batch, origin=origin)
        )
        return _compare_out(args, result, render.sensitivity_text, [result])

    def run() -> dict[str, Any]:
        if args.iso_area:
            a, b = compare.iso_area(net, chip, baseline)
        else:
            a, b = compare.fit_chips(net, chip, baseline) if args.grow else (chip, baseline)
        return compare.compare(
            net, a, b, activity, batch=batch, baseline_activity=theirs, origins=origins
        )

    result = _user_errors(run)
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


def _origin(args: argparse.Namespace) -> str:
    """Where ``--activity`` or ``--spike-rate`` puts a comparison's activity from."""
    if args.activity:
        return f"measured: {args.activity}"
    return f"assumed: spike rate {args.spike_rate:g}, every layer"


def _activity(args: argparse.Namespace, net: spec.NetworkSpec):
    from emulator.cost import Activity

    if args.activity:
        return _load_activity(args.activity, net)
    return Activity.uniform(net, args.spike_rate)


def _fit_hint(err: ValueError) -> str:
    """The error's line; a network that does not fit the chip says what places it."""
    from emulator.physics.mapping import MappingError

    if isinstance(err, MappingError):
        return f"{err} (--grow places it on the smallest square mesh that fits)"
    return str(err)


def _grown(args: argparse.Namespace, net: spec.NetworkSpec, *chips: spec.ChipSpec) -> tuple:
    """``chips`` grown alike to the smallest square mesh that holds ``net`` (unchanged if
    they hold it); the growth said on stderr unless the output is JSON (the chips' names
    carry the mesh there)."""
    from emulator.compare import fit_chips

    try:
        grown = fit_chips(net, *chips)
    except ValueError as err:
        raise UserError(str(err)) from None
    if grown != chips and not getattr(args, "json", False):
        names = " and ".join(c.name for c in chips) + (" alike" if len(chips) > 1 else "")
        mesh = grown[0].noc.mesh
        print(
            f"--grow: {names} grown to a {mesh} mesh ({grown[0].tiles} tiles) to hold {net.name}",
            file=sys.stderr,
        )
    return grown


def _user_errors(work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``work()``, a mapping error or a bad pairing of chips as one line."""
    try:
        return work()
    except ValueError as err:
        raise UserError(_fit_hint(err)) from None


def _compare_out(
    args: argparse.Namespace,
    result: dict[str, Any],
    text: Callable[[dict[str, Any]], str],
    tornado: list[dict[str, Any]] | None = None,
) -> int:
    """Print ``result`` as JSON or text; with ``tornado`` and ``--plot``, draw the chart."""
    if tornado is not None and args.plot:
        from emulator.report.plots import sensitivity_tornado

        sensitivity_tornado(tornado, args.plot)
        result["plot"] = args.plot
    print(json.dumps(result, indent=2) if args.json else text(result))
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from emulator.calibrate import calibrate
    from emulator.report.text import calibrate_text

    result = calibrate()
    if args.plot:
        from emulator.report.plots import calibration_chart

        calibration_chart(result, args.plot)
        result["plot"] = args.plot
    print(json.dumps(result, indent=2) if args.json else calibrate_text(result))
    return 0


def _load_activity(path: str, net: spec.NetworkSpec):
    from pydantic import ValidationError

    from emulator.cost import Activity
    from emulator.limits import MAX_ACTIVITY_BYTES, read_regular

    text = read_regular(path, MAX_ACTIVITY_BYTES, "activity file (JSON)", error=UserError)
    try:
        activity = Activity.model_validate_json(text)
        activity.check(net)
    except ValidationError as err:
        raise UserError(spec.format_errors(Path(path), err).splitlines()[0]) from None
    except ValueError as err:
        raise UserError(f"{path}: {err}") from None
    return activity


def _run(args: argparse.Namespace) -> int:
    result = _emulate(args, _run_config(args, log_samples=3 if args.plot else 0))
    out = result.as_json()
    out.pop("ops_log", None)
    if args.plot:
        out["plots"] = _run_plots(args.plot, result)
    print(json.dumps(out, indent=2) if args.json else render.run_text(result))
    return 0


def _run_plots(path: str, result: RunResult) -> list[str]:
    from emulator.report.plots import energy_breakdown, pipeline_gantt

    assert result.ops_log is not None
    pipeline_gantt(
        result.ops_log,
        path,
        title=f"{result.network} on {result.chip}: pipeline of the first samples",
    )
    paths = [path]
    if result.comparison is not None:
        out = Path(path)
        energy = str(out.with_name(out.stem + "-energy" + out.suffix))
        energy_breakdown(
            {
                "PipeSDFA (emulated)": result.energy_breakdown_pj,
                "PipeLayer (cost model)": result.comparison.pipelayer["energy_breakdown_pj"],
            },
            energy,
            title=f"{result.network}: training energy, PipeSDFA ({result.chip}) vs PipeLayer "
            f"({result.comparison.baseline})",
            activity={
                "PipeSDFA": result.comparison.activity["pipesdfa"],
                "PipeLayer": result.comparison.activity["pipelayer"],
            },
        )
        paths.append(energy)
    return paths


def _trace(args: argparse.Namespace) -> int:
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
        from emulator.report.plots import pipeline_gantt

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
        chip, options["baseline"] = _grown(args, net, chip, baseline)
    options |= {"network": net, "chip": chip}
    try:
        return RunConfig(**(options | extra))
    except ValidationError as err:  # e.g. a negative seed
        first = err.errors(include_url=False)[0]
        raise UserError(f"{first['loc'][0]}: {first['msg']}") from None


def _emulate(args: argparse.Namespace, cfg: RunConfig) -> RunResult:
    from emulator import run

    progress = Progress(args.command, enabled=not args.json, batch=cfg.resolved().batch)
    loading, loaded = _loading(args)
    try:  # stdout is for our answer: Ray prints its workers' errors there (a dead actor)
        with contextlib.redirect_stdout(sys.stderr):
            return run.run(cfg, progress=progress.update, notify=progress.note, loading=loaded)
    except ValueError as err:  # a network that does not fit, a chip the cores cannot run
        raise UserError(_fit_hint(err)) from None
    finally:
        loading.close()
        progress.close()


def _loading(args: argparse.Namespace) -> tuple[Progress, Callable[[int, int], None]]:
    """The dataset's reading line, and the hook that moves it (and ends it on the last
    recording, before training's own line starts)."""
    bar = Progress(f"load {args.dataset}", enabled=not args.json)

    def loaded(done: int, total: int) -> None:
        bar.update(done, total)
        if done == total:
            bar.close()

    return bar, loaded


def _scale(args: argparse.Namespace) -> int:
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
    cpus = _ints(args.cpus, len(args.cpus.split(",")), "--cpus C1,C2,...") if args.cpus else None
    if cpus and args.mode != "emulate":
        raise UserError("--cpus measures the actor emulation: use it with --mode emulate")
    activity = (
        _load_activity(args.activity, net)
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
    from emulator.report.plots import scaling_curves

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
        activity = f"{_origin(args)} (both chips, cost model)"
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


def _add_run(sub: argparse._SubParsersAction) -> None:
    from emulator.runtime.checkpoint import MAX_RESTARTS

    p = sub.add_parser("run", help="train on the emulated chip (cores as actors), compare")
    _run_options(p)
    p.add_argument("--plot", metavar="OUT.png", help="pipeline Gantt here, energy in OUT-energy")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    g = p.add_argument_group("checkpoints and failures")
    g.add_argument("--checkpoint", metavar="DIR", help="save checkpoints into DIR (atomically)")
    g.add_argument(
        "--checkpoint-every",
        type=_positive(int),
        metavar="N",
        help="every N training batches (default with --checkpoint: once per epoch; without "
        "it: in memory, to recover from a dead actor)",
    )
    g.add_argument("--checkpoint-keep", type=_positive(int), metavar="K", help="newest K kept (2)")
    g.add_argument("--resume", metavar="DIR", help="continue the run checkpointed in DIR")
    g.add_argument(
        "--inject-actor-failure",
        type=_failure,
        metavar="CORE@BATCH",
        help="crash the Ray actor holding CORE (e.g. pe-0-1) at training batch BATCH",
    )
    g.add_argument(
        "--max-restarts",
        type=_positive(int, zero=True),
        metavar="N",
        help=f"dead actors survived ({MAX_RESTARTS})",
    )
    p.set_defaults(func=_run)
    p = sub.add_parser("trace", help="Perfetto trace of the emulated timeline of a run")
    _run_options(p, epochs_help="epochs to train (the trace shows the first samples)")
    p.add_argument("--out", required=True, metavar="trace.json", help="trace file to write")
    p.add_argument("--samples", type=_positive(int), default=3, help="samples to trace")
    p.add_argument("--plot", metavar="OUT.png", help="also the pipeline Gantt")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    # a trace shows the first samples: one epoch holds them (--epochs N for more training)
    p.set_defaults(func=_trace, epochs=1)


def _files(p: argparse.ArgumentParser, chip_help: str = "chip file or shipped name") -> None:
    p.add_argument("--chip", default="pipesdfa-edge", help=chip_help)
    p.add_argument("--network", default="digits-mlp", help="network file or shipped name")


def _data(p: argparse.ArgumentParser, when: str = "") -> None:
    from emulator.data.datasets import DATASETS

    p.add_argument("--dataset", default="digits", choices=DATASETS, help=f"{when}the data")
    p.add_argument(
        "--data",
        help=f"{when}dataset folder (mnist-idx, nmnist, shd, dvsgesture, braille), or "
        "braille's .pkl file",
    )


def _ray(p: argparse.ArgumentParser, when: str = "") -> None:
    from emulator.run import RUNTIMES

    p.add_argument("--runtime", default="ray", choices=RUNTIMES, help=f"{when}the runtime")
    p.add_argument("--address", help=f"{when}Ray cluster address (auto or HOST:PORT)")
    p.add_argument(
        "--connect-timeout",
        type=_positive(float),
        default=CONNECT_TIMEOUT_S,
        metavar="S",
        help=f"{when}give up reaching --address after S seconds (default %(default)g)",
    )
    p.add_argument(
        "--ray-temp",
        metavar="DIR",
        help=f"{when}Ray's temp folder, kept (default: a private one, removed at the end)",
    )


def _grow(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--grow",
        action="store_true",
        help=f"if the network does not fit, place it on {what} grown to the smallest square "
        "mesh that holds it",
    )


def _training(
    p: argparse.ArgumentParser, algorithms: Sequence[str], epochs_help: str | None = None
) -> None:
    """The training options a network file's ``training`` section defaults."""
    p.add_argument("--algorithm", default="sdfa", choices=algorithms)
    p.add_argument(
        "--epochs", type=_positive(int), help=epochs_help or "default: the network file's"
    )
    p.add_argument("--batch", type=_positive(int), help="default: the network file's")
    p.add_argument("--lr", type=_positive(float), help="default: the network file's")
    p.add_argument("--optimizer", choices=("adam", "sgd"), help="default: the network file's")
    p.add_argument("--seed", type=_positive(int, zero=True), default=0)


def _run_options(p: argparse.ArgumentParser, epochs_help: str | None = None) -> None:
    from emulator.run import RunConfig

    _files(p)
    _data(p)
    _ray(p)
    _training(p, get_args(RunConfig.model_fields["algorithm"].annotation), epochs_help)
    p.add_argument(
        "--frame-samples", type=_positive(int), help="samples per frame (default: a whole batch)"
    )
    p.add_argument("--cores-per-actor", type=_positive(int), default=1)
    p.add_argument("--baseline", default="pipelayer", help="PipeLayer chip for the comparison")
    _grow(p, "the chip and the baseline alike")
    p.add_argument("--verbose", action="store_true", help="show Ray's own log lines too")


def _add_scale(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scale", help="sweep chip fields (analytic or emulated); CPU scaling")
    _files(p)
    p.add_argument("--baseline", default="pipelayer", help="PipeLayer chip (swept alike)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=v1,v2,...",
        help="a chip field by dotted path and its values (repeat for a grid)",
    )
    p.add_argument("--mode", choices=("analytic", "emulate"), default="analytic")
    p.add_argument("--cpus", metavar="C1,C2,...", help="emulate on Ray limited to each count")
    p.add_argument("--batch", type=_positive(int), help="default: the network file's")
    rate = p.add_mutually_exclusive_group()
    rate.add_argument("--spike-rate", type=_rate, default=0.1, help="analytic: uniform activity")
    rate.add_argument("--activity", help="analytic: measured activity file")
    _data(p, "emulate: ")
    _ray(p, "emulate: ")
    p.add_argument("--epochs", type=_positive(int), default=1, help="emulate: epochs per point")
    p.add_argument("--seed", type=_positive(int, zero=True), default=0)
    p.add_argument("--plot", metavar="OUT.png", help="write the scaling curves here")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_scale)


def _add_train(sub: argparse._SubParsersAction) -> None:
    from emulator.learning import ALGORITHMS

    p = sub.add_parser("train", help="train the single-process reference model")
    _files(p, "run every layer on this chip's crossbar model")
    p.set_defaults(chip=None)  # the reference trainer: ideal weights unless a chip is given
    _data(p)
    _training(p, ALGORITHMS)
    _grow(p, "the chip")
    p.add_argument(
        "--val-fraction",
        type=_fraction,
        default=0.0,
        metavar="F",
        help="hold this share of the training set out, report its accuracy each epoch and "
        "keep the best epoch's weights (default 0: none)",
    )
    p.add_argument("--activity-out", metavar="FILE", help="write the measured activity here")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_train)


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def _failure(text: str) -> tuple[str, int]:
    core, at, batch = text.rpartition("@")
    if not at or not core or not batch.isdigit():
        raise argparse.ArgumentTypeError(f"expected CORE@BATCH (e.g. pe-0-1@2), got {text!r}")
    return core, int(batch)


def _positive(kind: Callable[[str], Any], *, zero: bool = False) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
        if value < 0 or (value == 0 and not zero):
            raise argparse.ArgumentTypeError(
                f"must be {'>= 0' if zero else 'positive'}, got {text}"
            )
        return value

    return parse


class _Help(argparse.HelpFormatter):
    """Each option's default at the end of its help, where it has one worth saying."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        quiet = default in (None, False, argparse.SUPPRESS) or default == []
        if quiet or "default" in text or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    """Every (sub)parser: no abbreviated options (``--baselin`` is an error, not
    ``--baseline``) and each option's default in its help."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        kw.setdefault("allow_abbrev", False)
        kw.setdefault("formatter_class", _Help)
        super().__init__(*args, **kw)

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        """An invalid choice names the closest one (``--runtime locl`` → 'local')."""
        if action.choices is not None and value not in action.choices:
            choices = ", ".join(map(repr, action.choices))
            hint = spec.suggestion(str(value), [str(c) for c in action.choices])
            raise argparse.ArgumentError(
                action, f"invalid choice: {value!r}{hint} (choose from {choices})"
            )
        super()._check_value(action, value)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pipesdfa-emulator")
    except PackageNotFoundError:  # a checkout on PYTHONPATH, not installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = _Parser(
        prog="pipesdfa",
        description="Emulate PipeSDFA, a memristor chip training SNNs with SDFA.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("validate", help="check chip and network files")
    p.add_argument(
        "files", nargs="+", metavar="FILE", help="chip or network files, or shipped names"
    )
    p.set_defaults(func=_validate)
    p = sub.add_parser("presets", help="list the shipped chips and networks")
    p.add_argument("--json", action="store_true", help="print one JSON list")
    p.set_defaults(func=_presets)
    p = sub.add_parser("show", help="print a chip or network fully resolved")
    p.add_argument("file", metavar="FILE", help="a chip or network file, or a shipped name")
    p.add_argument("--json", action="store_true", help="JSON instead of YAML")
    p.set_defaults(func=_show)
    p = sub.add_parser("schema", help="print the JSON Schema of a file kind")
    p.add_argument("kind", choices=("chip", "network", "checkpoint", "run"))
    p.set_defaults(func=_schema)
    _add_run(sub)
    p = sub.add_parser("checkpoint", help="check a checkpoint and say which run it holds")
    p.add_argument("path", metavar="DIR", help="a checkpoint folder, or a folder with latest")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_checkpoint)
    _add_train(sub)
    p = sub.add_parser("data", help="read a dataset as train and run would, say what it holds")
    p.add_argument("--network", default="digits-mlp", help="network file or shipped name")
    _data(p)
    p.add_argument("--seed", type=_positive(int, zero=True), default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_dataset)
    _add_scale(sub)
    p = sub.add_parser("calibrate", help="the cost model against published chips (ISAAC, …)")
    p.add_argument("--plot", metavar="OUT.png", help="ours / published for every figure")
    p.add_argument("--json", action="store_true", help="print one JSON object (rows: a list)")
    p.set_defaults(func=_calibrate)
    p = sub.add_parser("map", help="map a network on a chip, or one conv layer (VW-SDK)")
    p.add_argument("--chip", help="chip file or shipped name")
    p.add_argument("--network", help="network file or shipped name")
    p.add_argument("--conv", metavar="H,W,K,IC,OC", help="one conv layer's shape")
    p.add_argument("--array", metavar="RxC", default="128x128", help="array size for --conv")
    _grow(p, "the chip")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_map)
    p = sub.add_parser("compare", help="PipeSDFA vs PipeLayer: time, energy, ablation")
    p.add_argument("--network", help="network file or shipped name")
    p.add_argument("--chip", default="pipesdfa-edge", help="the PipeSDFA chip")
    p.add_argument(
        "--baseline",
        action="append",
        help="the PipeLayer chip (default pipelayer; with --paper repeatable, default "
        "pipelayer and pipelayer-edge)",
    )
    p.add_argument("--batch", type=_positive(int), help="default: the network file's")
    rate = p.add_mutually_exclusive_group()
    rate.add_argument("--spike-rate", type=_rate, default=0.1, help="uniform activity")
    rate.add_argument(
        "--activity",
        help="activity file from `pipesdfa train --activity-out`, for both chips",
    )
    p.add_argument(
        "--baseline-activity",
        metavar="FILE",
        help="the baseline's own activity file (e.g. `pipesdfa train --algorithm bptt --chip "
        "pipelayer --activity-out`); default: the same activity as PipeSDFA",
    )
    _grow(p, "both chips alike")
    p.add_argument(
        "--iso-area",
        action="store_true",
        help="compare at equal silicon: both grown to hold the network, then the smaller "
        "chip's mesh grown to the largest whose area does not pass the other's",
    )
    p.add_argument("--paper", action="store_true", help="every paper network vs the paper")
    p.add_argument(
        "--sensitivity",
        action="store_true",
        help="each documented assumption at its low and high value on both chips: how far "
        "it moves the speedup and the energy ratio",
    )
    p.add_argument(
        "--plot",
        metavar="OUT.png",
        help="energy breakdown chart (one network); with --sensitivity a tornado chart",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_compare)
    return parser


def _resume_hint(args: argparse.Namespace) -> str:
    """After an interrupted run that saved checkpoints: how to go on."""
    from emulator.runtime.checkpoint import holds_checkpoints

    if args.command not in ("run", "trace"):
        return ""
    folder = getattr(args, "checkpoint", None) or getattr(args, "resume", None)
    if not folder or not Path(folder).is_dir() or not holds_checkpoints(Path(folder)):
        return "; no checkpoint to resume from (--checkpoint DIR saves them)"
    return f"; go on with the same options and --resume {folder}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    address = getattr(args, "address", None)
    if args.command in ("run", "scale", "trace") and (not address or is_loopback(address)):
        loopback_ray()
    if threading.current_thread() is threading.main_thread():
        handle_sigterm()
        exit_if_connect_hangs(f"pipesdfa {args.command}")
    try:
        return args.func(args)
    except (spec.TopologyError, DatasetError, LimitError, SessionError, UserError) as err:
        print(f"pipesdfa {args.command}: {err}", file=sys.stderr)
        return EXIT_USAGE
    except RunFailed as err:
        print(f"pipesdfa {args.command}: {err}{_resume_hint(args)}", file=sys.stderr)
        return 1
    except Terminated:
        print(f"pipesdfa {args.command}: terminated{_resume_hint(args)}", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print(f"pipesdfa {args.command}: interrupted{_resume_hint(args)}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `pipesdfa compare --paper | head`
        sys.stderr.close()
        return 0
    except OSError as err:  # an output file that cannot be written
        where = f"{err.filename}: " if err.filename else ""
        print(f"pipesdfa {args.command}: {where}{err.strerror or err}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        exit_if_connect_hangs(None)


if __name__ == "__main__":
    sys.exit(main())
