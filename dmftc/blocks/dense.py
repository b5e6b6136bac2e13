"""Dense layer y = m W x: its finite forward pass, its term prefactors and its mean-field contribution.

Finite: W has shape (fan_out, fan_in); x carries any leading axes (samples, tokens), so the same
function serves flat inputs (P, fan_in) and token sequences (P, S, fan_in). The multiplier is the
parameterization's (`dmftc.scaling.parameterization`), e.g. 1 / sqrt(fan_in) for mup and ntk
(docs/theory.md#width-presets).

Mean field (docs/theory.md#populations): W(0) used forward opens a Gaussian source u into the
output's population with the kernel of the input as covariance; W(0)^T used backward opens a
source r into the input's population with the kernel of the output's backward field; the reuse of
W(0) in both passes leaves the responses A and B; the accumulated updates leave the Delta terms:

    y(t) = u(t) + sum_{s<t} sum_nu [c_resp A(t,s) + c_upd Delta(s) Phi_x(t,s)] g_y(s)       eq:field.h
    z_x(t) = r(t) + sum_{s<=t} c_bresp B(t,s) x(s) + sum_{s<t} c_bupd Delta(s) G_y(t,s) x(s)  eq:field.z
    A(t,s) = < d x(t) / d r(s) >  (s < t),   B(t,s) = < d g_y(t) / d u(s) >  (s <= t)
    u ~ GP(0, c_src Phi_x),   r ~ GP(0, c_bsrc G_y),   g_x += x'(h) z_x

with the prefactors c of `prefactors` after the limit. With momentum, a schedule or weight decay
(docs/theory.md#training-setups) each update term carries the optimizer's filter Kappa(t, s) and each
term of W(0) (u, r and the responses) the factor a(t) weight decay leaves of it (`walk.learned`, `walk.initial`). A dense reading the data has no backward
field: only its static source (covariance the data kernel) and its update term.
"""

from __future__ import annotations

import jax
import sympy
from ..ir import Equation, SourceLaw
from ..notation import A, B, Delta, Expect, G, Phi, Phi0, Response, g, mu, nu, r, s, size_symbol, t, u, z
from ..notation import Gk as GK
from ..notation import Phik as PhiK
from .meanfield import Data, Pending, Value

KIND = "dense"
Expr = sympy.Expr
P = size_symbol("P")


def forward(W: jax.Array, x: jax.Array, multiplier: float) -> jax.Array:
    """h = multiplier * W x over the last axis of x."""
    return multiplier * (x @ W.T)


def prefactors(multiplier: Expr, init_std: Expr, lr: Expr, fan_in: Expr, fan_out: Expr, s_hat: Expr) -> dict:
    """The size prefactors of a dense op's terms before the limit (docs/theory.md#populations).

    For y = m W x (W entries of std s, GD step lam) with backward fields normalised by the readout's
    s_hat = m_read s_read:
    src m^2 s^2 n_in, bsrc m^2 s^2 n_out, upd lam m^2 s_hat n_in, bupd lam m^2 s_hat n_out,
    resp m^2 s^2 n_in, bresp m^2 s^2 n_out, ntk lam m^2 s_hat^2 n_in n_out (the lazy limit's kernel).
    """
    m2, s2 = multiplier**2, init_std**2
    return {"src": m2 * s2 * fan_in, "bsrc": m2 * s2 * fan_out,
            "upd": lr * m2 * s_hat * fan_in, "bupd": lr * m2 * s_hat * fan_out,
            "resp": m2 * s2 * fan_in, "bresp": m2 * s2 * fan_out,
            "ntk": lr * m2 * s_hat**2 * fan_in * fan_out}


#: terms a dense reading the data keeps (it has no backward field, so no backward source or responses)
DATA_TERMS = ("src", "upd", "ntk")


def meanfield(walk, node, x):
    """A dense op's output waits as `Pending` until its consumer places it in a population."""
    return Pending(node, node.weights[0].name, walk.value(x, node))


