"""Lowering: each scheduled equation of an EquationSystem -> a few lines of JAX.

The lowering is by the shape of the sympy expression, not by the equation's name:
  Sum over (nu, s < t or s <= t) of coefficient * arrays * field   -> rt.causal_sum (einsum, causal mask)
  Sum with no per-draw field                                        -> rt.causal_sum_det
  E[X(t) X(s)]                                                      -> rt.kernel_row (row t of a kernel)
  E[Response(F(t), source(s))]                                      -> rt.ibp_row (Gaussian integration by parts)
  E[Response(F(t), scalar source)]                                  -> rt.expect(w, xi * F) (Stein, unit variance)
  anything else                                                     -> the strict pointwise printer
Responses use a control variate: F minus its value with every field replaced by its
source (the gamma0 = 0 process), whose response vanishes exactly in expectation.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy

from ..dmft.system import Equation, EquationSystem, SourceLaw, Step
from ..errors import CodegenError
from ..notation import Delta, as_expr, ell, mu, nu, s, t
from .printer import FIELDS, pycode

KERNELS = ("Phi", "G", "H", "A", "B")


@dataclass(frozen=True)
class Stmt:
    """Lowered code of one scheduled equation: its label and source lines (no indentation)."""

    label: str
    lines: tuple[str, ...]
    comment: str


class Lowerer:
    """Lowers the equations of one system (holds only the system and the hyper names)."""

    def __init__(self, system: EquationSystem, hyper: tuple[str, ...]):
        self.sys = system
        self.hyper = hyper

    # ---------------------------------------------------------- entry points
    def step(self, st: Step, loop: tuple[int, int] | None) -> Stmt | None:
        """Lower one scheduled step; inside a loop over ell in [lo, hi] (given as `loop`), guard the
        template's layer range only where it does not hold for the whole loop (None: never runs)."""
        item = self.sys.get(st.label)
        at = as_expr(st.layer) if st.layer is not None else ell
        if isinstance(item, SourceLaw):
            return self._source(item, at)
        eq = _at_layer(item, at)
        lower = {"field": self._field, "kernel": self._kernel, "response": self._response,
                 "output": self._output, "error": self._error, "lazy": self._lazy}[eq.kind]
        lines = lower(eq)
        guard = self._guard(item, at, loop) if loop else None
        if guard is False:
            return None
        if guard:
            lines = (f"if {guard}:", *("    " + ln for ln in lines))
        return Stmt(item.label, tuple(lines), f"{item.label}: {_pretty(eq)}")

    def _guard(self, item, at, loop) -> str | bool | None:
        """A condition keeping a template inside its layer range: None if always true, False if never."""
        if item.layers is None or not at.has(ell):
            return None
        lo, hi = (int(x) for x in item.layers)
        first, last = sorted(int(at.subs(ell, v)) for v in loop)
        if lo <= first and last <= hi:
            return None
        if last < lo or first > hi:
            return False
        return f"{lo} <= {pycode(at)} <= {hi}"

    # ---------------------------------------------------------- sources
    def _source(self, src: SourceLaw, at) -> Stmt:
        fld = src.field.subs(ell, at)
        base, layer = fld.base.name, pycode(fld.indices[0])
        key = f'("{base}", {layer})'
        coef = pycode(src.coefficient, hyper=self.hyper)
        if src.structure == "scalar":
            lines = (f"{base}_t[{layer}] = jnp.broadcast_to(xi[{key}], (M, P))",)
        elif src.structure == "static":
            lines = (f"{base}_t[{layer}] = xi[{key}] @ static[{key}].T",)
        else:
            cov = src.covariance.subs(ell, at)
            kern = f"{cov.base.name}[{pycode(cov.indices[0])}]"
            lines = (f"fac[{key}] = rt.grow_factor(fac[{key}], {coef} * rt.flat({kern}), t, P, rcond)",
                     f"{base}_t[{layer}] = rt.sample_row(fac[{key}], xi[{key}], t, P)")
        lines += (f"{base}[{layer}] = {base}[{layer}].at[:, t].set({base}_t[{layer}])",)
        return Stmt(src.label, lines, f"{src.label}: {src.field} ~ N(0, {src.coefficient} {src.covariance})")

    # ---------------------------------------------------------- equations
    def _field(self, eq: Equation) -> tuple[str, ...]:
        name, layer = eq.lhs.base.name, pycode(eq.lhs.indices[0])
        rhs = self._expr(eq.rhs)
        return (f"{name}_t[{layer}] = {rhs}", f"{name}[{layer}] = {name}[{layer}].at[:, t].set({name}_t[{layer}])")

    def _kernel(self, eq: Equation) -> tuple[str, ...]:
        name, layer = eq.lhs.base.name, pycode(eq.lhs.indices[0])
        (arg,) = eq.rhs.args
        left, right = _split_times(arg)
        row = f"rt.kernel_row(w, {pycode(left, 'now', self.hyper)}, {pycode(right, 'hist', self.hyper)}, t)"
        exact = self._exact_lazy_row(left)
        if exact is not None:
            # control variate: E[X X'] = E[X X' - X0 X0'] + E[X0 X0'] exactly (X0 the gamma0 = 0 part)
            l0, r0 = self._lazy_part(left), self._lazy_part(right)
            row += (f" - rt.kernel_row(w, {pycode(l0, 'now', self.hyper)}, {pycode(r0, 'hist', self.hyper)}, t)"
                    f" + {exact}")
        return (f"{name}[{layer}] = rt.set_kernel_row({name}[{layer}], {row}, t)",)

    def _exact_lazy_row(self, X) -> str | None:
        """Row t of E[X0(t) X0(s)] in closed form, when X0 factors into one function per independent source.

        phi(u), dphi(u) -> the pairwise Gaussian maps of the activation; a bare source -> its covariance.
        None when X0 has another shape (then the kernel is a plain Monte Carlo average).
        """
        parts = []
        for fac in sympy.Mul.make_args(self._lazy_part(X)):
            if isinstance(fac, sympy.Indexed) and fac.base.name in ("u", "r"):
                parts.append((fac, "rt.cov_gauss_row({cov}, t, P)"))
            elif (isinstance(fac, sympy.Function) and fac.func.__name__ in ("phi", "dphi")
                  and isinstance(fac.args[0], sympy.Indexed) and fac.args[0].base.name in ("u", "r")):
                pair = "cf.pair_phi(ACTIVATION)" if fac.func.__name__ == "phi" else "cf.pair_dphi(ACTIVATION)"
                parts.append((fac.args[0], f"rt.gauss_row({pair}, {{cov}}, t, P)"))
            else:
                return None
        keys = [(src.base.name, src.indices[0]) for src, _ in parts]
        if len(set(keys)) != len(keys):
            return None   # two functions of one source: no product formula
        return " * ".join(tpl.format(cov=f'cov(("{b}", {pycode(lay)}))') for (b, lay), (_, tpl) in zip(keys, parts))

    def _response(self, eq: Equation) -> tuple[str, ...]:
        name, layer = eq.lhs.base.name, pycode(eq.lhs.indices[0])
        (resp,) = eq.rhs.args
        F, src = resp.args
        key = f'("{src.base.name}", {pycode(src.indices[0])})'
        strict = "True" if eq.support == "strict" else "False"
        cv = self._control_variate(F)
        return (f"{name}[{layer}] = {name}[{layer}].at[t].set(rt.ibp_row(w, {cv}, xi[{key}], fac[{key}], t, P, "
                f"strict={strict}))",)

    def _output(self, eq: Equation) -> tuple[str, ...]:
        return (f"f_t = {self._expr(eq.rhs)}", "f = f.at[t].set(f_t)")

    def _error(self, eq: Equation) -> tuple[str, ...]:
        return (f"Delta_t = {pycode(eq.rhs, 'now', self.hyper)}", "Delta = Delta.at[t].set(Delta_t)")

    def _lazy(self, eq: Equation) -> tuple[str, ...]:
        rhs = eq.rhs
        lhs = pycode(eq.lhs, "matrix", self.hyper)
        return (f"{lhs} = {self._matrix(rhs)}",)

    def loss(self, eq: Equation) -> str:
        """The loss: sums over samples become jnp.sum over the last axis of trajectories (n_t, P)."""
        parts = []
        for fac in sympy.Mul.make_args(eq.rhs):
            if isinstance(fac, sympy.Sum):
                (v, lo, hi), = fac.limits
                if v != mu:
                    raise CodegenError(f"cannot lower loss sum over {v}")
                parts.append(f"jnp.sum({pycode(fac.function, 'traj', self.hyper)}, axis=-1)")
            else:
                parts.append(f"({pycode(fac, 'now', self.hyper)})")
        return " * ".join(parts)

    # ---------------------------------------------------------- expressions
    def _expr(self, e) -> str:
        """Pointwise code around the structured nodes (sums, responses), recursively through + and *."""
        if isinstance(e, sympy.Sum):
            return self._sum(e)
        if not (e.has(sympy.Sum) or _has_expect(e)):
            return pycode(e, "now", self.hyper)
        if e.is_Add:
            return " + ".join(self._expr(a) for a in e.args)
        if e.is_Mul and not _has_expect(e):
            return " * ".join(f"({self._expr(a)})" for a in e.args)
        return self._scalar_response(e)

    def _sum(self, S: sympy.Sum) -> str:
        (v1, lo1, hi1), (v2, lo2, hi2) = S.limits
        if (v1, v2) != (nu, s) or lo2 != 0 or hi2 not in (t - 1, t):
            raise CodegenError(f"cannot lower sum {S}: expected a sum over nu and s <= t")
        strict = hi2 == t - 1
        groups: dict[sympy.Expr, list[sympy.Expr]] = {}
        for mono in sympy.Add.make_args(sympy.expand(S.function)):
            fld = [f for f in sympy.Mul.make_args(mono) if _is_field(f)]
            if len(fld) > 1:
                raise CodegenError(f"cannot lower {mono}: more than one per-draw field in a product")
            key = fld[0] if fld else Delta[nu, s]
            groups.setdefault(key, []).append(mono / key)
        out = []
        for X, coefs in groups.items():
            C = " + ".join(self._coef_array(c) for c in coefs)
            if _is_field(X):
                out.append(f"rt.causal_sum({C}, {pycode(X, 'hist', self.hyper)}, t, strict={strict})")
            else:
                out.append(f"rt.causal_sum_det({C}, Delta, t, strict={strict})")
        return " + ".join(out)

    def _coef_array(self, c) -> str:
        """A deterministic coefficient over (mu, s, nu) as a broadcastable array expression."""
        scal, arrays = [], []
        for fac in sympy.Mul.make_args(c):
            if isinstance(fac, sympy.Indexed):
                arrays.append(_broadcast(fac))
            else:
                scal.append(fac)
        head = pycode(sympy.Mul(*scal), "now", self.hyper)
        if not arrays:
            return f"jnp.full((1, 1, 1), {head})"
        return " * ".join(([head] if head != "1" else []) + arrays)

    def _scalar_response(self, term) -> str:
        coef, resp = [], None
        for fac in sympy.Mul.make_args(term):
            if _has_expect(fac):
                resp = fac.args[0]
            else:
                coef.append(fac)
        F, src = resp.args
        key = f'("{src.base.name}", {pycode(src.indices[0])})'
        head = pycode(sympy.Mul(*coef), "now", self.hyper)
        return f"{head} * rt.expect(w, xi[{key}] * ({self._control_variate(F)}))"

    def _control_variate(self, F) -> str:
        F0 = self._lazy_part(F)
        return f"{pycode(F, 'now', self.hyper)} - {pycode(F0, 'now', self.hyper)}"

    def _lazy_part(self, e):
        """e with every field replaced by its gamma0 = 0 part (the system's `lazy_parts` templates)."""
        parts = self.sys.lazy_parts

        def rule(x):
            tpl = parts[x.base.name]
            idx = tuple(x.indices) + (None,) * (3 - len(x.indices))
            sub = {ell: idx[0], mu: idx[1] if idx[1] is not None else mu, t: idx[2] if idx[2] is not None else t}
            return tpl.subs(sub, simultaneous=True)
        return e.replace(lambda x: isinstance(x, sympy.Indexed) and x.base.name in parts, rule)

    def _matrix(self, e) -> str:
        if isinstance(e, sympy.Sum):
            (v, lo, hi), = e.limits
            return (f"sum(({self._matrix(e.function)} for {v} in range({pycode(lo, hyper=self.hyper)}, "
                    f"{pycode(hi, hyper=self.hyper)} + 1)), jnp.zeros((P, P), dtype))")
        if e.is_Add:
            return " + ".join(f"({self._matrix(a)})" for a in e.args)
        if e.is_Mul:
            return " * ".join(f"({self._matrix(a)})" for a in e.args)
        if isinstance(e, sympy.Function) and e.func.__name__ in ("GaussPhi", "GaussDPhi"):
            fn = "phi_kernel" if e.func.__name__ == "GaussPhi" else "dphi_kernel"
            return f"cf.{fn}(ACTIVATION, {pycode(e.args[0], 'matrix', self.hyper)})"
        return pycode(e, "matrix", self.hyper)


