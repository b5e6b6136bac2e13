"""Numerics of the causal DMFT sweep, called by generated solvers (imports only jax).

Index conventions: time t = 0..T (n_t = T + 1 slots), samples mu = 0..P-1, draws m = 0..M-1.
A per-draw field's history is an array (M, n) over the flattened index i = t * P + mu (slot t
is columns t P .. t P + P - 1, written by `set_slot`); a two-time kernel is (n_t, P, n_t, P) over
(t, mu, s, nu); a Gaussian source over the flattened index i = t * P + mu has a
block lower-triangular square root `Lf` (u = Lf xi, xi whitened draws) and its
block pseudo-inverse `Li`, both (n, n) with n = n_t * P, grown by one block row of P
per time step (`dmftc.runtime.factor`). Growing the factor as time advances costs one
factorisation overall (docs/theory.md#causal-sweep) and samples u(t) conditionally on the draw's own past.

Expectations are weighted sums over draws, E[X] = sum_m w_m X_m: Monte Carlo uses
w_m = 1/M; the exact Gaussian mode (linear networks, whose fields are linear in the
whitened sources) uses the identity basis as draws and w_m = 1.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

# the sources' causal factors (factor.py), re-exported: generated solvers call them as rt.*
from .factor import (  # noqa: F401
    Factor, empty_factor, grow_factor, resolvable, sample_row, static_factor,
)


# ------------------------------------------------------------------ expectations
def expect(w: jax.Array, X: jax.Array) -> jax.Array:
    """E[X] over the leading draw axis."""
    return jnp.tensordot(w, X, axes=1)


def weighted_t(w: jax.Array, Xt: jax.Array) -> jax.Array:
    """(w * Xt)^T as a physically transposed (P, M) array.

    The barrier keeps XLA from folding the transpose into the dot's dimension numbers: a
    (P, M) @ (M, n) product with both operands row-major runs on the CPU backend's fast
    matmul path (measured 1.5x faster than the folded, transposed-operand form).
    """
    return jax.lax.optimization_barrier((w[:, None] * Xt).T)


def kernel_row(w: jax.Array, Xt: jax.Array, X: jax.Array, t) -> jax.Array:
    """Row t of a two-time kernel: E[X_mu(t) X_nu(s)] for s <= t (zero for s > t).

    Xt (M, P) is the field at time t, X (M, n) its history (flat, `set_slot`). Returns (P, n_t, P).
    One (P, M) @ (M, n) matmul on the history as stored: no transposed copy of it.
    """
    P = Xt.shape[1]
    n_t = X.shape[1] // P
    row = (weighted_t(w, Xt) @ X).reshape(P, n_t, P)
    return row * (jnp.arange(n_t) <= t)[None, :, None]


def set_slot(X: jax.Array, t, Xt: jax.Array) -> jax.Array:
    """The history X (M, n) with slot t set to the field's value Xt (M, P): columns t P .. t P + P - 1.

    Histories are held flat, as the matmuls read them. Held (M, n_t, P), each read went through a
    reshape of the just-updated array, and XLA then duplicated the in-place update (one for the
    loop carry, one for the reshaped reader) and copied the whole history for each, every step
    (the reference spec at M = 1024: 8 histories copied 3 times per step).
    """
    return jax.lax.dynamic_update_slice_in_dim(X, Xt, t * Xt.shape[1], axis=1)


def set_kernel_row(K: jax.Array, row: jax.Array, t) -> jax.Array:
    """Write row t and, by symmetry, column t of a kernel (n_t, P, n_t, P)."""
    K = K.at[t].set(row)
    return K.at[:, :, t, :].set(jnp.transpose(row, (1, 2, 0)))


def flat(K: jax.Array) -> jax.Array:
    """(n_t, P, n_t, P) -> (n, n) over i = t * P + mu."""
    n = K.shape[0] * K.shape[1]
    return K.reshape(n, n)


def ibp_row(w: jax.Array, Ft: jax.Array, xi: jax.Array, F: Factor, t, P: int, *, strict: bool) -> jax.Array:
    """Response row E[dF_mu(t) / d source_nu(s)] by Gaussian integration by parts.

    With source = Lf xi: E[F xi^T] = E[dF/dsource] Lf, so E[dF/dsource] = E[F xi^T] Li on the
    causal support s < t (strict) or s <= t. Ft (M, P) -> (P, n_t, P). Never needs phi''.
    """
    n = xi.shape[1]
    n_t = n // P
    stop = t * P + (0 if strict else P)
    support = (jnp.arange(n) < stop).astype(Ft.dtype)
    corr = (weighted_t(w, Ft) @ xi) * support[None, :]
    resp = (corr @ F.Li) * support[None, :]
    return resp.reshape(P, n_t, P)


def causal_sum(C: jax.Array, X: jax.Array, t, *, strict: bool) -> jax.Array:
    """sum_{s < t (or <= t)} sum_nu C_{mu nu}(s) X_nu(s) for every draw.

    C (P, n_t, P) over (mu, s, nu), or broadcastable to it; X (M, n) a flat history -> (M, P).
    One (M, n) @ (n, P) matmul on the history as stored; an einsum over (s, nu) made XLA copy
    X transposed.
    """
    n_t, P = C.shape[1], C.shape[2]
    mask = (jnp.arange(n_t) < t + (0 if strict else 1)).astype(X.dtype)
    return X @ jnp.broadcast_to(C * mask[None, :, None], (P, n_t, P)).reshape(P, n_t * P).T


def before(t, n_t: int) -> jax.Array:
    """The mask of slots s < t, shaped (1, n_t, 1) to multiply a coefficient over (mu, s, nu) (boolean,
    so the product keeps the coefficient's dtype)."""
    return (jnp.arange(n_t) < t)[None, :, None]


def causal_sum_det(C: jax.Array, x: jax.Array, t, *, strict: bool) -> jax.Array:
    """The same for a deterministic x (n_t, P): returns (P,)."""
    n_t = x.shape[0]
    mask = (jnp.arange(n_t) < t + (0 if strict else 1)).astype(x.dtype)
    return jnp.einsum("asb,sb->a", C * mask[None, :, None], x)


# ------------------------------------------------------------------ equal-time order parameters (attention)
def mix(C: jax.Array, X: jax.Array) -> jax.Array:
    """sum_nu C_{mu nu} X_nu for every draw: C (P, P) deterministic, X (M, P) -> (M, P)."""
    return X @ C.T


def cross_now(w: jax.Array, Xt: jax.Array, Yt: jax.Array) -> jax.Array:
    """E[X_mu(t) Y_nu(t)] (P, P) from the draws Xt, Yt (M, P)."""
    return jnp.einsum("m,ma,mb->ab", w, Xt, Yt)


def diag_now(K: jax.Array, t) -> jax.Array:
    """K_{mu mu}(t, t) (P,) of a two-time kernel (n_t, P, n_t, P)."""
    return jnp.diagonal(K[t, :, t, :])


def diag_all(K: jax.Array) -> jax.Array:
    """K_{mu mu}(s, s) for every s, flat (n,) as histories are (i = s * P + mu); slots not yet filled
    (zero) read 1, so dividing by them is safe."""
    d = jnp.diagonal(jnp.diagonal(K, axis1=0, axis2=2), axis1=0, axis2=1)   # [s, mu] = K[s, mu, s, mu]
    return jnp.where(d > 0, d, 1.0).reshape(-1)


def causal_row(C: jax.Array, t, n_t: int) -> jax.Array:
    """A kernel row (P, n_t, P) from C broadcastable to it (e.g. a time-constant (P, 1, P)), zero for s > t."""
    P = C.shape[0]
    return jnp.broadcast_to(C, (P, n_t, C.shape[-1])) * (jnp.arange(n_t) <= t)[None, :, None]


def head_cross(X: jax.Array, Y: jax.Array, n: int) -> jax.Array:
    """Per head: (1/n) sum_i X_{i mu} Y_{i nu} over its n coordinates. X, Y (M n, P) -> (M, P, P)."""
    P = X.shape[-1]
    return jnp.einsum("mia,mib->mab", X.reshape(-1, n, P), Y.reshape(-1, n, P)) / n


def head_mix(C: jax.Array, X: jax.Array, n: int) -> jax.Array:
    """Per head: sum_nu C_{mu nu} X_{i nu} with the head's own matrix C (M, P, P); X (M n, P) -> (M n, P)."""
    P = X.shape[-1]
    return jnp.einsum("mab,mib->mia", C, X.reshape(-1, n, P)).reshape(X.shape)


def masked_softmax(logits: jax.Array, mask: jax.Array) -> jax.Array:
    """Row-wise softmax of logits (P, P) over the entries where mask is 1 (the positions of one sequence)."""
    z = jnp.where(mask > 0, logits, -jnp.inf)
    return jax.nn.softmax(z, axis=-1) * mask


# ------------------------------------------------------------------ draws
def gaussian_draws(key, M: int, dims: tuple[int, ...], dtype, antithetic: bool = True) -> tuple[jax.Array, ...]:
    """Whitened draws for each source (M, d); antithetic pairs (xi, -xi) make odd moments vanish exactly."""
    keys = jax.random.split(key, len(dims))
    half = M // 2 if antithetic else M
    out = []
    for k, d in zip(keys, dims):
        x = jax.random.normal(k, (half, d), dtype)
        out.append(jnp.concatenate([x, -x]) if antithetic else x)
    return tuple(out)


def basis_draws(dims: tuple[int, ...], dtype) -> tuple[jax.Array, ...]:
    """Exact Gaussian mode: the identity basis of all sources stacked (each draw one basis vector)."""
    total = sum(dims)
    eye = jnp.eye(total, dtype=dtype)
    out, start = [], 0
    for d in dims:
        out.append(eye[:, start:start + d])
        start += d
    return tuple(out)


# ------------------------------------------------------------------ segments of the sweep
def segments(n_t: int, count: int | None = None, work: float = float("inf")) -> tuple[int, ...]:
    """The ends of the sweep's segments: slots 0..n_t-1 cut into `count` nearly equal runs.

    Within a segment ending at slot e every history, kernel and factor is held at width e,
    not n_t: causality makes slots s > t zero and unused at step t, so each step's contractions
    over the history cost ~ e instead of n_t. With K equal segments the per-draw work of the
    whole sweep is (K + 1) / (2K) of the full-width sweep's (the triangle's area, to 1/K),
    and XLA compiles the step once per segment (~1 s each for a 2-layer MLP). Default: one
    segment per 1e9 of `work` = M n^2 (the reference spec at M = 8192 has 5.5e9 and runs 1.5x
    faster in 6 segments), at most n_t // 8 and 8. The cut changes only the summation order: the
    numbers agree to round-off where the solve itself does (tests/runtime/test_segments.py).
    """
    if count is None:
        count = min(8, n_t // 8, math.ceil(work / 1e9))
    count = max(1, min(int(count), n_t))
    # no first segment of one slot: compiled inside a solver's jit, a width-1 segment gives another
    # answer (resnet_depth_mup: 5e-3 of the loss; the MLP: none). Eager execution agrees with the
    # one-segment solve, and so does XLA at --xla_backend_optimization_level=0; at the default level
    # the kernel H^4 returned for slot 0 differs by 5 % from eager's (with debug prints inside the
    # jit, every row the step writes agrees with eager to 1e-10). An optimisation of the width-1
    # (1, P, 1, P) arrays, not understood; never cut there.
    return tuple(e for e in sorted({round(n_t * (k + 1) / count) for k in range(count)}) if e >= min(2, n_t))


def widen(state, shapes):
    """Zero-pad every array of `state` to the shape of its twin in `shapes` (a pytree of shapes).

    Time axes grow at their ends (slot index t, flat index t * P + mu), so the held entries keep
    their places; arrays without a time axis are returned as they are.
    """
    def pad(x, s):
        return x if x.shape == s.shape else jnp.pad(x, [(0, b - a) for a, b in zip(x.shape, s.shape)])

    return jax.tree_util.tree_map(pad, state, shapes)


def draws_upto(xi: dict, kind: dict, width: int) -> dict:
    """The whitened draws a segment of `width` flat slots uses: a dynamic source's first `width`
    columns (its draws for those slots; the rest enter only later), every other source whole."""
    return {k: x[..., :width] if kind[k] == "dynamic" else x for k, x in xi.items()}


# ------------------------------------------------------------------ plumbing for generated solvers
def source_draws(key, dims: dict, samples: int, method: str, dtype, rows: dict | None = None):
    """Whitened draws per source key (sorted for determinism) and the expectation weights w.

    method 'exact_gaussian': the identity basis over all sources (M = total dimension), w = 1;
    otherwise Monte Carlo with antithetic pairs, w = 1/M. With several devices the draw axis
    of each array is split over them (`devices.shard_draws`); on one device nothing changes.
    """
    from .devices import shard_draws  # imported here: this function is the only user in the file

    xi, w = _draws(key, dims, samples, method, dtype, rows)
    # Splitting the draws over devices makes every expectation a cross-device reduction;
    # sharding propagation carries the split to every per-draw field computed from them.
    return {k: shard_draws(x) for k, x in xi.items()}, shard_draws(w)


def _draws(key, dims: dict, samples: int, method: str, dtype, rows: dict | None = None):
    """`source_draws` on one device. For independent batches (`batch_keys`: a stack of K keys) each key
    draws its share, antithetic pairs within a batch, so a solve on batches a..b sees exactly the draws
    the full solve gives those batches; the batches are drawn under vmap into (K, M/K, ...) and merged by
    a reshape, which costs no copy (a concatenation of K drawn parts held the draws twice: measured on
    transformer_mup, 10 steps, 2048 draws in 8 batches, 2.6 GiB peak against 1.2 GiB for one key)."""
    keys = sorted(dims)
    sizes = tuple(dims[k] for k in keys)
    if method != "exact_gaussian" and jnp.ndim(key) == 2:
        per = samples // key.shape[0]
        xi, w = jax.vmap(lambda k: _draws(k, dims, per, method, dtype, rows))(key)
        M = w.shape[0] * w.shape[1]
        return {name: x.reshape((-1,) + x.shape[2:]) for name, x in xi.items()}, jnp.full((M,), 1.0 / M, dtype)
    if rows:
        # sources with several rows per draw (a head's N coordinates): drawn per source, same antithetic pairing
        M = samples + (samples % 2)
        ks = jax.random.split(key, len(keys))
        xs = [gaussian_draws(k, M * rows.get(name, 1), (d,), dtype)[0] for k, name, d in zip(ks, keys, sizes)]
        return dict(zip(keys, xs)), jnp.full((M,), 1.0 / M, dtype)
    if method == "exact_gaussian":
        xs = basis_draws(sizes, dtype)
        w = jnp.ones((xs[0].shape[0],), dtype)
    else:
        M = samples + (samples % 2)
        xs = gaussian_draws(key, M, sizes, dtype)
        w = jnp.full((M,), 1.0 / M, dtype)
    return dict(zip(keys, xs)), w


def batch_keys(seed: int, batches: tuple[int, int, int] | None):
    """The PRNG key of a solve: one key, or for `batches = (first, stop, of)` the stacked keys of batches
    first..stop-1 of `of` independent batches (batch b: fold_in(PRNGKey(seed), b)); see `source_draws`."""
    key = jax.random.PRNGKey(seed)
    if batches is None:
        return key
    first, stop, of = batches
    return jnp.stack([jax.random.fold_in(key, b) for b in range(first, stop)])


def copy(x):
    """A shallow copy of a dict of arrays (so a step function never mutates its input)."""
    return dict(x) if isinstance(x, dict) else x


def prepare(X, y, hp, names, dtype: str):
    """Arrays in the requested precision and the hyperparameters as a dict of scalars; checks names."""
    import numpy as np

    if dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    missing = [k for k in names if k not in hp]
    if missing:
        raise ValueError(f"missing hyperparameters {missing}; this solver needs {list(names)}")
    dt = jnp.dtype(dtype)
    X = jnp.asarray(np.asarray(X), dt)
    X = X.reshape(X.shape[0], -1) if X.ndim > 2 else X
    return X, jnp.asarray(np.asarray(y), dt), {k: jnp.asarray(float(hp[k]), dt) for k in names}


def training_arrays(training, names, dtype: str) -> dict:
    """The training setup's arrays `names` (dmftc.training.arrays) in the requested precision."""
    import numpy as np

    missing = [k for k in names if training is None or k not in training]
    if missing:
        raise ValueError(f"missing training arrays {missing}: this solver's training setup needs {list(names)} "
                         "(dmftc.training.arrays builds them from the spec)")
    return {k: jnp.asarray(np.asarray(training[k]), jnp.dtype(dtype)) for k in names}


# ------------------------------------------------------------------ exact Gaussian parts (control variates)
class CovRow(NamedTuple):
    """Row t of a source's covariance: variances at time t (P,), at every slot (n,), covariances (P, n)."""

    var_t: jax.Array
    var: jax.Array
    cov: jax.Array


def cov_row_dynamic(F: Factor, t, P: int) -> CovRow:
    """From the grown factor: Cov = Lf Lf^T restricted to row block t (entries s > t are unused)."""
    rows = jax.lax.dynamic_slice_in_dim(F.Lf, t * P, P, axis=0)
    var = jnp.sum(F.Lf**2, axis=1)
    return CovRow(jax.lax.dynamic_slice_in_dim(var, t * P, P), var, rows @ F.Lf.T)


def kernel_cov_row(K: jax.Array, t, P: int) -> CovRow:
    """From a kernel held whole, (n_t, P, n_t, P) with rows <= t set (a twin's exact covariance)."""
    n = K.shape[0] * P
    var = jnp.diagonal(K.reshape(n, n))
    return CovRow(jax.lax.dynamic_slice_in_dim(var, t * P, P), var, K[t].reshape(P, n))


def cov_row_static(Dm: jax.Array, n_t: int) -> CovRow:
    """A time-constant source u_mu with covariance Dm Dm^T: the same P x P block at every (t, s)."""
    K = Dm @ Dm.T
    d = jnp.diagonal(K)
    return CovRow(d, jnp.tile(d, n_t), jnp.tile(K, (1, n_t)))


def cov_row_scalar(P: int, n_t: int, dtype) -> CovRow:
    """One N(0, 1) number per draw, shared by every (t, mu)."""
    return CovRow(jnp.ones((P,), dtype), jnp.ones((n_t * P,), dtype), jnp.ones((P, n_t * P), dtype))


def gauss_row(pair, c: CovRow, t, P: int) -> jax.Array:
    """Row t of E[a(x_mu(t)) a(x_nu(s))] for a Gaussian source x, by a pairwise closed form or quadrature.

    pair(var_i, var_j, cov_ij) -> expectation, broadcasting; returns (P, n_t, P), zero for s > t.
    """
    n = c.var.shape[0]
    row = pair(c.var_t[:, None], c.var[None, :], c.cov).reshape(P, n // P, P)
    return row * (jnp.arange(n // P) <= t)[None, :, None]


def cov_gauss_row(c: CovRow, t, P: int) -> jax.Array:
    """Row t of E[x_mu(t) x_nu(s)] itself (the bare source), (P, n_t, P), zero for s > t."""
    return gauss_row(lambda a, b, k: k, c, t, P)


def source_cov_row(kind: str, F: Factor | None, Dm: jax.Array | None, t, P: int, n_t: int, dtype) -> CovRow:
    """Row t of a source's covariance by its structure (dynamic, static or scalar)."""
    if kind == "dynamic":
        return cov_row_dynamic(F, t, P)
    if kind == "static":
        return cov_row_static(Dm, n_t)
    return cov_row_scalar(P, n_t, dtype)
