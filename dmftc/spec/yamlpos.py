"""YAML with positions: the spec text as a tree of located nodes.

The text is read with `yaml.compose` and the safe loader, which builds nodes
only (nothing is constructed or executed), and the nodes are walked here. Only
the standard tags are accepted (str, int, float, bool, null, map, seq); any other
tag (`!!python/object/...`, `!local`, timestamps, merge keys `<<`) is reported as
a problem naming the tag. Duplicate keys, which a plain safe load silently
drops, are problems too. Scalars are converted by the safe constructor's own
scalar routines, so `0.5`, `.inf`, `0x10` and `yes` mean what YAML 1.1 says.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

import yaml
from yaml.constructor import SafeConstructor

from ..errors import Location, Problem, SpecError

_YAML = "tag:yaml.org,2002:"
_SCALAR_TAGS = ("str", "int", "float", "bool", "null")
INVALID = "invalid"  # tag of a node already reported as a problem; readers skip it silently


@dataclass(frozen=True)
class Scalar:
    """A scalar: its Python value, its source text, its short tag and where it starts.

    `tag` is one of str, int, float, bool, null (or `INVALID`); `quoted` says the
    text starts one column after `loc` (a quoted scalar).
    """

    value: Any
    text: str
    tag: str
    loc: Location
    quoted: bool = False


@dataclass(frozen=True)
class MapNode:
    """A mapping: (key, value) pairs in file order; keys are str scalars."""

    items: tuple[tuple[Scalar, "Node"], ...]
    loc: Location

    def get(self, key: str) -> "Node | None":
        """The value node under `key`, or None."""
        return next((v for k, v in self.items if k.value == key), None)

    def keys(self) -> list[str]:
        """The keys in file order."""
        return [k.value for k, _ in self.items]


@dataclass(frozen=True)
class SeqNode:
    """A sequence of nodes in file order."""

    items: tuple["Node", ...]
    loc: Location


Node = Union[Scalar, MapNode, SeqNode]


def compose(text: str, filename: str) -> tuple[Node | None, list[Problem]]:
    """Parse `text` into a located tree and the problems found while walking it.

    A YAML syntax error is fatal and raised as a `SpecError` at its file:line:col.
    Bad tags and duplicate keys are returned as problems; the offending nodes are
    marked `INVALID` (a duplicate key keeps its first value).
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        raise SpecError([_syntax_problem(exc, filename)]) from None
    except yaml.YAMLError as exc:
        raise SpecError([Problem(f"cannot read YAML: {exc}", Location(filename, 1, 1))]) from None
    except RecursionError:
        raise SpecError([_too_deep(filename)]) from None
    if root is None:
        return None, []
    problems: list[Problem] = []
    try:
        return _Walker(filename, problems).walk(root), problems
    except RecursionError:
        raise SpecError([_too_deep(filename)]) from None


def _too_deep(filename: str) -> Problem:
    return Problem("the YAML is nested too deeply", Location(filename, 1, 1), hint="flatten it")


def _syntax_problem(exc: yaml.MarkedYAMLError, filename: str) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    loc = Location(filename, mark.line + 1, mark.column + 1) if mark else Location(filename, 1, 1)
    what = " ".join(x for x in (exc.context, exc.problem) if x)
    return Problem(
        f"YAML syntax error: {what}",
        loc,
        hint="check the indentation and the brackets and quotes near this position",
    )


def location(node: yaml.Node, filename: str) -> Location:
    """The 1-based file:line:col where `node` starts."""
    return Location(filename, node.start_mark.line + 1, node.start_mark.column + 1)


_MAX_NODES = 100_000  # aliases can expand a short text exponentially ("billion laughs")


