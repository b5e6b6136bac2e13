"""`data: {dataset: ...}`: scikit-learn's bundled digits, two classes, without a download.

The arrays follow the documented recipe (one permutation of the two classes' images from
default_rng(seed); the first P train, the next `test` are held out; y = +1 / -1; standardize with the
training points' statistics), and every refusal names what is wrong and the fix. scikit-learn is the
`data` extra: without it the spec is refused at load (exit 1) with the extra to install.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from dmftc import budget
from dmftc.cli import main
from dmftc.errors import SpecError
from dmftc.spec import Dataset, json_schema, load, load_data, load_test, loads
from dmftc.spec import data as data_module

from spec_texts import BASE

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "specs" / "mlp_digits.yaml"
#: CI installs the test extra, which has scikit-learn; elsewhere these tests are skipped
needs_sklearn = pytest.mark.skipif(importlib.util.find_spec("sklearn") is None,
                                   reason="needs scikit-learn (pip install 'dmftc[data]')")

DIGITS = "{name: digits, classes: [3, 8], P: 64, test: 64, seed: 0, preprocess: standardize}"


def spec_with(dataset: str = DIGITS, filename: str = "x.yaml"):
    """BASE with `data: {dataset: <dataset>}` (a YAML flow mapping)."""
    text = BASE.replace("  synthetic: {P: 4, D: 8, target: tanh_linear, seed: 0}", f"  dataset: {dataset}")
    return loads(text, filename)


def problems(dataset: str):
    with pytest.raises(SpecError) as err:
        spec_with(dataset)
    return err.value.problems


def reference(classes=(3, 8), P=64, test=64, seed=0):
    """The documented recipe, written out independently: indices of the training and held-out images."""
    from sklearn.datasets import load_digits

    X, labels = load_digits(return_X_y=True)
    where = np.flatnonzero(np.isin(labels, classes))
    order = where[np.random.default_rng(seed).permutation(where.size)]
    return X, labels, order[:P], order[P:P + test]


# ------------------------------------------------------------------ the arrays
@needs_sklearn
def test_the_arrays_follow_the_recipe():
    spec = spec_with()
    assert spec.data == Dataset(name="digits", classes=(3, 8), P=64, test=64, seed=0, preprocess="standardize")
    assert spec.sizes["P"] == 64 and spec.sizes["D"] == 64 and "S" not in spec.sizes
    (X, y), (Xt, yt) = load_data(spec), load_test(spec)
    assert X.shape == Xt.shape == (64, 64) and y.shape == yt.shape == (64,)
    assert X.dtype == y.dtype == Xt.dtype == np.float64
    raw, labels, train, held = reference()
    assert not set(train) & set(held)                                   # disjoint
    np.testing.assert_array_equal(y, np.where(labels[train] == 3, 1.0, -1.0))
    np.testing.assert_array_equal(yt, np.where(labels[held] == 3, 1.0, -1.0))
    assert set(y) == set(yt) == {1.0, -1.0}
    mean, std = raw[train].mean(axis=0), raw[train].std(axis=0)
    scale = np.where(std > 0, 1 / np.where(std > 0, std, 1), 0.0)
    np.testing.assert_allclose(X, (raw[train] - mean) * scale, atol=1e-12)
    np.testing.assert_allclose(Xt, (raw[held] - mean) * scale, atol=1e-12)   # the training points' transform


@needs_sklearn
def test_standardize_centres_and_scales_over_the_training_points():
    X, _ = load_data(spec_with())
    Xt, _ = load_test(spec_with())
    np.testing.assert_allclose(X.mean(axis=0), 0.0, atol=1e-12)
    std = X.std(axis=0)
    constant = std < 1e-12
    assert constant.any() and not constant.all()                        # blank border pixels exist
    np.testing.assert_allclose(std[~constant], 1.0)
    assert not X[:, constant].any() and not Xt[:, constant].any()      # left at 0, held-out points too
    assert abs(Xt.mean()) < 0.5 and not np.allclose(Xt.std(axis=0)[~constant], 1.0)   # not re-standardized


@needs_sklearn
@pytest.mark.parametrize("preprocess, scale", [("unit", 1 / 16), ("none", 1.0)])
def test_unit_and_none(preprocess, scale):
    spec = spec_with(DIGITS.replace("standardize", preprocess))
    raw, _, train, held = reference()
    np.testing.assert_array_equal(load_data(spec)[0], raw[train] * scale)
    np.testing.assert_array_equal(load_test(spec)[0], raw[held] * scale)
    assert load_data(spec)[0].max() <= 16 * scale


@needs_sklearn
def test_the_defaults_and_determinism_by_seed():
    spec = spec_with("{name: digits, classes: [8, 3], P: 10}")
    assert spec.data.test == 0 and spec.data.seed == 0 and spec.data.preprocess == "standardize"
    assert load_test(spec) is None
    _, labels, train, _ = reference(classes=(8, 3), P=10, test=0)
    np.testing.assert_array_equal(load_data(spec)[1], np.where(labels[train] == 8, 1.0, -1.0))   # first class: +1
    again = spec_with("{name: digits, classes: [8, 3], P: 10}")
    other = spec_with("{name: digits, classes: [8, 3], P: 10, seed: 1}")
    np.testing.assert_array_equal(load_data(spec)[0], load_data(again)[0])
    assert not np.array_equal(load_data(spec)[0], load_data(other)[0])


@needs_sklearn
def test_every_image_of_the_two_classes_can_be_used():
    n = int(np.isin(reference()[1], (3, 8)).sum())
    spec = spec_with(f"{{name: digits, classes: [3, 8], P: {n - 5}, test: 5}}")
    assert load_data(spec)[0].shape == (n - 5, 64) and load_test(spec)[0].shape == (5, 64)


# ------------------------------------------------------------------ refusals
@pytest.mark.parametrize("dataset, path, words", [
    ("{name: mnist, classes: [3, 8], P: 8}", "data.dataset.name", ["unknown dataset 'mnist'", "digits"]),
    ("{name: digits, classes: [3], P: 8}", "data.dataset.classes", ["1 class", "two classes"]),
    ("{name: digits, classes: [], P: 8}", "data.dataset.classes", ["0 classes", "two classes"]),
    ("{name: digits, classes: [3, 8, 1], P: 8}", "data.dataset.classes",
     ["3 classes need 3 outputs", "engine does not have yet", "give two classes"]),
    ("{name: digits, classes: [3, 10], P: 8}", "data.dataset.classes[1]", ["class 10 is out of range", "0..9"]),
    ("{name: digits, classes: [-1, 8], P: 8}", "data.dataset.classes[0]", ["integer", ">= 0"]),
    ("{name: digits, classes: [3, 3], P: 8}", "data.dataset.classes", ["the two classes are the same (3)"]),
    ("{name: digits, classes: 3, P: 8}", "data.dataset.classes", ["expected a list"]),
    ("{name: digits, classes: [3, 8], P: 8, preprocess: whiten}", "data.dataset.preprocess",
     ["unknown preprocess 'whiten'", "standardize, unit, none"]),
    ("{name: digits, classes: [3, 8], P: 0}", "data.dataset.P", ["positive integer"]),
    ("{name: digits, classes: [3, 8], P: 8, test: -1}", "data.dataset.test", [">= 0"]),
    ("{name: digits, classes: [3, 8], P: 8, seed: 4294967296}", "data.dataset.seed", ["seed out of range"]),
    ("{classes: [3, 8], P: 8}", "data.dataset.name", ["missing key 'name'", "name: digits"]),
    ("{name: digits, P: 8}", "data.dataset.classes", ["missing key 'classes'", "classes: [3, 8]"]),
    ("{name: digits, classes: [3, 8]}", "data.dataset.P", ["missing key 'P'", "P: 64"]),
    ("{name: digits, classes: [3, 8], P: 8, size: 3}", "data.dataset.size", ["unknown key 'size'"]),
])  # fmt: skip
def test_refusals_name_what_is_wrong(dataset, path, words):
    (problem,) = problems(dataset)
    assert problem.path == path
    shown = f"{problem.message} | {problem.received} | {problem.allowed} | {problem.hint}"
    for word in words:
        assert word in shown, shown


@needs_sklearn
def test_too_many_points_are_refused_with_the_figure():
    n = int(np.isin(reference()[1], (3, 8)).sum())
    (problem,) = problems(f"{{name: digits, classes: [3, 8], P: {n - 10}, test: 11}}")
    assert problem.path == "data.dataset.P"
    assert f"P + test = {n - 10} + 11 = {n + 1} is more than the {n} images of classes 3 and 8" in problem.message
    assert problem.allowed == f"P + test <= {n}"


def test_two_data_sources_are_refused():
    text = BASE.replace("seed: 0}", f"seed: 0}}\n  dataset: {DIGITS}")
    with pytest.raises(SpecError) as err:
        loads(text)
    (problem,) = err.value.problems
    assert "give exactly one of file, synthetic and dataset" in problem.message


@needs_sklearn
def test_a_model_that_needs_tokens_is_refused():
    text = (ROOT / "specs" / "transformer_mup.yaml").read_text()
    with pytest.raises(SpecError) as err:
        loads(text, overrides=[f"data={{dataset: {DIGITS}}}"])
    messages = " | ".join(p.message for p in err.value.problems)
    assert "attention needs token data" in messages


def test_without_scikit_learn_the_spec_names_the_extra(monkeypatch, capsys):
    monkeypatch.setattr(data_module, "_DATASETS", {})
    monkeypatch.setitem(sys.modules, "sklearn", None)          # import sklearn... raises ImportError
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    (problem,) = problems(DIGITS)
    assert problem.path == "data.dataset.name"
    assert "scikit-learn, which is not installed" in problem.message and "dmftc[data]" in problem.hint
    assert main(["analyze", str(EXAMPLE)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "dmftc[data]" in err
    with pytest.raises(SpecError, match="not installed"):   # arrays asked for later: the same message
        data_module.dataset_data(Dataset(name="digits", classes=(3, 8), P=4))


# ------------------------------------------------------------------ the example, the schema, the budget
@needs_sklearn
def test_the_example_loads_without_warnings():
    spec = load(EXAMPLE)
    assert spec.warnings == ()
    assert spec.data.classes == (3, 8) and spec.data.P == 64 and spec.data.test == 64
    assert spec.training.batches is not None and spec.training.batches.size == 16
    assert budget.data_shape(spec) == (64, 64)
    assert spec.raw["data"] == {"dataset": {"name": "digits", "classes": [3, 8], "P": 64, "test": 64, "seed": 0,
                                            "preprocess": "standardize"}}


def test_the_schema_describes_the_dataset():
    jsonschema = pytest.importorskip("jsonschema")
    check = jsonschema.Draft202012Validator(json_schema())
    document = {"dataset": {"name": "digits", "classes": [3, 8], "P": 64}}
    assert check.is_valid({**_plain_example(), "data": document})
    for bad in ({"classes": [3, 8, 1]}, {"classes": [3, 3]}, {"classes": [3, 10]}, {"name": "mnist"},
                {"preprocess": "whiten"}, {"P": 0}):
        assert not check.is_valid({**_plain_example(), "data": {"dataset": {**document["dataset"], **bad}}}), bad


def _plain_example():
    import yaml

    return yaml.safe_load(BASE)
