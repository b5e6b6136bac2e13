"""Reference solver of the MLP DMFT (muP / mean-field, richness gamma0) by one causal sweep.

A deliberately straightforward, unvectorised implementation: plain numpy, Python
loops over draws, layers and time. It is (a) the naive baseline of the solver
benchmark and (b) an oracle independent of the compiler. The equations are those
of docs/theory.md#mlp-dmft, in discrete time, solved as docs/theory.md#causal-sweep
describes: one sweep in time, no outer fixed-point iteration.

Network and training (the finite model the DMFT describes as N -> infinity):
h^1 = W^0 x / sqrt(D), h^{l+1} = W^l phi(h^l) / sqrt(N), f = w . phi(h^L) / (gamma0 N),
N(0, 1) weights, theta <- theta + eta gamma0^2 N sum_mu Delta_mu df_mu/dtheta,
Delta = (y - f) / P, loss (1/2P) sum_mu (f_mu - y_mu)^2.

Single-site equations, with eg = eta gamma0 and the raw responses
RA^l = eg A^l = <d phi(h^l(t)) / d r^l(s)>, RB^l = eg B^l = <d g^{l+1}(t) / d u^{l+1}(s)>:

    h^1(t)     = u^1 + eg sum_{s<t} Phi^0 diag(Delta(s)) g^1(s),                     u^1 ~ N(0, Phi^0)
    h^{l+1}(t) = u^{l+1}(t) + sum_{s<t} [RA^l(t,s) + eg Phi^l(t,s) diag(Delta(s))] g^{l+1}(s)
    z^L(t)     = r^L + eg sum_{s<t} Delta(s) . phi(h^L(s)),                           r^L ~ N(0, 1)
    z^l(t)     = r^l(t) + sum_{s<=t} RB^l(t,s) phi(h^l(s)) + eg sum_{s<t} G^{l+1}(t,s) diag(Delta(s)) phi(h^l(s))
    g^l(t)     = phi'(h^l(t)) z^l(t)
    f(t)       = (1/gamma0) <r^L phi(h^L(t))> + eta sum_{s<t} Phi^L(t,s) Delta(s)

with u^{l+1} ~ GP(0, Phi^l) and r^l ~ GP(0, G^{l+1}) independent, Phi^l(t,s) =
<phi(h^l(t)) phi(h^l(s))^T>, G^l(t,s) = <g^l(t) g^l(s)^T> (P x P blocks).

Numerics:
- Sources are sampled causally: each source keeps a block-lower-triangular
  square-root factor R of its (time x sample) covariance, grown by one block of
  P rows per step (a block Cholesky factor: off-diagonal blocks by forward
  substitution, the diagonal block from the eigendecomposition of the P x P
  innovation (Schur-complement) covariance). Innovation eigenvalues below
  ``jitter`` times the largest diagonal entry of the new block are set to zero:
  that direction is then a deterministic function of the past (a degenerate
  Gaussian, e.g. repeated inputs), and every solve with the factor uses the
  pseudo-inverse of the diagonal blocks instead of dividing by ~0.
- Responses by Gaussian integration by parts on the whitened draws xi
  (source = R xi): <dF/dsource> R = <F xi^T>, solved for <dF/dsource> by block
  back-substitution with those pseudo-inverses, restricted to the causal support.
- Antithetic draws: the draws come in groups of four, (xi, zeta), (-xi, zeta),
  (xi, -zeta), (-xi, -zeta), with xi all forward whitened noise (u^1, u^l) and
  zeta all backward whitened noise (r^L, r^l); so f(0) = 0 exactly.

Storage layout: kernels are ((T+1) P) x ((T+1) P) arrays, index t * P + mu.
"""

from __future__ import annotations

import numpy as np
from scipy.special import erf as _erf

_ACTIVATIONS = {
    "relu": (lambda x: np.maximum(x, 0.0), lambda x: (x > 0).astype(float)),
    "linear": (lambda x: x, np.ones_like),
    "tanh": (np.tanh, lambda x: 1.0 - np.tanh(x) ** 2),
    "erf": (_erf, lambda x: 2.0 / np.sqrt(np.pi) * np.exp(-(x**2))),
    "quadratic": (lambda x: x**2, lambda x: 2.0 * x),
}


