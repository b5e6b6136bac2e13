"""Gaussian expectations of activations: closed forms and a deterministic quadrature.

For a centred Gaussian vector ``u ~ N(0, K)`` (``K`` an ``n x n`` covariance) the
kernels that the infinite-width limit needs at a Gaussian site are (docs/theory.md#mlp-dmft
and #causal-sweep)

    phi_kernel(fn, K)[i, j]  = E[ phi(u_i)  phi(u_j)  ]
    dphi_kernel(fn, K)[i, j] = E[ phi'(u_i) phi'(u_j) ]

Exact closed forms are used for ``linear``, ``relu`` (arc-cosine kernels of
order 1 and 0, Cho & Saul 2009), ``erf`` (Williams 1997 arcsine kernel) and
``quadratic``; every other elementwise activation goes through
:func:`pair_expectation`, a deterministic two-dimensional quadrature.

Only ``jax``, ``numpy`` and the standard library are imported (runtime layering
rule). The public kernels are jitted with the activation (a name or a hashable
callable) and the quadrature order static; they also trace inside an outer
``jit``, ``grad`` or ``vmap``.
"""

from __future__ import annotations

import functools
import math
import types
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import erf

from dmftc.runtime.gauss_mean import DEFAULT_NODES, MEANS, pair_mean

Activation = str | Callable[[jax.Array], jax.Array]

#: default number of radial nodes of the quadrature (angular nodes: half of it
#: on each of three angular segments; 48 x 72 = 3456 nodes per pair). Measured
#: in float64 against the same rule at 300 x 240 nodes and against scipy
#: ``dblquad`` over tanh, erf, gelu, sigmoid and the derivatives of tanh and erf
#: (variances 0.1 .. 30, correlations 0 .. 0.99999 and negative): worst error
#: 6e-14 for variances <= 3, 3e-11 for <= 10, 9e-9 for <= 30; relu and step
#: are exact to round-off. A tensor 64 x 64 Gauss-Hermite rule is off by
#: 5e-4 .. 9e-4 for relu (the kink makes it converge like 1/order) and by 7e-5
#: for tanh at variance 4.
DEFAULT_ORDER = 48
#: order of `pair_phi` / `pair_dphi`, the exact parts of the solvers' control variates, which only
#: need to be far below the Monte Carlo error (~1e-3): measured against order 48 over variances
#: 0.3 .. 4 and correlations up to 0.999, order 24 is off by <= 1e-7 for gelu and 2e-7 for tanh
#: (order 16: 5e-5), at a quarter of the nodes. gelu now goes by conditioning (CV_NODES); this order
#: serves activations with neither a closed pair form nor a closed Gaussian mean (tanh, sigmoid).
CV_ORDER = 24
#: nodes per half-line of the conditioning rule (gauss_mean.pair_mean) in `pair_phi` / `pair_dphi` for
#: activations whose Gaussian mean is closed (gelu): 2.5e-9 off for variances <= 10, 3e-7 at 30, with
#: 64 nodes against the polar rule's 864 at CV_ORDER; transformer_mup solves 21x faster (bench_perf (q)).
CV_NODES = 32


def _relu(x):
    return jax.nn.relu(x)     # its derivative at 0 is 0 under autodiff (jnp.maximum's would be 1/2)


def _relu_prime(x):
    return jnp.where(x > 0, 1.0, 0.0).astype(jnp.result_type(x, 1.0))


def _tanh_prime(x):
    return 1.0 - jnp.tanh(x) ** 2


def _erf_prime(x):
    return (2.0 / math.sqrt(math.pi)) * jnp.exp(-(x**2))


def _gelu(x):
    # exact (erf) form x * Phi(x), not the tanh approximation
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def _gelu_prime(x):
    return 0.5 * (1.0 + erf(x / math.sqrt(2.0))) + x * jnp.exp(-0.5 * x**2) / math.sqrt(2.0 * math.pi)


def _sigmoid_prime(x):
    s = jax.nn.sigmoid(x)
    return s * (1.0 - s)


