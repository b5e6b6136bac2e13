"""Measured exponents: finite networks at growing width, one GD step, log-log slopes of every
quantity's RMS coordinate size against the exponents the analysis predicts.

The tolerance is 4 standard errors of the fitted slope: the larger of the seeds' scatter
propagated through a weighted fit and the fit's own residual scatter (which also absorbs
curvature from subleading terms), with a floor of 0.01 for quantities that are exact powers.
Skips cleanly while `dmftc.simulate` has no one-step measurement.
"""

from __future__ import annotations

import numpy as np
import pytest
from scaling_specs import N, mlp, transformer, with_lr

from dmftc.notation import hyper_symbol as h
from dmftc.scaling import analyze

simulate = pytest.importorskip("dmftc.simulate")
if not hasattr(simulate, "measure_one_step"):
    pytest.skip("dmftc.simulate.measure_one_step does not exist yet", allow_module_level=True)

WIDTHS = (64, 128, 256, 512, 1024)


def per_seed(spec, sizes, seeds):
    """quantity -> (seeds,) values, from measure_one_step_seeds or per-seed measure_one_step."""
    if hasattr(simulate, "measure_one_step_seeds"):
        return simulate.measure_one_step_seeds(spec, sizes, seeds)
    runs = [simulate.measure_one_step(spec, sizes, 1, seed) for seed in range(seeds)]
    return {k: np.array([r[k] for r in runs]) for k in runs[0]}


def loglog_slope(sizes, values) -> tuple[float, float]:
    """Slope of log(seed mean) on log(size) and its standard error (see the module doc)."""
    x = np.log(np.asarray(sizes, float))
    means = np.array([v.mean() for v in values])
    rel = np.array([v.std(ddof=1) / np.sqrt(v.size) for v in values]) / means
    (slope, _), cov_w = np.polyfit(x, np.log(means), 1, w=1 / np.maximum(rel, 1e-12), cov="unscaled")
    _, cov_r = np.polyfit(x, np.log(means), 1, cov=True)
    return float(slope), float(np.sqrt(max(cov_w[0, 0], cov_r[0, 0])))


def assert_measured(spec, widths, seeds=8, symbol="N"):
    scaling = analyze(spec)
    runs = [per_seed(spec, {symbol: n}, seeds) for n in widths]
    compared, wrong = 0, []
    for name in sorted(set(runs[0]) & set(scaling.exponents)):
        predicted = scaling.exponents[name][symbol]
        values = [np.asarray(r[name], float) for r in runs]
        if predicted == float("-inf") or min(v.mean() for v in values) <= 0:
            continue
        slope, se = loglog_slope(widths, values)
        compared += 1
        if abs(slope - float(predicted)) > 4 * max(se, 0.01):
            wrong.append(f"{name}: measured {slope:+.3f} +- {se:.3f}, predicted {float(predicted):+.3f}")
    assert compared >= 10, f"only {compared} quantities compared"
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("spec", [mlp("mup", L_=2), mlp("ntk", L_=2), with_lr(mlp("sp", L_=2), h("eta") / N),
                                  mlp("mup", act="tanh", L_=2)], ids=["mup", "ntk", "sp_lr_over_N", "mup_tanh"])
def test_mlp_one_step_exponents(spec):
    assert_measured(spec, WIDTHS)


@pytest.mark.slow
def test_transformer_one_step_exponents():
    assert_measured(transformer(1.0), (8, 16, 32, 64, 128))


@pytest.mark.slow
def test_alpha_A_half_logit_change_grows_with_N():
    """Predicted dlogit ~ N^1/2 after one step for alpha_A = 1/2: a coherent part that grows
    behind an O(1) random part, so at moderate N the slope is still rising toward 1/2."""
    spec = transformer(0.5, H_=1, L_=1)
    assert analyze(spec).exponent("dlogit:attn0") == 0.5
    widths = (256, 512, 1024, 2048)
    values = [np.asarray(per_seed(spec, {"N": n}, 6)["dlogit:attn0"], float) for n in widths]
    slope, se = loglog_slope(widths, values)
    assert slope > 4 * se and slope < 0.5 + 4 * se, (slope, se)
