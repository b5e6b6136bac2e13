"""Command-line arguments checked first (issue "The user's side", item 6): every argument is checked
before any work, one spelling (--sizes), `dmftc --version`, usage errors as the user's error in one
line, and --out optional with a default.

Every refusal here is made in-process with the work itself replaced by a tripwire: it must come back
within `FAST` seconds without a traceback and without starting anything.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import dmftc
from dmftc.cli import main

ROOT = Path(__file__).resolve().parents[1]
MLP = str(ROOT / "specs" / "mlp_mup_linear.yaml")          # sizes N, L
ATTN = str(ROOT / "specs" / "transformer_mup.yaml")       # sizes N, H, L, S; has heads
FAST = 2.0  # seconds a refusal may take


class WorkStarted(AssertionError):
    pass


def _trip(*args, **kwargs):
    raise WorkStarted("the work started before the arguments were checked")


@pytest.fixture
def no_work(monkeypatch):
    """Every command's work replaced by a tripwire (the modules are imported here, outside the timings)."""
    for module, name in [("dmftc.check", "run_check"), ("dmftc.crosscheck.heads", "measure_heads"),
                         ("dmftc.simulate", "simulate"), ("dmftc.program", "compile_spec"),
                         ("dmftc.reproduce", "reproduce")]:
        monkeypatch.setattr(importlib.import_module(module), name, _trip)


def run(argv, capsys):
    """main(argv) -> (exit code, stdout, stderr, seconds); a SystemExit counts as its code."""
    t0 = time.perf_counter()
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    seconds = time.perf_counter() - t0
    out, err = capsys.readouterr()
    return code, out, err, seconds


#: commands whose bad input exits 2 (1 is their verdict's failure)
VERDICTS = ("check", "heads", "reproduce")


def refused(argv, capsys, match, code=None):
    """The command exits `code` at once with one line naming `match`, and no traceback (by default 1,
    or 2 for the verdict commands: check, heads and reproduce)."""
    code = code if code is not None else 2 if argv and argv[0] in VERDICTS else 1
    rc, _, err, seconds = run(argv, capsys)
    assert rc == code, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert match in err, err
    assert seconds < FAST, f"took {seconds:.2f} s"
    return err


# ------------------------------------------------------------------ --version
def test_version_prints_the_package_version(capsys):
    rc, out, err, _ = run(["--version"], capsys)
    assert rc == 0 and out.strip() == f"dmftc {dmftc.__version__}", (out, err)


