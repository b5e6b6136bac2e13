"""Verdicts of the scaling analysis: reported exponents, regimes, heads, depth facts, reasons.

Per limit symbol n (`SymbolVerdict`):
- unstable: some exponent is > 0 at initialization (forward sizes; backward signals of
  width vectors relative to the readout's backward scale) or after training (changes);
  each such quantity is its own cause, since the rules read their inputs capped;
- trivial: stable, and the output change after training vanishes (df < 0);
- lazy: df = 0 but every hidden feature change vanishes;
- feature_learning: df = 0 and some hidden feature moves O(1).
Several limit symbols combine (`combine`): unstable if any is, trivial if any is, feature
learning if one hidden quantity moves O(1) along every symbol, else lazy.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Mapping

import sympy

from ..graph.build import Graph
from ..notation import hyper_symbol, size_symbol
from ..spec.types import Attention as AttnOp, Spec
from . import rules as R
from .parameterization import exponent, leading_power, to_rational
from .records import SymbolAudit
from .rules import NEG, Exp


MAX_SENTENCES = 4


# ------------------------------------------------------------------ reported quantities
def quantities(a: SymbolAudit) -> dict:
    """Quantity name -> exponent for one limit symbol (names: docs/reading-output.md#dmftc-analyze).

    `bwd:` is normalised by the readout's scale s_hat = multiplier * init std (B - e(s_hat), as the
    simulator and the DMFT normalise backward fields; the abc symmetry leaves it unchanged); `dfwd`, `df`,
    `dlogit`, `dbranch`, `dW` are one-step; `@trained` names hold the after-training
    values (for fwd, logit, branch, f0: the size after training, max(init, change)).
    """
    p, t0, t1 = a.program, a.init, a.one
    q: dict = {}

    def put(name, one, trained):
        q[name], q[name + "@trained"] = one, trained

    D = lambda v: a.D.get(v, NEG)    # noqa: E731
    DB = lambda v: a.DB.get(v, NEG)  # noqa: E731
    for name, ids in p.outputs.items():
        keys = [w.key for w in p.weights[name]]
        put(f"fwd:{name}", R.mx(*(t0.F[v] for v in ids)), R.mx(*(R.mx(t0.F[v], D(v)) for v in ids)))
        put(f"bwd:{name}", R.sub(R.mx(*(t0.B[v] for v in ids)), p.s_readout),
            R.sub(R.mx(*(R.mx(t0.B[v], DB(v)) for v in ids)), p.s_readout))
        put(f"dW:{name}", R.mx(*(t1.dW.get(k, NEG) for k in keys)),
            R.mx(*(a.last.dW.get(k, NEG) for k in keys)))
        put(f"dfwd:{name}", R.mx(*(t1.dtot(v) for v in ids)), R.mx(*(D(v) for v in ids)))
    put("f0", t0.F["f"], R.mx(t0.F["f"], D("f")))
    put("df", t1.dtot("f"), D("f"))
    for name, inss in p.attentions.items():
        A = [ins.ids()[3] for ins in inss]
        put(f"logit:{name}", R.mx(*(t0.F[v] for v in A)), R.mx(*(R.mx(t0.F[v], D(v)) for v in A)))
        put(f"dlogit:{name}", R.mx(*(t1.dtot(v) for v in A)), R.mx(*(D(v) for v in A)))
    for node, inss in p.residuals.items():
        put(f"branch:{node}", R.mx(*(branch_init(t0, r) for r in inss)),
            R.mx(*(R.mx(branch_init(t0, r), branch_change(a, r)) for r in inss)))
        put(f"dbranch:{node}", R.mx(*(branch_change(a, r, one=True) for r in inss)),
            R.mx(*(branch_change(a, r) for r in inss)))
    return q


def branch_init(t: R.Tape, r: R.Residual) -> Exp:
    """The R random branches' sum at init: e(beta) + e(R)/2 + F(branch out)."""
    return R.add(r.beta, R.half(r.eR), t.F[r.by])


def branch_change(a: SymbolAudit, r: R.Residual, one: bool = False) -> Exp:
    """The branches' summed change: coherent parts add up, random ones in quadrature."""
    dc = a.one.Dc.get(r.by, NEG) if one else a.over("Dc", r.by)
    dr = a.one.Dr.get(r.by, NEG) if one else a.over("Dr", r.by)
    return R.mx(R.add(r.beta, r.eR, dc), R.add(r.beta, R.half(r.eR), dr))


