"""The mup DMFT against finite-width ensembles extrapolated to N -> infinity (issue: MLP compiler).

For each activation and richness, the seed-averaged finite loss at N = 256, 512, 1024 is fitted
as a + b / N (weighted least squares; the O(1/N) bias of docs/theory.md#finite-size), and the
intercept a must agree with the DMFT within the combined standard error (finite seeds and
DMFT Monte Carlo), at every step, at 4 sigma (a Bonferroni-safe bound for ~60 comparisons).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import dmftc

SPECS = Path(__file__).resolve().parents[2] / "specs"
SIZES = (256, 512, 1024)


def extrapolate(means: np.ndarray, ses: np.ndarray, sizes=SIZES) -> tuple[np.ndarray, np.ndarray]:
    """Per time step, intercept and its standard error of mean(N) = a + b / N."""
    x = 1.0 / np.asarray(sizes, float)
    A = np.stack([np.ones_like(x), x], 1)
    a, se = [], []
    for m, s in zip(means.T, ses.T):
        W = np.diag(1.0 / s**2)
        cov = np.linalg.inv(A.T @ W @ A)
        coef = cov @ A.T @ W @ m
        a.append(coef[0])
        se.append(np.sqrt(cov[0, 0]))
    return np.array(a), np.array(se)


def compare(spec, prog) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """z-scores of |extrapolated finite loss - DMFT loss| per step, the combined SE, and the DMFT loss."""
    runs = np.array([prog.solve(samples=16384, seed=k, errors=False).loss for k in range(3)])
    dmft, dmft_se = runs.mean(0), runs.std(0, ddof=1) / np.sqrt(len(runs))
    means, ses = [], []
    for n in SIZES:
        sim = dmftc.simulate(spec, sizes={"N": n}, seeds=24, record="none", dtype="float64", seed=7)
        means.append(sim.loss.mean(0))
        ses.append(sim.loss.std(0, ddof=1) / np.sqrt(sim.loss.shape[0]) + 1e-12)
    a, a_se = extrapolate(np.array(means), np.array(ses))
    band = np.sqrt(a_se**2 + dmft_se**2)
    return np.abs(a - dmft) / band, band, dmft


@pytest.mark.parametrize("fn", ["relu", "tanh"])
@pytest.mark.parametrize("gamma0", [0.5, 1.0, 2.0])
def test_dmft_within_error_of_extrapolated_finite_networks(fn, gamma0):
    spec = dmftc.load(SPECS / f"mlp_mup_{fn}.yaml",
                      overrides=(f"hyper.gamma0={gamma0}", "training.steps=8", "hyper.eta=0.5"))
    z, band, dmft = compare(spec, dmftc.compile_spec(spec))
    assert np.all(z < 4.0), f"z-scores {np.round(z, 2)}; dmft {dmft}"
    # the comparison has teeth: the error band is a few percent of the loss change over training
    assert np.max(band) < 0.25 * (dmft[0] - dmft[-1])


@pytest.mark.parametrize("name", ["resnet_depth_mup", "resnet_completep"])
def test_residual_dmft_within_error_of_extrapolated_finite_networks(name):
    """Residual ReLU stream, L = 4 blocks, alpha_L = 1/2 and 1, width limit at finite depth."""
    spec = dmftc.load(SPECS / f"{name}.yaml", overrides=("training.steps=8",))
    z, band, dmft = compare(spec, dmftc.compile_spec(spec))
    assert np.all(z < 4.0), f"z-scores {np.round(z, 2)}"
    assert np.max(band) < 0.25 * (dmft[0] - dmft[-1])


def test_the_same_comparison_rejects_a_dmft_without_the_forward_response():
    """Negative control: dropping A(t, s) from the forward field puts the DMFT many sigma off."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "check"))
    from test_check import _without

    spec = dmftc.load(SPECS / "mlp_mup_relu.yaml", overrides=("hyper.gamma0=1.0", "training.steps=8"))
    z, _, _ = compare(spec, _without(dmftc.compile_spec(spec), "eq:field.h2", "A"))
    assert z.max() > 8.0
