"""Bad specs: every message names file:line:col, the key path and the fix, and fits on a screen."""

from __future__ import annotations

import re

import numpy as np
import pytest

from dmftc.errors import SpecError
from dmftc.spec import load, loads

from spec_texts import BASE


ATTENTION = "  - attention: {heads: 2, key_dim: N, logit_scale: 1/N}\n  - repeat"
SYNTH = "synthetic: {P: 4, D: 8, target: tanh_linear, seed: 0}"

# id, old text, new text, needle (its first character is where the problem sits), key path, fix
CASES = [
    ("unknown_key", "name: W0}", "nmae: W0}", "nmae", "model[0].dense.nmae", "did you mean 'name'?"),
    ("undeclared_symbol", "{out: N, name", "{out: M, name", "M, name", "model[0].dense.out", "declare M under"),
    ("undeclared_close", "lr: eta", "lr: etaa", "etaa", "training.lr", "did you mean eta?"),
    ("wrong_type", "steps: 5", "steps: many", "many", "training.steps", "write a whole number"),
    ("float_size", "N: 64", "N: 64.0", "64.0", "sizes.N", "write 64 (no decimal point)"),
    ("zero_size", "N: 64", "N: 0", "0, L", "sizes.N", "use 1 or more"),
    ("negative_size", "L: 2}", "L: -2}", "-2}", "sizes.L", "use 1 or more"),
    ("import_call", "times: L - 1", "times: \"__import__('os').system('x')\"", "__import__",
     "model[2].repeat.times", "only sqrt(x), exp(x) and log(x) can be called"),
    ("python_tag", "preset: mup", "preset: !!python/object/apply:os.system [echo]", "!!python",
     "parameterization.preset", "remove the tag"),
    ("duplicate_key", "{N: 64, L: 2}", "{N: 64, L: 2, N: 32}", "N: 32", "sizes.N", "remove one of the two"),
    ("name_not_identifier", "name: base_net", "name: base-net", "base-net", "name", "rename it, e.g. base_net"),
    ("name_keyword", "name: base_net", "name: class", "class", "name", "rename it, e.g. class_"),
    ("limit_unknown_size", "limit: {N: inf}", "limit: {M: inf}", "M: inf", "limit.M", "declare M under sizes"),
    ("limit_data_size", "limit: {N: inf}", "limit: {N: inf, P: inf}", "P: inf", "limit.P", "limit a model size"),
    ("limit_not_inf", "limit: {N: inf}", "limit: {N: 100}", "100}", "limit.N", "write `N: inf`"),
    ("missing_data_file", SYNTH, "file: nope.npz", "nope.npz", "data.file", "relative to the spec's folder"),
    ("unknown_activation", "act: relu\n  - repeat", "act: rleu\n  - repeat", "rleu", "model[1].act",
     "did you mean 'relu'?"),
    ("unknown_op", "act: relu\n  - repeat", "activation: relu\n  - repeat", "activation", "model[1]",
     "did you mean 'act'?"),
    ("unknown_preset", "preset: mup", "preset: mu_p", "mu_p", "parameterization.preset", "did you mean 'mup'?"),
    ("override_unknown_weight", "preset: mup\n", "preset: mup\n  weights: {W5: {lr: 2}}\n", "W5",
     "parameterization.weights.W5", "use one of the weight names"),
    ("override_unknown_field", "preset: mup\n", "preset: mup\n  weights: {W1: {rate: 2}}\n", "rate",
     "parameterization.weights.W1.rate", "remove it"),
    ("two_readouts", "  - readout: {name: w}\n", "  - readout: {name: w}\n  - readout: {}\n", "readout: {}\n",
     "model[4].readout", "remove it"),
    ("readout_not_last", "  - readout: {name: w}\n", "  - readout: {name: w}\n  - act: relu\n", "readout",
     "model[3].readout", "move it to the end"),
    ("attention_without_tokens", "  - act: relu\n  - repeat", ATTENTION, "attention", "model[1].attention",
     "use token data"),
    ("caret_power", "times: L - 1", "times: L^2 - 1", "L^2", "model[2].repeat.times", "write ** for powers"),
    ("not_integer_out", "{out: N, name", "{out: N/3, name", "N/3", "model[0].dense.out", "change the formula"),
    ("missing_section", "training: {lr: eta, steps: 5}\n", "", "dmftc", "training", "add `training:"),
    ("hyper_formula", "eta: 0.5}", "eta: 1/2}", "1/2", "hyper.eta", "write a decimal"),
    ("hyper_clash", "eta: 0.5}", "eta: 0.5, N: 2}", "N: 2", "hyper.N", "different names"),
    ("damping_range", "training:", "solver: {damping: 0}\ntraining:", "0}\ntraining", "solver.damping", "(0, 1]"),
    ("tokens_without_pool", "D: 8,", "D: 8, S: 3,", "- dense", "model", "add `- pool: mean`"),
    ("size_disagrees", "L: 2}", "L: 2, S: 4}", "4}\n", "sizes.S", "remove sizes.S"),
    ("bad_version", "dmftc: 1", "dmftc: 2", "2", "dmftc", "write `dmftc: 1`"),
    ("duplicate_name", "        - dense: {out: N}", "        - dense: {name: W0, out: N}", "dense: {name: W0",
     "model[2].repeat.body[0].dense.name", "another `name:`"),
]


