"""The result objects (Solution, Simulation): short reprs, one `arrays` mapping, self-describing files."""

from __future__ import annotations

import json

import numpy as np
import pytest

import dmftc

SPEC = "specs/mlp_mup_linear.yaml"


@pytest.fixture(scope="module")
def prog():
    return dmftc.compile_spec(SPEC, overrides=["training.steps=3"])


@pytest.fixture(scope="module")
def sol(prog):
    return prog.solve(samples=prog.spec.solver.samples)   # fixed draws (no accuracy target): fast


@pytest.fixture(scope="module")
def sim(prog):
    return dmftc.simulate(prog.spec, sizes={"N": 32}, seeds=2, seed=5)


@pytest.mark.parametrize("which", ["sol", "sim"])
def test_repr_is_short_and_names_every_array_shape(which, request):
    obj = request.getfixturevalue(which)
    text = repr(obj)
    assert len(text.splitlines()) < 15 and len(text) < 2000, text
    assert "loss(" in text and "f(" in text and "steps=3" in text
    assert "[" not in text and "array" not in text          # never the values


def test_solution_and_simulation_share_attribute_names(sol, sim):
    for obj in (sol, sim):
        assert obj.name == "mlp_mup_linear" and obj.steps == 3
        assert set(obj.arrays) >= {"loss", "f"} and obj.arrays["loss"] is obj.loss
        assert isinstance(obj.meta, dict)
    assert sim.meta["sizes"]["N"] == 32 and sim.meta["seeds"] == 2 and sim.meta["seed"] == 5
    assert all(sim.arrays()[k] is v for k, v in sim.arrays.items())   # the older call form still works


def test_solution_files_carry_time_axes_and_metadata(sol, prog, tmp_path):
    path = sol.save(tmp_path, prog.spec)
    with np.load(path, allow_pickle=False) as npz:
        np.testing.assert_array_equal(npz["t"], np.arange(4))
        axes = json.loads(str(npz["axes"]))
        assert json.loads(str(npz["meta"]))["name"] == "mlp_mup_linear"
        for k, v in sol.arrays.items():
            assert len(axes[k]) == v.ndim, k
            np.testing.assert_array_equal(npz[k], v)
    assert axes["loss"] == ["t"] and axes["f"] == ["t", "sample"]
    assert axes["Phi1"] == ["t", "site", "t2", "site2"]
    meta = json.loads((tmp_path / "solution.json").read_text())
    assert meta["final_loss"] == pytest.approx(float(sol.loss[-1]))
    assert meta["shapes"]["f"] == [4, 8] and meta["axes"] == axes
    assert set(meta["versions"]) == {"dmftc", "jax", "numpy"} and meta["spec"]["training"]["steps"] == 3


def test_simulation_file_records_sizes_seeds_dtype_and_spec(sim, tmp_path):
    path = sim.save(tmp_path)
    with np.load(path, allow_pickle=False) as npz:
        np.testing.assert_array_equal(npz["t"], np.arange(4))
        axes, meta = json.loads(str(npz["axes"])), json.loads(str(npz["meta"]))
    assert axes["loss"] == ["seed", "t"] and axes["f"] == ["seed", "t", "sample"]
    assert axes["Phi1"] == ["seed", "t", "site", "t2", "site2"]
    assert meta["sizes"]["N"] == 32 and meta["seeds"] == 2 and meta["seed"] == 5
    assert meta["dtype"] == "float32" and meta["record"] == "full" and meta["final_loss"] == pytest.approx(
        float(sim.loss[:, -1].mean()))
    assert set(meta["versions"]) == {"dmftc", "jax", "numpy"} and meta["spec"]["training"]["steps"] == 3


def test_unknown_layouts_are_named_unknown():
    from dmftc.outputs import solution_axes

    axes = solution_axes({"loss": np.zeros(4), "f": np.zeros((4, 8)), "odd": np.zeros((3, 5, 7))})
    assert axes["odd"] == ["unknown"] * 3
    square = {"loss": np.zeros(8), "f": np.zeros((8, 8)), "K": np.zeros((8, 8))}  # T + 1 = P: ambiguous
    assert solution_axes(square)["K"] == ["unknown"] * 2
    assert solution_axes(square, "closed_form")["K"] == ["site", "site2"]   # the lazy limit's kernels are equal-time
