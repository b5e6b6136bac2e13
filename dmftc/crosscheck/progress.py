"""Progress on stderr for long commands, through tqdm.

On a terminal, tqdm redraws one bar in place with the elapsed and remaining time; otherwise (logs, CI,
pipes) one plain line per item, e.g. "check: N=256 (2/4)", so logs stay readable.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


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
    if not _isatty(out):
        for i, item in enumerate(iterable, 1):
            out.write(_plain_line(desc, i, total, label(item) if label is not None else ""))
            out.flush()
            yield item
        return
    from tqdm import tqdm

    with tqdm(total=total, desc=desc, file=out, dynamic_ncols=True, leave=True) as bar:
        for item in iterable:
            if label is not None:
                bar.set_postfix_str(label(item))
            yield item
            bar.update(1)


def bar(total: int, desc: str, enabled: bool = True, unit: str = "it"):
    """A tqdm bar on stderr for a loop whose steps are not an iterable (a solve's successive runs), or a
    no-op when not `enabled` (library calls stay silent) or stderr is no terminal."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, file=sys.stderr, unit=unit, dynamic_ncols=True,
                disable=not enabled or not _isatty(sys.stderr))


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