def position(text: str, needle: str) -> tuple[int, int]:
    """1-based line and column of the first occurrence of `needle`."""
    index = text.index(needle)
    return text.count("\n", 0, index) + 1, index - text.rfind("\n", 0, index)


def rendered(tmp_path, text: str, overrides=()) -> tuple[str, SpecError]:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        load(path, overrides)
    return str(path), info.value


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_spec_message(tmp_path, case):
    _, old, new, needle, path, fix = case
    assert old in BASE
    text = BASE.replace(old, new, 1)
    file, err = rendered(tmp_path, text)
    message = err.render()
    line, col = position(text, needle) if needle != "dmftc" else (1, 1)
    assert f"{file}:{line}:{col}: {path}: " in message, message
    assert "fix:" in message and fix in message, message
    assert len(message.splitlines()) < 25, message


def test_at_least_eighteen_distinct_cases():
    assert len({c[0] for c in CASES}) >= 18
    assert len({c[2] for c in CASES}) >= 18


def test_yaml_syntax_error(tmp_path):
    text = BASE.replace("  - act: relu\n  - repeat", "  - act: [relu\n  - repeat")
    file, err = rendered(tmp_path, text)
    message = err.render()
    assert re.search(re.escape(file) + r":\d+:\d+: YAML syntax error", message), message
    assert "fix:" in message and len(message.splitlines()) < 25


def test_data_file_wrong_shapes(tmp_path):
    np.savez(tmp_path / "bad.npz", X=np.zeros((4, 8)), y=np.zeros(5))
    text = BASE.replace(SYNTH, "file: bad.npz")
    file, err = rendered(tmp_path, text)
    line, col = position(text, "bad.npz")
    message = err.render()
    assert f"{file}:{line}:{col}: data.file: y has shape (5,); expected (P,) = (4,)" in message
    assert "fix:      save it with numpy.savez(path, X=X, y=y)" in message


@pytest.mark.parametrize(
    "arrays, what",
    [
        ({"X": np.zeros((4, 2, 3, 1)), "y": np.zeros(4)}, "X has shape (4, 2, 3, 1)"),
        ({"X": np.zeros((4, 8))}, "has no array y"),
        ({"X": np.full((4, 8), np.nan), "y": np.zeros(4)}, "non-finite"),
    ],
)
def test_data_file_other_problems(tmp_path, arrays, what):
    np.savez(tmp_path / "bad.npz", **arrays)
    _, err = rendered(tmp_path, BASE.replace(SYNTH, "file: bad.npz"))
    assert what in err.render()


def test_unknown_set_path(tmp_path):
    file, err = rendered(tmp_path, BASE, overrides=["hyper.gama0=0.5"])
    message = err.render()
    assert "<--set hyper.gama0=0.5>:1:7: hyper.gama0: --set: hyper has no key 'gama0'" in message
    assert "existing keys: gamma0, eta" in message and "did you mean 'gamma0'?" in message


