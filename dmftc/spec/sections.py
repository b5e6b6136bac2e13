"""Readers of the sections other than `model` and `data`: header, symbols, limit,
parameterization, training, solver."""

from __future__ import annotations

import math
from fractions import Fraction

import sympy

from ..notation import DATA_SIZES, hyper_symbol, size_symbol
from . import checks as c
from .expr import SCHEDULE_FUNCTIONS
from .schema import (
    BATCH_KEYS, DTYPES, INF_WORDS, PARAM_KEYS, SOLVER_KEYS, TRAINING_KEYS, TRAINING_REQUIRED, VERSION, WEIGHT_KEYS,
)  # fmt: skip
from .types import DECAYS, LOSSES, OPTIMIZERS, PRESETS, Batches, Parameterization, SolverOptions, Training, WeightOverride
from .yamlpos import MapNode, Node, Scalar, SeqNode

PRESET_ALIASES = {"mean_field": "mup"}


# ----------------------------------------------------------------------- header
def read_version(ctx: c.Ctx, node: Node | None) -> int | None:
    """`dmftc: 1`."""
    if c.skip(node):
        return None
    if isinstance(node, Scalar) and node.tag == "int" and node.value == VERSION:
        return VERSION
    ctx.add(node, "dmftc", "unsupported format version", received=c.show(node), allowed=str(VERSION),
            hint=f"write `dmftc: {VERSION}`")
    return None


def read_name(ctx: c.Ctx, node: Node | None) -> str | None:
    """An identifier: it names the generated Python module."""
    return c.identifier(ctx, node, "name", "the spec name")


def read_description(ctx: c.Ctx, node: Node | None) -> str:
    """Free text (optional)."""
    if node is None or (isinstance(node, Scalar) and node.tag == "null"):
        return ""
    return c.text(ctx, node, "description") or ""


# ---------------------------------------------------------------------- symbols
def read_sizes(ctx: c.Ctx, node: Node | None) -> dict[str, int]:
    """Size symbols -> positive integers; declares every name, valid value or not."""
    entries = c.free_mapping(ctx, node, "sizes", "size names to positive integers")
    if entries is None:
        ctx.symbols_ok = ctx.symbols_ok and node is None
        entries = []
    for name in DATA_SIZES:
        ctx.symbols[name] = size_symbol(name)
    sizes: dict[str, int] = {}
    for key, value in entries:
        path = c.join("sizes", key.value)
        if c.check_symbol_name(ctx, key, path, "size"):
            ctx.symbols[key.value] = size_symbol(key.value)
            number = c.integer(ctx, value, path)
            if number is not None:
                sizes[key.value] = number
                ctx.values[size_symbol(key.value)] = float(number)
    return sizes


def read_hyper(ctx: c.Ctx, node: Node | None) -> dict[str, float]:
    """Hyperparameter names -> positive numbers (their symbols are declared positive)."""
    entries = c.free_mapping(ctx, node, "hyper", "names to numbers")
    if entries is None:
        ctx.symbols_ok = ctx.symbols_ok and node is None
        entries = []
    hyper: dict[str, float] = {}
    for key, value in entries:
        path = c.join("hyper", key.value)
        if not c.check_symbol_name(ctx, key, path, "hyperparameter"):
            continue
        if key.value in ctx.symbols:
            ctx.add(key, path, f"{key.value!r} is already a size", received=repr(key.value),
                    hint="sizes and hyperparameters need different names (P, D, S are sizes)")
            continue
        ctx.symbols[key.value] = hyper_symbol(key.value)
        number = _hyper_value(ctx, value, path)
        if number is not None:
            hyper[key.value] = number
            ctx.values[hyper_symbol(key.value)] = float(number)
    return hyper


def _hyper_value(ctx: c.Ctx, node: Node, path: str) -> int | float | None:
    if isinstance(node, Scalar) and node.tag == "str" and "/" in node.value:
        ctx.add(node, path, "hyperparameters are numbers, not formulas", received=c.show(node),
                hint="write a decimal, e.g. 0.5 for 1/2 (decimals are read exactly)")
        return None
    value = c.number(ctx, node, path, 0.0)
    if value is not None and isinstance(node, Scalar) and node.tag == "int":
        return int(value)  # kept exact: alpha_A: 1 stays the integer 1
    return value


