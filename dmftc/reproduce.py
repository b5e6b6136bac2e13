"""The seed paper's phenomena reproduced on a small synthetic token task (issue 9 item 4; `dmftc reproduce`).

Bordelon, Chaudhry & Pehlevan 2024 (docs/theory.md#depth, #attention), measured on finite networks of one
pre-LayerNorm transformer (`TASK`: P token sequences of S tokens in D dimensions, a fixed
single-head attention teacher as target, muP) trained by full-batch GD on the CPU:

1. head collapse: with alpha_A = 1 the across-head variance of the logits, at initialization and
   in their change over training, falls as the key/query dimension N grows (predicted N^-1 at
   init by the analysis): all heads follow one dynamics (`dmftc.crosscheck.heads.measure_heads`);
2. no collapse: with alpha_A = 1/2 neither falls (N^0 at init);
3. head diversity: at fixed N and alpha_A = 1/2 the across-head spread of the logits stays O(1)
   as the number of heads H grows (H^0, the analysis's `heads: diverse`);
4. concentration: meanwhile the network's output becomes deterministic, its across-seed
   variance (over the whole trajectory f(t), t = 0..T) falling as H^-1 (docs/theory.md#limits-and-regimes:
   convergence as O(1/H));
5. the depth tension (`dmftc.crosscheck.depth`): with alpha_L = 1/2 the blocks' key/query weights
   freeze (L^-1/2) while the random branches keep an O(1) initial kernel; with alpha_L = 1 the
   weights keep learning (L^0) while the random branches' kernel vanishes (L^-1).

`reproduce(out_dir, quick=False)` runs them all, writes report.json, report.md and three PNG
figures (heads_N.png, heads_H.png, depth.png), atomically (`dmftc.files`), and returns the
`Reproduction`. Each phenomenon's status is "consistent", "inconsistent" or "unresolved".
Full: N = 8..128, H = 2..32, L = 1..16, 10 steps, 8 seeds (1 to 4 minutes on 2 cores, measured);
quick: 3 or 4 sizes per axis, 5 steps, 64 networks per size (about a minute on 2 cores).
"""

from __future__ import annotations

import dataclasses
import math
import textwrap
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .crosscheck.depth import DepthTension, fraction, measure_depth_tension, worst_status
from .crosscheck.fit import PowerLaw, _pm, fit_power_law, format_measured, format_power
from .crosscheck.fit import N_SIGMA
from .crosscheck.heads import (MARGIN, HeadReport, HeadVerdict, Prediction, draw_power_law, judge, log_size_axes,
                               measure_heads, size_axis_words)
from .crosscheck.heads import criterion as heads_criterion
from .crosscheck.report import _clean, markdown_row
from .crosscheck.stats import RESOLVED_SIGMA, distance
from .errors import DmftcError
from .files import save_figure_atomic, write_json_atomic, write_text_atomic
from .simulate import simulate
from .spec import loads
from .spec.types import Spec

FORMAT = "dmftc.reproduce/1"
STATUSES = ("consistent", "inconsistent", "unresolved")
_STATUS = {"pass": "consistent", "fail": "inconsistent", "unresolved": "unresolved"}

#: the task: the seed paper's pre-LN transformer (docs/theory.md#attention) on teacher-attention data
TASK = """\
dmftc: 1
name: reproduce_token_task
description: the seed paper's pre-LN transformer on a small synthetic token task (dmftc reproduce)
sizes: {N: 8, H: 4, L: 1, S: 4}
hyper: {gamma0: 4.0, eta: 0.5, beta0: 1.0, alpha_A: 1, alpha_L: 1}
model:
  - dense: {out: N*H, name: embed}
  - repeat:
      times: L
      body:
        - residual:
            scale: beta0 / L**alpha_L
            branch:
              - layernorm: {}
              - attention: {heads: H, key_dim: N, logit_scale: N**(-alpha_A)}
        - residual:
            scale: beta0 / L**alpha_L
            branch: [{layernorm: {}}, {dense: {out: N*H}}, {act: gelu}, {dense: {out: N*H}}]
  - layernorm: {}
  - pool: mean
  - readout: {}
parameterization: {preset: mup}
limit: {N: inf}
training: {lr: eta, steps: 10}
data:
  synthetic: {P: 4, S: 4, D: 16, target: teacher_attention, seed: 0}
"""


