"""Parameter sweeps: the DMFT solved over a grid of `--set` overrides, one row per point, here or on Dask.

    table = run_sweep("specs/mlp_mup_relu.yaml", {"hyper.gamma0": [0.5, 1, 2], "hyper.eta": [0.25, 0.5]})
    table.to_csv("runs/sweep.csv")       # one row per point: the settings, final_loss, loss_0..loss_T

A point is a task (but see Horizons below): load the spec with the point's overrides
(`dmftc.load(path, overrides=...)`, the same text as `--set KEY=VALUE`), compile it, solve it,
return the final loss and the loss curve. Every point's spec is validated before any task
starts, so a typo in the grid fails at once with the spec error; a point whose compile or solve
fails as the user's error (an unstable limit, a diverging step size: `DmftcError`) gets a row
with its `error` and NaN losses, and the other points go on.

Backends. ``"local"`` runs the points one after another in this process (XLA already spreads
one solve over all cores). ``"dask"`` sends the points to a dask.distributed cluster: a
`LocalCluster` of `workers` single-threaded processes listening on loopback only (no
dashboard), or the scheduler at `address`. Dask starts workers by spawning, so a script that
calls `run_sweep(..., backend="dask")` must do it under ``if __name__ == "__main__":``.

Compiles are shared, not repeated. Hyperparameters are arguments of the generated solver, not
constants in it: points that differ only in their values generate the same module (but for
its digest line) and share one import and one XLA compile per process (`program._import_text`).
Measured (local, 256 draws, gamma0 = 0.5, 1, 2; seconds per point, compile and solve):
mlp_mup_relu 1.8, 0.1, 0.16; transformer_mup 8.6, 2.35, 2.2. A point that changes a static
setting (samples, P) compiles once more. `compile_cache` (a directory) also shares the
executables between Dask's worker processes and with later sweeps (`enable_compile_cache`).
The causal sweep itself has no fixed-point iteration to warm-start (docs/theory.md#causal-sweep).

Horizons are shared, not re-solved. The DMFT is causal: its solution up to step t does not
depend on how many steps follow. Points that differ only in ``training.steps`` are one task,
solved once at their longest horizon, and each shorter point's row is the prefix of that curve
(`share_horizons`; each row's ``horizon`` says which solve it reads). Where the method is exact
(deep linear networks' exact Gaussian mode, the closed-form lazy limit) the prefix equals a solve
at the shorter horizon to round-off (mlp_mup_linear, steps 5 vs 10: 1.4e-14). A Monte Carlo
prefix is another estimate of the same curve: it has other draws, and its responses' ridge
n / (10 M) is set by the longest horizon's n (`runtime.factor.resolvable`). Its difference from a
direct solve is within the Monte Carlo error: mlp_mup_relu (M = 4096, float32), eight seeds,
the first 10 steps of 50-step solves against 10-step solves: the means differ by at most 1.5
standard errors, as two sets of 10-step solves with other seeds do (1.4). Measured (local),
steps 10, 25, 50 of mlp_mup_relu: 7.46 -> 4.28 s in a fresh process, 2.04 -> 1.31 s compiled. When the
longest horizon fails (a step size that diverges late), the shorter points are solved on
their own, so the rows that can succeed still do. Identical points, too, are one task.

Why Dask and not Ray: dask and distributed install from pure-Python wheels with pip alone;
a `LocalCluster` starts no separate daemon or object store (its scheduler lives in this
process and dies with the cluster object), runs the same on CPU-only laptops, CI and HPC
nodes, and scales out by pointing `address` at a real scheduler (dask-jobqueue,
dask-kubernetes) with no change to the tasks; its futures follow `concurrent.futures`.
"""

from __future__ import annotations

import csv
import functools
import io
import itertools
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

# A client of dmftc's public API, like the command line (and of compile_cache's path check, run
# here before any task so that a bad directory fails at once, not on every worker).
from . import DmftcError, compile_spec, load
from .budget import check_spec
from .compile_cache import cache_dir, enable_compile_cache
from .files import write_text_atomic

BACKENDS = ("local", "dask")
RESULTS = ("final_loss", "seconds", "error", "horizon", "final_loss_se")
STEPS = "training.steps"  # the grid key whose points share one solve (`share_horizons`)


