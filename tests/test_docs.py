"""The documentation lives in the repository and holds together: the MkDocs site builds with
warnings as errors, every relative link in it and in the README reaches a file (and a
heading) of the repository, and no file cites a document a clone does not have.

The link and citation checks are closed-form (the markdown is parsed here, nothing is
rendered), so they say which file and which link is wrong."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from markdown.extensions.toc import slugify

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

# Built from pieces so that this file does not hold the literals it looks for.
OUTSIDE = ".." + "/shared"
RETIRED = ("FIGURES" + ".md", "DESIGN" + ".md")  # the design notes the docs/ pages replace

TEXT_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".sh", ".toml", ".txt", ".json", ".cfg"}
LINK = re.compile(r"(?<!!)\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
CODE_SPAN = re.compile(r"`+[^`\n]*`+")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*$", re.M)
EXPLICIT_ID = re.compile(r"\{[^}]*#([\w-]+)[^}]*\}\s*$")
CITED_ANCHOR = re.compile(r"docs/([\w./-]+\.md)#([\w-]+)")


def _markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


def _prose(text: str) -> str:
    """The text outside fenced blocks and code spans, where a link is a link."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def _anchors(page: Path) -> set[str]:
    """The ids of a page's headings as MkDocs gives them: an explicit ``{#id}`` (attr_list),
    else the toc extension's slug of the heading's text."""
    ids = set()
    for heading in HEADING.findall(FENCE.sub("", page.read_text())):
        explicit = EXPLICIT_ID.search(heading)
        if explicit:
            ids.add(explicit[1])
        else:
            ids.add(slugify(re.sub(r"[`*_]", "", heading), "-"))
    return ids


def _repo_text_files() -> list[Path]:
    """README.md and every text file under docs/, emulator/, topologies/ and tests/, each
    once (topologies/ links to emulator/spec/presets/)."""
    seen: dict[Path, Path] = {}
    for top in ("docs", "emulator", "topologies", "tests"):
        for path in sorted((ROOT / top).rglob("*")):
            if path.is_file() and path.suffix in TEXT_SUFFIXES and "__pycache__" not in path.parts:
                seen.setdefault(path.resolve(), path)
    seen.setdefault((ROOT / "README.md").resolve(), ROOT / "README.md")
    return list(seen.values())


def test_the_docs_build_with_warnings_as_errors(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert (tmp_path / "index.html").is_file()
    assert (tmp_path / "sources" / "index.html").is_file()
    # the API pages were generated from the docstrings, not left empty
    api = (tmp_path / "api" / "cost" / "index.html").read_text()
    assert "emulator.cost.physical" in api and "array_read" in api


@pytest.mark.parametrize("page", _markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_reaches_a_file_of_the_repository(page: Path) -> None:
    broken = []
    for target in LINK.findall(_prose(page.read_text())):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("//"):
            continue  # a URL: not ours to check offline
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page.resolve()
        if not file.is_relative_to(ROOT):
            broken.append(f"{target}: outside the repository")
        elif not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in _anchors(file):
            broken.append(f"{target}: {file.name} has no heading #{anchor}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_the_snippets_the_docs_include_exist() -> None:
    for page in DOCS.rglob("*.md"):
        for name in re.findall(r'^--8<-- "([^":]+)', page.read_text(), re.M):
            assert (ROOT / name).is_file(), f"{page.relative_to(ROOT)} includes {name}"


def test_no_file_cites_a_document_outside_the_repository() -> None:
    found: dict[str, list[str]] = {}
    for path in _repo_text_files():
        text = path.read_text(errors="replace")
        hits = [s for s in (OUTSIDE, *RETIRED) if s in text]
        if hits:
            found[path.relative_to(ROOT).as_posix()] = hits
    assert not found, f"cite docs/ instead: {found}"


def test_every_cited_docs_anchor_exists() -> None:
    """``docs/<page>.md#<anchor>`` in code, presets, tests and README names a real heading."""
    missing = []
    for path in _repo_text_files():
        for page, anchor in CITED_ANCHOR.findall(path.read_text(errors="replace")):
            target = DOCS / page
            if not target.is_file():
                missing.append(f"{path.relative_to(ROOT)}: docs/{page} does not exist")
            elif anchor not in _anchors(target):
                missing.append(f"{path.relative_to(ROOT)}: docs/{page} has no #{anchor}")
    assert not missing, "\n".join(missing)


def test_sources_gives_every_citation_a_stable_anchor() -> None:
    anchors = _anchors(DOCS / "sources.md")
    for section in (
        "pipesdfa",
        "sdfa",
        "pipelayer",
        "isaac",
        "devices",
        "neurosim",
        "crosssim",
        "aihwkit",
        "esgnn",
        "vw-sdk",
        "dfa",
        "calibration",
        "datasets",
    ):
        assert section in anchors, section
