"""Multi-head self-attention, the finite forward pass of docs/theory.md#attention.

Per head h (coordinates h*N .. (h+1)*N - 1 of the width-H*N projections):
    q_s = m_Q W_Q hbar_s,  k_s = m_K W_K hbar_s,  v_s = m_V W_V hbar_s
    A_{s s'} = logit_scale * q_s . k_{s'}          (a sum over the N coordinates of the head)
    o_s = sum_{s'} softmax_{s'}(A_{s .})_{s'} v_{s'}   (softmax over the keys s')
heads concatenated to H*N, then out_s = m_O W_O o_s. No causal mask.

The theory notes write A_{ss'} = k_s . q_{s'}; W_K and W_Q share one scaling, so the two
conventions differ only in which of the two weights is called the key.
"""

from __future__ import annotations

from typing import Callable, Mapping

import jax
import jax.numpy as jnp

from . import dense

KIND = "attention"
#: the four weights of an attention op, in this order (weight names: `name` + "_" + part).
PARTS = ("K", "Q", "V", "O")

Tap = Callable[[str, jax.Array], jax.Array]


def _no_tap(name: str, value: jax.Array) -> jax.Array:
    return value


def split_heads(x: jax.Array, heads: int) -> jax.Array:
    """(..., S, H*N) -> (..., S, H, N)."""
    return x.reshape(*x.shape[:-1], heads, x.shape[-1] // heads)


def logits(q: jax.Array, k: jax.Array, scale: float) -> jax.Array:
    """A[..., h, s, s'] = scale * q[..., s, h, :] . k[..., s', h, :]."""
    return scale * jnp.einsum("...shn,...thn->...hst", q, k)


def mix(A: jax.Array, v: jax.Array) -> jax.Array:
    """o[..., s, h*N + n] = sum_{s'} softmax(A)[..., h, s, s'] v[..., s', h, n]."""
    o = jnp.einsum("...hst,...thn->...shn", jax.nn.softmax(A, axis=-1), v)
    return o.reshape(*o.shape[:-2], -1)


def forward(W: Mapping[str, jax.Array], hbar: jax.Array, *, heads: int, logit_scale: float,
            multipliers: Mapping[str, float], tap: Tap = _no_tap) -> jax.Array:
    """The attention output for tokens hbar (..., S, width); `tap` sees K, Q, V, logits, O."""
    k, q, v = (tap(p, dense.forward(W[p], hbar, multipliers[p])) for p in ("K", "Q", "V"))
    A = tap("logits", logits(split_heads(q, heads), split_heads(k, heads), logit_scale))
    return tap("O", dense.forward(W["O"], mix(A, split_heads(v, heads)), multipliers["O"]))