def exact(value: int | float) -> sympy.Rational:
    """The exact rational a spec number stands for (floats read from their shortest repr)."""
    fraction = Fraction(repr(value)) if isinstance(value, float) else Fraction(value)
    return sympy.Rational(fraction.numerator, fraction.denominator)


# ------------------------------------------------------------------------ limit
def read_limit(ctx: c.Ctx, node: Node | None, sizes: dict[str, int]) -> tuple[str, ...] | None:
    """Sizes that go to infinity, in the order written: ``{N: inf}``."""
    if isinstance(node, c.SeqNode):
        ctx.add(node, "limit", "expected a mapping of sizes to inf", received=c.show(node),
                hint="write e.g. `limit: {N: inf}`")
        return None
    entries = c.free_mapping(ctx, node, "limit", "sizes to inf")
    if entries is None:
        return None
    if not entries:
        ctx.add(node, "limit", "no size goes to infinity", hint="write e.g. `limit: {N: inf}`")
        return None
    names = [_limit_entry(ctx, key, value, sizes) for key, value in entries]
    return None if None in names else tuple(n for n in names if n is not None)


def _limit_entry(ctx: c.Ctx, key: Scalar, value: Node, sizes: dict[str, int]) -> str | None:
    path = c.join("limit", key.value)
    if key.value in DATA_SIZES:
        ctx.add(key, path, f"{key.value} is set by the data and cannot go to infinity",
                received=repr(key.value), allowed=_limit_allowed(ctx), hint="limit a model size such as N")
        return None
    if key.value not in sizes:
        _not_a_size(ctx, key, path, sizes)
        return None
    if not _is_inf(value):
        if not c.skip(value):
            ctx.add(value, path, "expected inf", received=c.show(value), allowed="inf, .inf",
                    hint=f"write `{key.value}: inf`")
        return None
    return key.value


def _not_a_size(ctx: c.Ctx, key: Scalar, path: str, sizes: dict[str, int]) -> None:
    symbol = ctx.symbols.get(key.value)
    if symbol is size_symbol(key.value):
        return  # a declared size whose value was already reported
    what = f"unknown size {key.value!r}"
    if symbol is not None:
        what = f"{key.value!r} is a hyperparameter, not a size"
    if symbol is not None or ctx.symbols_ok:
        hint = c.close_hint(key.value, list(sizes), f"declare {key.value} under sizes")
        ctx.add(key, path, what, received=repr(key.value), allowed=_limit_allowed(ctx), hint=hint)


def _limit_allowed(ctx: c.Ctx) -> str:
    names = [n for n, s in ctx.symbols.items() if s is size_symbol(n) and n not in DATA_SIZES]
    return ", ".join(names) or "(no sizes declared)"


def _is_inf(node: Node) -> bool:
    if not isinstance(node, Scalar):
        return False
    if node.tag == "float":
        return math.isinf(node.value) and node.value > 0
    return node.tag == "str" and node.value.strip().lower() in INF_WORDS


# ------------------------------------------------------------- parameterization
def read_parameterization(
    ctx: c.Ctx, node: Node | None, weights: list[str] | None
) -> Parameterization | None:
    """A preset and per-weight overrides; `weights` are the model's weight names (None: unknown)."""
    fields = c.mapping(ctx, node, "parameterization", PARAM_KEYS)
    if fields is None:
        return None
    preset = _preset(ctx, fields.get("preset"))
    entries: list | None = []
    if "weights" in fields:
        what = "weight names to overrides"
        entries = c.free_mapping(ctx, fields["weights"], "parameterization.weights", what)
    overrides = {}
    for key, value in entries or []:
        item = _weight(ctx, key, value, weights)
        if item is not None:
            overrides[key.value] = item
    complete = _complete(ctx, node, preset, overrides, weights)
    if preset == "" or entries is None or len(overrides) < len(entries) or not complete:
        return None
    return Parameterization(preset=preset, overrides=overrides, pos=node.loc if node is not None else None)


