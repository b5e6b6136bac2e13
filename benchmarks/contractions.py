"""The per-step contractions over draws, timed as the solve sees them, and what bounds their FLOP rate.

Used by bench_perf.py (d). Each step of the causal sweep contracts whole per-draw histories
(M draws x n = P (T + 1) slots) with a P-wide operand: `rt.kernel_row` E[X(t) X(s)],
`rt.ibp_row` E[F xi^T] Li and `rt.causal_sum` sum_s C(s) X(s). That is 2 P flops per 8-byte
element streamed, an arithmetic intensity of P / 4 flop/byte, so the rate is bounded by the
memory bandwidth times P / 4 long before the matmul peak at P = 16. The histories of a solve
do not stay in cache from one step to the next (every step reads all of them), so the
contractions are timed cold here: each call reads a different copy of its operands, together
larger than the last-level cache.

BEFORE holds the defining einsum forms (dmftc.runtime.definitions), which the runtime used
until commit e15eb0c (XLA copied each history transposed for `causal_sum` and took a
transposed-operand matmul path for the other two), so that one run measures before and after
side by side.
"""

from __future__ import annotations

import collections
import glob
import gzip
import json
import math
import re
import tempfile
import time

import jax
import jax.numpy as jnp

from dmftc.runtime import sweep as rt
from dmftc.runtime.definitions import einsum_causal_sum, einsum_ibp_row, einsum_kernel_row

CACHE_BYTES = 32 * 2**20  # this machine's L3 (lscpu); cold operands total at least 3x this


BEFORE = {"kernel_row": einsum_kernel_row, "ibp_row": einsum_ibp_row, "causal_sum": einsum_causal_sum}
AFTER = {"kernel_row": rt.kernel_row, "ibp_row": rt.ibp_row, "causal_sum": rt.causal_sum}
NAMES = tuple(AFTER)


# ------------------------------------------------------------------ operands and timing
def operand_sets(P: int, T: int, M: int, dtype, copies: int) -> list[dict]:
    """`copies` independent sets of the contractions' operands at the last step (full causal support)."""
    n_t, n = T + 1, (T + 1) * P
    out = []
    for c in range(copies):
        k = jax.random.split(jax.random.PRNGKey(c), 5)
        Li = jnp.tril(jax.random.normal(k[3], (n, n), dtype)) / n
        out.append(dict(w=jnp.full((M,), 1.0 / M, dtype), Xt=jax.random.normal(k[0], (M, P), dtype),
                        X=jax.random.normal(k[1], (M, n_t * P), dtype), xi=jax.random.normal(k[2], (M, n), dtype),
                        F=rt.Factor(Li, Li), C=jax.random.normal(k[4], (P, n_t, P), dtype), t=jnp.asarray(T)))
    return out


def copies_for(P: int, T: int, M: int, dtype) -> int:
    """Enough operand sets that cycling through them evicts the last-level cache."""
    per_set = 2 * M * (T + 1) * P * jnp.dtype(dtype).itemsize
    return max(2, -(-3 * CACHE_BYTES // per_set))


def cold_time(fn, arg_sets, rounds: int = 4) -> float:
    """Best wall time of fn over `rounds` passes through arg_sets (compiled first)."""
    jax.block_until_ready(fn(*arg_sets[0]))
    best = float("inf")
    for _ in range(rounds):
        for args in arg_sets:
            t0 = time.perf_counter()
            jax.block_until_ready(fn(*args))
            best = min(best, time.perf_counter() - t0)
    return best


def calls(forms: dict, P: int) -> dict:
    """name -> (jitted call, operand names) for one set of forms (BEFORE or AFTER)."""
    kr, ibp, cs = forms["kernel_row"], forms["ibp_row"], forms["causal_sum"]
    return {"kernel_row": (jax.jit(kr), ("w", "Xt", "X", "t")),
            "ibp_row": (jax.jit(lambda w, Ft, xi, F, t: ibp(w, Ft, xi, F, t, P, strict=False)),
                        ("w", "Xt", "xi", "F", "t")),
            "causal_sum": (jax.jit(lambda C, X, t: cs(C, X, t, strict=False)), ("C", "X", "t"))}


def work(P: int, T: int, M: int, itemsize: int) -> dict:
    """name -> (flops, bytes that must stream from memory) of one call at full causal support."""
    n = (T + 1) * P
    hist = M * n * itemsize
    return {"kernel_row": (2 * M * P * n, hist),
            "ibp_row": (2 * M * P * n + 2 * P * n * n, hist + n * n * itemsize),
            "causal_sum": (2 * M * P * n, hist)}


# ------------------------------------------------------------------ what bounds the rate
def stream_rate(sets) -> float:
    """GiB/s of reading a cold per-draw history once (a sum over draws): the bandwidth roofline."""
    X0 = sets[0]["X"]
    sec = cold_time(jax.jit(lambda X: jnp.sum(X, axis=0)), [(s["X"],) for s in sets])
    return X0.size * X0.dtype.itemsize / sec / 2**30


def matmul_peak(dtype, n: int = 2048) -> float:
    """GFLOP/s of an n^3 matmul (compute bound: cache plays no part)."""
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), dtype)
    sec = cold_time(jax.jit(jnp.matmul), [(a, a)], rounds=3)
    return 2 * n**3 / sec / 1e9


