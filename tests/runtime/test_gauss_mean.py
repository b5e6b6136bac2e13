"""Pair expectations by conditioning (runtime.gauss_mean): exact where a closed pair form exists, the
polar rule at high order for gelu; the Gaussian means and reflections of the table checked on their own."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

jax.config.update("jax_enable_x64", True)

from dmftc.runtime import closed_forms as cf  # noqa: E402
from dmftc.runtime.gauss_mean import MEANS, pair_mean  # noqa: E402


def _pairs(n=240, vmax=10.0, seed=0):
    """Variances in [0.1, vmax] (five of them zero), correlations uniform plus +-1, +-0.99999 and 0."""
    rng = np.random.default_rng(seed)
    vi = np.exp(rng.uniform(np.log(0.1), np.log(vmax), n))
    vj = np.exp(rng.uniform(np.log(0.1), np.log(vmax), n))
    rho = np.concatenate([rng.uniform(-1, 1, n - 60), np.tile([0.999, 0.99999, -0.99999, 1.0, -1.0, 0.0], 10)])
    k = rho * np.sqrt(vi * vj)
    vi[:5], k[:5] = 0.0, 0.0
    return vi, vj, k


@pytest.mark.parametrize("name", ["erf", "linear"])
@pytest.mark.parametrize("which", [0, 1])
def test_equals_closed_pair_forms(name, which):
    vi, vj, k = _pairs()
    exact = cf._CLOSED[name][which](vi, vj, k)
    got = pair_mean(cf.FUNCTIONS[name][which], MEANS[name][which], vi, vj, k)
    np.testing.assert_allclose(got, exact, rtol=0, atol=1e-11)


@pytest.mark.parametrize("which", [0, 1])
def test_gelu_against_the_polar_rule(which):
    """48 nodes per half-line to 1e-12 of the polar rule at 96 x 144 nodes; the solvers' 32 nodes to 1e-8."""
    vi, vj, k = _pairs(n=120, seed=1)
    f = cf.FUNCTIONS["gelu"][which]
    ref = jax.vmap(lambda a, b, c: cf.cross_expectation(f, f, a[None], b[None], c[None, None], order=96)[0, 0])(
        jnp.asarray(vi), jnp.asarray(vj), jnp.asarray(k)
    )
    assert float(jnp.max(jnp.abs(pair_mean(f, MEANS["gelu"][which], vi, vj, k) - ref))) < 1e-12
    assert float(jnp.max(jnp.abs(pair_mean(f, MEANS["gelu"][which], vi, vj, k, nodes=cf.CV_NODES) - ref))) < 1e-8


@pytest.mark.parametrize("name", sorted(MEANS))
def test_means_and_reflections(name):
    """gbar(m, s^2) against Gauss-Hermite in v, and g(-v) = sigma g(v) + alpha + beta v pointwise."""
    x, w = np.polynomial.hermite_e.hermegauss(160)
    w = w / w.sum()
    v = np.linspace(-6, 6, 101)
    for g, mean in zip(cf.FUNCTIONS[name], MEANS[name]):
        for m in (-2.5, -0.3, 0.0, 0.7, 3.0):
            for s2 in (0.0, 0.04, 1.0, 6.0):
                quad = float(np.sum(w * np.asarray(g(jnp.asarray(m + np.sqrt(s2) * x)))))
                assert float(mean.gbar(jnp.asarray(m), jnp.asarray(s2))) == pytest.approx(quad, abs=1e-10)  # the Hermite rule itself: ~3e-12
        gv = np.asarray(g(jnp.asarray(v)))
        np.testing.assert_allclose(np.asarray(g(jnp.asarray(-v))), mean.sigma * gv + mean.alpha + mean.beta * v, atol=1e-14)


def test_gelu_kernels_are_symmetric_finite_and_the_polar_rules():
    """phi_kernel / dphi_kernel of gelu: symmetric, finite on singular K, equal to the polar rule."""
    rng = np.random.default_rng(3)
    A = rng.standard_normal((6, 3))
    A[1] = 1.3 * A[0]
    K = A @ A.T / 3
    for kernel, which in ((cf.phi_kernel, 0), (cf.dphi_kernel, 1)):
        out = np.asarray(kernel("gelu", K))
        f = cf.FUNCTIONS["gelu"][which]
        np.testing.assert_allclose(out, cf.pair_expectation(f, f, K, order=96), atol=1e-12)
        np.testing.assert_array_equal(out, out.T)
        assert np.all(np.isfinite(np.asarray(kernel("gelu", np.zeros((6, 6))))))