def _preset(ctx: c.Ctx, node: Node | None) -> str | None:
    if node is None:
        return "mup"
    if isinstance(node, Scalar) and node.tag == "null":
        return None  # no preset: every weight spells out multiplier, init_std and lr
    value = c.choice(ctx, node, "parameterization.preset", PRESETS, "preset")
    return "" if value is None else PRESET_ALIASES.get(value, value)


def _weight(ctx: c.Ctx, key: Scalar, value: Node, weights: list[str] | None) -> WeightOverride | None:
    path = c.join("parameterization.weights", key.value)
    if weights is not None and key.value not in weights:
        ctx.add(key, path, f"no weight named {key.value!r} in the model", received=repr(key.value),
                allowed=", ".join(weights),
                hint=c.close_hint(key.value, weights, "use one of the weight names"))
        return None
    fields = c.mapping(ctx, value, path, WEIGHT_KEYS)
    if fields is None:
        return None
    kinds = {"multiplier": "positive", "init_std": "nonnegative", "lr": "nonnegative"}
    parsed = {k: _valued_expr(ctx, fields[k], c.join(path, k), kinds[k]) for k in fields}
    if any(v is None for v in parsed.values()) or weights is None:
        return None
    return WeightOverride(**parsed, pos=key.loc)


def _valued_expr(ctx: c.Ctx, node: Node, path: str, kind: str) -> sympy.Expr | None:
    expr = c.expression(ctx, node, path)
    if expr is not None:
        c.valued(ctx, node, path, expr, kind)
    return expr


def _complete(
    ctx: c.Ctx, node: Node | None, preset: str | None, overrides: dict, weights: list[str] | None
) -> bool:
    """Without a preset every weight must give multiplier, init_std and lr."""
    if preset is not None or weights is None:
        return True
    missing = [f"{w}.{k}" for w in weights for k in WEIGHT_KEYS if getattr(overrides.get(w), k, None) is None]
    if missing:
        shown = ", ".join(missing[:6]) + (" ..." if len(missing) > 6 else "")
        message = "without a preset every weight needs multiplier, init_std and lr"
        ctx.add(node, "parameterization.weights", message,
                received=f"missing {shown}", allowed=", ".join(p for p in PRESETS),
                hint="choose a `preset:` or give the missing entries")
    return not missing


# --------------------------------------------------------------------- training
#: the symbols a schedule may use beside the hyperparameters: the step and the number of steps
SCHEDULE_STEP, SCHEDULE_STEPS = sympy.Symbol("t", integer=True, nonnegative=True), sympy.Symbol("steps", positive=True)