def test_version_and_help_do_not_import_jax():
    code = ("import sys; from dmftc.cli import main; rc = main(['--version']); rc2 = main(['check', '--help']); "
            "print(rc, rc2, 'jax' in sys.modules, 'numpy' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    lines = res.stdout.splitlines()
    assert res.returncode == 0 and lines[0] == f"dmftc {dmftc.__version__}", res
    assert "default: runs/<spec name>/check" in " ".join(res.stdout.split())
    assert lines[-1].split() == ["0", "0", "False", "False"], res


# ------------------------------------------------------------------ sizes: counts, values, spelling
def test_check_refuses_one_size_before_any_work(tmp_path, capsys, no_work):
    refused(["check", MLP, "--sizes", "N=64", "--out", str(tmp_path / "o")], capsys,
            "check needs at least 2 sizes of N")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("sizes", ["N=64", "N=64,128"])
def test_heads_refuses_fewer_than_three_sizes_before_any_work(tmp_path, capsys, no_work, sizes):
    err = refused(["heads", ATTN, "--sizes", sizes, "--out", str(tmp_path / "o")], capsys,
                  "heads needs at least 3 sizes of N for a verdict", code=2)
    assert "e.g. --sizes N=" in err


def test_a_refusal_imports_no_jax(tmp_path):
    """The cold path a user meets: refused before the simulator (and jax) is even imported."""
    code = (f"import sys; from dmftc.cli import main; rc = main(['heads', {ATTN!r}, '--sizes', 'N=64', '--out', "
            f"{str(tmp_path / 'o')!r}]); print(rc, 'jax' in sys.modules)")
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert res.stdout.split() == ["2", "False"], res
    assert time.perf_counter() - t0 < 10


BAD_SIZES = {
    "N=0,64,128": "positive",
    "N=-64,128,256": "positive",
    "N=64,64,128": "64 twice",
    "N=64,128;N=256": "names N twice",
    "N=1e3,2e3,4e3": "'1e3' is not a whole number",
    "N=64,,128": "empty value",
    "N=": "no values",
    "=64,128": "'' is not a size name",
    "2N=64,128": "'2N' is not a size name",
    "N=64,128,99999999999999999999999": "below 2**63",
}


@pytest.mark.parametrize("text", sorted(BAD_SIZES))
def test_sizes_are_named_positive_distinct_integers(tmp_path, capsys, no_work, text):
    err = refused(["check", MLP, "--sizes", text, "--out", str(tmp_path / "o")], capsys, BAD_SIZES[text])
    assert err.startswith("dmftc check: argument --sizes: ")


def test_check_measures_along_one_axis_the_spec_declares(tmp_path, capsys, no_work):
    refused(["check", MLP, "--sizes", "N=64,128;L=2,3", "--out", str(tmp_path)], capsys, "one size axis")
    refused(["check", MLP, "--sizes", "K=64,128", "--out", str(tmp_path)], capsys,
            "--sizes names 'K', which the spec does not declare")
    refused(["heads", ATTN, "--sizes", "K=8,16,32", "--out", str(tmp_path)], capsys,
            "--sizes names 'K', which the spec does not declare", code=2)


@pytest.mark.parametrize("flag", ["--sizes", "--size"])
def test_simulate_takes_one_value_per_axis(tmp_path, capsys, no_work, flag):
    refused(["simulate", MLP, flag, "N=64,128", "--out", str(tmp_path)], capsys,
            "simulate trains one size per axis; got N=64,128")


def test_simulate_spells_it_sizes_and_keeps_size_as_a_deprecated_alias(tmp_path, capsys, monkeypatch):
    seen = []

    class Sim:
        loss = np.zeros((2, 3))
        losses: dict = {}

        def save(self, out):
            return Path(out) / "simulation.npz"

    def fake(spec, sizes=None, seeds=8, **kwargs):
        seen.append((sizes, seeds))
        return Sim()

    monkeypatch.setattr(importlib.import_module("dmftc.simulate"), "simulate", fake)
    rc, _, err, _ = run(["simulate", MLP, "--sizes", "N=32;L=2", "--seeds", "2", "--out", str(tmp_path)], capsys)
    assert rc == 0 and not err, err
    rc, _, err, _ = run(["simulate", MLP, "--size", "N=48", "--seeds", "2", "--out", str(tmp_path)], capsys)
    assert rc == 0 and "--size is deprecated; use --sizes" in err, err
    assert seen == [({"N": 32, "L": 2}, 2), ({"N": 48}, 2)]
    refused(["simulate", MLP, "--size", "N=48", "--sizes", "N=48", "--out", str(tmp_path)], capsys,
            "not both")


# ------------------------------------------------------------------ seeds
@pytest.mark.parametrize("argv,match,code", [
    (["check", MLP, "--sizes", "N=64,128,256", "--seeds", "3"], "standard errors need at least 4 seeds", 2),
    (["heads", ATTN, "--sizes", "N=8,16,32", "--seeds", "1"], "standard errors need at least 2 seeds", 2),
    (["simulate", MLP, "--seeds", "0"], "seeds=0 must be at least 1", 1),
    (["check", MLP, "--sizes", "N=64,128,256", "--seeds", "-2"], "seeds=-2 must be at least 1", 2),
    (["heads", ATTN, "--sizes", "N=8,16,32", "--seed", "-1"], "--seed -1: 0 <= seed < 2**32", 2),
    (["heads", ATTN, "--sizes", "N=8,16,32", "--seed", str(2**32)], "0 <= seed < 2**32", 2),
])
def test_seeds_are_checked_before_any_work(tmp_path, capsys, no_work, argv, match, code):
    refused([*argv, "--out", str(tmp_path / "o")], capsys, match, code=code)


# ------------------------------------------------------------------ usage errors
@pytest.mark.parametrize("argv,match", [
    ([], "the following arguments are required: command"),
    (["nosuch"], "invalid choice: 'nosuch'"),
    (["solve"], "the following arguments are required: spec"),
    (["simulate", MLP, "--seeds", "1.5"], "argument --seeds: invalid int value: '1.5'"),
])
def test_usage_errors_are_the_users_error_in_one_line(capsys, no_work, argv, match):
    err = refused(argv, capsys, match, code=1)
    assert err.startswith("dmftc") and "usage:" not in err


@pytest.mark.parametrize("argv,match", [
    (["check", MLP, "--bogus"], "unrecognized arguments: --bogus"),
    (["check", MLP, "--seeds", "x"], "argument --seeds: invalid int value: 'x'"),
    (["heads", ATTN], "the following arguments are required: --sizes"),
    (["heads", ATTN, "--sizes", "N=8,16,32", "--seeds", "x"], "invalid int value: 'x'"),
    (["heads", ATTN, "--sizes", "N=8,16,32", "--bogus"], "unrecognized arguments: --bogus"),
    (["reproduce", "--bogus"], "unrecognized arguments: --bogus"),
])
def test_usage_errors_of_the_verdict_commands_exit_2_in_one_line(capsys, no_work, argv, match):
    err = refused(argv, capsys, match, code=2)
    assert err.startswith(f"dmftc {argv[0]}: ")


# ------------------------------------------------------------------ --out defaults
@pytest.mark.parametrize("argv,default", [
    (["solve", MLP], "runs/mlp_mup_linear/solve"),
    (["simulate", MLP], "runs/mlp_mup_linear/simulate"),
    (["check", MLP, "--sizes", "N=64,128,256"], "runs/mlp_mup_linear/check"),
    (["heads", ATTN, "--sizes", "N=8,16,32"], "runs/transformer_mup/heads"),
    (["reproduce"], "runs/reproduce"),
])
def test_out_is_optional_with_a_default_named_in_help(tmp_path, capsys, monkeypatch, no_work, argv, default):
    monkeypatch.chdir(tmp_path)
    taken = tmp_path / default
    taken.parent.mkdir(parents=True)
    taken.write_text("mine")                     # the default is taken: the refusal names it, before any work
    refused(argv, capsys, f"--out {default!r} exists and is not a folder")
    assert taken.read_text() == "mine"
    rc, out, _, _ = run([argv[0], "--help"], capsys)
    stated = "runs/reproduce" if argv[0] == "reproduce" else f"runs/<spec name>/{argv[0]}"
    assert rc == 0 and f"default: {stated}" in " ".join(out.split()), out
