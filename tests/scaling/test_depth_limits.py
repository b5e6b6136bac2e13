"""Residual depth limits (docs/theory.md#depth): branch scale beta0 / L^alpha_L, L -> inf at fixed N.

mup with residual blocks: step eta gamma0^2 N L^(2 alpha_L - 1) (lam = 2 alpha_L - 1), embedding
and readout multipliers L^(1/2 - alpha_L) with init std L^(alpha_L - 1/2) (F unchanged).
At init a block's branch output is O(1) and the R = L independent branches add in quadrature:
sum = -alpha_L + 1/2. Backward into a branch: B(y) = -alpha_L (the stream's B is 0);
dW1 = lam + 0 + B(y) + 0 = alpha_L - 1: each block's own update -1/2 (alpha_L = 1/2) or 0 (1).
"""

from __future__ import annotations

import pytest
from scaling_specs import exps, half, resnet, transformer

from dmftc.scaling import analyze


@pytest.mark.parametrize("make", [resnet, lambda a: transformer(alpha_L=a, limit=("L",))])
def test_depth_mup_kernel_nontrivial_blocks_lazy(make):
    sc = analyze(make(0.5))
    assert sc.regime == "feature_learning"                 # the stream moves O(1)
    d = sc.depth
    assert (d.symbol, d.kernel_at_init, d.branch_exponent) == ("L", "nontrivial", 0)
    assert (d.blocks, d.block_update_exponent) == ("lazy", -half)
    e = exps(sc, "L")
    assert e["dW:W1"] == -half and e["f0"] == 0 and e["df@trained"] == 0
    assert all(v == 0 for k, v in e.items() if k.startswith("branch:") and "@" not in k)
    assert all(v == 0 for k, v in e.items() if k.startswith("dbranch:"))   # -1/2 + 1 - 1/2


@pytest.mark.parametrize("make", [resnet, lambda a: transformer(alpha_L=a, limit=("L",))])
def test_completep_kernel_trivial_blocks_learn(make):
    sc = analyze(make(1.0))
    assert sc.regime == "feature_learning"
    d = sc.depth
    assert (d.kernel_at_init, d.branch_exponent) == ("trivial", -half)   # -1 + 1/2
    assert (d.blocks, d.block_update_exponent) == ("learning", 0)
    e = exps(sc, "L")
    assert e["dW:W1"] == 0 and e["dfwd:W1@trained"] == 0
    assert all(v == -half for k, v in e.items() if k.startswith("branch:") and "@" not in k)


def test_branches_too_large_blow_up_the_stream():
    sc = analyze(resnet(0.25))
    assert sc.regime == "unstable"
    assert "the residual stream of" in sc.reasons[0] and "L^1/4" in sc.reasons[0]


def test_depth_facts_only_for_a_depth_limit():
    assert analyze(resnet(0.5, limit=("N",))).depth is None
    assert analyze(resnet(0.5, limit=("N", "L"))).depth.blocks == "lazy"
