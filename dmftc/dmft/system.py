"""The equation system: labelled sympy equations, source laws and the causal schedule.

Plain sympy objects (Eq-like lhs/rhs pairs of Indexed fields, Sum, and the undefined
functions E, Response, phi, dphi of `dmftc.notation`); metadata lives beside them in
frozen dataclasses. Labels are stable: the LaTeX `\\label` and the comment above the
generated code that implements an equation carry the same one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import sympy

from ..errors import CodegenError
from ..ir import Equation, Loop, SourceLaw, Step

Expr = sympy.Expr

__all__ = ["Equation", "EquationSystem", "Loop", "SourceLaw", "Step"]


@dataclass(frozen=True)
class EquationSystem:
    """The DMFT saddle-point equations of one spec in one limit, in causal order.

    regime: 'feature_learning' (the full single-site process, Monte Carlo or exact Gaussian)
    or 'lazy' (kernels at initialization and linear output dynamics).
    method: 'monte_carlo', 'exact_gaussian' (linear networks: fields linear in the sources),
    or 'closed_form' / 'quadrature' (lazy limit Gaussian maps).
    """

    name: str
    regime: str
    method: str
    limit: tuple[str, ...]
    depth: int
    activation: str
    equations: tuple[Equation, ...]
    sources: tuple[SourceLaw, ...] = ()
    forward: tuple[Step | Loop, ...] = ()
    output: tuple[Step, ...] = ()
    backward: tuple[Step | Loop, ...] = ()
    coefficients: Mapping[str, Expr] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    #: field base -> its gamma0 = 0 part as a template in (ell, mu, t): sources only, so responses of it to
    #: any source vanish in expectation and its kernels have closed forms (the solver's control variates)
    lazy_parts: Mapping[str, Expr] = field(default_factory=dict)
    #: the same per field instance, (base, position) -> its gamma0 = 0 part in (mu, t), for systems written
    #: position by position (the graph walk): a field with none makes any expression holding it go without
    #: a control variate
    lazy_instances: Mapping[tuple[str, int], Expr] = field(default_factory=dict)
    #: activations by name where a system uses several (phi_<name>, dphi_<name>); () when one (phi, dphi)
    activations: tuple[str, ...] = ()
    #: token data: sums over positions alpha = (mu, s) of the P S tokens; outputs per sequence
    tokens: bool = False
    #: twin field base -> the kernel that holds its two-time covariance exactly (kernel control variates)
    exact_twins: Mapping[str, str] = field(default_factory=dict)
    #: attention heads: 'collapse' (N -> oo: logits deterministic) or 'sites' (H -> oo at fixed N: each head
    #: a single site of `key_dim` coordinates with its own random logits); every per-draw field at one of
    #: the `head_positions` lives on that site
    heads: str | None = None
    key_dim: int = 0
    head_positions: tuple[int, ...] = ()
    #: the simulator's residual-stream sites l = 0, 1, ... (its `stream:l` marks) -> the position of the
    #: field there (0: none, the value there is a function of a field); where that field is the stream's,
    #: the simulator names its kernels by the same positions (`dmftc.simulate.network.stream_positions`)
    stream_sites: tuple[int, ...] = ()
    #: L -> oo solved on a grid of this many blocks (0: finite depth); the solve reports K vs K/2
    depth_steps: int = 0
    #: the training setup's arrays the solver reads (dmftc.training): a subset of Kappa (the optimizer's
    #: filter), adec (weight decay's factor of the initial weights), Omega, wtrain, wtest (error and loss
    #: weights: minibatches, held-out points); () for full-batch GD at a constant step
    training: tuple[str, ...] = ()
    #: coupled weight decay: the limit of the weights' common decay rate lr_W lambda (the filters depend on it alone)
    coupled_rate: Expr | None = None
    #: the training loss: mse or cross_entropy (two classes y = +-1, the output their logit)
    loss: str = "mse"

    @property
    def has_stream(self) -> bool:
        """Whether the system holds a residual stream (its own kernel H)."""
        return any(e.kind == "kernel" and e.lhs.base.name == "H" for e in self.equations)

    @property
    def has_backward_fields(self) -> bool:
        """Whether the system holds backward fields z at the inputs of dense layers (a single-site process)."""
        return any(e.kind == "field" and isinstance(e.lhs, sympy.Indexed) and e.lhs.base.name == "z"
                   for e in self.equations)

    def field_layers(self) -> dict[str, tuple[int, ...]]:
        """Per-draw field base -> the layers where it exists (fields, twins, sources), in first-use order."""
        from ..notation import ell

        out: dict[str, set[int]] = {}
        for e in (*self.sources, *(q for q in self.equations if q.kind in ("field", "twin"))):
            lhs = e.field if isinstance(e, SourceLaw) else e.lhs
            if not isinstance(lhs, sympy.Indexed):
                continue
            lo, hi = (int(x) for x in e.layers) if e.layers is not None else (1, 1)
            out.setdefault(lhs.base.name, set()).update(int(lhs.indices[0].subs(ell, v)) for v in range(lo, hi + 1))
        return {k: tuple(sorted(v)) for k, v in out.items()}

    def get(self, label: str) -> Equation | SourceLaw:
        for e in (*self.equations, *self.sources):
            if e.label == label:
                return e
        raise KeyError(label)

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(e.label for e in (*self.sources, *self.equations))

    def check(self) -> None:
        """Labels unique; every scheduled label exists; every equation scheduled once at least."""
        labels = self.labels
        if len(set(labels)) != len(labels):
            raise CodegenError(f"duplicate equation labels in {labels}")
        scheduled = {st.label for st in _steps(self.forward + self.output + self.backward)}
        missing = scheduled - set(labels)
        if missing:
            raise CodegenError(f"schedule names unknown equations {sorted(missing)}")
        unscheduled = {e.label for e in self.equations if e.kind not in ("loss",)} - scheduled
        if self.regime == "feature_learning" and unscheduled:
            raise CodegenError(f"equations never evaluated: {sorted(unscheduled)}")

    def written_layers(self) -> dict[str, tuple[int, ...]]:
        """Equation label -> the layers its left-hand side is written at by the schedule (loops unrolled).

        An equation for X[ell, ...] scheduled at layer p(ell) inside a loop over ell = a..b writes
        X at p(a), ..., p(b): the transformer's blocks sit at every other position (2 ell - 1).
        """
        from ..notation import ell

        eqs = {e.label: e for e in self.equations}
        out: dict[str, set[int]] = {}
        for it in self.forward + self.output + self.backward:
            loop = isinstance(it, Loop)
            values = range(int(it.start), int(it.stop) + it.step, it.step) if loop else (None,)
            for st in (it.body if loop else (it,)):
                e = eqs.get(st.label)
                if e is None or st.layer is None or not isinstance(e.lhs, sympy.Indexed):
                    continue
                lo, hi = (int(x) for x in e.layers) if e.layers is not None else (-10**9, 10**9)
                ats = (int(st.layer.subs(ell, v)) if loop else int(st.layer) for v in values)
                # a step outside the equation's layer range is guarded away by the code generator
                out.setdefault(st.label, set()).update(int(e.lhs.indices[0].subs(ell, a)) for a in ats if lo <= a <= hi)
        return {k: tuple(sorted(v)) for k, v in out.items()}

    def latex(self, standalone: bool = False) -> str:
        """The equations as LaTeX: align environments to include in a document, or (standalone) a
        compilable document ending with the glossary of its symbols (`dmftc.dmft.latex`)."""
        from .latex import system_latex

        return system_latex(self, standalone=standalone)

    def _repr_latex_(self) -> str:
        """The equations as a notebook displays them: display-math blocks MathJax renders."""
        from .latex import system_mathjax

        return system_mathjax(self)

    def __str__(self) -> str:
        lines = [f"EquationSystem {self.name}: {self.regime} limit {self.limit}, method {self.method}"]
        for src in self.sources:
            lines.append(f"  [{src.label}] {src.field} ~ N(0, {src.coefficient} * {src.covariance})")
        for e in self.equations:
            lines.append(f"  [{e.label}] {e.lhs} = {e.rhs}")
        return "\n".join(lines)


def _steps(items):
    for it in items:
        if isinstance(it, Loop):
            yield from it.body
        else:
            yield it
