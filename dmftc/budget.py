"""Resource budget: the memory and work of a compile, a DMFT solve or a finite-network simulation,
estimated from the spec before any work starts, and a `ResourceError` with the figure and the fix
for what cannot fit this machine.

One job: estimates and refusals. Every check is cheap (sizes substituted into the graph's template
widths and repeat counts, the equation system's schedule counted: no algebra, no tracing, no jit,
milliseconds), so it runs first, before the data are made, a network is built or anything compiles.

Where the sizes enter:
- L (and, with L in the limit, K = `solver.depth_steps`) unrolls: the derivation, the generated
  solver, the simulator's network and XLA's compile of either hold every copy of a repeat's body
  (the derivation alone: 5.4, 9.7, 26.9 s for a residual network at L = 16, 64, 256). At most
  `MAX_UNROLLED` weight copies (`check_compile`, `check_simulation`), refused in milliseconds.
- `training.steps` unrolls nothing (the sweep is a `fori_loop`, the simulator's a `lax.scan`): it
  sets the arrays' sizes, n = (T + 1) P S history slots per draw and n x n kernels (P counting the
  held-out points `data.*.test`, whose outputs a solve predicts at every step).
- `solver.samples` (M), P, S, D, the widths and the seeds set the arrays' sizes too.

The model (bytes b of the dtype; the process itself `BASE`):
- solve, Monte Carlo: M draws x n slots x V history-long arrays, V = `HISTORIES_PER_RECORD` x (the
  fields and twins as the schedule writes them, each source's history and its whitened draws; a
  head's fields hold N rows per draw at H -> oo), plus `MATRIX_COPIES` x (kernels, responses and two
  causal factors per dynamic source) n x n arrays. The exact Gaussian mode draws the identity basis
  of the sources (M = their total dimension, ~ n per dynamic source); the lazy limit holds
  (T + 1) stacked P x P covariances.
- simulation: the initial weights of one chunk of seeds (three copies: the host's, the device's and
  `lax.map`'s batches; `simulate` chunks the seeds by its `budget`), weights, gradients and activations
  of the networks in flight, the recorded features of the chunk, and the recorded arrays of every seed
  (with record="full", two-time kernels of (T + 1)^2 (P S)^2 entries per site: Phi and G per hidden
  layer, H, G and Phi per position of a residual stream) with the running chunk's copy. A check
  keeps every size's arrays until the end (`check_ensembles`).
- data: P x S x D float64 made on the host, `DATA_COPIES` copies.
Before the derivation (`check_compile`) a solve is also held to its floor, the least any method
needs (the data and (T + 1) P S x P S numbers): T = 10**9 steps is refused at compile, in milliseconds.

The limit is this machine's physical memory (`os.sysconf`; the cgroup's memory.max where lower;
psutil where sysconf is missing) times `SAFETY`. The environment variable DMFTC_MEMORY_LIMIT (bytes,
or with a unit: 12GiB, 500MB) replaces it: a batch job's share of a node, an accelerator's own
memory, a machine with swap to spare. It is read here only; no generated solver ever sees it.

Calibration, peak RSS measured with `/usr/bin/time -f %M dmftc solve SPEC --out DIR [--set ...]`
(and `... dmftc simulate SPEC --out DIR [--size N=...] [--seeds S]`), each in its own process, on the
2-core AMD EPYC with 24 GiB (CPU jax 0.10.2), against the estimate (MB, ratio estimate / measured):

    run (--set P, T = steps, M = samples, L, K = depth_steps; --size; --seeds)
                                                           est.  meas.  ratio
    solve mlp_mup_relu (defaults)                           642    502  1.28
    solve mlp_mup_relu P=16 T=50                           1226    905  1.35
    solve mlp_mup_relu P=32 T=60 M=8192                    4021   2583  1.56
    solve mlp_mup_relu L=4 P=16 T=50 M=16384 float32       3296   2279  1.45
    solve mlp_mup_linear (defaults)                         553    423  1.31
    solve mlp_mup_linear P=16 T=40                         1132    735  1.54
    solve mlp_ntk_relu (defaults)                           512    307  1.67
    solve mlp_ntk_relu P=64 T=200                           538    314  1.71
    solve resnet_completep (defaults)                       888    753  1.18
    solve resnet_completep L=8                             1199   1005  1.19
    solve resnet_completep L=32                            3067   2567  1.19
    solve resnet_depth_mup limit.L=inf K=8                 1199   1011  1.19
    solve transformer_mup (defaults)                       3560   2529  1.41
    solve transformer_mup T=40                             7795   5934  1.31
    solve transformer_heads (defaults)                     7424   4002  1.85
    solve mlp_mup_relu P=64 T=30                           2601   1584  1.64
    simulate mlp_mup_relu (defaults)                        650    476  1.37
    simulate mlp_mup_relu N=4096                           2340   2116  1.11
    simulate mlp_mup_relu N=8192 16 seeds                  6837   5642  1.21
    simulate resnet_completep L=16 N=1024                  2604   2365  1.10
    simulate transformer_mup N=64                           893    596  1.50
    simulate transformer_mup N=256                         2262   1875  1.21
    simulate mlp_mup_relu T=200 N=256 64 seeds             6035   4421  1.37
    simulate mlp_mup_relu P=64 T=60 N=512 8 seeds          4528   3313  1.37

Every estimate sits above its measurement, by 1.10-1.85x (the lazy solves, which hold almost nothing,
by the process's own size); `SAFETY` leaves room for what the model misses.
"""

