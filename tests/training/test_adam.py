"""Adam where the theory is heuristic: spec, update rule, analysis, finite networks, and the plain refusal
of a DMFT solve (docs/theory.md#training-setups)."""

from __future__ import annotations

import numpy as np
import pytest

from dmftc import compile_spec, training
from dmftc.errors import SpecError, Unsupported
from dmftc.graph import build_graph
from dmftc.scaling import analyze
from dmftc.scaling.parameterization import resolve_parameterization
from dmftc.simulate import simulate
from dmftc.spec import load

ADAM = ["training.optimizer=adam", "hyper.eta=0.05", "training.steps=10"]


def _spec(*sets):
    return load("specs/mlp_mup_relu.yaml", overrides=[*ADAM, *sets])


def test_the_first_adam_step_moves_every_entry_by_lr_times_the_sign():
    st = training.setup(_spec())
    g = np.array([3.0, -1e-3, 0.5])
    W, m, v = training.adam_update(np.zeros(3), np.zeros(3), np.zeros(3), g, 0.1, 0, st)
    assert np.allclose(W, -0.1 * st.schedule[0] * np.sign(g), rtol=1e-4)


def test_adamw_decays_with_the_global_step():
    st = training.setup(_spec("training.optimizer=adamw", "training.weight_decay=0.5"))
    W, _, _ = training.adam_update(np.ones(2), np.zeros(2), np.zeros(2), np.zeros(2), 0.1, 0, st)
    assert np.allclose(W, 1 - 0.5 * 0.05)


def test_the_mup_adam_table_and_regimes():
    spec = _spec()
    graph = build_graph(spec)
    params = resolve_parameterization(spec, graph)
    assert str(params["W1"].lr) == "eta*gamma0/sqrt(N)" and str(params["w"].lr) == "eta*gamma0"
    assert analyze(spec, graph, params).regime == "feature_learning"
    ntk = _spec("parameterization.preset=ntk")
    g = build_graph(ntk)
    assert analyze(ntk, g, resolve_parameterization(ntk, g)).regime == "unstable"


def test_finite_networks_measure_the_regimes():
    """mup-Adam: the first layer's kernel moves by the same O(1) at every width; ntk-Adam (a fixed step):
    the final loss grows with the width, as the analysis's N^1/2 output change says."""
    moved, final = [], []
    for n in (128, 512, 2048):
        sim = simulate(_spec(), {"N": n}, seeds=8, record="diag")
        P1 = sim.order["Phi1"]
        moved.append(float(np.mean(np.abs(P1[:, -1] - P1[:, 0]))))
        final.append(float(simulate(_spec("parameterization.preset=ntk"), {"N": n}, seeds=4, record="none")
                           .loss.mean(0)[-1]))
    assert max(moved) / min(moved) < 1.1 and min(moved) > 0.05, moved
    assert final[0] < final[1] < final[2], final


def test_a_dmft_solve_of_adam_is_refused_with_the_reason():
    with pytest.raises(Unsupported, match="a mean-field solver for Adam") as err:
        compile_spec(_spec())
    assert "optimizer: sgd" in str(err.value)


@pytest.mark.parametrize("sets, words", [
    (["training.momentum=0.9"], "Adam's momentum is betas[0]"),
    (["training.betas=[0.9, 1.0]"], "expected a number in [0, 1)"),
    (["training.optimizer=adamw", "training.decay=coupled"], "adamw is Adam with decoupled decay"),
    (["training.optimizer=sgd", "training.eps=1e-6"], "eps belongs to Adam"),
])
def test_bad_adam_settings_are_refused(sets, words):
    with pytest.raises(SpecError, match=words.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")
                       .replace(")", r"\)")):
        _spec(*sets)
