"""The distribution of the attention logits across heads: finite networks against the DMFT (H -> oo).

docs/theory.md#limits-and-regimes: as H -> oo at fixed N the heads stay diverse. Each head's logits
A_{mu s s'}(t) = N^-alpha_A k_{mu s}(t) . q_{mu s'}(t) stay a random variable with a limiting law
across heads (non-Gaussian at small N), which the DMFT samples by Monte Carlo over heads, while
everything the heads feed into the residual stream becomes deterministic. A finite network with
H heads draws H samples of that law, whose marginal differs from the limit by O(1/H).

The two laws are compared through the energy distance (Szekely & Rizzo), a two-sample statistic
that is zero only for equal laws,

    D^2(X, Y) = 2 E|X - Y| - E|X - X'| - E|Y - Y'|,

estimated without bias from pairs of independent draws only: finite pairs from different networks
(seeds), DMFT pairs from different heads (different Monte Carlo draws). Entries (sample mu, query s,
key s') are pooled: X is the logit at a random entry of a random head, on both sides alike. The
distance D = sign(D^2) sqrt(|D^2|) falls as H^-1 when the marginals differ at O(1/H). The standard
error is a jackknife over seeds (finite side) and over groups of heads (DMFT side). Three views
are compared (`VIEWS`): the logits at initialization A(0), after training A(T), and the change
A(T) - A(0), whose law is set by learning alone. The Kolmogorov-Smirnov distance of the pooled samples and the first moments are reported beside it
(as descriptions: pooled entries of one head are not independent, so no KS p-value is claimed).

Arrays, as `dmftc.simulate` and the generated solvers give them:
- finite logits per size: (seeds, T+1, L_attn, H, P, S, S);
- DMFT logits: one array per Monte Carlo seed, (n_t, L_attn, heads, P, S, S)
  (`dmft_logit_blocks` cuts them out of the solver's (n_t, heads, PS, PS) per attention layer).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dmftc.crosscheck.files import save_figure_atomic
from dmftc.crosscheck.fit import PowerLaw, Verdict, compare_rate, fit_power_law, format_measured, format_power
from dmftc.crosscheck.plots import _fit_drawn, _fit_lines, _log_axes, _open_points, _points, size_words
from dmftc.crosscheck.report import _clean
from dmftc.crosscheck.stats import RESOLVED_SIGMA
from dmftc.errors import DmftcError

FORMAT = "dmftc.logits/1"
#: predicted exponent of the energy distance D in H (marginals differ at O(1/H))
PREDICTED = -1.0
#: blocks of groups (networks, or DMFT heads) for the jackknife
JACKKNIFE_BLOCKS = 16
#: at most this many values per network (whole heads): the entries of one network are dependent, and
#: sorting all of them dominates the cost
MAX_PER_GROUP = 4096


@dataclass(frozen=True)
class LogitLaw:
    """Finite-H logits against the DMFT's law at one time step.

    Attributes
    ----------
    what : str
        "A(0)" (initialization), "A(T)" (after training) or "A(T) - A(0)" (what training changed).
    sizes : tuple of int
        H, ascending.
    energy_sq, energy_sq_se : tuple of float
        Unbiased energy distance squared D^2 per size and its standard error.
    distance, distance_se : tuple of float
        D = signed sqrt(D^2) and its standard error (delta method, bounded at D ~ 0).
    ks : tuple of float
        Kolmogorov-Smirnov distance of the pooled samples per size (a description).
    moments : mapping
        "dmft" and each size -> {"mean", "var", "kurtosis"} of the pooled logits (excess kurtosis).
    fit : PowerLaw
        Power law of D in H.
    verdict : Verdict
        Against D ~ H^-1.
    """

    what: str
    sizes: tuple[int, ...]
    energy_sq: tuple[float, ...]
    energy_sq_se: tuple[float, ...]
    distance: tuple[float, ...]
    distance_se: tuple[float, ...]
    ks: tuple[float, ...]
    moments: Mapping[str, Mapping[str, float]]
    fit: PowerLaw
    verdict: Verdict

    @property
    def agrees_at_largest(self) -> bool:
        """Whether D^2 at the largest H is within 3 standard errors of zero (the laws agree)."""
        return bool(abs(self.energy_sq[-1]) <= 3.0 * self.energy_sq_se[-1])


@dataclass(frozen=True)
class LogitReport:
    """`compare_logit_laws`: one `LogitLaw` per view (initial logits, final logits, their change)."""

    laws: tuple[LogitLaw, ...]
    size_name: str = "H"

    @property
    def status(self) -> str:
        statuses = [law.verdict.status for law in self.laws]
        for s in ("not_converging", "inconsistent", "unresolved"):
            if s in statuses:
                return s
        return "consistent"

    def summary(self) -> str:
        rows = [f"attention logits across heads vs the DMFT's law (energy distance D, predicted "
                f"{self.size_name}^-1; KS and moments descriptive)"]
        for law in self.laws:
            m = law.moments["dmft"]
            rows.append(f"{law.what}: DMFT mean {m['mean']:+.4f}, var {m['var']:.4f}, excess kurtosis "
                        f"{m['kurtosis']:+.3f}")
            rows.append(f"  {self.size_name:>5}  {'D':>22}  {'KS':>7}  {'var':>8}  {'kurtosis':>8}")
            for i, n in enumerate(law.sizes):
                mo = law.moments[str(n)]
                rows.append(f"  {n:>5}  {law.distance[i]:>11.3e} ± {law.distance_se[i]:<8.1e}  {law.ks[i]:>7.4f}  "
                            f"{mo['var']:>8.4f}  {mo['kurtosis']:>+8.3f}")
            fit = law.fit
            measured = "-" if math.isnan(fit.exponent) else format_measured(self.size_name, fit.exponent,
                                                                              fit.exponent_se)
            agree = "agrees" if law.agrees_at_largest else "differs"
            rows.append(f"  D ~ {measured}: {law.verdict.status}; at {self.size_name} = {law.sizes[-1]} the "
                        f"law {agree} with the DMFT's (D^2 = {law.energy_sq[-1]:.2e} ± {law.energy_sq_se[-1]:.1e})")
        return "\n".join(rows)

    def to_json(self) -> dict:
        return _clean({"format": FORMAT, "size_name": self.size_name, "status": self.status,
                       "predicted": PREDICTED, "summary": self.summary(),
                       "laws": [{**{k: v for k, v in dataclasses.asdict(law).items() if k not in ("fit", "verdict")},
                                 "agrees_at_largest": law.agrees_at_largest,
                                 "fit": dataclasses.asdict(law.fit), "verdict": dataclasses.asdict(law.verdict)}
                                for law in self.laws]})


# ------------------------------------------------------------------ the statistic
def pair_mean_abs(x: np.ndarray, y: np.ndarray) -> float:
    """(1 / (n m)) sum_ij |x_i - y_j| in O((n + m) log(n + m))."""
    y = np.sort(np.asarray(y, np.float64).ravel())
    x = np.asarray(x, np.float64).ravel()
    c = np.concatenate([[0.0], np.cumsum(y)])
    k = np.searchsorted(y, x)                       # y[:k] < x <= y[k:]
    total = np.sum(x * k - c[k] + (c[-1] - c[k]) - x * (len(y) - k))
    return float(total / (len(x) * len(y)))


def _within_sum(x: np.ndarray) -> float:
    """sum over pairs i < j of |x_i - x_j|."""
    x = np.sort(np.asarray(x, np.float64).ravel())
    n = len(x)
    return float(np.sum(x * (2.0 * np.arange(n) - n + 1)))


def cross_group_mean_abs(groups: Sequence[np.ndarray]) -> float:
    """Mean |x - x'| over pairs drawn from different groups (independent pairs only)."""
    sizes = np.array([g.size for g in groups], float)
    total = _within_sum(np.concatenate([g.ravel() for g in groups])) - sum(_within_sum(g) for g in groups)
    pairs = (sizes.sum() ** 2 - np.sum(sizes ** 2)) / 2.0
    if pairs <= 0:
        raise DmftcError("the energy distance needs draws from at least two independent groups")
    return float(total / pairs)


