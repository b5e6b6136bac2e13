"""The reported bias tracks the real one (slow): solves at M draws against a solve with 16x the draws.

The real bias of the plain solve at M is E[X_M] - X, measured as the mean of R solves at M minus a
reference at 16 M (itself bias-corrected, with its seed spread). The error analysis reports the
bias X_M/2 - X_M and the residual left after removing it; together they estimate E[X_M] - X. At
each step that difference must be within 3 combined standard errors, and the real bias must be
resolved (3 se) at some step, so an estimate of zero fails. Each case is a regime where the bias is
visible above the noise of R solves: n / M about 0.1, with n = (T + 1) x sites large enough.
"""

import numpy as np
import pytest

from dmftc import compile_spec
from dmftc.spec import load

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]

#: name -> (spec, overrides, M, seeds R, reference seeds, whether R seeds resolve the real bias). The
#: transformer's solve is noisier (attention has no control variates yet): 48 seeds do not resolve its
#: bias (0.5-1.3 se, measured), so there the estimate is only held to consistency.
CASES = {
    "mlp": ("mlp_mup_relu", ("sizes.L=3", "hyper.gamma0=0.5", "training.steps=5"), 512, 64, 4, True),
    "resnet": ("resnet_depth_mup", ("training.steps=5", "data.synthetic.P=16"), 1024, 96, 3, True),
    "transformer": ("transformer_mup", ("training.steps=4", "data.synthetic.P=4"), 512, 48, 3, False),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_reported_bias_tracks_the_real_bias(case):
    name, sets, M, R, refR, resolves = CASES[case]
    prog = compile_spec(load(ROOT / "specs" / f"{name}.yaml", overrides=sets))
    sols = [prog.solve(samples=M, seed=10 + k, depth_error=False) for k in range(R)]
    refs = np.array([prog.solve(samples=16 * M, seed=999 + k, depth_error=False).loss for k in range(refR)])
    full = np.array([s.loss + s.errors["bias"]["loss"] for s in sols])[:, 1:]
    told = np.array([s.errors["bias"]["loss"] + s.errors["residual"]["loss"] for s in sols])[:, 1:]
    ref, ref_se = refs.mean(0)[1:], refs.std(0, ddof=1)[1:] / np.sqrt(refR)
    real, real_se = full.mean(0) - ref, np.hypot(full.std(0, ddof=1) / np.sqrt(R), ref_se)
    z = (told.mean(0) - real) / np.hypot(real_se, told.std(0, ddof=1) / np.sqrt(R))
    assert not resolves or np.max(np.abs(real) / real_se) > 3, f"{case}: real bias not resolved: {real} +- {real_se}"
    assert np.all(np.abs(z) < 3), f"{case}: reported bias {told.mean(0)} vs real {real} +- {real_se} (z {z})"
