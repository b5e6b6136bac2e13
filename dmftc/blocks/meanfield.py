"""The values a block's mean-field contribution reads and returns, and the activations as sympy functions.

In a width limit every vector of the network is, coordinate by coordinate, a draw of the single-site
process of its population (docs/theory.md#populations). The engine (`dmftc.dmft.walk`) hands each
block's `meanfield` the vector it reads as one of:

- `Data`: the network's input x_mu, whose only statistic is the data kernel Phi0 = x . x' / D;
- `Value`: a pointwise function e(h[p]) of one field h[p] of the single-site process: the chain of
  elementwise ops (activations, constant factors) applied to it since it was defined;
- `Pending`: the output of a dense layer not yet placed in a population: the op that consumes it
  decides (a residual add writes it into the stream's population; anything else opens a new one);
- `Pooled`: the mean over a sequence's tokens of a Value (pooling), which only the readout reads.

A position p is a placeholder symbol while the walk runs; the engine numbers the fields at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sympy

from ..notation import dphi, phi

Expr = sympy.Expr


@dataclass(frozen=True)
class Data:
    """The input x_mu (its kernel is the data kernel Phi0)."""


@dataclass(frozen=True)
class Value:
    """e(h[p]): the field at position `p` with `chain` applied in order.

    chain items: ("act", name) an activation, ("scale", c) a constant factor.
    """

    p: sympy.Symbol
    chain: tuple[tuple[str, Any], ...] = ()

    def then(self, *items) -> "Value":
        return Value(self.p, self.chain + tuple(items))

    @property
    def activations(self) -> tuple[str, ...]:
        return tuple(a for k, a in self.chain if k == "act")


@dataclass(frozen=True)
class Pending:
    """A dense layer's output before it is placed: weight `weight` (op `node`) applied to `x`."""

    node: Any
    weight: str
    x: Data | Value
    scale: Expr = sympy.Integer(1)


@dataclass(frozen=True)
class Pooled:
    """(1/S) sum_s e(h[p])_(mu, s): a Value averaged over the S tokens of each sequence."""

    x: Value


class Activations:
    """phi, phi' of the activations a system uses, as sympy functions of the field they act on.

    With one nonlinear activation in the network they are `notation.phi` and `dphi` (the solver
    module binds them to it); with several, phi_<name> and dphi_<name>. linear is the identity.
    """

    def __init__(self, names):
        self.names = tuple(sorted(set(names) - {"linear"}))
        self.single = len(self.names) <= 1

    @property
    def label(self) -> str:
        """The system's ACTIVATION: the one nonlinear activation, 'linear' for none, 'mixed' for several."""
        return self.names[0] if len(self.names) == 1 else ("linear" if not self.names else "mixed")

    def pair(self, name: str):
        if name == "linear":
            return (lambda x: x), (lambda x: sympy.Integer(1))
        if self.single:
            return phi, dphi
        return sympy.Function(f"phi_{name}"), sympy.Function(f"dphi_{name}")

    def apply(self, chain, x: Expr) -> Expr:
        """e(x) for a Value's chain."""
        for kind, arg in chain:
            x = self.pair(arg)[0](x) if kind == "act" else arg * x
        return x

    def derivative(self, chain, x: Expr) -> Expr:
        """e'(x) by the chain rule."""
        d = sympy.Integer(1)
        for kind, arg in chain:
            if kind == "act":
                f, df = self.pair(arg)
                d, x = d * df(x), f(x)
            else:
                d, x = d * arg, arg * x
        return d


#: lazy-limit maps of a covariance: its normalisation K_mn / sqrt(K_mm K_nn) (LayerNorm of a Gaussian) and
#: the factor 1 / sqrt(K_mm K_nn) its gradient kernel takes
Normalized = sympy.Function("Normalized")
InvScale = sympy.Function("InvScale")
#: the argument of a chain's function inside a Gaussian kernel map GaussPhi(Sigma, e(x_))
x_ = sympy.Symbol("x_")
