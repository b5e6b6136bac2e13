"""The whitelist expression parser: spec text -> sympy expression, executing nothing.

Grammar (a subset of Python's expression syntax, parsed by `ast.parse` in
``mode='eval'``, which only builds a syntax tree, then walked with a strict
whitelist of node types):

    expr := number | symbol | expr (+ - * / **) expr | -expr | +expr | (expr)
          | sqrt(expr) | exp(expr) | log(expr)

Integers are exact (`sympy.Integer`), decimal literals are exact rationals read
from their digits (``0.5 -> 1/2``, ``1.0e-4 -> 1/10000``). Symbols must be
declared (the caller passes the table name -> symbol, built with
`dmftc.notation`). Anything else (``^``, strings, attribute access, calls of
other functions, subscripts, lambdas, comparisons, ...) is a `SpecError` at the
column of the offending token.
"""

from __future__ import annotations

import ast
import difflib
import math
import re
import unicodedata
from fractions import Fraction
from typing import Callable, Mapping

import sympy

from ..errors import Location, Problem, SpecError
from .limits import MAX_DECIMAL_EXPONENT, shorten

#: the functions an expression may call, each with one argument.
FUNCTIONS: Mapping[str, Callable[[sympy.Expr], sympy.Expr]] = {
    "sqrt": sympy.sqrt,
    "exp": sympy.exp,
    "log": sympy.log,
}

#: the further functions a learning-rate schedule may call (`training.schedule`, an expression in the
#: step t): cos(x), sin(x) with one argument, min(a, b) and max(a, b) with two; pi is its constant
SCHEDULE_FUNCTIONS: Mapping[str, Callable[..., sympy.Expr]] = {
    **FUNCTIONS, "cos": sympy.cos, "sin": sympy.sin, "min": sympy.Min, "max": sympy.Max,
}
_ARITY = {"min": 2, "max": 2}

