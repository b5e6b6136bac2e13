"""Memoised histories (dmftc.codegen.memo): a step reads phi(h) and dphi(u) r of whole histories
from arrays written one slot per step, never re-evaluates them over the history.

The numbers are those of the un-memoised step: tests/runtime/test_reference_dmft.py holds the
generated solver to the independent numpy oracle, and the golden and segment tests to themselves.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sympy

from dmftc import compile_spec
from dmftc.codegen import memo
from dmftc.notation import H, dphi, ell, h, nu, phi, r, s, u
from dmftc.spec import load

SPECS = Path(__file__).resolve().parents[2] / "specs"
FIELDS = {"h", "z", "g", "u", "r"}


def test_a_pointwise_function_of_one_layer_s_fields_is_memoised():
    tpl, layer = memo.template(phi(h[ell + 1, nu, s]), FIELDS)
    assert layer == ell + 1 and tpl == phi(h[memo.LAYER, nu, s])
    tpl, layer = memo.template(dphi(u[2, nu, s]) * r[2, nu, s], FIELDS)
    assert layer == 2 and memo.bases_of(tpl) == {"u", "r"}


@pytest.mark.parametrize("X", [h[1, nu, s],                                      # a bare field: its own history
                               dphi(u[1, nu, s]) * r[2, nu, s],                  # fields of two layers
                               h[1, nu, s] / sympy.sqrt(H[1, nu, nu, s, s])])    # reads a kernel (LayerNorm)
def test_what_is_not_memoised(X):
    assert memo.template(X, FIELDS) is None


def test_memo_names_read_as_the_expression_and_are_unique():
    tpl = memo.template(dphi(u[2, nu, s]) * r[2, nu, s], FIELDS)[0]
    assert memo.name_of(tpl, set()) == "dphi_u_r"
    assert memo.name_of(tpl, {"dphi_u_r"}) == "dphi_u_r_2"
    assert memo.name_of(memo.template(phi(h[1, nu, s]), FIELDS)[0], {"h"}) == "phi_h"


def _step(name: str) -> str:
    text = compile_spec(load(SPECS / f"{name}.yaml")).module
    start = text.index("    def step(")
    return text[start:text.index("        return dict(", start)]


@pytest.mark.parametrize("name", ["mlp_mup_relu", "resnet_depth_mup", "transformer_mup"])
def test_every_history_a_step_contracts_is_held_not_recomputed(name):
    step = _step(name)
    operands = re.findall(r"rt\.kernel_row\(\w+, .*?, (.*?), t\)", step)
    operands += re.findall(r"rt\.causal_sum\(.*?, ([^,()]*(?:\([^()]*\))?[^,()]*), t, strict=", step)
    assert operands
    recomputed = [op for op in operands if re.search(r"\b(phi|dphi)\(", op)]
    assert not recomputed, f"histories re-evaluated every step: {sorted(set(recomputed))}"


@pytest.mark.parametrize("name", ["mlp_mup_relu", "transformer_mup"])
def test_a_memo_slot_is_written_after_every_field_it_reads(name):
    lines = _step(name).splitlines()
    written = []   # (line number, array written) in order
    for i, ln in enumerate(lines):
        m = re.match(r"\s*(\w+)\[(.+?)\] = rt\.set_slot\(", ln)
        if m:
            written.append((i, m.group(1), m.group(2)))
    memo_writes = [(i, a, lay, lines[i]) for i, a, lay in written if "# memo of" in lines[i]]
    assert memo_writes
    for i, a, lay, ln in memo_writes:
        fields = set(re.findall(r"(\w+)_t\[", ln.split("= rt.set_slot(", 1)[1].split("# memo")[0]))
        for f in fields:
            assert any(j < i and b == f for j, b, _ in written), f"{a}[{lay}] written before {f} has its row t"
