"""Spec text -> validated `Spec`: the whole stage in a few lines.

    text --compose--> located YAML tree --overrides--> tree --validate--> Spec

Nothing of the text is ever executed: YAML is composed into nodes with the safe
loader (standard tags only) and expressions go through the whitelist parser.
Every problem is collected and raised at once as one `SpecError`.
"""

from __future__ import annotations

from dataclasses import replace
from os import PathLike
from pathlib import Path
from typing import Any, Sequence

import sympy

from ..errors import Location, Problem, SpecError
from ..notation import hyper_symbol, size_symbol
from . import checks as c
from .batching import batch_indices
from .data import check_declared_sizes, data_sizes, read_data
from .limits import MAX_PROBLEMS, MAX_SPEC_BYTES, FileRefused, open_regular, shorten, size
from .model import read_model
from .naming import weight_names
from .overrides import apply_overrides
from .schema import FREE_MAPS, TOP_KEYS, TOP_REQUIRED, known_keys
from .sections import (
    exact, read_description, read_hyper, read_limit, read_name, read_parameterization,
    read_sizes, read_solver, read_training, read_version,
)  # fmt: skip
from .types import Spec
from .usage import hyper_report
from .yamlpos import MapNode, Node, SeqNode, compose


def load(path: str | PathLike[str], overrides: Sequence[str] = ()) -> Spec:
    """Read and validate the spec file at `path`.

    Parameters
    ----------
    path
        The YAML spec. A data file it names is resolved against its folder.
    overrides
        ``KEY=VALUE`` strings (the command line's ``--set``), applied in order
        before validation; see `dmftc.spec.overrides`.

    Returns
    -------
    Spec
        With `source` = `path` and `raw` = the canonical plain mapping.

    Raises
    ------
    SpecError
        Listing every problem found (file:line:col, key path, received, allowed, fix).
    """
    path = Path(path)
    return replace(_load_text(read_spec_file(path), str(path), overrides, path.parent), source=path)


def read_spec_file(path: Path) -> str:
    """The text of the spec file at `path`: a regular file of at most `MAX_SPEC_BYTES`, in UTF-8.

    Line breaks are normalised to ``\\n``. A FIFO, a device or a directory is
    refused without being read (see `dmftc.spec.limits.open_regular`).
    """
    try:
        with open_regular(path, MAX_SPEC_BYTES) as file:
            raw = file.read(MAX_SPEC_BYTES + 1)  # the file may have grown since it was examined
        if len(raw) > MAX_SPEC_BYTES:
            raise FileRefused(f"has more bytes than the limit of {size(MAX_SPEC_BYTES)}")
        text = raw.decode("utf-8")
    except FileRefused as why:
        hint = "check the path" if why.missing else "name a YAML spec file (a spec is a few KB)"
        raise SpecError([_unreadable(path, f"it {why.reason}", hint)]) from None
    except OSError as exc:
        raise SpecError([_unreadable(path, exc.strerror or type(exc).__name__, "check the path")]) from None
    except UnicodeDecodeError as exc:
        line, col = raw.count(b"\n", 0, exc.start) + 1, exc.start - raw.rfind(b"\n", 0, exc.start)
        message = f"not UTF-8 text (byte {raw[exc.start:exc.start + 1]!r})"
        raise SpecError([_unreadable(path, message, "save the spec as UTF-8", line, col)]) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _unreadable(path: Path, reason: str, hint: str, line: int = 1, col: int = 1) -> Problem:
    return Problem(f"cannot read the spec: {reason}", Location(str(path), line, col),
                   received=shorten(str(path), 200), hint=hint)


def loads(
    text: str,
    filename: str = "<string>",
    overrides: Sequence[str] = (),
    base_dir: str | PathLike[str] | None = None,
) -> Spec:
    """Validate spec `text` (see `load`).

    Parameters
    ----------
    text
        The YAML spec.
    filename
        Names the text in messages (``filename:line:col``).
    overrides
        ``KEY=VALUE`` strings applied before validation.
    base_dir
        The folder a ``data.file`` is relative to (default: the current directory).

    Returns
    -------
    Spec
        With `source` None and `raw` the canonical plain mapping.
    """
    return _load_text(text, filename, overrides, Path(base_dir) if base_dir is not None else Path.cwd())


def _load_text(text: str, filename: str, overrides: Sequence[str], base_dir: Path) -> Spec:
    if len(text) > MAX_SPEC_BYTES:
        message = f"the spec has {len(text):,} characters, more than the limit of {size(MAX_SPEC_BYTES)}"
        hint = "a spec is a few KB: check the input"
        raise SpecError([Problem(message, Location(filename, 1, 1), hint=hint)])
    try:
        tree, problems = compose(text, filename)  # text -> located nodes (syntax errors raise)
        tree, set_problems = apply_overrides(tree, overrides)  # --set, before any check
        ctx = c.Ctx(filename, problems=[*set_problems, *problems])
        spec = _validate(ctx, tree, base_dir)  # every section, all problems collected
        if spec is None or ctx.problems:
            raise SpecError(_ordered(ctx.problems, filename))
    except SpecError as err:
        raise SpecError(_brief(err.problems)) from None
    return replace(spec, raw=canonical(tree))