@dataclass
class _Walker:
    """Walks yaml nodes into located nodes, collecting problems."""

    filename: str
    problems: list[Problem]
    active: set[int] = field(default_factory=set)
    count: int = 0

    def walk(self, node: yaml.Node, path: str = "") -> Node:
        loc = location(node, self.filename)
        self.count += 1
        if self.count > _MAX_NODES:
            raise SpecError([Problem("spec too large (YAML aliases expand too far)", loc)])
        if id(node) in self.active:  # a recursive alias (&a [*a]) would never end
            self.problems.append(Problem("recursive YAML alias", loc, path, hint="remove the alias"))
            return Scalar(None, "", INVALID, loc)
        if isinstance(node, yaml.ScalarNode):
            return _scalar(node, self.filename, self.problems, path)
        if not _standard(node):
            self.problems.append(_tag_problem(node.tag, loc, path))
            return Scalar(None, "", INVALID, loc)
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return SeqNode(tuple(self.walk(n, f"{path}[{i}]") for i, n in enumerate(node.value)), loc)
            return self.mapping(node, loc, path)
        finally:
            self.active.discard(id(node))

    def mapping(self, node: yaml.MappingNode, loc: Location, path: str) -> MapNode:
        items: list[tuple[Scalar, Node]] = []
        seen: dict[Any, Scalar] = {}
        for knode, vnode in node.value:
            key = self.walk(knode, path)
            if not self.key_ok(key, knode, path):
                continue
            inner = f"{path}.{key.value}" if path else key.value
            if key.value in seen:
                self.problems.append(_duplicate(key, seen[key.value], inner))
                continue
            seen[key.value] = key
            items.append((key, self.walk(vnode, inner)))
        return MapNode(tuple(items), loc)

    def key_ok(self, key: Node, knode: yaml.Node, path: str) -> bool:
        if isinstance(key, Scalar) and key.tag == "str":
            return True
        if not (isinstance(key, Scalar) and key.tag == INVALID):
            shown = key.text if isinstance(key, Scalar) else type(key).__name__
            self.problems.append(
                Problem(
                    "mapping keys must be strings",
                    location(knode, self.filename),
                    path,
                    received=repr(shown),
                    hint=f"quote the key: '{shown}'",
                )
            )
        return False


def _standard(node: yaml.Node) -> bool:
    short = {yaml.SequenceNode: "seq", yaml.MappingNode: "map"}.get(type(node))
    return node.tag == _YAML + str(short)


def _tag_problem(tag: str, loc: Location, path: str) -> Problem:
    short = tag.removeprefix(_YAML)
    if short == "timestamp":
        return Problem("dates are not allowed", loc, path, received=repr(short), hint="quote the value")
    if short == "merge":
        return Problem("YAML merge keys (<<) are not allowed", loc, path, hint="write the keys out")
    return Problem(
        f"YAML tag {tag!r} is not allowed",
        loc,
        path,
        received=tag,
        allowed="the standard tags: str, int, float, bool, null, map, seq",
        hint="remove the tag: a spec holds plain data only",
    )


def _scalar(node: yaml.ScalarNode, filename: str, problems: list[Problem], path: str) -> Scalar:
    loc = location(node, filename)
    short = node.tag.removeprefix(_YAML)
    if not node.tag.startswith(_YAML) or short not in _SCALAR_TAGS:
        problems.append(_tag_problem(node.tag, loc, path))
        return Scalar(None, node.value, INVALID, loc)
    try:
        value = getattr(_CONSTRUCTOR, _BUILDERS[short])(node)
    except (yaml.YAMLError, ValueError):  # e.g. `!!int abc`
        bad = Problem(f"not a valid {short}", loc, path, received=repr(node.value), hint="remove the tag")
        problems.append(bad)
        return Scalar(None, node.value, INVALID, loc)
    return Scalar(value, node.value, short, loc, quoted=node.style in ("'", '"'))


_CONSTRUCTOR = SafeConstructor()
_BUILDERS = {
    "str": "construct_yaml_str",
    "int": "construct_yaml_int",
    "float": "construct_yaml_float",
    "bool": "construct_yaml_bool",
    "null": "construct_yaml_null",
}


def _duplicate(key: Scalar, first: Scalar, path: str) -> Problem:
    return Problem(
        f"duplicate key {key.value!r} (first given at line {first.loc.line})",
        key.loc,
        path,
        received=repr(key.value),
        hint="remove one of the two entries: YAML keeps only one of them",
    )


def to_plain(node: Node | None) -> Any:
    """The plain Python value of a tree: dicts (file order), lists and scalars."""
    if isinstance(node, MapNode):
        return {k.value: to_plain(v) for k, v in node.items}
    if isinstance(node, SeqNode):
        return [to_plain(n) for n in node.items]
    return None if node is None else node.value
