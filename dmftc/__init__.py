"""dmftc: a symbolic-numeric compiler for the DMFT of neural-network training.

The public API, re-exported explicitly; the stage packages (dmftc.spec, .graph, .scaling,
.dmft, .codegen, .runtime, .simulate, .crosscheck) are importable for power users.
"""

from .errors import DmftcError as DmftcError
from .errors import LimitError as LimitError
from .errors import SolverError as SolverError
from .errors import SpecError as SpecError
from .errors import Unsupported as Unsupported

__version__ = "0.1.0"


def compile_spec(spec, overrides=()):
    """Run every compiler stage on a spec (path or Spec); see `dmftc.program.compile_spec`."""
    from .program import compile_spec as _compile

    return _compile(spec, overrides)


def load(path, overrides=()):
    """Load and validate a spec file; see `dmftc.spec.load`."""
    from .spec import load as _load

    return _load(path, overrides=overrides)


def simulate(spec, sizes=None, seeds=8, **options):
    """Finite networks of a spec; see `dmftc.simulate.simulate`."""
    from .simulate import simulate as _simulate

    return _simulate(spec, sizes=sizes, seeds=seeds, **options)


def check(spec, sizes, *, seeds=8, out_dir):
    """DMFT vs finite networks as sizes grow; see `dmftc.check.run_check`."""
    from .check import run_check

    return run_check(spec, sizes, seeds=seeds, out_dir=out_dir)
