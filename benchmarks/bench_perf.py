"""Performance of the DMFT solve, measured side by side in one run (figures printed, nothing asserted).

    python benchmarks/bench_perf.py [--quick] [--out benchmarks/out] [--json FILE]

(d) achieved FLOP rate of the dominant contractions, the per-step rows over draws `rt.kernel_row`
    (E[X(t) X(s)], 2 M P n flops), `rt.ibp_row` (E[F xi^T] Li, 2 M P n + 2 P n^2) and `rt.causal_sum`
    (2 M P n), timed under jit at the reference size P = 16, T = 50, M = 4096 on cold operands (as
    a solve reads them: benchmarks/contractions.py), before (einsum forms) and after (flat
    matmuls) side by side, against this machine's matmul peak and against the bandwidth roofline
    (2 P flops per history element streamed); the cost of contracting only the causal half; and
    where one whole solve's time goes.
(e) time and peak memory of `Program.solve` as P x T grows, each size in its own process
    (peak RSS, and XLA's own buffer plan of the solve), a table, a log-log plot (--out), and
    the exponents fitted in n = P (T + 1) against the algorithm's (time n^3 + M n^2, memory n^2 + M n).
(f) float32 vs float64 on the reference spec (mlp_mup_relu, P = 16, 50 steps), in distribution
    (a float32 solve draws other Gaussian numbers than a float64 one): the difference of the mean
    loss curves over seeds against its standard error (a bias of float32), the ratio of the
    spreads, and the time ratio.
(m) memory at P x T = 4096 with 3 hidden layers: time, peak RSS and XLA's buffer plan of one solve
    (its own process), the bytes per draw, and the largest M whose plan fits 24 GiB.
(q) the gelu transformer's exact control-variate rows by conditioning (runtime.gauss_mean) vs the
    polar rule they replaced, one row and whole transformer_mup solves (benchmarks/gelu_rule.py).
(g) the draws split over 2 host CPU devices (XLA_FLAGS=--xla_force_host_platform_device_count=2):
    time and loss difference against one device, in units of the same standard error.
These machines are shared and noisy: read the figures as what one run measured.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402

import dmftc  # noqa: E402
from dmftc.runtime import sweep as rt  # noqa: E402
from dmftc.spec import load, load_data  # noqa: E402

import contractions as ct  # noqa: E402  (benchmarks/ is on sys.path when run as a script)
from gelu_rule import bench_q, print_q  # noqa: E402
from memory_row import bench_m, print_m  # noqa: E402

REF_SPEC = ROOT / "specs" / "mlp_mup_relu.yaml"
REF = {"P": 16, "T": 50, "M": 4096}
CONTRACTIONS = ("kernel_row", "ibp_row", "causal_sum")  # the O(M P n) per-step contractions over draws


# ------------------------------------------------------------------ timing
def best_time(fn, *args, repeats: int = 5) -> float:
    """Best wall time of a jitted call (compiled and warmed first), waiting for the result."""
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return min(times)


# ------------------------------------------------------------------ (d)
def calls_per_step(prog) -> dict:
    """How many kernel_row / ibp_row calls one time step of the generated solver makes (counted at trace)."""
    mod = prog.load_module()
    X, y = load_data(prog.spec)
    Xj, yj, hp = rt.prepare(X, y, dict(prog.spec.hyper), mod.HYPER, "float64")
    counts = {name: 0 for name in CONTRACTIONS}
    saved = {name: getattr(rt, name) for name in counts}

    def counting(name):
        def call(*a, **kw):
            counts[name] += 1
            return saved[name](*a, **kw)
        return call

    try:
        for name in counts:
            setattr(rt, name, counting(name))
        # A fresh trace (steps=1 is not used elsewhere): the fori_loop body is traced once.
        jax.jit(mod._solve.__wrapped__, static_argnames=("steps", "samples")).lower(
            Xj, yj, hp, jax.random.PRNGKey(0), 1e-10, steps=1, samples=2)
    finally:
        for name, fn in saved.items():
            setattr(rt, name, fn)
    return counts


def contraction_rates(P: int, T: int, M: int, dtype, forms: tuple[str, ...], rounds: int) -> dict:
    """Cold seconds of each contraction in each form, the matmul peak and the streaming bandwidth.

    Measured in alternation, each keeping its best round, so that a shared machine's load
    (other jobs) weighs on every side of a ratio alike.
    """
    sets = ct.operand_sets(P, T, M, dtype, ct.copies_for(P, T, M, dtype))
    jitted = {f: ct.calls(ct.BEFORE if f == "before" else ct.AFTER, P) for f in forms}
    best: dict = {"peak_gflops": 0.0, "stream_gib_s": 0.0, "copies": len(sets)}
    for _ in range(rounds):
        best["peak_gflops"] = max(best["peak_gflops"], ct.matmul_peak(dtype))
        best["stream_gib_s"] = max(best["stream_gib_s"], ct.stream_rate(sets))
        for form, table in jitted.items():
            for name, (fn, keys) in table.items():
                sec = ct.cold_time(fn, [tuple(s[k] for k in keys) for s in sets], rounds=1)
                best[f"{name}:{form}"] = min(best.get(f"{name}:{form}", sec), sec)
        # the two-core matmul loses most to other jobs' load: sampled again after the contractions
        best["peak_gflops"] = max(best["peak_gflops"], ct.matmul_peak(dtype))
    best["work"] = ct.work(P, T, M, jnp.dtype(dtype).itemsize)
    best["causal_half"] = ct.causal_half(sets, P, T) if dtype == jnp.float64 else None
    best["itemsize"] = jnp.dtype(dtype).itemsize
    best["history_mb"] = M * (T + 1) * P * best["itemsize"] / 2**20
    return best


def bench_d(P: int, T: int, M: int, rounds: int = 3) -> dict:
    res = {"P": P, "T": T, "M": M, "load_before": os.getloadavg()[0],
           "float64": contraction_rates(P, T, M, jnp.float64, ("before", "after"), rounds),
           "float32": contraction_rates(P, T, M, jnp.float32, ("after",), rounds)}
    spec = load(REF_SPEC, overrides=(f"data.synthetic.P={P}", f"training.steps={T}"))
    prog = dmftc.compile_spec(spec)
    res["calls_per_step"] = calls_per_step(prog)
    prog.solve(samples=M)  # compiles
    res["solve_seconds"] = min(prog.solve(samples=M).meta["seconds"] for _ in range(3))
    res["contraction_seconds"] = (T + 1) * sum(res["calls_per_step"][k] * res["float64"][f"{k}:after"]
                                               for k in res["calls_per_step"])
    res["breakdown"] = solve_breakdown(prog, P, T, M)
    res["before_after"] = {f"P={p} T={tt} M={m}": solve_before_after(p, tt, m)
                           for p, tt, m in ((4, 8, 256), (P // 2, T // 2, M // 4), (P, T, M))}
    return res


def solve_before_after(P: int, T: int, M: int) -> dict:
    """A whole float64 solve of the reference spec with the einsum contractions and with the runtime's."""
    spec = load(REF_SPEC, overrides=(f"data.synthetic.P={P}", f"training.steps={T}"))
    mod = dmftc.compile_spec(spec).load_module()
    Xj, yj, hp = rt.prepare(*load_data(spec), dict(spec.hyper), mod.HYPER, "float64")
    return ct.solve_before_after(mod, (Xj, yj, hp, jax.random.PRNGKey(0), 1e-10), T, M)


