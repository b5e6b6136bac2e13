"""Property tests over randomly composed architectures (the strategy: compose_strategy.py).

The target: every MLP chain under mup / ntk and every residual network under depth_mup /
completep that the spec format can write derives, compiles and solves; the scaling analysis
and the derived system agree on the regime; and a `repeat` is the same network as its
unrolled twin; and the two stages agree term by term on which terms survive the width limit.
No exception is allowed but the refusals in NOT_DERIVED (kernel maps of non-Gaussian vectors in
the lazy limit, named with the op and the reason) and a divergent solve. `sp` has no N -> oo limit with a fixed learning rate: there the
compiler must refuse with a LimitError that says why.

The default suite runs a few derandomized draws (the same ones every run, no shrinking, so
a failure costs one draw's time); `--runslow` runs 100 draws with shrinking. The plain tests
at the end run the same checks on the layouts of specs/mlp_mup_relu.yaml and
specs/resnet_depth_mup.yaml, which derive today: they keep the checks themselves honest.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings

import dmftc
from dmftc.errors import LimitError
from dmftc.notation import size_symbol
from dmftc.scaling import analyze

from .compose_strategy import (
    RESNET_PRESETS, STEPS, act, architectures, layernorm, mlp, mlps, repeat_twins, resnet, transformers, twin,
)

EXPECTED_REGIME = {"mup": "feature_learning", "depth_mup": "feature_learning", "completep": "feature_learning",
                   "ntk": "lazy"}
#: relative tolerance of twin loss trajectories: exact methods (linear networks, lazy limits)
EXACT_RTOL = 1e-6
#: Monte Carlo twins: the same solver seed and 2048 samples, but the draws are keyed by the
#: source names, which differ (W0 vs W0/W1/W2), so the two solves are independent estimates.
#: The seed-to-seed spread (std / mean over 6 seeds) of the loss at 2048 samples, P = 4, 2 steps,
#: L = 3, is 0.13 % (relu) and 0.5 % (tanh) at the last step; 5 % is 10 or more spreads and still
#: catches a wrong equation (relu vs tanh differ by 7 %: test_twin_check_catches_a_different_network).
MC_RTOL = 0.05
TWIN_SAMPLES = 2048


def _settings(examples: int, shrink: bool = False) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,  # one draw compiles XLA code and solves: seconds, not a bug
        derandomize=True,  # the same architectures every run
        database=None,
        phases=[Phase.explicit, Phase.generate, *([Phase.shrink] if shrink else [])],
        print_blob=False,
        suppress_health_check=[HealthCheck.too_slow],
    )


FAST, SLOW = _settings(6), _settings(100, shrink=True)


# ------------------------------------------------------------------ the checks
#: refusals that name a limit this engine does not derive yet (the op and the reason are in the message);
#: anything else (an internal error, another refusal) fails the test
NOT_DERIVED = ("the lazy limit of a layernorm of a non-Gaussian vector",
               "the lazy limit of a residual branch that does not end in a dense layer",
               "the lazy limit of a residual stream that is not a Gaussian field")


def derive_and_solve(arch) -> np.ndarray | None:
    """analyze, compile_spec and a 2-step solve. Returns the loss; None for a refusal in NOT_DERIVED or a
    solve that diverges (dmftc.SolverError: a quadratic activation at this learning rate can), both
    user-facing errors that name what and why; any other exception fails."""
    spec = arch.load()
    scaling = analyze(spec)
    assert scaling.regime == EXPECTED_REGIME[arch.preset], (scaling.regime, scaling.reasons)
    try:
        prog = dmftc.compile_spec(spec)
    except dmftc.Unsupported as e:
        if any(k in str(e) for k in NOT_DERIVED):
            return None
        raise
    try:
        sol = prog.solve(errors=False)
    except dmftc.SolverError as e:
        assert "diverged" in str(e), e
        return None
    loss = np.asarray(sol.loss)
    assert loss.shape == (STEPS + 1,), loss.shape
    assert np.all(np.isfinite(loss)), loss
    return loss


def regimes_agree(arch) -> None:
    spec = arch.load()
    scaling = analyze(spec)
    try:
        prog = dmftc.compile_spec(spec)
    except dmftc.Unsupported as e:
        if any(k in str(e) for k in NOT_DERIVED):
            return
        raise
    assert scaling.regime in ("feature_learning", "lazy"), (scaling.regime, scaling.reasons)
    assert prog.scaling.regime == scaling.regime
    assert prog.equations.regime == scaling.regime, (prog.equations.regime, scaling.regime, prog.equations.method)
    assert scaling.regime == EXPECTED_REGIME[arch.preset]


def exponent_rows(prog) -> list[tuple]:
    """(role, a, b, c) in N of every weight in model order, consecutive equal rows collapsed.

    The names differ between twins (W0 vs W0..W{L-1}), so rows are compared by position. A
    repeat's template is one weight (or one row per distinct copy, e.g. the input copy and the
    hidden ones), while its unrolled twin has L weights: collapsing consecutive duplicates makes
    both representations comparable without hiding a changed exponent.
    """
    n = size_symbol("N")
    rows = [(r.role, *prog.params[r.name].abc(n)) for r in prog.scaling.parameterization.rows]
    return [r for i, r in enumerate(rows) if i == 0 or r != rows[i - 1]]


def _compiled(arch):
    """The program, or the refusal's first line for a limit in NOT_DERIVED."""
    try:
        return dmftc.compile_spec(arch.load())
    except dmftc.Unsupported as e:
        if any(k in str(e) for k in NOT_DERIVED):
            return str(e).splitlines()[0]
        raise


