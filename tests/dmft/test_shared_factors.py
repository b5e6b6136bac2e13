"""One causal factorisation per source covariance (codegen.factors.shared_factors).

A transformer block's key, query and value sources all have the kernel of the block's input as
covariance: their factor, covariance rows and response pseudo-inverses are one, while each keeps its
own whitened draws. Sharing must change nothing but the work: the solve is bitwise the same.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import dmftc
from dmftc.codegen import factors, lower
from dmftc.spec import load, load_data

SPECS = Path(__file__).resolve().parents[2] / "specs"


def test_key_query_and_value_sources_share_the_factor_of_the_blocks_input():
    prog = dmftc.compile_spec(SPECS / "transformer_mup.yaml")
    # L = 2 blocks: K, Q, V at positions 6, 7, 8 and 11, 12, 13 read the LayerNorm outputs 16 and 18
    assert factors.shared_factors(prog.equations) == {("u", 7): ("u", 6), ("u", 8): ("u", 6),
                                                      ("u", 12): ("u", 11), ("u", 13): ("u", 11)}
    assert prog.module.count("rt.grow_factor(") == 24 - 4  # 24 dynamic sources, 4 of them shared
    assert 'rt.sample_row(fac[("u", 6)], xi[("u", 7)]' in prog.module  # own draws, shared factor


def test_sources_with_different_laws_keep_their_own_factors():
    # an MLP's u (kernel Phi) and r (kernel G); a residual net's per-block sources (each reads its own
    # kernel); the many-head transformer shares exactly as the one-head one; the W_O and W_2 backward
    # sources have one coefficient but read the gradient kernels of different stream positions.
    tf = {("u", 7): ("u", 6), ("u", 8): ("u", 6), ("u", 12): ("u", 11), ("u", 13): ("u", 11)}
    expected = {"mlp_mup_relu": {}, "resnet_depth_mup": {}, "transformer_heads": tf}
    for name, want in expected.items():
        system = dmftc.compile_spec(SPECS / f"{name}.yaml").equations
        assert factors.shared_factors(system) == want, name


def test_a_shared_factor_gives_the_same_solve_bit_for_bit(monkeypatch):
    spec = load(SPECS / "transformer_mup.yaml", overrides=("training.steps=2",))
    X, y = load_data(spec)

    def solve():
        mod = dmftc.compile_spec(spec).load_module()
        return {k: np.asarray(v) for k, v in mod.solve(X, y, dict(spec.hyper), steps=2, samples=64, seed=3).items()}

    shared = solve()
    monkeypatch.setattr(lower, "shared_factors", lambda system: {})
    separate = solve()
    assert shared.keys() == separate.keys()
    for name, ref in separate.items():
        np.testing.assert_array_equal(shared[name], ref, err_msg=name)
