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
                X=jax.random.normal(k[2], (M, N_T * P)), C=jax.random.normal(k[3], (P, N_T, P)),
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
