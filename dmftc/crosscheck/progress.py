"""Progress on stderr for long commands, through tqdm.

On a terminal, tqdm redraws one bar in place with the elapsed and remaining time; otherwise (logs, CI,
pipes) one plain line per item, e.g. "check: N=256 (2/4)", so logs stay readable.
"""

from __future__ import annotations

import sys
import time
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
        start = time.perf_counter()
        for i, item in enumerate(iterable, 1):
            line = _plain_line(desc, i, total, label(item) if label is not None else "")
            if i > 1:   # items done so far give the rate: "check N: N=256 (2/4) [00:12<00:24]"
                line = line[:-1] + " " + _times(i - 1, total, time.perf_counter() - start) + "\n"
            out.write(line)
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
    no-op when not `enabled` (library calls stay silent). On a terminal the bar redraws in place; in a
    log (stderr no terminal) each update is one line with the elapsed and the remaining time,
    "solve mlp: 2/7 solve [00:12<00:30]", so a long run is not silent there."""
    from tqdm import tqdm

    if enabled and not _isatty(sys.stderr):
        return _log_bar()(total=total, desc=desc, file=sys.stderr, unit=unit, mininterval=0, miniters=1,
                          bar_format=LOG_FORMAT)
    return tqdm(total=total, desc=desc, file=sys.stderr, unit=unit, dynamic_ncols=True, disable=not enabled)


#: one log line per update: what runs, how far, elapsed < remaining (tqdm's estimate from the rate so far)
LOG_FORMAT = "{desc}: {n_fmt}/{total_fmt} {unit} [{elapsed}<{remaining}]"


def _log_bar():
    """tqdm writing whole lines (no carriage returns) for logs, once per change of the count."""
    from tqdm import tqdm

    class LogBar(tqdm):
        def display(self, msg=None, pos=None):
            if getattr(self, "_shown", None) == (self.n, self.total):
                return True
            self._shown = (self.n, self.total)
            self.fp.write(self.format_meter(**self.format_dict) + "\n")
            self.fp.flush()
            return True

        def close(self):
            if not self.disable:
                self.display()   # the last count, unless already shown
            self.sp = None       # tqdm then skips its closing redraw and newline
            super().close()

    return LogBar


def _times(done: int, total: int | None, elapsed: float) -> str:
    """[elapsed<remaining] as tqdm writes them, the remaining time from the rate of the items done."""
    from tqdm import tqdm

    return tqdm.format_meter(done, total, elapsed, bar_format="[{elapsed}]" if total is None else
                             "[{elapsed}<{remaining}]")


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
