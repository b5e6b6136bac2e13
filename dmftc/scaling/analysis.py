"""Stage 3: the scaling analysis (power counting of typical coordinate sizes).

    Spec, Graph, parameterization --lower (per limit symbol n)--> Program
    Program --audit: step 0 (F, B), step 1 (one-step changes), iterate to a fixed point--> SymbolAudit
    SymbolAudit --verdict--> regime, heads, depth facts, reasons
    verdicts of every limit symbol --combine--> Scaling

Each size in `spec.limit` is analysed on its own (the others held finite), hyper
values are substituted into exponents, repeats are unrolled a few copies (a repeat
whose count grows with n is a fixed-point iteration whose residual sums carry the
count's exponent). The rules are in `rules.py`, the verdicts in `regimes.py`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from fractions import Fraction
from types import MappingProxyType
from typing import Mapping


from ..errors import LimitError
from ..graph.build import Graph, Node, build_graph
from ..notation import hyper_symbol, size_symbol, as_expr
from ..spec.expr import evaluate
from ..spec.types import Act as ActOp, Attention as AttnOp, Dense as DenseOp, LayerNorm, Pool as PoolOp
from ..spec.types import Readout, Repeat, Residual as ResOp, Spec
from . import rules as R
from .records import Offender, Program, RepeatCopy, SymbolAudit
from .regimes import DepthFacts, combine, power, verdict
from .parameterization import WeightScaling, exponent, resolve_parameterization, to_rational
from .rules import NEG, Exp
from .table import ResolvedTable, resolved_table

FINITE_COPIES = 3   # copies of a finite repeat: exponents settle after a couple
LIMIT_COPIES = 4    # fixed-point iterations of a repeat whose count grows with n
MAX_STEPS = 12      # training-audit iterations (each is one more GD step's worth of coupling)
REGIMES = ("feature_learning", "lazy", "unstable", "trivial")


# ------------------------------------------------------------------ lowering
class _Lowering:
    def __init__(self, spec: Spec, params: Mapping[str, WeightScaling], n: str):
        self.spec, self.params, self.name = spec, params, n
        self.n = size_symbol(n)
        self.hyper = {hyper_symbol(k): to_rational(v) for k, v in spec.hyper.items()}
        self.sizes = {size_symbol(k): v for k, v in spec.sizes.items()}
        self.width, self.repeats = set(), []
        self.outputs, self.weights = defaultdict(list), defaultdict(list)
        self.attentions, self.residuals = defaultdict(list), defaultdict(list)
        self.readout = None

    def e(self, expr) -> Exp:
        return exponent(expr, self.n, self.hyper)

    def wexp(self, name: str, graph: Graph, suffix: str) -> R.WExp:
        w, ws = graph.weights[name], self.params[name]
        we = R.WExp(name, name + suffix, w.role, self.e(ws.multiplier), self.e(ws.init_std),
                    self.e(ws.lr), self.e(w.fan_in), self.e(w.fan_out), self.spec.training.adam)
        self.weights[name].append(we)
        return we

    def seq(self, graph, nodes, x, suffix, eR):
        out = []
        for node in nodes:
            instrs, x = self.node(graph, node, x, suffix, eR)
            out.extend(instrs)
        return out, x

    def node(self, graph, node: Node, x, suffix, eR):
        """(instructions, output id) of one node; `suffix` names the copy, eR the block count."""
        op, y = node.op, node.id + suffix
        if isinstance(op, Repeat):
            return self.repeat(graph, node, x, suffix, eR)
        if isinstance(op, ResOp):
            return self.residual(graph, node, x, y, suffix, eR)
        if isinstance(op, AttnOp):
            return self.attention(graph, node, x, y, suffix)
        if isinstance(op, (DenseOp, Readout)):
            return self.dense(graph, node, x, "f" if isinstance(op, Readout) else y, suffix)
        self.width.add(y)
        if isinstance(op, ActOp):
            return [R.Act(op.fn, x, y)], y
        if isinstance(op, LayerNorm):
            return [R.Norm(x, y)], y
        if isinstance(op, PoolOp):
            eS = self.e(size_symbol("S")) if "S" in self.spec.sizes else R.ZERO
            return [R.Pool(x, y, eS)], y
        raise TypeError(f"no counting rule for op {op!r}")  # pragma: no cover

    def dense(self, graph, node: Node, x, y, suffix):
        we = self.wexp(node.weights[0].name, graph, suffix)
        self.outputs[we.name].append(y)
        if we.role == "readout":
            self.readout, self.readout_input = we, x
        else:
            self.width.add(y)
        return [R.Dense(we, x, y)], y

    def residual(self, graph, node: Node, x, y, suffix, eR):
        bx = y + ".in"
        body, by = self.seq(graph, node.children, bx, suffix, eR)
        self.width.update((bx, by, y))
        ins = R.Residual(node.id, self.e(node.op.scale), eR, tuple(body), x, y, bx, by)
        self.residuals[node.id].append(ins)
        return [ins], y

    def attention(self, graph, node: Node, x, y, suffix):
        op = node.op
        K, Q, V, O = (self.wexp(w.name, graph, suffix) for w in node.weights)
        ins = R.Attention(op.name, K, Q, V, O, self.e(op.logit_scale), self.e(op.key_dim), x, y)
        k, q, v, _A, o = ins.ids()
        self.width.update((k, q, v, o, y))
        for w, z in zip(node.weights, (k, q, v, y)):
            self.outputs[w.name].append(z)
        self.attentions[op.name].append(ins)
        return [ins], y

    def repeat(self, graph, node: Node, x, suffix, eR):
        count = as_expr(node.op.times)
        limit = self.n in count.free_symbols and self.e(count) > 0
        if limit:
            copies, inner = LIMIT_COPIES, eR + self.e(count)
        else:
            copies, inner = min(self._finite_count(count), FINITE_COPIES), eR
        has_res = any(isinstance(c.op, ResOp) for c in node.children)
        out = []
        for c in range(max(copies, 0)):
            instrs, y = self.seq(graph, node.children, x, f"{suffix}/{node.id}:{c}", inner)
            self.repeats.append(RepeatCopy(node.id, c, x, y, limit, has_res))
            out.extend(instrs)
            x = y
        return out, x

    def _finite_count(self, count) -> int:
        """The repeat count at the finite sizes, in floats as the spec checked it (int() of an exact
        1024**(1/10**300) would compute for ever); FINITE_COPIES when it needs a layer index."""
        try:
            return round(evaluate(count, {**self.sizes, **self.hyper}))
        except (KeyError, ArithmeticError):
            return FINITE_COPIES


def lower(spec: Spec, graph: Graph, params: Mapping[str, WeightScaling], n: str) -> Program:
    """The counting program of `graph` for the limit symbol `n`."""
    lw = _Lowering(spec, params, n)
    instrs, _ = lw.seq(graph, graph.nodes, "x", "", R.ZERO)
    if lw.readout is None:
        raise LimitError("the network has no readout: nothing to take a limit of; "
                         "end the model with `- readout: {}`")
    ro = params[lw.readout.name]
    s_r = lw.e(ro.multiplier * ro.init_std)
    freeze = lambda d: MappingProxyType({k: tuple(v) for k, v in d.items()})  # noqa: E731
    return Program(n, tuple(instrs), frozenset(lw.width), freeze(lw.outputs), freeze(lw.weights),
                   freeze(lw.attentions), freeze(lw.residuals), tuple(lw.repeats), lw.readout,
                   lw.readout_input, s_r)


# ------------------------------------------------------------------ the audit
def backward_scale(prog: Program, t: R.Tape) -> Exp:
    """The readout's backward signal after training, -min(a+b, 2a+c) of Yang & Hu: the
    normaliser of backward exponents that the abc symmetry leaves unchanged."""
    r, fx = prog.readout, t.f(prog.readout_input)
    return R.mx(R.add(r.m, r.s, R.half(r.nout)), R.add(r.m, r.lam, r.m, fx, r.nout))


def audit(prog: Program) -> SymbolAudit:
    """Step 0, step 1 and the iteration to the after-training fixed point."""
    t = R.Tape(width=prog.width)
    t.F["x"] = R.ZERO
    for ins in prog.instrs:
        ins.init_fwd(t)
    t.nb = backward_scale(prog, t)
    for ins in reversed(prog.instrs):
        ins.init_bwd(t)
    a = SymbolAudit(prog, t, [], _offenders_init(t), True)
    if a.offenders:
        return a
    cur, prev_sig = t, None
    for step in range(1, MAX_STEPS + 1):
        cur = cur.new_step()
        for ins in prog.instrs:
            ins.step_fwd(cur)
        for ins in reversed(prog.instrs):
            ins.step_bwd(cur)
        a.steps.append(cur)
        a.offenders = _offenders_step(cur, step)
        nxt = cur.new_step()
        a.D, a.DB = nxt.Dp, nxt.DBp
        sig = (sorted(a.D.items()), sorted(a.DB.items()))
        if a.offenders or sig == prev_sig:
            return a
        prev_sig = sig
    a.converged = False
    return a


def _offenders_init(t: R.Tape) -> list:
    out = [Offender(v, "F", f, "source", 0) for v, f in t.F.items() if v != "x" and f > 0]
    return out + [Offender(v, "B", b - t.nb, "bsource", 0)
                  for v, b in t.B.items() if v in t.width and R.sub(b, t.nb) > 0]


def _offenders_step(t: R.Tape, step: int) -> list:
    out = []
    for v in sorted(set(t.Dc) | set(t.Dr)):
        if v != "x" and t.dtot(v) > 0:
            out.append(Offender(v, "D", t.dtot(v), t.why.get((v, "D"), ""), step))
    for v in sorted(set(t.DBc) | set(t.DBr)):
        if v in t.width and R.sub(t.dbtot(v), t.nb) > 0:
            out.append(Offender(v, "DB", t.dbtot(v) - t.nb, t.why.get((v, "DB"), ""), step))
    return out



# ------------------------------------------------------------------ the stage's record
@dataclass(frozen=True)
class Scaling:
    """The scaling analysis of a spec (stage 3): what survives, vanishes or diverges.

    Attributes
    ----------
    limit : tuple of str
        The sizes taken to infinity (each analysed with the others finite).
    regime : str
        One of `REGIMES`: feature_learning, lazy, unstable, trivial.
    exponents : mapping
        Quantity name -> {symbol: power}: ``fwd:W``, ``bwd:W`` (normalised by the readout's
        scale s_hat = multiplier * init std), ``dW:W`` (raw entry change), ``dfwd:W``, ``f0``, ``df``,
        ``logit:A``, ``dlogit:A``, ``branch:<node>``, ``dbranch:<node>``; changes are one-step, the
        ``@trained`` twins the after-training values. ``-inf``: the quantity is absent.
    heads : str or None
        'collapse' (deterministic logits, one effective head), 'diverse', or None.
    reasons : tuple of str
        Sentences: the verdict per symbol, the quantity that decides it and the fix.
    depth : DepthFacts or None
        Kernel at initialization and block learning for a residual depth limit.
    terms : mapping
        Weight -> DMFT term (source, update, response, bsource, bupdate, bresponse) ->
        {symbol: exponent} after training, plus 'output' -> f0, df; 0 survives the limit,
        < 0 vanishes, > 0 diverges (backward terms relative to `backward_scale`).
    backward_scale : mapping
        Symbol -> exponent of the readout's backward signal after training,
        -min(a + b, 2a + c) of its abc exponents.
    regimes : mapping
        Symbol -> the regime of that symbol's limit alone.
    parameterization : ResolvedTable or None
        Every weight's init std, multiplier and learning rate as resolved (`resolved_table`).
    """

    limit: tuple
    regime: str
    exponents: Mapping
    heads: str | None
    reasons: tuple
    depth: DepthFacts | None = None
    terms: Mapping = field(default_factory=dict)
    backward_scale: Mapping = field(default_factory=dict)
    regimes: Mapping = field(default_factory=dict)
    parameterization: ResolvedTable | None = None

    def exponent(self, name: str, symbol: str | None = None) -> Exp:
        """The exponent of one quantity (for the only limit symbol unless `symbol` is given)."""
        return self.exponents[name][symbol or self.limit[0]]

    def to_json(self) -> dict:
        """The `dmftc analyze --json` object (JSON-ready: exponents as numbers, 1/2 -> 0.5,
        an absent quantity as None): ``json.dumps(s.to_json(), sort_keys=True)``."""
        num = lambda d: {k: _num(v) for k, v in sorted(d.items())}  # noqa: E731
        depth = None if self.depth is None else {
            "symbol": self.depth.symbol, "kernel_at_init": self.depth.kernel_at_init,
            "branch_exponent": _num(self.depth.branch_exponent), "blocks": self.depth.blocks,
            "block_update_exponent": _num(self.depth.block_update_exponent)}
        return {"regime": self.regime, "limit": list(self.limit),
                "exponents": {k: num(v) for k, v in sorted(self.exponents.items())},
                "heads": self.heads, "reasons": list(self.reasons), "depth": depth,
                "terms": {w: {t: num(v) for t, v in sorted(ts.items())} for w, ts in sorted(self.terms.items())},
                "backward_scale": num(self.backward_scale), "regimes": dict(sorted(self.regimes.items())),
                "parameterization": None if self.parameterization is None else self.parameterization.to_json()}

    def __str__(self) -> str:
        lines = [f"regime: {self.regime}" + (f", heads: {self.heads}" if self.heads else ""),
                 f"limit: {', '.join(f'{s} -> inf' for s in self.limit)}"]
        width = max(map(len, self.exponents), default=0)
        for name, e in sorted(self.exponents.items()):
            if not name.endswith("@trained"):
                row = "  ".join(power(s, v) for s, v in sorted(e.items()))
                lines.append(f"  {name:<{width}}  {row}")
        table = [] if self.parameterization is None else ["", str(self.parameterization)]
        return "\n".join(lines + [f"- {r}" for r in self.reasons] + table)

    def raise_if_unstable(self) -> None:
        """LimitError with the reasons when the limit does not exist."""
        if self.regime == "unstable":
            raise LimitError("the requested limit is ill-posed:\n" + "\n".join(self.reasons))

    def check(self) -> None:
        """Re-verify internal consistency; raises ValueError listing every problem."""
        problems = _problems(self)
        if problems:
            raise ValueError("inconsistent Scaling:\n" + "\n".join(f"  - {p}" for p in problems))


def _num(x: Exp):
    if x == NEG:
        return None
    x = Fraction(x)
    return int(x) if x.denominator == 1 else float(x)


def _problems(s: Scaling) -> list:
    out = []
    if s.regime not in REGIMES:
        out.append(f"regime {s.regime!r} is not one of {REGIMES}")
    if s.heads not in (None, "collapse", "diverse"):
        out.append(f"heads {s.heads!r} is not collapse, diverse or None")
    if not s.limit:
        out.append("no limit symbol")
    for name in ("f0", "df"):
        if name not in s.exponents or name + "@trained" not in s.exponents:
            out.append(f"missing quantity {name} or {name}@trained")
    for name, e in s.exponents.items():
        if set(e) != set(s.limit):
            out.append(f"{name} has exponents for {sorted(e)}, the limit is {list(s.limit)}")
        if not name.endswith("@trained") and name + "@trained" not in s.exponents:
            out.append(f"{name} has no @trained twin")
    if s.regime == "unstable":
        if not s.reasons:
            out.append("unstable without a reason")
        if s.heads is not None:
            out.append("an unstable limit cannot say how the heads behave")
    elif s.exponents:
        out.extend(_stable_problems(s))
    return out


def _stable_problems(s: Scaling) -> list:
    out = []
    for name, e in s.exponents.items():
        kind = name.split(":")[0].replace("@trained", "")
        if kind in ("fwd", "dfwd", "f0", "df", "logit", "dlogit", "branch", "dbranch") and \
                any(v > 0 for v in e.values()):
            out.append(f"{name} diverges ({e}) but the regime is {s.regime}")
    df = s.exponents.get("df@trained", {})
    if (s.regime == "trivial") != any(v < 0 for v in df.values()):
        out.append(f"regime {s.regime} does not match df@trained = {df}")
    return out


# ------------------------------------------------------------------ the entry point
def analyze(spec: Spec, graph: Graph | None = None,
            params: Mapping[str, WeightScaling] | None = None) -> Scaling:
    """The scaling analysis of `spec` in its limit (docs/theory.md#parameterizations, #limits-and-regimes).

    # [Graph, WeightScaling] -> Program per limit symbol (exponents are numbers)
    # Program -> SymbolAudit (step 0, step 1, after-training fixed point)
    # SymbolAudit -> SymbolVerdict (regime, heads, depth, reasons)
    # [SymbolVerdict] -> Scaling
    """
    graph = graph if graph is not None else build_graph(spec)
    params = params if params is not None else resolve_parameterization(spec, graph)
    if not spec.limit:
        raise LimitError("the spec takes no limit: add e.g. `limit: {N: inf}`")
    verdicts = [verdict(audit(lower(spec, graph, params, n)), spec, graph) for n in spec.limit]
    regime, heads, depth, reasons = combine(verdicts)
    join = lambda tables: {k: {v.symbol: t.get(k, NEG) for v, t in zip(verdicts, tables)}  # noqa: E731
                           for k in sorted(set().union(*tables))}
    exps = join([v.exponents for v in verdicts])
    terms = {w: join([v.terms.get(w, {}) for v in verdicts]) for w in sorted(set().union(*(v.terms for v in verdicts)))}
    return Scaling(tuple(spec.limit), regime, MappingProxyType(exps), heads, reasons, depth,
                   MappingProxyType(terms), MappingProxyType({v.symbol: v.backward_scale for v in verdicts}),
                   MappingProxyType({v.symbol: v.regime for v in verdicts}), resolved_table(spec, graph, params))
