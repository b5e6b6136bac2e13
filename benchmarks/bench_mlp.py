"""Benchmarks of the MLP DMFT solver, measured side by side in one run (ratios printed).

    python benchmarks/bench_mlp.py [--quick] [--json FILE]

(a) time to an estimate of the reference spec's loss curve (2 hidden ReLU layers, mup,
    gamma0 = 1, P = 16, 50 steps) to a given RMS error eps, by a DMFT solve and by an ensemble
    of finite networks, at several eps: the truth and the ensemble's O(1/N) bias are fitted
    from networks of several widths, the ensemble's width is chosen so that its bias is within
    the budget and its seed count so that its noise is (benchmarks/equal_precision.py); both
    timed where feasible, extrapolated along their fitted cost laws where not (labelled);
(b) time per causal sweep vs the straightforward unvectorised implementation of the same
    algorithm (benchmarks/reference_dmft.py), at three sizes up to the reference spec's P and steps;
(c) compile time (spec to generated module) for the MLP and the transformer examples;
(e) time and peak memory of the generated solver as P x steps grows, with fitted exponents
    (benchmarks/bench_perf.py has (d), the full (e) with its plot, and the memory row (m)).
Nothing here is asserted: these machines are noisy; read the printed figures.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import dmftc  # noqa: E402
import equal_precision as ep  # noqa: E402  (benchmarks/ is on sys.path when run as a script)
from dmftc.spec import load, load_data  # noqa: E402

REF_SPEC = ROOT / "specs" / "mlp_mup_relu.yaml"
MAX_DRAWS = 65536  # a reference-size float32 solve at 65536 draws peaks at 3.4 GB RSS (measured); kept below the shared machine's share


def timed(func, *args, **kw):
    t0 = time.perf_counter()
    out = func(*args, **kw)
    return out, time.perf_counter() - t0


def network_stats(spec, widths: dict, seed: int = 7) -> dict:
    """N -> seed mean and one network's variance of the loss curve, seeds S and seconds per network."""
    out = {}
    for N, S in widths.items():
        sim = dmftc.simulate(spec, sizes={"N": N}, seeds=S, record="none", seed=seed)
        L = np.asarray(sim.loss, float)
        out[N] = {"mean": L.mean(0), "var": L.var(0, ddof=1), "S": S, "seconds_per_net": sim.timings["run"] / S}
    return out


# The DMFT runs in float32, as the networks do: on the same draws its loss curve differs from
# float64 by 1.7e-5 / 3.2e-6 (RMS over t, two seeds, M = 4096) and 1.3e-6 / 6.6e-7 (M = 16384),
# far below every eps benchmarked, and `bench_perf.py` (f) resolves no bias in distribution;
# it is 2.1x faster. Before the symmetric root of the factors the round-off was 1.5e-3.
DMFT_DTYPE = "float32"


def compiled_solver(mod, spec, T: int, M: int):
    """The generated solver compiled ahead of time at M draws: seed -> loss curve (no compile in its time)."""
    from dmftc.runtime import sweep as rt

    X, y = load_data(spec)
    Xj, yj, hp = rt.prepare(X, y, dict(spec.hyper), mod.HYPER, DMFT_DTYPE)
    key = jax.random.PRNGKey(0)
    c = mod._solve.lower(Xj, yj, hp, key, 1e-10, steps=T, samples=M).compile()
    return lambda seed: np.asarray(c(Xj, yj, hp, jax.random.PRNGKey(seed), 1e-10)["loss"])


def dmft_runs(mod, spec, T: int, M: int, seeds) -> dict:
    """Loss curves of independent solves at M draws, their seconds, and how many diverged."""
    solve = compiled_solver(mod, spec, T, M)
    curves, seconds, bad = [], [], 0
    for k in seeds:
        loss, dt = timed(solve, k)
        seconds.append(dt)
        if ep.failed(loss):
            bad += 1
        else:
            curves.append(loss)
    return {"curves": curves, "seconds": float(np.median(seconds)), "failed": bad, "runs": len(seeds)}


