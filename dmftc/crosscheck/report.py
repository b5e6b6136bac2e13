"""The cross-check: DMFT against finite networks as the size grows.

For each compared quantity and each size, the bias of the seed-averaged
network and the fluctuation of single networks (stats.py); for each quantity,
power laws of both in the size and verdicts against the predicted rates
(fit.py); one overall verdict. `Report.to_json()` is what `dmftc check`
writes to check.json.
"""

from __future__ import annotations

import dataclasses
import math
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dmftc.crosscheck.fit import (
    EQUAL_CHI2, FLAT_RESOLUTION, LIMIT_CHI2, PREFER_CHI2, TOLERANCE, FloorFit, PowerLaw, Verdict, compare_rate, fit_power_law,
    format_power,
)
from dmftc.crosscheck.stats import RESOLVED_SIGMA, Distance, distance
from dmftc.crosscheck.table import render_table
from dmftc.errors import DmftcError

FORMAT = "dmftc.crosscheck/1"
# Most severe first: the overall status is the most severe of all verdicts.
SEVERITY = ("not_converging", "inconsistent", "unresolved", "consistent")
KINDS = ("bias", "fluct", "bias_next")
_HEADS = {
    "consistent": "Consistent: the finite networks approach the DMFT at the predicted rates for {names}",
    "not_converging": "Check failed: the finite networks do not approach the DMFT",
    "inconsistent": "Check failed: a measured rate differs from the prediction",
    "unresolved": "Unresolved: the data cannot yet confirm the predicted rates",
}
#: what a report measures against: the DMFT, or (no DMFT: Adam) the next larger size (`crosscheck.cauchy`)
MODES = ("dmft", "cauchy")


@dataclass(frozen=True)
class QuantityCheck:
    """One compared quantity: distances per size, fits and verdicts.

    Attributes
    ----------
    name : str
        Quantity name (a key of the DMFT solution, e.g. "loss", "f").
    distances : tuple of Distance
        One per size, aligned with `Report.sizes`.
    bias_fit, fluct_fit : PowerLaw
        Power laws of the bias and of the fluctuation in the size.
    bias_verdict, fluct_verdict : Verdict
        Their verdicts against the predicted rates.
    """

    name: str
    distances: tuple[Distance, ...]
    bias_fit: PowerLaw
    fluct_fit: PowerLaw
    bias_verdict: Verdict
    fluct_verdict: Verdict

    @property
    def status(self) -> str:
        """The more severe of the two verdicts."""
        return worst([self.bias_verdict.status, self.fluct_verdict.status])


