"""Pooling over tokens: (..., S, n) -> (..., n).

Mean field: the mean over a sequence's tokens mixes the S positions alpha = (mu, s) of one
sequence; it keeps its input's population and hands the readout `Pooled(x)`, which carries the
1/S weights into the output and the tokens' backward fields (blocks/readout.py, eq:output.F).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..errors import Unsupported
from .meanfield import Data, Pooled

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