def bench_a(P: int, T: int, widths: dict, ladder: dict, eps_list: tuple, cap: float) -> dict:
    """Time to an estimate of the loss curve with RMS error eps: the DMFT against the ensemble."""
    spec = load(REF_SPEC, overrides=(f"data.synthetic.P={P}", f"training.steps={T}"))
    mod = dmftc.compile_spec(spec).load_module()
    nets = network_stats(spec, widths)
    truth = ep.fit_width_bias(*({N: r[k] for N, r in nets.items()} for k in ("mean", "var", "S")))
    Ns = sorted(nets)
    sigma_fit = ep.power_fit(Ns, [math.sqrt(np.mean(nets[N]["var"])) for N in Ns])
    tnet_fit = ep.power_fit(Ns, [nets[N]["seconds_per_net"] for N in Ns])
    runs = {M: dmft_runs(mod, spec, T, M, range(100, 100 + K)) for M, K in ladder.items()}
    lad = {M: {"spread": ep.spread(r["curves"]), "bias": ep.bias_vs_truth(r["curves"], truth), "seconds": r["seconds"],
               "failed": r["failed"], "runs": r["runs"]} for M, r in runs.items()}
    spread_fit = ep.power_fit(list(lad), [v["spread"] for v in lad.values()])
    time_fit = ep.power_fit(list(lad), [v["seconds"] for v in lad.values()])
    pairs = [(M, v["spread"]) for M, v in lad.items()]
    rows = [equal_precision_row(eps, mod, spec, T, truth, pairs, time_fit, sigma_fit, tnet_fit, cap)
            for eps in eps_list]
    rtol_rows = [rtol_row(eps, spec, truth, sigma_fit, tnet_fit, cap) for eps in RTOLS]
    for row in rows:  # the same plan with the ladder's own spread law beyond its largest M
        row["M_fit"] = ep.dmft_plan(row["eps"], pairs, exponent=spread_fit[1])
        row["ratio_fit"] = row.get("ens_seconds", row["ens_predicted"]) / (time_fit[0] * row["M_fit"] ** time_fit[1])
    return {"P": P, "T": T, "c_rms": truth["c_rms"], "chi2_dof": truth["chi2_dof"], "c": truth["c"].tolist(),
            "truth_se": float(math.sqrt(np.mean(truth["var_a"]))), "sigma_fit": sigma_fit, "tnet_fit": tnet_fit,
            "ladder": lad, "spread_fit": spread_fit, "time_fit": time_fit, "rows": rows, "n": P * (T + 1),
            "rtol_rows": rtol_rows,
            "nets": {N: {"sigma": math.sqrt(np.mean(r["var"])), "seconds_per_net": r["seconds_per_net"], "S": r["S"]}
                     for N, r in nets.items()}}


def equal_precision_row(eps, mod, spec, T, truth, pairs, time_fit, sigma_fit, tnet_fit, cap) -> dict:
    """Both methods planned for error eps; each timed where its predicted time is under `cap` seconds."""
    M = ep.dmft_plan(eps, pairs)
    row = {"eps": eps, "M": M, "dmft_predicted": time_fit[0] * M ** time_fit[1]}
    if row["dmft_predicted"] <= cap and M <= MAX_DRAWS:
        _, row["dmft_seconds"] = timed(compiled_solver(mod, spec, T, M), 999)
    plan = ep.ensemble_plan(eps, truth["c_rms"], sigma_fit, tnet_fit[1])
    row.update(plan, ens_predicted=plan["S"] * tnet_fit[0] * plan["N"] ** tnet_fit[1])
    if row["ens_predicted"] <= cap:
        sim = dmftc.simulate(spec, sizes={"N": plan["N"]}, seeds=plan["S"], record="none", seed=11)
        row["ens_seconds"] = sim.timings["run"]
        L = np.asarray(sim.loss, float)
        row["ens_error"] = math.hypot(truth["c_rms"] / plan["N"], ep.spread(list(L)) / math.sqrt(plan["S"]))
    t_d, t_e = row.get("dmft_seconds", row["dmft_predicted"]), row.get("ens_seconds", row["ens_predicted"])
    row["ratio"] = t_e / t_d
    return row


#: accuracies of the `--rtol` rows: the fraction of the loss range each step must meet
RTOLS = (1e-2, 3e-3, 1e-3)