@dataclass(frozen=True)
class Report:
    """The result of a cross-check (the contents of check.json).

    Attributes
    ----------
    size_name : str
        The size symbol that grows ("N", "H", "L").
    sizes : tuple of int
        Sizes, ascending.
    predicted_bias, predicted_fluct : float
        Predicted exponents of the bias and of the fluctuation.
    quantities : tuple of QuantityCheck
    skipped : tuple of (str, str)
        Quantities of the DMFT not compared, with the reason.
    status : str
        The most severe verdict of all.
    summary : str
        One paragraph in plain words (the notes at its end).
    notes : tuple of str
        How the prediction was made, where that needs saying.
    criterion : str
        When a rate is consistent, inconsistent or unresolved, in words (printed after the summary).
    mode : str
        "dmft": distances to the DMFT; "cauchy": no DMFT exists, distances between successive sizes,
        each the distance of `sizes[k]` from the next size `reference_sizes[k]` (`crosscheck.cauchy`).
    reference_sizes : tuple of int
        In "cauchy" mode, the larger size each distance is measured against (empty otherwise).
    preface : str
        What the reader must know before the numbers (in "cauchy" mode: why there is no DMFT and what
        stands in for it); printed first.
    """

    size_name: str
    sizes: tuple[int, ...]
    predicted_bias: float
    predicted_fluct: float
    quantities: tuple[QuantityCheck, ...]
    skipped: tuple[tuple[str, str], ...]
    status: str
    summary: str
    notes: tuple[str, ...] = ()
    criterion: str = ""
    mode: str = "dmft"
    reference_sizes: tuple[int, ...] = ()
    preface: str = ""

    @property
    def passed(self) -> bool:
        """Every rate consistent: `dmftc check` exits 0 only then (1 otherwise)."""
        return self.status == "consistent"

    def quantity(self, name: str) -> QuantityCheck:
        """The check of one quantity, by name."""
        for q in self.quantities:
            if q.name == name:
                return q
        raise DmftcError(f"no quantity {name!r} in this report; compared: {', '.join(self.names) or 'none'}")

    @property
    def names(self) -> tuple[str, ...]:
        """Names of the compared quantities."""
        return tuple(q.name for q in self.quantities)

    def check(self) -> None:
        """Raise DmftcError if the report is internally inconsistent."""
        problems = [f"{q.name}: {len(q.distances)} distances for {len(self.sizes)} sizes"
                    for q in self.quantities if len(q.distances) != len(self.sizes)]
        if list(self.sizes) != sorted(set(self.sizes)):
            problems.append(f"sizes {self.sizes} are not strictly ascending")
        if self.status not in SEVERITY:
            problems.append(f"status {self.status!r} is not one of {SEVERITY}")
        if self.mode not in MODES:
            problems.append(f"mode {self.mode!r} is not one of {MODES}")
        if self.mode == "cauchy" and (len(self.reference_sizes) != len(self.sizes)
                                      or any(m <= n for n, m in zip(self.sizes, self.reference_sizes))):
            problems.append(f"reference sizes {self.reference_sizes} are not one larger size per size {self.sizes}")
        if problems:
            raise DmftcError("inconsistent cross-check report: " + "; ".join(problems))

    def to_json(self) -> dict:
        """A JSON-ready dict (NaN and inf become null); `Report.from_json` inverts it."""
        return {
            "format": FORMAT,
            "mode": self.mode,
            "preface": self.preface,
            "size_name": self.size_name,
            "sizes": list(self.sizes),
            "predicted": {"bias": self.predicted_bias, "fluct": self.predicted_fluct},
            "status": self.status,
            "summary": self.summary,
            "quantities": {q.name: _quantity_json(q, self.sizes) for q in self.quantities},
            "skipped": dict(self.skipped),
            "notes": list(self.notes),
            "criterion": self.criterion,
            "reference_sizes": list(self.reference_sizes),
        }

    @classmethod
    def from_json(cls, data: Mapping) -> Report:
        """Rebuild a report from `to_json()` output (derived fields are recomputed, not read)."""
        if data.get("format") != FORMAT:
            raise DmftcError(f"not a cross-check report of format {FORMAT!r}: format is {data.get('format')!r}")
        return cls(
            size_name=data["size_name"],
            sizes=tuple(int(n) for n in data["sizes"]),
            predicted_bias=_num(data["predicted"]["bias"]),
            predicted_fluct=_num(data["predicted"]["fluct"]),
            quantities=tuple(_quantity_from_json(name, q) for name, q in data["quantities"].items()),
            skipped=tuple((k, v) for k, v in data["skipped"].items()),
            status=data["status"],
            summary=data["summary"],
            notes=tuple(data.get("notes", ())),
            criterion=data.get("criterion", ""),
            mode=data.get("mode", "dmft"),
            reference_sizes=tuple(int(n) for n in data.get("reference_sizes", ())),
            preface=data.get("preface", ""),
        )

    def table(self) -> str:
        """A plain-text table for the terminal, the summary and the criterion at its end."""
        rule = textwrap.wrap(f"Criterion: {self.criterion}.", width=100) if self.criterion else []
        return "\n".join([render_table(self), *rule])


