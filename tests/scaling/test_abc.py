"""The counting against Yang & Hu's closed form for abc-parameterizations (Tensor Programs IV),
and the abc symmetry (a, b, c) -> (a + k, b - k, c - 2k), both as hypothesis properties.

Yang & Hu's classification, written here with a learning-rate exponent per layer (their
Theorem 3.3 has one c; the derivation is layer by layer): for an MLP with input layer 1
(fan-in d finite), hidden layers 2..L and readout L+1, weights n^-a w, w ~ N(0, n^-2b),
learning rate n^-c,
    theta = min(a_{L+1} + b_{L+1}, 2 a_{L+1} + c_{L+1})       (readout's backward after training)
    r_l   = theta + c_l - 1 + 2 a_l + I(l = 1)                 (feature update Delta W^l x ~ n^-r_l)
    r     = min_l r_l
stable iff a_1 + b_1 = 0, a_l + b_l = 1/2 (hidden), a_{L+1} + b_{L+1} >= 1/2, r >= 0,
2 a_{L+1} + c_{L+1} >= 1 and a_{L+1} + b_{L+1} + r >= 1; nontrivial iff 2 a_{L+1} + c_{L+1} = 1
or a_{L+1} + b_{L+1} + r = 1; then feature learning iff r = 0, kernel (lazy) iff r > 0.
(muP, a = (-1/2, 0, 1/2), b = (1/2, 1/2, 1/2), c = 0: r = 0; NTK: r = 1/2; SP with c = 1: r = 1/2.)
Only the stable-at-initialization hyperplane of the input and hidden layers is sampled: there
Yang & Hu call vanishing features unstable, which is a matter of definition, not of counting.
"""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scaling_specs import N, abc_shifted, exps, mlp, transformer

from dmftc.notation import hyper_symbol as h
from dmftc.scaling import analyze
from dmftc.spec.types import WeightOverride

quarter = st.integers(-4, 6).map(lambda k: Fraction(k, 4))


def yang_hu(a, b, c) -> str:
    """Regime from (a, b, c) = ((a_1, a_2, a_3), ...) for W0 (input), W1 (hidden), w (readout)."""
    (a1, a2, ar), (b1, b2, br), (c1, c2, cr) = a, b, c
    assert a1 + b1 == 0 and a2 + b2 == Fraction(1, 2)
    theta = min(ar + br, 2 * ar + cr)
    r = min(theta + c1 - 1 + 2 * a1 + 1, theta + c2 - 1 + 2 * a2)
    if ar + br < Fraction(1, 2) or r < 0 or 2 * ar + cr < 1 or ar + br + r < 1:
        return "unstable"
    if not (2 * ar + cr == 1 or ar + br + r == 1):
        return "trivial"
    return "feature_learning" if r == 0 else "lazy"


def abc_spec(a, b, c):
    over = {name: WeightOverride(N ** (-ai), N ** (-bi), N ** (-ci))
            for name, ai, bi, ci in zip(("W0", "W1", "w"), a, b, c)}
    return mlp("sp", L_=2, overrides=over)


@st.composite
def near_boundary(draw):
    """Exponents placed around the stability and nontriviality boundaries: pick the readout's
    theta, the layers' r_l and 2 a_{L+1} + c_{L+1} - 1 near 0, then solve for the c's (uniform
    sampling almost never lands on the feature-learning or lazy sets)."""
    a1, a2, ar = draw(quarter), draw(quarter), draw(quarter)
    br = draw(st.sampled_from([Fraction(k, 4) for k in range(1, 7)])) - ar     # a + b of the readout
    near = st.sampled_from([Fraction(-1, 4), Fraction(0), Fraction(0), Fraction(1, 4), Fraction(1, 2)])
    cr = 1 - 2 * ar + draw(near)
    theta = min(ar + br, 2 * ar + cr)
    c1 = draw(near) - theta - 2 * a1
    c2 = draw(near) - theta + 1 - 2 * a2
    return (a1, a2, ar), (-a1, Fraction(1, 2) - a2, br), (c1, c2, cr)


@st.composite
def anywhere(draw):
    a1, a2, ar, br = (draw(quarter) for _ in range(4))
    return (a1, a2, ar), (-a1, Fraction(1, 2) - a2, br), tuple(draw(quarter) for _ in range(3))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(abc=st.one_of(near_boundary(), anywhere()))
def test_counting_reproduces_yang_and_hu(abc):
    assert analyze(abc_spec(*abc)).regime == yang_hu(*abc)


@pytest.mark.parametrize("name, a, b, c, regime", [
    ("muP", (-0.5, 0, 0.5), (0.5, 0.5, 0.5), (0, 0, 0), "feature_learning"),
    ("NTK", (0, 0.5, 0.5), (0, 0, 0), (0, 0, 0), "lazy"),
    ("SP, lr 1/n", (0, 0, 0), (0, 0.5, 0.5), (1, 1, 1), "lazy"),
    ("SP, lr 1", (0, 0, 0), (0, 0.5, 0.5), (0, 0, 0), "unstable"),
    ("mean field readout, lr 1/n", (-0.5, 0, 0.5), (0.5, 0.5, 0.5), (1, 1, 1), "trivial"),
])
def test_named_rows_of_the_table(name, a, b, c, regime):
    a, b, c = ([Fraction(x) for x in t] for t in (a, b, c))
    assert yang_hu(a, b, c) == regime
    assert analyze(abc_spec(a, b, c)).regime == regime, name


def assert_symmetric(spec, shifts):
    """Regime, heads, depth and terms unchanged; dW:W shifts by k_W (W's entries scale as
    n^-b); nothing else moves (bwd:* is normalised by the readout's multiplier times init std)."""
    a, b = analyze(spec), analyze(abc_shifted(spec, shifts))
    assert (a.regime, a.heads, a.depth) == (b.regime, b.heads, b.depth)
    assert a.terms == b.terms and a.backward_scale == b.backward_scale
    ea, eb = exps(a), exps(b)
    for name, value in ea.items():
        kind, _, weight = name.replace("@trained", "").partition(":")
        shift = shifts.get(weight, 0) if kind == "dW" else 0
        assert eb[name] == value + shift, (name, value, eb[name], shift)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(preset=st.sampled_from(["sp", "ntk", "mup"]), lr=st.sampled_from([h("eta"), h("eta") / N]),
       k=st.tuples(quarter, quarter, quarter))
def test_abc_symmetry_of_the_mlp(preset, lr, k):
    spec = mlp(preset, lr=lr)
    assert_symmetric(spec, dict(zip(("W0", "W1", "w"), k)))


@pytest.mark.parametrize("alpha_A", [1.0, 0.5])
def test_abc_symmetry_of_the_transformer(alpha_A):
    shifts = {"attn0_K": Fraction(1, 2), "attn0_Q": Fraction(-1, 2), "attn0_V": 1, "embed": Fraction(1, 4),
              "W1": -1, "w": Fraction(1, 2)}
    assert_symmetric(transformer(alpha_A), shifts)