MAX_LENGTH = 500  # characters; spec expressions are short, and this bounds the work
MAX_EXPONENT = 100  # |numeric exponent|: 10**10**10 would otherwise compute for ever
MAX_BITS = 4096  # size of an exact numeric power, for the same reason
DECIMAL = re.compile(r"(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}


class _Reject(Exception):
    """An offending node: message, 0-based character offset in the text, hint."""

    def __init__(self, message: str, offset: int, hint: str | None = None, received: str | None = None):
        super().__init__(message)
        self.message, self.offset, self.hint, self.received = message, offset, hint, received


def parse_expr(
    value: object,
    symbols: Mapping[str, sympy.Symbol],
    location: Location | None = None,
    path: str = "",
    functions: Mapping[str, Callable[..., sympy.Expr]] = FUNCTIONS,
) -> sympy.Expr:
    """Parse a spec value into a sympy expression, whitelisting every construct.

    Parameters
    ----------
    value
        An int, a float or a str from the spec. Floats are read exactly from
        their shortest decimal representation.
    symbols
        The declared symbols, name -> sympy symbol.
    location
        Where the first character of `value` sits in its file (for messages:
        the column of an offending token is added to it).
    path
        The key path of the value, e.g. ``model[0].dense.out``.
    functions
        The functions it may call (`FUNCTIONS`; a schedule's `SCHEDULE_FUNCTIONS`).

    Returns
    -------
    sympy.Expr
        A finite expression in the declared symbols.

    Raises
    ------
    SpecError
        With one problem naming the offending token, its position and a fix.
    """
    text = _as_text(value, location, path)
    try:
        return _parse(text, symbols, functions)
    except _Reject as rej:
        raise SpecError([_problem(rej, text, location, path)]) from None


def _as_text(value: object, location: Location | None, path: str) -> str:
    if isinstance(value, bool) or value is None or not isinstance(value, (int, float, str)):
        raise SpecError(
            [
                Problem(
                    "expected an expression (a number or a formula in the declared symbols)",
                    location,
                    path,
                    received=repr(value),
                    hint="write a number or a formula such as N**(-1/2)",
                )
            ]
        )
    if isinstance(value, float) and not math.isfinite(value):
        hint = "write a finite number or formula"
        raise SpecError([Problem("expected a finite number", location, path, received=repr(value), hint=hint)])
    return repr(value) if isinstance(value, float) else str(value)


def _problem(rej: _Reject, text: str, location: Location | None, path: str) -> Problem:
    loc = location
    if location is not None and "\n" not in text:
        loc = Location(location.file, location.line, location.col + rej.offset)
    shown = rej.received if rej.received is not None else _shown(text)
    return Problem(rej.message, loc, path, received=shown, hint=rej.hint)


def _shown(text: str) -> str:
    return shorten(repr(text), 60)


def _parse(text: str, symbols: Mapping[str, sympy.Symbol], functions=FUNCTIONS) -> sympy.Expr:
    if len(text) > MAX_LENGTH:
        raise _Reject(f"expression longer than {MAX_LENGTH} characters", 0, "shorten it")
    lead = len(text) - len(text.lstrip())
    source = text.strip().replace("\n", " ")
    if not source:
        raise _Reject("empty expression", 0, "write a number or a formula")
    _ascii(text)
    tree = _syntax(source, lead)
    try:
        result = _Builder(source, symbols, lead, functions).build(tree.body)
    except RecursionError:
        raise _Reject("expression too deeply nested", lead, "simplify it") from None
    if result.has(sympy.zoo, sympy.oo, -sympy.oo, sympy.nan):
        raise _Reject("the expression is infinite or undefined", lead, "check for a division by zero")
    return result


def _ascii(text: str) -> None:
    """Refuse any non-ASCII character: Python would silently read 'ℕ' as N and 'ｅｔａ' as eta."""
    at = next((i for i, ch in enumerate(text) if not ch.isascii()), None)
    if at is None:
        return
    char = text[at]
    name = f"U+{ord(char):04X}" + (f" {unicodedata.name(char)}" if unicodedata.name(char, "") else "")
    looks = unicodedata.normalize("NFKC", char)
    hint = "write expressions in ASCII: names of letters, digits and _, operators + - * / **"
    if looks.isascii() and looks.strip():
        hint = f"it looks like {looks!r}: type it in plain ASCII"
    raise _Reject(f"non-ASCII character {char!r} ({name}) in the expression", at, hint, received=_shown(text))


def _syntax(source: str, lead: int) -> ast.Expression:
    try:
        return ast.parse(source, mode="eval")
    except SyntaxError as exc:
        col = max((exc.offset or 1) - 1, 0)
        if exc.lineno and exc.lineno > 1:
            col = 0
        raise _Reject(
            f"cannot parse the expression ({exc.msg})",
            lead + min(col, len(source)),
            "use numbers, declared symbols, + - * / ** and parentheses; multiply with * (2*N, not 2N)",
        ) from None
    except (ValueError, RecursionError, MemoryError):
        raise _Reject("cannot parse the expression (too deeply nested)", lead, "simplify it") from None


class _Builder:
    """Walks a whitelisted `ast` tree into sympy, one method per allowed node type."""

    def __init__(self, source: str, symbols: Mapping[str, sympy.Symbol], lead: int, functions=FUNCTIONS):
        self.source, self.symbols, self.lead, self.functions = source, symbols, lead, functions

    def offset(self, node: ast.AST) -> int:
        """Character offset of `node` in the original text (ast counts UTF-8 bytes)."""
        raw = self.source.encode()[: getattr(node, "col_offset", 0)]
        return self.lead + len(raw.decode(errors="ignore"))

    def reject(self, node: ast.AST, message: str, hint: str | None = None) -> _Reject:
        segment = ast.get_source_segment(self.source, node)
        return _Reject(message, self.offset(node), hint, _shown(segment) if segment else None)

    def build(self, node: ast.AST) -> sympy.Expr:
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is None:
            raise self.reject(node, *_forbidden(node))
        return method(node)

    def visit_Constant(self, node: ast.Constant) -> sympy.Expr:
        segment = ast.get_source_segment(self.source, node) or ""
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float, complex)):
            raise self.reject(node, "only numbers and declared symbols are allowed", _CONST_HINT)
        if isinstance(node.value, complex) or not DECIMAL.fullmatch(segment):
            raise self.reject(node, "write numbers in plain decimal", "e.g. 1000, 0.5 or 1.0e-4")
        if not _in_float_range(segment):  # checked first: Fraction('1e99999999') takes minutes
            raise self.reject(node, "number outside the float range", _RANGE_HINT)
        fraction = Fraction(segment)
        return sympy.Rational(fraction.numerator, fraction.denominator)

    def visit_Name(self, node: ast.Name) -> sympy.Expr:
        if node.id in self.symbols:
            return self.symbols[node.id]
        if node.id == "pi" and "cos" in self.functions:
            return sympy.pi
        if node.id in self.functions:
            raise self.reject(node, f"{node.id} is a function", f"call it: {node.id}(...)")
        close = difflib.get_close_matches(node.id, list(self.symbols), n=3)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        hint += f"declare {node.id} under `sizes` (an integer size) or `hyper` (a number)"
        raise self.reject(node, f"undeclared symbol {node.id!r}", hint)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> sympy.Expr:
        if isinstance(node.op, ast.USub):
            return -self.build(node.operand)
        if isinstance(node.op, ast.UAdd):
            return self.build(node.operand)
        raise self.reject(node, "only unary minus is allowed", "use -x")

    def visit_BinOp(self, node: ast.BinOp) -> sympy.Expr:
        if isinstance(node.op, ast.BitXor):
            raise self.reject(node, "'^' is not a power here", "write ** for powers, e.g. N**2")
        if type(node.op) not in _BINOPS:
            raise self.reject(node, "operator not allowed", "use + - * / ** and parentheses")
        left, right = self.build(node.left), self.build(node.right)
        if isinstance(node.op, ast.Pow):
            return self.power(node, left, right)
        return _ARITH[type(node.op)](left, right)

    def power(self, node: ast.BinOp, base: sympy.Expr, exponent: sympy.Expr) -> sympy.Expr:
        if exponent.is_number and abs(exponent) > MAX_EXPONENT:
            raise self.reject(node, f"exponent larger than {MAX_EXPONENT}", "use a smaller exponent")
        if base.is_Rational and exponent.is_number and _bits(base) * abs(exponent) > MAX_BITS:
            raise self.reject(node, "number too large", "use smaller numbers")
        if base.is_number and exponent.is_number and base == 0 and exponent.is_negative:
            raise self.reject(node, "zero to a negative power", "check the exponent")
        return base**exponent

    def visit_Call(self, node: ast.Call) -> sympy.Expr:
        if not isinstance(node.func, ast.Name):
            raise self.reject(node, "calls of methods or results are not allowed", _CALL_HINT)
        name = node.func.id
        hint = _CALL_HINT if self.functions is FUNCTIONS else _SCHEDULE_HINT
        if name not in self.functions:
            raise self.reject(node, f"unknown function {name!r}", hint)
        n = _ARITY.get(name, 1)
        form = f"{name}(a, b)" if n == 2 else f"{name}(x)"
        if len(node.args) != n or node.keywords:
            raise self.reject(node, f"{name} takes exactly {'two arguments' if n == 2 else 'one argument'}", form)
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise self.reject(node, "starred arguments are not allowed", form)
        return self.functions[name](*(self.build(a) for a in node.args))


