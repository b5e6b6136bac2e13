"""The cross-check on synthetic ensembles with a known bias c/n and noise sigma/sqrt(n).

Tolerances come from the fits' own standard errors (docs/theory.md#finite-size gives
the rates: bias n^-1, fluctuation n^-1/2).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from dmftc.crosscheck import Report, crosscheck, write_json_atomic
from dmftc.errors import DmftcError

N_SIGMA = 3.0


def test_known_rates_are_recovered_within_the_fits_standard_errors(synthetic):
    report = crosscheck(synthetic.reference(), synthetic.ensembles(0))
    for q in report.quantities:
        assert abs(q.bias_fit.exponent + 1.0) <= N_SIGMA * q.bias_fit.exponent_se, q.bias_verdict.sentence
        assert abs(q.fluct_fit.exponent + 0.5) <= N_SIGMA * q.fluct_fit.exponent_se, q.fluct_verdict.sentence
        assert (q.bias_verdict.status, q.fluct_verdict.status) == ("consistent", "consistent")
    assert report.status == "consistent"
    assert report.summary.startswith("Consistent: the finite networks approach the DMFT at the predicted "
                                     "rates for loss, f (N = 128..2048, 32 seeds): loss bias falls as N^-")
    assert report.summary.endswith("consistent with the predicted N^-1.")
    print(report.table())  # shown with pytest -s


def test_exponent_errors_are_calibrated_over_replicates(synthetic):
    """(fitted - true) / se over independent replicates: standard deviation near 1."""
    z = {"bias": [], "fluct": []}
    for seed in range(60):
        for q in crosscheck(synthetic.reference(), synthetic.ensembles(100 + seed)).quantities:
            z["bias"].append((q.bias_fit.exponent + 1.0) / q.bias_fit.exponent_se)
            z["fluct"].append((q.fluct_fit.exponent + 0.5) / q.fluct_fit.exponent_se)
    for kind, values in z.items():
        values = np.array(values)
        k = values.size
        assert abs(values.mean()) < 4 / np.sqrt(k), kind
        assert abs(values.std() - 1.0) < 4 / np.sqrt(2 * k), kind


def test_naive_distance_falls_like_noise_while_the_bias_falls_like_one_over_n(synthetic):
    """Why the U-statistic: with little bias, |mean - DMFT| tracks the noise sigma / sqrt(S n)."""
    report = crosscheck(synthetic.reference(), synthetic.ensembles(1, c=3.0), quantities=["f"])
    q = report.quantity("f")
    naive = np.array([d.naive for d in q.distances])
    slope = np.polyfit(np.log(synthetic.SIZES), np.log(naive), 1)[0]
    assert slope > -0.75  # far from -1: noise-dominated
    assert q.bias_verdict.status == "consistent"


def test_wrong_dmft_is_not_converging(synthetic):
    report = crosscheck(synthetic.reference(), synthetic.ensembles(2, offset=0.1))
    assert [q.bias_verdict.status for q in report.quantities] == ["not_converging", "not_converging"]
    assert report.status == "not_converging"
    assert report.summary.startswith("Check failed: the finite networks do not approach the DMFT")
    for q in report.quantities:  # the offset is 0.1; the floor model (floor + c/n) only approximates it
        assert q.bias_verdict.floor.significant and 0.05 < q.bias_verdict.floor.floor < 0.15
    assert "levels off at" in report.quantity("f").bias_verdict.sentence


def test_offset_without_any_finite_size_bias_does_not_fall(synthetic):
    report = crosscheck(synthetic.reference(), synthetic.ensembles(3, offset=0.1, c=0.0))
    for q in report.quantities:
        assert q.bias_verdict.status == "not_converging"
        assert "does not fall" in q.bias_verdict.sentence


def test_pure_noise_is_unresolved_and_never_yields_a_rate(synthetic):
    """Zero bias: sqrt of noise would fall like n^-1/2 and fake a rate; it must be called unresolved.
    (Fluctuation verdicts are not asserted per replicate: a 3-sigma test fails ~0.3-1% of the time.)"""
    for seed in range(30):
        report = crosscheck(synthetic.reference(), synthetic.ensembles(200 + seed, c=0.0, seeds=16))
        for q in report.quantities:
            assert q.bias_verdict.status == "unresolved", q.bias_verdict.sentence
            assert "add seeds (the bias is below" in q.bias_verdict.sentence
    assert report.status == "unresolved"
    assert report.summary.startswith("Unresolved: the data cannot yet confirm the predicted rates")


def test_upper_bounds_cover_a_small_true_bias(synthetic):
    """bias_upper is a one-sided 97.7% bound; over replicates and sizes it must cover the truth."""
    ref, c = synthetic.reference(), 3.0
    g = np.cos(np.arange(ref["f"].shape[0]) / 7)
    covered = []
    for seed in range(20):
        q = crosscheck(ref, synthetic.ensembles(300 + seed, c=c, seeds=16), quantities=["f"]).quantity("f")
        covered += [d.bias_upper >= c * np.sqrt(np.mean(g**2)) / n for n, d in zip(synthetic.SIZES, q.distances)]
    assert np.mean(covered) > 0.9


def test_dmft_monte_carlo_error_is_named_when_it_limits_the_distance(synthetic):
    ref = synthetic.reference()
    rng = np.random.default_rng(4)
    noisy = {"loss": ref["loss"] + 0.05 * rng.standard_normal(), "f": ref["f"]}
    report = crosscheck(noisy, synthetic.ensembles(5, c=0.0), reference_se={"loss": np.full(51, 0.05)},
                        quantities=["loss"])
    v = report.quantity("loss").bias_verdict
    assert v.status == "unresolved"
    assert "the DMFT's own Monte Carlo error (RMS 0.05) limits the distance there; increase solver.samples" in v.sentence
    assert all(d.reference_limited for d in report.quantity("loss").distances)


def test_dmft_runs_replace_its_standard_errors_and_notes_are_kept(synthetic):
    """A wrong-by-noise DMFT given as 8 runs: the runs carry its error into every distance, and a
    note on the prediction lands in the summary and survives the JSON round trip."""
    ref = synthetic.reference()
    rng = np.random.default_rng(9)
    runs = ref["f"] + 1e-3 * rng.standard_normal((8, *ref["f"].shape))
    report = crosscheck({"f": runs.mean(0)}, synthetic.ensembles(10), quantities=["f"],
                        reference_runs={"f": runs}, reference_se={"f": np.full(ref["f"].shape, 1.0)},
                        notes=["Predicted bias N^-1 here."])
    dists = report.quantity("f").distances
    assert all(d.n_reference_runs == 8 and d.reference_floor < 1e-3 for d in dists)
    assert report.quantity("f").bias_verdict.status == "consistent", report.summary
    assert report.summary.endswith("Predicted bias N^-1 here.")
    back = Report.from_json(json.loads(json.dumps(report.to_json())))
    assert back.notes == ("Predicted bias N^-1 here.",) and back.to_json() == report.to_json()


def test_json_round_trips_and_is_strict(synthetic, tmp_path):
    report = crosscheck(synthetic.reference(), synthetic.ensembles(6, sizes=(128, 256, 512, 1024)))
    data = json.loads(json.dumps(report.to_json(), allow_nan=False))
    assert Report.from_json(data).to_json() == report.to_json()
    assert data["sizes"] == [128, 256, 512, 1024] and data["size_name"] == "N"
    loss = data["quantities"]["loss"]
    assert [d["size"] for d in loss["distances"]] == data["sizes"]
    assert {"bias", "bias_se", "fluct", "fluct_se", "naive", "resolved", "bias_upper"} <= set(loss["distances"][0])
    assert set(loss["fits"]) == set(loss["verdicts"]) == {"bias", "fluct"}
    assert loss["verdicts"]["bias"]["status"] == "consistent" and data["summary"] == report.summary
    path = write_json_atomic(tmp_path / "check.json", report.to_json())
    assert Report.from_json(json.loads(path.read_text())).to_json() == report.to_json()


def test_from_json_rejects_other_formats():
    with pytest.raises(DmftcError, match="not a cross-check report of format 'dmftc.crosscheck/1'"):
        Report.from_json({"format": "something else"})


def test_quantities_missing_from_the_simulation_are_skipped_or_refused(synthetic):
    data = synthetic.ensembles(7, sizes=(128, 256, 512))
    del data[256]["f"]
    report = crosscheck(synthetic.reference(), data)
    assert report.names == ("loss",)
    assert report.skipped == (("f", "not measured by the simulation at N=256"),)
    assert "Not compared: f (not measured by the simulation at N=256)." in report.summary
    with pytest.raises(DmftcError, match=r"^cannot compare K, f \(missing at N=256\); the DMFT has loss, f$"):
        crosscheck(synthetic.reference(), data, quantities=["K", "f"])


def test_shape_errors_name_the_quantity_and_size(synthetic):
    data = synthetic.ensembles(8, sizes=(128, 256))
    data[256]["loss"] = data[256]["loss"][:, :-1]
    with pytest.raises(DmftcError, match=r"^'loss' at H=256: finite shape \(32, 50\) does not match"):
        crosscheck(synthetic.reference(), data, size_name="H")


def test_table_lists_every_size_and_verdict(synthetic):
    report = crosscheck(synthetic.reference(), synthetic.ensembles(9, c=0.0, seeds=8, sizes=(128, 512, 2048)))
    text = report.table()
    assert text.splitlines()[0] == "DMFT vs finite networks as N grows"
    assert text.count("loss ") >= 3 and "< " in text  # unresolved biases shown as upper bounds
    assert "loss bias" in text and "unresolved" in text and "N^-1/2" in text
    report.check()


def test_unknown_predicted_rates_and_bad_sizes_are_refused(synthetic):
    data = synthetic.ensembles(10, sizes=(128, 256), seeds=4)
    with pytest.raises(DmftcError, match="^unknown predicted rate 'biass'; allowed: bias, fluct, bias_next$"):
        crosscheck(synthetic.reference(), data, predicted={"biass": -1.0})
    with pytest.raises(DmftcError, match=r"^sizes must be positive integers; received \['128'\]$"):
        crosscheck(synthetic.reference(), {"128": data[128]})
    report = crosscheck(synthetic.reference(), data, predicted={"bias": -0.5})
    assert report.predicted_bias == -0.5 and report.predicted_fluct == -0.5
    assert "Only 4 seeds at some size: standard errors are rough; use 8 or more." in report.summary
