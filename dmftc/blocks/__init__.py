"""Architecture blocks: one module per op kind, each holding that op's finite forward pass.

`BLOCKS` maps an op kind (`Op.kind` of `dmftc.spec.types`) to its module; every module
names its kind in `KIND` and defines a pure JAX `forward`. `repeat` is structure, not a
block: the graph keeps it as a template and the simulator unrolls it.
"""

from __future__ import annotations

from types import MappingProxyType, ModuleType
from typing import Mapping

from . import act as act
from . import attention as attention
from . import dense as dense
from . import layernorm as layernorm
from . import pool as pool
from . import readout as readout
from . import residual as residual

BLOCKS: Mapping[str, ModuleType] = MappingProxyType(
    {m.KIND: m for m in (dense, act, residual, layernorm, attention, pool, readout)})