@dataclass(frozen=True)
class Config:
    """Sizes of one reproduction: the sweeps over N, H and L and what stays fixed."""

    N: tuple[int, ...] = (8, 16, 32, 64, 128)
    H: tuple[int, ...] = (2, 4, 8, 16, 32)
    L: tuple[int, ...] = (1, 2, 4, 8, 16)
    fixed_N: int = 8        # N of the H and L sweeps
    fixed_H: int = 4        # H of the N and L sweeps
    steps: int = 10
    seeds: int = 8
    seed: int = 0


FULL = Config()
#: the showcase: the smallest sweeps whose verdicts all resolve (measured: consistent on ensembles 0 to 3,
#: 50 to 70 s on 2 CPU cores); at N = 8 or L = 1 the corrections to the leading rates are still resolved
#: (K/Q displacement L^-0.64 +- 0.02 against L^-1/2 over L = 1, 2, 4), and 8 to 32 networks leave the
#: output's variance along H unresolved (H^-0.87 +- 0.39)
QUICK = Config(N=(16, 32, 64), H=(2, 4, 8, 16), L=(2, 4, 8), steps=5, seeds=64)


@dataclass(frozen=True)
class Exponent:
    """One fitted exponent next to the predicted one."""

    quantity: str
    description: str
    size: str
    measured: float
    se: float
    predicted: float | None
    source: str
    status: str | None       # consistent / inconsistent / unresolved; None: reported only
    sentence: str
    judged: str = ""         # what the verdict tests (`Prediction.label`), e.g. "falls (~N^-1)"
    route: str = ""          # "a + b/L" when a pass came from a finite limit (`HeadVerdict.route`)

    def predicted_text(self) -> str:
        return self.judged or ("-" if self.predicted is None else format_power(self.size, self.predicted))

    def verdict_text(self) -> str:
        status = self.status or "reported"
        return f"{status} ({self.route})" if self.route and self.status else status


@dataclass(frozen=True)
class Phenomenon:
    """One of the seed paper's phenomena: its verdict, in plain words, and the exponents behind it."""

    name: str
    title: str
    status: str
    sentence: str
    exponents: tuple[Exponent, ...]
    plot: str
    details: Mapping = field(default_factory=dict)


@dataclass(frozen=True)
class Reproduction:
    """Everything `reproduce` measured (the contents of report.json)."""

    quick: bool
    config: Config
    phenomena: tuple[Phenomenon, ...]
    seconds: float
    files: tuple[str, ...] = ()
    task: str = "reproduce_token_task"         # the spec's name: the built-in task or the user's model
    skipped: tuple[tuple[str, str], ...] = ()  # (phenomenon, why it was not measured)

    @property
    def status(self) -> str:
        return worst_status([p.status for p in self.phenomena])

    @property
    def passed(self) -> bool:
        return self.status == "consistent"

    @property
    def criterion(self) -> str:
        """The rule every phenomenon was judged by, in words (`criterion`)."""
        return criterion()

    def phenomenon(self, name: str) -> Phenomenon:
        for p in self.phenomena:
            if p.name == name:
                return p
        raise DmftcError(f"no phenomenon {name!r}; measured: {', '.join(p.name for p in self.phenomena)}")

    def to_json(self) -> dict:
        return _clean({
            "format": FORMAT, "quick": self.quick, "config": dataclasses.asdict(self.config),
            "task": TASK if self.task == "reproduce_token_task" else self.task, "seconds": self.seconds,
            "skipped": [{"name": n, "why": w} for n, w in self.skipped], "status": self.status, "criterion": self.criterion,
            "files": list(self.files),
            "phenomena": [{"name": p.name, "title": p.title, "status": p.status, "sentence": p.sentence,
                           "plot": p.plot, "exponents": [dataclasses.asdict(e) for e in p.exponents],
                           "details": p.details} for p in self.phenomena],
        })

    def markdown(self) -> str:
        c = self.config
        counts = {s: sum(p.status == s for p in self.phenomena) for s in STATUSES}
        lines = [
            "# The seed paper's phenomena, reproduced",
            "",
            f"`dmftc reproduce{' --quick' if self.quick else ''}`: "
            + ("finite pre-LayerNorm transformers (muP, teacher-attention target, P = 4 sequences of S = 4 "
               "tokens in D = 16)" if self.task == "reproduce_token_task" else f"finite networks of the spec "
               f"`{self.task}`") + f" trained by full-batch GD for {c.steps} steps, {c.seeds} networks per size, on the CPU in {self.seconds:.0f} s. Sweeps: "
            f"N = {_list(c.N)} (H = {c.fixed_H}, L = 1); H = {_list(c.H)} (N = {c.fixed_N}, L = 1); "
            f"L = {_list(c.L)} (N = {c.fixed_N}, H = {c.fixed_H}). Exponents are weighted least-squares fits "
            "of log value on log size, ± one standard error (from the seeds); predictions from "
            "`dmftc.scaling.analyze` unless marked theory.",
            "",
            f"**Overall: {self.status}** ({counts['consistent']} consistent, {counts['inconsistent']} "
            f"inconsistent, {counts['unresolved']} unresolved of {len(self.phenomena)}).",
            "",
            f"Criterion: {self.criterion}.",
        ]
        for name, why in self.skipped:
            lines += ["", f"Not measured: {name} ({why})."]
        for i, p in enumerate(self.phenomena, 1):
            lines += ["", f"## {i}. {p.title}: {p.status}", "", p.sentence, "",
                      "| quantity | measured | predicted | verdict |", "| --- | --- | --- | --- |"]
            for e in p.exponents:
                measured = "-" if math.isnan(e.measured) else format_measured(e.size, e.measured, e.se)
                lines.append(markdown_row([e.description, measured, e.predicted_text(), e.verdict_text()]))
            lines += ["", f"![{p.title}]({p.plot})"]
        return "\n".join(lines) + "\n"

    def summary(self) -> str:
        rows = [f"dmftc reproduce{' --quick' if self.quick else ''}: {self.status} ({self.seconds:.0f} s)"]
        for p in self.phenomena:
            rows.append(f"- {p.title}: {p.status}")
            for e in p.exponents:
                measured = "-" if math.isnan(e.measured) else format_measured(e.size, e.measured, e.se)
                rows.append(f"    {e.quantity:<22} {measured:<22} predicted {e.predicted_text():<14} "
                            f"{e.verdict_text()}")
        rows += [f"- not measured: {name} ({why})" for name, why in self.skipped]
        return "\n".join(rows + textwrap.wrap(f"Criterion: {self.criterion}.", width=100))


