"""The training setup as numbers: the update rule, its linear filter, and which points drive each step.

One module read by the finite simulator and the DMFT solve alike (docs/theory.md#training-setups).
Every weight W with learning rate lr_W follows, at step t = 0..T-1 with the step factor s_t
(`training.schedule`), momentum beta, decoupled decay lambda_d and coupled decay lambda_c:

    d_t     = grad_t + lambda_c W_t                           (the gradient, coupled decay added)
    v_{t+1} = beta v_t + d_t,   v_0 = 0                        (heavy ball)
    D_t     = d_t + beta v_{t+1} (Nesterov) or v_{t+1}
    W_{t+1} = W_t - lr_W s_t D_t - lambda_d lr s_t W_t          (lr = training.lr: the global step)

(`update`). The rule is linear in (W, v, grad), so W_t = a(t) W_0 - lr_W sum_{s<t} Kappa(t, s) grad_s:
a(t) is what is left of the initial weights and Kappa(t, s) the weight of step s's gradient in W_t, in
units of lr_W (`filters`: the rule applied to the impulses). Plain GD has a = 1 and Kappa(t, s) = 1 for
s < t. The DMFT multiplies the terms of the initial weights by a(t) and the update terms by Kappa.

The batch of step t is B_t (`dmftc.spec.batching`): the loss the step descends is (1/2|B_t|) sum_{mu in B_t}
(f_mu - y_mu)^2, so the error signal of point mu at step t carries the weight Omega(t, mu) = 1/|B_t|
on the batch and 0 elsewhere (`error_weights`); held-out points have Omega = 0 at every step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import DmftcError
from .spec.batching import batch_indices
from .spec.expr import evaluate as _evaluate
from .spec.sections import SCHEDULE_STEP, SCHEDULE_STEPS
from .notation import hyper_symbol, size_symbol


@dataclass(frozen=True)
class Setup:
    """The training of a spec as numbers (`setup`).

    schedule (T,): the factor s_t of every learning rate at step t; lr: training.lr's value;
    momentum, nesterov, decay (lambda), coupled (whether lambda is added to the gradient);
    batches: the training-point indices of each step t = 0..T-1; n_train, n_test: the points.
    """

    schedule: np.ndarray
    lr: float
    momentum: float
    nesterov: bool
    decay: float
    coupled: bool
    batches: tuple[np.ndarray, ...]
    n_train: int
    n_test: int = 0
    adam: bool = False
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8

    @property
    def steps(self) -> int:
        return len(self.schedule)


def setup(spec, hyper=None, n_test: int | None = None, steps: int | None = None, sizes=None) -> Setup:
    """The `Setup` of `spec` (hyperparameters `hyper`, default spec.hyper) over `steps` steps (default the
    spec's); the training points are the data's P, the held-out ones `data.synthetic.test` (or `n_test`).
    Expressions (lr, momentum, weight decay, schedule) are evaluated at `sizes` (default the spec's)."""
    from .spec.data import data_sizes

    tr = spec.training
    T = steps or tr.steps
    hyper = dict(spec.hyper if hyper is None else hyper)
    values = {size_symbol(k): float(v) for k, v in {**spec.sizes, **(sizes or {})}.items()}
    values.update({hyper_symbol(k): float(v) for k, v in hyper.items()})
    values[SCHEDULE_STEPS] = float(T)

    def value(expr, what):
        try:
            return _evaluate(expr, values)
        except (KeyError, ArithmeticError) as exc:
            raise DmftcError(f"training.{what} = {expr} cannot be evaluated: {exc}") from None

    schedule = np.array([_at(tr.schedule, values, k) for k in range(T)])
    n_train = data_sizes(spec.data)["P"]
    if n_test is None:
        n_test = getattr(spec.data, "test", 0)
    return Setup(schedule, value(tr.lr, "lr"), value(tr.momentum, "momentum"), tr.nesterov,
                 value(tr.weight_decay, "weight_decay"), tr.decay == "coupled",
                 batch_indices(tr.batches, n_train, T), n_train, n_test, tr.adam, tuple(tr.betas), float(tr.eps))


def _at(expr, values, k: int) -> float:
    try:
        return _evaluate(expr, {**values, SCHEDULE_STEP: float(k)})
    except (KeyError, ArithmeticError) as exc:
        raise DmftcError(f"training.schedule = {expr} cannot be evaluated at t = {k}: {exc}") from None


def update(W, v, grad, lr_W: float, t: int, st: Setup):
    """One step of the rule in the module docstring: (W_{t+1}, v_{t+1}) from (W_t, v_t) and grad_t.
    Arithmetic only, so it serves numpy and jax arrays (and the impulses of `filters`)."""
    d = grad + st.decay * W if st.coupled else grad
    v = st.momentum * v + d
    D = d + st.momentum * v if st.nesterov else v
    s = st.schedule[t]
    W_next = W - lr_W * s * D
    if not st.coupled:  # decoupled decay (at lambda = 0 this subtracts an exact 0)
        W_next = W_next - st.decay * st.lr * s * W
    return W_next, v


def adam_update(W, m, v, grad, lr_W: float, t: int, st: Setup):
    """One Adam step (Kingma & Ba, bias-corrected; AdamW's decoupled decay, or coupled as an L2 term):

        d = grad + lambda_c W,  m <- b1 m + (1 - b1) d,  v <- b2 v + (1 - b2) d^2,
        W <- W - lr_W s_t m_hat / (sqrt(v_hat) + eps) - lambda_d lr s_t W,
        m_hat = m / (1 - b1^(t+1)),  v_hat = v / (1 - b2^(t+1)).

    The update of each entry is a nonlinear function of that entry's gradient history: no linear filter
    exists, which is why the DMFT has no solver for it (docs/theory.md#training-setups)."""
    b1, b2 = st.betas
    d = grad + st.decay * W if st.coupled else grad
    m = b1 * m + (1 - b1) * d
    v = b2 * v + (1 - b2) * d * d
    m_hat = m / (1 - b1 ** (t + 1))
    v_hat = v / (1 - b2 ** (t + 1))
    s = st.schedule[t]
    W_next = W - lr_W * s * m_hat / (v_hat ** 0.5 + st.eps)
    if not st.coupled:
        W_next = W_next - st.decay * st.lr * s * W
    return W_next, m, v


def step(W, state: tuple, grad, lr_W: float, t: int, st: Setup):
    """(W_{t+1}, state_{t+1}): `update` (state (v,)) or `adam_update` (state (m, v)) as `st` says."""
    if st.adam:
        W, m, v = adam_update(W, state[0], state[1], grad, lr_W, t, st)
        return W, (m, v)
    W, v = update(W, state[0], grad, lr_W, t, st)
    return W, (v,)


def filters(st: Setup, lr_W: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(a (T+1,), Kappa (T+1, T+1)): W_t = a(t) W_0 - lr_W sum_{s<t} Kappa(t, s) grad_s under `update`.

    Computed by applying `update` to the impulses (W_0 = 1; grad_s = e_s) at once: column 0 of the state
    is the initial weight's, column 1 + s the gradient of step s's. With coupled decay the filters depend
    on lr_W (the decay rate is lr_W lambda_c); otherwise not.
    """
    if st.adam:
        raise DmftcError("Adam's update has no linear filter (it divides each entry by its own gradient scale)")
    T = st.steps
    W = np.zeros(T + 1)
    W[0] = 1.0
    v = np.zeros(T + 1)
    a, K = np.ones(T + 1), np.zeros((T + 1, T + 1))
    for t in range(T):
        grad = np.zeros(T + 1)
        grad[1 + t] = 1.0
        W, v = update(W, v, grad, lr_W, t, st)
        a[t + 1] = W[0]
        K[t + 1, :T] = -W[1:] / lr_W
    return a, K


def error_weights(st: Setup, per_point: int = 1) -> np.ndarray:
    """Omega (T+1, (n_train + n_test) * per_point): 1/|B_t| on the batch of step t, 0 elsewhere (and on
    every held-out point); row T, which drives no update, holds the full training set's 1/n_train.
    `per_point` repeats each point's weight over its S tokens (positions mu * S + s)."""
    T, n = st.steps, st.n_train + st.n_test
    Om = np.zeros((T + 1, n))
    for t, b in enumerate(st.batches):
        Om[t, b] = 1.0 / len(b)
    Om[T, :st.n_train] = 1.0 / st.n_train
    return np.repeat(Om, per_point, axis=1)


def loss_weights(st: Setup, per_point: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) weights over the positions: the training loss is sum_mu train_mu (f_mu - y_mu)^2 / 2,
    train_mu = 1/(n_train per_point) on the training points; test likewise on the held-out points
    (zeros when there are none). Per sequence, the S tokens share its output and its weight."""
    n = st.n_train + st.n_test
    tr, te = np.zeros(n), np.zeros(n)
    tr[:st.n_train] = 1.0 / st.n_train
    if st.n_test:
        te[st.n_train:] = 1.0 / st.n_test
    return np.repeat(tr, per_point) / per_point, np.repeat(te, per_point) / per_point


def arrays(st: Setup, names, per_point: int = 1, lr_W: float = 1.0) -> dict[str, np.ndarray]:
    """The arrays `names` of a DMFT solver's training setup (`EquationSystem.training`): Kappa and adec from
    `filters` (with coupled decay at the weights' common learning rate lr_W), Omega, wtrain, wtest."""
    a, K = filters(st, lr_W)
    train, test = loss_weights(st, per_point)
    table = {"Kappa": lambda: K, "adec": lambda: a, "Omega": lambda: error_weights(st, per_point),
             "wtrain": lambda: train, "wtest": lambda: test}
    return {k: table[k]() for k in names}
