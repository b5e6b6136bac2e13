"""One exception hierarchy for every stage of dmftc.

Exit codes of the command line follow from the class: a `DmftcError` is the
user's error (exit 1, printed without a traceback); anything else is a bug
(exit 2).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """Where in a spec file a problem sits (1-based line and column)."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class Problem:
    """One problem found in a spec: where, what, what was received, what is allowed, the fix."""

    message: str
    location: Location | None = None
    path: str = ""
    received: str | None = None
    allowed: str | None = None
    hint: str | None = None

    def render(self) -> str:
        where = str(self.location) if self.location else "<spec>"
        head = f"{where}: {self.path + ': ' if self.path else ''}{self.message}"
        lines = [head]
        if self.received is not None:
            lines.append(f"    received: {self.received}")
        if self.allowed is not None:
            lines.append(f"    allowed:  {self.allowed}")
        if self.hint is not None:
            lines.append(f"    fix:      {self.hint}")
        return "\n".join(lines)


class DmftcError(Exception):
    """Base of every error that is the user's to fix (exit code 1)."""

    exit_code = 1

    def render(self) -> str:
        return str(self)


class SpecError(DmftcError):
    """A spec that cannot be read or is invalid; carries every problem found at once."""

    def __init__(self, problems: list[Problem] | tuple[Problem, ...]):
        self.problems = tuple(problems)
        super().__init__(self.render())

    def render(self) -> str:
        n = len(self.problems)
        head = f"invalid spec: {n} problem{'s' if n != 1 else ''}"
        return "\n".join([head, *(p.render() for p in self.problems)])


class LimitError(DmftcError):
    """The requested infinite limit is ill-posed; the message says which quantity diverges and the fix."""


class SolverError(DmftcError):
    """A solve failed (NaN, divergence, non-convergence); the message carries the remedy."""


class ResourceError(DmftcError):
    """A run that cannot fit this machine (memory) or would unroll too much; says the figure and the fix."""


class CodegenError(DmftcError):
    """An equation system that the code generator cannot lower (an unsupported node, a bad name)."""


class Unsupported(DmftcError):
    """A valid spec asks for something this version cannot do yet; says what works instead."""

    def __init__(self, what: str, instead: str = ""):
        self.what, self.instead = what, instead
        super().__init__(f"not supported yet: {what}" + (f"; {instead}" if instead else ""))
