"""YAML with positions: the spec text as a tree of located nodes.

The text is read with `yaml.compose` and the safe loader, which builds nodes
only (nothing is constructed or executed), and the nodes are walked here. Only
the standard tags are accepted (str, int, float, bool, null, map, seq); any other
tag (`!!python/object/...`, `!local`, timestamps, merge keys `<<`) is reported as
a problem naming the tag. Duplicate keys, which a plain safe load silently
drops, are problems too. Scalars are converted by the safe constructor's own
scalar routines, so `0.5`, `.inf` and `yes` mean what YAML 1.1 says; numbers
must be plain decimals: the YAML 1.1 forms that read differently from how they
look (`17:04` is 1024, `017` is 15, `0x10`, `0b10`, `1_000`) are problems, and
a decimal without a dot (`1e-3`, which YAML 1.1 leaves a string) is a float, as
in YAML 1.2. Integers, floats, keys and control characters are bounded and
located (see `dmftc.spec.limits`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Union

import yaml
from yaml.constructor import SafeConstructor

from ..errors import Location, Problem, SpecError
from .limits import MAX_INT, MAX_INT_DIGITS, MAX_KEY, SEED_ALLOWED, SEED_PATHS, SHOWN, shorten

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


def compose(text: str, filename: str, path: str = "") -> tuple[Node | None, list[Problem]]:
    """Parse `text` into a located tree and the problems found while walking it.

    A YAML syntax error is fatal and raised as a `SpecError` at its file:line:col.
    Bad tags and duplicate keys are returned as problems; the offending nodes are
    marked `INVALID` (a duplicate key keeps its first value). `path` is the key
    path of the text's root in messages (a ``--set`` value's key).
    """
    try:
        root = yaml.compose(text, Loader=_Loader)
    except _Refused as exc:  # bounds on the work of reading, checked while PyYAML reads
        loc = Location(filename, exc.mark.line + 1, exc.mark.column + 1)
        raise SpecError([Problem(exc.message, loc, hint=exc.hint)]) from None
    except yaml.MarkedYAMLError as exc:
        raise SpecError([_syntax_problem(exc, filename)]) from None
    except yaml.reader.ReaderError as exc:
        raise SpecError([_reader_problem(exc, text, filename)]) from None
    except yaml.YAMLError as exc:
        problem = Problem(f"cannot read YAML: {shorten(str(exc), 200)}", Location(filename, 1, 1))
        raise SpecError([problem]) from None
    except RecursionError:
        raise SpecError([_too_deep(filename)]) from None
    if root is None:
        return None, []
    problems: list[Problem] = []
    try:
        return _Walker(filename, problems).walk(root, path), problems
    except RecursionError:
        raise SpecError([_too_deep(filename)]) from None


class _Loader(yaml.SafeLoader):
    """The safe loader, also reading YAML 1.2 decimals without a dot (``1e-3``, ``2E+2``) as floats."""

    def fetch_flow_collection_start(self, TokenClass):
        # PyYAML's scanner takes time quadratic in the depth of [ and { (4 s at 1000 levels of [[[...)
        if self.flow_level >= _MAX_FLOW_DEPTH:
            raise _Refused(self.get_mark(), f"the YAML is nested too deeply (brackets more than "
                                            f"{_MAX_FLOW_DEPTH} deep)", "flatten it")
        super().fetch_flow_collection_start(TokenClass)

    def compose_node(self, parent, index):
        # the nodes the text writes (an alias once), counted as they are read: PyYAML reads ~100 KB/s,
        # so a 1 MiB list would take 10 s to compose before the walker below counts its nodes
        self._node_count = getattr(self, "_node_count", 0) + 1
        if self._node_count > _MAX_NODES:
            raise _Refused(self.get_mark(), f"spec too large: more than {_MAX_NODES:,} YAML nodes",
                           "a spec has a few hundred YAML nodes")
        return super().compose_node(parent, index)


class _Refused(Exception):
    def __init__(self, mark, message: str, hint: str):
        super().__init__(message)
        self.mark, self.message, self.hint = mark, message, hint


_MAX_FLOW_DEPTH = 100  # a spec nests a few levels; composing fails near 450 (Python's recursion) anyway


_Loader.add_implicit_resolver(  # a copy of the resolvers: yaml.SafeLoader itself is unchanged
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+$"),
    list("-+.0123456789"),
)


def _reader_problem(exc: yaml.reader.ReaderError, text: str, filename: str) -> Problem:
    """A character YAML refuses (NUL, other control characters), at its own line and column."""
    code = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "\0")
    line, col = _line_col(text, exc.position)
    name = f"U+{code:04X}" + (" (NUL)" if code == 0 else "")
    return Problem(
        f"the character {name} is not allowed in YAML",
        Location(filename, line, col),
        received=repr(chr(code)),
        hint="remove it: of the control characters, only tab and line breaks may appear",
    )


_BREAK = re.compile("\r\n|[\n\r\x85\u2028\u2029]")  # YAML's line breaks


def _line_col(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of character `index`, counting line breaks as YAML does."""
    line, start = 1, 0
    for match in _BREAK.finditer(text, 0, index):
        line, start = line + 1, match.end()
    return line, index - start + 1


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