_RANGE_HINT = "use a number from about 1e-308 to 1e308 in magnitude (or 0)"


def _in_float_range(decimal: str) -> bool:
    """Whether a plain decimal (`DECIMAL`) is 0 or finite and nonzero as a float, with a bounded exponent."""
    mantissa, _, exponent = decimal.lower().partition("e")
    digits = exponent.lstrip("+-")
    if len(digits) > len(str(MAX_DECIMAL_EXPONENT)) or int(digits or 0) > MAX_DECIMAL_EXPONENT:
        return False
    value = float(decimal)
    return math.isfinite(value) and (value != 0 or not mantissa.strip("0."))


def _bits(number: sympy.Rational) -> int:
    return max(int(number.p).bit_length(), int(number.q).bit_length())


_CALL_HINT = "only sqrt(x), exp(x) and log(x) can be called"
_SCHEDULE_HINT = "a schedule can call sqrt, exp, log, cos, sin (one argument) and min, max (two)"
_CONST_HINT = "write a number (e.g. 0.5) or a declared symbol; no strings or booleans"

_ARITH: Mapping[type, Callable[[sympy.Expr, sympy.Expr], sympy.Expr]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
}


def _forbidden(node: ast.AST) -> tuple[str, str]:
    """Message and hint for a node type outside the whitelist."""
    table = {
        ast.Attribute: "attribute access (.) is not allowed",
        ast.Subscript: "subscripts ([...]) are not allowed",
        ast.Lambda: "lambdas are not allowed",
        ast.Compare: "comparisons are not allowed",
        ast.BoolOp: "and/or are not allowed",
        ast.IfExp: "conditional expressions are not allowed",
        ast.JoinedStr: "strings are not allowed",
    }
    message = next((m for t, m in table.items() if isinstance(node, t)), None)
    return (
        message or f"{type(node).__name__.lower()} is not allowed in an expression",
        "use numbers, declared symbols, + - * / **, parentheses, sqrt, exp, log",
    )


