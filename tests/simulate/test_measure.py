"""measure_one_step: its names, and agreement with a simulated first step."""

from __future__ import annotations

import dataclasses

import numpy as np
from conftest import data_of, mlp_spec

from dmftc.simulate import measure_one_step, measure_one_step_seeds, simulate


def test_names_of_a_transformer(transformer):
    spec = dataclasses.replace(transformer, sizes={**transformer.sizes, "L": 1})
    m = measure_one_step(spec, seeds=2, data=data_of(spec))
    weights = ["embed", "attn0_K", "attn0_Q", "attn0_V", "attn0_O", "W1", "W2", "w"]
    expected = {f"{kind}:{w}" for kind in ("fwd", "bwd", "dW", "dfwd") for w in weights}
    expected |= {"f0", "df", "logit:attn0", "dlogit:attn0", "logit_headvar:attn0"}
    expected |= {f"{kind}:{node}" for kind in ("branch", "dbranch") for node in ("n2_residual", "n5_residual")}
    assert set(m) == expected
    assert all(isinstance(v, float) and np.isfinite(v) for v in m.values())


def test_agrees_with_the_first_simulated_step():
    spec = mlp_spec("mup", L_=3, steps=1)
    data = data_of(spec)
    m = measure_one_step_seeds(spec, seeds=3, data=data)
    sim = simulate(spec, seeds=3, record="none", data=data)
    rms = lambda a: np.sqrt(np.mean(a**2, axis=-1))  # noqa: E731
    np.testing.assert_allclose(m["f0"], rms(sim.f[:, 0]), rtol=1e-5)
    np.testing.assert_allclose(m["df"], rms(sim.f[:, 1] - sim.f[:, 0]), rtol=1e-4)
    np.testing.assert_allclose(m["fwd:w"], m["f0"])
    np.testing.assert_allclose(m["bwd:w"], 64.0)  # df/df / s_hat = gamma0 N