def criterion(n_sigma: float = N_SIGMA, margin: float = MARGIN) -> str:
    """How `reproduce` judges, in words: the head verdicts' rules (`dmftc.crosscheck.heads.criterion`),
    the depth margin (`dmftc.crosscheck.depth.criterion`), the tension's contrasts and the exit code."""
    return (f"phenomena 1 to 4, along n = N or H: {heads_criterion('n', n_sigma, margin)}; the depth tension (5) "
            f"along L: the same, and a fall also passes within {margin:g} of the predicted L exponent (corrections "
            f"at finite depth), and both contrasts of exponents between alpha_L = 1/2 and 1 must be resolved beyond "
            f"{float(n_sigma)} se with the predicted sign (reversed beyond it: inconsistent); a phenomenon is "
            "consistent when each of its verdicts is, inconsistent when one is, else unresolved; dmftc reproduce "
            "exits 0 only when every phenomenon is consistent (1 otherwise)")


# ------------------------------------------------------------------ the task
def task(alpha_A: float = 1.0, limit: Sequence[str] = ("N",), steps: int = 10, base: Spec | None = None,
         **sizes: int) -> Spec:
    """The reproduction's spec (`base`, or the built-in TASK) with alpha_A, the limit, the steps and sizes
    (N, H, L) set. Sizes the base does not have (L of a model without depth) are left out."""
    spec = base or loads(TASK, "reproduce_token_task.yaml")
    training = dataclasses.replace(spec.training, steps=int(steps))
    return dataclasses.replace(spec, hyper={**spec.hyper, "alpha_A": float(alpha_A)}, limit=tuple(limit),
                               sizes={**spec.sizes, **{k: v for k, v in sizes.items() if k in spec.sizes}},
                               training=training)


def check_model(spec: Spec) -> None:
    """A user's model for `reproduce`: token data, attention whose logit scale reads alpha_A, sizes N and H."""
    text = f"the spec {spec.name!r}"
    if "alpha_A" not in spec.hyper or not {"N", "H"} <= set(spec.sizes):
        raise DmftcError(f"{text} cannot be used by `dmftc reproduce`: it needs sizes N and H and an attention "
                         "op with `logit_scale: N**(-alpha_A)` (alpha_A in `hyper`), as specs/transformer_mup.yaml")


