"""Cost of the depth-limit DMFT solver against the number of depth steps K (one run, printed).

    python benchmarks/bench_depth.py [--quick]
    python benchmarks/bench_depth.py --order SPEC [--Ks 2,4,8,16,32] [--seeds 4] [--samples 65536] [--steps 8]

Each K compiles its own module (the layer loop is unrolled at trace time); the time of a second
solve (after jit) is fitted against K on log-log axes: the target is an exponent <= 1.

--order measures the depth grid's order of convergence on SPEC: the seed-mean loss curve at each K,
the RMS over t of successive differences d_K = |X_K - X_{K/2}|, and log2(d_{K/2} / d_K) (1 for a
first-order grid, 1/2 for weak order 1/2), with the Monte Carlo noise of each difference.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import dmftc  # noqa: E402


def grid_order(spec_path: str, Ks: list[int], seeds: int, samples: int, steps: int) -> None:
    """Print the successive differences of the loss curve over the depth grid and their ratios."""
    means, noise = {}, {}
    for K in Ks:
        spec = dmftc.load(spec_path, overrides=("limit.L=inf", f"solver.depth_steps={K}", f"training.steps={steps}"))
        prog = dmftc.compile_spec(spec)
        curves = np.array([prog.solve(samples=samples, seed=k, depth_error=False).loss for k in range(seeds)])
        means[K], noise[K] = curves.mean(0), curves.std(0, ddof=1) / np.sqrt(seeds)
        print(f"K={K:3d}  loss(t) = {np.array2string(means[K], precision=5)}", flush=True)
    prev = None
    for a, b in zip(Ks, Ks[1:]):
        d = float(np.sqrt(np.mean((means[b] - means[a]) ** 2)))
        se = float(np.sqrt(np.mean(noise[a] ** 2 + noise[b] ** 2)))
        order = f"order log2(d_prev / d) = {np.log2(prev / d):5.2f}" if prev else ""
        print(f"K={b:3d}  d_K = RMS_t |X_K - X_K/2| = {d:.2e} (noise {se:.1e})  {order}")
        prev = d


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--order", metavar="SPEC", help="measure the depth grid's order on SPEC instead of the cost")
    ap.add_argument("--Ks", default="2,4,8,16,32")
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--samples", type=int, default=65536)
    ap.add_argument("--steps", type=int, default=8)
    a = ap.parse_args()
    if a.order:
        grid_order(a.order, [int(k) for k in a.Ks.split(",")], a.seeds, a.samples, a.steps)
        return
    Ks = (2, 4, 8) if a.quick else (2, 4, 8, 16, 32)
    samples = 2048 if a.quick else 8192
    rows = []
    for K in Ks:
        spec = dmftc.load(ROOT / "specs" / "resnet_completep.yaml",
                          overrides=("limit.L=inf", f"solver.depth_steps={K}", "training.steps=10"))
        prog = dmftc.compile_spec(spec)
        t0 = time.perf_counter()
        prog.solve(samples=samples, depth_error=False)
        t1 = time.perf_counter()
        prog.solve(samples=samples, depth_error=False)
        t2 = time.perf_counter()
        rows.append((K, t1 - t0, t2 - t1))
        print(f"K={K:3d}  first call (with jit) {t1 - t0:6.2f} s   solve {t2 - t1:6.2f} s", flush=True)
    K = np.array([r[0] for r in rows], float)
    slope = np.polyfit(np.log(K), np.log([r[2] for r in rows]), 1)[0]
    print(f"fitted solve time ~ K^{slope:.2f} (target: no worse than K^1)")


if __name__ == "__main__":
    main()
