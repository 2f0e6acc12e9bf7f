"""The package's layering (docs/architecture.md#rooms): every import points down the floors
below, and no module imports itself around a circle.

The import graph is read from the source (``ast``), every ``import`` and ``from … import``
of an ``emulator`` module at module level or inside a function; imports under
``if TYPE_CHECKING:`` are annotations only, not dependencies at run time, and are left out.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "emulator"

FLOORS = {
    "rng": 0,
    "limits": 0,
    "units": 0,
    "outputs": 0,
    "spec": 1,
    "physics": 2,
    "learning": 3,
    "data": 3,
    "cost": 4,
    "chip": 5,
    "runtime": 6,
    "train": 7,
    "run": 7,
    "compare": 7,
    "scaling": 7,
    "calibrate": 7,
    "sensitivity": 7,
    "report": 8,
    "commands": 9,
    "cli": 10,
    "emulator": 0,  # the package itself: its version only
}
"""Each room's floor: a room imports only rooms on lower floors (or, among the studies on
floor 7, each other, without circles). Learning and data share floor 3 and import neither
the other; the report renders what the studies return; the command bodies call both; the
command line parses and dispatches to them."""


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


_MODULES = {_module(p) for p in PACKAGE.rglob("*.py")}


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "emulator"


def _type_only(tree: ast.Module) -> set[ast.AST]:
    """The import nodes under ``if TYPE_CHECKING:``."""
    out: set[ast.AST] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            out |= {n for body in node.body for n in ast.walk(body)}
    return out


def _imports(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_only(tree)
    for node in ast.walk(tree):
        if node in skip:
            continue
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("emulator"))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("emulator"):
            for alias in node.names:  # from emulator import run: the module run
                sub = f"{node.module}.{alias.name}"
                yield sub if sub in _MODULES else str(node.module)


def graph() -> dict[str, set[str]]:
    """Module → the emulator modules it imports (itself left out)."""
    edges: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module(path)
        edges[module] = {m for m in _imports(path) if m != module}
    return edges


def test_every_room_has_a_floor() -> None:
    assert {_room(m) for m in graph()} <= set(FLOORS)


def test_imports_point_down() -> None:
    up = sorted(
        f"{a} -> {b}"
        for a, targets in graph().items()
        for b in targets
        if _room(a) != _room(b) and FLOORS[_room(b)] > FLOORS[_room(a)]
    )
    beside = sorted(  # the same floor: only the studies import each other
        f"{a} -> {b}"
        for a, targets in graph().items()
        for b in targets
        if _room(a) != _room(b) and FLOORS[_room(b)] == FLOORS[_room(a)] != 7
    )
    assert up == [] and beside == [], (up, beside)


def test_no_module_imports_itself_around_a_circle() -> None:
    """A package's ``__init__`` re-exporting its own submodules is not a circle (Python
    loads the submodule first); any other way back to a module is."""
    edges = graph()

    def inside(a: str, b: str) -> bool:  # a package and its own submodule
        return b.startswith(a + ".") or a.startswith(b + ".")

    circles = []
    for start in edges:
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in edges.get(node, ()):
                if inside(node, nxt):
                    continue
                if nxt == start:
                    circles.append(" -> ".join([*path, start]))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))
    assert circles == [], circles[:5]
