"""Causal square roots of the Gaussian sources' covariances, grown one time block at a time.

A source over the flattened index i = t * P + mu (t = 0..T, mu = 0..P-1) has covariance K (n x n,
n = (T + 1) P). Its block lower-triangular square root `Lf` (u = Lf xi for whitened draws xi) and
block pseudo-inverse `Li` gain one block row of P per time step (`grow_factor`), so u(t) is drawn
conditionally on the draw's own past and Gaussian integration by parts reads responses off with
`Li` (docs/theory.md#causal-sweep). Called by generated solvers through `dmftc.runtime.sweep`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class Factor(NamedTuple):
    """Block lower-triangular square root Lf of a source covariance and its pseudo-inverse Li."""

    Lf: jax.Array
    Li: jax.Array


def empty_factor(n_t: int, P: int, dtype) -> Factor:
    """A factor with no block filled yet."""
    n = n_t * P
    z = jnp.zeros((n, n), dtype)
    return Factor(z, z)


def _psd_sqrt(S: jax.Array, rcond: float, scale=None) -> tuple[jax.Array, jax.Array]:
    """(D, D^+) with D D^T = S (negative eigenvalues clipped) and D^+ its ridge pseudo-inverse.

    D = V sqrt(lam) V^T is the symmetric square root, unique, so the draws u = D xi are continuous
    in S. The root V sqrt(lam) is as valid a square root but hangs on eigh's choice of basis
    within (nearly) degenerate eigenspaces, which round-off rotates: each such rotation remixed the
    draws (transformer_mup at M = 256: y moved by 1e-14 moved the loss by 3.6e-4 after 3 steps, now
    4e-14; the reference spec's float32 and float64 solves on the same draws differed by up to
    2.3e-3, now at most 7.5e-5). On each eigen-direction, D = sqrt(lam) and D^+ = sqrt(lam) / (lam + eps) with
    eps = rcond * scale (`scale` defaults to S's largest |eigenvalue|): 1 / sqrt(lam) where
    lam >> eps, going smoothly to 0 below it (the Wiener filter of a regression whose noise
    variance is eps). MC estimates of a Schur complement can be slightly indefinite, and kernels
    of slowly moving features make it nearly singular: clipping keeps sampling real, and the
    ridge keeps the pseudo-inverse bounded by 1 / (2 sqrt(eps)) and continuous in S (a hard
    cut-off would switch directions in and out with round-off).
    """
    S = 0.5 * (S + S.T)
    lam, V = jnp.linalg.eigh(S)
    if scale is None:
        scale = jnp.max(jnp.abs(lam))
    eps = rcond * jnp.maximum(scale, jnp.finfo(S.dtype).tiny)
    # eigenvalues within eigh's round-off of zero are zero: sqrt would lift a +-1e-17 to 3e-9 and
    # the ridge inverse would read it as a direction (the solve then hung on the summation order)
    floor = 8 * S.shape[0] * jnp.finfo(S.dtype).eps * scale
    lam = jnp.maximum(lam - floor, 0.0)
    root, denom = jnp.sqrt(lam), lam + eps
    inv = jnp.where(denom > 0, root / jnp.where(denom > 0, denom, 1.0), 0.0)  # eps can underflow to 0
    return (V * root[None, :]) @ V.T, (V * inv[None, :]) @ V.T


DIMENSIONS_PER_RIDGE = 10
"""The Monte Carlo ridge is n / (DIMENSIONS_PER_RIDGE M) for n source dimensions and M draws (`resolvable`)."""


def resolvable(rcond, M: int, method: str, n: int):
    """The ridge of `grow_factor`'s pseudo-inverse: the conditional variance, relative to the
    unconditioned one, below which a direction of the source is treated as noise,
    max(rcond, 1/M, n / (10 M)) for a source of n = (T + 1) P dimensions sampled M times.

    A response is read off along each direction of the source by Gaussian integration by parts,
    E[dF/du] = E[F xi^T] Li: along a direction whose conditional variance is lam (relative), the
    O(1) response carries a Monte Carlo error ~ 1 / sqrt(M lam). With the ridge eps (a Wiener
    filter, Li ~ sqrt(lam) / (lam + eps)) a direction's noise variance is at most 1 / (4 M eps),
    and the noise of all n directions adds up in the next fields (a response acts on a whole
    history) and raises their kernels, which are factored again: a positive feedback. Bounding
    the sum, n / (4 M eps), needs eps ~ n / M; the factor 1/10 is measured. Below it the
    estimated kernels ran away late in training (`benchmarks/ntk_track.py`, the DMFT's NTK
    lambda_max against networks of width 1024): with a ridge 1/M, at P = 64, T = 64, 3 layers,
    M = 4096 it was 156 vs 35.6 at t = 24 and NaN from t = 42 (M = 12288: 130 at t = 20, worse);
    with n / (10 M) it is 99.93 vs 100.09 at t = 64. With a fixed n the ridge is O(1/M), the
    order of Monte Carlo's own bias: at gamma0 = 0.02 (lazy, T = 5, P = 16) the loss is within
    the seed-to-seed spread of the NTK prediction, where a ridge M^(-1/2) biased it by +1 %
    even at M = 32768.
    The exact Gaussian mode has no sampling noise and keeps `rcond`.
    """
    if method == "exact_gaussian":
        return rcond
    return jnp.maximum(rcond, max(1, n / DIMENSIONS_PER_RIDGE) / M)


def grow_factor(F: Factor, K: jax.Array, t, P: int, rcond: float) -> Factor:
    """Add block row t to the factor of the covariance K (n x n, rows <= t valid).

    L_{t,<t} = K_{t,<t} Li_{<t}^T, S = K_tt - L_{t,<t} L_{t,<t}^T, L_tt = S^(1/2),
    Li_{t,t} = S^(+1/2), Li_{t,<t} = -S^(+1/2) L_{t,<t} Li_{<t}. The pseudo-inverse's ridge is rcond
    times the largest unconditioned variance max diag K_tt (`resolvable`), not S's own scale: a
    nearly predictable u(t) would otherwise have its noise inverted.
    """
    n = K.shape[0]
    rows = jax.lax.dynamic_slice_in_dim(K, t * P, P, axis=0)              # (P, n)
    past = (jnp.arange(n) < t * P).astype(K.dtype)
    Lrow = (rows * past[None, :]) @ F.Li.T                                # (P, n), support < t
    Ktt = jax.lax.dynamic_slice(K, (t * P, t * P), (P, P))
    D, Dp = _psd_sqrt(Ktt - Lrow @ Lrow.T, rcond, jnp.max(jnp.diagonal(Ktt)))
    Lirow = -Dp @ (Lrow @ F.Li)
    Lf = jax.lax.dynamic_update_slice(F.Lf, Lrow, (t * P, 0))
    Lf = jax.lax.dynamic_update_slice(Lf, D, (t * P, t * P))
    Li = jax.lax.dynamic_update_slice(F.Li, Lirow, (t * P, 0))
    Li = jax.lax.dynamic_update_slice(Li, Dp, (t * P, t * P))
    return Factor(Lf, Li)


def sample_row(F: Factor, xi: jax.Array, t, P: int) -> jax.Array:
    """u(t) for every draw: block row t of Lf applied to the whitened draws xi (M, n) -> (M, P)."""
    rows = jax.lax.dynamic_slice_in_dim(F.Lf, t * P, P, axis=0)
    return xi @ rows.T


def static_factor(K: jax.Array, rcond: float) -> tuple[jax.Array, jax.Array]:
    """(D, D^+) for a time-independent source with covariance K (P x P)."""
    return _psd_sqrt(K, rcond)
