"""Graph + exponent table -> EquationSystem: the DMFT of an MLP in its width limit.

Compositional: every dense op contributes a Gaussian source (its initial weights used
forward), a response term (the same weights reused backward), and an update term (its
accumulated GD updates); the readout contributes the output equation and the top
backward field. Each term's prefactor (`coefficients`) decides whether it survives the
limit. When every hidden update term vanishes the network is lazy and the system is
the kernel one: NNGP and NTK at initialization and linear output dynamics.
Discrete-time GD, docs/theory.md#mlp-dmft; the B^ell(t, t) term is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping

import sympy
from sympy import Sum

from ..errors import LimitError, Unsupported
from ..graph.build import Graph
from ..notation import (
    A, B, Delta, Expect, G, H, H0, GaussDPhi, GaussPhi, Gk, K, Loss, Phi, Phi0, Phid, Phik, Response,
    Sigma, Sigmaf, as_expr, dphi, ell, f, g, h, h0, mu, nu, phi, r, s, size_symbol, t, u, y, z,
)
from ..scaling.parameterization import WeightScaling, leading_power
from ..spec.types import Act, Dense, Readout, Repeat, Residual, Spec
from .coefficients import Prefactors, dense_prefactors, readout_prefactors, take_limit
from .system import Equation, EquationSystem, Loop, SourceLaw, Step

P = size_symbol("P")
ONE = sympy.Integer(1)


@dataclass(frozen=True)
class Layer:
    """One dense weight of the chain: `weight` (fan-in `fan_in`), then activation `fn` on its output.

    `scale` is the residual branch scale multiplying the weight's output (1 outside residual blocks).
    """

    weight: str
    fn: str
    fan_in: sympy.Expr
    fan_out: sympy.Expr
    scale: sympy.Expr = sympy.Integer(1)


@dataclass(frozen=True)
class Chain:
    """The network as the derivation sees it: an MLP, or an embedding plus a residual stream of blocks."""

    layers: tuple[Layer, ...]
    readout: str
    residual: bool


# ------------------------------------------------------------------ structure
def chain_of(spec: Spec, graph: Graph) -> Chain:
    """Unroll the graph into its dense weights with their activations (and residual scales)."""
    ops = list(_unroll(spec.model, spec.sizes))
    if any(isinstance(op, Residual) for op in ops):
        return _residual_chain(ops, graph)
    layers, readout = [], None
    for i, op in enumerate(ops):
        if isinstance(op, Dense):
            nxt = ops[i + 1] if i + 1 < len(ops) else None
            fn = nxt.fn if isinstance(nxt, Act) else "linear"
            w = graph.weights[op.name]
            layers.append(Layer(op.name, fn, w.fan_in, w.fan_out))
        elif isinstance(op, Readout):
            readout = op.name
        elif not isinstance(op, Act):
            raise Unsupported(f"the DMFT of '{op.kind}' ops", "this version derives MLPs and residual networks")
    if not layers or readout is None:
        raise Unsupported("a model without hidden dense layers or readout", "write dense/act layers then a readout")
    return _one_activation(Chain(tuple(layers), readout, False))


def _residual_chain(ops, graph: Graph) -> Chain:
    """embed dense, residual blocks [act, dense] with branch scale, an optional act, the readout."""
    hint = ("write the residual network as: dense (embedding), repeat of residual{scale, branch: [act, dense]}, "
            "act, readout")
    if not (isinstance(ops[0], Dense) and isinstance(ops[-1], Readout)):
        raise Unsupported("a residual network without a dense embedding first and a readout last", hint)
    blocks = [op for op in ops[1:-1] if isinstance(op, Residual)]
    rest = [op for op in ops[1:-1] if not isinstance(op, Residual)]
    if any(not (len(b.branch) == 2 and isinstance(b.branch[0], Act) and isinstance(b.branch[1], Dense))
           for b in blocks) or any(not isinstance(op, Act) for op in rest) or len(rest) > 1:
        raise Unsupported("residual branches other than [act, dense] (or ops between blocks)", hint)
    fn = blocks[0].branch[0].fn if blocks else (rest[0].fn if rest else "linear")
    if rest and rest[0].fn != fn or not rest:
        raise Unsupported("a residual network whose readout does not read phi(h) with the branches' phi", hint)
    emb = graph.weights[ops[0].name]
    layers = [Layer(ops[0].name, fn, emb.fan_in, emb.fan_out)]
    for b in blocks:
        w = graph.weights[b.branch[1].name]
        layers.append(Layer(w.name, b.branch[0].fn, w.fan_in, w.fan_out, b.scale))
    return _one_activation(Chain(tuple(layers), ops[-1].name, True))


def _one_activation(chain: Chain) -> Chain:
    fns = {lay.fn for lay in chain.layers}
    if len(fns) > 1:
        raise Unsupported(f"different activations per layer {sorted(fns)}", "use one activation throughout")
    return chain


def _unroll(ops, sizes):
    for op in ops:
        if isinstance(op, Repeat):
            times = int(op.times.subs({size_symbol(k): v for k, v in sizes.items()}))
            for _ in range(times):
                yield from _unroll(op.body, sizes)
        else:
            yield op


# ------------------------------------------------------------------ coefficients
LEARNING_TERMS = ("upd", "bupd")
LAZY_TERMS = ("src", "bsrc", "ntk", "f0")


def limit_coefficients(spec: Spec, graph: Graph, params: Mapping[str, WeightScaling],
                       only: tuple[str, ...] | None = None) -> dict[str, sympy.Expr]:
    """Term prefactors after the limit, named '<term>:<weight>' (and '<term>:readout').

    `only` restricts the terms computed: a lazy system needs no response prefactors (they
    diverge there while the responses they multiply vanish; the NTK carries their product).
    """
    ch = chain_of(spec, graph)
    layers, ro = ch.layers, ch.readout
    ws_ro = params[ro]
    s_hat = ws_ro.multiplier * ws_ro.init_std
    finite = {size_symbol(k): v for k, v in spec.sizes.items() if k not in spec.limit}
    out = {}
    for i, lay in enumerate(layers):
        # a residual branch scale multiplies the weight's output: it acts as part of its multiplier
        ws = replace(params[lay.weight], multiplier=params[lay.weight].multiplier * lay.scale)
        pre = dense_prefactors(ws, lay.fan_in, lay.fan_out, s_hat)
        # the first layer acts on data: no backward field, so no backward terms and no response
        terms = ("src", "upd", "ntk") if i == 0 else tuple(Prefactors.__dataclass_fields__)
        for term in terms:
            if only is None or term in only:
                what = f"the {term} term of weight {lay.weight}"
                if lay.scale != 1 and "L" in spec.limit and term != "ntk":
                    value = depth_limit(getattr(pre, term), spec, what)   # a block of the stream as L -> oo
                else:
                    value = take_limit(getattr(pre, term), spec.limit, what, spec.hyper)
                out[f"{term}:{lay.weight}"] = value.subs(finite)      # finite sizes (L at a width limit)
    for term, expr in readout_prefactors(ws_ro, graph.weights[ro].fan_in).items():
        if only is None or term in only:
            out[f"{term}:readout"] = take_limit(expr, spec.limit, f"the {term} term of the readout {ro}",
                                                spec.hyper).subs(finite)
    return out


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


def _uniform(c: Mapping[str, sympy.Expr], term: str, layers: list[Layer]) -> sympy.Expr:
    vals = {c[f"{term}:{lay.weight}"] for lay in layers}
    if len(vals) != 1:
        raise Unsupported(f"different {term} prefactors across hidden layers {sorted(map(str, vals))}",
                          "give the hidden layers one parameterization")
    return vals.pop()


# ------------------------------------------------------------------ the system
def derive(spec: Spec, graph: Graph, params: Mapping[str, WeightScaling]) -> EquationSystem:
    """The DMFT equation system of an MLP or residual spec in the limit `spec.limit`.

    With L in the limit (residual networks), the stream is written on a grid of K = solver.depth_steps
    layer-time steps (default: the spec's L) with the L -> oo prefactors in units of d tau = 1 / K.
    """
    from .transformer import derive_transformer, is_transformer   # the transformer builds on this module

    if is_transformer(spec.model):
        return derive_transformer(spec, graph, params)
    K = 0
    if "L" in spec.limit:
        K = spec.solver.depth_steps or int(spec.sizes["L"])
        spec = replace(spec, sizes={**spec.sizes, "L": K})
    ch = chain_of(spec, graph)
    layers = list(ch.layers)
    c = limit_coefficients(spec, graph, params, only=LEARNING_TERMS)
    if any(v != 0 for v in c.values()):
        c = limit_coefficients(spec, graph, params)
        if ch.residual:
            if c["f0:readout"] != 0:
                raise Unsupported("feature learning with a random O(1) output at initialization",
                                  "use the mup / depth_mup / completep presets")
            return replace(_residual_feature_learning(spec, layers, c), depth_steps=K)
        if c["f0:readout"] != 0:
            raise Unsupported("feature learning with a random O(1) output at initialization",
                              "use mup (output multiplier 1/(gamma0 N)) or a lazy parameterization")
        return _feature_learning(spec, layers, c)
    if ch.residual:
        raise Unsupported("the lazy (kernel) limit of a residual network", "use a feature-learning parameterization")
    return _lazy(spec, layers, limit_coefficients(spec, graph, params, only=LAZY_TERMS))


def sum_past(e):
    """sum over nu and s < t: terms from earlier GD updates (and responses that need them)."""
    return Sum(e, (nu, 0, P - 1), (s, 0, t - 1))


def sum_now(e):
    """sum over nu and s <= t: the backward response, which sees this step's forward pass."""
    return Sum(e, (nu, 0, P - 1), (s, 0, t))


def _ell_range(lo, hi):
    return (as_expr(lo), as_expr(hi))


def _feature_learning(spec: Spec, layers: list[Layer], c) -> EquationSystem:
    L = len(layers)
    fn = layers[0].fn
    hid = layers[1:]
    first = layers[0].weight
    Lsym = sympy.Integer(L)
    cu0 = c[f"upd:{first}"]
    eqs = [
        Equation("eq:field.h1", h[1, mu, t], u[1, mu] + sum_past(cu0 * Delta[nu, s] * Phi0[mu, nu] * g[1, nu, s]),
                 "field", "first-layer preactivation: static source plus the first weights' updates",
                 _ell_range(1, 1)),
    ]
    if hid:
        cr, cu = _uniform(c, "resp", hid), _uniform(c, "upd", hid)
        cbr, cbu = _uniform(c, "bresp", hid), _uniform(c, "bupd", hid)
        eqs.append(Equation(
            "eq:field.h", h[ell + 1, mu, t],
            u[ell + 1, mu, t] + sum_past((cr * A[ell, mu, nu, t, s] + cu * Delta[nu, s] * Phi[ell, mu, nu, t, s])
                                         * g[ell + 1, nu, s]),
            "field", "hidden preactivation: source, response of the reused W(0), weight updates",
            _ell_range(1, L - 1)))
        eqs.append(Equation(
            "eq:field.z", z[ell, mu, t],
            r[ell, mu, t] + sum_now(cbr * B[ell, mu, nu, t, s] * phi(h[ell, nu, s]))
            + sum_past(cbu * Delta[nu, s] * G[ell + 1, mu, nu, t, s] * phi(h[ell, nu, s])),
            "field", "backward field: source, response (s <= t: the backward pass of step t reuses W(0)), updates",
            _ell_range(1, L - 1)))
    eqs += [
        Equation("eq:field.zL", z[Lsym, mu, t],
                 r[Lsym] + sum_past(c["zupd:readout"] * Delta[nu, s] * phi(h[Lsym, nu, s])),
                 "field", "top backward field: the readout weight, constant source plus its updates",
                 _ell_range(L, L)),
        Equation("eq:field.g", g[ell, mu, t], dphi(h[ell, mu, t]) * z[ell, mu, t], "field",
                 "backward field at the preactivation", _ell_range(1, L)),
        Equation("eq:kernel.Phi", Phi[ell, mu, nu, t, s], Expect(phi(h[ell, mu, t]) * phi(h[ell, nu, s])),
                 "kernel", "feature kernel", _ell_range(1, L)),
        Equation("eq:kernel.G", G[ell, mu, nu, t, s], Expect(g[ell, mu, t] * g[ell, nu, s]),
                 "kernel", "gradient kernel", _ell_range(1, L)),
    ]
    if hid:
        eqs += [
            Equation("eq:response.A", A[ell, mu, nu, t, s], Expect(Response(phi(h[ell, mu, t]), r[ell, nu, s])),
                     "response", "forward response to the backward source, s < t", _ell_range(1, L - 1), "strict"),
            Equation("eq:response.B", B[ell, mu, nu, t, s], Expect(Response(g[ell + 1, mu, t], u[ell + 1, nu, s])),
                     "response", "backward response to the forward source, s <= t", _ell_range(1, L - 1), "causal"),
        ]
    eqs += [
        Equation("eq:output.f", f[mu, t],
                 c["fresp:readout"] * Expect(Response(phi(h[Lsym, mu, t]), r[Lsym]))
                 + sum_past(c["fupd:readout"] * Delta[nu, s] * Phi[Lsym, mu, nu, t, s]),
                 "output", "output: response of the readout's initial weights plus its updates"),
        Equation("eq:error.Delta", Delta[mu, t], (y[mu] - f[mu, t]) / P, "error", "error signal"),
        Equation("eq:loss", Loss[t], Sum((f[mu, t] - y[mu]) ** 2, (mu, 0, P - 1)) / (2 * P), "loss",
                 "training loss (deterministic in this limit)"),
    ]
    sources = [
        SourceLaw("src:u1", u[1, mu], Phi0[mu, nu], c[f"src:{first}"], "static",
                  "first-layer source, covariance the data kernel", _ell_range(1, 1)),
        SourceLaw("src:rL", r[Lsym], ONE, ONE, "scalar", "the readout weight's initial value", _ell_range(L, L)),
    ]
    if hid:
        sources += [
            SourceLaw("src:u", u[ell + 1, mu, t], Phi[ell, mu, nu, t, s], _uniform(c, "src", hid), "dynamic",
                      "forward source of layer ell + 1", _ell_range(1, L - 1)),
            SourceLaw("src:r", r[ell, mu, t], G[ell + 1, mu, nu, t, s], _uniform(c, "bsrc", hid), "dynamic",
                      "backward source of layer ell", _ell_range(1, L - 1)),
        ]
    forward = [Step("src:u1", ONE), Step("eq:field.h1", ONE), Step("eq:kernel.Phi", ONE)]
    if hid:
        forward.append(Step("eq:response.A", ONE))
        forward.append(Loop(ONE, Lsym - 1, 1, (
            Step("src:u", ell), Step("eq:field.h", ell), Step("eq:kernel.Phi", ell + 1), Step("eq:response.A", ell + 1),
        ), "forward sweep up the layers"))
    backward = [Step("src:rL", Lsym), Step("eq:field.zL", Lsym), Step("eq:field.g", Lsym), Step("eq:kernel.G", Lsym)]
    if hid:
        backward.append(Loop(Lsym - 1, ONE, -1, (
            Step("src:r", ell), Step("eq:response.B", ell), Step("eq:field.z", ell), Step("eq:field.g", ell),
            Step("eq:kernel.G", ell),
        ), "backward sweep down the layers"))
    method = "exact_gaussian" if fn == "linear" else "monte_carlo"
    notes = (
        "A and B here are eta*gamma0 times Bordelon & Pehlevan's (the prefactor sits in the term).",
        "Responses are computed by Gaussian integration by parts on the whitened sources.",
    )
    sysm = EquationSystem(spec.name, "feature_learning", method, spec.limit, L, fn, tuple(eqs), tuple(sources),
                          tuple(forward), (Step("eq:output.f"), Step("eq:error.Delta")), tuple(backward), c, notes,
                          LAZY_PARTS)
    sysm.check()
    return sysm


#: the gamma0 = 0 single-site process, field by field: the control variates of responses and kernels.
LAZY_PARTS = {"h": u[ell, mu, t], "z": r[ell, mu, t], "g": dphi(u[ell, mu, t]) * r[ell, mu, t]}


def _residual_feature_learning(spec: Spec, layers: list[Layer], c) -> EquationSystem:
    """The residual stream in its width limit at finite depth (docs/theory.md#depth).

    Stream positions ell = 1..L+1 (h^1 the embedding), block ell maps h^ell to h^{ell+1}; the
    branch scale sits in every prefactor of block ell's terms.
    """
    L = len(layers) - 1
    fn = layers[0].fn
    Ls, top = sympy.Integer(L), sympy.Integer(L + 1)
    blocks, first = layers[1:], layers[0].weight
    cr, cu = _uniform(c, "resp", blocks), _uniform(c, "upd", blocks)
    cbr, cbu = _uniform(c, "bresp", blocks), _uniform(c, "bupd", blocks)
    csrc = _uniform(c, "src", blocks)
    eqs = [
        Equation("eq:field.h1", h[1, mu, t],
                 u[1, mu] + sum_past(c[f"upd:{first}"] * Delta[nu, s] * Phi0[mu, nu] * g[1, nu, s]),
                 "field", "embedding: static source plus the embedding's updates", _ell_range(1, 1)),
        Equation("eq:field.h", h[ell + 1, mu, t],
                 h[ell, mu, t] + u[ell + 1, mu, t]
                 + sum_past((cr * A[ell, mu, nu, t, s] + cu * Delta[nu, s] * Phi[ell, mu, nu, t, s]) * g[ell + 1, nu, s]),
                 "field", "residual stream: block ell adds its source, response and updates", _ell_range(1, L)),
        Equation("eq:field.zL", z[top, mu, t],
                 r[top] + sum_past(c["zupd:readout"] * Delta[nu, s] * phi(h[top, nu, s])),
                 "field", "readout backward field: its initial weight plus its updates", _ell_range(L + 1, L + 1)),
        Equation("eq:field.gL", g[top, mu, t], dphi(h[top, mu, t]) * z[top, mu, t], "field",
                 "backward field at the top of the stream", _ell_range(L + 1, L + 1)),
        Equation("eq:field.g", g[ell, mu, t],
                 g[ell + 1, mu, t] + dphi(h[ell, mu, t]) * (
                     r[ell, mu, t] + sum_now(cbr * B[ell, mu, nu, t, s] * phi(h[ell, nu, s]))
                     + sum_past(cbu * Delta[nu, s] * G[ell + 1, mu, nu, t, s] * phi(h[ell, nu, s]))),
                 "field", "backward stream: identity path plus block ell's backward source, response, updates",
                 _ell_range(1, L)),
        Equation("eq:kernel.Phi", Phi[ell, mu, nu, t, s], Expect(phi(h[ell, mu, t]) * phi(h[ell, nu, s])),
                 "kernel", "feature kernel of the stream after phi", _ell_range(1, L + 1)),
        Equation("eq:kernel.G", G[ell, mu, nu, t, s], Expect(g[ell, mu, t] * g[ell, nu, s]),
                 "kernel", "gradient kernel of the stream", _ell_range(1, L + 1)),
        Equation("eq:kernel.H", H[ell, mu, nu, t, s], Expect(h[ell, mu, t] * h[ell, nu, s]),
                 "kernel", "kernel of the residual stream itself", _ell_range(1, L + 1)),
        Equation("eq:response.A", A[ell, mu, nu, t, s], Expect(Response(phi(h[ell, mu, t]), r[ell, nu, s])),
                 "response", "block input's response to the block's backward source, s < t", _ell_range(1, L),
                 "strict"),
        Equation("eq:response.B", B[ell, mu, nu, t, s], Expect(Response(g[ell + 1, mu, t], u[ell + 1, nu, s])),
                 "response", "stream backward field's response to the block's source, s <= t", _ell_range(1, L),
                 "causal"),
        Equation("eq:cv.h1", h0[1, mu, t], u[1, mu], "twin", "stream at gamma0 = 0: the embedding source",
                 _ell_range(1, 1)),
        Equation("eq:cv.H1", H0[1, mu, nu, t, s], c[f"src:{first}"] * Phi0[mu, nu], "twin_kernel",
                 "its kernel, exactly: the embedding source's covariance", _ell_range(1, 1)),
        Equation("eq:cv.h", h0[ell + 1, mu, t], h0[ell, mu, t] + u[ell + 1, mu, t], "twin",
                 "stream at gamma0 = 0: the sources of the blocks so far", _ell_range(1, L)),
        Equation("eq:cv.H", H0[ell + 1, mu, nu, t, s], H0[ell, mu, nu, t, s] + csrc * Phi[ell, mu, nu, t, s],
                 "twin_kernel", "its kernel, exactly: independent sources add their covariances", _ell_range(1, L)),
        Equation("eq:output.f", f[mu, t],
                 c["fresp:readout"] * Expect(Response(phi(h[top, mu, t]), r[top]))
                 + sum_past(c["fupd:readout"] * Delta[nu, s] * Phi[top, mu, nu, t, s]),
                 "output", "output: response of the readout's initial weights plus its updates"),
        Equation("eq:error.Delta", Delta[mu, t], (y[mu] - f[mu, t]) / P, "error", "error signal"),
        Equation("eq:loss", Loss[t], Sum((f[mu, t] - y[mu]) ** 2, (mu, 0, P - 1)) / (2 * P), "loss",
                 "training loss (deterministic in this limit)"),
    ]
    sources = (
        SourceLaw("src:u1", u[1, mu], Phi0[mu, nu], c[f"src:{first}"], "static",
                  "embedding source, covariance the data kernel", _ell_range(1, 1)),
        SourceLaw("src:rL", r[top], ONE, ONE, "scalar", "the readout weight's initial value",
                  _ell_range(L + 1, L + 1)),
        SourceLaw("src:u", u[ell + 1, mu, t], Phi[ell, mu, nu, t, s], csrc, "dynamic",
                  "block ell's forward source (branch scale included)", _ell_range(1, L)),
        SourceLaw("src:r", r[ell, mu, t], G[ell + 1, mu, nu, t, s], _uniform(c, "bsrc", blocks), "dynamic",
                  "block ell's backward source (branch scale included)", _ell_range(1, L)),
    )
    forward = (Step("src:u1", ONE), Step("eq:field.h1", ONE), Step("eq:cv.h1", ONE), Step("eq:cv.H1", ONE),
               Step("eq:kernel.Phi", ONE), Step("eq:response.A", ONE), Step("eq:kernel.H", ONE),
               Loop(ONE, Ls, 1, (Step("src:u", ell), Step("eq:field.h", ell), Step("eq:cv.h", ell), Step("eq:cv.H", ell),
                                 Step("eq:kernel.Phi", ell + 1), Step("eq:kernel.H", ell + 1),
                                 Step("eq:response.A", ell + 1)),
                    "forward along the stream"))
    backward = (Step("src:rL", top), Step("eq:field.zL", top), Step("eq:field.gL", top), Step("eq:kernel.G", top),
                Loop(Ls, ONE, -1, (Step("src:r", ell), Step("eq:response.B", ell), Step("eq:field.g", ell),
                                   Step("eq:kernel.G", ell)), "backward along the stream"))
    method = "exact_gaussian" if fn == "linear" else "monte_carlo"
    depth = ("Depth limit L -> oo: ell indexes the layer-time grid tau = ell dtau, dtau = 1/K; the sums over blocks "
             "are Euler steps of integrals over tau in [0, 1] (sources of variance ~ dtau are Brownian increments; "
             "terms ~ dtau^2 vanished)." if "dtau" in str(c) else
             "Residual stream at finite depth L in the width limit; the branch scale beta0 / L^alpha_L and the "
             "depth factors of the parameterization are inside the prefactors.")
    notes = (depth,
             "A and B here are eta*gamma0 times Bordelon & Pehlevan's (the prefactor sits in the term).")
    sysm = EquationSystem(spec.name, "feature_learning", method, spec.limit, L + 1, fn, tuple(eqs), sources,
                          forward, (Step("eq:output.f"), Step("eq:error.Delta")), backward, c, notes,
                          {"h": h0[ell, mu, t], "z": r[ell, mu, t], "g": dphi(u[ell, mu, t]) * r[ell, mu, t]},
                          exact_twins={"h0": "H0"})
    sysm.check()
    return sysm


def _lazy(spec: Spec, layers: list[Layer], c) -> EquationSystem:
    """Kernel limit: Sigma^1 = c Phi0, PhiK^ell = E[phi phi], PhiD^ell = E[phi' phi'], Sigma^{ell+1} = c PhiK^ell,
    GK^L = PhiD^L, GK^ell = c GK^{ell+1} PhiD^ell, K = sum_W kappa_W GK * PhiK_in, f(t+1) = f(t) + K Delta(t)."""
    L = len(layers)
    fn = layers[0].fn
    Lsym = sympy.Integer(L)
    first, hid = layers[0], layers[1:]
    csrc = _uniform(c, "src", hid) if hid else ONE
    cbsrc = _uniform(c, "bsrc", hid) if hid else ONE
    kap = _uniform(c, "ntk", hid) if hid else sympy.Integer(0)
    eqs = [
        Equation("eq:lazy.Sigma1", Sigma[1, mu, nu], c[f"src:{first.weight}"] * Phi0[mu, nu], "lazy",
                 "first-layer preactivation covariance", _ell_range(1, 1)),
        Equation("eq:lazy.Sigma", Sigma[ell + 1, mu, nu], csrc * Phik[ell, mu, nu], "lazy",
                 "preactivation covariance (NNGP recursion)", _ell_range(1, L - 1)),
        Equation("eq:lazy.Phi", Phik[ell, mu, nu], GaussPhi(Sigma[ell, mu, nu]), "lazy",
                 "feature kernel E[phi(u) phi(u)], u ~ N(0, Sigma^ell)", _ell_range(1, L)),
        Equation("eq:lazy.PhiD", Phid[ell, mu, nu], GaussDPhi(Sigma[ell, mu, nu]), "lazy",
                 "derivative kernel E[phi'(u) phi'(u)]", _ell_range(1, L)),
        Equation("eq:lazy.GL", Gk[Lsym, mu, nu], Phid[Lsym, mu, nu], "lazy", "top gradient kernel",
                 _ell_range(L, L)),
        Equation("eq:lazy.G", Gk[ell, mu, nu], cbsrc * Gk[ell + 1, mu, nu] * Phid[ell, mu, nu], "lazy",
                 "gradient kernel recursion", _ell_range(1, L - 1)),
        Equation("eq:lazy.K", K[mu, nu],
                 c[f"ntk:{first.weight}"] * Gk[1, mu, nu] * Phi0[mu, nu]
                 + (Sum(kap * Gk[ell + 1, mu, nu] * Phik[ell, mu, nu], (ell, 1, Lsym - 1)) if kap != 0 and hid else 0)
                 + c["ntk:readout"] * Phik[Lsym, mu, nu], "lazy", "neural tangent kernel (eta included)"),
        Equation("eq:lazy.Sigmaf", Sigmaf[mu, nu], c["f0:readout"] * Phik[Lsym, mu, nu], "lazy",
                 "covariance of the Gaussian output at initialization"),
        Equation("eq:lazy.f", f[mu, t + 1], f[mu, t] + Sum(K[mu, nu] * Delta[nu, t], (nu, 0, P - 1)), "lazy_output",
                 "linear output dynamics, f(0) ~ N(0, Sigma_f)"),
        Equation("eq:error.Delta", Delta[mu, t], (y[mu] - f[mu, t]) / P, "error", "error signal"),
        Equation("eq:loss", Loss[t], Sum(Expect((f[mu, t] - y[mu]) ** 2), (mu, 0, P - 1)) / (2 * P), "loss",
                 "loss averaged over initializations (keeps the variance of f(0))"),
    ]
    if not hid:
        eqs = [e for e in eqs if e.label not in ("eq:lazy.Sigma", "eq:lazy.G")]
    forward = [Step("eq:lazy.Sigma1", ONE),
               Loop(ONE, Lsym, 1, tuple(Step(lab, ell) for lab in ("eq:lazy.Phi", "eq:lazy.PhiD", "eq:lazy.Sigma")
                                        if hid or lab != "eq:lazy.Sigma"), "NNGP recursion up the layers")]
    backward = [Step("eq:lazy.GL", Lsym)]
    if hid:
        backward.append(Loop(Lsym - 1, ONE, -1, (Step("eq:lazy.G", ell),), "gradient kernels down the layers"))
    output = (Step("eq:lazy.K"), Step("eq:lazy.Sigmaf"))
    method = "closed_form" if fn in ("linear", "relu", "erf", "quadratic") else "quadrature"
    sysm = EquationSystem(spec.name, "lazy", method, spec.limit, L, fn, tuple(eqs), (), tuple(forward), output,
                          tuple(backward), c, ("Kernels at initialization; the features do not move in this limit.",))
    sysm.check()
    return sysm
