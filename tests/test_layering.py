"""Imports point one way: each stage imports only stages below it; the runtime only jax and numpy.

Generated solvers import dmftc.runtime alone, so the runtime must stay free of sympy and of the
compiler (it is what runs on a GPU box)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "dmftc"
RANK = {"errors": 0, "notation": 0, "files": 0, "spec": 1, "graph": 2, "blocks": 2, "crosscheck": 2, "scaling": 3,
        "dmft": 4, "simulate": 4, "codegen": 5, "program": 6, "check": 7, "sweep": 8, "cli": 8, "__init__": 9,
        "__main__": 9}
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
    parts = module.split(".")
    return parts[1] if parts[0] == "dmftc" and len(parts) > 1 else None


def test_stages_import_only_lower_stages():
    bad = []
    for path in ROOT.rglob("*.py"):
        own = path.relative_to(ROOT).parts[0].removesuffix(".py")
        if own == "runtime":
            continue
        for mod in _imports(path):
            st = _stage(mod)
            if st and st != own and st != "runtime" and RANK.get(st, 99) >= RANK.get(own, -1):
                bad.append(f"{path.relative_to(ROOT)} imports {mod}")
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