TERMS = {"src": "source", "upd": "update", "resp": "response", "bsrc": "bsource", "bupd": "bupdate",
         "bresp": "bresponse"}


def terms_agree(arch) -> int:
    """Every dense term the derivation keeps has N-exponent 0 in the scaling analysis, every one it drops a
    negative one (width limits; the depth limit's terms carry L as well). Returns how many were compared."""
    if arch.limit != ("N",):
        return 0
    prog = _compiled(arch)
    if isinstance(prog, str) or prog.equations.regime != "feature_learning":
        return 0
    from fractions import Fraction

    checked = 0
    for key, value in prog.equations.coefficients.items():
        term, weight = key.split(":")
        if term in TERMS and weight in prog.scaling.terms and TERMS[term] in prog.scaling.terms[weight]:
            exp = Fraction(prog.scaling.terms[weight][TERMS[term]]["N"])
            assert (value != 0) == (exp == 0), f"{key} = {value} but exponent N^{exp}"
            checked += 1
    return checked


def twins_agree(rolled, unrolled) -> None:
    a, b = _compiled(rolled), _compiled(unrolled)
    if isinstance(a, str) or isinstance(b, str):
        assert a == b, (a, b)     # refused alike, for the same reason
        return
    assert a.scaling.regime == b.scaling.regime
    assert a.equations.regime == b.equations.regime
    assert exponent_rows(a) == exponent_rows(b), (exponent_rows(a), exponent_rows(b))
    assert a.equations.method == b.equations.method
    la, lb = np.asarray(a.solve(errors=False).loss), np.asarray(b.solve(errors=False).loss)
    rtol = MC_RTOL if a.equations.method == "monte_carlo" else EXACT_RTOL
    np.testing.assert_allclose(la, lb, rtol=rtol, err_msg=f"method {a.equations.method}")


# ------------------------------------------------------------------ the properties
@FAST
@given(architectures())
def test_random_architectures_derive_and_solve(arch):
    derive_and_solve(arch)


@pytest.mark.slow
@SLOW
@given(architectures())
def test_random_architectures_derive_and_solve_many(arch):
    derive_and_solve(arch)


@_settings(12)
@given(architectures())
def test_analysis_and_derivation_keep_the_same_terms(arch):
    terms_agree(arch)


@_settings(12)
@given(architectures())
def test_regime_agrees(arch):
    regimes_agree(arch)


@pytest.mark.slow
@SLOW
@given(architectures())
def test_regime_agrees_many(arch):
    regimes_agree(arch)


@_settings(2)
@given(repeat_twins(samples=TWIN_SAMPLES))
def test_repeat_matches_unrolled_twin(twins):
    twins_agree(*twins)


@pytest.mark.slow
@_settings(25, shrink=True)
@given(repeat_twins(samples=TWIN_SAMPLES))
def test_repeat_matches_unrolled_twin_many(twins):
    twins_agree(*twins)


@_settings(10)
@given(mlps(presets=("sp",)))
def test_sp_width_limit_is_refused_with_reasons(arch):
    """sp with a fixed learning rate has no N -> oo limit: a LimitError that names the limit and the fix."""
    spec = arch.load()
    assert analyze(spec).regime == "unstable"
    with pytest.raises(LimitError, match=r"ill-posed(.|\n)*N -> inf: unstable: .+"):
        dmftc.compile_spec(spec)


# ------------------------------------------------------------------ the layouts that derive today
RELU_MLP = mlp([("N", [act("relu")]), ("N", [act("relu")])], form="repeat_rest")