def read_training(ctx: c.Ctx, node: Node | None) -> Training | None:
    """SGD on the MSE loss: lr (expression, > 0), steps (>= 1), and the optional schedule, momentum,
    nesterov, weight_decay, decay and batches (`Training`)."""
    fields = c.mapping(ctx, node, "training", TRAINING_KEYS, TRAINING_REQUIRED)
    if fields is None:
        return None
    before = len(ctx.problems)
    loss = c.choice(ctx, fields["loss"], "training.loss", LOSSES, "loss") if "loss" in fields else "mse"
    optimizer = "gd"
    if "optimizer" in fields:
        optimizer = c.choice(ctx, fields["optimizer"], "training.optimizer", OPTIMIZERS, "optimizer")
    lr = _valued_expr(ctx, fields["lr"], "training.lr", "positive") if "lr" in fields else None
    steps = c.integer(ctx, fields.get("steps"), "training.steps") if "steps" in fields else None
    extra = {}
    if "momentum" in fields:
        extra["momentum"] = _fraction_expr(ctx, fields["momentum"], "training.momentum")
    if "weight_decay" in fields:
        extra["weight_decay"] = _valued_expr(ctx, fields["weight_decay"], "training.weight_decay", "nonnegative")
    if "nesterov" in fields:
        extra["nesterov"] = _boolean(ctx, fields["nesterov"], "training.nesterov")
    if "decay" in fields:
        extra["decay"] = c.choice(ctx, fields["decay"], "training.decay", DECAYS, "weight decay")
    if "schedule" in fields and steps is not None:
        extra["schedule"] = _schedule(ctx, fields["schedule"], steps)
    if "batches" in fields:
        extra["batches"] = _batches(ctx, fields["batches"])
    if "betas" in fields:
        extra["betas"] = _betas(ctx, fields["betas"])
    if "eps" in fields:
        extra["eps"] = c.number(ctx, fields["eps"], "training.eps", 0.0)
    if "center_output" in fields:
        extra["center_output"] = _boolean(ctx, fields["center_output"], "training.center_output")
    if optimizer in ("adam", "adamw"):
        for key in ("momentum", "nesterov"):
            if key in fields:
                ctx.add(fields[key], f"training.{key}", f"{key} is SGD's; Adam's momentum is betas[0]",
                        received=c.show(fields[key]), hint="write `betas: [0.9, 0.999]` for Adam")
        if optimizer == "adamw" and extra.get("decay") == "coupled":
            ctx.add(fields["decay"], "training.decay", "adamw is Adam with decoupled decay",
                    received="coupled", hint="use `optimizer: adam` with `decay: coupled` for an L2 term")
    elif optimizer is not None:
        for key in ("betas", "eps"):
            if key in fields:
                ctx.add(fields[key], f"training.{key}", f"{key} belongs to Adam", received=c.show(fields[key]),
                        hint="use `optimizer: adam`, or `momentum` for SGD")
    if len(ctx.problems) > before or None in (loss, optimizer, lr, steps, *extra.values()):
        return None
    return Training(loss=loss, optimizer=optimizer, lr=lr, steps=steps, pos=node.loc, **extra)


def _fraction_expr(ctx: c.Ctx, node: Node, path: str) -> sympy.Expr | None:
    """An expression in the hyperparameters with a value in [0, 1) (a momentum)."""
    expr = c.expression(ctx, node, path)
    value = c.valued(ctx, node, path, expr, "nonnegative") if expr is not None else None
    if value is not None and value >= 1:
        ctx.add(node, path, "momentum must be below 1", received=c.show(node), allowed="[0, 1)",
                hint="use e.g. 0.9")
        return None
    return expr


def _betas(ctx: c.Ctx, node: Node) -> tuple[float, float] | None:
    """Adam's [beta1, beta2], each in [0, 1)."""
    items = c.sequence(ctx, node, "training.betas", "two numbers")
    if items is None:
        return None
    if len(items) != 2:
        ctx.add(node, "training.betas", "expected two numbers [beta1, beta2]", received=c.show(node),
                hint="e.g. `betas: [0.9, 0.999]`")
        return None
    out = []
    for i, item in enumerate(items):
        ok = isinstance(item, Scalar) and item.tag in ("int", "float") and 0 <= item.value < 1
        if not ok:
            ctx.add(item, c.join("training.betas", i), "expected a number in [0, 1)", received=c.show(item),
                    hint="e.g. `betas: [0.9, 0.999]`")
            return None
        out.append(float(item.value))
    return tuple(out)


def _boolean(ctx: c.Ctx, node: Node, path: str) -> bool | None:
    if isinstance(node, Scalar) and node.tag == "bool":
        return bool(node.value)
    ctx.add(node, path, "expected true or false", received=c.show(node), allowed="true, false",
            hint="write `true` or `false`")
    return None


def _schedule(ctx: c.Ctx, node: Node, steps: int) -> sympy.Expr | None:
    """The learning-rate factor at step t: an expression in t, `steps` and the hyperparameters, with
    cos, sin, min, max and pi; every value at t = 0..steps-1 finite and >= 0, one of them > 0."""
    path = "training.schedule"
    inner = c.Ctx(ctx.file, [], {**ctx.symbols, "t": SCHEDULE_STEP, "steps": SCHEDULE_STEPS},
                  {**ctx.values, SCHEDULE_STEPS: float(steps)}, ctx.symbols_ok)
    expr = c.expression(inner, node, path, functions=SCHEDULE_FUNCTIONS)
    ctx.problems.extend(inner.problems)
    if expr is None:
        return None
    values = []
    for k in range(steps):
        inner.values[SCHEDULE_STEP] = float(k)
        v = c.valued(inner, node, path, expr, "nonnegative")
        if v is None:
            ctx.problems.extend(p for p in inner.problems if p not in ctx.problems)
            ctx.add(node, path, f"the schedule fails at step t = {k}", received=c.show(node),
                    hint="a schedule is the factor of lr at step t: finite and >= 0 at t = 0 .. steps - 1")
            return None
        values.append(v)
    if max(values) <= 0:
        ctx.add(node, path, "the schedule is 0 at every step", received=c.show(node),
                hint="a schedule multiplies lr: make it positive somewhere")
        return None
    return expr


