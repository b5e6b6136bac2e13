"""`dmftc heads` and `dmftc reproduce` judge a rate as `dmftc check` does, and say so: a rise several
standard errors from a flat prediction is consistent only when a + b/n fits about as well as the power
law (`fit.EQUAL_CHI2`), and the criterion is stated in the heads and reproduce reports. Synthetic fits
and logits, no simulation."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from dmftc.crosscheck.depth import judge_depth
from dmftc.crosscheck.fit import fit_power_law
from dmftc.crosscheck.heads import HeadReport, Prediction, analyse, head_statistics, judge
from dmftc.reproduce import QUICK, Phenomenon, Reproduction

L = np.array([2.0, 4.0, 8.0, 16.0])


def _rise():
    """The issue's depth rows: L^0.4 +- 0.09 against a predicted L^0, 4-5 standard errors; a + b/L
    fits it within chi2, but worse than the power law."""
    values = 0.02 * L**0.4
    fit = fit_power_law(L, values, 0.125 * values, resolved=[True] * len(L), size_name="L", label="x")
    assert 4.0 < fit.exponent / fit.exponent_se < 5.0, (fit.exponent, fit.exponent_se)
    return fit


@pytest.mark.parametrize("gate", [False, True])
def test_heads_judge_does_not_pass_a_rise_four_and_a_half_sigma_from_flat(gate):
    fit = _rise()
    v = judge("x", fit, Prediction(0.0, "flat", "test", gate=gate))
    assert v.status != "pass", v.sentence
    assert v.rate != "consistent", v
    assert "sigma" in v.sentence, v.sentence


def test_judge_depth_does_not_call_a_rise_four_and_a_half_sigma_from_flat_consistent():
    fit = _rise()
    v = judge_depth("logit_change", fit, Prediction(0.0, "flat", "test", gate=True))
    assert v.status != "pass", v.sentence
    assert v.rate != "consistent", v
    assert "sigma" in v.sentence, v.sentence


def _logits(rng, seeds, var, *, common=0.1, heads=4, steps=2, p=3, s=2, layers=2):
    shape = (seeds, layers, heads, p, s, s)
    a0 = rng.standard_normal(shape) * np.sqrt(var)
    change = common + rng.standard_normal(shape) * np.sqrt(var)
    t = np.linspace(0.0, 1.0, steps + 1)[None, :, None, None, None, None, None]
    return a0[:, None] + t * change[:, None]


def test_the_heads_report_states_its_criterion_in_the_summary_and_heads_json():
    rng = np.random.default_rng(1)
    sizes = (16, 32, 64, 128)
    per = {n: head_statistics(_logits(rng, 16, 1.0 / n)) for n in sizes}
    preds = {"headvar_init": Prediction(-1.0, "falls", "test", gate=True),
             "headvar_change": Prediction(-1.0, "falls", "test"),
             "mean_change": Prediction(0.0, None, "test"),
             "common_change": Prediction(0.0, "flat", "test"),
             "rms_init": Prediction(-0.5, None, "test")}
    report = HeadReport("synthetic", "N", sizes, 16, 0, 2, 4, "test", "collapse", analyse(per, preds))
    summary = report.summary().replace("\n", " ")
    assert "Criterion:" in summary, summary
    data = json.loads(json.dumps(report.to_json()))
    rule = data["criterion"]
    assert "|p - p_pred| <= 3.0 se" in rule and "a + b/N" in rule, rule
    assert "exits 0 only when every verdict passes" in rule, rule
    assert " ".join(rule.split()) in summary


def test_the_reproduce_report_states_its_criterion_in_report_md_json_and_summary():
    p = Phenomenon("head_collapse", "Head collapse", "consistent", "synthetic", (), "heads_N.png")
    result = Reproduction(True, QUICK, (p,), 1.0)
    rule = result.to_json()["criterion"]
    assert "|p - p_pred| <= 3.0 se" in rule and "a + b/" in rule, rule
    assert "exits 0 only when every phenomenon is consistent" in rule, rule
    assert rule in result.markdown()
    assert "Criterion:" in result.summary()
    assert " ".join(rule.split()) in result.summary().replace("\n", " ")


def test_a_rise_that_levels_off_passes_by_its_finite_limit_and_the_table_says_so():
    """L^0.37-like rises over a short range that a + b/L fits as well as the power law pass the flat
    prediction; the table must say by which route, else "L^0.37 +- 0.05 consistent with L^0" reads wrong."""
    from dmftc.crosscheck.heads import verdict_text

    values = 1.0 - 0.5 / L
    fit = fit_power_law(L, values, 0.01 * values, resolved=[True] * len(L), size_name="L", label="x")
    v = judge_depth("logit_change", fit, Prediction(0.0, "flat", "test", gate=True))
    assert fit.exponent > 3 * fit.exponent_se        # a resolved rise
    assert v.status == "pass" and v.route == "a + b/L", v
    assert verdict_text("consistent", v) == "consistent (a + b/L)"
    flat = judge_depth("logit_change", fit_power_law(L, 0 * L + 1, 0.01 + 0 * L, resolved=[True] * 4,
                                                     size_name="L", label="x"), Prediction(0.0, "flat", "t"))
    assert flat.status == "pass" and flat.route == "", flat


def test_an_ungated_fall_reports_how_far_the_leading_rate_is_without_calling_it_inconsistent():
    n = np.array([16.0, 32.0, 64.0])
    values = n**-1.13
    fit = fit_power_law(n, values, 0.02 * values, resolved=[True] * 3, size_name="N", label="x")
    pred = Prediction(-1.0, "falls", "theory")
    v = judge("headvar_change", fit, pred)
    assert v.status == "pass", v
    assert "inconsistent" not in v.sentence and "only the fall is judged" in v.sentence, v.sentence
    assert pred.label("N") == "falls (~N^-1)"
    assert Prediction(-1.0, "falls", "analysis", gate=True).label("N") == "N^-1"
    assert Prediction(0.0, "not_falling", "analysis", gate=True).label("N") == "N^0"
    assert Prediction(None, "not_falling", "theory").label("N") == "no fall"
    gated = judge("headvar_init", fit, dataclasses.replace(pred, gate=True))
    assert gated.status == "fail" and "inconsistent at" in gated.sentence, gated.sentence


def test_depth_margin_passes_say_so():
    values = L**-0.58
    fit = fit_power_law(L, values, 0.01 * values, resolved=[True] * 4, size_name="L", label="x")
    v = judge_depth("kq_displacement", fit, Prediction(-0.5, "falls", "analysis", gate=True))
    assert v.status == "pass" and v.route == "within 0.1", v
    assert "within the margin 0.1" in v.sentence, v.sentence
    far = judge_depth("kq_displacement", fit_power_law(L, L**-0.7, 0.01 * L**-0.7, resolved=[True] * 4,
                                                       size_name="L", label="x"),
                      Prediction(-0.5, "falls", "analysis", gate=True))
    assert far.status == "fail" and far.route == "", far
