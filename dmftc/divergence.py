"""Runs that left the rails: a loss far beyond its start, or any value that is not finite, is an error.

Gradient descent with too large a step size is a discrete map whose error grows geometrically:
the loss runs off to 1e200 and then to inf and NaN. A number printed from such a run is no
number, so `solve`, `simulate` (and `check`, `heads`, sweeps through them) stop with a
`SolverError` naming the step where the run left and the remedy.

A run has left at the first step t where the loss is not finite or

    loss(t) > DIVERGENCE_FACTOR * max(loss(0), loss of the zero predictor),

the zero predictor's loss (1/2P) sum_mu y_mu^2 being the scale of the targets. Training can
overshoot (the edge of stability raises the loss for a while), but not by four orders of
magnitude and stay a meaningful trajectory.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from .errors import SolverError

#: how far above its start (or the targets' scale) a loss may go before the run counts as diverged
DIVERGENCE_FACTOR = 1e4


def first_departure(loss: np.ndarray, scale: float = 0.0) -> int | None:
    """The first step t at which any curve in `loss` (..., T + 1) diverged, or None.

    Parameters
    ----------
    loss : loss curves, time on the last axis (a solve's (T + 1,), an ensemble's (seeds, T + 1)).
    scale : the zero predictor's loss; the threshold is DIVERGENCE_FACTOR x max(loss(0), scale).
    """
    loss = np.asarray(loss, dtype=np.float64)
    if loss.size == 0:
        return None
    with np.errstate(invalid="ignore", over="ignore"):
        start = np.maximum(np.nan_to_num(loss[..., :1], nan=0.0, posinf=0.0), scale)
        bad = ~np.isfinite(loss) | (loss > DIVERGENCE_FACTOR * start)
    steps = np.flatnonzero(bad.reshape(-1, loss.shape[-1]).any(axis=0))
    return int(steps[0]) if steps.size else None


def check_run(what: str, loss: np.ndarray, arrays: Mapping[str, np.ndarray], remedy: str,
              scale: float = 0.0) -> None:
    """Raise `SolverError` when the run `what` diverged (see the module docstring).

    Parameters
    ----------
    what : names the run in the message ("the DMFT solve of mlp_mup_relu").
    loss : its loss curves, time on the last axis.
    arrays : every other array of the run, by name; any non-finite value is an error too.
    remedy : what to change, in a sentence.
    scale : the zero predictor's loss (see `first_departure`).
    """
    t = first_departure(loss, scale)
    if t is not None:
        loss = np.asarray(loss, dtype=np.float64).reshape(-1, np.shape(loss)[-1])
        start = float(np.max(loss[:, 0])) if np.all(np.isfinite(loss[:, 0])) else float("nan")
        reached = loss[:, t]
        at = f"{float(np.max(reached)):.3g}" if np.all(np.isfinite(reached)) else "NaN or inf"
        raise SolverError(
            f"{what} diverged: the loss left its start at step {t} of {loss.shape[1] - 1} "
            f"({start:.3g} at step 0, {at} at step {t}; the limit is {DIVERGENCE_FACTOR:.0e} x its start "
            f"or the targets' scale, or any non-finite value). {remedy}")
    bad = sorted(k for k, v in arrays.items() if not np.all(np.isfinite(np.asarray(v, dtype=np.float64))))
    if bad:
        shown = ", ".join(bad[:8]) + (f" and {len(bad) - 8} more" if len(bad) > 8 else "")
        raise SolverError(f"{what} produced NaN or inf in {shown} while its loss stayed finite. {remedy}")


def targets_scale(y) -> float:
    """The zero predictor's loss (1/2P) sum_mu |y_mu|^2 (mean over every target entry)."""
    y = np.asarray(y, dtype=np.float64)
    return 0.5 * float(np.mean(np.square(y))) if y.size else 0.0
