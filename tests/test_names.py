"""One naming scheme (issue 27, item 3): a simulation names each order parameter as the DMFT of the same spec
names the same kernel (Phi1, G1; on a residual stream H<p>, Phi<p>, G<p> at the DMFT's position p), so
`Solution.arrays` and `Simulation.arrays` share keys and `dmftc check` pairs them without a table."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest

import dmftc
from dmftc.simulate import build_network, simulate
from dmftc.simulate.network import stream_positions
from dmftc.spec import load, load_data

SPECS = Path(__file__).resolve().parents[1] / "specs"
#: spec, the width N of the finite networks (transformer: N H = 128 per token), seeds
CASES = [("mlp_mup_tanh", 256, 8), ("resnet_depth_mup", 256, 8), ("transformer_mup", 32, 8)]


def equal_time_mean(K: np.ndarray) -> np.ndarray:
    """(..., T+1, M, T+1, M) -> (..., T+1): the site average of the equal-time diagonal, (1/M) sum_mu K(t,mu,t,mu)."""
    return np.diagonal(np.diagonal(K, axis1=-4, axis2=-2), axis1=-3, axis2=-2).mean(-1)


def short(name: str, steps: int = 2):
    spec = load(SPECS / f"{name}.yaml")
    return dataclasses.replace(spec, training=dataclasses.replace(spec.training, steps=steps))


@pytest.mark.parametrize("name,N,seeds", CASES)
def test_a_simulation_names_its_kernels_as_the_solution_does(name, N, seeds):
    """Every kernel of the simulation is an array of the solution with the same shape but the seed axis, and
    its seed mean is the DMFT's value at moderate N: within 10 % (1/N bias, the solve's Monte Carlo error) plus
    three standard errors of the mean. A kernel of the stream or of the features (H, Phi) is moreover closer to
    its own DMFT position than to any other of the same kind, so a wrong offset (H3 against H2) fails."""
    spec = short(name)
    sol = dmftc.compile_spec(spec).solve(errors=False, samples=1000)
    sim = simulate(spec, {"N": N}, seeds=seeds)
    kernels = {k for k in sim.order if k != "logits"}   # the stacked logits are the simulator's own array
    assert kernels and kernels <= set(sol.arrays), sorted(kernels - set(sol.arrays))
    assert not any("{" in k for k in sim.arrays)
    for k in sorted(kernels):
        assert sim.order[k].shape[1:] == sol.arrays[k].shape, k
        d = equal_time_mean(np.asarray(sim.order[k], np.float64))
        mean, se = d.mean(0), d.std(0, ddof=1) / np.sqrt(seeds)
        dmft = equal_time_mean(np.asarray(sol.arrays[k], np.float64))
        assert np.all(np.abs(mean - dmft) <= 0.1 * np.abs(dmft) + 3 * se), (k, mean, dmft, se)
        base = re.fullmatch(r"([A-Za-z]+)\d+", k).group(1)
        if base in ("H", "Phi"):
            same_kind = [q for q in sol.arrays if re.fullmatch(rf"{base}[1-9]\d*", q) and sol.arrays[q].shape == sol.arrays[k].shape]
            gap = {q: np.max(np.abs(mean - equal_time_mean(np.asarray(sol.arrays[q], np.float64)))) for q in same_kind}
            assert min(gap, key=gap.get) == k, (k, gap)


@pytest.mark.parametrize("name", ["resnet_depth_mup", "resnet_completep", "transformer_mup", "transformer_heads"])
def test_the_simulators_stream_positions_are_the_derivations(name):
    """`stream_positions` over the network's layers (no derivation) gives the positions the walk marks
    (EquationSystem.stream_sites) at the same depth."""
    spec = load(SPECS / f"{name}.yaml")
    X, _ = load_data(spec)
    net = build_network(spec, None, X.shape)
    assert stream_positions(net.layers) == dmftc.compile_spec(spec).equations.stream_sites
    assert [s.name for s in net.sites if s.grad] == [f"H{p}" for p in stream_positions(net.layers)]
