"""The lazy (kernel) limit by the same walk: every update term vanishes, the features stay at their
initial values, and the network is its NNGP and NTK kernels (docs/theory.md#lazy-limit).

Each block's `kernel_map` (in `dmftc.blocks`) says what it does to the Gaussian fields at
initialization: a dense layer's output is Gaussian with covariance c_src times its input's
kernel; an activation chain e read by a dense layer has the kernel E[e(x) e(x')] and the
derivative kernel E[e'(x) e'(x')] under that Gaussian (closed forms for relu, erf, linear and
quadratic, quadrature for the rest and for compositions); a residual stream adds its branches'
covariances; a LayerNorm normalises the covariance. Backward, the gradient kernels are sums over
consumers (the backward sources are independent of the forward fields at initialization), and

    K = sum over dense layers c_ntk G_out * Phi_in + c_ntk,readout Phi_top,   f(t+1) = f(t) + K Delta(t),
    f(0) ~ N(0, Sigma_f),  Sigma_f = c_f0 Phi_top,

the loss averaged over f(0) exactly (no sampling).
"""

from __future__ import annotations

from typing import Mapping

import sympy
from sympy import Sum

from ..blocks import dense as dense_block
from ..blocks.meanfield import Activations, Data, Pending, Value, x_
from ..errors import Unsupported
from ..graph.build import Graph
from ..ir import Equation
from ..notation import (Delta, Expect, Kappa, LossBatch, LossTest, Omega, s, wtest, wtrain, GaussDPhi, GaussPhi, Gk as GK, K, Loss, Phid as PhiD, Phik as PhiK, Sigma, Sigmaf, f, mu, nu,
                        size_symbol, t, y)
from ..runtime.closed_forms import has_closed_form
from ..scaling.parameterization import WeightScaling
from ..spec.types import Spec
from .system import EquationSystem
from .walk import Walk, _renumber, schedule, training_arrays

P = size_symbol("P")


class KernelWalk(Walk):
    """The walk of the lazy limit: Gaussian fields with covariances Sigma, kernels, gradient kernels."""

    rule = "kernel_map"

    def __init__(self, *args):
        super().__init__(*args)
        self.items: list[Equation] = []
        self.chains: dict = {}
        self.grads: dict = {}
        self.ntk_terms: list = []
        self.f0 = sympy.Integer(0)

    def value(self, x, node=None):
        """x as data or a Gaussian field: a pending dense output is placed in a population of its own."""
        if isinstance(x, Pending):
            p = self.new_field(x.node)
            self.dense_fields.append(p)
            self.sigma(p, dense_block.kernel_contribution(self, x, p), f"{x.weight}'s output: Gaussian, covariance "
                       "its input's kernel")
            return Value(p)
        return x


    def sigma(self, p, expr, meaning):
        self.items.append(Equation(f"eq:lazy.Sigma{p}", Sigma[p, mu, nu], expr, "lazy", meaning, (p, p)))

    def mark(self, x) -> None:
        """The lazy limit compares kernels by name, not by the simulator's stream sites."""

    def mark_stream(self, p):
        if p not in self.streams:
            self.streams.append(p)

    def read(self, x: Value):
        """The kernel E[e(x) e(x')] of what a dense layer or the readout reads from field x.p."""
        p, e = x.p, self.acts.apply(x.chain, x_)
        if p in self.chains:
            raise Unsupported("a vector read by two dense layers", "this engine gives each field one dense consumer")
        self.chains[p] = e
        rhs = Sigma[p, mu, nu] if e == x_ else GaussPhi(Sigma[p, mu, nu], e)
        self.items.append(Equation(f"eq:lazy.Phi{p}", PhiK[p, mu, nu], rhs, "lazy",
                                   "feature kernel E[e(u) e(u')], u ~ N(0, Sigma)", (p, p)))
        return p

    def derivative_kernel(self, p):
        e = self.chains[p]
        if e == x_:
            return sympy.Integer(1)
        self.items.append(Equation(f"eq:lazy.PhiD{p}", PhiD[p, mu, nu], GaussDPhi(Sigma[p, mu, nu], e), "lazy",
                                   "derivative kernel E[e'(u) e'(u')]", (p, p)))
        return PhiD[p, mu, nu]

    def gradient(self, p, term):
        self.grads.setdefault(p, []).append(term)

    def ntk(self, term):
        self.ntk_terms.append(term)

    def output_variance(self, term):
        self.f0 = term


