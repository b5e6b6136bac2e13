"""The training setup as numbers (dmftc.training): the update rule, its filter, batches and weights."""

from __future__ import annotations

import numpy as np
import pytest

from dmftc import training
from dmftc.errors import SpecError
from dmftc.spec import load

SPEC = "specs/mlp_mup_relu.yaml"


def _setup(*sets, steps=None):
    return training.setup(load(SPEC, overrides=list(sets)), steps=steps)


def test_plain_gd_has_unit_filter():
    a, K = training.filters(_setup())
    T = len(a) - 1
    assert np.all(a == 1)
    assert np.array_equal(K, np.tril(np.ones((T + 1, T + 1)), -1))


def test_heavy_ball_filter_is_the_geometric_sum():
    beta = 0.7
    a, K = training.filters(_setup(f"training.momentum={beta}"))
    t, s = 9, 3
    assert K[t, s] == pytest.approx(sum(beta**k for k in range(t - s)))
    assert np.all(a == 1)


def test_nesterov_filter():
    beta = 0.5
    _, K = training.filters(_setup(f"training.momentum={beta}", "training.nesterov=true"))
    # step r's gradient enters step k >= r with weight beta^(k-r+1) (+1 at k = r): sum over k = s..t-1
    t, s = 6, 2
    want = 1 + sum(beta ** (k - s + 1) for k in range(s, t))
    assert K[t, s] == pytest.approx(want)


def test_decoupled_decay_and_schedule():
    st = _setup("training.weight_decay=0.1", "training.schedule=1/(1 + t)")
    a, K = training.filters(st)
    lr = 0.5   # eta of the spec
    want = np.cumprod([1.0] + [1 - 0.1 * lr / (1 + k) for k in range(st.steps)])
    assert np.allclose(a, want)
    # the gradient of step s enters with its schedule factor, then decays with the weights
    assert K[5, 2] == pytest.approx((1 / 3) * want[5] / want[3])


def test_the_filter_reproduces_the_update_rule_on_random_gradients():
    st = _setup("training.momentum=0.8", "training.nesterov=true", "training.weight_decay=0.3",
                "training.decay=coupled", "training.schedule=min(1, (t + 1) / 3) * (1 + cos(pi * t / steps)) / 2")
    rng = np.random.default_rng(0)
    lr_W = 0.37
    W0, grads = rng.standard_normal(5), rng.standard_normal((st.steps, 5))
    W, v = W0.copy(), np.zeros(5)
    a, K = training.filters(st, lr_W)
    for t in range(st.steps):
        W, v = training.update(W, v, grads[t], lr_W, t, st)
        # coupled decay makes the rule depend on W: grads here are the loss gradients without it
        assert np.allclose(W, a[t + 1] * W0 - lr_W * K[t + 1, :st.steps] @ grads)


def test_batches_random_online_and_fixed():
    st = _setup("training.batches={size: 3, seed: 2}")
    seen = np.concatenate(st.batches)
    assert all(len(b) == 3 for b in st.batches)
    assert len(set(seen[:6])) == 6 and len(set(seen[6:12])) == 6   # an epoch (two batches of 3) repeats no point
    Om = training.error_weights(st)
    assert np.allclose(Om[:-1].sum(axis=1), 1) and np.allclose(Om[-1], 1 / 8)
    fixed = _setup("training.batches=[[0, 1], [5]]")
    assert [list(b) for b in fixed.batches[:3]] == [[0, 1], [5], [0, 1]]
    online = training.setup(load(SPEC, overrides=["training.batches={size: 2, online: true}", "training.steps=4"]))
    assert [list(b) for b in online.batches] == [[0, 1], [2, 3], [4, 5], [6, 7]]


def test_held_out_points_carry_no_error_signal():
    spec = load(SPEC, overrides=["data.synthetic.test=3"])
    st = training.setup(spec)
    Om = training.error_weights(st)
    assert Om.shape == (st.steps + 1, 11) and np.all(Om[:, 8:] == 0)
    train, test = training.loss_weights(st, per_point=4)
    assert train.sum() == pytest.approx(1 / 4 * 8 * 4 / 8) and test[-12:].sum() == pytest.approx(1)


@pytest.mark.parametrize("sets, words", [
    (["training.momentum=1"], "momentum must be below 1"),
    (["training.schedule=t - 3"], "the schedule fails at step t = 0"),
    (["training.schedule=tan(t)"], "unknown function 'tan'"),
    (["training.schedule=min(t)"], "min takes exactly two arguments"),
    (["training.batches=[[0, 9]]"], "batch indices [9] are past the 8 training points"),
    (["training.batches={size: 9}"], "batches of 9 from 8 training points"),
    (["training.batches={size: 2, online: true}"], "online learning over 20 steps of 2 fresh points needs 40"),
    (["training.decay=both"], "decay"),
    (["training.nesterov=1"], "expected true or false"),
])
def test_bad_training_setups_are_refused_with_the_fix(sets, words):
    with pytest.raises(SpecError) as err:
        load(SPEC, overrides=sets)
    assert words in str(err.value)


def test_a_schedule_may_use_the_number_of_steps_and_pi():
    st = _setup("training.schedule=(1 + cos(pi * t / steps)) / 2", steps=4)
    assert np.allclose(st.schedule, [(1 + np.cos(np.pi * k / 4)) / 2 for k in range(4)])
