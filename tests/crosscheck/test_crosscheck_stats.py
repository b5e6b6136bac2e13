"""Distances: the U-statistic, its jackknife error, the DMFT's own error, and input checks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dmftc.crosscheck import distance, seed_mean_se
from dmftc.errors import DmftcError


def _pairs_u(x, r, w):
    """The U-statistic by brute force over ordered seed pairs s != t."""
    d = x.reshape(len(x), -1) - r.reshape(-1)
    w = np.broadcast_to(w, r.shape).reshape(-1)
    pairs = [np.sum(w * d[s] * d[t]) for s, t in itertools.permutations(range(len(x)), 2)]
    return float(np.mean(pairs))


def test_bias_sq_is_the_pair_u_statistic_and_naive_splits_into_bias_and_noise():
    rng = np.random.default_rng(0)
    x, r = rng.normal(0.3, 1.0, (7, 5, 3)), rng.normal(size=(5, 3))
    w = rng.uniform(0.1, 1.0, (5, 3))
    d = distance(x, r, weights=w)
    assert d.bias_sq == pytest.approx(_pairs_u(x, r, w / w.sum()), rel=1e-12)
    # Exact identity: |mean - ref|^2 = U + tr(Cov) / S.
    assert d.naive**2 == pytest.approx(d.bias_sq + d.noise**2, rel=1e-12)
    assert d.fluct**2 == pytest.approx(np.sum(w / w.sum() * x.var(axis=0, ddof=1)), rel=1e-12)


def test_jackknife_error_matches_leave_one_out_by_brute_force():
    rng = np.random.default_rng(1)
    x, r = rng.normal(0.5, 1.0, (9, 4)), np.zeros(4)
    w = np.full(4, 0.25)
    loo = np.array([_pairs_u(np.delete(x, s, axis=0), r, w) for s in range(9)])
    expected = np.sqrt(8 / 9 * np.sum((loo - loo.mean()) ** 2))
    assert distance(x, r).bias_sq_se == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("c", [0.0, 20.0])
def test_bias_sq_is_unbiased_and_its_error_calibrated(c, synthetic):
    """Over replicates: mean of bias_sq equals the true ||bias||^2 within its own standard error;
    the jackknife error is never optimistic (it is conservative at zero bias, Efron-Stein)."""
    rng = np.random.default_rng(2)
    ref, n, reps = synthetic.reference(), 512, 300
    true_bias = synthetic.ensemble(rng, n, 2, c=c, sigma=0.0)["f"][0] - ref["f"]
    est = [distance(synthetic.ensemble(rng, n, 16, c=c)["f"], ref["f"]) for _ in range(reps)]
    u = np.array([d.bias_sq for d in est])
    se = np.array([d.bias_sq_se for d in est])
    assert abs(u.mean() - np.mean(true_bias**2)) < 4 * u.std() / np.sqrt(reps)
    ratio = np.sqrt(np.mean(se**2)) / u.std()
    assert 1 - 4 / np.sqrt(2 * reps) < ratio < 2.0


def test_fluctuation_has_the_ensemble_rms_and_a_calibrated_error(synthetic):
    rng = np.random.default_rng(3)
    ref, n, reps = synthetic.reference(), 256, 300
    est = [distance(synthetic.ensemble(rng, n, 16)["f"], ref["f"]) for _ in range(reps)]
    fl = np.array([d.fluct for d in est])
    se = np.array([d.fluct_se for d in est])
    assert abs(fl.mean() - 1 / np.sqrt(n)) < 4 * fl.std() / np.sqrt(reps) + 0.01 / np.sqrt(n)  # sqrt bias O(1/S)
    assert np.sqrt(np.mean(se**2)) / fl.std() == pytest.approx(1.0, abs=4 / np.sqrt(2 * reps))


def test_reference_error_is_subtracted_and_flagged_when_it_dominates():
    rng = np.random.default_rng(4)
    x = rng.normal(0.0, 0.01, (32, 40))
    noisy = distance(x, np.zeros(40), reference_se=0.05)
    assert noisy.reference_floor == pytest.approx(0.05)
    assert noisy.bias_sq == pytest.approx(distance(x, np.zeros(40)).bias_sq - 0.05**2)
    assert noisy.reference_limited and not noisy.resolved
    assert not distance(x, np.zeros(40), reference_se=1e-6).reference_limited


def test_unresolved_bias_reports_an_upper_bound_and_a_finite_error():
    rng = np.random.default_rng(5)
    d = distance(rng.normal(size=(16, 30)), np.zeros(30))
    assert not d.resolved
    assert d.bias_upper >= max(d.bias, 0.0) and np.isfinite(d.bias_se) and d.bias_se > 0


def test_scalar_quantities_work():
    d = distance(np.array([1.0, 1.2, 0.9, 1.1, 1.05]), np.array(1.0))
    assert d.n_seeds == 5 and d.fluct > 0


def test_seed_mean_se():
    mean, se = seed_mean_se(np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))
    assert mean.tolist() == [3.0, 4.0] and se == pytest.approx([2 / np.sqrt(3)] * 2)


def test_shape_mismatch_names_the_quantity_and_the_fix():
    with pytest.raises(DmftcError) as err:
        distance(np.zeros((8, 50)), np.zeros(51), what="'loss' at N=256")
    assert str(err.value) == (
        "'loss' at N=256: finite shape (8, 50) does not match the DMFT shape (51,); expected (seeds, 51). "
        "Check that the simulation and the solve ran the same number of steps and samples.")


def test_too_few_seeds_and_diverged_seeds_are_errors():
    with pytest.raises(DmftcError, match="3 seeds are too few for standard errors; use at least 4"):
        distance(np.zeros((3, 5)), np.zeros(5))
    x = np.zeros((4, 5))
    x[1, 3], x[3, 0] = np.nan, np.inf
    with pytest.raises(DmftcError, match=r"NaN or inf at seeds \[1, 3\]; lower the learning rate"):
        distance(x, np.zeros(5))
    with pytest.raises(DmftcError, match="weights must be finite, non-negative"):
        distance(np.zeros((4, 5)), np.zeros(5), weights=-np.ones(5))


_arrays = st.integers(4, 8).flatmap(lambda s: st.integers(1, 6).map(lambda m: (s, m)))


@settings(max_examples=40, deadline=None)
@given(shape=_arrays, seed=st.integers(0, 2**31 - 1), scale=st.floats(0.01, 100.0), shift=st.floats(-10, 10))
def test_distance_is_invariant_under_seed_order_and_shifts_and_scales_with_the_data(shape, seed, scale, shift):
    rng = np.random.default_rng(seed)
    x, r = rng.normal(size=shape), rng.normal(size=shape[1])
    base = distance(x, r)
    perm = distance(x[rng.permutation(shape[0])], r)
    moved = distance(scale * x + shift, scale * r + shift)
    assert perm.bias_sq == pytest.approx(base.bias_sq, rel=1e-9, abs=1e-12)
    assert perm.bias_sq_se == pytest.approx(base.bias_sq_se, rel=1e-9, abs=1e-12)
    assert moved.bias_sq == pytest.approx(scale**2 * base.bias_sq, rel=1e-6, abs=1e-9 * scale**2)
    assert moved.fluct == pytest.approx(scale * base.fluct, rel=1e-6)
    assert distance(x, r, weights=np.full(shape[1], 7.0)).bias_sq == pytest.approx(base.bias_sq, rel=1e-9, abs=1e-12)


def test_tr_cov_sq_is_the_distribution_free_quadruple_u_statistic():
    from dmftc.crosscheck.stats import _tr_cov_sq

    rng = np.random.default_rng(6)
    x = rng.exponential(size=(7, 3)) + rng.normal(size=(7, 3)) * [1.0, 2.0, 3.0]
    w = np.array([0.2, 0.3, 0.5])
    brute = np.mean([np.sum(w * (x[a] - x[b]) * (x[c] - x[d])) ** 2 / 4
                     for a, b, c, d in itertools.permutations(range(7), 4)])
    assert _tr_cov_sq(x, w) == pytest.approx(brute, rel=1e-10)


@pytest.mark.parametrize("quantity", ["loss", "f"])
def test_zero_bias_is_rarely_called_resolved(quantity, synthetic):
    """The 2-sigma test has a nominal false rate of 2.3%; the F approximation is a little liberal
    when the effective number of independent entries is ~1 (loss curves), so allow twice that
    plus four binomial standard errors."""
    rng = np.random.default_rng(7)
    ref, reps = synthetic.reference()[quantity], 1000
    hits = [distance(synthetic.ensemble(rng, 512, 16, c=0.0)[quantity], ref).resolved for _ in range(reps)]
    nominal = 0.0228
    assert np.mean(hits) < 2 * nominal + 4 * np.sqrt(2 * nominal / reps)


def test_a_clear_bias_is_resolved(synthetic):
    rng = np.random.default_rng(8)
    d = distance(synthetic.ensemble(rng, 2048, 32)["loss"], synthetic.reference()["loss"])
    assert d.resolved and d.p_zero < 1e-3


# ------------------------------------------------------------ the reference as K independent DMFT runs
def _runs(rng, k, ref, scale):
    """K noisy solves of `ref`: a shared random shape (errors of one solve correlate across entries,
    as one set of draws makes every entry) plus independent noise."""
    shape = np.cos(np.arange(ref.size) / 5).reshape(ref.shape)
    return ref + scale * (rng.standard_normal((k, 1)).reshape((k,) + (1,) * ref.ndim) * shape
                          + 0.5 * rng.standard_normal((k,) + ref.shape))


def _two_sample_u(x, runs, w):
    """||mean x - mean runs||^2 minus both means' noise, each trace unbiased (ddof = 1)."""
    x, e = x.reshape(len(x), -1), runs.reshape(len(runs), -1)
    m = x.mean(0) - e.mean(0)
    return float(np.sum(w * (m * m - x.var(0, ddof=1) / len(x) - e.var(0, ddof=1) / len(e))))