def _lazy_tail(spec: Spec, w) -> list:
    """The output dynamics, error signal and losses of the lazy limit (docs/theory.md#training-setups).

    Plain GD: f(t+1) = f(t) + K Delta(t). With momentum or a schedule the update of step s reaches f(t)
    through the filter: f(t) = f(0) + sum_{s<t} Kappa(t, s) K Delta(s). Minibatches and held-out points
    weight the error signal by Omega(t) and the losses by wtrain, Omega(t), wtest.
    """
    if spec.training.loss == "cross_entropy":
        return _lazy_logistic_tail(spec, w)
    _refuse_decay(w)
    sq = Expect((f[mu, t] - y[mu]) ** 2)
    if w.filtered:
        dyn = Equation("eq:lazy.f", f[mu, t], f[mu, 0] + Sum(Kappa[t, s] * K[mu, nu] * Delta[nu, s], (nu, 0, P - 1),
                                                               (s, 0, t - 1)),
                       "lazy_output", "linear output dynamics through the optimizer's filter, f(0) ~ N(0, Sigma_f)")
    else:
        dyn = Equation("eq:lazy.f", f[mu, t + 1], f[mu, t] + Sum(K[mu, nu] * Delta[nu, t], (nu, 0, P - 1)),
                       "lazy_output", "linear output dynamics, f(0) ~ N(0, Sigma_f)")
    if not w.weighted:
        return [dyn, Equation("eq:error.Delta", Delta[mu, t], (y[mu] - f[mu, t]) / P, "error", "error signal"),
                Equation("eq:loss", Loss[t], Sum(sq, (mu, 0, P - 1)) / (2 * P), "loss",
                         "loss averaged over initializations (keeps the variance of f(0))")]
    out = [dyn, Equation("eq:error.Delta", Delta[mu, t], Omega[t, mu] * (y[mu] - f[mu, t]), "error",
                         "error signal, weighted 1/|B_t| on step t's batch and 0 elsewhere"),
           Equation("eq:loss", Loss[t], Sum(wtrain[mu] * sq, (mu, 0, P - 1)) / 2, "loss",
                    "training loss averaged over initializations")]
    if spec.training.batches is not None:
        out.append(Equation("eq:loss.batch", LossBatch[t], Sum(Omega[t, mu] * sq, (mu, 0, P - 1)) / 2, "loss",
                            "loss on step t's batch"))
    if getattr(spec.data, "test", 0):
        out.append(Equation("eq:loss.test", LossTest[t], Sum(wtest[mu] * sq, (mu, 0, P - 1)) / 2, "loss",
                            "loss on the held-out points, which drive no update"))
    return out


def _refuse_decay(w) -> None:
    """Weight decay has no lazy limit: the initial weights shrink by an O(1) factor."""
    if w.decayed:
        raise Unsupported("weight decay in the lazy limit: the initial weights shrink by an O(1) factor, so "
                          "the network is not its linearisation around W(0)",
                          "drop training.weight_decay, or use a feature-learning parameterization (mup)")