def energy_sq(finite: Sequence[np.ndarray], dmft: Sequence[np.ndarray]) -> float:
    """Unbiased D^2 between the law of the finite groups (one per network) and the DMFT groups (heads)."""
    x, y = np.concatenate([g.ravel() for g in finite]), np.concatenate([g.ravel() for g in dmft])
    return 2.0 * pair_mean_abs(x, y) - cross_group_mean_abs(finite) - cross_group_mean_abs(dmft)


def energy_sq_se(finite: Sequence[np.ndarray], dmft: Sequence[np.ndarray]) -> float:
    """Jackknife standard error of `energy_sq`: leave out one of `JACKKNIFE_BLOCKS` blocks of finite
    groups, or of DMFT groups; the two sides' variances add."""
    fin, dm = _blocks(finite), _blocks(dmft)
    var = 0.0
    for k, loo in ((len(fin), lambda i: energy_sq(fin[:i] + fin[i + 1:], dm)),
                   (len(dm), lambda i: energy_sq(fin, dm[:i] + dm[i + 1:]))):
        if k > 2:
            values = np.array([loo(i) for i in range(k)])
            var += (k - 1) / k * float(np.sum((values - values.mean()) ** 2))
    return float(np.sqrt(var))


def _blocks(groups: Sequence[np.ndarray]) -> list[np.ndarray]:
    parts = np.array_split(np.arange(len(groups)), min(JACKKNIFE_BLOCKS, len(groups)))
    return [np.concatenate([np.ravel(groups[i]) for i in part]) for part in parts]


