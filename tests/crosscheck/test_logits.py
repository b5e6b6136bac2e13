"""The law of the attention logits across heads: energy distance, finite networks against the DMFT."""

from __future__ import annotations

import numpy as np
import pytest

from dmftc.crosscheck.logits import (
    compare_logit_laws, cross_group_mean_abs, dmft_logit_blocks, energy_sq, energy_sq_se, pair_mean_abs,
)


def test_pair_sums_equal_brute_force():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=40), rng.normal(size=30)
    assert pair_mean_abs(x, y) == pytest.approx(np.abs(x[:, None] - y[None]).mean())
    groups = [rng.normal(size=6) for _ in range(4)]
    brute = np.mean([abs(a - b) for i, g in enumerate(groups) for j, h in enumerate(groups) if i != j
                     for a in g for b in h])
    assert cross_group_mean_abs(groups) == pytest.approx(brute)


def test_energy_distance_is_unbiased_for_equal_laws_and_positive_otherwise():
    rng = np.random.default_rng(1)
    same = [energy_sq([rng.standard_t(5, 50) for _ in range(6)], [rng.standard_t(5, 50) for _ in range(12)])
            for _ in range(300)]
    assert abs(np.mean(same)) < 3 * np.std(same) / np.sqrt(len(same))
    f, d = [rng.normal(0.5, 1, 50) for _ in range(6)], [rng.normal(0, 1, 50) for _ in range(12)]
    e, se = energy_sq(f, d), energy_sq_se(f, d)
    assert e > 3 * se > 0


def _synthetic(H, seeds, rng, shift, T=3, L=1, P=2, S=3):
    """Logits whose law across heads is N(0, 1) plus a shift c/H at the last step (and of the change)."""
    a = rng.normal(size=(seeds, T + 1, L, H, P, S, S))
    a[:, -1] += shift / H
    return a


def test_a_law_that_differs_at_order_one_over_H_converges_at_that_rate():
    rng = np.random.default_rng(2)
    dmft = [rng.normal(size=(4, 1, 400, 2, 3, 3)) for _ in range(2)]
    finite = {H: _synthetic(H, 64, rng, shift=2.0) for H in (1, 2, 4, 8)}
    report = compare_logit_laws(dmft, finite, views=("A(0)", "A(T)"))
    init, last = report.laws
    assert init.agrees_at_largest and init.verdict.status == "unresolved"     # nothing to resolve
    assert last.verdict.status == "consistent", last.verdict.sentence
    assert last.fit.exponent == pytest.approx(-1.0, abs=3 * last.fit.exponent_se)


def test_dmft_blocks_are_the_within_sequence_logits():
    P, S, heads, n_t = 3, 2, 5, 2
    full = np.arange(n_t * heads * (P * S) ** 2, dtype=float).reshape(n_t, heads, P * S, P * S)
    blocks = dmft_logit_blocks({3: full, 1: full + 0.5}, P, S)
    assert blocks.shape == (n_t, 2, heads, P, S, S)
    np.testing.assert_array_equal(blocks[:, 1, :, 2], full[:, :, 4:6, 4:6])
    np.testing.assert_array_equal(blocks[:, 0], blocks[:, 1] + 0.5)       # layers in ascending order