def crosscheck(reference: Mapping, finite_by_size: Mapping, *, size_name: str = "N",
               predicted: Mapping | None = None, reference_se: Mapping | None = None,
               quantities: Sequence[str] | None = None, n_sigma: float = 3.0,
               reference_runs: Mapping | None = None, controls: Mapping | None = None,
               notes: Sequence[str] = ()) -> Report:
    """Compare DMFT predictions with finite-network ensembles across sizes.

    Parameters
    ----------
    reference : mapping of str to array_like
        DMFT quantities, e.g. {"loss": (T+1,), "f": (T+1, P)}.
    finite_by_size : mapping of int to (mapping of str to array_like)
        For each size n, the same quantities with a leading seed axis.
    size_name : str
        The size symbol that grows.
    predicted : mapping, optional
        Predicted exponents {"bias": -1.0, "fluct": -0.5} (docs/theory.md#finite-size), and optionally
        "bias_next", the exponent of the bias's known next-order term (`compare_rate`'s next_order).
    reference_se : mapping of str to array_like, optional
        Monte Carlo standard errors of the DMFT quantities.
    quantities : sequence of str, optional
        Which quantities to compare. Default: the DMFT's quantities present at
        every size; the others are listed in `Report.skipped`.
    n_sigma : float
        Number of standard errors that separates agreement from disagreement.
    reference_runs : mapping of str to array_like, optional
        For Monte Carlo DMFTs, K >= 4 independent solves of each quantity,
        shape (K, ...), `reference` being their mean; they replace
        `reference_se` where given (see `stats.distance`).
    controls : mapping of int to array_like, optional
        For each size, control variates (seeds, p) of known mean zero that
        every quantity's bias is adjusted with (see `stats.distance`).
    notes : sequence of str
        Sentences on how the prediction was made (e.g. why a rate differs from
        the default), kept in the report and its summary.

    Returns
    -------
    Report
    """
    rates = rates_of(predicted)
    sizes = sizes_of(finite_by_size, size_name)
    names, skipped = _select(reference, finite_by_size, sizes, size_name, quantities)
    ses, runs = reference_se or {}, reference_runs or {}
    checks = tuple(
        _check_quantity(q, reference[q], [finite_by_size[n][q] for n in sizes], sizes, size_name,
                        rates, ses.get(q), runs.get(q), [(controls or {}).get(n) for n in sizes], n_sigma)
        for q in names)
    status = worst([q.status for q in checks]) if checks else "unresolved"
    rule = criterion(rates, n_sigma, size_name)
    summary = summary_of(status, checks, skipped, sizes, size_name) + "".join(f" {n}" for n in notes)
    return Report(size_name, sizes, float(rates["bias"]), float(rates["fluct"]), checks, skipped, status, summary,
                  tuple(notes), rule)


def criterion(rates: Mapping[str, float], n_sigma: float, size_name: str) -> str:
    """The rule every rate is judged by (`fit.compare_rate`), in words, for the report's summary."""
    n = size_name
    parts = [f"a rate is consistent when {rate_rule(n_sigma)}"]
    if 0.0 in (rates["bias"], rates["fluct"]):
        parts.append(f"a quantity predicted to stay finite ({n}^0) also {finite_rule(n_sigma, n)}")
    if rates.get("bias_next") is not None:
        parts.append(f"a bias faster than predicted also when b {format_power(n, rates['bias'])} + c "
                     f"{format_power(n, rates['bias_next'])} fits (chi2/dof <= {LIMIT_CHI2:g}) with b above "
                     f"{float(n_sigma)} se")
    parts.append(f"unresolved when fewer than 3 sizes resolve the distance from zero (at {RESOLVED_SIGMA:g} se) or "
                 "the fit cannot tell the prediction from no convergence; dmftc check exits 0 only when every "
                 "rate is consistent (1 otherwise)")
    return "; ".join(parts)


