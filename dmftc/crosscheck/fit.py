"""Power laws in the size, and verdicts on measured versus predicted rates.

A distance d(n) measured at sizes n_i with standard errors s_i is fitted as
d = A n^p by weighted least squares of log d on log n (the error of log d is
s / d). A second model, d = floor + c n^p0 with the predicted exponent p0
held fixed, is linear in (floor, c); a significant positive floor means the
finite networks do not approach the DMFT.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from dmftc.crosscheck.needs import RATE_SIZES, VERDICT_SIZES
from dmftc.crosscheck.stats import RESOLVED_SIGMA

STATUSES = ("consistent", "inconsistent", "not_converging", "unresolved")


@dataclass(frozen=True)
class PowerLaw:
    """A fitted power law value = prefactor * size**exponent, with the data it was fitted on.

    Attributes
    ----------
    exponent, exponent_se : float
        Fitted exponent p and its standard error (NaN with fewer than 2 points).
        When chi2/dof > 1 the error is inflated by sqrt(chi2/dof) (never deflated).
    prefactor : float
        A, the value extrapolated to size 1.
    chi2_dof : float
        chi^2 per degree of freedom in log space (NaN with no degree of freedom).
    n_points : int
        Number of points used.
    sizes, values, ses : tuple of float
        All the data given, sorted by size.
    used : tuple of bool
        Which points entered the fit (values and errors positive and finite).
    resolved : tuple of bool
        Which values are distinguishable from zero (at 2 sigma).
    excluded : tuple of str
        One reason per excluded point, e.g. "N=2048: value -3.1e-05 is not positive".
    size_name, label : str
        Names for sentences and plots ("N", "loss bias").
    """

    exponent: float
    exponent_se: float
    prefactor: float
    chi2_dof: float
    n_points: int
    sizes: tuple[float, ...]
    values: tuple[float, ...]
    ses: tuple[float, ...]
    used: tuple[bool, ...]
    resolved: tuple[bool, ...]
    excluded: tuple[str, ...]
    size_name: str = "N"
    label: str = "distance"

    def __call__(self, size):
        """The fitted curve at `size`."""
        return self.prefactor * np.asarray(size, dtype=float) ** self.exponent


@dataclass(frozen=True)
class FloorFit:
    """value = floor + coef * size**exponent with the exponent held fixed.

    Attributes
    ----------
    floor, floor_se : float
        The limit at infinite size and its standard error.
    coef, coef_se : float
        Amplitude of the decaying part.
    exponent : float
        The fixed (predicted) exponent.
    chi2_dof : float
        chi^2 per degree of freedom (NaN with none).
    significant : bool
        The floor exceeds n_sigma standard errors and this model fits at least
        as well as the free power law (both have two parameters): a distance
        that merely falls slower than predicted is not a floor.
    """

    floor: float
    floor_se: float
    coef: float
    coef_se: float
    exponent: float
    chi2_dof: float
    significant: bool


@dataclass(frozen=True)
class Verdict:
    """Does a measured rate agree with the predicted one?

    Attributes
    ----------
    status : str
        "consistent", "inconsistent", "not_converging" or "unresolved".
    sentence : str
        The verdict in plain words, with the numbers.
    predicted, exponent, exponent_se : float
        Predicted and fitted exponents.
    sigmas : float
        |exponent - predicted| / exponent_se (NaN when there is no fit).
    n_resolved, n_sizes : int
        Sizes where the value is distinguishable from zero, out of all sizes.
    floor : FloorFit or None
        The floor model (with at least 3 points).
    """

    status: str
    sentence: str
    predicted: float
    exponent: float
    exponent_se: float
    sigmas: float
    n_resolved: int
    n_sizes: int
    floor: FloorFit | None = None


def fit_power_law(sizes, values, ses, *, resolved=None, size_name="N", label="distance") -> PowerLaw:
    """Weighted least-squares fit of log value against log size.

    Parameters
    ----------
    sizes, values, ses : array_like, shape (K,)
        Sizes n_i > 0, measured values d_i and their standard errors s_i.
    resolved : array_like of bool, optional
        Which values are distinguishable from zero; default d_i > 2 s_i.
    size_name, label : str
        Used in sentences and plots.

    Returns
    -------
    PowerLaw
        Points with non-positive or non-finite values or errors are excluded,
        each with a reason in `excluded`.
    """
    n, d, s = (np.asarray(a, dtype=float).reshape(-1) for a in (sizes, values, ses))
    order = np.argsort(n, kind="stable")
    n, d, s = n[order], d[order], s[order]
    res = d > RESOLVED_SIGMA * s if resolved is None else np.asarray(resolved, dtype=bool).reshape(-1)[order]
    used, excluded = _usable(n, d, s, size_name)
    p, p_se, a, chi2_dof = _wls_loglog(n[used], d[used], s[used])
    return PowerLaw(
        exponent=p, exponent_se=p_se, prefactor=a, chi2_dof=chi2_dof, n_points=int(used.sum()),
        sizes=_tup(n), values=_tup(d), ses=_tup(s), used=tuple(bool(u) for u in used),
        resolved=tuple(bool(r) for r in res), excluded=tuple(excluded), size_name=size_name, label=label,
    )


def fit_floor(fit: PowerLaw, exponent: float, *, n_sigma: float = 3.0) -> FloorFit | None:
    """Fit value = floor + coef * size**exponent (exponent fixed) in linear space.

    All finite points with positive errors enter, negative values included
    (no selection on sign). Returns None with fewer than 3 such points.
    """
    n, d, s = (np.asarray(a) for a in (fit.sizes, fit.values, fit.ses))
    ok = np.isfinite(d) & np.isfinite(s) & (s > 0)
    if ok.sum() < VERDICT_SIZES:
        return None
    design = np.stack([np.ones(ok.sum()), n[ok] ** exponent], axis=1)
    beta, cov, chi2_dof = _wls(design, d[ok], s[ok])
    se = np.sqrt(np.diag(cov))
    rival = fit.chi2_dof if np.isfinite(fit.chi2_dof) else np.inf
    return FloorFit(
        floor=float(beta[0]), floor_se=float(se[0]), coef=float(beta[1]), coef_se=float(se[1]),
        exponent=float(exponent), chi2_dof=chi2_dof,
        significant=bool(beta[0] > n_sigma * se[0] and chi2_dof <= rival),
    )


#: chi2/dof above which a + b/n does not describe the data (about the 1 % tail for 3 degrees of freedom)
LIMIT_CHI2 = 3.8
#: total chi2 by which a power law must beat a + b/n to be preferred (a likelihood ratio of e^2)
PREFER_CHI2 = 4.0
#: a + b/n "fits as well as" the power law when its total chi2 is at most this much higher (both have two
#: parameters): a flat prediction's rate that deviates beyond n_sigma is consistent only then
EQUAL_CHI2 = 1.0
#: standard errors that separate agreement from disagreement (the default of every verdict)
N_SIGMA = 3.0
#: a rate within this of the prediction agrees however small its error (`compare_rate`'s tolerance)
TOLERANCE = 0.02
#: "finite" needs the exponent known to better than this (n_sigma standard errors) to tell n^0 from n^+-1/2
FLAT_RESOLUTION = 0.5


def finite_limit(fit: PowerLaw) -> tuple[float, float, float, int]:
    """Weighted least squares of value = a + b / size on the points the power law used.

    Returns the limit a, its standard error, chi2/dof and the degrees of freedom (NaN without any).
    """
    used = np.asarray(fit.used, bool)
    n, v, s = (np.asarray(x, float)[used] for x in (fit.sizes, fit.values, fit.ses))
    dof = len(n) - 2
    if dof < 1:
        return float("nan"), float("nan"), float("nan"), max(dof, 0)
    X = np.stack([np.ones_like(n), 1.0 / n], axis=1) / s[:, None]
    cov = np.linalg.inv(X.T @ X)
    coef = cov @ (X.T @ (v / s))
    chi2 = float(np.sum((X @ coef - v / s) ** 2)) / dof
    return float(coef[0]), float(np.sqrt(cov[0, 0])), chi2, dof


def compare_rate(fit: PowerLaw, predicted: float, *, n_sigma: float = N_SIGMA, margin: float = 0.1,
                 tolerance: float = TOLERANCE, hint: str = "add seeds", next_order: float | None = None,
                 disagree: str = "the DMFT and the networks disagree at infinite {name}",
                 common_se: float = 0.0) -> Verdict:
    """Judge a fitted rate against the predicted exponent.

    Parameters
    ----------
    fit : PowerLaw
    predicted : float
        Predicted exponent p0 (e.g. -1 for the bias, -1/2 for fluctuations).
    n_sigma : float
        Agreement means |p - p0| <= n_sigma * se; a floor is significant above
        n_sigma of its error.
    margin : float
        The distance must fall at least as fast as n^-margin (and by more
        than n_sigma errors) to count as falling at all.
    tolerance : float
        Agreement also holds when |p - p0| <= tolerance however small se is:
        the predicted exponent is the leading order, and corrections of
        relative size O(1/n) at the measured sizes shift a fitted exponent by
        about that much (a fluctuation exponent -0.508 +- 0.002 over
        N = 4..64 is the predicted -1/2, not a different law).
    hint : str
        What to do when the values are not resolved (e.g. "add seeds").
    next_order : float, optional
        Exponent q < p0 of the known next term, when the predicted leading
        term n^p0 comes with one (a kink's n^-1/2 on top of the smooth n^-1).
        Over a finite range of sizes the sum b n^p0 + c n^q falls faster than
        n^p0; a faster measured rate is then consistent when that two-term
        model fits (chi2/dof <= LIMIT_CHI2) with the leading coefficient b
        resolved above n_sigma errors (`leading_term`): a distance that
        follows n^q alone leaves b unresolved and fails.
    disagree : str
        What a significant floor means, ending the not-converging sentence ({name}: the size symbol).
    common_se : float
        The part of the values' errors shared by every size (one Monte Carlo DMFT is the reference of
        all of them: its error shifts every distance alike). The fit takes the sizes as independent, so
        a common shift reads as a level the distance does not fall below; a "not_converging" whose level
        is within n_sigma of it is "unresolved" instead (`reference_explains`).

    Returns
    -------
    Verdict
        "unresolved" when fewer than min(3, K) sizes resolve the value from
        zero, or the fit cannot tell p0 from no convergence; "not_converging"
        when the distance does not fall, or falls slower than predicted and a
        nonzero floor is significant; "inconsistent" when it falls at another
        rate; "consistent" otherwise.
    """
    k, k_res = len(fit.sizes), sum(fit.resolved)
    floor = fit_floor(fit, predicted, n_sigma=n_sigma)
    base = dict(predicted=float(predicted), exponent=fit.exponent, exponent_se=fit.exponent_se,
                n_resolved=k_res, n_sizes=k, floor=floor)
    if k < RATE_SIZES:
        sentence = f"unresolved: one size gives no rate; check at least {VERDICT_SIZES} sizes of {fit.size_name}"
        return Verdict("unresolved", sentence, sigmas=float("nan"), **base)
    if k_res < min(3, k) or fit.n_points < 2 or not np.isfinite(fit.exponent_se):
        sentence = (f"unresolved: {fit.label} is indistinguishable from zero (at {RESOLVED_SIGMA:g} sigma) "
                    f"at {k - k_res} of {k} sizes; {hint}")
        return Verdict("unresolved", sentence, sigmas=float("nan"), **base)
    if predicted == 0:
        status, sentence = _judge_finite(fit, n_sigma, tolerance)
    else:
        status, sentence = _judge(fit, predicted, floor, n_sigma, margin, tolerance, disagree)
        if status == "inconsistent" and fit.exponent < predicted and next_order is not None:
            status, sentence = _judge_two_terms(fit, predicted, next_order, n_sigma, sentence)
    if status == "inconsistent" and fit.exponent > predicted and reference_slows(fit, predicted, common_se, n_sigma):
        status, sentence = "unresolved", (
            f"unresolved: {fit.label} falls as {format_measured(fit.size_name, fit.exponent, fit.exponent_se)}, "
            f"slower than the predicted {format_power(fit.size_name, predicted)}, but within {n_sigma:g} sigma of "
            f"it once the DMFT's Monte Carlo error common to every size ({common_se:.2g}) is counted at each; "
            "increase solver.samples")
    if status == "not_converging" and reference_explains(fit, floor, common_se, n_sigma):
        status, sentence = "unresolved", (
            f"unresolved: {fit.label} levels off at {_level(fit, floor):.2g}, within {n_sigma:g} sigma of the "
            f"DMFT's Monte Carlo error common to every size ({common_se:.2g}); increase solver.samples")
    sigmas = abs(fit.exponent - predicted) / fit.exponent_se if fit.exponent_se > 0 else float("inf")
    return Verdict(status, sentence, sigmas=float(sigmas), **base)


def _level(fit: PowerLaw, floor: FloorFit | None) -> float:
    """The level a distance does not fall below: the fitted floor, else the value at the largest size."""
    return float(floor.floor) if floor is not None else float(fit.values[-1])


def reference_explains(fit: PowerLaw, floor: FloorFit | None, common_se: float, n_sigma: float = N_SIGMA) -> bool:
    """Whether one shift common to every size, of standard error `common_se`, explains the level.

    A reference R = R_true + delta enters every size's distance ||E X_n - R||: as E X_n -> R_true the
    distances fall to ||delta|| ~ common_se at every size alike, a floor however many seeds there are.
    It explains the level L when L <= n_sigma common_se (and only then: a wrong DMFT's floor stays when
    the draws grow, the reference's falls as M^-1/2).
    """
    return common_se > 0 and _level(fit, floor) <= n_sigma * common_se


def reference_slows(fit: PowerLaw, predicted: float, common_se: float, n_sigma: float = N_SIGMA) -> bool:
    """Whether the reference's error, common to every size, can account for a fall slower than predicted.

    One shift delta of the reference moves every distance alike, most in relative terms at the largest
    sizes, where the distances are smallest: it flattens the fitted law (measured: G2 of mlp_mup_relu, N =
    64..512, 256 networks, N^-0.52 +- 0.14 at the default draws, N^-0.98 +- 0.27 at 16 x). Refitting with
    common_se added in quadrature to each size's error (conservative: it ignores that the shift is one
    number) and finding the prediction within n_sigma says the data cannot tell the two apart.
    """
    if not common_se > 0:
        return False
    used = np.asarray(fit.used, dtype=bool)
    n, d, s = (np.asarray(a, dtype=float)[used] for a in (fit.sizes, fit.values, fit.ses))
    p, p_se, _, _ = _wls_loglog(n, d, np.sqrt(s**2 + common_se**2))
    return bool(np.isfinite(p_se) and abs(p - predicted) <= n_sigma * p_se)


def format_power(size_name: str, exponent: float) -> str:
    """`N^-1`, `N^-1/2` for simple fractions, else `N^-0.97`."""
    frac = Fraction(exponent).limit_denominator(4)
    if abs(float(frac) - exponent) < 1e-9:
        return f"{size_name}^{frac}"
    return f"{size_name}^{exponent:.2f}"


def format_measured(size_name: str, exponent: float, se: float) -> str:
    """`N^-0.97 ± 0.08`, with as many decimals as the error warrants (2 to 4)."""
    return f"{size_name}^{_pm(exponent, se)}"


def _pm(value: float, se: float, sign: str = "") -> str:
    """`-0.97 ± 0.08`, `-1.000 ± 0.022`: the error to one significant digit (two when it starts
    with 1 or 2), with 2 to 4 decimals."""
    digits = 2
    if se > 0 and np.isfinite(se):
        first = -int(np.floor(np.log10(se)))
        digits = int(np.clip(first + (se * 10.0**first < 3), 2, 4))
    value = 0.0 if round(value, digits) == 0 else value  # no "-0.000"
    return f"{value:{sign}.{digits}f} ± {se:.{digits}f}"


def _judge_finite(fit: PowerLaw, n_sigma: float, tolerance: float) -> tuple[str, str]:
    """A quantity predicted to stay finite (n^0): flat within errors, or approaching a nonzero limit.

    One network's spread at fixed N along L is such a quantity: its variance is a finite part plus
    contributions that vanish as 1/L (at alpha_L = 1 the random branches' sum), so it levels off
    rather than following a power law. A fall passes when a + b/n fits (chi2/dof <= LIMIT_CHI2) with
    a resolved above zero, unless a vanishing power law fits decisively better (total chi2 lower by
    more than PREFER_CHI2; both models have two parameters): where the data cannot tell the two
    curves apart, the predicted one is not rejected; a precisely measured power law bends away
    from a + b/n and is. A rate beyond n_sigma of n^0 is consistent only when a + b/n fits as well as
    the power law (total chi2 at most EQUAL_CHI2 higher); where it fits acceptably but worse and the
    power law is not decisively preferred, unresolved (a rise as n^0.4 +- 0.08 is not "finite").
    """
    p, se, name, what = fit.exponent, fit.exponent_se, fit.size_name, fit.label
    measured = format_measured(name, p, se)
    if n_sigma * se >= FLAT_RESOLUTION:
        return "unresolved", (f"unresolved: {what} exponent {_pm(p, se, '+')} cannot tell finite from vanishing "
                              f"as {name}^-1/2; add seeds or sizes")
    if abs(p) <= max(n_sigma * se, tolerance):
        return "consistent", f"{what} stays finite: {measured}, as predicted ({name}^0)"
    a, a_se, chi2, dof = finite_limit(fit)
    zs = abs(p) / se if se > 0 else float("inf")
    power_law_preferred = dof * (chi2 - fit.chi2_dof) > PREFER_CHI2
    trend = "falls" if p < 0 else "grows"
    if np.isfinite(a) and a > n_sigma * a_se and chi2 <= LIMIT_CHI2:
        if dof * (chi2 - fit.chi2_dof) <= EQUAL_CHI2:  # the finite limit fits as well as the power law
            return "consistent", (f"{what} approaches a finite limit {_pm(a, a_se)} (fit a + b/{name}, chi2/dof "
                                  f"{chi2:.2f}, as good as the power law's {measured}, chi2/dof "
                                  f"{fit.chi2_dof:.2f}, {zs:.1f} sigma from {name}^0), as predicted ({name}^0)")
        if not power_law_preferred:
            return "unresolved", (f"unresolved: {what} {trend} as {measured} ({zs:.1f} sigma from the predicted "
                                  f"{name}^0); a + b/{name} (a finite limit) fits worse (chi2/dof {chi2:.2f} "
                                  f"against {fit.chi2_dof:.2f}) but acceptably; add larger sizes")
    return "inconsistent", (f"{what} {trend} as {measured}, where it is predicted to stay finite ({name}^0; "
                            f"{zs:.1f} sigma)")


def _judge(fit: PowerLaw, p0: float, floor: FloorFit | None, n_sigma: float, margin: float,
           tolerance: float, disagree: str = "the DMFT and the networks disagree at infinite {name}") -> tuple[str, str]:
    """The status and sentence once the fit is resolved."""
    p, se, name, what = fit.exponent, fit.exponent_se, fit.size_name, fit.label
    measured, pred = format_measured(name, p, se), format_power(name, p0)
    falling = p < -max(n_sigma * se, margin)
    agrees = abs(p - p0) <= max(n_sigma * se, tolerance)
    if agrees and falling:
        within = "" if abs(p - p0) <= n_sigma * se else f" (within the tolerance {tolerance:g} for subleading terms)"
        return "consistent", f"{what} falls as {measured}, consistent with the predicted {pred}{within}"
    if agrees:
        return "unresolved", (f"unresolved: {what} exponent {_pm(p, se, '+')} cannot tell the predicted "
                              f"{pred} from no convergence; add seeds or sizes")
    if p > p0 and not falling:
        return "not_converging", (f"the data do not support convergence: {what} does not fall "
                                  f"(exponent {_pm(p, se, '+')}, predicted {pred})")
    zs = abs(p - p0) / se
    if p > p0 and floor is not None and floor.significant:
        return "not_converging", (
            f"the data do not support convergence: {what} falls as {measured}, slower than the predicted "
            f"{pred} ({zs:.1f} sigma), and levels off at {floor.floor:.3g} ± {floor.floor_se:.2g}: "
            + disagree.format(name=name))
    slower = "slower" if p > p0 else "faster"
    return "inconsistent", (f"{what} falls as {measured}, {slower} than the predicted {pred} ({zs:.1f} sigma)"
                            + ("; no significant floor" if p > p0 else "; sizes may be pre-asymptotic"))


def leading_term(fit: PowerLaw, p0: float, q: float) -> tuple[float, float, float, float, float]:
    """Weighted least squares of value = b size^p0 + c size^q on the points the power law used.

    Returns b, its standard error, c, its standard error and chi2/dof (NaN with fewer than 3 points;
    errors inflated by sqrt(chi2/dof) when that exceeds 1, as in every fit here).
    """
    used = np.asarray(fit.used, bool)
    n, v, s = (np.asarray(x, float)[used] for x in (fit.sizes, fit.values, fit.ses))
    if len(n) < 3:
        return (float("nan"),) * 5
    beta, cov, chi2_dof = _wls(np.stack([n ** p0, n ** q], axis=1), v, s)
    se = np.sqrt(np.diag(cov))
    return float(beta[0]), float(se[0]), float(beta[1]), float(se[1]), chi2_dof


def _judge_two_terms(fit: PowerLaw, p0: float, q: float, n_sigma: float, sentence: str) -> tuple[str, str]:
    """A rate faster than the leading p0 that the leading term plus the known next one explains."""
    name, what = fit.size_name, fit.label
    b, b_se, c, c_se, chi2 = leading_term(fit, p0, q)
    model = f"b {format_power(name, p0)} + c {format_power(name, q)}"
    if not np.isfinite(chi2):
        return "inconsistent", sentence
    if chi2 <= LIMIT_CHI2 and b > n_sigma * b_se:
        return "consistent", (f"{what} falls as {format_measured(name, fit.exponent, fit.exponent_se)}: the predicted "
                              f"leading {format_power(name, p0)} with its next-order term, {model} with b = "
                              f"{_pm(b, b_se)}, c = {_pm(c, c_se)} (chi2/dof {chi2:.2f})")
    why = f"chi2/dof {chi2:.2f}" if chi2 > LIMIT_CHI2 else f"b = {_pm(b, b_se)} is not resolved"
    return "inconsistent", f"{sentence}; {model} does not explain it ({why})"


def _usable(n, d, s, size_name: str) -> tuple[np.ndarray, list[str]]:
    """Mask of points usable in log space, and a reason for each excluded one."""
    used = np.isfinite(d) & np.isfinite(s) & (d > 0) & (s > 0) & (n > 0)
    reasons = []
    for ni, di, si, ok in zip(n, d, s, used):
        if not ok:
            why = f"value {di:.3g} is not positive" if not di > 0 else f"standard error {si:.3g} is not positive"
            reasons.append(f"{size_name}={ni:g}: {why}")
    return used, reasons


def _wls_loglog(n, d, s) -> tuple[float, float, float, float]:
    """Exponent, its error, prefactor and chi2/dof of log d = log A + p log n."""
    if n.size < 2:
        return (float("nan"),) * 4
    x = np.log(n)
    x0 = x.mean()  # centring decorrelates slope and intercept; A is restored below
    design = np.stack([np.ones_like(x), x - x0], axis=1)
    beta, cov, chi2_dof = _wls(design, np.log(d), s / d)
    return float(beta[1]), float(np.sqrt(cov[1, 1])), float(np.exp(beta[0] - beta[1] * x0)), chi2_dof


def _wls(design: np.ndarray, y: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Weighted least squares; the covariance is inflated by chi2/dof when that exceeds 1 (Birge ratio)."""
    a, b = design / sigma[:, None], y / sigma
    beta = np.linalg.lstsq(a, b, rcond=None)[0]
    cov = np.linalg.pinv(a.T @ a)
    dof = y.size - design.shape[1]
    chi2_dof = float(np.sum((a @ beta - b) ** 2) / dof) if dof > 0 else float("nan")
    if dof > 0 and chi2_dof > 1.0:
        cov = cov * chi2_dof
    return beta, cov, chi2_dof


def _tup(a: np.ndarray) -> tuple[float, ...]:
    return tuple(float(v) for v in a)
