"""The bounds the spec stage puts on its input, and small helpers to enforce them.

A spec and its data come from the user, and may be hostile or broken: a number
whose exact value takes minutes to compute, a FIFO that blocks for ever, a data
file that inflates to terabytes. Every such input becomes a short `Problem`
(see docs/spec.md, "Limits"):

- a spec file is a regular file of at most `MAX_SPEC_BYTES`;
- an integer has magnitude below `MAX_INT` (2**63);
- a decimal lies in the float range, with an exponent of at most `MAX_DECIMAL_EXPONENT`;
- a seed lies in [0, `SEED_LIMIT`) (2**32, what numpy and JAX accept);
- a mapping key (a name) has at most `MAX_KEY` characters;
- the data arrays X and y take at most `MAX_DATA_BYTES` as float64;
- a received value is shown on one line, cut to its first characters and its length.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

MAX_SPEC_BYTES = 1 << 20  # a spec is a few KB
MAX_INT = 2**63  # what an int64 holds
MAX_INT_DIGITS = len(str(MAX_INT))  # 19: longer decimal texts are refused before int()
SEED_LIMIT = 2**32
SEED_ALLOWED = "0 <= seed < 2**32 = 4294967296"
SEED_PATHS = ("solver.seed", "data.synthetic.seed")
MAX_DECIMAL_EXPONENT = 400  # |e| of a decimal like 1.0e-4; beyond it the float range is left anyway
MAX_DATA_BYTES = 2 << 30  # X and y together, as float64 in memory
MAX_KEY = 100  # characters of a mapping key: keys are names
MAX_PROBLEMS = 20  # problems shown at once; the rest are counted
SHOWN = 40  # characters of a long received value that are shown


def shorten(text: str, keep: int = SHOWN) -> str:
    """`text` on one printable line; when longer than `keep`, its start and its length.

    ``shorten('9' * 5000) == '9999...9... (5000 characters)'`` with 40 nines shown.
    """
    if len(text) <= keep:
        return printable(text)
    return f"{printable(text[:keep])}... ({len(text)} characters)"


def printable(text: str) -> str:
    """`text` with line breaks and other unprintable characters escaped (``\\n``, ``\\x00``)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def size(n: int) -> str:
    """A byte count for people: ``size(3 << 30) == '3 GiB'``, ``size(16_000_128) == '15.3 MiB'``."""
    units = ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
    value, unit = float(n), 0
    while value >= 1024 and unit < len(units) - 1:
        value, unit = value / 1024, unit + 1
    if unit == 0:
        return f"{n} bytes"
    digits = 0 if value >= 100 or value.is_integer() else 1
    return f"{value:.{digits}f} {units[unit]}"


# ------------------------------------------------------------------------ files
class FileRefused(Exception):
    """Why a named file is not read; `reason` completes "it ...", e.g. "is a directory"."""

    def __init__(self, reason: str, missing: bool = False):
        super().__init__(reason)
        self.reason, self.missing = reason, missing


def open_regular(path: Path, cap: int) -> BinaryIO:
    """`path` opened for binary reading: a regular file (symlinks followed) of at most `cap` bytes.

    The path is examined with `os.stat` before it is opened, so a FIFO (which
    would block for ever) or a device (``/dev/zero`` never ends) is refused
    unopened; the file is then opened without blocking and checked again.

    Raises
    ------
    FileRefused
        Saying what the path is instead ("does not exist", "is a directory",
        "is not a regular file (a FIFO)", "has ... bytes, more than the limit of ...").
    """
    _check(_stat(path, os.stat), cap)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    fd = _stat(path, lambda p: os.open(p, flags))
    try:
        _check(os.fstat(fd), cap)  # the path may have been replaced in between
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _stat(path: Path, call):
    try:
        return call(path)
    except (FileNotFoundError, NotADirectoryError):
        raise FileRefused("does not exist", missing=True) from None
    except PermissionError:
        raise FileRefused("cannot be read (permission denied)") from None
    except OSError as exc:
        raise FileRefused(f"cannot be read ({exc.strerror or type(exc).__name__})") from None
    except ValueError:  # an embedded NUL
        raise FileRefused("is not a valid path (it contains a NUL character)") from None


_KINDS = (
    (stat.S_ISDIR, "is a directory"),
    (stat.S_ISFIFO, "is not a regular file (a FIFO)"),
    (stat.S_ISCHR, "is not a regular file (a character device)"),
    (stat.S_ISBLK, "is not a regular file (a block device)"),
    (stat.S_ISSOCK, "is not a regular file (a socket)"),
)


def _check(status: os.stat_result, cap: int) -> None:
    if not stat.S_ISREG(status.st_mode):
        kind = next((what for test, what in _KINDS if test(status.st_mode)), "is not a regular file")
        raise FileRefused(kind)
    if status.st_size > cap:
        raise FileRefused(f"has {status.st_size:,} bytes, more than the limit of {size(cap)}")
