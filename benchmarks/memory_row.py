"""bench_perf.py (m): one solve at P x T = 4096 with 3 hidden layers, its time and peak memory.

Run in its own process (peak RSS from /proc/self/status VmHWM, which a fork does not carry
over from the parent), with XLA's buffer plan of the same solve at M and at 2M draws: their
difference is the memory per draw, the rest the kernels and factors (~ L n^2), and with the
process overhead they give the largest M whose solve fits the budget.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REF_SPEC = ROOT / "specs" / "mlp_mup_relu.yaml"


_MEM_CHILD = """
import json, sys, time
sys.path.insert(0, {root!r})


def peak_gib():
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) / 2**20 for l in fh if l.startswith("VmHWM:"))


import jax
import numpy as np
import dmftc
from dmftc.runtime import sweep as rt
from dmftc.spec import load, load_data
spec = load({spec!r}, overrides=("data.synthetic.P={P}", "training.steps={T}", "sizes.L={L}"))
mod = dmftc.compile_spec(spec).load_module()
X, y = load_data(spec)
base = peak_gib()
t0 = time.perf_counter()
loss = np.asarray(mod.solve(X, y, dict(spec.hyper), steps={T}, samples={M})["loss"])
seconds = time.perf_counter() - t0
rss = peak_gib()
Xj, yj, hp = rt.prepare(X, y, dict(spec.hyper), mod.HYPER, "float64")


def plan(M):
    mem = mod._solve.lower(Xj, yj, hp, jax.random.PRNGKey(0), 1e-10, steps={T}, samples=M).compile().memory_analysis()
    return (mem.temp_size_in_bytes + mem.argument_size_in_bytes + mem.output_size_in_bytes) / 2**30


bad = ~np.isfinite(loss)
print(json.dumps({{"seconds": seconds, "peak_rss_gib": rss, "import_gib": base, "plan_gib": plan({M}),
                  "plan2_gib": plan(2 * {M}), "first_nonfinite_t": int(np.argmax(bad)) if bad.any() else None,
                  "final_loss": float(loss[-1])}}))
"""


def bench_m(P: int, T: int, L: int, M: int, budget_gib: float = 24.0) -> dict:
    """One solve at P x T with L hidden layers in its own process: time, peak RSS, XLA's plan at M and 2M."""
    code = _MEM_CHILD.format(root=str(ROOT), spec=str(REF_SPEC), P=P, T=T, L=L, M=M)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    r = {"P": P, "T": T, "L": L, "M": M, "n": P * (T + 1), **json.loads(out.stdout.strip().splitlines()[-1])}
    per_draw = (r["plan2_gib"] - r["plan_gib"]) / M                  # the per-draw state and temporaries
    fixed = r["plan_gib"] - per_draw * M                              # kernels and factors, ~ L n^2
    overhead = r["peak_rss_gib"] - r["plan_gib"]                      # the process beyond XLA's buffers
    r.update(per_draw_bytes=per_draw * 2**30, fixed_gib=fixed,
             M_max=int((budget_gib - overhead - fixed) / per_draw), budget_gib=budget_gib)
    return r


def print_m(r: dict) -> None:
    n, M = r["n"], r["M"]
    state = "finite" if r["first_nonfinite_t"] is None else f"NaN/inf from t = {r['first_nonfinite_t']}"
    print(f"(m) P x T = {r['P']} x {r['T']} = {r['P'] * r['T']}, {r['L']} hidden layers (n = P(T+1) = {n}), M = {M} "
          f"draws, float64, its own process: {r['seconds']:.0f} s, peak RSS {r['peak_rss_gib']:.2f} GiB "
          f"(target <= {r['budget_gib']:.0f} GiB); XLA buffer plan {r['plan_gib']:.2f} GiB; loss {state}")
    print(f"    plan at M and 2M: {r['per_draw_bytes'] / 2**20:.2f} MiB per draw "
          f"(= {r['per_draw_bytes'] / (8 * n):.1f} history-length float64 vectors: the per-draw histories the "
          f"sweep reads every step, memoised phi(h) among them, and the whitened draws) + {r['fixed_gib']:.2f} GiB of "
          f"kernels and factors; M up to {r['M_max']} fits {r['budget_gib']:.0f} GiB")
    if r["peak_rss_gib"] <= r["budget_gib"]:
        print("    no chunking of the draws was needed: every step contracts each draw's whole history, so the "
              "histories stay resident and chunking cannot shrink them (there are no history-sized temporaries "
              "left to chunk: pointwise functions of histories are held, codegen.memo)")
