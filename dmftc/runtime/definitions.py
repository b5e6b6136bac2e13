"""The per-step contractions of the causal sweep in their defining einsum forms.

`dmftc.runtime.sweep` computes `kernel_row`, `ibp_row` and `causal_sum` as flat row-major
matmuls over each draw's history (faster: see benchmarks/contractions.py). These are the
definitions they must equal to round-off: the oracle of tests/runtime/test_sweep_contractions.py
and the "before" of the benchmark (the runtime's forms until commit e15eb0c).
"""

from __future__ import annotations

import jax.numpy as jnp


def einsum_kernel_row(w, Xt, X, t):
    """E[X_mu(t) X_nu(s)] = sum_m w_m X_m,mu(t) X_m,nu(s) for s <= t (zero beyond); X (M, n) flat."""
    X = X.reshape(X.shape[0], -1, Xt.shape[1])                            # [m, s, nu]
    row = jnp.einsum("m,ma,msb->asb", w, Xt, X)
    return row * (jnp.arange(X.shape[1]) <= t)[None, :, None]


def einsum_ibp_row(w, Ft, xi, F, t, P, *, strict):
    """E[F xi^T] Li on the causal support (slots before step t, or up to it unless `strict`)."""
    n = xi.shape[1]
    stop = t * P + (0 if strict else P)
    support = (jnp.arange(n) < stop).astype(Ft.dtype)
    corr = jnp.einsum("m,ma,mi->ai", w, Ft, xi) * support[None, :]
    return ((corr @ F.Li) * support[None, :]).reshape(P, n // P, P)


def einsum_causal_sum(C, X, t, *, strict):
    """sum_{s < t (or <= t unless `strict`)} sum_nu C_{mu nu}(s) X_nu(s) for each draw; X (M, n) flat."""
    X = X.reshape(X.shape[0], -1, C.shape[2])                             # [m, s, nu]
    mask = (jnp.arange(X.shape[1]) < t + (0 if strict else 1)).astype(X.dtype)
    return jnp.einsum("asb,msb->ma", C * mask[None, :, None], X)
