"""The derivation engine: walk the Graph op by op and assemble the blocks' mean-field contributions.

Each op's module in `dmftc.blocks` says what it adds to the single-site processes of the limit
(`meanfield`); this module holds only what is shared: the fields and their positions, the
populations (which op writes into which field), the kernels of what dense layers read, the
backward fields as sums of their consumers' contributions, the control-variate twins, the limits
of the term prefactors, and the causal schedule (docs/theory.md#populations):

- a field h[p] is a vector the process keeps: a dense layer's output placed in a new population,
  a residual stream position, a LayerNorm output; everything else is a pointwise function e(h[p])
  (`blocks.meanfield.Value`), so an activation never costs a field of its own;
- the field read by a dense layer (or the readout) gets its kernel Phi[p] = <e(h[p](t)) e(h[p](s))>
  and its backward field z[p]; every field gets g[p] = sum over its consumers of e' times their
  backward field, and its gradient kernel G[p] = <g g>;
- within one time step the forward fields are computed in the order the walk met them, then the
  output, then the backward fields in the reverse order (docs/theory.md#causal-sweep).

Positions are numbered at the end: the residual stream first (1 = the embedding's output, l + 1
after block l), then the other fields in the order the walk met them (an MLP's hidden layers 1..L).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Mapping

import sympy
from sympy import Sum

from ..blocks import BLOCKS
from ..blocks import dense as dense_block
from ..blocks import pool as pool_block
from ..blocks import readout as readout_block
from ..blocks.meanfield import Activations, Data, Pending, Pooled, Value
from ..errors import LimitError, Unsupported
from ..graph.build import Graph
from ..ir import Equation, SourceLaw, Step
from ..notation import (G, H, H0, Delta, Expect, Fseq, Kappa, Loss, LossBatch, LossTest, Omega, Phi, adec, f, g, h, h0,
                        mu, nu, s, size_symbol, t, wtest, wtrain, y, Sigmoid, Softplus)
from ..scaling.parameterization import WeightScaling
from ..spec.types import Spec
from .coefficients import depth_limit, take_limit
from .system import EquationSystem

P, S = size_symbol("P"), size_symbol("S")
ONE = sympy.Integer(1)


class Walk:
    """The state of one derivation: fields met so far and what each block registered for them."""

    #: the function of each block module this walk calls: its feature-learning contribution
    rule = "meanfield"

    def __init__(self, spec: Spec, graph: Graph, params: Mapping[str, WeightScaling], acts: Activations):
        self.spec, self.graph, self.params, self.acts = spec, graph, params, acts
        self.finite_sizes = {size_symbol(k): v for k, v in spec.sizes.items() if k not in spec.limit}
        ro = next(w for w in graph.weights.values() if w.role == "readout")
        self.s_hat = params[ro.name].multiplier * params[ro.name].init_std
        self.order: list[sympy.Symbol] = []          # fields in the order met
        self.streams: list[sympy.Symbol] = []
        self.dense_fields: list[sympy.Symbol] = []  # dense outputs opening their own population
        self.forward: list = []                     # Equation | SourceLaw, in causal order
        self.output: list = []
        self.pre_g: dict = {}                       # p -> backward items before g[p]
        self.post_g: dict = {}                      # p -> backward items after g[p] and G[p]
        self.adjoints: dict = {}                    # p -> [(contribution, has a backward source factor)]
        self.reads: dict = {}                       # p -> the expression e(h[p]) a dense layer reads
        self.lazy: dict = {}                        # (base, p) -> its gamma0 = 0 part
        self.coefficients: dict = {}
        self.twins_ok = True
        self.sources: dict = {}                     # source base+position -> its SourceLaw
        self._cache: dict = {}
        self.stream_weights = stream_weights(graph)
        #: token data: positions alpha = (mu, s) run over the P S tokens; outputs are per sequence
        self.tokens = bool(graph.tokens)
        self.npos = P * S if self.tokens else P
        self.ports: list[sympy.Symbol] = []         # further readers of a field (`read`)
        self.head_fields: list[sympy.Symbol] = []   # fields on the head site (attention, H -> oo at fixed N)
        self.marks: list = []                       # the simulator's stream sites l = 0, 1, ... (`mark`)
        self.branch_depth = 0                       # > 0 inside a residual branch
        self.attention = False
        self.pooled = False       # after a pool every field is the same at the positions of a sequence
        self.h_kernels: set = set()
        self.key_dim = 0
        tr = spec.training
        #: the training setup (dmftc.training): update terms filtered by Kappa, initial weights' terms by adec
        self.filtered = not (tr.momentum == 0 and tr.schedule == 1 and tr.weight_decay == 0)
        self.decayed = tr.weight_decay != 0
        self.weighted = tr.batches is not None or bool(getattr(spec.data, "test", 0))

    # ------------------------------------------------------------ what blocks call
    def run(self, nodes, x, in_repeat: bool = False):
        """Apply the ops in order (repeats unrolled at the spec's sizes); outside residual branches, mark
        the stream where the simulator does: after each repeat iteration of residual blocks and after each
        residual block not in a repeat."""
        for node in nodes:
            if node.kind == "repeat":
                blocks = any(c.kind == "residual" for c in node.children)
                for _ in range(self._count(node)):
                    x = self.run(node.children, x, True)
                    if blocks and not self.branch_depth:
                        self.mark(x)
            else:
                if node.kind not in BLOCKS or not hasattr(BLOCKS[node.kind], self.rule):
                    raise Unsupported(f"the {'lazy' if self.rule == 'kernel_map' else 'mean-field'} limit of "
                                      f"'{node.kind}' ops",
                                      "use a feature-learning parameterization (mup) for attention and pooling"
                                      if self.rule == "kernel_map" else "write the model from the blocks "
                                      "dense, act, residual, layernorm, attention, pool, readout")
                x = getattr(BLOCKS[node.kind], self.rule)(self, node, x)
                if node.kind == "residual" and not in_repeat and not self.branch_depth:
                    self.mark(x)
        return x

    def mark(self, x) -> None:
        """Record a stream site of the simulator (its `stream:l` marks): a bare field, with its kernel H;
        None where the value there is not a field of its own (a pointwise function of one)."""
        if not isinstance(x, Value) or x.chain:
            self.marks.append(None)
            return
        self.stream_kernel(x.p)
        self.marks.append(x.p)

    def mark_input(self, p) -> None:
        """The simulator's stream site 0: the input of the first residual block."""
        if not self.marks and not self.branch_depth:
            self.marks.append(p)

    def stream_kernel(self, p) -> None:
        """The kernel H[p] = <h[p] h[p]> of a stream position, once."""
        if p in self.h_kernels:
            return
        self.h_kernels.add(p)
        self.forward_item(Equation(f"eq:kernel.H{p}", H[p, mu, nu, t, s], Expect(h[p, mu, t] * h[p, nu, s]),
                                   "kernel", "kernel of the residual stream itself", (p, p)))

    def sum_past(self, e):
        """sum over positions nu and earlier steps s < t (GD updates, forward responses)."""
        return Sum(e, (nu, 0, self.npos - 1), (s, 0, t - 1))

    def learned(self, e):
        """An update term of step s seen at step t: times the optimizer's filter Kappa(t, s) (momentum, a
        schedule, weight decay; 1 for plain GD, where it is not written)."""
        return Kappa[t, s] * e if self.filtered else e

    def initial(self, e):
        """A term of the initial weights W(0) (source, response) at step t: times adec(t), what weight decay
        leaves of them (not written without decay)."""
        return adec[t] * e if self.decayed else e

    def sum_now(self, e):
        """sum over positions nu and steps s <= t (backward responses see this step's forward pass)."""
        return Sum(e, (nu, 0, self.npos - 1), (s, 0, t))

    def mix(self, e):
        """sum over positions nu at the same time: token mixing by a deterministic matrix."""
        return Sum(e, (nu, 0, self.npos - 1))

    def constant(self, expr, what: str) -> sympy.Expr:
        """A block's constant (not a dense term's prefactor) after the limit, at the finite sizes; hypers in
        exponents (alpha_A) are numbers here: whether the limit exists depends on them."""
        others = tuple(n for n in self.spec.limit if n != "L")
        return take_limit(expr, others, what, self.spec.hyper).subs(self.finite_sizes)

    def value(self, x, node=None):
        """x as data or a pointwise function of a field: a pending dense output opens its population here."""
        if isinstance(x, Pooled):
            x = pool_block.materialize(self, x, node)
        if isinstance(x, Pending):
            p = self.new_field(x.node)
            self.dense_fields.append(p)
            body = dense_block.contribution(self, x, p)
            self.forward_item(Equation(f"eq:field.h{p}", h[p, mu, t], body, "field",
                                       f"{x.weight}'s output: source, response of the reused W(0), updates", (p, p)))
            return Value(p)
        return x

    def new_field(self, node, stream: bool = False) -> sympy.Symbol:
        p = sympy.Symbol(f"@{len(self.order)}", integer=True, positive=True)
        self.order.append(p)
        if stream:
            self.streams.append(p)
        return p

    def expression(self, x: Value):
        """(p, e(h[p](mu, t)), e'(h[p](mu, t)))."""
        X = h[x.p, mu, t]
        return x.p, self.acts.apply(x.chain, X), self.acts.derivative(x.chain, X)

    def read(self, x: Value, out=None):
        """The expression a dense layer (or the readout) reads: (p, port, e(h[p]), e'(h[p])).

        Its kernel Phi[p] is formed once. Each reader's W(0)^T opens its own backward source into p's
        population; the first reader's lives at p, each further one's (attention's K, Q, V reading one
        vector) at a port: a position of its own for that source, its backward field z and responses A, B.
        The port is placed just before the reader's output field `out` (when it has one): the backward
        sweep, in reverse, then forms the output's gradient kernel before the port's source needs it.
        """
        p, X, dX = self.expression(x)
        if p in self.reads:
            if self.reads[p] != X:
                raise Unsupported("dense layers reading two different functions of one vector",
                                  "apply the activation once and read its output")
            port = self.new_field(None)
            self.ports.append(port)
            if out is not None:
                self.order.remove(port)
                self.order.insert(self.order.index(out), port)
            return p, port, X, dX
        self.reads[p] = X
        self.forward_item(Equation(f"eq:kernel.Phi{p}", Phi[p, mu, nu, t, s],
                                   Expect(X * X.subs({mu: nu, t: s}, simultaneous=True)), "kernel",
                                   "kernel of the features a dense layer reads", (p, p)))
        return p, p, X, dX

    def stream(self, x: Value, node) -> sympy.Symbol:
        """The field a residual block adds to: x itself when it is a bare field, else a new one."""
        if x.chain:
            i, X, dX = self.expression(x)
            p = self.new_field(node)
            self.forward_item(Equation(f"eq:field.h{p}", h[p, mu, t], X, "field",
                                       "the residual stream's input", (p, p)))
            self.adjoint(i, dX * g[p, mu, t])
            lazy = self.lazy.get(("h", i))
            if lazy is not None:
                self.lazy[("h", p)] = self.acts.apply(x.chain, lazy)
        else:
            p = x.p
        if p not in self.streams:
            self.streams.append(p)
            self._twin_start(p)
            self.stream_kernel(p)
        self.mark_input(p)
        return p

    def forward_item(self, item):
        if isinstance(item, SourceLaw):
            self.sources[item.label] = item
        self.forward.append(item)

    def output_item(self, item):
        self.output.append(item)

    def backward_items(self, p, items):
        self.pre_g.setdefault(p, []).extend(items)

    def post_g_items(self, p, items):
        self.post_g.setdefault(p, []).extend(items)

    def adjoint(self, p, contribution, cv: bool = False):
        """Add `contribution` to the backward field g[p]; `cv`: it holds a backward source factor, so its
        gamma0 = 0 part is a valid control variate."""
        self.adjoints.setdefault(p, []).append((contribution, cv))

    def head_sites(self, positions, key_dim: int) -> None:
        """H -> oo at fixed N: the fields at `positions` live on the head site, one draw per head of
        `key_dim` coordinates (attention's keys, queries, values and outputs)."""
        if self.key_dim and self.key_dim != key_dim:
            raise Unsupported(f"attention ops with different key dimensions ({self.key_dim}, {key_dim})",
                              "give every attention op the same key_dim")
        self.key_dim = key_dim
        self.head_fields.extend(positions)

    def set_lazy(self, base: str, p, expr):
        self.lazy[(base, p)] = expr

    def finite(self, expr):
        """expr at the spec's finite sizes; in a depth limit at L = K, the depth grid (a constant such as a
        branch scale outside a dense layer's prefactors, `_exact_at_depth`)."""
        if not isinstance(expr, sympy.Basic):
            return expr
        depth = {size_symbol("L"): self.spec.sizes["L"]} if "L" in self.spec.limit else {}
        return expr.subs({**self.finite_sizes, **depth})

    def coef(self, term: str, weight: str, scale=ONE) -> sympy.Expr:
        """A term's prefactor after the limit (0 when it vanishes; LimitError when it diverges)."""
        key = (term, weight, scale)
        if key in self._cache:
            return self._cache[key]
        ws, w = self.params[weight], self.graph.weights[weight]
        if w.role == "readout":
            expr = readout_block.prefactors(ws.multiplier, ws.init_std, ws.lr, w.fan_in)[term]
            name, what = f"{term}:readout", f"the {term} term of the readout {weight}"
        else:
            expr = dense_block.prefactors(ws.multiplier * scale, ws.init_std, ws.lr, w.fan_in, w.fan_out,
                                          self.s_hat)[term]
            name, what = f"{term}:{weight}", f"the {term} term of weight {weight}"
        if "L" in self.spec.limit and w.in_branch and w.role != "readout" and term != "ntk":
            if weight in self.stream_weights:
                value = depth_limit(expr, self.spec, what)  # a block of the stream, summed over L -> oo blocks
            else:
                value = self._exact_at_depth(expr, what)
        else:
            value = take_limit(expr, self.spec.limit, what, self.spec.hyper)
        value = value.subs(self.finite_sizes)
        self.coefficients[name] = value
        self._cache[key] = value
        return value

    def _exact_at_depth(self, expr, what):
        """A term inside a block's own populations in the depth limit: the other limits taken, L = K exactly.

        Such a term does not add up over the L blocks by itself: its size relative to the stream is carried
        by the fields it multiplies (a branch's inner backward field is O(branch scale)), so it is not
        classified by its own power of L; the system is the width limit of a depth-K network, and the
        solve's K vs K/2 difference (and `dmftc check`'s extrapolation) measures the approach to K -> oo.
        """
        others = tuple(n for n in self.spec.limit if n != "L")
        return take_limit(expr, others, what, self.spec.hyper).subs(size_symbol("L"), self.spec.sizes["L"])

    # ------------------------------------------------------------ control-variate twins of the stream
    def _twin_start(self, p):
        """The stream's gamma0 = 0 twin h0 starts as the source of the field the first block reads."""
        lazy = self.lazy.get(("h", p))
        law = self.sources.get(f"src:u{p}")
        if (not self.twins_ok or lazy is None or law is None or not isinstance(lazy, sympy.Indexed)
                or (lazy.base, lazy.indices[0]) != (law.field.base, law.field.indices[0])):
            self.twins_ok = False
            return
        self.forward_item(Equation(f"eq:cv.h{p}", h0[p, mu, t], law.field, "twin",
                                   "stream at gamma0 = 0: the source of its first field", (p, p)))
        self.forward_item(Equation(f"eq:cv.H{p}", H0[p, mu, nu, t, s], law.coefficient * law.covariance,
                                   "twin_kernel", "its kernel, exactly: the source's covariance", (p, p)))
        self.lazy[("h", p)] = h0[p, mu, t]

    def twin_add(self, m, l, body):
        """h0' = h0 + u for a block ending in a dense layer (independent Gaussian sources add their
        covariances, H0' = H0 + c Phi exactly); any other block ends the twins."""
        law = self.sources.get(f"src:u{m}")
        if not self.twins_ok or body is None or law is None or self.lazy.get(("h", l)) != h0[l, mu, t]:
            self.twins_ok = False
            return
        self.forward_item(Equation(f"eq:cv.h{m}", h0[m, mu, t], h0[l, mu, t] + law.field, "twin",
                                   "stream at gamma0 = 0: the sources of the blocks so far", (m, m)))
        self.forward_item(Equation(f"eq:cv.H{m}", H0[m, mu, nu, t, s],
                                   H0[l, mu, nu, t, s] + law.coefficient * law.covariance, "twin_kernel",
                                   "its kernel, exactly: independent sources add their covariances", (m, m)))
        self.lazy[("h", m)] = h0[m, mu, t]

    # ------------------------------------------------------------ helpers
    def positions(self) -> dict:
        """Placeholder -> position: the residual stream first, then the dense layers' own populations (an
        MLP's hidden layers 1..L, as the simulator numbers its sites; attention's keys, queries, values and
        outputs), then the rest (LayerNorm outputs), then the ports of further readers."""
        rank = {p: (0 if p in self.streams else 1 if p in self.dense_fields else 3 if p in self.ports else 2)
                for p in self.order}
        ordered = sorted(self.order, key=lambda p: (rank[p], self.order.index(p)))
        return {p: sympy.Integer(i + 1) for i, p in enumerate(ordered)}

    def _count(self, node) -> int:
        times = node.op.times.subs({size_symbol(k): v for k, v in self.spec.sizes.items()})
        return int(times)


def stream_weights(graph: Graph) -> frozenset[str]:
    """The weights whose every term adds into the residual stream: the one dense layer of a branch made of
    pointwise ops (act, layernorm) and that layer last. Their terms are summed over the L blocks and take
    the depth limit on the layer-time grid (`coefficients.depth_limit`, docs/theory.md#depth)."""
    out = set()
    for node in graph.walk():
        kinds = [c.kind for c in node.children] if node.kind == "residual" else []
        if kinds and kinds[-1] == "dense" and kinds.count("dense") == 1 and set(kinds) <= {"dense", "act", "layernorm"}:
            out.add(node.children[-1].weights[0].name)
    return frozenset(out)


def walk_system(spec: Spec, graph: Graph, params: Mapping[str, WeightScaling], regime: str) -> EquationSystem:
    """The feature-learning system of `spec` in its limit, by walking `graph`."""
    acts = Activations(n.op.fn for n in graph.walk() if n.kind == "act")
    w = Walk(spec, graph, params, acts)
    w.run(graph.nodes, Data())
    w.coef("f0", next(x.name for x in graph.weights.values() if x.role == "readout"))
    return _assemble(spec, w, regime)


def _assemble(spec: Spec, w: Walk, regime: str) -> EquationSystem:
    backward = []
    for p in reversed(w.order):
        backward.extend(w.pre_g.get(p, ()))
        parts = w.adjoints.get(p, ())
        if parts:
            backward.append(Equation(f"eq:field.g{p}", g[p, mu, t], sympy.Add(*(c for c, _ in parts)), "field",
                                     "backward field: the sum of its consumers' contributions", (p, p)))
            backward.append(Equation(f"eq:kernel.G{p}", G[p, mu, nu, t, s], Expect(g[p, mu, t] * g[p, nu, s]),
                                     "kernel", "gradient kernel", (p, p)))
            lazy_g = _lazy_sum(w, [c for c, cv in parts if cv], len(parts))
            if lazy_g is not None:
                w.lazy[("g", p)] = lazy_g
        backward.extend(w.post_g.get(p, ()))
    F = Fseq if w.tokens else f   # with tokens: position alpha's sequence's output, y repeated per token
    output = w.output + _error_and_losses(spec, w, F)
    forward = list(w.forward)
    if not w.twins_ok:
        forward = [e for e in forward if not (isinstance(e, Equation) and e.kind in ("twin", "twin_kernel"))]
        w.lazy = {k: v for k, v in w.lazy.items() if not v.has(h0)}
    # positions: the stream first, then the other fields in the order met
    num = w.positions()
    forward, output, backward = (tuple(_renumber(e, num) for e in items) for items in (forward, output, backward))
    sources = tuple(e for e in forward + backward if isinstance(e, SourceLaw))
    equations = tuple(e for e in forward + output + backward if isinstance(e, Equation))
    lazy = {(b, int(num[p])): _renumber_expr(v, num) for (b, p), v in w.lazy.items()}
    lazy = {k: v for k, v in lazy.items() if not (k[0] == "h" and v == h[k[1], mu, t])}
    has_ln = any(e.label.startswith("eq:ln.") for e in equations)
    method = "exact_gaussian" if not w.acts.names and not has_ln and not w.attention else "monte_carlo"
    depth = ("Depth limit L -> oo: positions of the stream index the layer-time grid tau = l dtau, dtau = 1/K; "
             "the sums over blocks are Euler steps of integrals over tau (sources of variance ~ dtau are Brownian "
             "increments)." if any(c.has(sympy.Symbol("dtau", positive=True)) for c in w.coefficients.values())
             else None)
    notes = tuple(n for n in (
        depth, "A and B here are eta*gamma0 times Bordelon & Pehlevan's (the prefactor sits in the term).",
        "Responses are computed by Gaussian integration by parts on the whitened sources.") if n)
    sysm = EquationSystem(
        spec.name, regime, method, spec.limit, len(num), w.acts.label, equations, sources,
        schedule(forward), schedule([e for e in output if e.kind != "loss"]), schedule(backward), dict(w.coefficients), notes,
        lazy_instances=lazy, exact_twins=({"h0": "H0"} if w.twins_ok and w.streams else {}),
        activations=(() if w.acts.single else w.acts.names), tokens=w.tokens,
        heads=("sites" if w.key_dim else "collapse") if w.attention else None, key_dim=w.key_dim,
        head_positions=tuple(sorted(int(num[p]) for p in w.head_fields)),
        stream_sites=tuple(int(num[p]) if p is not None else 0 for p in w.marks),
        training=training_arrays(spec, w), coupled_rate=coupled_rate(spec, w), loss=spec.training.loss)
    sysm.check()
    return sysm


def _error_and_losses(spec: Spec, w: Walk, F) -> list:
    """The error signal and the losses (docs/theory.md#training-setups). Full batch: Delta = (y - F)/P and
    the mean loss over the P points. With minibatches or held-out points: Delta = Omega(t) (y - F), the
    training loss weighted by wtrain, the held-out loss by wtest, the batch loss by Omega(t)."""
    seq = " of alpha's sequence" if w.tokens else ""
    per_seq = "; each sequence counted once: its S tokens share its output" if w.tokens else ""
    ell, err, half = loss_terms(spec.training.loss, F[mu, t], y[mu])
    if not w.weighted:
        return [Equation("eq:error.Delta", Delta[mu, t], err / P, "error", "error signal -dloss/df" + seq),
                Equation("eq:loss", Loss[t], Sum(ell, (mu, 0, w.npos - 1)) * half / w.npos, "loss",
                         f"training loss (deterministic in this limit{per_seq})")]
    S_ = S if w.tokens else ONE
    out = [Equation("eq:error.Delta", Delta[mu, t], Omega[t, mu] * err, "error",
                    "error signal -dloss/df" + seq + ", weighted 1/|B_t| on step t's batch and 0 elsewhere"),
           Equation("eq:loss", Loss[t], Sum(wtrain[mu] * ell, (mu, 0, w.npos - 1)) * half, "loss",
                    f"training loss over the whole training set{per_seq}")]
    if spec.training.batches is not None:
        out.append(Equation("eq:loss.batch", LossBatch[t], Sum(Omega[t, mu] * ell, (mu, 0, w.npos - 1)) * half / S_,
                            "loss", "loss on step t's batch"))
    if getattr(spec.data, "test", 0):
        out.append(Equation("eq:loss.test", LossTest[t], Sum(wtest[mu] * ell, (mu, 0, w.npos - 1)) * half, "loss",
                            "loss on the held-out points, which drive no update"))
    return out


def loss_terms(loss: str, F, Y):
    """(the loss of one point over its factor, its error signal -dloss/dF, that factor): mse (F - Y)^2 times
    1/2 and Y - F; cross_entropy (two classes Y = +-1, F the logit) log(1 + e^(-Y F)) and Y sigmoid(-Y F)."""
    if loss == "cross_entropy":
        return Softplus(-Y * F), Y * Sigmoid(-Y * F), ONE
    return (F - Y) ** 2, Y - F, sympy.Rational(1, 2)


def training_arrays(spec: Spec, w: Walk) -> tuple[str, ...]:
    """The arrays of `dmftc.training` the solver reads (`EquationSystem.training`)."""
    out = (("Kappa",) if w.filtered else ()) + (("adec",) if w.decayed else ())
    if w.weighted:
        out += ("Omega", "wtrain") + (("wtest",) if getattr(spec.data, "test", 0) else ())
    return out


def coupled_rate(spec: Spec, w: Walk):
    """Coupled weight decay: the common limit of the weights' decay rates r = lr_W lambda.

    The rule d = grad + lambda W, v <- beta v + d, W <- W - lr_W s D has W_t = a(t) W_0 - lr_W sum_s Kappa(t, s)
    grad_s with a and Kappa functions of r alone (`dmftc.training.filters` at lr_W = 1, lambda = r), so the
    limit needs r finite, not lr_W: under muP (lr_W ~ N) a decay lambda = lam / N has r = eta gamma0^2 lam.
    Refused where r diverges or differs between weights (one filter each); decoupled decay (W <- W - lr s lambda W,
    the global lr) is refused when lambda depends on a size going to infinity."""
    lam = spec.training.weight_decay
    if lam == 0:
        return None
    if spec.training.decay != "coupled":
        if lam.free_symbols & {size_symbol(n) for n in spec.limit}:
            raise Unsupported(f"decoupled weight decay that depends on a size going to infinity ({lam}): "
                              "the DMFT reads lambda at the limit, the networks at their size",
                              "write the decoupled decay in the hyperparameters alone")
        return None
    rates = {}
    for name, ws in w.params.items():
        try:
            rates[name] = w.finite(take_limit(ws.lr * spec.training.weight_decay, spec.limit,
                                              f"the coupled decay rate of {name}", spec.hyper))
        except LimitError:
            rates[name] = sympy.oo
    if any(r == sympy.oo for r in rates.values()):
        bad = ", ".join(f"{k} ({w.params[k].lr * spec.training.weight_decay})" for k, r in rates.items()
                        if r == sympy.oo)
        raise Unsupported(f"coupled weight decay whose rate lr_W lambda grows with the width: {bad}; "
                          "lr_W lambda W would diverge",
                          "use `decay: decoupled` (W <- W - lr(t) lambda W), or scale lambda as 1/N under muP")
    if len(set(rates.values())) > 1:
        raise Unsupported("coupled weight decay with different rates lr_W lambda per weight (one filter each)",
                          "use `decay: decoupled`, or one learning rate for every weight")
    return next(iter(rates.values()))


def _lazy_sum(w: Walk, parts, n_all):
    """The gamma0 = 0 part of a backward field from its contributions with a backward source factor,
    when every field in them has one (dropping the others keeps it a valid control variate: it only
    has to be a function of the sources whose responses vanish in expectation)."""
    out = []
    for c in parts:
        sub = {}
        for x in c.atoms(sympy.Indexed):
            base = x.base.name
            if base in ("h", "z"):
                lazy = w.lazy.get((base, x.indices[0]))
                if lazy is None:
                    return None
                sub[x] = lazy
            elif base not in ("u", "r"):
                return None
        out.append(c.xreplace(sub))
    return sympy.Add(*out) if out else None


def schedule(items) -> tuple[Step, ...]:
    """Each item evaluated once, in order, at its position."""
    return tuple(Step(e.label, e.layers[0] if e.layers else None) for e in items)


_POS = re.compile(r"@(\d+)")


def _renumber_expr(e, num):
    return e.xreplace(num) if isinstance(e, sympy.Basic) else e


def _renumber(item, num):
    names = {p.name: str(v) for p, v in num.items()}
    label = _POS.sub(lambda m: names[m.group(0)], item.label)
    layers = tuple(_renumber_expr(x, num) for x in item.layers) if item.layers else item.layers
    if isinstance(item, SourceLaw):
        return replace(item, label=label, field=_renumber_expr(item.field, num),
                       covariance=_renumber_expr(item.covariance, num),
                       coefficient=_renumber_expr(item.coefficient, num), layers=layers)
    return replace(item, label=label, lhs=_renumber_expr(item.lhs, num), rhs=_renumber_expr(item.rhs, num),
                   layers=layers)
