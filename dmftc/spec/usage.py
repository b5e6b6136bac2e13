"""Which hyperparameters a spec uses, which the preset reads, and which take a default.

A hyperparameter is *used* when an expression of the spec names it (model ops,
`training.lr`, `parameterization.weights`) or when the preset reads it
(`PRESET_READS`). The two ways a spec can say something it does not mean are
reported after validation (`hyper_report`):

- a hyperparameter the preset reads that `hyper` does not declare takes its
  `HYPER_DEFAULTS` value: a warning that says the value used, or a problem
  (an error) when `hyper` declares an unused near-miss of the name (`gama0`),
  since the spec then almost surely meant to set it;
- a hyperparameter declared under `hyper` and used nowhere: a warning naming it.

`dmftc.scaling.parameterization` takes its defaults from `HYPER_DEFAULTS`, and
`tests/scaling/test_resolved.py` checks `PRESET_READS` against the resolved table,
so what is reported here is what the presets do.
"""

from __future__ import annotations

import difflib
from typing import Iterator, Mapping

import sympy

from ..errors import Location
from . import checks as c
from .types import Op, Spec
from .yamlpos import MapNode, Node, Scalar

#: the value a hyperparameter read by a preset takes where `hyper` does not declare it.
HYPER_DEFAULTS: Mapping[str, int] = {"gamma0": 1}

#: hyperparameters each preset reads besides the spec's own expressions (None is `preset: null`).
#: Depth and attention exponents are read from the spec's expressions, not from the preset.
PRESET_READS: Mapping[str | None, tuple[str, ...]] = {
    "sp": (), "ntk": (), "mup": ("gamma0",), "mean_field": ("gamma0",), "depth_mup": ("gamma0",),
    "completep": ("gamma0",), None: (),
}  # fmt: skip

#: what a hyperparameter in `PRESET_READS` does, for the messages.
MEANING: Mapping[str, str] = {
    "gamma0": "the richness; the readout multiplier carries 1/gamma0, every learning rate gamma0**2",
}


def expression_names(spec: Spec) -> set[str]:
    """Names of the symbols of every expression of `spec` (model ops, training.lr, weight overrides)."""
    tr = spec.training
    exprs = [*_op_exprs(spec.model), tr.lr, tr.schedule, tr.momentum, tr.weight_decay]
    for override in spec.parameterization.overrides.values():
        exprs += [getattr(override, k) for k in ("multiplier", "init_std", "lr")]
    return {s.name for e in exprs if isinstance(e, sympy.Basic) for s in e.free_symbols}


def _op_exprs(ops: tuple[Op, ...]) -> Iterator[sympy.Basic]:
    for op in ops:
        for value in vars(op).values():
            if isinstance(value, sympy.Basic):
                yield value
            elif isinstance(value, tuple):
                yield from _op_exprs(tuple(v for v in value if isinstance(v, Op)))


def preset_reads(spec: Spec) -> tuple[str, ...]:
    """The hyperparameters the preset of `spec` reads."""
    return PRESET_READS.get(spec.parameterization.preset, ())


def defaulted(spec: Spec) -> dict[str, int]:
    """Hyperparameters the preset reads that `hyper` does not declare -> the value used."""
    return {name: HYPER_DEFAULTS[name] for name in preset_reads(spec) if name not in spec.hyper}


def hyper_report(ctx: c.Ctx, spec: Spec, hyper: Node | None, parameterization: Node | None) -> tuple[str, ...]:
    """Record near-miss problems in `ctx` and return the warnings (one line each) of a valid `spec`.

    `hyper` and `parameterization` are the sections' nodes (for the locations).
    """
    used = expression_names(spec) | set(preset_reads(spec))
    unused = [name for name in spec.hyper if name not in used]
    preset = _preset_words(spec, parameterization)
    warnings, typos = [], set()
    for name, value in defaulted(spec).items():
        close = difflib.get_close_matches(name, list(spec.hyper), n=1, cutoff=0.6)
        if close and close[0] in unused:  # `gama0: 0.5` under mup: the spec meant gamma0
            typo = close[0]
            typos.add(typo)
            shown = _value_text(hyper, typo, spec.hyper[typo])
            ctx.add(_key(hyper, typo), c.join("hyper", typo),
                    f"{typo!r} is used nowhere, and {preset} reads {name} ({MEANING[name]}), which hyper does "
                    f"not declare: {name} would silently be {value}",
                    received=repr(typo),
                    hint=f"did you mean {name!r}? declare {name} under hyper, e.g. `{name}: {shown}` "
                         f"in place of `{typo}: {shown}`")
            continue
        also = f" (hyper declares {close[0]!r}: did you mean {name!r}?)" if close else ""
        warnings.append(f"{_location(parameterization, 'preset')}: parameterization.preset: {preset} reads "
                        f"{name} ({MEANING[name]}), which hyper does not declare: {name} = {value} is used{also}; "
                        f"declare {name} under hyper to say so, e.g. `{name}: {float(value)}`")
    reads = "there is no preset" if spec.parameterization.preset is None else f"{preset} does not read it"
    for name in unused:
        if name not in typos:
            warnings.append(f"{_location(hyper, name, key=True)}: {c.join('hyper', name)}: {name!r} is declared "
                            f"but used nowhere: no expression of the spec names it and {reads}; "
                            "remove it, or use it in an expression")
    return tuple(warnings)


def _preset_words(spec: Spec, parameterization: Node | None) -> str:
    preset = spec.parameterization.preset
    if preset is None:
        return "no preset"
    if isinstance(parameterization, MapNode) and parameterization.get("preset") is None:
        return f"the {preset} preset (the default: parameterization names no preset)"
    return f"the {preset} preset"


def _key(mapping: Node | None, name: str) -> Scalar | Location | None:
    if isinstance(mapping, MapNode):
        for key, _ in mapping.items:
            if key.value == name:
                return key
    return getattr(mapping, "loc", None)


def _value_text(mapping: Node | None, name: str, value: float) -> str:
    node = mapping.get(name) if isinstance(mapping, MapNode) else None
    return node.text if isinstance(node, Scalar) and node.text else repr(value)


def _location(mapping: Node | None, name: str, key: bool = False) -> str:
    """file:line:col of `name`'s key (`key`) or value in `mapping`, else of the mapping itself."""
    if isinstance(mapping, MapNode):
        for k, v in mapping.items:
            if k.value == name:
                return str(k.loc if key else v.loc)
    loc = getattr(mapping, "loc", None)
    return str(loc) if loc is not None else "<spec>"
