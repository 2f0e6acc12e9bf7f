"""Checkpoints of an emulated training run: what they hold, how they are written and checked.

A checkpoint is taken at a batch boundary once the chip has drained (the controller stops
feeding, every core :meth:`settles <emulator.chip.TileCore.settled>`), so no frame is in
flight and the cores' states alone are the run: crossbar conductances, levels, codes and
counters (PE cores); optimizer moments, clocks and the activity record (tiles); the
controller's progress. There is no RNG state to save: every draw comes from a keyed stream
(:func:`emulator.rng.stream`) whose key names the event, so a resumed run draws what the
undisturbed run drew.

On disk, ``DIR/ckpt-000004/`` (after 4 training batches) holds ``state.msgpack`` (the
controller's state and each core's state, msgpack; arrays as an extension type) and
``manifest.json`` (:class:`Manifest`: the run's configuration and each file's size and
SHA-256). A checkpoint is written into a hidden folder, synced, then renamed into place;
``DIR/latest`` names the newest and is replaced the same way, so a crash at any moment
leaves the previous checkpoint whole. Loading refuses a missing, corrupt or foreign
checkpoint with one line: ``FILE: reason``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import msgpack
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from emulator.limits import (
    MAX_MANIFEST_BYTES,
    MAX_NAME_BYTES,
    available_memory,
    excerpt,
    human_bytes,
    read_regular,
)
from emulator.spec import ChipSpec, NetworkSpec, format_errors

FORMAT = "pipesdfa-checkpoint"
VERSION = 3
MANIFEST = "manifest.json"
STATE = "state.msgpack"
LATEST = "latest"
LOCK = ".lock"
PRIVATE_FILE, PRIVATE_DIR = 0o600, 0o700
"""Checkpoints hold the run's weights and data-derived state: only their owner reads them."""
_ARRAY = 1  # msgpack extension code of a numpy array
_KINDS = "biuf"  # array kinds a checkpoint may hold: no objects, no strings


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message is ``FILE: reason``."""


MAX_RESTARTS = 3
"""Dead actors a run survives by default (each sends the chip back to a checkpoint)."""


class RunIdentity(BaseModel):
    """What makes two runs the same run: a checkpoint resumes only the run it came from."""

    model_config = ConfigDict(extra="forbid")

    network: dict[str, Any] = Field(description="The network file's content, validated.")
    chip: dict[str, Any] = Field(description="The chip file's content, validated.")
    dataset: str = Field(description="Dataset name.")
    data: str | None = Field(description="Dataset folder (absolute), if the dataset has one.")
    algorithm: str = Field(description="Training algorithm.")
    epochs: int = Field(description="Training epochs.")
    batch: int = Field(description="Samples per batch.")
    lr: float = Field(description="Learning rate.")
    optimizer: str = Field(description="Optimizer name.")
    seed: int = Field(description="The run's seed (every keyed stream derives from it).")
    frame_samples: int | None = Field(description="Samples per frame (None: a whole batch).")


class FileEntry(BaseModel):
    """One file of a checkpoint, for the integrity check."""

    model_config = ConfigDict(extra="forbid")

    bytes: int = Field(ge=0, description="Size in bytes.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the content, hex.")


class Manifest(BaseModel):
    """``manifest.json`` of a checkpoint."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["pipesdfa-checkpoint"] = Field(description="What this file is.")
    version: int = Field(description=f"Format version; this emulator reads {VERSION}.")
    created: str = Field(description="When it was written (UTC, ISO 8601).")
    batches_done: int = Field(ge=0, description="Training batches applied before it.")
    train_batches: int = Field(ge=0, description="Training batches of the whole run.")
    samples_done: int = Field(ge=0, description="Training samples fed before it.")
    cores: list[str] = Field(description="The cores whose states it holds, in plan order.")
    config: RunIdentity = Field(description="The run it belongs to.")
    files: dict[Annotated[str, StringConstraints(pattern=r"^[\w-][\w.-]*$")], FileEntry] = Field(
        description="Its other files, by name (in the checkpoint's folder)."
    )


# ------------------------------------------------------------------------------- codec


