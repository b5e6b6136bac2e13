"""Residual block: h <- h + scale * branch(h) (docs/theory.md#depth-scaling; scale beta0 / L^alpha_L)."""

from __future__ import annotations

from typing import Callable

import jax
import sympy

from ..errors import Unsupported
from ..ir import Equation
from ..notation import Sigma, g, h, mu, nu, t
from ..notation import Gk as GK
from . import dense
from .meanfield import Pending, Value

KIND = "residual"

Tap = Callable[[str, jax.Array], jax.Array]


def _no_tap(name: str, value: jax.Array) -> jax.Array:
    return value


def forward(h: jax.Array, branch: Callable[[jax.Array], jax.Array], scale: float,
            tap: Tap = _no_tap) -> jax.Array:
    """h + scale * branch(h); `tap("branch", .)` sees the scaled branch output."""
    return h + tap("branch", scale * branch(h))


def meanfield(walk, node, x):
    """h' = h + c branch(h): the add pairs coordinates one by one, so the branch's output joins the
    stream's population (docs/theory.md#populations). A branch ending in a dense layer writes that
    layer's source, response and update terms straight into the stream (its branch scale c inside their
    prefactors); one ending in a pointwise function e of a branch field adds c e there:

        h'(t) = h(t) + [u(t) + sum_{s<t} (...) g'(s)]   or   h(t) + c e(x(t))          eq:field.h
        g(t) += g'(t)   (the identity path),   g_x += c e'(x) g'   (a pointwise branch end)
    """
    l = walk.stream(walk.value(x, node), node)
    walk.branch_depth += 1
    out = walk.run(node.children, Value(l))
    walk.branch_depth -= 1
    scale = node.op.scale
    m = walk.new_field(node, stream=True)
    if isinstance(out, Pending):
        # the scale joins the dense layer's multiplier: its prefactors take the limit with it
        body = dense.contribution(walk, Pending(out.node, out.weight, out.x, out.scale * scale), m)
        walk.twin_add(m, l, body)
    else:
        out = walk.value(out, node)
        j, X, dX = walk.expression(out)
        scale = walk.finite(scale)
        body = scale * X
        walk.adjoint(j, scale * dX * g[m, mu, t])
        walk.twin_add(m, l, None)
    walk.forward_item(Equation(f"eq:field.h{m}", h[m, mu, t], h[l, mu, t] + body, "field",
                               "residual stream: the block's branch added to its input", (m, m)))
    walk.stream_kernel(m)
    walk.adjoint(l, g[m, mu, t])
    return Value(m)


def kernel_map(walk, node, x):
    """Lazy limit: a stream position is Gaussian when each branch ends in a dense layer (a fresh Gaussian
    independent of the stream): Sigma' = Sigma + c_src Phi_branch; the gradient kernel of the stream
    gains the identity path's, G += G'."""
    x = walk.value(x, node)
    if not isinstance(x, Value) or x.chain:
        raise Unsupported("the lazy limit of a residual stream that is not a Gaussian field",
                          "start the stream with a dense layer")
    l = x.p
    walk.mark_stream(l)
    out = walk.run(node.children, Value(l))
    if not isinstance(out, Pending):
        raise Unsupported("the lazy limit of a residual branch that does not end in a dense layer",
                          "end the branch with a dense layer: a pointwise function added to the stream makes it "
                          "non-Gaussian, with no kernel map")
    m = walk.new_field(node, stream=True)
    body = dense.kernel_contribution(walk, Pending(out.node, out.weight, out.x, out.scale * node.op.scale), m)
    walk.sigma(m, Sigma[l, mu, nu] + body, "residual stream: the branch's Gaussian adds its covariance")
    walk.gradient(l, GK[m, mu, nu])
    return Value(m)
