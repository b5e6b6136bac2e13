"""The simulator against hand-written numpy references: MLP GD steps and kernels, the transformer forward."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest
import scipy.special
import sympy
from conftest import data_of, mlp_spec, transformer_spec

from dmftc.notation import hyper_symbol, size_symbol
from dmftc.simulate import build_network, simulate
from dmftc.simulate.forward import apply
from dmftc.spec.types import Parameterization, WeightOverride


def hand_written(W0, W1, w, X, y, preset, eta, gamma0, steps):
    """f, loss, Phi1, Phi2, G1, G2 at (t,t) of the preset table (docs/theory.md#width-presets), by backprop (float64)."""
    (P, D), N = X.shape, W0.shape[0]
    m_out, lr = (1 / (gamma0 * N), eta * gamma0**2 * N) if preset == "mup" else (1 / np.sqrt(N), eta)
    out = {k: [] for k in ("f", "loss", "Phi1", "Phi2", "G1", "G2")}
    s_hat = m_out * 1.0                               # readout init std 1 in both presets
    for _ in range(steps + 1):
        h1 = X @ W0.T / np.sqrt(D)
        a1 = np.maximum(h1, 0)
        h2 = a1 @ W1.T / np.sqrt(N)
        a2 = np.maximum(h2, 0)
        f = m_out * a2 @ w[0]
        d2 = m_out * w[0] * (h2 > 0)                 # df/dh2
        d1 = (d2 @ W1 / np.sqrt(N)) * (h1 > 0)      # df/dh1
        for k, v in (("f", f), ("loss", 0.5 * np.mean((f - y) ** 2)), ("Phi1", a1 @ a1.T / N),
                     ("Phi2", a2 @ a2.T / N), ("G1", d1 @ d1.T / s_hat**2 / N),
                     ("G2", d2 @ d2.T / s_hat**2 / N)):
            out[k].append(v)
        e = (f - y) / P                               # dLoss/df
        gw = m_out * e @ a2
        gW1 = (e[:, None] * d2).T @ a1 / np.sqrt(N)
        gW0 = (e[:, None] * d1).T @ X / np.sqrt(D)
        W0, W1, w = W0 - lr * gW0, W1 - lr * gW1, w - lr * gw[None]
    return {k: np.array(v) for k, v in out.items()}


@pytest.mark.parametrize("preset", ["mup", "ntk"])
def test_gd_steps_and_kernels_equal_hand_written_backprop(preset):
    spec = mlp_spec(preset, N_=32, steps=3, gamma0=0.7, eta=0.9)
    X, y = data_of(spec)
    sim = simulate(spec, seeds=2, record="diag", dtype="float64", data=(X, y))
    init = build_network(spec, None, X.shape).init(0, 2, np.float64)
    for i in range(2):
        ref = hand_written(init["W0"][i], init["W1[0]"][i], init["w"][i], X, y, preset, 0.9, 0.7, 3)
        np.testing.assert_allclose(sim.f[i], ref["f"], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(sim.loss[i], ref["loss"], rtol=1e-10)
        for k in ("Phi1", "Phi2", "G1", "G2"):
            np.testing.assert_allclose(sim.order[k][i], ref[k], rtol=1e-10, atol=1e-12, err_msg=k)


def _layernorm(h):
    c = h - h.mean(-1, keepdims=True)
    return c / np.sqrt((c**2).mean(-1, keepdims=True))


def transformer_by_hand(p, m, X, L, H, scale, logit_scale):
    """docs/theory.md#attention: pre-LN blocks (attention, then gelu MLP), final LN, mean pool, readout."""
    h = m["embed"] * X @ p["embed"].T
    for l in range(L):
        hb = _layernorm(h)
        q, k, v = (m[f"attn0_{x}[{l}]"] * hb @ p[f"attn0_{x}[{l}]"].T for x in "QKV")
        P, S, width = q.shape
        split = lambda a: a.reshape(P, S, H, width // H)  # noqa: E731
        A = logit_scale * np.einsum("pshn,pthn->phst", split(q), split(k))
        o = np.einsum("phst,pthn->pshn", scipy.special.softmax(A, axis=-1), split(v)).reshape(P, S, width)
        h = h + scale * m[f"attn0_O[{l}]"] * o @ p[f"attn0_O[{l}]"].T
        z = m[f"W1[{l}]"] * _layernorm(h) @ p[f"W1[{l}]"].T
        h = h + scale * m[f"W2[{l}]"] * (z * scipy.special.ndtr(z)) @ p[f"W2[{l}]"].T
    return m["w"] * _layernorm(h).mean(1) @ p["w"][0]


def test_transformer_forward_matches_the_theory_notes():
    spec = transformer_spec(alpha_A=1.0, N_=8, H_=2, L_=2)
    X, _ = data_of(spec)
    net = build_network(spec, None, X.shape)
    params = {k: v[0] for k, v in net.init(0, 1, np.float64).items()}
    m = {k: p.multiplier for k, p in net.params.items()}
    with jax.enable_x64(True):
        f, _ = apply(net, params, X)
    # scale beta0 / L^alpha_L = 1 / 2; logit scale N^-alpha_A = 1 / 8
    np.testing.assert_allclose(f, transformer_by_hand(params, m, X, 2, 2, 0.5, 1 / 8), rtol=1e-9)


def test_abc_symmetry_leaves_the_dynamics_and_the_kernels_unchanged():
    """Readout multiplier x c, init std / c, step / c^2 (Yang & Hu's symmetry): same f(t), same Phi,
    and the same G: backward fields are normalised by s_hat = multiplier * init std, which it keeps."""
    spec = mlp_spec("mup", N_=32, steps=3)
    g, N, c = hyper_symbol("gamma0"), size_symbol("N"), sympy.Integer(4)
    moved = WeightOverride(multiplier=c / (g * N), init_std=1 / c, lr=g**2 * N / c**2)
    other = dataclasses.replace(spec, parameterization=Parameterization("mup", {"w": moved}))
    X, y = data_of(spec)
    a, b = (simulate(s, seeds=2, record="full", dtype="float64", data=(X, y)) for s in (spec, other))
    for k, v in a.arrays.items():
        np.testing.assert_allclose(b.arrays[k], v, rtol=1e-9, atol=1e-12, err_msg=k)
