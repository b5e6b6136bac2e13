"""The cross-check end to end: it passes the derived DMFT and catches a deliberately wrong one."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import sympy

from dmftc import compile_spec
from dmftc.check import run_check
from dmftc.codegen.emit import emit_module
from dmftc.dmft.system import Equation
from dmftc.spec import load

SPECS = Path(__file__).resolve().parents[2] / "specs"


def _without(prog, label, base):
    """The same program with every term of equation `label` that involves `base` dropped (a wrong DMFT)."""
    eqs = prog.equations
    e = eqs.get(label)
    rhs = e.rhs
    if isinstance(rhs, sympy.Add):
        parts = sympy.Add.make_args(rhs)
    else:
        parts = (rhs,)
    kept = []
    for a in parts:
        if isinstance(a, sympy.Sum):
            mono = [m for m in sympy.Add.make_args(sympy.expand(a.function))
                    if not any(x.base.name == base for x in m.atoms(sympy.Indexed))]
            kept.append(sympy.Sum(sympy.Add(*mono), *a.limits) if mono else sympy.Integer(0))
        else:
            kept.append(a)
    new = Equation(e.label, e.lhs, sympy.Add(*kept), e.kind, e.meaning, e.layers, e.support)
    wrong = replace(eqs, equations=tuple(new if q.label == label else q for q in eqs.equations))
    return replace(prog, equations=wrong, module=emit_module(wrong, tuple(prog.spec.hyper), "wrong", "test"))


@pytest.fixture(scope="module")
def spec():
    return load(SPECS / "mlp_mup_relu.yaml", overrides=("training.steps=12", "solver.samples=4096"))


def test_a_dmft_missing_an_update_term_is_caught(spec):
    """The hidden layer's weight-update term Delta Phi g dropped from the forward field."""
    prog = _without(compile_spec(spec), "eq:field.h2", "Delta")
    assert "Delta" not in str(prog.equations.get("eq:field.h2").rhs)
    report = run_check(spec, {"N": [64, 128, 256, 512]}, seeds=8, out_dir=None, program=prog, quantities=["loss"])
    assert report.status == "not_converging", report.summary


@pytest.mark.slow
def test_a_dmft_missing_the_backward_response_is_caught():
    """B(t, s) dropped: 6-20 % off the loss over steps 12-20 here; needs larger N and more seeds to see."""
    spec = load(SPECS / "mlp_mup_relu.yaml", overrides=("training.steps=20", "solver.samples=16384"))
    prog = _without(compile_spec(spec), "eq:field.z1", "B")
    assert "B[" not in str(prog.equations.get("eq:field.z1").rhs)
    report = run_check(spec, {"N": [256, 512, 1024, 2048]}, seeds=32, out_dir=None, program=prog,
                       quantities=["loss"])
    assert report.status == "not_converging", report.summary


def test_the_derived_dmft_is_not_flagged(spec, tmp_path):
    report = run_check(spec, {"N": [64, 128, 256, 512]}, seeds=8, out_dir=tmp_path, quantities=["loss"])
    assert report.status in ("consistent", "unresolved"), report.summary
    data = json.loads((tmp_path / "check.json").read_text())
    assert data["sizes"] == [64, 128, 256, 512]
    assert (tmp_path / "loss_curves.png").stat().st_size > 0


