"""Scalar readout: f = multiplier * w . h, with w of shape (1, fan_in).

For mup the multiplier is 1 / (gamma0 N) (times L^(1/2 - alpha_L) in residual networks);
for ntk 1 / sqrt(N) (docs/spec.md#what-the-presets-resolve-to).
"""

from __future__ import annotations

import jax
import sympy

from ..errors import Unsupported
from ..ir import Equation, SourceLaw
from ..notation import Delta, Expect, Phi, Response, f, mu, nu, r, s, t, z
from ..notation import Phik as PhiK
from .dense import sum_past
from .meanfield import Data

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
    (r is the readout weight's initial value; g_e += e' z)."""
    x = walk.value(x, node)
    W = node.weights[0].name
    if isinstance(x, Data):
        raise Unsupported("a readout of the raw input (a model with no hidden layer)",
                          "add a hidden dense layer before the readout")
    i, X, dX = walk.read(x)
    Xs = X.subs({mu: nu, t: s}, simultaneous=True)

    def c(term):
        return walk.coef(term, W)

    walk.output_item(Equation("eq:output.f", f[mu, t], c("fresp") * Expect(Response(X, r[i]))
                              + sum_past(c("fupd") * Delta[nu, s] * Phi[i, mu, nu, t, s]),
                              "output", "output: response of the readout's initial weights plus its updates"))
    walk.backward_items(i, [
        SourceLaw(f"src:r{i}", r[i], sympy.Integer(1), sympy.Integer(1), "scalar",
                  "the readout weight's initial value", (i, i)),
        Equation(f"eq:field.z{i}", z[i, mu, t], r[i] + sum_past(c("zupd") * Delta[nu, s] * Xs), "field",
                 "top backward field: the readout weight, constant source plus its updates", (i, i))])
    walk.set_lazy("z", i, r[i, mu, t])  # constant; written as the dynamic ones so memos are shared
    walk.adjoint(i, dX * z[i, mu, t], cv=True)
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
