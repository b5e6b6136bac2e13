"""Multi-head self-attention, the finite forward pass of docs/theory.md#attention.

Per head h (coordinates h*N .. (h+1)*N - 1 of the width-H*N projections):
    q_s = m_Q W_Q hbar_s,  k_s = m_K W_K hbar_s,  v_s = m_V W_V hbar_s
    A_{s s'} = logit_scale * q_s . k_{s'}          (a sum over the N coordinates of the head)
    o_s = sum_{s'} softmax_{s'}(A_{s .})_{s'} v_{s'}   (softmax over the keys s')
heads concatenated to H*N, then out_s = m_O W_O o_s. No causal mask.

The theory notes write A_{ss'} = k_s . q_{s'}; W_K and W_Q share one scaling, so the two
conventions differ only in which of the two weights is called the key.
"""

from __future__ import annotations

from typing import Callable, Mapping

import jax
import jax.numpy as jnp
import sympy

from ..errors import LimitError, Unsupported
from ..ir import Equation
from ..notation import Dm, Expect, HeadMean, Lam, Mm, Sm, Softmax, g, h, kappa, mu, nu, size_symbol, t
from . import dense
from .meanfield import Data, Pending, Value

KIND = "attention"
#: the four weights of an attention op, in this order (weight names: `name` + "_" + part).
PARTS = ("K", "Q", "V", "O")

Tap = Callable[[str, jax.Array], jax.Array]


def _no_tap(name: str, value: jax.Array) -> jax.Array:
    return value


