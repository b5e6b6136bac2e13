"""Histories of pointwise functions of fields, kept beside the fields instead of recomputed.

A step of the causal sweep contracts whole histories: E[phi(h(t)) phi(h(s))] reads phi(h) at every
slot s <= t, sum_s B(t, s) phi(h(s)) again. Printed as `phi(h[ell])`, every step would evaluate phi
on the whole history (M n_t P elements) and write it out before contracting it, although only slot t
is new. A memo keeps that history as an array of its own (`phi_h[ell]`, the same shape as `h[ell]`):
its slot t is written once, from the step's row values, when the last field it depends on gets its
row t, and every later use reads it as stored.

Only expressions of fields that share one layer index are memoised (phi(h[ell]), dphi(u[ell]) r[ell]);
a bare field is its own history, and anything that also reads a kernel (LayerNorm's h / sqrt(H)) is
printed as before.
"""

from __future__ import annotations

import keyword
from dataclasses import dataclass

import sympy

LAYER = sympy.Symbol("lambda_layer")
"""The layer index of a memo's template (instantiated at the layer of each use or write)."""


@dataclass(frozen=True)
class Memo:
    """A memoised history: its array name, template (fields at layer LAYER) and the field bases it reads."""

    name: str
    template: sympy.Expr
    bases: frozenset[str]

    def at(self, layer) -> sympy.Expr:
        """The template at a layer (a number or an expression in the loop variable ell)."""
        return self.template.xreplace({LAYER: layer})


def template(X, fields: set[str]) -> tuple[sympy.Expr, sympy.Expr] | None:
    """(template, layer) when X is a memoisable history: not a bare field, every array in it a
    field and all at one layer index. None otherwise."""
    if isinstance(X, sympy.Indexed):
        return None
    arrays = X.atoms(sympy.Indexed)
    layers = {x.indices[0] for x in arrays}
    if not arrays or any(x.base.name not in fields for x in arrays) or len(layers) != 1:
        return None
    (layer,) = layers
    tpl = X.xreplace({x: x.base[(LAYER, *x.indices[1:])] for x in arrays})
    return tpl, layer


def name_of(tpl: sympy.Expr, taken: set[str]) -> str:
    """A readable identifier for a template: its functions and field bases in order, phi(h) -> phi_h,
    dphi(u) r -> dphi_u_r; made unique against `taken`."""
    def words(e):
        if isinstance(e, sympy.Indexed):
            return [e.base.name]
        args = e.as_ordered_factors() if e.is_Mul else e.args
        head = [e.func.__name__] if isinstance(e, sympy.Function) else []
        return head + [w for a in args for w in words(a)]

    base = "_".join(words(tpl)) or "memo"
    name, k = base, 2
    while name in taken or keyword.iskeyword(name) or not name.isidentifier():
        name, k = f"{base}_{k}", k + 1
    return name


def bases_of(tpl: sympy.Expr) -> frozenset[str]:
    return frozenset(x.base.name for x in tpl.atoms(sympy.Indexed))