def rtol_row(rtol, spec, truth, sigma_fit, tnet_fit, cap) -> dict:
    """`prog.solve(rtol=...)` (what `dmftc solve --rtol` runs: draws chosen by the error analysis, bias removed)
    against the cheapest ensemble of the same accuracy, rtol x the loss range of the networks' limit a(t).

    The solve is timed twice: cold (its XLA compiles included, three shapes per round) and warm (the same
    call again: what a second solve of the spec costs). Its measured error against a(t) is printed beside
    the error it reported. The ensemble is planned for an RMS error over t of rtol x range; the solve's
    target is stricter (every step's 1-sigma total error).
    """
    fspec = load(REF_SPEC, overrides=(f"data.synthetic.P={spec.data.P}", f"training.steps={spec.training.steps}",
                                      f"solver.dtype={DMFT_DTYPE}"))
    prog = dmftc.compile_spec(fspec)
    sol, cold = timed(prog.solve, rtol=rtol)
    _, warm = timed(prog.solve, rtol=rtol)
    a = truth["a"]
    errs = sol.meta["errors"]
    eps = rtol * float(np.max(a) - np.min(a))
    row = {"rtol": rtol, "eps": eps, "M": errs["samples"], "draws_tried": errs["draws_tried"],
           "reported": errs["loss_error_max"], "target": errs["target"], "met": errs["target_met"],
           "dmft_cold": cold, "dmft_seconds": warm,
           "actual_max": float(np.max(np.abs(sol.loss - a))), "actual_rms": float(np.sqrt(np.mean((sol.loss - a) ** 2))),
           "z_max": float(np.max(np.abs(sol.loss - a) / np.hypot(sol.se("loss"), np.sqrt(truth["var_a"]))))}
    plan = ep.ensemble_plan(eps, truth["c_rms"], sigma_fit, tnet_fit[1])
    row.update(plan, ens_predicted=plan["S"] * tnet_fit[0] * plan["N"] ** tnet_fit[1])
    if row["ens_predicted"] <= cap:
        sim = dmftc.simulate(spec, sizes={"N": plan["N"]}, seeds=plan["S"], record="none", seed=11)
        row["ens_seconds"] = sim.timings["run"]
    row["ratio"] = row.get("ens_seconds", row["ens_predicted"]) / warm
    return row


def print_rtol(r: dict) -> None:
    print("(a) with the accuracy target: `dmftc solve --rtol R` (draws chosen by the error analysis, O(1/M) bias "
          "removed) vs the cheapest ensemble of RMS error R x the loss range:")
    print("      rtol   target     draws (tried)           reported  measured max / rms   z max   DMFT s cold/warm"
          "   ensemble: N      S          s   ratio ens/DMFT(warm)")
    for w in r["rtol_rows"]:
        e = f"{w['ens_seconds']:10.1f}" if "ens_seconds" in w else f"{w['ens_predicted']:8.0f} (ext.)"
        tried = "->".join(str(m) for m in w["draws_tried"])
        print(f"    {w['rtol']:6.0e} {w['target']:8.2e} {w['M']:9d} ({tried:>16s}) {w['reported']:9.2e} "
              f"{w['actual_max']:9.2e} / {w['actual_rms']:8.2e} {w['z_max']:6.2f} {w['dmft_cold']:8.1f}/{w['dmft_seconds']:<8.1f}"
              f"{w['N']:12d} {w['S']:6d} {e:>12s} {w['ratio']:8.2f}x{'' if w['met'] else ' (target NOT met)'}")