#: closed table: activation name -> (phi, phi') as elementwise jnp callables.
FUNCTIONS = types.MappingProxyType(
    {
        "relu": (_relu, _relu_prime),
        "tanh": (jnp.tanh, _tanh_prime),
        "erf": (erf, _erf_prime),
        "linear": (lambda x: x, jnp.ones_like),
        "gelu": (_gelu, _gelu_prime),
        "sigmoid": (jax.nn.sigmoid, _sigmoid_prime),
        "quadratic": (lambda x: x**2, lambda x: 2.0 * x),
    }
)


# ----------------------------------------------------------------------------- pair geometry


def _diag(K):
    """Clipped diagonal of ``K`` (round-off can make a zero variance slightly negative)."""
    return jnp.maximum(jnp.diagonal(K), 0.0)


def _safe_sqrt(x):
    """``sqrt(max(x, 0))`` whose gradient is 0 (not inf/NaN) where ``x <= 0``."""
    pos = x > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, x, 1.0)), 0.0)


def _gram(di, dj, K):
    """``sqrt(max(K_ii K_jj - K_ij^2, 0))`` for variances di, dj and covariance K (broadcasting).

    The clip is the statement that the pair correlation lies in [-1, 1]; the
    double ``where`` keeps ``jax.grad`` finite on diagonal and collinear pairs.
    """
    return _safe_sqrt(jnp.maximum(di, 0.0) * jnp.maximum(dj, 0.0) - K**2)


def _gram_sqrt(K):
    """`_gram` of a square covariance matrix."""
    d = _diag(K)
    return _gram(d[:, None], d[None, :], K)


def _angle(K, sq):
    """Angle ``theta_ij = arccos(rho_ij)`` in [0, pi], computed as ``atan2(sq, K_ij)``.

    ``atan2`` needs no division by ``sqrt(K_ii K_jj)``: a zero row gives
    ``theta = 0`` (with a zero prefactor in every kernel), not NaN.
    """
    zero = (sq == 0) & (K == 0)
    return jnp.where(zero, 0.0, jnp.arctan2(sq, jnp.where(zero, 1.0, K)))


# ----------------------------------------------------------------------------- closed forms
# Each takes (di, dj, K): the variances of u_i and u_j and their covariance, broadcasting, so the
# same formula serves a square kernel (di = diag[:, None], dj = diag[None, :]) and a rectangular
# block of it (one time row of a two-time kernel, as the causal sweep needs).


def _linear_phi(di, dj, K):
    """E[u_i u_j] = K_ij."""
    return K + 0.0 * (di + dj)


def _linear_dphi(di, dj, K):
    """E[1 * 1] = 1."""
    return jnp.ones_like(K + di + dj)


def _relu_phi(di, dj, K):
    """Arc-cosine kernel of order 1 (Cho & Saul 2009).

    E[relu(u_i) relu(u_j)] = (sqrt(K_ii K_jj - K_ij^2) + (pi - theta) K_ij) / (2 pi),
    theta = arccos(K_ij / sqrt(K_ii K_jj)).
    """
    sq = _gram(di, dj, K)
    return (sq + (jnp.pi - _angle(K, sq)) * K) / (2.0 * jnp.pi)


def _relu_dphi(di, dj, K):
    """Arc-cosine kernel of order 0: E[H(u_i) H(u_j)] = (pi - theta) / (2 pi).

    A zero-variance coordinate u_i = 0 gives 0, the pointwise convention H(0) = 0
    of ``jax.grad(relu)`` (and of the quadrature), not the limit 1/2 from
    positive variance.
    """
    live = (di > 0) & (dj > 0)
    return jnp.where(live, (jnp.pi - _angle(K, _gram(di, dj, K))) / (2.0 * jnp.pi), 0.0)


def _erf_phi(di, dj, K):
    """Williams' arcsine kernel: (2/pi) arcsin(2 K_ij / sqrt((1 + 2 K_ii)(1 + 2 K_jj)))."""
    di, dj = jnp.maximum(di, 0.0), jnp.maximum(dj, 0.0)
    arg = 2.0 * K / jnp.sqrt((1.0 + 2.0 * di) * (1.0 + 2.0 * dj))
    return (2.0 / jnp.pi) * jnp.arcsin(jnp.clip(arg, -1.0, 1.0))