_MAX_NODES = 10_000  # aliases can expand a short text exponentially ("billion laughs"); ~15 us a node


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
            raise SpecError([Problem("spec too large (YAML aliases expand too far)", loc,
                                     hint=f"a spec has a few hundred YAML nodes, not {_MAX_NODES:,}")])
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
            if isinstance(knode, (yaml.SequenceNode, yaml.MappingNode)):  # `? [a, b]`, `{[1, 2]: 3}`
                self.problems.append(_complex_key(knode, self.filename, path))
                continue
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
        if isinstance(key, Scalar) and key.tag == "str" and len(key.value) > MAX_KEY:
            too_long = Problem(f"key longer than {MAX_KEY} characters", key.loc, path,
                               received=repr(shorten(key.value)), hint="keys are names: shorten it")
            self.problems.append(too_long)
            return False
        if isinstance(key, Scalar) and key.tag == "str":
            return True
        if not (isinstance(key, Scalar) and key.tag == INVALID):
            shown = shorten(key.text) if isinstance(key, Scalar) else type(key).__name__
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


def _complex_key(knode: yaml.Node, filename: str, path: str) -> Problem:
    what = "a list" if isinstance(knode, yaml.SequenceNode) else "a mapping"
    return Problem(
        f"this key is {what}; keys must be plain names",
        location(knode, filename),
        path,
        received=f"{what} used as a key",
        hint="write a plain name before the colon, e.g. `N: 64` (`? [a, b]` and `{[1, 2]: 3}` are not names)",
    )


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
        f"YAML tag {shorten(tag)!r} is not allowed",
        loc,
        path,
        received=shorten(tag),
        allowed="the standard tags: str, int, float, bool, null, map, seq",
        hint="remove the tag: a spec holds plain data only",
    )


def _scalar(node: yaml.ScalarNode, filename: str, problems: list[Problem], path: str) -> Scalar:
    loc = location(node, filename)
    short = node.tag.removeprefix(_YAML)
    if not node.tag.startswith(_YAML) or short not in _SCALAR_TAGS:
        problems.append(_tag_problem(node.tag, loc, path))
        return Scalar(None, node.value, INVALID, loc)
    number = _number_problem(node, loc, path) if short in ("int", "float") else None
    if number is not None:
        problems.append(number)
        return Scalar(None, node.value, INVALID, loc)
    try:
        value = _construct(node)
    except (yaml.YAMLError, ValueError, KeyError):  # e.g. `!!int abc`, `!!bool maybe`
        shown = shorten(repr(node.value))
        problems.append(Problem(f"not a valid {short}", loc, path, received=shown, hint="remove the tag"))
        return Scalar(None, node.value, INVALID, loc)
    return Scalar(value, node.value, short, loc, quoted=node.style in ("'", '"'))


