"""Scaling with width: fitted log-log slopes against the exponents the theory predicts.

Tolerances are 4 standard errors of the fitted slope (`conftest.loglog_slope`: the seeds'
scatter propagated through the fit, or the fit's residual scatter if larger).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import data_of, loglog_slope, mlp_spec, resnet_spec, transformer_spec

from dmftc.simulate import measure_one_step_seeds, simulate

WIDTHS = (64, 128, 256, 512, 1024)


def assert_slope(sizes, per_seed, expected, name):
    slope, se = loglog_slope(sizes, per_seed)
    assert abs(slope - expected) <= 4 * se + 1e-3, f"{name}: slope {slope:+.3f} +- {se:.3f}, expected {expected:+.3f}"


@pytest.mark.parametrize("preset, f0_exponent", [("mup", -0.5), ("ntk", 0.0)])
def test_output_at_init(preset, f0_exponent):
    """mup: f0 -> 0 as N^-1/2, so the loss at init -> |y|^2 / 2P; ntk: f0 stays O(1)."""
    spec = mlp_spec(preset, steps=0)
    X, y = data_of(spec)
    sims = [simulate(spec, {"N": n}, seeds=16, record="none", data=(X, y)) for n in WIDTHS]
    assert_slope(WIDTHS, [np.sqrt(np.mean(s.f0**2, axis=1)) for s in sims], f0_exponent, "f0")
    if preset == "mup":
        base = np.sum(y**2) / (2 * len(y))
        assert_slope(WIDTHS, [np.abs(s.loss[:, 0] - base) for s in sims], -0.5, "loss(0) - |y|^2/2P")
        assert abs(sims[-1].loss[:, 0].mean() - base) < 0.01 * base


ONE_STEP = {
    "mup": {"fwd:W1": 0, "bwd:W1": 0, "bwd:W0": 0, "dfwd:W1": 0, "df": 0, "f0": -0.5, "dW:W1": -0.5},
    "ntk": {"fwd:W1": 0, "bwd:W1": 0, "dfwd:W1": -0.5, "df": 0, "f0": 0, "dW:W1": -1},
}


@pytest.mark.parametrize("preset", sorted(ONE_STEP))
def test_one_step_exponents_of_the_mlp(preset):
    spec = mlp_spec(preset)
    data = data_of(spec)
    runs = [measure_one_step_seeds(spec, {"N": n}, seeds=8, data=data) for n in WIDTHS]
    for name, exponent in ONE_STEP[preset].items():
        assert_slope(WIDTHS, [r[name] for r in runs], exponent, f"{preset} {name}")


@pytest.mark.parametrize("alpha_A", [1.0, 0.5])
def test_attention_logits_at_init_scale_as_N_to_half_minus_alpha_A(alpha_A):
    """RMS logit ~ N^(1/2 - alpha_A); the across-head variance is N^(1 - 2 alpha_A) exactly
    in expectation (unit-variance q, k coordinates from LayerNormed inputs; docs/theory.md#attention-logit-scale)."""
    spec = transformer_spec(alpha_A, L_=1)
    spec = dataclasses.replace(spec, training=dataclasses.replace(spec.training, steps=1))
    widths = (8, 16, 32, 64)
    runs = [measure_one_step_seeds(spec, {"N": n}, seeds=8, data=data_of(spec)) for n in widths]
    assert_slope(widths, [r["logit:attn0"] for r in runs], 0.5 - alpha_A, "logit")
    for n, r in zip(widths, runs):
        ratio = r["logit_headvar:attn0"] / n ** (1 - 2 * alpha_A)
        assert abs(ratio.mean() - 1) < 4 * ratio.std(ddof=1) / np.sqrt(ratio.size), (n, ratio)


@pytest.mark.parametrize("alpha_L", [1.0, 0.5])
def test_residual_depth_exponents(alpha_L):
    """Branch beta0 / L^alpha_L with step eta gamma0^2 N L^(2 alpha_L - 1) (docs/theory.md#depth-scaling):
    each branch is O(L^-alpha_L) at init and each block's weights move O(L^(alpha_L - 1)).
    (df is O(1) too, but at these depths it still drifts by a 1/L correction: slope -0.08 for
    alpha_L = 1 over L = 2..16, which a power-law fit cannot tell from a small exponent.)"""
    spec = resnet_spec(alpha_L=alpha_L, N_=256)
    depths = (2, 4, 8, 16)
    runs = [measure_one_step_seeds(spec, {"L": n}, seeds=8, data=data_of(spec)) for n in depths]
    for name, exponent in (("branch:n2_residual", -alpha_L), ("dW:W1", alpha_L - 1)):
        assert_slope(depths, [r[name] for r in runs], exponent, f"alpha_L={alpha_L} {name}")
