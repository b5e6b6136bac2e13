"""Depth in transformers: the analysis' predictions, the verdicts on synthetic data, the tension."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dmftc.crosscheck.depth import (
    QUANTITIES, analyse_depth, depth_predictions, fraction, tension, with_alpha_L, worst_status,
)
from dmftc.errors import DmftcError
from dmftc.reproduce import task
from dmftc.spec import load

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("alpha, kq, kernel", [(0.5, -0.5, 0.0), (1.0, 0.0, -1.0)])
def test_the_analysis_predicts_freezing_at_one_half_and_a_vanishing_branch_kernel_at_one(alpha, kq, kernel):
    preds, facts = depth_predictions(with_alpha_L(task(1.0, ("N",), 5, N=8, H=4), alpha))
    assert preds["kq_displacement"].exponent == kq
    assert preds["kernel_change"].exponent == kernel
    assert preds["logit_change"].expect == "flat"          # the stream feeding the logits moves O(1)
    assert facts.kernel_at_init == ("nontrivial" if alpha == 0.5 else "trivial")


def _per_depth(exponents, depths=(1, 2, 4, 8, 16), rel=0.03):
    return {L: {q: (L ** p, rel * L ** p, True) for q, p in exponents.items()} for L in depths}


def _report(alpha, exponents):
    from dmftc.crosscheck.depth import DepthReport
    spec = with_alpha_L(task(1.0, ("N",), 5, N=8, H=4), alpha)
    preds, facts = depth_predictions(spec)
    qs = analyse_depth(_per_depth(exponents), preds)
    return DepthReport(spec.name, alpha, (1, 2, 4, 8, 16), {"N": 8}, 8, 0, 5, facts, qs, ((1.0, 0.5),) * 5)


def test_verdicts_follow_the_measured_exponents():
    half = _report(0.5, {"kq_displacement": -0.5, "kernel_change": 0.0, "branch_sum": 0.0, "logit_change": 0.0})
    one = _report(1.0, {"kq_displacement": 0.0, "kernel_change": -1.0, "branch_sum": -0.5, "logit_change": 0.0})
    assert half.status == one.status == "consistent"
    t = tension((one, half))
    assert t.status == "consistent" and t.contrasts["kq_displacement"]["difference"] == pytest.approx(-0.5)
    frozen_at_one = _report(1.0, {"kq_displacement": -0.5, "kernel_change": -1.0, "branch_sum": -0.5,
                                  "logit_change": 0.0})
    assert frozen_at_one.quantity("kq_displacement").status == "inconsistent"
    assert tension((frozen_at_one, half)).status == "inconsistent"


def test_helpers_and_bad_input():
    assert fraction(0.5) == "1/2" and worst_status([]) == "unresolved"
    assert worst_status(["consistent", "unresolved"]) == "unresolved"
    assert set(QUANTITIES) == {"kq_displacement", "kernel_change", "branch_sum", "logit_change"}
    with pytest.raises(DmftcError, match="alpha_L"):
        with_alpha_L(load(ROOT / "specs" / "mlp_mup_relu.yaml"), 0.5)