def _default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in _KINDS:
            raise TypeError(f"cannot checkpoint a {obj.dtype} array")
        a = np.ascontiguousarray(obj)
        return msgpack.ExtType(_ARRAY, msgpack.packb([a.dtype.str, list(a.shape), a.tobytes()]))
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot checkpoint a {type(obj).__name__}")


def _ext(code: int, data: bytes) -> Any:
    if code != _ARRAY:
        raise ValueError(f"unknown extension type {code}")
    dtype, shape, raw = msgpack.unpackb(data)
    dt = np.dtype(dtype)
    if dt.kind not in _KINDS:
        raise ValueError(f"an array of {dt} (only numbers and booleans are allowed)")
    return np.frombuffer(raw, dtype=dt).reshape(shape).copy()


def pack(obj: Any) -> bytes:
    """msgpack of plain data and numpy arrays (bit for bit; integer keys kept)."""
    return msgpack.packb(obj, default=_default, use_bin_type=True)


def unpack(data: bytes) -> Any:
    """The inverse of :func:`pack` (ValueError on anything else)."""
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=False, ext_hook=_ext)
    except (ValueError, TypeError, msgpack.UnpackException) as err:
        raise ValueError(f"not a checkpoint state: {err}") from None


# ------------------------------------------------------------------------------- files


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with open(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _private_dir(path: Path) -> None:
    """``path``, if missing, made (with its missing parents) readable by its owner only; a
    folder that exists keeps its mode (a shared 1777 or setgid 2775 folder stays shared:
    what this run puts in it is private, its checkpoint folders 0700 and files 0600)."""
    if path.is_dir():
        return
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    path.chmod(PRIVATE_DIR)  # mkdir's mode passes through the umask


def identity_sha256(manifest: Manifest) -> str:
    """SHA-256 of what a manifest says of its state (the run, the cores, how far it got):
    the state keeps it, so a hand-edited manifest no longer matches its state."""
    fields = manifest.model_dump(mode="json", exclude={"created", "files"})
    return _sha256(json.dumps(fields, sort_keys=True).encode())


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def checkpoint_name(batches_done: int) -> str:
    """``ckpt-000004``: the folder of the checkpoint after that many training batches."""
    return f"ckpt-{batches_done:06d}"


def save(
    directory: Path, manifest: Manifest, controller: dict[str, Any], cores: dict[str, bytes]
) -> Path:
    """Write one checkpoint atomically (hidden folder, fsync, rename), then point ``latest``
    at it; returns its folder. ``cores``: each core's state, already :func:`pack`-ed."""
    _private_dir(directory)
    name = checkpoint_name(manifest.batches_done)
    final, tmp = directory / name, directory / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(mode=PRIVATE_DIR)
    state = pack({"controller": controller, "cores": cores, "manifest": identity_sha256(manifest)})
    _write(tmp / STATE, state)
    entry = FileEntry(bytes=len(state), sha256=_sha256(state))
    manifest = manifest.model_copy(update={"files": {STATE: entry}})
    _write(tmp / MANIFEST, manifest.model_dump_json(indent=2).encode())
    _sync_dir(tmp)
    if final.exists():  # a resumed run passing a checkpoint it had already made
        old = directory / f".{name}.old"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old)
    else:
        os.replace(tmp, final)
    _write(directory / f".{LATEST}.tmp", f"{name}\n".encode())
    os.replace(directory / f".{LATEST}.tmp", directory / LATEST)
    _sync_dir(directory)
    return final


def prune(directory: Path, keep: int) -> list[str]:
    """Delete all but the newest ``keep`` checkpoints (never the one ``latest`` names)."""
    latest = (directory / LATEST).read_text().strip() if (directory / LATEST).exists() else ""
    names = sorted(p.name for p in directory.glob("ckpt-*") if p.is_dir())
    gone = [n for n in names[: max(0, len(names) - keep)] if n != latest]
    for n in gone:
        shutil.rmtree(directory / n)
    return gone


