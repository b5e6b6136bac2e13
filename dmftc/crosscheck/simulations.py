"""`dmftc check` on simulations alone, where no DMFT exists (Adam, docs/theory.md#training-setups).

The finite networks are their own reference: ensembles at growing sizes, each independent of the
others (its own seed sequence), compared size with next size (`crosscheck.cauchy`). The predicted
rates come from the scaling analysis's regime, as `dmftc check` takes them from the DMFT's: a
limit that exists is approached as n^-1 by the seed mean (n^-1/2 in a lazy limit with a kinked
activation) with single networks spread as n^-1/2 (finite where the output at initialization is
an O(1) random variable); a limit the analysis finds unstable fails the check whatever is measured.

Like `crosscheck.heads`, it runs the simulator and the analysis, so it ranks above them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from dmftc.budget import check_ensembles, check_simulation
from dmftc.crosscheck.cauchy import CAUCHY_SEEDS, CAUCHY_SIZES, cauchy_check
from dmftc.crosscheck.files import write_json_atomic
from dmftc.crosscheck.plots import plot_convergence, plot_curves
from dmftc.crosscheck.progress import progress
from dmftc.crosscheck.report import Report
from dmftc.crosscheck.stats import seed_mean_se
from dmftc.errors import DmftcError
from dmftc.graph import build_graph
from dmftc.scaling import analyze
from dmftc.spec.types import Spec

#: activations whose derivative jumps at 0: a lazy limit is approached as n^-1/2 (`dmftc.check.KINKED`)
KINKED = frozenset({"relu"})
#: order parameters compared across sizes: the kernels, named as the DMFT names them (Phi1, G1, H3, ...)
ORDER = re.compile(r"(Phi|H|G)\d+")


def run_cauchy_check(spec: Spec, size_name: str, values: Sequence[int], *, seeds: int, out_dir: Path | None,
                     reason: str, quantities: Sequence[str] | None = None) -> Report:
    """Simulate `seeds` networks at each size of `values` along `size_name` and judge their convergence
    among themselves; writes out_dir/check.json and the plots (unless None). `reason`: why no DMFT exists."""
    sizes = sorted(set(int(n) for n in values))
    if len(sizes) < CAUCHY_SIZES:
        raise DmftcError(f"check without a DMFT ({spec.training.optimizer}) compares successive sizes and needs at "
                         f"least {CAUCHY_SIZES} of {size_name} for a rate (got {size_name}="
                         f"{','.join(map(str, sizes))}); e.g. --sizes {size_name}=64,128,256,512")
    if seeds < CAUCHY_SEEDS:
        raise DmftcError(f"seeds={seeds}: check without a DMFT splits each interior size's seeds in two halves of at "
                         f"least {CAUCHY_SEEDS // 2}, so it needs {CAUCHY_SEEDS} or more (16 recommended)")
    scaling = analyze(spec, build_graph(spec))
    regime = scaling.regimes.get(size_name, scaling.regime)
    record = "full" if regime == "feature_learning" and size_name == "N" else "none"
    for n in sizes:  # every ensemble fits this machine before any work (dmftc.budget)
        check_simulation(spec, {size_name: n}, seeds, record=record)
    check_ensembles(spec, [{size_name: n} for n in sizes], seeds, record=record)
    finite = simulate_sizes(spec, size_name, sizes, seeds, record)
    predicted, notes = predicted_rates(spec, scaling, size_name)
    report = cauchy_check(finite, size_name=size_name, predicted=predicted, quantities=quantities, notes=notes,
                          no_limit=no_limit(scaling, size_name), preface=preface(reason, size_name))
    if out_dir is not None:
        write_outputs(report, finite, out_dir)
    return report


def preface(reason: str, size_name: str) -> str:
    """The report's first words: no DMFT, why, and what stands in for it."""
    return (f"No DMFT exists for this spec: {reason}. The reference is the finite networks themselves: each size's "
            f"seed mean is compared with the next size's, and the limit exists when these differences fall at the "
            f"predicted rate as {size_name} grows.")


def simulate_sizes(spec: Spec, size_name: str, sizes: Sequence[int], seeds: int, record: str) -> dict:
    """{n: {quantity: (seeds, ...)}}: loss, f, the batch and held-out losses and (record "full") the kernels,
    one independent ensemble per size (ensemble number k at the k-th size: no network shares its draws)."""
    from dmftc.simulate import simulate

    finite = {}
    for k, n in enumerate(progress(sizes, total=len(sizes), desc=f"check {size_name}")):
        sim = simulate(spec, {size_name: n}, seeds, record=record, seed=k)
        order = {key: v for key, v in sim.order.items() if ORDER.fullmatch(key)}
        finite[n] = {"loss": sim.loss, **sim.losses, "f": sim.f, **dict(sorted(order.items()))}
    return finite


def predicted_rates(spec: Spec, scaling, size_name: str) -> tuple[dict[str, float], tuple[str, ...]]:
    """Exponents of the seed mean's distance from the limit and of one network's spread, from the analysis.

    The mean-field (muP) and lazy rates of `dmftc check`: distance n^-1, spread n^-1/2; in a lazy or
    trivial limit with a kinked activation the distance n^-1/2 (next order n^-1); a spread that stays
    finite (n^0) where the output at initialization is O(1) (its exponent f0 is 0). For Adam these are
    the rates of mean-field SGD carried over: the limit's equations are not known, the rates are what is tested.
    """
    regime = scaling.regimes.get(size_name, scaling.regime)
    rates = {"bias": -1.0, "fluct": -0.5}
    notes = [f"The predicted rates are those of gradient descent in the same regime ({regime.replace('_', ' ')}); "
             f"without a DMFT they are what the measurement tests."]
    symbol = size_name if size_name in scaling.limit else None
    if symbol and "f0" in scaling.exponents and float(scaling.exponent("f0", symbol)) == 0:
        rates["fluct"] = 0.0
        notes.append(f"The output at initialization is O(1) and random, so one network's spread stays finite "
                     f"({size_name}^0).")
    kinks = sorted({n.op.fn for n in build_graph(spec).walk() if n.kind == "act"} & KINKED)
    if regime in ("lazy", "trivial") and kinks:
        rates.update(bias=-0.5, bias_next=-1.0)
        notes.append(f"Predicted distance {size_name}^-1/2 (next order {size_name}^-1): in a lazy limit the units "
                     f"that cross {kinks[0]}'s kink shift the mean by O({size_name}^-1/2).")
    return rates, tuple(notes)


def no_limit(scaling, size_name: str) -> str | None:
    """The analysis's reason why the limit along `size_name` does not exist (regime unstable), or None."""
    if scaling.regimes.get(size_name, scaling.regime) != "unstable":
        return None
    reasons = [r for r in scaling.reasons if "unstable" in r] or list(scaling.reasons)
    return reasons[0] if reasons else "its regime is unstable"


def write_outputs(report: Report, finite: Mapping, out_dir: Path) -> None:
    """check.json, loss_curves.png (every size's seed mean, no DMFT curve) and convergence_<q>.png."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out_dir / "check.json", report.to_json())
    means, ses = {}, {}
    for n, d in finite.items():
        means[n], ses[n] = seed_mean_se(d["loss"])
    plot_curves(None, means, ses, out_dir / "loss_curves.png", size_name=report.size_name)
    for q in report.names:
        plot_convergence(report, q, out_dir / f"convergence_{q}.png")