def causal_half(sets, P: int, T: int) -> dict:
    """Seconds of causal_sum over all n_t slots vs over the first half only (a static slice).

    Half the work of the sweep is on slots s > t, which hold zeros; contracting only the causal
    prefix needs a slice of each row of the (M, n) history, and XLA materialises that slice.
    """
    half = (T + 1) // 2 * P
    full = jax.jit(lambda C, X: X.reshape(X.shape[0], -1) @ C.reshape(P, -1).T)
    part = jax.jit(lambda C, X: X.reshape(X.shape[0], -1)[:, :half] @ C.reshape(P, -1)[:, :half].T)
    args = [(s["C"], s["X"]) for s in sets]
    return {"full_seconds": cold_time(full, args), "half_seconds": cold_time(part, args)}


# ------------------------------------------------------------------ where a solve's time goes
def solve_breakdown(solve, compiled_text: str, hist_elements: int) -> dict:
    """Seconds per kind of XLA operation in one call of `solve`, from a profiler trace.

    Kinds: matmuls (dot fusions), pointwise and copy operations whose output is history-sized
    (at least half of M n_t P elements: phi(h) of a whole history, a transposed copy), and the
    rest. None when the trace cannot be read (a JAX without the profiler).
    """
    sizes = _fusion_sizes(compiled_text)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            jax.profiler.start_trace(tmp)
            jax.block_until_ready(solve())
            jax.profiler.stop_trace()
            path = sorted(glob.glob(f"{tmp}/**/*.trace.json.gz", recursive=True))[-1]
            events = json.load(gzip.open(path))["traceEvents"]
        except Exception:  # noqa: BLE001 - the breakdown is optional
            return None
    out = collections.Counter()
    for e in events:
        if e.get("ph") == "X" and e["name"] in sizes:
            out[_kind(e["name"], sizes[e["name"]], hist_elements)] += e["dur"] / 1e6
    return dict(out)


def _fusion_sizes(text: str) -> dict:
    """XLA operation name -> number of output elements, from the compiled HLO text."""
    out = {}
    for m in re.finditer(r"^\s+%(\S+) = \w+\[([\d,]*)\]", text, re.M):
        dims = [int(d) for d in m.group(2).split(",") if d]
        out[m.group(1)] = math.prod(dims)
    return out


def _kind(name: str, size: int, hist_elements: int) -> str:
    if name.startswith(("ynn_fusion", "dot", "xnn_fusion", "onednn")):
        return "matmul"
    if size * 2 < hist_elements:
        return "other"
    if "copy" in name or "transpose" in name:
        return "history copy"
    return "history pointwise" if "dynamic-update-slice" not in name else "history update"


# ------------------------------------------------------------------ a whole solve, before and after
def solve_before_after(mod, args: tuple, steps: int, samples: int, rounds: int = 3) -> dict:
    """Best seconds of the generated solver traced with the BEFORE forms and with the runtime's, interleaved.

    Each form gets a fresh jit of the module's solver, traced while `rt` holds that form's functions.
    """
    fns = {}
    for form, table in (("before", BEFORE), ("after", AFTER)):
        saved = {name: getattr(rt, name) for name in NAMES}
        try:
            for name, fn in table.items():
                setattr(rt, name, fn)
            # a new function object: jit's trace cache is keyed on the function, and a second jit of
            # mod._solve.__wrapped__ itself would reuse the first form's trace
            fresh = jax.jit(lambda *a, _f=mod._solve.__wrapped__, **k: _f(*a, **k), static_argnames=("steps", "samples"))
            fns[form] = fresh.lower(*args, steps=steps, samples=samples).compile()
        finally:
            for name, fn in saved.items():
                setattr(rt, name, fn)
    best = {form: float("inf") for form in fns}
    for _ in range(rounds):
        for form, fn in fns.items():
            t0 = time.perf_counter()
            jax.block_until_ready(fn(*args))
            best[form] = min(best[form], time.perf_counter() - t0)
    return best