from __future__ import annotations

import math
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import sympy

from .errors import DmftcError, ResourceError
from .notation import DATA_SIZES, as_expr, hyper_symbol, size_symbol
from .spec.types import DATASETS, DataFile, Dataset, Spec, Synthetic

#: environment variable that replaces the memory limit (bytes, or e.g. "12GiB")
ENV = "DMFTC_MEMORY_LIMIT"
#: share of the memory a run may plan to use (the rest: the system, other processes, the estimate's error)
SAFETY = 0.8
#: weight copies a compile or a simulation may unroll (every repeat copy of every weight, summed)
MAX_UNROLLED = 1024
#: the process itself: Python, jax and XLA's compile (the lazy solves, which hold almost nothing, peak at 310 MB)
BASE = 512 * 2**20
#: history-long arrays per field or source record of the schedule, with the memoised functions of the
#: fields (phi(h), dphi(u) r) and XLA's copies; calibrated: an MLP holds about 1.0-1.2 per record, a deep
#: residual network 1.6 (three memos per block), a transformer 0.6 (its attention and MLP fields alternate
#: between positions, and XLA drops the loop state that is never written)
HISTORIES_PER_RECORD = 2.0
HISTORIES_PER_RECORD_TOKENS = 1.0
#: n x n arrays per kernel, response or factor: the state and the returned copy
MATRIX_COPIES = 2.0
#: float64 copies of the data on the host: the draw, its cast and the device copy
DATA_COPIES = 3


# ------------------------------------------------------------------ the limit
def memory_limit() -> tuple[float, str]:
    """(bytes a run may plan to use, where the figure comes from)."""
    text = os.environ.get(ENV, "").strip()
    if text:
        return _parse_bytes(text), f"{ENV}={text}"
    total, source = physical_memory()
    return SAFETY * total, f"{SAFETY:.0%} of {_fmt(total)} of {source}; set {ENV} to change it"


def physical_memory() -> tuple[float, str]:
    """(bytes of memory this process may have, what they are): physical memory, or a lower cgroup limit."""
    try:
        total, what = float(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")), "physical memory"
    except (AttributeError, ValueError, OSError):
        try:
            import psutil  # optional: only where sysconf is missing

            total, what = float(psutil.virtual_memory().total), "physical memory"
        except Exception:  # noqa: BLE001 - no way to know: assume a small machine
            total, what = float(8 * 2**30), "memory (assumed: this machine's is unknown)"
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            cap = Path(path).read_text().strip()
        except OSError:
            continue
        if cap.isdigit() and 0 < int(cap) < total:
            total, what = float(cap), f"memory (the cgroup limit, {path})"
    return total, what


_UNITS = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "KI": 2**10, "MI": 2**20, "GI": 2**30,
          "TI": 2**40}


