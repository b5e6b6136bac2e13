"""Lowering: each scheduled equation of an EquationSystem -> a few lines of JAX.

The lowering is by the shape of the sympy expression, not by the equation's name:
  Sum over (nu, s < t or s <= t) of coefficient * arrays * field   -> rt.causal_sum (einsum, causal mask)
  Sum with no per-draw field                                        -> rt.causal_sum_det
  E[X(t) X(s)]                                                      -> rt.kernel_row (row t of a kernel)
  E[Response(F(t), source(s))]                                      -> rt.ibp_row (Gaussian integration by parts)
  E[Response(F(t), scalar source)]                                  -> rt.expect(w, xi * F) (Stein, unit variance)
  Sum over nu alone of a deterministic matrix * field (token mixing)  -> rt.mix
  equal-time E[X_mu(t) Y_nu(t)] / E[X_mu(t) Y_mu(t)] (order kind)    -> rt.cross_now / rt.expect
  anything else                                                     -> the strict pointwise printer
Responses use a control variate: F minus its value with every field replaced by its
source (the gamma0 = 0 process), whose response vanishes exactly in expectation.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy

from ..dmft.system import Equation, EquationSystem, SourceLaw, Step
from ..errors import CodegenError
from ..notation import Delta, as_expr, ell, kappa, mu, nu, s, t
from . import memo
from .factors import shared_factors
from .printer import pycode


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
        self.layers_of = system.field_layers()
        self.fields = tuple(self.layers_of)
        self.sources = {src.field.base.name for src in system.sources}
        #: dynamic sources whose law is another's (same covariance, coefficient and layer, grown at the
        #: same place in the step) draw from that source's factor: one factorisation per kernel
        self.factor_of = shared_factors(system)
        #: the size of one time block: samples P, or positions PS = P S for token data
        self.P = "PS" if system.tokens else "P"
        #: H -> oo: head-site fields have M * KEY_DIM rows (draws of heads times their coordinates), weights wH;
        #: attention's order parameters are per head (M, PS, PS) at the current time
        self.head = set(system.head_positions)
        self.per_head = ({e.lhs.base.name for e in system.equations if e.kind == "order" and len(e.lhs.indices) == 4}
                         if system.heads == "sites" else set())
        #: memoised histories (codegen.memo), registered by a first lowering pass (`collect`)
        self.memos: dict[sympy.Expr, memo.Memo] = {}
        self._frozen = False
        self._written: set[str] = set()

    def collect(self, passes) -> None:
        """Register the memoised histories the step reads: `passes` lowers the whole step once (its
        output is discarded). Afterwards the registry is fixed and row writes emit the memos' updates."""
        passes()
        self._frozen = True
        self._written = set()   # the step proper starts: no field has its row t yet

    def hist(self, X) -> str:
        """A history operand: a memoised array where X is a pointwise function of fields at one layer."""
        found = memo.template(X, set(self.fields))
        if found is None:
            return self.py(X, "hist")
        tpl, layer = found
        if tpl not in self.memos:
            if self._frozen:
                raise CodegenError(f"history {X} was not seen by the first lowering pass")
            taken = (set(self.fields) | {m.name for m in self.memos.values()}
                     | {e.lhs.base.name for e in self.sys.equations if isinstance(e.lhs, sympy.Indexed)})
            self.memos[tpl] = memo.Memo(memo.name_of(tpl, taken), tpl, memo.bases_of(tpl))
        return f"{self.memos[tpl].name}[{pycode(layer)}]"

    def _memo_rows(self, base: str, layer) -> tuple[str, ...]:
        """After field `base` got its row t at `layer`: row t of every memo whose fields all have theirs."""
        self._written.add(base)
        out = []
        for m in self.memos.values():
            if base in m.bases and m.bases <= self._written and self._memo_lives_at(m, layer):
                at, row = pycode(layer), self.py(m.at(layer), "now")
                out.append(f"{m.name}[{at}] = rt.set_slot({m.name}[{at}], t, {row})  # memo of {sympy.sstr(m.at(layer))}")
        return tuple(out)

    def _memo_lives_at(self, m, layer) -> bool:
        """A memo exists where every field it reads does (a position-by-position system has fields at some
        positions only: r where a dense layer reads, u where one writes)."""
        layer = as_expr(layer)
        if not layer.is_Integer:
            return True
        return all(int(layer) in self.layers_of.get(b, ()) for b in m.bases)

    def py(self, e, mode: str = "now") -> str:
        return pycode(e, mode, self.hyper, self.fields, tuple(sorted(self.per_head)))

    def _w(self, *exprs) -> str:
        """The expectation weights of the site the expressions live on: wH on the head site, else w."""
        return "wH" if any(self.on_head(x) for e in exprs for x in as_expr(e).atoms(sympy.Indexed)) else "w"

    def on_head(self, x: sympy.Indexed) -> bool:
        """Whether x is a per-draw field on the head site (a field at one of the head positions)."""
        return (x.base.name in self.fields and x.indices[0].is_Integer and int(x.indices[0]) in self.head)

    # ---------------------------------------------------------- entry points
    def step(self, st: Step, loop: tuple[int, int] | None) -> Stmt | None:
        """Lower one scheduled step; inside a loop over ell in [lo, hi] (given as `loop`), guard the
        template's layer range only where it does not hold for the whole loop (None: never runs)."""
        item = self.sys.get(st.label)
        at = as_expr(st.layer) if st.layer is not None else ell
        if isinstance(item, SourceLaw):
            return self._source(item, at)
        eq = _at_layer(item, at)
        lower = {"field": self._field, "twin": self._field, "twin_kernel": self._twin_kernel, "kernel": self._kernel, "response": self._response,
                 "order": self._order, "output": self._output, "error": self._error, "lazy": self._lazy}[eq.kind]
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
            lines = (f"{base}_t[{layer}] = jnp.broadcast_to(xi[{key}], (M, {self.P}))",)
        elif src.structure == "static":
            lines = (f"{base}_t[{layer}] = xi[{key}] @ static[{key}].T",)
        elif self._shares(base, fld.indices[0]):  # its factor was grown this step by the source of its law
            lines = (f"{base}_t[{layer}] = rt.sample_row(fac[{self._fac_key(base, fld.indices[0])}], xi[{key}], t, "
                     f"{self.P})  # the same covariance as {self._fac_key(base, fld.indices[0])}",)
        else:
            cov = src.covariance.subs(ell, at)
            kern = f"{cov.base.name}[{pycode(cov.indices[0])}]"
            lines = (f"fac[{key}] = rt.grow_factor(fac[{key}], {coef} * rt.flat({kern}), t, {self.P}, rcond_t)",
                     f"{base}_t[{layer}] = rt.sample_row(fac[{key}], xi[{key}], t, {self.P})")
        lines += (f"{base}[{layer}] = rt.set_slot({base}[{layer}], t, {base}_t[{layer}])",
                  *self._memo_rows(base, fld.indices[0]))
        return Stmt(src.label, lines, f"{src.label}: {src.field} ~ N(0, {src.coefficient} {src.covariance})")

    # ---------------------------------------------------------- equations
    def _field(self, eq: Equation) -> tuple[str, ...]:
        name, layer = eq.lhs.base.name, pycode(eq.lhs.indices[0])
        rhs = self._expr(eq.rhs)
        return (f"{name}_t[{layer}] = {rhs}", f"{name}[{layer}] = rt.set_slot({name}[{layer}], t, {name}_t[{layer}])",
                *self._memo_rows(name, eq.lhs.indices[0]))

    def _kernel(self, eq: Equation) -> tuple[str, ...]:
        name, layer = eq.lhs.base.name, pycode(eq.lhs.indices[0])
        (arg,) = eq.rhs.args
        left, right = _split_times(arg)
        w = self._w(left)
        row = f"rt.kernel_row({w}, {self.py(left, 'now')}, {self.hist(right)}, t)"
        twin = self._twin_row(left, right)
        if twin is not None:
            # control variate: E[X X'] = E[X X' - X0 X0'] + E[X0 X0'], the last held exactly by a twin kernel
            l0, r0 = self._lazy_part(left), self._lazy_part(right)
            row += (f" - rt.kernel_row({w}, {self.py(l0, 'now')}, {self.hist(r0)}, t) + {twin}")
            return (f"{name}[{layer}] = rt.set_kernel_row({name}[{layer}], {row}, t)",)
        exact = self._exact_lazy_row(left)
        if exact is not None:
            # control variate: E[X X'] = E[X X' - X0 X0'] + E[X0 X0'] exactly (X0 the gamma0 = 0 part)
            l0, r0 = self._lazy_part(left), self._lazy_part(right)
            row += (f" - rt.kernel_row({w}, {self.py(l0, 'now')}, {self.hist(r0)}, t)"
                    f" + {exact}")
        return (f"{name}[{layer}] = rt.set_kernel_row({name}[{layer}], {row}, t)",)

    def _twin_row(self, left, right) -> str | None:
        """Row t of E[X0(t) X0'(s)] when X0 = a(t) z(t) with z a twin field of known kernel and a deterministic."""
        l0, r0 = self._lazy_part(left), self._lazy_part(right)
        twins = self.sys.exact_twins
        zl = [f for f in sympy.Mul.make_args(l0) if isinstance(f, sympy.Indexed) and f.base.name in twins]
        zr = [f for f in sympy.Mul.make_args(r0) if isinstance(f, sympy.Indexed) and f.base.name in twins]
        if len(zl) != 1 or len(zr) != 1 or zl[0].base != zr[0].base or zl[0].indices[0] != zr[0].indices[0]:
            return None
        al, ar = l0 / zl[0], r0 / zr[0]
        if self._is_field(al) or self._is_field(ar):
            return None
        K = f"{twins[zl[0].base.name]}[{pycode(zl[0].indices[0])}][t]"
        parts = [K]
        if al != 1:
            parts.insert(0, f"({self.py(al, 'now')})[:, None, None]")
        if ar != 1:
            parts.append(f"({self.py(ar, 'hist')}).reshape(1, n_t, {self.P})")  # flat over (s, nu)
        return " * ".join(parts)

    def _twin_kernel(self, eq: Equation) -> tuple[str, ...]:
        """A twin's exact kernel, row t: a linear combination of source covariances (kernels, the data kernel)."""
        name, layer = eq.lhs.base.name, pycode(eq.lhs.indices[0])
        terms = []
        for mono in sympy.Add.make_args(eq.rhs):
            arrays = [f for f in sympy.Mul.make_args(mono) if isinstance(f, sympy.Indexed)]
            if len(arrays) != 1:
                raise CodegenError(f"cannot lower {eq.label}: expected a sum of scaled kernels")
            coef = self.py(mono / arrays[0], "now")
            terms.append(f"{coef} * {_broadcast(arrays[0])}" if coef != "1" else _broadcast(arrays[0]))
        return (f"{name}[{layer}] = rt.set_kernel_row({name}[{layer}], rt.causal_row({' + '.join(terms)}, t, n_t), t)",)

    def _exact_lazy_row(self, X) -> str | None:
        """Row t of E[X0(t) X0(s)] in closed form, when X0 factors into one function per independent source.

        phi(u), dphi(u) -> the pairwise Gaussian maps of the activation; a bare source -> its covariance.
        A twin field with an exact kernel (a sum of independent sources, `exact_twins`) counts as one
        Gaussian source whose covariance is that kernel. None when X0 has another shape (then the
        kernel is a plain Monte Carlo average).
        """
        gaussian = set(self.sources) | set(self.sys.exact_twins)
        parts = []
        for fac in sympy.Mul.make_args(self._lazy_part(X)):
            if isinstance(fac, sympy.Indexed) and fac.base.name in gaussian:
                parts.append((fac, f"rt.cov_gauss_row({{cov}}, t, {self.P})"))
            elif (isinstance(fac, sympy.Function) and (act := _activation_of(fac.func.__name__)) is not None
                  and isinstance(fac.args[0], sympy.Indexed) and fac.args[0].base.name in gaussian):
                kind, name = act
                pair = f"cf.pair_{kind}({name})"
                parts.append((fac.args[0], f"rt.gauss_row({pair}, {{cov}}, t, {self.P})"))
            else:
                return None
        keys = [(src.base.name, src.indices[0]) for src, _ in parts]
        if len(set(keys)) != len(keys) or (len(keys) > 1 and any(b in self.sys.exact_twins for b, _ in keys)):
            return None   # two functions of one source, or a twin beside its own sources: no product formula
        return " * ".join(tpl.format(cov=self._cov_row(b, lay)) for (b, lay), (_, tpl) in zip(keys, parts))

    def _cov_row(self, base: str, layer) -> str:
        """Row t of a Gaussian's covariance: a source's from its factor, a twin's from its exact kernel."""
        if base in self.sys.exact_twins:
            return f"rt.kernel_cov_row({self.sys.exact_twins[base]}[{pycode(layer)}], t, {self.P})"
        return f"cov({self._fac_key(base, layer)})"

    def _shares(self, base: str, layer) -> bool:
        """Whether the source instance draws from a factor another source grows (codegen.factors)."""
        layer = as_expr(layer)
        return layer.is_Integer and (base, int(layer)) in self.factor_of

    def _fac_key(self, base: str, layer) -> str:
        """The key of the factor a source draws from: its own, or the one it shares."""
        if self._shares(base, layer):
            b, l = self.factor_of[(base, int(as_expr(layer)))]
            return f'("{b}", {l})'
        return f'("{base}", {pycode(layer)})'

    def _response(self, eq: Equation) -> tuple[str, ...]:
        name, layer = eq.lhs.base.name, pycode(eq.lhs.indices[0])
        (resp,) = eq.rhs.args
        F, src = resp.args
        key = f'("{src.base.name}", {pycode(src.indices[0])})'
        strict = "True" if eq.support == "strict" else "False"
        cv = self._control_variate(F)
        fac = self._fac_key(src.base.name, src.indices[0])
        return (f"{name}[{layer}] = {name}[{layer}].at[t].set(rt.ibp_row({self._w(F)}, {cv}, xi[{key}], fac[{fac}], "
                f"t, {self.P}, "
                f"strict={strict}))",)

    def _output(self, eq: Equation) -> tuple[str, ...]:
        name = eq.lhs.base.name
        return (f"{name}_t = {self._expr(eq.rhs)}", f"{name} = {name}.at[t].set({name}_t)")

    def _error(self, eq: Equation) -> tuple[str, ...]:
        return (f"Delta_t = {self.py(eq.rhs, 'now')}", "Delta = Delta.at[t].set(Delta_t)")

    def _lazy(self, eq: Equation) -> tuple[str, ...]:
        rhs = eq.rhs
        lhs = self.py(eq.lhs, "matrix")
        return (f"{lhs} = {self._matrix(rhs)}",)

    def loss(self, eq: Equation) -> str:
        """The loss: sums over samples become jnp.sum over the last axis of trajectories (n_t, P)."""
        parts = []
        for fac in sympy.Mul.make_args(eq.rhs):
            if isinstance(fac, sympy.Sum):
                (v, lo, hi), = fac.limits
                if v != mu:
                    raise CodegenError(f"cannot lower loss sum over {v}")
                parts.append(f"jnp.sum({self.py(fac.function, 'traj')}, axis=-1)")
            else:
                parts.append(f"({self.py(fac, 'now')})")
        return " * ".join(parts)

    # ---------------------------------------------------------- expressions
    def _expr(self, e) -> str:
        """Pointwise code around the structured nodes (sums, responses), recursively through + and *."""
        if isinstance(e, sympy.Sum):
            return self._mix(e) if len(e.limits) == 1 else self._sums([e])
        if not (e.has(sympy.Sum) or _has_expect(e)):
            return self.py(e, "now")
        if e.is_Add:
            sums = [a for a in e.args if isinstance(a, sympy.Sum) and len(a.limits) == 2]
            rest = [self._expr(a) for a in e.args if a not in sums]
            return " + ".join(rest + ([self._sums(sums)] if sums else []))
        if e.is_Mul and not _has_expect(e):
            return " * ".join(f"({self._expr(a)})" for a in e.args)
        return self._scalar_response(e)

    def _is_field(self, e) -> bool:
        return any(x.base.name in self.fields for x in e.atoms(sympy.Indexed))

    def _sums(self, sums: list[sympy.Sum]) -> str:
        """Causal sums over (nu, s < t or s <= t), added: one contraction per history they read.

        Terms of several sums that read one history (z^l reads phi(h^l) through B for s <= t and
        through G for s < t) become one rt.causal_sum over s <= t, the strict terms' coefficients
        masked to s < t (rt.before): each history is streamed once, not once per sum.
        """
        groups: dict[sympy.Expr, list[tuple[sympy.Expr, bool]]] = {}
        for S in sums:
            (v1, lo1, hi1), (v2, lo2, hi2) = S.limits
            if (v1, v2) != (nu, s) or lo2 != 0 or hi2 not in (t - 1, t):
                raise CodegenError(f"cannot lower sum {S}: expected a sum over nu and s <= t")
            for mono in sympy.Add.make_args(sympy.expand(S.function)):
                fld = [f for f in sympy.Mul.make_args(mono) if self._is_field(f)]
                if len(fld) > 1:
                    raise CodegenError(f"cannot lower {mono}: more than one per-draw field in a product")
                key = fld[0] if fld else Delta[nu, s]
                groups.setdefault(key, []).append((mono / key, hi2 == t - 1))
        out = []
        for X, terms in groups.items():
            strict = all(st for _, st in terms)
            C = " + ".join(self._coef_array(c) if st == strict else f"rt.before(t, n_t) * {self._coef_array(c)}"
                           for c, st in terms)
            if self._is_field(X):
                out.append(f"rt.causal_sum({C}, {self.hist(X)}, t, strict={strict})")
            else:
                out.append(f"rt.causal_sum_det({C}, Delta, t, strict={strict})")
        return " + ".join(out)

    def _mix(self, S: sympy.Sum) -> str:
        """sum_nu C_{mu nu}(t) X_nu(t): a deterministic equal-time matrix times a per-draw field (rt.mix),
        or times a deterministic vector (a matrix-vector product)."""
        ((v, lo, hi),) = S.limits
        if v != nu:
            raise CodegenError(f"cannot lower sum {S}: expected a sum over nu")
        out = []
        for mono in sympy.Add.make_args(sympy.expand(S.function)):
            facs = sympy.Mul.make_args(mono)
            vec = [f for f in facs if isinstance(f, sympy.Indexed) and f.indices[-2:] == (nu, t)
                   and (self._is_field(f) or f.base.name in ("ftok",))]
            if len(vec) != 1:
                raise CodegenError(f"cannot lower {mono}: expected one field X[.., nu, t] mixed by a matrix")
            C = self.py(sympy.Mul(*(f for f in facs if f is not vec[0])), "det")
            X = self.py(vec[0], "now")
            per_head = any(isinstance(f, sympy.Indexed) and f.base.name in self.per_head for f in facs)
            if per_head:
                out.append(f"rt.head_mix({C}, {X}, KEY_DIM)")
            else:
                out.append(f"rt.mix({C}, {X})" if self._is_field(vec[0]) else f"({C}) @ {X}")
        return " + ".join(out)

    def _order(self, eq: Equation) -> tuple[str, ...]:
        """Deterministic equal-time order parameters: E[X(t) Y(t)] over draws, or matrix algebra on them."""
        name, layer = eq.lhs.base.name, pycode(eq.lhs.indices[0])
        coef, expects = [], []
        for fac in sympy.Mul.make_args(eq.rhs):
            (expects if _has_expect(fac) and isinstance(fac, sympy.Function) else coef).append(fac)
        if expects:
            (arg,) = expects[0].args
            if len(eq.lhs.indices) == 3 and len(sympy.Mul.make_args(arg)) != 2:
                # one value per sample and time: the population average of one expression (LayerNorm's)
                head = self.py(sympy.Mul(*coef), "now")
                val = f"rt.expect({self._w(arg)}, {self.py(arg, 'now')})"
                return (f"{name}[{layer}] = {name}[{layer}].at[t].set({val if head == '1' else head + ' * ' + val})",)
            X, Y = sympy.Mul.make_args(arg) if len(sympy.Mul.make_args(arg)) == 2 else (None, None)
            if X is None:
                raise CodegenError(f"cannot lower order parameter {eq.label}: expected E[X Y]")
            if X.indices[1] != mu:
                X, Y = Y, X
            head = self.py(sympy.Mul(*coef), "now")
            if expects[0].func.__name__ == "HeadMean":
                # one value per head: the average over its KEY_DIM coordinates, at the current time only
                val = f"rt.head_cross({self.py(X, 'now')}, {self.py(Y, 'now')}, KEY_DIM)"
                rhs = val if head == "1" else f"{head} * {val}"
                lines = (f"{name}[{layer}] = {rhs}",)
                if eq.label.startswith("eq:attn.logit"):
                    lines += (f"logits[{layer}] = logits[{layer}].at[t].set({name}[{layer}][:KEEP_HEADS])",
                              f"Lbar[{layer}] = Lbar[{layer}].at[t].set(jnp.einsum(\"m,mab->ab\", w, {name}[{layer}]))")
                return lines
            w = self._w(X, Y)
            pair = f"rt.cross_now({w}, {{}}, {{}})" if len(eq.lhs.indices) == 4 else f"rt.expect({w}, {{}} * {{}})"
            val = pair.format(self.py(X, "now"), self.py(Y, "now"))
            X0, Y0 = self._lazy_part(X), self._lazy_part(Y)
            if (X0, Y0) != (X, Y) and self._independent_zero_mean(X0, Y0):
                # control variate: E[X0 Y0] = 0 exactly (independent sources, one factor of mean zero)
                val += " - " + pair.format(self.py(X0, "now"), self.py(Y0, "now"))
            rhs = val if head == "1" else f"{head} * ({val})"
        else:
            rhs = self._det(eq.rhs)
            if name in self.per_head:
                return (f"{name}[{layer}] = {rhs}",)
        return (f"{name}[{layer}] = {name}[{layer}].at[t].set({rhs})",)

    def _independent_zero_mean(self, X0, Y0) -> bool:
        """X0, Y0 functions of disjoint sets of sources only, one of them linear in its sources (so of mean zero)."""
        if any(x.base.name in self.fields and x.base.name not in self.sources
               for x in X0.atoms(sympy.Indexed) | Y0.atoms(sympy.Indexed)):
            return False

        def srcs(e):
            return {(x.base.name, x.indices[0]) for x in e.atoms(sympy.Indexed) if x.base.name in self.sources}

        def linear(e):
            atoms = [x for x in e.atoms(sympy.Indexed) if x.base.name in self.sources]
            return bool(atoms) and all(sympy.diff(e.subs({a: sympy.Symbol(f"_x{i}") for i, a in enumerate(atoms)}),
                                                  sympy.Symbol(f"_x{i}"), 2) == 0 for i in range(len(atoms)))
        return not (srcs(X0) & srcs(Y0)) and (linear(X0) or linear(Y0))

    def _det(self, e) -> str:
        """An equal-time deterministic matrix expression: the softmax of the logits, the softmax Jacobian."""
        if isinstance(e, sympy.Function) and e.func.__name__ == "Softmax":
            return f"rt.masked_softmax({self.py(e.args[0], 'det')}, Seq)"
        if isinstance(e, sympy.Sum):
            ((v, lo, hi),) = e.limits
            if v != kappa:
                raise CodegenError(f"cannot lower {e}: expected a row sum over kappa")
            return f"jnp.sum({self._det(e.function)}, axis=-1, keepdims=True)"
        if e.is_Add:
            return " + ".join(f"({self._det(a)})" for a in e.args)
        if e.is_Mul:
            return " * ".join(f"({self._det(a)})" for a in e.args)
        return self.py(e, "det")

    def _coef_array(self, c) -> str:
        """A deterministic coefficient over (mu, s, nu) as a broadcastable array expression."""
        scal, arrays = [], []
        for fac in sympy.Mul.make_args(c):
            if isinstance(fac, sympy.Indexed):
                arrays.append(_broadcast(fac))
            else:
                scal.append(fac)
        head = self.py(sympy.Mul(*scal), "now")
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
        head = self.py(sympy.Mul(*coef), "now")
        return f"{head} * rt.expect(w, xi[{key}] * ({self._control_variate(F)}))"

    def _control_variate(self, F) -> str:
        F0 = self._lazy_part(F)
        if F0 == F:
            return self.py(F, "now")
        return f"{self.py(F, 'now')} - {self.py(F0, 'now')}"

    def _lazy_part(self, e):
        """e with every field replaced by its gamma0 = 0 part: the system's per-position `lazy_instances`
        (a graph walk's system), else its `lazy_parts` templates. A field with none leaves e as it is
        (no control variate)."""
        inst = self.sys.lazy_instances
        if inst:
            sub = {}
            for x in e.atoms(sympy.Indexed):
                if x.base.name not in self.fields or x.base.name in self.sources:
                    continue
                tpl = inst.get((x.base.name, int(x.indices[0])))
                if tpl is None:
                    return e
                idx = tuple(x.indices) + (None,) * (3 - len(x.indices))
                sub[x] = tpl.subs({mu: idx[1] if idx[1] is not None else mu, t: idx[2] if idx[2] is not None else t},
                                  simultaneous=True)
            return e.xreplace(sub)
        parts = self.sys.lazy_parts

        def rule(x):
            tpl = parts[x.base.name]
            idx = tuple(x.indices) + (None,) * (3 - len(x.indices))
            sub = {ell: idx[0], mu: idx[1] if idx[1] is not None else mu, t: idx[2] if idx[2] is not None else t}
            return tpl.subs(sub, simultaneous=True)
        return e.replace(lambda x: isinstance(x, sympy.Indexed) and x.base.name in parts, rule)

    def _chain(self, args) -> str:
        """The function of a Gaussian kernel map: the module's activation, one by name, or a composition."""
        if not args:
            return "ACTIVATION"
        (e,) = args
        if isinstance(e, sympy.Function) and len(e.args) == 1 and e.args[0].is_Symbol:
            act = _activation_of(e.func.__name__)
            if act is not None and act[0] == "phi":
                return act[1]
        return f"lambda x_: {self.py(e, 'matrix')}"

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
            return f"cf.{fn}({self._chain(e.args[1:])}, {self.py(e.args[0], 'matrix')})"
        if isinstance(e, sympy.Function) and e.func.__name__ in ("Normalized", "InvScale"):
            fn = "normalized" if e.func.__name__ == "Normalized" else "inv_scale"
            return f"lazy.{fn}({self.py(e.args[0], 'matrix')})"
        return self.py(e, "matrix")


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