def find(path: str | os.PathLike) -> Path:
    """The checkpoint folder ``path`` means: itself, or the one its ``latest`` names."""
    p = Path(path)
    if (p / MANIFEST).exists():
        return p
    if (p / LATEST).exists():
        raw = read_regular(p / LATEST, MAX_NAME_BYTES, "checkpoint pointer", error=CheckpointError)
        name = raw.decode("utf-8", errors="replace").strip()
        if not re.fullmatch(r"ckpt-\d{6}", name):
            raise CheckpointError(  # not quoted: it may be any file's first line
                f"{p / LATEST}: holds {len(raw)} bytes that name no checkpoint (ckpt-NNNNNN)"
            )
        if not (p / name / MANIFEST).exists():
            raise CheckpointError(f"{p / LATEST}: names {name}, which holds no checkpoint")
        return p / name
    if not p.exists():
        raise CheckpointError(f"{p}: no such checkpoint folder")
    raise CheckpointError(f"{p}: not a checkpoint (no {MANIFEST}, no {LATEST})")


def holds_checkpoints(directory: Path) -> bool:
    """Whether ``directory`` already has checkpoints in it."""
    return (directory / LATEST).exists() or any(directory.glob("ckpt-*"))


def foreign_checkpoints(directory: Path, config: RunIdentity) -> list[tuple[str, str]]:
    """The checkpoints in ``directory`` that are not of the run ``config`` describes, each
    with why (the first setting that differs, or why its manifest cannot be read): a run
    that saves into the folder would prune them and point ``latest`` past them."""
    out = []
    for folder in sorted(p for p in directory.glob("ckpt-*") if p.is_dir()):
        try:
            why = mismatch(_manifest(folder / MANIFEST).config, config)
        except CheckpointError as err:
            why = str(err)
        if why:
            out.append((folder.name, why))
    return out


def load(path: str | os.PathLike) -> tuple[Manifest, dict[str, Any], Path]:
    """The manifest and the state (``controller``, ``cores``: name → packed state) of the
    checkpoint at ``path`` (a checkpoint folder, or a folder with ``latest``); every file's
    size and SHA-256 checked against the manifest."""
    folder = find(path)
    manifest = _manifest(folder / MANIFEST)
    if STATE not in manifest.files:
        raise CheckpointError(f"{folder / MANIFEST}: files: lists no {STATE}")
    room = available_memory() // 3  # the bytes, the unpacked state, the cores' copies
    contents = {}
    for name, entry in manifest.files.items():
        file = folder / name
        if entry.bytes > room:
            raise CheckpointError(
                f"{folder / MANIFEST}: files.{name}.bytes: {human_bytes(entry.bytes)}, more than "
                f"this machine can load ({human_bytes(room)}: a third of its free memory)"
            )
        data = read_regular(file, entry.bytes, "checkpoint file", error=CheckpointError)
        if len(data) != entry.bytes or _sha256(data) != entry.sha256:
            raise CheckpointError(
                f"{file}: corrupt: {len(data)} bytes with SHA-256 {_sha256(data)[:12]}…, "
                f"the manifest says {entry.bytes} bytes with {entry.sha256[:12]}…"
            )
        contents[name] = data
    file = folder / STATE
    try:
        state = unpack(contents[STATE])
    except ValueError as err:
        raise CheckpointError(f"{file}: {err}") from None
    if (
        not isinstance(state, dict)
        or not isinstance(state.get("controller"), dict)
        or not isinstance(state.get("cores"), dict)
    ):
        raise CheckpointError(f"{file}: not a checkpoint state (controller, cores)")
    if set(state["cores"]) != set(manifest.cores):
        raise CheckpointError(f"{file}: its cores are not the ones its manifest lists")
    if state.get("manifest") != identity_sha256(manifest):
        raise CheckpointError(
            f"{folder / MANIFEST}: does not match the state saved with it (edited after it "
            "was written?): its run, cores or progress differ from the ones the state holds"
        )
    return manifest, state, folder


def describe(path: str | os.PathLike) -> dict[str, Any]:
    """What ``pipesdfa checkpoint`` says of the checkpoint at ``path`` once :func:`load` has
    checked it whole: where it is, how far its run got, which run it is."""
    manifest, _, folder = load(path)
    config = manifest.config
    return {
        "path": str(folder),
        "created": manifest.created,
        "batches_done": manifest.batches_done,
        "train_batches": manifest.train_batches,
        "samples_done": manifest.samples_done,
        "cores": len(manifest.cores),
        "bytes": sum(entry.bytes for entry in manifest.files.values()),
        "run": {
            "network": config.network.get("name"),
            "chip": config.chip.get("name"),
            **config.model_dump(exclude={"network", "chip"}),
        },
        "checkpoints": sorted(p.name for p in folder.parent.glob("ckpt-*") if p.is_dir()),
    }


