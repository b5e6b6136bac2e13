"""Atomic files, plots and the progress bar."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dmftc.crosscheck import (crosscheck, plot_convergence, plot_curves, progress, save_figure_atomic,
                              seed_mean_se, write_json_atomic)
from dmftc.errors import DmftcError

PNG = b"\x89PNG\r\n\x1a\n"
REPO = Path(__file__).resolve().parents[2]


def _only(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_json_is_written_atomically_and_failures_leave_the_old_file(tmp_path):
    path = tmp_path / "out" / "check.json"
    write_json_atomic(path, {"a": 1})
    assert json.loads(path.read_text()) == {"a": 1} and path.read_text().endswith("\n")
    with pytest.raises(ValueError):
        write_json_atomic(path, {"a": float("nan")})  # strict JSON: NaN is refused
    with pytest.raises(TypeError):
        write_json_atomic(path, {"a": object()})
    assert json.loads(path.read_text()) == {"a": 1}
    assert _only(path.parent) == ["check.json"]


def test_written_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_json_atomic(tmp_path / "check.json", [])
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


class _BrokenFigure:
    def savefig(self, f, **kwargs):
        f.write(b"partial")
        raise RuntimeError("disk full")


def test_a_failing_figure_leaves_no_partial_file(tmp_path):
    path = tmp_path / "plot.png"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="disk full"):
        save_figure_atomic(_BrokenFigure(), path)
    assert path.read_bytes() == b"old" and _only(tmp_path) == ["plot.png"]


def test_plots_are_png_files_and_nothing_else_is_left(synthetic, tmp_path):
    ref = synthetic.reference()
    data = synthetic.ensembles(0, sizes=(128, 512, 2048), seeds=8)
    report = crosscheck(ref, data)
    stats = {n: seed_mean_se(data[n]["loss"]) for n in data}
    plot_curves(ref["loss"], {n: m for n, (m, _) in stats.items()}, {n: s for n, (_, s) in stats.items()},
                tmp_path / "curves_loss.png", reference_se=np.full(51, 1e-3))
    plot_convergence(report, "loss", tmp_path / "convergence_loss.png")
    plot_convergence(report, "f", tmp_path / "convergence_f.png")
    assert _only(tmp_path) == ["convergence_f.png", "convergence_loss.png", "curves_loss.png"]
    assert all(p.read_bytes()[:8] == PNG for p in tmp_path.iterdir())


def test_plot_curves_refuses_mismatched_curves(tmp_path):
    with pytest.raises(DmftcError, match=r"mean at N=128 has shape \(50,\); expected \(51,\)"):
        plot_curves(np.ones(51), {128: np.ones(50)}, {128: np.ones(50)}, tmp_path / "x.png")
    with pytest.raises(DmftcError, match="no quantity 'K' in this report; compared: loss"):
        plot_convergence(_tiny_report(), "K", tmp_path / "x.png")


def _tiny_report():
    rng = np.random.default_rng(0)
    return crosscheck({"loss": np.zeros(3)}, {n: {"loss": rng.normal(size=(4, 3))} for n in (8, 16)})


def test_importing_the_package_does_not_import_matplotlib():
    code = "import sys, dmftc.crosscheck; print('matplotlib' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env, check=True)
    assert out.stdout.strip() == "False"


def test_progress_prints_one_line_per_item_when_not_a_terminal():
    out = io.StringIO()
    items = list(progress([128, 256, 512, 1024], desc="check", label=lambda n: f"N={n}", stream=out))
    assert items == [128, 256, 512, 1024]
    lines = out.getvalue().splitlines()
    assert lines[0] == "check: N=128 (1/4)"      # nothing done yet: no rate, no estimate
    # from the second item on, elapsed < remaining from the rate of the items done (tqdm's format)
    assert [re.sub(r" \[\d\d:\d\d<\d\d:\d\d\]$", "", line) for line in lines[1:]] == [
        "check: N=256 (2/4)", "check: N=512 (3/4)", "check: N=1024 (4/4)"], lines
    assert all(re.search(r"\[\d\d:\d\d<\d\d:\d\d\]$", line) for line in lines[1:]), lines


def test_progress_without_total_or_label():
    out = io.StringIO()
    list(progress(iter("ab"), desc="solve", stream=out))
    assert re.fullmatch(r"solve: 1\nsolve: 2 \[00:00\]\n", out.getvalue()), out.getvalue()


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_draws_a_bar_on_a_terminal_and_ends_its_line():
    out = _Terminal()
    list(progress(range(3), desc="check", label=lambda n: f"N={n}", stream=out))
    text = out.getvalue()
    assert "check" in text and "3/3" in text and "N=2" in text and text.endswith("\n")
    out = _Terminal()
    for _ in progress(range(5), desc="check", stream=out):
        break
    assert "0/5" in out.getvalue() and out.getvalue().endswith("\n")  # the first item never finished


def test_progress_is_quiet_about_a_stream_without_isatty():
    class Sink:
        def __init__(self):
            self.text = ""

        def write(self, s):
            self.text += s

        def flush(self):
            pass

    sink = Sink()
    list(progress([1], total=1, desc="x", stream=sink))
    assert sink.text == "x: 1/1\n"


def test_a_solve_bar_draws_on_a_terminal_only(monkeypatch):
    from dmftc.crosscheck.progress import bar

    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    with bar(3, "solve mlp", unit="solve") as b:
        b.update(3)
    assert "solve mlp" in term.getvalue() and "3/3" in term.getvalue()
    quiet = _Terminal()
    monkeypatch.setattr(sys, "stderr", quiet)
    with bar(3, "solve mlp", enabled=False) as b:
        b.update(3)
    assert quiet.getvalue() == ""


def test_a_solve_bar_in_a_log_writes_one_line_per_update_with_the_remaining_time(monkeypatch):
    """Issue 27, item 5: `dmftc solve` in a log (no terminal) is not silent: whole lines, no carriage
    returns, each with the elapsed and the estimated remaining time; growing the total (a further round
    of draws) shows in the next line."""
    from dmftc.crosscheck.progress import bar

    log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log)
    with bar(300, "solve mlp", unit="draws") as b:
        b.update(100)
        b.update(200)
        b.total += 600
        b.update(600)
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    assert lines[0].startswith("solve mlp: 0/300 draws [")
    assert "solve mlp: 100/300 draws [" in lines[1] and "<" in lines[1]
    assert lines[-1].startswith("solve mlp: 900/900 draws [")
    assert len(lines) == len(set(lines)) == 4      # one line per change, none repeated by close
    quiet = io.StringIO()
    monkeypatch.setattr(sys, "stderr", quiet)
    with bar(3, "solve mlp", enabled=False) as b:
        b.update(3)
    assert quiet.getvalue() == ""
