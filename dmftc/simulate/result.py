"""`Simulation`: what an ensemble of finite networks did, as numpy arrays, and its file."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

from ..files import save_npz_atomic
from ..outputs import describe, npz_entries, simulation_axes, versions


class Arrays(dict):
    """`Simulation.arrays`: a mapping like `Solution.arrays`; calling it (the older form) returns a copy."""

    def __call__(self) -> dict[str, np.ndarray]:
        return dict(self)


@dataclass(frozen=True, eq=False)
class Simulation:
    """An ensemble of finite networks of one spec at one set of sizes.

    loss (seeds, T+1), f (seeds, T+1, P) and f0 (seeds, P) = f[:, 0]; t = 0 is before any
    update, t after t updates. `order` holds the empirical order parameters by name:
    the DMFT's names, Phi1, G1, ... (MLP), H<p>, Phi<p>, G<p> at the stream's positions p (residual
    networks; `network.stream_positions`) ((seeds, T+1, M, T+1, M) with record="full", (seeds, T+1, M, M) with
    "diag"; M = P, or P*S for token sites) and logits (seeds, T+1, L_attn, H, P, S, S).
    `sizes` holds every size (P, D, S included); `timings` seconds for init, compile (0 when
    the program was cached) and run. `displacement` (only with `simulate(..., displacement=True)`)
    maps each weight copy's key ("attn0_K[3]") to its relative displacement
    ||W(t) - W(0)||_F / ||W(0)||_F, (seeds, T+1); in simulation.npz as "displacement:<key>".
    `spec_raw` is the spec as read (a mapping, None if unknown). Like `dmftc.program.Solution` it
    has `name`, `steps`, `arrays` (a mapping), `meta`, `save(dir)`, `to_xarray()`, `plot()` and a
    one-line repr.
    """

    spec_name: str
    sizes: Mapping[str, int]
    seeds: int
    seed: int
    record: str
    dtype: str
    loss: np.ndarray
    f: np.ndarray
    f0: np.ndarray
    order: Mapping[str, np.ndarray]
    timings: Mapping[str, float]
    displacement: Mapping[str, np.ndarray] = field(default_factory=lambda: MappingProxyType({}))
    spec_raw: Mapping[str, Any] | None = None
    #: the batch loss "loss_batch" (seeds, T+1) of minibatch training and the held-out loss "loss_test"
    #: (seeds, T+1) where the data have held-out points (docs/theory.md#training-setups)
    losses: Mapping[str, np.ndarray] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def name(self) -> str:
        return self.spec_name

    @property
    def steps(self) -> int:
        return self.loss.shape[1] - 1

    @property
    def arrays(self) -> Arrays:
        """Every array by the name it has in simulation.npz (`sim.arrays` also works, for older callers)."""
        return Arrays({"loss": self.loss, "f": self.f, "f0": self.f0, **self.losses, **self.order,
                       **{f"displacement:{k}": v for k, v in self.displacement.items()}})

    @property
    def meta(self) -> dict[str, Any]:
        """The run's settings (timings excluded: they differ between identical runs)."""
        return {"name": self.spec_name, "sizes": dict(self.sizes), "seeds": self.seeds, "seed": self.seed,
                "record": self.record, "dtype": self.dtype, "steps": self.steps,
                "final_loss": float(np.mean(self.loss[:, -1]))}

    def save(self, directory: str | os.PathLike, spec: Any = None) -> Path:
        """Write DIR/simulation.npz atomically (see dmftc.files; layout: README.md, "Output files").

        `spec` (a Spec) overrides `spec_raw` as the spec recorded in the file's meta."""
        arrays = self.arrays
        axes = simulation_axes(arrays)
        meta = dict(self.meta, spec=spec.raw if spec is not None else self.spec_raw,
                    shapes={k: list(v.shape) for k, v in arrays.items()}, axes=axes, versions=versions())
        return save_npz_atomic(Path(directory) / "simulation.npz", npz_entries(arrays, self.steps, axes, meta))

    def to_xarray(self, spec: Any = None):
        """Every array as an xarray.Dataset (docs/reading-output.md, "In Python").

        Dimensions: seed (the network, 0..seeds-1), t (the step), mu and nu (the kernels' sites), s (the
        second time), sample (the input of f), block, head, token and token2 (the logits), each with integer
        coordinates; the arrays keep their names in `arrays` and simulation.npz, the DMFT's ("Phi1"). `attrs`: kind,
        name, sizes (sizes_N, ...), seeds, the ensemble's seed, record, dtype, steps, final_loss (mean over
        seeds), the versions (versions_*) and the spec (`spec`, a Spec, or `spec_raw`) as JSON text,
        flattened for netCDF. `.to_netcdf(path)` writes it.
        """
        import json

        from ..outputs import dataset

        arrays, raw = self.arrays, spec.raw if spec is not None else self.spec_raw
        attrs = {"kind": "finite networks", **self.meta, "versions": versions(),
                 "spec": None if raw is None else json.dumps(raw, sort_keys=True, default=str)}
        return dataset(arrays, simulation_axes(arrays), attrs)

    def plot(self, name: str = "loss", ax=None, **where):
        """Draw the array `name` against the training step t: the mean over the seeds with a band of ± one
        standard error of that mean; returns the matplotlib Axes.

        `name` as in `arrays`; `where` picks one entry of the other dimensions (`plot("f", sample=0)`,
        `plot("Phi1", mu=0, nu=0, s=0)`); `ax` is drawn on, or a new pyplot figure is made (as xarray's
        and pandas' plot do).
        """
        from ..crosscheck.plots import quantity_words
        from ..errors import DmftcError
        from ..notation import DATA_SIZES
        from ..outputs import LOSS_WORDS, curve_problem, plot_steps, selection_words, simulation_words

        ds = self.to_xarray()
        problem = curve_problem(ds, name, where, keep=("seed",))
        if problem:
            raise DmftcError(problem)
        values = ds[name].isel(where)
        se = values.std("seed", ddof=1) / np.sqrt(self.seeds) if self.seeds >= 2 else None
        sizes = ", ".join(f"{k} = {v}" for k, v in self.sizes.items() if k not in DATA_SIZES)
        return plot_steps(ax, values["t"], values.mean("seed"), se,
                          label=f"finite networks ({sizes}), mean of {self.seeds} seeds",
                          band_label="± standard error of the mean",
                          ylabel=(LOSS_WORDS.get(name) or simulation_words(name) or quantity_words(name))
                          + selection_words(where),
                          title=f"{self.spec_name}: finite networks")

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={v}" for k, v in self.sizes.items())
        head = (f"{self.spec_name!r}, {sizes}, seeds={self.seeds}, seed={self.seed}, {self.dtype}, "
                f"record={self.record}, steps={self.steps}")
        return describe("Simulation", head, self.arrays)
