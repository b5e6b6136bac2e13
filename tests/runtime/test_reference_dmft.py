"""The reference MLP DMFT solver against finite muP networks, the lazy limit and closed forms.

The finite network is written out here (numpy): N(0, 1) weights,
h^1 = W^0 x / sqrt(D), h^{l+1} = W^l phi(h^l) / sqrt(N), f = w . phi(h^L) / (gamma0 N),
every parameter updated theta += eta gamma0^2 N sum_mu Delta_mu df_mu/dtheta.
Monte Carlo tolerances: 5 standard errors, each estimated over seeds (reference
seeds and network seeds combined in quadrature).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

jax.config.update("jax_enable_x64", True)

from benchmarks.reference_dmft import CausalGaussian, solve_reference  # noqa: E402
from dmftc.runtime.closed_forms import dphi_kernel, phi_kernel  # noqa: E402
from dmftc.runtime.lazy import lazy_mse, nngp_ntk_mlp  # noqa: E402

ACT = {
    "relu": (lambda x: np.maximum(x, 0.0), lambda x: (x > 0).astype(float)),
    "linear": (lambda x: x, np.ones_like),
}
P, D, ETA, STEPS = 4, 8, 0.5, 10


def _data(seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((P, D)), rng.standard_normal(P)


# ----------------------------------------------------------------------------- finite muP network


def _init(rng, N, L):
    """Weights as [W(0), U, V] with W(t) = W(0) + U V^T (GD adds rank-P terms), and w."""
    mats = [(N, D)] + [(N, N)] * (L - 1)
    draw = lambda s: rng.standard_normal(s, dtype=np.float32).astype(float)  # noqa: E731
    return [[jnp.asarray(draw(s)), np.zeros((s[0], 0)), np.zeros((s[1], 0))] for s in mats], draw((N,))


# W(0) products through XLA: numpy's threaded BLAS on (P x N) @ (N x N) slowed
# down 10-fold when the 2 cores were shared with other jobs; XLA's did not.
_dense = jax.jit(lambda W, x: x @ W.T)
_dense_t = jax.jit(lambda W, d: d @ W)


def _forward_backward(Ws, w, X, fn, gamma0):
    """Scaled inputs of each matrix, f, and delta^l_mu = df_mu / dh^l_mu."""
    phi, dphi = ACT[fn]
    N = w.shape[0]
    ins, hs = [X / np.sqrt(D)], []
    for W in Ws:
        hs.append(np.asarray(_dense(W[0], ins[-1])) + (ins[-1] @ W[2]) @ W[1].T)
        ins.append(phi(hs[-1]) / np.sqrt(N))
    f = ins[-1] @ w / (gamma0 * np.sqrt(N))
    deltas = [w[None, :] * dphi(hs[-1]) / (gamma0 * N)]
    for l in range(len(Ws) - 1, 0, -1):
        back = np.asarray(_dense_t(Ws[l][0], deltas[0])) + (deltas[0] @ Ws[l][1]) @ Ws[l][2].T
        deltas.insert(0, dphi(hs[l - 1]) * back / np.sqrt(N))
    return ins, f, deltas


def _train(N, seed, X, y, *, fn="relu", depth=2, gamma0=1.0, eta=ETA, steps=STEPS):
    """Full-batch GD of the muP network; returns the loss at t = 0..steps."""
    Ws, w = _init(np.random.default_rng(seed), N, depth)
    lr = eta * gamma0**2 * N
    losses = []
    for t in range(steps + 1):
        ins, f, deltas = _forward_backward(Ws, w, X, fn, gamma0)
        losses.append(np.sum((f - y) ** 2) / (2 * P))
        Delta = (y - f) / P
        for W, d, a in zip(Ws, deltas, ins[:-1]):  # W += lr sum_mu Delta_mu delta_mu a_mu^T
            W[1], W[2] = np.hstack([W[1], lr * (d * Delta[:, None]).T]), np.hstack([W[2], a.T])
        w = w + lr * Delta @ ins[-1] / (gamma0 * np.sqrt(N))
    return np.array(losses)


def _ensemble(N, seeds, X, y, **kw):
    L = np.array([_train(N, 1000 + s, X, y, **kw) for s in range(seeds)])
    return L.mean(0), L.std(0, ddof=1) / np.sqrt(seeds)


@functools.cache
def _reference(fn, gamma0, samples, seeds, steps=STEPS):
    """Seed mean and standard error of the reference loss (cached: shared between tests)."""
    X, y = _data()
    kw = dict(fn=fn, gamma0=gamma0, eta=ETA, steps=steps, samples=samples)
    runs = [solve_reference(X, y, seed=s, **kw) for s in range(seeds)]
    L = np.array([r["loss"] for r in runs])
    return L.mean(0), L.std(0, ddof=1) / np.sqrt(seeds), runs


def test_finite_network_update_is_mup_gradient_step():
    """The hand-written update equals theta + eta gamma0^2 N sum_mu Delta_mu df_mu/dtheta (autodiff)."""
    X, y = _data()
    N, gamma0 = 16, 0.7
    Ws, w = _init(np.random.default_rng(0), N, 2)
    params = [jnp.asarray(Ws[0][0]), jnp.asarray(Ws[1][0]), jnp.asarray(w)]

    def f(p):
        h1 = jnp.asarray(X) @ p[0].T / np.sqrt(D)
        h2 = jnp.maximum(h1, 0) @ p[1].T / np.sqrt(N)
        return jnp.maximum(h2, 0) @ p[2] / (gamma0 * N)

    Delta = (jnp.asarray(y) - f(params)) / P
    grads = jax.grad(lambda p: jnp.sum(jax.lax.stop_gradient(Delta) * f(p)))(params)
    expected = [p + ETA * gamma0**2 * N * g for p, g in zip(params, grads)]
    ins, fv, deltas = _forward_backward(Ws, w, X, "relu", gamma0)
    np.testing.assert_allclose(fv, f(params), rtol=1e-12)
    lr = ETA * gamma0**2 * N
    got = [np.asarray(W[0]) + lr * (d * np.asarray(Delta)[:, None]).T @ a for W, d, a in zip(Ws, deltas, ins[:-1])]
    got.append(w + lr * np.asarray(Delta) @ ins[-1] / (gamma0 * np.sqrt(N)))
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------- the solver


def test_reference_matches_finite_width_mup():
    """relu, 2 hidden layers, gamma0 = 1, eta = 0.5, P = 4, D = 8: finite N = 1024 vs DMFT."""
    X, y = _data()
    ref, ref_se, _ = _reference("relu", 1.0, 2000, 4)
    fin, fin_se = _ensemble(1024, 32, X, y)
    assert ref[-1] < 0.5 * ref[0]  # features learn: far below the lazy prediction (0.37 at t = 10)
    np.testing.assert_array_less(np.abs(fin - ref), 5 * np.hypot(ref_se, fin_se))


@pytest.mark.slow
def test_reference_distance_shrinks_with_width():
    """Measured distance |finite(N) - DMFT| for N = 256 .. 2048 (printed; see the report)."""
    X, y = _data()
    ref, ref_se, _ = _reference("relu", 1.0, 2000, 8)
    for N, seeds in ((256, 64), (512, 64), (1024, 64), (2048, 32)):
        fin, fin_se = _ensemble(N, seeds, X, y)
        z = (fin - ref) / np.hypot(ref_se, fin_se)
        print(N, "loss(T)", fin[-1], "dmft", ref[-1], "rms distance", np.sqrt(np.mean((fin - ref)[1:] ** 2)))
        assert np.all(np.abs(z) < 5)


def test_small_gamma0_reduces_to_lazy_ntk():
    """gamma0 = 0.05: the DMFT loss equals lazy GD with the NTK and f(0) = 0 within 5 SE.

    The corrections are O(gamma0) for relu (see the slow test below), 0.4 % here;
    the O(1/M) Monte Carlo bias of the loss is ~1 % at M = 1000, hence M = 2000.
    """
    X, y = _data()
    ref, ref_se, runs = _reference("relu", 0.05, 2000, 4)
    lazy = np.asarray(lazy_mse(nngp_ntk_mlp("relu", X @ X.T / D, 2).ntk, 0.0, y, ETA, STEPS)["loss"])
    np.testing.assert_array_less(np.abs(ref - lazy), 5 * ref_se + 1e-15)
    assert all(np.all(r["f"][0] == 0) for r in runs)  # antithetic draws: f(0) vanishes exactly


def _lazy_control_variate(run, X, y):
    """Reference loss minus lazy GD with the reference's own sampled t = 0 NTK.

    Theta_MC = Phi^2 + Phi^1 * G^2 + Phi^0 * G^1 at t = 0 carries the same Monte
    Carlo error as the run, so the difference isolates the feature-learning
    correction (docs/theory.md#causal-sweep's control variate).
    """
    Phi0 = X @ X.T / D
    Phi, G = [K[:P, :P] for K in run["Phi"]], [K[:P, :P] for K in run["G"]]
    theta = Phi[1] + Phi[0] * G[1] + Phi0 * G[0]
    return run["loss"] - np.asarray(lazy_mse(theta, 0.0, y, ETA, STEPS)["loss"])


@pytest.mark.slow
@pytest.mark.parametrize("fn, order", [("tanh", 2.0), ("relu", 1.0)])
def test_lazy_corrections_scale_with_gamma0(fn, order):
    """log-log slope of |DMFT - lazy| at t = T vs gamma0: 2 for smooth phi, 1 for relu (kink)."""
    X, y = _data()
    gammas = np.array([0.025, 0.05, 0.1])
    d = [np.mean([_lazy_control_variate(r, X, y)[-1] for r in _reference(fn, g, 2000, 3)[2]]) for g in gammas]
    slope = np.polyfit(np.log(gammas), np.log(np.abs(d)), 1)[0]
    print(fn, "corrections", d, "slope", slope)
    assert abs(slope - order) < 0.35


def test_linear_network_matches_width_extrapolation():
    """phi = id: weighted fit loss(N) = a + b/N over N = 256, 512, 1024; a within 5 SE of the DMFT."""
    X, y = _data()
    ref, ref_se, _ = _reference("linear", 1.0, 1000, 4)
    Ns = np.array([256, 512, 1024])
    stats = [_ensemble(N, 24, X, y, fn="linear") for N in Ns]
    means, ses = np.array([m for m, _ in stats]), np.array([s for _, s in stats])
    A = np.stack([np.ones_like(Ns, dtype=float), 1.0 / Ns], 1)
    for t in range(1, STEPS + 1):
        Wt = np.diag(1.0 / ses[:, t] ** 2)
        cov = np.linalg.inv(A.T @ Wt @ A)
        a = (cov @ A.T @ Wt @ means[:, t])[0]
        assert abs(a - ref[t]) < 5 * np.hypot(np.sqrt(cov[0, 0]), ref_se[t]), t


def test_initial_kernels_match_closed_forms():
    """At t = 0 the sampled kernels are the NNGP / derivative kernels (within 5 SE of the draws)."""
    X, _ = _data()
    _, _, runs = _reference("relu", 1.0, 2000, 4)
    Phi0 = X @ X.T / D
    Phi1 = np.asarray(phi_kernel("relu", Phi0))
    Phi2 = np.asarray(phi_kernel("relu", Phi1))
    G2 = np.asarray(dphi_kernel("relu", Phi1))  # <phi'(h^2) phi'(h^2)> <r^2>, r^L ~ N(0, 1)
    G1 = np.asarray(dphi_kernel("relu", Phi0)) * G2  # g^1 = phi'(h^1) r^1, r^1 ~ N(0, G^2)
    for exact, get in ((Phi1, lambda r: r["Phi"][0]), (Phi2, lambda r: r["Phi"][1]),
                       (G2, lambda r: r["G"][1]), (G1, lambda r: r["G"][0])):
        est = np.array([get(r)[:P, :P] for r in runs])
        se = est.std(0, ddof=1) / np.sqrt(len(runs))
        np.testing.assert_array_less(np.abs(est.mean(0) - exact), 5 * se + 1e-12)


@pytest.mark.parametrize("fn, depth", [("relu", 1), ("relu", 3), ("tanh", 2), ("erf", 2), ("quadratic", 1)])
def test_other_depths_and_activations_run(fn, depth):
    X, y = _data()
    out = solve_reference(X, y, fn=fn, depth=depth, gamma0=0.5, eta=0.05, steps=3, samples=200)
    assert out["loss"].shape == (4,) and out["f"].shape == (4, P) and len(out["Phi"]) == depth
    assert all(K.shape == (4 * P, 4 * P) for K in out["Phi"] + out["G"])
    assert np.all(np.isfinite(out["loss"])) and out["loss"][-1] < out["loss"][0]


def test_repeated_inputs_are_handled_by_the_pseudo_inverse():
    X, y = _data()
    X[1], y[1] = X[0], y[0]  # singular Phi^0 and singular innovation blocks
    out = solve_reference(X, y, steps=4, samples=400)
    assert np.all(np.isfinite(out["loss"])) and np.all(np.isfinite(out["A"][0]))
    np.testing.assert_allclose(out["f"][:, 1], out["f"][:, 0], atol=1e-12)


# ----------------------------------------------------------------------------- the causal Gaussian source


def _block_covariance(singular=False):
    rng = np.random.default_rng(4)
    A = rng.standard_normal((6, 6 if not singular else 3))
    return A @ A.T


@pytest.mark.parametrize("singular", [False, True])
def test_causal_gaussian_factor_and_response(singular):
    """R R^T = K when grown block by block; the response solve inverts R (pseudo-inverse if singular)."""
    K = _block_covariance(singular)
    src = CausalGaussian(P=2, T=2, jitter=1e-10)
    for t in range(3):
        src.grow(K[2 * t : 2 * t + 2, : 2 * t + 2])
    np.testing.assert_allclose(src.R @ src.R.T, K, atol=1e-10)
    c = np.random.default_rng(5).standard_normal((3, 6))
    x = src.response(c @ src.R)  # b = <F xi^T> for F = c . source
    np.testing.assert_allclose(x @ src.R, c @ src.R, atol=1e-10)
    if not singular:
        np.testing.assert_allclose(x, c, atol=1e-10)


def test_input_errors():
    X, y = _data()
    with pytest.raises(ValueError, match="samples must be a positive multiple of 4"):
        solve_reference(X, y, samples=10)
    with pytest.raises(ValueError, match="unknown activation 'swish'; allowed: erf, linear, quadratic, relu, tanh"):
        solve_reference(X, y, fn="swish")
