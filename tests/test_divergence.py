"""A diverging run is an error naming its step and the remedy, never a number (`dmftc.divergence`)."""

from __future__ import annotations

import numpy as np
import pytest

from dmftc.cli import main
from dmftc.divergence import DIVERGENCE_FACTOR, check_run, first_departure
from dmftc.errors import SolverError, SpecError
from dmftc.program import compile_spec
from dmftc.simulate import simulate
from dmftc.spec import load

LINEAR = "specs/mlp_mup_linear.yaml"   # exact Gaussian DMFT: a solve takes a second


def test_first_departure_finds_the_step():
    assert first_departure(np.array([0.3, 0.2, 0.1])) is None
    assert first_departure(np.array([0.3, 0.5, 2.0])) is None                  # overshoot is not divergence
    assert first_departure(np.array([0.3, 0.2, 0.3 * DIVERGENCE_FACTOR * 1.01, 1e9])) == 2
    assert first_departure(np.array([0.3, np.nan, 0.1])) == 1
    assert first_departure(np.array([[0.3, 0.2, 0.1], [0.3, 0.2, np.inf]])) == 2   # any seed
    # a tiny start is measured against the targets' scale, not against itself
    assert first_departure(np.array([1e-9, 1e-3]), scale=0.5) is None
    assert first_departure(np.array([1e-9, 1e-3])) == 1


def test_check_run_names_non_finite_arrays_too():
    with pytest.raises(SolverError, match=r"NaN or inf in K1\b"):
        check_run("run", np.array([1.0, 0.5]), {"K1": np.array([np.nan]), "K2": np.ones(2)}, "fix it")


def test_a_diverging_solve_names_the_step_and_the_remedy():
    prog = compile_spec(load(LINEAR, overrides=("hyper.eta=1000000.0", "training.steps=5")))
    with pytest.raises(SolverError, match=r"diverged: the loss left its start at step 1 of 5.*lower the learning"):
        prog.solve(errors=False)


def test_a_diverging_simulation_is_an_error_and_writes_nothing(tmp_path, capsys):
    spec = load(LINEAR, overrides=("hyper.eta=1000000.0", "training.steps=3"))
    with pytest.raises(SolverError, match=r"finite networks of mlp_mup_linear \(.*N = 32.*\) diverged.*step 1"):
        simulate(spec, sizes={"N": 32}, seeds=2)
    code = main(["simulate", LINEAR, "--out", str(tmp_path / "o"), "--size", "N=32", "--seeds", "2",
                 "--set", "hyper.eta=1000000.0", "--set", "training.steps=3"])
    assert code == 1 and not (tmp_path / "o").exists()
    assert "diverged" in capsys.readouterr().err


def test_a_stable_run_passes():
    spec = load(LINEAR, overrides=("training.steps=3",))
    assert np.all(np.isfinite(compile_spec(spec).solve(errors=False).loss))
    assert np.all(np.isfinite(simulate(spec, sizes={"N": 32}, seeds=2).loss))


@pytest.mark.parametrize("name", ["dtau", "ell", "t", "mu", "kappa"])
def test_internal_symbol_names_are_refused_as_hyperparameters_and_sizes(tmp_path, name):
    text = open("specs/mlp_mup_relu.yaml").read()
    hyper = text.replace("  eta: 0.5 ", f"  {name}: 0.5 ").replace("lr: eta", f"lr: {name}")
    size = text.replace("  L: 2 ", f"  {name}: 2 ").replace("times: L - 1", f"times: {name} - 1")
    for variant in (hyper, size):
        path = tmp_path / "spec.yaml"
        path.write_text(variant)
        with pytest.raises(SpecError, match=f"'{name}' is a name the derivation reserves"):
            load(path)
