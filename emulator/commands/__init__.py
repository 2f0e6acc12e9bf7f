"""What the commands share: the exit code and one-line error of a bad request, and reading
the options several commands take (activity, growing the chips, integer lists, the
loading bar)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from emulator import spec
from emulator.report.progress import Progress

if TYPE_CHECKING:
    pass


EXIT_USAGE = 2


class UserError(Exception):
    """A problem with what the user asked for: printed as one line, exit code 2."""


def ints(text: str, count: int, form: str) -> list[int]:
    parts = text.split(",")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != count or min(values) < 1:
        raise UserError(f"{form}: expected {count} positive integers, got {text!r}")
    return values


def origin_of(args: argparse.Namespace) -> str:
    """Where ``--activity`` or ``--spike-rate`` puts a comparison's activity from."""
    if args.activity:
        return f"measured: {args.activity}"
    return f"assumed: spike rate {args.spike_rate:g}, every layer"


def activity_of(args: argparse.Namespace, net: spec.NetworkSpec):
    from emulator.cost import Activity

    if args.activity:
        return load_activity(args.activity, net)
    return Activity.uniform(net, args.spike_rate)


def fit_hint(err: ValueError) -> str:
    """The error's line; a network that does not fit the chip says what places it."""
    from emulator.physics.mapping import MappingError

    if isinstance(err, MappingError):
        return f"{err} (--grow places it on the smallest square mesh that fits)"
    return str(err)


def grown(args: argparse.Namespace, net: spec.NetworkSpec, *chips: spec.ChipSpec) -> tuple:
    """``chips`` grown alike to the smallest square mesh that holds ``net`` (unchanged if
    they hold it); the growth said on stderr unless the output is JSON (the chips' names
    carry the mesh there)."""
    from emulator.physics.growth import fit_chips

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


def user_errors(work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``work()``, a mapping error or a bad pairing of chips as one line."""
    try:
        return work()
    except ValueError as err:
        raise UserError(fit_hint(err)) from None


def load_activity(path: str, net: spec.NetworkSpec):

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


def loading_bar(args: argparse.Namespace) -> tuple[Progress, Callable[[int, int], None]]:
    """The dataset's reading line, and the hook that moves it (and ends it on the last
    recording, before training's own line starts)."""
    bar = Progress(f"load {args.dataset}", enabled=not args.json)

    def loaded(done: int, total: int) -> None:
        bar.update(done, total)
        if done == total:
            bar.close()

    return bar, loaded
