"""Scalar readout: f = multiplier * w . h, with w of shape (1, fan_in).

For mup the multiplier is 1 / (gamma0 N) (times L^(1/2 - alpha_L) in residual networks);
for ntk 1 / sqrt(N) (docs/spec.md#what-the-presets-resolve-to).
"""

from __future__ import annotations

import jax
import sympy

from ..errors import Unsupported
from ..ir import Equation, SourceLaw
from ..notation import Delta, Expect, Fseq, Phi, Response, Seq, f, ftok, mu, nu, r, s, size_symbol, t, z
from ..notation import Phik as PhiK
from .meanfield import Data, Pooled

S = size_symbol("S")

KIND = "readout"


def forward(w: jax.Array, h: jax.Array, multiplier: float) -> jax.Array:
    """f = multiplier * h . w[0]: one number per sample."""
    return multiplier * (h @ w[0])


def prefactors(multiplier, init_std, lr, fan_in) -> dict:
    """The readout's term prefactors before the limit: f0 the output variance at initialization
    s_hat^2 n, fupd its update m^2 lam n, fresp its response s_hat n, zupd the top backward field's
    update lam m / s, ntk its lazy-limit kernel m^2 lam n (s_hat = m s)."""
    s_hat = multiplier * init_std
    return {"f0": s_hat**2 * fan_in, "fupd": multiplier**2 * lr * fan_in, "fresp": s_hat * fan_in,
            "zupd": lr * multiplier / init_std, "ntk": lr * multiplier**2 * fan_in}


def meanfield(walk, node, x):
    """f = m w . e: the output and the top backward field (docs/theory.md#mlp-dmft):
    f(t) = c_fresp <d e(t) / d r> + sum_{s<t} c_fupd Delta(s) Phi_e(t, s)                    eq:output.f
    z(t) = r + sum_{s<t} c_zupd Delta(s) e(s),  r ~ N(0, 1) one number per draw              eq:field.z
    (r is the readout weight's initial value; g_e += e' z). With momentum, a schedule or weight decay the
    update terms carry the filter Kappa(t, s) and the terms of w(0) the factor a(t) (docs/theory.md#training-setups).

    After mean pooling over a sequence's S tokens (positions alpha = (mu, s)) each token carries
    the share ftok_alpha = (1/S) m w . e_alpha of its sequence's output F_mu = sum_s ftok_(mu, s); the
    readout's update sums the tokens' features with weight 1/S, and each token's backward field is z / S:
    ftok(t) = (c_fresp / S) <d e(t) / d r> + sum_{s<t} (c_fupd / S^2) Delta(s) Phi_e(t, s)
    z(t) = r + sum_{s<t} (c_zupd / S) Delta(s) e(s),   g_e += e' z / S                     eq:output.F"""
    pooled = isinstance(x, Pooled) or walk.pooled   # after a pool, a field is its sequence's mean
    x = x.x if isinstance(x, Pooled) else walk.value(x, node)
    W = node.weights[0].name
    if isinstance(x, Data):
        raise Unsupported("a readout of the raw input (a model with no hidden layer)",
                          "add a hidden dense layer before the readout")
    if walk.tokens and not pooled:
        raise Unsupported("a readout of token features without pooling",
                          "put `- pool: mean` before the readout (one output per sequence)")
    i, port, X, dX = walk.read(x)
    Xs = X.subs({mu: nu, t: s}, simultaneous=True)
    w = S if pooled else sympy.Integer(1)   # the pooling weight of each token

    def c(term):
        return walk.coef(term, W)

    out = ftok if pooled else f
    walk.output_item(Equation("eq:output.f", out[mu, t], walk.initial(c("fresp") / w * Expect(Response(X, r[i])))
                              + walk.sum_past(walk.learned(c("fupd") / w**2 * Delta[nu, s]) * Phi[i, mu, nu, t, s]),
                              "output", "output: response of the readout's initial weights plus its updates"
                              + (" (each token's share of its sequence's mean pooling)" if pooled else "")))
    if pooled:
        walk.output_item(Equation("eq:output.F", Fseq[mu, t], walk.mix(Seq[mu, nu] * ftok[nu, t]), "output",
                                  "the output of alpha's sequence: the sum of its tokens' shares"))
    walk.backward_items(i, [
        SourceLaw(f"src:r{i}", r[i], sympy.Integer(1), sympy.Integer(1), "scalar",
                  "the readout weight's initial value", (i, i)),
        Equation(f"eq:field.z{i}", z[i, mu, t], walk.initial(r[i]) + walk.sum_past(walk.learned(c("zupd") / w * Delta[nu, s]) * Xs), "field",
                 "top backward field: the readout weight, constant source plus its updates", (i, i))])
    walk.set_lazy("z", i, r[i, mu, t])  # constant; written as the dynamic ones so memos are shared
    walk.adjoint(i, dX * z[i, mu, t] / w, cv=True)
    return None


def kernel_map(walk, node, x):
    """Lazy limit: f(0) ~ N(0, c_f0 Phi_e), the readout's NTK term c_ntk Phi_e, and the top gradient
    kernel E[e'(x) e'(x')] (the readout weight's backward field has unit variance)."""
    x = walk.value(x, node)
    if isinstance(x, Data):
        raise Unsupported("a readout of the raw input (a model with no hidden layer)",
                          "add a hidden dense layer before the readout")
    W = node.weights[0].name
    i = walk.read(x)
    walk.ntk(walk.coef("ntk", W) * PhiK[i, mu, nu])
    walk.output_variance(walk.coef("f0", W) * PhiK[i, mu, nu])
    walk.gradient(i, walk.derivative_kernel(i))
    return None