def bench_b(sizes) -> dict:
    """Per causal sweep, generated solver vs the unvectorised reference, at each (P, steps, samples).

    Several sizes, because the ratio moves with them: at small ones the generated solve is a few
    hundred small XLA operations per step and the reference's Python loops over draws dominate it;
    at the reference size both are dominated by the same O(M P n) contractions per step. The
    generated solver is timed in float64 (the reference's precision) and in float32, the precision
    bench (a) runs it in: on the reference spec float32 is within the Monte Carlo error
    (bench_perf.py (f)), so it is the solver's own choice there, not a different algorithm.
    """
    from reference_dmft import solve_reference  # benchmarks/ is on sys.path when run as a script

    rows = []
    for P, steps, samples in sizes:
        spec = load(REF_SPEC, overrides=(f"data.synthetic.P={P}", f"training.steps={steps}"))
        X, y = load_data(spec)
        prog = dmftc.compile_spec(spec)
        for dtype in DTYPES:
            prog.solve(samples=samples, dtype=dtype)
        t_gen, t_ref = {d: float("inf") for d in DTYPES}, float("inf")
        for _ in range(3):  # interleaved, best of 3: one shared machine's load weighs on both alike
            for dtype in DTYPES:
                t_gen[dtype] = min(t_gen[dtype], timed(prog.solve, samples=samples, dtype=dtype)[1])
            t_ref = min(t_ref, timed(solve_reference, X, y, fn="relu", depth=2, gamma0=1.0, eta=0.5, steps=steps,
                                     samples=samples, seed=0)[1])
        rows.append({"P": P, "steps": steps, "samples": samples, "generated_seconds": t_gen["float64"],
                     "generated_seconds_float32": t_gen["float32"], "reference_seconds": t_ref,
                     "ratio": t_ref / t_gen["float64"], "ratio_float32": t_ref / t_gen["float32"]})
    return {"rows": rows, "segmented": segmented(prog, steps, samples)}  # the last (largest) size


DTYPES = ("float64", "float32")
SEGMENTS = 4  # the cut (b) also times at its largest size


def segmented(prog, steps: int, samples: int) -> dict:
    """The largest size of (b) with the causal sweep in one run and in SEGMENTS runs of growing width.

    The default (`rt.segments`) keeps one run below M n^2 = 1e9, the reference size included: each
    run is one more XLA compile, which a single solve would pay. Seconds per sweep (best of 3,
    interleaved) and the first call's extra seconds over it (the compile).
    """
    mod = prog.load_module()
    X, y = load_data(prog.spec)
    hp = dict(prog.spec.hyper)
    calls = {(d, k): (lambda d=d, k=k: jax.block_until_ready(
        mod.solve(X, y, hp, steps=steps, samples=samples, dtype=d, segments=k)))
        for d in DTYPES for k in (1, SEGMENTS)}
    first = {key: timed(call)[1] for key, call in calls.items()}
    best = {key: float("inf") for key in calls}
    for _ in range(3):
        for key, call in calls.items():
            best[key] = min(best[key], timed(call)[1])
    return {f"{d}:{k}": {"seconds": best[(d, k)], "compile": first[(d, k)] - best[(d, k)]} for d, k in calls}


_COMPILE_CHILD = """
import json, sys, time
sys.path.insert(0, {root!r})
import dmftc
out = {{}}
for spec in {specs!r}:
    t0 = time.perf_counter(); dmftc.compile_spec(spec); t1 = time.perf_counter()
    ts = []
    for _ in range({repeats}):
        s0 = time.perf_counter(); dmftc.compile_spec(spec); ts.append(time.perf_counter() - s0)
    out[spec] = {{"cold": t1 - t0, "warm": min(ts)}}
print(json.dumps(out))
"""


def bench_c(repeats: int = 3) -> dict:
    """Spec -> generated module, in a fresh process (imports done): the first compile and the best repeat."""
    specs = {"mlp": str(REF_SPEC), "transformer": str(ROOT / "specs" / "transformer_mup.yaml"),
             "transformer_heads": str(ROOT / "specs" / "transformer_heads.yaml")}
    code = _COMPILE_CHILD.format(root=str(ROOT), specs=list(specs.values()), repeats=repeats)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    times = json.loads(out.stdout.strip().splitlines()[-1])
    return {name: times[path] for name, path in specs.items()}


_CACHE_CHILD = """
import json, sys, time
sys.path.insert(0, {root!r})
import numpy as np
import dmftc
dmftc.enable_compile_cache({cache!r})
prog = dmftc.compile_spec({spec!r})
t0 = time.perf_counter(); sol = prog.solve(samples={M}); t1 = time.perf_counter()
print(json.dumps({{"first_solve": t1 - t0, "loss": np.asarray(sol.loss).tolist()}}))
"""


