"""Pooling over tokens: (..., S, n) -> (..., n).

Mean field: the mean over a sequence's tokens mixes the S positions alpha = (mu, s) of one
sequence; it keeps its input's population and hands the readout `Pooled(x)`, which carries the
1/S weights into the output and the tokens' backward fields (blocks/readout.py, eq:output.F).
An op after the pool reads the sequence mean as a field of its own (`materialize`), the same at
every position of a sequence, so the sites stay the P S positions and every later block is unchanged.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..errors import Unsupported
from ..ir import Equation
from ..notation import Seq, g, h, mu, nu, size_symbol, t
from .meanfield import Data, Pooled, Value

KIND = "pool"


def forward(h: jax.Array, mode: str = "mean") -> jax.Array:
    """The mean over the token axis (the second to last)."""
    if mode != "mean":
        raise Unsupported(f"pool mode {mode!r}", "use `pool: mean`")
    return jnp.mean(h, axis=-2)


def meanfield(walk, node, x):
    """(1/S) sum_s e(h)_(mu, s): the readout reads it as each token's share (`Pooled`)."""
    if node.op.mode != "mean":
        raise Unsupported(f"pool mode {node.op.mode!r}", "use `pool: mean`")
    x = walk.value(x, node)
    if isinstance(x, Data):
        raise Unsupported("pooling the raw input", "put a dense (embedding) layer before the pool")
    return Pooled(x)


def materialize(walk, pooled: Pooled, node) -> Value:
    """The pooled vector as a field read by a later op (dense, act, layernorm, residual):
    h_p(alpha, t) = (1/S) sum_beta Seq_(alpha beta) e(h_x(beta, t)), the same at the S positions of a
    sequence; backward g_x += e' (1/S) sum_beta Seq_(beta alpha) g_p(beta).                       eq:pool"""
    i, X, dX = walk.expression(pooled.x)
    if pooled.x.chain:  # the mixing reads a field: e(h) first gets a position of its own
        q = walk.new_field(node)
        walk.forward_item(Equation(f"eq:field.h{q}", h[q, mu, t], X, "field", "the pooled features", (q, q)))
        walk.adjoint(i, dX * g[q, mu, t])
        i = q
    S = walk.finite(size_symbol("S"))
    p = walk.new_field(node)
    walk.forward_item(Equation(f"eq:pool{p}", h[p, mu, t], walk.mix(Seq[mu, nu] * h[i, nu, t]) / S, "field",
                               "mean pooling: the mean of the sequence's tokens, at each of its positions", (p, p)))
    walk.adjoint(i, walk.mix(Seq[nu, mu] * g[p, nu, t]) / S)
    walk.pooled = True
    return Value(p)
