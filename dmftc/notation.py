"""The shared vocabulary: sympy symbols for sizes and hyperparameters.

Every stage builds symbols through these two functions, so the same name is
always the same sympy object (all positive, so powers and logs simplify), and
substitution of finite values works across stages.
"""

from __future__ import annotations

import functools

import sympy

#: size symbols with a meaning in the theory (THEORY.md); a spec may declare others.
SIZE_MEANINGS = {
    "N": "width (key/query/value dimension per head in attention)",
    "H": "number of attention heads",
    "L": "depth: hidden layers or residual blocks",
    "S": "tokens per sequence",
    "P": "number of training inputs",
    "D": "input dimension",
}

#: data sizes: always declared, finite, set by the data.
DATA_SIZES = ("P", "D", "S")


@functools.cache
def size_symbol(name: str) -> sympy.Symbol:
    """The size symbol `name` (positive integer)."""
    return sympy.Symbol(name, positive=True, integer=True)


@functools.cache
def hyper_symbol(name: str) -> sympy.Symbol:
    """The hyperparameter symbol `name` (positive real)."""
    return sympy.Symbol(name, positive=True)