def test_with_runs_bias_sq_is_the_two_sample_u_statistic_and_its_jackknife_deletes_seeds_and_runs():
    rng = np.random.default_rng(10)
    ref = rng.normal(size=(6, 2))
    x, runs = ref + 0.2 + rng.normal(size=(9, 6, 2)), _runs(rng, 7, ref, 0.3)
    w = np.full(12, 1 / 12)
    d = distance(x, ref, reference_runs=runs)
    assert d.bias_sq == pytest.approx(_two_sample_u(x, runs, w), rel=1e-10)
    assert d.n_reference_runs == 7 and d.reference_floor**2 == pytest.approx(
        np.sum(w * runs.reshape(7, -1).var(0, ddof=1)) / 7, rel=1e-10)
    jack = lambda loo: (len(loo) - 1) / len(loo) * np.sum((loo - loo.mean()) ** 2)
    over_seeds = jack(np.array([_two_sample_u(np.delete(x, s, 0), runs, w) for s in range(9)]))
    over_runs = jack(np.array([_two_sample_u(x, np.delete(runs, k, 0), w) for k in range(7)]))
    assert d.bias_sq_se**2 == pytest.approx(over_seeds + over_runs, rel=1e-9)
    assert d.reference_share == pytest.approx(over_runs / (over_seeds + over_runs), rel=1e-9)