def depth_skip(spec: Spec) -> str | None:
    """Why the depth tension cannot be measured on `spec` (None when it can)."""
    if "L" not in spec.sizes or "alpha_L" not in spec.hyper:
        return "the model has no residual depth L with a branch scale beta0 / L**alpha_L"
    return None


# ------------------------------------------------------------------ phenomena
def head_collapse(config: Config, progress: Callable | None = None,
                  base: Spec | None = None) -> tuple[Phenomenon, Phenomenon]:
    """Phenomena 1 and 2: the across-head spread of the logits against N at alpha_A = 1 and 1/2."""
    reports = {}
    for a in (1.0, 0.5):
        spec = task(a, ("N",), config.steps, base, H=config.fixed_H, L=1)
        reports[a] = measure_heads(spec, {"N": list(config.N)}, seeds=config.seeds, seed=config.seed,
                                   progress=progress)
    one, half = reports[1.0], reports[0.5]
    collapse = _from_heads(
        "head_collapse", "Head collapse as N grows (alpha_A = 1)", one, ("headvar_init", "headvar_change"),
        "heads_N.png",
        good="the heads collapse: the across-head spread of the logits falls with N, at initialization "
             "and in what training adds, so every head follows the same dynamics")
    diverse = _from_heads(
        "no_collapse", "No collapse as N grows (alpha_A = 1/2)", half, ("headvar_init", "headvar_change"),
        "heads_N.png",
        good="the heads do not collapse: the across-head spread of the logits stays O(1) at every N "
             "(the analysis: the N -> infinity limit of training does not exist at alpha_A = 1/2)")
    return collapse, diverse


def heads_growing(config: Config, progress: Callable | None = None,
                  base: Spec | None = None) -> tuple[Phenomenon, Phenomenon, dict]:
    """Phenomena 3 and 4: at fixed N and alpha_A = 1/2, the logits' spread and the output's
    across-seed variance against H. Also returns the variances for the figure."""
    spec = task(0.5, ("H",), config.steps, base, N=config.fixed_N, L=1)
    report = measure_heads(spec, {"H": list(config.H)}, seeds=config.seeds, seed=config.seed, progress=progress)
    diversity = _from_heads(
        "head_diversity", "Head diversity as H grows (fixed N, alpha_A = 1/2)", report,
        ("headvar_init", "headvar_change"), "heads_H.png",
        good="the heads stay diverse: the across-head spread of the logits, at initialization and in "
             "their change, does not fall as heads are added")
    values, ses = [], []
    for h in config.H:   # the programs measure_heads just compiled are reused
        sim = simulate(spec, sizes={"H": h}, seeds=config.seeds, record="diag", seed=config.seed)
        f = np.asarray(sim.f, np.float64)
        if not np.all(np.isfinite(f)):
            raise DmftcError(f"the networks diverged at H = {h}; lower the learning rate")
        d = distance(f, np.zeros(f.shape[1:]), what="network output")
        values.append(d.fluct**2)
        ses.append(2.0 * d.fluct * d.fluct_se)
    fit = fit_power_law(config.H, values, ses, size_name="H", label="across-seed variance of f")
    pred = Prediction(-1.0, "falls", "theory (docs/theory.md#limits-and-regimes): outputs and kernels become deterministic, "
                                     "converging as O(1/H): a variance ~ H^-1", gate=True)
    verdict = judge("output_variance", fit, pred)
    status = _STATUS[verdict.status]
    sentence = {"consistent": "the output concentrates: the across-seed variance of the network output falls "
                              f"as {format_measured('H', fit.exponent, fit.exponent_se)}, as the predicted H^-1",
                "inconsistent": f"the output does not concentrate as predicted: {verdict.sentence}",
                "unresolved": f"unresolved: {verdict.sentence}"}[status]
    concentration = Phenomenon(
        "output_concentration", "Concentration of the output as H grows (fixed N)", status, sentence,
        (_exponent("output_variance", "across-seed variance of the output f(t), mean over t and samples",
                   fit, pred, verdict),),
        "heads_H.png", {"H": list(config.H), "values": values, "ses": ses, "fit": dataclasses.asdict(fit)})
    return diversity, concentration, {"report": report, "fit": fit, "values": values, "ses": ses,
                                      "fixed_N": config.fixed_N, "status": status}


