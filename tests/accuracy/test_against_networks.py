"""The default solve against finite networks extrapolated to the limit, at every step (slow).

For each example spec: `prog.solve(rtol=spec.solver.rtol)` (what `dmftc solve` runs) and ensembles of
finite networks at three widths, extrapolated per step by weighted least squares to
mean_N(t) = a(t) + c(t) / N (their O(1/N) bias, docs/theory.md "Finite size"). The solve must lie within
3 combined standard errors (its own and the extrapolation's) plus its reported residual bias of a(t).
The extrapolation's error is a few 1e-4 of the loss, so a wrong coefficient or a biased solve fails.
"""

import numpy as np
import pytest

from dmftc import compile_spec, simulate
from dmftc.spec import load

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]

#: spec -> (widths, seeds per width)
CASES = {
    "mlp_mup_relu": ((128, 256, 512), 128),
    "mlp_mup_tanh": ((128, 256, 512), 128),
    "mlp_mup_linear": ((128, 256, 512), 128),
    "resnet_depth_mup": ((128, 256, 512), 128),
    "resnet_completep": ((128, 256, 512), 128),
    "transformer_mup": ((16, 32, 64), 128),
}


def extrapolated(spec, widths, seeds):
    """Per-step WLS fit of the seed mean over widths to a + c / N: a(t) and its standard error."""
    means, ses = [], []
    for N in widths:
        L = np.asarray(simulate(spec, sizes={"N": N}, seeds=seeds, record="none", dtype="float64").loss, float)
        means.append(L.mean(0))
        ses.append(L.std(0, ddof=1) / np.sqrt(seeds))
    means, ses = np.array(means), np.maximum(np.array(ses), 1e-300)
    A = np.stack([np.ones(len(widths)), 1.0 / np.array(widths, float)], 1)
    a, se_a = [], []
    for t in range(means.shape[1]):
        w = 1.0 / ses[:, t] ** 2
        cov = np.linalg.pinv(A.T @ (w[:, None] * A))
        a.append((cov @ A.T @ (w * means[:, t]))[0])
        se_a.append(np.sqrt(cov[0, 0]))
    return np.array(a), np.array(se_a)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_default_solve_within_its_error_of_extrapolated_networks(name):
    spec = load(ROOT / "specs" / f"{name}.yaml")
    prog = compile_spec(spec)
    sol = prog.solve(rtol=spec.solver.rtol or None, atol=spec.solver.atol or None)
    widths, seeds = CASES[name]
    a, se_a = extrapolated(spec, widths, seeds)
    se = sol.se("loss")
    res = np.abs(sol.errors.get("residual", {}).get("loss", np.zeros_like(a)))
    z = (sol.loss - a) / np.hypot(se, se_a)
    allowed = 3 * np.hypot(se, se_a) + res
    worst = int(np.argmax(np.abs(sol.loss - a) - allowed))
    errs = sol.meta["errors"]
    print(f"\n{name}: {errs.get('accuracy', errs['method'])}, {errs.get('samples')} draws x {errs.get('replicas', 1)}, "
          f"{sol.meta['seconds']:.0f} s; |DMFT - networks| / combined se: max {np.max(np.abs(z)):.2f}, "
          f"rms {np.sqrt(np.mean(z ** 2)):.2f}; networks' se max {np.max(se_a):.2g}, DMFT se max {np.max(se):.2g}")
    assert np.all(np.abs(sol.loss - a) <= allowed), (
        f"{name}: step {worst}: DMFT {sol.loss[worst]:.6g} +- {se[worst]:.2g} (residual {res[worst]:.2g}) vs "
        f"networks extrapolated {a[worst]:.6g} +- {se_a[worst]:.2g}; z max {np.max(np.abs(z)):.2f}")
