"""MLP width limits: hand-derived exponents of each preset (docs/theory.md#width-presets).

Counting for y = m W x (m, s, lam: exponents of multiplier, init std, step; fan-in N after
the first layer, D finite before it): F(y) = m + s + n_in/2 + F(x); B(x) = m + s + n_out/2
+ B(y); dW = lam + m + B(y) + F(x); the update term D(y) = m + dW + n_in + F(x).
"""

from __future__ import annotations

import pytest
from scaling_specs import N, exps, half, mlp, raw_form, with_lr

from dmftc.notation import hyper_symbol as h
from dmftc.scaling import analyze

# mup: hidden m = -1/2, s = 0, lam = 1 (eta gamma0^2 N); readout m = -1; B(h) = -1 raw, 0 normalised.
MUP = {"fwd:W0": 0, "fwd:W1": 0, "f0": -half, "bwd:W0": 0, "bwd:W1": 0,
       "dW:W0": 0,            # 1 + 0 + (-1) + 0
       "dW:W1": -half,        # 1 - 1/2 - 1 + 0
       "dW:w": 0,             # 1 - 1 + 0 + 0
       "dfwd:W0": 0, "dfwd:W1": 0, "df": 0,
       "dfwd:W1@trained": 0, "df@trained": 0}
# ntk: m = -1/2 everywhere but the first layer (m = 0, fan-in D), lam = 0, B(h) = -1/2 raw.
NTK = {"fwd:W1": 0, "f0": 0, "bwd:W1": 0,
       "dW:W0": -half,        # 0 + 0 - 1/2 + 0
       "dW:W1": -1,           # 0 - 1/2 - 1/2 + 0
       "dW:w": -half,         # 0 - 1/2 + 0 + 0
       "dfwd:W0": -half, "dfwd:W1": -half,   # -1/2 - 1 + 1
       "df": 0, "df@trained": 0}
# sp with lr eta / N: m = 0, s = -1/2 (fan-in N), lam = -1; B(h) = -1/2 raw, 0 normalised by the
# readout's s_hat = m s = N^-1/2.
SP_SLOW = {"f0": 0, "bwd:W1": 0, "dW:W1": -3 * half, "dfwd:W1": -half,
           "dW:W0": -3 * half, "dfwd:W0": -3 * half,  # first layer: fan-in D, learns as N^-3/2
           "df": 0}


def check(expected, scaling):
    got = exps(scaling)
    wrong = {k: (got[k], v) for k, v in expected.items() if got[k] != v}
    assert not wrong, f"(got, expected): {wrong}"


def test_mup_learns_features():
    sc = analyze(mlp("mup"))
    check(MUP, sc)
    assert sc.regime == "feature_learning" and sc.heads is None and sc.depth is None
    sc.check()


def test_ntk_is_lazy_with_an_O1_output_at_init():
    sc = analyze(mlp("ntk"))
    check(NTK, sc)
    assert sc.regime == "lazy"
    assert "O(1) Gaussian process" in sc.reasons[0]


def test_sp_with_a_fixed_learning_rate_is_unstable():
    sc = analyze(mlp("sp"))
    assert sc.regime == "unstable"
    # readout: dW = 0 (lam 0, m 0, B(f) 0, F 0); update term 0 + 0 + 1 + 0; hidden: 0 - 1/2 + 1
    check({"df": 1, "dfwd:W1": half, "f0": 0}, sc)
    assert sc.reasons[0] == ("N -> inf: unstable: the output change after one step grows as N^1 "
                             "(sp with a fixed learning rate): scale the learning rate as N^-1 for the "
                             "lazy limit or use mup.")


def test_sp_with_learning_rate_over_N_is_lazy():
    sc = analyze(with_lr(mlp("sp"), h("eta") / N))
    check(SP_SLOW, sc)
    assert sc.regime == "lazy"


def test_ntk_with_learning_rate_times_N_blows_up():
    """Yang & Hu: ntk with lr ~ N moves the output by N (and the first layer by N^1/2)."""
    sc = analyze(with_lr(mlp("ntk"), h("eta") * N))
    check({"df": 1, "dfwd:W0": half, "dfwd:W1": half}, sc)
    assert sc.regime == "unstable"
    assert "output change after one step grows as N^1" in sc.reasons[0]


def test_mup_with_learning_rate_over_N_is_trivial():
    """Every change falls by N^-1 (dW carries lam): the output change N^-1 -> 0, and f0 -> 0
    as N^-1/2 too: the limit network is 0 and does not learn (trivial, not lazy)."""
    sc = analyze(with_lr(mlp("mup"), h("eta") / N))
    check({"df": -1, "dfwd:W1": -1, "dfwd:W0": -1, "f0": -half, "df@trained": -1}, sc)
    assert sc.regime == "trivial"
    assert "multiply the learning rate by N^1" in sc.reasons[0]


@pytest.mark.parametrize("act", ["linear", "tanh", "erf", "gelu", "quadratic", "sigmoid"])
def test_mup_verdict_does_not_depend_on_the_activation(act):
    assert analyze(mlp("mup", act=act)).regime == "feature_learning"


def test_terms_of_the_dmft():
    """0 survives, < 0 vanishes: in ntk the update and response terms vanish, in mup they stay."""
    mup, ntk = analyze(mlp("mup")).terms, analyze(mlp("ntk")).terms
    assert {k: v["N"] for k, v in mup["W1"].items()} == dict.fromkeys(
        ("source", "update", "response", "bsource", "bupdate", "bresponse"), 0)
    assert {k: v["N"] for k, v in ntk["W1"].items()} == {
        "source": 0, "update": -half, "response": -half, "bsource": 0, "bupdate": -half, "bresponse": -half}
    assert mup["output"] == {"f0": {"N": -half}, "df": {"N": 0}}
    assert ntk["output"] == {"f0": {"N": 0}, "df": {"N": 0}}


@pytest.mark.parametrize("preset", ["sp", "ntk", "mup"])
def test_a_preset_equals_its_raw_exponent_form(preset):
    spec = mlp(preset)
    a, b = analyze(spec), analyze(raw_form(spec, "ntk" if preset == "sp" else "sp"))
    assert (a.regime, a.heads, a.depth) == (b.regime, b.heads, b.depth)
    assert a.exponents == b.exponents and a.terms == b.terms
