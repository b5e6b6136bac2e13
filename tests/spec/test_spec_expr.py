"""The whitelist expression parser."""

from __future__ import annotations

import pytest
import sympy
from hypothesis import given
from hypothesis import strategies as st

from dmftc.errors import Location, SpecError
from dmftc.notation import hyper_symbol, size_symbol
from dmftc.spec import parse_expr
from dmftc.spec.expr import evaluate

N, L, H = size_symbol("N"), size_symbol("L"), size_symbol("H")
a, eta = hyper_symbol("alpha_A"), hyper_symbol("eta")
SYMBOLS = {"N": N, "L": L, "H": H, "alpha_A": a, "eta": eta}
AT = Location("f.yaml", 4, 10)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("N", N),
        ("N*H", N * H),
        ("L - 1", L - 1),
        ("N**(-alpha_A)", N ** (-a)),
        ("-N + 2", 2 - N),
        ("+N", N),
        ("0.5", sympy.Rational(1, 2)),
        ("1.0e-4", sympy.Rational(1, 10000)),
        (".25*N", N / 4),
        ("1/3", sympy.Rational(1, 3)),
        ("sqrt(N)", sympy.sqrt(N)),
        ("exp(-L) * log(N)", sympy.exp(-L) * sympy.log(N)),
        ("(N*H)**(-1/2)", (N * H) ** sympy.Rational(-1, 2)),
        ("  eta  ", eta),
        (3, sympy.Integer(3)),
        (0.1, sympy.Rational(1, 10)),
    ],
)
def test_parses_exactly(text, expected):
    assert parse_expr(text, SYMBOLS) == expected


def test_decimals_are_exact_rationals():
    value = parse_expr("0.1 + 0.2", SYMBOLS)
    assert value == sympy.Rational(3, 10) and isinstance(value, sympy.Rational)


def test_symbols_are_the_notation_symbols():
    assert parse_expr("N", SYMBOLS) is size_symbol("N")


@pytest.mark.parametrize(
    "text, offset, message",
    [
        ("__import__('os').system('x')", 0, "calls of methods"),
        ("open('f')", 0, "unknown function 'open'"),
        ("N.real", 0, "attribute access"),
        ("N[0]", 0, "subscripts"),
        ("lambda: 1", 0, "lambdas"),
        ("'N'", 0, "only numbers and declared symbols"),
        ("N^2", 0, "'^' is not a power here"),
        ("2 * (N^2)", 5, "'^' is not a power here"),
        ("N + M", 4, "undeclared symbol 'M'"),
        ("N < L", 0, "comparisons"),
        ("N if L else H", 0, "conditional"),
        ("N // 2", 0, "operator not allowed"),
        ("2N", 0, "cannot parse"),
        ("", 0, "empty expression"),
        ("True", 0, "only numbers"),
        ("0x10", 0, "plain decimal"),
        ("1_000", 0, "plain decimal"),
        ("1j", 0, "plain decimal"),
        ("sqrt(N, L)", 0, "exactly one argument"),
        ("sqrt(x=N)", 0, "exactly one argument"),
        ("sqrt", 0, "sqrt is a function"),
        ("1/0", 0, "infinite or undefined"),
        ("10**1000", 0, "exponent larger"),
        ("(10**100)**100", 0, "number too large"),
        ("[N]", 0, "not allowed"),
        ("f'{N}'", 0, "strings"),
        ("(N := 2)", 1, "not allowed"),
    ],
)
def test_rejects_with_column(text, offset, message):
    with pytest.raises(SpecError) as info:
        parse_expr(text, SYMBOLS, AT, "model[0].dense.out")
    problem = info.value.problems[0]
    assert message in problem.message
    assert problem.location == Location("f.yaml", 4, 10 + offset)
    assert problem.path == "model[0].dense.out"
    assert problem.hint


@pytest.mark.parametrize("value", [None, True, [1], {"a": 1}])
def test_rejects_non_scalars(value):
    with pytest.raises(SpecError, match="expected an expression"):
        parse_expr(value, SYMBOLS)


def test_long_expression_rejected():
    with pytest.raises(SpecError, match="longer than"):
        parse_expr("+".join(["N"] * 400), SYMBOLS)


@pytest.mark.parametrize("text", ["(" * 240 + "N" + ")" * 240, "-" * 490 + "N"])
def test_deep_nesting_rejected_not_crashing(text):
    try:
        parse_expr(text, SYMBOLS)
    except SpecError as err:
        assert "nested" in err.problems[0].message or "parse" in err.problems[0].message


def test_evaluate_guards_huge_values():
    with pytest.raises(ArithmeticError):
        evaluate(parse_expr("N**N**N", SYMBOLS), {N: 1024.0})
    assert evaluate(parse_expr("N**(-alpha_A)", SYMBOLS), {N: 16.0, a: 0.5}) == 0.25


@given(st.integers(min_value=0, max_value=10**12))
def test_integer_literals_exact(n):
    assert parse_expr(str(n), SYMBOLS) == sympy.Integer(n)


@given(st.decimals(min_value=0, max_value=10**6, places=6, allow_nan=False, allow_infinity=False))
def test_decimal_literals_exact(d):
    assert parse_expr(str(d) if "E" not in str(d) else format(d, "f"), SYMBOLS) == sympy.Rational(str(d))


@given(st.text(max_size=30))
def test_arbitrary_text_never_crashes(text):
    try:
        result = parse_expr(text, SYMBOLS)
    except SpecError:
        return
    assert isinstance(result, sympy.Expr)
    assert result.free_symbols <= set(SYMBOLS.values())
