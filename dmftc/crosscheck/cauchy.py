"""Convergence of finite networks among themselves, where no DMFT exists (`dmftc check` under Adam).

Works on arrays, like the rest of the cross-check. Sizes n_1 < ... < n_K, one independent
ensemble per size. If the limit m_oo of the seed-averaged quantity exists and

    m(n) = E X_n = m_oo + c n^p + o(n^p),

then the Cauchy difference of successive sizes is

    Delta_k = ||m(n_k) - m(n_{k+1})|| = ||c|| n_k^p (1 - rho_k^p) + ...,   rho_k = n_{k+1} / n_k,

and Delta_k / (1 - rho_k^p0), p0 the predicted exponent, estimates the distance ||m(n_k) - m_oo||
of size n_k from the limit (Richardson's step: the larger size stands in for the limit, corrected
for its own distance at the predicted rate). With geometric sizes (one ratio rho) the division is
one constant, so the fitted exponent is that of the Cauchy differences themselves, p, whatever p0.

Delta_k^2 is estimated without bias by the two-sample U-statistic of `stats.distance` with the
larger ensemble in the role of the reference's runs, U(X) + U(Y) - 2 <mean X, mean Y>: the seeds'
noise of both means is removed, their errors add in quadrature. Successive differences would share
the ensemble between them and be anticorrelated (about -0.5 for n^-1 at rho = 2); each interior
ensemble is therefore split in two halves, the even seeds paired with the next smaller size and the
odd seeds with the next larger one, so the K - 1 differences share no network and are independent,
which the weighted least squares of `fit.fit_power_law` assumes. The fluctuation at n_k is that of
the networks in difference k (all seeds at n_1, the odd half at interior sizes).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from dmftc.crosscheck.fit import N_SIGMA, format_power
from dmftc.crosscheck.needs import DISTANCE_SEEDS
from dmftc.crosscheck.report import (
    QuantityCheck, Report, criterion, judge_distances, rates_of, sizes_of, summary_of, worst,
)
from dmftc.crosscheck.stats import Distance, distance
from dmftc.errors import DmftcError

#: a Cauchy report's sizes: three give two differences, the fewest for a rate (`needs.RATE_SIZES` + 1)
CAUCHY_SIZES = 3
#: seeds per size: an interior ensemble is split in two halves of at least `DISTANCE_SEEDS`
CAUCHY_SEEDS = 2 * DISTANCE_SEEDS

HEADS = {
    "consistent": "Consistent: the finite networks converge among themselves at the predicted rates for {names}",
    "not_converging": "Check failed: the finite networks do not converge as the size grows",
    "inconsistent": "Check failed: a measured rate differs from the prediction",
    "unresolved": "Unresolved: the data cannot yet confirm the predicted rates",
}
#: what a significant floor of the Cauchy differences means (`fit.compare_rate`'s `disagree`)
DRIFT = "successive sizes keep differing, so the networks have no limit at infinite {name}"
#: what a significant floor of one network's spread means
SPREAD = "single networks keep a spread around their mean at infinite {name}"


def richardson_factor(n: float, m: float, p0: float) -> float:
    """1 - (m / n)^p0: the Cauchy difference of sizes n < m in units of the distance of n from the limit,
    for a deviation c n^p0 (1/2 at p0 = -1 and m = 2 n)."""
    if not (0 < n < m) or not p0 < 0:
        raise DmftcError(f"richardson_factor needs sizes 0 < n < m and a falling rate p0 < 0; got n={n}, m={m}, "
                         f"p0={p0}")
    return float(1.0 - (m / n) ** p0)


def split_seeds(k: int, count: int, seeds: int) -> tuple[np.ndarray, np.ndarray]:
    """The seeds of size k (of `count`, ascending) used (below, above): paired with the next smaller size
    (the even seeds) and with the next larger one (the odd seeds); all of them at the two ends."""
    every = np.arange(seeds)
    below = every if k == count - 1 else every[0::2]
    above = every if k == 0 else every[1::2]
    return below, above


def cauchy_distance(smaller, larger, n: int, m: int, p0: float, *, what: str = "finite ensembles") -> Distance:
    """The distance of size n from the limit implied by ensembles at n (`smaller`, (S, ...)) and m > n
    (`larger`, (S', ...)): the two-sample U-statistic of ||E X_n - E X_m||^2 (`stats.distance`, the larger
    ensemble as the reference's runs), every distance field divided by `richardson_factor(n, m, p0)`.

    The fluctuation is that of the networks at n; `reference_floor` is the RMS noise of the mean at m.
    """
    y = np.asarray(larger, dtype=float)
    d = distance(smaller, y.mean(axis=0), reference_runs=y, what=what)
    r = richardson_factor(n, m, p0)
    return dataclasses.replace(d, bias=d.bias / r, bias_se=d.bias_se / r, bias_sq=d.bias_sq / r**2,
                               bias_sq_se=d.bias_sq_se / r**2, naive=d.naive / r, noise=d.noise / r,
                               reference_floor=d.reference_floor / r)


def cauchy_check(finite_by_size: Mapping, *, size_name: str = "N", predicted: Mapping | None = None,
                 quantities: Sequence[str] | None = None, n_sigma: float = N_SIGMA, notes: Sequence[str] = (),
                 no_limit: str | None = None, preface: str = "") -> Report:
    """The cross-check with no reference: successive sizes against each other (module docstring).

    Parameters
    ----------
    finite_by_size : mapping of int to (mapping of str to array_like)
        For each size n, the quantities with a leading seed axis (independent ensembles).
    size_name : str
    predicted : mapping, optional
        Predicted exponents of the distance from the limit and of the fluctuation, as for `crosscheck`.
    quantities : sequence of str, optional
        Default: every quantity present with one shape at every size (the others are skipped).
    n_sigma : float
    notes : sequence of str
        Sentences on how the prediction was made, kept in the report and its summary.
    no_limit : str, optional
        The scaling analysis's reason why the limit does not exist: the status is then not_converging
        whatever was measured, and the summary opens with the reason and says whether the data agree.
    preface : str
        What the report says first (why there is no DMFT, what stands in for it): `Report.preface`.

    Returns
    -------
    Report
        mode "cauchy": `sizes` are n_1..n_{K-1}, `reference_sizes` n_2..n_K.
    """
    rates = rates_of(predicted)
    every = sizes_of(finite_by_size, size_name)
    if len(every) < CAUCHY_SIZES:
        raise DmftcError(f"a check without a DMFT needs at least {CAUCHY_SIZES} sizes of {size_name} (two "
                         f"differences of successive sizes for a rate); got {size_name}={','.join(map(str, every))}")
    names, skipped = _select(finite_by_size, every, size_name, quantities)
    checks = tuple(_check_quantity(q, [finite_by_size[n][q] for n in every], every, size_name, rates, n_sigma)
                   for q in names)
    sizes, partners = every[:-1], every[1:]
    measured = worst([q.status for q in checks]) if checks else "unresolved"
    status = "not_converging" if no_limit else measured
    summary = summary_of(measured, checks, skipped, sizes, size_name, HEADS)
    if no_limit:
        agree = ("the finite networks agree" if measured == "not_converging" else
                 f"the measured differences alone are {measured.replace('_', ' ')} over these sizes (pre-asymptotic)")
        summary = f"Check failed: the scaling analysis finds no limit at infinite {size_name} ({no_limit}); {agree}. " \
                  + summary
    summary = " ".join(x for x in (summary, *notes) if x)
    rule = cauchy_criterion(rates, n_sigma, size_name)
    return Report(size_name, sizes, float(rates["bias"]), float(rates["fluct"]), checks, skipped, status, summary,
                  tuple(notes), rule, mode="cauchy", reference_sizes=partners, preface=preface)


def cauchy_criterion(rates: Mapping[str, float], n_sigma: float, size_name: str) -> str:
    """The rule of a Cauchy report in words: what is measured, then `report.criterion`."""
    n, p0 = size_name, format_power(size_name, rates["bias"])[len(size_name) + 1:]
    return (f"the bias at {n}_k is the RMS distance ||E X({n}_k) - E X({n}_k+1)|| of the seed means of successive "
            f"sizes (a two-sample U-statistic; independent ensembles, interior sizes split in halves so the "
            f"differences share no network) divided by 1 - ({n}_k+1/{n}_k)^p0, p0 = {p0}: "
            f"the distance of {n}_k from the limit; with geometric sizes its fitted rate is that of the differences; "
            + criterion(rates, n_sigma, size_name))


def _check_quantity(name: str, ensembles: Sequence, sizes: Sequence[int], size_name: str,
                    rates: Mapping[str, float], n_sigma: float) -> QuantityCheck:
    """Cauchy distances of one quantity between successive sizes, their fits and verdicts."""
    K = len(sizes)
    arrays = [np.asarray(x, dtype=float) for x in ensembles]
    short = [f"{size_name}={n} ({a.shape[0]})" for n, a in zip(sizes[1:-1], arrays[1:-1]) if a.shape[0] < CAUCHY_SEEDS]
    if short:
        raise DmftcError(f"{name!r}: an interior size is split in two halves of at least {DISTANCE_SEEDS} seeds, so "
                         f"it needs {CAUCHY_SEEDS} seeds or more; got {', '.join(short)} seeds")
    dists = []
    for k in range(K - 1):
        x = arrays[k][split_seeds(k, K, arrays[k].shape[0])[1]]
        y = arrays[k + 1][split_seeds(k + 1, K, arrays[k + 1].shape[0])[0]]
        dists.append(cauchy_distance(x, y, sizes[k], sizes[k + 1], rates["bias"],
                                     what=f"{name!r} at {size_name}={sizes[k]} against {sizes[k + 1]}"))
    hint = _hint(dists, sizes, size_name)
    return judge_distances(name, dists, sizes[:-1], size_name, rates, n_sigma, hint=hint, disagree=DRIFT,
                           spread=SPREAD)


def _hint(dists: Sequence[Distance], sizes: Sequence[int], size_name: str) -> str:
    """What to do about unresolved differences: more seeds (with the bound at the largest unresolved size)."""
    unresolved = [(n, d) for n, d in zip(sizes, dists) if not d.resolved]
    if not unresolved:
        return "add seeds"
    n, d = unresolved[-1]
    return f"add seeds (the distance is below {d.bias_upper:.2g} at {size_name}={n})"


def _select(finite_by_size: Mapping, sizes: Sequence[int], size_name: str,
            quantities: Sequence[str] | None) -> tuple[tuple[str, ...], tuple]:
    """Quantities with one shape (but the seeds) at every size, and the others with the reason."""
    first = finite_by_size[sizes[0]]
    candidates = list(quantities) if quantities is not None else list(first)
    names, skipped = [], []
    for q in candidates:
        missing = [n for n in sizes if q not in finite_by_size[n]]
        shapes = {np.shape(finite_by_size[n][q])[1:] for n in sizes if n not in missing}
        why = (f"not measured at {size_name}={', '.join(map(str, missing))}" if missing else
               f"its shape changes with {size_name}" if len(shapes) > 1 else None)
        if why is None:
            names.append(q)
        elif quantities is not None:
            raise DmftcError(f"cannot compare {q!r} across sizes: {why}")
        else:
            skipped.append((q, why))
    return tuple(names), tuple(skipped)