def solve_breakdown(prog, P: int, T: int, M: int) -> dict | None:
    """Where one float64 solve's time goes, by kind of XLA operation (profiler trace)."""
    mod = prog.load_module()
    X, y = load_data(prog.spec)
    Xj, yj, hp = rt.prepare(X, y, dict(prog.spec.hyper), mod.HYPER, "float64")
    key = jax.random.PRNGKey(0)
    text = mod._solve.lower(Xj, yj, hp, key, 1e-10, steps=T, samples=M).compile().as_text()
    return ct.solve_breakdown(lambda: mod._solve(Xj, yj, hp, key, 1e-10, steps=T, samples=M), text,
                              M * (T + 1) * P)


# ------------------------------------------------------------------ (e)
_CHILD = """
import json, resource, sys, time
sys.path.insert(0, {root!r})


def peak_mb():
    # VmHWM, the peak RSS of this process image. ru_maxrss is the same figure on a process started
    # from a small parent, but Linux carries the forking parent's peak across fork + exec into it
    # (this benchmark's parent is past 1 GB by now), so it is the fallback only.
    try:
        with open("/proc/self/status") as fh:
            return next(int(l.split()[1]) / 1024 for l in fh if l.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


import jax
import dmftc
from dmftc.runtime import sweep as rt
from dmftc.spec import load, load_data
spec = load({spec!r}, overrides=("data.synthetic.P={P}", "training.steps={T}"))
base = peak_mb()
prog = dmftc.compile_spec(spec)
t0 = time.perf_counter(); prog.solve(samples={M}); t1 = time.perf_counter()
prog.solve(samples={M}); t2 = time.perf_counter()
mod = prog.load_module()
X, y = load_data(spec)
Xj, yj, hp = rt.prepare(X, y, dict(spec.hyper), mod.HYPER, "float64")
mem = mod._solve.lower(Xj, yj, hp, jax.random.PRNGKey(0), 1e-10, steps={T}, samples={M}).compile().memory_analysis()
xla = (mem.temp_size_in_bytes + mem.argument_size_in_bytes + mem.output_size_in_bytes) / 2**20
print(json.dumps({{"first": t1 - t0, "run": t2 - t1, "import_mb": base, "xla_mb": xla,
                  "maxrss_mb": peak_mb()}}))
"""


