"""`dmftc check`'s verdicts, as stated and applied: the criterion in the report, a rate several standard
errors from its prediction is never consistent, and the exit code follows the overall verdict (0 only
when every rate is consistent). Synthetic fits and ensembles, no simulation."""

from __future__ import annotations

import argparse
import dataclasses
import json

import numpy as np
import pytest

from dmftc.crosscheck import Report, crosscheck
from dmftc.crosscheck.fit import compare_rate, fit_power_law

L = np.array([2.0, 4.0, 8.0, 16.0])


def test_a_rise_four_and_a_half_standard_errors_from_a_flat_prediction_is_not_consistent():
    """A fluctuation along L that grows as a power law L^0.4 +- 0.09 against the predicted L^0 (the
    issue's depth rows): a + b/L also fits it within chi2, but worse than the power law, so the rate is
    not called consistent, and the sentence gives the deviation in standard errors."""
    values = 0.02 * L**0.4
    ses = 0.125 * values  # log-space error 0.125 per point: exponent se ~ 0.09
    fit = fit_power_law(L, values, ses, size_name="L", label="Htop fluctuation")
    z = fit.exponent / fit.exponent_se
    assert 4.0 < z < 5.0, (fit.exponent, fit.exponent_se)
    v = compare_rate(fit, 0.0)
    assert v.status != "consistent", v.sentence
    assert v.sigmas == pytest.approx(z)
    assert "sigma" in v.sentence, v.sentence


def _ensembles(seed, sizes=(128, 256, 512, 1024), seeds=16, c=0.0):
    """Zero bias (c = 0): every bias is unresolved; fluctuations fall as n^-1/2."""
    rng = np.random.default_rng(seed)
    T1 = 11
    ref = {"loss": 0.5 * np.exp(-np.arange(T1) / 5.0) + 0.02}
    fin = {n: {"loss": ref["loss"] + c / n + rng.standard_normal((seeds, T1)) / np.sqrt(n)} for n in sizes}
    return ref, fin


def test_an_unresolved_rate_makes_the_overall_verdict_fail():
    ref, fin = _ensembles(1)
    report = crosscheck(ref, fin)
    assert report.quantity("loss").bias_verdict.status == "unresolved"
    assert report.status == "unresolved"
    assert report.passed is False


def test_the_report_states_its_criterion_in_the_table_and_check_json():
    ref, fin = _ensembles(2)
    report = crosscheck(ref, fin, n_sigma=3.0)
    for text in (report.table().replace("\n", " "),):
        assert "Criterion: a rate is consistent when |p - p_pred| <= 3.0 se" in text, text
        assert "exits 0 only when every rate is consistent" in text, text
    data = report.to_json()
    assert data["criterion"].startswith("a rate is consistent when |p - p_pred| <= 3.0 se")
    assert Report.from_json(json.loads(json.dumps(data))).criterion == data["criterion"]
    assert "3.0 se" in crosscheck(ref, fin, predicted={"bias": 0.0}).criterion  # finite: the a + b/n rule too
    assert "a + b/N" in crosscheck(ref, fin, predicted={"bias": 0.0}).criterion


@pytest.mark.parametrize("status, code", [("consistent", 0), ("unresolved", 1), ("inconsistent", 1),
                                          ("not_converging", 1)])
def test_check_exits_0_only_when_every_rate_is_consistent(monkeypatch, tmp_path, capsys, status, code):
    import importlib

    import dmftc.cli as cli

    check_module = importlib.import_module("dmftc.check")

    ref, fin = _ensembles(3)
    report = dataclasses.replace(crosscheck(ref, fin), status=status)
    monkeypatch.setattr(cli, "_load", lambda args: None)
    monkeypatch.setattr(check_module, "run_check", lambda *a, **k: report)
    args = argparse.Namespace(sizes={"N": [128, 256, 512, 1024]}, seeds=8, out=str(tmp_path))
    assert cli.cmd_check(args) == code
    assert "Criterion:" in capsys.readouterr().out
