"""`dmftc reproduce --quick`: the seed paper's phenomena measured on finite transformers, one command.

The quick configuration (3 sizes per axis, 5 steps, 8 seeds) is deterministic (fixed seeds), so its
verdicts are stable; the robust ones are asserted: they fail if the physics they name breaks.
"""

from __future__ import annotations

import json

import pytest

from dmftc.cli import main
from dmftc.errors import DmftcError
from dmftc.reproduce import QUICK, Config, reproduce


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce")
    code = main(["reproduce", "--quick", "--out", str(out)])
    return code, out, json.loads((out / "report.json").read_text())


def test_writes_the_report_and_every_figure(run):
    code, out, report = run
    assert code == 0, report["summary"]   # the showcase resolves what it shows (issue 27, item 1)
    for name in ("report.json", "report.md", "heads_N.png", "heads_H.png", "depth.png"):
        assert (out / name).stat().st_size > 0
    assert [p["name"] for p in report["phenomena"]] == [
        "head_collapse", "no_collapse", "head_diversity", "output_concentration", "depth_tension"]
    assert report["quick"] and report["config"]["N"] == list(QUICK.N)


def _exponent(report, phenomenon, quantity):
    p = next(p for p in report["phenomena"] if p["name"] == phenomenon)
    return next(e for e in p["exponents"] if e["quantity"] == quantity)


def test_heads_collapse_at_alpha_A_1_and_not_at_one_half(run):
    _, _, report = run
    one = _exponent(report, "head_collapse", "headvar_init")
    half = _exponent(report, "no_collapse", "headvar_init")
    assert one["status"] == half["status"] == "consistent"
    assert one["measured"] < -0.6 and abs(half["measured"]) < 0.4


def test_depth_freezes_keys_and_queries_only_at_alpha_L_one_half(run):
    _, _, report = run
    half = _exponent(report, "depth_tension", "kq_displacement (alpha_L=1/2)")
    one = _exponent(report, "depth_tension", "kq_displacement (alpha_L=1)")
    assert half["status"] == one["status"] == "consistent"
    assert half["measured"] < -0.3 < one["measured"]


def test_a_sweep_needs_three_sizes(tmp_path):
    with pytest.raises(DmftcError, match="3 sizes of N"):
        reproduce(tmp_path, config=Config(N=(8, 16)))
    assert not any(tmp_path.iterdir())          # nothing half-written


def test_runs_on_a_users_token_model_and_skips_what_it_cannot_measure(tmp_path):
    """A layout with no residual depth (per-token MLP, one bare attention, LayerNorm, pool): the head
    phenomena are measured on it, the depth tension is skipped with the reason."""
    from pathlib import Path

    spec = Path(__file__).resolve().parents[2] / "specs" / "layouts" / "tf_token_mlp_first.yaml"
    code = main(["reproduce", "--quick", "--model", str(spec), "--out", str(tmp_path)])
    assert code in (0, 1)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["task"] == "tf_token_mlp_first"
    assert [p["name"] for p in report["phenomena"]] == [
        "head_collapse", "no_collapse", "head_diversity", "output_concentration"]
    assert report["skipped"][0]["name"] == "depth tension" and "residual depth" in report["skipped"][0]["why"]
    assert _exponent(report, "head_collapse", "headvar_init")["status"] == "consistent"
    assert not (tmp_path / "depth.png").exists()


def test_a_model_without_alpha_A_is_refused(tmp_path):
    from pathlib import Path

    spec = Path(__file__).resolve().parents[2] / "specs" / "mlp_mup_relu.yaml"
    assert main(["reproduce", "--quick", "--model", str(spec), "--out", str(tmp_path)]) == 2
    assert not any(tmp_path.iterdir())
