"""The lazy (kernel) limit of the MLP: NNGP and NTK recursions and exact lazy GD.

Conventions (docs/theory.md#conventions, #lazy-limit): P inputs, Phi^0 = X X^T / D; the MLP
h^1 = W^0 x / sqrt(D), h^{l+1} = W^l phi(h^l) / sqrt(N) (l = 1..L-1) with
N(0, 1) weights, readout f = sqrt(readout_var) w . phi(h^L) / sqrt(N) (ntk
parameterization), loss (1/2P) sum_mu (f_mu - y_mu)^2, Delta = (y - f) / P, and
discrete-time GD theta <- theta - eta dLoss/dtheta. As N -> infinity the output
moves as f(t+1) = f(t) + eta Theta Delta(t) = f(t) + (eta/P) Theta (y - f(t)).
The same Theta governs muP at gamma0 -> 0 (docs/theory.md#lazy-limit, K = sum_l
G^{l+1} Phi^l), where f(0) -> 0.

Only ``jax``, ``numpy`` and the standard library are imported (runtime layering rule).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from dmftc.runtime.closed_forms import DEFAULT_ORDER, Activation, dphi_kernel, phi_kernel


class LazyKernels(NamedTuple):
    """Kernels of the MLP at initialization (infinite width).

    Attributes
    ----------
    Phi : tuple of (P, P) arrays
        Phi^l = E[phi(h^l) phi(h^l)], l = 1..L (h^l ~ N(0, Phi^{l-1})).
    dPhi : tuple of (P, P) arrays
        E[phi'(h^l) phi'(h^l)], l = 1..L.
    nngp : (P, P) array
        Covariance of the output at initialization, readout_var * Phi^L.
    ntk : (P, P) array
        Neural tangent kernel of the output, Theta.
    """

    Phi: tuple
    dPhi: tuple
    nngp: jax.Array
    ntk: jax.Array


def nngp_ntk_mlp(fn: Activation, Phi0, depth: int, readout_var: float = 1.0, *, order: int = DEFAULT_ORDER):
    """NNGP and NTK of a depth-L MLP without biases (neural-tangents' ntk conventions).

    Preactivation covariances Sigma^1 = Phi0, Sigma^{l+1} = Phi^l = phi_kernel(Sigma^l);
    NTK of the preactivations K^1 = Phi0, K^{l+1} = Phi^l + K^l * dphi_kernel(Sigma^l)
    (``*`` elementwise); output

        nngp  = readout_var * Phi^L,
        Theta = readout_var * (Phi^L + K^L * dphi_kernel(Sigma^L))
              = sum_{l=0}^{L} G^{l+1} * Phi^l,  G^{L+1} = readout_var, G^l = dPhi^l * G^{l+1}.

    ``readout_var`` is neural-tangents' ``W_std**2`` of the readout Dense layer:
    f = sqrt(readout_var) w . phi(h^L) / sqrt(N), w ~ N(0, 1) trained, so it scales
    every term of Theta. By the recursions of ``neural_tangents.stax`` (Dense:
    nngp <- W_std^2 nngp, ntk <- nngp_new + W_std^2 ntk; activation: nngp <- E[phi phi],
    ntk <- ntk * E[phi' phi']) this is the kernel pair of
    ``serial(*[Dense(N, W_std=1), Act] * L, Dense(1, W_std=sqrt(readout_var)))``
    without biases, in the (default) ntk parameterization.

    Parameters
    ----------
    fn : str or callable
        Activation (see :data:`dmftc.runtime.closed_forms.FUNCTIONS`).
    Phi0 : (P, P) array
        Data kernel X X^T / D.
    depth : int
        Number of hidden layers L >= 1.
    readout_var : float
        Variance multiplier of the readout.
    order : int
        Quadrature order for activations without a closed form.

    Returns
    -------
    LazyKernels
    """
    if depth < 1:
        raise ValueError(f"depth must be a positive number of hidden layers, got {depth!r}")
    Sigma = K = jnp.asarray(Phi0)
    Phis, dPhis = [], []
    for _ in range(depth):
        Phi, dPhi = phi_kernel(fn, Sigma, order=order), dphi_kernel(fn, Sigma, order=order)
        Phis.append(Phi)
        dPhis.append(dPhi)
        K = Phi + K * dPhi  # K^{l+1}; after the last layer this is Theta / readout_var
        Sigma = Phi
    return LazyKernels(tuple(Phis), tuple(dPhis), readout_var * Sigma, readout_var * K)


def equal_time_ntk(Phi, G):
    """The NTK of an L-hidden-layer MLP from its order parameters at one time t,

        K(t) = Phi^L(t, t) + sum_{l=1..L} G^l(t, t) * Phi^{l-1}(t, t)     (``*`` elementwise),

    Phi = (Phi^0, ..., Phi^L) with Phi^0 = X X^T / D, G = (G^1, ..., G^L), each (P, P): the
    readout's G^{L+1} = 1 of muP (docs/theory.md#lazy-limit). Discrete GD on the squared loss is
    stable while eta lambda_max(K) < 2P.
    """
    K = Phi[-1]
    for layer in range(len(G), 0, -1):
        K = K + G[layer - 1] * Phi[layer - 1]
    return K


def lazy_mse(Theta, Sigma0, y, eta: float, steps: int):
    """Exact lazy GD dynamics of the MSE loss, averaged over f(0) ~ N(0, Sigma0).

    With M = I - (eta/P) Theta, the error e(t) = y - f(t) obeys e(t+1) = M e(t), so

        E f(t)   = y - M^t y,
        Cov f(t) = M^t Sigma0 M^tT,
        E loss(t) = (1/2P) (||M^t y||^2 + tr(M^t Sigma0 M^tT)).

    Parameters
    ----------
    Theta : (P, P) array
        Neural tangent kernel (eta * lambda_max(Theta) / P < 2 for convergence).
    Sigma0 : (P, P) array or scalar
        Covariance of the output at initialization (0 in muP, the NNGP in ntk).
    y : (P,) array
        Targets.
    eta : float
        Learning rate.
    steps : int
        Number of GD steps T (static).

    Returns
    -------
    dict
        ``f_mean`` (T+1, P), ``f_var`` (T+1, P) (diagonal of Cov f(t)),
        ``loss`` (T+1,).
    """
    Theta, y = jnp.asarray(Theta), jnp.asarray(y)
    P = y.shape[0]
    M = jnp.eye(P, dtype=Theta.dtype) - (eta / P) * Theta
    S0 = jnp.broadcast_to(jnp.asarray(Sigma0, dtype=Theta.dtype), (P, P))

    def step(carry, _):
        e, S = carry
        return (M @ e, M @ S @ M.T), carry

    last, (e, S) = jax.lax.scan(step, (y, S0), None, length=steps)
    e = jnp.concatenate([e, last[0][None]])
    S = jnp.concatenate([S, last[1][None]])
    var = jnp.diagonal(S, axis1=1, axis2=2)
    loss = (jnp.sum(e**2, axis=1) + jnp.sum(var, axis=1)) / (2 * P)
    return {"f_mean": y - e, "f_var": var, "loss": loss}


def lazy_train(Theta, Sigma0, y, tr, steps: int):
    """Exact lazy dynamics of the MSE loss under a training setup (dmftc.training), averaged over f(0).

    f(t) = f(0) + sum_{s<t} Kappa(t, s) Theta Omega(s) (y - f(s)) is linear in f(0) ~ N(0, Sigma0), so
    f(t) = m(t) + B(t) f(0) with
        m(t) = sum_{s<t} Kappa(t, s) Theta Omega(s) (y - m(s)),   B(t) = I - sum_{s<t} Kappa(t, s) Theta Omega(s) B(s),
    and the losses sum_mu w_mu E (f_mu - y_mu)^2 / 2 = sum_mu w_mu [(m_mu - y_mu)^2 + (B Sigma0 B^T)_mu,mu] / 2 with
    w = wtrain (training), Omega(t) (batch), wtest (held out). Kappa defaults to plain GD's (1 for s < t),
    Omega to 1/P on every point. Theta includes the learning rate (it is eta times the NTK).
    """
    Theta, y = jnp.asarray(Theta), jnp.asarray(y)
    P, n_t = y.shape[0], steps + 1
    dt = Theta.dtype
    Kap = tr.get("Kappa", jnp.tril(jnp.ones((n_t, n_t), dt), -1))
    Om = tr.get("Omega", jnp.full((n_t, P), 1.0 / P, dt))
    S0 = jnp.broadcast_to(jnp.asarray(Sigma0, dtype=dt), (P, P))

    def step(carry, t):
        m, B = carry   # histories (n_t, P), (n_t, P, P); rows >= t not yet written
        drive = Kap[t][:, None] * Om                                    # (n_t, P): Kappa(t, s) Omega_nu(s)
        m_t = Theta @ jnp.sum(drive * (y[None, :] - m), axis=0)
        B_t = jnp.eye(P, dtype=dt) - Theta @ jnp.einsum("sn,snk->nk", drive, B)
        return (m.at[t].set(m_t), B.at[t].set(B_t)), None

    m0, B0 = jnp.zeros((n_t, P), dt), jnp.zeros((n_t, P, P), dt).at[0].set(jnp.eye(P, dtype=dt))
    (m, B), _ = jax.lax.scan(step, (m0, B0), jnp.arange(1, n_t))
    var = jnp.einsum("tab,bc,tac->ta", B, S0, B)
    err2 = (m - y[None, :]) ** 2 + var

    def loss(w):
        return 0.5 * jnp.sum(w * err2, axis=-1)

    out = {"f_mean": m, "f_var": var, "loss": loss(tr.get("wtrain", jnp.full((P,), 1.0 / P, dt)))}
    if "Omega" in tr:
        out["loss_batch"] = loss(Om)
    if "wtest" in tr:
        out["loss_test"] = loss(tr["wtest"])
    return out


def lazy_logistic(Theta, y, tr, steps: int):
    """Lazy dynamics of the two-class cross-entropy log(1 + e^(-y f)) (y = +-1), from f(0) = 0:

        f(t) = sum_{s<t} Kappa(t, s) Theta Omega(s) y sigmoid(-y f(s)),

    deterministic (no random output at initialization). Kappa defaults to plain GD's, Omega to 1/P; the
    losses are weighted by wtrain (training), Omega(t) (batch) and wtest (held out).
    """
    Theta, y = jnp.asarray(Theta), jnp.asarray(y)
    P, n_t = y.shape[0], steps + 1
    dt = Theta.dtype
    Kap = tr.get("Kappa", jnp.tril(jnp.ones((n_t, n_t), dt), -1))
    Om = tr.get("Omega", jnp.full((n_t, P), 1.0 / P, dt))

    def step(f, t):
        delta = Om * y[None, :] * jax.nn.sigmoid(-y[None, :] * f)        # rows >= t of f are still 0: masked
        f_t = Theta @ jnp.sum(Kap[t][:, None] * delta * (jnp.arange(n_t) < t)[:, None], axis=0)
        return f.at[t].set(f_t), None

    f, _ = jax.lax.scan(step, jnp.zeros((n_t, P), dt), jnp.arange(1, n_t))
    ell = jax.nn.softplus(-y[None, :] * f)

    def loss(w):
        return jnp.sum(w * ell, axis=-1)

    out = {"f_mean": f, "f_var": jnp.zeros_like(f), "loss": loss(tr.get("wtrain", jnp.full((P,), 1.0 / P, dt)))}
    if "Omega" in tr:
        out["loss_batch"] = loss(Om)
    if "wtest" in tr:
        out["loss_test"] = loss(tr["wtest"])
    return out


def normalized(Sigma):
    """Sigma_mn / sqrt(Sigma_mm Sigma_nn): the covariance of a LayerNormed Gaussian field (mean 0)."""
    return Sigma * inv_scale(Sigma)


def inv_scale(Sigma):
    """1 / sqrt(Sigma_mm Sigma_nn): the factor a LayerNorm's backward pass puts on a gradient kernel."""
    d = jnp.sqrt(jnp.diagonal(Sigma))
    return 1.0 / (d[:, None] * d[None, :])
