"""Stage 3: the scaling analysis.

The exponent table (presets are rows; `resolve_parameterization`), the power counting of
every quantity per limit symbol, and the verdict: feature learning, lazy, unstable or
trivial, with the reasons, the DMFT terms that survive, and the behaviour of heads and
depth (`analyze` -> `Scaling`); the resolved table of every weight's init std, multiplier and
learning rate (`resolved_table`, printed by `dmftc analyze`).
"""

from .analysis import REGIMES as REGIMES, Scaling as Scaling, analyze as analyze
from .parameterization import (
    WeightScaling as WeightScaling,
    exponent as exponent,
    leading_power as leading_power,
    resolve_parameterization as resolve_parameterization,
)
from .regimes import DepthFacts as DepthFacts
from .table import ResolvedTable as ResolvedTable, resolved_table as resolved_table
