"""What `dmftc check` predicts and how it simulates: rates by regime and activation, chunked ensembles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dmftc import compile_spec
from dmftc.check import _record, init_controls, predicted_rates
from dmftc.simulate import simulate
from dmftc.spec import load

SPECS = Path(__file__).resolve().parents[2] / "specs"


@pytest.mark.parametrize("name, bias", [("mlp_ntk_relu", -0.5), ("mlp_ntk_erf", -1.0), ("mlp_mup_relu", -1.0),
                                        ("mlp_mup_tanh", -1.0)])
def test_the_lazy_limit_of_a_kinked_activation_is_approached_as_one_over_sqrt_n(name, bias):
    prog = compile_spec(load(SPECS / f"{name}.yaml"))
    rates, notes = predicted_rates(prog, "N")
    assert rates == {"bias": bias, "fluct": -0.5, **({"bias_next": -1.0} if bias == -0.5 else {})}
    assert bool(notes) == (bias == -0.5)
    assert predicted_rates(prog, "L")[0] == {"bias": -1.0, "fluct": 0.0}


def test_lazy_mlps_record_only_loss_and_f():
    ntk, mup = (compile_spec(load(SPECS / f"{n}.yaml")) for n in ("mlp_ntk_relu", "mlp_mup_relu"))
    assert _record(ntk, None) == "none" and _record(mup, None) == "full"
    assert _record(mup, ["loss"]) == "none" and _record(ntk, ["Phi1"]) == "full"


@pytest.fixture(scope="module")
def small_mup():
    spec = load(SPECS / "mlp_mup_relu.yaml", overrides=("training.steps=2",))
    sim = simulate(spec, {"N": 32}, seeds=2048)
    arrays = {"loss": sim.loss, "f": sim.f, **sim.order}
    return compile_spec(spec), arrays


def test_init_controls_have_mean_zero(small_mup):
    """Hotelling's T^2 of each block (f(0), Phi1, Phi2, G2 at t = 0 minus their exact conditional means)."""
    from scipy.stats import chi2

    prog, arrays = small_mup
    z = init_controls(prog, arrays, 32, "N")
    assert z.shape == (2048, 8 + 3 * 36)
    for block in (slice(0, 8), slice(8, 44), slice(44, 80), slice(80, 116)):
        v = z[:, block]
        m = v.mean(0)
        t2 = len(v) * m @ np.linalg.solve(np.cov(v.T), m)
        assert chi2.sf(t2, v.shape[1]) > 1e-3, (block, t2)


def test_init_controls_remove_most_of_the_seed_noise_of_outputs_and_kernels(small_mup):
    from dmftc.crosscheck import distance

    prog, arrays = small_mup
    z = init_controls(prog, arrays, 32, "N")
    ref = {q: arrays[q].mean(0) for q in ("f", "Phi1", "Phi2")}  # any fixed reference will do
    for q in ref:
        plain, cv = distance(arrays[q], ref[q]), distance(arrays[q], ref[q], controls=z)
        assert cv.noise < 0.6 * plain.noise, (q, cv.noise, plain.noise)
    assert init_controls(compile_spec(load(SPECS / "mlp_ntk_relu.yaml")), arrays, 32, "N") is None


def test_check_adjusts_biases_with_the_controls_once_the_seeds_allow():
    from dmftc.check import run_check

    spec = load(SPECS / "mlp_mup_relu.yaml", overrides=("training.steps=2",))
    few = run_check(spec, {"N": [16, 32]}, seeds=16, out_dir=None, quantities=["Phi1"])
    many = run_check(spec, {"N": [16, 32]}, seeds=8 * 117, out_dir=None, quantities=["Phi1"])
    assert {d.n_controls for d in few.quantity("Phi1").distances} == {0}
    assert {d.n_controls for d in many.quantity("Phi1").distances} == {116}
    assert {d.n_reference_runs for d in many.quantity("Phi1").distances} == {8}
    assert "116 control variates" in many.notes[-1] and not few.notes
