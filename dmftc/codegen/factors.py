"""Which Gaussian sources of an equation system share one causal factor (read by the lowering).

A dynamic source u ~ GP(0, c K) is sampled from a block lower-triangular square root of c K grown
one time block per step (runtime.factor.grow_factor): (P, n) @ (n, n) products, most of a
transformer solve at small M. Sources with one law need one factor.
"""

from __future__ import annotations

from ..dmft.system import EquationSystem, Step
from ..notation import as_expr, ell


def shared_factors(system: EquationSystem) -> dict[tuple[str, int], tuple[str, int]]:
    """Dynamic source instances that draw from another's causal factor: {(base, position): (base, position)}.

    Two sources share a factor when their laws are one law (the same covariance kernel and coefficient)
    and the schedule grows them in the same time step: the factor, and with it every covariance row
    and response read off it, is the same, while each source keeps its own whitened draws. An attention
    block's key, query and value sources all have the kernel of the block's input: one factorisation
    instead of three. The first of them in the schedule grows the factor; a response the step reads off
    it before the others' place in the schedule is strict in time (s < t), so the factor's newest row,
    already grown, does not enter it. Steps inside loops (layer-symbolic) are never grouped.
    """
    laws = {src.label: src for src in system.sources if src.structure == "dynamic"}
    first: dict[tuple, tuple[str, int]] = {}
    out: dict[tuple[str, int], tuple[str, int]] = {}
    for st in (*system.forward, *system.output, *system.backward):
        src = laws.get(st.label) if isinstance(st, Step) else None
        if src is None:
            continue
        at = as_expr(st.layer) if st.layer is not None else ell
        index = src.field.indices[0].subs(ell, at)
        if not index.is_Integer:
            continue
        key = (src.field.base.name, int(index))
        law = (src.covariance.subs(ell, at), src.coefficient)
        if law in first:
            out[key] = first[law]
        else:
            first[law] = key
    return out
