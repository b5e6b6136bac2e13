"""bench_perf.py (q): the gelu transformer's exact control-variate parts, by conditioning vs the polar rule.

A gelu solve reads E[phi(u_mu(t)) phi(u_nu(s))] and E[phi'(.) phi'(.)] of a Gaussian source for one
time row per step (closed_forms.pair_phi / pair_dphi, the exact parts of its control variates).
gelu has no closed pair form, but its Gaussian mean is closed, so conditioning on one side leaves a
one-dimensional rule (runtime.gauss_mean, 2 x 32 nodes with one evaluation of the mean per mirrored
pair); the polar rule it replaced takes 864 nodes of two activation evaluations each. Measured side
by side in one run: one row at the transformer_mup spec's size, and whole solves of the spec.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import dmftc
from dmftc.runtime import closed_forms as cf
from dmftc.spec import load, load_data

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "transformer_mup.yaml"


@contextlib.contextmanager
def polar_rule():
    """pair_phi / pair_dphi of gelu by the polar rule (CV_ORDER), as before conditioning, for the comparison."""
    saved = cf._has_mean
    cf._has_mean = lambda fn: False
    try:
        yield
    finally:
        cf._has_mean = saved


def _best(fn, repeats: int) -> float:
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - t0)
    return best


def bench_q(M: int, steps: int, repeats: int = 3) -> dict:
    spec = load(SPEC, overrides=(f"training.steps={steps}",))
    prog = dmftc.compile_spec(spec)
    mod = prog.load_module()
    X, y = load_data(spec)
    PS = int(np.prod(np.shape(X)[:2]))
    n = (steps + 1) * PS
    rng = np.random.default_rng(0)
    A = rng.standard_normal((n, 2 * PS)) / np.sqrt(2 * PS)
    K = A @ A.T  # a covariance of the source's history, as one row of it is read
    vi, vj, cov = jnp.asarray(np.diag(K)[:PS, None]), jnp.asarray(np.diag(K)[None, :]), jnp.asarray(K[:PS])
    res = {"PS": PS, "n": n, "M": M, "steps": steps}
    rows, losses = {}, {}
    for rule, ctx in (("polar", polar_rule), ("conditioning", contextlib.nullcontext)):
        with ctx():
            for name, pair in (("phi", cf.pair_phi("gelu")), ("dphi", cf.pair_dphi("gelu"))):
                f = jax.jit(pair)
                rows[rule, name] = np.asarray(f(vi, vj, cov))
                res[f"row_{name}_{rule}_ms"] = 1e3 * _best(lambda: f(vi, vj, cov), repeats)
            # a fresh module text per rule would be the same text: clear jit's cache so the solve retraces
            mod._solve.clear_cache()
            t0 = time.perf_counter()
            out = mod.solve(X, y, dict(spec.hyper), steps=steps, samples=M)
            losses[rule] = np.asarray(out["loss"])
            res[f"first_solve_{rule}_s"] = time.perf_counter() - t0
            res[f"solve_{rule}_s"] = _best(lambda: mod.solve(X, y, dict(spec.hyper), steps=steps, samples=M)["loss"], repeats)
    mod._solve.clear_cache()
    res["row_max_diff"] = max(float(np.max(np.abs(rows["polar", k] - rows["conditioning", k]))) for k in ("phi", "dphi"))
    res["loss_max_rel_diff"] = float(np.max(np.abs(losses["polar"] - losses["conditioning"])) / np.max(np.abs(losses["polar"])))
    return res


def print_q(r: dict) -> None:
    print(f"(q) gelu control variates of transformer_mup (P S = {r['PS']} positions, n = {r['n']}, M = {r['M']}, "
          f"{r['steps']} steps, float64), conditioning (gauss_mean) vs the polar rule:")
    for k in ("phi", "dphi"):
        p, c = r[f"row_{k}_polar_ms"], r[f"row_{k}_conditioning_ms"]
        print(f"    one time row of E[{k}(u) {k}(u')]: {p:.1f} ms vs {c:.1f} ms ({p / c:.1f}x)")
    p, c = r["solve_polar_s"], r["solve_conditioning_s"]
    print(f"    whole solve (compiled): {p:.2f} s vs {c:.2f} s ({p / c:.1f}x); first call with XLA compile "
          f"{r['first_solve_polar_s']:.1f} s vs {r['first_solve_conditioning_s']:.1f} s")
    print(f"    rows differ by <= {r['row_max_diff']:.1e}; loss curves by <= {r['loss_max_rel_diff']:.1e} of the largest loss")