def fit_exponent(n, v) -> float:
    """Least-squares slope of log v against log n (NaN unless every v > 0)."""
    v = np.asarray(v, float)
    if not np.all(v > 0):
        return float("nan")
    return float(np.polyfit(np.log(np.asarray(n, float)), np.log(v), 1)[0])


def bench_e(grid, M: int) -> dict:
    rows = []  # one run per size: the largest take tens of seconds
    for P, T in grid:
        code = _CHILD.format(root=str(ROOT), spec=str(REF_SPEC), P=P, T=T, M=M)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        rows.append({"P": P, "T": T, "n": P * (T + 1), **json.loads(out.stdout.strip().splitlines()[-1])})
    n = np.array([r["n"] for r in rows], float)
    model_t, model_m = n**3 + M * n**2, n**2 + M * n  # unit constants: the slope the model alone gives
    return {"M": M, "rows": rows,
            "time_exponent": fit_exponent(n, [r["run"] for r in rows]),
            "maxrss_exponent": fit_exponent(n, [r["maxrss_mb"] for r in rows]),
            "maxrss_above_import_exponent": fit_exponent(n, [r["maxrss_mb"] - r["import_mb"] for r in rows]),
            "xla_memory_exponent": fit_exponent(n, [r["xla_mb"] for r in rows]),
            "model_time_exponent": fit_exponent(n, model_t), "model_memory_exponent": fit_exponent(n, model_m),
            # the slope between the two largest sizes, where fixed per-call overheads matter least
            "time_exponent_last": fit_exponent(n[-2:], [r["run"] for r in rows[-2:]]),
            "xla_memory_exponent_last": fit_exponent(n[-2:], [r["xla_mb"] for r in rows[-2:]]),
            "model_time_exponent_last": fit_exponent(n[-2:], model_t[-2:]),
            "model_memory_exponent_last": fit_exponent(n[-2:], model_m[-2:])}