def test_set_into_a_scalar(tmp_path):
    _, err = rendered(tmp_path, BASE, overrides=["name.x=1"])
    assert "name is not a mapping" in err.render()


def test_set_bad_index(tmp_path):
    _, err = rendered(tmp_path, BASE, overrides=["model[9].dense.out=N"])
    assert "model has no item [9]" in err.render()


def test_set_without_equals(tmp_path):
    _, err = rendered(tmp_path, BASE, overrides=["hyper.gamma0"])
    assert "expected KEY=VALUE" in err.render()


def test_many_problems_all_reported(tmp_path):
    text = BASE
    chosen = ["unknown_key", "zero_size", "unknown_activation", "caret_power", "unknown_preset", "wrong_type"]
    for case in CASES:
        if case[0] in chosen:
            text = text.replace(case[1], case[2], 1)
    _, err = rendered(tmp_path, text)
    paths = {p.path for p in err.problems}
    expected = {c[4] for c in CASES if c[0] in chosen}
    assert expected <= paths
    assert len(err.problems) == len(chosen)
    assert err.render().startswith(f"invalid spec: {len(chosen)} problems")
    lines = [(p.location.line, p.location.col) for p in err.problems]
    assert lines == sorted(lines)  # in file order


def test_bad_sizes_section_does_not_cascade(tmp_path):
    text = BASE.replace("sizes: {N: 64, L: 2}", "sizes: [N, L]")
    _, err = rendered(tmp_path, text)
    assert [p.path for p in err.problems] == ["sizes"]


def test_exact_message_unknown_activation():
    text = BASE.replace("act: relu\n  - repeat", "act: rleu\n  - repeat")
    with pytest.raises(SpecError) as info:
        loads(text, filename="net.yaml")
    assert str(info.value) == (
        "invalid spec: 1 problem\n"
        "net.yaml:7:10: model[1].act: unknown activation 'rleu'\n"
        "    received: 'rleu'\n"
        "    allowed:  linear, relu, tanh, erf, gelu, quadratic, sigmoid\n"
        "    fix:      did you mean 'relu'?"
    )


def test_exact_message_two_problems():
    text = BASE.replace("N: 64", "N: 0").replace("{out: N, name", "{out: M, name")
    with pytest.raises(SpecError) as info:
        loads(text, filename="net.yaml")
    assert info.value.render() == (
        "invalid spec: 2 problems\n"
        "net.yaml:3:12: sizes.N: expected a positive integer\n"
        "    received: 0\n"
        "    allowed:  >= 1\n"
        "    fix:      use 1 or more\n"
        "net.yaml:6:18: model[0].dense.out: undeclared symbol 'M'\n"
        "    received: 'M'\n"
        "    fix:      declare M under `sizes` (an integer size) or `hyper` (a number)"
    )


@pytest.mark.parametrize(
    "text, what",
    [
        ("", "the spec is empty"),
        ("- a\n- b\n", "expected a mapping"),
        ("a: 1\n---\nb: 2\n", "YAML syntax error"),
        ("x: &a [*a]\n", "recursive YAML alias"),
        ("dmftc: 1\nname: x\nwhen: 2020-01-01\n", "dates are not allowed"),
        ("dmftc: 1\n<<: {name: x}\n", "merge keys"),
        ("dmftc: 1\nyes: 2\n", "mapping keys must be strings"),
        ("a: " + "[" * 3000 + "]" * 3000 + "\n", "nested too deeply"),
        ("a: &a [x, x, x, x, x, x, x, x, x, x]\n"
         + "".join(f"{n}: &{n} [{', '.join([f'*{m}'] * 10)}]\n" for m, n in zip("abcde", "bcdef")),
         "spec too large"),
    ],
    ids=lambda v: re.sub(r"\W+", "_", str(v))[:24],
)
def test_yaml_level_problems(text, what):
    with pytest.raises(SpecError) as info:
        loads(text, filename="t.yaml")
    assert what in info.value.render()
    assert "t.yaml:" in info.value.render()


def test_unreadable_file(tmp_path):
    with pytest.raises(SpecError) as info:
        load(tmp_path / "missing.yaml")
    assert "cannot read the spec" in info.value.render()
