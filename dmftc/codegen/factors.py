"""Which Gaussian sources of an equation system share one causal factor (read by the lowering).

A dynamic source u ~ GP(0, c K) is sampled from a block lower-triangular square root of c K grown
one time block per step (runtime.factor.grow_factor): (P, n) @ (n, n) products, most of a
transformer solve at small M. Sources with one law need one factor.
"""

from __future__ import annotations

from ..dmft.system import EquationSystem, Loop, Step
from ..notation import as_expr, ell


def shared_factors(system: EquationSystem) -> dict[str, str]:
    """Dynamic sources that draw from another source's causal factor: {base: base it shares}.

    Two sources share a factor when their laws are one law (the same covariance kernel, coefficient
    and layer range, at the same layer index) and the schedule grows them side by side (in one loop
    body, at the same layer): the factor, and with it every covariance row and response read off it,
    is the same, while each source keeps its own whitened draws. A transformer's key, query and value
    sources of one block all have the kernel of the block's input: one factorisation instead of three.
    The first of them in the schedule grows the factor; a response the step reads off it before the
    others' place in the schedule is strict in time (s < t), so the factor's newest row, already
    grown, does not enter it. Steps outside loops are never grouped.
    """
    laws = {src.label: src for src in system.sources if src.structure == "dynamic"}
    groups = [it.body if isinstance(it, Loop) else (it,) for it in (*system.forward, *system.output, *system.backward)]
    out: dict[str, str] = {}
    grown: set[str] = set()
    for group in groups:
        first: dict[tuple, str] = {}
        for st in group:
            src = laws.get(st.label) if isinstance(st, Step) else None
            if src is None:
                continue
            at = as_expr(st.layer) if st.layer is not None else ell
            law = (src.covariance.subs(ell, at), src.coefficient, src.layers, src.field.indices[0].subs(ell, at))
            base = src.field.base.name
            if law in first:
                out[base] = first[law]
            else:
                first[law] = base
                grown.add(base)
    return {b: c for b, c in out.items() if b not in grown}  # a base grown on its own anywhere keeps its factor
