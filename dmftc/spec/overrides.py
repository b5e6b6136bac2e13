"""`--set KEY=VALUE`: change any value of a spec by its key path before validation.

KEY is a dotted path with optional list indices (``hyper.gamma0``,
``data.synthetic.P``, ``model[0].dense.out``); VALUE is read as YAML by the same
safe reader as the spec (so ``0.5`` is a number, ``N/2`` a string, ``{H: inf}`` a
mapping). An existing entry is replaced. A missing entry is created only where
the format knows the key (``solver.samples`` in a spec without a solver
section) or the mapping takes new names (``limit``, ``parameterization.weights``);
`sizes` and `hyper` entries must exist, so a typo cannot silently add a new
symbol. Problems are located in the override text itself, e.g.
``<--set hyper.gama0=1>:1:7``.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Sequence

from ..errors import Location, Problem, SpecError
from . import checks as c
from .limits import shorten
from .schema import known_keys
from .yamlpos import MapNode, Node, Scalar, SeqNode, compose

_PART = re.compile(r"\.?([^.\[\]=]+)|\[(\d+)\]")
_MUST_EXIST = (("sizes",), ("hyper",))


class _Bad(Exception):
    def __init__(self, problem: Problem):
        super().__init__(problem.message)
        self.problem = problem


def apply_overrides(root: Node | None, overrides: Sequence[str]) -> tuple[Node | None, list[Problem]]:
    """`root` with every override applied in order, and the problems of those that failed."""
    problems: list[Problem] = []
    for text in overrides:
        try:
            parts, columns, value = parse_override(text)
            root = _set(root, parts, columns, value, (), f"<--set {text}>")
        except _Bad as bad:
            problems.append(bad.problem)
    return root, problems


def parse_override(text: str) -> tuple[list[str | int], list[int], Node]:
    """Split ``path=value`` into the path parts, their 1-based columns, and the value node."""
    label = f"<--set {shorten(text, 80)}>"
    path, sep, value = text.partition("=")
    if not sep or not path.strip():
        raise _Bad(Problem("expected KEY=VALUE", Location(label, 1, 1), "", received=shorten(repr(text)),
                           hint="e.g. --set hyper.gamma0=0.5"))
    parts, columns = _parse_path(path.strip(), label)
    return parts, columns, _value(value, len(path) + 1, label, _dotted(tuple(parts)))


def _parse_path(path: str, label: str) -> tuple[list[str | int], list[int]]:
    parts: list[str | int] = []
    columns: list[int] = []
    at = 0
    while at < len(path):
        match = _PART.match(path, at)
        if match is None or (match.group(0).startswith(".") and not parts):
            hint = "write keys separated by dots, e.g. model[0].dense.out"
            raise _Bad(Problem("cannot read the key path", Location(label, 1, at + 1), shorten(path),
                               received=shorten(repr(path)), hint=hint))
        key, index = match.groups()
        if index is not None and len(index) > 9:  # int() of 4,300 digits or more raises
            raise _Bad(Problem("list index too large", Location(label, 1, match.start() + 2), shorten(path),
                               received=shorten(index), hint="use an existing index"))
        parts.append(int(index) if index is not None else key.strip())
        columns.append(match.start() + 1 + (match.group(0)[0] in ".["))
        at = match.end()
    return parts, columns


def _value(text: str, offset: int, label: str, path: str) -> Node:
    """The value read as YAML, its columns counted from the start of the override."""
    try:
        node, problems = compose(" " * offset + text, label, path)
    except SpecError as err:
        raise _Bad(err.problems[0]) from None
    if problems:
        raise _Bad(problems[0])
    return node if node is not None else Scalar(None, "", "null", Location(label, 1, offset + 1))


def _set(node: Node | None, parts: list, columns: list[int], value: Node, done: tuple, label: str) -> Node:
    if not parts:
        return value
    head, loc = parts[0], Location(label, 1, columns[0])
    if isinstance(head, int):
        return _set_index(node, parts, columns, value, done, label)
    if not isinstance(node, MapNode):
        what = "is not a mapping" if node is not None else "does not exist"
        raise _Bad(_not_found(head, done, loc, what, []))
    for i, (key, child) in enumerate(node.items):
        if key.value == head:
            new = _set(child, parts[1:], columns[1:], value, (*done, head), label)
            return replace(node, items=node.items[:i] + ((key, new),) + node.items[i + 1 :])
    return _create(node, parts, columns, value, done, label)


def _create(node: MapNode, parts: list, columns: list[int], value: Node, done: tuple, label: str) -> Node:
    head, loc = parts[0], Location(label, 1, columns[0])
    allowed = known_keys(done)
    if done in _MUST_EXIST or (allowed is not None and head not in allowed):
        raise _Bad(_not_found(head, done, loc, "has no key", node.keys(), allowed))
    if len(parts) > 1 and isinstance(parts[1], int):
        raise _Bad(_not_found(head, done, loc, "has no list", node.keys()))
    empty = MapNode((), loc)
    new = _set(empty, parts[1:], columns[1:], value, (*done, head), label) if len(parts) > 1 else value
    return replace(node, items=(*node.items, (Scalar(head, head, "str", loc), new)))


def _set_index(
    node: Node | None, parts: list, columns: list[int], value: Node, done: tuple, label: str
) -> Node:
    head, loc = parts[0], Location(label, 1, columns[0])
    if not isinstance(node, SeqNode):
        raise _Bad(_not_found(head, done, loc, "is not a list", []))
    if not 0 <= head < len(node.items):
        message = f"{_dotted(done) or 'the spec'} has no item [{head}]"
        raise _Bad(Problem(message, loc, _dotted((*done, head)), received=str(head),
                           allowed=f"0 ... {len(node.items) - 1}", hint="use an existing index"))
    new = _set(node.items[head], parts[1:], columns[1:], value, (*done, head), label)
    return replace(node, items=node.items[:head] + (new,) + node.items[head + 1 :])


def _not_found(head: str | int, done: tuple, loc: Location, what: str, keys: list[str],
               allowed: tuple[str, ...] | None = None) -> Problem:
    where = _dotted(done) or "the spec"
    message = f"{where} {what} {head!r}" if what == "has no key" else f"{where} {what}"
    options = sorted(set(keys) | set(allowed or ()))
    return Problem(
        f"--set: {message}",
        loc,
        _dotted((*done, head)),
        received=repr(head),
        allowed=("existing keys: " + ", ".join(keys)) if keys else None,
        hint=c.close_hint(str(head), options, "check the key path against the spec file"),
    )


def _dotted(parts: tuple) -> str:
    path = ""
    for part in parts:
        path = c.join(path, part)
    return path
