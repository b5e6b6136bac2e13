"""Silent defaults: a hyperparameter the preset reads but `hyper` lacks, and one `hyper` declares but nothing uses.

A missing gamma0 under mup is a warning that says the value used; a near-miss (`gama0`) that nothing
uses is an error with the fix; an unused hyperparameter is a warning naming it. The command line
prints the warnings to stderr and keeps its exit code.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dmftc import cli
from dmftc.errors import SpecError
from dmftc.spec import load, loads

from spec_texts import BASE

ROOT = Path(__file__).resolve().parents[2]


def edited(old: str, new: str) -> str:
    assert old in BASE
    return BASE.replace(old, new)


def test_a_declared_and_used_gamma0_gives_no_warning():
    assert loads(BASE).warnings == ()


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "specs").glob("*.yaml")))
def test_the_example_specs_do_not_warn(name):
    assert load(ROOT / "specs" / name).warnings == ()


def test_a_missing_gamma0_under_mup_warns_with_the_value_used():
    spec = loads(edited("gamma0: 1.0, eta", "eta"), "x.yaml")
    assert spec.hyper == {"eta": 0.5}
    (warning,) = spec.warnings
    assert warning.startswith("x.yaml:15:11: parameterization.preset: the mup preset reads gamma0")
    assert "gamma0 = 1 is used" in warning and "declare gamma0 under hyper" in warning
    assert "`gamma0: 1.0`" in warning and "\n" not in warning


def test_a_missing_preset_says_it_is_the_default():
    text = edited("parameterization:\n  preset: mup\n", "parameterization: {}\n").replace("gamma0: 1.0, ", "")
    (warning,) = loads(text).warnings
    assert "the mup preset (the default: parameterization names no preset) reads gamma0" in warning


def test_a_near_miss_of_gamma0_is_an_error_with_the_fix():
    with pytest.raises(SpecError) as err:
        loads(edited("gamma0: 1.0", "gama0: 0.5"), "x.yaml")
    (problem,) = err.value.problems
    assert str(problem.location) == "x.yaml:4:9" and problem.path == "hyper.gama0"
    assert "'gama0' is used nowhere" in problem.message and "gamma0 would silently be 1" in problem.message
    assert problem.hint == "did you mean 'gamma0'? declare gamma0 under hyper, e.g. `gamma0: 0.5` in place of `gama0: 0.5`"


def test_a_near_miss_that_an_expression_uses_is_only_a_warning_that_names_it():
    spec = loads(edited("gamma0: 1.0", "gama0: 0.5").replace("lr: eta,", "lr: eta * gama0,"))
    (warning,) = spec.warnings
    assert "gamma0 = 1 is used (hyper declares 'gama0': did you mean 'gamma0'?)" in warning


def test_an_unused_hyperparameter_warns_naming_it():
    spec = loads(edited("eta: 0.5}", "eta: 0.5, zeta: 2}"), "x.yaml")
    (warning,) = spec.warnings
    assert warning.startswith("x.yaml:4:32: hyper.zeta: 'zeta' is declared but used nowhere")
    assert "the mup preset does not read it" in warning


def test_gamma0_under_ntk_and_sp_is_unused():
    for preset in ("ntk", "sp"):
        (warning,) = loads(edited("preset: mup", f"preset: {preset}")).warnings
        assert f"hyper.gamma0: 'gamma0' is declared but used nowhere" in warning
        assert f"the {preset} preset does not read it" in warning


def test_a_hyperparameter_used_only_in_an_override_or_a_model_expression_is_used():
    override = edited("preset: mup\n", "preset: ntk\n  weights: {w: {lr: 2*gamma0}}\n")
    assert loads(override).warnings == ()
    model = edited("- dense: {out: N, name: W0}", "- dense: {out: gamma0*N, name: W0}").replace("preset: mup", "preset: sp")
    assert loads(model).warnings == ()


def test_no_preset_reads_nothing():
    full = "{multiplier: 1, init_std: 1, lr: 1}"
    text = edited("preset: mup\n", f"preset: null\n  weights: {{W0: {full}, W1: {full}, w: {full}}}\n")
    (warning,) = loads(text).warnings
    assert "hyper.gamma0" in warning and "there is no preset" in warning


def test_depth_presets_read_gamma0_too():
    for preset in ("depth_mup", "completep", "mean_field"):
        text = edited("preset: mup", f"preset: {preset}").replace("gamma0: 1.0, ", "")
        (warning,) = loads(text).warnings
        assert "reads gamma0" in warning and "gamma0 = 1 is used" in warning


def test_warnings_take_no_part_in_equality():
    after, before = loads(edited("eta: 0.5}", "eta: 0.5, zeta: 2}")), loads(edited("eta: 0.5}", "zeta: 2, eta: 0.5}"))
    assert after.warnings != before.warnings  # the same warning at another column
    assert after == before


def test_a_set_override_is_checked_too():
    spec = loads(BASE, "x.yaml", overrides=["parameterization.preset=ntk"])
    (warning,) = spec.warnings
    assert "hyper.gamma0" in warning


def test_the_command_line_prints_warnings_to_stderr_and_exits_0(tmp_path, capsys):
    path = tmp_path / "x.yaml"
    path.write_text(edited("eta: 0.5}", "eta: 0.5, zeta: 2}").replace("gamma0: 1.0, ", ""))
    assert cli.main(["graph", str(path)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2
    assert err[0].startswith(f"dmftc graph: warning: {path}:15:11: parameterization.preset: the mup preset reads gamma0")
    assert err[1].startswith(f"dmftc graph: warning: {path}:4:19: hyper.zeta: 'zeta' is declared but used nowhere")


def test_the_command_line_reports_a_near_miss_as_an_input_error(tmp_path, capsys):
    path = tmp_path / "x.yaml"
    path.write_text(edited("gamma0: 1.0", "gama0: 0.5"))
    assert cli.main(["analyze", str(path)]) == 1
    err = capsys.readouterr().err
    assert "hyper.gama0" in err and "did you mean 'gamma0'?" in err and "Traceback" not in err
