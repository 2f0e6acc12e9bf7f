"""The ``pipesdfa`` command line."""

from __future__ import annotations

import argparse
import math
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from emulator import spec
from emulator.data.datasets import DatasetError
from emulator.limits import LimitError
from emulator.outputs import OutputError, check_writable
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
    pass

from emulator.commands import EXIT_USAGE, UserError, files, studies

EXIT_TERMINATED = 128 + 15
"""Exit code after SIGTERM, as a shell reports a process it ended."""


def _add_run(sub: argparse._SubParsersAction) -> None:
    from emulator.runtime.checkpoint import MAX_RESTARTS

    p = sub.add_parser("run", help="train on the emulated chip (cores as actors), compare")
    _run_options(p)
    p.add_argument("--plot", metavar="OUT.png", help="the pipeline Gantt of the first samples")
    p.add_argument(
        "--energy-plot", metavar="OUT.png", help="energy by component, PipeSDFA vs PipeLayer"
    )
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
    p.set_defaults(func=studies.run_command)
    p = sub.add_parser("trace", help="Perfetto trace of the emulated timeline of a run")
    _run_options(p, epochs_help="epochs to train (the trace shows the first samples)")
    p.add_argument("--out", required=True, metavar="trace.json", help="trace file to write")
    p.add_argument("--samples", type=_positive(int), default=3, help="samples to trace")
    p.add_argument("--plot", metavar="OUT.png", help="also the pipeline Gantt")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    # a trace shows the first samples: one epoch holds them (--epochs N for more training)
    p.set_defaults(func=studies.trace_command, epochs=1)


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
    p.set_defaults(func=studies.scale_command)


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
    p.set_defaults(func=studies.train_command)


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
    p.set_defaults(func=files.validate_command)
    p = sub.add_parser("presets", help="list the shipped chips and networks")
    p.add_argument("--json", action="store_true", help="print one JSON list")
    p.set_defaults(func=files.presets_command)
    p = sub.add_parser("show", help="print a chip or network fully resolved")
    p.add_argument("file", metavar="FILE", help="a chip or network file, or a shipped name")
    p.add_argument("--json", action="store_true", help="JSON instead of YAML")
    p.set_defaults(func=files.show_command)
    p = sub.add_parser("schema", help="print the JSON Schema of a file kind")
    p.add_argument("kind", choices=("chip", "network", "checkpoint", "run"))
    p.set_defaults(func=files.schema_command)
    _add_run(sub)
    p = sub.add_parser("checkpoint", help="check a checkpoint and say which run it holds")
    p.add_argument("path", metavar="DIR", help="a checkpoint folder, or a folder with latest")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=files.checkpoint_command)
    _add_train(sub)
    p = sub.add_parser("data", help="read a dataset as train and run would, say what it holds")
    p.add_argument("--network", default="digits-mlp", help="network file or shipped name")
    _data(p)
    p.add_argument("--seed", type=_positive(int, zero=True), default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=files.dataset_command)
    _add_scale(sub)
    p = sub.add_parser("calibrate", help="the cost model against published chips (ISAAC, …)")
    p.add_argument("--plot", metavar="OUT.png", help="ours / published for every figure")
    p.add_argument("--json", action="store_true", help="print one JSON object (rows: a list)")
    p.set_defaults(func=studies.calibrate_command)
    p = sub.add_parser("map", help="map a network on a chip, or one conv layer (VW-SDK)")
    p.add_argument("--chip", help="chip file or shipped name")
    p.add_argument("--network", help="network file or shipped name")
    p.add_argument("--conv", metavar="H,W,K,IC,OC", help="one conv layer's shape")
    p.add_argument("--array", metavar="RxC", default="128x128", help="array size for --conv")
    _grow(p, "the chip")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=files.map_command)
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
    p.set_defaults(func=studies.compare_command)
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


OUTPUTS = ("out", "plot", "energy_plot", "activity_out")
"""The options that name a file a command writes: each checked before the command's work."""


def _outputs_writable(args: argparse.Namespace) -> None:
    """Refuse, before any work, an output file that could not be written at the end."""
    for name in OUTPUTS:
        value = getattr(args, name, None)
        if value:
            check_writable(value, "--" + name.replace("_", "-"))


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
        _outputs_writable(args)
        return args.func(args)
    except (
        spec.TopologyError,
        DatasetError,
        LimitError,
        SessionError,
        UserError,
        OutputError,
    ) as err:
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