def terms(a: SymbolAudit) -> dict:
    """Weight -> DMFT term -> exponent after training (0 survives, < 0 vanishes, > 0 diverges).

    Forward terms are sizes of contributions to the weight's output field; backward
    terms are normalised by the readout's backward scale `backward_scale` (0 for the
    top of the network's backward pass), which the abc symmetry leaves unchanged.
    """
    out: dict = {}
    for name, ws in a.program.weights.items():
        rows = [a.last.terms.get(w.key, {}) for w in ws]
        names = sorted({k for r in rows for k in r})
        out[name] = {k: R.mx(*(r.get(k, NEG) for r in rows)) for k in names}
    out["output"] = {"f0": a.init.F["f"], "df": a.D.get("f", NEG)}
    return out


# ------------------------------------------------------------------ verdicts
@dataclass(frozen=True)
class DepthFacts:
    """The depth limit of a residual network (docs/theory.md#depth).

    kernel_at_init: 'nontrivial' when the R random branches add up to an O(1) stream
    (branch_exponent = 0), 'trivial' when they vanish; blocks: 'learning' when each
    block's own update is O(1) (block_update_exponent = 0), 'lazy' when it vanishes.
    """

    symbol: str
    kernel_at_init: str
    branch_exponent: Exp
    blocks: str
    block_update_exponent: Exp


@dataclass(frozen=True)
class SymbolVerdict:
    """Everything the analysis says about one limit symbol."""

    symbol: str
    regime: str
    heads: str | None
    depth: DepthFacts | None
    reasons: tuple
    exponents: Mapping
    terms: Mapping
    hidden: Mapping          # hidden-feature quantity -> its change after training
    backward_scale: Exp


def hidden_changes(q: Mapping, graph: Graph) -> dict:
    """The after-training changes of hidden features: weight outputs, logits, branch sums."""
    out = {}
    for name, value in q.items():
        if not name.endswith("@trained"):
            continue
        kind, _, rest = name[:-len("@trained")].partition(":")
        if kind in ("dlogit", "dbranch") or (kind == "dfwd" and graph.weights[rest].role != "readout"):
            out[name] = value
    return out


def verdict(a: SymbolAudit, spec: Spec, graph: Graph) -> SymbolVerdict:
    """Regime, heads, depth facts and reasons for one limit symbol."""
    q, n = quantities(a), a.program.symbol
    hidden = hidden_changes(q, graph)
    ill = _ill_posed_repeats(a)
    if a.offenders or ill or not a.converged:
        regime = "unstable"
        reasons = tuple(_unstable_reasons(a, spec, graph)) + tuple(ill)
        if not a.converged:
            reasons += (f"{n} -> inf: the after-training exponents did not settle in "
                        f"{len(a.steps)} iterations of the audit.",)
    else:
        df = q["df@trained"]
        best = R.mx(*hidden.values())
        regime = "trivial" if df < 0 else ("feature_learning" if best == 0 else "lazy")
        reasons = (_stable_reason(regime, q, hidden, n, spec),)
    heads = None if regime == "unstable" else _heads(a)
    depth = _depth(a, graph) if a.steps else None
    extra = ([_heads_reason(a, heads, q)] if heads else []) + ([_depth_reason(depth)] if depth else [])
    return SymbolVerdict(n, regime, heads, depth, reasons + tuple(extra), q, terms(a), hidden, a.nb)


def _ill_posed_repeats(a: SymbolAudit) -> list:
    """A non-residual repeat whose count grows with n must map exponents to themselves."""
    out, t0 = [], a.init
    for rc in a.program.repeats:
        if not rc.limit or rc.residual or rc.copy != 0:
            continue
        pairs = (("F", t0.F), ("B", t0.B), ("D", a.D), ("DB", a.DB))
        for label, table in pairs:
            fx, fy = table.get(rc.x, NEG), table.get(rc.y, NEG)
            if fx != fy and not (label in ("B", "DB") and rc.x == "x"):
                n = a.program.symbol
                out.append(f"{n} -> inf: the depth limit is ill-posed: one copy of repeat {rc.node} "
                           f"maps the exponent {label} from {power(n, fx)} to {power(n, fy)}, so "
                           f"{n} copies change it without bound; make each copy preserve the "
                           f"exponents (e.g. wrap the body in a residual with scale 1/sqrt({n})).")
                break
    return out