def _parse_bytes(text: str) -> float:
    m = re.fullmatch(r"([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMgGtT]?)(i?)[bB]?", text)
    if not m or not 0 < float(m.group(1)) < math.inf or (m.group(3) and not m.group(2)):
        raise DmftcError(f"{ENV}={text!r} is not a memory size; give bytes or a unit, e.g. {ENV}=16GiB or 2e10")
    return float(m.group(1)) * _UNITS[(m.group(2) + m.group(3)).upper()]


# ------------------------------------------------------------------ estimates
@dataclass(frozen=True)
class Estimate:
    """What one run needs: bytes by part (the process included), its work in flop, and the model in words.

    `fix` says what to change when it does not fit (computed only then: it searches the counts that do).
    """

    what: str
    detail: str
    parts: Mapping[str, float]
    flops: float
    fix: Callable[[float], str] | None = field(default=None, compare=False, repr=False)

    @property
    def bytes(self) -> float:
        return float(sum(self.parts.values()))

    def describe(self) -> str:
        parts = ", ".join(f"{k} {_fmt(v)}" for k, v in self.parts.items() if v >= 2**20)
        work = f" and about {self.flops:.2g} flop" if self.flops > 0 else ""
        return f"{self.what} needs about {_fmt(self.bytes)} of memory ({self.detail}; {parts}){work}"


def check(est: Estimate) -> Estimate:
    """`est` itself when it fits the memory limit; a `ResourceError` with the figure and the fix otherwise."""
    limit, source = memory_limit()
    if est.bytes > limit:
        fix = est.fix(limit) if est.fix is not None else ""
        raise ResourceError(f"{est.describe()}; this machine allows {_fmt(limit)} ({source}). "
                            f"Fix: {fix or 'a smaller problem'}")
    return est


