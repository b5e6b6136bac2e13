"""The exponent table: every weight's forward multiplier, init std and learning rate.

Convention (docs/theory.md#conventions, docs/spec.md#what-the-presets-resolve-to):
entries W_ij ~ N(0, init_std^2), forward `multiplier * W x`, and the GD update
W <- W - lr * dLoss/dW. Presets are rows of one
table keyed by (preset, role); the depth factors of residual networks and the
key/query factors of attention are read from the spec's own expressions
(branch scale beta0 / L**alpha_L, logit scale N**-alpha_A), then per-weight
overrides replace any entry. Both the finite simulator and the DMFT read
`resolve_parameterization`, so the two cannot disagree about a scale.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Mapping

import sympy

from ..errors import LimitError
from ..graph.build import Graph, Weight
from ..notation import as_expr, hyper_symbol, size_symbol
from ..spec.types import Attention, Residual, Spec
from ..spec.usage import HYPER_DEFAULTS

Expr = sympy.Expr
PRESET_ALIASES = {"mean_field": "mup", "depth_mup": "mup", "completep": "mup"}
#: presets whose branch-scale exponent alpha_L is fixed by name (checked against the spec).
PRESET_ALPHA_L = {"depth_mup": sympy.Rational(1, 2), "completep": sympy.Integer(1)}


@dataclass(frozen=True)
class WeightScaling:
    """multiplier, init_std and lr (the full per-parameter GD step, global lr included) of one weight."""

    multiplier: Expr
    init_std: Expr
    lr: Expr

    def abc(self, n: sympy.Symbol) -> tuple[Expr, Expr, Expr]:
        """Yang & Hu's (a, b, c): multiplier n^-a, init std n^-b, lr n^-c (leading powers of n)."""
        return (-leading_power(self.multiplier, n), -leading_power(self.init_std, n),
                -leading_power(self.lr, n))


@dataclass(frozen=True)
class Context:
    """What the table rows need to know about the network as a whole."""

    lr: Expr           # training.lr
    gamma0: Expr       # richness
    readout_fan_in: Expr
    depth: Expr        # L (the residual block count), 1 without residual blocks
    alpha_L: Expr | None  # branch-scale exponent, None without residual blocks
    adam: bool = False    # the optimizer is Adam (its muP table: `_adam_step`)


def leading_power(expr: Expr, n: sympy.Symbol) -> Expr:
    """The power p with expr ~ n^p as n -> infinity (expr a product of powers, or a sum of such).

    Sums take their leading term; exponents may be symbolic (then sums must be comparable).
    An expression with `n` in an exponent that is no power of n (``2**(N/128)``, ``exp(N)``)
    raises LimitError saying so.
    """
    try:
        return _leading_power(expr, n)
    except _NotAPower as exc:
        how = {sympy.oo: "grows faster than every power of", -sympy.oo: "decays faster than every power of"}.get(
            exc.p, "does not behave as a power of")
        whole = as_expr(expr)
        # name the factor as written (powsimp may have rewritten exc.factor)
        written = sorted((f for f in whole.atoms(sympy.Pow, sympy.exp) if f.exp.has(n)), key=str)
        factor = written[0] if written else exc.factor
        part = "it" if factor == whole else f"its factor {factor}"
        raise LimitError(
            f"{whole} is not a power of {n}: {part} {how} {n}, so power counting "
            f"cannot say how it scales as {n} -> infinity; write it as a power of {n} (e.g. {n}, 2*{n}, "
            f"{n}**2 or {n}**(-1/2)), with {n} in bases only, never in an exponent"
        ) from None


class _NotAPower(Exception):
    def __init__(self, factor: Expr, p: Expr):
        self.factor, self.p = factor, p


def _leading_power(expr: Expr, n: sympy.Symbol) -> Expr:
    expr = sympy.powsimp(sympy.expand_power_base(as_expr(expr), force=True), force=True)
    if expr.is_Add:
        powers = [_leading_power(t, n) for t in expr.args]
        top = sympy.Max(*powers)
        if top.is_number and sum(p == top for p in powers) > 1:
            return _cancelled(expr, top, n)
        return top
    if expr.has(n) and not (expr.is_Mul or expr.is_Pow or expr == n):
        # log, exp, sqrt of n: use the growth of log(expr) / log(n)
        return _finite(expr, sympy.limit(sympy.log(expr) / sympy.log(n), n, sympy.oo))
    total = sympy.Integer(0)
    for base, e in _powers(expr):
        if e.has(n):  # n in an exponent (2**(N/128), N**N): a power only if its log grows as log(n)
            total += _finite(base**e, sympy.limit(e * sympy.log(base) / sympy.log(n), n, sympy.oo))
        elif base == n:
            total += e
        elif base.has(n):
            total += e * _leading_power(base, n)
    return sympy.simplify(total)