def evaluate(expr: sympy.Expr, values: Mapping[sympy.Symbol, float]) -> float:
    """The float value of `expr` at the given symbol values, with every intermediate finite.

    Evaluates in floats node by node (sympy's own evaluation of e.g. ``2**(N**N)``
    would run for ever), so a huge or undefined intermediate raises ArithmeticError;
    a symbol without a value raises KeyError.
    """
    result = _feval(expr, values)
    if not math.isfinite(result):
        raise ArithmeticError("not finite")
    return result


def _feval(expr: sympy.Expr, values: Mapping[sympy.Symbol, float]) -> float:
    try:
        return _fnode(expr, values)
    except ValueError as exc:  # math.log of a negative number, ...
        raise ArithmeticError(str(exc)) from None


def _fnode(expr: sympy.Expr, values: Mapping[sympy.Symbol, float]) -> float:
    if expr.is_Symbol:
        return float(values[expr])
    if expr.is_Number or isinstance(expr, sympy.NumberSymbol):
        return _finite(float(expr))
    args = [_feval(a, values) for a in expr.args]
    if expr.is_Add:
        return _finite(math.fsum(args))
    if expr.is_Mul:
        return _finite(math.prod(args))
    if expr.is_Pow:
        return _finite(_fpow(*args))
    if isinstance(expr, sympy.exp):
        return _finite(math.exp(args[0]))
    if isinstance(expr, sympy.log):
        return _finite(math.log(args[0]))
    if isinstance(expr, (sympy.cos, sympy.sin)):
        return _finite((math.cos if isinstance(expr, sympy.cos) else math.sin)(args[0]))
    if isinstance(expr, (sympy.Min, sympy.Max)):
        return (min if isinstance(expr, sympy.Min) else max)(args)
    raise ArithmeticError(f"cannot evaluate {type(expr).__name__}")


def _fpow(base: float, exponent: float) -> float:
    result = base**exponent
    if isinstance(result, complex):
        raise ArithmeticError("not a real number")
    return result


def _finite(x: float) -> float:
    if not math.isfinite(x):
        raise ArithmeticError("not finite")
    return x
