"""The `data` section and the data themselves.

Exactly one of ``file: path.npz`` (relative to the spec's folder; arrays X of
shape (P, D) or (P, S, D) and y of shape (P,)) or ``synthetic: {P, D, S?,
target, seed}``. The data fix the sizes P, D and, for token sequences, S.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..notation import size_symbol
from . import checks as c
from .schema import DATA_KEYS, SYNTHETIC_KEYS, SYNTHETIC_REQUIRED
from .types import TARGETS, TOKEN_TARGETS, Data, DataFile, Spec, Synthetic
from .yamlpos import MapNode, Node, Scalar


def read_data(ctx: c.Ctx, node: Node | None, base_dir: Path) -> Data | None:
    """The data section; on success the data sizes get their values in `ctx`."""
    fields = c.mapping(ctx, node, "data", DATA_KEYS)
    if fields is None:
        return None
    if len(fields) != 1:
        given = ", ".join(fields) or "neither"
        ctx.add(node, "data", "give exactly one of file and synthetic", received=given,
                allowed="file, synthetic", hint="e.g. `data: {synthetic: {P: 8, D: 16, seed: 0}}`")
        return None
    if "file" in fields:
        data = _file(ctx, fields["file"], base_dir)
    else:
        data = _synthetic(ctx, fields["synthetic"])
    if data is not None:
        for name, value in data_sizes(data).items():
            ctx.values[size_symbol(name)] = float(value)
    return data


def data_sizes(data: Data) -> dict[str, int]:
    """P, D and (for token sequences) S of valid data."""
    if isinstance(data, Synthetic):
        shape = (data.P, data.D) if data.S is None else (data.P, data.S, data.D)
    else:
        shape = _shapes(data.path)[0]
    sizes = {"P": shape[0], "D": shape[-1]}
    return sizes | ({"S": shape[1]} if len(shape) == 3 else {})


# ------------------------------------------------------------------------- file
def _file(ctx: c.Ctx, node: Node, base_dir: Path) -> DataFile | None:
    name = c.text(ctx, node, "data.file")
    if name is None:
        return None
    path = base_dir / name
    if not path.is_file():
        found = sorted(p.name for p in base_dir.glob("*.npz")) if base_dir.is_dir() else []
        ctx.add(node, "data.file", f"data file not found: {path}", received=repr(name),
                allowed=", ".join(found) or "(no .npz next to the spec)",
                hint=c.close_hint(name, found, "the path is relative to the spec's folder"))
        return None
    problem = _shape_problem(path)
    if problem is not None:
        ctx.add(node, "data.file", problem, received=repr(name),
                allowed="an .npz with X of shape (P, D) or (P, S, D) and y of shape (P,)",
                hint="save it with numpy.savez(path, X=X, y=y)")
        return None
    return DataFile(path=path, pos=node.loc)


def _shapes(path: Path) -> tuple[tuple[int, ...], tuple[int, ...]]:
    with np.load(path, allow_pickle=False) as archive:
        return tuple(archive["X"].shape), tuple(archive["y"].shape)


def _shape_problem(path: Path) -> str | None:
    """What is wrong with the arrays in `path`, or None."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [k for k in ("X", "y") if k not in archive.files]
            if missing:
                have = ", ".join(archive.files) or "none"
                return f"{path.name} has no array {' or '.join(missing)} (it has {have})"
            X, y = archive["X"], archive["y"]
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        return f"cannot read {path.name} as .npz: {exc}"
    return _array_problem(X, y)


def _array_problem(X: np.ndarray, y: np.ndarray) -> str | None:
    if X.ndim not in (2, 3):
        return f"X has shape {X.shape}; expected (P, D) or (P, S, D)"
    if y.shape != (X.shape[0],):
        return f"y has shape {y.shape}; expected (P,) = ({X.shape[0]},) to match X of shape {X.shape}"
    if min(X.shape) < 1:
        return f"X has shape {X.shape}; every size must be at least 1"
    for label, array in (("X", X), ("y", y)):
        if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
            return f"{label} has dtype {array.dtype}; expected real numbers"
        if not np.all(np.isfinite(array)):
            return f"{label} has non-finite entries (nan or inf)"
    return None


# -------------------------------------------------------------------- synthetic
def _synthetic(ctx: c.Ctx, node: Node) -> Synthetic | None:
    fields = c.mapping(ctx, node, "data.synthetic", SYNTHETIC_KEYS, SYNTHETIC_REQUIRED)
    if fields is None:
        return None
    path = "data.synthetic"
    before = len(ctx.problems)
    P = c.integer(ctx, fields.get("P"), c.join(path, "P")) if "P" in fields else None
    D = c.integer(ctx, fields.get("D"), c.join(path, "D")) if "D" in fields else None
    S = _optional_size(ctx, fields.get("S"), c.join(path, "S"))
    target = "tanh_linear"
    if "target" in fields:
        target = c.choice(ctx, fields["target"], c.join(path, "target"), TARGETS, "target")
    seed = c.integer(ctx, fields["seed"], c.join(path, "seed"), minimum=0) if "seed" in fields else 0
    if len(ctx.problems) > before or None in (P, D, target, seed):
        return None
    if target in TOKEN_TARGETS and (S is None or S < 2):
        _needs_tokens(ctx, fields["target"], c.join(path, "target"), target, S)
    # returned even then, so that P, D (and S) keep their values and nothing else is reported twice
    return Synthetic(P=P, D=D, S=S, target=target, seed=seed, pos=node.loc)


