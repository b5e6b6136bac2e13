"""Building the finite network: unrolled repeats, the parameterization's numbers, sites, errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import mlp_spec, resnet_spec, transformer_spec

from dmftc.errors import DmftcError
from dmftc.graph import build_graph
from dmftc.notation import hyper_symbol, size_symbol
from dmftc.scaling.parameterization import resolve_parameterization
from dmftc.simulate import build_network
from dmftc.simulate.network import stream_positions
from dmftc.spec.types import Act, Dense, Readout, Repeat


def test_mlp_copies_and_numbers_come_from_the_parameterization():
    spec = mlp_spec("mup", N_=32, L_=3)
    net = build_network(spec, {"N": 48}, (8, 16))
    assert list(net.params) == ["W0", "W1[0]", "W1[1]", "w"]
    assert [p.shape for p in net.params.values()] == [(48, 16), (48, 48), (48, 48), (1, 48)]
    table = resolve_parameterization(spec, build_graph(spec))
    values = {size_symbol("N"): 48, size_symbol("L"): 3, size_symbol("D"): 16, size_symbol("P"): 8,
              hyper_symbol("gamma0"): 1.0, hyper_symbol("eta"): 0.5}
    for p in net.params.values():
        ws = table[p.weight]
        assert (p.multiplier, p.init_std, p.lr) == pytest.approx(
            tuple(float(e.subs(values)) for e in (ws.multiplier, ws.init_std, ws.lr)))
    assert net.readout_scale == pytest.approx(1 / 48)  # s_hat = m_readout * std_readout = 1 / (gamma0 N)
    assert [(s.name, s.grad, s.tap, s.phi) for s in net.sites] == [
        ("Phi1", "G1", "out:W0", ("relu",)), ("Phi2", "G2", "out:W1[0]", ("relu",)),
        ("Phi3", "G3", "out:W1[1]", ("relu",))]
    assert net.sizes == {"D": 16, "L": 3, "N": 48, "P": 8}


def test_nested_repeats_key_every_copy():
    N, L = size_symbol("N"), size_symbol("L")
    spec = mlp_spec()
    model = (Dense(N, "W0"), Repeat(L, (Repeat(2, (Dense(N, "W1"), Act("tanh")), "k"),)), Readout("w"))
    net = build_network(dataclasses.replace(spec, model=model), None, (8, 16))
    assert [k for k in net.params if k.startswith("W1")] == ["W1[0,0]", "W1[0,1]", "W1[1,0]", "W1[1,1]"]


def test_streams_of_residual_networks_and_transformers():
    res = build_network(resnet_spec(L_=3), None, (8, 16))
    # the stream at mark l (the input of block 0, then after block l) is the DMFT's position l + 1
    assert [(s.name, s.grad, s.tap) for s in res.sites if s.name.startswith("H")] == [
        (f"H{l + 1}", f"G{l + 1}", f"stream:{l}") for l in range(4)]
    # every stream position is read through relu (by the next branch, or the readout at the top)
    acts = [(s.name, s.tap, s.phi, s.grad) for s in res.sites if s.name.startswith("Phi")]
    assert acts == [(f"Phi{l + 1}", f"stream:{l}", ("relu",), None) for l in range(4)]
    tr = build_network(transformer_spec(L_=2), None, (8, 4, 16))
    # one per attention+MLP block (two adds to the stream); LayerNorm comes first in every branch, so no Phi view
    assert [(s.name, s.tap) for s in tr.sites] == [("H1", "stream:0"), ("H3", "stream:1"), ("H5", "stream:2")]
    assert stream_positions(tr.layers) == (1, 3, 5)
    assert tr.attentions == ("attn0[0]", "attn0[1]")
    assert tr.params["attn0_K[1]"].shape == (64, 64) and tr.tokens and tr.residual


def test_init_is_per_network_and_per_weight():
    a = build_network(mlp_spec(L_=2), None, (8, 16)).init(3, 2)
    b = build_network(mlp_spec(L_=3), None, (8, 16)).init(3, 3)
    np.testing.assert_array_equal(a["W0"], b["W0"][:2])      # same draw at another depth / ensemble size
    np.testing.assert_array_equal(a["W1[0]"], b["W1[0]"][:2])
    assert not np.array_equal(b["W1[0]"], b["W1[1]"])       # copies are independent
    assert not np.array_equal(a["W0"][0], a["W0"][1])        # so are networks
    sp = build_network(mlp_spec("sp", N_=256), None, (8, 16)).init(0, 1)
    assert np.std(sp["W1[0]"]) == pytest.approx(1 / 16, rel=0.02)  # sp: N(0, 1/fan_in)


@pytest.mark.parametrize("sizes, message", [
    ({"P": 4}, "size P comes from the data"),
    ({"Q": 4}, "size Q=4 is not declared"),
    ({"N": 0}, "must be a positive integer"),
])
def test_size_errors_say_what_to_do(sizes, message):
    with pytest.raises(DmftcError, match=message):
        build_network(mlp_spec(), sizes, (8, 16))


def test_token_data_must_match_the_spec():
    with pytest.raises(DmftcError, match="give X the shape"):
        build_network(transformer_spec(), None, (8, 16))
    with pytest.raises(DmftcError, match="S=4 but the data have S=5"):
        build_network(transformer_spec(), None, (8, 5, 16))


def test_flat_data_for_a_flat_spec_only():
    with pytest.raises(DmftcError, match="does not declare tokens"):
        build_network(mlp_spec(), None, (8, 4, 16))
