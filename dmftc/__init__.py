"""dmftc: a symbolic-numeric compiler for the DMFT of neural-network training.

The public API, re-exported explicitly; the stage packages (dmftc.spec, .graph, .scaling,
.dmft, .codegen, .runtime, .simulate, .crosscheck) are importable for power users.

    prog = dmftc.compile_spec("specs/mlp_mup_relu.yaml")   # every stage's output
    sol = prog.solve()                                       # the DMFT solution
    sim = dmftc.simulate(prog.spec, sizes={"N": 512})       # finite networks of the same spec
    report = dmftc.check(prog.spec, {"N": [128, 256, 512]}, out_dir="runs/check")
    dmftc.enable_compile_cache("~/.cache/dmftc")            # opt-in: later processes skip XLA compiles
"""

from .errors import DmftcError as DmftcError
from .errors import LimitError as LimitError
from .errors import SolverError as SolverError
from .errors import SpecError as SpecError
from .errors import Unsupported as Unsupported
from .spec import load as load
# Function re-exports after their subpackages: the names below are the functions, not the modules.
from .simulate import simulate as simulate
from .program import Program as Program
from .program import Solution as Solution
from .program import compile_spec as compile_spec
from .check import run_check as check  # noqa: F401  (public name: dmftc.check)
from .compile_cache import enable_compile_cache as enable_compile_cache

__version__ = "0.1.0"
