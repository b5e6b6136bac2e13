"""The JSON Schema of the format, and the deterministic training data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dmftc.spec import Synthetic, json_schema, load, load_data, loads
from dmftc.spec.yamlpos import compose, to_plain

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "specs").glob("*.yaml"))


def plain(path: Path):
    tree, _ = compose(path.read_text(), str(path))
    return to_plain(tree)


def validator():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_schema_is_json():
    schema = json.loads(json.dumps(json_schema()))
    assert schema["$schema"].endswith("2020-12/schema")


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_schema_accepts_examples(path):
    check = validator()
    check.validate(plain(path))
    check.validate(load(path).raw)


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d.update(extra=1),
        lambda d: d.pop("model"),
        lambda d: d["model"].append({"act": "rleu"}),
        lambda d: d["model"].append({"dense": {"out": "N", "nmae": "x"}}),
        lambda d: d["sizes"].update(N=0),
        lambda d: d.update(name="3x"),
        lambda d: d["parameterization"].update(preset="nope"),
        lambda d: d["data"].update(file="x.npz"),  # both file and synthetic
        lambda d: d["solver"].update(damping=2),
    ],
)
def test_schema_rejects_bad_documents(edit):
    check = validator()
    document = plain(ROOT / "specs" / "mlp_mup_relu.yaml")
    edit(document)
    assert not check.is_valid(document)


# ------------------------------------------------------------------------ data
def reference(data: Synthetic):
    """The documented recipe, written out independently."""
    rng = np.random.default_rng(data.seed)
    X = rng.standard_normal((data.P, data.D) if data.S is None else (data.P, data.S, data.D))
    beta = rng.standard_normal(data.D)
    Xbar = X if data.S is None else X.mean(axis=1)
    z = Xbar @ beta / np.sqrt(data.D)
    y = {"linear": z, "tanh_linear": np.tanh(z), "sign_linear": np.sign(z)}.get(data.target)
    return X, (rng.standard_normal(data.P) if y is None else y)


@pytest.mark.parametrize("target", ["linear", "tanh_linear", "sign_linear", "random"])
@pytest.mark.parametrize("S", [None, 3])
def test_synthetic_data_follow_the_recipe(target, S):
    text = (ROOT / "specs" / "transformer_mup.yaml").read_text() if S else (ROOT / "specs" / "mlp_ntk_relu.yaml").read_text()
    overrides = [f"data.synthetic.target={target}", "data.synthetic.seed=3"]
    if S:
        overrides += ["data.synthetic.S=3", "sizes.S=3"]
    spec = loads(text, overrides=overrides)
    X, y = load_data(spec)
    X_ref, y_ref = reference(spec.data)
    assert X.dtype == y.dtype == np.float64
    assert X.shape == ((8, 16) if S is None else (8, 3, 16)) and y.shape == (8,)
    np.testing.assert_array_equal(X, X_ref)
    np.testing.assert_array_equal(y, y_ref)
    X2, y2 = load_data(spec)
    np.testing.assert_array_equal(y, y2)  # deterministic


def test_token_file_data(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "tokens.npz", X=rng.standard_normal((6, 4, 5)).astype(np.float32), y=np.arange(6))
    text = (ROOT / "specs" / "transformer_mup.yaml").read_text().replace(
        "synthetic: {P: 8, S: 4, D: 16, target: tanh_linear, seed: 0}", "file: tokens.npz"
    )
    spec = loads(text, base_dir=tmp_path)
    assert spec.sizes["P"] == 6 and spec.sizes["S"] == 4 and spec.sizes["D"] == 5
    X, y = load_data(spec)
    assert X.dtype == np.float64 and X.shape == (6, 4, 5) and y.tolist() == list(range(6))
