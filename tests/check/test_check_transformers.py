"""dmftc check on transformers: head-averaged logits against the DMFT's Lam, (H -> oo) the law of the
logits across heads, and (L -> oo) the output and the top of the stream along L."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dmftc.check import dmft_logit_means, head_averaged_logits, run_check
from dmftc.spec import load

ROOT = Path(__file__).resolve().parents[2]


def test_finite_and_dmft_logits_line_up_block_by_block():
    spec = load(ROOT / "specs" / "transformer_mup.yaml")
    P, S = 8, int(spec.sizes["S"])
    rng = np.random.default_rng(0)
    finite = rng.normal(size=(3, 2, 2, 4, P, S, S))              # seeds, T+1, L_attn, H, P, S, S
    A = head_averaged_logits(finite)
    np.testing.assert_allclose(A["A2"], finite[:, :, 1].mean(axis=2))
    lam = {f"Lam{l}": rng.normal(size=(2, P * S, P * S)) for l in (1, 3)}
    ref = dmft_logit_means({**lam, "f": np.zeros((2, P))}, spec)
    assert sorted(ref) == ["A1", "A2"] and ref["A2"].shape == (2, P, S, S)
    np.testing.assert_array_equal(ref["A2"][:, 5], lam["Lam3"][:, 5 * S:6 * S, 5 * S:6 * S])


@pytest.fixture(scope="module")
def heads_check(tmp_path_factory):
    out = tmp_path_factory.mktemp("check_heads")
    spec = load(ROOT / "specs" / "transformer_heads.yaml", overrides=["training.steps=2", "solver.samples=512"])
    return run_check(spec, {"H": [4, 8, 16]}, seeds=4, out_dir=out), out


def test_head_limit_check_compares_logits_and_their_law(heads_check):
    report, out = heads_check
    assert {"A1", "A2"} <= {q.name for q in report.quantities}
    laws = json.loads((out / "logits.json").read_text())
    assert [law["what"] for law in laws["laws"]] == ["A(0)", "A(T)", "A(T) - A(0)"]
    assert laws["laws"][0]["sizes"] == [4, 8, 16] and (out / "logits.png").stat().st_size > 0
    assert "logits across heads" in report.summary


def test_along_L_the_output_and_the_top_of_the_stream_are_compared(tmp_path):
    from dmftc.spec import loads

    text = (ROOT / "specs" / "transformer_mup.yaml").read_text().replace("limit: {N: inf}", "limit: {N: inf, L: inf}")
    spec = loads(text, filename="t.yaml", overrides=["training.steps=1", "solver.samples=256",
                                                       "solver.depth_steps=2", "sizes.N=16"])
    report = run_check(spec, {"L": [1, 2, 4]}, seeds=4, out_dir=None, dmft_seeds=2)
    assert [q.name for q in report.quantities] == ["loss", "f", "Htop"]
