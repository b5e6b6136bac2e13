"""The DMFT of the training setups against finite networks (docs/theory.md#training-setups).

Every feature at once (minibatches, held-out points, momentum with Nesterov's look-ahead, decoupled
weight decay and a warm-up schedule) on the deep linear network, whose DMFT is exact (no Monte Carlo):
the train, batch and held-out losses of 64 networks at N = 2048 agree with it within their standard
errors, and the negative control, the same DMFT with the momentum dropped, is tens of standard errors
off. The lazy limit (ntk) gets the same check through its own output dynamics.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dmftc import compile_spec, training
from dmftc.simulate import simulate
from dmftc.spec import load

SETUP = ["training.momentum=0.5", "training.nesterov=true", "training.weight_decay=0.2",
         "training.schedule=min(1, (t + 1) / 3)", "training.batches={size: 4, seed: 1}", "data.synthetic.test=4",
         "training.steps=12"]
LOSSES = ("loss", "loss_batch", "loss_test")


def _z(dmft: dict, sim) -> dict:
    """max over t of |DMFT - mean of the networks| / their standard error, per loss."""
    out = {}
    for k in LOSSES:
        runs = sim.arrays[k]
        se = runs.std(axis=0, ddof=1) / np.sqrt(runs.shape[0])
        out[k] = float(np.max(np.abs(np.asarray(dmft[k]) - runs.mean(axis=0)) / se))
    return out


@pytest.fixture(scope="module")
def linear():
    spec = load("specs/mlp_mup_linear.yaml", overrides=SETUP)
    prog = compile_spec(spec)
    return spec, prog, prog.solve(errors=False), simulate(spec, {"N": 2048}, seeds=64, record="none", dtype="float64")


def test_every_training_feature_agrees_with_networks(linear):
    spec, prog, sol, sim = linear
    assert prog.equations.training == ("Kappa", "adec", "Omega", "wtrain", "wtest")
    z = _z(sol.arrays, sim)
    assert max(z.values()) < 4, z


def test_dropping_the_momentum_from_the_dmft_is_caught(linear):
    spec, prog, sol, sim = linear
    X, y, _ = prog.data()
    wrong = dataclasses.replace(training.setup(spec), momentum=0.0)
    out = prog.load_module().solve(X, y, dict(spec.hyper), steps=spec.training.steps,
                                   training=training.arrays(wrong, prog.equations.training))
    z = _z({k: np.asarray(v) for k, v in out.items()}, sim)
    assert min(z.values()) > 20, z


def test_the_lazy_limit_follows_the_same_setup():
    sets = [s for s in SETUP if "weight_decay" not in s]   # decay is refused in the lazy limit (its own test)
    spec = load("specs/mlp_ntk_relu.yaml", overrides=sets)
    sol = compile_spec(spec).solve(errors=False)
    sim = simulate(spec, {"N": 1024}, seeds=32, record="none", dtype="float64")
    z = _z(sol.arrays, sim)
    assert max(z.values()) < 4, z


def test_weight_decay_in_the_lazy_limit_is_refused_with_the_reason():
    from dmftc.errors import Unsupported

    with pytest.raises(Unsupported, match="weight decay in the lazy limit"):
        compile_spec(load("specs/mlp_ntk_relu.yaml", overrides=["training.weight_decay=0.1"]))


def test_coupled_decay_under_mup_is_refused_with_the_reason():
    from dmftc.errors import Unsupported

    with pytest.raises(Unsupported, match="grows with the width"):
        compile_spec(load("specs/mlp_mup_relu.yaml", overrides=["training.weight_decay=0.1",
                                                                "training.decay=coupled"]))
    with pytest.raises(Unsupported, match="decoupled weight decay that depends on a size"):
        compile_spec(load("specs/mlp_mup_relu.yaml", overrides=["training.weight_decay=0.1/N"]))


def test_coupled_decay_scaled_as_one_over_n_under_mup_agrees_with_networks():
    """Coupled decay lambda = c / N under muP (lr_W = N eta gamma0^2): the filters depend on the rate
    lr_W lambda = eta gamma0^2 c alone, which has a limit; the networks at N = 1024 agree with that DMFT,
    and the DMFT without the decay is far off."""
    sets = [s for s in SETUP if "weight_decay" not in s] + ["training.weight_decay=0.5/N", "training.decay=coupled"]
    spec = load("specs/mlp_mup_linear.yaml", overrides=sets)
    prog = compile_spec(spec)
    assert str(prog.equations.coupled_rate) == "eta*gamma0**2/2"
    sim = simulate(spec, {"N": 1024}, seeds=64, record="none", dtype="float64")
    z = _z(prog.solve(errors=False).arrays, sim)
    assert max(z.values()) < 4, z
    X, y, _ = prog.data()
    wrong = dataclasses.replace(training.setup(spec), decay=0.0)
    out = prog.load_module().solve(X, y, dict(spec.hyper), steps=spec.training.steps,
                                   training=training.arrays(wrong, prog.equations.training))
    assert min(_z({k: np.asarray(v) for k, v in out.items()}, sim).values()) > 20


@pytest.mark.slow
def test_online_learning_agrees_with_networks():
    """A stream of 24 points seen two per step, each once, and 8 held-out points (2 min)."""
    spec = load("specs/mlp_mup_linear.yaml", overrides=["training.batches={size: 2, online: true}",
                                                        "data.synthetic.P=24", "training.steps=12",
                                                        "data.synthetic.test=8"])
    sol = compile_spec(spec).solve(errors=False)
    sim = simulate(spec, {"N": 2048}, seeds=64, record="none", dtype="float64")
    z = _z(sol.arrays, sim)
    assert max(z.values()) < 4, z
