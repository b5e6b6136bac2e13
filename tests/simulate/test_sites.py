"""Simulator sites: phi is the chain of pointwise ops (acts, layernorms) following each dense layer."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import N, data_of, mlp_spec, resnet_spec

from dmftc.blocks import layernorm
from dmftc.notation import hyper_symbol as h
from dmftc.simulate import simulate
from dmftc.simulate.forward import apply
from dmftc.simulate.network import build_network
from dmftc.spec.types import Act, Dense, LayerNorm, Readout, Residual

CHAINED = (Dense(N, "W0"), Act("relu"), Act("tanh"), Dense(N, "W1"), Dense(N, "W2"), LayerNorm(), Act("gelu"),
           Readout("w"))


def chained_spec(steps: int = 0):
    spec = mlp_spec(N_=32, P=6, D=8, steps=steps)
    return dataclasses.replace(spec, model=CHAINED)


def test_each_dense_site_records_the_chain_that_follows_it():
    net = build_network(chained_spec(), None, (6, 8))
    assert [(s.name, s.grad, s.tap, s.phi) for s in net.sites] == [
        ("Phi1", "G1", "out:W0", ("relu", "tanh")), ("Phi2", "G2", "out:W1", ()),
        ("Phi3", "G3", "out:W2", ("layernorm", "gelu"))]
    assert [s.activation for s in net.sites] == [None, "linear", None]


def test_single_activations_keep_their_name():
    net = build_network(mlp_spec(L_=3), None, (8, 16))
    assert [s.phi for s in net.sites] == [("relu",)] * 3 and {s.activation for s in net.sites} == {"relu"}


@pytest.mark.parametrize("record", ["diag", "full"])
def test_recorded_kernels_apply_the_chain(record):
    spec = chained_spec()
    X, y = data_of(spec)
    sim = simulate(spec, seeds=2, record=record, dtype="float64", data=(X, y))
    net = build_network(spec, None, X.shape)
    weights = net.init(0, 2, np.float64)
    chains = {1: lambda u: np.tanh(np.maximum(u, 0)), 2: lambda u: u,
              3: lambda u: np.asarray(jax_gelu(layernorm.forward(u)))}
    for i in range(2):
        _, acts = apply(net, {k: v[i] for k, v in weights.items()}, X.astype(np.float64))
        for l, tap in ((1, "out:W0"), (2, "out:W1"), (3, "out:W2")):
            F = chains[l](np.asarray(acts[tap]))
            K = F @ F.T / F.shape[-1]
            got = sim.order[f"Phi{l}"][i, 0] if record == "diag" else sim.order[f"Phi{l}"][i, 0, :, 0, :]
            np.testing.assert_allclose(got, K, rtol=1e-6, atol=1e-9)
    # the record names and numbering are as for single activations
    assert set(sim.order) == {f"{k}{l}" for k in ("Phi", "G") for l in (1, 2, 3)}


def jax_gelu(x):
    from dmftc.blocks.act import phi
    return phi("gelu")(x)


def test_residual_sites_read_the_chain_of_the_next_branch():
    spec = resnet_spec(L_=2)
    scale = h("beta0") / spec.model[1].times ** h("alpha_L")
    branch = Residual(scale, (LayerNorm(), Act("tanh"), Dense(N, "W1")))
    model = (spec.model[0], dataclasses.replace(spec.model[1], body=(branch,)), Act("relu"), Act("tanh"),
             Readout("w"))
    net = build_network(dataclasses.replace(spec, model=model), None, (8, 16))
    acts = [(s.name, s.phi) for s in net.sites if s.name.startswith("Phi")]
    # a branch that starts with a layernorm reads LayerNorm's own field (its Phi sits at that field's
    # position): no view of the stream; the readout reads relu(tanh(h)) of the top of the stream, position 3
    assert acts == [("Phi3", ("relu", "tanh"))]
    # a branch that starts with a dense reads the stream itself: no Phi view
    plain = (spec.model[0], dataclasses.replace(spec.model[1], body=(Residual(scale, (Dense(N, "W1"),)),)),
             Readout("w"))
    net = build_network(dataclasses.replace(spec, model=plain), None, (8, 16))
    assert [s.name for s in net.sites] == ["H1", "H2", "H3"]
