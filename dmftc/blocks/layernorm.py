"""Parameter-free LayerNorm over the feature axis, per token: (h - mean) / sqrt(var + EPS).

var is the population variance (divide by the width n), so |LN(h)|^2 = n exactly: the
mean-field LayerNorm divides by the exact kernel diagonal, and this finite one matches it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import sympy

from ..errors import Unsupported
from ..ir import Equation
from ..notation import Cg, Cln, Expect, Mln, Sigma, Vln, g, h, mu, nu, t
from ..notation import Gk as GK
from .meanfield import Data, InvScale, Normalized, Value

KIND = "layernorm"

#: EPS only guards 0 / 0 for an all-constant input. Features here are O(1) per coordinate,
#: so 1e-12 is invisible next to var (below float32 resolution) and leaves no finite-eps
#: bias for the DMFT to model.
EPS = 1e-12


def forward(h: jax.Array) -> jax.Array:
    """(h - mean) / sqrt(var + EPS) over the last axis."""
    centred = h - jnp.mean(h, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(centred), axis=-1, keepdims=True)
    return centred * jax.lax.rsqrt(var + EPS)


def meanfield(walk, node, x):
    """LN(e) = (e - m) / sqrt(v - m^2), m = <e>, v = <e e> per sample and time over the population: order
    parameters, deterministic in the limit, so LN keeps its input's population (docs/theory.md#populations).
    Its backward field keeps the finite Jacobian's projections onto 1 and LN itself:
    g_e = (g - <g> - LN <LN g>) / sqrt(v - m^2).                                  eq:ln.mean, eq:ln.var, eq:ln.C"""
    x = walk.value(x, node)
    if isinstance(x, Data):
        raise Unsupported("a layernorm of the raw input", "put a dense layer before it")
    i, X, dX = walk.expression(x)
    p = walk.new_field(node)
    m, v = Mln[p, mu, t], Vln[p, mu, t]
    sd = sympy.sqrt(v - m**2)
    walk.forward_item(Equation(f"eq:ln.mean{p}", m, Expect(X), "order", "LayerNorm's mean over the population", (p, p)))
    walk.forward_item(Equation(f"eq:ln.var{p}", v, Expect(X**2), "order", "LayerNorm's second moment", (p, p)))
    walk.forward_item(Equation(f"eq:field.h{p}", h[p, mu, t], (X - m) / sd, "field",
                               "LayerNorm: centred and scaled by population averages", (p, p)))
    walk.post_g_items(p, [
        Equation(f"eq:ln.Cg{p}", Cg[p, mu, t], Expect(g[p, mu, t]), "order", "mean of LN's backward field", (p, p)),
        Equation(f"eq:ln.C{p}", Cln[p, mu, t], Expect(h[p, mu, t] * g[p, mu, t]), "order",
                 "LN's projection <LN g>", (p, p))])
    walk.adjoint(i, dX * (g[p, mu, t] - Cg[p, mu, t] - h[p, mu, t] * Cln[p, mu, t]) / sd)
    lazy = walk.lazy.get(("h", i))
    if lazy is not None:  # the same function of the input's gamma0 = 0 part (m, v are deterministic)
        walk.set_lazy("h", p, (walk.acts.apply(x.chain, lazy) - m) / sd)
    return Value(p)


def kernel_map(walk, node, x):
    """Lazy limit: LN of a Gaussian field of covariance Sigma is Gaussian with the normalised covariance
    Sigma_mn / sqrt(Sigma_mm Sigma_nn) (its mean is 0 at initialization); its input's gradient kernel
    gains G_LN / sqrt(Sigma_mm Sigma_nn) (the projections vanish: <g> = <LN g> = 0 at initialization)."""
    x = walk.value(x, node)
    if isinstance(x, Data) or x.chain:
        raise Unsupported("the lazy limit of a layernorm of a non-Gaussian vector (an activation's output)",
                          "put the layernorm before the activation or directly after a dense layer")
    i = x.p
    p = walk.new_field(node)
    walk.sigma(p, Normalized(Sigma[i, mu, nu]), "LayerNorm of a Gaussian field: its covariance normalised")
    walk.gradient(i, GK[p, mu, nu] * InvScale(Sigma[i, mu, nu]))
    return Value(p)
