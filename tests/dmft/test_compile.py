"""The derivation engine, the code generator and the solve: structure, errors, determinism,
and agreement with independent references (the neural-tangents-style kernel recursion of
dmftc.runtime.lazy, the gamma0 -> 0 reduction to the NTK, exact vs Monte Carlo)."""

from __future__ import annotations

import ast
import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from dmftc import LimitError, Unsupported, compile_spec
from dmftc.runtime.lazy import lazy_mse, nngp_ntk_mlp
from dmftc.spec import load, load_data

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"


def spec(name, *sets):
    return load(SPECS / f"{name}.yaml", overrides=sets)


# ------------------------------------------------------------------ structure
def test_mup_system_has_every_term_with_its_time_support():
    eqs = compile_spec(spec("mlp_mup_relu")).equations
    assert eqs.regime == "feature_learning" and eqs.method == "monte_carlo"
    labels = set(eqs.labels)
    # two hidden layers: positions 1, 2; W1 maps 1 -> 2, the readout reads 2
    assert {"eq:field.h1", "eq:field.h2", "eq:field.z1", "eq:field.z2", "eq:kernel.Phi1", "eq:kernel.G2",
            "eq:response.A1", "eq:response.B1", "eq:output.f", "src:u2", "src:r1", "src:r2"} <= labels
    assert eqs.get("eq:response.A1").support == "strict"
    assert eqs.get("eq:response.B1").support == "causal"       # B(t, t) is kept (docs/theory.md#mlp-dmft)
    z = str(eqs.get("eq:field.z1").rhs)
    assert "(s, 0, t))" in z and "(s, 0, t - 1))" in z           # response to s <= t, updates to s < t
    c = eqs.coefficients
    assert str(c["upd:W1"]) == "eta*gamma0" and str(c["fresp:readout"]) == "1/gamma0"


def test_ntk_is_lazy_and_keeps_the_initial_output_variance():
    eqs = compile_spec(spec("mlp_ntk_relu")).equations
    assert eqs.regime == "lazy" and eqs.method == "closed_form"
    assert eqs.coefficients["f0:readout"] == 1


def test_linear_network_solves_without_sampling():
    assert compile_spec(spec("mlp_mup_linear")).equations.method == "exact_gaussian"


def test_sp_at_fixed_learning_rate_is_rejected_with_the_growth_and_the_fix():
    with pytest.raises(LimitError) as e:
        compile_spec(spec("mlp_sp_relu", "training.lr=eta"))
    msg = str(e.value)
    assert "grows as N^" in msg and "learning rate" in msg


def test_residual_system_has_the_stream_and_the_identity_path():
    eqs = compile_spec(spec("resnet_completep")).equations
    assert eqs.regime == "feature_learning" and eqs.depth == 5          # L = 4 blocks: stream positions 1..5
    h_rhs, g_rhs = str(eqs.get("eq:field.h3").rhs), str(eqs.get("eq:field.g2").rhs)
    assert "h[2, mu, t]" in h_rhs and "g[3, mu, t]" in g_rhs               # the identity path, both ways
    assert "beta0" in str(eqs.get("src:u3").coefficient)                  # the branch scale is in the prefactors


