"""The opt-in persistent compile cache: a second process reads the solver instead of compiling it.

The working path runs in child processes: the cache is a process-wide JAX setting, and turning
it on here would change every later test's compiles.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import dmftc
from dmftc.cli import main

ROOT = Path(__file__).resolve().parents[1]
TINY = ("data.synthetic.P=4", "training.steps=3")

_CHILD = """
import json, sys
import jax
hits = []
jax.monitoring.register_event_listener(lambda event, **kw: hits.append(event) if event.endswith("/cache_hits") else None)
import dmftc
from dmftc.spec import load
jax.jit(lambda x: 2 * x)(jax.numpy.ones(3)).block_until_ready()  # a compile before: enabling later still works
dmftc.enable_compile_cache(sys.argv[1], min_compile_seconds=0)
prog = dmftc.compile_spec(load(sys.argv[2], overrides=tuple(sys.argv[3:])))
loss = prog.solve(samples=64, errors=False).arrays["loss"]
print(json.dumps({"hits": len(hits), "loss": loss.tolist()}))
"""


def _child(cache: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", _CHILD, str(cache), str(ROOT / "specs" / "mlp_mup_relu.yaml"), *TINY],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_second_process_reads_the_compiled_solver_and_gets_the_same_numbers(tmp_path):
    cache = tmp_path / "cache"  # created by enable_compile_cache
    first = _child(cache)
    assert first["hits"] == 0
    assert any(p.name.startswith("jit__solve-") for p in cache.iterdir())  # the sweep's executable was written
    second = _child(cache)
    assert second["hits"] >= 1
    assert second["loss"] == first["loss"]


def test_the_command_line_option_fills_the_cache(tmp_path):
    cache = tmp_path / "cache"
    env = dict(os.environ, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")  # the tiny solve compiles fast
    cmd = [sys.executable, "-m", "dmftc", "solve", str(ROOT / "specs" / "mlp_mup_relu.yaml"), "--out",
           str(tmp_path / "run"), "--compile-cache", str(cache), *(a for s in TINY for a in ("--set", s)),
           "--set", "solver.samples=64"]
    subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT, env=env)
    assert any(p.name.startswith("jit__solve-") for p in cache.iterdir())
    assert (tmp_path / "run" / "solution.npz").exists()


def test_a_path_that_is_a_file_is_the_users_error(tmp_path, capsys):
    f = tmp_path / "not_a_dir"
    f.write_text("x")
    with pytest.raises(dmftc.DmftcError, match="not a directory"):
        dmftc.enable_compile_cache(f)
    assert main(["schema", "--compile-cache", str(f)]) == 1  # refused before anything runs
    assert "not a directory" in capsys.readouterr().err


def test_a_negative_threshold_is_refused(tmp_path):
    with pytest.raises(dmftc.DmftcError, match="min_compile_seconds"):
        dmftc.enable_compile_cache(tmp_path, min_compile_seconds=-1)
