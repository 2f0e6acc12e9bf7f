"""The commands on files and placement: ``validate``, ``presets``, ``show``, ``schema``,
``checkpoint``, ``data`` and ``map``; each reads its arguments, asks the package, prints."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from emulator import spec

if TYPE_CHECKING:
    pass

from emulator.commands import (
    EXIT_USAGE,
    UserError,
    fit_hint,
    grown,
    ints,
    loading_bar,
)
from emulator.report import text as render


def validate_command(args: argparse.Namespace) -> int:
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


def presets_command(args: argparse.Namespace) -> int:
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


def show_command(args: argparse.Namespace) -> int:
    loaded = spec.load_file(spec.resolve_any(args.file))
    data = loaded.model_dump(mode="json")
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        import yaml

        print(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), end="")
    return 0


def schema_command(args: argparse.Namespace) -> int:
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


def checkpoint_command(args: argparse.Namespace) -> int:
    from emulator.runtime.checkpoint import CheckpointError, describe

    try:
        info = describe(args.path)
    except CheckpointError as err:
        raise UserError(str(err)) from None
    print(json.dumps(info, indent=2) if args.json else render.checkpoint_text(info))
    return 0


def dataset_command(args: argparse.Namespace) -> int:
    """Read a dataset as ``train`` and ``run`` would for the network, and say what it holds."""
    import time

    from emulator.data.datasets import describe
    from emulator.train import load_for

    net = spec.load_network(args.network)
    loading, loaded = loading_bar(args)
    start = time.perf_counter()
    try:
        info = describe(load_for(net, args.dataset, args.data, args.seed, loaded))
    finally:
        loading.close()
    info = {"network": net.name, **info, "wall_s": time.perf_counter() - start}
    print(json.dumps(info, indent=2) if args.json else render.dataset_text(info))
    return 0


def map_command(args: argparse.Namespace) -> int:
    from emulator.physics import mapping, vwsdk

    if args.conv:
        h, w, k, ic, oc = ints(args.conv, 5, "--conv H,W,K,IC,OC")
        rows, cols = ints(args.array.replace("x", ","), 2, "--array RxC")
        cm = vwsdk.conv_cycles(h, w, k, ic, oc, rows, cols)
        result = {"im2col": cm.im2col, "sdk": cm.sdk, "vw_sdk": cm.vw_sdk}
        result |= {"window": list(cm.window), "scheme": cm.scheme, "tiles": cm.tiles}
        shape = (h, w, k, ic, oc, rows, cols)
        print(json.dumps(result) if args.json else render.conv_text(shape, result))
        return 0
    if not args.chip or not args.network:
        raise UserError("give --chip and --network, or --conv H,W,K,IC,OC --array RxC")
    chip, net = spec.load_chip(args.chip), spec.load_network(args.network)
    if args.grow:
        (chip,) = grown(args, net, chip)
    try:
        m = mapping.map_network(chip, net)
    except ValueError as err:
        raise UserError(fit_hint(err)) from None
    rows = m.as_rows()
    from emulator.cost.area import area_mm2, leakage_mw

    area = area_mm2(chip, net, m)
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
    print(json.dumps(summary, indent=2) if args.json else render.map_text(summary))
    return 0
