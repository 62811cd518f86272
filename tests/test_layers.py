"""The package's shape: layers as folders, imports pointing only down, no import circles.

The layer contracts live in ``pyproject.toml`` (``[tool.importlinter]``) and are checked by
import-linter; circles are found here on the same import graph, deferred imports (in
functions, under ``TYPE_CHECKING``) included.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]


def _circles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
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
                        (child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_module_imports_another_that_imports_it_back() -> None:
    graph = grimp.build_graph("wheelstrap", include_external_packages=False)
    assert _circles(graph) == []


def test_the_circle_finder_finds_a_circle() -> None:
    graph = grimp.ImportGraph()
    for module in ("p", "p.a", "p.b", "p.c"):
        graph.add_module(module)
    graph.add_import(importer="p.a", imported="p.b")
    graph.add_import(importer="p.b", imported="p.a")
    graph.add_import(importer="p.c", imported="p.a")
    assert _circles(graph) == [["p.a", "p.b"]]


def test_the_layer_contracts_hold() -> None:
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint is not None, "import-linter is a test dependency: pip install -e '.[test]'"
    done = subprocess.run([lint], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


#: What of wheelstrap.index.git runs git (over the network, or reading a repository).
_GIT_RUNNERS = {"GitRepo", "git", "ls_remote", "tags_at"}


def _git_runners_used(path: Path) -> list[str]:
    """The names of :mod:`wheelstrap.index.git` that run ``git`` which ``path`` imports
    (or reaches as attributes of the module)."""
    import ast

    found = []
    tree = ast.parse(path.read_text("utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "wheelstrap.index.git":
            found += [a.name for a in node.names if a.name in _GIT_RUNNERS or a.name == "*"]
        elif isinstance(node, ast.ImportFrom) and node.module == "wheelstrap.index":
            found += [a.name for a in node.names if a.name == "git"]
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name == "wheelstrap.index.git"]
    return found


def test_the_store_runs_no_git() -> None:
    """The store writes OUT: fetching and reading git repositories is the run's
    (run/gitfetch.py), the store only records and places what was made."""
    store = ROOT / "src" / "wheelstrap" / "store"
    used = {str(p.relative_to(store)): names for p in sorted(store.rglob("*.py"))
            if (names := _git_runners_used(p))}
    assert used == {}
    # and the check sees such an import where there is one
    assert _git_runners_used(ROOT / "src" / "wheelstrap" / "run" / "gitfetch.py") == [
        "GitRepo", "ls_remote", "tags_at"]
