"""The spine: spec -> graph -> exponent table -> scaling -> equations -> solver module.

`compile_spec` runs every stage once and keeps each stage's object in a `Program`, so each
can be printed, checked and tested on its own (as devito's `IRs` record does).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
import time
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import sympy

from .accuracy import SAMPLE_PREFIXES
from .budget import check_compile, check_solve
from .codegen.emit import emit_module, regenerate_command, write_atomic
from .crosscheck.progress import bar as progress_bar
from .dmft.derive import DTAU, derive
from .dmft.system import EquationSystem
from .divergence import check_run, targets_scale
from .files import save_npz_atomic, write_text_atomic
from .graph.build import Graph, build_graph
from .outputs import describe, npz_entries, solution_axes, versions
from .scaling.parameterization import WeightScaling, resolve_parameterization
from .spec import load, load_data
from .spec.types import Spec


@dataclass(frozen=True)
class Program:
    """Every stage's output for one spec."""

    spec: Spec
    graph: Graph
    params: Mapping[str, WeightScaling]
    scaling: Any
    equations: EquationSystem
    module: str
    regenerate: str

    @property
    def name(self) -> str:
        return self.spec.name

    def latex(self, standalone: bool = False) -> str:
        return self.equations.latex(standalone=standalone)

    def write(self, out_dir: str | Path = "generated") -> tuple[Path, Path]:
        """Write <name>.py and <name>.tex atomically into out_dir."""
        out = Path(out_dir)
        py, tex = out / f"{self.name}.py", out / f"{self.name}.tex"
        write_atomic(py, self.module)
        write_atomic(tex, self.latex(standalone=True))
        return py, tex

    def load_module(self):
        """The generated solver module, imported once per distinct text (so jit compiles once)."""
        return _import_text(self.name, self.module)

    def data(self, steps: int | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
        """(X, y, extra arguments of the module's solve): the training points followed by the held-out ones
        (`data.synthetic.test`), and the arrays of the training setup the system reads (`dmftc.training`)."""
        from . import training
        from .spec import load_test

        X, y = load_data(self.spec)
        test = load_test(self.spec)
        if test is not None:
            X, y = np.concatenate([X, test[0]]), np.concatenate([y, test[1]])
        names = self.equations.training
        if not names:
            return X, y, {}
        st = training.setup(self.spec, steps=steps)
        if self.equations.coupled_rate is not None:
            # the filters of coupled decay depend on lr_W lambda alone: its limit, at lr_W = 1
            rate = float(self.equations.coupled_rate.subs({sympy.Symbol(k, positive=True): v
                                                           for k, v in self.spec.hyper.items()}))
            st = dataclasses.replace(st, decay=rate)
        per_point = X.shape[1] if X.ndim == 3 else 1
        return X, y, {"training": training.arrays(st, names, per_point)}

    def solve(self, *, steps: int | None = None, samples: int | None = None, seed: int | None = None,
              dtype: str | None = None, depth_error: bool = True, errors: bool = True,
              batches: int | None = None, rtol: float | None = None, atol: float | None = None,
              progress: bool = False) -> "Solution":
        """Solve the DMFT; defaults from the spec's training and solver sections.

        A Monte Carlo solve comes with its error analysis (`dmftc.accuracy`): standard errors from
        `batches` independent batches of its draws, its O(1/M) bias estimated from the halves and removed
        (Richardson in 1/M), and the bias left. `errors=False` gives the plain solve on all draws (one
        solve, no error bars). With `rtol` or `atol` the draws grow until the loss's reported error is
        within max(atol, rtol x loss range), from a first round of min(samples, 8 n) draws. In a depth
        limit (L -> oo on a grid of K steps) the meta also reports the discretisation error, the largest
        loss difference between K and K/2 steps. As `dmftc solve`: without `samples`, `rtol` or `atol` the
        spec's target (solver.rtol, default 1 % of the loss range, and solver.atol) holds; `samples` alone
        fixes the draws.
        """
        from . import accuracy

        opts = self.spec.solver
        if samples is None and rtol is None and atol is None:
            rtol, atol = opts.rtol or None, opts.atol or None
        kw = dict(steps=steps or self.spec.training.steps, samples=samples or opts.samples,
                  seed=opts.seed if seed is None else seed, dtype=dtype or opts.dtype)
        mc = self.equations.method == "monte_carlo"
        K = batches or opts.batches
        with_errors = mc and errors
        if with_errors:
            accuracy.check_batches(K)
            kw["samples"] = accuracy.batch_samples(kw["samples"], K)
        runs = accuracy.kept_runs(K) if with_errors else 1   # the solutions an error analysis holds at once
        check_solve(self.spec, self.equations, steps=kw["steps"], samples=kw["samples"],  # before any work
                    dtype=kw["dtype"], runs=runs)
        X, y, setup = self.data(kw["steps"])
        mod = self.load_module()
        sites = int(np.prod(np.shape(X)[:-1]))  # samples, or sample x token positions
        # the bar counts draws, which the time of a solve is about proportional to: a round of the error
        # analysis solves all M draws, its two halves and its K batches, 3 M draws in all
        per_draw = 3 if with_errors else 1
        target = with_errors and (rtol or atol)
        # an accuracy target starts from a first round just large enough for its error model: 8 draws per
        # dimension of a source's history
        pilot = min(kw["samples"], max(MIN_DRAWS_PER_DIMENSION * (kw["steps"] + 1) * sites, 32 * K))
        first = pilot if target else kw["samples"]
        bar = progress_bar(per_draw * first, f"solve {self.name}", enabled=progress, unit="draws")

        def run(M: int, part=None, replica: int = 0) -> dict:
            # replica r > 0: an independent set of draws (seed shifted past any batch index)
            if bar.n >= bar.total:   # a further round of draws (an accuracy target) or replica; its first
                bar.total += per_draw * M   # solve is the one on all its M draws
                bar.refresh()
            seed = kw["seed"] + REPLICA_SEED_STRIDE * replica
            out = mod.solve(X, y, dict(self.spec.hyper), **dict(kw, samples=M, seed=seed), batches=part, **setup)
            arrays = {k: np.asarray(v) for k, v in out.items()}
            _check_finite(arrays, self, y)
            bar.update(M)
            return arrays

        t0 = time.perf_counter()
        est, acc = None, None
        if target:
            fits = lambda M: check_solve(self.spec, self.equations, steps=kw["steps"], samples=M, dtype=kw["dtype"],
                                         runs=runs)
            est, acc = accuracy.solve_to_accuracy(
                lambda M, r: accuracy.estimate(lambda m, part: run(m, part, r), M, K), pilot, K,
                rtol=rtol, atol=atol, fits=fits)
        elif with_errors:
            est = accuracy.estimate(run, kw["samples"], K)
        if est is not None:
            kw["samples"] = est.samples
            arrays, errs = dict(est.value), {"se": est.se, "bias": est.bias, "residual": est.residual}
        else:
            arrays = run(kw["samples"])
            errs = {"se": {k: np.zeros_like(v) for k, v in arrays.items()}} if not mc else {}
        bar.close()
        elapsed = time.perf_counter() - t0
        meta = {"settings": kw, "seconds": elapsed, "regime": self.equations.regime, "method": self.equations.method,
                "errors": error_summary(self.equations.method, est, acc)}
        if mc:
            meta.update(draws_check(kw["samples"], kw["steps"], sites))
        if depth_error and getattr(mod, "DEPTH_STEPS", 0) >= 2:
            meta.update(depth_discretisation(self, arrays["loss"], mod.DEPTH_STEPS, kw))
        return Solution(self.name, arrays, meta, errs, tuple(est.runs()) if est is not None else ())


def error_summary(method: str, est, acc) -> dict:
    """solution.json's account of the error: how it was estimated and its largest values over time."""
    if method in ("exact_gaussian", "closed_form"):
        return {"method": "exact", "note": f"{method}: no sampling; the arrays carry no Monte Carlo error "
                                           "(float round-off only)"}
    if method != "monte_carlo":
        return {"method": "deterministic", "note": f"{method}: deterministic numerical integration; no Monte "
                                                   "Carlo error (its discretisation error is not estimated)"}
    if est is None:
        return {"method": "none", "note": "one plain solve (errors=False): no error bars"}
    out = {"method": "batches", "batches": est.batches, "samples": est.samples, "replicas": est.replicas,
           "solves": est.solves,
           "bias_removed": True,
           "note": "value = 2 X_M - X_M/2 (Richardson in 1/M); se from the spread of the batch solves; "
                   "residual: the bias left, from the batch level (dmftc.accuracy)",
           "loss_se_max": float(np.max(est.se["loss"])), "loss_bias_max": float(np.max(np.abs(est.bias["loss"]))),
           "loss_residual_max": float(np.max(np.abs(est.residual["loss"]))),
           "loss_error_max": float(np.max(est.total("loss")))}
    if acc is not None:
        out.update(target=acc.tol, target_met=acc.met, draws_tried=list(acc.rounds), accuracy=acc.describe())
    return out


#: seed offset between independent replicas of an accuracy-driven solve (`accuracy.combine`)
REPLICA_SEED_STRIDE = 1_000_003

#: draws per dimension of a source's history below which the Monte Carlo DMFT is measurably biased
MIN_DRAWS_PER_DIMENSION = 8


def draws_check(samples: int, steps: int, sites: int) -> dict:
    """M / n for n = (T + 1) x sites, the dimension of one source's history, and a warning when it is small.

    A Monte Carlo DMFT with M draws behaves like a network of width M: its kernels are estimated from M
    samples of n-dimensional histories, and its bias grows like n / M. Measured (2 hidden ReLU layers,
    P = 16, T = 50, n = 816): loss(t = 25) 0.0050 at M = 2048, 0.0097 at 4096, 0.0099 at 16384; at
    M = 2048 some seeds diverge. Seed-to-seed spread does not show this bias.
    """
    n = (steps + 1) * sites
    out = {"draws_per_dimension": samples / n}
    if samples < MIN_DRAWS_PER_DIMENSION * n:
        out["warning"] = (f"solver.samples = {samples} is {samples / n:.1f} x the history dimension n = (T + 1) x "
                          f"{sites} = {n}: the Monte Carlo DMFT carries an O(n / M) bias that seed-to-seed spread "
                          "does not show, and so few draws put its halves and batches past the 1/M law the error "
                          f"analysis extrapolates by; use solver.samples >= {MIN_DRAWS_PER_DIMENSION * n} for late "
                          "times and per-head statistics")
    return out


def depth_discretisation(prog: Program, loss: np.ndarray, K: int, kw: dict) -> dict:
    """max_t |loss_K(t) - loss_{K/2}(t)|: the depth grid's error estimate (Monte Carlo noise included)."""
    from dataclasses import replace as _replace

    half = _replace(prog.spec, solver=_replace(prog.spec.solver, depth_steps=K // 2))
    coarse = compile_spec(half).solve(**kw, depth_error=False, errors=False).loss
    return {"depth_steps": K, "depth_discretisation_error": float(np.max(np.abs(loss - coarse)))}


@dataclass(frozen=True)
class Solution:
    """A DMFT solution: arrays by name (loss, f, kernels) and metadata; `to_xarray()` labels them, `plot()`
    draws one against the training step."""

    name: str
    arrays: Mapping[str, np.ndarray]
    meta: Mapping[str, Any] = field(default_factory=dict)
    #: kind ('se', 'bias', 'residual') -> array name -> its error array (`dmftc.accuracy.Estimate`); empty
    #: for a plain Monte Carlo solve, zero standard errors for an exact one
    errors: Mapping[str, Mapping[str, np.ndarray]] = field(default_factory=dict)
    #: the error analysis's batch solves moved onto the value (`accuracy.Estimate.runs`); not saved
    runs: tuple[Mapping[str, np.ndarray], ...] = field(default=(), repr=False)

    @property
    def loss(self) -> np.ndarray:
        return self.arrays["loss"]

    def se(self, name: str = "loss") -> np.ndarray | None:
        """The standard error of one array (None when the solve had no error analysis)."""
        return self.errors.get("se", {}).get(name)

    def error_arrays(self) -> dict[str, np.ndarray]:
        """<name>_se, <name>_bias and <name>_residual for every array with an error bar (solution.npz)."""
        return {f"{k}_{kind}": v for kind, per in self.errors.items() for k, v in per.items()
                if not k.startswith(SAMPLE_PREFIXES)}

    @property
    def f(self) -> np.ndarray:
        return self.arrays["f"]

    @property
    def steps(self) -> int:
        return len(self.loss) - 1

    def __repr__(self) -> str:
        s = self.meta.get("settings", {})
        head = ", ".join([repr(self.name), *(str(self.meta[k]) for k in ("method", "regime") if k in self.meta),
                          f"steps={self.steps}", *(f"{k}={s[k]}" for k in ("samples", "seed", "dtype") if k in s)])
        return describe("Solution", head, self.arrays)

    def save(self, out_dir: str | Path, spec: Spec | None = None) -> Path:
        """solution.npz and solution.json, each written atomically (layout: README.md, "Output files")."""
        out = Path(out_dir)
        errs = self.error_arrays()
        axes = self._axes(errs)
        meta = dict(self.meta, name=self.name, spec=(spec.raw if spec is not None else None),
                    final_loss=float(self.loss[-1]), shapes={k: list(np.shape(v)) for k, v in self.arrays.items()},
                    axes=axes, versions=versions())
        save_npz_atomic(out / "solution.npz", npz_entries({**self.arrays, **errs}, self.steps, axes, meta))
        write_text_atomic(out / "solution.json", json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n")
        return out / "solution.npz"

    def to_xarray(self, spec: Spec | None = None):
        """The arrays and their errors as an xarray.Dataset (docs/reading-output.md, "In Python").

        Dimensions: t (the step), mu and nu (the kernels' sites), s (the second time), sample (the input
        of f), head, each with integer coordinates; `<name>_se`, `<name>_bias` and `<name>_residual`
        where the solve has them (as in solution.npz). `attrs`: kind, name, steps, final_loss, the
        solve's settings (samples, seed, dtype), method, regime, the error analysis (errors_*) and the
        versions (versions_*), flattened for netCDF; with `spec`, also its sizes (a limit size as "inf")
        and the spec itself as JSON text. `.to_netcdf(path)` writes it.
        """
        from .outputs import dataset

        errs = self.error_arrays()
        return dataset({**self.arrays, **errs}, self._axes(errs), solution_attrs(self, spec))

    def plot(self, name: str = "loss", ax=None, **where):
        """Draw the array `name` against the training step t, with its Monte Carlo band (± one standard
        error) where it has one; returns the matplotlib Axes.

        `where` picks one entry of the other dimensions (`plot("Phi1", mu=0, s=0, nu=0)`); `ax` is drawn
        on, or a new pyplot figure is made (as xarray's and pandas' plot do). The legend says "DMFT (exact)"
        for an exact solve, "DMFT (no error bars)" for a Monte Carlo solve without its error analysis.
        """
        from .crosscheck.plots import quantity_words
        from .errors import DmftcError
        from .outputs import LOSS_WORDS, curve_problem, plot_steps, selection_words

        ds = self.to_xarray()
        problem = curve_problem(ds, name, where)
        if problem:
            raise DmftcError(problem)
        value = ds[name].isel(where)
        se = ds[f"{name}_se"].isel(where) if f"{name}_se" in ds else None
        words = LOSS_WORDS.get(name) or quantity_words(name)
        return plot_steps(ax, value["t"], value, se, label=dmft_label(se, self.meta.get("errors", {}).get("method")),
                          band_label="DMFT ± Monte Carlo s.e.", ylabel=words + selection_words(where),
                          title=f"{self.name}: DMFT ({self.meta.get('method', 'solve')})", color="black")

    def _axes(self, errs: Mapping[str, np.ndarray]) -> dict[str, list[str]]:
        """Every array's axis names (`solution_axes`), its error arrays' those of the array they belong to."""
        axes = solution_axes(self.arrays, self.meta.get("method"))
        axes.update({k: axes[k.rsplit("_", 1)[0]] for k in errs})
        return axes


def solution_attrs(sol: Solution, spec: Spec | None) -> dict[str, Any]:
    """The run's metadata for `Solution.to_xarray` (before flattening): the solve's settings lifted to the top."""
    meta = {k: v for k, v in sol.meta.items() if k != "settings"}
    attrs = {"kind": "DMFT solution", "name": sol.name, "steps": sol.steps, "final_loss": float(sol.loss[-1]),
             **sol.meta.get("settings", {}), **meta, "versions": versions()}
    if spec is not None:
        attrs["sizes"] = {k: "inf" if k in spec.limit else v for k, v in spec.sizes.items()}
        attrs["spec"] = json.dumps(spec.raw, sort_keys=True, default=str)
    return attrs


def dmft_label(se, method: str | None) -> str:
    """The DMFT curve's legend entry: "DMFT" beside its Monte Carlo band, "DMFT (exact)" for an exact solve
    (zero standard errors), "DMFT (no error bars)" where there are none or the method has no estimate."""
    if se is not None and bool(np.any(np.asarray(se) > 0)):
        return "DMFT"
    return "DMFT (exact)" if se is not None and method == "exact" else "DMFT (no error bars)"


def compile_spec(spec: Spec | str | Path, overrides: Sequence[str] = ()) -> Program:
    """Run the compiler's stages on a spec (a loaded Spec or a path)."""
    if not isinstance(spec, Spec):
        spec = load(spec, overrides=overrides)                      # text -> Spec
    graph = build_graph(spec)                                       # Spec -> Graph
    check_compile(spec, graph)                                      # L = 10**6 unrolled copies stop here
    params = resolve_parameterization(spec, graph)                  # Graph -> exponent table
    scaling = _analyze(spec, graph, params)                         # -> Scaling (regimes, term exponents)
    if scaling is not None:
        scaling.raise_if_unstable()                                 # an ill-posed limit stops here, with reasons
    equations = derive(spec, graph, params)                         # -> EquationSystem
    hyper = tuple(spec.hyper) + (("dtau",) if any(c.has(DTAU) for c in equations.coefficients.values()) else ())
    module = emit_module(equations, hyper, _canonical(spec), _display_path(spec))  # -> module text
    return Program(spec, graph, params, scaling, equations, module, regenerate_command(_display_path(spec)))


def _analyze(spec, graph, params):
    try:
        from .scaling import analyze
    except ImportError:  # pragma: no cover - the scaling stage is always installed with dmftc
        return None
    return analyze(spec, graph, params)


def _canonical(spec: Spec) -> str:
    return json.dumps(spec.raw if spec.raw is not None else repr(spec), sort_keys=True, default=str)


def _display_path(spec: Spec) -> str | None:
    """The spec's path relative to the current folder (or its file name), None for a spec from text."""
    if spec.source is None:
        return None
    p = Path(spec.source)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return p.name


_MODULES: dict[str, Any] = {}


def _import_text(name: str, text: str):
    # the header's digest line names the spec (hyperparameter values included); the code itself does not
    # depend on them, so modules equal but for that line share one import and one jit cache
    code = "\n".join(ln for ln in text.splitlines() if not ln.startswith("digest: sha256:"))
    key = hashlib.sha256(code.encode()).hexdigest()
    if key not in _MODULES:
        _MODULES[key] = _fresh_module(f"{name}_{key[:12]}", text)
    return _MODULES[key]


def _fresh_module(name: str, text: str):
    mod_name = f"dmftc_generated_{name}"
    spec = importlib.util.spec_from_loader(mod_name, loader=None)
    mod = importlib.util.module_from_spec(spec)
    code = compile(text, f"<generated {name}.py>", "exec")
    sys.modules[mod_name] = mod
    _run_code(code, mod.__dict__)
    return mod


def _run_code(code, namespace) -> None:
    # safe: runs only module text that dmftc itself generated from validated equations
    exec(code, namespace)  # safe: generated code, never spec text


def _check_finite(arrays: Mapping[str, np.ndarray], prog: Program, y) -> None:
    """A solve whose loss ran far beyond its start, or with any NaN or inf, is an error (`dmftc.divergence`)."""
    check_run(f"the DMFT solve of {prog.name}", arrays["loss"], arrays,
              "Remedies: lower the learning rate (training.lr): the discrete-time dynamics are unstable at this "
              "step size; for a Monte Carlo solve also try solver.dtype: float64 or more solver.samples.",
              scale=targets_scale(y))
