"""`dmftc check`: the DMFT of a spec against finite networks of the same spec as sizes grow.

Solves the DMFT (several Monte Carlo seeds when it samples, for its own standard error),
simulates each size, and hands the arrays to `dmftc.crosscheck`: seed-averaged bias
(predicted rate n^-1) and single-network fluctuation (n^-1/2; none where the output at
initialization is an O(1) random variable, as in ntk), fits, verdicts, check.json, plots.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .crosscheck import (
    crosscheck, plot_convergence, plot_curves, progress, seed_mean_se, write_json_atomic,
)
from .errors import DmftcError
from .program import Program, compile_spec
from .simulate import simulate
from .spec.types import Spec


def default_sizes(spec: Spec) -> dict[str, list[int]]:
    """The first size that goes to infinity, at 1/8, 1/4, 1/2 and 1 times its value in the spec."""
    name = spec.limit[0]
    n = int(spec.sizes[name])
    return {name: sorted({max(2, n // k) for k in (8, 4, 2, 1)})}


def dmft_reference(prog: Program, seeds: int = 2, samples: int | None = None) -> tuple[dict, dict]:
    """DMFT arrays averaged over `seeds` Monte Carlo seeds, and their standard errors (zero when exact)."""
    exact = prog.equations.method != "monte_carlo"
    runs = [prog.solve(seed=prog.spec.solver.seed + k, samples=samples).arrays for k in range(1 if exact else seeds)]
    mean = {k: np.mean([r[k] for r in runs], axis=0) for k in runs[0]}
    se = {k: (np.std([r[k] for r in runs], axis=0, ddof=1) / np.sqrt(len(runs)) if len(runs) > 1
              else np.zeros_like(mean[k])) for k in runs[0]}
    return mean, se


def compared(prog: Program, sim_order: Sequence[str]) -> list[str]:
    """Quantities present in both the DMFT solution and the simulation."""
    if prog.equations.tokens:
        # transformers: the residual-stream kernel over (position, time) at each layer boundary
        return ["loss", "f"] + sorted((k for k in sim_order if re.fullmatch(r"H\d+", k)), key=lambda k: int(k[1:]))
    names = ["loss", "f"] + (["Htop"] if "eq:kernel.H" in prog.equations.labels else [])
    # kernels share a definition on both sides only for MLPs (the simulator's residual-stream kernels are
    # of h itself, positions 0..L, and its G is normalised by the readout multiplier alone)
    if prog.equations.regime == "feature_learning" and "eq:field.z" in prog.equations.labels:
        names += sorted(k for k in sim_order if re.fullmatch(r"(Phi|G)\d+", k))
    return names


def run_check(spec: Spec, sizes: Mapping[str, Sequence[int]], *, seeds: int = 8, out_dir: Path | None,
              dmft_seeds: int = 2, samples: int | None = None, program: Program | None = None,
              quantities: Sequence[str] | None = None):
    """Run the cross-check over one size axis; writes out_dir/check.json and PNG plots (unless None).

    `program` replaces the compiled spec (a test injects a deliberately wrong DMFT this way);
    `quantities` restricts what is compared (default: loss, f and every kernel both sides have).
    """
    if not sizes:
        sizes = default_sizes(spec)
    if len(sizes) != 1:
        raise DmftcError(f"check needs exactly one size axis, e.g. --sizes N=128,256,512 (got {dict(sizes)})")
    (name, values), = sizes.items()
    if name not in spec.sizes:
        raise DmftcError(f"--sizes names {name!r}, which the spec does not declare (sizes: {sorted(spec.sizes)})")
    prog = program or compile_spec(spec)
    ref, ref_se = dmft_reference(prog, dmft_seeds, samples)
    finite, order_names = {}, []
    for n in progress(sorted(values), total=len(values), desc=f"check {name}"):
        sim = simulate(spec, sizes={name: n}, seeds=seeds)
        order_names = [_plain(k) for k in sim.order]
        finite[n] = {"loss": sim.loss, "f": sim.f, **{_plain(k): v for k, v in sim.order.items()}}
        if prog.equations.tokens:
            # simulator stream site l (input of transformer layer l + 1, or the top) = DMFT position 1 + B l
            B = (prog.equations.depth - 1) // int(spec.sizes["L"])
            for k, v in sim.order.items():
                m = re.fullmatch(r"Phi\{(\d+)\}", k)
                if m:
                    finite[n][f"H{1 + B * int(m.group(1))}"] = v
            order_names = [k for k in finite[n] if re.fullmatch(r"H\d+", k)]
        elif "eq:kernel.H" in prog.equations.labels:
            # the stream kernel at the top (tau = 1): the simulator's last stream position vs the DMFT's
            top = max(int(k[4:-1]) for k in sim.order if k.startswith("Phi{"))
            finite[n]["Htop"] = sim.order[f"Phi{{{top}}}"]
    if "eq:kernel.H" in prog.equations.labels and not prog.equations.tokens:
        ref["Htop"], ref_se["Htop"] = ref[f"H{prog.equations.depth}"], ref_se[f"H{prog.equations.depth}"]
    qs = [q for q in (quantities or compared(prog, order_names)) if q in ref]
    if prog.equations.coefficients.get("f0:readout", 0) != 0:
        # a random O(1) output at init: compare each network with the DMFT given its own f(0)
        ref, finite, ref_se = _conditional_on_f0(prog, ref, finite, qs)
    # along L at fixed N a single network's spread is set by N and does not shrink: predicted exponent 0
    report = crosscheck({q: ref[q] for q in qs}, {n: {q: d[q] for q in qs} for n, d in finite.items()},
                        size_name=name, predicted={"bias": -1.0, "fluct": 0.0 if name == "L" else -0.5},
                        reference_se={q: ref_se[q] for q in qs})
    if out_dir is not None:
        _write(report, ref, finite, out_dir, name)
    return report


def lazy_given_f0(K: np.ndarray, y: np.ndarray, f0: np.ndarray, steps: int) -> np.ndarray:
    """Lazy-limit outputs of one network given its own f(0): f(t) = y - (I - K/P)^t (y - f(0)).

    K is the NTK with the step included (the lazy system's K); f0 (seeds, P) -> (seeds, steps+1, P).
    """
    P = y.shape[0]
    M = np.eye(P) - K / P
    e = y[None] - f0
    out = [e]
    for _ in range(steps):
        e = e @ M.T
        out.append(e)
    return y[None, None] - np.stack(out, axis=1)


def _conditional_on_f0(prog: Program, ref, finite, qs):
    """Residuals of each network from its own lazy prediction (reference 0): bias ~ 1/N, spread ~ 1/sqrt(N)."""
    from .spec import load_data

    _, y = load_data(prog.spec)
    steps = prog.spec.training.steps
    out = {}
    for n, d in finite.items():
        pred_f = lazy_given_f0(np.asarray(ref["K"]), y, d["f"][:, 0], steps)
        pred_loss = 0.5 * np.mean((pred_f - y[None, None]) ** 2, axis=-1)
        out[n] = dict(d, f=d["f"] - pred_f, loss=d["loss"] - pred_loss)
    zero = {q: np.zeros_like(ref[q]) for q in qs}
    return zero, out, zero


def _plain(name: str) -> str:
    """Order-parameter names without braces: 'Phi{1}' -> 'Phi1' (the DMFT's spelling)."""
    return re.sub(r"\{(\d+)\}", r"\1", name)


def _write(report, ref, finite, out_dir: Path, name: str) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out_dir / "check.json", report.to_json())
    means, ses = {}, {}
    for n, d in finite.items():
        means[n], ses[n] = seed_mean_se(d["loss"])
    plot_curves(ref["loss"], means, ses, out_dir / "loss_curves.png", size_name=name)
    for q in report.to_json().get("quantities", {}):
        plot_convergence(report, q, out_dir / f"convergence_{q}.png")
