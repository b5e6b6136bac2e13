"""Elementwise nonlinearities phi: one closed table shared by every stage.

Conventions (the DMFT uses the same functions: they are defined once, in the runtime's table):
- gelu is the exact x * Phi(x) = x (1 + erf(x / sqrt 2)) / 2, not the tanh approximation;
- erf is the plain error function erf(x) (no rescaling of its argument);
- quadratic is x^2; sigmoid is 1 / (1 + e^-x); linear is the identity.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Callable, Mapping

import jax

from ..errors import Unsupported
from ..runtime.closed_forms import FUNCTIONS
from ..spec.types import ACTIVATIONS as NAMES
from .meanfield import Data

KIND = "act"


#: activation name -> phi: the runtime's table (`runtime.closed_forms.FUNCTIONS`, which also holds phi'
#: and, through `pair_phi` / `phi_kernel`, the Gaussian pair expectations), so the finite networks, the
#: generated solvers and the kernel maps use one definition; the names are `spec.types.ACTIVATIONS`.
ACTIVATIONS: Mapping[str, Callable[[jax.Array], jax.Array]] = MappingProxyType(
    {name: FUNCTIONS[name][0] for name in NAMES})


def phi(fn: str) -> Callable[[jax.Array], jax.Array]:
    """The activation function named `fn`."""
    if fn not in ACTIVATIONS:
        raise Unsupported(f"activation {fn!r}", f"use one of {', '.join(sorted(ACTIVATIONS))}")
    return ACTIVATIONS[fn]


def forward(x: jax.Array, fn: str) -> jax.Array:
    """phi(x) elementwise."""
    return phi(fn)(x)


def meanfield(walk, node, x):
    """phi applied coordinate by coordinate keeps the population: the input's chain gains phi
    (its backward field gains phi' by the chain rule where the value is read)."""
    x = walk.value(x, node)
    if isinstance(x, Data):
        raise Unsupported("an activation of the raw input (the data kernel of phi(x) is not derived)",
                          "put a dense layer before the first activation")
    return x.then(("act", node.op.fn))


kernel_map = meanfield
