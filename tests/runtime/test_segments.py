"""The causal sweep in segments of growing width (rt.segments, rt.widen, rt.draws_upto).

A step of a segment ending at slot e holds every history, kernel and factor at width e: the
slots beyond are zero and unused by causality, so the segmented sweep is the same algorithm
on the causal triangle only. Here the helpers are checked on their own, and generated solvers
of each template (MLP, exact Gaussian, residual, transformer) give the one-segment numbers to
round-off whatever the cut.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dmftc
from dmftc.runtime import sweep as rt
from dmftc.spec import load, load_data

SPECS = Path(__file__).resolve().parents[2] / "specs"


def test_segments_cut_the_slots_into_nearly_equal_runs():
    assert rt.segments(51, 6) == (8, 17, 26, 34, 42, 51)
    assert rt.segments(10, 1) == (10,)
    assert rt.segments(3, 8) == (2, 3)  # never more segments than slots, never a first one of one slot
    assert rt.segments(1, 4) == (1,)
    ends = rt.segments(40, 3)
    assert ends[-1] == 40 and np.ptp(np.diff((0, *ends))) <= 1


def test_the_default_count_follows_the_work_and_the_horizon():
    assert rt.segments(51, work=5e8) == (51,)  # small solves compile once
    assert len(rt.segments(51, work=8192 * 816**2)) == 6  # the reference spec at M = 8192 (n_t // 8 = 6)
    assert len(rt.segments(200, work=1e12)) == 8
    assert rt.segments(12, work=1e12) == (12,)  # short horizons: n_t // 8 = 1


def test_widen_pads_time_axes_at_their_ends_and_keeps_the_rest():
    state = {"h": {1: jnp.arange(6.0).reshape(1, 2, 3)}, "K": jnp.ones((2, 3, 2, 3)), "c": jnp.ones((4, 3))}
    shapes = {"h": {1: jax.ShapeDtypeStruct((1, 5, 3), jnp.float32)},
              "K": jax.ShapeDtypeStruct((5, 3, 5, 3), jnp.float32), "c": jax.ShapeDtypeStruct((4, 3), jnp.float32)}
    out = rt.widen(state, shapes)
    assert out["h"][1].shape == (1, 5, 3) and out["K"].shape == (5, 3, 5, 3)
    np.testing.assert_array_equal(out["h"][1][:, :2], state["h"][1])
    assert float(jnp.abs(out["h"][1][:, 2:]).max()) == 0.0
    assert float(out["K"][:2, :, :2].min()) == 1.0 and float(out["K"][2:].max()) == 0.0
    assert out["c"] is state["c"]


def test_draws_upto_slices_only_the_dynamic_sources():
    xi = {("u", 1): jnp.ones((4, 3)), ("u", 2): jnp.ones((4, 30)), ("r", 2): jnp.ones((4, 1))}
    kind = {("u", 1): "static", ("u", 2): "dynamic", ("r", 2): "scalar"}
    out = rt.draws_upto(xi, kind, 12)
    assert out[("u", 2)].shape == (4, 12) and out[("u", 1)].shape == (4, 3) and out[("r", 2)].shape == (4, 1)


def _solves(spec_name, overrides, steps, samples, cuts):
    spec = load(SPECS / spec_name, overrides=overrides)
    mod = dmftc.compile_spec(spec).load_module()
    X, y = load_data(spec)
    return [{k: np.asarray(v) for k, v in mod.solve(X, y, dict(spec.hyper), steps=steps, samples=samples, seed=1,
                                                      segments=c).items()} for c in cuts]


@pytest.mark.parametrize("spec_name, overrides, steps, samples, cuts", [
    ("mlp_mup_relu.yaml", ("data.synthetic.P=4", "training.steps=7"), 7, 256, (1, 2, 8)),
    ("mlp_mup_linear.yaml", ("data.synthetic.P=4", "training.steps=7"), 7, 0, (1, 2, 8)),
    # each segment is one more XLA compile of the step (~2 s for a residual net, ~6 s for a transformer):
    # fewer cuts for these, the MLPs' runs cut at every slot
    ("resnet_depth_mup.yaml", ("data.synthetic.P=4", "training.steps=7"), 7, 256, (1, 2, 4)),
    ("transformer_mup.yaml", ("training.steps=3",), 3, 256, (1, 2)),
])
def test_a_segmented_sweep_gives_the_one_segment_numbers(spec_name, overrides, steps, samples, cuts):
    one, *cut = _solves(spec_name, overrides, steps, samples, cuts)
    for other in cut:
        assert other.keys() == one.keys()
        for name, ref in one.items():
            assert other[name].shape == ref.shape, name
            # round-off of a different summation order, grown over a few steps by the factors'
            # inverse square roots (tests/runtime/test_sweep_contractions.py): measured at most 2e-7
            # of the largest entry (the ReLU MLP's responses); a slot misplaced by the padding or a
            # draw column cut too early differs at O(1)
            tol = 1e-6
            if samples == 0 and name[0] in "AB":
                # exact Gaussian mode, ridge rcond = 1e-10: a response's components along a source's
                # (near-)null directions are not identifiable and carry round-off amplified by up to
                # 1/sqrt(rcond); measured 1.6e-4 of B1's largest entry across cuts while the kernels,
                # f and the loss, which those responses act on, agree to 1e-11
                tol = 1e-3
            # an array that vanishes by symmetry (a LayerNorm's <g>, zero under antithetic draws) holds
            # round-off only (1e-17): its scale is floored at 1e-9, far below any misplaced slot
            np.testing.assert_allclose(other[name], ref, rtol=0, atol=tol * max(np.abs(ref).max(), 1e-9),
                                       err_msg=name)

