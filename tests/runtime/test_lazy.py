"""Lazy-limit kernels and dynamics against finite-width networks in the ntk parameterization.

Finite network (written out here, numpy): h^1 = W^0 x / sqrt(D),
h^{l+1} = W^l phi(h^l) / sqrt(N), f = sigma w . phi(h^L) / sqrt(N), N(0, 1)
weights, GD theta <- theta - eta dLoss/dtheta, Loss = (1/2P) sum (f - y)^2.
Tolerances: 5 standard errors over seeds, each estimated from the seeds themselves.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import erf

jax.config.update("jax_enable_x64", True)

from dmftc.runtime.lazy import equal_time_ntk, lazy_mse, nngp_ntk_mlp  # noqa: E402

ACT = {
    "relu": (lambda x: np.maximum(x, 0.0), lambda x: (x > 0).astype(float)),
    "erf": (erf, lambda x: 2.0 / np.sqrt(np.pi) * np.exp(-(x**2))),
    "tanh": (np.tanh, lambda x: 1.0 - np.tanh(x) ** 2),
}
P, D = 4, 8


def _data(seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((P, D)), rng.standard_normal(P)


def _init(rng, N, L):
    """[W^0 (N, D), W^1 .. W^{L-1} (N, N), w (N,)]; float32 draws (speed), float64 arithmetic.

    Each matrix is kept as [W(0), U, V] with W(t) = W(0) + U V^T: GD adds P rank-one
    terms per step, and applying the factors is much cheaper than rewriting an
    N x N matrix every step (exact algebra, not an approximation).
    """
    mats = [(N, D)] + [(N, N)] * (L - 1)
    draw = lambda s: rng.standard_normal(s, dtype=np.float32).astype(float)  # noqa: E731
    return [[jnp.asarray(draw(s)), np.zeros((s[0], 0)), np.zeros((s[1], 0))] for s in mats] + [draw((N,))]


# W(0) products through XLA: numpy's threaded BLAS on (P x N) @ (N x N) slowed
# down 10-fold when the 2 cores were shared with other jobs; XLA's did not.
_dense = jax.jit(lambda W, x: x @ W.T)
_dense_t = jax.jit(lambda W, d: d @ W)


def _apply(W, x):
    """x @ W(t)^T."""
    return np.asarray(_dense(W[0], x)) + (x @ W[2]) @ W[1].T


def _apply_t(W, d):
    """d @ W(t)."""
    return np.asarray(_dense_t(W[0], d)) + (d @ W[1]) @ W[2].T


def _forward_backward(params, X, fn, sigma):
    """Inputs of every weight matrix (scaled), output f, and delta^l = df_mu / dh^l_mu."""
    phi, dphi = ACT[fn]
    *Ws, w = params
    N = w.shape[0]
    ins, hs = [X / np.sqrt(D)], []
    for W in Ws:
        hs.append(_apply(W, ins[-1]))
        ins.append(phi(hs[-1]) / np.sqrt(N))
    f = sigma * ins[-1] @ w
    deltas = [sigma * w[None, :] * dphi(hs[-1]) / np.sqrt(N)]
    for l in range(len(Ws) - 1, 0, -1):
        deltas.insert(0, dphi(hs[l - 1]) * _apply_t(Ws[l], deltas[0]) / np.sqrt(N))
    return ins, f, deltas


def _empirical_ntk(params, X, fn, sigma=1.0):
    """J J^T, using that a dense layer's gradient is an outer product (delta x input)."""
    ins, _, deltas = _forward_backward(params, X, fn, sigma)
    readout = sigma**2 * ins[-1] @ ins[-1].T
    return readout + sum((d @ d.T) * (a @ a.T) for d, a in zip(deltas, ins[:-1]))


def _gd(params, X, y, fn, eta, steps, sigma=1.0):
    """Full-batch GD theta <- theta - eta dLoss/dtheta; returns f(t) for t = 0..steps."""
    *Ws, w = params
    Ws, w = [list(W) for W in Ws], w.copy()
    fs = []
    for t in range(steps + 1):
        ins, f, deltas = _forward_backward([*Ws, w], X, fn, sigma)
        fs.append(f)
        Delta = (y - f) / P  # -dLoss/df
        for W, d, a in zip(Ws, deltas, ins[:-1]):  # W += eta sum_mu Delta_mu delta_mu a_mu^T
            W[1], W[2] = np.hstack([W[1], eta * (d * Delta[:, None]).T]), np.hstack([W[2], a.T])
        w += eta * sigma * Delta @ ins[-1]
    return np.array(fs)


def test_factorised_empirical_ntk_is_jacobian_product():
    X, _ = _data()
    params = _init(np.random.default_rng(0), 16, 3)

    def f(ps):
        h = jnp.asarray(X) @ ps[0].T / np.sqrt(D)
        for W in ps[1:-1]:
            h = jnp.maximum(h, 0) @ W.T / np.sqrt(16)
        return 0.7 * jnp.maximum(h, 0) @ ps[-1] / np.sqrt(16)

    J = jax.jacrev(f)([jnp.asarray(p[0]) for p in params[:-1]] + [jnp.asarray(params[-1])])
    JJ = sum(j.reshape(P, -1) @ j.reshape(P, -1).T for j in J)
    np.testing.assert_allclose(_empirical_ntk(params, X, "relu", 0.7), JJ, rtol=1e-10)


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("fn", ["relu", "erf", "tanh"])
def test_ntk_equals_sum_over_layers(fn, depth):
    """Theta = sum_{l=0}^{L} G^{l+1} * Phi^l, G^{L+1} = readout_var, G^l = dPhi^l * G^{l+1}."""
    X, _ = _data()
    Phi0 = X @ X.T / D
    k = nngp_ntk_mlp(fn, Phi0, depth, readout_var=1.7)
    Phis, G, total = [Phi0, *k.Phi], 1.7, 0.0
    for ell in range(depth, -1, -1):
        total = total + G * Phis[ell]
        G = G * k.dPhi[ell - 1] if ell else G
    np.testing.assert_allclose(k.ntk, total, rtol=1e-12)
    np.testing.assert_allclose(k.nngp, 1.7 * k.Phi[-1], rtol=1e-14)


