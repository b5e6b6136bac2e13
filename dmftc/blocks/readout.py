"""Scalar readout: f = multiplier * w . h, with w of shape (1, fan_in).

For mup the multiplier is 1 / (gamma0 N) (times L^(1/2 - alpha_L) in residual networks);
for ntk 1 / sqrt(N) (docs/spec.md#what-the-presets-resolve-to).
"""

from __future__ import annotations

import jax

KIND = "readout"


def forward(w: jax.Array, h: jax.Array, multiplier: float) -> jax.Array:
    """f = multiplier * h . w[0]: one number per sample."""
    return multiplier * (h @ w[0])
