"""The two-class cross-entropy and the centred output, in the DMFT and the simulator
(docs/theory.md#training-setups)."""

from __future__ import annotations

import numpy as np
import pytest

from dmftc import compile_spec
from dmftc.errors import SpecError, Unsupported
from dmftc.simulate import simulate
from dmftc.spec import load

CE = ["training.loss=cross_entropy", "data.synthetic.target=sign_linear", "data.synthetic.test=8"]


def _max_z(sol, sim, names):
    out = {}
    for k in names:
        runs = sim.arrays[k]
        se = runs.std(axis=0, ddof=1) / np.sqrt(runs.shape[0])
        dmft_se = sol.se(k) if sol.se(k) is not None else 0.0   # the DMFT's own Monte Carlo error
        se = np.sqrt(se**2 + np.asarray(dmft_se) ** 2)
        out[k] = float(np.max(np.abs(np.asarray(sol.arrays[k]) - runs.mean(axis=0)) / np.maximum(se, 1e-12)))
    return out


def test_cross_entropy_feature_learning_agrees_with_networks():
    spec = load("specs/mlp_mup_relu.yaml", overrides=CE)
    sol = compile_spec(spec).solve(samples=4096)   # with its error bars
    assert sol.arrays["loss"][0] == pytest.approx(np.log(2), rel=1e-3)   # f(0) = 0: log 2 per point
    sim = simulate(spec, {"N": 1024}, seeds=32, record="none", dtype="float64")
    z = _max_z(sol, sim, ("loss", "loss_test"))
    assert max(z.values()) < 4, z


def test_cross_entropy_in_the_lazy_limit_with_a_centred_output():
    spec = load("specs/mlp_ntk_relu.yaml", overrides=[*CE, "training.center_output=true",
                                                       "training.batches={size: 4}"])
    prog = compile_spec(spec)
    assert prog.equations.coefficients["f0:readout"] == 0
    sol = prog.solve(errors=False)
    sim = simulate(spec, {"N": 1024}, seeds=32, record="none", dtype="float64")
    assert np.all(sim.f[:, 0] == 0)   # the centred output starts at zero in every network
    z = _max_z(sol, sim, ("loss", "loss_batch", "loss_test"))
    assert max(z.values()) < 4, z


def test_a_centred_mse_output_removes_the_random_initial_output_of_the_lazy_limit():
    spec = load("specs/mlp_ntk_relu.yaml", overrides=["training.center_output=true"])
    sol = compile_spec(spec).solve(errors=False)
    assert np.all(np.asarray(sol.arrays["f_var"]) == 0)
    sim = simulate(spec, {"N": 1024}, seeds=32, record="none", dtype="float64")
    assert max(_max_z(sol, sim, ("loss",)).values()) < 4


def test_cross_entropy_needs_two_class_targets():
    with pytest.raises(SpecError, match="cross_entropy needs two-class targets y = -1 or \\+1"):
        load("specs/mlp_mup_relu.yaml", overrides=["training.loss=cross_entropy"])


def test_cross_entropy_with_a_random_initial_output_in_the_lazy_limit_is_refused():
    with pytest.raises(Unsupported, match="center_output: true"):
        compile_spec(load("specs/mlp_ntk_relu.yaml", overrides=CE))
