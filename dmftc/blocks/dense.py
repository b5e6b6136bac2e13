"""Dense layer: the finite forward pass y = multiplier * W x.

W has shape (fan_out, fan_in); x carries any leading axes (samples, tokens), so
the same function serves flat inputs (P, fan_in) and token sequences (P, S, fan_in).
The multiplier is the parameterization's (`dmftc.scaling.parameterization`), e.g.
1 / sqrt(fan_in) for mup and ntk (docs/theory.md#width-presets).
"""

from __future__ import annotations

import jax

KIND = "dense"


def forward(W: jax.Array, x: jax.Array, multiplier: float) -> jax.Array:
    """h = multiplier * W x over the last axis of x."""
    return multiplier * (x @ W.T)