def plot_e(res: dict, out_dir: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    rows = res["rows"]
    n = np.array([r["n"] for r in rows], float)
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(10, 4))
    series_t = [("run", "solve time (s)", "o-")]
    series_m = [("maxrss_mb", "peak RSS (MB)", "o-"), ("above_import_mb", "peak RSS above import (MB)", "^-"),
                ("xla_mb", "XLA buffers (MB)", "s-")]
    rows = [dict(r, above_import_mb=r["maxrss_mb"] - r["import_mb"]) for r in rows]
    for ax, series, ylabel in ((ax_t, series_t, "seconds"), (ax_m, series_m, "MB")):
        for key, label, style in series:
            v = np.array([r[key] for r in rows], float)
            ax.loglog(n, v, style, label=f"{label}: slope {fit_exponent(n, v):.2f}")
        ax.set_xlabel("n = P (T + 1)")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
    M = res["M"]
    models = ((ax_t, n**3 + M * n**2, "n^3 + M n^2", "run"), (ax_m, n**2 + M * n, "n^2 + M n", "xla_mb"))
    for ax, model, name, key in models:
        ref = np.array([r[key] for r in rows], float)
        ax.loglog(n, model * ref[-1] / model[-1], "k--", label=f"{name} (M = {M}), through the last point")
        ax.legend(fontsize=7)
        ax.set_xticks(n, [str(int(v)) for v in n])  # after the last loglog, which resets the ticks
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    fig.suptitle("mlp_mup_relu DMFT solve: scaling in n = P (T + 1)")
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "bench_perf_scaling.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# ------------------------------------------------------------------ (f)
def bench_f(P: int, T: int, M: int, seeds: int) -> dict:
    """float32 against float64 in distribution: `seeds` solves in each precision.

    A float32 solve draws other Gaussian numbers than a float64 solve of the same seed (jax.random
    draws per dtype), so one pair differs by the Monte Carlo error itself; what float32 may not
    do is move the mean (a bias) or widen the spread. Both are measured against the Monte Carlo SE.
    """
    spec = load(REF_SPEC, overrides=(f"data.synthetic.P={P}", f"training.steps={T}"))
    mod = dmftc.compile_spec(spec).load_module()
    X, y = load_data(spec)
    hp = dict(spec.hyper)

    def solve(dtype, seed):
        return np.asarray(mod.solve(X, y, hp, steps=T, samples=M, seed=seed, dtype=dtype)["loss"], float)

    res = {"P": P, "T": T, "M": M, "seeds": seeds}
    curves = {}
    for dtype in ("float64", "float32"):
        curves[dtype] = np.array([solve(dtype, k) for k in range(1, seeds + 1)])
        res[f"seconds_{dtype}"] = best_time(lambda: solve(dtype, 0), repeats=3)
    c64, c32 = curves["float64"], curves["float32"]
    with float64_draws():  # the same Gaussian numbers in both precisions: the difference is round-off alone
        twin = {dt: np.array([solve(dt, k) for k in range(1, seeds + 1)]) for dt in ("float64", "float32")}
    res["same_draws_max_diff"] = float(np.nanmax(np.abs(twin["float32"] - twin["float64"])))
    se = c64.std(0, ddof=1)  # Monte Carlo error of one float64 solve at each t
    finite = np.isfinite(c32).all(0)
    diff = c32.mean(0) - c64.mean(0)
    se_diff = np.sqrt(c32.var(0, ddof=1) / seeds + c64.var(0, ddof=1) / seeds)
    z = _over_se(np.abs(diff), se_diff)
    res.update(se=se.tolist(), loss64=c64.mean(0).tolist(), loss32=c32.mean(0).tolist(),
               first_nonfinite_t=int(np.argmin(finite)) if not finite.all() else None,
               max_z=float(np.nanmax(z)), rms_bias=float(np.sqrt(np.nanmean(diff[1:] ** 2))),
               rms_se=float(np.sqrt(np.mean(se[1:] ** 2))),
               spread_ratio=float(np.sqrt(np.nanmean(c32.var(0, ddof=1)[1:]) / np.mean(c64.var(0, ddof=1)[1:]))),
               time_ratio_64_over_32=res["seconds_float64"] / res["seconds_float32"])
    return res


@contextlib.contextmanager
def float64_draws():
    """Solves draw their Gaussian numbers in float64 and round them to the solve's dtype."""
    draws = rt.gaussian_draws
    rt.gaussian_draws = lambda key, M, dims, dtype, antithetic=True: tuple(
        x.astype(dtype) for x in draws(key, M, dims, jnp.float64, antithetic))
    jax.clear_caches()  # solvers traced before would keep their own draws
    try:
        yield
    finally:
        rt.gaussian_draws = draws
        jax.clear_caches()


def _over_se(diff: np.ndarray, se: np.ndarray) -> np.ndarray:
    """|diff| in units of the Monte Carlo SE; steps without sampling noise (SE = 0: t = 0) count as 0."""
    return np.where(se > 0, diff / np.where(se > 0, se, 1.0), 0.0)


def _last_within(ratio: np.ndarray, k: float) -> int:
    """The last t such that every step up to it has |diff| <= k SE (-1 if t = 0 already fails)."""
    bad = np.where(~(ratio <= k))[0]  # NaN counts as outside
    return int(bad[0] - 1) if bad.size else len(ratio) - 1


# ------------------------------------------------------------------ (g)
_SHARD_CHILD = """
import json, sys, time
sys.path.insert(0, {root!r})
import jax
import dmftc
from dmftc.spec import load
prog = dmftc.compile_spec(load({spec!r}, overrides=("data.synthetic.P={P}", "training.steps={T}")))
sol = prog.solve(samples={M})
seconds = min(prog.solve(samples={M}).meta["seconds"] for _ in range(3))
print(json.dumps({{"devices": jax.device_count(), "seconds": seconds, "loss": sol.loss.tolist()}}))
"""


