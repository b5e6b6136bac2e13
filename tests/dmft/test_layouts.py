"""Every layout spec of specs/layouts derives, solves and, for the token models, agrees with finite networks.

The layouts are models the template compiler refused (issues 23 and 24): MLPs with several activations,
residual branches of two dense layers, attention-only stacks, post-LN and LayerNorm-free transformers,
two attention branches per layer, per-token MLPs before attention, MLP heads after the pool.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import dmftc
from dmftc.spec import load

LAYOUTS = sorted((Path(__file__).resolve().parents[2] / "specs" / "layouts").glob("*.yaml"))
#: token layouts checked against finite networks in the default suite (one per structure: LayerNorm-free, post-LN,
#: the heads limit); the rest with --runslow
FAST_TOKENS = ("tf_attention_only", "tf_post_ln", "tf_heads_attention_only")
TOKENS = [pytest.param(p, marks=() if p.stem in FAST_TOKENS else pytest.mark.slow, id=p.stem)
          for p in LAYOUTS if p.name.startswith("tf_")]


@pytest.mark.parametrize("path", [pytest.param(p, id=p.stem, marks=pytest.mark.slow if p.name.startswith("tf_") else ())
                                  for p in LAYOUTS if p.stem not in FAST_TOKENS])
def test_every_layout_derives_and_solves(path):
    """(The default suite solves the token layouts in the finite-network test below and random token models in
    test_compose.py; the other token layouts, 10-16 s of compile each, run with --runslow.)"""
    spec = load(path, overrides=["training.steps=2", "solver.samples=256"])
    loss = np.asarray(dmftc.compile_spec(spec).solve(errors=False).loss)
    assert loss.shape == (3,) and np.all(np.isfinite(loss)) and loss[-1] < loss[0], loss


def _limit_size(spec) -> tuple[str, int]:
    """The size the limit takes (N, or H at fixed N) and a finite value of it 8 times the spec's."""
    name = "H" if "H" in spec.limit else "N"
    return name, 8 * int(spec.sizes[name])


@pytest.mark.parametrize("path", TOKENS)
def test_token_layouts_match_finite_transformers(path):
    """4 steps: the DMFT loss (4 solves) lies within 4 combined standard errors of 32 finite transformers at
    8 times the spec's size, plus the O(1/n) seed-averaged bias (0.1 / n allowed; measured below 0.05 / n
    by `dmftc check` on these layouts)."""
    spec = load(path, overrides=["training.steps=4"])
    prog = dmftc.compile_spec(spec)
    runs = np.array([np.asarray(prog.solve(seed=k, errors=False).loss) for k in range(4)])
    dm, dse = runs.mean(0), runs.std(0, ddof=1) / 2
    name, n = _limit_size(spec)
    sim = dmftc.simulate(spec, sizes={name: n}, seeds=32, dtype="float64", record="none")
    m, se = sim.loss.mean(0), sim.loss.std(0, ddof=1) / np.sqrt(32)
    assert np.all(np.abs(m - dm) < 4 * np.sqrt(se**2 + dse**2) + 0.1 / n), (name, n, m, dm, se, dse)
