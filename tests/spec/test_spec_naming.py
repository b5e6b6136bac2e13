"""The weight naming rule downstream stages rely on."""

from __future__ import annotations

import pytest
import sympy

from dmftc.errors import SpecError
from dmftc.spec import Act, Attention, Dense, LayerNorm, Readout, Repeat, Residual, assign_names, weight_names

N = sympy.Symbol("N")


def dense(name=None):
    return Dense(out=N, name=name)


def attention(name=None):
    return Attention(heads=N, key_dim=N, logit_scale=1 / N, name=name)


def test_dense_counts_all_dense_ops_templates_once():
    ops = (
        dense("embed"),  # index 0, keeps its name
        Act("relu"),
        Repeat(times=N, body=(Residual(scale=1 / N, branch=(LayerNorm(), dense())),  # W1
                              dense("mix"), dense())),  # W3  # fmt: skip
        dense(),  # W4
        Readout(),
    )
    named = assign_names(ops)
    assert weight_names(named) == ["embed", "W1", "mix", "W3", "W4", "w"]
    assert named[2].body[0].branch[1].name == "W1"


def test_attention_names_and_parts():
    ops = (dense(), Residual(scale=N, branch=(attention(),)), attention("cross"), attention(), Readout("out"))
    assert weight_names(ops) == [
        "W0",
        "attn0_K", "attn0_Q", "attn0_V", "attn0_O",
        "cross_K", "cross_Q", "cross_V", "cross_O",
        "attn2_K", "attn2_Q", "attn2_V", "attn2_O",
        "out",
    ]  # fmt: skip


def test_assign_names_is_idempotent_and_pure():
    ops = (dense(), Act("tanh"), Readout())
    once = assign_names(ops)
    assert assign_names(once) == once
    assert ops[0].name is None  # the input is untouched


@pytest.mark.parametrize(
    "ops",
    [
        (dense("W1"), dense(), Readout()),  # the second dense defaults to W1
        (dense("w"), Readout()),  # the readout defaults to w
        (dense("a_K"), attention("a"), Readout()),
        (dense("not-an-id"), Readout()),
        (dense("lambda"), Readout()),
    ],
)
def test_bad_names_raise(ops):
    with pytest.raises(SpecError):
        assign_names(ops)
