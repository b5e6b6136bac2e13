"""The per-step contractions over draws as flat matmuls equal their einsum definitions to round-off.

`rt.kernel_row`, `rt.ibp_row` and `rt.causal_sum` contract each draw's history as one (M, n)
row-major matrix (benchmarks/bench_perf.py (d) measures why). Here each is compared with the
einsum that defines it, and a generated solver is run on both forms: the loss curves agree to
round-off over a short horizon (the sweep's pseudo-inverse square roots amplify any change of
summation order from step to step, as tests/perf/test_sharding.py explains).
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dmftc
from dmftc.runtime import sweep as rt
from dmftc.runtime.definitions import einsum_causal_sum, einsum_ibp_row, einsum_kernel_row
from dmftc.spec import load, load_data

P, N_T, M = 3, 5, 64
SPEC = Path(__file__).resolve().parents[2] / "specs" / "mlp_mup_relu.yaml"


@pytest.fixture(scope="module")
def arrays():
    k = jax.random.split(jax.random.PRNGKey(3), 6)
    n = N_T * P
    Li = jnp.tril(jax.random.normal(k[4], (n, n)))
    return dict(w=jax.random.uniform(k[0], (M,)), Xt=jax.random.normal(k[1], (M, P)),
                X=jax.random.normal(k[2], (M, N_T, P)), C=jax.random.normal(k[3], (P, N_T, P)),
                xi=jax.random.normal(k[5], (M, n)), F=rt.Factor(Li, Li))


@pytest.mark.parametrize("t", [0, 2, N_T - 1])
def test_kernel_row_is_its_einsum(arrays, t):
    a = arrays
    np.testing.assert_allclose(rt.kernel_row(a["w"], a["Xt"], a["X"], t),
                               einsum_kernel_row(a["w"], a["Xt"], a["X"], t), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("t", [0, 2, N_T - 1])
@pytest.mark.parametrize("strict", [True, False])
def test_ibp_row_is_its_einsum(arrays, t, strict):
    a = arrays
    np.testing.assert_allclose(rt.ibp_row(a["w"], a["Xt"], a["xi"], a["F"], t, P, strict=strict),
                               einsum_ibp_row(a["w"], a["Xt"], a["xi"], a["F"], t, P, strict=strict),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("t", [0, 2, N_T - 1])
@pytest.mark.parametrize("strict", [True, False])
def test_causal_sum_is_its_einsum(arrays, t, strict):
    a = arrays
    np.testing.assert_allclose(rt.causal_sum(a["C"], a["X"], t, strict=strict),
                               einsum_causal_sum(a["C"], a["X"], t, strict=strict), rtol=1e-12, atol=1e-12)


def test_kernel_row_under_jit_with_a_traced_time(arrays):
    a = arrays
    got = jax.jit(rt.kernel_row)(a["w"], a["Xt"], a["X"], jnp.asarray(2))
    np.testing.assert_allclose(got, einsum_kernel_row(a["w"], a["Xt"], a["X"], 2), rtol=1e-12, atol=1e-12)


def _solve_fresh(mod, X, y, hp, steps, samples):
    """A fresh jit of the generated solver, so that it traces whatever `rt` holds now.

    The lambda is a new function object each call: jit's trace cache is keyed on the function,
    so a second jit of mod._solve.__wrapped__ itself would reuse the first trace.
    """
    fresh = jax.jit(lambda *a, **k: mod._solve.__wrapped__(*a, **k), static_argnames=("steps", "samples"))
    return {k: np.asarray(v) for k, v in fresh(X, y, hp, jax.random.PRNGKey(0), 1e-10,
                                                steps=steps, samples=samples).items()}


def test_generated_solver_gives_the_einsum_numbers(monkeypatch):
    spec = load(SPEC, overrides=("data.synthetic.P=4", "training.steps=6"))
    mod = dmftc.compile_spec(spec).load_module()
    X, y, hp = rt.prepare(*load_data(spec), dict(spec.hyper), mod.HYPER, "float64")
    flat = _solve_fresh(mod, X, y, hp, 6, 256)
    calls = []

    def counted_kernel_row(*a):
        calls.append(1)
        return einsum_kernel_row(*a)

    monkeypatch.setattr(rt, "kernel_row", counted_kernel_row)
    monkeypatch.setattr(rt, "ibp_row", einsum_ibp_row)
    monkeypatch.setattr(rt, "causal_sum", einsum_causal_sum)
    ref = _solve_fresh(mod, X, y, hp, 6, 256)
    assert calls, "the einsum forms were never traced: the second solve reused the first trace"
    # Round-off of the summation order (1e-16) grows by the pseudo-inverse square roots (up to
    # rcond^-1/2 = 1e5 per step) once the innovations are small: measured 6e-11 on the loss and
    # 1e-8 relative on the responses after 6 steps; a wrong contraction would differ at O(1).
    for name in ("loss", "f", "Delta"):
        np.testing.assert_allclose(flat[name], ref[name], rtol=0, atol=1e-9, err_msg=name)
    for name in ("Phi1", "Phi2", "G1", "G2", "A1", "B1"):
        np.testing.assert_allclose(flat[name], ref[name], rtol=0, atol=1e-7 * np.abs(ref[name]).max(), err_msg=name)


def test_the_factors_pseudo_inverse_is_a_ridge_bounded_and_continuous():
    """D D^T = S however small its eigenvalues; D^+ = sqrt(lam) / (lam + eps) (<= 1 / (2 sqrt(eps)),
    1 / sqrt(lam) well above eps); Monte Carlo's ridge is max(1, n/10)/M, the exact Gaussian mode keeps rcond."""
    V = np.linalg.qr(np.random.default_rng(0).normal(size=(4, 4)))[0]
    lam = np.array([1.0, 1e-2, 1e-7, 0.0])
    S = jnp.asarray(V * lam @ V.T)
    D, Dp = rt._psd_sqrt(S, 1e-4, 1.0)
    np.testing.assert_allclose(D @ D.T, S, atol=1e-12)
    inv = np.sort(np.linalg.svd(np.asarray(Dp), compute_uv=False))[::-1]
    ridge = np.sqrt(lam[:3]) / (lam[:3] + 1e-4)
    np.testing.assert_allclose(inv[:3], np.sort(ridge)[::-1], rtol=1e-6)
    assert inv[0] <= 1 / (2 * np.sqrt(1e-4)) and inv[3] < 1e-3  # lam = 0 up to eigh round-off (~1e-16)
    # a direction at the threshold: a hard cut-off would jump by 1 / sqrt(eps) = 100 across it
    below, above = (rt._psd_sqrt(jnp.asarray(V * np.array([1.0, 1e-2, 1e-4 * (1 + d), 0.0]) @ V.T), 1e-4, 1.0)[1]
                    for d in (-1e-6, 1e-6))
    assert np.max(np.abs(np.asarray(above - below))) < 1e-3
    # an eigenvalue at eigh's round-off (1e-16 of the scale) is zero: without the floor, sqrt would
    # lift it to 1e-8 and the ridge inverse read it as a direction of weight 1e-8 / 1e-4 = 1e-4
    _, Dp0 = rt._psd_sqrt(jnp.asarray(V * np.array([1.0, 1e-2, 1e-7, 1e-16]) @ V.T), 1e-4, 1.0)
    assert np.sort(np.linalg.svd(np.asarray(Dp0), compute_uv=False))[0] < 1e-6
    assert float(rt.resolvable(1e-10, 2048, "monte_carlo", n=816)) == pytest.approx(81.6 / 2048)
    assert float(rt.resolvable(1e-10, 2048, "monte_carlo", n=4)) == 1 / 2048
    assert rt.resolvable(1e-10, 2048, "exact_gaussian") == 1e-10
