"""Compiled programs, cached by what they depend on: network structure, shapes and dtypes.

A network's real constants (multipliers, scales, learning rates) are inputs of its programs,
not baked in, so a sweep over gamma0, eta, alpha_A, ... at fixed sizes compiles once; the
cache key is `Network.skeleton()` plus the program's own options and the arguments' shapes.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Callable, Hashable

import jax

#: compiled programs kept (least recently used dropped first)
CACHE_SIZE = 32
_CACHE: OrderedDict = OrderedDict()


#: XLA options for small programs run once, whose compile time dominates (one-step measurements
#: of small networks): no LLVM backend optimization halves compile time, but makes elementwise
#: code 2-8x slower (measured), so training runs keep the default.
QUICK = (("xla_backend_optimization_level", 0),)


def compiled(key: Hashable, build: Callable[[], Callable], args: tuple,
             options: tuple[tuple[str, object], ...] = ()) -> tuple[Callable, float]:
    """(the compiled `jax.jit(build())` for `args`, seconds spent compiling: 0 on a cache hit).

    `options` are XLA compiler options as (name, value) pairs, e.g. `QUICK`.
    """
    full = (key, options, jax.tree.structure(args),
            tuple((a.shape, str(a.dtype)) for a in jax.tree.leaves(args)), jax.config.jax_enable_x64)
    if full in _CACHE:
        _CACHE.move_to_end(full)
        return _CACHE[full], 0.0
    t0 = time.perf_counter()
    program = jax.jit(build()).lower(*args).compile(compiler_options=dict(options))
    _CACHE[full] = program
    if len(_CACHE) > CACHE_SIZE:
        _CACHE.popitem(last=False)
    return program, time.perf_counter() - t0