def _brief(problems: Sequence[Problem]) -> list[Problem]:
    """At most `MAX_PROBLEMS` problems, each field on one line of at most 300 characters.

    The readers already show long values cut short; this is the safety net that
    keeps every message on one screen whatever the input.
    """
    shown = [_short(p) for p in problems[:MAX_PROBLEMS]]
    if len(problems) > MAX_PROBLEMS:
        more = len(problems) - MAX_PROBLEMS
        shown.append(Problem(f"{more} more problem{'s' if more != 1 else ''} not shown",
                             hint="fix the problems above and run again"))
    return shown


def _short(problem: Problem) -> Problem:
    fields = ("message", "path", "received", "allowed", "hint")
    cut = {k: shorten(v, 300) for k in fields if (v := getattr(problem, k)) is not None}
    return replace(problem, **cut)


def _validate(ctx: c.Ctx, tree: Node | None, base_dir: Path) -> Spec | None:
    if tree is None:
        ctx.add(Location(ctx.file, 1, 1), "", "the spec is empty", hint="start with `dmftc: 1`")
        return None
    top = c.mapping(ctx, tree, "", TOP_KEYS, TOP_REQUIRED)
    if top is None:
        return None
    header = (read_version(ctx, top.get("dmftc")), read_name(ctx, top.get("name")))
    description = read_description(ctx, top.get("description"))
    sizes = read_sizes(ctx, top.get("sizes"))
    hyper = read_hyper(ctx, top.get("hyper"))
    data = read_data(ctx, top.get("data"), base_dir)
    if data is not None:
        check_declared_sizes(ctx, sizes, data, top.get("sizes"))
    model = read_model(ctx, top.get("model"), None if data is None else "S" in data_sizes(data))
    weights = weight_names(model) if model is not None else None
    parameterization = read_parameterization(ctx, top.get("parameterization"), weights)
    limit = read_limit(ctx, top.get("limit"), sizes)
    training, solver = read_training(ctx, top.get("training")), read_solver(ctx, top.get("solver"))
    if training is not None and training.batches is not None and data is not None:
        _check_batches(ctx, training, data_sizes(data)["P"])
    if training is not None and training.loss == "cross_entropy" and data is not None:
        _check_labels(ctx, top.get("training"), data)
    parts = (*header, model, parameterization, limit, training, data, solver)
    if ctx.problems or any(p is None for p in parts):
        return None
    spec = Spec(
        version=header[0], name=header[1], description=description,
        sizes=sizes | data_sizes(data), hyper=hyper, model=model,
        parameterization=parameterization, limit=limit, training=training, data=data, solver=solver,
    )  # fmt: skip
    warnings = hyper_report(ctx, spec, top.get("hyper"), top.get("parameterization"))  # gama0: a problem
    return replace(spec, warnings=warnings)


def _check_batches(ctx: c.Ctx, training, n_train: int) -> None:
    """The batches fit the training set (indices, sizes, the online stream's length)."""
    try:
        batch_indices(training.batches, n_train, training.steps)
    except SpecError as err:
        ctx.problems.extend(err.problems)


def _check_labels(ctx: c.Ctx, node, data) -> None:
    """The cross-entropy of two classes needs targets y = -1 or +1."""
    from .data import load_data_of

    y = load_data_of(data)[1]
    bad = sorted(set(float(v) for v in y) - {-1.0, 1.0})
    if bad:
        where = node.get("loss") if hasattr(node, "get") else node
        ctx.add(where, "training.loss", "cross_entropy needs two-class targets y = -1 or +1",
                received=f"targets such as {', '.join(f'{v:g}' for v in bad[:3])}",
                hint="use synthetic `target: sign_linear`, a two-class dataset, or `loss: mse`")


def _ordered(problems: list[Problem], filename: str) -> list[Problem]:
    """Problems of --set first, then in file order (line, column)."""

    def key(p: Problem) -> tuple[int, int, int]:
        if p.location is None:
            return (2, 0, 0)
        return (int(p.location.file == filename), p.location.line, p.location.col)

    return sorted(problems, key=key)


# -------------------------------------------------------------- canonical form
def canonical(node: Node | None, path: tuple[str | int, ...] = ()) -> Any:
    """The plain-Python form of a valid spec tree, independent of how it was written.

    Sections and fixed keys in the format's order; user-named keys (sizes, hyper,
    weights) sorted; `limit` kept in its order (it matters) with every value
    ``"inf"``; a null op body (``layernorm:``) as ``{}``.
    """
    if isinstance(node, SeqNode):
        return [canonical(item, (*path, i)) for i, item in enumerate(node.items)]
    if not isinstance(node, MapNode):
        empty_op = len(path) >= 2 and isinstance(path[-2], int) and path[-1] in ("layernorm", "readout")
        return {} if node is not None and node.value is None and empty_op else getattr(node, "value", None)
    items = {k.value: canonical(v, (*path, k.value)) for k, v in node.items}
    if path == ("limit",):
        return {k: "inf" for k in items}
    if path in FREE_MAPS:
        return dict(sorted(items.items()))
    order = known_keys(path) or tuple(items)
    return {k: items[k] for k in order if k in items}


def symbol_values(spec: Spec) -> dict[sympy.Symbol, sympy.Rational]:
    """Exact values of every size and hyperparameter symbol of `spec` (for ``expr.subs``).

    Sizes are integers; hyperparameters are the rationals their decimals denote
    (``0.5 -> 1/2``), read from the shortest repr of the stored float.
    """
    values = {size_symbol(k): sympy.Integer(v) for k, v in spec.sizes.items()}
    return values | {hyper_symbol(k): exact(v) for k, v in spec.hyper.items()}
