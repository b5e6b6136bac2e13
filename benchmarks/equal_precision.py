"""DMFT solve vs finite-network ensemble at equal precision: the arithmetic of bench_mlp.py (a).

Error of an estimate of the expected loss curve L(t), t = 0..T: the RMS over t of its
difference from the truth. The truth and the ensemble's finite-width bias come from the
networks alone: at each t a weighted least-squares fit of the seed-mean loss over widths N,

    mean_N(t) = a(t) + c(t) / N      (the O(1/N) bias of seed-averaged quantities, docs/theory.md#finite-size),

gives the N -> oo limit a(t) and the bias coefficient c(t). The DMFT is then judged against
a(t) like any other estimate, with its Monte Carlo noise and its own O(1/M) bias both in
its measured error.

An ensemble of S networks of width N has squared error |c|^2 / N^2 + sigma_N^2 / S, with
|c| the RMS over t of c(t) and sigma_N^2 the mean over t of one network's variance; for a
target error eps, N and S are the cheapest pair meeting it (`ensemble_plan`). With
sigma_N ~ N^-1/2 and a network's cost ~ N^2 that costs ~ eps^-3. A DMFT solve's error is
its spread over seeds (its O(1/M) bias against a(t) is printed with its resolution); its
M draws cost ~ M ~ eps^-2.
"""

from __future__ import annotations

import math

import numpy as np


def fit_width_bias(means: dict, variances: dict, seeds: dict) -> dict:
    """Per-t WLS fit of mean_N(t) = a(t) + c(t) / N over the widths N (keys of the dicts).

    means[N], variances[N]: (T+1,) seed mean and one network's variance; seeds[N]: S.
    Returns a, its variance, c, |c| (RMS over t) and the reduced chi^2 of the fit.
    """
    Ns = np.array(sorted(means), float)
    A = np.stack([np.ones_like(Ns), 1.0 / Ns], 1)
    a, var_a, c, chi2 = [], [], [], []
    for t in range(len(means[int(Ns[0])])):
        yv = np.array([means[int(N)][t] for N in Ns])
        w = np.array([seeds[int(N)] / max(variances[int(N)][t], 1e-300) for N in Ns])
        cov = np.linalg.pinv(A.T @ (w[:, None] * A))
        beta = cov @ A.T @ (w * yv)
        a.append(beta[0])
        var_a.append(cov[0, 0])
        c.append(beta[1])
        chi2.append(float(np.sum(w * (yv - A @ beta) ** 2)))
    c = np.array(c)
    return {"a": np.array(a), "var_a": np.array(var_a), "c": c, "c_rms": float(np.sqrt(np.mean(c**2))),
            "chi2_dof": float(np.mean(chi2) / max(len(Ns) - 2, 1))}


def power_fit(x, y) -> tuple[float, float]:
    """(prefactor, exponent) of y = k x^p by least squares in log-log."""
    p, logk = np.polyfit(np.log(np.asarray(x, float)), np.log(np.asarray(y, float)), 1)
    return float(math.exp(logk)), float(p)


def failed(loss: np.ndarray) -> bool:
    """A diverged solve: non-finite, or a loss above ten times its initial value."""
    return bool(not np.all(np.isfinite(loss)) or np.max(loss) > 10 * loss[0])


def spread(curves: list[np.ndarray]) -> float:
    """One estimate's noise: the RMS over t of the standard deviation across independent repeats."""
    return float(math.sqrt(np.mean(np.var(np.asarray(curves), axis=0, ddof=1))))


def bias_vs_truth(curves: list[np.ndarray], truth: dict) -> tuple[float, float]:
    """(RMS over t of the mean's bias against a(t), with both estimates' variances removed; that resolution)."""
    C = np.asarray(curves)
    noise = np.var(C, axis=0, ddof=1) / len(C) + truth["var_a"]
    sq = np.mean((C.mean(0) - truth["a"]) ** 2 - noise)
    return float(math.sqrt(max(sq, 0.0))), float(math.sqrt(np.mean(noise)))


def ensemble_plan(eps: float, c_rms: float, sigma_fit: tuple[float, float], time_exp: float) -> dict:
    """The cheapest width and seed count with bias^2 + noise^2 = eps^2.

    With bias c/N, one network's variance ~ N^(2 g) and its time ~ N^d, the cost S t_net ~
    N^(2g + d) / (1 - x^2) with x = c / (N eps) the bias's share of eps; it is least at
    x^2 = q / (q + 2), q = 2 g + d (an even split, x^2 = 1/2, costs a few per cent more).
    """
    q = 2 * sigma_fit[1] + time_exp
    x = math.sqrt(q / (q + 2)) if q > 0 else math.sqrt(0.5)
    N = math.ceil(c_rms / (x * eps))
    sigma = sigma_fit[0] * N ** sigma_fit[1]
    noise = math.sqrt(max(eps**2 - (c_rms / N) ** 2, 1e-300))
    return {"N": N, "sigma": sigma, "S": max(2, math.ceil((sigma / noise) ** 2)), "bias_share": c_rms / N / eps}


def dmft_plan(eps: float, ladder: list[tuple[int, float]], exponent: float = -0.5) -> int:
    """Draws M whose spread is eps: log-log interpolation between measured (M, spread) pairs,
    and spread ~ M^exponent from the largest M beyond them (the central-limit rate M^-1/2 unless
    told otherwise; even, for antithetic pairs)."""
    pts = sorted(ladder)
    M = pts[0][0] if eps >= pts[0][1] else pts[-1][0] * (pts[-1][1] / eps) ** (-1 / exponent)
    for (m0, s0), (m1, s1) in zip(pts, pts[1:]):
        if s1 <= eps <= s0 and s1 < s0:
            M = m0 * (m1 / m0) ** (math.log(s0 / eps) / math.log(s0 / s1))
            break
    return 2 * math.ceil(M / 2)


def eps_for_ratio(target: float, eps0: float, ratio0: float, dmft_exp: float, ens_exp: float) -> float:
    """The precision at which the ratio ensemble/DMFT time reaches `target`, extrapolating the two cost laws.

    Times ~ eps^-dmft_exp and eps^-ens_exp, so the ratio ~ eps^-(ens_exp - dmft_exp).
    """
    return eps0 * (ratio0 / target) ** (1.0 / (ens_exp - dmft_exp))