def rate_rule(n_sigma: float, tolerance: float = TOLERANCE, *, define: bool = True) -> str:
    """When a fitted exponent agrees with the predicted one (`fit.compare_rate`), in words; shared by the
    criteria of `dmftc check`, `dmftc heads` and `dmftc reproduce`. `define`: say what p and se are."""
    what = " (p the fitted exponent, se its standard error)" if define else ""
    return f"|p - p_pred| <= {float(n_sigma)} se{what} or <= {tolerance:g} (subleading terms)"


def finite_rule(n_sigma: float, size_name: str) -> str:
    """When a quantity predicted to stay finite agrees although its exponent is beyond `rate_rule`
    (`fit._judge_finite`), in words; the unresolved case included."""
    n = size_name
    return (f"when a + b/{n} fits (chi2/dof <= {LIMIT_CHI2:g}) with a above {float(n_sigma)} se and a total chi2 "
            f"at most {EQUAL_CHI2:g} above the power law's (unresolved when it fits acceptably but worse and the "
            f"power law is not preferred by more than {PREFER_CHI2:g} in chi2, or when {float(n_sigma)} se >= "
            f"{FLAT_RESOLUTION:g})")


def markdown_cell(text) -> str:
    """`text` made safe for one cell of a Markdown table: pipes escaped (a norm `||W||` would otherwise
    split the cell), line breaks as spaces."""
    return " ".join(str(text).replace("|", r"\|").split("\n"))


def markdown_row(cells: Sequence) -> str:
    """One row of a Markdown table, every cell through `markdown_cell`."""
    return "| " + " | ".join(markdown_cell(c) for c in cells) + " |"


def _check_quantity(name, ref, finite_list, sizes, size_name, rates, ref_se, ref_runs, controls,
                    n_sigma) -> QuantityCheck:
    """Distances at every size, the two fits and their verdicts (the DMFT's runs, when given,
    replace its standard errors; `controls` one array or None per size)."""
    ref_se = None if ref_runs is not None else ref_se
    dists = tuple(distance(x, ref, reference_se=ref_se, reference_runs=ref_runs, controls=z,
                           what=f"{name!r} at {size_name}={n}")
                  for n, x, z in zip(sizes, finite_list, controls))
    q = judge_distances(name, dists, sizes, size_name, rates, n_sigma, hint=_bias_hint(dists, sizes, size_name))
    return dataclasses.replace(q, bias_verdict=_note_reference_floor(q.bias_verdict, dists))


def judge_distances(name: str, dists: Sequence[Distance], sizes, size_name: str, rates: Mapping[str, float],
                    n_sigma: float, *, hint: str = "add seeds", disagree: str | None = None,
                    spread: str | None = None) -> QuantityCheck:
    """The two power laws of one quantity's distances (bias and fluctuation against the size) and their
    verdicts against `rates` (`fit.compare_rate`); `disagree` and `spread` say what a significant floor of
    the bias and of the fluctuation means (default: the DMFT and the networks disagree at infinite size)."""
    dists = tuple(dists)
    bias_fit = fit_power_law(sizes, [d.bias for d in dists], [d.bias_se for d in dists],
                             resolved=[d.resolved for d in dists], size_name=size_name, label=f"{name} bias")
    fluct_fit = fit_power_law(sizes, [d.fluct for d in dists], [d.fluct_se for d in dists],
                              size_name=size_name, label=f"{name} fluctuation")
    floor = {} if disagree is None else {"disagree": disagree}
    bias_v = compare_rate(bias_fit, rates["bias"], n_sigma=n_sigma, hint=hint, next_order=rates.get("bias_next"),
                          common_se=common_reference_se(dists, sizes), **floor)
    fluct_floor = {} if spread is None else {"disagree": spread}
    fluct_v = compare_rate(fluct_fit, rates["fluct"], n_sigma=n_sigma, **fluct_floor)
    return QuantityCheck(name, dists, bias_fit, fluct_fit, bias_v, fluct_v)


