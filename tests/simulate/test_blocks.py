"""The blocks' finite forward passes against explicit formulas."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special

from dmftc.blocks import BLOCKS, act, attention, layernorm, pool, readout, residual
from dmftc.errors import Unsupported
from dmftc.spec.types import ACTIVATIONS, OP_TYPES


def test_registry_has_one_module_per_op_kind():
    kinds = {t.kind for t in OP_TYPES} - {"repeat"}
    assert set(BLOCKS) == kinds
    assert all(BLOCKS[k].KIND == k and callable(BLOCKS[k].forward) for k in kinds)


def test_activation_table_is_the_spec_list_and_matches_closed_forms():
    assert set(act.ACTIVATIONS) == set(ACTIVATIONS)
    x = np.linspace(-3, 3, 13)
    expected = {"linear": x, "relu": np.maximum(x, 0), "tanh": np.tanh(x), "erf": scipy.special.erf(x),
                "gelu": x * scipy.special.ndtr(x), "quadratic": x**2, "sigmoid": scipy.special.expit(x)}
    for name, value in expected.items():
        np.testing.assert_allclose(act.forward(jnp.asarray(x), name), value, rtol=1e-6, atol=1e-6, err_msg=name)


def test_unknown_activation_names_the_allowed_ones():
    with pytest.raises(Unsupported, match="use one of erf, gelu, linear"):
        act.forward(jnp.zeros(3), "softplus")


def test_layernorm_normalises_each_token_over_features():
    h = 3.0 + 2.0 * jax.random.normal(jax.random.PRNGKey(0), (4, 5, 64))
    out = np.asarray(layernorm.forward(h))
    np.testing.assert_allclose(out.mean(-1), 0, atol=1e-5)
    np.testing.assert_allclose((out**2).mean(-1), 1, rtol=1e-5)


def test_residual_pool_readout():
    h, w = jnp.arange(6.0).reshape(1, 2, 3), jnp.ones((1, 3))
    np.testing.assert_allclose(residual.forward(h, lambda z: 2 * z, 0.5), 2 * h)
    np.testing.assert_allclose(pool.forward(h), [[1.5, 2.5, 3.5]])
    np.testing.assert_allclose(readout.forward(w, pool.forward(h), 0.1), [0.75], rtol=1e-6)


def test_attention_matches_an_explicit_loop():
    P, S, H, N, width = 2, 3, 2, 4, 5
    rng = np.random.default_rng(0)
    W = {p: rng.standard_normal((H * N, width) if p != "O" else (width, H * N)) for p in "KQVO"}
    m = {"K": 0.3, "Q": 0.4, "V": 0.5, "O": 0.6}
    x = rng.standard_normal((P, S, width))
    seen = {}

    def tap(name, v):
        seen[name] = v
        return v

    out = attention.forward({p: jnp.asarray(w) for p, w in W.items()}, jnp.asarray(x), heads=H,
                            logit_scale=0.7, multipliers=m, tap=tap)
    q, k, v = (m[p] * x @ W[p].T for p in "QKV")
    expected = np.zeros((P, S, width))
    for mu in range(P):
        o = np.zeros((S, H * N))
        for h in range(H):
            c = slice(h * N, (h + 1) * N)
            A = 0.7 * q[mu][:, c] @ k[mu][:, c].T            # A[s, s'] = q_s . k_s'
            np.testing.assert_allclose(seen["logits"][mu, h], A, rtol=1e-5)
            soft = np.exp(A) / np.exp(A).sum(1, keepdims=True)  # softmax over keys s'
            o[:, c] = soft @ v[mu][:, c]
        expected[mu] = m["O"] * o @ W["O"].T
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    assert set(seen) == {"K", "Q", "V", "logits", "O"}
    assert math.isclose(float(jnp.abs(seen["O"] - out).max()), 0.0)
