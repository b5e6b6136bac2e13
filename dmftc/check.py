"""`dmftc check`: the DMFT of a spec against finite networks of the same spec as sizes grow.

Solves the DMFT (several Monte Carlo seeds when it samples, for its own standard error),
simulates each size, and hands the arrays to `dmftc.crosscheck`: seed-averaged bias
(predicted rate n^-1) and single-network fluctuation (n^-1/2; none where the output at
initialization is an O(1) random variable, as in ntk), fits, verdicts, check.json, plots.
Under Adam no DMFT exists: the finite networks are compared among themselves, each size with
the next (`dmftc.crosscheck.simulations`), in the same report.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .crosscheck import (
    crosscheck, plot_convergence, plot_curves, progress, seed_mean_se, write_json_atomic,
)
from .crosscheck.logits import compare_logit_laws, dmft_logit_blocks, plot_logit_laws
from .crosscheck.needs import DISTANCE_SEEDS, require_seeds
from .budget import check_ensembles, check_simulation, check_solve
from .crosscheck.simulations import run_cauchy_check
from .dmft.derive import ADAM_NO_DMFT, DTAU
from .errors import DmftcError
from .program import Program, compile_spec
from .simulate import simulate
from .spec.types import Spec


def default_sizes(spec: Spec) -> dict[str, list[int]]:
    """The first size that goes to infinity, at 1/8, 1/4, 1/2 and 1 times its value in the spec."""
    name = spec.limit[0]
    n = int(spec.sizes[name])
    return {name: sorted({max(2, n // k) for k in (8, 4, 2, 1)})}


def dmft_runs(prog: Program, seeds: int = 2, samples: int | None = None, progress: bool = False) -> list[dict]:
    """The DMFT reference as independent-looking runs (one run when the solve is exact).

    A Monte Carlo DMFT is one solve with its error analysis (`dmftc.accuracy`) at `reference_samples`
    draws, the work of `seeds` plain solves: its runs are its batch solves moved onto its bias-corrected
    value (`Solution.runs`), so their mean is that value and their spread its standard error.
    """
    if prog.equations.method != "monte_carlo":
        return [prog.solve(samples=samples, depth_error=False, errors=False).arrays]
    M = reference_samples(prog, seeds, samples)
    return list(prog.solve(samples=M, depth_error=False, progress=progress).runs)


def reference_samples(prog: Program, seeds: int, samples: int | None = None) -> int:
    """Draws of the reference solve: seeds / 3 x the spec's (three solves' worth of draws each), at least those."""
    from .accuracy import batch_samples

    M = samples or prog.spec.solver.samples
    return batch_samples(max(M, M * seeds // 3), prog.spec.solver.batches)


def depth_order(prog: Program) -> tuple[float, str]:
    """Order p of the depth grid's error, X_K = X_oo + O(K^-p), and why.

    First order (p = 1) in general: the stream is an Euler scheme of an ODE in layer time
    (alpha_L = 1: the random branches vanish) or of an SDE with smooth coefficients (exact for
    linear networks, tests/dmft/test_depth_limit.py). With Brownian sources (alpha_L = 1/2: the
    blocks' source variances ~ dtau survive) and an activation whose derivative jumps (ReLU), the
    stream crosses the kink O(sqrt(K)) times and the weak error of the Euler scheme is O(K^-1/2),
    the depth analogue of the lazy ReLU's N^-1/2. Measured (resnet_depth_mup, 8 steps, 4 x 65536
    draws, `benchmarks/bench_depth.py --order`): successive differences 1.8e-3, 0.79e-3, 0.85e-3 for
    K = 8, 16, 32 (no longer halving); finite networks extrapolated to N -> oo at L = 2, 4, 8 follow
    the depth-K grid, not a first-order approach to the limit.
    """
    eqs = prog.equations
    brownian = any(k.startswith("src:") and DTAU in getattr(v, "free_symbols", ()) for k, v in eqs.coefficients.items())
    if brownian and eqs.activation in KINKED:
        return 0.5, (f"Brownian sources (block source variances ~ dtau) with {eqs.activation}'s kink: the depth grid "
                     "and finite-L networks approach the limit as L^-1/2 (weak order 1/2 of the Euler scheme)")
    return 1.0, "the depth grid is first order in 1/K"


def depth_extrapolated(prog: Program, runs: Sequence[Mapping[str, np.ndarray]],
                       samples: int | None = None) -> tuple[list[dict], str]:
    """Each run's loss, f and top-of-stream kernel extrapolated to infinite depth,
    X = X_K + (X_K - X_{K/2}) / (2^p - 1) with p the grid's order (`depth_order`; p = 1: 2 X_K - X_{K/2}).

    Richardson's step removes the leading O(K^-p) error, so finite-L networks are compared with the
    limit itself, not with a grid that is O(K^-p) off (at alpha_L = 1/2 the grid at K is the width
    limit of a depth-K network; at alpha_L = 1 it also drops the random branches' O(dtau^2) terms).
    The coarse solve of run k uses run k's seed, so the runs stay independent and their spread
    includes both solves.
    """
    p, why = depth_order(prog)
    w = 1.0 / (2.0**p - 1.0)
    K = prog.equations.depth_steps
    spec = prog.spec
    half = compile_spec(dataclasses.replace(spec, solver=dataclasses.replace(spec.solver, depth_steps=K // 2)))
    out, gap = [], 0.0
    coarse_runs = dmft_runs(half, samples=samples) if len(runs) > 1 else [
        half.solve(samples=samples, depth_error=False, errors=False).arrays]
    for fine, coarse in zip(runs, coarse_runs):
        top = f"H{stream_top(prog.equations)}"
        pairs = {"loss": (fine["loss"], coarse["loss"]), "f": (fine["f"], coarse["f"]),
                 top: (fine[top], coarse[f"H{stream_top(half.equations)}"])}
        gap = max(gap, float(np.max(np.abs(fine["loss"] - coarse["loss"]))))
        out.append({**fine, **{q: a + w * (a - b) for q, (a, b) in pairs.items()}})
    rule = "X = 2 X_K - X_K/2" if p == 1 else f"X = X_K + (X_K - X_K/2) / (2^{p:g} - 1): {why}"
    note = (f"DMFT reference extrapolated to infinite depth from K = {K} and {K // 2} depth steps "
            f"({rule}; max |loss_K - loss_K/2| = {gap:.2g}).")
    return out, note


def dmft_reference(prog: Program, seeds: int = 2, samples: int | None = None, *,
                   runs: list[dict] | None = None) -> tuple[dict, dict]:
    """DMFT arrays averaged over `seeds` Monte Carlo seeds (or given `runs`), and their standard errors
    (zero when exact)."""
    runs = runs if runs is not None else dmft_runs(prog, seeds, samples)
    mean = {k: np.mean([r[k] for r in runs], axis=0) for k in runs[0]}
    se = {k: (np.std([r[k] for r in runs], axis=0, ddof=1) / np.sqrt(len(runs)) if len(runs) > 1
              else np.zeros_like(mean[k])) for k in runs[0]}
    return mean, se


def compared(prog: Program, sim_order: Sequence[str]) -> list[str]:
    """Quantities present in both the DMFT solution and the simulation."""
    if prog.equations.tokens:
        # transformers: the residual-stream kernel over (position, time) at each layer boundary, and the
        # head-averaged attention logits of each attention block (A1, A2, ...)
        return (["loss", "f"] + sorted((k for k in sim_order if re.fullmatch(r"H\d+", k)), key=lambda k: int(k[1:]))
                + sorted(k for k in sim_order if re.fullmatch(r"A\d+", k)))
    if prog.equations.has_stream:
        # residual streams: the stream kernels H, the kernels Phi = <phi(h) phi(h)> of the features the
        # branches read and the backward kernels G at every position
        kernels = [m for k in sim_order if (m := re.fullmatch(r"(H|Phi|G)(\d+)", k))]
        kernels.sort(key=lambda m: (("H", "Phi", "G").index(m.group(1)), int(m.group(2))))
        return ["loss", "f"] + [m.group(0) for m in kernels]
    names = ["loss", "f"]
    if prog.equations.regime == "feature_learning" and prog.equations.has_backward_fields:
        names += sorted(k for k in sim_order if re.fullmatch(r"(Phi|G)\d+", k))
    return names


def run_check(spec: Spec, sizes: Mapping[str, Sequence[int]], *, seeds: int = 8, out_dir: Path | None,
              dmft_seeds: int = 8, samples: int | None = None, program: Program | None = None,
              quantities: Sequence[str] | None = None, report_progress: bool = False):
    """Run the cross-check over one size axis; writes out_dir/check.json and PNG plots (unless None).
    With `report_progress` (the CLI) the reference solve reports its draws on stderr with the time left.

    `program` replaces the compiled spec (a test injects a deliberately wrong DMFT this way);
    `quantities` restricts what is compared (default: loss, f and every kernel both sides have).
    A Monte Carlo DMFT is one solve with its error analysis, at the work of `dmft_seeds` plain solves
    (`dmft_runs`): bias-corrected, its batch solves are the reference's runs (its error measured, not
    bounded: `crosscheck.stats.distance`).
    Under Adam (no DMFT) successive sizes are compared instead (`crosscheck.simulations`); `program`,
    `dmft_seeds` and `samples` do not apply there.
    """
    if not sizes:
        sizes = default_sizes(spec)
    if len(sizes) != 1:
        raise DmftcError(f"check needs exactly one size axis, e.g. --sizes N=128,256,512 (got {dict(sizes)})")
    (name, values), = sizes.items()
    if name not in spec.sizes:
        raise DmftcError(f"--sizes names {name!r}, which the spec does not declare (sizes: {sorted(spec.sizes)})")
    require_seeds(seeds, DISTANCE_SEEDS)  # the distances' standard errors (crosscheck.stats), before any work
    if spec.training.adam and program is None:
        return run_cauchy_check(spec, name, values, seeds=seeds, out_dir=out_dir, quantities=quantities,
                                reason=f"{spec.training.optimizer} has no mean-field solver: {ADAM_NO_DMFT}")
    for n in values:  # every ensemble fits this machine before any work (dmftc.budget); again with its record
        check_simulation(spec, {name: n}, seeds, record="none")
    prog = program or compile_spec(spec)
    check_ensembles(spec, [{name: n} for n in sorted(values)], seeds, record=_record(prog, quantities))
    ref_samples = reference_samples(prog, dmft_seeds, samples)
    check_solve(prog.spec, prog.equations, steps=prog.spec.training.steps, samples=ref_samples,
                dtype=prog.spec.solver.dtype, runs=3)
    runs = dmft_runs(prog, samples=ref_samples, progress=report_progress)
    along_depth = name == "L" and prog.equations.has_stream
    depth_note = ()
    if along_depth and (prog.equations.depth_steps or 0) >= 4:
        runs, note = depth_extrapolated(prog, runs, ref_samples)
        depth_note = (note,)
    ref, ref_se = dmft_reference(prog, runs=runs)
    finite, order_names, logits = {}, [], {}
    for k, n in enumerate(progress(sorted(values), total=len(values), desc=f"check {name}")):
        # ensemble number k at the k-th size (`size_ensemble`): no network shares its draws with another size's
        sim = simulate(spec, {name: n}, seeds, record=_record(prog, quantities), seed=size_ensemble(k))
        # the simulator names its kernels as the DMFT does (`dmftc.simulate.network.stream_positions`)
        order_names = list(sim.order)
        finite[n] = {"loss": sim.loss, "f": sim.f, **sim.order}
        if "logits" in sim.order:
            logits[n] = sim.order["logits"]
            finite[n].update(head_averaged_logits(sim.order["logits"]))
            order_names += [k for k in finite[n] if re.fullmatch(r"A\d+", k)]
        if prog.equations.has_stream:
            # the top of the stream (tau = 1), the one position that lines up across depths
            finite[n]["Htop"] = sim.order[max((k for k in sim.order if re.fullmatch(r"H\d+", k)), key=lambda k: int(k[1:]))]
        finite[n].update(sim.losses)   # the batch and held-out losses (docs/theory.md#training-setups)
    if prog.equations.tokens:
        ref.update(dmft_logit_means(ref, spec))
        ref_se.update(dmft_logit_means(ref_se, spec))
    if prog.equations.has_stream and (along_depth or not prog.equations.tokens):
        top = f"H{stream_top(prog.equations)}"
        ref["Htop"], ref_se["Htop"] = ref[top], ref_se[top]
    # along L the layers of different depths do not line up: the output and the top of the stream do
    default = ["loss", "f", "Htop"] if along_depth else compared(prog, order_names)
    default[1:1] = [k for k in ("loss_batch", "loss_test") if k in ref]
    qs = [q for q in (quantities or default) if q in ref]
    ref_runs = reference_runs(prog, runs, qs)
    if prog.equations.coefficients.get("f0:readout", 0) != 0:
        # a random O(1) output at init: compare each network with the DMFT given its own f(0)
        ref, finite, ref_se = _conditional_on_f0(prog, ref, finite, qs)
        ref_runs = None
    predicted, notes = predicted_rates(prog, name)
    notes += depth_note
    controls = {n: init_controls(prog, d, n, name) for n, d in finite.items()}
    if name == "L" or not all(z is not None and seeds >= 8 * (z.shape[1] + 1) for z in controls.values()):
        controls = None  # too few seeds to fit them (each half fits p of them on S / 2 seeds)
    else:
        notes += (f"Biases adjusted with {next(iter(controls.values())).shape[1]} control variates of known "
                  "mean zero: f(0) and the kernels at initialization minus their exact conditional means.",)
    report = crosscheck({q: ref[q] for q in qs}, {n: {q: d[q] for q in qs} for n, d in finite.items()},
                        size_name=name, predicted=predicted, reference_se={q: ref_se[q] for q in qs},
                        reference_runs=ref_runs, controls=controls, notes=notes)
    if prog.equations.heads == "sites" and name == "H" and logits:
        laws = logit_laws(runs, logits, spec)
        report = dataclasses.replace(report, summary=report.summary + "\n" + laws.summary())
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            write_json_atomic(out_dir / "logits.json", laws.to_json())
            plot_logit_laws(laws, [_logit_blocks(r, spec) for r in runs], logits, out_dir / "logits.png")
    if out_dir is not None:
        _write(report, ref, finite, out_dir, name, ref_se)
    return report


def size_ensemble(k: int) -> int:
    """The simulator's ensemble seed of the k-th size (ascending): k, so the sizes' ensembles are independent.

    `Network.init` draws network i of ensemble `seed` as rng(seed, i, param).standard_normal(shape): with one
    seed for every size, network i at N = 512 holds network i at N = 64 (its first 64 rows of W1 and of the
    readout, the same numbers), so the sizes' seed means share their noise (corr sqrt(n / n') for Phi1 at
    t = 0) and one excursion of the seeds shows at every size. The fits (`crosscheck.fit`) take the sizes'
    distances as independent: that common excursion reads as a floor. Measured (mlp_mup_tanh, 2048 networks
    per size, one ensemble for all sizes): Phi1 at t = 0 (no finite-size bias at all: layer 1's units are
    i.i.d. given the data) off its exact Gaussian integral by 3.6e-4, 3.2e-4, 3.5e-4, 3.3e-4 (+- 3.4, 2.5, 2.0,
    1.4e-4) at N = 64, 128, 256, 512; ensembles 7 and 8 at N = 512: -1.7e-4 +- 1.2e-4, -1.4e-4 +- 1.2e-4.
    """
    return k


def head_averaged_logits(logits: np.ndarray) -> dict[str, np.ndarray]:
    """A1, A2, ...: the simulator's logits (seeds, T+1, L_attn, H, P, S, S) averaged over heads, one per
    attention block: (seeds, T+1, P, S, S). Their limit is the DMFT's Lam (N -> oo: every head's; H -> oo:
    the mean over heads)."""
    mean = np.asarray(logits).mean(axis=3)
    return {f"A{i + 1}": mean[:, :, i] for i in range(mean.shape[2])}


def dmft_logit_means(arrays: Mapping[str, np.ndarray], spec: Spec) -> dict[str, np.ndarray]:
    """A1, A2, ...: the DMFT's logits Lam{l} (n_t, PS, PS), attention blocks in ascending l, cut to the
    blocks of one sequence: (n_t, P, S, S)."""
    layers = sorted(int(k[3:]) for k in arrays if re.fullmatch(r"Lam\d+", k))
    if not layers:
        return {}
    out = dmft_logit_blocks({l: np.asarray(arrays[f"Lam{l}"])[:, None] for l in layers}, *_p_s(arrays, spec))
    return {f"A{i + 1}": out[:, i, 0] for i in range(out.shape[1])}


def logit_laws(runs: Sequence[Mapping[str, np.ndarray]], logits: Mapping[int, np.ndarray], spec: Spec):
    """The law of the logits across heads, finite networks at each H against the DMFT's head draws
    (`dmftc.crosscheck.logits`)."""
    return compare_logit_laws([_logit_blocks(r, spec) for r in runs], logits)


def _logit_blocks(arrays: Mapping[str, np.ndarray], spec: Spec) -> np.ndarray:
    heads = {int(k[6:]): v for k, v in arrays.items() if re.fullmatch(r"logits\d+", k)}
    return dmft_logit_blocks(heads, *_p_s(arrays, spec))


def _p_s(arrays: Mapping[str, np.ndarray], spec: Spec) -> tuple[int, int]:
    S = int(spec.sizes["S"])
    return np.shape(arrays["f"])[-1], S


#: activations whose derivative jumps (at 0): the lazy limit is approached as N^-1/2 (`predicted_rates`)
KINKED = frozenset({"relu"})


def predicted_rates(prog: Program, size_name: str) -> tuple[dict[str, float], tuple[str, ...]]:
    """Predicted exponents of the bias and the fluctuation along `size_name`, and why where not the default.

    Bias n^-1 and fluctuation n^-1/2 (docs/theory.md#finite-size); along L the bias falls as L^-p with p the
    depth grid's order (`depth_order`: 1, or 1/2 with Brownian sources and a kinked activation), and
    at fixed N a network's spread is set by N and does not vanish (fluctuation exponent 0: flat, or
    levelling off as the random branches' share falls as 1/L, see `crosscheck.fit.compare_rate`).
    In a lazy limit with an activation whose
    derivative jumps (ReLU) the bias falls only as N^-1/2: the finite network is the feature-learning
    one at gamma0 ~ N^-1/2, each unit's preactivation moves O(gamma0) with a random sign, and the
    units that cross the kink change phi' by O(1); their net flux is ~ E|velocity| ~ |gamma0|, an
    O(N^-1/2) mean shift of the kernels (the feature-learning DMFT itself is non-analytic in gamma0,
    measured: f - f_lazy ~ |gamma0| for relu, gamma0^2 for erf). Smooth activations keep N^-1.
    Where the kink makes the leading order 1/2, the smooth part's n^-1 is its next order ("bias_next"):
    over a finite range of sizes the two together fall faster than n^-1/2.
    """
    rates = {"bias": -1.0, "fluct": 0.0 if size_name == "L" else -0.5}
    eqs = prog.equations
    if size_name == "L":
        p, why = depth_order(prog)
        if p == 1:
            return rates, ()
        return {**rates, "bias": -p, "bias_next": -1.0}, (f"Predicted bias L^-{p:g} (next order L^-1): {why}.",)
    if eqs.regime != "lazy" or eqs.activation not in KINKED:
        return rates, ()
    note = (f"Predicted bias {size_name}^-1/2, not {size_name}^-1: in the lazy limit each unit moves "
            f"O({size_name}^-1/2) with a random sign and {eqs.activation}'s derivative jumps at 0, so the flux "
            f"of units across the kink shifts the mean kernels by O({size_name}^-1/2) (the feature-learning DMFT "
            f"is non-analytic in gamma0 ~ {size_name}^-1/2); smooth activations give {size_name}^-1.")
    return {**rates, "bias": -0.5, "bias_next": -1.0}, (note,)


def reference_runs(prog: Program, runs: Sequence[Mapping[str, np.ndarray]], qs: Sequence[str]) -> dict | None:
    """Each compared quantity over the DMFT's Monte Carlo runs, (K, ...); None with fewer than 4 runs
    (then the runs' standard errors stand in, with a conservative bound on their correlations)."""
    if len(runs) < 4:
        return None
    per_run = [{**r, **_derived(prog, r)} for r in runs]
    return {q: np.stack([np.asarray(r[q]) for r in per_run]) for q in qs}


def _derived(prog: Program, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The compared quantities that `run_check` derives from a solution's arrays (head-averaged
    logits of transformers, the top-of-stream kernel of residual networks)."""
    out = dmft_logit_means(arrays, prog.spec) if prog.equations.tokens else {}
    if prog.equations.has_stream:
        out["Htop"] = arrays[f"H{stream_top(prog.equations)}"]
    return out


def stream_top(eqs) -> int:
    """The position of the top of the residual stream: the last position with a stream kernel H (the
    positions after it are populations inside the branches, docs/theory.md#populations)."""
    written = eqs.written_layers()
    return max(l for e in eqs.equations if e.kind == "kernel" and e.lhs.base.name == "H" for l in written[e.label])


def init_controls(prog: Program, arrays: Mapping[str, np.ndarray], n: int, size_name: str) -> np.ndarray | None:
    """Control variates of an MLP ensemble, (seeds, p): statistics at initialization of mean exactly zero.

    f(0) (the readout's sign symmetry); Phi^1(0,0) - k(Phi^0) and Phi^{l+1}(0,0) - k(Phi^l(0,0)),
    with k the Gaussian kernel map phi_kernel and the empirical Phi^l of the same network (given layer
    l, the units of layer l + 1 are i.i.d. Gaussian with that covariance, times m^2 sigma^2 fan_in);
    G^L(0,0) - sigma_w^2 k'(Cov h^L), k' = dphi_kernel (at t = 0 the top backward field is the readout
    weight times phi'(h^L)). Upper triangles of the P x P kernels. None where they do not apply
    (no feature-learning MLP, or the kernels were not recorded).
    """
    eqs = prog.equations
    if eqs.regime != "feature_learning" or eqs.tokens or eqs.has_stream or "Phi1" not in arrays:
        return None
    covs = _source_covariances(prog, n, size_name, arrays)
    L, P = len(covs), covs[0].shape[-1]
    iu = np.triu_indices(P)
    # a site whose features are not one activation of its preactivation (a chain of several pointwise
    # ops, or a layernorm: `Site.activation` None) has no Gaussian kernel map: no control of it
    sites = {s.name: s for s in _network(prog, n, size_name)[0].sites}
    acts = [sites[f"Phi{l}"].activation if f"Phi{l}" in sites else None for l in range(1, L + 1)]
    cols = [np.asarray(arrays["f"])[:, 0, :]]
    for l in range(1, L + 1):
        if acts[l - 1] is not None:
            cols.append((_phi0(arrays, f"Phi{l}") - _kernel_map("phi", acts[l - 1], covs[l - 1]))[:, iu[0], iu[1]])
    if acts[L - 1] is not None:
        top = _phi0(arrays, f"G{L}") - _readout_var(prog, n, size_name) * _kernel_map("dphi", acts[L - 1],
                                                                                      covs[L - 1])
        cols.append(top[:, iu[0], iu[1]])
    return np.concatenate(cols, axis=1)


def _phi0(arrays: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    """A recorded two-time kernel at t = s = 0: (seeds, T+1, P, T+1, P) -> (seeds, P, P), float64."""
    return np.asarray(arrays[name], dtype=float)[:, 0, :, 0, :]


def _source_covariances(prog: Program, n: int, size_name: str, arrays) -> list[np.ndarray]:
    """Cov of h^l given layer l - 1 at t = 0, per seed: s_1 Phi^0, s_2 Phi^1_N(0,0), ... (s_l = m^2 sigma^2 fan_in)."""
    net, X = _network(prog, n, size_name)
    dense = [net.params[la.params["W"]] for la in net.layers if la.kind == "dense"]
    scale = [p.multiplier**2 * p.init_std**2 * p.shape[1] for p in dense]
    seeds = np.shape(arrays["f"])[0]
    flat = np.asarray(X, dtype=float).reshape(X.shape[0], -1)
    phi0 = np.broadcast_to(flat @ flat.T / flat.shape[1], (seeds, X.shape[0], X.shape[0]))
    return [scale[0] * phi0] + [scale[l] * _phi0(arrays, f"Phi{l}") for l in range(1, len(dense))]


def _readout_var(prog: Program, n: int, size_name: str) -> float:
    """sigma_w^2 of the readout weights (the simulator's G is normalised by the readout multiplier)."""
    net, _ = _network(prog, n, size_name)
    return float(net.params[net.layers[-1].params["w"]].init_std ** 2)


def _network(prog: Program, n: int, size_name: str):
    """The simulator's network of the spec at size n, and the data X (training points, then held-out ones)."""
    from .simulate import build_network
    from .spec import load_data

    X, _ = load_data(prog.spec)
    return build_network(prog.spec, {size_name: n}, X.shape), prog.data()[0]


def _kernel_map(kind: str, activation: str, cov: np.ndarray) -> np.ndarray:
    """E[phi(u) phi(u)^T] ("phi") or E[phi'(u) phi'(u)^T] ("dphi") for u ~ N(0, cov), per seed, in float64
    (arccos near a unit correlation loses half its digits in float32)."""
    import jax

    from .runtime.closed_forms import dphi_kernel, phi_kernel

    fn = {"phi": phi_kernel, "dphi": dphi_kernel}[kind]
    with jax.enable_x64(True):
        return np.asarray(jax.vmap(lambda K: fn(activation, K))(jax.numpy.asarray(cov, dtype="float64")))


def _record(prog: Program, quantities: Sequence[str] | None) -> str:
    """What the simulator records: "none" when only loss and f are compared (lazy MLPs), else "full"."""
    eqs = prog.equations
    kernels = eqs.tokens or eqs.has_stream or (
        eqs.regime == "feature_learning" and eqs.has_backward_fields)
    if quantities is not None:
        kernels = bool(set(quantities) - {"loss", "f"})
    return "full" if kernels else "none"


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


def _write(report, ref, finite, out_dir: Path, name: str, ref_se=None) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out_dir / "check.json", report.to_json())
    means, ses = {}, {}
    for n, d in finite.items():
        means[n], ses[n] = seed_mean_se(d["loss"])
    plot_curves(ref["loss"], means, ses, out_dir / "loss_curves.png", size_name=name,
                reference_se=None if ref_se is None else ref_se.get("loss"))
    for q in report.to_json().get("quantities", {}):
        plot_convergence(report, q, out_dir / f"convergence_{q}.png")
