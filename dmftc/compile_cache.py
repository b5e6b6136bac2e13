"""Opt-in persistent cache of compiled solvers: JAX's compilation cache, shared by processes.

The first solve of a spec in a fresh process is mostly XLA compiling the generated solver's
sweep. A later process that solves the same generated module at the same static settings
(steps, samples, dtype, segments; hyperparameter values are arguments, not static) reads the
executable from the cache directory instead of compiling it again, and gets the same numbers.
Measured (bench_mlp.py (c), first solve in a fresh process at 256 draws, empty / filled cache):
the reference MLP spec 1.77 / 0.48 s, transformer_mup 8.82 / 3.83 s, loss curves identical.
Tracing the sweep is not cached and stays (~2-3 s of a transformer's first solve).

Off by default: it is a process-wide JAX setting that writes to disk, so the user asks for it,
with `enable_compile_cache(dir)`, `--compile-cache DIR` on the command line, or JAX's own
environment variable JAX_COMPILATION_CACHE_DIR (read when jax is imported). JAX keys an entry
by the program, the jaxlib and backend versions, the XLA flags and the compile options, so an
upgrade or another flag compiles afresh; deleting the directory is always safe. Share one
directory between machines only when their CPUs are alike (CPU executables are compiled for
the host they were built on).
"""

from __future__ import annotations

import os
from pathlib import Path

import jax

from .errors import DmftcError


def enable_compile_cache(path: str | Path, *, min_compile_seconds: float | None = None) -> Path:
    """Turn on the persistent compilation cache in `path` (created if missing); returns the directory.

    min_compile_seconds: only programs that took at least this long to compile are written
    (JAX's jax_persistent_cache_min_compile_time_secs; None keeps JAX's default of 1 s, which
    every solver sweep exceeds while the many tiny helper programs stay out of the cache).
    May be called after other programs have compiled; later compiles use the cache.
    """
    if min_compile_seconds is not None and not min_compile_seconds >= 0:
        raise DmftcError(f"min_compile_seconds must be >= 0, got {min_compile_seconds!r}")
    where = cache_dir(path)
    if min_compile_seconds is not None:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_seconds))
    jax.config.update("jax_compilation_cache_dir", str(where))
    return where


def cache_dir(path: str | Path) -> Path:
    """`path` as a writable directory (created if missing), resolved; the user's error otherwise."""
    where = Path(path).expanduser()
    if where.exists() and not where.is_dir():
        raise DmftcError(f"compile cache {str(path)!r} exists and is not a directory: name a directory "
                         f"(it is created if missing)")
    try:
        where.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DmftcError(f"compile cache {str(path)!r}: cannot create the directory ({e.strerror}); "
                         f"name a writable directory") from None
    if not os.access(where, os.W_OK | os.X_OK):
        raise DmftcError(f"compile cache {str(path)!r} is not writable: name a directory you can write to")
    return where.resolve()
