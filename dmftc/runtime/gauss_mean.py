"""Pair expectations by conditioning: one one-dimensional rule where a Gaussian mean is closed.

For a pair (u_i, u_j) ~ N(0, [[K_ii, K_ij], [K_ij, K_jj]]) write u_i = a z with a = sqrt(K_ii) and
z ~ N(0, 1). Given z, u_j ~ N(b z, s^2) with b = K_ij / a and s^2 = K_jj - b^2, so

    E[f(u_i) g(u_j)] = E_z[ f(a z) gbar(b z, s^2) ],    gbar(m, s^2) = E[g(v)],  v ~ N(m, s^2).

Where gbar is known in closed form (table `MEANS`) only the z integral is left. It is done by
Gauss-Legendre on [-Z, 0] and [0, Z] with the density folded into the weights: both f(a z) and
gbar(b z, s^2) bend at z = 0, so each half-line is smooth. The nodes of the two halves mirror each
other, and every tabled activation has a reflection g(-v) = sigma g(v) + alpha + beta v, so that
gbar(-m, s^2) = sigma gbar(m, s^2) + alpha + beta m: one evaluation of gbar serves both halves.
For gelu, 48 nodes per half-line agree with the polar rule of closed_forms at 96 x 144 nodes to
8e-15 for variances <= 3, 3e-14 for <= 10 and 4e-11 for <= 30 (the polar rule of order 48, 3456 nodes, is itself off by
6e-14 / 3e-11 / 9e-9 there); 32 nodes: 3e-12 / 2.5e-9 / 3e-7; 24 nodes: 2.5e-9 / 8e-7 / 5e-5
(measured over random variances and correlations including |rho| = 0.99999 and 1).

The Gaussian means: with c^2 = 1 + s^2 and Phi, phi the standard normal distribution and density
(Phi as (1 + erf(x / sqrt 2)) / 2, accurate in absolute terms, which is all a mean needs),
    gelu(v) = v Phi(v):     E = m Phi(m/c) + (s^2/c) phi(m/c)          (Stein: E[(v-m) g] = s^2 E[g'])
    gelu'(v) = Phi(v) + v phi(v):  E = Phi(m/c) + m phi(m/c) / c^3      (phi(v) N(v; m, s^2) is Gaussian)
    erf(v):                 E = erf(m / sqrt(1 + 2 s^2))
    erf'(v) = (2/sqrt(pi)) exp(-v^2):  E = (2/sqrt(pi)) exp(-m^2/(1 + 2 s^2)) / sqrt(1 + 2 s^2)
    v, 1:                   E = m, 1
and the reflections (sigma, alpha, beta): gelu (1, 0, -1), gelu' (-1, 1, 0), erf (-1, 0, 0),
erf' (1, 0, 0), v (-1, 0, 0), 1 (1, 0, 0).
erf and linear have closed pair forms (closed_forms._CLOSED), which take precedence; their means
are here so that the rule is checked against exact answers. relu is not: its step mean Phi(m/s)
has a boundary layer of width s/|b| at z = 0 for near-collinear pairs, which the rule cannot resolve
(1.8e-4 off over pairs with |rho| up to 0.99999), and its arc-cosine forms are exact anyway.
"""

from __future__ import annotations

import functools
import math
import types
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import erf

#: nodes per half-line of `pair_mean` for the closed-form-mean activations; accuracy in the module docstring
DEFAULT_NODES = 48
#: half-line cut-off: the standard normal density beyond it is below 1e-22
_Z_MAX = 10.0


class Mean(NamedTuple):
    """gbar(m, s^2) = E[g(v)] for v ~ N(m, s^2), and g's reflection g(-v) = sigma g(v) + alpha + beta v."""

    gbar: Callable
    sigma: float
    alpha: float
    beta: float


def _npdf(x):
    return jnp.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def _ncdf(x):
    return 0.5 * (1.0 + erf(x / math.sqrt(2.0)))


def _safe_div(x, y):
    """x / y where y > 0, else 0 (and a finite gradient either way)."""
    pos = y > 0
    return jnp.where(pos, x / jnp.where(pos, y, 1.0), 0.0)


def _gelu_mean(m, s2):
    c = jnp.sqrt(1.0 + s2)
    return m * _ncdf(m / c) + s2 * _npdf(m / c) / c


def _gelu_prime_mean(m, s2):
    c = jnp.sqrt(1.0 + s2)
    return _ncdf(m / c) + m * _npdf(m / c) / c**3


def _erf_mean(m, s2):
    return erf(m / jnp.sqrt(1.0 + 2.0 * s2))


def _erf_prime_mean(m, s2):
    c2 = 1.0 + 2.0 * s2
    return (2.0 / math.sqrt(math.pi)) * jnp.exp(-m * m / c2) / jnp.sqrt(c2)


#: activation name -> (Mean of phi, Mean of phi')
MEANS = types.MappingProxyType(
    {
        "gelu": (Mean(_gelu_mean, 1.0, 0.0, -1.0), Mean(_gelu_prime_mean, -1.0, 1.0, 0.0)),
        "erf": (Mean(_erf_mean, -1.0, 0.0, 0.0), Mean(_erf_prime_mean, 1.0, 0.0, 0.0)),
        "linear": (Mean(lambda m, s2: m + 0.0 * s2, -1.0, 0.0, 0.0), Mean(lambda m, s2: jnp.ones_like(m + s2), 1.0, 0.0, 0.0)),
    }
)


@functools.cache
def _nodes(nodes: int):
    """z nodes on [0, Z] (Gauss-Legendre) and weights with the N(0, 1) density folded in; [-Z, 0] mirrors them."""
    x, w = np.polynomial.legendre.leggauss(nodes)
    z = 0.5 * _Z_MAX * (1.0 + x)
    return z, 0.5 * _Z_MAX * w * np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


def pair_mean(f, g: Mean, var_i, var_j, cov, *, nodes: int = DEFAULT_NODES):
    """E[f(u_i) g(u_j)] for (u_i, u_j) Gaussian with variances var_i, var_j and covariance cov (broadcasting).

    f an elementwise function, g a `Mean` (a `MEANS` entry). Sum over z_q > 0 of
    w_q [f(a z_q) gbar(m_q) + f(-a z_q) (sigma gbar(m_q) + alpha + beta m_q)], m_q = b z_q.
    A zero var_i gives u_i = 0 and the unconditioned E[g(u_j)] times f(0); the conditional variance is
    clipped at 0, the statement |rho| <= 1. `nodes` per half-line.
    """
    dtype = jnp.result_type(var_i, var_j, cov, 1.0)
    z, wz = (jnp.asarray(v, dtype) for v in _nodes(nodes))
    a = jnp.sqrt(jnp.maximum(var_i, 0.0))
    b = _safe_div(cov, a)
    s2 = jnp.maximum(var_j - b * b, 0.0)

    def add(q, acc):
        m, u = b * z[q], a * z[q]
        G = g.gbar(m, s2)
        return acc + wz[q] * (f(u) * G + f(-u) * (g.sigma * G + g.alpha + g.beta * m))

    shape = jnp.broadcast_shapes(jnp.shape(a), jnp.shape(b), jnp.shape(s2))
    return jax.lax.fori_loop(0, nodes, add, jnp.zeros(shape, dtype))
