"""Pooling over tokens: (..., S, n) -> (..., n)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..errors import Unsupported

KIND = "pool"


def forward(h: jax.Array, mode: str = "mean") -> jax.Array:
    """The mean over the token axis (the second to last)."""
    if mode != "mean":
        raise Unsupported(f"pool mode {mode!r}", "use `pool: mean`")
    return jnp.mean(h, axis=-2)