def _heads(a: SymbolAudit) -> str | None:
    """collapse: the random part of every logit vanishes (deterministic order parameters)."""
    A = [ins.ids()[3] for inss in a.program.attentions.values() for ins in inss if ins.K.nout > 0]
    if not A:       # no attention, or a limit (depth) that leaves heads and key dimension finite
        return None
    rnd = R.mx(*(R.mx(a.init.F[v], a.over("Dr", v)) for v in A))
    return "collapse" if rnd < 0 else "diverse"


def _depth(a: SymbolAudit, graph: Graph) -> DepthFacts | None:
    res = [r for inss in a.program.residuals.values() for r in inss if r.eR > 0]
    if not res:
        return None
    branch = R.mx(*(branch_init(a.init, r) for r in res))
    rows = a.last.terms
    upd = R.mx(*(rows.get(w.key, {}).get("update", NEG) for name, ws in a.program.weights.items()
                 if graph.weights[name].in_branch for w in ws))
    return DepthFacts(a.program.symbol, "nontrivial" if branch == 0 else "trivial", branch,
                      "learning" if upd == 0 else "lazy", upd)


# ------------------------------------------------------------------ sentences
def power(n: str, x: Exp) -> str:
    """'N^1/2', 'N^-1', 'N^0'; an absent quantity is '0'."""
    return "0" if x == NEG else f"{n}^{Fraction(x)}"


def _context(spec: Spec, n: str) -> str:
    lr = exponent(spec.training.lr, size_symbol(n), _hyper(spec))
    preset = spec.parameterization.preset or "mup"
    if spec.parameterization.overrides:
        preset += " with per-weight overrides"
    return f"{preset} with " + ("a fixed learning rate" if lr == 0 else f"a learning rate ~ {power(n, lr)}")


def _hyper(spec: Spec) -> dict:
    return {hyper_symbol(k): to_rational(v) for k, v in spec.hyper.items()}


def _roles(prog) -> dict:
    """vector id -> (kind, name) for sentences."""
    roles = {}
    for name, ids in prog.outputs.items():
        roles.update({v: ("weight", name) for v in ids})
    roles["f"] = ("output", "f")
    for name, inss in prog.attentions.items():
        for ins in inss:
            k, q, v, A, o = ins.ids()
            roles.update({k: ("keyquery", name), q: ("keyquery", name), A: ("logit", name)})
    for node, inss in prog.residuals.items():
        for r in inss:
            roles.update({r.y: ("stream", node), r.bx: ("stream", node), r.by: ("branch", node)})
    return roles


def _alpha_hint(spec: Spec, graph: Graph, attn: str, n: str, target: Exp) -> str:
    """' (alpha_A = 1)' when the logit scale's exponent is set by one hyperparameter."""
    op = next((nd.op for nd in graph.walk() if isinstance(nd.op, AttnOp) and nd.op.name == attn), None)
    hyper = _hyper(spec)
    free = [h for h in sorted(op.logit_scale.free_symbols, key=str) if h in hyper] if op else []
    if len(free) != 1 or target == NEG:
        return ""
    others = {h: v for h, v in hyper.items() if h != free[0]}
    e = leading_power(op.logit_scale.xreplace(others), size_symbol(n))
    sol = sympy.solve(sympy.Eq(e, sympy.Rational(target.numerator, target.denominator)), free[0])
    return f" ({free[0]} = {sol[0]})" if len(sol) == 1 else ""


def _when(step: int) -> str:
    return "at initialization" if step == 0 else ("after one step" if step == 1 else "after training")