@pytest.mark.parametrize("name", ["resnet_depth_mup", "resnet_completep"])
def test_residual_control_variate_is_the_stream_at_gamma0_zero(name):
    """The control variate of the stream is h0 = u^1 + sum of the blocks' sources (its kernel H0 exact: independent
    sources add their covariances), not one block's source: h(0) = h0(0), so f(0) = 0 and loss(0) = <y^2>/2 exactly,
    and the kernels at t = 0 are their closed forms (no Monte Carlo error at initialisation)."""
    sp = spec(name, "training.steps=2", "solver.samples=512")
    prog = compile_spec(sp)
    lazy = prog.equations.lazy_instances
    assert all(lazy[("h", l)].base.name == "h0" for l in range(1, 6)) and prog.equations.exact_twins == {"h0": "H0"}
    sol = prog.solve(errors=False)
    X, y = load_data(sp)
    np.testing.assert_array_equal(sol.arrays["f"][0], 0.0)
    np.testing.assert_allclose(sol.arrays["loss"][0], np.mean(y**2) / 2, rtol=1e-14)
    # at t = s = 0 every stream kernel is its Gaussian value: H^{l+1}(0,0) = H^l(0,0) + c Phi^l(0,0), with
    # Phi^l(0,0) the arc-cosine map of H^l(0,0) (ReLU: diagonal H/2)
    H = [sol.arrays[f"H{l}"][0, :, 0, :] for l in range(1, 6)]
    Phi = [sol.arrays[f"Phi{l}"][0, :, 0, :] for l in range(1, 6)]
    for l in range(5):
        np.testing.assert_allclose(np.diag(Phi[l]), np.diag(H[l]) / 2, rtol=1e-12)
    assert "H01" not in sol.arrays     # the twin kernel is the control's covariance, not an order parameter


def test_the_joint_N_and_H_limit_is_the_N_limit_with_collapsed_heads():
    """alpha_A = 1: with N -> oo the heads collapse at any H, so also taking H -> oo changes no term."""
    from dmftc.spec import loads

    text = (Path(__file__).resolve().parents[2] / "specs" / "transformer_mup.yaml").read_text()
    one = compile_spec(loads(text, filename="t.yaml")).equations
    both = compile_spec(loads(text.replace("limit: {N: inf}", "limit: {N: inf, H: inf}"), filename="t.yaml"))
    assert both.equations.heads == "collapse" and both.equations.limit == ("N", "H")
    assert both.equations.labels == one.labels and both.equations.coefficients == one.coefficients
    for lab in one.labels:
        assert str(both.equations.get(lab)) == str(one.get(lab)), lab


def test_latex_labels_match_the_code_comments():
    prog = compile_spec(spec("mlp_mup_relu"))
    tex = prog.latex(standalone=True)
    for label in prog.equations.labels:
        assert f"\\label{{{label}}}" in tex
        if label != "eq:loss":
            assert f"# [{label}" in prog.module, label


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")
@pytest.mark.parametrize("name", ["mlp_mup_relu", "mlp_ntk_erf"])
def test_latex_document_compiles(tmp_path, name):
    (tmp_path / "eq.tex").write_text(compile_spec(spec(name)).latex(standalone=True))
    res = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "eq.tex"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout[-2000:]


# ------------------------------------------------------------------ generated code
def test_generated_module_imports_only_jax_and_the_runtime():
    tree = ast.parse(compile_spec(spec("mlp_mup_relu")).module)
    mods = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    mods |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert mods <= {"functools", "jax", "jax.numpy", "dmftc.runtime"}


def test_generated_module_is_byte_identical_across_hash_seeds(tmp_path):
    code = ("import hashlib, dmftc; p = dmftc.compile_spec('specs/mlp_mup_relu.yaml'); "
            "print(hashlib.sha256(p.module.encode()).hexdigest())")
    digests = set()
    for seed in ("0", "1", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                             check=True)
        digests.add(out.stdout.strip())
    assert len(digests) == 1


def test_compile_writes_both_files_atomically(tmp_path):
    py, tex = compile_spec(spec("mlp_mup_relu")).write(tmp_path)
    assert py.read_text().startswith('"""mlp_mup_relu: DMFT solver generated by dmftc')
    assert "\\begin{document}" in tex.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlp_mup_relu.py", "mlp_mup_relu.tex"]


