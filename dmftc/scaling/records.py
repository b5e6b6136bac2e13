"""What the scaling analysis hands from one stage to the next: the counting program and its audit.

`analysis.lower` turns a spec into a `Program` (counting instructions for one limit symbol);
`analysis.audit` runs it into a `SymbolAudit` (tapes at step 0, after one step and after
training); `regimes.verdict` reads the audit. Plain records, so the two stages import them
and not each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from . import rules as R
from .rules import NEG, Exp


@dataclass(frozen=True)
class RepeatCopy:
    """One unrolled copy of a repeat: its input and output vector ids."""

    node: str
    copy: int
    x: str
    y: str
    limit: bool
    residual: bool


@dataclass(frozen=True)
class Program:
    """The network as counting instructions for one limit symbol."""

    symbol: str
    instrs: tuple
    width: frozenset
    outputs: Mapping[str, tuple]        # weight name -> its output vector ids (one per copy)
    weights: Mapping[str, tuple]        # weight name -> its WExp copies
    attentions: Mapping[str, tuple]     # attention name -> its Attention instructions
    residuals: Mapping[str, tuple]      # residual node id -> its Residual instructions
    repeats: tuple
    readout: R.WExp
    readout_input: str
    s_readout: Exp                      # the readout's scale s_hat = multiplier * init std


@dataclass(frozen=True)
class Offender:
    """A quantity whose exponent is > 0: vector id, which pass, its exponent, the dominant term."""

    vector: str
    kind: str       # "F", "B", "D", "DB"
    value: Exp
    why: str
    step: int


@dataclass
class SymbolAudit:
    """The counting of one limit symbol: init tape, one-step tape, trained tape and totals."""

    program: Program
    init: R.Tape
    steps: list
    offenders: list
    converged: bool
    D: dict = field(default_factory=dict)       # trained totals (max over steps)
    DB: dict = field(default_factory=dict)

    @property
    def nb(self) -> Exp:
        return self.init.nb

    @property
    def one(self) -> R.Tape:
        return self.steps[0] if self.steps else self.init

    @property
    def last(self) -> R.Tape:
        return self.steps[-1] if self.steps else self.init

    def over(self, table: str, v) -> Exp:
        """max over the audited steps of one split table (Dc, Dr, ...)."""
        return R.mx(*(getattr(t, table).get(v, NEG) for t in self.steps))
