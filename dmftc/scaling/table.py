"""The resolved parameterization table: what the preset and the overrides make of every weight.

For every weight, its init std, forward multiplier and learning rate (the full per-weight GD
step, `training.lr` included) as sympy expressions in the sizes and the hyperparameters,
exactly as `resolve_parameterization` returns them (the DMFT and the simulator read the same
mapping). `dmftc analyze` prints it, `--json` carries it, and docs/spec.md shows it for each
preset ("What the presets resolve to", checked by tests/scaling/test_resolved.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import sympy

from ..graph.build import Graph, build_graph
from ..spec.types import Spec
from ..spec.usage import defaulted
from .parameterization import WeightScaling, override_of, resolve_parameterization

COLUMNS = ("init_std", "multiplier", "lr")
CONVENTION = ("W_ij ~ N(0, init_std^2), forward multiplier * W x, "
              "GD step W <- W - lr * dLoss/dW (lr includes training.lr)")
#: the same under Adam, whose step moves each entry by O(lr) (dmftc.training.adam_update)
ADAM_CONVENTION = ("W_ij ~ N(0, init_std^2), forward multiplier * W x, "
                   "Adam step W <- W - lr * m_hat / (sqrt(v_hat) + eps) (lr includes training.lr)")


@dataclass(frozen=True)
class ResolvedWeight:
    """One row: a weight, its role and its three resolved entries; `overridden` names the entries
    that `parameterization.weights` set."""

    name: str
    role: str
    init_std: sympy.Expr
    multiplier: sympy.Expr
    lr: sympy.Expr
    overridden: tuple[str, ...] = ()


@dataclass(frozen=True)
class ResolvedTable:
    """Every weight's row in model order, the preset, and the hyperparameters it read at their default."""

    preset: str | None
    rows: tuple[ResolvedWeight, ...]
    defaults: Mapping[str, int]
    adam: bool = False

    @property
    def convention(self) -> str:
        return ADAM_CONVENTION if self.adam else CONVENTION

    def to_json(self) -> dict:
        """``{"preset", "convention", "defaults", "weights": [{"weight", "role", "init_std", "multiplier",
        "lr", "overridden"}]}`` in model order, expressions as sympy strings (``1/sqrt(N)``)."""
        return {"preset": self.preset, "convention": self.convention, "defaults": dict(self.defaults),
                "weights": [{"weight": r.name, "role": r.role, **{k: str(getattr(r, k)) for k in COLUMNS},
                             "overridden": list(r.overridden)} for r in self.rows]}

    def cells(self, code: str = "") -> list[tuple[str, ...]]:
        """The rows as text: weight, role, init_std, multiplier, lr; each expression between `code`
        marks (a Markdown backtick, or none), an overridden one followed by ' (override)'."""
        return [(r.name, r.role, *(f"{code}{getattr(r, k)}{code}" + (" (override)" if k in r.overridden else "")
                                   for k in COLUMNS)) for r in self.rows]

    def notes(self) -> list[str]:
        """Footnotes: the defaults used and the overrides mark."""
        out = [f"{k} = {v} (the preset reads it; hyper does not declare it)" for k, v in self.defaults.items()]
        if any(r.overridden for r in self.rows):
            out.append("(override): set by parameterization.weights (an lr there is a factor of training.lr)")
        return out

    def __str__(self) -> str:
        head = ("weight", "role", *COLUMNS)
        cells = [head, *self.cells()]
        widths = [max(len(row[i]) for row in cells) for i in range(len(head))]
        lines = [f"parameterization: {self.preset or 'none (every weight set by parameterization.weights)'}; "
                 f"{self.convention}"]
        lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
        return "\n".join(lines + [f"  {n}" for n in self.notes()])

    def markdown(self) -> str:
        """A Markdown table, expressions in backticks, notes below it."""
        lines = ["| weight | role | init std | multiplier | lr |", "| --- | --- | --- | --- | --- |"]
        lines += [f"| `{name}` | {' | '.join(rest)} |" for name, *rest in self.cells("`")]
        return "\n".join(lines) + "".join(f"\n\n{n}" for n in self.notes())


def resolved_table(spec: Spec, graph: Graph | None = None,
                   params: Mapping[str, WeightScaling] | None = None) -> ResolvedTable:
    """The resolved table of `spec` (`params` defaults to `resolve_parameterization(spec, graph)`)."""
    graph = graph if graph is not None else build_graph(spec)
    params = params if params is not None else resolve_parameterization(spec, graph)
    rows = tuple(
        ResolvedWeight(name, w.role, params[name].init_std, params[name].multiplier, params[name].lr,
                       tuple(k for k in COLUMNS if getattr(override_of(spec, w), k, None) is not None))
        for name, w in graph.weights.items() if name in params)
    return ResolvedTable(spec.parameterization.preset, rows, defaulted(spec), spec.training.adam)
