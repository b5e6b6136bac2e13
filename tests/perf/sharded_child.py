"""Child process of test_sharding.py: solve specs on however many CPU devices XLA_FLAGS gives.

    XLA_FLAGS=--xla_force_host_platform_device_count=2 python tests/perf/sharded_child.py CASES_JSON

CASES_JSON maps a case name to [spec path, samples, [KEY=VALUE, ...]]. Prints one JSON line:
the device count, loss and f of each solve, and how the whitened draws of `rt.source_draws`
(under jit, as the generated solvers call it) are laid out over the devices. The device count
is fixed when jax starts, so it must be set before this process imports jax.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import dmftc  # noqa: E402
from dmftc.runtime import sweep as rt  # noqa: E402


def _spec(a) -> list[str] | None:
    return [str(p) for p in a.sharding.spec] if hasattr(a.sharding, "spec") else None


def draw_layout(M: int) -> dict:
    """Sharding of the draws and weights as jit returns them, and whether E[.] compiles to an all-reduce."""
    jax.config.update("jax_enable_x64", True)
    draws = jax.jit(lambda key: rt.source_draws(key, {"a": 6, "b": 1}, M, "monte_carlo", jnp.float64))
    xs, w = draws(jax.random.PRNGKey(0))

    def mean(key):  # E[xi] over the draws
        xs, w = draws(key)
        return rt.expect(w, xs["a"])

    hlo = jax.jit(mean).lower(jax.random.PRNGKey(0)).compile().as_text()
    return {"spec": _spec(xs["a"]), "w_spec": _spec(w),
            "shard_shapes": sorted(list(s.data.shape) for s in xs["a"].addressable_shards),
            "expect_all_reduce": "all-reduce" in hlo}


def solve(spec_path: str, M: int, sets: list[str]) -> dict:
    sol = dmftc.compile_spec(spec_path, overrides=tuple(sets)).solve(samples=M, errors=False)
    return {"loss": sol.loss.tolist(), "f": sol.f.tolist(), "dtype": str(sol.loss.dtype)}


def main(cases: dict) -> None:
    out = {name: solve(*case) for name, case in cases.items()}
    print(json.dumps({"devices": jax.device_count(), "solves": out, "draws": draw_layout(1024)}))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
