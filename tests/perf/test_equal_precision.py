"""The arithmetic of the equal-precision comparison (benchmarks/equal_precision.py) on known inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks import equal_precision as ep


def _ensemble_means(a, c, widths, sigma, rng):
    """Seed means of S networks of width N: a + c / N plus noise of variance sigma^2 / S."""
    means = {N: a + c / N + rng.standard_normal(a.shape) * sigma / math.sqrt(S) for N, S in widths.items()}
    return means, {N: np.full(a.shape, sigma**2) for N in widths}, dict(widths)


def test_width_fit_recovers_the_limit_and_the_bias_coefficient():
    rng = np.random.default_rng(0)
    a, c = np.linspace(0.2, 0.01, 11), np.linspace(0.1, 1.0, 11)
    fit = ep.fit_width_bias(*_ensemble_means(a, c, {128: 4096, 256: 4096, 512: 4096}, 1e-3, rng))
    se_a = np.sqrt(fit["var_a"])
    assert np.all(np.abs(fit["a"] - a) < 5 * se_a)
    assert fit["c_rms"] == pytest.approx(math.sqrt(np.mean(c**2)), rel=0.05)
    assert fit["chi2_dof"] < 5


def test_ensemble_plan_meets_eps_at_the_cheapest_split():
    plan = ep.ensemble_plan(1e-3, c_rms=0.5, sigma_fit=(0.1, -0.45), time_exp=2.0)
    bias, noise = 0.5 / plan["N"], plan["sigma"] / math.sqrt(plan["S"])
    assert math.hypot(bias, noise) <= 1e-3 * 1.001
    assert math.hypot(bias, noise) == pytest.approx(1e-3, rel=0.02)
    q = 2 * -0.45 + 2.0
    assert plan["bias_share"] == pytest.approx(math.sqrt(q / (q + 2)), rel=0.01)


def test_cheapest_split_beats_the_even_one():
    def cost(x, q=1.1):
        return x ** -q / (1 - x**2)
    q = 1.1
    assert cost(math.sqrt(q / (q + 2))) < cost(math.sqrt(0.5)) and cost(math.sqrt(q / (q + 2))) < cost(0.55)


def test_dmft_plan_interpolates_the_ladder_and_extrapolates_at_the_clt_rate():
    ladder = [(1024, 4e-3), (4096, 1e-3), (16384, 5e-4)]
    assert ep.dmft_plan(1e-3, ladder) == 4096
    M = ep.dmft_plan(2e-3, ladder)                          # halfway in log between 1024 and 4096
    assert M == 2048
    M = ep.dmft_plan(2.5e-4, ladder)                        # beyond: (5e-4 / 2.5e-4)^2 x 16384
    assert M == 4 * 16384


def test_spread_and_bias_against_a_known_truth():
    rng = np.random.default_rng(1)
    a = np.linspace(0.2, 0.0, 21)
    curves = list(a + 0.01 + 1e-3 * rng.standard_normal((400, 21)))
    truth = {"a": a, "var_a": np.zeros(21)}
    assert ep.spread(curves) == pytest.approx(1e-3, rel=0.1)
    bias, resolution = ep.bias_vs_truth(curves, truth)
    assert bias == pytest.approx(0.01, rel=0.01) and resolution == pytest.approx(5e-5, rel=0.1)


def test_ratio_extrapolates_along_both_cost_laws():
    eps = ep.eps_for_ratio(10.0, eps0=1e-3, ratio0=1.0, dmft_exp=2.0, ens_exp=3.0)
    assert eps == pytest.approx(1e-4)


def test_a_diverged_solve_is_recognised():
    assert ep.failed(np.array([0.2, 0.1, np.nan]))
    assert ep.failed(np.array([0.2, 0.1, 5.0]))
    assert not ep.failed(np.array([0.2, 0.1, 0.05]))


def test_power_fit():
    k, p = ep.power_fit([1, 2, 4, 8], [3.0, 6.0, 12.0, 24.0])
    assert (k, p) == (pytest.approx(3.0), pytest.approx(1.0))