def _manifest(file: Path) -> Manifest:
    raw = read_regular(file, MAX_MANIFEST_BYTES, "checkpoint manifest", error=CheckpointError)
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise CheckpointError(f"{file}: not UTF-8 text (byte {err.start})") from None
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{file}: not JSON: {err.msg} (line {err.lineno})") from None
    if isinstance(data, dict) and data.get("format") == FORMAT and data.get("version") != VERSION:
        raise CheckpointError(
            f"{file}: version: {excerpt(data.get('version'))}; this emulator reads version "
            f"{VERSION}"
        )
    try:
        return Manifest.model_validate(data)
    except ValidationError as err:
        lines = format_errors(file, err).splitlines()
        more = f" (+{len(lines) - 1} more)" if len(lines) > 1 else ""
        raise CheckpointError(lines[0] + more) from None


def mismatch(saved: RunIdentity, wanted: RunIdentity) -> str | None:
    """The first setting in which a checkpoint's run differs from this run, or None. The
    epochs may differ: epoch e's batches do not depend on how many follow, so a checkpoint
    of a shorter run is also one of a longer run (the caller checks it is not past the end)."""
    return _first_difference(_with_defaults(saved), _with_defaults(wanted), "config")


def _with_defaults(identity: RunIdentity) -> dict[str, Any]:
    """The identity without its epochs, its network and chip with every field a file may omit
    filled in: a checkpoint written before a field existed ran with its default, so it is
    the same run as one that states that default."""
    data = identity.model_dump(exclude={"epochs"})
    for key, spec in (("network", NetworkSpec), ("chip", ChipSpec)):
        with contextlib.suppress(ValidationError):  # one this version refuses: as saved
            data[key] = spec.model_validate(data[key]).model_dump(mode="json")
    return data


def _first_difference(a: Any, b: Any, where: str) -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=lambda k: (k != "name", str(k))):  # name first
            if key not in a or key not in b:
                return f"{where}.{key}: only {'this run' if key in b else 'the checkpoint'} has it"
            found = _first_difference(a[key], b[key], f"{where}.{key}")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = _first_difference(x, y, f"{where}.{i}")
            if found:
                return found
        return None
    if a != b:
        return f"{where}: the checkpoint has {excerpt(a)}, this run {excerpt(b)}"
    return None


def manifest_for(
    config: RunIdentity, cores: list[str], batches_done: int, train_batches: int, samples: int
) -> Manifest:
    """The manifest of a checkpoint about to be written (files filled in by :func:`save`)."""
    return Manifest(
        format=FORMAT,
        version=VERSION,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        batches_done=batches_done,
        train_batches=train_batches,
        samples_done=samples,
        cores=cores,
        config=config,
        files={},
    )


# ------------------------------------------------------------------------- a run's view


