"""Distances between a DMFT prediction and an ensemble of finite networks.

A network of size n deviates from the DMFT by O(n^-1/2) (random, one network)
and the average over initializations is biased by O(n^-1) (docs/theory.md#finite-size).
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
with its variance the sum of the jackknives over seeds and over solves.
Statistics of the networks whose mean is known to be exactly zero (control
variates: f(0), kernels at initialization minus their exact conditional
means) remove most of the seeds' noise: X_s - Z_s beta has the mean of X
whatever beta is, and fitting beta on the other half of the seeds keeps each
half's U-statistic unbiased. Every norm is a weighted root-mean-square over
entries (time, samples, ...), so numbers are comparable across quantities.
Standard errors come from the jackknife; whether a bias is resolved from zero
at all is a separate F test against the noise (see `Distance.p_zero`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dmftc.crosscheck.needs import DISTANCE_SEEDS
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
    n_controls : int
        Number of control variates the bias was adjusted with (0: none).
        With controls, `naive` and `noise` are those of the adjusted mean.
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
    n_controls: int = 0

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


def distance(finite, reference, *, reference_se=None, reference_runs=None, controls=None, weights=None,
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
    controls : array_like, shape (S, p), optional
        Control variates: per-seed statistics whose expectation is exactly
        zero (f(0) by the readout's sign symmetry, a kernel at
        initialization minus its exact conditional mean, ...). The bias is
        then measured on X_s - Z_s beta, beta fitted by least squares on the
        other half of the seeds (cross-fitting) and the U-statistic taken
        within each half, so it stays unbiased whatever beta is; its
        variance shrinks by the fraction of the seeds' variance that Z
        explains. `fluct` stays that of the networks themselves. Needs
        S >= 4 (p + 1).
    weights : array_like, optional
        Non-negative weights broadcastable to `reference.shape`; normalised to
        sum to one. Default: equal weights (plain RMS over entries).
    what : str
        Name used in error messages, e.g. "'loss' at N=256".

    Returns
    -------
    Distance
    """
    shape = np.shape(reference)
    x, r = _as_rows(finite, reference, what)
    w = _weights(weights, shape, what)
    e = None if reference_runs is None else _as_runs(reference_runs, shape, what)
    # centre on the runs' mean: then mean(e) = 0 and U(R) = -sum ||e_k||^2 / (K (K-1))
    c = r if e is None else e.mean(axis=0)
    d = x - c
    tr_cov_sq = _tr_cov_sq(d, w)
    z = None if controls is None else _as_controls(controls, d.shape[0], what)
    part = _seed_part(d, w, tr_cov_sq) if z is None else _controlled_part(d, z, w)
    ref = _runs_terms(part, e - c, w) if e is not None else _se_terms(reference_se, part, w, shape, what)
    return Distance(**_bias_fields(part, ref), **_fluct_fields(d, w, tr_cov_sq), n_seeds=int(d.shape[0]),
                    n_reference_runs=0 if e is None else int(e.shape[0]),
                    n_controls=0 if z is None else int(z.shape[1]))


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


@dataclass(frozen=True)
class _SeedPart:
    """The seeds' side of the bias: u unbiased for ||E d||_w^2 with variance var_u; naive_sq the
    squared distance whose mean under zero bias is noise_sq, with null variance 2 var_scale, and
    mean_var the variance of the estimate noise_sq; mean the (adjusted) mean of d."""

    u: float
    var_u: float
    naive_sq: float
    noise_sq: float
    var_scale: float
    mean_var: float
    mean: np.ndarray


@dataclass(frozen=True)
class _RefPart:
    """The reference's side: ref_sq the estimate of E||eps||_w^2 subtracted from u, var_ref the
    variance it adds, var_scale and mean_var its shares in the zero-bias test."""

    ref_sq: float
    var_ref: float
    var_scale: float
    mean_var: float


def _seed_part(d: np.ndarray, w: np.ndarray, tr_cov_sq: float) -> _SeedPart:
    """The pair U-statistic of i.i.d. rows d = x - reference."""
    s = d.shape[0]
    u, var_u = _u_statistic(d, w)
    m = d.mean(axis=0)
    return _SeedPart(u, var_u, float(_wnorm2(m, w)), _trace_cov(d, w)[0] / s, tr_cov_sq / s**2,
                     2.0 * tr_cov_sq / (s**2 * (s - 1)), m)


def _controlled_part(d: np.ndarray, z: np.ndarray, w: np.ndarray) -> _SeedPart:
    """`_seed_part` of d - z beta, cross-fitted over two halves of the seeds, averaged.

    Rows of one half, adjusted with the beta fitted on the other half, are i.i.d. given that beta
    and have the mean of d exactly (E z = 0): each half's U-statistic is unbiased. The halves
    share no rows, so their errors add as independent (their betas couple them only at
    O(p / S^2)).
    """
    halves = (np.arange(0, d.shape[0], 2), np.arange(1, d.shape[0], 2))
    parts = []
    for h, o in (halves, halves[::-1]):
        y = d[h] - z[h] @ _least_squares(z[o], d[o])
        parts.append(_seed_part(y, w, _tr_cov_sq(y, w)))
    a, b = parts
    return _SeedPart((a.u + b.u) / 2, (a.var_u + b.var_u) / 4, (a.naive_sq + b.naive_sq) / 2,
                     (a.noise_sq + b.noise_sq) / 2, (a.var_scale + b.var_scale) / 4,
                     (a.mean_var + b.mean_var) / 4, (a.mean + b.mean) / 2)


