"""Multi-head attention (docs/theory.md#attention-logit-scale), counted by hand in the mup preset.

N -> inf at fixed H, keys/queries k = N^(alpha_A - 3/2) H^-1/2 W_K hbar with W_K entries of std
N^(1 - alpha_A) (m = alpha_A - 3/2, s = 1 - alpha_A, fan-in N H): F(k) = 0 for every alpha_A;
logits A = N^-alpha_A k . q, independent at init: F(A) = -alpha_A + 1/2.
Backward (raw; the readout multiplier is N^-1): B(stream) = -1, B(o) = -1/2 + 0 + 1/2 - 1 = -1,
chi_A = p g_o . (v - o) at init a central-limit sum: B(A) = 1/2 - 1 + 0 = -1/2;
B(k) = -alpha_A + B(A) + F(q) = -alpha_A - 1/2, normalised (+1): 1/2 - alpha_A.
After one step Delta v (aligned with g_o) makes chi_A coherent: 1 - 1 + D(v) = 0 (D(v) = 0 in mup),
so B'(k) = -alpha_A + 0 + 0, normalised 1 - alpha_A: 0 for alpha_A = 1, +1/2 for alpha_A = 1/2.
"""

from __future__ import annotations

import pytest
from scaling_specs import exps, half, transformer

from dmftc.errors import LimitError
from dmftc.scaling import analyze


def test_alpha_A_1_learns_and_heads_collapse():
    sc = analyze(transformer(1.0))
    e = exps(sc)
    assert e["fwd:attn0_K"] == e["fwd:attn0_Q"] == 0
    assert e["logit:attn0"] == -half                       # logits vanish at init
    assert e["bwd:attn0_K"] == -half                       # 1/2 - alpha_A
    assert e["bwd:attn0_K@trained"] == 0                   # 1 - alpha_A
    assert e["dW:attn0_K"] == -1                           # lam 1 + m -1/2 + B -3/2 + F 0
    # one step: Delta q = N^-1/2 along the keys, k . Delta q sums N of them: -1 + 1 - 1/2
    assert e["dlogit:attn0"] == -half
    # after training: dW = 1 - 1/2 - 1 = -1/2, Delta q = -1/2 - 1/2 + 1 = 0, logits -1 + 1 + 0
    assert e["dlogit:attn0@trained"] == 0
    assert e["df@trained"] == 0 and e["f0"] == -half
    assert sc.regime == "feature_learning" and sc.heads == "collapse"
    assert any("collapses to one effective head" in r for r in sc.reasons)


def test_alpha_A_half_has_no_N_limit_of_training():
    sc = analyze(transformer(0.5))
    e = exps(sc)
    assert e["logit:attn0"] == 0                           # O(1) random logits at init
    assert e["bwd:attn0_K"] == 0 and e["bwd:attn0_K@trained"] == half
    assert e["bwd:attn0_Q@trained"] == half
    assert sc.regime == "unstable" and sc.heads is None
    first = sc.reasons[0]
    for part in ("chi_A of attn0", "through attn0_K^T", "entries of std N^1/2", "grows as N^1/2",
                 "limit of training does not exist", "use logit scale N^-1 (alpha_A = 1)"):
        assert part in first, (part, first)
    with pytest.raises(LimitError, match="chi_A"):
        sc.raise_if_unstable()


def test_alpha_A_half_logits_move_by_N_to_the_half_after_one_step():
    """The stream's O(1) update is driven by W_Q^T g_q among others; fed back through W_Q
    it moves q by N g_q (W_Q W_Q^T ~ N^2 with m_Q^2 = N^-2) along the keys: k . Delta q ~ N,
    times N^-1/2. (Measured: the logit change grows with N, local slope ~ 1/2 by N = 2048.)"""
    e = exps(analyze(transformer(0.5)))
    assert e["dlogit:attn0"] == half
    assert e["dfwd:attn0_Q"] == 0 and e["df"] == 0          # everything else is fine after one step


@pytest.mark.parametrize("alpha_A", [1.0, 0.5])
def test_many_heads_at_fixed_N_are_stable_and_diverse(alpha_A):
    sc = analyze(transformer(alpha_A, limit=("H",)))
    e = exps(sc, "H")
    assert e["logit:attn0"] == 0 and e["logit:attn0@trained"] == 0   # N fixed: O(1) per head
    assert e["bwd:attn0_K@trained"] == 0 and e["dfwd:attn0_Q@trained"] == 0
    assert e["f0"] == -half and e["df@trained"] == 0
    assert sc.regime == "feature_learning" and sc.heads == "diverse"


def test_joint_limits_combine():
    sc = analyze(transformer(1.0, limit=("N", "H")))
    assert sc.regime == "feature_learning" and sc.heads == "collapse"
    assert set(sc.regimes.values()) == {"feature_learning"}
    assert analyze(transformer(0.5, limit=("H", "N"))).regime == "unstable"
    sc.check()
