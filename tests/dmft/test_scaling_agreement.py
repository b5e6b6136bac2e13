"""The derivation and the scaling analysis agree: a DMFT term survives exactly when its exponent is 0.

Two stages compute the same fact in two ways (prefactor limits from the exponent table;
power counting over the graph), so a drift in either shows up here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fractions import Fraction

import dmftc

SPECS = Path(__file__).resolve().parents[2] / "specs"
TERMS = {"src": "source", "upd": "update", "resp": "response", "bsrc": "bsource", "bupd": "bupdate",
         "bresp": "bresponse"}


@pytest.mark.parametrize("name", ["mlp_mup_relu", "mlp_mup_tanh", "mlp_mup_linear", "mlp_ntk_relu", "mlp_ntk_erf"])
def test_surviving_terms_have_exponent_zero(name):
    prog = dmftc.compile_spec(SPECS / f"{name}.yaml")
    c, sc = prog.equations.coefficients, prog.scaling
    checked = 0
    for key, value in c.items():
        term, weight = key.split(":")
        if term in TERMS and weight in sc.terms:
            exp = Fraction(sc.terms[weight][TERMS[term]]["N"])
            assert (value != 0) == (exp == 0), f"{key} = {value} but exponent N^{exp}"
            checked += 1
    f0 = Fraction(sc.terms["output"]["f0"]["N"])
    assert (c["f0:readout"] != 0) == (f0 == 0)
    assert checked >= 3


def test_an_unstable_limit_is_refused_with_the_analysis_reasons():
    with pytest.raises(dmftc.LimitError) as e:
        dmftc.compile_spec(SPECS / "mlp_sp_relu.yaml")
    assert "learning rate" in str(e.value)
