"""Gaussian kernels of activations: closed forms vs Monte Carlo, quadrature vs closed forms.

Monte Carlo tolerances are 5 standard errors of the per-entry sample mean; the
quadrature tolerances are the accuracy measured against scipy ``dblquad`` (see
``DEFAULT_ORDER`` in the module).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate

jax.config.update("jax_enable_x64", True)

from dmftc.runtime.closed_forms import (  # noqa: E402
    FUNCTIONS,
    dphi_kernel,
    has_closed_form,
    pair_expectation,
    phi_kernel,
)

CLOSED = ("linear", "relu", "erf", "quadratic")
KERNELS = {"phi": phi_kernel, "dphi": dphi_kernel}


def _covariance(seed=0, n=5):
    """A PSD test matrix with unequal variances, a near-collinear pair and an anti-correlated pair."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, 3)) * rng.uniform(0.5, 1.5, (n, 1))
    A[1] = 1.3 * A[0] + 1e-3 * rng.standard_normal(3)
    A[2] = -0.7 * A[0] + 0.5 * A[3]
    return A @ A.T / 3


@functools.cache
def _draws(seed, draws=400_000):
    """u ~ N(0, K) for K = _covariance(seed) (cached: shared by all activations)."""
    K = _covariance(seed)
    return np.random.default_rng(seed + 100).multivariate_normal(np.zeros(len(K)), K, size=draws, method="eigh")


def _monte_carlo(f, seed):
    """Mean and standard error of f(u_i) f(u_j) for u ~ N(0, K), K = _covariance(seed)."""
    u = _draws(seed)
    F = np.asarray(f(jnp.asarray(u)))
    prod = F[:, :, None] * F[:, None, :]
    return prod.mean(0), prod.std(0) / np.sqrt(len(u))


def _function(fn, kind):
    phi, dphi = FUNCTIONS[fn]
    return phi if kind == "phi" else dphi


@pytest.mark.parametrize("kind", sorted(KERNELS))
@pytest.mark.parametrize("fn", CLOSED)
def test_closed_form_matches_monte_carlo(fn, kind):
    K = _covariance()
    mean, se = _monte_carlo(_function(fn, kind), 0)
    exact = np.asarray(KERNELS[kind](fn, K))
    np.testing.assert_array_less(np.abs(exact - mean), 5 * se + 1e-12)


@pytest.mark.parametrize("fn", ["tanh", "gelu", "sigmoid"])
def test_quadrature_matches_monte_carlo(fn):
    K = _covariance(seed=2)
    for kind, kernel in KERNELS.items():
        mean, se = _monte_carlo(_function(fn, kind), 2)
        np.testing.assert_array_less(np.abs(np.asarray(kernel(fn, K)) - mean), 5 * se + 1e-12)


@pytest.mark.parametrize("fn", CLOSED)
def test_quadrature_matches_closed_forms(fn):
    for K in (_covariance(), 4.0 * _covariance(seed=5), _singular()):
        for kind, kernel in KERNELS.items():
            f = _function(fn, kind)
            quad = pair_expectation(f, f, K)
            np.testing.assert_allclose(quad, kernel(fn, K), rtol=0, atol=1e-8)


def test_tanh_quadrature_matches_adaptive_integration():
    K = np.array([[2.0, 0.9], [0.9, 0.5]])
    rho, s = 0.9 / 1.0, np.sqrt(1 - 0.81)

    def integrand(z2, z1):
        v = np.sqrt(0.5) * (rho * z1 + s * z2)
        return np.tanh(np.sqrt(2.0) * z1) * np.tanh(v) * np.exp(-(z1**2 + z2**2) / 2) / (2 * np.pi)

    ref = integrate.dblquad(integrand, -10, 10, -10, 10, epsabs=1e-11)[0]
    assert abs(float(phi_kernel("tanh", K)[0, 1]) - ref) < 1e-9