class Checkpoints:
    """A run's checkpoints: where they go, and the last one, from which a run that lost an
    actor starts again. The run's start is the first (a failure before any checkpoint
    replays from the beginning); ``directory`` None keeps them in memory only."""

    def __init__(
        self,
        config: RunIdentity | None,
        cores: list[str],
        *,
        directory: str | os.PathLike | None = None,
        keep: int = 2,
    ) -> None:
        if keep < 1:
            raise ValueError(f"checkpoint_keep: must be >= 1, got {keep}")
        if config is None and directory is not None:
            raise ValueError("checkpoint_dir: checkpoints on disk need the run's config")
        self.config, self.cores = config, cores
        self.directory = None if directory is None else Path(directory)
        self.keep = keep
        self.last: tuple[bytes, dict[str, bytes] | None] | None = None
        self.saved: list[int] = []
        self.resumed_from: int | None = None
        self._lock: int | None = None

    def open(self) -> None:
        """Before training: make the folder (private), check it can be written, and lock it
        for this run; a second run given the same folder is refused here, at its start."""
        if self.directory is None or self._lock is not None:
            return
        self._lock = lock_folder(self.directory)

    def close(self) -> None:
        """Release the folder (the run is over)."""
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            os.close(self._lock)
            self._lock = None

    def begin(self, controller: Any) -> None:
        """The run starts here (unless it resumed)."""
        if self.last is None:
            self.last = (pack(controller.state()), None)

    def resume(self, path: str | os.PathLike, controller: Any) -> dict[str, bytes]:
        """Load the checkpoint at ``path``, refuse it unless it is this run's, put
        ``controller`` back to it; the cores' packed states."""
        manifest, state, folder = load(path)
        where = folder / MANIFEST
        if self.config is None:
            raise ValueError("resume: needs the run's config to check the checkpoint against")
        different = mismatch(manifest.config, self.config)
        if different:
            raise CheckpointError(
                f"{where}: made by a different run: {different} (resume with the options of "
                "the run that made it)"
            )
        if manifest.cores != self.cores:
            raise CheckpointError(f"{where}: cores: not this run's cores")
        if manifest.batches_done > controller.train_batches:
            raise CheckpointError(
                f"{where}: batches_done: {manifest.batches_done} training batches, past the "
                f"{controller.train_batches} of this run's {self.config.epochs} epochs"
            )
        try:
            controller.restore(state["controller"])
        except (KeyError, TypeError, ValueError) as err:
            raise CheckpointError(f"{folder / STATE}: controller: {err!r}") from None
        self.last = (pack(state["controller"]), state["cores"])
        self.resumed_from = manifest.batches_done
        return state["cores"]

    def save(self, controller: Any, cores: dict[str, bytes]) -> None:
        """A checkpoint now (the controller at a boundary, ``cores`` packed, settled)."""
        state = controller.state()
        self.last = (pack(state), cores)
        if self.directory is not None and self.config is not None:
            manifest = manifest_for(
                self.config,
                self.cores,
                state["next_batch"],
                controller.train_batches,
                state["samples"],
            )
            save(self.directory, manifest, state, cores)
            prune(self.directory, self.keep)
        self.saved.append(int(state["next_batch"]))

    def restart_point(self) -> tuple[dict[str, Any], dict[str, bytes] | None]:
        """The controller's state and the cores' packed states (None: fresh) to go back to."""
        assert self.last is not None, "begin() or resume() first"
        controller, cores = self.last
        return unpack(controller), cores

    def summary(self) -> dict[str, Any]:
        """For the run's JSON."""
        return {
            "dir": None if self.directory is None else str(self.directory),
            "saved": len(self.saved),
            "last_after_batch": self.saved[-1] if self.saved else None,
            "resumed_from_batch": self.resumed_from,
        }


def lock_folder(directory: Path) -> int:
    """Make ``directory`` (0700), take its lock file's exclusive lock, write this process's
    id in it; the open descriptor (the lock lasts while it is open). CheckpointError if the
    folder cannot be made or written, or another run holds it."""
    try:
        _private_dir(directory)
        fd = os.open(directory / LOCK, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
    except OSError as err:
        raise CheckpointError(
            f"{directory}: cannot hold checkpoints: {err.strerror or err}"
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        owner = os.pread(fd, 32, 0).decode("ascii", errors="replace").strip()
        os.close(fd)
        if err.errno not in (errno.EWOULDBLOCK, errno.EACCES):
            raise CheckpointError(f"{directory}: cannot lock: {err.strerror}") from None
        who = f"process {owner}" if owner.isdigit() else "another process"
        raise CheckpointError(
            f"{directory}: in use by another run ({who}); wait for it to end, or give this "
            "run another folder"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def restore_cores(cores: dict[str, Any], states: dict[str, bytes]) -> None:
    """Put each core back to its packed state (ValueError naming the core that does not fit)."""
    for name, core in cores.items():
        if name not in states:
            raise ValueError(f"{name}: the checkpoint holds no state for this core")
        try:
            core.restore(unpack(states[name]))
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{name}: its saved state does not fit: {err!r}") from None


def settled_states(cores: dict[str, Any], batches: int, samples: int) -> dict[str, bytes] | None:
    """Each core's packed state, if every one has settled after ``batches`` training batches
    (``samples`` samples); else None."""
    if not all(core.settled(batches, samples) for core in cores.values()):
        return None
    return {name: pack(core.state()) for name, core in cores.items()}