def _cancelled(expr: Expr, top: Expr, n: sympy.Symbol) -> Expr:
    """The power of a sum whose leading terms may cancel (N - sqrt(N**2 - N) ~ 1/2, not N):
    lim log(expr) / log(n), or the terms' leading power `top` where that limit is not a number."""
    try:
        p = sympy.limit(sympy.log(expr) / sympy.log(n), n, sympy.oo)
    except (NotImplementedError, ValueError, TypeError):  # pragma: no cover - sympy gives up
        return top
    return p if p.is_real and p.is_finite else top


def _finite(factor: Expr, p: Expr) -> Expr:
    """`p` = lim log(factor) / log(n), which must be finite for the factor to be ~ a power of n."""
    if p.has(sympy.oo, -sympy.oo, sympy.zoo, sympy.nan) or isinstance(p, sympy.AccumBounds):
        raise _NotAPower(factor, p)
    return p


def _powers(expr: Expr):
    for factor in sympy.Mul.make_args(expr):
        base, e = factor.as_base_exp()
        yield base, e


# ---------------------------------------------------------------- exponents as numbers (stage 3)
def to_rational(value) -> sympy.Rational:
    """A hyper value as an exact rational (0.5 -> 1/2, 0.3333333333333333 -> 1/3)."""
    f = Fraction(value).limit_denominator(10**6) if isinstance(value, float) else Fraction(value)
    return sympy.Rational(f.numerator, f.denominator)


@functools.lru_cache(maxsize=4096)
def _exponent(expr: Expr, n: sympy.Symbol) -> Fraction | float:
    if expr == 0:
        return float("-inf")
    p = sympy.nsimplify(leading_power(expr, n))
    if not p.is_Rational:
        sizes = sorted(str(x) for x in p.free_symbols if x.is_integer)
        if sizes:  # N**(-H) with H finite: the power of N would change with the size H
            why = (f"the exponent {p} depends on the size{'s' * (len(sizes) > 1)} {', '.join(sizes)}; "
                   f"write a numeric exponent such as {n}**(-1/2)")
        elif p.free_symbols:
            why = (f"the exponent {p} is not a number; give the hyperparameters in its exponents numeric "
                   "values in `hyper`")
        else:  # N**log(2)
            why = f"the exponent {p} is irrational; write a rational exponent such as {n}**(2/3)"
        raise LimitError(f"cannot count powers of {n} in {expr}: {why}")
    return Fraction(int(p.p), int(p.q))


def exponent(expr, n: sympy.Symbol, hyper: Mapping[sympy.Symbol, Expr]) -> Fraction | float:
    """e(expr) as a number: the power of n, hyper values substituted into exponents only.

    Prefactors (eta, gamma0) stay symbols; an expression equal to 0 has exponent -inf.
    """
    expr = as_expr(expr)
    if hyper:
        expr = expr.replace(lambda e: e.is_Pow and bool(e.exp.free_symbols & set(hyper)),
                            lambda e: sympy.Pow(e.base, e.exp.xreplace(hyper)))
    return _exponent(expr, n)


# ---------------------------------------------------------------- the table
def _row_mup(w: Weight, c: Context, attn: Attention | None) -> WeightScaling:
    step = c.lr * c.gamma0**2 * c.readout_fan_in * _depth_lr(c) if not c.adam else _adam_step(w, c, attn)
    if w.role == "readout":
        m = _depth_io(c) / (c.gamma0 * w.fan_in)
        return WeightScaling(m, 1 / _depth_io(c), step)
    if w.role in ("key", "query") and attn is not None:
        alpha_A = attention_alpha(attn)
        N, H = attn.key_dim, attn.heads
        return WeightScaling(N ** (alpha_A - sympy.Rational(3, 2)) / sympy.sqrt(H), N ** (1 - alpha_A), step)
    if w.role == "embed" and c.alpha_L is not None:
        return WeightScaling(_depth_io(c) / sympy.sqrt(w.fan_in), 1 / _depth_io(c), step)
    return WeightScaling(1 / sympy.sqrt(w.fan_in), sympy.Integer(1), step)


def _adam_step(w: Weight, c: Context, attn: Attention | None) -> Expr:
    """muP's Adam steps (Yang & Hu's Tensor Programs V table in this multiplier convention).

    An Adam step moves every entry of W by O(lr) whatever the gradient's size (m_hat / sqrt(v_hat) is O(1)),
    so a layer's output moves by multiplier x lr x fan_in, coherently over the fan-in. O(gamma0) moves for
    every layer: lr = eta gamma0 / sqrt(fan_in) for weights with multiplier 1/sqrt(fan_in) and a fan-in
    that grows (hidden, value, output), eta gamma0 N^(1/2 - alpha_A) / sqrt(H) for keys and queries (multiplier
    N^(alpha_A - 3/2) / sqrt(H), fan-in N H), and eta gamma0 for the embedding (fixed fan-in D) and the readout (multiplier
    1/(gamma0 N): its move is lr / gamma0). In residual branches (branch scale L^-alpha_L, summed over
    L blocks) the hidden steps take L^(alpha_L - 1); the embedding and readout, whose multipliers carry
    L^(1/2 - alpha_L), take L^(alpha_L - 1/2).
    """
    base = c.lr * c.gamma0
    if w.role in ("readout", "embed"):
        return base * (_depth_io(c) ** -1 if c.alpha_L is not None else 1)
    depth = c.depth ** (c.alpha_L - 1) if (c.alpha_L is not None and w.in_branch) else sympy.Integer(1)
    if w.role in ("key", "query") and attn is not None:
        # the multiplier N^(alpha_A - 3/2) / sqrt(H) and std N^(1 - alpha_A) of `_row_mup`: the key moves by
        # m lr N H relative to its O(1) scale
        alpha_A = attention_alpha(attn)
        return base * depth * attn.key_dim ** (sympy.Rational(1, 2) - alpha_A) / sympy.sqrt(attn.heads)
    return base * depth / sympy.sqrt(w.fan_in)