def _lazy_logistic_tail(spec: Spec, w) -> list:
    """The lazy limit of the two-class cross-entropy: f(t) = sum_{s<t} Kappa(t, s) K Delta(s) with
    Delta = Omega y sigmoid(-y f), deterministic from f(0) = 0 (a random f(0) would have to be averaged
    through the nonlinear error: refused unless the output is centred or zero at initialization)."""
    if w.f0 != 0 and not spec.training.center_output:
        raise Unsupported("cross-entropy in the lazy limit with a random output at initialization (its "
                          "error signal is nonlinear in f(0))",
                          "set `training.center_output: true` (train on f - f(0)), or use `loss: mse`")
    _refuse_decay(w)
    from .walk import loss_terms

    ell, err, _ = loss_terms("cross_entropy", f[mu, t], y[mu])
    Om = Omega[t, mu] if w.weighted else 1 / P
    out = [Equation("eq:lazy.f", f[mu, t], Sum((Kappa[t, s] if w.filtered else 1) * K[mu, nu] * Delta[nu, s],
                                               (nu, 0, P - 1), (s, 0, t - 1)),
                    "lazy_output", "output dynamics through the kernel, f(0) = 0 (deterministic)"),
           Equation("eq:error.Delta", Delta[mu, t], Om * err, "error", "error signal y sigmoid(-y f)"),
           Equation("eq:loss", Loss[t], Sum((wtrain[mu] if w.weighted else 1 / P) * ell, (mu, 0, P - 1)), "loss",
                    "training loss")]
    if spec.training.batches is not None:
        out.append(Equation("eq:loss.batch", LossBatch[t], Sum(Omega[t, mu] * ell, (mu, 0, P - 1)), "loss",
                            "loss on step t's batch"))
    if getattr(spec.data, "test", 0):
        out.append(Equation("eq:loss.test", LossTest[t], Sum(wtest[mu] * ell, (mu, 0, P - 1)), "loss",
                            "loss on the held-out points"))
    return out


def lazy_system(spec: Spec, graph: Graph, params: Mapping[str, WeightScaling]) -> EquationSystem:
    """The kernel-limit system of `spec` by walking `graph` with each block's `kernel_map`."""
    acts = Activations(n.op.fn for n in graph.walk() if n.kind == "act")
    w = KernelWalk(spec, graph, params, acts)
    w.run(graph.nodes, Data())
    backward = [Equation(f"eq:lazy.G{p}", GK[p, mu, nu], sympy.Add(*w.grads[p]), "lazy",
                         "gradient kernel: the sum over its consumers", (p, p)) for p in reversed(w.order) if p in w.grads]
    centred = spec.training.center_output
    output = [Equation("eq:lazy.K", K[mu, nu], sympy.Add(*w.ntk_terms), "lazy", "neural tangent kernel (eta included)"),
              Equation("eq:lazy.Sigmaf", Sigmaf[mu, nu], sympy.Integer(0) if centred else w.f0, "lazy",
                       "covariance of the output at initialization" + (": 0, the output is centred (f - f(0))"
                                                                         if centred else ", Gaussian"))]
    tail = _lazy_tail(spec, w)
    num = w.positions()
    forward, backward, output = ([_renumber(e, num) for e in items] for items in (w.items, backward, output))
    closed = all(_closed(e) for e in w.chains.values())
    w.coef("f0", next(x.name for x in graph.weights.values() if x.role == "readout"))
    if centred:   # the networks train on f - f(0): no random output at initialization
        w.coefficients["f0:readout"] = sympy.Integer(0)
    sysm = EquationSystem(spec.name, "lazy", "closed_form" if closed else "quadrature", spec.limit, len(num),
                          acts.label, tuple(forward + output + backward + tail), (), schedule(forward),
                          schedule(output), schedule(backward), dict(w.coefficients),
                          ("Kernels at initialization; the features do not move in this limit.",),
                          activations=(() if acts.single else acts.names),
                          training=training_arrays(spec, w), loss=spec.training.loss)
    sysm.check()
    return sysm


def _closed(e) -> bool:
    """A chain with a closed-form Gaussian kernel: the identity or one activation with one."""
    if e == x_:
        return True
    if isinstance(e, sympy.Function) and e.args == (x_,):
        name = e.func.__name__.partition("_")[2] or None
        return name is None or has_closed_form(name)
    return False
