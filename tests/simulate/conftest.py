"""Spec builders and data for the simulator tests (specs made directly from the dataclasses)."""

from __future__ import annotations

import numpy as np
import pytest

from dmftc.notation import hyper_symbol as h
from dmftc.notation import size_symbol as s
from dmftc.spec.types import (Act, Attention, Dense, LayerNorm, Parameterization, Pool, Readout, Repeat,
                              Residual, Spec, Synthetic, Training)

N, L, H, S = s("N"), s("L"), s("H"), s("S")


def mlp_spec(preset: str = "mup", N_: int = 64, L_: int = 2, act: str = "relu", steps: int = 5,
             P: int = 8, D: int = 16, gamma0: float = 1.0, eta: float = 0.5) -> Spec:
    """An MLP with L_ hidden layers (W0, then W1 repeated L - 1 times) and readout w."""
    model = (Dense(N, "W0"), Act(act), Repeat(L - 1, (Dense(N, "W1"), Act(act))), Readout("w"))
    return Spec(1, f"mlp_{preset}_{act}", "", {"N": N_, "L": L_}, {"gamma0": gamma0, "eta": eta}, model,
                Parameterization(preset), ("N",), Training(lr=h("eta"), steps=steps), Synthetic(P, D))


def resnet_spec(alpha_L: float = 1.0, N_: int = 64, L_: int = 3, steps: int = 5, P: int = 8, D: int = 16) -> Spec:
    """embed, L residual ReLU blocks h + beta0 / L^alpha_L W1 relu(h), relu, readout."""
    branch = Residual(h("beta0") / L ** h("alpha_L"), (Act("relu"), Dense(N, "W1")))
    model = (Dense(N, "embed"), Repeat(L, (branch,)), Act("relu"), Readout("w"))
    hyper = {"gamma0": 1.0, "eta": 0.5, "beta0": 1.0, "alpha_L": alpha_L}
    return Spec(1, "resnet", "", {"N": N_, "L": L_}, hyper, model, Parameterization("mup"), ("N",),
                Training(lr=h("eta"), steps=steps), Synthetic(P, D))


def transformer_spec(alpha_A: float = 1.0, N_: int = 16, H_: int = 4, L_: int = 2, S_: int = 4,
                     steps: int = 5, P: int = 8, D: int = 16) -> Spec:
    """The seed paper's pre-LN transformer (docs/theory.md#attention), as in /tmp/mkspec.py."""
    scale = h("beta0") / L ** h("alpha_L")
    block = (Residual(scale, (LayerNorm(), Attention(H, N, N ** (-h("alpha_A")), "attn0"))),
             Residual(scale, (LayerNorm(), Dense(N * H, "W1"), Act("gelu"), Dense(N * H, "W2"))))
    model = (Dense(N * H, "embed"), Repeat(L, block), LayerNorm(), Pool(), Readout("w"))
    hyper = {"gamma0": 1.0, "eta": 0.5, "beta0": 1.0, "alpha_A": alpha_A, "alpha_L": 1.0}
    return Spec(1, "transformer", "", {"N": N_, "H": H_, "L": L_, "S": S_}, hyper, model,
                Parameterization("mup"), ("N",), Training(lr=h("eta"), steps=steps), Synthetic(P, D, S_))


def data_of(spec: Spec) -> tuple[np.ndarray, np.ndarray]:
    """The spec's synthetic data: `dmftc.spec.load_data` when present, else a local stand-in."""
    try:
        from dmftc.spec import load_data
    except ImportError:  # pragma: no cover - the loader is another piece of work
        d = spec.data
        rng = np.random.default_rng(d.seed)
        X = rng.standard_normal((d.P, d.D) if d.S is None else (d.P, d.S, d.D))
        beta = rng.standard_normal(d.D)
        return X, np.tanh((X if d.S is None else X.mean(1)) @ beta / np.sqrt(d.D))
    return load_data(spec)


def loglog_slope(sizes, per_seed) -> tuple[float, float]:
    """Slope of log(seed mean) against log(size), and its standard error.

    The error is the larger of two estimates: the seeds' own scatter propagated through a
    weighted least-squares fit (each point's sigma = its standard error of the mean relative to
    the mean), and the regression's residual scatter (which also catches curvature).
    """
    x = np.log(np.asarray(sizes, float))
    per_seed = [np.asarray(v, float) for v in per_seed]
    means = np.array([v.mean() for v in per_seed])
    sigma = np.array([v.std(ddof=1) / np.sqrt(v.size) for v in per_seed]) / means
    w = 1 / np.maximum(sigma, 1e-12)
    (slope, _), cov_seed = np.polyfit(x, np.log(means), 1, w=w, cov="unscaled")
    _, cov_fit = np.polyfit(x, np.log(means), 1, cov=True)
    return float(slope), float(np.sqrt(max(cov_seed[0, 0], cov_fit[0, 0])))


@pytest.fixture(scope="session")
def mlp():
    return mlp_spec()


@pytest.fixture(scope="session")
def transformer():
    return transformer_spec()
