"""dmftc.sweep.run_sweep: a grid of `--set` overrides -> one labelled row per point, here or on Dask."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from dmftc import DmftcError, SpecError, compile_spec, load
from dmftc.sweep import SweepTable, _yaml_text, run_sweep

SPEC = Path(__file__).resolve().parents[2] / "specs" / "mlp_mup_relu.yaml"
SMALL = {"data.synthetic.P": [4], "training.steps": [3], "solver.samples": [128]}
GRID = {"hyper.gamma0": [0.5, 1.0], **SMALL}


@pytest.fixture(scope="module")
def local() -> SweepTable:
    return run_sweep(SPEC, GRID)


def test_local_rows_are_labelled_in_grid_order(local):
    assert local.keys == ("hyper.gamma0", "data.synthetic.P", "training.steps", "solver.samples")
    assert list(local.column("hyper.gamma0")) == [0.5, 1.0]
    for row in local:
        assert row["error"] is None and row["loss"].shape == (4,) and row["final_loss"] == row["loss"][-1]
    assert local[0]["final_loss"] != local[1]["final_loss"]


def test_a_row_is_the_solve_of_its_overrides(local):
    sol = compile_spec(SPEC, overrides=("hyper.gamma0=1.0", "data.synthetic.P=4", "training.steps=3",
                                        "solver.samples=128")).solve(samples=128)   # a sweep fixes its draws
    np.testing.assert_array_equal(local[1]["loss"], sol.loss)


def test_to_csv_has_the_settings_the_results_and_the_curve(local, tmp_path):
    path = local.to_csv(tmp_path / "sweep.csv")
    rows = list(csv.DictReader(path.open()))
    assert list(rows[0])[:8] == [*local.keys, "final_loss", "seconds", "error", "horizon"]
    assert [float(r["hyper.gamma0"]) for r in rows] == [0.5, 1.0]
    assert float(rows[1]["loss_3"]) == local[1]["final_loss"] == float(rows[1]["final_loss"])


def test_to_csv_writes_atomically_through_no_fixed_temporary_name(local, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (tmp_path / ".sweep.csv.tmp").symlink_to(victim)    # the fixed name the table once wrote through
    local.to_csv(tmp_path / "sweep.csv")
    assert victim.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".sweep.csv.tmp", "sweep.csv", "victim.txt"]


LINEAR = SPEC.with_name("mlp_mup_linear.yaml")  # exact Gaussian mode: no sampling, so prefixes are exact
LINEAR_SMALL = ("data.synthetic.P=4",)


def _counting(monkeypatch) -> list:
    """Record the overrides of every solve the sweep runs."""
    import dmftc.sweep as sweep

    calls, solve = [], sweep.solve_point

    def counted(path, sets, cache=None):
        calls.append(sets)
        return solve(path, sets, cache)

    monkeypatch.setattr(sweep, "solve_point", counted)
    return calls


def test_points_that_differ_in_steps_share_one_solve_at_the_longest(monkeypatch):
    calls = _counting(monkeypatch)
    table = run_sweep(LINEAR, {"training.steps": [5, 3, 10], "data.synthetic.P": [4]})
    assert calls == [("training.steps=10", "data.synthetic.P=4")]
    assert list(table.column("horizon")) == [10, 10, 10]
    assert list(table.column("seconds") > 0) == [False, False, True]
    for row, T in zip(table, (5, 3, 10)):
        assert row["loss"].shape == (T + 1,) and row["final_loss"] == row["loss"][-1]
        # causality: the exact solve to T is the start of the solve to 10, to round-off
        direct = compile_spec(LINEAR, overrides=(f"training.steps={T}", *LINEAR_SMALL)).solve(errors=False).loss
        np.testing.assert_allclose(row["loss"], direct, rtol=1e-11, atol=0)


def test_sharing_horizons_can_be_turned_off(monkeypatch):
    calls = _counting(monkeypatch)
    table = run_sweep(LINEAR, {"training.steps": [2, 4], "data.synthetic.P": [4]}, share_horizons=False)
    assert len(calls) == 2 and list(table.column("horizon")) == [2, 4] and all(table.column("seconds") > 0)


def test_a_failed_horizon_solves_the_shorter_points_on_their_own(monkeypatch):
    calls = _counting(monkeypatch)
    # eta = 2 diverges: the loss is near its start after 2 steps and leaves it (dmftc.divergence) at step 4
    table = run_sweep(LINEAR, {"hyper.eta": [2.0], "training.steps": [2, 5], "data.synthetic.P": [4]})
    assert [c[1] for c in calls] == ["training.steps=5", "training.steps=2"]
    assert table[0]["error"] is None and table[0]["horizon"] == 2 and np.isfinite(table[0]["final_loss"])
    assert table[1]["error"].startswith("SolverError") and table[1]["horizon"] is None


def test_a_point_with_an_ill_posed_limit_is_a_row_with_its_error():
    table = run_sweep(SPEC, {"parameterization.preset": ["sp"], **SMALL})
    assert math.isnan(table[0]["final_loss"]) and table[0]["error"].startswith("LimitError: ")
    assert "scale the learning rate" in table[0]["error"]


def test_grid_mistakes_fail_before_anything_runs():
    with pytest.raises(SpecError, match="gama0"):
        run_sweep(SPEC, {"hyper.gama0": [1.0]})
    with pytest.raises(DmftcError, match="non-empty lists"):
        run_sweep(SPEC, {"hyper.gamma0": 1.0})
    with pytest.raises(DmftcError, match="allowed: local, dask"):
        run_sweep(SPEC, {"hyper.gamma0": [1.0]}, backend="ray")
    with pytest.raises(DmftcError, match="not a directory"):
        run_sweep(SPEC, {"hyper.gamma0": [1.0]}, compile_cache=SPEC)


def test_dask_backend_gives_the_local_rows(local, tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    # the workers share one compile cache; the spawned workers read the threshold from the environment
    monkeypatch.setenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    table = run_sweep(SPEC, GRID, backend="dask", workers=2, compile_cache=tmp_path / "cache")
    assert any(p.name.startswith("jit__solve-") for p in (tmp_path / "cache").iterdir())
    assert table.keys == local.keys
    for got, want in zip(table, local):
        assert {k: got[k] for k in local.keys} == {k: want[k] for k in local.keys}
        np.testing.assert_allclose(got["loss"], want["loss"], rtol=1e-12, atol=0)


@pytest.mark.parametrize("value", [1e-05, 0.5, 3, 2.0e20, np.float64(1e-7)])
def test_grid_values_reach_the_spec_unchanged(value):
    assert load(SPEC, overrides=(f"hyper.eta={_yaml_text(value)}",)).hyper["eta"] == value
