"""Loading the example specs and what the returned `Spec` holds."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import sympy

from dmftc.notation import hyper_symbol, size_symbol
from dmftc.spec import (
    Attention, DataFile, Dense, Readout, Repeat, Residual, Spec, Synthetic,
    load, load_data, loads, symbol_values, weight_names,
)  # fmt: skip

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "specs").glob("*.yaml"))
EXPECTED = {
    "mlp_mup_relu", "mlp_ntk_relu", "mlp_ntk_erf", "mlp_sp_relu", "mlp_mup_tanh", "mlp_mup_linear",
    "resnet_depth_mup", "resnet_completep", "transformer_mup", "transformer_sqrtN", "transformer_heads",
}  # fmt: skip
N, L, H = size_symbol("N"), size_symbol("L"), size_symbol("H")


def test_all_examples_present():
    assert {p.stem for p in EXAMPLES} >= EXPECTED


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_loads(path):
    spec = load(path)
    assert isinstance(spec, Spec)
    assert spec.name == path.stem  # the module name matches the file name
    assert spec.source == path
    assert spec.description
    assert isinstance(spec.model[-1], Readout)
    assert all(n is not None for n in _names(spec.model))
    json.dumps(spec.raw)  # plain data, JSON-serialisable


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_is_short_and_commented(path):
    text = path.read_text()
    assert len(text.splitlines()) <= 45
    assert text.lstrip().startswith("#")


def _names(ops):
    for op in ops:
        if isinstance(op, (Dense, Attention, Readout)):
            yield op.name
        if isinstance(op, Repeat):
            yield from _names(op.body)
        if isinstance(op, Residual):
            yield from _names(op.branch)


def test_mlp_mup_relu_contents():
    spec = load(ROOT / "specs" / "mlp_mup_relu.yaml")
    assert spec.version == 1
    assert spec.sizes == {"N": 1024, "L": 2, "P": 8, "D": 16}
    assert spec.hyper == {"gamma0": 1.0, "eta": 0.5}
    assert spec.limit == ("N",)
    assert spec.parameterization.preset == "mup"
    assert spec.training.lr == hyper_symbol("eta") and spec.training.steps == 20
    assert spec.data == Synthetic(P=8, D=16, S=None, target="tanh_linear", seed=0)
    dense0, act, repeat, readout = spec.model
    assert dense0 == Dense(out=N, name="W0")
    assert repeat.times == L - 1 and repeat.index == "ell"
    assert repeat.body[0] == Dense(out=N, name="W1")
    assert readout == Readout(name="w")
    assert weight_names(spec.model) == ["W0", "W1", "w"]
    assert spec.solver.tol == 1e-4 and spec.solver.dtype == "float64"


def test_transformer_contents():
    spec = load(ROOT / "specs" / "transformer_mup.yaml")
    assert spec.sizes["S"] == 4 and spec.sizes["H"] == 4
    attention = spec.model[1].body[0].branch[1]
    assert attention.logit_scale == N ** (-hyper_symbol("alpha_A"))
    assert attention.heads == H and attention.name == "attn0"
    assert spec.model[1].body[0].scale == hyper_symbol("beta0") / L ** hyper_symbol("alpha_L")
    assert weight_names(spec.model)[:5] == ["embed", "attn0_K", "attn0_Q", "attn0_V", "attn0_O"]
    assert load(ROOT / "specs" / "transformer_heads.yaml").limit == ("H",)


def test_hyper_values_exact():
    spec = load(ROOT / "specs" / "transformer_sqrtN.yaml")
    values = symbol_values(spec)
    assert values[hyper_symbol("alpha_A")] == sympy.Rational(1, 2)
    assert values[hyper_symbol("alpha_L")] == 1 and isinstance(spec.hyper["alpha_L"], int)
    assert values[size_symbol("N")] == 16


def test_spec_md_shape_keeps_working(tmp_path):
    """The original design example (specs/mlp_mup_relu.yaml) verbatim (with its data file) loads."""
    np.savez(tmp_path / "data.npz", X=np.ones((5, 3)), y=np.zeros(5))
    text = (ROOT / "specs" / "mlp_mup_relu.yaml").read_text()
    text = re.sub(r"synthetic: .*", "file: data.npz", text)
    spec = loads(text, base_dir=tmp_path)
    assert spec.data == DataFile(path=tmp_path / "data.npz")
    assert spec.sizes["P"] == 5 and spec.sizes["D"] == 3
    X, y = load_data(spec)
    assert X.shape == (5, 3) and y.shape == (5,) and X.dtype == np.float64


def test_mean_field_alias_and_null_bodies():
    text = (ROOT / "specs" / "mlp_mup_relu.yaml").read_text()
    text = text.replace("preset: mup ", "preset: mean_field ").replace("readout: {name: w}", "readout:")
    spec = loads(text)
    assert spec.parameterization.preset == "mup"
    assert spec.model[-1] == Readout(name="w")
    assert spec.raw["model"][-1] == {"readout": {}}


def test_defaults_when_optional_sections_missing():
    text = (ROOT / "specs" / "mlp_ntk_relu.yaml").read_text()
    spec = loads(text)
    assert spec.solver.samples == 4096 and spec.training.loss == "mse" and spec.training.optimizer == "gd"


def test_no_preset_needs_every_weight():
    text = (ROOT / "specs" / "mlp_ntk_relu.yaml").read_text()
    full = "{multiplier: 1, init_std: 1, lr: 1}"
    complete = text.replace(
        "parameterization: {preset: ntk}",
        f"parameterization:\n  preset: null\n  weights: {{W0: {full}, W1: {full}, w: {full}}}",
    )
    spec = loads(complete)
    assert spec.parameterization.preset is None
    assert set(spec.parameterization.overrides) == {"W0", "W1", "w"}
    partial = complete.replace(f"w: {full}", "w: {lr: 1}")
    with pytest.raises(Exception, match=r"missing w.multiplier, w.init_std"):
        loads(partial)


def test_weight_override_values():
    text = (ROOT / "specs" / "mlp_mup_relu.yaml").read_text()
    text = text.replace("preset: mup ", "preset: mup\n  weights: {w: {init_std: 0, lr: 2*gamma0}}\n ")
    spec = loads(text)
    override = spec.parameterization.overrides["w"]
    assert override.init_std == 0 and override.lr == 2 * hyper_symbol("gamma0") and override.multiplier is None