def _activation_of(fname: str) -> tuple[str, str] | None:
    """'phi' -> ('phi', 'ACTIVATION'), 'dphi_relu' -> ('dphi', '"relu"'); None for other functions."""
    kind, _, name = fname.partition("_")
    if kind not in ("phi", "dphi"):
        return None
    return kind, (f'"{name}"' if name else "ACTIVATION")


def _has_expect(e) -> bool:
    return any(getattr(f, "func", None) is not None and f.func.__name__ in ("E", "HeadMean")
               for f in e.atoms(sympy.Function))


def _broadcast(x: sympy.Indexed) -> str:
    """A deterministic array indexed by some of (mu, nu, t, s) as an array over (mu, s, nu)."""
    base, idx = x.base.name, x.indices
    if base == "Delta" and tuple(idx) == (nu, s):
        return "Delta[None]"
    if base == "Phi0" and tuple(idx) == (mu, nu):
        return "Phi0[:, None, :]"
    if base == "Kappa" and tuple(idx) == (t, s):
        return "Kappa[t, :n_t][None, :, None]"
    if base == "adec" and tuple(idx) == (t,):
        return "adec[t]"
    if len(idx) == 5 and tuple(idx[1:]) == (mu, nu, t, s):
        return f"{base}[{pycode(idx[0])}][t]"
    raise CodegenError(f"cannot broadcast {x} over (mu, s, nu)")


def _pretty(eq: Equation) -> str:
    return f"{sympy.sstr(eq.lhs)} = {sympy.sstr(eq.rhs)}"