def _sentence(o, a: SymbolAudit, spec: Spec, graph: Graph, roles: dict) -> tuple:
    """(priority, dedupe key, sentence) for one offending quantity."""
    n, p, when, prog = a.program.symbol, o.value, _when(o.step), a.program
    pw = lambda x: power(n, x)  # noqa: E731
    kind, name = roles.get(o.vector, ("features", o.vector))
    ctx = _context(spec, n)
    if kind == "output" and o.kind == "F":
        return 0, (kind, "F"), (f"the output at initialization grows as {pw(p)} ({ctx}): scale the "
                                f"readout's multiplier or init std by {pw(-p)}")
    if kind == "output":
        lr = exponent(spec.training.lr, size_symbol(n), _hyper(spec))
        fix = {"update": f"scale the learning rate as {pw(lr - p)}" + (
                   " for the lazy limit or use mup" if spec.parameterization.preset in ("sp", "ntk") else ""),
               "response": f"scale the readout multiplier by {pw(-p / 2)}"}.get(
                   o.why, f"scale the readout's init std by {pw(-p)}")
        return 0, (kind, "D"), f"the output change {when} grows as {pw(p)} ({ctx}): {fix}"
    if kind in ("logit", "keyquery"):
        ins = prog.attentions[name][0]
        hint = _alpha_hint(spec, graph, name, n, ins.ls - p)
        if kind == "logit":
            what = ("at initialization grow as" if o.kind == "F" else "change by")
            tail = "" if o.kind == "F" else (
                f" {when}: the queries move coherently along the keys (and back), so k . q sums "
                f"that change over the key dimension {pw(ins.nc)}")
            return 2, (kind, name, o.kind), (f"the logits of {name} {what} {pw(p)}{tail}: "
                                             f"use logit scale {pw(ins.ls - p)}{hint}")
        return 1, (kind, name), (
            f"{when} the logit gradient chi_A of {name} is a coherent sum over the key dimension, so "
            f"the backward signal at its keys and queries grows as {pw(p)} and, through "
            f"{ins.K.name}^T and {ins.Q.name}^T (entries of std {pw(ins.K.s)}), the backward signal "
            f"into the residual stream grows as {pw(p)} times its normal size: the {n} -> infinity "
            f"limit of training does not exist; use logit scale {pw(ins.ls - p)}{hint}")
    if o.kind in ("B", "DB") and kind in ("stream", "branch"):
        return 3, ("bwd-stream", name), (
            f"the backward signal along the residual stream of {name} grows as {pw(p)} {when} "
            f"relative to the readout's (the {n} branches add up): scale its branch scale by {pw(-p)}")
    if o.kind in ("B", "DB"):
        tag, _, wname = o.why.partition(":")
        fix = (f"multiply the learning rate of {wname} by {pw(-p)}" if tag == "bupdate" and wname
               else f"scale the multiplier of {wname or 'the weight above'} by {pw(-p)}")
        where = (f"the input of {wname}" if wname else
                 f"the output of {name}" if kind == "weight" else o.vector)
        return 4, ("bwd", wname or o.vector), (
            f"the backward signal at {where} grows as {pw(p)} {when} relative to the readout's "
            f"({ctx}): {fix}")
    if kind in ("stream", "branch"):
        what = "grows as" if o.kind == "F" else "changes by"
        return 3, (kind, name, o.kind), (f"the residual stream of {name} {what} {pw(p)} {when} (the "
                                         f"{n} branches add up): scale its branch scale by {pw(-p)}")
    if kind == "weight" and o.kind == "F":
        return 3, (kind, name, "F"), (f"the output of {name} at initialization grows as {pw(p)}: "
                                      f"scale its init std by {pw(-p)}")
    if kind == "weight":
        fix = {"update": f"multiply the learning rate of {name} by {pw(-p)}",
               "response": f"scale the multiplier of {name} by {pw(-p / 2)}"}.get(
                   o.why, f"scale the init std of {name} by {pw(-p)}")
        return 3, (kind, name, "D"), f"the change of {name}'s output {when} grows as {pw(p)} ({ctx}): {fix}"
    return 5, (kind, name, o.kind), f"the features {o.vector} grow as {pw(p)} {when}"


def _unstable_reasons(a: SymbolAudit, spec: Spec, graph: Graph) -> list:
    roles, n = _roles(a.program), a.program.symbol
    items, seen = [], set()
    for i, o in enumerate(a.offenders):
        prio, key, text = _sentence(o, a, spec, graph, roles)
        if key not in seen:
            seen.add(key)
            items.append((prio, -o.value, i, text))
    items.sort()
    out = [f"{n} -> inf: unstable: {t}." for *_, t in items[:MAX_SENTENCES]]
    if len(items) > MAX_SENTENCES:
        out.append(f"{n} -> inf: {len(items) - MAX_SENTENCES} more quantities diverge (see the exponents).")
    return out


