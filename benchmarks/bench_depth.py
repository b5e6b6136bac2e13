"""Cost of the depth-limit DMFT solver against the number of depth steps K (one run, printed).

    python benchmarks/bench_depth.py [--quick]

Each K compiles its own module (the layer loop is unrolled at trace time); the time of a second
solve (after jit) is fitted against K on log-log axes: the target is an exponent <= 1.
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
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
