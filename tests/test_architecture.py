"""The shape of the `ragtune` package: its sub-packages import each other one way (no cycle), the
leaf modules stay leaves, and no stage reaches into another stage's internals.

Every import counts — at module level, inside functions and under TYPE_CHECKING — since a lazy
import is still a dependency. `python tests/test_architecture.py` prints the package graph.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "packages" / "core" / "src" / "ragtune"

#: The stages: each may use the others' public tables and types, never their internals.
STAGES = ("index", "synth", "train", "model", "baselines", "eval")

#: What each leaf may import of ragtune (the foundation modules aside).
LEAVES = {
    "text": {"corpus"},
    "prompts": {"llm"},
}
#: The foundation: modules that import nothing of ragtune beyond each other.
FOUNDATION = {
    "adapters",
    "errors",
    "extras",
    "fileio",
    "hashing",
    "logs",
    "manifest",
    "parquet",
    "paths",
    "progress",
    "stages",
    "workspace",
}


def _package_of(module: str) -> str | None:
    """`ragtune.index.pipeline` → ``index``; ``ragtune`` itself → None."""
    parts = module.split(".")
    return parts[1] if parts[0] == "ragtune" and len(parts) > 1 else None


def _module_name(path: Path) -> str:
    relative = path.relative_to(SOURCE.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports() -> dict[str, set[str]]:
    """Every ragtune module (dotted name) → the ragtune modules it imports."""
    found: dict[str, set[str]] = {}
    for path in sorted(SOURCE.rglob("*.py")):
        name = _module_name(path)
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module == "ragtune":
                    targets.update(
                        f"ragtune.{alias.name}"
                        for alias in node.names
                        if (SOURCE / alias.name).is_dir() or (SOURCE / f"{alias.name}.py").is_file()
                    )
                elif node.module.startswith("ragtune."):
                    targets.add(node.module)
            elif isinstance(node, ast.Import):
                targets.update(a.name for a in node.names if a.name.startswith("ragtune."))
        found[name] = targets
    return found


def package_graph() -> dict[str, set[str]]:
    """Sub-package (or top-level module) → those it imports, itself excluded."""
    graph: dict[str, set[str]] = defaultdict(set)
    for module, targets in imports().items():
        source = _package_of(module)
        if source is None:
            continue
        graph[source]
        for target in targets:
            package = _package_of(target)
            if package is not None and package != source:
                graph[source].add(package)
    return dict(graph)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of `graph` with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_checker_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_packages_import_each_other_one_way() -> None:
    graph = package_graph()
    assert {"index", "synth", "train", "config", "text", "prompts"} <= set(graph)
    assert cycles(graph) == []


@pytest.mark.parametrize("leaf", sorted(LEAVES))
def test_leaves_import_only_what_they_may(leaf: str) -> None:
    allowed = LEAVES[leaf] | FOUNDATION
    assert package_graph()[leaf] <= allowed


def test_the_foundation_imports_only_the_foundation() -> None:
    graph = package_graph()
    for module in FOUNDATION:
        assert graph[module] <= FOUNDATION, module


def test_stages_settle_their_settings_without_the_composed_config() -> None:
    graph = package_graph()
    for stage in ("index", "synth", "train", "text", "prompts", "corpus", "llm"):
        assert "config" not in graph[stage], stage


def test_no_stage_imports_another_stages_internals() -> None:
    """A stage may import another's public names (its package, `types`, `tables`, `settings`),
    not its other modules (the index's heuristics, synthesis strategies, the trainer)."""
    public = {"types", "tables", "settings"}
    offenders = []
    for module, targets in imports().items():
        source = _package_of(module)
        if source not in STAGES:
            continue
        for target in targets:
            parts = target.split(".")
            package = parts[1]
            other_stage = package in STAGES and package != source and len(parts) > 2
            allowed = parts[2] in public if len(parts) > 2 else True
            # evaluation drives the baseline systems: it is the one stage built on another's
            # machinery, by design.
            if other_stage and not allowed and not (source == "eval" and package == "baselines"):
                offenders.append(f"{module} → {target}")
    assert offenders == []


if __name__ == "__main__":  # python tests/test_architecture.py [path/to/src/ragtune]
    if len(sys.argv) > 1:
        SOURCE = Path(sys.argv[1]).resolve()
    for package, targets in sorted(package_graph().items()):
        print(f"{package:10} → {', '.join(sorted(targets)) or '-'}")
    found = cycles(package_graph())
    print("cycles:", found or "none")
    sys.exit(1 if found else 0)
