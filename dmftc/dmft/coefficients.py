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

from ..errors import LimitError
from ..notation import size_symbol
from ..scaling.parameterization import WeightScaling, leading_power

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
    """Prefactors of a dense op's terms (see module docstring)."""
    m2, s2 = ws.multiplier**2, ws.init_std**2
    return Prefactors(
        src=m2 * s2 * fan_in, bsrc=m2 * s2 * fan_out,
        upd=ws.lr * m2 * s_hat * fan_in, bupd=ws.lr * m2 * s_hat * fan_out,
        resp=m2 * s2 * fan_in, bresp=m2 * s2 * fan_out,
        ntk=ws.lr * m2 * s_hat**2 * fan_in * fan_out,
    )


def readout_prefactors(ws: WeightScaling, fan_in: Expr) -> dict[str, Expr]:
    """Prefactors of the readout: f0 variance, update, response, top backward update, NTK."""
    s_hat = ws.multiplier * ws.init_std
    return {
        "f0": s_hat**2 * fan_in,
        "fupd": ws.multiplier**2 * ws.lr * fan_in,
        "fresp": s_hat * fan_in,
        "zupd": ws.lr * ws.multiplier / ws.init_std,
        "ntk": ws.lr * ws.multiplier**2 * fan_in,
    }


def take_limit(expr: Expr, limit: tuple[str, ...], what: str, hyper: Mapping[str, float]) -> Expr:
    """The value of a prefactor as every size in `limit` goes to infinity.

    Zero when it vanishes; raises LimitError naming `what` and the growth when it diverges.
    """
    expr = sympy.simplify(expr)
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