def _least_squares(z: np.ndarray, d: np.ndarray) -> np.ndarray:
    """beta (p, M) minimising ||(d - mean d) - (z - mean z) beta||^2 (the intercept is free)."""
    return np.linalg.lstsq(z - z.mean(axis=0), d - d.mean(axis=0), rcond=None)[0]


def _bias_fields(part: _SeedPart, ref: _RefPart) -> dict:
    """bias, bias_sq and their errors, p_zero, naive, noise, and the DMFT's share of the error."""
    bias_sq, var_b = part.u - ref.ref_sq, part.var_u + ref.var_ref
    # zero bias: the cross term of the two noises is bounded by Cauchy-Schwarz
    var_scale = (np.sqrt(part.var_scale) + np.sqrt(ref.var_scale)) ** 2
    p_zero = _p_zero(part.naive_sq, part.noise_sq + ref.ref_sq, var_scale, part.mean_var + ref.mean_var)
    return dict(
        bias=_signed_sqrt(bias_sq), bias_se=_sqrt_se(bias_sq, np.sqrt(var_b)),
        bias_sq=float(bias_sq), bias_sq_se=float(np.sqrt(var_b)), p_zero=p_zero,
        naive=float(np.sqrt(part.naive_sq)), noise=float(np.sqrt(max(part.noise_sq, 0.0))),
        reference_floor=float(np.sqrt(max(ref.ref_sq, 0.0))),
        reference_share=float(ref.var_ref / var_b) if var_b > 0 else 0.0,
    )


def _fluct_fields(d: np.ndarray, w: np.ndarray, tr_cov_sq: float) -> dict:
    """fluct = sqrt(tr_w Cov) of the networks themselves and its error."""
    s = d.shape[0]
    fluct_sq, var_v = _trace_cov(d, w)
    # The jackknife of a variance is itself noisy at few seeds and few effective entries
    # (it made 3-sigma rate tests fail several times too often); never go below the
    # Gaussian value Var(tr_w Cov) = 2 tr((W Sigma)^2) / (S - 1).
    var_v = max(var_v, 2.0 * tr_cov_sq / (s - 1))
    fluct_sq = max(fluct_sq, 0.0)
    return dict(fluct=float(np.sqrt(fluct_sq)), fluct_se=_sqrt_se(fluct_sq, np.sqrt(var_v)))


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
    if x.shape[0] < DISTANCE_SEEDS:
        raise DmftcError(f"{what}: {x.shape[0]} seeds are too few for standard errors; use at least {DISTANCE_SEEDS} "
                         "(8 or more is better).")
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


def _se_terms(reference_se, part: _SeedPart, w: np.ndarray, shape, what: str) -> _RefPart:
    """The reference's part from its standard errors e (zero when none are given).

    With r = r* + eps, ||m - r||^2 = ||m - r*||^2 - 2<m - r*, eps> + ||eps||^2.
    The errors of one solve are correlated across entries, so both variances
    use the fully correlated bound: Var <b, eps>_w <= (sum w |b| e)^2 and
    Var ||eps||_w^2 <= 2 (sum w e^2)^2.
    """
    if reference_se is None:
        return _RefPart(0.0, 0.0, 0.0, 0.0)
    e = np.broadcast_to(np.asarray(reference_se, dtype=float), shape).reshape(-1)
    if not np.all(np.isfinite(e)) or np.any(e < 0):
        raise DmftcError(f"{what}: the DMFT standard errors must be finite and non-negative.")
    floor_sq = float(np.sum(w * e * e))
    var = 4.0 * float(np.sum(w * np.abs(part.mean) * e)) ** 2 + 2.0 * floor_sq**2
    return _RefPart(floor_sq, var, floor_sq**2, 0.0)


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


def _runs_terms(part: _SeedPart, e: np.ndarray, w: np.ndarray) -> _RefPart:
    """The reference's part of the two-sample U-statistic, from K runs centred on their mean.

    With c = mean R (so mean e = 0), U2 = U(d) - ref_sq with ref_sq = sum_k ||e_k||^2 / (K (K-1)),
    an unbiased estimate of tr(W Sigma_R) / K = E||mean R - E R||^2. Deleting run k (c held fixed)
    gives U2_-k = U(d) + (2 q_k - Q) / ((K-1)(K-2)) + 2 <mean d, e_k> / (K-1), q_k = ||e_k||^2,
    Q = sum q_k, whose jackknife is the reference's variance.
    """
    k = e.shape[0]
    q = _wnorm2(e, w)
    ref_sq = float(q.sum() / (k * (k - 1)))
    loo = (2.0 * q - q.sum()) / ((k - 1) * (k - 2)) + 2.0 * (e @ (w * part.mean)) / (k - 1)
    tr_sq = _tr_cov_sq(e, w)
    return _RefPart(ref_sq, _jackknife_var(loo), tr_sq / k**2, 2.0 * tr_sq / (k**2 * (k - 1)))


def _as_controls(controls, s: int, what: str) -> np.ndarray:
    """Validate control variates (S, p) with S >= 4 (p + 1); return them as floats."""
    z = np.asarray(controls, dtype=float)
    z = z.reshape(z.shape[0], -1) if z.ndim else z
    if z.ndim != 2 or z.shape[0] != s:
        raise DmftcError(f"{what}: controls of shape {np.shape(controls)} do not have one row per seed ({s}).")
    if s < 4 * (z.shape[1] + 1):
        raise DmftcError(f"{what}: {z.shape[1]} control variates need at least {4 * (z.shape[1] + 1)} seeds "
                         f"(each half fits them on the other); got {s}.")
    _require_finite(z, what, "control variates", per_seed=True)
    return z


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