class CausalGaussian:
    """A Gaussian process over (time, sample) drawn one time block of P entries at a time.

    Holds the square-root factor R (source = R xi, xi ~ N(0, I)) and the
    pseudo-inverses of its diagonal blocks; see the module docstring.
    """

    def __init__(self, P: int, T: int, jitter: float):
        self.P, self.jitter, self.blocks = P, jitter, 0
        self.R = np.zeros(((T + 1) * P, (T + 1) * P))
        self.pinv = []  # pinv[k] = pseudo-inverse of the diagonal block R[k, k]

    def _blk(self, i: int, j: int) -> np.ndarray:
        P = self.P
        return self.R[i * P : (i + 1) * P, j * P : (j + 1) * P]

    def grow(self, K_row: np.ndarray) -> None:
        """Add time block t = self.blocks, given K_row = Cov(block t, blocks 0..t): (P, (t+1) P)."""
        P, t = self.P, self.blocks
        for j in range(t):  # R[t, j] R[j, j]^T = K(t, j) - sum_{i<j} R[t, i] R[j, i]^T
            rhs = K_row[:, j * P : (j + 1) * P].copy()
            for i in range(j):
                rhs -= self._blk(t, i) @ self._blk(j, i).T
            self._blk(t, j)[:] = rhs @ self.pinv[j].T
        S = K_row[:, t * P : (t + 1) * P].copy()
        for j in range(t):
            S -= self._blk(t, j) @ self._blk(t, j).T
        lam, V = np.linalg.eigh(0.5 * (S + S.T))
        keep = lam > self.jitter * max(np.max(np.diag(K_row[:, t * P :])), 1e-300)
        sq = np.where(keep, np.sqrt(np.where(keep, lam, 1.0)), 0.0)
        self._blk(t, t)[:] = V * sq
        self.pinv.append((np.where(keep, 1.0 / sq.clip(1e-300), 0.0)[:, None]) * V.T)
        self.blocks += 1

    def draw(self, xi: np.ndarray) -> np.ndarray:
        """The newest block's values for one draw with whitened noise xi (blocks 0..t, flattened)."""
        P, t = self.P, self.blocks - 1
        return self.R[t * P : (t + 1) * P, : (t + 1) * P] @ xi[: (t + 1) * P]

    def response(self, b: np.ndarray) -> np.ndarray:
        """Solve x R = b for x = <dF/dsource> over blocks 0..k-1, given b = <F xi^T> of shape (P', k P)."""
        P, k = self.P, b.shape[1] // self.P
        x = np.zeros_like(b)
        for j in reversed(range(k)):  # x_j R[j, j] = b_j - sum_{i>j} x_i R[i, j]
            rhs = b[:, j * P : (j + 1) * P].copy()
            for i in range(j + 1, k):
                rhs -= x[:, i * P : (i + 1) * P] @ self._blk(i, j)
            x[:, j * P : (j + 1) * P] = rhs @ self.pinv[j]
        return x