@pytest.mark.parametrize("depth", [1, 3])
def test_equal_time_ntk_from_order_parameters_is_the_lazy_ntk_at_initialization(depth):
    """K = Phi^L + sum_l G^l * Phi^{l-1} with muP's G^l = dPhi^l * G^{l+1}, G^{L+1} = 1, is Theta."""
    X, _ = _data()
    Phi0 = X @ X.T / D
    k = nngp_ntk_mlp("relu", Phi0, depth)
    G = [None] * depth
    G[-1] = k.dPhi[-1]
    for layer in range(depth - 1, 0, -1):
        G[layer - 1] = k.dPhi[layer - 1] * G[layer]
    np.testing.assert_allclose(equal_time_ntk((Phi0, *k.Phi), tuple(G)), k.ntk, rtol=1e-12)


@pytest.mark.parametrize("fn, N", [("relu", 4096), ("erf", 2048), ("tanh", 2048)])
def test_empirical_ntk_at_large_width(fn, N):
    """Seed mean of J J^T within 5 SE of Theta; SE from the seed spread, pooled over entries."""
    X, _ = _data()
    theta = np.asarray(nngp_ntk_mlp(fn, X @ X.T / D, 2).ntk)
    seeds = 4
    emp = np.array([_empirical_ntk(_init(np.random.default_rng(s), N, 2), X, fn) for s in range(seeds)])
    scale = np.sqrt(np.outer(np.diag(theta), np.diag(theta)))
    rel_sd = np.sqrt(np.mean(emp.var(0, ddof=1) / scale**2))  # pooled over the P^2 entries
    assert rel_sd < 3.0 / np.sqrt(N)  # fluctuations are O(1/sqrt(N))
    np.testing.assert_array_less(np.abs(emp.mean(0) - theta), 5 * rel_sd * scale / np.sqrt(seeds))


def test_lazy_mse_matches_explicit_iteration():
    rng = np.random.default_rng(3)
    A, B = rng.standard_normal((P, P)), rng.standard_normal((P, 2))
    theta, Sigma0, y, eta, steps = A @ A.T, B @ B.T, rng.standard_normal(P), 0.4, 7
    out = lazy_mse(theta, Sigma0, y, eta, steps)
    M = np.eye(P) - eta / P * theta
    for t in range(steps + 1):
        Mt = np.linalg.matrix_power(M, t)
        cov = Mt @ Sigma0 @ Mt.T
        np.testing.assert_allclose(out["f_mean"][t], y - Mt @ y, atol=1e-13)
        np.testing.assert_allclose(out["f_var"][t], np.diag(cov), atol=1e-13)
        assert float(out["loss"][t]) == pytest.approx((Mt @ y @ Mt @ y + np.trace(cov)) / (2 * P), abs=1e-13)
    zero = lazy_mse(theta, 0.0, y, eta, steps)
    assert np.all(np.asarray(zero["f_var"]) == 0)
    jitted = jax.jit(lazy_mse, static_argnames="steps")(theta, Sigma0, y, eta, steps=steps)
    np.testing.assert_allclose(jitted["loss"], out["loss"], rtol=1e-13)


def test_lazy_mse_matches_wide_network_ensemble():
    """ntk parameterization, relu, depth 2, N = 2048: mean f, var f and mean loss within 5 SE."""
    X, y = _data()
    N, seeds, eta, steps = 2048, 24, 1.0, 10
    k = nngp_ntk_mlp("relu", X @ X.T / D, 2)
    lazy = {key: np.asarray(v) for key, v in lazy_mse(k.ntk, k.nngp, y, eta, steps).items()}
    fs = np.array([_gd(_init(np.random.default_rng(s), N, 2), X, y, "relu", eta, steps) for s in range(seeds)])
    se = fs.std(0, ddof=1) / np.sqrt(seeds)
    np.testing.assert_array_less(np.abs(fs.mean(0) - lazy["f_mean"]), 5 * se)
    var_se = lazy["f_var"] * np.sqrt(2.0 / (seeds - 1))  # SE of a Gaussian sample variance
    np.testing.assert_array_less(np.abs(fs.var(0, ddof=1) - lazy["f_var"]), 5 * var_se + 1e-12)
    losses = ((fs - y) ** 2).sum(-1) / (2 * P)
    assert np.all(np.abs(losses.mean(0) - lazy["loss"]) <= 5 * losses.std(0, ddof=1) / np.sqrt(seeds))
    # sharper: each network against the lazy dynamics started from its own f(0), deviations O(1/sqrt(N))
    M = np.eye(P) - eta / P * np.asarray(k.ntk)
    lin = np.array([[y - np.linalg.matrix_power(M, t) @ (y - f[0]) for t in range(steps + 1)] for f in fs])
    dev = fs - lin
    assert np.sqrt(np.mean(dev**2)) < 3.0 / np.sqrt(N)
    np.testing.assert_array_less(np.abs(dev.mean(0)), 5 * dev.std(0, ddof=1) / np.sqrt(seeds) + 1e-12)


def test_depth_must_be_positive():
    with pytest.raises(ValueError, match="depth must be a positive number of hidden layers, got 0"):
        nngp_ntk_mlp("relu", np.eye(2), 0)
