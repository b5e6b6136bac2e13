"""Finite-network simulation: ensembles of networks built from the same spec as the DMFT.

The project's ground truth. Scales come only from
`dmftc.scaling.parameterization.resolve_parameterization`; each op's forward pass is its
block's (`dmftc.blocks`).

- `simulate(spec, sizes, seeds, record=, dtype=, seed=, data=) -> Simulation`: train `seeds`
  networks with full-batch GD and record loss (seeds, T+1), f (seeds, T+1, P), f0 (seeds, P)
  and the order parameters under the DMFT's names (Phi1, G1; H<p> on a residual stream) and
  logits for attention; `Simulation.save(dir)`
  writes simulation.npz. `sweep` does the same over a list of sizes.
- `measure_one_step(spec, sizes, seeds, seed) -> {name: RMS}`: coordinate sizes at init and
  after one step (fwd:, bwd:, dW:, dfwd:, f0, df, logit:, dlogit:, logit_headvar:, branch:,
  dbranch:), for fitting scaling exponents; `measure_one_step_seeds` keeps the seed axis.
- `build_network(spec, sizes, data_shape) -> Network`: the concrete network, for power users.
"""

from __future__ import annotations

from .measure import measure_one_step as measure_one_step
from .measure import measure_one_step_seeds as measure_one_step_seeds
from .network import Network as Network
from .network import build_network as build_network
from .result import Simulation as Simulation
from .train import simulate as simulate
from .train import sweep as sweep

__all__ = ["Network", "Simulation", "build_network", "measure_one_step", "measure_one_step_seeds",
           "simulate", "sweep"]
