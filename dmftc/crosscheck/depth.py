"""Depth in transformers, measured: what each block learns and what the random branches add, against L.

docs/theory.md#depth (and #attention): with residual branches scaled beta0 / L^alpha_L,

- alpha_L = 1/2: the L random branches add up to an O(1) stream at initialization (the initial
  residual-stream kernel changes by O(1) across the blocks), but each block's own weights move
  only O(L^-1/2): the key and query weights of the attention freeze as L grows;
- alpha_L = 1: each block's weights move O(1) (the attention keeps learning), while the random
  branch contribution at initialization vanishes (O(L^-1/2) in the stream, O(L^-1) in its kernel).

`measure_depth(spec, depths=(1, 2, 4, 8, 16))` trains finite ensembles of the spec at each depth
L (`dmftc.simulate` with record="diag" and the weights' displacement) and measures per depth:

- kq_displacement  ||W(T) - W(0)||_F / ||W(0)||_F of every block's key and query weights after
                   the T training steps, averaged over blocks and over K and Q; per network, then
                   mean and standard error over seeds;
- kernel_change    ||E H^top(0) - H^1(0)||: the seed-averaged change of the initial residual-stream
                   kernel from the input of the first block (l = 0) to the top (l = L), RMS over
                   its (sample, token) entries, with the seeds' noise removed (the U-statistic of
                   `dmftc.crosscheck.stats.distance`): the deterministic, width-limit part;
- branch_sum       the RMS per coordinate of the random branch sum h^L(0) - h^0(0), from the
                   diagonal of the same kernel change: E diag(H^top - H^1) = E |h^L - h^0|^2 / n,
                   because the last weight of each branch enters linearly and independently of
                   h^0 (so E <h^0, branch> = 0);
- logit_change     RMS over entries of the attention logits' change A(T) - A(0), per network;

then power laws in L (`dmftc.crosscheck.fit`) and verdicts against the scaling analysis of the
depth limit (`dmftc.scaling.analyze` with limit L): ``dW:<K,Q>@trained`` (minus the L exponent
of their init std) for the displacement, the depth facts' branch exponent b for the branch sum
(b) and the kernel change (2 b, a square), ``dlogit:<attn>@trained`` for the logits. A verdict
uses the rules of `dmftc.crosscheck.heads.judge` (an expected fall must be resolved and at the
predicted rate; "flat" must be known to better than L^+-1/2); its status is "consistent",
"inconsistent" or "unresolved".

`measure_depth_tension(spec, depths)` runs both alpha_L = 1/2 and 1 (the hyperparameter
alpha_L of the spec; one compilation per depth serves both) and judges the contrast: the key/query
displacement must fall faster, and the kernel change slower, at alpha_L = 1/2 than at 1.

This module runs the simulator and the analysis and reuses the head-collapse verdict rules, so it
ranks above `dmftc.crosscheck.heads` in the layering (tests/test_layering.py).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import sympy

from dmftc.crosscheck.files import save_figure_atomic
from dmftc.crosscheck.fit import N_SIGMA, PowerLaw, _pm, fit_power_law, format_measured, format_power
from dmftc.crosscheck.heads import (MARGIN, HeadVerdict, MeasuredQuantity, Prediction, check_sweep, draw_power_law,
                                    judge, log_size_axes, size_axis_words)
from dmftc.crosscheck.heads import criterion as heads_criterion
from dmftc.crosscheck.report import _clean
from dmftc.crosscheck.stats import RESOLVED_SIGMA, _signed_sqrt, _sqrt_se, distance, seed_mean_se
from dmftc.errors import DmftcError
from dmftc.graph import build_graph
from dmftc.notation import hyper_symbol, size_symbol
from dmftc.scaling import analyze
from dmftc.scaling.parameterization import exponent, resolve_parameterization, residual_alpha
from dmftc.simulate import simulate
from dmftc.spec.types import Spec

FORMAT = "dmftc.depth/1"
QUANTITIES = ("kq_displacement", "kernel_change", "branch_sum", "logit_change")
DESCRIPTIONS = {
    "kq_displacement": "key/query weight displacement ||W(T) - W(0)|| / ||W(0)||, mean over blocks",
    "kernel_change": "change of the initial stream kernel across the blocks, ||E Phi^L(0) - Phi^0(0)||",
    "branch_sum": "RMS of the random branch sum h^L(0) - h^0(0) at initialization",
    "logit_change": "RMS change of the attention logits after training",
}
SHORT = {"kq_displacement": "K/Q displacement", "kernel_change": "initial kernel change",
         "branch_sum": "random branch sum", "logit_change": "logit change"}
STATUSES = ("consistent", "inconsistent", "unresolved")
DEFAULT_DEPTHS = (1, 2, 4, 8, 16)
#: the two depth exponents of the tension (docs/theory.md#depth)
TENSION_ALPHAS = (0.5, 1.0)


@dataclass(frozen=True)
class DepthFacts:
    """What the analysis says about the depth limit of the spec (`Scaling.depth`), as numbers."""

    kernel_at_init: str
    branch_exponent: float
    blocks: str
    block_update_exponent: float


@dataclass(frozen=True)
class DepthReport:
    """The depth measurement of one spec at one alpha_L (the contents of depth.json).

    Attributes
    ----------
    spec_name : str
    alpha_L : float
    depths : tuple of int
        The depths L, ascending.
    sizes : mapping
        The other sizes the networks had (N, H, S, P, D).
    seeds, seed, steps : int
    facts : DepthFacts
    quantities : tuple of MeasuredQuantity
    loss : tuple of (float, float)
        Seed-mean loss at initialization and after training, per depth (context: training works).
    """

    spec_name: str
    alpha_L: float
    depths: tuple[int, ...]
    sizes: Mapping[str, int]
    seeds: int
    seed: int
    steps: int
    facts: DepthFacts
    quantities: tuple[MeasuredQuantity, ...]
    loss: tuple[tuple[float, float], ...]

    def quantity(self, name: str) -> MeasuredQuantity:
        for q in self.quantities:
            if q.name == name:
                return q
        raise DmftcError(f"no quantity {name!r} in this report; measured: {', '.join(QUANTITIES)}")

    @property
    def status(self) -> str:
        """"consistent" when every verdict is; else "inconsistent" if any is, else "unresolved"."""
        return worst_status([q.status for q in self.quantities if q.status is not None])

    def table(self) -> list[dict]:
        """One row per depth: {"L": L, quantity: {"value", "se"}, "loss": [initial, final]}."""
        return [{"L": n, **{q.name: {"value": q.values[i], "se": q.ses[i]} for q in self.quantities},
                 "loss": list(self.loss[i])} for i, n in enumerate(self.depths)]

    def to_json(self) -> dict:
        """JSON-ready (NaN and inf become null)."""
        return _clean({
            "format": FORMAT, "spec": self.spec_name, "alpha_L": self.alpha_L, "depths": list(self.depths),
            "sizes": dict(self.sizes), "seeds": self.seeds, "seed": self.seed, "steps": self.steps,
            "analysis": dataclasses.asdict(self.facts), "status": self.status, "summary": self.summary(),
            "table": self.table(),
            "quantities": {q.name: {
                "description": q.description, "values": list(q.values), "ses": list(q.ses),
                "fit": dataclasses.asdict(q.fit), "prediction": dataclasses.asdict(q.prediction),
                "status": q.status, "verdict": None if q.verdict is None else dataclasses.asdict(q.verdict)}
                for q in self.quantities},
        })

    def summary(self) -> str:
        """The table, the fitted exponents and the verdicts, as text."""
        f = self.facts
        fixed = ", ".join(f"{k} = {v}" for k, v in self.sizes.items() if k in ("N", "H", "S", "P"))
        head = (f"depth of {self.spec_name} at alpha_L = {fraction(self.alpha_L)}: L = {', '.join(map(str, self.depths))}"
                f" ({fixed}), {self.seeds} seeds, {self.steps} steps; analysis: kernel at init {f.kernel_at_init} "
                f"(branches ~ {format_power('L', f.branch_exponent)}), blocks {f.blocks} "
                f"(updates ~ {format_power('L', f.block_update_exponent)})")
        width = max(len(q) for q in QUANTITIES)
        rows = [head, "", f"{'L':>4}  " + "  ".join(f"{q:<{width + 4}}" for q in QUANTITIES) + "  loss (init -> final)"]
        for i, n in enumerate(self.depths):
            cells = "  ".join(f"{_val(q.values[i], q.ses[i]):<{width + 4}}" for q in self.quantities)
            rows.append(f"{n:>4}  {cells}  {self.loss[i][0]:.3g} -> {self.loss[i][1]:.3g}")
        rows += ["", f"{'quantity':<{width}}  {'measured':<20}  {'predicted':<9}  {'chi2/dof':>8}  verdict"]
        for q in self.quantities:
            fit, p = q.fit, q.prediction
            measured = "-" if math.isnan(fit.exponent) else format_measured("L", fit.exponent, fit.exponent_se)
            pred = "-" if p.exponent is None else format_power("L", p.exponent)
            chi2 = "-" if math.isnan(fit.chi2_dof) else f"{fit.chi2_dof:.2f}"
            rows.append(f"{q.name:<{width}}  {measured:<20}  {pred:<9}  {chi2:>8}  {q.status or '(reported)'}")
        rows += ["", f"overall: {self.status}"]
        rows += [f"- {q.name}: {q.status}: {q.verdict.sentence}" for q in self.quantities if q.verdict]
        return "\n".join(rows)


@dataclass(frozen=True)
class DepthTension:
    """alpha_L = 1/2 against alpha_L = 1 on the same task, depths and seeds.

    Attributes
    ----------
    reports : tuple of DepthReport
        One per alpha_L, ascending.
    contrasts : mapping
        Quantity -> {"difference", "se", "sigmas", "expected"}: the exponent at alpha_L = 1/2 minus
        the one at 1, and the sign the theory expects ("<0": falls faster at 1/2, ">0": slower).
    status : str
        "consistent" when every verdict of both reports is and both contrasts are resolved with the
        expected sign; "inconsistent" when a verdict is or a contrast has the wrong sign at
        n_sigma; else "unresolved".
    sentence : str
    """

    reports: tuple[DepthReport, ...]
    contrasts: Mapping[str, Mapping[str, float | str]]
    status: str
    sentence: str

    def report(self, alpha_L: float) -> DepthReport:
        for r in self.reports:
            if abs(r.alpha_L - alpha_L) < 1e-12:
                return r
        raise DmftcError(f"no report at alpha_L = {alpha_L}; measured: {[r.alpha_L for r in self.reports]}")

    def to_json(self) -> dict:
        return _clean({"format": FORMAT, "status": self.status, "sentence": self.sentence,
                       "contrasts": {k: dict(v) for k, v in self.contrasts.items()},
                       "reports": [r.to_json() for r in self.reports]})

    def summary(self) -> str:
        parts = [r.summary() for r in self.reports]
        lines = [f"depth tension: {self.status}: {self.sentence}"]
        return "\n\n".join(parts + ["\n".join(lines)])

    def plot(self, path) -> Path:
        """One PNG with a panel per quantity, both alpha_L against L on log-log axes (`depth_figure`),
        written atomically."""
        return plot_depth(self.reports, path)


# ------------------------------------------------------------------ measurement
def depth_statistics(sim, kq_weights: Sequence[str]) -> dict[str, tuple[float, float, bool]]:
    """(value, standard error, resolved from zero) of each quantity for one ensemble.

    Parameters
    ----------
    sim : Simulation
        From `simulate(..., record="diag", displacement=True)` of a residual network with attention.
    kq_weights : sequence of str
        Names of the key and query weights ("attn0_K"); their copies "attn0_K[3]" are averaged.
    """
    if sim.record != "diag" or not sim.displacement:
        raise DmftcError("depth statistics need simulate(..., record='diag', displacement=True)")
    keys = [k for k in sim.displacement if k.split("[")[0] in kq_weights]
    if not keys:
        raise DmftcError(f"no key/query weights among the simulated weights ({', '.join(sim.displacement)})")
    moved = np.mean([np.asarray(sim.displacement[k][:, -1], np.float64) for k in keys], axis=0)
    streams = sorted(int(k[1:]) for k in sim.order if re.fullmatch(r"H\d+", k))
    d = (np.asarray(sim.order[f"H{streams[-1]}"][:, 0], np.float64)
         - np.asarray(sim.order[f"H{streams[0]}"][:, 0], np.float64))
    if not (np.all(np.isfinite(d)) and np.all(np.isfinite(moved))):
        raise DmftcError("the networks diverged (non-finite kernels or weights); lower the learning rate")
    kernel = distance(d, np.zeros(d.shape[1:]), what="initial stream kernel change")
    diag_mean, diag_se = seed_mean_se(np.einsum("sii->s", d) / d.shape[1])
    a = np.asarray(sim.order["logits"], np.float64)
    dlogit = np.sqrt(np.mean(np.square(a[:, -1] - a[:, 0]), axis=tuple(range(1, a.ndim - 1))))
    out = {}
    for name, per_seed in (("kq_displacement", moved), ("logit_change", dlogit)):
        m, s = seed_mean_se(per_seed)
        out[name] = (float(m), float(s), bool(m > RESOLVED_SIGMA * s))
    out["kernel_change"] = (kernel.bias, kernel.bias_se, kernel.resolved)
    m, s = float(diag_mean), float(diag_se)
    out["branch_sum"] = (_signed_sqrt(m), _sqrt_se(m, s), m > RESOLVED_SIGMA * s)
    return out


def depth_predictions(spec: Spec) -> tuple[dict[str, Prediction], DepthFacts]:
    """Per quantity the predicted exponent in L and its direction, from the analysis of the depth limit."""
    sc = analyze(dataclasses.replace(spec, limit=("L",)))
    if sc.depth is None:
        raise DmftcError(f"spec {spec.name!r}: the analysis finds no residual depth limit (no branch scaled "
                         "by a power of L); depth needs residual blocks `scale: beta0 / L**alpha_L`")
    graph = build_graph(spec)
    table = resolve_parameterization(spec, graph)
    hyper = {hyper_symbol(k): sympy.nsimplify(v) for k, v in spec.hyper.items()}
    L = size_symbol("L")
    kq = _kq_weights(spec, graph)
    disp = max(Fraction(sc.exponents[f"dW:{w}@trained"]["L"]) - Fraction(exponent(table[w].init_std, L, hyper))
               for w in kq)
    attn = sorted(k.split(":", 1)[1] for k in sc.exponents if k.startswith("dlogit:") and "@" not in k)
    dlogit = max(Fraction(sc.exponents[f"dlogit:{a}@trained"]["L"]) for a in attn)
    d = sc.depth
    b, upd = Fraction(d.branch_exponent), Fraction(d.block_update_exponent)
    facts = DepthFacts(d.kernel_at_init, float(b), d.blocks, float(upd))
    names = "/".join(kq)
    preds = {
        "kq_displacement": _prediction(disp, f"analysis: dW:{names}@trained relative to their init std "
                                             f"~ {format_power('L', float(disp))} (blocks {d.blocks}, "
                                             f"block updates ~ {format_power('L', float(upd))})"),
        "kernel_change": _prediction(2 * b, f"analysis: the random branches sum to {format_power('L', float(b))} "
                                            f"(kernel at init {d.kernel_at_init}); their kernel, a square, "
                                            f"~ {format_power('L', float(2 * b))}"),
        "branch_sum": _prediction(b, f"analysis: depth facts, random branch sum ~ {format_power('L', float(b))}"),
        "logit_change": _prediction(dlogit, f"analysis: dlogit:{'/'.join(attn)}@trained "
                                            f"~ {format_power('L', float(dlogit))}"),
    }
    return preds, facts


def analyse_depth(per_depth: Mapping[int, Mapping[str, tuple[float, float, bool]]],
                  preds: Mapping[str, Prediction], *, n_sigma: float = 3.0,
                  margin: float = 0.1) -> tuple[MeasuredQuantity, ...]:
    """Fits and verdicts from per-depth `depth_statistics` (pure: no simulation)."""
    depths = sorted(per_depth)
    out = []
    for name in QUANTITIES:
        values = np.array([per_depth[n][name][0] for n in depths])
        ses = np.array([per_depth[n][name][1] for n in depths])
        resolved = [per_depth[n][name][2] for n in depths]
        fit = fit_power_law(depths, values, ses, resolved=resolved, size_name="L", label=SHORT[name])
        pred = preds[name]
        verdict = judge_depth(name, fit, pred, n_sigma=n_sigma, margin=margin) if pred.expect else None
        out.append(MeasuredQuantity(name, DESCRIPTIONS[name], tuple(map(float, values)), tuple(map(float, ses)),
                                 fit, pred, verdict))
    return tuple(out)


def judge_depth(name: str, fit: PowerLaw, pred: Prediction, *, n_sigma: float = 3.0,
                margin: float = 0.1) -> HeadVerdict:
    """`dmftc.crosscheck.heads.judge` (falls / flat, resolved), with a rate gate that allows for
    finite depth: a gated prediction fails when |p - predicted| exceeds both n_sigma standard
    errors and `margin`. The analysis gives the leading power of L only; at L <= 16 the corrections
    move a fitted exponent by a few hundredths (measured: the key/query displacement at
    alpha_L = 1/2 falls as L^-0.51 after one step and L^-0.57 after ten), which more seeds would
    otherwise turn into a failure. `margin` keeps L^0 and L^-1/2 apart (it must stay below 1/4).
    A flat prediction (L^0) gets no margin: `judge` applies `dmftc check`'s rule to it (a rise several
    standard errors from L^0 passes only when a + b/L fits about as well as the power law); `criterion`
    states the rules in words.
    """
    return judge(name, fit, pred, n_sigma=n_sigma, margin=margin, rate_margin=margin)


def criterion(n_sigma: float = N_SIGMA, margin: float = MARGIN) -> str:
    """The rules of `judge_depth` in words: `heads.criterion` along L, with the finite-depth margin."""
    return (heads_criterion("L", n_sigma, margin) + f", or, a fall, when |p - p_pred| <= {margin:g} (corrections "
            "at finite depth)")


def measure_depth(spec: Spec, depths: Sequence[int] = DEFAULT_DEPTHS, seeds: int = 8, seed: int = 0, *,
                  sizes: Mapping[str, int] | None = None, progress: Callable | None = None,
                  n_sigma: float = 3.0, margin: float = 0.1) -> DepthReport:
    """Measure the depth quantities of `spec` at each depth L and judge them against the analysis.

    Parameters
    ----------
    spec : Spec
        A residual network with attention whose branches are scaled by a power of the size L
        (e.g. specs/transformer_mup.yaml), with at least one training step.
    depths : sequence of int
        The depths L (at least 3 for a verdict).
    seeds, seed : int
        Networks per depth (at least 2) and the first seed.
    sizes : mapping, optional
        The other sizes, e.g. {"N": 8, "H": 4} (default: the spec's).
    progress : callable, optional
        Wraps the loop over depths (see `dmftc.crosscheck.progress`); None: silent.
    n_sigma, margin : float
        As in `dmftc.crosscheck.heads.judge`.

    Returns
    -------
    DepthReport
        Nothing is written; see `DepthReport.to_json`.
    """
    depths = _check(spec, depths, seeds, sizes)
    preds, facts = depth_predictions(spec)
    kq = _kq_weights(spec, build_graph(spec))
    loop = depths if progress is None else progress(depths, total=len(depths), desc=f"depth alpha_L={fraction(alpha_L(spec))}",
                                                     label=lambda n: f"L={n}")
    per_depth, loss, used = {}, [], {}
    for n in loop:
        sim = simulate(spec, sizes={**(sizes or {}), "L": n}, seeds=seeds, record="diag", seed=seed,
                       displacement=True)
        per_depth[n] = depth_statistics(sim, kq)
        mean_loss = sim.loss.mean(axis=0)
        loss.append((float(mean_loss[0]), float(mean_loss[-1])))
        used = {k: v for k, v in sim.sizes.items() if k != "L"}
    quantities = analyse_depth(per_depth, preds, n_sigma=n_sigma, margin=margin)
    return DepthReport(spec.name, alpha_L(spec), tuple(depths), used, seeds, seed, spec.training.steps, facts,
                       quantities, tuple(loss))


def measure_depth_tension(spec: Spec, depths: Sequence[int] = DEFAULT_DEPTHS, seeds: int = 8, seed: int = 0, *,
                          sizes: Mapping[str, int] | None = None, alphas: Sequence[float] = TENSION_ALPHAS,
                          progress: Callable | None = None, n_sigma: float = 3.0,
                          margin: float = 0.1) -> DepthTension:
    """`measure_depth` at alpha_L = 1/2 and 1 (the spec's hyperparameter alpha_L set to each) and the
    contrast between them (see `DepthTension`)."""
    if len(alphas) != 2:
        raise DmftcError(f"the depth tension compares two alpha_L (got {list(alphas)})")
    reports = tuple(measure_depth(with_alpha_L(spec, a), depths, seeds, seed, sizes=sizes, progress=progress,
                                  n_sigma=n_sigma, margin=margin) for a in sorted(alphas))
    return tension(reports, n_sigma=n_sigma)


def tension(reports: Sequence[DepthReport], *, n_sigma: float = 3.0) -> DepthTension:
    """The contrast of two depth reports (the smaller alpha_L first); see `DepthTension`."""
    low, high = sorted(reports, key=lambda r: r.alpha_L)
    contrasts, signs = {}, {}
    for name in ("kq_displacement", "kernel_change"):
        a, b = low.quantity(name), high.quantity(name)
        diff = a.fit.exponent - b.fit.exponent
        se = math.hypot(a.fit.exponent_se, b.fit.exponent_se)
        expected = (a.prediction.exponent or 0.0) - (b.prediction.exponent or 0.0)
        sign = "<0" if expected < 0 else ">0" if expected > 0 else "0"
        sig = abs(diff) / se if se > 0 else float("nan")
        contrasts[name] = {"difference": diff, "se": se, "sigmas": sig, "predicted": expected, "expected": sign}
        ok = (diff < 0) if sign == "<0" else (diff > 0) if sign == ">0" else False
        signs[name] = ("resolved" if ok and sig > n_sigma else
                       "reversed" if (not ok) and sign != "0" and sig > n_sigma else "unresolved")
    statuses = [r.status for r in reports]
    lo, hi = fraction(low.alpha_L), fraction(high.alpha_L)
    kq, kc = contrasts["kq_displacement"], contrasts["kernel_change"]
    told = (f"K/Q displacement exponent at alpha_L = {lo} minus at {hi}: {_pm(kq['difference'], kq['se'])} "
            f"(predicted {kq['predicted']:+g}); initial kernel change: {_pm(kc['difference'], kc['se'])} "
            f"(predicted {kc['predicted']:+g})")
    if "inconsistent" in statuses or "reversed" in signs.values():
        status = "inconsistent"
        bad = [f"alpha_L = {fraction(r.alpha_L)}: {q.name} {q.verdict.sentence}" for r in reports
               for q in r.quantities if q.status == "inconsistent"]
        sentence = "the measurement disagrees with the analysis: " + "; ".join(bad + [told])
    elif "unresolved" in statuses or "unresolved" in signs.values():
        status = "unresolved"
        sentence = "not resolved at these depths and seeds (add seeds or depths): " + told
    else:
        status = "consistent"
        sentence = (f"with alpha_L = {lo} the key/query weights freeze as L grows while the random branches "
                    f"keep an O(1) initial kernel; with alpha_L = {hi} they keep learning while the random "
                    f"branches' kernel vanishes. " + told)
    return DepthTension(tuple(sorted(reports, key=lambda r: r.alpha_L)), contrasts, status, sentence)


# ------------------------------------------------------------------ helpers
def alpha_L(spec: Spec) -> float:
    """The depth exponent of the spec's residual branches (beta0 / L**alpha_L), as a number."""
    expr, depth = residual_alpha(spec.model)
    if expr is None:
        raise DmftcError(f"spec {spec.name!r} has no residual blocks: there is no depth to measure")
    value = expr.xreplace({hyper_symbol(k): sympy.nsimplify(v) for k, v in spec.hyper.items()})
    if not value.is_number:
        raise DmftcError(f"spec {spec.name!r}: the branch scale's power of L, {expr}, is not a number")
    return float(value)


def with_alpha_L(spec: Spec, value: float) -> Spec:
    """`spec` with its hyperparameter alpha_L set to `value` (the branch scale must use it)."""
    expr, _ = residual_alpha(spec.model)
    if expr is None or hyper_symbol("alpha_L") not in expr.free_symbols:
        raise DmftcError(f"spec {spec.name!r}: the residual branches must be scaled `beta0 / L**alpha_L` with "
                         "the hyperparameter alpha_L to vary it")
    return dataclasses.replace(spec, hyper={**spec.hyper, "alpha_L": float(value)})


def _kq_weights(spec: Spec, graph) -> list[str]:
    kq = sorted(n for n, w in graph.weights.items() if w.role in ("key", "query"))
    if not kq:
        raise DmftcError(f"spec {spec.name!r} has no attention: there are no key/query weights to follow")
    return kq


def _check(spec: Spec, depths: Sequence[int], seeds: int, sizes: Mapping[str, int] | None) -> list[int]:
    alpha_L(spec)
    if "L" not in spec.sizes:
        raise DmftcError(f"spec {spec.name!r} declares no size L (sizes: {sorted(spec.sizes)})")
    values = check_sweep(depths, seeds, spec, "depths", "the weights' displacement")
    if sizes and "L" in sizes:
        raise DmftcError("sizes fixes L; the depths are given separately")
    return values


def _prediction(p: Fraction, source: str) -> Prediction:
    expect = "falls" if p < 0 else "flat" if p == 0 else None
    return Prediction(float(p), expect, source, gate=True)


def worst_status(statuses: Sequence[str]) -> str:
    """The most severe of "consistent" / "unresolved" / "inconsistent" ("unresolved" when there is none)."""
    if not statuses:
        return "unresolved"
    return "inconsistent" if "inconsistent" in statuses else "unresolved" if "unresolved" in statuses else "consistent"


def fraction(a: float) -> str:
    """An exponent as a small fraction: 0.5 -> "1/2"."""
    return str(Fraction(a).limit_denominator(8))


def _val(value: float, se: float) -> str:
    return f"{value:.3g} ± {se:.1g}"


# ------------------------------------------------------------------ plot
#: each quantity's y axis in words with its symbols
YLABELS = {
    "kq_displacement": "relative K/Q weight change ||W(T) − W(0)|| / ||W(0)||",
    "kernel_change": "initial kernel change ||E Φ^L(0) − Φ^0(0)||",
    "branch_sum": "random branch sum, RMS of h^L(0) − h^0(0)",
    "logit_change": "logit change, RMS of A(T) − A(0)",
}
#: each panel's title in words
TITLES = {
    "kq_displacement": "key/query weights: displacement after training, mean over blocks",
    "kernel_change": "initial residual-stream kernel: change across the blocks",
    "branch_sum": "random branch sum at initialization",
    "logit_change": "attention logits: change after training",
}
_COLORS = ("tab:orange", "tab:blue", "tab:green", "tab:red")


def branch_words(alpha: float) -> str:
    """What alpha_L does, in words with its symbols: 0.5 -> "branches scaled β0 / L^1/2 (α_L = 1/2)"."""
    scale = "L" if alpha == 1 else format_power("L", alpha)
    return f"branches scaled β0 / {scale} (α_L = {fraction(alpha)})"


def plot_depth(reports: Sequence[DepthReport], path) -> Path:
    """Write `depth_figure(reports)` to `path` (a PNG, atomically) and return the path."""
    return save_figure_atomic(depth_figure(reports), path)


def depth_figure(reports: Sequence[DepthReport]):
    """A 2 x 2 figure, one panel per quantity, every report's values against L on log-log axes.

    Each report (one alpha_L, one colour) is drawn by `dmftc.crosscheck.heads.draw_power_law`: resolved
    values as points ± s.e., unresolved ones as upper bounds, a solid fit only through values all
    resolved (dash-dotted and labelled when some are not, none when none is) and the predicted slope
    dashed. Both axes are labelled in words; the legend names each alpha_L by what it does.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(17.0, 9.0), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 2).ravel()
    depths = sorted({d for r in reports for d in r.depths})
    for ax, name in zip(axes, QUANTITIES):
        for r, color in zip(reports, _COLORS):
            q = r.quantity(name)
            draw_power_law(ax, q.fit, q.prediction.exponent, color, branch_words(r.alpha_L), q.status or "reported")
        log_size_axes(ax, depths, size_axis_words("L"), YLABELS[name])
        ax.set_title(TITLES[name], fontsize=10)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    r0 = reports[0]
    fixed = ", ".join(f"{k} = {v}" for k, v in r0.sizes.items() if k in ("N", "H", "S", "P"))
    fig.suptitle(f"{r0.spec_name}: depth tension ({fixed}, {r0.steps} training steps, {r0.seeds} seeds)",
                 fontsize=11)
    return fig
