"""Golden generated files: `dmftc compile` of each MLP example reproduces generated/ byte for byte.

A change to the derivation or the code generator shows up here as a diff a reviewer can read;
regenerate with `for s in ...; do dmftc compile specs/$s.yaml; done` when it is intended.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import dmftc

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = sorted(p.stem for p in (ROOT / "generated").glob("*.py"))


def test_there_are_golden_files():
    assert {"mlp_mup_relu", "mlp_ntk_relu"} <= set(GOLDEN)


@pytest.mark.parametrize("name", GOLDEN)
def test_compile_reproduces_the_golden_module_and_tex(name, monkeypatch):
    monkeypatch.chdir(ROOT)
    prog = dmftc.compile_spec(Path("specs") / f"{name}.yaml")
    for ext, text in (("py", prog.module), ("tex", prog.latex(standalone=True))):
        golden = (ROOT / "generated" / f"{name}.{ext}").read_text()
        assert text == golden, f"generated/{name}.{ext} is stale: run `dmftc compile specs/{name}.yaml`"