@dataclass(frozen=True)
class SweepTable:
    """The results of a sweep: one row per grid point, in grid order.

    Each row maps every grid key (a dotted spec path) to the point's value, and ``final_loss``
    (float, NaN on failure), ``loss`` (the curve, shape (steps + 1,)), ``seconds`` (compile
    and solve of the task, counted on the row whose solve it was; 0 on a row read as a prefix of
    another's), ``error`` (None, or the message of the `DmftcError` that stopped the point) and
    ``horizon`` (the training steps of the solve the row reads: its own steps, or the longest of
    the points it shares a solve with).
    """

    keys: tuple[str, ...]
    rows: tuple[Mapping[str, Any], ...]

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[Mapping[str, Any]]:
        return iter(self.rows)

    def __getitem__(self, i: int) -> Mapping[str, Any]:
        return self.rows[i]

    def column(self, name: str) -> np.ndarray:
        """One column over all rows (a grid key or a result name)."""
        return np.array([row[name] for row in self.rows])

    def to_csv(self, path: str | Path) -> Path:
        """Write the table as CSV: grid keys, final_loss, seconds, error, horizon, loss_0 .. loss_T.

        Curves of different lengths (a sweep over training.steps) leave the missing cells empty.
        """
        width = max((len(row["loss"]) for row in self.rows), default=0)
        header = [*self.keys, *RESULTS, *(f"loss_{t}" for t in range(width))]
        text = io.StringIO(newline="")
        writer = csv.writer(text)
        writer.writerow(header)
        writer.writerows(_csv_row(self.keys, row, width) for row in self.rows)
        return write_text_atomic(path, text.getvalue())  # a reader never sees half a table


def run_sweep(spec_path: str | Path, grid: Mapping[str, Sequence[Any]], *, backend: str = "local",
              workers: int = 2, address: str | None = None,
              compile_cache: str | Path | None = None, share_horizons: bool = True) -> SweepTable:
    """Solve the DMFT of `spec_path` at every point of the product of `grid`'s value lists.

    Parameters
    ----------
    spec_path : the spec file.
    grid : {dotted.path: [values]}, e.g. ``{"hyper.gamma0": [0.5, 1.0], "data.synthetic.P": [8, 16]}``;
        each point becomes the overrides ``path=value`` (values read as YAML, as ``--set`` does).
    backend : ``"local"`` (this process, one point after another) or ``"dask"``.
    workers : worker processes of the Dask `LocalCluster` (ignored by ``"local"`` and with `address`).
    address : a running Dask scheduler to use instead of a new `LocalCluster`.
    compile_cache : a directory for JAX's persistent compilation cache, turned on in every process
        that solves a point (`enable_compile_cache`); None leaves the processes' setting alone.
    share_horizons : solve points that differ only in ``training.steps`` once, at the longest, and
        read the others as prefixes (the module docstring says when that is exact); False solves
        every distinct point on its own.
    """
    keys, points = _points(grid)
    if backend not in BACKENDS:
        raise DmftcError(f"unknown sweep backend {backend!r}; allowed: {', '.join(BACKENDS)}")
    overrides = [tuple(f"{k}={_yaml_text(v)}" for k, v in zip(keys, p)) for p in points]
    # every point's spec is checked before anything runs (and its unrolled depth and data: dmftc.budget)
    steps = [check_spec(load(spec_path, overrides=sets)).training.steps for sets in overrides]
    path = str(Path(spec_path).resolve())  # workers may not share this process's working directory
    cache = None if compile_cache is None else str(cache_dir(compile_cache))  # checked before any task
    run = functools.partial(_execute, path, backend=backend, workers=workers, address=address, cache=cache)
    tasks = _horizon_tasks(overrides, steps) if share_horizons and STEPS in keys else list(overrides)
    unique = list(dict.fromkeys(tasks))
    solved = dict(zip(unique, run(unique)))
    results = _read_rows(tasks, steps, solved)
    # a failed horizon (divergence late in training) must not take the shorter points with it
    again = [i for i, r in enumerate(results) if r["error"] is not None and tasks[i] != overrides[i]]
    for i, r in zip(again, run([overrides[i] for i in again])):
        results[i] = r
    rows = tuple(dict(zip(keys, p), **r) for p, r in zip(points, results))
    return SweepTable(keys, rows)


def solve_point(spec_path: str, overrides: tuple[str, ...], compile_cache: str | None = None) -> dict[str, Any]:
    """One task: compile and solve the spec with these overrides (runs on a worker).

    Returns ``final_loss``, ``loss`` (numpy), ``seconds``, ``error`` (None or the message),
    ``horizon`` (the steps solved; None on an error) and ``loss_se`` (the standard errors of a Monte
    Carlo solve, `dmftc.accuracy`; zeros for an exact one, None on an error).
    """
    if compile_cache is not None:
        enable_compile_cache(compile_cache)
    t0 = time.perf_counter()
    try:
        prog = compile_spec(load(spec_path, overrides=overrides))
        # fixed draws (solver.samples), no accuracy target: every point solves the same shapes, so the
        # points of one process share one compiled solver
        sol = prog.solve(samples=prog.spec.solver.samples)
    except DmftcError as err:  # the user's error at this point (unstable limit, divergence)
        return {"final_loss": math.nan, "loss": np.zeros(0), "seconds": time.perf_counter() - t0,
                "error": f"{type(err).__name__}: {err}", "horizon": None, "loss_se": None}
    loss = np.asarray(sol.loss, dtype=float)
    se = sol.se("loss")
    return {"final_loss": float(loss[-1]), "loss": loss, "seconds": time.perf_counter() - t0, "error": None,
            "horizon": len(loss) - 1, "loss_se": None if se is None else np.asarray(se, dtype=float)}


