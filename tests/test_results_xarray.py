"""One Python API for results (issue 27, items 3 and 4): `to_xarray()` and `plot()` on a Solution and a Simulation.

Tiny runs of specs/mlp_mup_linear.yaml (3 steps): an exact DMFT solve and two networks of width 32.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

xr = pytest.importorskip("xarray")

import dmftc  # noqa: E402
from dmftc.errors import DmftcError  # noqa: E402
from dmftc.outputs import dataset, netcdf_attrs, simulation_axes, simulation_words, solution_axes  # noqa: E402
from dmftc.program import Solution  # noqa: E402
from dmftc.simulate import simulate  # noqa: E402
from dmftc.spec import load  # noqa: E402

SPEC = Path(__file__).resolve().parents[1] / "specs" / "mlp_mup_linear.yaml"
KERNEL = ("t", "mu", "s", "nu")


@pytest.fixture(scope="module")
def spec():
    return load(SPEC, overrides=["training.steps=3"])


@pytest.fixture(scope="module")
def sim(spec):
    return simulate(spec, {"N": 32}, seeds=2)


@pytest.fixture(scope="module")
def sol(spec):
    return dmftc.compile_spec(spec).solve(errors=False)


@pytest.fixture
def close_figures():
    import matplotlib.pyplot as plt

    yield
    plt.close("all")


def test_a_simulation_has_named_dimensions_and_coordinates(sim):
    ds = sim.to_xarray()
    assert ds["loss"].dims == ("seed", "t") and ds["f"].dims == ("seed", "t", "sample")
    assert ds["f0"].dims == ("seed", "sample") and ds["Phi1"].dims == ("seed", *KERNEL)
    assert set(ds.data_vars) == set(sim.arrays)                        # the names of simulation.npz
    np.testing.assert_array_equal(ds["Phi1"].values, sim.order["Phi1"])
    np.testing.assert_array_equal(ds["seed"], [0, 1])
    np.testing.assert_array_equal(ds["t"], np.arange(4))
    np.testing.assert_array_equal(ds["s"], np.arange(4))
    assert ds.sizes["mu"] == ds.sizes["nu"] == ds.sizes["sample"] == 8


def test_a_simulation_carries_its_run_in_attrs(sim):
    attrs = sim.to_xarray().attrs
    assert attrs["kind"] == "finite networks" and attrs["name"] == "mlp_mup_linear"
    assert attrs["sizes_N"] == 32 and attrs["sizes_P"] == 8 and attrs["seeds"] == 2 and attrs["seed"] == 0
    assert attrs["dtype"] == "float32" and attrs["record"] == "full" and attrs["steps"] == 3
    assert attrs["final_loss"] == pytest.approx(float(sim.loss[:, -1].mean()))
    assert {"versions_dmftc", "versions_jax", "versions_numpy"} <= set(attrs)
    assert json.loads(attrs["spec"])["training"]["steps"] == 3
    json.dumps(attrs)


def test_a_solution_has_named_dimensions_errors_and_attrs(sol, spec):
    ds = sol.to_xarray(spec)
    assert ds["loss"].dims == ("t",) and ds["f"].dims == ("t", "sample") and ds["Phi1"].dims == KERNEL
    assert ds["loss_se"].dims == ("t",) and ds["Phi1_se"].dims == KERNEL     # exact: zero standard errors
    assert float(abs(ds["loss_se"]).max()) == 0.0
    np.testing.assert_array_equal(ds["loss"].values, sol.loss)
    np.testing.assert_array_equal(ds["t"], np.arange(4))
    attrs = ds.attrs
    assert attrs["kind"] == "DMFT solution" and attrs["method"] == "exact_gaussian" and attrs["errors_method"] == "exact"
    assert attrs["samples"] == sol.meta["settings"]["samples"] and attrs["dtype"] == "float64" and attrs["seed"] == 0
    assert attrs["sizes_N"] == "inf" and attrs["sizes_L"] == 3                    # N -> oo in the DMFT
    assert json.loads(attrs["spec"])["name"] == "mlp_mup_linear" and "versions_dmftc" in attrs
    assert "spec" not in sol.to_xarray().attrs
    json.dumps(attrs)


@pytest.mark.parametrize("which", ["sim", "sol"])
def test_results_round_trip_through_netcdf(which, sim, sol, spec, tmp_path):
    ds = sim.to_xarray() if which == "sim" else sol.to_xarray(spec)
    path = tmp_path / f"{which}.nc"
    ds.to_netcdf(path, engine="scipy")
    back = xr.load_dataset(path, engine="scipy")
    xr.testing.assert_identical(back, ds)


def test_a_simulation_plots_its_seed_mean_with_a_standard_error_band(sim, sol, close_figures):
    from matplotlib.axes import Axes

    ax = sim.plot()
    assert isinstance(ax, Axes)
    assert ax.get_xlabel() == "training step t" and ax.get_ylabel() == "training loss"
    labels = ax.get_legend_handles_labels()[1]
    assert labels == ["finite networks (L = 3, N = 32), mean of 2 seeds", "± standard error of the mean"]
    line = ax.get_lines()[0]
    np.testing.assert_allclose(line.get_ydata(), sim.loss.mean(axis=0), rtol=1e-6)
    assert sol.plot(ax=ax) is ax and "DMFT (exact)" in ax.get_legend_handles_labels()[1]
    assert ax.get_title() == "mlp_mup_linear: finite networks"                 # the first plot's title stays
    ax = sim.plot("Phi1", mu=0, nu=0, s=0)
    assert ax.get_ylabel() == "feature kernel Φ at layer 1 (mu = 0, nu = 0, s = 0)"   # the DMFT's words
    ax = sol.plot("Phi1", mu=0, nu=0, s=0)
    assert ax.get_ylabel() == "feature kernel Φ at layer 1 (mu = 0, nu = 0, s = 0)"


def test_plot_asks_for_one_value_per_step(sol, sim):
    with pytest.raises(DmftcError, match=r"pick one entry, e.g. plot\('Phi1', mu=0, s=0, nu=0\)"):
        sol.plot("Phi1")
    with pytest.raises(DmftcError, match="no array 'Phi9'"):
        sim.plot("Phi9")
    with pytest.raises(DmftcError, match=r"e.g. plot\('Phi1', mu=0, s=0, nu=0\)"):
        sim.plot("Phi1")
    with pytest.raises(DmftcError, match="no dimension head"):
        sim.plot("loss", head=0)


def test_a_monte_carlo_solution_plots_its_band(close_figures):
    t = np.arange(5)
    loss, f = 0.5 * np.exp(-t / 3), np.zeros((5, 2))
    mc = Solution("toy", {"loss": loss, "f": f}, {"method": "monte_carlo", "errors": {"method": "batches"}},
                  {"se": {"loss": np.full(5, 0.01), "f": np.full((5, 2), 0.02)}})
    ax = mc.plot()
    assert ax.get_legend_handles_labels()[1] == ["DMFT", "DMFT ± Monte Carlo s.e."]
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert band.min() == pytest.approx(loss.min() - 0.01) and band.max() == pytest.approx(loss.max() + 0.01)
    assert mc.to_xarray()["loss_se"].dims == ("t",)
    plain = Solution("toy", {"loss": loss, "f": f}, {"method": "monte_carlo", "errors": {"method": "none"}})
    assert plain.plot().get_legend_handles_labels()[1] == ["DMFT (no error bars)"]
    assert plain.plot("f", sample=1).get_ylabel() == "network output f (sample = 1)"


def test_the_losses_of_a_training_setup_have_their_time_axis():
    assert simulation_axes({"loss_test": np.zeros((2, 4)), "loss_batch": np.zeros((2, 4))}) == {
        "loss_test": ["seed", "t"], "loss_batch": ["seed", "t"]}
    assert solution_axes({"loss": np.zeros(4), "loss_test": np.zeros(4)})["loss_test"] == ["t"]


def test_a_simulations_arrays_in_words():
    assert simulation_words("G2") is None     # a kernel: the DMFT's name, and its words (quantity_words)
    assert simulation_words("displacement:attn0_K[3]").endswith("of attn0_K[3]")
    assert simulation_words("logits") == "attention logits A" and simulation_words("loss") is None


def test_dataset_names_unknown_and_clashing_axes_apart_and_attrs_fit_netcdf():
    ds = dataset({"a": np.zeros((4, 3)), "b": np.zeros((4, 5)), "c": np.zeros(2)},
                 {"a": ["t", "site"], "b": ["t", "site"], "c": ["unknown"]}, {})
    assert ds["a"].dims == ("t", "mu") and ds["b"].dims == ("t", "mu_b") and ds["c"].dims == ("c_axis0",)
    assert "c_axis0" not in ds.coords and ds.sizes["mu_b"] == 5
    attrs = netcdf_attrs({"sizes": {"N": 32}, "ok": True, "none": None, "xs": [1, 2.5], "names": ["a", "b"],
                          "n": np.int64(3), "empty": []})
    assert attrs == {"sizes_N": 32, "ok": 1, "xs": [1, 2.5], "names": '["a", "b"]', "n": 3, "empty": "[]"}
    assert type(attrs["n"]) is int