@pytest.mark.parametrize("c", [0.0, 20.0])
def test_with_runs_bias_sq_is_unbiased_and_its_error_calibrated(c, synthetic):
    """Over replicates, with a DMFT as noisy as the seeds' mean and correlated across entries: the
    estimate is unbiased and its standard error neither optimistic nor more than twice too large."""
    rng = np.random.default_rng(11)
    ref, n, reps = synthetic.reference()["f"], 512, 300
    true_bias = synthetic.ensemble(rng, n, 2, c=c, sigma=0.0)["f"][0] - ref
    est = [distance(synthetic.ensemble(rng, n, 16, c=c)["f"], ref, reference_runs=_runs(rng, 8, ref, 0.01))
           for _ in range(reps)]
    u, se = np.array([d.bias_sq for d in est]), np.array([d.bias_sq_se for d in est])
    assert abs(u.mean() - np.mean(true_bias**2)) < 4 * u.std() / np.sqrt(reps)
    assert 1 - 4 / np.sqrt(2 * reps) < np.sqrt(np.mean(se**2)) / u.std() < 2.0


def test_with_runs_zero_bias_is_rarely_called_resolved(synthetic):
    rng = np.random.default_rng(12)
    ref, reps = synthetic.reference()["f"], 600
    hits = [distance(synthetic.ensemble(rng, 512, 16, c=0.0)["f"], ref,
                     reference_runs=_runs(rng, 8, ref, 0.01)).resolved for _ in range(reps)]
    nominal = 0.0228
    assert np.mean(hits) < 2 * nominal + 4 * np.sqrt(2 * nominal / reps)


