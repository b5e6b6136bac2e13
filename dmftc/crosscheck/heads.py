"""Head collapse, measured: across-head spread of the attention logits as the key dimension grows.

docs/theory.md#limits-and-regimes: with logit scale N^-alpha_A, the logits of every head start with a random
part of order N^(1/2 - alpha_A). At alpha_A = 1 that part vanishes as N -> inf, the logits
become deterministic order parameters driven by head-averaged kernels from identical initial
conditions, and all heads follow the same dynamics (they collapse to one effective head),
while the attention still learns (an O(1) change common to all heads). At alpha_A = 1/2 the
logits stay O(1) and random per head.

`measure_heads(spec, {"N": [16, 32, 64]})` trains finite ensembles of the spec at each size
(`dmftc.simulate`, record="diag") and measures, per network, from the logits A (seeds, T+1,
L_attn, H, P, S, S):

- headvar_init    across-head variance (unbiased over the H heads) of A(0), averaged over
                  the entries (samples, query and key tokens) and attention layers;
- headvar_change  the same for the change D = A(T) - A(0);
- mean_change     RMS over entries of the head average of D (noise included: its square is
                  the head-common part squared plus headvar_change / H);
- common_change   that head-common part alone, sqrt(mean_change^2 - headvar_change / H) (an
                  unbiased estimate of the square, signed square root): what stays finite;
- rms_init        RMS of A(0) over entries and heads;

each averaged over seeds with its standard error; then power laws in the size
(`dmftc.crosscheck.fit`) and verdicts against the scaling analysis (`dmftc.scaling.analyze`:
``logit:<attn>`` is the size of A(0), ``dlogit:<attn>@trained`` that of the change after
training; the random part of the change has no exponent of its own there and is predicted
from the theory: it keeps its initial order).

This module runs the simulator, so unlike the rest of `dmftc.crosscheck` it sits above
`dmftc.simulate` and `dmftc.scaling` in the layering (tests/test_layering.py); it never
imports the DMFT, the code generator or the solver.
"""

from __future__ import annotations

import dataclasses
import math
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from dmftc.crosscheck.files import save_figure_atomic
from dmftc.crosscheck.fit import (
    FLAT_RESOLUTION, N_SIGMA, TOLERANCE, PowerLaw, _judge_finite, fit_power_law, format_measured, format_power,
)
from dmftc.crosscheck.needs import SE_SEEDS, VERDICT_SIZES, require_seeds
from dmftc.crosscheck.plots import _figure, _fit_drawn, _open_points, _points, fit_and_prediction, size_words
from dmftc.crosscheck.report import _clean, finite_rule, rate_rule
from dmftc.crosscheck.stats import RESOLVED_SIGMA, _signed_sqrt, _sqrt_se, seed_mean_se
from dmftc.budget import check_simulation
from dmftc.errors import DmftcError
from dmftc.scaling import analyze
from dmftc.simulate import simulate
from dmftc.spec.types import Spec

FORMAT = "dmftc.heads/1"
QUANTITIES = ("headvar_init", "headvar_change", "mean_change", "common_change", "rms_init")
DESCRIPTIONS = {
    "headvar_init": "across-head variance of the initial logits",
    "headvar_change": "across-head variance of the logit change",
    "mean_change": "head-averaged logit change (RMS, noise included)",
    "common_change": "head-common logit change (noise removed)",
    "rms_init": "RMS of the initial logits",
}
EXPECTATIONS = ("falls", "flat", "not_falling")
STATUSES = ("pass", "fail", "unresolved")
#: a variance that would collapse falls as N^-1 (alpha_A = 1); "does not fall" must exclude it
COLLAPSE_RATE = -1.0
#: an expected fall must be faster than size^-MARGIN (and than n_sigma standard errors) to count
MARGIN = 0.1


