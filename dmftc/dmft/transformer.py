"""The DMFT of the seed paper's pre-LayerNorm transformer as the key/query dimension N -> oo at fixed H.

Same engine as the MLP and residual systems (`derive`): every dense weight contributes its
Gaussian source, its response (the reuse of W(0) backward) and its update term, with the
prefactors of `coefficients` from the one exponent table; what is new are four blocks whose
mean-field meaning is written here beside the finite forward pass of `dmftc.blocks`:

- LayerNorm (blocks/layernorm.py): LN(h)_i = (h_i - mean) / std over the N H coordinates. In the
  limit the mean is <h> = 0 and the variance the stream kernel's diagonal, so hb = h / sqrt(H(t,t));
  its backward pass keeps the projection of the finite Jacobian, g = (gb - hb C) / sqrt(H(t,t))
  with C = <hb gb> (docs/theory.md#attention; read off the finite Jacobian).
- attention logits (blocks/attention.py): A_{ss'} = N^-alpha_A q_s . k_s' is an average over the
  head's N coordinates; with alpha_A = 1 it is the deterministic order parameter Lam = <q k>, the
  same for every head (all heads start from identical equations: they collapse to one).
- softmax over keys of deterministic logits: o = Sm v mixes positions of one sequence linearly;
  backward gv = Sm^T go; the logits' gradient is D = Sm * (M - rowsum(Sm * M)) with M = <go v>,
  so gq = D k and gk = D^T q (the key/query response pair: each one's backward field is the other).
- mean pooling and the readout: f_mu = sum_s ftok_{mu s}, ftok = (1/S) readout(hb^top).

Positions alpha = (mu, s) run over the P S tokens (sample-major); the error signal Delta_alpha is
the error of alpha's sequence, (y_mu - f_mu) / P (the GD step sums the tokens' contributions).
Stream positions ell = 1..R+1 for R residual blocks; block ell maps h[ell] -> h[ell + 1]; its
fields (head or MLP site) carry the block's index.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping

import sympy
from sympy import Sum

from ..errors import LimitError, Unsupported
from ..graph.build import Graph
from ..notation import (
    Cln, Delta, Dm, Dm0, Expect, Fseq, G, H, H0, HeadMean, Lam, Lam0, Loss, Mm, Mm0, Phi, Phi0, Response, Seq, Sm, Sm0,
    Softmax, as_expr, dphi, ell,
    ftok, g, g0, gb, gk, gk0, go, gq, gq0, gv, gv0, gx, h, h0, hb, k_, kappa, mu, nu, o0, o_, phi, q_, r, s,
    size_symbol, t, u, v_, weight_bases, x_, y, z, zx,
)
from ..scaling.parameterization import WeightScaling, attention_alpha
from ..spec.types import Act, Attention, Dense, LayerNorm, Pool, Readout, Repeat, Residual, Spec
from .coefficients import dense_prefactors, readout_prefactors, take_limit
from .system import Equation, EquationSystem, Loop, SourceLaw, Step

P, S = size_symbol("P"), size_symbol("S")
NPOS = P * S
ONE = sympy.Integer(1)
HINT = ("write the transformer as: dense (embedding), repeat of residual blocks whose branches are "
        "[layernorm, attention] or [layernorm, dense, act, dense], then layernorm, pool: mean, readout")

# kernels and responses of the transformer, by weight role
Phio, Phix = sympy.IndexedBase("Phio"), sympy.IndexedBase("Phix")
GK_, GQ_, GV_, Gx = (sympy.IndexedBase(n) for n in ("Gk", "Gq", "Gv", "Gx"))


@dataclass(frozen=True)
class Block:
    """One residual block of the stream: `kind` 'attention' or 'mlp', its weights by role, its branch scale."""

    kind: str
    weights: Mapping[str, str]
    scale: sympy.Expr
    fn: str = "linear"
    logit_scale: sympy.Expr = ONE
    attention: Attention | None = None


@dataclass(frozen=True)
class Transformer:
    """The network as the derivation sees it: embedding, a repeated pattern of blocks, readout."""

    embed: str
    pattern: tuple[Block, ...]     # the blocks of one repeat (one transformer layer)
    layers: int                    # repeats
    readout: str

    @property
    def blocks(self) -> tuple[Block, ...]:
        return self.pattern * self.layers


def is_transformer(ops) -> bool:
    return any(isinstance(op, (Attention, Pool)) for op in _walk(ops))


def _walk(ops):
    for op in ops:
        yield op
        yield from _walk(getattr(op, "body", ()) or getattr(op, "branch", ()))


def transformer_of(spec: Spec, graph: Graph) -> Transformer:
    """Read embed, repeat{residual blocks}, layernorm, pool, readout from the spec's model."""
    ops = list(spec.model)
    shape = [type(op) for op in ops]
    if shape != [Dense, Repeat, LayerNorm, Pool, Readout]:
        raise Unsupported("this transformer layout for the DMFT", HINT)
    rep = ops[1]
    times = int(rep.times.subs({size_symbol(k): v for k, v in spec.sizes.items()}))
    pattern = []
    for op in rep.body:
        if not isinstance(op, Residual):
            raise Unsupported(f"a '{op.kind}' op between residual blocks", HINT)
        br = op.branch
        if len(br) == 2 and isinstance(br[0], LayerNorm) and isinstance(br[1], Attention):
            att = br[1]
            pattern.append(Block("attention", {p: f"{att.name}_{p}" for p in "KQVO"}, op.scale,
                                 logit_scale=att.logit_scale, attention=att))
        elif (len(br) == 4 and isinstance(br[0], LayerNorm) and isinstance(br[1], Dense) and isinstance(br[2], Act)
              and isinstance(br[3], Dense)):
            pattern.append(Block("mlp", {"1": br[1].name, "2": br[3].name}, op.scale, fn=br[2].fn))
        else:
            raise Unsupported("a residual branch other than [layernorm, attention] or [layernorm, dense, act, dense]",
                              HINT)
    fns = {b.fn for b in pattern if b.kind == "mlp"}
    if len(fns) > 1:
        raise Unsupported(f"different MLP activations {sorted(fns)}", "use one activation in the MLP branches")
    return Transformer(ops[0].name, tuple(pattern), times, ops[-1].name)


