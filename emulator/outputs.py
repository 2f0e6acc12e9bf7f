"""Files the emulator writes for the user (traces, plots, activity files): checked before
the work that fills them starts, and written whole or not at all.

:func:`check_writable` runs before a command's work: a folder that is missing, not a
folder or not writable, or an output path that is a folder, is refused in one line then,
not after a long run. :func:`write_atomic` writes into a hidden temporary file beside the
target and renames it over the target in one step, so a write that fails half-way leaves
the user's old file as it was, and a reader never sees half a file; a file that existed
keeps its permission bits.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path


class OutputError(ValueError):
    """An output that cannot be written: one line naming the path and why."""


def check_writable(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` if a file can be written there, else :class:`OutputError` naming ``what``
    (the option that gave it) and why."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise OutputError(f"{what} {target}: is a folder, not a file")
    if not folder.is_dir():
        why = "No such file or directory" if not folder.exists() else "not a folder"
        raise OutputError(f"{what} {target}: {folder}: {why}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{what} {target}: {folder}: Permission denied")
    if target.exists() and not os.access(target, os.W_OK):
        raise OutputError(f"{what} {target}: Permission denied")
    return target


def write_atomic(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` whole: into ``.NAME.tmp`` beside it, then
    renamed over it; the old file's permission bits are kept. OutputError if it cannot be."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp")
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else None
        with open(tmp, "wb") as out:
            out.write(raw)
            out.flush()
            os.fsync(out.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    except OSError as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise OutputError(f"{target}: cannot write: {err.strerror or err}") from None
    return target
