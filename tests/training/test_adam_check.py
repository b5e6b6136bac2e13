"""`dmftc check` under Adam: no DMFT, the finite networks against each other (dmftc/crosscheck/cauchy.py,
dmftc/crosscheck/simulations.py; docs/reading-output.md#dmftc-check)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dmftc.check import run_check
from dmftc.cli import main
from dmftc.crosscheck import Report
from dmftc.crosscheck.cauchy import cauchy_check, richardson_factor, split_seeds
from dmftc.errors import DmftcError
from dmftc.spec import load

SIZES = (64, 128, 256, 512)


def _ensembles(mean, sizes=SIZES, seeds=32, noise=0.3, seed=0, T=6):
    """Independent ensembles {n: {"loss": (seeds, T)}} with seed mean `mean(n)` (T,) and spread noise / sqrt(n)."""
    rng = np.random.default_rng(seed)
    return {n: {"loss": mean(n) + noise / np.sqrt(n) * rng.standard_normal((seeds, T))} for n in sizes}


def _falling(c=20.0, p=-1.0):
    return lambda n: 0.5 + c * np.linspace(1.0, 0.5, 6) * n**p


def test_richardson_factor_and_the_split_of_the_seeds():
    assert richardson_factor(64, 128, -1.0) == pytest.approx(0.5)
    assert richardson_factor(64, 256, -0.5) == pytest.approx(0.5)
    below, above = split_seeds(1, 4, 8)
    assert set(below).isdisjoint(above) and len(below) == len(above) == 4
    assert len(split_seeds(0, 4, 8)[1]) == len(split_seeds(3, 4, 8)[0]) == 8
    with pytest.raises(DmftcError, match="0 < n < m"):
        richardson_factor(128, 64, -1.0)


def test_a_sequence_with_a_limit_converges_at_its_rate():
    """mean(n) = m + c / n: the Cauchy distances, scaled to the distance from the limit, are c / n."""
    report = cauchy_check(_ensembles(_falling()), predicted={"bias": -1.0, "fluct": -0.5}, preface="No DMFT.")
    q = report.quantity("loss")
    assert report.mode == "cauchy" and report.sizes == SIZES[:-1] and report.reference_sizes == SIZES[1:]
    assert abs(q.bias_fit.exponent + 1.0) <= 3 * q.bias_fit.exponent_se, q.bias_verdict.sentence
    expected = np.sqrt(np.mean((20.0 * np.linspace(1.0, 0.5, 6)) ** 2)) / np.array(SIZES[:-1])
    assert np.all(np.abs(np.array([d.bias for d in q.distances]) - expected) < 4 * np.array(
        [d.bias_se for d in q.distances]))
    assert report.status == "consistent", report.summary
    assert report.table().startswith("Finite networks against each other as N grows (no DMFT)\nNo DMFT.")
    assert "64→128" in report.table()
    back = Report.from_json(json.loads(json.dumps(report.to_json())))
    assert (back.mode, back.reference_sizes, back.preface) == ("cauchy", SIZES[1:], "No DMFT.")


def test_the_fitted_rate_has_calibrated_errors():
    """Independent replicas: the pulls (p - p_true) / se of the fitted exponent have about unit spread (the
    split seeds make the differences independent; shared ensembles would make them anticorrelated)."""
    pulls = []
    for r in range(60):
        q = cauchy_check(_ensembles(_falling(c=10.0), seeds=16, noise=0.2, seed=100 + r),
                         predicted={"bias": -1.0}).quantity("loss")
        if q.bias_fit.n_points == len(SIZES) - 1:
            pulls.append((q.bias_fit.exponent + 1.0) / q.bias_fit.exponent_se)
    pulls = np.array(pulls)
    assert len(pulls) >= 50
    assert 0.6 < np.std(pulls) < 1.5 and abs(np.median(pulls)) < 0.5, (np.std(pulls), np.median(pulls))


@pytest.mark.parametrize("mean, statuses", [
    (lambda n: 0.5 + 0.05 * np.log2(n) * np.ones(6), {"not_converging"}),    # a drift: no limit
    (_falling(c=2.0, p=-0.5), {"inconsistent", "not_converging"}),            # a limit, at n^-1/2, not n^-1
])
def test_differences_that_do_not_fall_as_predicted_fail(mean, statuses):
    report = cauchy_check(_ensembles(mean, seeds=64, noise=0.1), predicted={"bias": -1.0})
    assert report.status in statuses, report.summary
    assert not report.passed


def test_a_limit_the_analysis_refuses_fails_whatever_is_measured():
    report = cauchy_check(_ensembles(_falling()), predicted={"bias": -1.0}, no_limit="the output grows as N^1")
    assert report.status == "not_converging"
    assert report.summary.startswith("Check failed: the scaling analysis finds no limit at infinite N "
                                     "(the output grows as N^1); the measured differences alone are consistent")


def test_bad_input_is_named_before_any_work():
    spec = load("specs/mlp_mup_tanh.yaml", overrides=["training.optimizer=adam", "training.lr=0.01"])
    with pytest.raises(DmftcError, match="at least 3 of N"):
        run_check(spec, {"N": [32, 64]}, seeds=8, out_dir=None)
    with pytest.raises(DmftcError, match="seeds=4: check without a DMFT"):
        run_check(spec, {"N": [32, 64, 128]}, seeds=4, out_dir=None)
    with pytest.raises(DmftcError, match="at least 3 sizes of N"):
        cauchy_check(_ensembles(_falling(), sizes=(64, 128)))


def test_the_command_exits_2_on_too_few_sizes(tmp_path, capsys):
    code = main(["check", "specs/mlp_mup_tanh.yaml", "--set", "training.optimizer=adam", "--set", "training.lr=0.01",
                 "--sizes", "N=32,64", "--seeds", "8", "--out", str(tmp_path / "out")])
    assert code == 2 and "compares successive sizes and needs at least 3 of N" in capsys.readouterr().err


def test_check_of_mup_adam_measures_the_networks_against_each_other(tmp_path):
    """mup-Adam (feature learning, the limit exists): check.json in cauchy mode, every quantity's distance
    rate fitted, the exit code that of the verdict, the loss curves without a DMFT curve."""
    out = tmp_path / "check"
    code = main(["check", "specs/mlp_mup_relu.yaml", "--set", "training.optimizer=adam", "--set", "hyper.eta=0.2",
                 "--set", "training.steps=10", "--sizes", "N=8,16,32,64", "--seeds", "32", "--out", str(out)])
    data = json.loads((out / "check.json").read_text())
    assert data["mode"] == "cauchy" and data["preface"].startswith("No DMFT exists for this spec: adam has no")
    assert data["sizes"] == [8, 16, 32] and data["reference_sizes"] == [16, 32, 64]
    assert {"loss", "f", "Phi1", "Phi2", "G1", "G2"} <= set(data["quantities"])
    for q in ("loss", "f"):  # the distances' rates are fitted (at least 2 positive distances)
        fit = data["quantities"][q]["fits"]["bias"]
        assert fit["n_points"] >= 2 and fit["exponent"] is not None and fit["exponent_se"] is not None, fit
    assert code == (0 if data["status"] == "consistent" else 1), data["summary"]
    assert (out / "loss_curves.png").stat().st_size > 0 and (out / "convergence_loss.png").stat().st_size > 0


def test_sp_adam_is_not_reported_consistent():
    """SP with a fixed Adam step: the analysis finds the output change growing as N^1, and the measured
    differences of f grow too (the negative control: the measurement itself fails, not only the analysis)."""
    spec = load("specs/mlp_mup_tanh.yaml", overrides=["training.optimizer=adam", "training.lr=0.01",
                                                      "training.steps=10", "parameterization.preset=sp"])
    report = run_check(spec, {"N": [16, 32, 64, 128]}, seeds=16, out_dir=None)
    assert report.mode == "cauchy" and report.status == "not_converging"
    assert "the scaling analysis finds no limit at infinite N" in report.summary
    assert report.predicted_fluct == 0.0  # sp's output at initialization is O(1)
    assert report.quantity("f").bias_verdict.status == "not_converging", report.summary
