"""Which training points each step's batch holds (`training.batches`), checked against the data."""

from __future__ import annotations

import numpy as np

from ..errors import Problem, SpecError


def batch_indices(plan, n_train: int, steps: int) -> tuple[np.ndarray, ...]:
    """The training-point indices of each step (see `dmftc.spec.types.Batches`); all points for None.

    Random batches: each epoch a permutation of the training points (numpy default_rng(seed)) cut into
    n_train // size batches of `size` (the remainder of an epoch is dropped, as drop_last does). Online: step t takes points size*t .. size*(t+1) - 1, each seen once.
    A fixed list is cycled. An index past the training set is an error naming it.
    """
    if plan is None:
        return tuple(np.arange(n_train) for _ in range(steps))
    if plan.fixed is not None:
        bad = sorted({i for b in plan.fixed for i in b if i >= n_train})
        if bad:
            raise _refused(plan, "training.batches", f"batch indices {bad[:5]} are past the "
                           f"{n_train} training points", f"use indices 0 .. {n_train - 1}")
        return tuple(np.asarray(plan.fixed[t % len(plan.fixed)]) for t in range(steps))
    if plan.size > n_train:
        raise _refused(plan, "training.batches.size", f"batches of {plan.size} from {n_train} "
                       "training points", f"use a size of at most {n_train}")
    if plan.online:
        if plan.size * steps > n_train:
            raise _refused(plan, "training.batches", f"online learning over {steps} steps of "
                           f"{plan.size} fresh points needs {plan.size * steps} training points; the data have "
                           f"{n_train}", f"set data.synthetic.P to {plan.size * steps} or more")
        return tuple(np.arange(plan.size * t, plan.size * (t + 1)) for t in range(steps))
    rng = np.random.default_rng(plan.seed)
    per_epoch = n_train // plan.size
    out: list[np.ndarray] = []
    while len(out) < steps:
        order = rng.permutation(n_train)
        out += [np.sort(order[plan.size * k:plan.size * (k + 1)]) for k in range(per_epoch)]
    return tuple(out[:steps])


def _refused(plan, path: str, message: str, hint: str) -> SpecError:
    return SpecError([Problem(message, plan.pos, path, hint=hint)])
