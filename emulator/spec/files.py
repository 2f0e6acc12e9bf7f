"""Chip and network files on disk: YAML loading with ``base:`` files, the shipped presets
(package data, :data:`PRESETS`), JSON Schema, and dotted overrides.

A bad file fails with :class:`TopologyError`, whose message is ``FILE: field.path: reason``
(one line per error).
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from emulator.limits import MAX_SPEC_BYTES, excerpt, read_regular
from emulator.spec.chip import ChipSpec, Spec
from emulator.spec.network import NetworkSpec

PRESETS = Path(str(resources.files("emulator.spec") / "presets"))
"""Where the shipped chip files live inside the package (networks in ``networks/``); the
repository's ``topologies/`` is a link to it."""


class TopologyError(ValueError):
    """A chip or network file is missing or invalid; ``str(err)`` is ``FILE: field: reason``."""


class SweepError(ValueError):
    """A bad ``--set``: the message names the field and the reason."""


def with_fields(chip: ChipSpec, values: dict[str, Any]) -> ChipSpec:
    """``chip`` with dotted fields replaced (validated as a chip file would be)."""
    data = chip.model_dump()
    for dotted, value in values.items():
        *parents, leaf = dotted.split(".")
        node = data
        for part in parents:
            if not isinstance(node.get(part), dict):
                raise SweepError(f"--set {dotted}: {part!r} is not a section of a chip file")
            node = node[part]
        if leaf not in node:
            where = ".".join(parents) or "a chip file"
            fields = [".".join([*parents, k]) for k in node]
            raise SweepError(
                f"--set {dotted}: no field {leaf!r} in {where}{suggestion(dotted, fields)}"
            )
        node[leaf] = value
    if "noc.mesh" in values and "tiles" not in values:
        rows, cols = (int(v) for v in str(values["noc.mesh"]).split("x"))
        data["tiles"] = rows * cols
    try:
        return ChipSpec.model_validate(data)
    except ValidationError as err:
        first = err.errors(include_url=False)[0]
        loc = ".".join(str(p) for p in first["loc"])
        msg = first["msg"].removeprefix("Value error, ")
        raise SweepError(f"--set {', '.join(values)}: {loc or 'chip'}: {msg}") from None


# -------------------------------------------------------------------------- loading

_KINDS: dict[str, type[Spec]] = {"chip": ChipSpec, "network": NetworkSpec}


MAX_NODES = 100_000
"""Most values (mappings, lists, scalars) one file may hold once its YAML aliases are
expanded: a shipped file has a few hundred; an alias bomb billions."""


