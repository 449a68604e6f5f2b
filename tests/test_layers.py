"""The package's shape is a contract: layers, no import cycles, small modules, one home per
provider. Each check reads the source as it is, so a change that breaks the shape fails here."""

from __future__ import annotations

import re
import subprocess
import sys
import tokenize
from pathlib import Path

import grimp
import pytest

import flask_mailconnect

PACKAGE = Path(flask_mailconnect.__file__).parent
ROOT = PACKAGE.parent
#: Names of real providers: they belong in providers/builtin/ (and in words people read).
PROVIDER_NAMES = re.compile(r"google|gmail|microsoft|outlook|office365|yahoo|icloud", re.I)


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_import_linter_contracts_hold() -> None:
    """pyproject.toml's [tool.importlinter] contracts (layers, transport without Flask, the
    facade imported by nobody) pass; the same command ``make lint`` runs."""
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "BROKEN" not in result.stdout


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph.modules):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append(
                        (child, iter(sorted(graph.find_modules_directly_imported_by(child))))
                    )
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.append(sorted(group))
    return found


def test_no_import_cycles_of_any_kind() -> None:
    """grimp counts every import statement: module level, inside functions and under
    ``TYPE_CHECKING``. A lazy import that dodges a cycle is still a cycle."""
    graph = grimp.build_graph("flask_mailconnect", cache_dir=None)
    assert len(graph.modules) > 40  # the whole package was read
    assert _cycles(graph) == []


def test_cycle_finder_finds_a_cycle() -> None:
    """The finder above is not vacuous: a two-module cycle is reported."""
    graph = grimp.ImportGraph()
    for name in ("pkg", "pkg.a", "pkg.b", "pkg.c"):
        graph.add_module(name)
    graph.add_import(importer="pkg.a", imported="pkg.b")
    graph.add_import(importer="pkg.b", imported="pkg.a")
    graph.add_import(importer="pkg.c", imported="pkg.a")
    assert _cycles(graph) == [["pkg.a", "pkg.b"]]


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_is_small(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").count("\n")
    assert lines <= 500, f"{path.relative_to(ROOT)} has {lines} lines; split it by concern"


def _code_tokens(path: Path) -> list[tuple[int, str]]:
    """(line, text) of the tokens that are code: names and short string literals such as keys
    and URLs. Comments, docstrings and sentences (strings with a space: words people read,
    such as messages) are left out."""
    found = []
    with path.open("rb") as source:
        for token in tokenize.tokenize(source.readline):
            if token.type == tokenize.COMMENT:
                continue
            if token.type == tokenize.STRING and re.search(r"\s", token.string):
                continue
            if token.type in (tokenize.NAME, tokenize.STRING):
                found.append((token.start[0], token.string))
    return found


def test_provider_names_only_in_provider_modules() -> None:
    """Adding a provider is one module under providers/builtin/; no other module names one
    in code (keys, URLs and identifiers included)."""
    offenders = []
    for path in _modules():
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith("providers/builtin/"):
            continue
        if rel.startswith("migrations/versions/"):
            # A migration is a frozen record of the past: 0002 writes out the provider keys
            # it renamed instead of reading today's catalogue, whose aliases may change.
            continue
        for number, text in _code_tokens(path):
            if PROVIDER_NAMES.search(text):
                offenders.append(f"{rel}:{number}: {text}")
    assert offenders == []


def test_provider_name_check_sees_code(tmp_path: Path) -> None:
    """The check above is not vacuous: a key in code is found, a sentence is not."""
    sample = tmp_path / "sample.py"
    sample.write_text('KEY = "google"\nTEXT = "Connect with Google"\n# gmail\n')
    assert [t for _, t in _code_tokens(sample) if PROVIDER_NAMES.search(t)] == ['"google"']
