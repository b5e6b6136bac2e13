"""Output paths checked before the work, OSError as the user's error, and Ctrl-C: exit 130, one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from dmftc import files
from dmftc.cli import main

ROOT = Path(__file__).resolve().parents[1]
SPEC = str(ROOT / "specs" / "mlp_mup_linear.yaml")


def _fails_fast(argv, capsys, match):
    t0 = time.perf_counter()
    assert main(argv) == (2 if argv[0] == "check" else 1)   # a verdict command's bad input is 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err and len(err.splitlines()) == 1, err
    assert time.perf_counter() - t0 < 5       # refused before any solve


@pytest.mark.parametrize("command", ["solve", "compile", "simulate", "check"])
def test_out_naming_an_existing_file_is_refused_before_the_work(tmp_path, capsys, command):
    taken = tmp_path / "taken"
    taken.write_text("mine")
    _fails_fast([command, SPEC, "--out", str(taken)], capsys, "exists and is not a folder")
    _fails_fast([command, SPEC, "--out", str(taken / "sub")], capsys, "is not a folder")
    assert taken.read_text() == "mine"


def test_out_naming_a_device_is_refused(capsys):
    _fails_fast(["solve", SPEC, "--out", "/dev/null"], capsys, "exists and is not a folder")


def test_dot_naming_a_folder_or_a_device_is_refused(tmp_path, capsys):
    _fails_fast(["graph", SPEC, "--dot", str(tmp_path)], capsys, "is a folder")
    _fails_fast(["graph", SPEC, "--dot", "/dev/null"], capsys, "not a regular file")


def test_an_unwritable_folder_is_refused(tmp_path, capsys, monkeypatch):
    # root writes through permission bits, so the refusal is provoked where the probe writes
    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "TemporaryFile", denied)
    _fails_fast(["solve", SPEC, "--out", str(tmp_path / "new")], capsys, "cannot be written: Permission denied")


def test_an_oserror_during_the_work_is_the_users_error(tmp_path, capsys, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / "g" / "x.dot"))

    monkeypatch.setattr(files.os, "open", full)
    assert main(["graph", SPEC, "--dot", str(tmp_path / "g" / "x.dot")]) == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err and "x.dot" in err and "Traceback" not in err


def test_a_good_out_folder_is_not_created_before_the_work_succeeds(tmp_path, capsys):
    assert main(["solve", SPEC, "--out", str(tmp_path / "a" / "b"), "--set", "hyper.eta=1000000.0"]) == 1
    assert not (tmp_path / "a").exists()


def test_remove_pending_deletes_the_temporaries_of_writes_in_progress(tmp_path):
    tmp = tmp_path / ".x.tmp"
    tmp.write_text("half")
    files._PENDING.add(tmp)
    files.remove_pending()
    assert not tmp.exists()
    files._PENDING.discard(tmp)


@pytest.mark.parametrize("delay", [0.8, 4.0])   # during start-up; during the compile or the solve
def test_ctrl_c_exits_130_promptly_with_one_line(tmp_path, delay):
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "dmftc", "solve", str(ROOT / "specs" / "mlp_mup_relu.yaml"),
                             "--out", str(out), "--set", "solver.samples=65536", "--set", "training.steps=40"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    if proc.poll() is not None:
        pytest.skip("the solve ended before the interrupt")
    proc.send_signal(signal.SIGINT)
    t0 = time.perf_counter()
    _, err = proc.communicate(timeout=30)
    assert time.perf_counter() - t0 < 5
    assert proc.returncode == 130, err
    *progress, last = err.strip().splitlines()
    assert last in ("dmftc: interrupted", "dmftc solve: interrupted"), err
    assert all(line.startswith("solve mlp_mup_relu: ") for line in progress), err   # its progress lines only
    assert not out.exists() or not [p for p in os.listdir(out) if p.endswith(".tmp")]
