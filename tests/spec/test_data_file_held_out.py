"""Held-out points in a data file: arrays X_test and y_test beside X and y."""

from __future__ import annotations

import numpy as np
import pytest

from dmftc.errors import SpecError
from dmftc.spec import load_test, loads

SPEC = """dmftc: 1
name: held_out
sizes: {N: 64}
hyper: {gamma0: 1.0, eta: 0.5}
model: [{dense: {out: N}}, {act: relu}, {readout: {}}]
parameterization: {preset: mup}
limit: {N: inf}
training: {lr: eta, steps: 3}
data: {file: d.npz}
"""


def _spec(tmp_path, **arrays):
    np.savez(tmp_path / "d.npz", **arrays)
    return loads(SPEC, "held_out.yaml", base_dir=tmp_path)


def test_held_out_arrays_are_read_and_counted(tmp_path):
    rng = np.random.default_rng(0)
    spec = _spec(tmp_path, X=rng.standard_normal((6, 3)), y=rng.standard_normal(6),
                 X_test=rng.standard_normal((4, 3)), y_test=rng.standard_normal(4))
    assert spec.data.test == 4 and spec.sizes["P"] == 6
    X_test, y_test = load_test(spec)
    assert X_test.shape == (4, 3) and y_test.shape == (4,)


def test_a_file_without_held_out_points_has_none(tmp_path):
    spec = _spec(tmp_path, X=np.ones((5, 2)), y=np.ones(5))
    assert spec.data.test == 0 and load_test(spec) is None


@pytest.mark.parametrize("arrays, words", [
    (dict(X_test=np.ones((2, 3))), "has X_test but no y_test"),
    (dict(X_test=np.ones((2, 4)), y_test=np.ones(2)), "X_test has shape (2, 4); expected (Q, 3)"),
    (dict(X_test=np.ones((2, 3)), y_test=np.ones(3)), "y_test has shape (3,); expected (2,)"),
    (dict(X_test=np.full((2, 3), np.nan), y_test=np.ones(2)), "X_test has non-finite entries"),
])
def test_bad_held_out_arrays_are_refused(tmp_path, arrays, words):
    with pytest.raises(SpecError, match=words.replace("(", r"\(").replace(")", r"\)")):
        _spec(tmp_path, X=np.ones((5, 3)), y=np.ones(5), **arrays)
