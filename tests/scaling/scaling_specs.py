"""Specs for the scaling-analysis tests, built directly from the dataclasses (no YAML)."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import sympy

from dmftc.graph import build_graph
from dmftc.notation import hyper_symbol as h
from dmftc.notation import size_symbol as s
from dmftc.scaling import resolve_parameterization
from dmftc.spec.types import (Act, Attention, Dense, LayerNorm, Parameterization, Pool, Readout, Repeat,
                              Residual, Spec, Synthetic, Training, WeightOverride)

N, L, H, S = s("N"), s("L"), s("H"), s("S")
half = Fraction(1, 2)


def mlp(preset="mup", lr=h("eta"), act="relu", limit=("N",), L_=3, overrides=None) -> Spec:
    """W0 (D -> N), L - 1 hidden layers W1, readout w."""
    model = (Dense(N, "W0"), Act(act), Repeat(L - 1, (Dense(N, "W1"), Act(act))), Readout("w"))
    return Spec(1, f"mlp_{preset}", "", {"N": 64, "L": L_}, {"gamma0": 1.0, "eta": 0.5}, model,
                Parameterization(preset, overrides or {}), tuple(limit), Training(lr=lr, steps=5),
                Synthetic(8, 16))


def transformer(alpha_A=1.0, alpha_L=1.0, limit=("N",), preset="mup", H_=4, L_=2) -> Spec:
    """The seed paper's pre-LN transformer (docs/theory.md#attention)."""
    scale = h("beta0") / L ** h("alpha_L")
    block = (Residual(scale, (LayerNorm(), Attention(H, N, N ** (-h("alpha_A")), "attn0"))),
             Residual(scale, (LayerNorm(), Dense(N * H, "W1"), Act("gelu"), Dense(N * H, "W2"))))
    model = (Dense(N * H, "embed"), Repeat(L, block), LayerNorm(), Pool(), Readout("w"))
    hyper = {"gamma0": 1.0, "eta": 0.5, "beta0": 1.0, "alpha_A": alpha_A, "alpha_L": alpha_L}
    return Spec(1, "transformer", "", {"N": 16, "H": H_, "L": L_, "S": 4}, hyper, model,
                Parameterization(preset), tuple(limit), Training(lr=h("eta"), steps=5), Synthetic(8, 16, 4))


def resnet(alpha_L=0.5, limit=("L",)) -> Spec:
    """embed, L residual blocks h + beta0 / L^alpha_L W1 relu(h) / sqrt(N), readout."""
    model = (Dense(N, "W0"), Repeat(L, (Residual(h("beta0") / L ** h("alpha_L"), (Act("relu"), Dense(N, "W1"))),)),
             Readout("w"))
    hyper = {"gamma0": 1.0, "eta": 0.5, "beta0": 1.0, "alpha_L": alpha_L}
    return Spec(1, "resnet", "", {"N": 64, "L": 4}, hyper, model, Parameterization("mup"), tuple(limit),
                Training(lr=h("eta"), steps=5), Synthetic(8, 16))


def with_lr(spec: Spec, lr) -> Spec:
    return dataclasses.replace(spec, training=dataclasses.replace(spec.training, lr=lr))


def raw_form(spec: Spec, base_preset: str = "sp") -> Spec:
    """The same parameterization written as per-weight overrides of another preset."""
    graph = build_graph(spec)
    params = resolve_parameterization(spec, graph)
    over = {name: WeightOverride(ws.multiplier, ws.init_std, sympy.simplify(ws.lr / spec.training.lr))
            for name, ws in params.items()}
    return dataclasses.replace(spec, parameterization=Parameterization(base_preset, over))


def abc_shifted(spec: Spec, shifts: dict, n=N) -> Spec:
    """(a, b, c) -> (a + k, b - k, c - 2k) on each named weight: multiplier * n^-k,
    init std * n^k, learning rate * n^2k (Yang & Hu's symmetry of SGD)."""
    graph = build_graph(spec)
    params = resolve_parameterization(spec, graph)
    over = {}
    for name, ws in params.items():
        k = sympy.Rational(shifts.get(name, 0))
        over[name] = WeightOverride(ws.multiplier * n ** (-k), ws.init_std * n ** k,
                                    sympy.simplify(ws.lr * n ** (2 * k) / spec.training.lr))
    return dataclasses.replace(spec, parameterization=Parameterization(spec.parameterization.preset, over))


def exps(scaling, symbol="N") -> dict:
    """quantity -> exponent of one symbol."""
    return {k: v[symbol] for k, v in scaling.exponents.items()}
