"""The depth limit L -> infinity of residual networks, on a layer-time grid of K steps.

Which block terms survive is physics (docs/theory.md#depth): at alpha_L = 1 the random branches
vanish (sources and responses ~ d tau^2) and the stream is an ODE in tau driven by learning; at
alpha_L = 1/2 the sources are Brownian increments (variance ~ d tau). A linear residual net is
solved exactly (no sampling), so the grid's convergence in K is measured without noise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import dmftc
from dmftc.dmft.derive import DTAU
from dmftc.spec import loads

SPECS = Path(__file__).resolve().parents[2] / "specs"


def depth_spec(name, K, *extra, linear=False):
    text = (SPECS / f"{name}.yaml").read_text()
    if linear:
        text = text.replace("relu", "linear")
    return loads(text, f"{name}.yaml", overrides=("limit.L=inf", f"solver.depth_steps={K}", *extra),
                 base_dir=SPECS)


def test_alpha_1_keeps_only_the_updates_alpha_half_keeps_brownian_sources():
    c1 = dmftc.compile_spec(depth_spec("resnet_completep", 4)).equations.coefficients
    assert c1["src:W1"] == 0 and c1["resp:W1"] == 0 and c1["upd:W1"].has(DTAU)
    ch = dmftc.compile_spec(depth_spec("resnet_depth_mup", 4)).equations.coefficients
    assert all(ch[f"{t}:W1"].has(DTAU) for t in ("src", "bsrc", "resp", "bresp", "upd", "bupd"))


@pytest.mark.parametrize("name", ["resnet_completep", "resnet_depth_mup"])
def test_the_depth_grid_converges_at_first_order(name):
    """Exact (linear) solutions at K = 4, 8, 16, 32: successive differences shrink about 2x per doubling."""
    losses = [dmftc.compile_spec(depth_spec(name, K, "training.steps=6", linear=True)).solve(depth_error=False, errors=False).loss
              for K in (4, 8, 16, 32)]
    d = [np.max(np.abs(b - a)) for a, b in zip(losses, losses[1:])]
    rates = [np.log2(d[i] / d[i + 1]) for i in range(len(d) - 1)]
    assert d[-1] < d[0]
    assert all(0.7 < q < 1.5 for q in rates), (d, rates)


def test_solve_reports_the_discretisation_error():
    sol = dmftc.compile_spec(depth_spec("resnet_completep", 8, "training.steps=4", linear=True)).solve(errors=False)
    assert sol.meta["depth_steps"] == 8
    assert 0 < sol.meta["depth_discretisation_error"] < 0.05