def _fmt(x: float) -> str:
    if not math.isfinite(x):
        return "more than any machine has"
    for unit, size in (("EiB", 2**60), ("PiB", 2**50), ("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if x >= size:
            return f"{x / size:.3g} {unit}"
    return f"{x:.0f} B"


def _largest(ok: Callable[[int], bool], lo: int, hi: int) -> int | None:
    """The largest integer x in [lo, hi] with ok(x), for ok true up to a point and false after; None if not ok(lo)."""
    if hi < lo or not ok(lo):
        return None
    if ok(hi):
        return hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    return lo


def _itemsize(dtype: str) -> int:
    try:
        return np.dtype(dtype).itemsize
    except TypeError:
        return 8


# ------------------------------------------------------------------ sizes of a spec, cheaply
def data_shape(spec: Spec, data: Any = None) -> tuple[int, ...]:
    """(P, D) or (P, S, D) of the spec's data (or of given arrays), without making or reading them."""
    if data is not None:
        return tuple(np.shape(data[0]))
    if isinstance(spec.data, Synthetic):
        d = spec.data
        return (d.P, d.D) if d.S is None else (d.P, d.S, d.D)
    if isinstance(spec.data, Dataset):
        return (spec.data.P, DATASETS[spec.data.name])
    if isinstance(spec.data, DataFile):
        return _npz_shape(spec.data.path, "X")
    return ()


def _npz_shape(path: Path, name: str) -> tuple[int, ...]:
    """The shape of one array of an .npz, read from its header alone."""
    try:
        with zipfile.ZipFile(path) as zf, zf.open(f"{name}.npy") as fh:
            version = np.lib.format.read_magic(fh)
            reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            return tuple(reader(fh)[0])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return ()  # the loader says what is wrong with the file


def _psd(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(P, S, D) with S = 1 for flat inputs."""
    if len(shape) == 3:
        return int(shape[0]), int(shape[1]), int(shape[2])
    if len(shape) == 2:
        return int(shape[0]), 1, int(shape[1])
    return 0, 1, 0


def _values(spec: Spec, sizes: Mapping[str, int] | None, shape: tuple[int, ...]) -> dict:
    """sympy symbol -> number: spec.sizes, then `sizes`, P, D (and S) of the data, the hyperparameters."""
    vals = {size_symbol(k): sympy.Integer(int(v)) for k, v in {**spec.sizes, **(sizes or {})}.items()}
    vals.update({size_symbol(k): sympy.Integer(v) for k, v in zip(("P", "S", "D") if len(shape) == 3 else ("P", "D"),
                                                                    shape)})
    vals.update({hyper_symbol(k): sympy.Float(v, 17) for k, v in spec.hyper.items()})
    return vals


def _num(expr, values: Mapping) -> float:
    """The value of `expr` at `values` (inf past a float's range); NaN where a symbol has no value."""
    if isinstance(expr, (int, float)):
        return float(expr)
    done = as_expr(expr).xreplace(values)   # a sympy object from the validated spec; never text
    if done.free_symbols:
        return math.nan
    try:
        return float(done)
    except OverflowError:
        return math.inf
    except TypeError:
        return math.nan


def _with_held_out(spec: Spec) -> tuple[int, int, int]:
    """(P, S, D) of what a solve carries: the P training points followed by the held-out ones (`data.*.test`),
    whose outputs the DMFT predicts at every step on the same footing (n = (T + 1) (P + test) S slots)."""
    P, S, D = _psd(data_shape(spec))
    return P + int(getattr(spec.data, "test", 0) or 0), S, D


def _points(spec: Spec) -> str:
    """How the solve's point count reads: 'P', or '(P + test)' with held-out points."""
    return "(P + test)" if getattr(spec.data, "test", 0) else "P"


# ------------------------------------------------------------------ data
def data_estimate(spec: Spec) -> Estimate:
    """The training and held-out arrays, as made on the host in float64."""
    P, S, D = _with_held_out(spec)
    where = (f"data.synthetic P, {'S, ' if S > 1 else ''}D" if isinstance(spec.data, Synthetic)
             else "data.dataset P" if isinstance(spec.data, Dataset) else "the data file")
    return Estimate(f"the data of {spec.name}", f"X of {P} x {S * D} float64, {DATA_COPIES} copies",
                    {"process": float(BASE), "data": float(DATA_COPIES * 8 * P * S * D + 8 * P)}, 0.0,
                    lambda limit: f"use less data: lower {where}.")


def check_data(spec: Spec) -> Estimate:
    """Refuse data that cannot be made on this machine (X of 80 GB), before they are made."""
    return check(data_estimate(spec))


# ------------------------------------------------------------------ compile: unrolled copies, the solve's floor
def unrolled(spec: Spec, graph, sizes: Mapping[str, int] | None = None) -> tuple[float, str]:
    """(weight copies in all, which weight has the most and its count).

    `sizes` override spec.sizes; without an L there, a spec with L in the limit is written on
    K = solver.depth_steps blocks (default: the spec's L), as the derivation does.
    """
    sizes = dict(sizes or {})
    if "L" in spec.limit and "L" in spec.sizes and "L" not in sizes:
        sizes["L"] = spec.solver.depth_steps or spec.sizes["L"]
    vals = _values(spec, sizes, ())
    total, most, which = 0.0, 0.0, ""
    for w in graph.weights.values():
        c = _num(w.count, vals)
        if not math.isnan(c):
            total += c
            if c > most:
                most, which = c, f"weight {w.name} has {w.count} = {c:.6g} copies"
    return total, which


def _check_unrolled(spec: Spec, graph, sizes: Mapping[str, int] | None, what: str) -> None:
    total, which = unrolled(spec, graph, sizes)
    if total <= MAX_UNROLLED:
        return
    depth = "L" in spec.limit and "L" not in (sizes or {})
    residual = any(w.in_branch for w in graph.weights.values())
    knob = "solver.depth_steps (the depth grid's K)" if depth else "the repeat count (L)"
    instead = (" Or take the depth limit: `limit: {N: inf, L: inf}` with solver.depth_steps: K (e.g. 32) solves "
               "L -> oo on K blocks." if residual and not depth else "")
    raise ResourceError(
        f"{what} of {spec.name} would unroll {total:.6g} weight copies ({which}): the derivation, the generated "
        f"solver, the simulator and XLA's compile each hold every copy (the derivation alone takes about 0.1 s "
        f"per block), so at most {MAX_UNROLLED} are allowed. Fix: lower {knob}.{instead}")


def solve_floor(spec: Spec) -> Estimate:
    """The least a solve of `spec` needs whatever its method: the data and (T + 1) (P S)^2 numbers (P counting
    the held-out points)."""
    P, S, D = _with_held_out(spec)
    b, T1 = _itemsize(spec.solver.dtype), spec.training.steps + 1
    parts = {"process": float(BASE), "data": float(DATA_COPIES * 8 * P * S * D),
             "outputs": float(b) * T1 * (P * S) ** 2}

    def fix(limit: float) -> str:
        if float(BASE) + parts["data"] > limit:
            return data_estimate(spec).fix(limit)
        T = _largest(lambda T: BASE + parts["data"] + b * (T + 1) * (P * S) ** 2 <= limit, 0, spec.training.steps)
        return (f"shorten training.steps: no method fits beyond T = {T} at {_points(spec)}{' S' if S > 1 else ''} = "
                f"{P * S}, and a "
                "Monte Carlo solve, which holds M draws of (T + 1) P numbers per field, fits far fewer." if T else
                "use fewer data points P.")

    return Estimate(f"any DMFT solve of {spec.name}",
                    f"at least (T + 1) x {'(' + _points(spec) + ' S)' if S > 1 else _points(spec)}^2 = {T1} x "
                    f"{P * S}^2 numbers of {b} bytes",
                    parts, float(T1) * (P * S) ** 2, fix)


def check_compile(spec: Spec, graph=None) -> Spec:
    """Before the derivation: refuse a graph that unrolls more than `MAX_UNROLLED` weight copies (L = 10**6),
    and a spec whose solve could never fit, whatever its method (T = 10**9 steps, 80 GB of data)."""
    if graph is None:
        from .graph import build_graph  # a repeat stays a template: cheap at any L

        graph = build_graph(spec)
    _check_unrolled(spec, graph, None, "the compile")
    check(solve_floor(spec))
    return spec


def check_spec(spec: Spec) -> Spec:
    """What needs no derivation (the sweep runs it on every point before any task): `check_compile`."""
    return check_compile(spec)


# ------------------------------------------------------------------ the DMFT solve
def _layer_count(layers) -> int:
    if layers is None:
        return 1
    try:
        return max(0, int(layers[1]) - int(layers[0]) + 1)
    except (TypeError, ValueError):
        return 1


def system_counts(eqs) -> dict[str, float]:
    """What a generated solver holds, from the equation system's schedule (layers as written, loops unrolled):
    per-draw fields and twins, sources by structure, n x n kernels and responses, equal-time matrices;
    `head_*` the parts with a head's key_dim rows per draw (H -> oo)."""
    out = dict(fields=0.0, head_fields=0.0, dynamic=0.0, static=0.0, scalar=0.0, head_sources=0.0,
               matrices=0.0, order=0.0)
    heads = set(getattr(eqs, "head_positions", ()) or ())

    def position(e):
        x = getattr(e, "lhs", None) if hasattr(e, "lhs") else getattr(e, "field", None)
        try:
            return int(x.indices[0])
        except (AttributeError, TypeError, IndexError):
            return None

    equations = {e.label: e for e in getattr(eqs, "equations", ())}
    try:
        written = eqs.written_layers()
    except Exception:  # noqa: BLE001 - an estimate never fails a run: every layer of every equation instead
        written = {k: range(_layer_count(e.layers)) for k, e in equations.items()}
    for label, layers in written.items():
        e, k = equations.get(label), len(layers)
        kind = getattr(e, "kind", "")
        if kind in ("field", "twin"):
            out["fields"] += k
            out["head_fields"] += sum(1 for l in layers if l in heads)
        elif kind in ("kernel", "response", "twin_kernel"):
            out["matrices"] += k
        elif kind == "order":
            out["order"] += k
    sources = {s.label: s for s in getattr(eqs, "sources", ())}
    for item in (*getattr(eqs, "forward", ()), *getattr(eqs, "output", ()), *getattr(eqs, "backward", ())):
        body = getattr(item, "body", None)
        try:
            k = len(range(int(item.start), int(item.stop) + item.step, item.step)) if body is not None else 1
        except (TypeError, ValueError):
            k = 1
        for step in (body if body is not None else (item,)):
            src = sources.get(step.label)
            if src is not None:
                out[src.structure if src.structure in ("static", "scalar") else "dynamic"] += k
                out["head_sources"] += k if position(src) in heads else 0
    return out


def solve_estimate(spec: Spec, equations, *, steps: int, samples: int, dtype: str, runs: int = 1) -> Estimate:
    """The DMFT solve of `spec` with `equations` (its `EquationSystem`), `runs` solutions kept at once
    (a check keeps every Monte Carlo seed's)."""
    counts = system_counts(equations)
    est = _solve(spec, equations, counts, int(steps), int(samples), dtype, runs)

    def fix(limit: float) -> str:
        def ok(T=int(steps), M=int(samples), dt=dtype) -> bool:
            return _solve(spec, equations, counts, T, M, dt, runs).bytes <= limit

        P, S, _ = _with_held_out(spec)
        out = []
        mc = getattr(equations, "method", "") == "monte_carlo"
        M = _largest(lambda M: ok(M=M), 2, int(samples)) if mc else None
        if M:
            out.append(f"lower solver.samples to at most {M}")
        T = _largest(lambda T: ok(T=T), 1, int(steps))
        if T:
            out.append(f"shorten training.steps to at most {T}")
        if _itemsize(dtype) == 8 and mc and ok(dt="float32"):
            out.append("use solver.dtype: float32 (half the bytes)")
        if not out:
            out.append(f"use fewer data points P or held-out points test (n = (T + 1) x {_points(spec)}"
                       f"{' x S' if S > 1 else ''} sets every array)")
        return ", or ".join(out) + "."

    return Estimate(est.what, est.detail, est.parts, est.flops, fix)


def _solve(spec: Spec, eqs, counts, steps: int, samples: int, dtype: str, runs: int) -> Estimate:
    b = _itemsize(dtype)
    P, S, D = _with_held_out(spec)
    PS, n_t = P * S, steps + 1
    n = float(n_t) * PS
    parts = {"process": float(BASE), "data": float(DATA_COPIES * 8 * P * S * D)}
    what = f"the DMFT solve of {spec.name}"
    method = getattr(eqs, "method", "monte_carlo")
    if method not in ("monte_carlo", "exact_gaussian"):       # the lazy limit: kernels of P x P
        depth = max(1, int(getattr(eqs, "depth", 1) or 1))
        parts["kernels"] = b * (4.0 * n_t + 8.0 * depth) * PS**2 * runs
        return Estimate(what, f"{method}, (T + 1) = {n_t} covariances of P x P = {PS} x {PS}, {b} bytes", parts,
                        4.0 * n_t * PS**3)
    key_dim = max(1, int(getattr(eqs, "key_dim", 0) or 1)) if getattr(eqs, "heads", None) == "sites" else 1
    if method == "exact_gaussian":
        M = counts["dynamic"] * n + counts["static"] * PS + counts["scalar"]
        draws = f"M = {M:.6g} draws (the sources' identity basis)"
    else:
        M = float(samples + samples % 2)
        draws = f"M = {M:.6g} draws"
    records = (counts["fields"] + 2 * counts["dynamic"] + counts["static"] + counts["scalar"]
               + (key_dim - 1) * (counts["head_fields"] + 2 * counts["head_sources"]))
    V = (HISTORIES_PER_RECORD_TOKENS if getattr(eqs, "tokens", False) else HISTORIES_PER_RECORD) * records
    per_draw = b * V * n
    if key_dim > 1:
        per_draw += 2.0 * b * counts["order"] * PS * PS        # a head's equal-time matrices (current time)
    mats = counts["matrices"] + 2 * counts["dynamic"]
    parts["per-draw histories"] = M * per_draw
    parts["kernels and factors"] = b * n * n * (MATRIX_COPIES * mats + counts["matrices"] * max(0, runs - 1))
    detail = (f"{method}, {draws} x n = (T + 1) x {_points(spec)}{' x S' if S > 1 else ''} = {n_t} x {PS} = "
              f"{n:.6g} slots x "
              f"{V:.3g} history arrays x {b} bytes, and {mats:g} n x n kernels, responses and factors")
    flops = 2.0 * M * n * n * (counts["matrices"] + counts["fields"]) + 4.0 * counts["dynamic"] * n**3
    return Estimate(what, detail, parts, flops)


def check_solve(spec: Spec, equations, *, steps: int, samples: int, dtype: str, runs: int = 1) -> Estimate:
    """Refuse a DMFT solve that cannot fit this machine, before its data are made."""
    check_data(spec)
    return check(solve_estimate(spec, equations, steps=steps, samples=samples, dtype=dtype, runs=runs))


# ------------------------------------------------------------------ finite networks
@dataclass
class _Walk:
    """Per network, at concrete sizes."""

    weights: float = 0.0
    acts: float = 0.0                            # activation entries per input site, summed over op copies
    dense: list = field(default_factory=list)    # (copies, width) of dense ops: an MLP's recorded sites
    blocks: float = 0.0                          # residual blocks: stream positions beyond the first
    stream: float = 0.0                          # the stream's width
    heads: float = 0.0                           # attention copies x heads (logits: S x S per sequence)
    residual: bool = False


def _walk(nodes, vals, mult: float, in_repeat: bool, acc: _Walk) -> None:
    for node in nodes:
        if node.kind == "repeat":
            times = _num(node.op.times, vals)
            _walk(node.children, vals, mult * times, True, acc)
            if any(c.kind == "residual" for c in node.children):
                acc.blocks += mult * times
            continue
        width = _num(node.width_out, vals)
        acc.acts += mult * width
        for w in node.weights:
            acc.weights += mult * _num(w.fan_in, vals) * _num(w.fan_out, vals)
        if node.kind == "residual":
            acc.residual, acc.stream = True, width
            acc.blocks += 0 if in_repeat else mult
            _walk(node.children, vals, mult, True, acc)
        elif node.kind == "dense":
            acc.dense.append((mult, width))
        elif node.kind == "attention":
            heads = _num(node.op.heads, vals)
            acc.acts += mult * 4 * heads * _num(node.op.key_dim, vals)
            acc.heads += mult * heads


def simulation_estimate(spec: Spec, sizes: Mapping[str, int] | None, seeds: int, *, record: str = "full",
                        dtype: str = "float32", budget: float = 2 * 2**30, displacement: bool = False,
                        data: Any = None) -> Estimate:
    """An ensemble of `seeds` finite networks of `spec` at `sizes`, as `dmftc.simulate` runs it."""
    from .graph import build_graph

    graph = build_graph(spec)
    est = _simulation(spec, graph, sizes, seeds, record, dtype, budget, displacement, data, spec.training.steps)

    def fix(limit: float) -> str:
        def ok(seeds=seeds, T=spec.training.steps, rec=record, sz=sizes) -> bool:
            return _simulation(spec, graph, sz, seeds, rec, dtype, budget, displacement, data, T).bytes <= limit

        out = []
        if ok(seeds=1):
            out.append(f"fewer seeds (at most {_largest(lambda k: ok(seeds=k), 1, seeds)})")
        T = _largest(lambda T: ok(T=T), 1, spec.training.steps)
        if T:
            out.append(f"fewer training.steps (at most {T})")
        if record == "full" and ok(rec="diag"):
            out.append("record='diag' (the two-time kernels grow as (T + 1)^2)")
        if not out:
            current = {**spec.sizes, **(sizes or {})}
            for name, value in sorted(current.items()):
                if name in DATA_SIZES or int(value) <= 1:
                    continue
                best = _largest(lambda v: ok(seeds=1, sz={**(sizes or {}), name: v}), 1, int(value))
                if best is not None and best < value:
                    out.append(f"a smaller {name} (at most {best} for one network)")
        return ", or ".join(out) + "." if out else "a smaller network."

    return Estimate(est.what, est.detail, est.parts, est.flops, fix)


def _simulation(spec, graph, sizes, seeds, record, dtype, budget, displacement, data, steps) -> Estimate:
    shape = data_shape(spec, data)
    P, S, D = _psd(shape)
    if data is None:   # the simulator evaluates the held-out points too (their outputs and kernels are recorded)
        P, S, D = _with_held_out(spec)
    PS, T1, b = P * S, steps + 1, _itemsize(dtype)
    acc = _Walk()
    _walk(graph.nodes, _values(spec, sizes, shape), 1.0, False, acc)
    per_network = b * acc.weights
    finite = math.isfinite(per_network) and per_network > 0
    chunk = min(seeds, max(1, budget // per_network)) if finite else seeds
    batch = min(chunk, max(1, (16 * 2**20) // (3 * per_network))) if finite else 1
    if acc.residual:
        records = [(3 * (acc.blocks + 1), acc.stream)]     # H, G and Phi per stream position
    else:
        records = [(2 * c, w) for c, w in acc.dense]        # Phi and G per hidden layer
    count = sum(c for c, _ in records)
    feats = sum(c * PS * w for c, w in records) if record == "full" else 0.0
    kept = {"full": count * T1 * PS * PS, "diag": count * PS * PS}.get(record, 0.0)
    logits = acc.heads * P * S * S if record != "none" else 0.0
    weight_copies = unrolled(spec, graph, sizes)[0] if displacement else 0.0
    per_seed = b * T1 * (1 + P + kept + logits + weight_copies) + b * P
    parts = {
        "process": float(BASE),
        "data": float(DATA_COPIES * 8 * PS * D),
        "initial weights, host and device": 3.0 * chunk * per_network,
        "networks in flight": batch * (3.0 * per_network + 4.0 * b * PS * acc.acts),
        "recorded features of a chunk": chunk * b * T1 * feats,
        "recorded arrays, every seed": seeds * per_seed,
        # and their copies: the running chunk's on the device, every seed's again when chunks are concatenated
        "recorded arrays, copies in flight": ((seeds if chunk < seeds else 0.0) + chunk) * per_seed,
    }
    flops = seeds * T1 * (8.0 * acc.weights * PS + 8.0 * PS * acc.acts)
    if record == "full":
        flops += seeds * T1 * T1 * PS * feats * 2
    at = ", ".join(f"{k}={v}" for k, v in sorted((sizes or {}).items())) or "the spec's sizes"
    return Estimate(f"simulating {seeds} network{'s' if seeds != 1 else ''} of {spec.name} at {at}",
                    f"{acc.weights:.3g} weights per network x {b} bytes, {seeds} seeds in chunks of {chunk:.6g}, "
                    f"T + 1 = {T1} observations of {_points(spec) if data is None else 'P'}{' x S' if S > 1 else ''} = "
                    f"{PS} inputs, record={record}",
                    parts, flops)


def check_seeds(seeds: int, minimum: int = 1) -> int:
    """`seeds` itself when it is an integer of at least `minimum`; the user's error otherwise."""
    if isinstance(seeds, bool) or not isinstance(seeds, (int, np.integer)) or seeds < minimum:
        raise DmftcError(f"seeds={seeds!r} must be at least {minimum}: it is the number of networks, an integer "
                         f"(e.g. --seeds 8)")
    return int(seeds)


def check_simulation(spec: Spec, sizes: Mapping[str, int] | None, seeds: int, *, record: str = "full",
                     dtype: str = "float32", budget: float = 2 * 2**30, displacement: bool = False,
                     data: Any = None) -> Estimate:
    """Refuse an ensemble that cannot fit this machine or unrolls too much, before its data or networks exist."""
    from .graph import build_graph

    check_seeds(seeds)
    for name, value in (sizes or {}).items():
        try:
            ok = not isinstance(value, bool) and int(value) == value and int(value) >= 1
        except (TypeError, ValueError, OverflowError):
            ok = False
        if not ok:
            raise DmftcError(f"size {name}={value!r} must be a positive integer")
    graph = build_graph(spec)
    finite = {**(sizes or {}), **({"L": (sizes or {}).get("L", spec.sizes["L"])} if "L" in spec.sizes else {})}
    _check_unrolled(spec, graph, finite, "simulating networks")
    if data is None:
        check_data(spec)
    return check(simulation_estimate(spec, sizes, seeds, record=record, dtype=dtype, budget=budget,
                                     displacement=displacement, data=data))


def check_ensembles(spec: Spec, sizes: list[Mapping[str, int]], seeds: int, *, record: str = "full") -> None:
    """Ensembles simulated one after another whose recorded arrays all stay in memory (`dmftc check`): each
    must fit beside the arrays of those before it."""
    held = 0.0
    for s in sizes:
        est = check_simulation(spec, s, seeds, record=record)
        if held > 0:
            kept = held
            check(Estimate(f"{est.what} (after {_fmt(kept)} of the smaller sizes' arrays)", est.detail,
                           {**est.parts, "the smaller sizes' recorded arrays": kept}, est.flops,
                           lambda limit, f=est.fix, kept=kept: f(limit - kept)))
        held += est.parts["recorded arrays, every seed"]