def depth_tension(config: Config, progress: Callable | None = None,
                  base: Spec | None = None) -> tuple[Phenomenon, DepthTension]:
    """Phenomenon 5: `measure_depth_tension` on the task at N = fixed_N, H = fixed_H."""
    spec = task(1.0, ("N",), config.steps, base, N=config.fixed_N, H=config.fixed_H)
    t = measure_depth_tension(spec, config.L, seeds=config.seeds, seed=config.seed, progress=progress)
    rows = []
    for r in t.reports:
        for q in r.quantities:
            if q.name in ("kq_displacement", "kernel_change", "logit_change"):
                rows.append(Exponent(f"{q.name} (alpha_L={fraction(r.alpha_L)})", f"{q.description} "
                                     f"(alpha_L = {fraction(r.alpha_L)})", "L", q.fit.exponent, q.fit.exponent_se,
                                     q.prediction.exponent, q.prediction.source, q.status,
                                     q.verdict.sentence if q.verdict else "", q.prediction.label("L"),
                                     q.verdict.route if q.verdict else ""))
    details = t.to_json()
    details.pop("reports")
    return Phenomenon("depth_tension", "Depth tension between alpha_L = 1/2 and 1", t.status, t.sentence,
                      tuple(rows), "depth.png", details), t


def reproduce(out_dir, quick: bool = False, *, config: Config | None = None,
              progress: Callable | None = None, spec: Spec | None = None) -> Reproduction:
    """Measure every phenomenon, write report.json, report.md and the figures into `out_dir`.

    Parameters
    ----------
    out_dir : str or os.PathLike
    quick : bool
        The small configuration (`QUICK`) instead of `FULL`.
    config : Config, optional
        Overrides both.
    progress : callable, optional
        Wraps every sweep (see `dmftc.crosscheck.progress`); None: silent.
    spec : Spec, optional
        A token model to measure instead of the built-in task (`check_model` says what it needs); the
        depth tension is skipped, with the reason, when it has no residual depth.
    """
    cfg = config or (QUICK if quick else FULL)
    for axis in ("N", "H", "L"):
        if len(set(getattr(cfg, axis))) < 3:
            raise DmftcError(f"a verdict needs 3 sizes of {axis} (got {list(getattr(cfg, axis))})")
    if spec is not None:
        check_model(spec)
    skip = depth_skip(spec) if spec is not None else None
    out = Path(out_dir)
    start = time.perf_counter()
    collapse, diverse = head_collapse(cfg, progress, spec)
    diversity, concentration, hdata = heads_growing(cfg, progress, spec)
    phenomena = [collapse, diverse, diversity, concentration]
    if skip is None:
        depth, tension = depth_tension(cfg, progress, spec)
        phenomena.append(depth)
    seconds = time.perf_counter() - start
    files = [_plot_heads_N(collapse, diverse, out / "heads_N.png"), _plot_heads_H(hdata, out / "heads_H.png"),
             *([tension.plot(out / "depth.png")] if skip is None else [])]
    result = Reproduction(quick, cfg, tuple(phenomena), seconds, task=spec.name if spec else "reproduce_token_task",
                          skipped=(("depth tension", skip),) if skip else ())
    names = tuple(p.name for p in files) + ("report.json", "report.md")
    result = dataclasses.replace(result, files=names)
    write_json_atomic(out / "report.json", result.to_json())
    write_text_atomic(out / "report.md", result.markdown())
    return result


# ------------------------------------------------------------------ helpers
def _from_heads(name: str, title: str, report: HeadReport, decisive: Sequence[str], plot: str, *,
                good: str) -> Phenomenon:
    """A phenomenon whose verdict is that of the `decisive` quantities of a head report (the others are
    listed with their own verdicts)."""
    statuses = [_STATUS[report.quantity(q).verdict.status] for q in decisive]
    status = worst_status(statuses)
    said = "; ".join(f"{q}: {report.quantity(q).verdict.sentence}" for q in decisive)
    sentence = {"consistent": f"{good} ({said})",
                "inconsistent": f"not as predicted: {said}",
                "unresolved": f"unresolved: {said}"}[status]
    size = report.size_name
    rows = tuple(_exponent(q.name, q.description, q.fit, q.prediction, q.verdict) for q in report.quantities
                 if q.name in decisive or q.verdict is not None)
    details = report.to_json()
    return Phenomenon(name, title, status, sentence + f" [{size} = {_list(report.sizes)}]", rows, plot,
                      {"heads": details})


