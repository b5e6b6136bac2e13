"""The resolved parameterization table: `dmftc analyze` (text and --json) prints what
`resolve_parameterization` gives every weight, and docs/spec.md shows the same tables."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import sympy
from scaling_specs import mlp, transformer

from dmftc import cli
from dmftc.graph import build_graph
from dmftc.notation import hyper_symbol, size_symbol
from dmftc.scaling import analyze, resolve_parameterization, resolved_table
from dmftc.spec import PRESETS, load, loads
from dmftc.spec.types import WeightOverride
from dmftc.spec.usage import HYPER_DEFAULTS, PRESET_READS, expression_names

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
N, eta, gamma0 = size_symbol("N"), hyper_symbol("eta"), hyper_symbol("gamma0")


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_the_table_is_what_resolve_parameterization_gives_in_model_order(path):
    spec = load(path)
    graph = build_graph(spec)
    params = resolve_parameterization(spec, graph)
    table = resolved_table(spec, graph)
    assert [r.name for r in table.rows] == list(graph.weights)
    for row in table.rows:
        assert (row.init_std, row.multiplier, row.lr) == (params[row.name].init_std, params[row.name].multiplier,
                                                          params[row.name].lr)
        assert row.role == graph.weights[row.name].role
    assert table.preset == spec.parameterization.preset and table.defaults == {}


def test_mup_mlp_hidden_weight():
    rows = {r.name: r for r in resolved_table(load(ROOT / "specs" / "mlp_mup_relu.yaml")).rows}
    assert rows["W1"].init_std == 1 and rows["W1"].multiplier == 1 / sympy.sqrt(N)
    assert rows["W1"].lr == eta * gamma0**2 * N
    assert rows["w"].multiplier == 1 / (gamma0 * N)


def test_analyze_carries_the_table_in_text_and_json():
    sc = analyze(transformer(1.0))
    assert sc.parameterization == resolved_table(transformer(1.0))
    text = str(sc)
    assert "parameterization: mup; W_ij ~ N(0, init_std^2)" in text
    assert re.search(r"attn0_K\s+key\s+N\*\*\(1 - alpha_A\)\s+N\*\*\(alpha_A - 3/2\)/sqrt\(H\)", text)
    obj = json.loads(json.dumps(sc.to_json()))["parameterization"]
    assert obj["preset"] == "mup" and obj["defaults"] == {}
    assert [w["weight"] for w in obj["weights"]][:2] == ["embed", "attn0_K"]
    assert obj["weights"][1] == {"weight": "attn0_K", "role": "key", "init_std": "N**(1 - alpha_A)",
                                 "multiplier": "N**(alpha_A - 3/2)/sqrt(H)",
                                 "lr": "H*L**(2*alpha_L - 1)*N*eta*gamma0**2", "overridden": []}


def test_overrides_are_marked():
    spec = mlp("mup", overrides={"w": WeightOverride(init_std=sympy.Integer(0))})
    table = resolved_table(spec)
    (w,) = [r for r in table.rows if r.name == "w"]
    assert w.init_std == 0 and w.overridden == ("init_std",)
    assert "0 (override)" in str(table) and "`0` (override)" in table.markdown()


def test_a_defaulted_gamma0_is_named_in_the_table():
    text = (ROOT / "specs" / "mlp_mup_relu.yaml").read_text().replace("  gamma0: 1.0", "")
    spec = loads(text)
    table = resolved_table(spec)
    assert table.defaults == {"gamma0": 1}
    assert "gamma0 = 1 (the preset reads it; hyper does not declare it)" in str(table)
    assert all(gamma0 not in r.lr.free_symbols for r in table.rows)


def test_every_preset_says_what_it_reads():
    assert set(PRESET_READS) == {*PRESETS, None}


@pytest.mark.parametrize("preset", [*PRESETS, None])
def test_preset_reads_are_what_the_table_reads(preset):
    """The hyperparameters in the resolved table that no spec expression names are exactly the preset's
    PRESET_READS (so an unused-hyperparameter warning is never wrong), each with a default."""
    overrides = None
    if preset is None:
        one = sympy.Integer(1)
        overrides = {w: WeightOverride(one, one, one) for w in ("W0", "W1", "w")}
    for spec in ([mlp(preset, overrides=overrides)] if preset is None else
                 [mlp(preset), transformer(1.0, preset=preset)]):
        table = resolved_table(spec)
        read = {s.name for r in table.rows for e in (r.init_std, r.multiplier, r.lr) for s in e.free_symbols
                if s.name in spec.hyper} - expression_names(spec)
        assert read == set(PRESET_READS[preset]), (preset, read)
        assert set(PRESET_READS[preset]) <= set(HYPER_DEFAULTS)


def test_analyze_command_prints_the_table(capsys):
    assert cli.main(["analyze", str(ROOT / "specs" / "mlp_mup_relu.yaml")]) == 0
    out = capsys.readouterr().out
    assert re.search(r"\n  W1\s+hidden\s+1\s+1/sqrt\(N\)\s+N\*eta\*gamma0\*\*2\n", out)
    assert cli.main(["analyze", str(ROOT / "specs" / "mlp_mup_relu.yaml"), "--json"]) == 0
    weights = json.loads(capsys.readouterr().out)["parameterization"]["weights"]
    assert weights[1] == {"weight": "W1", "role": "hidden", "init_std": "1", "multiplier": "1/sqrt(N)",
                          "lr": "N*eta*gamma0**2", "overridden": []}


# ------------------------------------------------------------------------------ docs/spec.md
def _docs_tables():
    """(commands, the text from the table on) for every table of the docs section."""
    text = (ROOT / "docs" / "spec.md").read_text()
    start = text.index("## What the presets resolve to\n")
    end = text.find("\n## ", start + 1)
    section = text[start:end if end >= 0 else len(text)]
    lines = section.split("\n")
    out = []
    for i, line in enumerate(lines):
        if line.startswith("| weight |"):
            before = next(x for x in reversed(lines[:i]) if x.strip())
            commands = re.findall(r"`dmftc analyze ([^`]+)`", before)
            assert commands, f"no command above the table at line {i} of the section"
            out.append((commands, "\n".join(lines[i:])))
    return out


def _resolved(command: str):
    args = cli.build_parser().parse_args(["analyze", *shlex.split(command)])
    return resolved_table(load(ROOT / args.spec, overrides=tuple(args.set or ())))


def test_the_docs_tables_are_what_the_code_resolves():
    tables = _docs_tables()
    assert len(tables) >= 3
    presets = set()
    for commands, text in tables:
        for command in commands:
            table = _resolved(command)
            presets.add(table.preset)
            expected = table.markdown()
            assert text.startswith(expected + "\n"), (
                f"docs/spec.md's table for `dmftc analyze {command}` is stale; the code gives:\n{expected}")
            assert not text[len(expected) + 1:].lstrip("\n").startswith(("|", "(override)", "gamma0 ="))
    assert presets >= {p for p in PRESETS if p != "mean_field"}  # mean_field is stored as mup
