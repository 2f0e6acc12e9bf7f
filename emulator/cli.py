"""The ``pipesdfa`` command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from emulator import topology
from emulator.datasets import DatasetError
from emulator.progress import Progress

EXIT_USAGE = 2


class UserError(Exception):
    """A problem with what the user asked for: printed as one line, exit code 2."""


def _validate(args: argparse.Namespace) -> int:
    failed = False
    for name in args.files:
        try:
            spec = topology.load_file(name)
        except topology.TopologyError as err:
            print(err, file=sys.stderr)
            failed = True
            continue
        kind = "network" if isinstance(spec, topology.NetworkSpec) else "chip"
        print(f"{name}: ok ({kind} {spec.name})")
    return EXIT_USAGE if failed else 0


def _schema(args: argparse.Namespace) -> int:
    print(json.dumps(topology.json_schema(args.kind), indent=2))
    return 0


def _train(args: argparse.Namespace) -> int:
    from emulator.training import run_training

    net = topology.load_network(args.network)
    chip = topology.load_chip(args.chip) if args.chip else None
    progress = Progress("train", enabled=not args.json)
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
    )
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
    return 0


def _add_train(sub: argparse._SubParsersAction) -> None:
    from emulator.datasets import DATASETS
    from emulator.learning import ALGORITHMS

    p = sub.add_parser("train", help="train the single-process reference model")
    p.add_argument("--network", default="digits-mlp", help="network file or shipped name")
    p.add_argument("--dataset", default="digits", choices=DATASETS)
    p.add_argument("--data", help="dataset folder (mnist-idx, nmnist)")
    p.add_argument("--algorithm", default="sdfa", choices=ALGORITHMS)
    p.add_argument("--chip", help="run every layer on this chip's crossbar model")
    p.add_argument("--epochs", type=_positive(int), help="default: the network file's")
    p.add_argument("--batch", type=_positive(int), help="default: the network file's")
    p.add_argument("--lr", type=_positive(float), help="default: the network file's")
    p.add_argument("--optimizer", choices=("adam", "sgd"), help="default: the network file's")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_train)


def _positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="pipesdfa",
        description="Emulate PipeSDFA, a memristor chip training SNNs with SDFA.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("validate", help="check chip and network files")
    p.add_argument("files", nargs="+", type=Path)
    p.set_defaults(func=_validate)
    p = sub.add_parser("schema", help="print the JSON Schema of a file kind")
    p.add_argument("kind", choices=("chip", "network"))
    p.set_defaults(func=_schema)
    _add_train(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (topology.TopologyError, DatasetError, UserError) as err:
        print(f"pipesdfa {args.command}: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"pipesdfa {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