def _erf_dphi(di, dj, K):
    """E[erf'(u_i) erf'(u_j)] = (4/pi) E[exp(-u_i^2 - u_j^2)] = (4/pi) det(I + 2 K_pair)^(-1/2).

    det(I + 2 K_pair) = 1 + 2 K_ii + 2 K_jj + 4 (K_ii K_jj - K_ij^2), the last
    term clipped at 0 (|rho| <= 1).
    """
    di, dj = jnp.maximum(di, 0.0), jnp.maximum(dj, 0.0)
    det = 1.0 + 2.0 * di + 2.0 * dj + 4.0 * _gram(di, dj, K) ** 2
    return (4.0 / jnp.pi) / jnp.sqrt(det)


def _quadratic_phi(di, dj, K):
    """E[u_i^2 u_j^2] = K_ii K_jj + 2 K_ij^2 (Isserlis)."""
    return di * dj + 2.0 * K**2


def _quadratic_dphi(di, dj, K):
    """E[(2 u_i)(2 u_j)] = 4 K_ij."""
    return 4.0 * K + 0.0 * (di + dj)


_CLOSED = types.MappingProxyType(
    {
        "linear": (_linear_phi, _linear_dphi),
        "relu": (_relu_phi, _relu_dphi),
        "erf": (_erf_phi, _erf_dphi),
        "quadratic": (_quadratic_phi, _quadratic_dphi),
    }
)


# ----------------------------------------------------------------------------- quadrature


#: radial cut-off: the weight r exp(-r^2/2) beyond it is below 1e-20.
_R_MAX = 10.0


