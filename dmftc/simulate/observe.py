"""One observation of a network at its current weights: loss, f, GD gradients and records.

What is recorded at one time step (`record`):
- "none": nothing beyond loss and f;
- "diag": the equal-time kernels of each site (`Network.sites`, named as the DMFT names them),
  Phi<l>(t,t) = phi(h^l) . phi(h^l) / n (phi the site's chain of ops; H<l> on a residual stream, phi
  the identity) and G<l>(t,t) = g^l . g^l / n over the sites' (sample[, token]) index, and the
  attention logits;
- "full": the site features phi(h^l) and g^l themselves (kernels over (t, s) are formed by
  `kernels_full` after the time loop), and the logits.
g^l = (df / dh^l) / s_hat with s_hat = m_readout * std_readout, the readout's multiplier times its
init std: the DMFT's normalisation (`dmftc.dmft.coefficients`), gamma0 N df/dh in mup, sqrt(N) df/dh
in ntk, O(1) in sp and at every depth of a residual network (whose readout multiplier and std carry
the opposite depth factors L^(1/2 - alpha_L), L^(alpha_L - 1/2)); unchanged by the abc symmetry
(multiplier n^-k, init std n^k). For token sites the (sample, token) index is flattened
sample-major: row mu * S + s.
"""

from __future__ import annotations

from typing import Mapping

import jax
import jax.numpy as jnp

from ..blocks import layernorm
from ..blocks.act import phi as activation
from ..errors import DmftcError
from .forward import apply
from .network import Network

RECORDS = ("full", "diag", "none")


def check_record(record: str) -> str:
    """`record` itself, or an error naming the allowed values."""
    if record not in RECORDS:
        raise DmftcError(f"record={record!r} is not one of {', '.join(map(repr, RECORDS))}: "
                         "'full' keeps the two-time kernels, 'diag' only t = s, 'none' only loss and f")
    return record


def zero_taps(net: Network, x: jax.Array, names: tuple[str, ...]) -> dict[str, jax.Array]:
    """Zero perturbations of the named activations (their gradients are the backward fields)."""
    if not names:
        return {}
    params = {k: jax.ShapeDtypeStruct(p.shape, x.dtype) for k, p in net.params.items()}
    _, acts = jax.eval_shape(lambda p: apply(net, p, x), params)
    return {n: jnp.zeros(acts[n].shape, x.dtype) for n in names}


def observe(net: Network, params, x, y, taps: Mapping[str, jax.Array], record: str, numbers, weights,
            loss_kind: str = "mse", f0=None):
    """(gradient of the step's loss, (losses, f, records)) at `params`; `taps` as from `zero_taps`,
    `numbers` as `Network.numbers()` (possibly traced). `weights` = (Omega_t, wtrain, wtest) over the
    points (`dmftc.training`): the step descends sum_mu Omega_t loss(f_mu, y_mu) (its batch); losses holds
    the training loss (wtrain), the batch loss (Omega_t) and the held-out loss (wtest). `f0`: the output at
    initialization, subtracted (`training.center_output`); f is then the centred output."""
    f, vjp, acts = jax.vjp(lambda p, t: apply(net, p, x, t, numbers), params, dict(taps), has_aux=True)
    if f0 is not None:
        f = f - f0
    ell, dell = point_loss(loss_kind, f, y)
    omega, wtrain, wtest = weights
    loss = (jnp.sum(wtrain * ell), jnp.sum(omega * ell), jnp.sum(wtest * ell))
    grads, _ = vjp(dell * omega)
    recs: dict[str, jax.Array] = {}
    if record != "none":
        _, back = vjp(jnp.ones_like(f))
        recs = _records(net, acts, back, record, numbers["s_readout"])
    return grads, (loss, f, recs)


def point_loss(kind: str, f, y):
    """(loss of each point, its derivative in f): mse (f - y)^2 / 2 and f - y; cross_entropy of two classes
    y = +-1 with f the logit, log(1 + e^(-y f)) and -y sigmoid(-y f) (docs/theory.md#training-setups)."""
    if kind == "cross_entropy":
        return jax.nn.softplus(-y * f), -y * jax.nn.sigmoid(-y * f)
    err = f - y
    return 0.5 * jnp.square(err), err


def _records(net: Network, acts, back, record: str, s_readout) -> dict[str, jax.Array]:
    recs = {}
    for site in net.sites:
        F = _sites(_apply_chain(site.phi, acts[site.tap]))
        recs[site.name] = F if record == "full" else _gram(F)
        if site.grad:
            G = _sites(back[site.tap]) / s_readout
            recs[site.grad] = G if record == "full" else _gram(G)
    if net.attentions:
        # (L_attn, P, H, S, S) -> (L_attn, H, P, S, S)
        recs["logits"] = jnp.stack([acts[f"logits:{a}"] for a in net.attentions]).swapaxes(1, 2)
    return recs


def _apply_chain(chain: tuple[str, ...], h: jax.Array) -> jax.Array:
    """The site's pointwise ops in order: act fns, and "layernorm" over the last (feature) axis."""
    for op in chain:
        h = layernorm.forward(h) if op == "layernorm" else activation(op)(h)
    return h


def _sites(h: jax.Array) -> jax.Array:
    """(P, n) or (P, S, n) -> (P[*S], n)."""
    return h.reshape(-1, h.shape[-1])


def _gram(F: jax.Array) -> jax.Array:
    return F @ F.T / F.shape[-1]


def kernels_full(recs: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
    """Features (seeds, T+1, M, n) -> two-time kernels (seeds, T+1, M, T+1, M); logits unchanged."""
    return {k: (v if k == "logits" else jnp.einsum("atmi,asni->atmsn", v, v) / v.shape[-1])
            for k, v in recs.items()}