def _batches(ctx: c.Ctx, node: Node):
    """`{size, seed?, online?}` or a list of index lists (`Batches`)."""
    path = "training.batches"
    if isinstance(node, SeqNode):
        lists = []
        for i, item in enumerate(node.items):
            entries = c.sequence(ctx, item, c.join(path, i), "point indices")
            if entries is None:
                return None
            idx = [c.integer(ctx, e, c.join(c.join(path, i), j), minimum=0) for j, e in enumerate(entries)]
            if not idx or None in idx:
                if not idx:
                    ctx.add(item, c.join(path, i), "an empty batch", hint="give each batch at least one index")
                return None
            if len(set(idx)) != len(idx):
                ctx.add(item, c.join(path, i), "a batch lists a point twice", received=c.show(item),
                        hint="list each index once per batch")
                return None
            lists.append(tuple(idx))
        if not lists:
            ctx.add(node, path, "no batches", hint="give at least one batch, or `{size: B}`")
            return None
        return Batches(fixed=tuple(lists), pos=node.loc)
    fields = c.mapping(ctx, node, path, BATCH_KEYS, ("size",))
    if fields is None or "size" not in fields:   # a missing size is reported by `mapping`
        return None
    size = c.integer(ctx, fields["size"], c.join(path, "size"))
    seed = c.seed(ctx, fields["seed"], c.join(path, "seed")) if "seed" in fields else 0
    online = _boolean(ctx, fields["online"], c.join(path, "online")) if "online" in fields else False
    if None in (size, seed, online):
        return None
    return Batches(size=size, seed=seed, online=online, pos=node.loc)


# ----------------------------------------------------------------------- solver
def read_solver(ctx: c.Ctx, node: Node | None) -> SolverOptions | None:
    """Numerical options of the DMFT solve; every key optional (defaults of `SolverOptions`)."""
    if node is None:
        return SolverOptions()
    fields = c.mapping(ctx, node, "solver", SOLVER_KEYS)
    if fields is None:
        return None
    readers = {
        "samples": lambda n, p: c.integer(ctx, n, p),
        "tol": lambda n, p: c.number(ctx, n, p, 0.0),
        "max_iter": lambda n, p: c.integer(ctx, n, p),
        "damping": lambda n, p: c.number(ctx, n, p, 0.0, 1.0),
        "seed": lambda n, p: c.seed(ctx, n, p),
        "dtype": lambda n, p: c.choice(ctx, n, p, DTYPES, "dtype"),
        "depth_steps": lambda n, p: c.integer(ctx, n, p),
        "batches": lambda n, p: _even(ctx, n, p, c.integer(ctx, n, p, 4)),
        "rtol": lambda n, p: c.number(ctx, n, p, 0.0),
        "atol": lambda n, p: c.number(ctx, n, p, 0.0),
    }
    values = {k: readers[k](v, c.join("solver", k)) for k, v in fields.items()}
    if any(v is None for v in values.values()):
        return None
    for key in ("tol", "damping", "rtol", "atol"):
        if key in values:
            values[key] = float(values[key])
    return SolverOptions(**values, pos=node.loc if isinstance(node, MapNode) else None)


def _even(ctx: c.Ctx, node: Node, path: str, value: int | None) -> int | None:
    """solver.batches: the error analysis halves the batches, so their number is even."""
    if value is not None and value % 2:
        ctx.add(node, path, "expected an even number of batches (the error analysis halves them)",
                received=str(value), allowed="an even integer >= 4", hint=f"use {value + 1}")
        return None
    return value