def _needs_tokens(ctx: c.Ctx, node: Node, path: str, target: str, S: int | None) -> None:
    flat = [t for t in TARGETS if t not in TOKEN_TARGETS]
    if S is None:
        ctx.add(node, path, f"target {target} needs token data, but data.synthetic has no S",
                received=f"{target} with X of shape (P, D)",
                allowed=f"{target} with S >= 2 (X of shape (P, S, D)); without S: {', '.join(flat)}",
                hint="add `S: 4` to data.synthetic (and a `- pool: mean` before the readout), "
                     "or use target: tanh_linear for flat data")
    else:
        ctx.add(node, path, f"target {target} needs at least 2 tokens to attend between",
                received=f"{target} with S = {S}", allowed="S >= 2",
                hint="set data.synthetic.S to 2 or more, or use target: tanh_linear")


def _optional_size(ctx: c.Ctx, node: Node | None, path: str) -> int | None:
    if node is None or (isinstance(node, Scalar) and node.tag == "null"):
        return None
    return c.integer(ctx, node, path)


def check_declared_sizes(ctx: c.Ctx, sizes: dict[str, int], data: Data, node: Node | None) -> None:
    """P, D or S written under `sizes` must agree with the data."""
    given = data_sizes(data)
    for name in ("P", "D", "S"):
        if name not in sizes or given.get(name) == sizes[name]:
            continue
        where = node.get(name) if isinstance(node, MapNode) else node
        have = f"the data give {name} = {given[name]}" if name in given else "the data have no tokens"
        ctx.add(where, c.join("sizes", name), f"sizes.{name} disagrees with the data: {have}",
                received=str(sizes[name]), allowed=str(given.get(name, "(none)")),
                hint=f"remove sizes.{name} (the data set it) or change the data")


# ------------------------------------------------------------------ the arrays
def load_data(spec: Spec) -> tuple[np.ndarray, np.ndarray]:
    """The training data (X, y) of a spec, as float64 arrays, deterministically.

    A data file is read with ``allow_pickle=False``. Synthetic data are drawn from
    ``rng = numpy.random.default_rng(seed)`` in this order:

    1. X ~ N(0, 1) of shape (P, D), or (P, S, D) for token sequences;
    2. beta ~ N(0, I_D), shape (D,);
    3. for ``target: random`` only, y ~ N(0, 1) of shape (P,);
       for ``target: teacher_attention`` only, C ~ N(0, 1) of shape (D, D).

    With z = X_bar . beta / sqrt(D), where X_bar = X for (P, D) inputs and the token
    mean X.mean(axis=1) for sequences, the targets are ``linear``: y = z;
    ``tanh_linear``: y = tanh(z); ``sign_linear``: y = sign(z) (0 where z = 0);
    ``random``: the draw of step 3.

    ``teacher_attention`` (token sequences with S >= 2 only) is a fixed single-head
    attention teacher whose query is the first token of each sequence::

        l_{mu s} = 2 * x_{mu 0} . (C x_{mu s}) / D           (logits, s = 0..S-1)
        a_{mu s} = exp(l_{mu s}) / sum_s' exp(l_{mu s'})     (softmax over the tokens)
        y_mu     = tanh( sum_s a_{mu s} * (beta . x_{mu s}) / sqrt(D) )

    The logits have standard deviation about 2 (temperature 1/2 on x0.C xs / D, which
    is O(1)), so the weights are far from uniform. y is not rescaled (like
    ``tanh_linear`` it lies in (-1, 1)). Since the first token is the query, moving
    another token to the front changes y while the token mean stays the same.

    Returns
    -------
    X : numpy.ndarray
        Shape (P, D) or (P, S, D), float64.
    y : numpy.ndarray
        Shape (P,), float64.
    """
    if isinstance(spec.data, DataFile):
        with np.load(spec.data.path, allow_pickle=False) as archive:
            return np.asarray(archive["X"], np.float64), np.asarray(archive["y"], np.float64)
    return synthetic_data(spec.data)


def synthetic_data(data: Synthetic) -> tuple[np.ndarray, np.ndarray]:
    """The arrays of a `Synthetic` data description (see `load_data`)."""
    rng = np.random.default_rng(data.seed)
    shape = (data.P, data.D) if data.S is None else (data.P, data.S, data.D)
    X = rng.standard_normal(shape)
    beta = rng.standard_normal(data.D)
    X_bar = X if data.S is None else X.mean(axis=1)
    z = X_bar @ beta / np.sqrt(data.D)
    targets = {
        "linear": lambda: z,
        "tanh_linear": lambda: np.tanh(z),
        "sign_linear": lambda: np.sign(z),
        "random": lambda: rng.standard_normal(data.P),
        "teacher_attention": lambda: teacher_attention(X, beta, rng.standard_normal((data.D, data.D))),
    }
    return X.astype(np.float64), np.asarray(targets[data.target](), np.float64)


def teacher_attention(X: np.ndarray, beta: np.ndarray, C: np.ndarray) -> np.ndarray:
    """y_mu = tanh(sum_s a_{mu s} beta . x_{mu s} / sqrt(D)), a = softmax_s(2 x_{mu 0} . C x_{mu s} / D).

    X has shape (P, S, D), beta (D,), C (D, D); the result has shape (P,). See `load_data`.
    """
    if X.ndim != 3:
        raise ValueError(f"teacher_attention needs token sequences X of shape (P, S, D), got {X.shape}")
    D = X.shape[-1]
    logits = 2.0 * np.einsum("pi,ij,psj->ps", X[:, 0, :], C, X) / D
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    weights /= weights.sum(axis=1, keepdims=True)
    values = X @ beta / np.sqrt(D)                                   # (P, S)
    return np.tanh(np.sum(weights * values, axis=1))