# ------------------------------------------------------------------ shared horizons
def _horizon_tasks(overrides: list[tuple[str, ...]], steps: list[int]) -> list[tuple[str, ...]]:
    """Each point's task: its overrides with training.steps raised to the longest among the
    points whose other overrides are the same as its own."""
    def rest(sets):
        return tuple(s for s in sets if not s.startswith(f"{STEPS}="))

    longest: dict[tuple[str, ...], int] = {}
    for sets, T in zip(overrides, steps):
        longest[rest(sets)] = max(longest.get(rest(sets), T), T)
    return [tuple(f"{STEPS}={longest[rest(sets)]}" if s.startswith(f"{STEPS}=") else s for s in sets)
            for sets in overrides]


def _read_rows(tasks: list[tuple[str, ...]], steps: list[int], solved: dict) -> list[dict[str, Any]]:
    """Each point's result from its task's solve; a solve's seconds are counted once, on the first
    row at its horizon (a prefix, or a repeat of the same point, shows 0)."""
    rows, counted = [], set()
    for task, T in zip(tasks, steps):
        row = _prefix(solved[task], T)
        if row is solved[task]:
            row = {**row, "seconds": 0.0} if task in counted else row
            counted.add(task)
        rows.append(row)
    return rows


def _prefix(result: dict[str, Any], steps: int) -> dict[str, Any]:
    """A point's row from the solve of its task: the first steps + 1 losses of the task's curve."""
    if result["error"] is not None or result["horizon"] == steps:
        return result
    loss = result["loss"][: steps + 1].copy()
    se = None if result.get("loss_se") is None else result["loss_se"][: steps + 1].copy()
    return {**result, "final_loss": float(loss[-1]), "loss": loss, "seconds": 0.0, "loss_se": se}


def _execute(spec_path: str, tasks: list[tuple[str, ...]], *, backend: str, workers: int, address: str | None,
             cache: str | None) -> list[dict]:
    """solve_point for each task, in order, on the backend."""
    if not tasks:
        return []
    if backend == "local":
        return [solve_point(spec_path, sets, cache) for sets in tasks]
    return _run_dask(spec_path, tasks, workers, address, cache)


# ------------------------------------------------------------------ helpers
def _points(grid: Mapping[str, Sequence[Any]]) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
    """Grid keys (in the caller's order) and the product of their values (last key fastest)."""
    if not grid:
        raise DmftcError("empty sweep grid; give {dotted.path: [values]}, e.g. {'hyper.gamma0': [0.5, 1.0]}")
    bad = [k for k, v in grid.items() if isinstance(v, (str, bytes)) or not isinstance(v, Sequence) or not v]
    if bad:
        raise DmftcError(f"sweep grid entries {bad} must be non-empty lists of values, "
                         f"e.g. {{'{bad[0]}': [0.5, 1.0]}}")
    keys = tuple(grid)
    return keys, list(itertools.product(*(grid[k] for k in keys)))


def _yaml_text(value: Any) -> str:
    """A grid value as `--set` text that YAML reads back as the same value.

    Floats keep a decimal point: YAML 1.1 (PyYAML) reads 1e-05 as a string, 1.0e-05 as a float.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = repr(float(value))  # float(): numpy scalars repr as np.float64(...)
        if "e" in text and "." not in text.split("e")[0]:
            mantissa, exponent = text.split("e")
            text = f"{mantissa}.0e{exponent}"
        return text
    return str(value)


def _csv_row(keys: tuple[str, ...], row: Mapping[str, Any], width: int) -> list[Any]:
    loss = [repr(float(x)) for x in row["loss"]]
    horizon = "" if row["horizon"] is None else row["horizon"]
    se = row.get("loss_se")
    results = [repr(row["final_loss"]), f"{row['seconds']:.3f}", row["error"] or "", horizon,
               "" if se is None or not len(se) else repr(float(se[-1]))]
    return [*(row[k] for k in keys), *results, *loss, *([""] * (width - len(loss)))]


def _run_dask(spec_path: str, overrides: list[tuple[str, ...]], workers: int, address: str | None,
              cache: str | None) -> list[dict]:
    """The tasks on a Dask cluster, results in submission order."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as err:
        raise DmftcError("backend 'dask' needs dask and distributed: pip install dask distributed "
                         "(or use backend='local')") from err
    if address is not None:
        with Client(address) as client:
            return _gather(client, spec_path, overrides, cache)
    # Loopback only (scheduler, workers and the scheduler's small HTTP endpoint), no dashboard;
    # one thread per worker: each solve already uses XLA's threads.
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        return _gather(client, spec_path, overrides, cache)


def _gather(client, spec_path: str, overrides: list[tuple[str, ...]], cache: str | None) -> list[dict]:
    # pure=False: every task is solved, whatever dask's hash of its arguments (tasks are distinct).
    futures = [client.submit(solve_point, spec_path, sets, cache, pure=False) for sets in overrides]
    return client.gather(futures)