def common_reference_se(dists: Sequence[Distance], sizes) -> float:
    """The standard error of the bias that the DMFT's Monte Carlo error puts on every size alike.

    sqrt(reference_share) x bias_se at the largest size: there E X_n is closest to the DMFT, the
    reference's part of Var(bias_sq) is its own noise, ||delta||^2 - E||delta||^2 and the error of
    the runs' estimate of E||delta||^2, the same numbers at every size (one reference for all).
    """
    if not dists:
        return 0.0
    d = max(zip(sizes, dists), key=lambda p: p[0])[1]
    share = d.reference_share if math.isfinite(d.reference_share) else 0.0
    return math.sqrt(max(share, 0.0)) * d.bias_se if math.isfinite(d.bias_se) else 0.0


def _bias_hint(dists: Sequence[Distance], sizes, size_name: str) -> str:
    """What to do about unresolved biases: more seeds, or a more precise DMFT."""
    unresolved = [(n, d) for n, d in zip(sizes, dists) if not d.resolved]
    if not unresolved:
        return "add seeds"
    if all(d.reference_limited for _, d in unresolved):
        floor = max(d.reference_floor for _, d in unresolved)
        return (f"the DMFT's own Monte Carlo error (RMS {floor:.2g}) limits the distance there; "
                "increase solver.samples or the number of DMFT runs")
    n, d = unresolved[-1]
    return f"add seeds (the bias is below {d.bias_upper:.2g} at {size_name}={n})"


def _note_reference_floor(verdict: Verdict, dists: Sequence[Distance]) -> Verdict:
    """Say so when a detected floor is no larger than the DMFT's own Monte Carlo error."""
    ref_floor = max(d.reference_floor for d in dists)
    fl = verdict.floor
    if verdict.status != "not_converging" or fl is None or not fl.significant or ref_floor == 0:
        return verdict
    if fl.floor > 3.0 * ref_floor:
        return verdict
    note = (f"; the floor is comparable to the DMFT's Monte Carlo error (RMS {ref_floor:.2g}): "
            "increase solver.samples to tell a wrong DMFT from a noisy one")
    return dataclasses.replace(verdict, sentence=verdict.sentence + note)


def rates_of(predicted: Mapping | None) -> dict[str, float]:
    """Predicted exponents, defaults filled in; unknown keys are an error (a typo would pass silently)."""
    unknown = sorted(set(predicted or {}) - set(KINDS))
    if unknown:
        raise DmftcError(f"unknown predicted rate {', '.join(map(repr, unknown))}; allowed: {', '.join(KINDS)}")
    return {"bias": -1.0, "fluct": -0.5, **{k: float(v) for k, v in (predicted or {}).items()}}


def sizes_of(finite_by_size: Mapping, size_name: str) -> tuple[int, ...]:
    """Sizes as ascending ints; at least one."""
    if not finite_by_size:
        raise DmftcError(f"no finite-network ensembles given; run at least 3 sizes, e.g. --sizes {size_name}=128,256,512")
    bad = [n for n in finite_by_size if int(n) != n or n <= 0]
    if bad:
        raise DmftcError(f"sizes must be positive integers; received {bad}")
    return tuple(sorted(int(n) for n in finite_by_size))


def _select(reference, finite_by_size, sizes, size_name, quantities) -> tuple[tuple[str, ...], tuple]:
    """Quantities to compare, and the DMFT quantities skipped with the reason."""
    missing = {q: [n for n in sizes if q not in finite_by_size[n]] for q in reference}
    if quantities is not None:
        unknown = [q for q in quantities if q not in reference]
        absent = [f"{q} (missing at {size_name}={', '.join(map(str, missing[q]))})"
                  for q in quantities if q in reference and missing[q]]
        if unknown or absent:
            raise DmftcError(f"cannot compare {', '.join(unknown + absent)}; the DMFT has {', '.join(reference)}")
        return tuple(quantities), ()
    names = tuple(q for q in reference if not missing[q])
    skipped = tuple((q, f"not measured by the simulation at {size_name}={', '.join(map(str, missing[q]))}")
                    for q in reference if missing[q])
    return names, skipped