def test_runs_resolve_a_bias_that_the_fully_correlated_bound_hides():
    """A DMFT error of independent entries: the runs measure it, the bound from reference_se does not."""
    rng = np.random.default_rng(13)
    ref = np.zeros(400)
    x = 0.02 + rng.normal(0.0, 0.05, (64, 400))
    runs = ref + rng.normal(0.0, 0.05, (8, 400))
    by_runs = distance(x, runs.mean(0), reference_runs=runs)
    by_se = distance(x, runs.mean(0), reference_se=runs.std(0, ddof=1) / np.sqrt(8))
    assert by_runs.resolved and by_runs.bias == pytest.approx(0.02, rel=0.25)
    assert by_se.bias_sq_se > 3 * by_runs.bias_sq_se


def test_too_few_or_misshapen_runs_are_errors():
    with pytest.raises(DmftcError, match="3 DMFT runs are too few for the reference's own error; use at least 4"):
        distance(np.zeros((8, 5)), np.zeros(5), reference_runs=np.zeros((3, 5)))
    with pytest.raises(DmftcError, match=r"DMFT runs of shape \(4, 6\) do not match the DMFT shape \(5,\)"):
        distance(np.zeros((8, 5)), np.zeros(5), reference_runs=np.zeros((4, 6)))


# ------------------------------------------------------------ control variates (statistics of known mean zero)
def _controlled(rng, n, seeds, *, c, p=6, synthetic):
    """Outputs whose noise is mostly explained by p zero-mean statistics z (like f(0) and the kernels at
    initialization of a network): x = ref + c g / n + (z A + 0.3 eps) / sqrt(n)."""
    ref = synthetic.reference()["f"]
    z = rng.standard_normal((seeds, p))
    a = np.cos(np.arange(p)[:, None] * np.arange(ref.size)[None, :] / 9.0)
    base = synthetic.ensemble(rng, n, seeds, c=c, sigma=0.0)["f"]
    noise = (z @ a + 0.3 * rng.standard_normal((seeds, ref.size))).reshape(base.shape) / np.sqrt(n)
    return base + noise, z, ref


@pytest.mark.parametrize("c", [0.0, 20.0])
def test_with_controls_bias_sq_is_unbiased_its_error_calibrated_and_much_smaller(c, synthetic):
    rng = np.random.default_rng(14)
    n, reps = 512, 300
    true_bias = synthetic.ensemble(rng, n, 2, c=c, sigma=0.0)["f"][0] - synthetic.reference()["f"]
    est, plain = [], []
    for _ in range(reps):
        x, z, ref = _controlled(rng, n, 64, c=c, synthetic=synthetic)
        est.append(distance(x, ref, controls=z))
        plain.append(distance(x, ref))
    u, se = np.array([d.bias_sq for d in est]), np.array([d.bias_sq_se for d in est])
    assert abs(u.mean() - np.mean(true_bias**2)) < 4 * u.std() / np.sqrt(reps)
    assert 1 - 4 / np.sqrt(2 * reps) < np.sqrt(np.mean(se**2)) / u.std() < 2.0
    assert u.std() < np.std([d.bias_sq for d in plain]) / 3
    assert est[0].n_controls == 6 and est[0].fluct == pytest.approx(plain[0].fluct)


def test_with_controls_zero_bias_is_rarely_called_resolved(synthetic):
    rng = np.random.default_rng(15)
    reps = 600
    hits = []
    for _ in range(reps):
        x, z, ref = _controlled(rng, 512, 64, c=0.0, synthetic=synthetic)
        hits.append(distance(x, ref, controls=z).resolved)
    nominal = 0.0228
    assert np.mean(hits) < 2 * nominal + 4 * np.sqrt(2 * nominal / reps)


def test_controls_need_one_row_per_seed_and_enough_seeds():
    with pytest.raises(DmftcError, match=r"6 control variates need at least 28 seeds \(each half fits them"):
        distance(np.zeros((16, 5)), np.zeros(5), controls=np.zeros((16, 6)))
    with pytest.raises(DmftcError, match=r"controls of shape \(15, 2\) do not have one row per seed \(16\)"):
        distance(np.zeros((16, 5)), np.zeros(5), controls=np.zeros((15, 2)))
