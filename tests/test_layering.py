"""Imports point one way: each stage imports only stages below it; the runtime only jax and numpy.

Generated solvers import dmftc.runtime alone, so the runtime must stay free of sympy and of the
compiler (it is what runs on a GPU box)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "dmftc"
RANK = {"errors": 0, "notation": 0, "accuracy": 1, "ir": 1, "files": 0, "outputs": 0, "divergence": 1, "compile_cache": 1, "spec": 1, "graph": 2, "blocks": 2,
        "crosscheck": 2, "training": 2, "scaling": 3, "budget": 3,
        "dmft": 4, "simulate": 4, "codegen": 5, "program": 6, "check": 7, "sweep": 8, "cli": 8, "__init__": 9,
        "__main__": 9,
        # a module may rank apart from its package: head collapse runs the simulator and the analysis
        "crosscheck.heads": 5, "crosscheck.simulations": 5, "crosscheck.depth": 6, "reproduce": 7}
#: stages a stage never imports, whatever the ranks: the cross-check judges the DMFT against finite
#: networks, so it must not depend on the DMFT, its code generator or its solver
NEVER = {"crosscheck": ("dmft", "codegen", "program", "check")}
STDLIB = set(sys.stdlib_module_names)


def _imports(path: Path):
    tree = ast.parse(path.read_text())
    pkg = path.relative_to(ROOT.parent).with_suffix("").parts
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[: len(pkg) - node.level]
                yield ".".join(base + ((node.module,) if node.module else ()))
            else:
                yield node.module


def _stage(module: str) -> str | None:
    """'dmftc.simulate.train' -> 'simulate'; a module with its own rank, 'crosscheck.heads', is its own stage."""
    parts = module.split(".")
    if parts[0] != "dmftc" or len(parts) < 2:
        return None
    own = ".".join(parts[1:3])
    return own if own in RANK else parts[1]


def _own(path: Path) -> str:
    return _stage(".".join(("dmftc", *path.relative_to(ROOT).with_suffix("").parts)))


def test_stages_import_only_lower_stages():
    bad = []
    for path in ROOT.rglob("*.py"):
        own = _own(path)
        if own == "runtime":
            continue
        for mod in _imports(path):
            st = _stage(mod)
            if st and st != own and st != "runtime" and RANK.get(st, 99) >= RANK.get(own, -1):
                bad.append(f"{path.relative_to(ROOT)} imports {mod}")
    assert not bad, "\n".join(bad)


def test_the_crosscheck_never_imports_the_dmft():
    bad = [f"{path.relative_to(ROOT)} imports {mod}"
           for own, never in NEVER.items() for path in (ROOT / own).rglob("*.py")
           for mod in _imports(path) if (_stage(mod) or "").split(".")[0] in never]
    assert not bad, "\n".join(bad)


def test_runtime_imports_only_jax_numpy_and_itself():
    bad = []
    for path in (ROOT / "runtime").rglob("*.py"):
        for mod in _imports(path):
            top = mod.split(".")[0]
            if top in STDLIB or top in ("jax", "numpy") or mod.startswith("dmftc.runtime"):
                continue
            bad.append(f"{path.name} imports {mod}")
    assert not bad, "\n".join(bad)