def _exponent(name: str, description: str, fit: PowerLaw, pred: Prediction, verdict: HeadVerdict | None) -> Exponent:
    return Exponent(name, description, fit.size_name, fit.exponent, fit.exponent_se, pred.exponent, pred.source,
                    None if verdict is None else _STATUS[verdict.status], "" if verdict is None else verdict.sentence,
                    pred.label(fit.size_name), "" if verdict is None else verdict.route)


def _list(values) -> str:
    values = list(values)
    return f"{values[0]}..{values[-1]}" if len(values) > 3 else ", ".join(map(str, values))


# ------------------------------------------------------------------ figures
#: the logit scale N^-alpha_A in words with its symbols
_LOGIT_SCALE = {1.0: "logits scaled 1 / N (α_A = 1)", 0.5: "logits scaled 1 / √N (α_A = 1/2)"}


def _axes(cols: int, title: str):
    """A Figure of `cols` panels side by side on the Agg canvas (no pyplot), with a title."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0 * cols, 4.8), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, cols, squeeze=False)[0]
    fig.suptitle(title, fontsize=11)
    return fig, axes


def _finish(ax, sizes, xlabel: str, ylabel: str, title: str) -> None:
    """Log-log axes labelled in words, a title, and a legend where something is drawn."""
    log_size_axes(ax, sizes, xlabel, ylabel)
    ax.set_title(title, fontsize=9)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)


def heads_N_figure(collapse: Phenomenon, diverse: Phenomenon):
    """Phenomena 1 and 2 (heads_N.png): the across-head variance of the initial logits and of their change
    against N at alpha_A = 1 and 1/2, each drawn by `dmftc.crosscheck.heads.draw_power_law`; a Figure."""
    fig, axes = _axes(2, "head collapse: across-head variance of the attention logits A against the "
                         "key/query dimension N")
    one, half = (HeadReportView(p) for p in (collapse, diverse))
    for ax, q in zip(axes, ("headvar_init", "headvar_change")):
        for view, color, a in ((one, "tab:blue", 1.0), (half, "tab:orange", 0.5)):
            fit, pred, status = view.fit(q)
            draw_power_law(ax, fit, pred, color, _LOGIT_SCALE[a], status)
        _finish(ax, one.sizes, size_axis_words("N"), "variance across heads",
                "initial logits A(0)" if q == "headvar_init" else "logit change A(T) − A(0) after training")
    return fig


def heads_H_figure(hdata: Mapping):
    """Phenomena 3 and 4 (heads_H.png): the logits' spread across heads and the output's across-seed
    variance against H at fixed N; a Figure."""
    report: HeadReport = hdata["report"]
    fig, axes = _axes(2, f"many heads at a fixed key/query dimension N = {hdata['fixed_N']} "
                         f"({_LOGIT_SCALE[0.5]})")
    for q, color in (("headvar_init", "tab:blue"), ("headvar_change", "tab:green")):
        hq = report.quantity(q)
        status = _STATUS[hq.verdict.status] if hq.verdict else "reported"
        draw_power_law(axes[0], hq.fit, hq.prediction.exponent, color, hq.description, status)
    _finish(axes[0], report.sizes, size_axis_words("H"), "variance across heads", "head diversity: logits stay O(1)")
    draw_power_law(axes[1], hdata["fit"], -1.0, "tab:red", "across-seed variance of the output f(t)",
                   hdata.get("status"))
    _finish(axes[1], report.sizes, size_axis_words("H"), "across-seed variance of the output f(t)",
            "concentration of the output")
    return fig


def _plot_heads_N(collapse: Phenomenon, diverse: Phenomenon, path: Path) -> Path:
    """Write `heads_N_figure` to `path` (a PNG, atomically)."""
    return save_figure_atomic(heads_N_figure(collapse, diverse), path)


def _plot_heads_H(hdata: Mapping, path: Path) -> Path:
    """Write `heads_H_figure` to `path` (a PNG, atomically)."""
    return save_figure_atomic(heads_H_figure(hdata), path)


class HeadReportView:
    """The fits of a head-collapse phenomenon, read back from its details (for the figure)."""

    def __init__(self, p: Phenomenon):
        self.data = p.details["heads"]
        self.sizes = self.data["sizes"]

    def fit(self, q: str) -> tuple[PowerLaw, float | None, str]:
        d = self.data["quantities"][q]
        f = {k: (tuple(v) if isinstance(v, list) else (float("nan") if v is None else v)) for k, v in d["fit"].items()}
        verdict = d["verdict"]
        return (PowerLaw(**f), d["prediction"]["exponent"],
                _STATUS[verdict["status"]] if verdict else "reported")
