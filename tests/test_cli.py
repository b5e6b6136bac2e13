"""The command line as a user meets it: exit codes, one-screen errors without tracebacks, files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "dmftc", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


BAD = {
    "unknown_key.yaml": "dmftc: 1\nname: x\nsizes: {N: 8}\nhyper: {eta: 1}\nmodle: []\n",
    "tag.yaml": "dmftc: 1\nname: !!python/object/apply:os.system ['echo hi']\n",
    "syntax.yaml": "dmftc: 1\nname: [unclosed\n",
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_spec_exits_1_with_location_and_no_traceback(tmp_path, name):
    path = tmp_path / name
    path.write_text(BAD[name])
    res = run("analyze", str(path))
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    assert f"{name}:" in res.stderr                      # file:line:col
    assert len(res.stderr.splitlines()) < 40


def test_an_ill_posed_limit_exits_1_with_the_reason(tmp_path):
    res = run("compile", "specs/mlp_sp_relu.yaml", "--out", str(tmp_path))
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "grows as N^" in res.stderr
    assert not list(tmp_path.iterdir())                 # nothing half-written


def test_compile_solve_and_latex(tmp_path):
    res = run("compile", "specs/mlp_ntk_relu.yaml", "--out", str(tmp_path))
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "mlp_ntk_relu.py").exists() and (tmp_path / "mlp_ntk_relu.tex").exists()
    res = run("solve", "specs/mlp_ntk_relu.yaml", "--out", str(tmp_path / "sol"), "--set", "training.steps=7")
    assert res.returncode == 0, res.stderr
    sol = np.load(tmp_path / "sol" / "solution.npz")
    assert sol["loss"].shape == (8,) and sol["f"].shape == (8, 8)
    meta = json.loads((tmp_path / "sol" / "solution.json").read_text())
    assert meta["spec"]["training"]["steps"] == 7
    res = run("latex", "specs/mlp_mup_relu.yaml", "--standalone")
    assert res.returncode == 0 and "\\begin{document}" in res.stdout


def test_schema_and_graph(tmp_path):
    res = run("schema")
    assert res.returncode == 0 and json.loads(res.stdout)["$schema"].startswith("https://json-schema.org")
    res = run("graph", "specs/transformer_mup.yaml", "--dot", str(tmp_path / "g.dot"))
    assert res.returncode == 0 and "attention" in res.stdout
    assert (tmp_path / "g.dot").read_text().startswith('digraph "transformer_mup"')


def test_simulate_writes_the_contract_arrays(tmp_path):
    res = run("simulate", "specs/mlp_mup_relu.yaml", "--out", str(tmp_path), "--size", "N=64", "--seeds", "2",
              "--set", "training.steps=3")
    assert res.returncode == 0, res.stderr
    sim = np.load(tmp_path / "simulation.npz")
    assert sim["loss"].shape == (2, 4) and sim["f"].shape == (2, 4, 8)


def test_a_diverging_solve_is_an_error_with_the_remedy(tmp_path):
    res = run("solve", "specs/mlp_mup_relu.yaml", "--out", str(tmp_path), "--set", "hyper.eta=400",
              "--set", "solver.samples=256", "--set", "training.steps=6")
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "lower the learning rate" in res.stderr
