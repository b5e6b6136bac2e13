"""benchmarks/bench_perf.py runs end to end (--quick) and writes its plot; no figure is asserted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_perf.py"


@pytest.mark.slow
def test_quick_run_prints_every_section_and_writes_the_plot(tmp_path):
    out = subprocess.run([sys.executable, str(BENCH), "--quick", "--out", str(tmp_path), "--json",
                          str(tmp_path / "perf.json")], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-4000:]
    assert all(f"({s})" in out.stdout for s in "defgm")
    assert (tmp_path / "bench_perf_scaling.png").stat().st_size > 0 and (tmp_path / "perf.json").exists()
