"""Bounds on what the emulator reads and allocates.

Everything a user hands the emulator (chip, network, activity and checkpoint files, IDX
files, the sizes inside them) is checked before it is read whole or allocated: a file must
be a regular file under a size cap (:func:`read_regular`), and a job's memory is estimated
from the files' numbers (each a :class:`Need`: :func:`mesh_need`, :func:`schedule_need`,
:func:`emulator.learning.needs.training_needs`) and refused, with the numbers and the field
to change, when it would not fit this machine (:func:`check_fits`). Error messages quote
at most a short single-line excerpt of what was read (:func:`excerpt`): a wrong file given
by mistake (``--chip /etc/shadow``) is not printed back.

The per-item sizes below were measured with ``tracemalloc`` on this project's machine
(Python 3.12, numpy 2) and rounded up; ``tests/test_hostile.py`` checks that the estimates
still bound the measured peak.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    from emulator.spec import ChipSpec


class LimitError(ValueError):
    """An input over a bound; the message names the file or field, the numbers and the fix."""


MAX_SPEC_BYTES = 1 << 20
"""Largest chip or network file read (the shipped ones are under 8 KB)."""
MAX_ACTIVITY_BYTES = 64 << 20
"""Largest activity file read (``pipesdfa train --activity-out``)."""
MAX_MANIFEST_BYTES = 4 << 20
"""Largest checkpoint manifest read (it holds the chip and network contents)."""
MAX_NAME_BYTES = 256
"""Largest one-line pointer file read (a checkpoint's ``latest``)."""

TILE_BYTES = 512
"""Memory per mesh node of a mapped chip (placement walk, NoC tables; measured ≈ 410 B)."""
CUT_BYTES = 64
"""Memory per block row or column of a cut weight matrix (its sizes, and the mapping's
per-block bookkeeping, amortised)."""
OP_BYTES = 200
"""Memory per op an analytic schedule keeps (measured ≈ 170 B)."""
NEURON_STEP_BYTES = 16
"""Memory per neuron, sample and time step that a training batch keeps for the update (its
membrane potential and spike, float64)."""
LAYER_STEP_VALUES = 4
"""Float64 arrays the size of one layer's neurons that its forward and gradient hold at once
(currents, surrogate, ∂V/∂H, ∂L/∂X), besides its im2col columns. With the kept traces this
gives 1.15 GB per sample for dvsgesture-convnet at T = 30; measured: 1.0 GiB per sample
(peak RSS of one training batch of 1 and of 2)."""
WEIGHT_BYTES = 64
"""Memory per weight (weights, gradient, optimizer moments, conductances and levels)."""
ALWAYS_FITS_BYTES = 512 << 20
"""A job this small is never refused (nor is the machine's free memory read for it)."""
BASE_BYTES = 96 << 20
"""What an emulator process holds before its job (interpreter, numpy, pydantic)."""


def excerpt(value: Any, limit: int = 40) -> str:
    """``repr(value)`` on one line, cut to ``limit`` characters (with …): what an error
    message may quote of a value it read."""
    text = repr(value) if not isinstance(value, str) else repr(value[: limit + 1])
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def human_bytes(n: float) -> str:
    for unit, scale in (("PiB", 2**50), ("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n / 2**10:.1f} KiB" if n >= 2**10 else f"{int(n)} B"


def open_regular(
    path: str | os.PathLike, what: str, *, error: type[Exception] = LimitError
) -> tuple[BinaryIO, int]:
    """The regular file at ``path`` opened for reading, and its size; refused (``error``:
    ``FILE: reason``) if missing or not a regular file (a FIFO, a device: they would block or
    never end). Opened without blocking, then checked on the open file (no race)."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise error(f"{path}: file not found") from None
    except OSError as err:
        raise error(f"{path}: cannot read: {err.strerror or err}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise error(f"{path}: {_kind(info.st_mode)}, not a regular file: give a {what}")
    return open(fd, "rb"), info.st_size


def read_regular(
    path: str | os.PathLike, cap: int, what: str, *, error: type[Exception] = LimitError
) -> bytes:
    """The bytes of the regular file at ``path`` (:func:`open_regular`), refused if over
    ``cap`` bytes. Reads at most ``cap + 1`` bytes, whatever the file claims."""
    stream, size = open_regular(path, what, error=error)
    with stream:
        if size > cap:
            cap_text = human_bytes(cap)
            raise error(f"{path}: {human_bytes(size)}, over the {cap_text} a {what} may have")
        try:
            data = stream.read(cap + 1)
        except OSError as err:
            raise error(f"{path}: cannot read: {err.strerror or err}") from None
    if len(data) > cap:
        raise error(f"{path}: grew past the {human_bytes(cap)} a {what} may have while being read")
    return data


def available_memory() -> int:
    """Bytes this machine can still give a job: ``MemAvailable`` (Linux), else its RAM."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 40  # unknown: do not refuse


@dataclass(frozen=True)
class Need:
    """One term of a job's memory: what holds it, its bytes, how it was counted, and what
    to change to shrink it."""

    what: str
    bytes: int
    count: str
    fix: str


def mesh_need(chip: ChipSpec) -> Need:
    """A chip's mesh, mapped: a fixed cost per router node."""
    nodes = chip.noc.nodes
    return Need(
        f"chip {chip.name}'s mesh",
        nodes * TILE_BYTES,
        f"noc.mesh {chip.noc.mesh} = {nodes:,} nodes × {TILE_BYTES} B",
        "a smaller noc.mesh (and tiles) in the chip file",
    )


def schedule_need(ops: int, what: str, time_steps: int) -> Need:
    """An analytic schedule keeping ``ops`` ops over ``time_steps`` steps per sample."""
    return Need(
        what,
        ops * OP_BYTES,
        f"{ops:,} ops over time_steps {time_steps:,} × {OP_BYTES} B",
        "fewer time_steps in the network file, or a smaller --batch",
    )


def check_fits(needs: Sequence[Need], available: int | None = None) -> None:
    """Refuse (:class:`LimitError`) a job whose ``needs`` exceed ``available`` bytes (default:
    this machine's free memory), naming the largest term and what to change."""
    total = BASE_BYTES + sum(n.bytes for n in needs)
    if available is None:
        if total <= ALWAYS_FITS_BYTES:
            return  # the common case reads no system file
        available = available_memory()
    if total <= available:
        return
    top = max(needs, key=lambda n: n.bytes)
    raise LimitError(
        f"needs about {human_bytes(total)} of memory, this machine has "
        f"{human_bytes(available)} free: "
        f"{top.what} alone takes {human_bytes(top.bytes)} ({top.count}); use {top.fix}"
    )
