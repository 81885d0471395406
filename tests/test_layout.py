"""The package's layout: stages import only from earlier stages, and no module imports itself back.

Walks every module of ``ase_em`` with :mod:`ast` (every import: top-level, inside functions
and under ``TYPE_CHECKING``) and fails on an import from a later stage and on any import cycle.
The stage order is the one ``docs/developer.md`` draws.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ase_em"

# stage of each top-level part of ase_em; a module may import its own stage and earlier ones
STAGES = {
    "_version": 0, "errors": 0, "config": 0, "_runtime": 0,
    "hops": 1,
    "model": 2,
    "predictor": 3,
    "transport": 4,
    "crystals": 5,
    "ext": 6,
    "screening": 7,
    "neb": 8,
    "training": 9,
    "cli": 10,
    "migration_graph": 11,  # deprecated alias of the names the flat layout kept there
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """ase_em modules that ``name`` imports (``from pkg import sub`` counts as ``pkg.sub``)."""
    out: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "ase_em")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            if base.split(".")[0] != "ase_em":
                continue
            subs = {f"{base}.{a.name}" for a in node.names} & known
            out.update(subs or {base})
    out.discard(name)
    return out


def stage(name: str) -> int | None:
    parts = name.split(".")
    return STAGES.get(parts[1]) if len(parts) > 1 else None


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    mods = modules()
    return {n: imports_of(n, p, set(mods)) for n, p in mods.items()}


def test_every_part_has_a_stage(graph):
    unstaged = sorted({n.split(".")[1] for n in graph if n != "ase_em"} - set(STAGES))
    assert not unstaged, f"parts of ase_em without a stage in STAGES: {unstaged}"


def test_no_import_from_a_later_stage(graph):
    upward = []
    for name, targets in graph.items():
        if name == "ase_em":  # the package root holds the public names, imported lazily
            continue
        for t in targets:
            if t == "ase_em":
                upward.append(f"{name} imports the package root (import from the module that defines it)")
            elif stage(t) > stage(name):
                upward.append(f"{name} (stage {stage(name)}) imports {t} (stage {stage(t)})")
    assert not upward, "\n".join(sorted(upward))


def test_no_import_cycles(graph):
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(n: str) -> None:
        state[n] = 1
        stack.append(n)
        for t in sorted(graph.get(n, ())):
            if state.get(t) == 1:
                cycles.append(stack[stack.index(t):] + [t])
            elif t not in state:
                visit(t)
        stack.pop()
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n)
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_the_walker_sees_function_level_and_relative_imports(tmp_path):
    """The checks above could pass by missing imports; this one would then fail."""
    pkg = tmp_path / "ase_em" / "hops"
    pkg.mkdir(parents=True)
    (tmp_path / "ase_em" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    mod = pkg / "hop.py"
    mod.write_text("def f():\n    from ase_em.crystals import analyzer\n    from . import checks\n")
    known = {"ase_em.crystals.analyzer", "ase_em.hops.checks", "ase_em.crystals"}
    assert imports_of("ase_em.hops.hop", mod, known) == {"ase_em.crystals.analyzer", "ase_em.hops.checks"}
    assert stage("ase_em.crystals.analyzer") > stage("ase_em.hops.hop")
