"""A strict sympy -> JAX printer for the pointwise parts of DMFT equations.

Indexed objects print as the solver's arrays; which array depends on the mode:
'now' (a field at the current time t: h[ell, mu, t] -> h_t[ell], shape (M, P)),
'hist' (a field's history h[ell, nu, s] -> h[ell], shape (M, n_t, P)), 'matrix'
(equal-time kernels of the lazy limit: Sigma[ell, mu, nu] -> Sigma[ell]), and
'traj' (trajectories f[mu, t] -> f, shape (n_t, P)). Anything without a rule is an
error, never silent Python (sympy's own JaxPrinter maps erf to math.erf, which fails
under jit: special functions go through the one table below).
"""

from __future__ import annotations

import sympy
from sympy.printing.numpy import JaxPrinter

from ..errors import CodegenError
from ..notation import as_expr, hyper_symbol, size_symbol

FIELDS = ("h", "z", "g", "u", "r")
#: sympy function name -> JAX spelling: the one closed table.
FUNCTIONS = {"phi": "phi", "dphi": "dphi", "exp": "jnp.exp", "log": "jnp.log", "sqrt": "jnp.sqrt",
             "erf": "jax.scipy.special.erf", "tanh": "jnp.tanh"}


class DmftPrinter(JaxPrinter):
    """JaxPrinter with the solver's array names for Indexed objects; strict."""

    printmethod = "_dmftc_jax"

    def __init__(self, mode: str = "now", hyper: tuple[str, ...] = ()):
        super().__init__({"strict": True, "fully_qualified_modules": False})
        self.mode = mode
        self.hyper = set(hyper)

    def _print_Symbol(self, expr):
        if expr.name in self.hyper or expr.name == "dtau":
            return f'hp["{expr.name}"]'
        if expr.name in ("P", "ell", "t", "L"):
            return expr.name
        raise CodegenError(f"no array or parameter for symbol {expr.name!r} in generated code")

    def _print_Indexed(self, expr):
        base = expr.base.name
        idx = expr.indices
        if base in FIELDS:
            layer = self._layer(idx[0])
            # scalar sources r[L] and static ones u[1, mu] keep a history too (constant in time)
            return f"{base}_t[{layer}]" if self.mode == "now" else f"{base}[{layer}]"
        if base in ("Sigma", "PhiK", "PhiD", "GK"):
            return f"{base}[{self._layer(idx[0])}]"
        if base in ("Phi0", "K", "Sigmaf"):
            return base
        if base == "y":
            return "y"
        if base in ("f", "Delta"):
            return base if self.mode == "traj" else f"{base}_t"
        raise CodegenError(f"no array for {expr} in mode {self.mode!r}")

    def _layer(self, e) -> str:
        return self.doprint(e) if isinstance(e, sympy.Basic) and not e.is_Integer else str(int(e))

    def _print_Function(self, expr):
        name = expr.func.__name__
        if name in FUNCTIONS:
            return f"{FUNCTIONS[name]}({', '.join(self._print(a) for a in expr.args)})"
        raise CodegenError(f"no JAX spelling for function {name!r}; known: {sorted(FUNCTIONS)}")

    def _print_Pow(self, expr, rational=False):
        if expr.exp == -1:
            return f"1 / {self.parenthesize(expr.base, 100)}"
        return super()._print_Pow(expr, rational=rational)

    def _print_erf(self, expr):
        return f"jax.scipy.special.erf({self._print(expr.args[0])})"


def pycode(expr, mode: str = "now", hyper: tuple[str, ...] = ()) -> str:
    """Print `expr` as JAX code in `mode` (see module docstring)."""
    return DmftPrinter(mode, hyper).doprint(as_expr(expr))


__all__ = ["DmftPrinter", "pycode", "hyper_symbol", "size_symbol"]
