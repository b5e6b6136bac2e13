"""Concrete values: every size and hyperparameter symbol as a number, and expressions as floats.

Sizes come from `spec.sizes` with per-call overrides (e.g. {"N": 256}); P, D and S come
from the data, never from overrides. Hyperparameters come from `spec.hyper`.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

import sympy

from ..errors import DmftcError
from ..notation import DATA_SIZES, hyper_symbol, size_symbol
from ..spec.types import Spec


def concrete_sizes(spec: Spec, overrides: Mapping[str, int] | None,
                   data_shape: tuple[int, ...]) -> Mapping[str, int]:
    """size name -> value: spec.sizes, then `overrides`, then P, D (and S) from the data shape."""
    sizes = dict(spec.sizes)
    for name, value in sorted((overrides or {}).items()):
        if name in DATA_SIZES:
            raise DmftcError(f"size {name} comes from the data (shape {data_shape}) and cannot be set; "
                             "change the data instead")
        if name not in sizes:
            raise DmftcError(f"size {name}={value} is not declared by spec {spec.name!r}; "
                             f"declared sizes: {', '.join(sorted(sizes)) or 'none'}")
        sizes[name] = _positive_int(name, value)
    data = dict(zip(("P", "S", "D") if len(data_shape) == 3 else ("P", "D"), data_shape))
    if ("S" in spec.sizes) != ("S" in data):
        raise DmftcError(f"spec {spec.name!r} {'declares' if 'S' in spec.sizes else 'does not declare'} "
                         f"tokens (size S) but the inputs have shape {data_shape}; give X the shape "
                         f"{'(P, S, D)' if 'S' in spec.sizes else '(P, D), or declare S under sizes'}")
    for name, value in data.items():
        if name in spec.sizes and spec.sizes[name] != value:
            raise DmftcError(f"spec {spec.name!r} says {name}={spec.sizes[name]} but the data have "
                             f"{name}={value}; make them agree")
    sizes.update(data)
    return MappingProxyType(dict(sorted(sizes.items())))


def symbol_values(spec: Spec, sizes: Mapping[str, int]) -> Mapping[sympy.Symbol, sympy.Expr]:
    """sympy symbol -> number for every size and hyperparameter (ready for `xreplace`)."""
    values = {size_symbol(k): sympy.Integer(v) for k, v in sizes.items()}
    values.update({hyper_symbol(k): sympy.Float(v, 17) for k, v in spec.hyper.items()})
    return MappingProxyType(values)


def evaluate(expr: sympy.Expr | int | float, values: Mapping[sympy.Symbol, sympy.Expr],
             what: str) -> float:
    """The float value of `expr`; an error naming `what` and the missing symbols otherwise."""
    if isinstance(expr, (int, float)):
        return float(expr)
    done = expr.xreplace(dict(values))
    if done.free_symbols:
        missing = ", ".join(sorted(s.name for s in done.free_symbols))
        raise DmftcError(f"{what} = {expr} needs a value for {missing}; declare it under sizes or hyper")
    value = complex(done.evalf(17))
    if value.imag != 0:
        raise DmftcError(f"{what} = {expr} is not real at these sizes ({value})")
    return value.real


def evaluate_int(expr: sympy.Expr | int, values: Mapping[sympy.Symbol, sympy.Expr], what: str) -> int:
    """`evaluate` for counts and widths: a non-negative integer."""
    x = evaluate(expr, values, what)
    if x < 0 or abs(x - round(x)) > 1e-9:
        raise DmftcError(f"{what} = {expr} evaluates to {x:g}, not a non-negative integer")
    return int(round(x))


def _positive_int(name: str, value) -> int:
    if int(value) != value or int(value) < 1:
        raise DmftcError(f"size {name}={value!r} must be a positive integer")
    return int(value)
