"""dmftc: a symbolic-numeric compiler for the DMFT of neural-network training.

The public API; the stage packages (dmftc.spec, .graph, .scaling, .dmft, .codegen, .runtime,
.simulate, .crosscheck) are importable for power users.

    prog = dmftc.compile_spec("specs/mlp_mup_relu.yaml")   # every stage's output
    sol = prog.solve()                                       # the DMFT solution
    sim = dmftc.simulate(prog.spec, sizes={"N": 512})       # finite networks of the same spec
    report = dmftc.check(prog.spec, {"N": [128, 256, 512]}, out_dir="runs/check")
    dmftc.enable_compile_cache("~/.cache/dmftc")            # opt-in: later processes skip XLA compiles

The names below jax are imported on first use (PEP 562), so `import dmftc` and the command
line start in milliseconds: the command line can then hold Ctrl-C from its first line on.
"""

import importlib
import sys
import types

from .errors import DmftcError as DmftcError
from .errors import LimitError as LimitError
from .errors import SolverError as SolverError
from .errors import SpecError as SpecError
from .errors import Unsupported as Unsupported

__version__ = "0.1.0"

#: public name -> (module, attribute), imported on first use
_LAZY = {
    "load": ("dmftc.spec", "load"),
    "simulate": ("dmftc.simulate", "simulate"),
    "Program": ("dmftc.program", "Program"),
    "Solution": ("dmftc.program", "Solution"),
    "compile_spec": ("dmftc.program", "compile_spec"),
    "check": ("dmftc.check", "run_check"),
    "enable_compile_cache": ("dmftc.compile_cache", "enable_compile_cache"),
}

__all__ = ["DmftcError", "LimitError", "SolverError", "SpecError", "Unsupported", *_LAZY]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'dmftc' has no attribute {name!r}")
    module, attr = _LAZY[name]
    value = getattr(importlib.import_module(module), attr)
    setattr(sys.modules[__name__], name, value)
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


class _Package(types.ModuleType):
    """The package's module type: importing a submodule whose name is a public function's
    (dmftc.simulate, dmftc.check) must not replace the function with the module."""

    def __setattr__(self, name: str, value) -> None:
        if name in _LAZY and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