def bench_g(P: int, T: int, M: int, se: list[float]) -> dict:
    out = {}
    for n_dev in (1, 2):
        env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=f"--xla_force_host_platform_device_count={n_dev}")
        code = _SHARD_CHILD.format(root=str(ROOT), spec=str(REF_SPEC), P=P, T=T, M=M)
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
        out[n_dev] = json.loads(proc.stdout.strip().splitlines()[-1])
    d = np.abs(np.array(out[2]["loss"]) - np.array(out[1]["loss"]))
    ratio = _over_se(d, np.array(se))
    return {"seconds_1": out[1]["seconds"], "seconds_2": out[2]["seconds"], "max_abs_diff": float(d.max()),
            "max_diff_over_se": float(ratio.max()), "last_t_diff_below_1e-10": _last_within(d, 1e-10)}


# ------------------------------------------------------------------ report
def print_d(r: dict) -> None:
    P = r["P"]
    print(f"(d) the per-step contractions over draws at P={P}, T={r['T']}, M={r['M']}, each call on cold operands "
          f"(load average {r['load_before']:.1f} on {os.cpu_count()} cores; best of 3 rounds; the peak is the best "
          f"of 6 samples, and a loaded machine takes more from the two-thread matmul than from the contractions):")
    for dt in ("float64", "float32"):
        c = r[dt]
        peak, bw = c["peak_gflops"], c["stream_gib_s"]
        roof = min(peak, bw * 2**30 * 2 * P / c["itemsize"] / 1e9)  # 2P flops per element of the history
        print(f"    {dt}: matmul peak {peak:.1f} GFLOP/s; reading a cold {c['history_mb']:.0f} MB history "
              f"({c['copies']} copies cycled): {bw:.1f} GiB/s -> bandwidth roofline at 2P flops per element: "
              f"{roof:.1f} GFLOP/s = {100 * roof / peak:.0f}% of peak")
        for name in ct.NAMES:
            flops, nbytes = c["work"][name]
            cells = []
            for form in ("before", "after"):
                if f"{name}:{form}" in c:
                    sec = c[f"{name}:{form}"]
                    cells.append(f"{form} {sec * 1e3:6.2f} ms {flops / sec / 1e9:5.1f} GFLOP/s "
                                 f"({100 * flops / sec / 1e9 / peak:3.0f}% peak, "
                                 f"{100 * nbytes / sec / 2**30 / bw:3.0f}% of streaming)")
            gain = (f" -> x{c[f'{name}:before'] / c[f'{name}:after']:.2f}" if f"{name}:before" in c else "")
            print(f"      {name:10s} {flops / 1e6:6.1f} MFLOP: " + "; ".join(cells) + gain)
    h = r["float64"]["causal_half"]
    print(f"    the causal half: over a sweep half the slots contracted hold zeros (s > t); contracting only the first "
          f"half costs {h['half_seconds'] * 1e3:.2f} ms vs {h['full_seconds'] * 1e3:.2f} ms for all (x"
          f"{h['full_seconds'] / h['half_seconds']:.2f}, not x2): XLA copies the sliced rows before the matmul")
    calls = ", ".join(f"{k} x{v}" for k, v in r["calls_per_step"].items())
    print(f"    per time step the solver calls {calls}: at the cold float64 times that is "
          f"{r['contraction_seconds']:.2f} s of a {r['solve_seconds']:.2f} s float64 solve "
          f"({100 * r['contraction_seconds'] / r['solve_seconds']:.0f}%)")
    ba = "; ".join(f"{k}: {v['before']:.3f} s -> {v['after']:.3f} s (x{v['before'] / v['after']:.2f})"
                   for k, v in r["before_after"].items())
    print(f"    whole float64 solves, einsum contractions -> flat matmuls (interleaved, best of 3): {ba}")
    b = r["breakdown"]
    if b:
        tot = sum(b.values())
        parts = ", ".join(f"{k} {v:.2f} s ({100 * v / tot:.0f}%)" for k, v in sorted(b.items(), key=lambda kv: -kv[1]))
        print(f"    one float64 solve by kind of XLA operation (profiler): {parts}; phi(h) and dphi(u) r of whole "
              f"histories are held (codegen.memo), so history-sized pointwise work is left only where segments "
              f"widen (padding) and draws are sliced")


