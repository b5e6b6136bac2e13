"""Names of the weights: the one rule every stage relies on.

- an unnamed `dense` op is named ``W{k}``, k the 0-based index of that op among
  all dense ops in order of appearance in the file (named or not; ops inside
  `repeat` and `residual` bodies counted once, as templates);
- an unnamed `attention` op is named ``attn{k}``, k counting attention ops the
  same way; an attention op named ``a`` owns the weights ``a_K, a_Q, a_V, a_O``;
- an unnamed `readout` is named ``w``.

Names must be Python identifiers and unique across all weights.
"""

from __future__ import annotations

import dataclasses
import keyword
import re
from typing import Iterator, Mapping, Sequence

from ..errors import Location, Problem, SpecError
from .types import Attention, Dense, Op, Readout, Repeat, Residual

ATTENTION_PARTS = ("K", "Q", "V", "O")
READOUT_DEFAULT = "w"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def assign_names(ops: Sequence[Op]) -> tuple[Op, ...]:
    """Give every Dense, Attention and Readout op a name, by the rule of this module.

    Parameters
    ----------
    ops
        The model ops, in file order (nested bodies included).

    Returns
    -------
    tuple of Op
        The same ops with `name` filled in where it was None.

    Raises
    ------
    SpecError
        If a name is not an identifier or two weights share a name.
    """
    named = with_default_names(ops)
    problems = name_problems(named)
    if problems:
        raise SpecError(problems)
    return named


def weight_names(ops: Sequence[Op]) -> list[str]:
    """All weight names of the model in order of appearance (templates once).

    A dense op contributes its name, an attention op named ``a`` contributes
    ``a_K, a_Q, a_V, a_O``, the readout its name. Unnamed ops get their default
    names first (`assign_names`).
    """
    return [name for name, _ in _weights(assign_names(ops))]


def with_default_names(ops: Sequence[Op]) -> tuple[Op, ...]:
    """The ops with default names filled in, without checking them (see `assign_names`)."""
    return _assign(tuple(ops), _Counter())


@dataclasses.dataclass
class _Counter:
    dense: int = 0
    attention: int = 0


def _assign(ops: tuple[Op, ...], count: _Counter) -> tuple[Op, ...]:
    return tuple(_assign_one(op, count) for op in ops)


def _assign_one(op: Op, count: _Counter) -> Op:
    if isinstance(op, Dense):
        k, count.dense = count.dense, count.dense + 1
        return op if op.name is not None else dataclasses.replace(op, name=f"W{k}")
    if isinstance(op, Attention):
        k, count.attention = count.attention, count.attention + 1
        return op if op.name is not None else dataclasses.replace(op, name=f"attn{k}")
    if isinstance(op, Readout):
        return op if op.name is not None else dataclasses.replace(op, name=READOUT_DEFAULT)
    if isinstance(op, Repeat):
        return dataclasses.replace(op, body=_assign(op.body, count))
    if isinstance(op, Residual):
        return dataclasses.replace(op, branch=_assign(op.branch, count))
    return op


def _walk(ops: Sequence[Op]) -> Iterator[Op]:
    for op in ops:
        yield op
        if isinstance(op, Repeat):
            yield from _walk(op.body)
        elif isinstance(op, Residual):
            yield from _walk(op.branch)


def _weights(ops: Sequence[Op]) -> Iterator[tuple[str, Op]]:
    """(weight name, owning op) for every weight, in order of appearance."""
    for op in _walk(ops):
        if isinstance(op, (Dense, Readout)) and op.name is not None:
            yield op.name, op
        elif isinstance(op, Attention) and op.name is not None:
            yield from ((f"{op.name}_{part}", op) for part in ATTENTION_PARTS)


def name_problems(ops: Sequence[Op], paths: Mapping[Location, str] | None = None) -> list[Problem]:
    """Problems with the weight names of named ops: not identifiers, or used twice.

    `paths` maps an op's `pos` to its key path, e.g. ``model[0].dense`` (for the
    messages), when known.
    """
    problems: list[Problem] = []
    first: dict[str, Op] = {}
    for name, op in _weights(ops):
        path = _path(op, paths or {})
        if not _IDENTIFIER.fullmatch(name) or keyword.iskeyword(name):
            problems.append(_bad_name(name, op, path))
        elif name in first and first[name] is not op:
            problems.append(_duplicate(name, op, first[name], path))
        else:
            first.setdefault(name, op)
    return problems


def _path(op: Op, paths: Mapping[Location, str]) -> str:
    pos = getattr(op, "pos", None)
    return (paths.get(pos, op.kind) if pos is not None else op.kind) + ".name"


def _bad_name(name: str, op: Op, path: str) -> Problem:
    return Problem(
        f"weight name {name!r} is not an identifier",
        getattr(op, "pos", None),
        path,
        received=repr(name),
        hint="use letters, digits and _, starting with a letter",
    )


def _duplicate(name: str, op: Op, first: Op, path: str) -> Problem:
    where = getattr(first, "pos", None)
    at = f" (first used at line {where.line})" if where else ""
    default = "; unnamed dense ops are W<k>, k counting all dense ops" if name[:1] == "W" else ""
    return Problem(
        f"two weights are named {name!r}{at}",
        getattr(op, "pos", None),
        path,
        received=repr(name),
        hint=f"give one of them another `name:`{default}",
    )
