"""The JSON Schema of the format, and the deterministic training data."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from dmftc.errors import SpecError
from dmftc.spec import Synthetic, json_schema, load, load_data, loads
from dmftc.spec.data import teacher_attention
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
    text = re.sub(r"synthetic: \{[^}]*\}", "file: tokens.npz", (ROOT / "specs" / "transformer_mup.yaml").read_text())
    spec = loads(text, base_dir=tmp_path)
    assert spec.sizes["P"] == 6 and spec.sizes["S"] == 4 and spec.sizes["D"] == 5
    X, y = load_data(spec)
    assert X.dtype == np.float64 and X.shape == (6, 4, 5) and y.tolist() == list(range(6))


# ------------------------------------------------------- teacher_attention target
def token_spec(seed=0, more=()):
    """transformer_mup (P=8, S=4, D=16) with target teacher_attention."""
    text = (ROOT / "specs" / "transformer_mup.yaml").read_text()
    overrides = ["data.synthetic.target=teacher_attention", f"data.synthetic.seed={seed}", *more]
    return loads(text, overrides=overrides)


def attention_reference(X, beta, C):
    """The documented formula, one sequence and one token at a time."""
    P, S, D = X.shape
    y = np.empty(P)
    for mu in range(P):
        logits = np.array([2.0 * X[mu, 0] @ C @ X[mu, s] / D for s in range(S)])
        a = np.exp(logits) / np.exp(logits).sum()
        y[mu] = np.tanh(sum(a[s] * (beta @ X[mu, s]) / np.sqrt(D) for s in range(S)))
    return y


def teacher_draws(data: Synthetic):
    rng = np.random.default_rng(data.seed)
    X = rng.standard_normal((data.P, data.S, data.D))
    beta = rng.standard_normal(data.D)
    return X, beta, rng.standard_normal((data.D, data.D))


def test_teacher_attention_follows_the_recipe_and_is_deterministic():
    spec = token_spec(seed=3)
    X, y = load_data(spec)
    X_ref, beta, C = teacher_draws(spec.data)
    assert X.shape == (8, 4, 16) and y.shape == (8,) and y.dtype == np.float64
    np.testing.assert_array_equal(X, X_ref)
    np.testing.assert_allclose(y, attention_reference(X_ref, beta, C), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(y, load_data(token_spec(seed=3))[1])  # same seed, same target
    assert not np.allclose(y, load_data(token_spec(seed=4))[1])
    assert np.all(np.abs(y) < 1) and np.sqrt(np.mean(y**2)) > 0.1  # not degenerate


def test_teacher_attention_depends_on_token_order_not_only_the_mean():
    spec = token_spec(seed=1)
    X, y = load_data(spec)
    _, beta, C = teacher_draws(spec.data)
    swapped = X[:, [1, 0, 2, 3], :]  # another token becomes the query; same tokens, same mean
    np.testing.assert_array_equal(swapped.mean(axis=1), X.mean(axis=1))
    y_swapped = teacher_attention(swapped, beta, C)
    assert y_swapped.shape == (8,)
    assert np.all(np.abs(y_swapped - y) > 1e-6)  # every sample's target moves
    # the token-mean target cannot tell the two apart
    z = X.mean(axis=1) @ beta / np.sqrt(16)
    np.testing.assert_allclose(np.tanh(swapped.mean(axis=1) @ beta / np.sqrt(16)), np.tanh(z))
    # the query is the first token: reordering the keys alone leaves y unchanged
    np.testing.assert_allclose(teacher_attention(X[:, [0, 3, 1, 2], :], beta, C), y, rtol=1e-12)


def test_teacher_attention_weights_are_not_uniform():
    X, _, C = teacher_draws(Synthetic(P=200, D=16, S=4, target="teacher_attention", seed=0))
    logits = 2.0 * np.einsum("pi,ij,psj->ps", X[:, 0], C, X) / 16
    a = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert a.max(axis=1).mean() > 0.5  # uniform would be 0.25


def test_teacher_attention_on_flat_data_is_a_spec_error(tmp_path):
    text = (ROOT / "specs" / "mlp_mup_relu.yaml").read_text()
    assert "target: tanh_linear" in text
    path = tmp_path / "flat.yaml"
    path.write_text(text.replace("target: tanh_linear", "target: teacher_attention"))
    with pytest.raises(SpecError) as info:
        load(path)
    (problem,) = info.value.problems
    line = next(i for i, row in enumerate(path.read_text().splitlines(), 1) if "teacher_attention" in row)
    assert problem.location.file == str(path) and problem.location.line == line
    assert problem.path == "data.synthetic.target"
    assert "needs token data" in problem.message and "no S" in problem.message
    assert "S: 4" in problem.hint and "tanh_linear" in problem.hint
    assert f"{path}:{line}:" in info.value.render()


def test_teacher_attention_needs_two_tokens():
    with pytest.raises(SpecError) as info:
        token_spec(more=["data.synthetic.S=1", "sizes.S=1"])
    (problem,) = info.value.problems
    assert problem.path == "data.synthetic.target" and "at least 2 tokens" in problem.message


def test_schema_knows_teacher_attention():
    check = validator()
    synthetic = json_schema()["properties"]["data"]["oneOf"][1]["properties"]["synthetic"]
    assert "teacher_attention" in synthetic["properties"]["target"]["enum"]
    tokens = plain(ROOT / "specs" / "transformer_mup.yaml")
    tokens["data"]["synthetic"]["target"] = "teacher_attention"
    check.validate(tokens)
    flat = plain(ROOT / "specs" / "mlp_mup_relu.yaml")
    flat["data"]["synthetic"]["target"] = "teacher_attention"
    assert not check.is_valid(flat)
    tokens["data"]["synthetic"]["S"] = 1
    assert not check.is_valid(tokens)