# ------------------------------------------------------------------ coefficients
#: the dense roles whose output is the branch output (the branch scale multiplies them)
OUTPUT_ROLES = ("O", "2")


def transformer_coefficients(spec: Spec, graph: Graph, params: Mapping[str, WeightScaling],
                             tf: Transformer) -> dict[str, sympy.Expr]:
    """Term prefactors after the limit, '<term>:<role>' (role embed, K, Q, V, O, 1, 2, readout), plus
    'logit' = N * logit_scale, the size of the logits' average over a head's N coordinates."""
    if set(spec.limit) not in ({"N"}, {"H"}):
        raise Unsupported(f"the transformer DMFT in the limit {spec.limit}",
                          "this version derives N -> oo at fixed H and L (limit: {N: inf}) or H -> oo at fixed N "
                          "and L (limit: {H: inf})")
    ro = params[tf.readout]
    s_hat = ro.multiplier * ro.init_std
    finite = {size_symbol(k): v for k, v in spec.sizes.items() if k not in spec.limit}
    out: dict[str, sympy.Expr] = {}

    def put(key: str, expr: sympy.Expr, what: str) -> None:
        # exponents (alpha_A, alpha_L) are numbers here: whether the limit exists depends on them
        expr = expr.replace(lambda e: e.is_Pow and any(x.name in spec.hyper for x in e.exp.free_symbols),
                            lambda e: sympy.Pow(e.base, e.exp.subs({x: sympy.nsimplify(spec.hyper[x.name])
                                                                    for x in e.exp.free_symbols
                                                                    if x.name in spec.hyper})))
        value = take_limit(expr, spec.limit, what, spec.hyper).subs(finite)
        if key in out and sympy.simplify(out[key] - value) != 0:
            raise Unsupported(f"different {key} prefactors across blocks ({out[key]} vs {value})",
                              "give every block of one kind the same parameterization")
        out[key] = value

    emb = graph.weights[tf.embed]
    pre = dense_prefactors(params[tf.embed], emb.fan_in, emb.fan_out, s_hat)
    put("src:embed", pre.src, f"the source of the embedding {tf.embed}")
    put("upd:embed", pre.upd, f"the update term of the embedding {tf.embed}")
    for b in tf.pattern:              # the graph keeps one template weight per repeat slot
        for role, name in b.weights.items():
            w = graph.weights[name]
            ws = params[name]
            if role in OUTPUT_ROLES:
                ws = replace(ws, multiplier=ws.multiplier * b.scale)
            pre = dense_prefactors(ws, w.fan_in, w.fan_out, s_hat)
            for term in ("src", "bsrc", "upd", "bupd", "resp", "bresp"):
                put(f"{term}:{role}", getattr(pre, term), f"the {term} term of weight {name}")
        if b.kind == "attention":
            N = b.attention.key_dim
            alpha = attention_alpha(b.attention)
            what = f"the logits of {b.attention.name} (N^(1 - alpha_A) q.k/N, alpha_A = {alpha})"
            try:
                put("logit", N * b.logit_scale, what)
            except LimitError as exc:
                raise LimitError(f"{exc}; with alpha_A < 1 the logits are random per head and the "
                                 f"N -> oo limit of training does not exist (docs/theory.md#limits-and-regimes)") from None
    for term, expr in readout_prefactors(ro, graph.weights[tf.readout].fan_in).items():
        if term in ("fresp", "fupd", "zupd", "f0"):
            put(f"{term}:readout", expr, f"the {term} term of the readout {tf.readout}")
    return out


#: per-draw fields of the head site (keys, queries, values, attention output, their backward fields, twins,
#: and the head's sources): with H -> oo each draw is one head of N coordinates
HEAD_FIELDS = ("uK", "uQ", "uV", "rO", "k", "q", "v", "o", "go", "gk", "gq", "gv", "o0", "gk0", "gq0", "gv0")