def thin(network: np.ndarray) -> np.ndarray:
    """The first heads of one network's logits (L_attn, H, P, S, S), as many as fit in MAX_PER_GROUP
    values (at least one). Heads are exchangeable, so the pooled law over entries is unchanged."""
    per_head = network.size // network.shape[1]
    return network[:, :max(1, MAX_PER_GROUP // per_head)]


def ks_distance(x: np.ndarray, y: np.ndarray) -> float:
    """sup_z |F_x(z) - F_y(z)| of two pooled samples."""
    x, y = np.sort(np.ravel(x)), np.sort(np.ravel(y))
    z = np.concatenate([x, y])
    return float(np.max(np.abs(np.searchsorted(x, z, "right") / len(x) - np.searchsorted(y, z, "right") / len(y))))


def pooled_moments(x: np.ndarray) -> dict[str, float]:
    x = np.asarray(x, np.float64).ravel()
    m, v = float(x.mean()), float(x.var())
    return {"mean": m, "var": v, "kurtosis": float(np.mean((x - m) ** 4) / v ** 2 - 3.0) if v > 0 else float("nan")}


# ------------------------------------------------------------------ the comparison
def dmft_logit_blocks(logits: Mapping[int, np.ndarray], P: int, S: int) -> np.ndarray:
    """The solver's per-head logits (layer -> (n_t, heads, PS, PS)) cut to the blocks of one sequence:
    (n_t, L_attn, heads, P, S, S), attention layers in ascending order."""
    out = []
    for layer in sorted(logits):
        a = np.asarray(logits[layer])
        n_t, heads = a.shape[:2]
        a = a.reshape(n_t, heads, P, S, P, S)
        out.append(np.stack([a[:, :, p, :, p, :] for p in range(P)], axis=2))
    return np.stack(out, axis=1)


#: what is compared: the logits at initialization, after training, and the change training made
VIEWS = ("A(0)", "A(T)", "A(T) - A(0)")


def view(a: np.ndarray, what: str, axis: int) -> np.ndarray:
    """One of `VIEWS` of a logit history whose time axis is `axis`."""
    a = np.asarray(a, np.float64)
    first, last = np.take(a, 0, axis=axis), np.take(a, a.shape[axis] - 1, axis=axis)
    return {"A(0)": first, "A(T)": last, "A(T) - A(0)": last - first}[what]


def compare_logit_laws(dmft: Sequence[np.ndarray], finite: Mapping[int, np.ndarray], *,
                       views: Sequence[str] = VIEWS, size_name: str = "H") -> LogitReport:
    """Energy distance between the finite logits at each size and the DMFT's law, for each view.

    Parameters
    ----------
    dmft : sequence of array, each (n_t, L_attn, heads, P, S, S)
        One per DMFT Monte Carlo seed (see `dmft_logit_blocks`).
    finite : mapping size -> array (seeds, T+1, L_attn, H, P, S, S)
    views : sequence of str
        Any of `VIEWS`.
    """
    sizes = sorted(finite)
    if len(sizes) < 2:
        raise DmftcError(f"compare the logits at 2 sizes or more (got {sizes})")
    unknown = sorted(set(views) - set(VIEWS))
    if unknown:
        raise DmftcError(f"unknown logit views {unknown}; allowed: {', '.join(VIEWS)}")
    laws = []
    for what in views:
        # a DMFT group is one head: (heads, L_attn, P, S, S) -> one group per head
        dgroups = [h for d in dmft for h in np.moveaxis(view(d, what, 0), 1, 0)]
        pooled_dmft = np.concatenate([g.ravel() for g in dgroups])
        rows = {k: [] for k in ("e", "se", "ks")}
        moments = {"dmft": pooled_moments(pooled_dmft)}
        for n in sizes:
            a = view(finite[n], what, 1)                                             # (seeds, L_attn, H, P, S, S)
            fgroups = [thin(g) for g in a]
            rows["e"].append(energy_sq(fgroups, dgroups))
            rows["se"].append(energy_sq_se(fgroups, dgroups))
            rows["ks"].append(ks_distance(a, pooled_dmft))
            moments[str(n)] = pooled_moments(a)
        e, se = np.array(rows["e"]), np.array(rows["se"])
        dist = np.sign(e) * np.sqrt(np.abs(e))
        dist_se = se / (2.0 * np.maximum(np.abs(dist), np.sqrt(se)))
        resolved = e > RESOLVED_SIGMA * se
        fit = fit_power_law(sizes, dist, dist_se, resolved=resolved, size_name=size_name,
                            label=f"logit law distance, {what}")
        laws.append(LogitLaw(what, tuple(sizes), tuple(map(float, e)), tuple(map(float, se)),
                             tuple(map(float, dist)), tuple(map(float, dist_se)), tuple(rows["ks"]), moments, fit,
                             compare_rate(fit, PREDICTED, hint="add seeds or DMFT samples")))
    return LogitReport(tuple(laws), size_name)


# ------------------------------------------------------------------ figure
#: each view in words with its symbol
VIEW_WORDS = {"A(0)": "initial logit A(0)", "A(T)": "trained logit A(T)", "A(T) - A(0)": "logit change A(T) − A(0)"}
_LAW_COLORS = ("tab:green", "tab:red", "tab:purple", "tab:brown")


def plot_logit_laws(report: LogitReport, dmft: Sequence[np.ndarray], finite: Mapping[int, np.ndarray],
                    path) -> Path:
    """Write `logit_laws_figure(...)` to `path` (a PNG, atomically) and return the path."""
    return save_figure_atomic(logit_laws_figure(report, dmft, finite), path)


def logit_laws_figure(report: LogitReport, dmft: Sequence[np.ndarray], finite: Mapping[int, np.ndarray]):
    """Histograms of the pooled logits (DMFT and the smallest and largest size) for each view, and the
    energy distance against the size; a Figure.

    The distances are drawn as `dmftc check` draws a bias (`dmftc.crosscheck.plots`): resolved values as
    points ± s.e., the others as open triangles at their 2-sigma upper bound; the fit solid only through
    values all resolved, dash-dotted and labelled when some are not, none when none is; the predicted
    slope dashed. Every axis is labelled in words.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    laws = report.laws
    fig = Figure(figsize=(5.0 * (len(laws) + 1) + 2.0, 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(laws) + 1)
    for ax, law in zip(axes, laws):
        _histograms(ax, law, dmft, finite, report.size_name)
    ax = axes[-1]
    for law, color in zip(laws, _LAW_COLORS):
        _distances(ax, law, color)
    _log_axes(ax, laws[0].sizes, report.size_name)
    ax.set_ylabel("energy distance D to the DMFT's law")
    ax.set_title(f"distance to the DMFT's law (predicted {format_power(report.size_name, PREDICTED)})", fontsize=9)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    return fig


def _histograms(ax, law: LogitLaw, dmft: Sequence[np.ndarray], finite: Mapping[int, np.ndarray],
                size_name: str) -> None:
    """The pooled law of one view: the DMFT filled in grey, the smallest and largest size as outlines."""
    d = np.concatenate([np.ravel(view(x, law.what, 0)) for x in dmft])
    lo, hi = np.quantile(d, [0.002, 0.998])
    bins = np.linspace(lo, hi, 60)
    ax.hist(d, bins=bins, density=True, histtype="stepfilled", alpha=0.3, color="k",
            label=f"DMFT ({size_name} → ∞)")
    for n, color in ((law.sizes[0], "tab:orange"), (law.sizes[-1], "tab:blue")):
        ax.hist(np.ravel(view(finite[n], law.what, 1)), bins=bins, density=True, histtype="step", lw=1.5,
                color=color, label=f"{size_words(size_name)} = {n}")
    ax.set_yscale("log")
    ax.set_xlabel(VIEW_WORDS[law.what])
    ax.set_ylabel("probability density")
    ax.set_title(f"{VIEW_WORDS[law.what]} across heads", fontsize=9)
    ax.legend(fontsize=7)


def _distances(ax, law: LogitLaw, color: str) -> None:
    """One view's energy distances against the size, its fit and the predicted slope."""
    n, y, se = (np.asarray(a, dtype=float) for a in (law.sizes, law.distance, law.distance_se))
    res = np.array(law.fit.resolved, dtype=bool)
    what = VIEW_WORDS[law.what]
    _points(ax, n[res], y[res], se[res], color, "o", f"{what}: {law.verdict.status}")
    no_fit = "" if _fit_drawn(law.fit) else "; no fit drawn"
    _open_points(ax, n[~res], np.maximum(y[~res], 0.0) + RESOLVED_SIGMA * se[~res], color, "v",
                 f"{what}: upper bound (unresolved{no_fit})")
    _fit_lines(ax, law.fit, law.verdict, color)