@dataclass(frozen=True)
class Prediction:
    """What the analysis (or the theory) says about one quantity.

    Attributes
    ----------
    exponent : float or None
        Predicted exponent in the size (None: no number, only a direction).
    expect : str or None
        "falls", "flat" or "not_falling"; None: reported, not judged.
    source : str
        Where the prediction comes from, in words.
    gate : bool
        A measured rate inconsistent with `exponent` fails the verdict (predictions the
        analysis makes exactly); otherwise the rate is reported only.
    """

    exponent: float | None
    expect: str | None
    source: str
    gate: bool = False

    def label(self, n: str) -> str:
        """What the verdict tests, for a report's "predicted" column: the exponent when it is judged (a
        gated rate, n^0 for a finite quantity), "falls (~n^p)" when only the fall is judged, "no fall"."""
        if self.exponent is None:
            return {"falls": "falls", "not_falling": "no fall"}.get(self.expect, "-")
        power = format_power(n, self.exponent)
        if self.gate or self.expect not in ("falls", "not_falling"):
            return power
        return f"{'falls' if self.expect == 'falls' else 'no fall'} (~{power})"


@dataclass(frozen=True)
class HeadVerdict:
    """The verdict on one quantity.

    Attributes
    ----------
    quantity, expect : str
    status : str
        "pass", "fail" or "unresolved".
    sentence : str
        The verdict in plain words, with the numbers.
    exponent, exponent_se : float
        The fitted exponent and its standard error.
    predicted : float or None
        The predicted exponent, if any.
    sigmas : float
        |exponent - predicted| / exponent_se (NaN with no prediction or no fit).
    rate : str or None
        "consistent" / "inconsistent" with `predicted` at n_sigma (None with no prediction).
    """

    quantity: str
    expect: str
    status: str
    sentence: str
    exponent: float
    exponent_se: float
    predicted: float | None
    sigmas: float
    rate: str | None
    route: str = ""   # a pass not by the rate within n_sigma: "a + b/N" (a finite limit), "within 0.1" (margin)


@dataclass(frozen=True)
class MeasuredQuantity:
    """One measured quantity against a size (N, H or L): values, standard errors, fit, prediction, verdict.

    `status` is the verdict's "consistent" / "inconsistent" / "unresolved" (None: not judged).
    """

    name: str
    description: str
    values: tuple[float, ...]
    ses: tuple[float, ...]
    fit: PowerLaw
    prediction: Prediction
    verdict: HeadVerdict | None

    @property
    def status(self) -> str | None:
        return None if self.verdict is None else _STATUS[self.verdict.status]


_STATUS = {"pass": "consistent", "fail": "inconsistent", "unresolved": "unresolved"}
_FLAT = {v: k for k, v in _STATUS.items()}


