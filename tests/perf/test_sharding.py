"""The Monte Carlo draws split over devices: the same solution, only the summation order changes.

Two host CPU devices are made with XLA_FLAGS=--xla_force_host_platform_device_count=2, which
must be set before jax starts, so each device count runs in its own process (sharded_child.py;
the two run side by side). The horizons are short on purpose: the causal sweep's pseudo-inverse
square roots amplify any change of summation order (round-off) from step to step, so agreement
to 1e-10 is a statement about the first steps; benchmarks/bench_perf.py measures longer runs
against the Monte Carlo error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from dmftc.runtime import devices
from dmftc.runtime import sweep as rt

HERE = Path(__file__).resolve().parent
SPECS = HERE.parents[1] / "specs"
CASES = {  # name: (spec, samples, overrides)
    "tanh_monte_carlo": (str(SPECS / "mlp_mup_tanh.yaml"), 1024, ["data.synthetic.P=8", "training.steps=4"]),
    "linear_exact_gaussian": (str(SPECS / "mlp_mup_linear.yaml"), 1024, []),
}


def start(n_devices: int) -> subprocess.Popen:
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=f"--xla_force_host_platform_device_count={n_devices}")
    return subprocess.Popen([sys.executable, str(HERE / "sharded_child.py"), json.dumps(CASES)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def result(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-4000:]
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def one_and_two():
    procs = [start(1), start(2)]
    return tuple(result(p) for p in procs)


@pytest.mark.parametrize("case", sorted(CASES))
def test_one_and_two_devices_agree_to_round_off(one_and_two, case):
    one, two = (r["solves"][case] for r in one_and_two)
    assert one["dtype"] == two["dtype"] == "float64"
    for name in ("loss", "f"):
        np.testing.assert_allclose(two[name], one[name], rtol=0, atol=1e-10, err_msg=name)


def test_draws_are_split_over_two_devices_and_expectations_all_reduce(one_and_two):
    one, two = one_and_two
    assert (one["devices"], two["devices"]) == (1, 2)
    assert two["draws"]["spec"][0] == "draws" and two["draws"]["w_spec"] == ["draws"]
    assert two["draws"]["shard_shapes"] == [[512, 6], [512, 6]]
    assert two["draws"]["expect_all_reduce"]
    assert one["draws"]["shard_shapes"] == [[1024, 6]] and not one["draws"]["expect_all_reduce"]


@pytest.mark.skipif(jax.device_count() > 1, reason="this process has several devices")
def test_one_device_is_a_no_op():
    x = np.ones((4, 3))
    assert devices.draw_mesh() is None and devices.shard_draws(x) is x
    xs, w = rt.source_draws(jax.random.PRNGKey(0), {"a": 3}, 8, "monte_carlo", np.float64)
    assert xs["a"].shape == (8, 3) and w.shape == (8,)
