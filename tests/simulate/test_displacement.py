"""simulate(..., displacement=True): each weight copy's relative displacement ||W(t) - W(0)||_F / ||W(0)||_F."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import data_of, resnet_spec

from dmftc.simulate import build_network, measure_one_step_seeds, simulate

SEEDS = 3


@pytest.fixture(scope="module")
def resnet():
    return resnet_spec(L_=3, steps=4)


@pytest.fixture(scope="module")
def moved(resnet):
    return simulate(resnet, seeds=SEEDS, record="diag", data=data_of(resnet), displacement=True)


def test_one_relative_displacement_per_weight_copy_zero_at_init(moved):
    assert set(moved.displacement) == {"embed", "W1[0]", "W1[1]", "W1[2]", "w"}
    for v in moved.displacement.values():
        assert v.shape == (SEEDS, moved.steps + 1) and np.all(v[:, 0] == 0) and np.all(v[:, 1:] > 0)
    assert {f"displacement:{k}" for k in moved.displacement} <= set(moved.arrays)


def test_the_first_step_is_the_one_step_update(moved, resnet):
    """||dW||_F / ||W(0)||_F from the one-step measurement (RMS of the update entries, pooled over
    the copies of W1) and the initial weights drawn the same way."""
    X, y = data_of(resnet)
    net = build_network(resnet, None, X.shape)
    w0 = net.init(0, SEEDS)
    one = measure_one_step_seeds(resnet, seeds=SEEDS, data=(X, y))
    for key in ("embed", "w"):
        expected = one[f"dW:{key}"] * np.sqrt(w0[key][0].size) / np.linalg.norm(w0[key].reshape(SEEDS, -1), axis=1)
        np.testing.assert_allclose(moved.displacement[key][:, 1], expected, rtol=2e-4)
    # W1: the pooled RMS over the 3 copies is the root of the mean of the squared per-copy RMS
    per_copy = [moved.displacement[f"W1[{i}]"][:, 1] * np.linalg.norm(w0[f"W1[{i}]"].reshape(SEEDS, -1), axis=1)
                for i in range(3)]
    pooled = np.sqrt(sum(p**2 for p in per_copy) / (3 * w0["W1[0]"][0].size))
    np.testing.assert_allclose(pooled, one["dW:W1"], rtol=2e-4)


def test_displacement_changes_nothing_else(moved, resnet):
    plain = simulate(resnet, seeds=SEEDS, record="diag", data=data_of(resnet))
    assert dict(plain.displacement) == {}
    np.testing.assert_array_equal(plain.loss, moved.loss)
    np.testing.assert_array_equal(plain.f, moved.f)
    for k, v in plain.order.items():
        np.testing.assert_array_equal(v, moved.order[k])
