"""Error bars, bias and requested accuracy of a Monte Carlo DMFT solve.

A Monte Carlo solve with M draws of the single-site process is a smooth function of the empirical
measure of its draws. Like a network of width M, it fluctuates by O(M^-1/2) and is biased by O(n / M),
n the dimension of a source's history (kernels estimated from M draws feed the next layer's sources and
the responses). Both are measured on the solve's own machinery by cutting its M draws into K independent
batches (`rt.batch_keys`) and solving at three levels of the same draws:

    X_M        the solve on all M draws (control variates and shared factors included);
    X_{M/2}    the mean of the solves on the two halves (batches 0..K/2-1 and K/2..K-1);
    X_{M/K}    the mean of the K batch solves, with their spread s_K.

With E X_m = X + a / m + c / m^2 and Var X_m = v / m (to leading order):

    se       = s_K / sqrt(K)                     the standard error of X_M (batch means);
    bias     = X_{M/2} - X_M = a / M + 3 c / M^2  removed: the value is X = 2 X_M - X_{M/2}
                                                 (Richardson extrapolation in 1 / M);
    residual = -2 (b_K - bias) / (K - 2) = -2 c / M^2 + ...,  b_K = (X_{M/K} - X_M) / (K - 1),
               the bias left in X (the second order, from the third level).

To first order the three levels fluctuate alike (each is the mean over all M draws of one influence
function), so X has the standard error of X_M and `bias` carries no first-order noise. The cost is
three solves' worth of draws (1 + 2 x 1/2 + K x 1/K) and three compilations.

`solve_to_accuracy` grows M until max_t sqrt(se^2 + residual^2) of the loss is within
max(atol, rtol x the loss range), choosing the smallest M that its error model predicts meets the
target, and refuses with the figure when the machine cannot hold that M.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from .errors import DmftcError

#: batches of the error analysis (even; 8 gives the standard errors 7 degrees of freedom)
DEFAULT_BATCHES = 8
#: arrays that are samples (single heads' logits), not expectations: no error bar, the full solve's value
SAMPLE_PREFIXES = ("logits",)
#: most rounds `solve_to_accuracy` tries, and the most each round multiplies the draws by
MAX_ROUNDS = 6
MAX_GROWTH = 8
#: most independent replicas past the memory (each a full solve's work at the largest M that fits)
MAX_REPLICAS = 64


@dataclass(frozen=True)
class Estimate:
    """A Monte Carlo solve with its error analysis.

    value: the bias-corrected arrays (2 X_M - X_{M/2}); se: their standard errors; bias: the O(1/M)
    bias of X_M that was removed (X_{M/2} - X_M); residual: the estimated bias left in `value`.
    full: X_M itself. samples M and batches K as solved.
    """

    value: Mapping[str, np.ndarray]
    se: Mapping[str, np.ndarray]
    bias: Mapping[str, np.ndarray]
    residual: Mapping[str, np.ndarray]
    full: Mapping[str, np.ndarray]
    samples: int
    batches: int
    solves: int = 0
    parts: tuple[Mapping[str, np.ndarray], ...] = field(default=(), repr=False)
    #: independent replicas averaged (`combine`), each of `samples` draws
    replicas: int = 1

    def runs(self) -> list[dict[str, np.ndarray]]:
        """K pseudo-runs: the batch solves moved onto the value, X + (X_b - mean_b X_b).

        Their mean is the value and their seed-mean standard error sd_b / sqrt(K) is `se`, so code
        that takes independent runs (dmftc check's reference) reads this estimate unchanged.
        """
        K, out = len(self.parts), []
        for b, p in enumerate(self.parts):
            # sample arrays (t, head, ...): run b holds every K-th of the full solve's heads, so together
            # the runs hold each head once
            out.append({k: (v[:, b::K] if k.startswith(SAMPLE_PREFIXES) else
                            v + p[k] - np.mean([q[k] for q in self.parts], axis=0)) for k, v in self.value.items()})
        return out

    def total(self, name: str = "loss") -> np.ndarray:
        """sqrt(se^2 + residual^2): the reported total error of one array."""
        return np.hypot(self.se[name], self.residual[name])


def batch_samples(samples: int, batches: int) -> int:
    """The draws rounded up so that each of the `batches` batches holds an even number (antithetic pairs)."""
    unit = 2 * batches
    return unit * max(1, math.ceil(samples / unit))


def check_batches(batches: int) -> None:
    if batches < 4 or batches % 2:
        raise DmftcError(f"solver.batches = {batches}: the error analysis needs an even number of batches, at "
                         "least 4 (halves and a third level for the residual bias); use 8 (the default)")


def kept_runs(batches: int) -> int:
    """The solutions an error analysis holds at its peak, in units of one solve's arrays: the full solve,
    its two halves and its K batch solves (kept: `Estimate.parts`), the K batches stacked for their
    spread, and value, se, bias and residual: 2 K + 7. For the memory budget (`dmftc.budget`): measured on
    transformer_mup (10 steps, 256 draws, K = 8, 60 MiB of arrays per solve), 2.25 GiB at the peak
    against 0.82 GiB for the plain solve; the budget with 2 K + 7 runs says 2.1 GiB."""
    return 2 * batches + 7


def estimate(run: Callable[[int, tuple[int, int, int]], Mapping[str, np.ndarray]], samples: int,
             batches: int = DEFAULT_BATCHES) -> Estimate:
    """The error analysis of one solve: `run(samples, (first, stop, of))` solves on batches first..stop-1.

    `samples` must be a multiple of 2 x batches (`batch_samples`).
    """
    check_batches(batches)
    K, M = batches, samples
    if M % (2 * K):
        raise ValueError(f"samples {M} is not a multiple of 2 x batches = {2 * K}")
    full = _arrays(run(M, (0, K, K)))
    halves = [_arrays(run(M // 2, (h * K // 2, (h + 1) * K // 2, K))) for h in (0, 1)]
    parts = [_arrays(run(M // K, (b, b + 1, K))) for b in range(K)]
    value, se, bias, residual = {}, {}, {}, {}
    for name, X in full.items():
        if name.startswith(SAMPLE_PREFIXES):
            value[name], se[name], bias[name], residual[name] = X, *(np.full_like(X, np.nan) for _ in range(3))
            continue
        X2 = 0.5 * (halves[0][name] + halves[1][name])
        XK = np.stack([p[name] for p in parts])
        b = X2 - X
        bK = (XK.mean(0) - X) / (K - 1)
        value[name] = X - b
        se[name] = XK.std(0, ddof=1) / math.sqrt(K)
        bias[name] = b
        residual[name] = -2.0 * (bK - b) / (K - 2)
    return Estimate(value, se, bias, residual, full, M, K, solves=1 + 2 + K, parts=tuple(parts))


def target(loss: np.ndarray, rtol: float | None, atol: float | None) -> float:
    """max(atol, rtol x (max loss - min loss)): the accuracy asked of every step of the loss curve."""
    span = float(np.max(loss) - np.min(loss))
    return max(atol or 0.0, (rtol or 0.0) * span)


def needed_samples(est: Estimate, tol: float, aim: float = 0.85) -> int:
    """The smallest M the error model predicts puts every step's total error at `aim` x tol.

    With x = M_now / M, se^2 scales as x and the residual as x^2 (its order, c / M^2): per step the
    root of se^2 x + res^2 x^4 = (aim tol)^2 in (0, 1], by bisection; the smallest x over steps wins.
    The residual's own order matters: read as ~ 1/M, a residual overestimated at a small first round
    (its batches past the 1/M law) sent the reference spec's --rtol 1e-3 to 19x the draws it needed.
    A residual that falls slower than predicted only costs another round: each round checks again.
    """
    se2 = np.asarray(est.se["loss"], float) ** 2
    r2 = np.asarray(est.residual["loss"], float) ** 2
    goal = (aim * tol) ** 2
    err2 = lambda x: se2 * x + r2 * x ** 4
    lo, hi = np.zeros_like(se2), np.ones_like(se2)
    for _ in range(80):                      # err2 grows with x: keep err2(lo) <= goal
        mid = 0.5 * (lo + hi)
        ok = err2(mid) <= goal
        lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
    smallest = float(np.min(np.where(err2(np.ones_like(se2)) <= goal, 1.0, lo)))
    grow = 1e15 if smallest <= 0 else min(max(1.0 / smallest, 1.0), 1e15)  # 1e15: far past any machine
    return batch_samples(int(math.ceil(est.samples * est.replicas * grow)), est.batches)


@dataclass(frozen=True)
class Accuracy:
    """What `solve_to_accuracy` did: the target, the error reached, the draws of each round."""

    tol: float
    error: float
    met: bool
    rounds: tuple[int, ...]

    def describe(self) -> str:
        tried = " -> ".join(str(m) for m in self.rounds)
        verdict = "met" if self.met else "NOT met"
        return f"target {self.tol:.3g} {verdict}: error {self.error:.3g} (draws tried: {tried})"


def solve_to_accuracy(run_estimate: Callable[[int, int], Estimate], samples: int, batches: int, *,
                      rtol: float | None, atol: float | None, fits: Callable[[int], None]) -> tuple[Estimate, Accuracy]:
    """Grow the draws until max_t sqrt(se^2 + residual^2) of the loss <= max(atol, rtol x loss range).

    run_estimate(M, replica) solves with the error analysis at M draws (replica r: its own seed); fits(M)
    raises a DmftcError (with the figure) when M draws do not fit this machine. Each round jumps to the M
    its error model predicts (at least 1.25 x, at most MAX_GROWTH x the last), so the work stays near
    the least that meets the target. Past the memory, the draws go into independent replicas of the largest M that fits,
    averaged (`combine`): their standard error falls as 1/sqrt(replicas); their residual bias is that of
    one replica, so a target that needs a smaller residual than the largest M gives is refused.
    """
    if not (rtol or atol):
        raise DmftcError("an accuracy target needs rtol > 0 or atol > 0 (e.g. --rtol 1e-2: 1 % of the loss range)")
    M, replicas = batch_samples(samples, batches), 1
    rounds = []
    while True:
        fits(M)
        est = combine([run_estimate(M, r) for r in range(replicas)])
        rounds.append(M * replicas)
        tol = target(est.value["loss"], rtol, atol)
        err = float(np.max(est.total("loss")))
        if err <= tol:
            return est, Accuracy(tol, err, True, tuple(rounds))
        if len(rounds) >= MAX_ROUNDS:
            raise DmftcError(f"the accuracy target {tol:.3g} (rtol {rtol}, atol {atol}) was not met in {MAX_ROUNDS} "
                             f"rounds (draws tried: {' -> '.join(map(str, rounds))}; loss error {err:.3g}): the "
                             "errors do not fall as the error model says; solve with a fixed --samples and read "
                             "solution.json's errors")
        needed = needed_samples(est, tol)
        try:
            fits(needed)
        except DmftcError as e:
            cap = largest_fitting(fits, M, needed, batches)
            res = float(np.max(np.abs(est.residual["loss"]))) * (M / cap) ** 2  # at the cap, as `needed_samples`
            if res > 0.5 * tol:
                raise DmftcError(f"the accuracy target {tol:.3g} (rtol {rtol}, atol {atol}) needs about {needed} "
                                 f"draws (at {rounds[-1]} the loss error is {err:.3g}); one solve on this machine "
                                 f"holds at most {cap}, whose residual bias (about {res:.2g}) is already above the "
                                 "target; loosen the target (--rtol, --atol) or use a machine with more memory. "
                                 f"The budget: {e}") from e
            replicas = math.ceil(needed / cap)
            if replicas > MAX_REPLICAS:
                raise DmftcError(f"the accuracy target {tol:.3g} (rtol {rtol}, atol {atol}) needs about {needed} "
                                 f"draws (at {rounds[-1]} the loss error is {err:.3g}): {replicas} replicas of "
                                 f"the {cap} draws one solve on this machine holds, more than {MAX_REPLICAS}; loosen "
                                 "the target (--rtol, --atol) or use a machine with more memory")
            M = cap
            continue
        # at most MAX_GROWTH x per round: a small round's batches sit past the 1/M law and overstate its
        # errors (reference spec, P = 8, T = 10: se 5.7e-3 at 704 draws, 1.1e-3 at 8192, not 1.7e-3), so
        # a long jump from it overshoots; the geometric rounds cost at most 1/(MAX_GROWTH - 1) more
        M = max(min(needed, MAX_GROWTH * M * replicas), M * replicas + M * replicas // 4)
        M, replicas = batch_samples(M, batches), 1


def largest_fitting(fits: Callable[[int], None], low: int, high: int, batches: int) -> int:
    """The largest M in [low, high) (a multiple of 2 x batches) that `fits` accepts, by bisection."""
    unit = 2 * batches
    lo, hi = low // unit, high // unit
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            fits(mid * unit)
            lo = mid
        except DmftcError:
            hi = mid
    return lo * unit


def combine(ests: list[Estimate]) -> Estimate:
    """Independent replicas averaged: value, bias and residual the means, se the root sum of squares / R."""
    if len(ests) == 1:
        return ests[0]
    R = len(ests)
    mean = lambda name: {k: np.mean([e.__dict__[name][k] for e in ests], axis=0) for k in ests[0].value}
    se = {k: np.sqrt(np.sum([e.se[k] ** 2 for e in ests], axis=0)) / R for k in ests[0].value}
    value, full = mean("value"), mean("full")
    for k in value:
        if k.startswith(SAMPLE_PREFIXES):  # draws: the first replica's, as one solve gives them
            value[k], full[k] = ests[0].value[k], ests[0].full[k]
    return Estimate(value, se, mean("bias"), mean("residual"), full, ests[0].samples, ests[0].batches,
                    solves=sum(e.solves for e in ests), parts=tuple(p for e in ests for p in e.parts), replicas=R)


def _arrays(out: Mapping[str, Any]) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in out.items()}
