"""Size prefactors of the DMFT terms, computed from the exponent table, and their limits.

For a dense op y = m W x (W entries of std s, GD step lam, fan-in n_in, fan-out n_out)
with the readout's scale s_hat = m_read * s_read normalising backward fields
(g = (df/dh) / s_hat, so g = gamma0 N df/dh in muP), the terms of docs/theory.md#populations carry:

    forward source  u = m W(0) x          covariance   m^2 s^2 n_in  Phi_x
    backward source r = m W(0)^T g_y      covariance   m^2 s^2 n_out G_y
    forward update  Delta W x              lam m^2 s_hat n_in  sum Delta g Phi_x
    backward update Delta W^T g            lam m^2 s_hat n_out sum Delta G_y x
    forward response (Onsager)             m^2 s^2 n_in  <d x / d r>
    backward response                      m^2 s^2 n_out <d g_y / d u>
    NTK contribution (lazy limit)          lam m^2 s_hat^2 n_in n_out G_y * Phi_x

and the readout f = m_read w . x: output variance at init s_hat^2 n Phi, readout update
m_read^2 lam n sum Delta Phi, readout response s_hat n <d x / d r>, top backward update
lam m_read / s_read. A term survives the limit when its prefactor tends to a finite
non-zero value, vanishes when it tends to zero; a divergent prefactor is an ill-posed limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import sympy

from ..blocks import dense as dense_block
from ..blocks import readout as readout_block
from ..errors import LimitError
from ..notation import as_expr, size_symbol
from ..scaling.parameterization import WeightScaling, leading_power
from ..spec.types import Spec

Expr = sympy.Expr


@dataclass(frozen=True)
class Prefactors:
    """The term prefactors of one weight, before the limit."""

    src: Expr
    bsrc: Expr
    upd: Expr
    bupd: Expr
    resp: Expr
    bresp: Expr
    ntk: Expr


def dense_prefactors(ws: WeightScaling, fan_in: Expr, fan_out: Expr, s_hat: Expr) -> Prefactors:
    """Prefactors of a dense op's terms: the dense block's table (`blocks.dense.prefactors`)."""
    return Prefactors(**dense_block.prefactors(ws.multiplier, ws.init_std, ws.lr, fan_in, fan_out, s_hat))


def readout_prefactors(ws: WeightScaling, fan_in: Expr) -> dict[str, Expr]:
    """Prefactors of the readout: f0 variance, update, response, top backward update, NTK (`blocks.readout`)."""
    return readout_block.prefactors(ws.multiplier, ws.init_std, ws.lr, fan_in)


def take_limit(expr: Expr, limit: tuple[str, ...], what: str, hyper: Mapping[str, float]) -> Expr:
    """The value of a prefactor as every size in `limit` goes to infinity.

    Zero when it vanishes; raises LimitError naming `what` and the growth when it diverges. Hypers in
    exponents (alpha_A, alpha_L) are numbers here: whether the limit exists depends on them.
    """
    expr = as_expr(expr)
    fixed = {x for pw in expr.atoms(sympy.Pow) for x in pw.exp.free_symbols if x.name in hyper}
    expr = sympy.simplify(expr.subs({x: sympy.nsimplify(hyper[x.name]) for x in fixed}))
    for name in limit:
        n = size_symbol(name)
        p = leading_power(expr, n)
        p_val = p.subs({sympy.Symbol(k, positive=True): v for k, v in hyper.items()})
        if not p_val.is_number:
            raise LimitError(f"cannot decide how {what} scales with {name}: power {p}")
        if p_val > 0:
            raise LimitError(
                f"{what} grows as {name}^{sympy.nsimplify(p_val)} (prefactor {expr}): the {name} -> infinity "
                f"limit is ill-posed; scale the learning rate or multiplier of that weight by "
                f"{name}^{-sympy.nsimplify(p_val)} more, or use the mup preset")
        if p_val < 0:
            return sympy.Integer(0)
        expr = sympy.limit(expr, n, sympy.oo) if expr.has(n) else expr
    return sympy.simplify(expr)


#: the layer-time step d tau = 1 / K of the depth grid (docs/theory.md#depth)
DTAU = sympy.Symbol("dtau", positive=True)


def depth_limit(expr: sympy.Expr, spec: Spec, what: str) -> sympy.Expr:
    """A block term's prefactor as L -> infinity, in units of the layer-time step d tau = 1 / L.

    The other limits are taken first. A prefactor ~ L^-1 survives as c d tau: an integral over
    tau for update and response terms, a Brownian increment for a source variance; ~ L^p with
    p < -1 vanishes (e.g. the random branches at alpha_L = 1); p > -1 diverges.
    """
    others = tuple(n for n in spec.limit if n != "L")
    expr = take_limit(expr, others, what, spec.hyper) if others else sympy.simplify(expr)
    L = size_symbol("L")
    # hypers in exponents (alpha_L) are fixed numbers here: the limit's existence depends on them
    in_exponents = {x for pw in expr.atoms(sympy.Pow) for x in pw.exp.free_symbols if x.name in spec.hyper}
    expr = expr.subs({x: sympy.nsimplify(spec.hyper[x.name]) for x in in_exponents})
    p = leading_power(expr, L)
    if p > -1:
        raise LimitError(f"{what} summed over the L blocks grows as L^{sympy.nsimplify(p + 1)} (prefactor {expr}): "
                         f"the depth limit is ill-posed; use a branch scale beta0 / L**alpha_L with alpha_L in "
                         f"[1/2, 1] and the depth_mup or completep preset")
    if p < -1:
        return sympy.Integer(0)
    return sympy.simplify(sympy.limit(expr * L, L, sympy.oo)) * DTAU