@dataclass(frozen=True)
class HeadReport:
    """The head-collapse measurement of one spec along one size axis (the contents of heads.json).

    Attributes
    ----------
    spec_name, size_name : str
    sizes : tuple of int
        Ascending.
    seeds, seed, steps, heads : int
        Networks per size, the first seed, training steps T, heads H.
    regime : str or None
        The analysis' regime of the spec; `collapse` its head verdict ("collapse",
        "diverse" or None).
    quantities : tuple of MeasuredQuantity
    n_sigma, margin : float
        What the verdicts were judged with (`judge`); `criterion` states the rule.
    """

    spec_name: str
    size_name: str
    sizes: tuple[int, ...]
    seeds: int
    seed: int
    steps: int
    heads: int
    regime: str | None
    collapse: str | None
    quantities: tuple[MeasuredQuantity, ...]
    n_sigma: float = N_SIGMA
    margin: float = MARGIN

    @property
    def criterion(self) -> str:
        """The rule the verdicts were judged by, in words (`criterion`)."""
        return criterion(self.size_name, self.n_sigma, self.margin) + (
            "; dmftc heads exits 0 only when every verdict passes (1 otherwise)")

    def quantity(self, name: str) -> MeasuredQuantity:
        for q in self.quantities:
            if q.name == name:
                return q
        raise DmftcError(f"no quantity {name!r} in this report; measured: {', '.join(QUANTITIES)}")

    @property
    def fits(self) -> dict[str, PowerLaw]:
        return {q.name: q.fit for q in self.quantities}

    @property
    def verdicts(self) -> tuple[HeadVerdict, ...]:
        return tuple(q.verdict for q in self.quantities if q.verdict is not None)

    @property
    def status(self) -> str:
        """"pass" when every verdict passes; else "fail" if any fails, else "unresolved"."""
        statuses = [v.status for v in self.verdicts]
        if not statuses:
            return "unresolved"
        return "fail" if "fail" in statuses else "unresolved" if "unresolved" in statuses else "pass"

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def table(self) -> list[dict]:
        """One row per size: {"size": n, quantity: {"value", "se"}, ...}."""
        return [{"size": n, **{q.name: {"value": q.values[i], "se": q.ses[i]} for q in self.quantities}}
                for i, n in enumerate(self.sizes)]

    def to_json(self) -> dict:
        """JSON-ready (NaN and inf become null)."""
        return _clean({
            "format": FORMAT, "spec": self.spec_name, "size_name": self.size_name, "sizes": list(self.sizes),
            "seeds": self.seeds, "seed": self.seed, "steps": self.steps, "heads": self.heads,
            "analysis": {"regime": self.regime, "heads": self.collapse},
            "status": self.status, "summary": self.summary(), "criterion": self.criterion,
            "table": self.table(),
            "quantities": {q.name: {
                "description": q.description, "values": list(q.values), "ses": list(q.ses),
                "fit": dataclasses.asdict(q.fit), "prediction": dataclasses.asdict(q.prediction),
                "verdict": None if q.verdict is None else dataclasses.asdict(q.verdict)}
                for q in self.quantities},
        })

    def summary(self) -> str:
        """The table, the fitted exponents and the verdicts, as text for the terminal."""
        n = self.size_name
        head = (f"head collapse of {self.spec_name}: {n} = {', '.join(map(str, self.sizes))}, H = {self.heads}, "
                f"{self.seeds} seeds, {self.steps} steps; analysis: {self.regime}, heads {self.collapse or '-'}")
        width = max(len(q) for q in QUANTITIES)
        rows = [head, "", f"{n:>6}  " + "  ".join(f"{q:<{width + 11}}" for q in QUANTITIES)]
        for i, size in enumerate(self.sizes):
            rows.append(f"{size:>6}  " + "  ".join(
                f"{_pm(q.values[i], q.ses[i]):<{width + 11}}" for q in self.quantities))
        rows += ["", f"{'quantity':<{width}}  {'measured':<22}  {'predicted':<14}  {'chi2/dof':>8}  verdict"]
        for q in self.quantities:
            f, p = q.fit, q.prediction
            measured = "-" if math.isnan(f.exponent) else format_measured(n, f.exponent, f.exponent_se)
            pred = p.label(n)
            chi2 = "-" if math.isnan(f.chi2_dof) else f"{f.chi2_dof:.2f}"
            status = verdict_text(q.verdict.status, q.verdict) if q.verdict else "(reported)"
            rows.append(f"{q.name:<{width}}  {measured:<22}  {pred:<14}  {chi2:>8}  {status}")
        rows += ["", f"overall: {self.status}"]
        rows += [f"- {v.quantity}: {v.status}: {v.sentence}" for v in self.verdicts]
        noisy = self._noise_note()
        rule = textwrap.wrap(f"Criterion: {self.criterion}.", width=100)
        return "\n".join(rows + ([f"- note: {noisy}"] if noisy else []) + ["", *rule])

    def plot(self, out_dir) -> list[Path]:
        """One PNG per quantity, out_dir/heads_<quantity>.png (written atomically): the values against
        the size on log-log axes with standard errors, the fitted power law and the predicted slope."""
        return [_plot_quantity(self, q, Path(out_dir) / f"heads_{q.name}.png") for q in self.quantities]

    def _noise_note(self) -> str:
        """Say so when the noise of single heads, not the head-common change, sets mean_change."""
        mean, common = self.quantity("mean_change"), self.quantity("common_change")
        share = [c / m if m > 0 else 1.0 for m, c in zip(mean.values, common.values)]
        if min(share) >= 0.5:
            return ""
        return ("at " + ", ".join(f"{self.size_name}={n}" for n, s in zip(self.sizes, share) if s < 0.5)
                + " the head-common part is under half of mean_change, which there mostly measures the "
                  "per-head noise sqrt(headvar_change / H); common_change removes that noise")


