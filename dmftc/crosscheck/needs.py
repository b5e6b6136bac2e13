"""What a measurement over growing sizes needs, in sizes and seeds: one rule for the code that makes
the numbers (`fit.compare_rate`, `fit.fit_floor`, `heads.judge`, `heads.check_sweep`, `stats.distance`)
and for the command line, which applies it before any work: `dmftc heads --sizes N=64` is refused at
once, not after the simulations. Imports nothing but `dmftc.errors`.
"""

from __future__ import annotations

from collections.abc import Sequence

from dmftc.errors import DmftcError

#: one size gives no rate: a power law's exponent needs two sizes (`fit.compare_rate`, `dmftc check`)
RATE_SIZES = 2
#: a verdict that also tests the fit needs a degree of freedom more: the floor model (`fit.fit_floor`)
#: and every head verdict (`heads.judge`, `dmftc heads`)
VERDICT_SIZES = 3
#: a standard error of a seed mean needs two seeds (ddof = 1; `dmftc heads`)
SE_SEEDS = 2
#: the debiased distances of `dmftc check` need four (`stats.distance`: U-statistics over seed pairs
#: and tr((W Sigma)^2) from four seeds)
DISTANCE_SEEDS = 4


def require_sizes(values: Sequence[int], minimum: int, size_name: str, command: str) -> None:
    """Refuse fewer than `minimum` distinct sizes, naming what they are for and an example."""
    k = len(set(values))
    if k >= minimum:
        return
    what = "a rate" if minimum <= RATE_SIZES else "a verdict"
    got = ",".join(str(v) for v in values) or "none"
    start = min(values, default=64)
    example = ",".join(str(start * 2**i) for i in range(max(minimum, VERDICT_SIZES)))
    raise DmftcError(f"{command} needs at least {minimum} sizes of {size_name} for {what} (got {k}: "
                     f"{size_name}={got}); e.g. --sizes {size_name}={example}")


def require_seeds(seeds: int, minimum: int) -> None:
    """Refuse fewer than `minimum` seeds: the standard errors need them."""
    if seeds < minimum:
        raise DmftcError(f"seeds={seeds}: standard errors need at least {minimum} seeds (8 or more recommended)")
