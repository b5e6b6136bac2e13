"""Readers of located nodes that collect problems instead of raising.

Every reader takes the context, a node and its key path, returns the checked
value, or None after recording a `Problem` (file:line:col, key path, received,
allowed, fix). A node already reported (tag `INVALID`) is skipped silently, so
one mistake gives one message.
"""

from __future__ import annotations

import difflib
import keyword
import math
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import sympy

from ..errors import Location, Problem, SpecError
from ..notation import RESERVED, size_symbol
from .expr import DECIMAL, FUNCTIONS, evaluate, parse_expr
from .limits import SEED_ALLOWED, SEED_LIMIT, shorten
from .schema import EXAMPLES
from .yamlpos import INVALID, MapNode, Node, Scalar, SeqNode

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class Ctx:
    """What validation accumulates: the problems, the declared symbols and their values.

    `symbols_ok` is False when the sizes or hyper section could not be read: then
    an undeclared symbol is probably a consequence, and is not reported again.
    """

    file: str
    problems: list[Problem] = field(default_factory=list)
    symbols: dict[str, sympy.Symbol] = field(default_factory=dict)
    values: dict[sympy.Symbol, float] = field(default_factory=dict)
    symbols_ok: bool = True

    def add(self, node: Node | Location | None, path: str, message: str, **details: Any) -> None:
        """Record a problem at `node` (a node or a location)."""
        loc = node if isinstance(node, Location) or node is None else node.loc
        self.problems.append(Problem(message, loc, path, **details))