@pytest.mark.parametrize("name, order", [("resnet_completep", 1.0), ("resnet_depth_mup", 0.5)])
def test_along_L_the_reference_is_the_depth_grid_extrapolated_to_infinite_depth(name, order):
    """Richardson's X_K + (X_K - X_K/2) / (2^p - 1) for loss, f and the top of the stream: p = 1 (2 X_K - X_K/2)
    where the stream is an ODE (alpha_L = 1), p = 1/2 with Brownian sources and ReLU's kink (alpha_L = 1/2),
    which is also the predicted rate of the bias along L."""
    from dmftc.check import depth_extrapolated, depth_order, dmft_runs, predicted_rates

    def spec(K):
        return load(SPECS / f"{name}.yaml",
                    overrides=("limit.L=inf", f"solver.depth_steps={K}", "training.steps=3", "solver.samples=512"))

    prog = compile_spec(spec(8))
    assert depth_order(prog)[0] == order
    rates, notes = predicted_rates(prog, "L")
    kink = {} if order == 1 else {"bias_next": -1.0}
    assert rates == {"bias": -order, "fluct": 0.0, **kink} and (order == 1) == (notes == ())
    runs = dmft_runs(prog, seeds=2)
    ext, note = depth_extrapolated(prog, runs)
    coarse = dmft_runs(compile_spec(spec(4)), seeds=2)[1]  # run 1 of the K/2 solve pairs with run 1 of the K solve
    w = 1 / (2**order - 1)
    np.testing.assert_allclose(ext[1]["loss"], runs[1]["loss"] + w * (runs[1]["loss"] - coarse["loss"]), rtol=1e-12)
    np.testing.assert_allclose(ext[1]["H9"], runs[1]["H9"] + w * (runs[1]["H9"] - coarse["H5"]), rtol=1e-12)
    assert "from K = 8 and 4 depth steps" in note
    report = run_check(spec(8), {"L": [2, 4]}, seeds=4, out_dir=None, dmft_seeds=2)
    assert [q.name for q in report.quantities] == ["loss", "f", "Htop"]
    assert any("extrapolated to infinite depth" in n for n in report.notes)


@pytest.mark.slow
def test_the_mup_mlp_converges_at_n_to_the_minus_one_over_128_to_2048():
    """Issue 3's measurement (13 min here): loss, f and every kernel's bias fall as N^-1, fluctuations as
    N^-1/2; 1024 seeds so that the 116 control variates are used, 8 DMFT runs of 262144 draws each.
    Measured: loss N^-1.05 +- 0.04, f -1.06 +- 0.05, G1 -1.24 +- 0.15, G2 -1.07 +- 0.09,
    Phi1 -1.09 +- 0.13, Phi2 -1.11 +- 0.09."""
    spec = load(SPECS / "mlp_mup_relu.yaml", overrides=("solver.samples=262144",))
    report = run_check(spec, {"N": [128, 256, 512, 1024, 2048]}, seeds=1024, out_dir=None)
    assert report.status == "consistent", report.summary
    assert {q.name for q in report.quantities} == {"loss", "f", "G1", "G2", "Phi1", "Phi2"}


def test_one_ensemble_seed_would_share_units_across_widths():
    """Why each size needs its own ensemble: network i at N = 32 holds network i at N = 16's first-layer
    units (the same numbers), so one ensemble for all sizes makes their seed means share their noise."""
    from dmftc.simulate import build_network

    spec = load(SPECS / "mlp_mup_tanh.yaml")
    shape = compile_spec(spec).data()[0].shape
    small, large = (build_network(spec, {"N": n}, shape).init(0, 1) for n in (16, 32))
    w1 = next(k for k in small if small[k].shape[1:] == (16, shape[-1]))
    np.testing.assert_array_equal(large[w1][0, :16], small[w1][0])


def test_each_size_is_an_independent_ensemble(monkeypatch):
    """check simulates ensemble k at the k-th size: the fits take the sizes' distances as independent, and
    sizes that share networks carry one excursion of the seeds as a common floor (`dmftc.check.size_ensemble`)."""
    import importlib

    check = importlib.import_module("dmftc.check")   # the module (the package's `check` is a function)
    seeds_used = {}

    def recording(spec, sizes, seeds, **kw):
        seeds_used[sizes["N"]] = kw.get("seed", 0)
        return real(spec, sizes, seeds, **kw)

    real = check.simulate
    monkeypatch.setattr(check, "simulate", recording)
    spec = load(SPECS / "mlp_mup_linear.yaml", overrides=("training.steps=2",))
    run_check(spec, {"N": [16, 32, 64]}, seeds=4, out_dir=None, quantities=["loss"])
    assert sorted(seeds_used) == [16, 32, 64]
    assert len(set(seeds_used.values())) == 3, seeds_used
