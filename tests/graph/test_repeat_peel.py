"""A repeat whose body changes the width (it holds the input layer) means its ops written out:
the first iteration is peeled into ordinary nodes with their own weights (`<name>_first`)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest

from dmftc.graph import build_graph
from dmftc.scaling import analyze, resolve_parameterization, resolved_table
from dmftc.simulate import simulate
from dmftc.spec.loader import loads

SPEC = (Path(__file__).resolve().parents[2] / "specs" / "mlp_mup_relu.yaml").read_text()


def spec_with(model: str, preset: str = "mup", sizes: str | None = None, extra: str = ""):
    """specs/mlp_mup_relu.yaml with its model (and preset, sizes) replaced."""
    text = SPEC[:SPEC.index("model:")] + "model:\n" + model + SPEC[SPEC.index("parameterization:"):]
    text = text.replace("preset: mup", f"preset: {preset}" + extra)
    if sizes is not None:
        text = text[:text.index("sizes:")] + "sizes:\n" + sizes + text[text.index("hyper:"):]
    return loads(text)


REPEATED = "  - repeat: {times: L, body: [{dense: {out: N}}, {act: relu}]}\n  - readout: {name: w}\n"
# the twin, written out: names as the peel gives them (the body's dense is the file's first: W0)
TWIN = ("  - dense: {out: N, name: W0_first}\n  - act: relu\n"
        "  - repeat: {times: L - 1, body: [{dense: {out: N, name: W0}}, {act: relu}]}\n  - readout: {name: w}\n")


def test_the_first_iteration_is_peeled_with_its_own_weight():
    g = build_graph(spec_with(REPEATED))
    assert [n.kind for n in g.nodes] == ["dense", "act", "repeat", "readout"]
    first, rest = g.weights["W0_first"], g.weights["W0"]
    assert (first.role, str(first.fan_in), str(first.fan_out), str(first.count), first.indices) == \
        ("embed", "D", "N", "1", ())
    assert (rest.role, str(rest.fan_in), str(rest.count), rest.indices) == ("hidden", "N", "L - 1", ("ell",))
    assert first.origin == "W0" and rest.origin == ""
    assert str(g.nodes[2].op.times) == "L - 1" and g.nodes[2].width_in == g.nodes[2].width_out
    assert list(g.weights) == ["W0_first", "W0", "w"]


def test_a_width_preserving_repeat_is_not_peeled():
    g = build_graph(spec_with("  - dense: {out: N, name: W0}\n"
                              "  - repeat: {times: L, body: [{dense: {out: N}}, {act: relu}]}\n"
                              "  - readout: {name: w}\n"))
    assert list(g.weights) == ["W0", "W1", "w"] and g.nodes[1].kind == "repeat"


@pytest.mark.parametrize("preset, regime", [("mup", "feature_learning"), ("ntk", "lazy"), ("sp", "unstable")])
def test_scaling_equals_the_written_out_twin(preset, regime):
    rep, twin = spec_with(REPEATED, preset), spec_with(TWIN, preset)
    a, b = analyze(rep), analyze(twin)
    assert a.regime == b.regime == regime
    assert dict(a.exponents) == dict(b.exponents)
    assert a.reasons == b.reasons
    ta, tb = resolved_table(rep), resolved_table(twin)
    assert [(r.name, r.role, r.init_std, r.multiplier, r.lr) for r in ta.rows] == \
           [(r.name, r.role, r.init_std, r.multiplier, r.lr) for r in tb.rows]


@pytest.mark.parametrize("preset, regime", [("mup", "feature_learning"), ("ntk", "lazy"), ("sp", "unstable")])
def test_scaling_equals_the_original_example(preset, regime):
    """specs/mlp_mup_relu.yaml itself (W0, then W1 repeated L - 1 times), row for row under renaming."""
    a, b = analyze(spec_with(REPEATED, preset)), analyze(loads(SPEC.replace("preset: mup", f"preset: {preset}")))
    names = {"W0_first": "W0", "W0": "W1"}
    renamed = {re.sub(r"\b(W0_first|W0)\b", lambda m: names[m.group(1)], k): v for k, v in a.exponents.items()}
    assert a.regime == b.regime == regime and renamed == dict(b.exponents)


def _short(spec):
    return dataclasses.replace(spec, training=dataclasses.replace(spec.training, steps=2))


def test_simulation_runs_like_the_written_out_twin():
    rep, twin = _short(spec_with(REPEATED)), _short(spec_with(TWIN))
    a = simulate(rep, {"N": 64}, seeds=2, record="diag")
    b = simulate(twin, {"N": 64}, seeds=2, record="diag")
    assert a.loss.shape == b.loss.shape == (2, 3) and np.isfinite(a.loss).all()
    assert sorted(a.order) == sorted(b.order) == ["G1", "G2", "Phi1", "Phi2"]
    # the same network and names: the same weights, so the same numbers
    np.testing.assert_allclose(a.loss, b.loss, rtol=1e-5)
    # against the original example (other names, other draws): the same order of magnitude
    c = simulate(_short(loads(SPEC)), {"N": 64}, seeds=2, record="diag")
    assert 0.2 < a.loss[:, 0].mean() / c.loss[:, 0].mean() < 5


def test_simulator_param_keys_of_the_peeled_copy():
    from dmftc.simulate.network import build_network
    net = build_network(spec_with(REPEATED), {"N": 64, "L": 3}, (8, 16))
    assert {k: p.shape for k, p in net.params.items()} == {"W0_first": (64, 16), "W0[0]": (64, 64),
                                                          "W0[1]": (64, 64), "w": (1, 64)}
    assert [s.tap for s in net.sites] == ["out:W0_first", "out:W0[0]", "out:W0[1]"]


@pytest.mark.parametrize("times, sizes", [("1", "  N: 64\n  L: 2\n"), ("L", "  N: 64\n  L: 1\n")])
def test_a_single_iteration_leaves_an_empty_or_no_repeat(times, sizes):
    spec = spec_with(f"  - repeat: {{times: {times}, body: [{{dense: {{out: N}}}}, {{act: relu}}]}}\n"
                     "  - readout: {name: w}\n", sizes=sizes)
    g = build_graph(spec)
    kinds = [n.kind for n in g.nodes]
    assert kinds == (["dense", "act", "readout"] if times == "1" else ["dense", "act", "repeat", "readout"])
    assert analyze(spec).regime == "feature_learning"
    sim = simulate(_short(spec), seeds=2, record="diag")
    assert np.isfinite(sim.loss).all() and sorted(sim.order) == ["G1", "Phi1"]


def test_peeled_names_avoid_every_other_weight_name():
    spec = spec_with("  - dense: {out: N, name: V_first}\n"
                     "  - repeat: {times: L, body: [{dense: {out: 2*N, name: V}}, {act: relu}]}\n"
                     "  - readout: {name: w}\n")
    g = build_graph(spec)
    assert list(g.weights) == ["V_first", "V_first_2", "V", "w"]
    assert g.weights["V_first_2"].origin == "V" and str(g.weights["V_first_2"].fan_in) == "N"


def test_nested_repeats_peel_at_each_level():
    spec = spec_with("  - repeat: {times: L, body: [{repeat: {times: 2, index: k, "
                     "body: [{dense: {out: N}}, {act: tanh}]}}]}\n  - readout: {name: w}\n")
    g = build_graph(spec)
    counts = {n: str(w.count) for n, w in g.weights.items()}
    assert counts == {"W0_first_first": "1", "W0_first": "1", "W0": "2*L - 2", "w": "1"}
    assert g.weights["W0_first_first"].role == "embed" and g.weights["W0_first_first"].origin == "W0"
    assert analyze(spec).regime == "feature_learning"


def test_the_body_weights_override_applies_to_its_peeled_copy():
    extra = "\n  weights:\n    W0: {lr: 2}"
    spec = spec_with(REPEATED, extra=extra)
    params = resolve_parameterization(spec, build_graph(spec))
    assert params["W0_first"].lr == params["W0"].lr == 2 * spec.training.lr
    rows = {r.name: r.overridden for r in resolved_table(spec).rows}
    assert rows == {"W0_first": ("lr",), "W0": ("lr",), "w": ()}
