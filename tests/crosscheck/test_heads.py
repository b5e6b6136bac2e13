"""Head collapse, measured (issue 8 item 5): across-head variance of the attention logits against N.

Synthetic logits pin down the statistics and the verdict rules; small finite transformers of the
two example specs (alpha_A = 1 and 1/2, N = 8..64, 3 steps) check the verdicts themselves. The
numbers these small runs give (8 seeds, seed 0): alpha_A = 1, headvar_init N^-1.02 +- 0.02,
headvar_change about N^-1.2 +- 0.1; alpha_A = 1/2, headvar_init N^-0.02 +- 0.02, headvar_change
between N^-0.25 and N^0.05 +- 0.1 (depending on the target).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dmftc.cli import main
from dmftc.crosscheck.fit import fit_power_law
from dmftc.crosscheck.heads import (
    QUANTITIES, HeadReport, Prediction, analyse, head_statistics, judge, measure_heads,
)
from dmftc.errors import DmftcError
from dmftc.spec import load

REPO = Path(__file__).resolve().parents[2]
MUP, SQRTN = REPO / "specs" / "transformer_mup.yaml", REPO / "specs" / "transformer_sqrtN.yaml"
SIZES = [8, 16, 32, 64]
SEEDS = 8
PNG = b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------ synthetic logits
def _logits(rng, seeds, var, *, common=0.1, heads=4, steps=2, p=3, s=2, layers=2):
    """A(t) = A(0) + t/T (common + noise): per-head noise of variance `var` at t = 0 and in the change."""
    shape = (seeds, layers, heads, p, s, s)
    a0 = rng.standard_normal(shape) * np.sqrt(var)
    change = common + rng.standard_normal(shape) * np.sqrt(var)
    t = np.linspace(0.0, 1.0, steps + 1)[None, :, None, None, None, None, None]
    return a0[:, None] + t * change[:, None]


def test_head_statistics_recover_the_variance_and_the_common_change():
    rng = np.random.default_rng(0)
    st = head_statistics(_logits(rng, 400, 0.2, common=0.3))
    assert st["headvar_init"].mean() == pytest.approx(0.2, rel=0.03)
    assert st["headvar_change"].mean() == pytest.approx(0.2, rel=0.03)
    assert st["rms_init"].mean() == pytest.approx(np.sqrt(0.2), rel=0.03)
    # the head average keeps the noise / H; the debiased square removes it
    assert np.sqrt(np.mean(st["mean_change"] ** 2)) == pytest.approx(np.sqrt(0.09 + 0.2 / 4), rel=0.03)
    assert np.sqrt(st["common_sq"].mean()) == pytest.approx(0.3, rel=0.03)


def test_head_statistics_refuse_what_they_cannot_measure():
    good = np.zeros((2, 3, 1, 4, 2, 2, 2))
    with pytest.raises(DmftcError, match="at least 2 heads"):
        head_statistics(good[:, :, :, :1])
    with pytest.raises(DmftcError, match="training step"):
        head_statistics(good[:, :1])
    with pytest.raises(DmftcError, match="shape"):
        head_statistics(good[0])
    with pytest.raises(DmftcError, match="not finite"):
        head_statistics(np.full_like(good, np.nan))


def _synthetic_report(var_exponent, common, seeds=16, sizes=(16, 32, 64, 128, 256)):
    """Head statistics of synthetic logits whose per-head variance is N^var_exponent."""
    rng = np.random.default_rng(1)
    per = {n: head_statistics(_logits(rng, seeds, float(n) ** var_exponent, common=common)) for n in sizes}
    preds = {"headvar_init": Prediction(-1.0, "falls", "test", gate=True),
             "headvar_change": Prediction(-1.0, "falls", "test"),
             "mean_change": Prediction(0.0, None, "test"),
             "common_change": Prediction(0.0, "flat", "test"),
             "rms_init": Prediction(-0.5, None, "test")}
    return {q.name: q for q in analyse(per, preds)}


def test_collapsing_heads_pass_and_diverse_heads_fail_the_collapse_verdicts():
    collapse = _synthetic_report(-1.0, common=0.1)             # as at alpha_A = 1
    assert collapse["headvar_init"].fit.exponent == pytest.approx(-1.0, abs=0.1)
    assert [collapse[q].verdict.status for q in ("headvar_init", "headvar_change", "common_change")] == ["pass"] * 3
    # the raw head average falls with the noise while the noise dominates it
    assert collapse["mean_change"].fit.exponent < collapse["common_change"].fit.exponent
    diverse = _synthetic_report(0.0, common=0.1)
    assert diverse["headvar_init"].verdict.status == "fail"
    assert diverse["headvar_change"].verdict.status == "fail"
    vanishing = _synthetic_report(-1.0, common=0.0)
    assert vanishing["common_change"].verdict.status == "unresolved"   # nothing common to resolve


def _fit(exponent, se=0.02, sizes=(8, 16, 32, 64), amplitude=1.0):
    n = np.asarray(sizes, float)
    v = amplitude * n ** exponent
    # scatter the points so the fit's error is about `se` (errors of log v are se * spread of log n)
    rel = se * np.std(np.log(n)) * np.sqrt(len(n))
    return fit_power_law(n, v, v * rel, resolved=[True] * len(n), label="x")


@pytest.mark.parametrize("expect, exponent, se, status", [
    ("falls", -1.0, 0.02, "pass"),
    ("falls", -0.02, 0.02, "fail"),
    ("falls", -0.5, 0.3, "unresolved"),       # within 3 se of both -1 and no fall
    ("not_falling", 0.0, 0.02, "pass"),
    ("not_falling", -0.6, 0.05, "fail"),
    ("not_falling", -0.3, 0.3, "unresolved"),  # cannot exclude a fall as N^-1
    ("flat", 0.03, 0.02, "pass"),
    ("flat", -0.5, 0.05, "fail"),
    ("flat", 0.0, 0.2, "unresolved"),          # 3 se = 0.6: no telling 0 from N^-1/2
])
def test_judge_rules(expect, exponent, se, status):
    fit = _fit(exponent, se)
    assert fit.exponent_se == pytest.approx(se, rel=0.01)
    v = judge("x", fit, Prediction(None, expect, "test"))
    assert v.status == status, v.sentence


def test_a_gated_prediction_fails_a_fall_at_the_wrong_rate():
    fit = _fit(-0.5, 0.02)
    assert judge("x", fit, Prediction(-1.0, "falls", "test")).status == "pass"
    v = judge("x", fit, Prediction(-1.0, "falls", "test", gate=True))
    assert v.status == "fail" and v.rate == "inconsistent" and "predicts N^-1" in v.sentence


def test_three_sizes_are_needed_for_a_verdict():
    v = judge("x", _fit(-1.0, 0.02, sizes=(8, 16)), Prediction(-1.0, "falls", "test"))
    assert v.status == "unresolved" and "need 3" in v.sentence


# ------------------------------------------------------------------ finite transformers
@pytest.fixture(scope="module")
def mup() -> HeadReport:
    return measure_heads(load(MUP, overrides=("training.steps=3",)), {"N": SIZES}, seeds=SEEDS)


@pytest.fixture(scope="module")
def sqrtn() -> HeadReport:
    return measure_heads(load(SQRTN, overrides=("training.steps=3",)), {"N": SIZES}, seeds=SEEDS)


def test_alpha_A_1_heads_collapse_as_N_grows(mup):
    assert (mup.regime, mup.collapse, mup.heads, mup.sizes) == ("feature_learning", "collapse", 4, tuple(SIZES))
    init, change = mup.quantity("headvar_init"), mup.quantity("headvar_change")
    assert init.prediction.exponent == -1.0 and init.prediction.source.startswith("analysis")
    p, se = init.fit.exponent, init.fit.exponent_se
    assert p < 0 and abs(p + 1.0) <= 3 * se + 0.1 and se < 0.1, (p, se)
    assert init.verdict.status == "pass" and init.verdict.rate == "consistent"
    # the variance at init is N^-1 with amplitude 1 (docs/theory.md#attention-logit-scale, no 2^-1/2 on k and q)
    assert np.allclose(np.array(init.values) * np.array(SIZES), 1.0, atol=0.15)
    assert change.verdict.status == "pass" and change.fit.exponent < -0.5, change.verdict.sentence
    rms = mup.quantity("rms_init").fit
    assert abs(rms.exponent + 0.5) <= 3 * rms.exponent_se + 0.05
    # at 3 steps the change common to all heads is below the per-head noise: not yet resolved, but
    # not measurably vanishing either
    assert mup.quantity("common_change").verdict.status != "fail"


def test_alpha_A_half_heads_do_not_collapse(sqrtn, mup):
    assert sqrtn.regime == "unstable" and sqrtn.collapse != "collapse"
    init, change = sqrtn.quantity("headvar_init"), sqrtn.quantity("headvar_change")
    assert init.prediction.exponent == 0.0 and change.prediction.expect == "not_falling"
    assert init.verdict.status == "pass" and abs(init.fit.exponent) < 0.1
    assert np.allclose(init.values, 1.0, atol=0.15)
    assert change.verdict.status == "pass", change.verdict.sentence
    # the same sizes separate the two parameterizations by far more than the errors
    gap = change.fit.exponent - mup.quantity("headvar_change").fit.exponent
    assert gap > 3 * np.hypot(change.fit.exponent_se, mup.quantity("headvar_change").fit.exponent_se)
    assert sqrtn.passed
    assert sqrtn.quantity("common_change").verdict is None  # reported, not judged


def test_report_json_summary_and_plots(mup, tmp_path):
    data = json.loads(json.dumps(mup.to_json(), allow_nan=False))
    assert data["format"] == "dmftc.heads/1" and data["sizes"] == SIZES and data["status"] == mup.status
    assert [row["size"] for row in data["table"]] == SIZES
    assert set(data["quantities"]) == set(QUANTITIES)
    assert data["quantities"]["headvar_init"]["verdict"]["status"] == "pass"
    text = mup.summary()
    assert "headvar_init" in text and "N^-1.0" in text and f"overall: {mup.status}" in text
    paths = mup.plot(tmp_path)
    assert sorted(p.name for p in paths) == sorted(f"heads_{q}.png" for q in QUANTITIES)
    assert all(p.read_bytes().startswith(PNG) for p in paths)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)   # no temporaries


def test_measure_heads_refuses_bad_input():
    spec = load(MUP)
    with pytest.raises(DmftcError, match="exactly one size axis"):
        measure_heads(spec, {"N": [8], "H": [2]})
    with pytest.raises(DmftcError, match="limit size"):
        measure_heads(spec, {"H": [2, 4]})
    with pytest.raises(DmftcError, match="does not declare"):
        measure_heads(spec, {"K": [2, 4]})
    with pytest.raises(DmftcError, match="2 seeds"):
        measure_heads(spec, {"N": SIZES}, seeds=1)
    with pytest.raises(DmftcError, match="no attention"):
        measure_heads(load(REPO / "specs" / "mlp_mup_relu.yaml"), {"N": SIZES})


# ------------------------------------------------------------------ command line
def test_cli_heads_exit_codes_and_files(tmp_path, capsys, mup, sqrtn):
    # same sizes, seeds and steps as the fixtures: the compiled programs are reused
    common = ["--sizes", "N=" + ",".join(map(str, SIZES)), "--seeds", str(SEEDS), "--set", "training.steps=3"]
    assert main(["heads", str(SQRTN), "--out", str(tmp_path / "sqrtN"), *common]) == 0
    data = json.loads((tmp_path / "sqrtN" / "heads.json").read_text())
    assert data["status"] == "pass" and data["quantities"]["headvar_init"]["values"] == list(sqrtn.quantity(
        "headvar_init").values)
    assert len(list((tmp_path / "sqrtN").glob("heads_*.png"))) == len(QUANTITIES)
    assert "overall: pass" in capsys.readouterr().out
    expected = 0 if mup.passed else 1
    assert main(["heads", str(MUP), "--out", str(tmp_path / "mup"), *common]) == expected
    assert (tmp_path / "mup" / "heads.json").exists()


def test_cli_heads_bad_input_exits_2_without_traceback(tmp_path):
    res = subprocess.run([sys.executable, "-m", "dmftc", "heads", "specs/mlp_mup_relu.yaml", "--sizes", "N=8,16,32",
                          "--out", str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and "Traceback" not in res.stderr and "no attention" in res.stderr
    assert not list(tmp_path.iterdir())
    assert main(["heads", str(MUP), "--sizes", "N=8,x", "--out", str(tmp_path)]) == 2


# ------------------------------------------------------------------ full sizes
@pytest.mark.slow
@pytest.mark.parametrize("spec, collapse", [(MUP, True), (SQRTN, False)])
def test_head_collapse_at_full_sizes(spec, collapse):
    """N = 8..256, 10 steps (N = 8..256 as in the seed paper's measurements)."""
    r = measure_heads(load(spec, overrides=("training.steps=10",)), {"N": [8, 16, 32, 64, 128, 256]}, seeds=8)
    init, change = r.quantity("headvar_init"), r.quantity("headvar_change")
    assert init.verdict.status == "pass" and change.verdict.status == "pass", r.summary()
    if collapse:
        assert abs(init.fit.exponent + 1.0) < 0.05 and change.fit.exponent < -0.8
    else:
        assert abs(init.fit.exponent) < 0.05 and change.fit.exponent > -0.3


@pytest.mark.slow
def test_the_head_common_change_stays_finite_when_the_attention_learns():
    """With gamma0 = 4 the attention moves enough in 10 steps that the change common to all heads
    is resolved above the per-head noise from N = 64 on; it stays finite while the spread falls."""
    spec = load(MUP, overrides=("training.steps=10", "hyper.gamma0=4"))
    r = measure_heads(spec, {"N": [32, 64, 128, 256]}, seeds=8)
    assert r.quantity("common_change").verdict.status == "pass", r.summary()
    assert r.quantity("headvar_change").verdict.status == "pass", r.summary()


def _limit_fit(a, b, sizes=(1, 2, 4, 8, 16), rel=0.02):
    n = np.asarray(sizes, float)
    v = a + b / n
    return fit_power_law(n, v, rel * v, resolved=[True] * len(n), size_name="L", label="x")


def test_flat_passes_a_rise_that_saturates_at_a_finite_limit():
    """a + b/L with b < 0 tilts the power law upwards over L = 1..16; the limit a is finite."""
    fit = _limit_fit(1.0, -0.4)
    assert fit.exponent > 0.1
    v = judge("x", fit, Prediction(0.0, "flat", "test", gate=True))
    assert v.status == "pass" and "finite limit" in v.sentence, v.sentence


def test_flat_fails_unbounded_growth_and_any_fall():
    n = np.array([1, 2, 4, 8, 16.0])
    grow = fit_power_law(n, n ** 0.4, 0.02 * n ** 0.4, resolved=[True] * 5, size_name="L", label="x")
    assert judge("x", grow, Prediction(0.0, "flat", "test")).status == "fail"   # a + b/L misses the curvature
    falling = _limit_fit(0.3, 0.7)                                               # a fall is never excused
    assert judge("x", falling, Prediction(0.0, "flat", "test")).status == "fail"
