"""Graph + exponent table -> EquationSystem: the DMFT of a spec in its limit.

The derivation walks the graph (`dmft.walk`): each op's block contributes its mean-field terms
(`dmftc.blocks`), with the prefactors of the one exponent table (`coefficients`) deciding which
survive the limit. When every update term of every dense layer vanishes the network is lazy and
the system is the kernel one (`dmft.kernels`: NNGP and NTK at initialization and linear output
dynamics); otherwise it is the feature-learning single-site process. Discrete-time GD,
docs/theory.md#mlp-dmft; the B(t, t) term is kept.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Mapping

import sympy

from ..errors import Unsupported
from ..graph.build import Graph
from ..scaling.parameterization import WeightScaling
from ..spec.types import Spec
from .coefficients import DTAU, depth_limit, take_limit  # noqa: F401  (DTAU: the depth grid's step)
from .kernels import lazy_system
from .system import EquationSystem
from .walk import Walk, walk_system

#: the update terms: a limit where all of them vanish is lazy
LEARNING_TERMS = ("upd", "bupd")
#: why there is no DMFT of Adam (the refusal of `derive`; `dmftc check` says it before its measurement)
ADAM_NO_DMFT = ("its step divides each weight entry's gradient by that entry's own running scale, a nonlinear "
                "function of the entry's history, so the update is no sum of outer products of forward and "
                "backward fields and the single-site process does not close")


def derive(spec: Spec, graph: Graph, params: Mapping[str, WeightScaling]) -> EquationSystem:
    """The DMFT equation system of `spec` in the limit `spec.limit`.

    With L in the limit the stream is written on a grid of K = solver.depth_steps layer-time steps
    (default: the spec's L) with the L -> oo prefactors in units of d tau = 1 / K.
    """
    if spec.training.adam:
        raise Unsupported(
            f"a mean-field solver for Adam: {ADAM_NO_DMFT} (docs/theory.md#training-setups)",
            "`dmftc analyze` gives Adam's regime and exponents, `dmftc simulate` and `dmftc heads` measure finite "
            "networks, `dmftc check` measures their convergence among themselves; for a DMFT use "
            "`optimizer: sgd` with `momentum`")
    K = 0
    if "L" in spec.limit:
        K = spec.solver.depth_steps or int(spec.sizes["L"])
        spec = replace(spec, sizes={**spec.sizes, "L": K})
    if not learning(spec, graph, params):
        return lazy_system(spec, graph, params)
    sysm = walk_system(spec, graph, params, "feature_learning")
    if sysm.coefficients["f0:readout"] != 0:
        raise Unsupported("feature learning with a random O(1) output at initialization",
                          "use mup (output multiplier 1/(gamma0 N)), depth_mup or completep, or a lazy "
                          "parameterization")
    return replace(sysm, depth_steps=K)


def learning(spec: Spec, graph: Graph, params: Mapping[str, WeightScaling]) -> bool:
    """Whether any dense layer's update term survives the limit (the regime is feature learning)."""
    w = Walk(spec, graph, params, None)
    scales = branch_scales(graph)
    for node in graph.walk():
        if node.kind not in ("dense", "attention"):
            continue
        for weight in node.weights:
            terms = ("upd",) if weight.role == "embed" else LEARNING_TERMS
            scale = scales.get((node.id, weight.name), sympy.Integer(1))
            if any(w.coef(term, weight.name, scale) != 0 for term in terms):
                return True
    return False


def branch_scales(graph: Graph) -> dict:
    """(node id, weight) -> the residual scale that multiplies the weight's output: a dense op's, or an
    attention op's output weight W_O, where the op ends a branch."""
    out = {}
    for node in graph.walk():
        if node.kind == "residual" and node.children and node.children[-1].kind in ("dense", "attention"):
            last = node.children[-1]
            out[(last.id, last.weights[-1].name)] = node.op.scale
    return out
