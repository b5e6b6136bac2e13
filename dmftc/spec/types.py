"""The typed, immutable `Spec`: what a validated spec file says.

Every expression is a plain sympy expression in the symbols of `dmftc.notation`
(`size_symbol`, `hyper_symbol`), built by the whitelist parser, never by
`sympify` of spec text. Source positions ride along (`pos`) for error messages
of later stages; they take no part in equality.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Mapping

import sympy

from ..errors import Location

Expr = sympy.Expr

ACTIVATIONS = ("linear", "relu", "tanh", "erf", "gelu", "quadratic", "sigmoid")
PRESETS = ("sp", "ntk", "mup", "mean_field", "depth_mup", "completep")
#: mse: (f - y)^2 / 2; cross_entropy: the logistic loss log(1 + exp(-y f)) of two classes y = +-1 (f the logit)
LOSSES = ("mse", "cross_entropy")
#: gd and sgd are one optimizer (stochastic when `training.batches` is given)
OPTIMIZERS = ("gd", "sgd", "adam", "adamw")
DECAYS = ("decoupled", "coupled")
TARGETS = ("tanh_linear", "linear", "sign_linear", "random", "teacher_attention")
#: targets defined only for token sequences X of shape (P, S, D) with S >= 2.
TOKEN_TARGETS = ("teacher_attention",)
#: small real data sets shipped inside a package (no download), and their input dimension D
DATASETS = {"digits": 64}
#: what `data.dataset.preprocess` may do to the pixels
PREPROCESS = ("standardize", "unit", "none")


def _pos() -> Location | None:
    return field(default=None, compare=False, repr=False)  # type: ignore[return-value]


# --------------------------------------------------------------------- model ops
@dataclass(frozen=True)
class Op:
    """Base of the model ops; `kind` is the key the op has in the spec."""

    kind: ClassVar[str] = ""


@dataclass(frozen=True)
class Dense(Op):
    """y = multiplier * W x with W of shape (out, fan_in); `name` names W."""

    kind: ClassVar[str] = "dense"
    out: Expr
    name: str | None = None
    pos: Location | None = _pos()


@dataclass(frozen=True)
class Act(Op):
    """Elementwise nonlinearity phi, one of `ACTIVATIONS`."""

    kind: ClassVar[str] = "act"
    fn: str
    pos: Location | None = _pos()


@dataclass(frozen=True)
class Repeat(Op):
    """`body` applied `times` times; layer index symbol `index` (default ell)."""

    kind: ClassVar[str] = "repeat"
    times: Expr
    body: tuple[Op, ...]
    index: str = "ell"
    pos: Location | None = _pos()


@dataclass(frozen=True)
class Residual(Op):
    """h <- h + scale * branch(h)."""

    kind: ClassVar[str] = "residual"
    scale: Expr
    branch: tuple[Op, ...]
    pos: Location | None = _pos()


@dataclass(frozen=True)
class LayerNorm(Op):
    """Parameter-free LayerNorm over the feature axis, per token: (h - mean) / std."""

    kind: ClassVar[str] = "layernorm"
    pos: Location | None = _pos()


@dataclass(frozen=True)
class Attention(Op):
    """Multi-head self-attention: `heads` heads of key/query/value dimension `key_dim`.

    Logits A_{ss'} = logit_scale * k_s . q_{s'}, softmax over keys, output
    projection back to the residual width heads * key_dim. Weight names are
    `name` + _K, _Q, _V, _O.
    """

    kind: ClassVar[str] = "attention"
    heads: Expr
    key_dim: Expr
    logit_scale: Expr
    name: str | None = None
    pos: Location | None = _pos()


@dataclass(frozen=True)
class Pool(Op):
    """Pooling over tokens (`mode` 'mean')."""

    kind: ClassVar[str] = "pool"
    mode: str = "mean"
    pos: Location | None = _pos()


@dataclass(frozen=True)
class Readout(Op):
    """Scalar output f = multiplier * w . x; `name` names w."""

    kind: ClassVar[str] = "readout"
    name: str | None = None
    pos: Location | None = _pos()


OP_TYPES: tuple[type[Op], ...] = (Dense, Act, Repeat, Residual, LayerNorm, Attention, Pool, Readout)


# ------------------------------------------------------------- parameterization
@dataclass(frozen=True)
class WeightOverride:
    """Per-weight override of the preset: any of multiplier, init std, learning-rate factor.

    The finite network uses W_ij ~ N(0, init_std^2), forward `multiplier * W x`, and the
    GD update W <- W - training.lr * lr * dLoss/dW. `None` keeps the preset's value.
    """

    multiplier: Expr | None = None
    init_std: Expr | None = None
    lr: Expr | None = None
    pos: Location | None = _pos()


@dataclass(frozen=True)
class Parameterization:
    """A preset (a row of the exponent table) plus per-weight overrides keyed by weight name."""

    preset: str | None = "mup"
    overrides: Mapping[str, WeightOverride] = field(default_factory=dict)
    pos: Location | None = _pos()


# ------------------------------------------------------------ training and data
@dataclass(frozen=True)
class Batches:
    """Which training points carry the error signal at each step (docs/spec.md#training).

    `size` points per step from successive random permutations of the training set (numpy seed
    `seed`; each epoch is cut into whole batches, its remainder dropped); or, `online`, the points size*t .. size*(t+1) - 1 of
    the training set at step t (a stream: each point seen once); or the fixed list `fixed` of index
    lists, cycled. None of these: full batch.
    """

    size: int | None = None
    seed: int = 0
    online: bool = False
    fixed: tuple[tuple[int, ...], ...] | None = None
    pos: Location | None = _pos()


@dataclass(frozen=True)
class Training:
    """SGD on Loss = (1/2|B_t|) sum_{mu in B_t} (f_mu - y_mu)^2 with step lr * schedule(t), momentum and
    weight decay (`dmftc.training` holds the update rule both the DMFT and the simulator use).

    `schedule` is an expression in the step t (0-based) and `steps`; `momentum` (heavy ball, or
    Nesterov's) and `weight_decay` expressions in the hyperparameters; `decay` "decoupled"
    (W <- W - lr(t) lambda W, lr(t) = lr * schedule(t), the global step) or "coupled" (lambda W added
    to each weight's gradient); `batches` None for full batch.
    """

    loss: str = "mse"
    optimizer: str = "gd"
    lr: Expr = sympy.Integer(1)
    steps: int = 10
    schedule: Expr = sympy.Integer(1)
    momentum: Expr = sympy.Integer(0)
    nesterov: bool = False
    weight_decay: Expr = sympy.Integer(0)
    decay: str = "decoupled"
    batches: Batches | None = None
    #: Adam's (beta1, beta2) and epsilon (`optimizer: adam`; adamw is adam with decoupled decay)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    #: train on f - f(0), the output at initialization subtracted (as the seed paper does)
    center_output: bool = False
    pos: Location | None = _pos()

    @property
    def adam(self) -> bool:
        return self.optimizer in ("adam", "adamw")

    @property
    def plain(self) -> bool:
        """Full-batch GD at a constant step: the setup whose DMFT has no filter, decay or batch weights."""
        return (self.schedule == 1 and self.momentum == 0 and self.weight_decay == 0 and self.batches is None)


@dataclass(frozen=True)
class DataFile:
    """An .npz with X (P, D) or (P, S, D) and y (P,), and optionally held-out X_test (Q, ...) and y_test (Q,);
    `path` is resolved against the spec's folder; `test` counts the held-out points (Q, 0 without)."""

    path: Path
    pos: Location | None = _pos()
    test: int = 0


@dataclass(frozen=True)
class Synthetic:
    """Data made on the fly, deterministically from `seed`.

    X ~ N(0, 1) of shape (P, D) or (P, S, D); y = target(X) as described in the README.
    """

    P: int
    D: int
    S: int | None = None
    target: str = "tanh_linear"
    seed: int = 0
    #: held-out points drawn after the P training points from the same distribution and target
    test: int = 0
    pos: Location | None = _pos()


@dataclass(frozen=True)
class Dataset:
    """A small real classification set shipped inside a package (`name`, one of `DATASETS`): the images of
    two `classes` (targets +1 for the first, -1 for the second), shuffled by `seed`; the first `P` train,
    the next `test` are held out. `preprocess` is one of `PREPROCESS` (see `dmftc.spec.data.dataset_data`).
    """

    name: str
    classes: tuple[int, int]
    P: int
    #: held-out points: the `test` images after the P training ones in the shuffled order
    test: int = 0
    seed: int = 0
    preprocess: str = "standardize"
    pos: Location | None = _pos()


Data = DataFile | Synthetic | Dataset


@dataclass(frozen=True)
class SolverOptions:
    """Numerical options of the DMFT solve."""

    samples: int = 4096
    tol: float = 1e-4
    max_iter: int = 100
    damping: float = 0.5
    seed: int = 0
    dtype: str = "float64"
    #: depth steps K of the layer-time grid tau = l / K when L -> infinity (None: the spec's L)
    depth_steps: int | None = None
    #: independent batches of the draws for the error analysis (dmftc.accuracy; even, >= 4)
    batches: int = 8
    #: accuracy `dmftc solve` meets unless --samples fixes the draws: every step of the loss within
    #: max(atol, rtol x loss range) in total reported error (standard error and residual bias)
    rtol: float = 1e-2
    atol: float = 0.0
    pos: Location | None = _pos()


# --------------------------------------------------------------------- the spec
@dataclass(frozen=True)
class Spec:
    """A validated spec (format version 1).

    sizes: size symbol name -> finite value (N, H, L, S, ...); P and D come from the data.
    hyper: hyperparameter name -> value (gamma0, eta, beta0, alpha_A, ...).
    limit: the sizes that go to infinity, in the order given.
    warnings: what the spec may not mean (an unused or a defaulted hyperparameter), one line each.
    """

    version: int
    name: str
    description: str
    sizes: Mapping[str, int]
    hyper: Mapping[str, float]
    model: tuple[Op, ...]
    parameterization: Parameterization
    limit: tuple[str, ...]
    training: Training
    data: Data
    solver: SolverOptions = SolverOptions()
    source: Path | None = field(default=None, compare=False)
    raw: Mapping | None = field(default=None, compare=False, repr=False)
    #: one line each: hyperparameters declared but unused, or defaulted (`dmftc.spec.usage`);
    #: the command line prints them to stderr
    warnings: tuple[str, ...] = field(default=(), compare=False, repr=False)