def join(path: str, key: str | int) -> str:
    """Extend a key path: ``join('model', 2) == 'model[2]'``, ``join('a', 'b') == 'a.b'``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def show(node: Node) -> str:
    """A short rendering of what was received at `node`."""
    if isinstance(node, MapNode):
        return "a mapping {" + ", ".join(node.keys()[:4]) + ("...}" if len(node.items) > 4 else "}")
    if isinstance(node, SeqNode):
        return f"a list of {len(node.items)} item{'s' if len(node.items) != 1 else ''}"
    text = repr(node.value) if node.tag != "str" else repr(node.text)
    return text if len(text) <= 60 else text[:57] + "..."


def skip(node: Node | None) -> bool:
    """True for a node that was already reported (or is missing)."""
    return node is None or (isinstance(node, Scalar) and node.tag == INVALID)


def close_hint(word: str, options: Iterable[str], fallback: str) -> str:
    """``did you mean 'x'?`` from difflib, or `fallback`."""
    close = difflib.get_close_matches(str(word), list(options), n=2, cutoff=0.6)
    if not close:
        return fallback
    return "did you mean " + " or ".join(repr(c) for c in close) + "?"


# -------------------------------------------------------------------- structure
def mapping(
    ctx: Ctx,
    node: Node | None,
    path: str,
    allowed: Sequence[str],
    required: Sequence[str] = (),
) -> dict[str, Node] | None:
    """The entries of a mapping with a fixed set of keys; reports unknown and missing keys."""
    if skip(node):
        return None
    if isinstance(node, Scalar) and node.tag == "null" and not required:
        return {}
    if not isinstance(node, MapNode):
        ctx.add(node, path, "expected a mapping", received=show(node), hint=_mapping_hint(allowed))
        return None
    out: dict[str, Node] = {}
    for key, value in node.items:
        if key.value in allowed:
            out[key.value] = value
        else:
            _unknown_key(ctx, key, path, allowed)
    for name in required:
        if name not in out:
            hint = f"add `{EXAMPLES.get(name, name + ': ...')}`"
            ctx.add(node, join(path, name), f"missing key {name!r}", hint=hint)
    return out


def _mapping_hint(allowed: Sequence[str]) -> str:
    if not allowed:
        return "write {}"
    return "write key: value pairs, e.g. {" + ", ".join(f"{k}: ..." for k in allowed[:2]) + "}"


def _unknown_key(ctx: Ctx, key: Scalar, path: str, allowed: Sequence[str]) -> None:
    ctx.add(
        key,
        join(path, key.value),
        f"unknown key {key.value!r}",
        received=repr(key.value),
        allowed=_listing(allowed),
        hint=close_hint(key.value, allowed, "remove it"),
    )


def _listing(options: Sequence[str]) -> str:
    return ", ".join(options) if options else "(none)"


def free_mapping(ctx: Ctx, node: Node | None, path: str, what: str) -> list[tuple[Scalar, Node]] | None:
    """The entries of a mapping whose keys are names chosen by the user."""
    if skip(node):
        return None
    if isinstance(node, Scalar) and node.tag == "null":
        return []
    if not isinstance(node, MapNode):
        hint = "write {name: value, ...}"
        ctx.add(node, path, f"expected a mapping of {what}", received=show(node), hint=hint)
        return None
    return list(node.items)


def sequence(ctx: Ctx, node: Node | None, path: str, what: str) -> list[Node] | None:
    """The items of a list."""
    if skip(node):
        return None
    if not isinstance(node, SeqNode):
        hint = "write one `- item` per line"
        ctx.add(node, path, f"expected a list of {what}", received=show(node), hint=hint)
        return None
    return list(node.items)


# ---------------------------------------------------------------------- scalars
def integer(ctx: Ctx, node: Node | None, path: str, minimum: int = 1) -> int | None:
    """An integer >= `minimum` (booleans and floats such as 3.0 are refused)."""
    if skip(node):
        return None
    if not (isinstance(node, Scalar) and node.tag == "int"):
        allowed, hint = f"an integer >= {minimum}", _integer_hint(node, minimum)
        ctx.add(node, path, "expected an integer", received=show(node), allowed=allowed, hint=hint)
        return None
    if node.value < minimum:
        what = "positive integer" if minimum == 1 else f"integer >= {minimum}"
        hint = f"use {minimum} or more"
        ctx.add(node, path, f"expected a {what}", received=show(node), allowed=f">= {minimum}", hint=hint)
        return None
    return node.value


def _integer_hint(node: Node, minimum: int) -> str:
    whole = isinstance(node, Scalar) and node.tag == "float" and math.isfinite(node.value)
    if whole and node.value.is_integer() and abs(node.value) < 1e15:
        return f"write {int(node.value)} (no decimal point)"
    return f"write a whole number such as {max(minimum, 1)}"


def seed(ctx: Ctx, node: Node | None, path: str) -> int | None:
    """A random seed: an integer with 0 <= seed < 2**32 (what numpy and JAX accept)."""
    value = integer(ctx, node, path, minimum=0)
    if value is not None and value >= SEED_LIMIT:
        ctx.add(node, path, "seed out of range", received=show(node), allowed=SEED_ALLOWED,
                hint="use a smaller seed, e.g. 0")
        return None
    return value


def number(ctx: Ctx, node: Node | None, path: str, low: float, high: float = math.inf) -> float | None:
    """A finite real number in the interval (low, high]."""
    if skip(node):
        return None
    interval = f"({low:g}, " + ("inf)" if math.isinf(high) else f"{high:g}]")
    if not (isinstance(node, Scalar) and node.tag in ("int", "float") and math.isfinite(node.value)):
        hint = "write a number such as 0.5"
        ctx.add(node, path, "expected a number", received=show(node), allowed=interval, hint=hint)
        return None
    if not low < node.value <= high:
        hint = f"use a value in {interval}"
        ctx.add(node, path, "number out of range", received=show(node), allowed=interval, hint=hint)
        return None
    return node.value


def choice(ctx: Ctx, node: Node | None, path: str, options: Sequence[str], what: str) -> str | None:
    """One of `options` (a string)."""
    if skip(node):
        return None
    value = node.value if isinstance(node, Scalar) else None
    if isinstance(value, str) and value in options:
        return value
    received = show(node)
    ctx.add(
        node,
        path,
        f"unknown {what} {received}" if isinstance(value, str) else f"expected a string ({what})",
        received=received,
        allowed=_listing(options),
        hint=close_hint(str(value), options, f"use one of {_listing(options)}"),
    )
    return None


def text(ctx: Ctx, node: Node | None, path: str) -> str | None:
    """A string."""
    if skip(node):
        return None
    if isinstance(node, Scalar) and node.tag == "str":
        return node.value
    ctx.add(node, path, "expected a string", received=show(node), hint="quote it")
    return None


def identifier(ctx: Ctx, node: Node | None, path: str, what: str) -> str | None:
    """A Python identifier (ASCII), not a keyword: it becomes a name in generated code."""
    if skip(node):
        return None
    value = node.value if isinstance(node, Scalar) else None
    if not isinstance(value, str):
        hint = "write a name such as W0"
        ctx.add(node, path, f"{what} must be a string identifier", received=show(node), hint=hint)
        return None
    return value if name_ok(ctx, node, path, value, what) else None


def name_ok(ctx: Ctx, where: Node, path: str, name: str, what: str) -> bool:
    """Check that `name` can be a Python identifier; record a problem otherwise."""
    if not _IDENTIFIER.fullmatch(name):
        fixed = re.sub(r"\W", "_", name[:60])
        fixed = fixed if _IDENTIFIER.fullmatch(fixed) else "_" + fixed
        allowed = "letters, digits and _, not starting with a digit"
        shown = repr(shorten(name))
        ctx.add(where, path, f"{what} {shown} is not an identifier", received=shown, allowed=allowed,
                hint=f"rename it, e.g. {fixed}")
        return False
    if keyword.iskeyword(name):
        hint = f"rename it, e.g. {name}_"
        ctx.add(where, path, f"{what} {name!r} is a Python keyword", received=repr(name), hint=hint)
        return False
    return True


# ------------------------------------------------------------------ expressions
def expression(ctx: Ctx, node: Node | None, path: str, functions=FUNCTIONS) -> sympy.Expr | None:
    """A whitelisted expression in the declared symbols (see `dmftc.spec.expr`)."""
    if skip(node):
        return None
    if not isinstance(node, Scalar):
        hint = "write a number or a formula such as N**(-1/2)"
        ctx.add(node, path, "expected an expression", received=show(node), hint=hint)
        return None
    value = node.value
    if node.tag == "float" and DECIMAL.fullmatch(node.text.strip()):
        value = node.text  # the digits as written: read exactly (0.1 is 1/10)
    loc = node.loc
    if node.quoted:
        loc = Location(loc.file, loc.line, loc.col + 1)
    try:
        return parse_expr(value, ctx.symbols, loc, path, functions)
    except SpecError as err:
        if ctx.symbols_ok or "undeclared symbol" not in err.problems[0].message:
            ctx.problems.extend(err.problems)
        return None


def valued(ctx: Ctx, node: Node, path: str, expr: sympy.Expr | None, kind: str) -> float | None:
    """Evaluate `expr` at the finite sizes and hyperparameters and check it is a `kind`.

    `kind` is one of: count (integer >= 1), count0 (integer >= 0), positive (> 0),
    nonnegative (>= 0). Returns the value, or None (after a problem, unless the
    values are not all known).
    """
    if expr is None:
        return None
    try:
        value = evaluate(expr, ctx.values)
    except KeyError as missing:
        _unvalued(ctx, node, path, missing.args[0])
        return None
    except ArithmeticError as exc:
        why = ("its value is beyond the float range" if isinstance(exc, OverflowError) else
               "it divides by zero" if isinstance(exc, ZeroDivisionError) else "its value is not a real number")
        ctx.add(node, path, f"cannot evaluate at the sizes given: {why}", received=show(node),
                hint="check the formula and the sizes")
        return None
    return value if _kind_ok(ctx, node, path, value, kind) else None


_KINDS = {
    "count": (lambda v: v >= 1 and _whole(v), "a positive integer"),
    "count0": (lambda v: v >= 0 and _whole(v), "an integer >= 0"),
    "positive": (lambda v: v > 0, "a positive number"),
    "nonnegative": (lambda v: v >= 0, "a number >= 0"),
}


def _whole(v: float) -> bool:
    return abs(v - round(v)) <= 1e-9 * max(1.0, abs(v))


def _kind_ok(ctx: Ctx, node: Node, path: str, value: float, kind: str) -> bool:
    ok, what = _KINDS[kind]
    if ok(value):
        return True
    message = f"evaluates to {value:g} at the sizes given, expected {what}"
    ctx.add(node, path, message, received=show(node), allowed=what, hint="change the formula or the sizes")
    return False


def _unvalued(ctx: Ctx, node: Node, path: str, symbol: Any) -> None:
    """A symbol without a value: S without token data; else a problem already reported."""
    if str(symbol) == "S" and size_symbol("P") in ctx.values:
        hint = "S needs token data: X of shape (P, S, D), or S in data.synthetic"
        ctx.add(node, path, "uses S, but the data have no tokens", received=show(node), hint=hint)


def check_symbol_name(ctx: Ctx, key: Scalar, path: str, what: str) -> bool:
    """A size or hyper name: an identifier, not a keyword, not a function name."""
    if not name_ok(ctx, key, path, key.value, what):
        return False
    if key.value in FUNCTIONS:
        message, hint = f"{what} {key.value!r} is the name of a function", f"rename it, e.g. {key.value}_"
        ctx.add(key, path, message, received=repr(key.value), hint=hint)
        return False
    if key.value in RESERVED:
        message = f"{what} {key.value!r} is a name the derivation reserves for its own symbols"
        ctx.add(key, path, message, received=repr(key.value), allowed=f"any identifier but {', '.join(sorted(RESERVED))}",
                hint=f"rename it, e.g. {key.value}_")
        return False
    return True