# ------------------------------------------------------------------ measurement
def head_statistics(logits) -> dict[str, np.ndarray]:
    """Per-network head statistics of one ensemble's logits.

    Parameters
    ----------
    logits : array_like, shape (seeds, T+1, L_attn, H, P, S, S)
        As `Simulation.order["logits"]`; needs H >= 2 and T >= 1.

    Returns
    -------
    dict
        headvar_init, headvar_change, mean_change, rms_init and common_sq, each (seeds,):
        common_sq is the unbiased estimate of the head-common change squared (may be negative).
    """
    a = np.asarray(logits, dtype=np.float64)
    if a.ndim != 7:
        raise DmftcError(f"logits have shape {a.shape}; expected (seeds, T+1, L_attn, H, P, S, S)")
    if a.shape[3] < 2:
        raise DmftcError(f"the across-head variance needs at least 2 heads (H = {a.shape[3]}); set sizes.H >= 2")
    if a.shape[1] < 2:
        raise DmftcError("the logit change needs at least one training step; set training.steps >= 1")
    if not np.all(np.isfinite(a)):
        raise DmftcError("the logits are not finite (training diverged); lower the learning rate")
    h = a.shape[3]
    a0, d = a[:, 0], a[:, -1] - a[:, 0]
    entries = (1, 2, 3, 4)                     # layers, samples, query and key tokens
    var_d = np.var(d, axis=2, ddof=1).mean(axis=entries)
    mean_sq = np.square(d.mean(axis=2)).mean(axis=entries)
    return {
        "headvar_init": np.var(a0, axis=2, ddof=1).mean(axis=entries),
        "headvar_change": var_d,
        "mean_change": np.sqrt(mean_sq),
        "common_sq": mean_sq - var_d / h,
        "rms_init": np.sqrt(np.square(a0).mean(axis=(1, 2, 3, 4, 5))),
    }


