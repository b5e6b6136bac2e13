"""Parameter sweeps: one DMFT solve per point of a grid of `--set` overrides, here or on Dask.

    table = run_sweep("specs/mlp_mup_relu.yaml", {"hyper.gamma0": [0.5, 1, 2], "hyper.eta": [0.25, 0.5]})
    table.to_csv("runs/sweep.csv")       # one row per point: the settings, final_loss, loss_0..loss_T

Each point is a task: load the spec with the point's overrides (`dmftc.load(path, overrides=...)`,
the same text as `--set KEY=VALUE`), compile it, solve it, return the final loss and the loss
curve. Every point's spec is validated before any task starts, so a typo in the grid fails at
once with the spec error; a point whose compile or solve fails as the user's error (an unstable
limit, a diverging step size: `DmftcError`) gets a row with its `error` and NaN losses, and
the other points go on.

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
setting (steps, samples, P) compiles once more. `compile_cache` (a directory) also shares the
executables between Dask's worker processes and with later sweeps (`enable_compile_cache`).
The causal sweep itself has no fixed-point iteration to warm-start (THEORY.md sec. 7).

Why Dask and not Ray: dask and distributed install from pure-Python wheels with pip alone;
a `LocalCluster` starts no separate daemon or object store (its scheduler lives in this
process and dies with the cluster object), runs the same on CPU-only laptops, CI and HPC
nodes, and scales out by pointing `address` at a real scheduler (dask-jobqueue,
dask-kubernetes) with no change to the tasks; its futures follow `concurrent.futures`.
"""

from __future__ import annotations

import csv
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
from .compile_cache import cache_dir, enable_compile_cache

BACKENDS = ("local", "dask")
RESULTS = ("final_loss", "seconds", "error")


@dataclass(frozen=True)
class SweepTable:
    """The results of a sweep: one row per grid point, in grid order.

    Each row maps every grid key (a dotted spec path) to the point's value, and ``final_loss``
    (float, NaN on failure), ``loss`` (the curve, shape (steps + 1,)), ``seconds`` (compile
    and solve) and ``error`` (None, or the message of the `DmftcError` that stopped the point).
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
        """Write the table as CSV: grid keys, final_loss, seconds, error, loss_0 .. loss_T.

        Curves of different lengths (a sweep over training.steps) leave the missing cells empty.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        width = max((len(row["loss"]) for row in self.rows), default=0)
        header = [*self.keys, *RESULTS, *(f"loss_{t}" for t in range(width))]
        tmp = path.with_name(f".{path.name}.tmp")
        with tmp.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            writer.writerows(_csv_row(self.keys, row, width) for row in self.rows)
        tmp.replace(path)  # atomic: a reader never sees half a table
        return path


def run_sweep(spec_path: str | Path, grid: Mapping[str, Sequence[Any]], *, backend: str = "local",
              workers: int = 2, address: str | None = None,
              compile_cache: str | Path | None = None) -> SweepTable:
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
    """
    keys, points = _points(grid)
    if backend not in BACKENDS:
        raise DmftcError(f"unknown sweep backend {backend!r}; allowed: {', '.join(BACKENDS)}")
    overrides = [tuple(f"{k}={_yaml_text(v)}" for k, v in zip(keys, p)) for p in points]
    for sets in overrides:
        load(spec_path, overrides=sets)  # every point's spec is checked before anything runs
    path = str(Path(spec_path).resolve())  # workers may not share this process's working directory
    cache = None if compile_cache is None else str(cache_dir(compile_cache))  # checked before any task
    if backend == "local":
        results = [solve_point(path, sets, cache) for sets in overrides]
    else:
        results = _run_dask(path, overrides, workers, address, cache)
    rows = tuple(dict(zip(keys, p), **r) for p, r in zip(points, results))
    return SweepTable(keys, rows)


def solve_point(spec_path: str, overrides: tuple[str, ...], compile_cache: str | None = None) -> dict[str, Any]:
    """One task: compile and solve the spec with these overrides (runs on a worker).

    Returns ``final_loss``, ``loss`` (numpy), ``seconds`` and ``error`` (None or the message).
    """
    if compile_cache is not None:
        enable_compile_cache(compile_cache)
    t0 = time.perf_counter()
    try:
        sol = compile_spec(load(spec_path, overrides=overrides)).solve()
    except DmftcError as err:  # the user's error at this point (unstable limit, divergence)
        return {"final_loss": math.nan, "loss": np.zeros(0), "seconds": time.perf_counter() - t0,
                "error": f"{type(err).__name__}: {err}"}
    loss = np.asarray(sol.loss, dtype=float)
    return {"final_loss": float(loss[-1]), "loss": loss, "seconds": time.perf_counter() - t0, "error": None}


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
    results = [repr(row["final_loss"]), f"{row['seconds']:.3f}", row["error"] or ""]
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
    # pure=False: a point is solved even when an identical one was submitted (explicit repeats).
    futures = [client.submit(solve_point, spec_path, sets, cache, pure=False) for sets in overrides]
    return client.gather(futures)