def _row_ntk(w: Weight, c: Context, attn: Attention | None) -> WeightScaling:
    return WeightScaling(1 / sympy.sqrt(w.fan_in), sympy.Integer(1), c.lr)


def _row_sp(w: Weight, c: Context, attn: Attention | None) -> WeightScaling:
    return WeightScaling(sympy.Integer(1), 1 / sympy.sqrt(w.fan_in), c.lr)


TABLE = {"mup": _row_mup, "ntk": _row_ntk, "sp": _row_sp}


def _depth_lr(c: Context) -> Expr:
    """SGD step factor L^(2 alpha_L - 1) of docs/theory.md#depth-scaling (1 without residual blocks)."""
    return c.depth ** (2 * c.alpha_L - 1) if c.alpha_L is not None else sympy.Integer(1)


def _depth_io(c: Context) -> Expr:
    """Embedding/readout multiplier factor L^(1/2 - alpha_L) (the init std takes its inverse)."""
    return c.depth ** (sympy.Rational(1, 2) - c.alpha_L) if c.alpha_L is not None else sympy.Integer(1)


# ---------------------------------------------------------------- reading the spec's own exponents
def attention_alpha(attn: Attention) -> Expr:
    """alpha_A from the logit scale N^-alpha_A (N the key/query dimension)."""
    return -leading_power(attn.logit_scale, _main_symbol(attn.key_dim))


def residual_alpha(spec_ops) -> tuple[Expr | None, Expr]:
    """(alpha_L, L) read from the branch scales beta0 / L**alpha_L; (None, 1) without residual blocks."""
    scales = [op.scale for op in _iter_ops(spec_ops) if isinstance(op, Residual)]
    if not scales:
        return None, sympy.Integer(1)
    L = size_symbol("L")
    return -leading_power(scales[0], L), L


def _main_symbol(expr: Expr) -> sympy.Symbol:
    syms = sorted(expr.free_symbols, key=lambda s: s.name)
    return syms[0] if syms else size_symbol("N")


def _iter_ops(ops):
    for op in ops:
        yield op
        yield from _iter_ops(getattr(op, "body", ()) or getattr(op, "branch", ()))


def _attention_of(graph: Graph, w: Weight) -> Attention | None:
    for n in graph.walk():
        if n.id == w.node and isinstance(n.op, Attention):
            return n.op
    return None


def context(spec: Spec, graph: Graph) -> Context:
    """The whole-network facts the table rows use."""
    readout = [w for w in graph.weights.values() if w.role == "readout"]
    alpha_L, depth = residual_alpha(spec.model)
    # undeclared: the default, which loading reported (dmftc.spec.usage)
    gamma0 = hyper_symbol("gamma0") if "gamma0" in spec.hyper else sympy.Integer(HYPER_DEFAULTS["gamma0"])
    return Context(spec.training.lr, gamma0, readout[0].fan_in if readout else sympy.Integer(1), depth, alpha_L,
                   spec.training.adam)


def override_of(spec: Spec, w: Weight):
    """The spec's override of weight `w`: its own, or for the peeled first copy of a repeat body's weight
    (`Weight.origin`, named `<name>_first`), the override written for that body weight (None if neither)."""
    overrides = spec.parameterization.overrides
    o = overrides.get(w.name)
    return o if o is not None or not w.origin else overrides.get(w.origin)


def resolve_parameterization(spec: Spec, graph: Graph) -> Mapping[str, WeightScaling]:
    """weight name -> WeightScaling: the preset's row for each weight, then the spec's overrides."""
    preset = spec.parameterization.preset or "mup"
    row = TABLE[PRESET_ALIASES.get(preset, preset)]
    c = context(spec, graph)
    out = {}
    for name, w in sorted(graph.weights.items()):
        ws = row(w, c, _attention_of(graph, w))
        o = override_of(spec, w)
        if o is not None:
            ws = replace(ws, **{k: getattr(o, k) * (c.lr if k == "lr" else 1)
                                for k in ("multiplier", "init_std", "lr") if getattr(o, k) is not None})
        out[name] = ws
    return out