# ---------------------------------------------------------- helpers
def _at_layer(eq: Equation, at) -> Equation:
    """The template instantiated at ell = `at` (a number or an expression in the loop variable ell)."""
    if eq.layers is None:
        return eq
    sub = {ell: at}
    return Equation(eq.label, eq.lhs.subs(sub), eq.rhs.subs(sub), eq.kind, eq.meaning, eq.layers, eq.support)


def _split_times(arg):
    """E[X(t) X(s)] -> (X at t, X at s)."""
    facs = sympy.Mul.make_args(arg)
    now = [f for f in facs if _time_of(f) == t]
    past = [f for f in facs if _time_of(f) == s]
    if len(now) != 1 or len(past) != 1:
        raise CodegenError(f"cannot lower kernel E[{arg}]: expected X(t) X(s)")
    return now[0], past[0]


def _time_of(e):
    for x in e.atoms(sympy.Indexed):
        return x.indices[-1]
    return None


def _is_field(e) -> bool:
    return any(x.base.name in FIELDS for x in e.atoms(sympy.Indexed))


def _has_expect(e) -> bool:
    return any(getattr(f, "func", None) is not None and f.func.__name__ == "E" for f in e.atoms(sympy.Function))


def _broadcast(x: sympy.Indexed) -> str:
    """A deterministic array indexed by some of (mu, nu, t, s) as an array over (mu, s, nu)."""
    base, idx = x.base.name, x.indices
    if base == "Delta" and tuple(idx) == (nu, s):
        return "Delta[None]"
    if base == "Phi0" and tuple(idx) == (mu, nu):
        return "Phi0[:, None, :]"
    if base in KERNELS and tuple(idx[1:]) == (mu, nu, t, s):
        return f"{base}[{pycode(idx[0])}][t]"
    raise CodegenError(f"cannot broadcast {x} over (mu, s, nu)")


def _pretty(eq: Equation) -> str:
    return f"{sympy.sstr(eq.lhs)} = {sympy.sstr(eq.rhs)}"