@functools.cache
def _nodes(order: int):
    """Radial nodes/weights on [0, R_MAX] (weight r exp(-r^2/2) folded in) and angular Gauss-Legendre on [-1, 1].

    Gauss-Legendre in r clusters nodes near r = 0, where a saturating activation
    of a high-variance input varies fastest; Gauss-Laguerre in r^2/2 wastes most
    nodes in the Gaussian tail and was 1e4 times less accurate at variance 10.
    Cached per order (numpy float64, computed once at trace time).
    """
    x, w = np.polynomial.legendre.leggauss(order)
    r = 0.5 * _R_MAX * (1.0 + x)
    wr = 0.5 * _R_MAX * w * r * np.exp(-0.5 * r**2)
    xa, wa = np.polynomial.legendre.leggauss(max(order // 2, 4))
    return r, wr, xa, wa


def _segments(theta, x, wx):
    """Angles and weights of Gauss-Legendre on [0, pi) split where u_i = 0 or u_j = 0.

    In polar whitened coordinates u_i ~ cos(alpha), u_j ~ cos(alpha - theta); they
    vanish at alpha = pi/2 and alpha = theta + pi/2 (mod pi). Splitting there makes
    each segment's integrand smooth for activations with a kink at 0 (relu, leaky
    relu, abs, step), so the rule is spectrally accurate for them too.
    """
    beta = jnp.mod(theta + 0.5 * jnp.pi, jnp.pi)
    c1 = jnp.minimum(0.5 * jnp.pi, beta)
    c2 = jnp.maximum(0.5 * jnp.pi, beta)
    lo = jnp.stack([jnp.zeros_like(c1), c1, c2], -1)[..., None]
    hi = jnp.stack([c1, c2, jnp.full_like(c2, jnp.pi)], -1)[..., None]
    alpha = 0.5 * (hi - lo) * x + 0.5 * (hi + lo)
    w = 0.5 * (hi - lo) * wx
    shape = alpha.shape[:-2] + (-1,)
    return alpha.reshape(shape), w.reshape(shape)


def _pair_row(f, g, a_i, a, theta, order):
    """E[f(u_i) g(u_j)] for one row i and all j (vectorised over j and the nodes)."""
    r, wr, x, wx = (jnp.asarray(v, dtype=a.dtype) for v in _nodes(order))
    alpha, wa = _segments(theta, x, wx)  # (n, Q)
    cos_i = jnp.cos(alpha)[:, :, None] * r  # (n, Q, R)
    cos_j = jnp.cos(alpha - theta[:, None])[:, :, None] * r
    u, v = a_i * cos_i, a[:, None, None] * cos_j
    # symmetrise r -> -r: the angular range halves to [0, pi)
    F = f(u) * g(v) + f(-u) * g(-v)
    return jnp.einsum("jqr,jq,r->j", F, wa, wr) / (2.0 * jnp.pi)


@functools.partial(jax.jit, static_argnames=("f", "g", "order"))
def pair_expectation(f, g, K, *, order: int = DEFAULT_ORDER):
    """Matrix E[f(u_i) g(u_j)] for u ~ N(0, K) by a deterministic polar quadrature.

    Each pair (i, j) is written in whitened polar coordinates,
    u_i = sqrt(K_ii) r cos(alpha), u_j = sqrt(K_jj) r cos(alpha - theta_ij),
    theta_ij = arccos(rho_ij), so that

        E[f(u_i) g(u_j)] = (1 / 2 pi) int_0^pi d alpha int_0^inf dr r e^{-r^2/2}
                           [f(u_i) g(u_j) + f(-u_i) g(-u_j)].

    The r integral uses ``order``-point Gauss-Legendre on [0, 10], the alpha
    integral Gauss-Legendre with ``order // 2`` points on each of three segments
    split at the zeros of u_i and u_j. The rule is exact up to round-off for
    positively homogeneous activations (relu, step) and spectrally accurate for
    smooth ones (accuracy: see ``DEFAULT_ORDER``). Degenerate
    pairs (diagonal, collinear, zero rows) need no special case: rho is never
    formed by division.

    Parameters
    ----------
    f, g : callable
        Elementwise jnp functions (hashable: they are static arguments of ``jit``).
    K : (n, n) array
        Covariance matrix (symmetric positive semi-definite).
    order : int
        Radial nodes (static under ``jit``).

    Returns
    -------
    (n, n) array
    """
    K = jnp.asarray(K)
    a = _safe_sqrt(jnp.diagonal(K))
    theta = _angle(K, _gram_sqrt(K))
    row = functools.partial(_pair_row, f, g, order=order)
    nodes = 3 * max(order // 2, 4) * order
    batch = max(1, min(K.shape[0], (1 << 22) // max(1, K.shape[0] * nodes)))
    return jax.lax.map(lambda args: row(args[0], a, args[1]), (a, theta), batch_size=batch)


# ----------------------------------------------------------------------------- public kernels


@functools.cache
def _autodiff_pair(fn):
    """(fn, fn') for an elementwise callable; cached so that jit sees the same objects."""
    return fn, jnp.vectorize(jax.grad(fn))


def _resolve(fn: Activation):
    """(phi, phi') for a table name or a jnp callable (phi' by automatic differentiation)."""
    if callable(fn):
        return _autodiff_pair(fn)
    if fn not in FUNCTIONS:
        raise ValueError(
            f"unknown activation {fn!r}; allowed: {', '.join(sorted(FUNCTIONS))}, "
            "or pass an elementwise jnp callable"
        )
    return FUNCTIONS[fn]


def has_closed_form(fn: Activation) -> bool:
    """Whether ``phi_kernel``/``dphi_kernel`` of ``fn`` are exact closed forms (no quadrature)."""
    return isinstance(fn, str) and fn in _CLOSED


@functools.partial(jax.jit, static_argnames=("fn", "order"))
def phi_kernel(fn: Activation, K, *, order: int = DEFAULT_ORDER):
    """E[phi(u_i) phi(u_j)] for u ~ N(0, K): the NNGP map K -> Phi.

    Closed forms for linear (K), relu (arc-cosine order 1), erf (arcsine) and
    quadratic (K_ii K_jj + 2 K_ij^2); gelu by conditioning on u_i (gauss_mean: one
    one-dimensional rule, since E gelu(v) is closed for Gaussian v); :func:`pair_expectation` otherwise.

    Parameters
    ----------
    fn : str or callable
        A name in :data:`FUNCTIONS` or an elementwise jnp callable.
    K : (n, n) array
        Covariance of u.
    order : int
        Order of the polar quadrature, for activations with neither a closed form nor a closed mean.
    """
    if has_closed_form(fn):
        K = jnp.asarray(K)
        d = _diag(K)
        return _CLOSED[fn][0](d[:, None], d[None, :], K)
    phi, _ = _resolve(fn)
    if _has_mean(fn):
        return _square_mean(phi, MEANS[fn][0], K)
    return pair_expectation(phi, phi, K, order=order)


@functools.partial(jax.jit, static_argnames=("fn", "order"))
def dphi_kernel(fn: Activation, K, *, order: int = DEFAULT_ORDER):
    """E[phi'(u_i) phi'(u_j)] for u ~ N(0, K): the derivative kernel of the NTK recursion.

    Closed forms for linear (1), relu (arc-cosine order 0), erf
    ((4/pi) det(I + 2 K_pair)^(-1/2)) and quadratic (4 K_ij); gelu by conditioning; quadrature otherwise
    (phi' from :data:`FUNCTIONS`, or ``jax.grad`` of a callable).
    """
    if has_closed_form(fn):
        K = jnp.asarray(K)
        d = _diag(K)
        return _CLOSED[fn][1](d[:, None], d[None, :], K)
    _, dphi = _resolve(fn)
    if _has_mean(fn):
        return _square_mean(dphi, MEANS[fn][1], K)
    return pair_expectation(dphi, dphi, K, order=order)


# ----------------------------------------------------------------------------- rectangular blocks


def cross_expectation(f, g, var_i, var_j, cov, *, order: int = DEFAULT_ORDER):
    """E[f(u_i) g(u_j)] for a rectangular block: var_i (p,), var_j (n,), cov (p, n), by quadrature."""
    a_i, a = _safe_sqrt(var_i), _safe_sqrt(var_j)
    sq = _gram(var_i[:, None], var_j[None, :], cov)
    theta = _angle(cov, sq)
    row = functools.partial(_pair_row, f, g, order=order)
    return jax.lax.map(lambda args: row(args[0], a, args[1]), (a_i, theta))


def _has_mean(fn: Activation) -> bool:
    """Whether pair expectations of ``fn`` go by conditioning (gauss_mean): a closed Gaussian mean, no closed pair form."""
    return isinstance(fn, str) and fn in MEANS and not has_closed_form(fn)


def _square_mean(f, gbar, K):
    """E[f(u_i) f(u_j)] of a square covariance by conditioning on u_i, symmetrised (the rule conditions on one side)."""
    K = jnp.asarray(K)
    d = _diag(K)
    out = pair_mean(f, gbar, d[:, None], d[None, :], K, nodes=DEFAULT_NODES)
    return 0.5 * (out + out.T)


def _pair(fn: Activation, which: int, order: int):
    """(var_i, var_j, cov) -> E[f(u_i) f(u_j)], f = (phi, phi')[which]: closed form, conditioning or polar rule."""
    if has_closed_form(fn):
        return _CLOSED[fn][which]
    f = _resolve(fn)[which]
    if _has_mean(fn):
        return functools.partial(pair_mean, f, MEANS[fn][which], nodes=CV_NODES)
    return lambda vi, vj, k: cross_expectation(f, f, vi[:, 0], vj[0, :], k, order=order)


def pair_phi(fn: Activation, *, order: int = CV_ORDER):
    """A function (var_i, var_j, cov) -> E[phi(u_i) phi(u_j)] for any block of a covariance.

    var_i (p, 1), var_j (1, n) and cov (p, n) as the causal sweep passes them (one time row).
    Closed forms where they exist; conditioning on u_i (gauss_mean.pair_mean) where the Gaussian
    mean of phi is closed (gelu); the polar quadrature of `order` otherwise.
    """
    return _pair(fn, 0, order)


def pair_dphi(fn: Activation, *, order: int = CV_ORDER):
    """The same for E[phi'(u_i) phi'(u_j)]."""
    return _pair(fn, 1, order)
