"""A dependency-free progress bar on stderr, for long checks.

On a terminal it redraws one line in place; otherwise (logs, CI, pipes) it
prints one plain line per item, e.g. "check: N=256 (2/4)", so logs stay readable.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_BAR = 24


def progress(iterable: Iterable[T], total: int | None = None, desc: str = "", *,
             label: Callable[[T], str] | None = None, stream=None) -> Iterator[T]:
    """Yield the items of `iterable`, reporting each one as it starts.

    Parameters
    ----------
    iterable : iterable
    total : int, optional
        Number of items; taken from len(iterable) when it has one.
    desc : str
        What is running, e.g. "check".
    label : callable, optional
        Describes an item, e.g. ``lambda n: f"N={n}"``.
    stream : file, optional
        Where to write; sys.stderr (looked up at call time) by default.
    """
    out = sys.stderr if stream is None else stream
    total = len(iterable) if total is None and hasattr(iterable, "__len__") else total
    tty, start, count = _isatty(out), time.monotonic(), 0
    try:
        for item in iterable:
            text = label(item) if label is not None else ""
            line = _bar_line(desc, count, total, text, time.monotonic() - start) if tty else _plain_line(desc, count + 1, total, text)
            out.write(line)
            out.flush()
            yield item
            count += 1
    finally:
        if tty:  # finish the bar's line, also when the loop was left early or raised
            end = "done" if total is None or count >= total else "stopped"
            out.write(_bar_line(desc, count, total, end, time.monotonic() - start) + "\n")
            out.flush()


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _plain_line(desc: str, i: int, total: int | None, text: str) -> str:
    """`check: N=256 (2/4)`."""
    count = f"{i}/{total}" if total is not None else f"{i}"
    body = f"{text} ({count})" if text else count
    return f"{desc}: {body}\n" if desc else f"{body}\n"


def _bar_line(desc: str, done: int, total: int | None, text: str, elapsed: float) -> str:
    """`\\rcheck [##########--------------] 2/4 N=256  0:12 elapsed, ~0:12 left`, padded to erase the last one."""
    if total:
        filled = round(_BAR * min(done, total) / total)
        bar = f"[{'#' * filled}{'-' * (_BAR - filled)}] {done}/{total}"
    else:
        bar = f"{done}"
    eta = f", ~{_clock(elapsed / done * (total - done))} left" if total and done and done < total else ""
    line = " ".join(part for part in (desc, bar, text) if part) + f"  {_clock(elapsed)} elapsed{eta}"
    return "\r" + line.ljust(79)


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