def _singular():
    """Rank-1 block, a duplicated row and a zero row."""
    v = np.array([1.0, -2.0, 0.5, 1.0, 0.0])
    K = np.outer(v, v)
    K[3, 3] += 0.3
    return K


@pytest.mark.parametrize("fn", sorted(FUNCTIONS))
def test_no_nan_on_singular_covariances(fn):
    for K in (_singular(), np.zeros((5, 5)), np.ones((5, 5))):  # one shape: one compilation
        for kernel in KERNELS.values():
            out = np.asarray(kernel(fn, K))
            assert np.all(np.isfinite(out)), (fn, K)
            np.testing.assert_allclose(out, out.T, atol=1e-12)
        if has_closed_form(fn) or fn == "tanh":  # quadrature gradients compile slowly: one suffices
            grad = jax.grad(lambda K: phi_kernel(fn, K).sum())(jnp.asarray(_singular()))
            assert np.all(np.isfinite(np.asarray(grad)))


def test_singular_entries_are_the_degenerate_limits():
    K = _singular()
    relu = np.asarray(phi_kernel("relu", K))
    assert relu[0, 1] == pytest.approx(0.0, abs=1e-15)  # perfectly anti-correlated pair
    assert relu[0, 2] == pytest.approx(K[0, 2] / 2)  # perfectly correlated: E relu(a z) relu(b z) = ab/2
    assert np.all(relu[4] == 0)
    assert np.all(np.asarray(dphi_kernel("relu", K))[4] == 0)  # H(0) = 0, as jax.grad(relu)(0)


@pytest.mark.parametrize("fn", ["relu", "erf", "tanh"])
def test_jit(fn):
    K = jnp.asarray(_covariance())
    for kernel in KERNELS.values():
        jitted = jax.jit(functools.partial(kernel, fn))
        np.testing.assert_allclose(jitted(K), kernel(fn, K), rtol=1e-12, atol=1e-14)


def test_callable_activation_matches_table():
    K = _covariance()
    np.testing.assert_allclose(phi_kernel(jnp.tanh, K), phi_kernel("tanh", K), atol=1e-14)
    np.testing.assert_allclose(dphi_kernel(jnp.tanh, K), dphi_kernel("tanh", K), atol=1e-12)


@pytest.mark.parametrize("fn", sorted(FUNCTIONS))
def test_table_derivatives_match_autodiff(fn):
    phi, dphi = FUNCTIONS[fn]
    x = jnp.linspace(-3.0, 3.0, 13) + 0.01  # off the relu kink
    np.testing.assert_allclose(dphi(x), jax.vmap(jax.grad(phi))(x), atol=1e-12)


def test_has_closed_form_and_errors():
    assert all(has_closed_form(fn) for fn in CLOSED)
    assert not has_closed_form("tanh") and not has_closed_form(jnp.tanh)
    with pytest.raises(ValueError, match=r"unknown activation 'swish'; allowed: erf, gelu, linear"):
        phi_kernel("swish", np.eye(2))


@st.composite
def _psd(draw):
    """Random PSD matrices of rank 1..5, zero-padded to 5 x 5 (one shape: one compilation)."""
    n = draw(st.integers(1, 5))
    r = draw(st.integers(1, n))
    A = np.zeros((5, r))
    A[:n] = np.array(draw(st.lists(st.floats(-2, 2), min_size=n * r, max_size=n * r))).reshape(n, r)
    return A @ A.T


@settings(max_examples=20, deadline=None)
@given(_psd())
def test_relu_and_erf_quadrature_on_random_psd(K):
    """Quadrature equals the closed forms on arbitrary (often singular) PSD matrices."""
    for fn in ("relu", "erf"):
        phi, _ = FUNCTIONS[fn]
        np.testing.assert_allclose(pair_expectation(phi, phi, K), phi_kernel(fn, K), atol=1e-8 * (1 + K.max()))