# ------------------------------------------------------------------ numbers
@pytest.mark.parametrize("fn", ["relu", "erf"])
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_ntk_solution_equals_the_independent_kernel_recursion(fn, depth):
    s = spec(f"mlp_ntk_{fn}", f"sizes.L={depth}")
    sol = compile_spec(s).solve(errors=False)
    X, y = load_data(s)
    Phi0 = X @ X.T / X.shape[1]
    kern = nngp_ntk_mlp(fn, Phi0, depth)
    eta = s.hyper["eta"]
    ref = lazy_mse(eta * np.asarray(kern.ntk), np.asarray(kern.nngp), y, 1.0, s.training.steps)
    # float64 round-off, amplified on the diagonal by arccos near 1 (d arccos/dx ~ 1/sqrt(1 - x^2))
    np.testing.assert_allclose(sol.loss, np.asarray(ref["loss"]), rtol=1e-8)
    np.testing.assert_allclose(sol.f, np.asarray(ref["f_mean"]), rtol=1e-8, atol=1e-9)


def test_mup_at_small_gamma0_reduces_to_ntk_dynamics_exactly_for_linear_nets():
    """gamma0 -> 0: f(t+1) = f(t) + eta K Delta(t), K the NTK, f(0) = 0 (docs/theory.md#lazy-limit)."""
    s = spec("mlp_mup_linear", "hyper.gamma0=0.001", "training.steps=6")
    sol = compile_spec(s).solve(errors=False)
    X, y = load_data(s)
    kern = nngp_ntk_mlp("linear", X @ X.T / X.shape[1], int(s.sizes["L"]))
    ref = lazy_mse(s.hyper["eta"] * np.asarray(kern.ntk), 0.0, y, 1.0, 6)
    np.testing.assert_allclose(sol.loss, np.asarray(ref["loss"]), rtol=1e-4)


def test_exact_gaussian_and_monte_carlo_agree_for_a_linear_network():
    s = spec("mlp_mup_linear", "training.steps=5", "hyper.gamma0=1.0")
    prog = compile_spec(s)
    exact = prog.solve(errors=False).loss
    mc_prog = replace(prog, equations=replace(prog.equations, method="monte_carlo"))
    from dmftc.codegen.emit import emit_module
    mc_prog = replace(mc_prog, module=emit_module(mc_prog.equations, tuple(s.hyper), "mc", "test"))
    runs = np.array([mc_prog.solve(samples=4096, seed=k, errors=False).loss for k in range(4)])
    se = runs.std(0, ddof=1) / 2 + 1e-12
    assert np.all(np.abs(runs.mean(0) - exact) < 5 * se + 1e-3 * exact)


def test_relu_mup_at_small_gamma0_approaches_ntk_within_monte_carlo_error():
    s = spec("mlp_mup_relu", "hyper.gamma0=0.02", "training.steps=5")
    sol = compile_spec(s).solve(samples=2048, errors=False)
    X, y = load_data(s)
    kern = nngp_ntk_mlp("relu", X @ X.T / X.shape[1], 2)
    ref = np.asarray(lazy_mse(s.hyper["eta"] * np.asarray(kern.ntk), 0.0, y, 1.0, 5)["loss"])
    np.testing.assert_allclose(sol.loss, ref, rtol=0.02)


def test_same_seed_same_solution():
    prog = compile_spec(spec("mlp_mup_tanh", "training.steps=4"))
    a, b = prog.solve(samples=512, errors=False), prog.solve(samples=512, errors=False)
    np.testing.assert_array_equal(a.loss, b.loss)


def test_solve_reports_draws_per_dimension_and_warns_when_few():
    from dmftc.program import MIN_DRAWS_PER_DIMENSION, draws_check

    few = draws_check(samples=2048, steps=50, sites=16)
    assert few["draws_per_dimension"] == pytest.approx(2048 / 816) and "816" in few["warning"]
    assert "warning" not in draws_check(samples=MIN_DRAWS_PER_DIMENSION * 816, steps=50, sites=16)
    sol = compile_spec(spec("mlp_mup_relu")).solve(steps=2, samples=64, errors=False)
    assert sol.meta["draws_per_dimension"] == pytest.approx(64 / (3 * 8)) and "warning" in sol.meta