def worst(statuses: Sequence[str]) -> str:
    """The most severe status."""
    return min(statuses, key=SEVERITY.index)


def summary_of(status, checks, skipped, sizes, size_name, heads: Mapping[str, str] = _HEADS) -> str:
    """One paragraph: the overall verdict (`heads`: one opening per status), then the verdicts behind it
    (all bias verdicts when consistent, else every verdict that is not), most severe first."""
    seeds = sorted({d.n_seeds for q in checks for d in q.distances})
    span = f"{size_name} = {sizes[0]}..{sizes[-1]}" if len(sizes) > 1 else f"{size_name} = {sizes[0]}"
    head = heads[status].format(names=", ".join(q.name for q in checks))
    head += f" ({span}, {'/'.join(map(str, seeds)) or 0} seeds)"
    verdicts = [v for q in checks for v in (q.bias_verdict, q.fluct_verdict) if v.status != "consistent"]
    verdicts.sort(key=lambda v: SEVERITY.index(v.status))
    shown = [q.bias_verdict for q in checks] if status == "consistent" else verdicts
    # Sentences keep their quantity's spelling ("f" is not "F"), so they are joined, not capitalised.
    details = list(dict.fromkeys(v.sentence.removeprefix("unresolved: ") for v in shown))
    parts = [head + (": " + "; ".join(details) if details else "") + "."]
    if seeds and seeds[0] < 8:
        parts.append(f"Only {seeds[0]} seeds at some size: standard errors are rough; use 8 or more.")
    if skipped:
        parts.append("Not compared: " + "; ".join(f"{q} ({why})" for q, why in skipped) + ".")
    if not checks:
        parts.append("No quantity was compared.")
    return " ".join(parts)


def _quantity_json(q: QuantityCheck, sizes) -> dict:
    """One quantity as JSON: per-size distances (with derived flags), fits, verdicts."""
    return {
        "distances": [{"size": n, **_clean(dataclasses.asdict(d)), "resolved": d.resolved,
                       "bias_upper": _clean(d.bias_upper), "reference_limited": d.reference_limited}
                      for n, d in zip(sizes, q.distances)],
        "fits": {"bias": _clean(dataclasses.asdict(q.bias_fit)), "fluct": _clean(dataclasses.asdict(q.fluct_fit))},
        "verdicts": {"bias": _clean(dataclasses.asdict(q.bias_verdict)),
                     "fluct": _clean(dataclasses.asdict(q.fluct_verdict))},
    }


def _quantity_from_json(name: str, data: Mapping) -> QuantityCheck:
    """Inverse of `_quantity_json`."""
    return QuantityCheck(
        name=name,
        distances=tuple(_build(Distance, d) for d in data["distances"]),
        bias_fit=_build(PowerLaw, data["fits"]["bias"]),
        fluct_fit=_build(PowerLaw, data["fits"]["fluct"]),
        bias_verdict=_verdict(data["verdicts"]["bias"]),
        fluct_verdict=_verdict(data["verdicts"]["fluct"]),
    )


def _verdict(data: Mapping) -> Verdict:
    floor = data.get("floor")
    return _build(Verdict, {**data, "floor": None}, floor=_build(FloorFit, floor) if floor else None)


def _build(cls, data: Mapping, **override):
    """A dataclass from its JSON fields: lists become tuples, null becomes NaN; extra keys are ignored."""
    kwargs = {f.name: _decode(data[f.name]) for f in dataclasses.fields(cls) if f.name in data}
    return cls(**{**kwargs, **override})


def _decode(v):
    if isinstance(v, list):
        return tuple(_decode(x) for x in v)
    return float("nan") if v is None else v


def _num(v) -> float:
    return float("nan") if v is None else float(v)


def _clean(obj):
    """JSON-ready: tuples to lists, NaN and inf to None (strict JSON has neither)."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