def print_e(r: dict, plot: Path) -> None:
    print(f"(e) Program.solve as P x T grows (M={r['M']}, float64, each size in its own process):")
    print("      P    T  n=P(T+1)  first call s  run s  peak RSS MB  (above import)  XLA buffers MB")
    for row in r["rows"]:
        print(f"    {row['P']:3d} {row['T']:4d} {row['n']:9d} {row['first']:13.2f} {row['run']:6.2f} "
              f"{row['maxrss_mb']:12.0f} {row['maxrss_mb'] - row['import_mb']:15.0f} {row['xla_mb']:15.1f}")
    print(f"    fitted exponents in n: time {r['time_exponent']:.2f} (model n^3 + M n^2 over the same n: "
          f"{r['model_time_exponent']:.2f}); memory: XLA buffers {r['xla_memory_exponent']:.2f}, peak RSS "
          f"{r['maxrss_exponent']:.2f}, RSS above import {r['maxrss_above_import_exponent']:.2f} "
          f"(model n^2 + M n: {r['model_memory_exponent']:.2f})")
    print(f"    between the two largest sizes: time {r['time_exponent_last']:.2f} (model "
          f"{r['model_time_exponent_last']:.2f}), XLA buffers {r['xla_memory_exponent_last']:.2f} "
          f"(model {r['model_memory_exponent_last']:.2f})")
    print(f"    plot: {plot}")


def print_f(r: dict) -> None:
    se = np.array(r["se"])
    nonfinite = f"; NaN/inf from t = {r['first_nonfinite_t']}" if r["first_nonfinite_t"] is not None else ""
    print(f"(f) float32 vs float64 in distribution, reference spec P={r['P']}, T={r['T']}, M={r['M']}, "
          f"{r['seeds']} solves each: Monte Carlo SE of one float64 solve {se[1:].min():.1e} .. {se.max():.1e} "
          f"(RMS over t {r['rms_se']:.1e}){nonfinite}")
    print(f"    mean float32 - mean float64: RMS over t {r['rms_bias']:.1e}, largest {r['max_z']:.2f} SE of the "
          f"difference (no bias resolved if ~< 3); spread float32 / float64 {r['spread_ratio']:.2f}; "
          f"on the same draws max |L32 - L64| {r['same_draws_max_diff']:.1e} (round-off alone); "
          f"time float64 / float32 = {r['time_ratio_64_over_32']:.2f} ({r['seconds_float64']:.2f} s vs "
          f"{r['seconds_float32']:.2f} s)")


def print_g(r: dict) -> None:
    print(f"(g) draws split over 2 host devices: {r['seconds_2']:.2f} s vs {r['seconds_1']:.2f} s on one "
          f"(ratio {r['seconds_1'] / r['seconds_2']:.2f}); max |L2 - L1| {r['max_abs_diff']:.1e} = "
          f"{r['max_diff_over_se']:.2f} SE; below 1e-10 up to t = {r['last_t_diff_below_1e-10']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller problems (a smoke run)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "out"), help="directory for the plot")
    ap.add_argument("--json", help="also write every figure here")
    a = ap.parse_args()
    ref = {"P": 8, "T": 10, "M": 512} if a.quick else REF
    grid = [(4, 7), (8, 7), (8, 15)] if a.quick else [(8, 15), (16, 15), (16, 31), (32, 31), (32, 63)]
    res = {"d": bench_d(**ref)}
    print_d(res["d"])
    res["e"] = bench_e(grid, M=256 if a.quick else 2048)
    print_e(res["e"], plot_e(res["e"], Path(a.out)))
    res["m"] = bench_m(**({"P": 16, "T": 16, "L": 3, "M": 256} if a.quick else {"P": 64, "T": 64, "L": 3, "M": 4096}))
    print_m(res["m"])
    res["f"] = bench_f(**ref, seeds=3 if a.quick else 4)
    print_f(res["f"])
    res["g"] = bench_g(**ref, se=res["f"]["se"])
    print_g(res["g"])
    res["q"] = bench_q(**({"M": 64, "steps": 6} if a.quick else {"M": 256, "steps": 20}))
    print_q(res["q"])
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
