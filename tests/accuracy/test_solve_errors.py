"""Error bars of real solves: the levels recomputed by hand, the files, exact methods and the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import dmftc
from dmftc.spec import load_data

ROOT = Path(__file__).resolve().parents[2]
SMALL = ("training.steps=3", "data.synthetic.P=4", "solver.samples=256")


@pytest.fixture(scope="module")
def prog():
    return dmftc.compile_spec(ROOT / "specs" / "mlp_mup_relu.yaml", overrides=SMALL)


@pytest.fixture(scope="module")
def sol(prog):
    return prog.solve(batches=4, samples=256)   # fixed draws: no accuracy target


def test_value_is_richardson_of_the_full_solve_and_the_halves(prog, sol):
    mod, (X, y) = prog.load_module(), load_data(prog.spec)
    run = lambda M, part: {k: np.asarray(v) for k, v in mod.solve(X, y, dict(prog.spec.hyper), steps=3, samples=M,
                                                                  batches=part).items()}
    full = run(256, (0, 4, 4))
    halves = [run(128, (0, 2, 4)), run(128, (2, 4, 4))]
    parts = [run(64, (b, b + 1, 4)) for b in range(4)]
    for q in ("loss", "f", "Phi1", "G2", "A1"):
        X2 = (halves[0][q] + halves[1][q]) / 2
        np.testing.assert_allclose(sol.arrays[q], 2 * full[q] - X2, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(sol.errors["bias"][q], X2 - full[q], rtol=1e-10, atol=1e-14)
        spread = np.std([p[q] for p in parts], axis=0, ddof=1) / 2
        np.testing.assert_allclose(sol.errors["se"][q], spread, rtol=1e-10, atol=1e-14)
    assert not np.allclose(parts[0]["loss"], parts[1]["loss"])                   # independent batches differ


def test_a_solve_on_some_batches_sees_exactly_the_full_solves_draws_of_them():
    from dmftc.runtime import sweep as rt

    dims = {("u", 1): 3, ("r", 2): 5}
    full, w = rt.source_draws(rt.batch_keys(7, (0, 4, 4)), dims, 64, "monte_carlo", np.float64)
    half, wh = rt.source_draws(rt.batch_keys(7, (2, 4, 4)), dims, 32, "monte_carlo", np.float64)
    for k in dims:
        np.testing.assert_array_equal(np.asarray(half[k]), np.asarray(full[k])[32:])
        b = np.asarray(full[k])[:16]
        np.testing.assert_allclose(b[:8], -b[8:])          # antithetic pairs stay within a batch
    assert float(np.sum(w)) == pytest.approx(1) and float(np.sum(wh)) == pytest.approx(1)


def test_every_expectation_has_its_errors_in_the_files(sol, prog, tmp_path):
    assert sol.meta["errors"]["method"] == "batches" and sol.meta["errors"]["bias_removed"]
    assert sol.meta["errors"]["solves"] == 1 + 2 + 4 and sol.meta["settings"]["samples"] == 256
    sol.save(tmp_path, prog.spec)
    with np.load(tmp_path / "solution.npz", allow_pickle=False) as npz:
        axes = json.loads(str(npz["axes"]))
        for k, v in sol.arrays.items():
            for kind in ("se", "bias", "residual"):
                np.testing.assert_array_equal(npz[f"{k}_{kind}"], sol.errors[kind][k])
                assert axes[f"{k}_{kind}"] == axes[k]
    meta = json.loads((tmp_path / "solution.json").read_text())
    assert meta["errors"]["loss_se_max"] == pytest.approx(float(np.max(sol.se("loss"))))
    assert np.all(sol.se("loss")[1:] > 0) and sol.se("loss")[0] == 0  # f(0) = 0 exactly (antithetic draws)


def test_an_exact_method_says_it_is_exact():
    sol = dmftc.compile_spec(ROOT / "specs" / "mlp_mup_linear.yaml", overrides=("training.steps=2",)).solve()
    assert sol.meta["errors"]["method"] == "exact" and np.all(sol.se("loss") == 0)
    lazy = dmftc.compile_spec(ROOT / "specs" / "mlp_ntk_relu.yaml", overrides=("training.steps=2",)).solve()
    assert lazy.meta["errors"]["method"] == "exact"


def test_plain_solve_has_no_error_bars(prog):
    plain = prog.solve(errors=False)
    assert plain.se("loss") is None and plain.meta["errors"]["method"] == "none"


def cli(*args):
    return subprocess.run([sys.executable, "-m", "dmftc", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


def test_solve_prints_value_and_error_and_meets_rtol(tmp_path):
    spec = str(ROOT / "specs" / "mlp_mup_relu.yaml")
    sets = [a for s in SMALL[:2] for a in ("--set", s)]
    r = cli("solve", spec, *sets, "--samples", "256", "--out", str(tmp_path / "a"))
    assert r.returncode == 0, r.stderr
    assert "+-" in r.stdout and "bias removed" in r.stdout and "accuracy" not in r.stdout
    r = cli("solve", spec, *sets, "--samples", "256", "--rtol", "0.02", "--out", str(tmp_path / "b"))
    assert r.returncode == 0, r.stderr
    assert "accuracy: target" in r.stdout and " met: " in r.stdout and "chose" in r.stdout
    meta = json.loads((tmp_path / "b" / "solution.json").read_text())
    errs = meta["errors"]
    assert errs["target_met"] and errs["loss_error_max"] <= errs["target"]
    with np.load(tmp_path / "b" / "solution.npz") as npz:
        assert errs["target"] == pytest.approx(0.02 * np.ptp(npz["loss"]))


@pytest.mark.parametrize("args, words", [
    (("--batches", "5"), "even number of batches"),
    (("--batches", "2"), ">= 4"),
    (("--rtol", "-1"), "solver.rtol"),
    (("--rtol", "1e-9"), "on this machine hold"),
])
def test_bad_accuracy_requests_exit_1_with_the_reason(args, words, tmp_path):
    r = cli("solve", str(ROOT / "specs" / "mlp_mup_relu.yaml"), "--set", "training.steps=2", "--samples", "64",
            *args, "--out", str(tmp_path / "x"))
    assert r.returncode == 1 and words in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "x" / "solution.npz").exists()


def test_standard_error_matches_the_spread_of_independent_solves(prog):
    """Over 32 seeds, the spread of the corrected values over the reported standard error (RMS over seeds) is
    one within its sampling error (31 degrees of freedom: 13 %) at every step: a wrong sqrt(K), or batches that
    were not independent, would put it at 2.8 or 0.35."""
    sols = [prog.solve(batches=8, seed=100 + k, samples=256) for k in range(32)]
    values = np.array([s.loss for s in sols])[:, 1:]
    se = np.sqrt(np.mean([s.se("loss")[1:] ** 2 for s in sols], axis=0))
    ratio = values.std(0, ddof=1) / se
    assert np.all((ratio > 0.6) & (ratio < 1.5)), ratio