def _construct(node: yaml.ScalarNode) -> Any:
    return getattr(_CONSTRUCTOR, _BUILDERS[node.tag.removeprefix(_YAML)])(node)


# ---------------------------------------------------------------------- numbers
_PLAIN = {
    "int": re.compile(r"[-+]?(?:0|[1-9][0-9]*)"),
    "float": re.compile(
        r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
    ),
}
#: YAML 1.1 number forms that read differently from how they look, in the order tried.
_YAML11 = (
    ("base-60", re.compile(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?")),
    ("binary", re.compile(r"[-+]?0b[01_]+")),
    ("hexadecimal", re.compile(r"[-+]?0x[0-9a-fA-F_]+")),
    ("octal", re.compile(r"[-+]?0[0-7_]+")),
    ("underscores", re.compile(r"[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)(?:[eE][-+]?[0-9]+)?")),
)
_NUMBERS = "plain decimals such as 1000, -3, 0.5, 1.0e-4"


def _number_problem(node: yaml.ScalarNode, loc: Location, path: str) -> Problem | None:
    """What is wrong with an int or float scalar before it is converted, or None.

    Refused: the YAML 1.1 forms (base 60, binary, hexadecimal, octal, underscores),
    integers of magnitude 2**63 or more and decimals outside the float range. The
    text is examined before any conversion, so a 5,000-digit number costs nothing.
    """
    text, short = node.value, node.tag.removeprefix(_YAML)
    if not _PLAIN[short].fullmatch(text):
        return _yaml11_problem(node, loc, path)
    if short == "int":
        digits = len(text.lstrip("+-"))
        if digits <= MAX_INT_DIGITS and abs(int(text)) < MAX_INT:  # int() of 19 digits at most
            return None
        if path in SEED_PATHS:  # the tighter range of a seed says more
            return Problem("seed out of range", loc, path, received=shorten(text), allowed=SEED_ALLOWED,
                           hint="use a smaller seed, e.g. 0")
        allowed = "integers of magnitude below 2**63 (at most 19 digits)"
        return Problem(f"integer too large ({digits} digits)", loc, path, received=shorten(text), allowed=allowed,
                       hint="use a smaller number")
    if text.lower().lstrip("+-") in (".inf", ".nan"):
        return None
    value, mantissa = float(text), re.split("[eE]", text)[0]
    if math.isinf(value) or (value == 0 and mantissa.strip("+-.0")):
        allowed = "magnitudes from about 1e-308 to 1e308, or 0"
        return Problem("number outside the float range", loc, path, received=shorten(text), allowed=allowed,
                       hint="use a number in that range")
    return None


def _yaml11_problem(node: yaml.ScalarNode, loc: Location, path: str) -> Problem | None:
    """A YAML 1.1 form: how it is read and what to write instead (None: not such a form)."""
    text = node.value
    kind = next((k for k, pattern in _YAML11 if pattern.fullmatch(text)), None)
    if kind is None:
        return None  # not a number at all (`!!int abc`): reported by the conversion
    value = None
    if len(text) <= SHOWN:  # a long base-60 text would take long to convert
        try:
            value = _construct(node)
        except (yaml.YAMLError, ValueError):
            return None
    shown, number = shorten(text), "a number" if value is None else value
    if kind == "underscores":
        message = f"YAML 1.1 reads {shown} as {number} (underscores dropped)"
    else:
        message = f"YAML 1.1 reads {shown} as the {kind} number" + ("" if value is None else f" {value}")
    hint = "write a plain decimal" if value is None else f"write {value} (a plain decimal)"
    return Problem(message, loc, path, received=repr(shown), allowed=_NUMBERS,
                   hint=hint + ", or quote it if it is text")


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
        shorten(path, 200),
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