def _describe(name: str) -> str:
    kind, _, rest = name.replace("@trained", "").partition(":")
    return {"dfwd": f"the output of {rest}", "dlogit": f"the logits of {rest}",
            "dbranch": f"the residual stream of {rest}"}.get(kind, name)


def _stable_reason(regime: str, q: Mapping, hidden: Mapping, n: str, spec: Spec) -> str:
    pw = lambda x: power(n, x)  # noqa: E731
    ctx, df, f0 = _context(spec, n), q["df@trained"], q["f0"]
    note = " (it vanishes)" if f0 < 0 else " (an O(1) Gaussian process)"
    init = f"; the output at initialization scales as {pw(f0)}{note}"
    # the largest change; among equals a weight's output before logits and streams
    best = min(hidden, key=lambda k: (-hidden[k], not k.startswith("dfwd:"), k), default=None)
    if regime == "trivial":
        return (f"{n} -> inf: trivial limit ({ctx}): the output change after training vanishes as "
                f"{pw(df)}, so the network does not learn in the limit; multiply the learning rate "
                f"by {pw(-df)} for a nontrivial limit{init}.")
    if regime == "lazy":
        moves = ("the model has no hidden layer: the readout's features are fixed functions of the input "
                 "(a linear model)"
                 if best is None else
                 f"every hidden feature moves at most as {pw(hidden[best])} ({_describe(best)})")
        return (f"{n} -> inf: lazy (kernel) limit ({ctx}): the output change after training scales "
                f"as {pw(df)} while {moves}{init}.")
    return (f"{n} -> inf: feature learning ({ctx}): the output change after training scales as "
            f"{pw(df)} and {_describe(best)} moves as {pw(hidden[best])}{init}.")


def _heads_reason(a: SymbolAudit, heads: str, q: Mapping) -> str:
    n = a.program.symbol
    name = sorted(a.program.attentions)[0]
    A = [ins.ids()[3] for ins in a.program.attentions[name]]
    rnd = R.mx(*(R.mx(a.init.F[v], a.over("Dr", v)) for v in A))
    coh = R.mx(*(a.over("Dc", v) for v in A))
    if heads == "diverse":
        return (f"{n} -> inf: the logits of {name} stay O(1) and random across heads "
                f"(random part {power(n, rnd)}): the heads stay diverse.")
    moves = ("their coherent change after training is " + power(n, coh) if coh == 0 else
             f"they never move ({power(n, coh)}): attention stays uniform")
    return (f"{n} -> inf: the logits of {name} start at {power(n, q[f'logit:{name}'])} and their random "
            f"part stays {power(n, rnd)} while {moves}; every head follows the same deterministic "
            "dynamics, so multi-head attention collapses to one effective head.")


def _depth_reason(d: DepthFacts) -> str:
    n = d.symbol
    tail = " (block-internal features, attention included, freeze)" if d.blocks == "lazy" else ""
    return (f"{n} -> inf (depth): the kernel at initialization is {d.kernel_at_init} (the random "
            f"branches sum to {power(n, d.branch_exponent)}); the blocks are {d.blocks}: each "
            f"block's own update scales as {power(n, d.block_update_exponent)}{tail}.")


# ------------------------------------------------------------------ several limit symbols
def combine(verdicts: list) -> tuple:
    """(regime, heads, depth, reasons) of a joint limit from its per-symbol verdicts."""
    regimes = [v.regime for v in verdicts]
    if "unstable" in regimes:
        regime = "unstable"
    elif "trivial" in regimes:
        regime = "trivial"
    else:
        names = set.intersection(*(set(v.hidden) for v in verdicts))
        joint = any(all(v.hidden[k] == 0 for v in verdicts) for k in names)
        regime = "feature_learning" if joint else "lazy"
    heads = [v.heads for v in verdicts if v.heads]
    head = None if regime == "unstable" or not heads else ("collapse" if "collapse" in heads else "diverse")
    depth = next((v.depth for v in verdicts if v.depth), None)
    reasons = tuple(r for v in verdicts for r in v.reasons)
    if len(verdicts) > 1 and regime != "unstable":
        reasons += (f"joint limit {', '.join(v.symbol for v in verdicts)} -> inf: {regime}.",)
    return regime, head, depth, reasons
