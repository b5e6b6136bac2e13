"""Benchmarks of the MLP DMFT solver, measured side by side in one run (ratios printed).

    python benchmarks/bench_mlp.py [--quick]

(a) time to a DMFT solution of the reference spec (2 hidden ReLU layers, mup, gamma0 = 1,
    P = 16, 50 steps) vs the time to train the finite-network ensemble that estimates the same
    loss curve to the same precision (seeds needed = (sigma_one_network / SE_dmft)^2 at N = 1024;
    the finite-width bias is ignored, which favours the ensemble: the ratio is a lower bound);
(b) time per causal sweep vs the straightforward unvectorised implementation of the same
    algorithm (benchmarks/reference_dmft.py), on a small problem both can run;
(c) compile time (spec to generated module) for the MLP;
(d) time and peak memory of the generated solver as P x steps grows, with fitted exponents.
Nothing here is asserted: these machines are noisy; read the printed figures.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import dmftc  # noqa: E402
from dmftc.spec import load, load_data  # noqa: E402

REF_SPEC = ROOT / "specs" / "mlp_mup_relu.yaml"


def timed(func, *args, **kw):
    t0 = time.perf_counter()
    out = func(*args, **kw)
    return out, time.perf_counter() - t0


def bench_a(P: int, steps: int, samples: int, dmft_seeds: int, N: int, seeds: int) -> dict:
    spec = load(REF_SPEC, overrides=(f"data.synthetic.P={P}", f"training.steps={steps}"))
    prog = dmftc.compile_spec(spec)
    prog.solve(samples=samples, seed=0)                      # compile (jit) once
    runs, t_dmft = [], []
    for k in range(dmft_seeds):
        sol, dt = timed(prog.solve, samples=samples, seed=k)
        runs.append(sol.loss)
        t_dmft.append(dt)
    runs = np.array(runs)
    se_dmft = float(np.sqrt(np.mean(runs.var(0, ddof=1))))  # RMS over t of one solve's MC std
    dmftc.simulate(spec, sizes={"N": N}, seeds=2, record="none")  # compile
    sim, t_sim = timed(dmftc.simulate, spec, sizes={"N": N}, seeds=seeds, record="none")
    sigma = float(np.sqrt(np.mean(sim.loss.var(0, ddof=1))))  # one network's spread
    need = max(1.0, (sigma / se_dmft) ** 2)
    t_per_net = t_sim / seeds
    t_ens = need * t_per_net
    return {"P": P, "steps": steps, "samples": samples, "dmft_seconds": float(np.median(t_dmft)),
            "dmft_loss_se": se_dmft, "N": N, "finite_sigma_one_net": sigma, "seeds_needed": need,
            "seconds_per_network": t_per_net, "ensemble_seconds": t_ens,
            "ratio": t_ens / float(np.median(t_dmft))}


def bench_b(P: int, steps: int, samples: int) -> dict:
    from reference_dmft import solve_reference  # benchmarks/ is on sys.path when run as a script

    spec = load(REF_SPEC, overrides=(f"data.synthetic.P={P}", f"training.steps={steps}"))
    X, y = load_data(spec)
    prog = dmftc.compile_spec(spec)
    prog.solve(samples=samples)
    _, t_gen = timed(prog.solve, samples=samples)
    _, t_ref = timed(solve_reference, X, y, fn="relu", depth=2, gamma0=1.0, eta=0.5, steps=steps,
                     samples=samples, seed=0)
    return {"P": P, "steps": steps, "samples": samples, "generated_seconds": t_gen, "reference_seconds": t_ref,
            "ratio": t_ref / t_gen}


def bench_c(repeats: int = 3) -> dict:
    times = [timed(dmftc.compile_spec, REF_SPEC)[1] for _ in range(repeats)]
    return {"mlp_compile_seconds": min(times), "transformer_compile_seconds": None,
            "note": "the transformer DMFT is not compiled yet (attention issue)"}


_CHILD = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
import dmftc
from dmftc.spec import load
spec = load({spec!r}, overrides=("data.synthetic.P={P}", "training.steps={T}"))
prog = dmftc.compile_spec(spec)
t0 = time.perf_counter(); prog.solve(samples={M}); t1 = time.perf_counter()
prog.solve(samples={M}); t2 = time.perf_counter()
print(json.dumps({{"first": t1 - t0, "run": t2 - t1, "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def bench_d(grid, samples: int) -> dict:
    rows = []
    for P, T in grid:
        code = _CHILD.format(root=str(ROOT), spec=str(REF_SPEC), P=P, T=T, M=samples)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        rows.append({"P": P, "steps": T, "n": P * (T + 1), **json.loads(out.stdout.strip().splitlines()[-1])})
    n = np.array([r["n"] for r in rows], float)
    fit = lambda v: float(np.polyfit(np.log(n), np.log(np.array(v, float)), 1)[0])  # noqa: E731
    return {"rows": rows, "time_exponent_in_n": fit([r["run"] for r in rows]),
            "memory_exponent_in_n": fit([r["maxrss_mb"] for r in rows])}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller problems (a smoke run)")
    ap.add_argument("--json", help="also write the figures here")
    a = ap.parse_args()
    q = a.quick
    res = {
        "a": bench_a(P=8 if q else 16, steps=10 if q else 50, samples=1024 if q else 4096, dmft_seeds=3 if q else 4,
                     N=256 if q else 1024, seeds=4 if q else 8),
        "b": bench_b(P=4, steps=4 if q else 8, samples=64 if q else 256),
        "c": bench_c(),
        "d": bench_d([(4, 10), (8, 10), (8, 20)] if q else [(8, 15), (16, 15), (16, 31), (32, 31), (32, 63)],
                     samples=512 if q else 2048),
    }
    r = res["a"]
    print(f"(a) DMFT {r['dmft_seconds']:.2f} s (loss SE {r['dmft_loss_se']:.2e}) vs ensemble at N={r['N']}: "
          f"{r['seeds_needed']:.0f} networks x {r['seconds_per_network']:.3f} s = {r['ensemble_seconds']:.1f} s "
          f"-> ratio {r['ratio']:.1f}x (target >= 10x)")
    r = res["b"]
    print(f"(b) per sweep: generated {r['generated_seconds']:.3f} s vs unvectorised reference "
          f"{r['reference_seconds']:.2f} s -> ratio {r['ratio']:.0f}x (target >= 20x)")
    r = res["c"]
    print(f"(c) compile (spec -> module): MLP {r['mlp_compile_seconds']:.2f} s (target < 2 s); transformer: n/a")
    r = res["d"]
    print("(d) P  steps  n=P(T+1)  first call s  run s  peak MB")
    for row in r["rows"]:
        print(f"    {row['P']:3d} {row['steps']:5d} {row['n']:8d} {row['first']:12.2f} {row['run']:6.2f} "
              f"{row['maxrss_mb']:8.0f}")
    print(f"    fitted exponents in n: time {r['time_exponent_in_n']:.2f}, memory {r['memory_exponent_in_n']:.2f} "
          f"(algorithm: time n^3 + M n^2, memory n^2 + M n)")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
