"""The `Scaling` record: JSON contract of `dmftc analyze --json`, check(), determinism, specs/."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sympy
from scaling_specs import L, mlp, transformer

from dmftc.errors import LimitError
from dmftc.scaling import REGIMES, analyze
from dmftc.spec.types import WeightOverride

ROOT = Path(__file__).resolve().parents[2]


def test_json_contract():
    sc = analyze(transformer(1.0))
    obj = json.loads(json.dumps(sc.to_json()))
    assert obj["regime"] in REGIMES and obj["limit"] == ["N"] and obj["heads"] == "collapse"
    assert all(isinstance(r, str) and r.endswith(".") for r in obj["reasons"])
    assert obj["exponents"]["logit:attn0"] == {"N": -0.5}
    assert obj["exponents"]["f0"] == {"N": -0.5} and obj["exponents"]["df@trained"] == {"N": 0}
    names = set(obj["exponents"])
    for w in ("embed", "attn0_K", "attn0_Q", "attn0_V", "attn0_O", "W1", "W2", "w"):
        for kind in ("fwd", "bwd", "dW", "dfwd"):
            assert {f"{kind}:{w}", f"{kind}:{w}@trained"} <= names
    assert {"branch:n2_residual", "dbranch:n5_residual@trained", "dlogit:attn0"} <= names
    assert set(obj["terms"]["attn0_K"]) == {"source", "update", "response", "bsource", "bupdate", "bresponse"}
    assert obj["terms"]["output"] == {"f0": {"N": -0.5}, "df": {"N": 0}}


def test_absent_changes_are_null_in_json():
    frozen = mlp("mup", overrides={"W1": WeightOverride(lr=sympy.Integer(0))})
    obj = json.loads(json.dumps(analyze(frozen).to_json()))
    assert obj["exponents"]["dW:W1"] == {"N": None}


def test_check_catches_an_inconsistent_record():
    sc = analyze(mlp("mup"))
    sc.check()
    with pytest.raises(ValueError, match="does not match df@trained"):
        dataclasses.replace(sc, regime="trivial").check()
    with pytest.raises(ValueError, match="unstable without a reason"):
        dataclasses.replace(sc, regime="unstable", reasons=()).check()
    with pytest.raises(ValueError, match="not one of"):
        dataclasses.replace(sc, regime="chaotic").check()


def test_ill_posed_depth_limit_of_a_plain_repeat():
    """A non-residual repeat whose count grows: each copy must map exponents to themselves."""
    shrinking = mlp("mup", limit=("L",), overrides={"W1": WeightOverride(multiplier=1 / sympy.sqrt(L * 64))})
    sc = analyze(shrinking)
    assert sc.regime == "unstable"
    assert "the depth limit is ill-posed" in sc.reasons[0] and "L^-1/2" in sc.reasons[0]
    assert analyze(mlp("mup", limit=("L",))).regime == "feature_learning"


def test_no_limit_is_an_error():
    with pytest.raises(LimitError, match="limit"):
        analyze(dataclasses.replace(mlp("mup"), limit=()))


def test_deterministic_across_hash_seeds():
    code = ("import sys; sys.path.insert(0, %r); from scaling_specs import transformer; "
            "import json; from dmftc.scaling import analyze; "
            "print(json.dumps(analyze(transformer(0.5, limit=('N', 'H'))).to_json(), sort_keys=True))"
            % str(Path(__file__).parent))
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("0", "1")}
    assert len(outs) == 1


def test_layering_scaling_imports_only_earlier_stages():
    for path in (ROOT / "dmftc" / "scaling").glob("*.py"):
        text = path.read_text()
        for later in ("dmft", "codegen", "runtime", "simulate", "crosscheck", "blocks", "cli"):
            assert f"from ..{later}" not in text and f"dmftc.{later}" not in text, (path.name, later)


EXPECTED = {"mlp_mup_linear": "feature_learning", "mlp_mup_relu": "feature_learning",
            "mlp_mup_tanh": "feature_learning", "mlp_ntk_erf": "lazy", "mlp_ntk_relu": "lazy",
            "mlp_sp_relu": "unstable", "transformer_mup": "feature_learning",
            "transformer_heads": "feature_learning", "transformer_sqrtN": "unstable"}


@pytest.mark.parametrize("path", sorted((ROOT / "specs").glob("*.yaml")), ids=lambda p: p.stem)
def test_example_specs(path):
    load = pytest.importorskip("dmftc.spec").__dict__.get("load")
    if load is None:
        pytest.skip("dmftc.spec.load does not exist yet")
    sc = analyze(load(path))
    sc.check()
    if path.stem in EXPECTED:
        assert sc.regime == EXPECTED[path.stem], sc.reasons
    if path.stem.startswith("transformer"):
        assert sc.heads in (None, "collapse", "diverse")
