"""The DMFT's intermediate representation: labelled equations, Gaussian source laws and schedule items.

The lowest layer of the derivation: blocks (`dmftc.blocks`) build these objects as their mean-field
contributions, the engine (`dmftc.dmft.walk`) assembles them into an `EquationSystem`, and the code
generator lowers them. Plain sympy objects (lhs/rhs pairs of Indexed fields, Sum, and the undefined
functions E, Response, phi, dphi of `dmftc.notation`) with their metadata in frozen dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy

Expr = sympy.Expr


@dataclass(frozen=True)
class Equation:
    """lhs = rhs for layers ell in [lo, hi] (a template in ell when lo < hi).

    kind: field | twin (a gamma0 = 0 control-variate field) | kernel | response | order (a deterministic
    equal-time order parameter) | output | error | loss | lazy.
    support: for responses, 'strict' (s < t) or 'causal' (s <= t).
    """

    label: str
    lhs: Expr
    rhs: Expr
    kind: str
    meaning: str
    layers: tuple[Expr, Expr] | None = None
    support: str | None = None


@dataclass(frozen=True)
class SourceLaw:
    """A Gaussian source: `field` ~ N(0, coefficient * covariance).

    structure: 'scalar' (one N(0,1) number per draw, constant in time and sample),
    'static' (constant in time, covariance over samples), 'dynamic' (a Gaussian process
    over (time, sample), sampled conditionally on the draw's own past).
    """

    label: str
    field: Expr
    covariance: Expr
    coefficient: Expr
    structure: str
    meaning: str
    layers: tuple[Expr, Expr] | None = None


@dataclass(frozen=True)
class Step:
    """One scheduled item: equation or source `label` evaluated at layer `layer` (an expression in ell)."""

    label: str
    layer: Expr | None = None


@dataclass(frozen=True)
class Loop:
    """A loop over ell from `start` to `stop` (inclusive, `step` +1 or -1) over `body` steps."""

    start: Expr
    stop: Expr
    step: int
    body: tuple[Step, ...]
    comment: str = ""