def contribution(walk, pend: Pending, o) -> Expr:
    """The forward value of `pend` written into the population of field `o` (eq:field.h's right side);
    registers its source laws, responses and the backward field z of its input."""
    W = pend.weight

    def c(term):
        return walk.coef(term, W, pend.scale)

    if isinstance(pend.x, Data):
        walk.forward_item(SourceLaw(f"src:u{o}", u[o, mu], Phi0[mu, nu], c("src"), "static",
                                    f"forward source of {W} on the data, covariance the data kernel", (o, o)))
        walk.set_lazy("h", o, u[o, mu, t])  # constant in time; written as the dynamic ones so memos are shared
        return walk.initial(u[o, mu]) + walk.sum_past(walk.learned(c("upd") * Delta[nu, s]) * Phi0[mu, nu] * g[o, nu, s])
    i, port, X, dX = walk.read(pend.x, o)
    Xs = X.subs({mu: nu, t: s}, simultaneous=True)
    cr, cu, cbr, cbu = c("resp"), c("upd"), c("bresp"), c("bupd")
    k = port  # this reader's backward source, field and responses (i itself for the first reader)
    if cr != 0:
        walk.forward_item(Equation(f"eq:response.A{k}", A[k, mu, nu, t, s], Expect(Response(X, r[k, nu, s])),
                                   "response", f"response of {W}'s input to its backward source, s < t",
                                   (k, k), "strict"))
    walk.forward_item(SourceLaw(f"src:u{o}", u[o, mu, t], Phi[i, mu, nu, t, s], c("src"), "dynamic",
                                f"forward source of {W}, covariance its input's kernel", (o, o)))
    walk.set_lazy("h", o, u[o, mu, t])
    value = walk.initial(u[o, mu, t]) + walk.sum_past((walk.initial(cr * A[k, mu, nu, t, s])
                                                       + walk.learned(cu * Delta[nu, s]) * Phi[i, mu, nu, t, s])
                                                      * g[o, nu, s])
    # backward: W(0)^T g_y opens r into the input's population, before g of the input is formed
    back = [SourceLaw(f"src:r{k}", r[k, mu, t], G[o, mu, nu, t, s], c("bsrc"), "dynamic",
                      f"backward source of {W}, covariance its output's gradient kernel", (k, k))]
    if cbr != 0:
        back.append(Equation(f"eq:response.B{k}", B[k, mu, nu, t, s], Expect(Response(g[o, mu, t], u[o, nu, s])),
                             "response", f"response of {W}'s output gradient to its forward source, s <= t",
                             (k, k), "causal"))
    back.append(Equation(f"eq:field.z{k}", z[k, mu, t],
                         walk.initial(r[k, mu, t]) + walk.sum_now(walk.initial(cbr * B[k, mu, nu, t, s]) * Xs)
                         + walk.sum_past(walk.learned(cbu * Delta[nu, s]) * G[o, mu, nu, t, s] * Xs),
                         "field", f"backward field at {W}'s input: source, response (s <= t), updates", (k, k)))
    walk.backward_items(k, back)
    walk.set_lazy("z", k, r[k, mu, t])
    walk.adjoint(i, dX * z[k, mu, t], cv=True)
    return value


__all__ = ["KIND", "forward", "prefactors", "meanfield", "contribution", "Value"]


def kernel_map(walk, node, x):
    """Lazy limit: the output waits as `Pending`; placed in a population it is Gaussian with covariance
    Sigma_y = c_src Phi_x (Phi0 on the data), and its input's gradient kernel gains
    c_bsrc G_y * E[e'(x) e'(x')] (docs/theory.md#lazy-limit)."""
    return Pending(node, node.weights[0].name, walk.value(x, node))


def kernel_contribution(walk, pend: Pending, o) -> Expr:
    """Sigma of `pend`'s output placed in field `o`; registers its NTK term and its input's gradient kernel."""
    W = pend.weight

    def c(term):
        return walk.coef(term, W, pend.scale)

    if isinstance(pend.x, Data):
        walk.ntk(c("ntk") * GK[o, mu, nu] * Phi0[mu, nu])
        return c("src") * Phi0[mu, nu]
    i = walk.read(pend.x)
    walk.ntk(c("ntk") * GK[o, mu, nu] * PhiK[i, mu, nu])
    walk.gradient(i, c("bsrc") * GK[o, mu, nu] * walk.derivative_kernel(i))
    return c("src") * PhiK[i, mu, nu]
