"""The error analysis's estimators (dmftc.accuracy) on a model solve whose bias and noise are known.

The model: X_m = X + a / m + c / m^2 + (mean over the m draws of psi), psi ~ N(0, s^2) per draw, the
draws of a batch fixed by its key, so the three levels share draws as the real solver's do.
"""

import math

import numpy as np
import pytest

from dmftc import accuracy
from dmftc.errors import DmftcError

X, A, C, S = 1.0, 3.0, 40.0, 2.0


def model(seed: int):
    def run(m: int, part):
        first, stop, of = part
        per = m // (stop - first)
        psi = np.concatenate([np.random.default_rng([seed, b]).normal(0, S, per) for b in range(first, stop)])
        val = X + A / m + C / m**2 + psi.mean()
        return {"loss": np.array([val, 2 * val]), "logits1": np.zeros((2, 3, 1, 1)) + seed}
    return run


def test_bias_removed_and_se_honest():
    M, K, R = 512, 8, 400
    ests = [accuracy.estimate(model(s), M, K) for s in range(R)]
    vals = np.array([e.value["loss"][0] for e in ests])
    fulls = np.array([e.full["loss"][0] for e in ests])
    se = np.sqrt(np.mean([e.se["loss"][0] ** 2 for e in ests]))
    # the plain solve is biased by a / M + c / M^2; the corrected value by -2 c / M^2 only
    assert abs(fulls.mean() - X - A / M - C / M**2) < 4 * fulls.std() / math.sqrt(R)
    assert abs(vals.mean() - X + 2 * C / M**2) < 4 * vals.std() / math.sqrt(R)
    # the reported bias is a / M + 3 c / M^2 with no first-order noise, the residual -2 c / M^2
    bias = np.array([e.bias["loss"][0] for e in ests])
    assert np.allclose(bias, A / M + 3 * C / M**2, rtol=1e-9)
    assert np.allclose([e.residual["loss"][0] for e in ests], -2 * C / M**2, rtol=1e-6)
    # the standard error matches the spread of the values (S / sqrt(M)) within its own 10 % error
    assert abs(se / vals.std(ddof=1) - 1) < 0.1 and abs(se * math.sqrt(M) / S - 1) < 0.1


def test_samples_and_batches_are_checked():
    assert accuracy.batch_samples(1000, 8) == 1008
    with pytest.raises(DmftcError, match="even number of batches"):
        accuracy.estimate(model(0), 64, 5)
    with pytest.raises(ValueError, match="multiple of"):
        accuracy.estimate(model(0), 100, 8)


def test_sample_arrays_pass_through_without_error_bars():
    e = accuracy.estimate(model(3), 64, 4)
    assert np.all(e.value["logits1"] == 3) and np.all(np.isnan(e.se["logits1"]))
    runs = e.runs()
    assert sum(r["logits1"].shape[1] for r in runs) == 3  # each head once over the runs
    assert len(runs) == 4 and np.allclose(np.mean([r["loss"] for r in runs], 0), e.value["loss"])
    assert np.allclose(np.std([r["loss"] for r in runs], 0, ddof=1) / 2, e.se["loss"])


def test_accuracy_grows_draws_to_the_target():
    calls = []

    def run_estimate(m, replica):
        calls.append(m)
        return accuracy.estimate(model(len(calls)), m, 8)

    est, acc = accuracy.solve_to_accuracy(run_estimate, 64, 8, rtol=None, atol=0.02, fits=lambda m: None)
    assert acc.met and acc.error <= 0.02 and est.samples == calls[-1]
    # the second entry's se = 2 S / sqrt(M) <= 0.02 needs M >= 4e4 (5.5e4 at the aim 0.85 x target):
    # rounds of at most 8x, not doublings, and no far overshoot (the se has 7 degrees of freedom)
    assert all(b <= 8 * a for a, b in zip(calls, calls[1:])) and len(calls) <= 6
    assert 40_000 <= est.samples < 3 * 55_000


def fits_below(cap):
    def fits(m):
        if m > cap:
            raise DmftcError(f"{m} draws need more memory than this machine has")
    return fits


def test_past_the_memory_the_draws_go_into_replicas():
    seen = []

    def run_estimate(m, replica):
        seen.append((m, replica))
        return accuracy.estimate(model(100 * len(seen) + replica), m, 8)

    est, acc = accuracy.solve_to_accuracy(run_estimate, 64, 8, rtol=None, atol=0.03, fits=fits_below(2000))
    assert acc.met and est.replicas > 1 and est.samples <= 2000
    assert {r for m, r in seen} == set(range(est.replicas)) and len(est.parts) == 8 * est.replicas
    one, two = accuracy.estimate(model(7), 1024, 8), accuracy.estimate(model(8), 1024, 8)
    both = accuracy.combine([one, two])
    np.testing.assert_allclose(both.se["loss"], np.hypot(one.se["loss"], two.se["loss"]) / 2)
    np.testing.assert_allclose(both.value["loss"], (one.value["loss"] + two.value["loss"]) / 2)


def test_accuracy_refuses_what_does_not_fit():
    # the residual bias at the largest M that fits is above the target: replicas cannot help
    with pytest.raises(DmftcError, match="holds at most .* residual bias .* above the target"):
        accuracy.solve_to_accuracy(lambda m, r: accuracy.estimate(model(1), m, 8), 64, 8, rtol=None, atol=1e-6,
                                   fits=fits_below(1000))
    with pytest.raises(DmftcError, match="rtol > 0 or atol > 0"):
        accuracy.solve_to_accuracy(lambda m, r: None, 64, 8, rtol=0, atol=None, fits=lambda m: None)
