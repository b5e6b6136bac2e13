"""One-step consistency of the recorded kernels with the output's actual change (ntk, wide)."""

from __future__ import annotations

import numpy as np
from conftest import data_of, mlp_spec

from dmftc.simulate import simulate


def test_empirical_ntk_predicts_the_first_step_at_width_4096():
    """f(1) - f(0) = eta Theta Delta(0) + O(eta^2 / sqrt N), Delta = (y - f) / P, with
    Theta = G1 * Phi^0 + G2 * Phi1 + Phi2 (elementwise; Phi^0 = X X^T / D, docs/theory.md#lazy-limit)."""
    eta = 0.5
    spec = mlp_spec("ntk", N_=4096, steps=1, eta=eta)
    X, y = data_of(spec)
    sim = simulate(spec, seeds=2, record="diag", data=(X, y))
    phi0 = X @ X.T / X.shape[1]
    k = {name: sim.order[name][:, 0].astype(np.float64) for name in sim.order}
    theta = k["G1"] * phi0 + k["G2"] * k["Phi1"] + k["Phi2"]
    delta = (y - sim.f[:, 0]) / len(y)
    predicted = eta * np.einsum("amn,an->am", theta, delta)
    actual = sim.f[:, 1] - sim.f[:, 0]
    err = np.linalg.norm(predicted - actual, axis=1) / np.linalg.norm(actual, axis=1)
    assert np.all(err < 0.01), err
