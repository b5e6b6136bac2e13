"""Distances between a DMFT prediction and an ensemble of finite networks.

A network of size n deviates from the DMFT by O(n^-1/2) (random, one network)
and the average over initializations is biased by O(n^-1) (THEORY.md section 6).
With S seeds the seed mean carries noise of order sigma / sqrt(S n), which at
large n hides the bias: the naive distance |mean - dmft| then falls like
n^-1/2 whatever the bias does. So the bias is measured by the U-statistic

    U = 1/(S(S-1)) sum_{s != t} <X_s - r, X_t - r>_w,

an unbiased estimate of ||E X - r||_w^2 (the squared distance of the seed mean
minus tr(Cov)/S), and the fluctuation by the RMS deviation of single networks
from the seed mean. A Monte Carlo DMFT is itself a noisy estimate, like a network
as wide as its number of draws; given K independent solves R_k it enters as a
second sample, and the two-sample U-statistic

    U2 = U(X) + U(R) - 2 <mean X - c, mean R - c>_w   (any constant c)

is unbiased for ||E X - E R||_w^2 whatever the covariance of either sample,
with its variance the sum of the jackknives over seeds and over solves. Every norm is a weighted root-mean-square over entries
(time, samples, ...), so numbers are comparable across quantities. Standard
errors come from the jackknife over seeds; whether a bias is resolved from
zero at all is a separate F test against the noise (see `Distance.p_zero`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dmftc.errors import DmftcError

# A bias is "resolved" when zero bias would give so large a seed-mean distance with
# probability below that of a 2-sigma one-sided Gaussian excursion.
RESOLVED_SIGMA = 2.0
RESOLVED_P = 0.022750131948179195  # = scipy.stats.norm.sf(2.0)


@dataclass(frozen=True)
class Distance:
    """How far a finite-size ensemble is from the DMFT, with standard errors.

    Attributes
    ----------
    bias : float
        Sign-aware square root of `bias_sq`: an estimate of ||E finite - ref||
        (weighted RMS over entries). Negative when `bias_sq` is.
    bias_se : float
        Standard error of `bias` (delta method, kept finite near zero).
    bias_sq : float
        Unbiased estimate of ||E finite - ref||^2; can be negative by noise.
    bias_sq_se : float
        Its standard error (jackknife over seeds, plus the DMFT's own error).
    p_zero : float
        Probability that zero bias gives a seed-mean distance `naive` at least
        as large as observed (an F test with Satterthwaite's degrees of
        freedom; the effective number of independent entries is estimated
        from the seeds).
        The bias is resolved when p_zero < 0.0228 (a 2-sigma one-sided test).
        Testing bias_sq against `bias_sq_se` instead would be too strict:
        that error grows with the bias itself, as 2 |b| times the noise of
        the mean.
    fluct : float
        RMS deviation of a single network from the seed mean, sqrt(tr_w Cov).
    fluct_se : float
        Standard error of `fluct` (jackknife over seeds, never below its
        Gaussian value).
    naive : float
        RMS of (seed mean - ref); contains the noise `noise`.
    noise : float
        Standard error of the seed mean, sqrt(tr_w Cov / S): what `naive`
        would be with no bias at all.
    reference_floor : float
        RMS standard error of the DMFT itself (0 when not given).
    reference_share : float
        Fraction of Var(bias_sq) that comes from the DMFT's error; above 1/2
        the DMFT's Monte Carlo error, not the seeds, limits the distance.
    n_seeds : int
        Number of finite networks S.
    n_reference_runs : int
        Number K of independent DMFT solves the reference was built from
        (0 when it was given as one array, with or without standard errors).
    """

    bias: float
    bias_se: float
    bias_sq: float
    bias_sq_se: float
    p_zero: float
    fluct: float
    fluct_se: float
    naive: float
    noise: float
    reference_floor: float
    reference_share: float
    n_seeds: int
    n_reference_runs: int = 0

    @property
    def resolved(self) -> bool:
        """Whether the bias is distinguishable from zero at the 2-sigma level (p_zero < 0.0228)."""
        return bool(self.p_zero < RESOLVED_P)

    @property
    def bias_upper(self) -> float:
        """A one-sided ~97.7% upper bound on the bias, sqrt(max(bias_sq, 0) + 2 se)."""
        return float(np.sqrt(max(self.bias_sq, 0.0) + RESOLVED_SIGMA * self.bias_sq_se))

    @property
    def reference_limited(self) -> bool:
        """Whether the DMFT's own error dominates the uncertainty of the bias."""
        return bool(self.reference_share > 0.5)


def distance(finite, reference, *, reference_se=None, reference_runs=None, weights=None,
             what="finite ensemble") -> Distance:
    """Bias and fluctuation of a finite-network ensemble around a reference.

    Parameters
    ----------
    finite : array_like, shape (S, ...)
        One row per seed; the trailing shape equals `reference.shape`.
    reference : array_like, shape (...)
        The DMFT prediction (deterministic curve, kernel, ...). With
        `reference_runs` it only fixes the shape; the runs' mean is used.
    reference_se : array_like, optional
        Standard error of `reference` (Monte Carlo error of the solver),
        broadcastable to its shape. Its expected square is subtracted from
        `bias_sq` and its variance added to `bias_sq_se`; since one set of
        draws produces every entry, errors are taken fully correlated
        (Cauchy-Schwarz bound), which is conservative.
    reference_runs : array_like, shape (K, ...), optional
        K >= 4 independent DMFT solves (different Monte Carlo seeds), in
        place of `reference_se`. Then `bias_sq` is the two-sample
        U-statistic, unbiased for ||E finite - E run||_w^2 whatever the runs'
        covariance, and `bias_sq_se` the sum of the jackknives over seeds and
        over runs: the DMFT's error enters with its actual correlations
        across entries instead of a bound.
    weights : array_like, optional
        Non-negative weights broadcastable to `reference.shape`; normalised to
        sum to one. Default: equal weights (plain RMS over entries).
    what : str
        Name used in error messages, e.g. "'loss' at N=256".

    Returns
    -------
    Distance
    """
    if reference_runs is not None:
        return _distance_two_sample(finite, reference, reference_runs, weights, what)
    x, r = _as_rows(finite, reference, what)
    w = _weights(weights, np.shape(reference), what)
    d = x - r
    tr_cov_sq = _tr_cov_sq(d, w)
    ref_sq, var_ref = _reference_terms(reference_se, d.mean(axis=0), w, np.shape(reference), what)
    s = d.shape[0]
    # zero bias: naive^2 has mean tr/S + E||eps||^2; ||eps||^2 fully correlated across entries
    noise = (tr_cov_sq / s**2 + ref_sq**2, 2.0 * tr_cov_sq / (s**2 * (s - 1)))
    return Distance(**_bias_fields(d, w, ref_sq, var_ref, noise), **_fluct_fields(d, w, tr_cov_sq),
                    n_seeds=int(s))


def _distance_two_sample(finite, reference, runs, weights, what: str) -> Distance:
    """`distance` with the reference given as K independent DMFT solves (see `_runs_terms`)."""
    x, _ = _as_rows(finite, reference, what)
    e = _as_runs(runs, np.shape(reference), what)
    w = _weights(weights, np.shape(reference), what)
    # centre on the runs' mean: then mean(e) = 0 and U(R) = -sum ||e_k||^2 / (K (K-1))
    c = e.mean(axis=0)
    d, e = x - c, e - c
    tr_cov_sq = _tr_cov_sq(d, w)
    ref_sq, var_ref, noise = _runs_terms(d, e, w, tr_cov_sq)
    return Distance(**_bias_fields(d, w, ref_sq, var_ref, noise), **_fluct_fields(d, w, tr_cov_sq),
                    n_seeds=int(d.shape[0]), n_reference_runs=int(e.shape[0]))


def seed_mean_se(finite) -> tuple[np.ndarray, np.ndarray]:
    """Seed mean and its standard error, entry by entry.

    Parameters
    ----------
    finite : array_like, shape (S, ...)

    Returns
    -------
    mean, se : ndarray, shape (...)
        Mean over seeds and std(ddof=1) / sqrt(S).
    """
    x = np.asarray(finite, dtype=float)
    s = x.shape[0]
    return x.mean(axis=0), x.std(axis=0, ddof=1) / np.sqrt(s)


def _bias_fields(d: np.ndarray, w: np.ndarray, ref_sq: float, var_ref: float,
                 noise: tuple[float, float]) -> dict:
    """bias, bias_sq and their errors, p_zero, naive, and the DMFT's share of the error.

    `ref_sq` is the estimate of E||eps||_w^2 (the reference's own noise) subtracted from the
    seeds' U-statistic, `var_ref` the variance the reference adds, `noise` the pair
    (sum of squared noise scales, variance of the estimated noise level) for `_p_zero`.
    """
    s, naive_sq = d.shape[0], float(_wnorm2(d.mean(axis=0), w))
    u, var_u = _u_statistic(d, w)
    bias_sq, var_b = u - ref_sq, var_u + var_ref
    return dict(
        bias=_signed_sqrt(bias_sq), bias_se=_sqrt_se(bias_sq, np.sqrt(var_b)),
        bias_sq=float(bias_sq), bias_sq_se=float(np.sqrt(var_b)),
        p_zero=_p_zero(naive_sq, _trace_cov(d, w)[0] / s + ref_sq, *noise), naive=float(np.sqrt(naive_sq)),
        reference_floor=float(np.sqrt(max(ref_sq, 0.0))),
        reference_share=float(var_ref / var_b) if var_b > 0 else 0.0,
    )


def _fluct_fields(d: np.ndarray, w: np.ndarray, tr_cov_sq: float) -> dict:
    """fluct = sqrt(tr_w Cov), its error, and the noise of the seed mean sqrt(tr_w Cov / S)."""
    s = d.shape[0]
    fluct_sq, var_v = _trace_cov(d, w)
    # The jackknife of a variance is itself noisy at few seeds and few effective entries
    # (it made 3-sigma rate tests fail several times too often); never go below the
    # Gaussian value Var(tr_w Cov) = 2 tr((W Sigma)^2) / (S - 1).
    var_v = max(var_v, 2.0 * tr_cov_sq / (s - 1))
    fluct_sq = max(fluct_sq, 0.0)
    return dict(fluct=float(np.sqrt(fluct_sq)), fluct_se=_sqrt_se(fluct_sq, np.sqrt(var_v)),
                noise=float(np.sqrt(fluct_sq / s)))


def _as_rows(finite, reference, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate shapes and values; flatten to (S, M) rows and an (M,) reference."""
    x = np.asarray(finite, dtype=float)
    r = np.asarray(reference, dtype=float)
    if x.ndim != r.ndim + 1 or x.shape[1:] != r.shape:
        raise DmftcError(
            f"{what}: finite shape {x.shape} does not match the DMFT shape {r.shape}; "
            f"expected (seeds, {', '.join(map(str, r.shape))}). "
            "Check that the simulation and the solve ran the same number of steps and samples."
        )
    if x.shape[0] < 4:
        raise DmftcError(f"{what}: {x.shape[0]} seeds are too few for standard errors; use at least 4 (8 or more is better).")
    _require_finite(x, what, "finite networks", per_seed=True)
    _require_finite(r, what, "DMFT", per_seed=False)
    return x.reshape(x.shape[0], -1), r.reshape(-1)


def _require_finite(a: np.ndarray, what: str, whose: str, *, per_seed: bool) -> None:
    """Raise if `a` holds NaN or inf, naming the seeds that diverged."""
    if np.all(np.isfinite(a)):
        return
    if per_seed:
        bad = np.flatnonzero(~np.all(np.isfinite(a.reshape(a.shape[0], -1)), axis=1))
        where = f"at seeds {bad.tolist()}"
    else:
        where = f"at {int(np.sum(~np.isfinite(a)))} entries"
    fix = "lower the learning rate or the number of steps" if per_seed else "the solve failed; see solution.json"
    raise DmftcError(f"{what}: the {whose} hold NaN or inf {where}; {fix}.")


def _weights(weights, shape: tuple[int, ...], what: str) -> np.ndarray:
    """Flattened weights normalised to sum one (equal weights by default)."""
    m = int(np.prod(shape, dtype=int))
    if weights is None:
        return np.full(m, 1.0 / m)
    w = np.broadcast_to(np.asarray(weights, dtype=float), shape).reshape(-1)
    if not np.all(np.isfinite(w)) or np.any(w < 0) or not np.any(w > 0):
        raise DmftcError(f"{what}: weights must be finite, non-negative and not all zero.")
    return w / w.sum()


def _wnorm2(v: np.ndarray, w: np.ndarray) -> float:
    """Weighted squared norm sum_i w_i v_i^2 (over the last axis)."""
    return np.sum(w * v * v, axis=-1)


def _u_statistic(d: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """U-statistic over seed pairs for ||E d||_w^2 and its jackknife variance."""
    total, sq = d.sum(axis=0), _wnorm2(d, w)

    def u(t, q, s):
        return (_wnorm2(t, w) - q) / (s * (s - 1))

    s = d.shape[0]
    full = u(total, sq.sum(), s)
    loo = u(total[None, :] - d, sq.sum() - sq, s - 1)
    return float(full), _jackknife_var(loo)


def _p_zero(naive_sq: float, mean: float, var_scale: float, mean_var: float) -> float:
    """P(naive^2 >= observed | zero bias), by an F test with Satterthwaite's degrees of freedom.

    Under zero bias naive^2 (the squared distance of the two means) has mean
    `mean` = tr(W Sigma) / S + E||eps||^2 and variance 2 `var_scale`, with
    `var_scale` = tr((W Sigma)^2) / S^2 plus the reference's share;
    `mean` is itself estimated, with variance `mean_var`. Matching each to
    a scaled chi-square gives F(h1, h2). h1 is the effective number of
    independent entries: about 1 for a loss curve whose fluctuations are
    one shared shift, many for outputs with independent noise; a Gaussian
    threshold would be far too lenient at h1 ~ 1, and a chi-square one at
    few seeds (where the mean is itself uncertain).
    """
    from scipy.special import chdtrc, fdtrc

    if not var_scale > 0 or not mean > 0:
        return 0.0 if naive_sq > mean else 1.0
    h1 = mean**2 / var_scale
    if not mean_var > 0:  # a known noise level: chi-square
        return float(chdtrc(h1, h1 * naive_sq / mean))
    return float(fdtrc(h1, 2.0 * mean**2 / mean_var, naive_sq / mean))


def _tr_cov_sq(d: np.ndarray, w: np.ndarray) -> float:
    """tr((W Sigma)^2) without bias, for any distribution (needs 4 seeds).

    The U-statistic of the kernel <x_a - x_b, x_c - x_d>_w^2 / 4 over distinct
    seeds a, b, c, d (each difference is (0, 2 Sigma) whatever the mean), in
    the O(S^2) form of Himeno & Yamada (2014), from the centred Gram matrix K:
    (S-1) / (S (S-2) (S-3)) [(S-1)(S-2) tr(Sigma^2) + tr(Sigma)^2 - S Q], with
    the sample covariance Sigma = K / (S-1) and Q = sum_a K_aa^2 / (S-1).
    It is an average of squares, hence never negative.
    """
    s = d.shape[0]
    c = d - d.mean(axis=0)
    k = (c * w) @ c.T
    tr_sq, tr, q = np.sum(k**2) / (s - 1) ** 2, np.trace(k) / (s - 1), np.sum(np.diag(k) ** 2) / (s - 1)
    return float(max((s - 1) / (s * (s - 2) * (s - 3)) * ((s - 1) * (s - 2) * tr_sq + tr**2 - s * q), 0.0))


def _trace_cov(d: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """Unbiased tr_w(Cov) over seeds and its jackknife variance."""
    total, sq = d.sum(axis=0), _wnorm2(d, w)

    def v(t, q, s):
        return (q - _wnorm2(t, w) / s) / (s - 1)

    s = d.shape[0]
    full = v(total, sq.sum(), s)
    loo = v(total[None, :] - d, sq.sum() - sq, s - 1)
    return float(full), _jackknife_var(loo)


def _jackknife_var(loo: np.ndarray) -> float:
    """Jackknife variance from leave-one-out estimates: (S-1)/S sum (theta_-s - mean)^2."""
    s = loo.shape[0]
    return float((s - 1) / s * np.sum((loo - loo.mean()) ** 2))


def _reference_terms(reference_se, mean_dev: np.ndarray, w: np.ndarray, shape, what: str) -> tuple[float, float]:
    """E||eps||_w^2 and the variance that the DMFT's error eps adds to bias_sq.

    With r = r* + eps, ||m - r||^2 = ||m - r*||^2 - 2<m - r*, eps> + ||eps||^2.
    The errors of one solve are correlated across entries, so both variances
    use the fully correlated bound: Var <b, eps>_w <= (sum w |b| e)^2 and
    Var ||eps||_w^2 <= 2 (sum w e^2)^2.
    """
    if reference_se is None:
        return 0.0, 0.0
    e = np.broadcast_to(np.asarray(reference_se, dtype=float), shape).reshape(-1)
    if not np.all(np.isfinite(e)) or np.any(e < 0):
        raise DmftcError(f"{what}: the DMFT standard errors must be finite and non-negative.")
    floor_sq = float(np.sum(w * e * e))
    var = 4.0 * float(np.sum(w * np.abs(mean_dev) * e)) ** 2 + 2.0 * floor_sq**2
    return floor_sq, var


def _as_runs(runs, shape: tuple[int, ...], what: str) -> np.ndarray:
    """Validate K >= 4 DMFT runs of the reference's shape; flatten to (K, M)."""
    e = np.asarray(runs, dtype=float)
    if e.ndim != len(shape) + 1 or e.shape[1:] != tuple(shape):
        raise DmftcError(f"{what}: DMFT runs of shape {e.shape} do not match the DMFT shape {tuple(shape)}; "
                         f"expected (runs, {', '.join(map(str, shape))}).")
    if e.shape[0] < 4:
        raise DmftcError(f"{what}: {e.shape[0]} DMFT runs are too few for the reference's own error; "
                         "use at least 4 (8 or more is better), or give reference_se instead.")
    _require_finite(e, what, "DMFT", per_seed=False)
    return e.reshape(e.shape[0], -1)


def _runs_terms(d: np.ndarray, e: np.ndarray, w: np.ndarray, tr_cov_sq: float):
    """The reference's part of the two-sample U-statistic, from K runs centred on their mean.

    With c = mean R (so mean e = 0), U2 = U(d) - ref_sq with ref_sq = sum_k ||e_k||^2 / (K (K-1)),
    an unbiased estimate of tr(W Sigma_R) / K = E||mean R - E R||^2. Deleting run k (c held fixed)
    gives U2_-k = U(d) + (2 q_k - Q) / ((K-1)(K-2)) + 2 <mean d, e_k> / (K-1), q_k = ||e_k||^2,
    Q = sum q_k, whose jackknife is the reference's variance. Returns (ref_sq, var_ref, noise) with
    noise as `_p_zero` takes it; the cross term tr(W Sigma W Sigma_R) is bounded by Cauchy-Schwarz.
    """
    k = e.shape[0]
    q = _wnorm2(e, w)
    ref_sq = float(q.sum() / (k * (k - 1)))
    loo = (2.0 * q - q.sum()) / ((k - 1) * (k - 2)) + 2.0 * (e @ (w * d.mean(axis=0))) / (k - 1)
    s, tr_sq_r = d.shape[0], _tr_cov_sq(e, w)
    var_scale = (np.sqrt(tr_cov_sq) / s + np.sqrt(tr_sq_r) / k) ** 2
    mean_var = 2.0 * tr_cov_sq / (s**2 * (s - 1)) + 2.0 * tr_sq_r / (k**2 * (k - 1))
    return ref_sq, _jackknife_var(loo), (float(var_scale), float(mean_var))


def _signed_sqrt(x: float) -> float:
    """sign(x) sqrt(|x|)."""
    return float(np.sign(x) * np.sqrt(abs(x)))


def _sqrt_se(x: float, se: float) -> float:
    """Standard error of sqrt(|x|) by the delta method, se / (2 sqrt|x|).

    Near zero the delta method diverges; |x| is floored at `se` there, which
    gives the honest scale sqrt(se) / 2 of an unresolved distance.
    """
    scale = max(abs(x), se)
    return float(se / (2.0 * np.sqrt(scale))) if scale > 0 else 0.0
