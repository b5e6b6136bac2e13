"""`Simulation`: what an ensemble of finite networks did, as numpy arrays, and its file."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

import numpy as np

from ..files import save_npz_atomic


@dataclass(frozen=True, eq=False)
class Simulation:
    """An ensemble of finite networks of one spec at one set of sizes.

    loss (seeds, T+1), f (seeds, T+1, P) and f0 (seeds, P) = f[:, 0]; t = 0 is before any
    update, t after t updates. `order` holds the empirical order parameters by name:
    Phi{l}, G{l} ((seeds, T+1, M, T+1, M) with record="full", (seeds, T+1, M, M) with
    "diag"; M = P, or P*S for token sites) and logits (seeds, T+1, L_attn, H, P, S, S).
    `sizes` holds every size (P, D, S included); `timings` seconds for init, compile (0 when
    the program was cached) and run. `displacement` (only with `simulate(..., displacement=True)`)
    maps each weight copy's key ("attn0_K[3]") to its relative displacement
    ||W(t) - W(0)||_F / ||W(0)||_F, (seeds, T+1); in simulation.npz as "displacement:<key>".
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

    @property
    def steps(self) -> int:
        return self.loss.shape[1] - 1

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array by the name it has in simulation.npz."""
        return {"loss": self.loss, "f": self.f, "f0": self.f0, **self.order,
                **{f"displacement:{k}": v for k, v in self.displacement.items()}}

    def save(self, directory: str | os.PathLike) -> Path:
        """Write DIR/simulation.npz atomically (see dmftc.files); returns its path."""
        return save_npz_atomic(Path(directory) / "simulation.npz", self.arrays())

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={v}" for k, v in self.sizes.items())
        names = ", ".join(f"{k}{tuple(v.shape)}" for k, v in self.arrays().items())
        return f"Simulation({self.spec_name!r}, {sizes}, seeds={self.seeds}, {self.dtype}: {names})"
