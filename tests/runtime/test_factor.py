"""The sources' causal factors: the ridge pseudo-inverse and the Monte Carlo ridge (dmftc.runtime.factor)."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dmftc
from dmftc.runtime import factor
from dmftc.spec import load, load_data

SPECS = Path(__file__).resolve().parents[2] / "specs"


def test_the_factors_pseudo_inverse_is_a_ridge_bounded_and_continuous():
    """D D^T = S however small its eigenvalues; D^+ = sqrt(lam) / (lam + eps) (<= 1 / (2 sqrt(eps)),
    1 / sqrt(lam) well above eps); Monte Carlo's ridge is max(1, n/10)/M, the exact Gaussian mode keeps rcond."""
    V = np.linalg.qr(np.random.default_rng(0).normal(size=(4, 4)))[0]
    lam = np.array([1.0, 1e-2, 1e-7, 0.0])
    S = jnp.asarray(V * lam @ V.T)
    D, Dp = factor._psd_sqrt(S, 1e-4, 1.0)
    np.testing.assert_allclose(D @ D.T, S, atol=1e-12)
    inv = np.sort(np.linalg.svd(np.asarray(Dp), compute_uv=False))[::-1]
    ridge = np.sqrt(lam[:3]) / (lam[:3] + 1e-4)
    np.testing.assert_allclose(inv[:3], np.sort(ridge)[::-1], rtol=1e-6)
    assert inv[0] <= 1 / (2 * np.sqrt(1e-4)) and inv[3] < 1e-3  # lam = 0 up to eigh round-off (~1e-16)
    # a direction at the threshold: a hard cut-off would jump by 1 / sqrt(eps) = 100 across it
    below, above = (factor._psd_sqrt(jnp.asarray(V * np.array([1.0, 1e-2, 1e-4 * (1 + d), 0.0]) @ V.T), 1e-4, 1.0)[1]
                    for d in (-1e-6, 1e-6))
    assert np.max(np.abs(np.asarray(above - below))) < 1e-3
    # an eigenvalue at eigh's round-off (1e-16 of the scale) is zero: without the floor, sqrt would
    # lift it to 1e-8 and the ridge inverse read it as a direction of weight 1e-8 / 1e-4 = 1e-4
    _, Dp0 = factor._psd_sqrt(jnp.asarray(V * np.array([1.0, 1e-2, 1e-7, 1e-16]) @ V.T), 1e-4, 1.0)
    assert np.sort(np.linalg.svd(np.asarray(Dp0), compute_uv=False))[0] < 1e-6
    assert float(factor.resolvable(1e-10, 2048, "monte_carlo", n=816)) == pytest.approx(81.6 / 2048)
    assert float(factor.resolvable(1e-10, 2048, "monte_carlo", n=4)) == 1 / 2048
    assert factor.resolvable(1e-10, 2048, "exact_gaussian", n=816) == 1e-10


def test_a_solve_is_continuous_in_its_inputs():
    """The symmetric root is unique: a 1e-14 change of the targets moves the solve by round-off.

    With the eigen-basis root V sqrt(lam), eigh's arbitrary basis within nearly degenerate
    eigenspaces remixed the draws: this transformer's loss moved by 3.6e-4 (M = 256, 3 steps).
    """
    jax.config.update("jax_enable_x64", True)
    spec = load(SPECS / "transformer_mup.yaml", overrides=("training.steps=3",))
    mod = dmftc.compile_spec(spec).load_module()
    X, y = load_data(spec)
    a, b = (np.asarray(mod.solve(X, yy, dict(spec.hyper), steps=3, samples=256, seed=1)["loss"])
            for yy in (y, np.asarray(y) * (1 + 1e-14)))
    assert np.max(np.abs(a - b)) < 1e-10 * np.abs(a).max()