# ------------------------------------------------------------------ helpers
def sum_past(e):
    """sum over positions beta and earlier steps s < t (weight updates, forward responses)."""
    return Sum(e, (nu, 0, NPOS - 1), (s, 0, t - 1))


def sum_now(e):
    """sum over positions beta and s <= t (backward responses see this step's forward pass)."""
    return Sum(e, (nu, 0, NPOS - 1), (s, 0, t))


def mix(e):
    """sum over positions beta at the same time: token mixing by a deterministic matrix."""
    return Sum(e, (nu, 0, NPOS - 1))


def _rng(lo, hi):
    return (as_expr(lo), as_expr(hi))


def sigma(X, at=ell):
    """The LayerNorm scale sqrt(<X X>(t, t)) at position `at`."""
    return sympy.sqrt(X[at, mu, mu, t, t])


# ------------------------------------------------------------------ the system
def derive_transformer(spec: Spec, graph: Graph, params: Mapping[str, WeightScaling]) -> EquationSystem:
    """The transformer's DMFT system for N -> oo at fixed H with alpha_A = 1, or H -> oo at fixed N (see
    module docstring). With L in the limit as well, the system is that of a depth-K transformer,
    K = solver.depth_steps (default: the spec's L), every block prefactor exact at L = K: its K -> oo
    limit is the depth limit (terms that vanish as L -> oo stay at their O(1/K) values)."""
    limit = spec.limit
    K = 0
    if "L" in limit:
        K = spec.solver.depth_steps or int(spec.sizes["L"])
        spec = replace(spec, sizes={**spec.sizes, "L": K}, limit=tuple(n for n in limit if n != "L"))
    tf = transformer_of(spec, graph)
    c = transformer_coefficients(spec, graph, params, tf)
    if c.get("logit", ONE) == 0:
        raise Unsupported("logits that vanish in the limit (alpha_A > 1)", "use logit_scale N**(-alpha_A) with "
                          "alpha_A = 1")
    if c["f0:readout"] != 0:
        raise Unsupported("feature learning with a random O(1) output at initialization", "use the mup preset")
    B = len(tf.pattern)
    R = B * tf.layers
    top = sympy.Integer(R + 1)
    kinds = {b.kind for b in tf.pattern}
    att_pos = [i + 1 for i, b in enumerate(tf.blocks) if b.kind == "attention"]
    mlp_pos = [i + 1 for i, b in enumerate(tf.blocks) if b.kind == "mlp"]
    fn = next((b.fn for b in tf.pattern if b.kind == "mlp"), "linear")
    cl = c.get("logit", ONE)
    # N -> oo: a head's average over its N coordinates is an expectation (deterministic, all heads alike);
    # H -> oo at fixed N: it stays a random variable per head, and heads are the sites of the Monte Carlo
    sites = "H" in spec.limit
    avg = HeadMean if sites else Expect
    key_dim = int(spec.sizes["N"]) if sites else 0

    def span(pos):
        return _rng(min(pos), max(pos))

    eqs, sources = [], []
    # ---- embedding and stream
    eqs += [
        Equation("eq:embed", h[1, mu, t], u[1, mu] + sum_past(c["upd:embed"] * Delta[nu, s] * Phi0[mu, nu] * g[1, nu, s]),
                 "field", "embedding: static source (token data kernel) plus the embedding's updates", _rng(1, 1)),
        Equation("eq:ln", hb[ell, mu, t], h[ell, mu, t] / sigma(H), "field",
                 "LayerNorm in the limit: the mean is 0 and the variance the stream kernel's diagonal", _rng(1, R + 1)),
        Equation("eq:kernel.H", H[ell, mu, nu, t, s], Expect(h[ell, mu, t] * h[ell, nu, s]), "kernel",
                 "residual-stream kernel", _rng(1, R + 1)),
        Equation("eq:kernel.Phi", Phi[ell, mu, nu, t, s], Expect(hb[ell, mu, t] * hb[ell, nu, s]), "kernel",
                 "kernel of the LayerNorm output (the branches' and the readout's input)", _rng(1, R + 1)),
    ]
    sources.append(SourceLaw("src:u1", u[1, mu], Phi0[mu, nu], c["src:embed"], "static",
                             "embedding source, covariance the token data kernel", _rng(1, 1)))
    fwd_att, bwd_att, fwd_mlp, bwd_mlp = [], [], [], []
    if "attention" in kinds:
        rng = span(att_pos)
        for role, X, gX in (("K", k_, gk), ("Q", q_, gq), ("V", v_, gv)):
            uW, rW, AW, BW = weight_bases(role)
            sources += [
                SourceLaw(f"src:u{role}", uW[ell, mu, t], Phi[ell, mu, nu, t, s], c[f"src:{role}"], "dynamic",
                          f"head site: W_{role}(0) hb, one independent source per head coordinate", rng),
                SourceLaw(f"src:r{role}", rW[ell, mu, t], {"K": GK_, "Q": GQ_, "V": GV_}[role][ell, mu, nu, t, s],
                          c[f"bsrc:{role}"], "dynamic", f"stream site: W_{role}(0)^T g^{role.lower()}", rng),
            ]
            eqs.append(Equation(
                f"eq:attn.{role.lower()}", X[ell, mu, t],
                uW[ell, mu, t] + sum_past((c[f"resp:{role}"] * AW[ell, mu, nu, t, s]
                                           + c[f"upd:{role}"] * Delta[nu, s] * Phi[ell, mu, nu, t, s]) * gX[ell, nu, s]),
                "field", f"{'key query value'.split()['KQV'.index(role)]}: source, response of the reused "
                         f"W_{role}(0), updates", rng))
        uO, rO, AO, BO = weight_bases("O")
        uK, rK, AK, BK = weight_bases("K")
        uQ, rQ, AQ, BQ = weight_bases("Q")
        uV, rV, AV, BV = weight_bases("V")
        sources += [
            SourceLaw("src:uO", uO[ell, mu, t], Phio[ell, mu, nu, t, s], c["src:O"], "dynamic",
                      "stream site: W_O(0) o (branch scale included)", rng),
            SourceLaw("src:rO", rO[ell, mu, t], G[ell + 1, mu, nu, t, s], c["bsrc:O"], "dynamic",
                      "head site: W_O(0)^T g (branch scale included)", rng),
        ]
        eqs += [
            Equation("eq:attn.logit", Lam[ell, mu, nu, t], cl * avg(q_[ell, mu, t] * k_[ell, nu, t]), "order",
                     "logits: per head, an average over its N coordinates (H -> oo: random across heads)"
                     if sites else "logits: deterministic, the same for every head (alpha_A = 1)", rng),
            Equation("eq:attn.softmax", Sm[ell, mu, nu, t], Softmax(Lam[ell, mu, nu, t]), "order",
                     "attention weights: softmax over the keys nu of mu's sequence", rng),
            Equation("eq:attn.o", o_[ell, mu, t], mix(Sm[ell, mu, nu, t] * v_[ell, nu, t]), "field",
                     "attention output: values mixed by the deterministic softmax", rng),
            Equation("eq:stream.attn", h[ell + 1, mu, t],
                     h[ell, mu, t] + uO[ell, mu, t]
                     + sum_past((c["resp:O"] * AO[ell, mu, nu, t, s] + c["upd:O"] * Delta[nu, s] * Phio[ell, mu, nu, t, s])
                                * g[ell + 1, nu, s]),
                     "field", "stream after the attention branch: source, response and updates of W_O", rng),
            Equation("eq:kernel.Phio", Phio[ell, mu, nu, t, s], Expect(o_[ell, mu, t] * o_[ell, nu, s]), "kernel",
                     "kernel of the attention output (W_O's input)", rng),
            Equation("eq:response.AO", AO[ell, mu, nu, t, s], Expect(Response(o_[ell, mu, t], rO[ell, nu, s])),
                     "response", "attention output's response to W_O's backward source, s < t", rng, "strict"),
            Equation("eq:response.BO", BO[ell, mu, nu, t, s], Expect(Response(g[ell + 1, mu, t], uO[ell, nu, s])),
                     "response", "stream backward field's response to W_O's forward source, s <= t", rng, "causal"),
            Equation("eq:attn.go", go[ell, mu, t],
                     rO[ell, mu, t] + sum_now(c["bresp:O"] * BO[ell, mu, nu, t, s] * o_[ell, nu, s])
                     + sum_past(c["bupd:O"] * Delta[nu, s] * G[ell + 1, mu, nu, t, s] * o_[ell, nu, s]),
                     "field", "backward field of the attention output: source, response, updates of W_O", rng),
            Equation("eq:attn.M", Mm[ell, mu, nu, t], avg(go[ell, mu, t] * v_[ell, nu, t]), "order",
                     "M = <g^o v>: the gradient of the output with respect to the softmax weights", rng),
            Equation("eq:attn.D", Dm[ell, mu, nu, t],
                     Sm[ell, mu, nu, t] * (Mm[ell, mu, nu, t]
                                           - Sum(Sm[ell, mu, kappa, t] * Mm[ell, mu, kappa, t], (kappa, 0, NPOS - 1))),
                     "order", "the logits' gradient: M through the softmax Jacobian", rng),
            Equation("eq:attn.gv", gv[ell, mu, t], mix(Sm[ell, nu, mu, t] * go[ell, nu, t]), "field",
                     "backward field of the values", rng),
            Equation("eq:attn.gq", gq[ell, mu, t], mix(cl * Dm[ell, mu, nu, t] * k_[ell, nu, t]), "field",
                     "backward field of the queries: the keys through the logits' gradient", rng),
            Equation("eq:attn.gk", gk[ell, mu, t], mix(cl * Dm[ell, nu, mu, t] * q_[ell, nu, t]), "field",
                     "backward field of the keys: the queries through the logits' gradient", rng),
        ]
        for role, X, gX, Gm in (("K", k_, gk, GK_), ("Q", q_, gq, GQ_), ("V", v_, gv, GV_)):
            uW, rW, AW, BW = weight_bases(role)
            eqs += [
                Equation(f"eq:kernel.G{role.lower()}", Gm[ell, mu, nu, t, s], Expect(gX[ell, mu, t] * gX[ell, nu, s]),
                         "kernel", f"gradient kernel of the {role} projection's output", rng),
                Equation(f"eq:response.A{role}", AW[ell, mu, nu, t, s],
                         Expect(Response(hb[ell, mu, t], rW[ell, nu, s])), "response",
                         f"LayerNorm output's response to W_{role}'s backward source, s < t", rng, "strict"),
                Equation(f"eq:response.B{role}", BW[ell, mu, nu, t, s],
                         Expect(Response(gX[ell, mu, t], uW[ell, nu, s])), "response",
                         f"backward field's response to W_{role}'s forward source, s <= t", rng, "causal"),
            ]
        eqs.append(Equation(
            "eq:attn.gb", gb[ell, mu, t],
            sum(rW[ell, mu, t] + sum_now(c[f"bresp:{role}"] * BW[ell, mu, nu, t, s] * hb[ell, nu, s])
                + sum_past(c[f"bupd:{role}"] * Delta[nu, s] * Gm[ell, mu, nu, t, s] * hb[ell, nu, s])
                for role, (_, rW, _, BW), Gm in (("K", (uK, rK, AK, BK), GK_), ("Q", (uQ, rQ, AQ, BQ), GQ_),
                                                  ("V", (uV, rV, AV, BV), GV_))),
            "field", "backward field of the LayerNorm output: K, Q, V sources, responses, updates", rng))
        # gamma0 = 0 twins of the head site: with deterministic logits they mix by the current softmax; with
        # random logits per head (H -> oo) by the head's own gamma0 = 0 softmax, which depends on forward
        # sources only (and D0 is odd in rO), so every twin response vanishes in expectation
        S_, D_ = (Sm0, Dm0) if sites else (Sm, Dm)
        if sites:
            uO_, rO_ = weight_bases("O")[:2]
            eqs += [
                Equation("eq:cv.logit", Lam0[ell, mu, nu, t], cl * HeadMean(uQ[ell, mu, t] * uK[ell, nu, t]), "order",
                         "the head's logits at gamma0 = 0", rng),
                Equation("eq:cv.softmax", Sm0[ell, mu, nu, t], Softmax(Lam0[ell, mu, nu, t]), "order",
                         "its softmax", rng),
                Equation("eq:cv.M", Mm0[ell, mu, nu, t], HeadMean(rO_[ell, mu, t] * uV[ell, nu, t]), "order",
                         "M at gamma0 = 0", rng),
                Equation("eq:cv.D", Dm0[ell, mu, nu, t],
                         Sm0[ell, mu, nu, t] * (Mm0[ell, mu, nu, t] - Sum(Sm0[ell, mu, kappa, t] * Mm0[ell, mu, kappa, t],
                                                                         (kappa, 0, NPOS - 1))),
                         "order", "D at gamma0 = 0", rng),
            ]
        eqs += [
            Equation("eq:cv.o", o0[ell, mu, t], mix(S_[ell, mu, nu, t] * uV[ell, nu, t]), "twin",
                     "o at gamma0 = 0 (values = their sources)", rng),
            Equation("eq:cv.gv", gv0[ell, mu, t], mix(S_[ell, nu, mu, t] * rO[ell, nu, t]), "twin",
                     "g^v at gamma0 = 0", rng),
            Equation("eq:cv.gq", gq0[ell, mu, t], mix(cl * D_[ell, mu, nu, t] * uK[ell, nu, t]), "twin",
                     "g^q with keys at their sources", rng),
            Equation("eq:cv.gk", gk0[ell, mu, t], mix(cl * D_[ell, nu, mu, t] * uQ[ell, nu, t]), "twin",
                     "g^k with queries at their sources", rng),
        ]
        fwd_att = [Step("src:uK"), Step("src:uQ"), Step("src:uV"), Step("eq:attn.k"), Step("eq:attn.q"),
                   Step("eq:attn.v"), Step("eq:attn.logit"), Step("eq:attn.softmax"), Step("eq:attn.o"),
                   *([Step("eq:cv.logit"), Step("eq:cv.softmax")] if sites else []), Step("eq:cv.o"), Step("eq:kernel.Phio"), Step("eq:response.AO"), Step("src:uO"),
                   Step("eq:stream.attn")]
        bwd_att = [Step("src:rO"), Step("eq:response.BO"), Step("eq:attn.go"), Step("eq:attn.M"), Step("eq:attn.D"),
                   *([Step("eq:cv.M"), Step("eq:cv.D")] if sites else []),
                   Step("eq:attn.gv"), Step("eq:attn.gq"), Step("eq:attn.gk"), Step("eq:cv.gv"), Step("eq:cv.gq"),
                   Step("eq:cv.gk"), Step("eq:kernel.Gk"), Step("eq:kernel.Gq"), Step("eq:kernel.Gv"),
                   Step("eq:response.BK"), Step("eq:response.BQ"), Step("eq:response.BV"), Step("src:rK"),
                   Step("src:rQ"), Step("src:rV"), Step("eq:attn.gb")]
    if "mlp" in kinds:
        rng = span(mlp_pos)
        u1, r1, A1, B1 = weight_bases("1")
        u2, r2, A2, B2 = weight_bases("2")
        sources += [
            SourceLaw("src:u1h", u1[ell, mu, t], Phi[ell, mu, nu, t, s], c["src:1"], "dynamic",
                      "MLP site: W_1(0) hb", rng),
            SourceLaw("src:r1", r1[ell, mu, t], Gx[ell, mu, nu, t, s], c["bsrc:1"], "dynamic",
                      "stream site: W_1(0)^T g^x", rng),
            SourceLaw("src:u2", u2[ell, mu, t], Phix[ell, mu, nu, t, s], c["src:2"], "dynamic",
                      "stream site: W_2(0) phi(x) (branch scale included)", rng),
            SourceLaw("src:r2", r2[ell, mu, t], G[ell + 1, mu, nu, t, s], c["bsrc:2"], "dynamic",
                      "MLP site: W_2(0)^T g (branch scale included)", rng),
        ]
        eqs += [
            Equation("eq:mlp.x", x_[ell, mu, t],
                     u1[ell, mu, t] + sum_past((c["resp:1"] * A1[ell, mu, nu, t, s]
                                                + c["upd:1"] * Delta[nu, s] * Phi[ell, mu, nu, t, s]) * gx[ell, nu, s]),
                     "field", "MLP hidden preactivation: source, response of W_1(0), updates", rng),
            Equation("eq:kernel.Phix", Phix[ell, mu, nu, t, s], Expect(phi(x_[ell, mu, t]) * phi(x_[ell, nu, s])),
                     "kernel", "MLP feature kernel (W_2's input)", rng),
            Equation("eq:response.A2", A2[ell, mu, nu, t, s], Expect(Response(phi(x_[ell, mu, t]), r2[ell, nu, s])),
                     "response", "MLP features' response to W_2's backward source, s < t", rng, "strict"),
            Equation("eq:stream.mlp", h[ell + 1, mu, t],
                     h[ell, mu, t] + u2[ell, mu, t]
                     + sum_past((c["resp:2"] * A2[ell, mu, nu, t, s] + c["upd:2"] * Delta[nu, s] * Phix[ell, mu, nu, t, s])
                                * g[ell + 1, nu, s]),
                     "field", "stream after the MLP branch: source, response and updates of W_2", rng),
            Equation("eq:response.A1", A1[ell, mu, nu, t, s], Expect(Response(hb[ell, mu, t], r1[ell, nu, s])),
                     "response", "LayerNorm output's response to W_1's backward source, s < t", rng, "strict"),
            Equation("eq:response.B2", B2[ell, mu, nu, t, s], Expect(Response(g[ell + 1, mu, t], u2[ell, nu, s])),
                     "response", "stream backward field's response to W_2's forward source, s <= t", rng, "causal"),
            Equation("eq:mlp.z", zx[ell, mu, t],
                     r2[ell, mu, t] + sum_now(c["bresp:2"] * B2[ell, mu, nu, t, s] * phi(x_[ell, nu, s]))
                     + sum_past(c["bupd:2"] * Delta[nu, s] * G[ell + 1, mu, nu, t, s] * phi(x_[ell, nu, s])),
                     "field", "MLP backward field: source, response, updates of W_2", rng),
            Equation("eq:mlp.g", gx[ell, mu, t], dphi(x_[ell, mu, t]) * zx[ell, mu, t], "field",
                     "MLP backward field at the preactivation", rng),
            Equation("eq:kernel.Gx", Gx[ell, mu, nu, t, s], Expect(gx[ell, mu, t] * gx[ell, nu, s]), "kernel",
                     "MLP gradient kernel (W_1's output)", rng),
            Equation("eq:response.B1", B1[ell, mu, nu, t, s], Expect(Response(gx[ell, mu, t], u1[ell, nu, s])),
                     "response", "MLP backward field's response to W_1's forward source, s <= t", rng, "causal"),
            Equation("eq:mlp.gb", gb[ell, mu, t],
                     r1[ell, mu, t] + sum_now(c["bresp:1"] * B1[ell, mu, nu, t, s] * hb[ell, nu, s])
                     + sum_past(c["bupd:1"] * Delta[nu, s] * Gx[ell, mu, nu, t, s] * hb[ell, nu, s]),
                     "field", "backward field of the LayerNorm output: W_1's source, response, updates", rng),
        ]
        fwd_mlp = [Step("src:u1h"), Step("eq:mlp.x"), Step("eq:kernel.Phix"), Step("eq:response.A2"),
                   Step("src:u2"), Step("eq:stream.mlp")]
        bwd_mlp = [Step("src:r2"), Step("eq:response.B2"), Step("eq:mlp.z"), Step("eq:mlp.g"), Step("eq:kernel.Gx"),
                   Step("eq:response.B1"), Step("src:r1"), Step("eq:mlp.gb")]
    # ---- LayerNorm backward, stream backward, output
    eqs += [
        Equation("eq:ln.C", Cln[ell, mu, t], Expect(hb[ell, mu, t] * gb[ell, mu, t]), "order",
                 "LayerNorm's projection: <hb gb> at each position", _rng(1, R + 1)),
        Equation("eq:ln.back", g[ell, mu, t], g[ell + 1, mu, t] + (gb[ell, mu, t] - hb[ell, mu, t] * Cln[ell, mu, t])
                 / sigma(H), "field", "stream backward field: identity path plus the branch through LayerNorm",
                 _rng(1, R)),
        Equation("eq:ln.top", g[top, mu, t], (gb[top, mu, t] - hb[top, mu, t] * Cln[top, mu, t]) / sigma(H, top),
                 "field", "backward field at the top of the stream, through the final LayerNorm", _rng(R + 1, R + 1)),
        Equation("eq:kernel.G", G[ell, mu, nu, t, s], Expect(g[ell, mu, t] * g[ell, nu, s]), "kernel",
                 "gradient kernel of the stream", _rng(1, R + 1)),
        Equation("eq:readout.z", z[top, mu, t], r[top] + sum_past(c["zupd:readout"] / S * Delta[nu, s] * hb[top, nu, s]),
                 "field", "readout weight: its initial value plus its updates (mean pooling: 1/S)",
                 _rng(R + 1, R + 1)),
        Equation("eq:readout.gb", gb[top, mu, t], z[top, mu, t] / S, "field",
                 "backward field of the final LayerNorm output (mean pooling)", _rng(R + 1, R + 1)),
        Equation("eq:cv.h1", h0[1, mu, t], u[1, mu], "twin", "stream at gamma0 = 0: the embedding source", _rng(1, 1)),
        Equation("eq:cv.H1", H0[1, mu, nu, t, s], c["src:embed"] * Phi0[mu, nu], "twin_kernel",
                 "its kernel, exactly: the embedding source's covariance", _rng(1, 1)),
        Equation("eq:cv.gtop", g0[top, mu, t], r[top] / (S * sigma(H, top)), "twin",
                 "stream backward field at gamma0 = 0, top", _rng(R + 1, R + 1)),
        Equation("eq:output.f", ftok[mu, t],
                 c["fresp:readout"] / S * Expect(Response(hb[top, mu, t], r[top]))
                 + sum_past(c["fupd:readout"] / S**2 * Delta[nu, s] * Phi[top, mu, nu, t, s]),
                 "output", "position alpha's share of its sequence's output (mean pooling, readout)"),
        Equation("eq:output.F", Fseq[mu, t], mix(Seq[mu, nu] * ftok[nu, t]), "output",
                 "the output of alpha's sequence, f_mu = sum over its tokens"),
        Equation("eq:error.Delta", Delta[mu, t], (y[mu] - Fseq[mu, t]) / P, "error",
                 "error signal of alpha's sequence (y at every position of the sequence)"),
        Equation("eq:loss", Loss[t], Sum((Fseq[mu, t] - y[mu]) ** 2, (mu, 0, NPOS - 1)) / (2 * P * S),
                 "loss", "training loss (each sequence counted once: S positions share its output)"),
    ]
    # twins of the stream at gamma0 = 0, by branch kind
    if "attention" in kinds:
        uO, rO = weight_bases("O")[:2]
        eqs += [Equation("eq:cv.hattn", h0[ell + 1, mu, t], h0[ell, mu, t] + uO[ell, mu, t], "twin",
                         "stream at gamma0 = 0 after an attention branch", span(att_pos)),
                Equation("eq:cv.Hattn", H0[ell + 1, mu, nu, t, s], H0[ell, mu, nu, t, s] + c["src:O"] * Phio[ell, mu, nu, t, s],
                         "twin_kernel", "its kernel, exactly: independent sources add their covariances", span(att_pos)),
                Equation("eq:cv.gattn", g0[ell, mu, t],
                         g0[ell + 1, mu, t] + sum(weight_bases(rl)[1][ell, mu, t] for rl in "KQV") / sigma(H), "twin",
                         "stream backward field at gamma0 = 0 below an attention branch", span(att_pos))]
    if "mlp" in kinds:
        u2, r1 = weight_bases("2")[0], weight_bases("1")[1]
        eqs += [Equation("eq:cv.hmlp", h0[ell + 1, mu, t], h0[ell, mu, t] + u2[ell, mu, t], "twin",
                         "stream at gamma0 = 0 after an MLP branch", span(mlp_pos)),
                Equation("eq:cv.Hmlp", H0[ell + 1, mu, nu, t, s], H0[ell, mu, nu, t, s] + c["src:2"] * Phix[ell, mu, nu, t, s],
                         "twin_kernel", "its kernel, exactly", span(mlp_pos)),
                Equation("eq:cv.gmlp", g0[ell, mu, t], g0[ell + 1, mu, t] + r1[ell, mu, t] / sigma(H), "twin",
                         "stream backward field at gamma0 = 0 below an MLP branch", span(mlp_pos))]
    sources.append(SourceLaw("src:rL", r[top], ONE, ONE, "scalar", "the readout weight's initial value",
                             _rng(R + 1, R + 1)))

    # ---- the causal schedule: per repeat, the pattern's blocks at positions B (ell - 1) + j
    def at(j):
        return B * (ell - 1) + j

    stream_in = [Step("eq:kernel.H"), Step("eq:ln"), Step("eq:kernel.Phi")]
    fbody, bbody = [], []
    for j, b in enumerate(tf.pattern, start=1):
        p = at(j)
        fsteps = fwd_att if b.kind == "attention" else fwd_mlp
        resp = (["eq:response.AK", "eq:response.AQ", "eq:response.AV"] if b.kind == "attention"
                else ["eq:response.A1"])
        fbody += [Step(st.label, p) for st in stream_in] + [Step(lab, p) for lab in resp]
        fbody += [Step(st.label, p) for st in fsteps]
        fbody.append(Step("eq:cv.hattn" if b.kind == "attention" else "eq:cv.hmlp", p))
        fbody.append(Step("eq:cv.Hattn" if b.kind == "attention" else "eq:cv.Hmlp", p))
    for j, b in reversed(list(enumerate(tf.pattern, start=1))):
        p = at(j)
        bsteps = bwd_att if b.kind == "attention" else bwd_mlp
        bbody += [Step(st.label, p) for st in bsteps]
        bbody += [Step("eq:ln.C", p), Step("eq:ln.back", p), Step("eq:kernel.G", p),
                  Step("eq:cv.gattn" if b.kind == "attention" else "eq:cv.gmlp", p)]
    Ls = sympy.Integer(tf.layers)
    forward = (Step("src:u1", ONE), Step("eq:embed", ONE), Step("eq:cv.h1", ONE), Step("eq:cv.H1", ONE),
               Loop(ONE, Ls, 1, tuple(fbody), "forward through the transformer layers"),
               Step("eq:kernel.H", top), Step("eq:ln", top), Step("eq:kernel.Phi", top))
    output = (Step("eq:output.f"), Step("eq:output.F"), Step("eq:error.Delta"))
    backward = (Step("src:rL", top), Step("eq:readout.z", top), Step("eq:readout.gb", top), Step("eq:ln.C", top),
                Step("eq:ln.top", top), Step("eq:kernel.G", top), Step("eq:cv.gtop", top),
                Loop(Ls, ONE, -1, tuple(bbody), "backward through the transformer layers"))
    u1h = weight_bases("1")[0]
    lazy = {"h": h0[ell, mu, t], "k": weight_bases("K")[0][ell, mu, t], "q": weight_bases("Q")[0][ell, mu, t],
            "v": weight_bases("V")[0][ell, mu, t], "go": weight_bases("O")[1][ell, mu, t], "hb": h0[ell, mu, t] / sigma(H), "g": g0[ell, mu, t], "o": o0[ell, mu, t], "gk": gk0[ell, mu, t],
            "gq": gq0[ell, mu, t], "gv": gv0[ell, mu, t], "x": u1h[ell, mu, t],
            "gx": dphi(u1h[ell, mu, t]) * weight_bases("2")[1][ell, mu, t]}
    notes = (
        "Positions alpha = (mu, s) run over the P S tokens, sample-major; sums over nu run over positions. " + (
            f"Limit H -> oo at fixed N = {key_dim} and L: a head is a single site of N coordinates whose logits, "
            "softmax, M and D are averages over those N coordinates (HeadMean), random across heads; the stream's "
            "sources have covariances averaged over heads (E over heads and coordinates)." if sites else
            "Limit N -> oo at fixed H and L: every head obeys the same equations, so the heads collapse to one."),
        "A and B here are eta*gamma0 times Bordelon & Pehlevan's (the prefactor sits in the term). "
        "Twins (h0, g0, o0, ...) are the same draws at gamma0 = 0: control variates whose responses vanish exactly.",
    )
    if K:
        notes += (f"Depth limit L -> oo: the width-limit system of a depth-K transformer with K = {K} "
                  "(solver.depth_steps); every block prefactor is exact at L = K, so the solution converges to the "
                  "depth limit as K grows; the solve reports the K vs K/2 difference.",)
    sysm = EquationSystem(spec.name, "feature_learning", "monte_carlo", limit, R + 1, fn, tuple(eqs),
                          tuple(sources), forward, output, backward, c, notes, lazy, tokens=True,
                          exact_twins={"h0": "H0"}, heads="sites" if sites else "collapse", key_dim=key_dim,
                          head_fields=HEAD_FIELDS if sites and "attention" in kinds else (), depth_steps=K)
    sysm.check()
    return sysm