def _antithetic(rng, M: int, shape: tuple, role: int) -> np.ndarray:
    """Whitened N(0, 1) draws, shape (M, *shape), in groups of four sign patterns.

    role 0 (forward noise) flips sign on draws 1, 3 of each group; role 1
    (backward noise) on draws 2, 3.
    """
    base = rng.standard_normal((M // 4,) + shape)
    signs = np.array([[1, -1, 1, -1], [1, 1, -1, -1]])[role]
    return (signs[None, :, *([None] * len(shape))] * base[:, None]).reshape((M,) + shape)


def _psd_sqrt(K: np.ndarray) -> np.ndarray:
    """Symmetric-eigendecomposition square root R (K = R R^T), negative round-off clipped to 0."""
    lam, V = np.linalg.eigh(0.5 * (K + K.T))
    return V * np.sqrt(np.clip(lam, 0.0, None))


def _kernel_block(F: np.ndarray, Gf: np.ndarray, t: int) -> np.ndarray:
    """<F(t) Gf(s)^T> for s = 0..t, looping over draws: (P, (t+1) P)."""
    M, _, P = F.shape
    acc = np.zeros((P, (t + 1) * P))
    for m in range(M):
        acc += np.outer(F[m, t], Gf[m, : t + 1].ravel())
    return acc / M


def _set_block(K: np.ndarray, row: np.ndarray, t: int, P: int) -> None:
    """Write row = K(t, 0..t) and its transpose into the symmetric kernel K."""
    K[t * P : (t + 1) * P, : (t + 1) * P] = row
    K[: (t + 1) * P, t * P : (t + 1) * P] = row.T


def _stein(F: np.ndarray, xi: np.ndarray, t: int, k: int) -> np.ndarray:
    """<F(t) xi(blocks 0..k-1)^T>, looping over draws: (P, k P)."""
    M, _, P = F.shape
    acc = np.zeros((P, k * P))
    for m in range(M):
        acc += np.outer(F[m, t], xi[m, :k].ravel())
    return acc / M


def solve_reference(
    X,
    y,
    *,
    fn: str = "relu",
    depth: int = 2,
    gamma0: float = 1.0,
    eta: float = 0.5,
    steps: int = 20,
    samples: int = 2000,
    seed: int = 0,
    jitter: float = 1e-10,
) -> dict:
    """Solve the discrete-time muP MLP DMFT by a causal Monte Carlo sweep.

    Parameters
    ----------
    X : (P, D) array
        Inputs; Phi^0 = X X^T / D.
    y : (P,) array
        Targets.
    fn : str
        Activation: relu, linear, tanh, erf or quadratic.
    depth : int
        Number of hidden layers L >= 1.
    gamma0 : float
        Richness (gamma0 -> 0 is the lazy/NTK limit).
    eta : float
        Learning rate of the global step eta gamma0^2 N.
    steps : int
        Number of GD steps T; times t = 0..T.
    samples : int
        Monte Carlo draws M of the single-site process (a multiple of 4: antithetic groups).
    seed : int
        Seed of the whitened draws.
    jitter : float
        Relative eigenvalue threshold below which an innovation direction is treated as
        deterministic (pseudo-inverse; see the module docstring).

    Returns
    -------
    dict
        ``loss`` (T+1,), ``f`` (T+1, P), ``Delta`` (T+1, P), ``Phi`` and ``G``
        (lists over l = 1..L of ((T+1) P, (T+1) P) kernels, index t * P + mu),
        ``A`` and ``B`` (lists over l = 1..L-1, A^l(t, s) and B^l(t, s) with the
        1/(eta gamma0) of docs/theory.md#mlp-dmft; row block t, column block s).
    """
    X, y = np.asarray(X, float), np.asarray(y, float)
    if fn not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {fn!r}; allowed: {', '.join(sorted(_ACTIVATIONS))}")
    if samples % 4 or samples <= 0:
        raise ValueError(f"samples must be a positive multiple of 4 (antithetic groups), got {samples}")
    if depth < 1 or gamma0 <= 0:
        raise ValueError(f"need depth >= 1 and gamma0 > 0, got depth={depth}, gamma0={gamma0}")
    sweep = _Sweep(X, y, fn, depth, gamma0, eta, steps, samples, np.random.default_rng(seed), jitter)
    for t in range(steps + 1):
        for l in range(1, depth + 1):  # every layer's forward field first ...
            sweep.forward(l, t)
        sweep.output(t)
        for l in range(depth, 0, -1):  # ... then the backward fields from the top down
            sweep.backward(l, t)
    return sweep.result()


class _Sweep:
    """State of the causal sweep: per-draw fields (M, T+1, P), kernels, responses, sources."""

    def __init__(self, X, y, fn, L, gamma0, eta, T, M, rng, jitter):
        (P, D), n = X.shape, (T + 1) * X.shape[0]
        self.y, self.P, self.L, self.M = y, P, L, M
        self.gamma0, self.eta, self.eg = gamma0, eta, eta * gamma0
        self.phi, self.dphi = _ACTIVATIONS[fn]
        # whitened draws (antithetic groups) and the time-constant sources u^1, r^L
        self.Phi0 = X @ X.T / D
        self.u1 = _antithetic(rng, M, (P,), 0) @ _psd_sqrt(self.Phi0).T
        self.rL = _antithetic(rng, M, (), 1)
        self.xi = {l: _antithetic(rng, M, (T + 1, P), 0) for l in range(2, L + 1)}  # for u^l
        self.zeta = {l: _antithetic(rng, M, (T + 1, P), 1) for l in range(1, L)}  # for r^l
        self.src_u = {l: CausalGaussian(P, T, jitter) for l in range(2, L + 1)}  # u^l ~ GP(0, Phi^{l-1})
        self.src_r = {l: CausalGaussian(P, T, jitter) for l in range(1, L)}  # r^l ~ GP(0, G^{l+1})
        fields = lambda layers: {l: np.zeros((M, T + 1, P)) for l in layers}  # noqa: E731
        kernels = lambda layers: {l: np.zeros((n, n)) for l in layers}  # noqa: E731
        self.h, self.a, self.g = fields(range(1, L + 1)), fields(range(1, L + 1)), fields(range(1, L + 1))
        self.u, self.r = fields(range(2, L + 1)), fields(range(1, L))
        self.Phi, self.G = kernels(range(1, L + 1)), kernels(range(1, L + 1))
        self.RA, self.RB = kernels(range(1, L)), kernels(range(1, L))  # eta gamma0 A, eta gamma0 B
        self.f, self.Delta = np.zeros((T + 1, P)), np.zeros((T + 1, P))

    def blk(self, K, t, s):
        """The P x P block (t, s) of a kernel."""
        P = self.P
        return K[t * P : (t + 1) * P, s * P : (s + 1) * P]

    def row(self, K, t, upto):
        """Row block t, column blocks 0..upto-1: (P, upto P)."""
        return K[t * self.P : (t + 1) * self.P, : upto * self.P]

    def forward(self, l, t):
        """h^l(t) for every draw, then Phi^l(t, <=t), RA^l(t, <t) and the draw of u^{l+1}(t)."""
        P, eg, D = self.P, self.eg, self.Delta
        if l == 1:  # sum_{s<t} eg Phi^0 diag(Delta(s)) g^1(s)
            blocks = [eg * self.Phi0 * D[s][None, :] for s in range(t)]
        else:  # sum_{s<t} [RA^{l-1}(t,s) + eg Phi^{l-1}(t,s) diag(Delta(s))] g^l(s)
            blocks = [self.blk(self.RA[l - 1], t, s) + eg * self.blk(self.Phi[l - 1], t, s) * D[s][None, :]
                      for s in range(t)]
        Mf = np.hstack(blocks or [np.zeros((P, 0))])
        h, a, g = self.h[l], self.a[l], self.g[l]
        for m in range(self.M):
            h[m, t] = (self.u1[m] if l == 1 else self.u[l][m, t]) + Mf @ g[m, :t].ravel()
            a[m, t] = self.phi(h[m, t])
        _set_block(self.Phi[l], _kernel_block(a, a, t), t, P)
        if l == self.L:
            return
        if t > 0:  # RA^l(t, s<t) = <d phi(h^l(t)) / d r^l(s)>
            self.row(self.RA[l], t, t)[:] = self.src_r[l].response(_stein(a, self.zeta[l], t, t))
        self.src_u[l + 1].grow(self.row(self.Phi[l], t, t + 1))
        for m in range(self.M):
            self.u[l + 1][m, t] = self.src_u[l + 1].draw(self.xi[l + 1][m].ravel())

    def output(self, t):
        """f(t) = (1/gamma0) <r^L phi(h^L(t))> + eta sum_{s<t} Phi^L(t,s) Delta(s); Delta(t) = (y - f(t)) / P."""
        acc = np.zeros(self.P)
        for m in range(self.M):
            acc += self.rL[m] * self.a[self.L][m, t]
        readout = sum((self.blk(self.Phi[self.L], t, s) @ self.Delta[s] for s in range(t)), np.zeros(self.P))
        self.f[t] = acc / (self.M * self.gamma0) + self.eta * readout
        self.Delta[t] = (self.y - self.f[t]) / self.P

    def backward(self, l, t):
        """g^l(t) for every draw (drawing r^l(t) first), then G^l(t, <=t) and RB^{l-1}(t, <=t)."""
        P, eg, D, L = self.P, self.eg, self.Delta, self.L
        if l < L:  # sum_{s<=t} RB^l(t,s) phi(h^l(s)) + sum_{s<t} eg G^{l+1}(t,s) diag(Delta(s)) phi(h^l(s))
            self.src_r[l].grow(self.row(self.G[l + 1], t, t + 1))
            Mb = np.hstack([self.blk(self.RB[l], t, s)
                            + (eg * self.blk(self.G[l + 1], t, s) * D[s][None, :] if s < t else 0.0)
                            for s in range(t + 1)])
        h, a, g = self.h[l], self.a[l], self.g[l]
        for m in range(self.M):
            if l == L:  # the readout weight: z^L = r^L + eg sum_{s<t} Delta(s) . phi(h^L(s))
                z = self.rL[m] + eg * sum((D[s] @ a[m, s] for s in range(t)), 0.0)
            else:
                self.r[l][m, t] = self.src_r[l].draw(self.zeta[l][m].ravel())
                z = self.r[l][m, t] + Mb @ a[m, : t + 1].ravel()
            g[m, t] = self.dphi(h[m, t]) * z
        _set_block(self.G[l], _kernel_block(g, g, t), t, P)
        if l >= 2:  # RB^{l-1}(t, s<=t) = <d g^l(t) / d u^l(s)>
            self.row(self.RB[l - 1], t, t + 1)[:] = self.src_u[l].response(_stein(g, self.xi[l], t, t + 1))

    def result(self):
        L, eg = self.L, self.eg
        return {
            "loss": np.sum((self.f - self.y[None, :]) ** 2, axis=1) / (2 * self.P),
            "f": self.f,
            "Delta": self.Delta,
            "Phi": [self.Phi[l] for l in range(1, L + 1)],
            "G": [self.G[l] for l in range(1, L + 1)],
            "A": [self.RA[l] / eg for l in range(1, L)],
            "B": [self.RB[l] / eg for l in range(1, L)],
        }