def summarize(per_size: Mapping[int, Mapping[str, np.ndarray]]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Seed means and standard errors per quantity, sizes ascending: {name: (values, ses)}."""
    sizes = sorted(per_size)
    out = {}
    for name in ("headvar_init", "headvar_change", "mean_change", "rms_init"):
        stats = [seed_mean_se(per_size[n][name]) for n in sizes]
        out[name] = (np.array([float(m) for m, _ in stats]), np.array([float(s) for _, s in stats]))
    common = [seed_mean_se(per_size[n]["common_sq"]) for n in sizes]
    out["common_change"] = (np.array([_signed_sqrt(float(m)) for m, _ in common]),
                            np.array([_sqrt_se(float(m), float(s)) for m, s in common]))
    out["_common_resolved"] = np.array([float(m) > RESOLVED_SIGMA * float(s) for m, s in common])
    return out


def predictions(spec: Spec, size_name: str) -> tuple[dict[str, Prediction], str, str | None]:
    """Per quantity the predicted exponent and direction, from `dmftc.scaling.analyze(spec)`;
    also the regime and the head verdict."""
    sc = analyze(spec)
    if size_name not in sc.limit:
        raise DmftcError(f"--sizes names {size_name!r}, but the spec takes {', '.join(sc.limit)} -> inf; "
                         f"measure along a limit size, e.g. --sizes {sc.limit[0]}=16,32,64,128")
    attn = sorted(k.split(":", 1)[1] for k in sc.exponents if k.startswith("logit:") and "@" not in k)
    if not attn:
        raise DmftcError(f"spec {spec.name!r} has no attention: there are no heads to measure")
    init = max(Fraction(sc.exponents[f"logit:{a}"][size_name]) for a in attn)
    trained = max(Fraction(sc.exponents[f"dlogit:{a}@trained"][size_name]) for a in attn)
    n, names = size_name, "/".join(attn)
    var_init = 2 * init
    init_src = (f"analysis: logit:{names} ~ {format_power(n, float(init))}, "
                f"so its variance across heads ~ {format_power(n, float(var_init))}")
    trained_src = f"analysis: dlogit:{names}@trained ~ {format_power(n, float(trained))}"
    collapse = sc.heads == "collapse"
    preds = {
        "headvar_init": Prediction(float(var_init), "falls" if var_init < 0 else "not_falling", init_src, gate=True),
        "rms_init": Prediction(float(init), None, f"analysis: logit:{names}"),
        "mean_change": Prediction(float(trained), None, trained_src + " (mean_change adds the per-head noise)"),
    }
    if collapse:
        preds["headvar_change"] = Prediction(
            float(var_init), "falls",
            f"theory (docs/theory.md#limits-and-regimes): heads collapse, the random part of the logits keeps its initial "
            f"order, variance ~ {format_power(n, float(var_init))} (measured there: about N^-1); the analysis "
            "gives no separate exponent for the random part of the change")
        preds["common_change"] = Prediction(float(trained), "flat" if trained == 0 else None,
                                            trained_src + ": the change common to all heads")
    else:
        preds["headvar_change"] = Prediction(
            None, "not_falling",
            f"theory (docs/theory.md#limits-and-regimes): heads {sc.heads or 'do not collapse'}: the logits stay random per "
            f"head; {trained_src} bounds the change itself")
        preds["common_change"] = Prediction(float(trained), None, trained_src)
    return preds, sc.regime, sc.heads


def analyse(per_size: Mapping[int, Mapping[str, np.ndarray]], preds: Mapping[str, Prediction], *,
            size_name: str = "N", n_sigma: float = N_SIGMA, margin: float = MARGIN) -> tuple[MeasuredQuantity, ...]:
    """Fits and verdicts from per-size `head_statistics` (pure: no simulation)."""
    sizes = sorted(per_size)
    stats = summarize(per_size)
    out = []
    for name in QUANTITIES:
        values, ses = stats[name]
        resolved = stats["_common_resolved"] if name == "common_change" else None
        fit = fit_power_law(sizes, values, ses, resolved=resolved, size_name=size_name, label=DESCRIPTIONS[name])
        pred = preds[name]
        verdict = judge(name, fit, pred, n_sigma=n_sigma, margin=margin) if pred.expect else None
        out.append(MeasuredQuantity(name, DESCRIPTIONS[name], tuple(float(v) for v in values),
                                tuple(float(s) for s in ses), fit, pred, verdict))
    return tuple(out)


def judge(name: str, fit: PowerLaw, pred: Prediction, *, n_sigma: float = N_SIGMA,
          margin: float = MARGIN, rate_margin: float = 0.0) -> HeadVerdict:
    """Does the fitted exponent do what `pred.expect` says?

    Every verdict needs 3 sizes whose values are resolved from zero (else unresolved). Then, with
    the fitted exponent p and its error se:

    - falls: pass when p < -max(n_sigma se, margin); otherwise unresolved when the expected fall
      (the prediction, or N^-1) is within n_sigma se of p; else fail.
    - not_falling: fail when p < -max(n_sigma se, margin); otherwise unresolved when a fall as N^-1
      (the rate of a collapsing variance) is within n_sigma se of p; else pass.
    - flat: `dmftc check`'s rule for a quantity predicted to stay finite (`fit._judge_finite`):
      unresolved when n_sigma se >= 1/2 (no telling 0 from N^+-1/2); pass when |p| <= max(n_sigma se,
      fit.TOLERANCE), or when value = a + b/N fits (chi2/dof <= LIMIT_CHI2) with the limit a above
      n_sigma errors and a total chi2 at most EQUAL_CHI2 above the power law's (growth that saturates
      at a finite limit); unresolved when a + b/N fits acceptably but worse and the power law is not
      decisively preferred; else fail. A fall beyond n_sigma se is never excused by a finite limit.

    With `pred.gate`, a pass also needs |p - predicted| <= n_sigma se, or <= `rate_margin` (the
    corrections at finite depth, `dmftc.crosscheck.depth.judge_depth`); a flat pass is consistent by
    the rule above. Without the gate the sentence says how far the leading rate is and that only the
    direction is judged. `criterion` states these rules in words.
    """
    p, se, n = fit.exponent, fit.exponent_se, fit.size_name
    what, expect, p0 = fit.label, pred.expect, pred.exponent
    rate, sigmas = None, float("nan")
    base = dict(quantity=name, expect=expect, exponent=p, exponent_se=se, predicted=p0)
    k, k_res = len(fit.sizes), sum(fit.resolved)
    if k < VERDICT_SIZES or fit.n_points < VERDICT_SIZES or not np.isfinite(se) or k_res < VERDICT_SIZES:
        why = (f"{k} sizes (need {VERDICT_SIZES})" if k < VERDICT_SIZES else
               f"{what} is indistinguishable from zero at {k - k_res} of {k} sizes; add seeds or steps")
        return HeadVerdict(status="unresolved", sentence=why, sigmas=sigmas, rate=rate, **base)
    measured = format_measured(n, p, se)
    if p0 is not None:
        sigmas = abs(p - p0) / se if se > 0 else float("inf")
        rate = "consistent" if sigmas <= n_sigma or abs(p - p0) <= TOLERANCE else "inconsistent"
    if p0 is None:
        pred_txt = ""
    elif pred.gate and rate == "inconsistent" and abs(p - p0) <= rate_margin:
        rate, base["route"] = "consistent", f"within {rate_margin:g}"
        pred_txt = (f" (predicted {format_power(n, p0)}: {sigmas:.1f} sigma but {abs(p - p0):.2f} from it, within "
                    f"the margin {rate_margin:g} for corrections at finite size)")
    elif pred.gate:
        pred_txt = f" (predicted {format_power(n, p0)}, {rate} at {sigmas:.1f} sigma)"
    else:   # only the direction is judged: say how far the leading rate is, and that it is not the verdict
        pred_txt = (f" (the leading rate {format_power(n, p0)} is {sigmas:.1f} sigma away; only the "
                    f"{'fall' if expect == 'falls' else 'direction'} is judged)")
    tol = max(n_sigma * se, margin)
    falling = p < -tol
    if expect == "falls":
        alt = p0 if p0 is not None and p0 < 0 else COLLAPSE_RATE
        if falling:
            status, sentence = "pass", f"{what} falls as {measured}{pred_txt}"
        elif abs(p - alt) <= n_sigma * se:
            status, sentence = "unresolved", f"{what} exponent {measured} cannot tell a fall as " \
                                             f"{format_power(n, alt)} from none; add seeds or sizes"
        else:
            status, sentence = "fail", f"{what} does not fall: {measured}{pred_txt}"
    elif expect == "not_falling":
        if falling:
            status, sentence = "fail", f"{what} falls as {measured}{pred_txt}"
        elif abs(p - COLLAPSE_RATE) <= n_sigma * se:
            status, sentence = "unresolved", (f"{what} exponent {measured} cannot exclude a fall as "
                                              f"{format_power(n, COLLAPSE_RATE)}; add seeds or sizes")
        else:
            status, sentence = "pass", f"{what} does not fall: {measured}{pred_txt}"
    elif expect == "flat":
        # check's rule (`fit._judge_finite`): within n_sigma se (or TOLERANCE) of n^0, or a + b/n fits about as
        # well as the power law (EQUAL_CHI2); the deviation in standard errors is in the sentence
        finite, sentence = _judge_finite(fit, n_sigma, TOLERANCE)
        status, sentence = _FLAT[finite], sentence.removeprefix("unresolved: ")
        if status != "fail" and n_sigma * se < FLAT_RESOLUTION and p < -max(n_sigma * se, TOLERANCE):
            # a fall is never excused by a finite limit: over a short range a + b/n also mimics a vanishing n^-1/2
            status, sentence = "fail", (f"{what} falls as {measured}, not finite (predicted {n}^0; "
                                        f"{abs(p) / se:.1f} sigma); a fall is not excused by a finite limit "
                                        f"a + b/{n}, which over a short range also mimics {n}^-1/2")
        if status == "pass":
            rate = "consistent"   # as check's verdict: agreement by the stated rule
            if abs(p) > max(n_sigma * se, TOLERANCE):   # the other way `_judge_finite` passes
                base["route"] = f"a + b/{n}"
    else:
        raise DmftcError(f"unknown expectation {expect!r}; allowed: {', '.join(EXPECTATIONS)}")
    if status == "pass" and pred.gate and rate == "inconsistent":
        status, sentence = "fail", sentence + f"; the analysis predicts {format_power(n, p0)}"
    if status != "pass":
        base["route"] = ""
    return HeadVerdict(status=status, sentence=sentence, sigmas=sigmas, rate=rate, **base)


def verdict_text(status: str, verdict: HeadVerdict | None) -> str:
    """A verdict for a table, with the route when a pass came from a finite limit, "consistent (a + b/L)":
    a fitted rise such as L^0.37 is then no contradiction of the predicted L^0."""
    return f"{status} ({verdict.route})" if verdict is not None and verdict.route else status


def criterion(size_name: str = "N", n_sigma: float = N_SIGMA, margin: float = MARGIN) -> str:
    """The rules of `judge`, in words, for the heads and reproduce reports (the rate rule and the finite
    rule are `dmftc check`'s, `dmftc.crosscheck.report.rate_rule` and `finite_rule`)."""
    n, k = size_name, float(n_sigma)
    fall = f"p < -max({k} se, {margin:g})"
    return (f"with p the fitted exponent in {n} and se its standard error, every verdict needs {VERDICT_SIZES} "
            f"sizes resolved from zero (at {RESOLVED_SIGMA:g} se), else it is unresolved; a quantity expected to "
            f"fall passes when {fall} and is unresolved when the expected fall is within {k} se of p; one "
            f"expected not to fall fails when {fall} and is unresolved when {format_power(n, COLLAPSE_RATE)} is "
            f"within {k} se of p; one predicted to stay finite ({n}^0) passes when |p| <= {k} se or <= "
            f"{TOLERANCE:g}, or {finite_rule(n_sigma, n)}, a fall never; a rate the analysis predicts exactly "
            f"(gated) passes only when {rate_rule(n_sigma, define=False)}")


def check_sweep(values: Sequence[int], seeds: int, spec: Spec, what: str, needs_training: str) -> list[int]:
    """The sweep's sizes, sorted and unique, after checking them, the seeds and the training steps."""
    out = sorted({int(v) for v in values})
    if not out or out[0] < 1:
        raise DmftcError(f"{what} must be positive integers (got {list(values)})")
    require_seeds(seeds, SE_SEEDS)
    if spec.training.steps < 1:
        raise DmftcError(f"{needs_training} needs at least one training step; set training.steps >= 1")
    return out


def measure_heads(spec: Spec, sizes: Mapping[str, Sequence[int]], seeds: int = 8, seed: int = 0,
                  progress: Callable | None = None, *, n_sigma: float = N_SIGMA, margin: float = MARGIN) -> HeadReport:
    """Measure the head statistics of `spec` at each size and judge them against the analysis.

    Parameters
    ----------
    spec : Spec
        A spec with multi-head attention (H >= 2) and at least one training step.
    sizes : mapping
        One size axis, a limit symbol of the spec: {"N": [16, 32, 64, 128, 256]}.
    seeds, seed : int
        Networks per size (at least 2, for standard errors) and the first seed.
    progress : callable, optional
        Wraps the loop over sizes, called as progress(iterable, total=, desc=, label=)
        (e.g. `dmftc.crosscheck.progress`); None: silent.
    n_sigma, margin : float
        Agreement is within n_sigma standard errors; a fall must be faster than size^-margin.

    Returns
    -------
    HeadReport
        Nothing is written; see `HeadReport.to_json` and `HeadReport.plot`.
    """
    if len(sizes) != 1:
        raise DmftcError(f"heads needs exactly one size axis, e.g. --sizes N=16,32,64,128 (got {dict(sizes)})")
    (name, values), = sizes.items()
    if name not in spec.sizes:
        raise DmftcError(f"--sizes names {name!r}, which the spec does not declare (sizes: {sorted(spec.sizes)})")
    values = check_sweep(values, seeds, spec, "sizes", "the logit change")
    for n in values:  # every ensemble fits this machine before any work (dmftc.budget)
        check_simulation(spec, {name: n}, seeds, record="diag")
    preds, regime, collapse = predictions(spec, name)
    loop = values if progress is None else progress(values, total=len(values), desc=f"heads {name}",
                                                     label=lambda n: f"{name}={n}")
    per_size, heads = {}, 0
    for n in loop:
        sim = simulate(spec, sizes={name: n}, seeds=seeds, record="diag", seed=seed)
        if "logits" not in sim.order:
            raise DmftcError(f"spec {spec.name!r} records no attention logits: there are no heads to measure")
        heads = sim.order["logits"].shape[3]
        per_size[n] = head_statistics(sim.order["logits"])
    quantities = analyse(per_size, preds, size_name=name, n_sigma=n_sigma, margin=margin)
    return HeadReport(spec.name, name, tuple(values), seeds, seed, spec.training.steps, heads, regime, collapse,
                      quantities, n_sigma, margin)


# ------------------------------------------------------------------ output
#: the size axes of a head measurement in words, where they differ from `dmftc.crosscheck.plots.size_words`
_SIZE_WORDS = {"N": "key/query dimension per head N"}


def size_axis_words(size_name: str) -> str:
    """A head or depth sweep's size axis in words with its symbol: "key/query dimension per head N", "depth L"."""
    return _SIZE_WORDS.get(size_name) or size_words(size_name)


def draw_power_law(ax, fit: PowerLaw, predicted: float | None, color: str, name: str,
                   status: str | None = None) -> None:
    """One measured series against the size on log-log axes, drawn as `dmftc check` draws a bias.

    Values resolved from zero are filled points with standard-error bars, labelled `name` (and the
    verdict's `status`); the others open triangles at their 2-sigma upper bound, labelled unresolved.
    The fitted power law is solid when every value it was fitted on is resolved (a measured rate),
    dash-dotted and labelled "not a measured rate" when only some are, and not drawn when none is (the
    upper bounds' entry says so); the predicted slope is dashed through the fit's centre. A series
    with no point has no legend entry.
    """
    n, y, se = (np.asarray(a, dtype=float) for a in (fit.sizes, fit.values, fit.ses))
    res = np.array(fit.resolved, dtype=bool)
    _points(ax, n[res], y[res], se[res], color, "o", name if status is None else f"{name}: {status}")
    no_fit = "" if _fit_drawn(fit) else "; no fit drawn"
    _open_points(ax, n[~res], np.maximum(y[~res], 0.0) + RESOLVED_SIGMA * se[~res], color, "v",
                 f"{name}: upper bound (unresolved{no_fit})")
    if _fit_drawn(fit):
        _fit_and_prediction(ax, fit, predicted, color)


def _fit_and_prediction(ax, fit: PowerLaw, predicted: float | None, color: str) -> None:
    """The fitted power law and the predicted slope, drawn as check's figures draw them."""
    fit_and_prediction(ax, fit, predicted, color, lw=1.0)


def log_size_axes(ax, sizes: Sequence[int], xlabel: str, ylabel: str) -> None:
    """Log-log axes with the sizes as ticks, both axes labelled in words, a grid."""
    from matplotlib.ticker import NullFormatter

    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(list(sizes), [str(s) for s in sizes])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)


def quantity_figure(report: HeadReport, q: MeasuredQuantity):
    """One quantity of a head report against the size (see `draw_power_law`), axes in words; a Figure."""
    fig, (ax,) = _figure(1)
    draw_power_law(ax, q.fit, q.prediction.exponent, "tab:blue", f"measured (mean ± s.e. over {report.seeds} seeds)")
    log_size_axes(ax, report.sizes, size_axis_words(report.size_name), q.description)
    status = q.verdict.status if q.verdict else "reported"
    ax.set_title(f"{report.spec_name}: {q.description} ({status})", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    return fig


def _plot_quantity(report: HeadReport, q: MeasuredQuantity, path: Path) -> Path:
    """Write `quantity_figure(report, q)` to `path` (a PNG, atomically)."""
    return save_figure_atomic(quantity_figure(report, q), path)


def _pm(value: float, se: float) -> str:
    return f"{value:.3e} ± {se:.1e}"