def split_heads(x: jax.Array, heads: int) -> jax.Array:
    """(..., S, H*N) -> (..., S, H, N)."""
    return x.reshape(*x.shape[:-1], heads, x.shape[-1] // heads)


def logits(q: jax.Array, k: jax.Array, scale: float) -> jax.Array:
    """A[..., h, s, s'] = scale * q[..., s, h, :] . k[..., s', h, :]."""
    return scale * jnp.einsum("...shn,...thn->...hst", q, k)


def mix(A: jax.Array, v: jax.Array) -> jax.Array:
    """o[..., s, h*N + n] = sum_{s'} softmax(A)[..., h, s, s'] v[..., s', h, n]."""
    o = jnp.einsum("...hst,...thn->...shn", jax.nn.softmax(A, axis=-1), v)
    return o.reshape(*o.shape[:-2], -1)


def forward(W: Mapping[str, jax.Array], hbar: jax.Array, *, heads: int, logit_scale: float,
            multipliers: Mapping[str, float], tap: Tap = _no_tap) -> jax.Array:
    """The attention output for tokens hbar (..., S, width); `tap` sees K, Q, V, logits, O."""
    k, q, v = (tap(p, dense.forward(W[p], hbar, multipliers[p])) for p in ("K", "Q", "V"))
    A = tap("logits", logits(split_heads(q, heads), split_heads(k, heads), logit_scale))
    return tap("O", dense.forward(W["O"], mix(A, split_heads(v, heads)), multipliers["O"]))


def meanfield(walk, node, x):
    """Attention in a width limit (docs/theory.md#attention): K, Q, V are dense layers reading x, each
    placing its output in the head population (source, response, updates as any dense layer); what is
    new is the head's average over its N coordinates,

        Lam_{mu nu}(t) = c_A <q_mu(t) k_nu(t)>,   c_A = N * logit_scale after the limit     eq:attn.logit
        Sm(t) = softmax over the keys nu of mu's sequence of Lam(t)                         eq:attn.softmax
        o_mu(t) = sum_nu Sm_{mu nu}(t) v_nu(t)                                               eq:attn.o

    and the output weight W_O is a dense layer reading o (its consumer places it: a residual add
    writes it into the stream). Backward, with g^o the backward field of o:

        M_{mu nu} = <g^o_mu v_nu>,   D = Sm * (M - rowsum(Sm * M))                        eq:attn.M, eq:attn.D
        g^v_mu = sum_nu Sm_{nu mu} g^o_nu,  g^q_mu = c_A sum_nu D_{mu nu} k_nu,  g^k_mu = c_A sum_nu D_{nu mu} q_nu

    With N -> oo at fixed H, <.> is the expectation of the one head population: the logits are
    deterministic and every head obeys the same equations (the heads collapse to one). With H -> oo at
    fixed N, <.> is HeadMean, the average over one head's N coordinates: the logits stay random per head
    and the heads are the sites of the Monte Carlo (their fields live on the head site)."""
    x = walk.value(x, node)
    if isinstance(x, Data):
        raise Unsupported("attention on the raw input", "put a dense (embedding) layer before it")
    if not walk.tokens:
        raise Unsupported("attention on inputs without tokens", "declare the sequence length S in sizes")
    att, names = node.op, {part: w.name for part, w in zip(PARTS, node.weights)}
    key_dim = att.key_dim
    limit = set(walk.spec.limit) - {"L"}
    if key_dim.free_symbols & {size_symbol(n) for n in limit}:
        sites = False
    elif "H" in limit:
        sites = True
    else:
        raise Unsupported(f"attention {att.name} in the limit {tuple(walk.spec.limit)}",
                          "take the key/query dimension to infinity (limit: {N: inf}) or the heads (limit: {H: inf})")
    alpha = f"logit scale {att.logit_scale}"
    try:
        cA = walk.constant(key_dim * att.logit_scale, f"the logits of {att.name} ({alpha} times the N-term sum)")
    except LimitError as exc:
        raise LimitError(f"{exc}; with alpha_A < 1 the logits of {att.name} are random per head and the N -> oo "
                         "limit of training does not exist: use alpha_A = 1 (logit_scale N**-1), or take H -> oo "
                         "at fixed N (docs/theory.md#limits-and-regimes)") from None
    walk.attention = True
    # logits that vanish in the limit (alpha_A > 1) leave uniform attention: K and Q then reach nothing
    parts = "KQV" if cA != 0 else "V"
    fields = {part: walk.value(Pending(node, names[part], x), node).p for part in parts}
    v = fields["V"]
    o = walk.new_field(node)
    walk.dense_fields.append(o)
    if sites:
        walk.head_sites((*fields.values(), o), int(walk.finite(key_dim)))
    avg = HeadMean if sites else Expect
    rng = (o, o)
    if cA != 0:
        k, q = fields["K"], fields["Q"]
        kind = "random per head (H -> oo at fixed N)" if sites else "deterministic, the same for every head"
        logits = cA * avg(h[q, mu, t] * h[k, nu, t])
        what = f"logits of {att.name}: the head's average of q k, {kind}"
    else:
        logits, what = sympy.Integer(0), f"logits of {att.name}: they vanish in the limit ({alpha})"
    walk.forward_item(Equation(f"eq:attn.logit{o}", Lam[o, mu, nu, t], logits, "order", what, rng))
    walk.forward_item(Equation(f"eq:attn.softmax{o}", Sm[o, mu, nu, t], Softmax(Lam[o, mu, nu, t]), "order",
                               "attention weights: softmax over the keys nu of mu's sequence", rng))
    walk.forward_item(Equation(f"eq:field.h{o}", h[o, mu, t], walk.mix(Sm[o, mu, nu, t] * h[v, nu, t]), "field",
                               "attention output: the values mixed by the softmax", rng))
    walk.post_g_items(o, [] if cA == 0 else [
        Equation(f"eq:attn.M{o}", Mm[o, mu, nu, t], avg(g[o, mu, t] * h[v, nu, t]), "order",
                 "M = <g^o v>: the output's gradient with respect to the attention weights", rng),
        Equation(f"eq:attn.D{o}", Dm[o, mu, nu, t],
                 Sm[o, mu, nu, t] * (Mm[o, mu, nu, t] - sympy.Sum(Sm[o, mu, kappa, t] * Mm[o, mu, kappa, t],
                                                                  (kappa, 0, walk.npos - 1))),
                 "order", "the logits' gradient: M through the softmax Jacobian", rng)])
    walk.adjoint(v, walk.mix(Sm[o, nu, mu, t] * g[o, nu, t]))
    if cA != 0:
        walk.adjoint(q, walk.mix(cA * Dm[o, mu, nu, t] * h[k, nu, t]))
        walk.adjoint(k, walk.mix(cA * Dm[o, nu, mu, t] * h[q, nu, t]))
    return Pending(node, names["O"], Value(o))
