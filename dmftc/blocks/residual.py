"""Residual block: h <- h + scale * branch(h) (docs/theory.md#depth-scaling; scale beta0 / L^alpha_L)."""

from __future__ import annotations

from typing import Callable

import jax

KIND = "residual"

Tap = Callable[[str, jax.Array], jax.Array]


def _no_tap(name: str, value: jax.Array) -> jax.Array:
    return value


def forward(h: jax.Array, branch: Callable[[jax.Array], jax.Array], scale: float,
            tap: Tap = _no_tap) -> jax.Array:
    """h + scale * branch(h); `tap("branch", .)` sees the scaled branch output."""
    return h + tap("branch", scale * branch(h))
