"""What `dmftc check` predicts and how it simulates: rates by regime and activation, chunked ensembles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dmftc import compile_spec
from dmftc.check import _record, predicted_rates, simulate_in_chunks
from dmftc.simulate import simulate
from dmftc.spec import load

SPECS = Path(__file__).resolve().parents[2] / "specs"


@pytest.mark.parametrize("name, bias", [("mlp_ntk_relu", -0.5), ("mlp_ntk_erf", -1.0), ("mlp_mup_relu", -1.0),
                                        ("mlp_mup_tanh", -1.0)])
def test_the_lazy_limit_of_a_kinked_activation_is_approached_as_one_over_sqrt_n(name, bias):
    prog = compile_spec(load(SPECS / f"{name}.yaml"))
    rates, notes = predicted_rates(prog, "N")
    assert rates == {"bias": bias, "fluct": -0.5}
    assert bool(notes) == (bias == -0.5)
    assert predicted_rates(prog, "L")[0] == {"bias": -1.0, "fluct": 0.0}


def test_lazy_mlps_record_only_loss_and_f():
    ntk, mup = (compile_spec(load(SPECS / f"{n}.yaml")) for n in ("mlp_ntk_relu", "mlp_mup_relu"))
    assert _record(ntk, None) == "none" and _record(mup, None) == "full"
    assert _record(mup, ["loss"]) == "none" and _record(ntk, ["Phi1"]) == "full"


def test_an_ensemble_in_chunks_is_the_same_networks_as_one_run():
    spec = load(SPECS / "mlp_mup_relu.yaml", overrides=("training.steps=2",))
    whole = simulate(spec, {"N": 32}, seeds=5)
    parts = simulate_in_chunks(spec, {"N": 32}, 5, budget=2 * 4 * (32 * 16 + 32 * 32 + 32))
    assert parts.seeds == 5 and parts.loss.shape == whole.loss.shape
    # the same weights; batches of another size may sum in another order (float32 rounding)
    np.testing.assert_allclose(parts.f, whole.f, rtol=0, atol=1e-6)
    np.testing.assert_allclose(parts.order["Phi{2}"], whole.order["Phi{2}"], rtol=1e-5)
    assert not np.allclose(parts.f[1:], whole.f[:-1], atol=1e-3)  # and not a shifted or repeated draw
