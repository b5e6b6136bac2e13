"""A strict sympy -> JAX printer for the pointwise parts of DMFT equations.

Indexed objects print as the solver's arrays; which array depends on the mode:
'now' (a field at the current time t: h[ell, mu, t] -> h_t[ell], shape (M, P)),
'hist' (a field's history h[ell, nu, s] -> h[ell], flat (M, n) over i = s * P + nu), 'matrix'
(equal-time kernels of the lazy limit: Sigma[ell, mu, nu] -> Sigma[ell]), and
'traj' (trajectories f[mu, t] -> f, shape (n_t, P)) and 'det' (equal-time deterministic matrices of
attention: Sm[ell, mu, nu, t] -> Sm[ell][t], Sm[ell, nu, mu, t] -> its transpose). Anything without a rule is an
error, never silent Python (sympy's own JaxPrinter maps erf to math.erf, which fails
under jit: special functions go through the one table below).
"""

from __future__ import annotations

import re

import sympy
from sympy.printing.numpy import JaxPrinter

from ..errors import CodegenError
from ..notation import as_expr, hyper_symbol, size_symbol
from ..spec.types import ACTIVATIONS

FIELDS = ("h", "z", "g", "u", "r")
#: equal-time deterministic order parameters: attention's (block, mu, nu, t) and LayerNorm's C (block, mu, t).
ORDER = ("Lam", "Sm", "Mm", "Dm", "C", "Mln", "Vln", "Cg")
#: sympy function name -> JAX spelling: the one closed table.
FUNCTIONS = {"phi": "phi", "dphi": "dphi", "exp": "jnp.exp", "log": "jnp.log", "sqrt": "jnp.sqrt",
             "erf": "jax.scipy.special.erf", "tanh": "jnp.tanh", "Sigmoid": "jax.nn.sigmoid",
             "Softplus": "jax.nn.softplus"}


#: an activation of a system with several, phi_<name> / dphi_<name>: the module binds each (emit's header)
_ACT_FUNCTION = re.compile(rf"d?phi_({'|'.join(ACTIVATIONS)})")


class DmftPrinter(JaxPrinter):
    """JaxPrinter with the solver's array names for Indexed objects; strict."""

    printmethod = "_dmftc_jax"

    def __init__(self, mode: str = "now", hyper: tuple[str, ...] = (), fields: tuple[str, ...] = FIELDS,
                 per_head: tuple[str, ...] = ()):
        super().__init__({"strict": True, "fully_qualified_modules": False})
        self.mode = mode
        self.hyper = set(hyper)
        self.fields = set(fields)
        self.per_head = set(per_head)

    def _print_Symbol(self, expr):
        if expr.name in self.hyper or expr.name == "dtau":
            return f'hp["{expr.name}"]'
        if expr.name in ("P", "ell", "t", "L", "S", "x_"):
            return expr.name
        raise CodegenError(f"no array or parameter for symbol {expr.name!r} in generated code")

    def _print_Indexed(self, expr):
        base = expr.base.name
        idx = expr.indices
        if base in self.fields:
            layer = self._layer(idx[0])
            # scalar sources r[L] and static ones u[1, mu] keep a history too (constant in time)
            return f"{base}_t[{layer}]" if self.mode == "now" else f"{base}[{layer}]"
        if base in ("Sigma", "PhiK", "PhiD", "GK"):
            return f"{base}[{self._layer(idx[0])}]"
        if base in ("Phi0", "K", "Sigmaf", "Seq"):
            return base
        if len(idx) == 5 and idx[1] == idx[2] and idx[3] == idx[4]:
            if self.mode == "hist":
                return f"rt.diag_all({base}[{self._layer(idx[0])}])"          # K_{nu nu}(s, s) over all s
            return f"rt.diag_now({base}[{self._layer(idx[0])}], {self._print(idx[3])})"   # K_{mu mu}(t, t)
        if base in ORDER and len(idx) == 3:
            return f"{base}[{self._layer(idx[0])}][t]"
        if base in self.per_head and self.mode == "det":
            # one matrix per head draw, current time: (M, PS, PS)
            arr = f"{base}[{self._layer(idx[0])}]"
            return arr if str(idx[1]) == "mu" else f"jnp.swapaxes({arr}, -1, -2)"
        if (base in ORDER or base.rstrip("0") in ORDER) and self.mode == "det":
            mu_, nu_ = (str(i) for i in idx[1:3])
            arr = f"{base}[{self._layer(idx[0])}][t]"
            return arr if mu_ == "mu" else f"{arr}.T"
        if base in ("ftok", "F"):
            return base if self.mode == "traj" else f"{base}_t"
        if base == "y":
            return "y"
        if base in ("wtrain", "wtest"):
            return base
        if base == "adec":   # the training setup's arrays (dmftc.training), over steps
            return f"adec[{self._print(idx[0])}]"
        if base == "Omega":
            return "Omega" if self.mode == "traj" else f"Omega[{self._print(idx[0])}]"
        if base in ("f", "Delta"):
            return base if self.mode == "traj" else f"{base}_t"
        raise CodegenError(f"no array for {expr} in mode {self.mode!r}")

    def _layer(self, e) -> str:
        return self.doprint(e) if isinstance(e, sympy.Basic) and not e.is_Integer else str(int(e))

    def _print_Function(self, expr):
        name = expr.func.__name__
        if name in FUNCTIONS or _ACT_FUNCTION.fullmatch(name):
            return f"{FUNCTIONS.get(name, name)}({', '.join(self._print(a) for a in expr.args)})"
        raise CodegenError(f"no JAX spelling for function {name!r}; known: {sorted(FUNCTIONS)}")

    def _print_Pow(self, expr, rational=False):
        if expr.exp == -1:
            return f"1 / {self.parenthesize(expr.base, 100)}"
        if expr.exp == sympy.S.Half:
            return f"jnp.sqrt({self._print(expr.base)})"
        if expr.exp == -sympy.S.Half:
            return f"1 / jnp.sqrt({self._print(expr.base)})"
        return super()._print_Pow(expr, rational=rational)

    def _print_erf(self, expr):
        return f"jax.scipy.special.erf({self._print(expr.args[0])})"


def pycode(expr, mode: str = "now", hyper: tuple[str, ...] = (), fields: tuple[str, ...] = FIELDS,
           per_head: tuple[str, ...] = ()) -> str:
    """Print `expr` as JAX code in `mode` (see module docstring); `fields` are the per-draw bases,
    `per_head` the order parameters held per head draw at the current time (H -> oo)."""
    return DmftPrinter(mode, hyper, fields, per_head).doprint(as_expr(expr))


__all__ = ["DmftPrinter", "pycode", "hyper_symbol", "size_symbol"]