@pytest.mark.parametrize("arch", [
    RELU_MLP,
    mlp([("N", [act("relu")]), ("N", [act("relu")])], preset="ntk", form="repeat_rest", L=3),
    resnet([act("relu")], ["N"], [], [], tail=[act("relu")]),
    resnet([act("relu")], ["N"], [], [], tail=[act("relu")], preset="completep", L=3),
], ids=["mlp_mup_relu", "mlp_ntk_relu", "resnet_depth_mup", "resnet_completep"])
def test_checks_pass_on_todays_layouts(arch):
    derive_and_solve(arch)
    regimes_agree(arch)


def test_checks_pass_on_todays_depth_limit():
    arch = resnet([act("relu")], ["N"], [], [], tail=[act("relu")], limit=("N", "L"))
    assert arch.preset in RESNET_PRESETS and "depth_steps" in arch.text
    derive_and_solve(arch)


def test_twin_check_passes_with_first_layer_outside_the_repeat():
    """mlp_mup_relu's layout (W0, then repeat L - 1) against W0, W1, W2 written out."""
    twins_agree(*twin("N", [act("relu")], L=3, hold_input=False, samples=TWIN_SAMPLES))


def test_twin_check_catches_a_different_network():
    """The twin check is not vacuous: a relu body against a tanh body fails it."""
    rolled, _ = twin("N", [act("relu")], L=2, hold_input=False, samples=TWIN_SAMPLES)
    _, other = twin("N", [act("tanh")], L=2, hold_input=False, samples=TWIN_SAMPLES)
    with pytest.raises(AssertionError):
        twins_agree(rolled, other)


def test_strategy_renders_what_it_draws():
    """The renderer writes every op the builders hold, and layernorm / pointwise ops survive loading."""
    arch = mlp([("2*N", [layernorm(), act("gelu")]), ("N/2", [])], form="flat")
    spec = arch.load()
    assert [type(op).__name__ for op in spec.model] == ["Dense", "LayerNorm", "Act", "Dense", "Readout"]


def test_raw_exponents_are_the_same_network_as_their_preset():
    """preset: null with per-weight exponents: mup's rows moved by the abc symmetry on the hidden weight
    (multiplier N^-1/2 -> 1, init std 1 -> N^-1/2, learning rate / N) derive the same terms and loss."""
    from pathlib import Path

    from dmftc.spec import loads

    text = (Path(__file__).resolve().parents[2] / "specs" / "layouts" / "mlp_relu_tanh.yaml").read_text()
    text = text.replace("training: {lr: eta, steps: 10}", "training: {lr: eta, steps: 3}")
    named = (text.replace("  - dense: {out: N}\n  - act: relu\n  - dense: {out: N}",
                          "  - dense: {out: N, name: W0}\n  - act: relu\n  - dense: {out: N, name: W1}")
             .replace("  - readout: {}", "  - readout: {name: w}"))
    raw = named.replace("parameterization: {preset: mup}", """parameterization:
  preset: null
  weights:
    W0: {multiplier: 1/sqrt(D), init_std: 1, lr: gamma0**2*N}
    W1: {multiplier: 1, init_std: 1/sqrt(N), lr: gamma0**2}
    w: {multiplier: 1/(gamma0*N), init_std: 1, lr: gamma0**2*N}""")
    a, b = (dmftc.compile_spec(loads(t, filename="x.yaml")) for t in (named, raw))
    assert a.equations.coefficients == b.equations.coefficients
    np.testing.assert_array_equal(a.solve(errors=False).loss, b.solve(errors=False).loss)
    broken = raw.replace("W1: {multiplier: 1, init_std: 1/sqrt(N), lr: gamma0**2}",
                         "W1: {multiplier: 1, init_std: 1/sqrt(N), lr: gamma0**2*N}")
    with pytest.raises(LimitError):          # the same weight with a learning rate N times too large
        dmftc.compile_spec(loads(broken, filename="x.yaml"))


# ------------------------------------------------------------------ token models
@_settings(3)
@given(transformers())
def test_random_transformers_derive_and_solve(arch):
    derive_and_solve(arch)


@_settings(4)
@given(transformers(limits=(("N",),)))
def test_transformer_analysis_and_derivation_keep_the_same_terms(arch):
    terms_agree(arch)


@_settings(4)
@given(transformers())
def test_transformer_regime_agrees(arch):
    regimes_agree(arch)


@pytest.mark.slow
@SLOW
@given(transformers(limits=(("N",), ("H",), ("N", "L"), ("H", "L"))))
def test_random_transformers_derive_and_solve_many(arch):
    """Also the depth limits (20-60 s a draw)."""
    derive_and_solve(arch)