def _read_yaml(path: Path) -> Any:
    raw = read_regular(path, MAX_SPEC_BYTES, "chip or network file (YAML)", error=TopologyError)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise TopologyError(f"{path}: not UTF-8 text (byte {err.start})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = excerpt(str(err.problem), 80)
        raise TopologyError(f"{path}: {line}YAML syntax error: {problem}") from None
    except yaml.YAMLError as err:
        raise TopologyError(f"{path}: YAML syntax error: {excerpt(str(err), 80)}") from None
    if _count_nodes(data, MAX_NODES) > MAX_NODES:
        raise TopologyError(
            f"{path}: more than {MAX_NODES:,} values once its aliases are expanded "
            "(a chip or network file has a few hundred)"
        )
    return data


def _count_nodes(data: Any, limit: int) -> int:
    """Values in ``data``, aliases counted each time they are used; stops past ``limit``."""
    count, stack = 0, [data]
    while stack and count <= limit:
        node = stack.pop()
        count += 1
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return count


def _field_hint(model: type[BaseModel] | None, loc: tuple) -> str:
    """`` (did you mean X?)`` for an unknown key: the closest field of its section."""
    section: Any = model
    for part in loc[:-1]:
        fields = getattr(section, "model_fields", None)
        if fields is None or not isinstance(part, str) or part not in fields:
            return ""
        section = fields[part].annotation
    fields = getattr(section, "model_fields", None)
    return suggestion(str(loc[-1]), fields) if fields else ""


def format_errors(path: Path, err: ValidationError, model: type[BaseModel] | None = None) -> str:
    """Each pydantic error of the file at ``path`` as one ``FILE: field.path: reason`` line
    (an unknown key of ``model`` with the closest field name)."""
    lines = []
    for e in err.errors(include_url=False):
        loc = ".".join(_part(p) for p in e["loc"] if not _is_union_tag(p))
        msg = e["msg"].removeprefix("Value error, ")
        # A model-level check names its field at the start of its message.
        m = re.match(r"^([A-Za-z_]\w*(?:\.\w+)*): (.*)$", msg)
        if m:
            loc = f"{loc}.{m[1]}" if loc else m[1]
            msg = m[2]
        if e["type"] == "extra_forbidden":
            msg += _field_hint(model, e["loc"])
        lines.append(f"{path}: {loc or '(file)'}: {_one_line(msg)}")
    if len(lines) > MAX_ERROR_LINES:
        lines[MAX_ERROR_LINES:] = [f"{path}: … and {len(lines) - MAX_ERROR_LINES} more errors"]
    return "\n".join(lines)


MAX_ERROR_LINES = 20
"""Errors listed for one file (a wrong file given by mistake has one per line)."""


def _part(part: object) -> str:
    """A field path's part as an error may print it: a name, an index or a short path as it
    is; any other key is not quoted (a wrong file given by mistake, ``/etc/shadow``, would be
    printed back line by line)."""
    text = str(part)
    if isinstance(part, int) or re.fullmatch(r"[\w.\[\]/-]{1,40}", text):
        return text
    return f"(a key of {len(text)} characters that is no field name)"


def _one_line(msg: str, limit: int = 200) -> str:
    msg = " ".join(msg.split())
    return msg if len(msg) <= limit else msg[: limit - 1] + "…"


def _is_union_tag(part: object) -> bool:
    return part in ("fc", "conv", "pool")


def kind_of(data: Any) -> str:
    """Guess whether parsed YAML is a chip or a network file: networks have ``layers``, or
    stand on a shipped network (``base: tiny-mlp``)."""
    if not isinstance(data, dict):
        return "chip"
    base = data.get("base")
    on_network = isinstance(base, str) and base.strip() in preset_names("network")
    return "network" if "layers" in data or on_network else "chip"


MAX_BASE_DEPTH = 8
"""How many ``base:`` files one file may stand on, in a chain."""


def load_file(path: str | os.PathLike, kind: str | None = None) -> ChipSpec | NetworkSpec:
    """Load and validate a chip or network file (``kind`` guessed from its keys if None).

    A file may name another with ``base: NAME_OR_PATH`` (a shipped name, a sibling file's
    name, or a path relative to the file): it then holds only what differs, merged over the
    base section by section (lists and scalars replace the base's).
    """
    path = Path(path)
    data = _read_mapping(path)
    kind = kind or kind_of(data)
    data = _with_bases(path, data, kind, [path.resolve()])
    try:
        return _KINDS[kind].model_validate(data)
    except ValidationError as err:
        raise TopologyError(format_errors(path, err, _KINDS[kind])) from None


def _read_mapping(path: Path) -> dict[str, Any]:
    data = _read_yaml(path)
    if not isinstance(data, dict):
        raise TopologyError(f"{path}: (file): expected a mapping of fields, got {_kind(data)}")
    return data


def _with_bases(path: Path, data: dict[str, Any], kind: str, chain: list[Path]) -> dict:
    """``data`` merged over its ``base:`` chain (``chain``: the files read so far)."""
    if "base" not in data:
        return data
    data = dict(data)
    name = data.pop("base")
    if not isinstance(name, str) or not name.strip():
        raise TopologyError(f"{path}: base: expected a file name or path, got {_kind(name)}")
    try:
        base = _base_path(path, name.strip(), kind)
    except TopologyError as err:
        raise TopologyError(f"{path}: base: {err}") from None
    if base.resolve() in chain:
        raise TopologyError(f"{path}: base: {name!r} leads back to a file of its own chain")
    if len(chain) > MAX_BASE_DEPTH:
        raise TopologyError(f"{path}: base: more than {MAX_BASE_DEPTH} files in the chain")
    try:
        parent = _with_bases(base, _read_mapping(base), kind, [*chain, base.resolve()])
    except TopologyError as err:
        raise TopologyError(f"{path}: base: {err}") from None
    return _merged(parent, data)


def _base_path(path: Path, name: str, kind: str) -> Path:
    candidate = Path(name)
    if candidate.suffix in (".yaml", ".yml") or os.sep in name:
        return candidate if candidate.is_absolute() else path.parent / candidate
    sibling = path.parent / f"{name}.yaml"
    return sibling if sibling.exists() else resolve(name, kind)


def _merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


def _kind(data: Any) -> str:
    return "an empty file" if data is None else f"a {type(data).__name__}"


def preset_names(kind: str) -> list[str]:
    """The shipped chip or network names, sorted."""
    folder = PRESETS / "networks" if kind == "network" else PRESETS
    return sorted(f.stem for f in folder.glob("*.yaml"))


def presets() -> list[dict[str, str]]:
    """Every shipped chip and network: kind, name and the first line of its description."""
    rows = []
    for kind in ("chip", "network"):
        for name in preset_names(kind):
            loaded = load_chip(name) if kind == "chip" else load_network(name)
            first = " ".join(loaded.description.split()).split(". ")[0].rstrip(".")
            rows.append({"kind": kind, "name": name, "description": first})
    return rows


def suggestion(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean X?)`` for the choice closest to ``word``, else ''."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def resolve(name_or_path: str | os.PathLike, kind: str) -> Path:
    """A file path, or a shipped topology by name (``tiny``, ``digits-mlp``); a name that is
    neither is a TopologyError naming the closest shipped one."""
    path = Path(name_or_path)
    if path.exists() or path.suffix in (".yaml", ".yml") or os.sep in str(name_or_path):
        return path
    folder = PRESETS / "networks" if kind == "network" else PRESETS
    shipped = folder / f"{name_or_path}.yaml"
    if not shipped.exists():
        names = preset_names(kind)
        raise TopologyError(
            f"{name_or_path}: no such file, and no shipped {kind} of that name"
            f"{suggestion(str(name_or_path), names)}; `pipesdfa presets` lists them"
        )
    return shipped


def resolve_any(name_or_path: str | os.PathLike) -> Path:
    """A file path, or a shipped chip or network by name (chips first)."""
    path = Path(name_or_path)
    if path.exists() or path.suffix in (".yaml", ".yml") or os.sep in str(name_or_path):
        return path
    for kind in ("chip", "network"):
        if str(name_or_path) in preset_names(kind):
            return resolve(name_or_path, kind)
    names = preset_names("chip") + preset_names("network")
    raise TopologyError(
        f"{name_or_path}: no such file, and no shipped chip or network of that name"
        f"{suggestion(str(name_or_path), names)}; `pipesdfa presets` lists them"
    )


def load_chip(name_or_path: str | os.PathLike) -> ChipSpec:
    """Load a chip file by path or shipped name."""
    spec = load_file(resolve(name_or_path, "chip"), "chip")
    assert isinstance(spec, ChipSpec)
    return spec


def load_network(name_or_path: str | os.PathLike) -> NetworkSpec:
    """Load a network file by path or shipped name."""
    spec = load_file(resolve(name_or_path, "network"), "network")
    assert isinstance(spec, NetworkSpec)
    return spec


def json_schema(kind: str) -> dict[str, Any]:
    """JSON Schema of a chip or network file, for editors (``base:`` included)."""
    schema = _KINDS[kind].model_json_schema()
    schema["properties"] = {
        "base": {
            "type": "string",
            "description": "Another file this one stands on (a shipped name, a sibling "
            "file's name or a relative path): only what differs is written here.",
        },
        **schema["properties"],
    }
    return schema