def bench_c_cache(samples: int = 256) -> dict:
    """First solve in a fresh process, with an empty and then a filled persistent compile cache."""
    specs = {"mlp": str(REF_SPEC), "transformer": str(ROOT / "specs" / "transformer_mup.yaml")}
    out = {}
    for name, spec in specs.items():
        with tempfile.TemporaryDirectory() as cache:
            runs = []
            for _ in range(2):
                code = _CACHE_CHILD.format(root=str(ROOT), cache=cache, spec=spec, M=samples)
                res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
                runs.append(json.loads(res.stdout.strip().splitlines()[-1]))
        out[name] = {"cold": runs[0]["first_solve"], "warm": runs[1]["first_solve"], "samples": samples,
                     "same_loss": runs[0]["loss"] == runs[1]["loss"]}
    return out


_CHILD = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
import dmftc
from dmftc.spec import load
spec = load({spec!r}, overrides=("data.synthetic.P={P}", "training.steps={T}"))
prog = dmftc.compile_spec(spec)
t0 = time.perf_counter(); prog.solve(samples={M}); t1 = time.perf_counter()
prog.solve(samples={M}); t2 = time.perf_counter()
peak = next(int(l.split()[1]) / 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:"))  # not ru_maxrss: fork carries the parent's
print(json.dumps({{"first": t1 - t0, "run": t2 - t1, "maxrss_mb": peak}}))
"""


def bench_e(grid, samples: int) -> dict:
    rows = []
    for P, T in grid:
        code = _CHILD.format(root=str(ROOT), spec=str(REF_SPEC), P=P, T=T, M=samples)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        rows.append({"P": P, "steps": T, "n": P * (T + 1), **json.loads(out.stdout.strip().splitlines()[-1])})
    n = np.array([r["n"] for r in rows], float)
    fit = lambda v: float(np.polyfit(np.log(n), np.log(np.array(v, float)), 1)[0])  # noqa: E731
    return {"rows": rows, "time_exponent_in_n": fit([r["run"] for r in rows]),
            "memory_exponent_in_n": fit([r["maxrss_mb"] for r in rows])}


def print_a(r: dict) -> None:
    Ns = sorted(r["nets"], key=int)
    print(f"(a) DMFT vs finite-network ensemble at equal precision, reference spec (P={r['P']}, T={r['T']}): error = "
          f"RMS over t of (estimate - truth); the truth and the ensemble's O(1/N) bias from the networks alone, "
          f"mean_N(t) = a(t) + c(t)/N fitted per t over N = {', '.join(str(N) for N in Ns)} "
          f"(seeds {', '.join(str(r['nets'][N]['S']) for N in Ns)}):")
    print(f"    |c| = {r['c_rms']:.3f} (RMS over t; reduced chi^2 of the 1/N fit {r['chi2_dof']:.2f}); truth SE "
          f"{r['truth_se']:.1e}; one network's spread sigma_N = {r['sigma_fit'][0]:.3g} N^{r['sigma_fit'][1]:.2f}, "
          f"its time {r['tnet_fit'][0]:.2g} N^{r['tnet_fit'][1]:.2f} s (float32, seeds vectorised)")
    lad = ", ".join(f"M={M}: spread {v['spread']:.1e}, bias {v['bias'][0]:.1e} (resolution {v['bias'][1]:.1e}), "
                    f"{v['seconds']:.1f} s" + (f", {v['failed']} of {v['runs']} solves diverged" if v["failed"]
                                               else f", {v['runs']} solves")
                    for M, v in r["ladder"].items())
    print(f"    DMFT ({DMFT_DTYPE}): {lad}; spread ~ M^{r['spread_fit'][1]:.2f} over these M (planned: interpolated "
          f"between them, M^-1/2 beyond), time ~ M^{r['time_fit'][1]:.2f}")
    print("      eps      DMFT: M           s      ensemble: N      S  bias share           s (error)   ratio ens/DMFT")
    for w in r["rows"]:
        d = f"{w['dmft_seconds']:11.1f}" if "dmft_seconds" in w else f"{w['dmft_predicted']:7.0f} (ext.)"
        e = (f"{w['ens_seconds']:11.1f} ({w['ens_error']:.1e})" if "ens_seconds" in w
             else f"{w['ens_predicted']:11.0f} (extrapolated)")
        print(f"    {w['eps']:7.0e} {w['M']:9d} {d:>14s} {w['N']:12d} {w['S']:6d} {w['bias_share']:11.2f} {e:>24s} "
              f"{w['ratio']:8.2f}x")
    x = r["exponents"]
    print(f"    cost vs precision over these eps: DMFT ~ eps^({-x['dmft']:.2f}) (theory -2), ensemble ~ eps^({-x['ens']:.2f}) "
          f"(theory -3: width ~ 1/eps for the bias, seeds ~ sigma_N^2 / eps^2, time ~ N^2 per network); the ratio "
          f"reaches 10x at eps ~ {x['eps_10x']:.0e} (extrapolated along both laws).")
    beyond = [w for w in r["rows"] if w["M_fit"] != w["M"]]
    if beyond:
        print(f"    beyond the ladder the plan assumes spread ~ M^-1/2; with the ladder's own law M^{r['spread_fit'][1]:.2f} "
              "instead: " + "; ".join(f"eps {w['eps']:.0e}: M = {w['M_fit']}, ratio {w['ratio_fit']:.2f}x" for w in beyond))
    verdict = [f"eps {w['eps']:.0e} {'met' if w['ratio'] >= 10 else 'missed'}"
               f"{'' if 'dmft_seconds' in w and 'ens_seconds' in w else ' (extrapolated)'}" for w in r["rows"]]
    print(f"    target >= 10x: {'; '.join(verdict)}")
    b = r["bound"]
    print(f"    what bounds it: a draw of the single-site process (M={b['M']}) costs {b['per_draw_us']:.1f} us, because "
          f"each of the {r['T'] + 1} steps contracts its whole history of n = P(T+1) = {r['n']} slots, and carries "
          f"variance spread^2 M = {b['var_per_draw']:.2g}; a neuron of the width-{b['N']} network that the bias "
          f"needs at eps = {r['rows'][0]['eps']:.0e} costs {b['per_neuron_us']:.2f} us and carries sigma_N^2 N = "
          f"{b['var_per_neuron']:.2g}; cost per unit of variance {b['dmft_cost_per_var']:.3g} (DMFT) vs "
          f"{b['ens_cost_per_var']:.3g} (ensemble); a neuron's cost grows ~ N ~ 1/eps, a draw's does not")


def exponents(r: dict) -> dict:
    """Measured cost exponents in eps over the table's rows, and the eps at which the ratio reaches 10x."""
    rows = r["rows"]
    eps = [w["eps"] for w in rows]
    td = [w.get("dmft_seconds", w["dmft_predicted"]) for w in rows]
    te = [w.get("ens_seconds", w["ens_predicted"]) for w in rows]
    dm, en = -ep.power_fit(eps, td)[1], -ep.power_fit(eps, te)[1]
    return {"dmft": dm, "ens": en, "eps_10x": ep.eps_for_ratio(10.0, eps[-1], rows[-1]["ratio"], dm, en)}


def bound(r: dict) -> dict:
    """Cost per unit of variance: a DMFT draw (largest ladder M) vs a neuron at the first row's width.

    Noise alone, the ratio of times is (sigma_N^2 N)(t_net / N) / ((spread^2 M)(t_dmft / M)) divided by the
    noise's share of the ensemble's budget; a neuron's cost t_net / N grows with N (a network costs ~ N^2),
    and the width the bias needs grows ~ 1/eps.
    """
    M = max(r["ladder"], key=int)
    lad, row = r["ladder"][M], r["rows"][0]
    N = row["N"]
    per_net = r["tnet_fit"][0] * N ** r["tnet_fit"][1]
    out = {"M": M, "N": N, "per_draw_us": 1e6 * lad["seconds"] / M, "per_neuron_us": 1e6 * per_net / N,
           "var_per_draw": lad["spread"] ** 2 * M, "var_per_neuron": row["sigma"] ** 2 * N}
    out["dmft_cost_per_var"] = out["var_per_draw"] * out["per_draw_us"]
    out["ens_cost_per_var"] = out["var_per_neuron"] * out["per_neuron_us"]
    return out


def print_rest(res: dict) -> None:
    print("(b) per causal sweep (best of 3), generated vs unvectorised reference (float64 numpy), target >= 20x:")
    for r in res["b"]["rows"]:
        print(f"    P {r['P']:3d} steps {r['steps']:3d} M {r['samples']:5d}: reference {r['reference_seconds']:.3f} s; "
              f"generated float64 {r['generated_seconds']:.4f} s -> {r['ratio']:.1f}x, "
              f"float32 {r['generated_seconds_float32']:.4f} s -> {r['ratio_float32']:.1f}x")
    seg, ref = res["b"]["segmented"], res["b"]["rows"][-1]["reference_seconds"]
    print(f"    the largest size with the sweep cut into {SEGMENTS} runs of growing width (`solve(..., segments={SEGMENTS})`; "
          "each step then contracts only its causal part; the default keeps one run here): "
          + "; ".join(f"{d} {seg[f'{d}:1']['seconds']:.3f} -> {seg[f'{d}:{SEGMENTS}']['seconds']:.3f} s "
                      f"({ref / seg[f'{d}:1']['seconds']:.1f}x -> {ref / seg[f'{d}:{SEGMENTS}']['seconds']:.1f}x), "
                      f"first-call compile {seg[f'{d}:1']['compile']:.1f} -> {seg[f'{d}:{SEGMENTS}']['compile']:.1f} s"
                      for d in DTYPES))
    r = res["c"]
    print("(c) compile (spec -> generated module), fresh process, first / best of 3: "
          + "; ".join(f"{k} {v['cold']:.2f} / {v['warm']:.2f} s" for k, v in r.items())
          + " (targets: MLP < 2 s, transformer < 10 s)")
    print("    first solve in a fresh process (XLA compile included), empty / filled compile cache "
          "(dmftc.enable_compile_cache, opt-in): "
          + "; ".join(f"{k} {v['cold']:.2f} / {v['warm']:.2f} s at M={v['samples']} "
                      f"({'same' if v['same_loss'] else 'DIFFERENT'} loss curve)" for k, v in res["c_cache"].items()))
    r = res["e"]
    print("(e) P  steps  n=P(T+1)  first call s  run s  peak MB   (bench_perf.py (e) has the full table and plot)")
    for row in r["rows"]:
        print(f"    {row['P']:3d} {row['steps']:5d} {row['n']:8d} {row['first']:12.2f} {row['run']:6.2f} "
              f"{row['maxrss_mb']:8.0f}")
    print(f"    fitted exponents in n: time {r['time_exponent_in_n']:.2f}, memory {r['memory_exponent_in_n']:.2f} "
          f"(algorithm: time n^3 + M n^2, memory n^2 + M n)")
    print("    no outer fixed-point iteration: the causal sweep solves the discrete-time DMFT in one pass "
          "(docs/theory.md#causal-sweep), so Anderson/DIIS acceleration and a warm-started iteration have nothing to act on "
          "(solver.tol, max_iter and damping are unused); what a sweep reuses instead is the compiled solver "
          "(points that differ only in hyperparameter values share one XLA compile per process) and the solve "
          "itself across horizons (points that differ only in training.steps are one solve, read as prefixes; "
          "dmftc.sweep)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller problems (a smoke run)")
    ap.add_argument("--json", help="also write the figures here")
    a = ap.parse_args()
    q = a.quick
    widths = {64: 64, 128: 32, 256: 16} if q else {128: 512, 256: 256, 512: 128, 1024: 64, 2048: 32}
    res = {"a": bench_a(P=8 if q else 16, T=10 if q else 50, widths=widths,
                        ladder={512: 3, 1024: 3} if q else {4096: 16, 8192: 12, 16384: 8, 32768: 6},
                        eps_list=(3e-3, 1e-3) if q else (1e-3, 3e-4, 1e-4), cap=20 if q else 240)}
    res["a"]["exponents"] = exponents(res["a"])
    res["a"]["bound"] = bound(res["a"])
    print_a(res["a"])
    print_rtol(res["a"])
    res["b"] = bench_b([(4, 4, 64), (8, 8, 128)] if q else [(4, 8, 256), (8, 16, 512), (16, 50, 1024)])
    res["c"] = bench_c()
    res["c_cache"] = bench_c_cache()
    res["e"] = bench_e([(4, 10), (8, 10), (8, 20)] if q else [(8, 15), (16, 15), (16, 31), (32, 31), (32, 63)],
                       samples=512 if q else 2048)
    print_rest(res)
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2, default=float))


if __name__ == "__main__":
    main()
