"""Atomic writes: a reader never sees a half-written module, solution, check.json or PNG.

The one place dmftc writes files from (generated modules, .tex, .npz, .json, plots).

Each file is written to a temporary file in the destination directory (same
file system, so the rename is atomic) and moved into place with os.replace.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path


def write_json_atomic(path, obj) -> Path:
    """Write `obj` as indented, strict JSON (no NaN) to `path`, atomically.

    Parameters
    ----------
    path : str or os.PathLike
    obj : JSON-serialisable object (e.g. `Report.to_json()`)

    Returns
    -------
    Path
        The path written.
    """
    # Serialise first: an unserialisable object must not leave a temporary file behind.
    text = json.dumps(obj, indent=2, allow_nan=False, ensure_ascii=False) + "\n"
    return _write_atomic(Path(path), lambda f: f.write(text.encode("utf-8")))


def write_text_atomic(path, text: str) -> Path:
    """Write text (UTF-8, newline '\\n') to `path`, atomically."""
    data = text.encode("utf-8")
    return _write_atomic(Path(path), lambda f: f.write(data))


def save_npz_atomic(path, arrays) -> Path:
    """Save a mapping of arrays as an .npz archive, atomically."""
    import numpy as np

    return _write_atomic(Path(path), lambda f: np.savez(f, **arrays))


def save_figure_atomic(fig, path, *, dpi: int = 120) -> Path:
    """Save a matplotlib figure atomically; the format follows the suffix (default png)."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    return _write_atomic(path, lambda f: fig.savefig(f, format=fmt, dpi=dpi, bbox_inches="tight"))


def _write_atomic(path: Path, write) -> Path:
    """Call write(binary file) on a temporary sibling of `path`, then rename it onto `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    # os.open with mode 0o666 lets the umask decide permissions, as for an ordinary file
    # (tempfile.mkstemp would leave the result readable by its owner only).
    _PENDING.add(tmp)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        _PENDING.discard(tmp)
    return path


#: temporary files being written now; an interrupted process removes them (`remove_pending`)
_PENDING: set[Path] = set()


def remove_pending() -> None:
    """Remove the temporary files of writes in progress (called on Ctrl-C before the process exits)."""
    for tmp in list(_PENDING):
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
