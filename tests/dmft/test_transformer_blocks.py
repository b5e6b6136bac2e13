"""Each new transformer block, its finite forward/backward pass beside its mean-field meaning.

The DMFT's attention and LayerNorm equations (blocks/attention.py, blocks/layernorm.py) are identities of the
finite network once averages over coordinates replace expectations; these tests check them
against jax autodiff of the finite blocks (dmftc/blocks), and check the limits they rely on
(logits -> 0 at init with alpha_A = 1, LayerNorm's mean -> 0 and scale -> the kernel diagonal).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dmftc.blocks import attention, layernorm


def _rng(seed=0):
    return np.random.default_rng(seed)


def test_layernorm_backward_is_the_projection_of_eq_ln_back():
    """g^h = (g^hb - hb <hb g^hb>) / sigma exactly (mean of g^hb subtracted), eq:ln.back's finite form."""
    n = 512
    h = jnp.asarray(_rng().standard_normal((3, n)) * 1.7 + 0.2)
    gbar = jnp.asarray(_rng(1).standard_normal((3, n)))
    _, vjp = jax.vjp(layernorm.forward, h)
    (gh,) = vjp(gbar)
    hb = layernorm.forward(h)
    sig = jnp.std(h, axis=-1, keepdims=True)
    C = jnp.mean(hb * gbar, axis=-1, keepdims=True)
    expected = (gbar - jnp.mean(gbar, axis=-1, keepdims=True) - hb * C) / sig
    np.testing.assert_allclose(np.asarray(gh), np.asarray(expected), rtol=1e-4, atol=1e-5)


def test_layernorm_in_the_limit_divides_by_the_kernel_diagonal():
    """eq:ln: for i.i.d. coordinates of mean 0 the LN output tends to h / sqrt(<h^2>) (error ~ n^-1/2)."""
    errs = []
    for n in (256, 4096, 65536):
        h = _rng(n).standard_normal(n) * 2.0
        errs.append(np.sqrt(np.mean((np.asarray(layernorm.forward(jnp.asarray(h))) - h / 2.0) ** 2)))
    slope = np.polyfit(np.log([256, 4096, 65536]), np.log(errs), 1)[0]
    assert -0.7 < slope < -0.3, errs


def _head(N, S=4, seed=0):
    r = _rng(seed)
    q, k, v, go = (jnp.asarray(r.standard_normal((S, 1, N))) for _ in range(4))
    return q, k, v, go


@pytest.mark.parametrize("N", [8, 64])
def test_attention_backward_is_eq_attn_gq_gk_gv(N):
    """Per head, with A = q.k / N (alpha_A = 1): g^v = Sm^T g^o, g^q = D k, g^k = D^T q with
    D = Sm * (M - rowsum(Sm * M)), M_{ss'} = (1/N) sum_i g^o_{s i} v_{s' i}: exact at any N."""
    q, k, v, go = _head(N)

    def out(q, k, v):
        A = attention.logits(q, k, 1.0 / N)            # (1, S, S)
        return attention.mix(A, v)                      # (S, N)

    # f = (1/N) sum_{s i} go_{s i} o_{s i}: then N df/dx is the field's backward field g^x
    f = lambda q, k, v: jnp.sum(go[:, 0] * out(q, k, v)) / N
    gq, gk, gv = (N * x for x in jax.grad(f, argnums=(0, 1, 2))(q, k, v))
    A = attention.logits(q, k, 1.0 / N)[0]
    Sm = jax.nn.softmax(A, axis=-1)
    M = go[:, 0] @ v[:, 0].T / N
    D = Sm * (M - jnp.sum(Sm * M, axis=-1, keepdims=True))
    np.testing.assert_allclose(np.asarray(gv[:, 0]), np.asarray(Sm.T @ go[:, 0]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(gq[:, 0]), np.asarray(D @ k[:, 0]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(gk[:, 0]), np.asarray(D.T @ q[:, 0]), rtol=1e-5, atol=1e-6)


def test_logits_at_init_vanish_as_n_grows_with_alpha_A_1():
    """eq:attn.logit at t = 0: <q k> = 0 for independent sources; the finite logit is O(N^-1/2)."""
    rms = []
    for N in (16, 256, 4096):
        q, k, _, _ = _head(N, seed=N)
        rms.append(float(jnp.sqrt(jnp.mean(attention.logits(q, k, 1.0 / N) ** 2))))
    slope = np.polyfit(np.log([16, 256, 4096]), np.log(rms), 1)[0]
    assert -0.65 < slope < -0.35, rms


def test_generated_runtime_pieces_match_the_blocks():
    """rt.masked_softmax within sequences and rt.mix reproduce the finite block's per-sequence softmax mixing."""
    from dmftc.runtime import sweep as rt

    P, S, N = 3, 4, 5
    r = _rng(3)
    A = r.standard_normal((P, S, S))
    v = r.standard_normal((P, S, N))
    seq = np.kron(np.eye(P), np.ones((S, S)))
    big = np.zeros((P * S, P * S))
    for p in range(P):
        big[p * S:(p + 1) * S, p * S:(p + 1) * S] = A[p]
    Sm = rt.masked_softmax(jnp.asarray(big), jnp.asarray(seq))
    mixed = rt.mix(Sm, jnp.asarray(v.reshape(P * S, N).T))           # draws = the N coordinates
    finite = attention.mix(jnp.asarray(A)[:, None], jnp.asarray(v)[:, :, None, :])   # (P, S, N)
    np.testing.assert_allclose(np.asarray(mixed.T).reshape(P, S, N), np.asarray(finite), rtol=1e-6, atol=1e-9)
