"""Resource budget (dmftc.budget): hostile sizes are refused at once, with the figure and the fix, through
the command line (exit 1; `dmftc heads` exits 2 on bad input by its convention), and the examples pass.

Every refusal must come back in well under 2 s: the checks run before the data, the network, the
derivation or any compile exist.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from dmftc import budget
from dmftc.cli import main
from dmftc.errors import DmftcError, ResourceError
from dmftc.spec import load

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
EXAMPLES = sorted(p.stem for p in SPECS.glob("*.yaml"))
FAST = 2.0   # seconds a refusal may take


def refused(capsys, tmp_path, *argv, code=None, within=FAST):
    """Run the command line; it must exit `code` quickly with one clear message and no traceback
    (by default 1, or 2 for the verdict commands check and heads)."""
    code = code if code is not None else 2 if argv[0] in ("check", "heads") else 1
    argv = [a.replace("SPECS", str(SPECS)) for a in argv]
    t0 = time.perf_counter()
    rc = main([*argv, "--out", str(tmp_path / "out")])
    seconds = time.perf_counter() - t0
    err = capsys.readouterr().err
    assert rc == code, err
    assert seconds < within, f"took {seconds:.2f} s"
    assert "Traceback" not in err and err.startswith(f"dmftc {argv[0]}: ")
    assert not (tmp_path / "out").exists()                  # nothing written
    return err


# ------------------------------------------------------------------ hostile inputs
@pytest.mark.parametrize("command", ["compile", "solve", "simulate"])
def test_a_billion_training_steps_is_refused(capsys, tmp_path, command):
    err = refused(capsys, tmp_path, command, "SPECS/mlp_mup_relu.yaml", "--set", "training.steps=1000000000")
    assert "training.steps" in err and "this machine allows" in err


def test_a_billion_steps_of_a_lazy_solve_is_refused(capsys, tmp_path):
    err = refused(capsys, tmp_path, "solve", "SPECS/mlp_ntk_relu.yaml", "--set", "training.steps=1000000000")
    assert "shorten training.steps" in err


@pytest.mark.parametrize("command", ["compile", "solve", "simulate"])
def test_a_million_layers_is_refused(capsys, tmp_path, command):
    err = refused(capsys, tmp_path, command, "SPECS/resnet_completep.yaml", "--set", "sizes.L=1000000")
    assert "1e+06 weight copies" in err and f"at most {budget.MAX_UNROLLED}" in err
    assert "depth limit" in err                              # the residual network's way out


def test_a_million_layer_mlp_is_refused(capsys, tmp_path):
    err = refused(capsys, tmp_path, "compile", "SPECS/mlp_mup_relu.yaml", "--set", "sizes.L=1000000")
    assert "L - 1 = 999999 copies" in err


def test_a_million_step_depth_grid_is_refused(capsys, tmp_path):
    err = refused(capsys, tmp_path, "compile", "SPECS/resnet_depth_mup.yaml", "--set", "limit.L=inf",
                  "--set", "solver.depth_steps=1000000")
    assert "solver.depth_steps" in err


def test_a_trillion_samples_is_refused_before_the_solve(capsys, tmp_path):
    err = refused(capsys, tmp_path, "solve", "SPECS/mlp_mup_relu.yaml", "--set", "solver.samples=1000000000000",
                  within=FAST + 3)                           # the derivation runs first (the method comes from it)
    assert "M = 1e+12 draws" in err and "lower solver.samples to at most" in err


@pytest.mark.parametrize("command", ["compile", "solve", "simulate"])
def test_80_gigabytes_of_synthetic_data_is_refused(capsys, tmp_path, command):
    err = refused(capsys, tmp_path, command, "SPECS/mlp_mup_relu.yaml", "--set", "data.synthetic.P=100000",
                  "--set", "data.synthetic.D=100000")
    assert "data.synthetic" in err                          # (the spec stage may refuse such data first)


def test_a_trillion_wide_network_is_refused(capsys, tmp_path):
    err = refused(capsys, tmp_path, "simulate", "SPECS/mlp_mup_relu.yaml", "--size", "N=1000000000000")
    assert "1e+24 weights per network" in err and "a smaller N (at most" in err


@pytest.mark.parametrize("command,extra", [("simulate", ()), ("check", ("--sizes", "N=64,128"))])
def test_a_trillion_seeds_is_refused(capsys, tmp_path, command, extra):
    err = refused(capsys, tmp_path, command, "SPECS/mlp_mup_relu.yaml", "--seeds", "1000000000000", *extra)
    assert "fewer seeds (at most" in err


@pytest.mark.parametrize("seeds", ["0", "-3"])
@pytest.mark.parametrize("command,extra", [("simulate", ()), ("check", ("--sizes", "N=64,128"))])
def test_no_or_negative_seeds_is_an_error(capsys, tmp_path, command, extra, seeds):
    err = refused(capsys, tmp_path, command, "SPECS/mlp_mup_relu.yaml", "--seeds", seeds, *extra)
    assert f"seeds={seeds} must be at least 1" in err


def test_check_refuses_its_largest_size_before_any_work(capsys, tmp_path):
    err = refused(capsys, tmp_path, "check", "SPECS/mlp_mup_relu.yaml", "--sizes", "N=64,1000000000000")
    assert "N=1000000000000" in err


@pytest.mark.parametrize("extra", [("--sizes", "N=16,32,1000000000000"), ("--sizes", "N=16,32,64", "--seeds",
                                                                             "1000000000000")])
def test_heads_refuses_before_any_work(capsys, tmp_path, extra):
    err = refused(capsys, tmp_path, "heads", "SPECS/transformer_mup.yaml", *extra, code=2)  # heads: 2 = bad input
    assert "this machine allows" in err


def test_the_sweep_refuses_an_impossible_point_before_any_task(monkeypatch):
    from dmftc import sweep

    def never(*args, **kwargs):
        raise AssertionError("a task started")

    monkeypatch.setattr(sweep, "_execute", never)
    t0 = time.perf_counter()
    with pytest.raises(ResourceError, match="weight copies"):
        sweep.run_sweep(SPECS / "resnet_completep.yaml", {"sizes.L": [2, 1000000]})
    with pytest.raises(ResourceError, match="training.steps"):
        sweep.run_sweep(SPECS / "mlp_mup_relu.yaml", {"training.steps": [5, 1000000000]})
    assert time.perf_counter() - t0 < FAST


def test_the_solve_is_checked_before_its_data_are_made(monkeypatch):
    from dmftc import program

    prog = program.compile_spec(SPECS / "mlp_ntk_relu.yaml")
    monkeypatch.setattr(program, "load_data", lambda spec: pytest.fail("the data were made"))
    monkeypatch.setenv(budget.ENV, "1MiB")
    with pytest.raises(ResourceError, match=f"{budget.ENV}=1MiB"):
        prog.solve(errors=False)


def test_the_simulation_is_checked_before_its_data_are_made(monkeypatch):
    from dmftc.simulate import train

    monkeypatch.setattr(train, "spec_data", lambda *a: pytest.fail("the data were made"))
    with pytest.raises(ResourceError):
        train.simulate(load(SPECS / "mlp_mup_relu.yaml"), {"N": 10**9}, seeds=2)


# ------------------------------------------------------------------ the limit
def test_the_limit_is_this_machines_memory_with_a_margin(monkeypatch):
    monkeypatch.delenv(budget.ENV, raising=False)
    limit, source = budget.memory_limit()
    total, _ = budget.physical_memory()
    assert limit == pytest.approx(budget.SAFETY * total) and budget.ENV in source


@pytest.mark.parametrize("text,value", [("2e10", 2e10), ("16GiB", 16 * 2**30), ("500MB", 5e8), ("12 G", 12e9),
                                        ("1024", 1024.0), ("3.5TiB", 3.5 * 2**40)])
def test_the_environment_variable_replaces_the_limit(monkeypatch, text, value):
    monkeypatch.setenv(budget.ENV, text)
    assert budget.memory_limit()[0] == value


@pytest.mark.parametrize("text", ["lots", "-5GB", "0", "5XB", "GiB", "inf"])
def test_a_bad_environment_variable_is_the_users_error(monkeypatch, text):
    monkeypatch.setenv(budget.ENV, text)
    with pytest.raises(DmftcError, match=budget.ENV):
        budget.memory_limit()


def test_a_lower_limit_refuses_what_fits_the_machine(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv(budget.ENV, "100MB")
    err = refused(capsys, tmp_path, "simulate", "SPECS/mlp_mup_relu.yaml")
    assert f"{budget.ENV}=100MB" in err


# ------------------------------------------------------------------ the examples pass
@pytest.mark.parametrize("name", EXAMPLES)
def test_every_example_passes_the_checks_that_need_no_derivation(name, monkeypatch):
    monkeypatch.delenv(budget.ENV, raising=False)
    spec = load(SPECS / f"{name}.yaml")
    budget.check_spec(spec)
    budget.check_simulation(spec, None, 8)
    first = spec.limit[0]
    budget.check_simulation(spec, {first: 4 * spec.sizes[first]}, 64)   # a check's sizes and seeds


@pytest.mark.parametrize("name", ["mlp_mup_relu", "mlp_mup_linear", "mlp_ntk_relu", "resnet_completep"])
def test_example_solves_pass_and_their_estimates_are_modest(name, monkeypatch):
    from dmftc.program import compile_spec

    monkeypatch.delenv(budget.ENV, raising=False)
    prog = compile_spec(SPECS / f"{name}.yaml")
    s = prog.spec
    est = budget.check_solve(s, prog.equations, steps=s.training.steps, samples=s.solver.samples,
                             dtype=s.solver.dtype, runs=8)
    assert est.bytes < 2 * 2**30 and est.flops > 0


def test_a_solve_and_a_simulation_count_the_held_out_points(monkeypatch):
    """The DMFT carries the held-out points beside the training ones (n = (T + 1) (P + test) slots), and the
    simulator records their outputs and kernels."""
    from dmftc.program import compile_spec

    monkeypatch.delenv(budget.ENV, raising=False)
    prog = compile_spec(SPECS / "mlp_sgd_momentum.yaml")   # P = 16 training and 8 held-out points, T = 20
    s = prog.spec
    assert budget.solve_floor(s).detail == "at least (T + 1) x (P + test)^2 = 21 x 24^2 numbers of 8 bytes"
    assert budget.data_estimate(s).detail.startswith("X of 24 x 16 float64")
    est = budget.solve_estimate(s, prog.equations, steps=20, samples=64, dtype="float64")
    assert "n = (T + 1) x (P + test) = 21 x 24 = 504 slots" in est.detail
    sim = budget.simulation_estimate(s, None, 8)                 # the simulator records them too
    assert "T + 1 = 21 observations of (P + test) = 24 inputs" in sim.detail


def test_the_unroll_limit_sits_at_max_unrolled():
    spec = load(SPECS / "mlp_mup_relu.yaml", overrides=(f"sizes.L={budget.MAX_UNROLLED - 1}",))
    budget.check_compile(spec)                                   # W0, L - 1 copies of W1, w
    with pytest.raises(ResourceError):
        budget.check_compile(load(SPECS / "mlp_mup_relu.yaml", overrides=(f"sizes.L={budget.MAX_UNROLLED}",)))


# ------------------------------------------------------------------ the model against measurements
#: (spec, overrides, measured peak RSS in MB) from the calibration in dmftc/budget.py's docstring
SOLVES = [("mlp_mup_relu", (), 502), ("mlp_mup_relu", ("data.synthetic.P=16", "training.steps=50"), 905),
          ("mlp_mup_relu", ("data.synthetic.P=32", "training.steps=60", "solver.samples=8192"), 2583),
          ("mlp_mup_linear", ("data.synthetic.P=16", "training.steps=40"), 735),
          ("resnet_completep", (), 753)]
SIMULATIONS = [("mlp_mup_relu", {}, 8, 476), ("mlp_mup_relu", {"N": 4096}, 8, 2116)]


@pytest.mark.parametrize("name,sets,measured", SOLVES)
def test_solve_estimates_sit_above_their_measurements(name, sets, measured):
    from dmftc.program import compile_spec

    prog = compile_spec(load(SPECS / f"{name}.yaml", overrides=sets))
    s = prog.spec
    est = budget.solve_estimate(s, prog.equations, steps=s.training.steps, samples=s.solver.samples,
                                dtype=s.solver.dtype)
    assert 1.0 <= est.bytes / 2**20 / measured <= 3.0


@pytest.mark.parametrize("name,sizes,seeds,measured", SIMULATIONS)
def test_simulation_estimates_sit_above_their_measurements(name, sizes, seeds, measured):
    est = budget.simulation_estimate(load(SPECS / f"{name}.yaml"), sizes, seeds)
    assert 1.0 <= est.bytes / 2**20 / measured <= 3.0


@pytest.mark.parametrize("name", EXAMPLES)
def test_recorded_sites_bound_the_simulators(name):
    """The graph walk's recorded kernels per network: at least the simulator's, at most 1.5 times."""
    from dmftc.graph import build_graph
    from dmftc.simulate import build_network
    from dmftc.spec import load_data

    spec = load(SPECS / f"{name}.yaml")
    X, _ = load_data(spec)
    net = build_network(spec, None, X.shape)
    actual = sum(1 + bool(s.grad) for s in net.sites)
    acc = budget._Walk()
    budget._walk(build_graph(spec).nodes, budget._values(spec, None, X.shape), 1.0, False, acc)
    bound = 3 * (acc.blocks + 1) if acc.residual else sum(2 * c for c, _ in acc.dense)
    assert actual <= bound <= 1.5 * actual
    assert acc.weights == sum(p.shape[0] * p.shape[1] for p in net.params.values())


def test_a_check_holds_every_sizes_records_at_once(monkeypatch):
    spec = load(SPECS / "mlp_mup_relu.yaml", overrides=("training.steps=100",))
    sizes = [{"N": 64}, {"N": 128}]
    ests = [budget.simulation_estimate(spec, s, 64) for s in sizes]
    alone = max(e.bytes for e in ests)
    together = ests[1].bytes + ests[0].parts["recorded arrays, every seed"]
    monkeypatch.setenv(budget.ENV, str(int((alone + together) / 2)))
    for s in sizes:
        budget.check_simulation(spec, s, 64)                 # each fits alone
    with pytest.raises(ResourceError, match="smaller sizes' arrays"):
        budget.check_ensembles(spec, sizes, 64)


def test_an_error_analysis_is_budgeted_for_every_solution_it_holds(monkeypatch):
    """A Monte Carlo solve with error bars holds the full solve, its halves and K batch solves, the
    batches stacked and value, se, bias and residual at once (`accuracy.kept_runs`, 2 K + 7 solutions):
    measured 2.25 GiB on transformer_mup where the plain solve takes 0.82 GiB, which a budget of one
    solution's kernels missed. The plain solve keeps one."""
    import dmftc
    from dmftc import accuracy, program

    seen = []

    def spy(*args, **kw):
        seen.append(kw.get("runs", 1))
        raise DmftcError("stop before the work")

    monkeypatch.setattr(program, "check_solve", spy)
    prog = dmftc.compile_spec("specs/mlp_mup_relu.yaml", overrides=["training.steps=2"])
    for errors in (True, False):
        with pytest.raises(DmftcError, match="stop before the work"):
            prog.solve(samples=256, errors=errors, batches=8)
    assert seen == [accuracy.kept_runs(8), 1] and accuracy.kept_runs(8) == 23
    spec = prog.spec
    one = budget.solve_estimate(spec, prog.equations, steps=20, samples=4096, dtype="float64")
    kept = budget.solve_estimate(spec, prog.equations, steps=20, samples=4096, dtype="float64", runs=23)
    assert kept.parts["kernels and factors"] > 5 * one.parts["kernels and factors"]
