"""The `model` section: ops in order, blocks nest.

Each op is a one-key mapping ``{kind: body}``; see `schema.OP_KEYS`. Beyond
the shape of each op, the model as a whole must end with exactly one readout
(top level, last), may pool over tokens once (top level, after every attention
op, and only with token data, which then needs it), and uses attention only
with token data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ..errors import Location
from . import checks as c
from .naming import assign_names, name_problems, with_default_names
from .schema import OP_KEYS, OP_REQUIRED, POOL_MODES
from .types import (
    ACTIVATIONS, Act, Attention, Dense, Expr, LayerNorm, Op, Pool, Readout, Repeat, Residual,
)  # fmt: skip
from .yamlpos import MapNode, Node, Scalar


#: names other libraries use for our ops (for the did-you-mean of an unknown op).
OP_SYNONYMS = {
    "activation": "act", "nonlinearity": "act", "relu": "act", "tanh": "act",
    "linear": "dense", "fc": "dense", "matmul": "dense",
    "ln": "layernorm", "layer_norm": "layernorm", "norm": "layernorm",
    "attn": "attention", "self_attention": "attention", "mha": "attention",
    "resblock": "residual", "skip": "residual", "loop": "repeat", "for": "repeat",
    "mean": "pool", "mean_pool": "pool", "output": "readout", "head": "readout",
}  # fmt: skip


@dataclass
class ModelInfo:
    """What the reader learns besides the ops: op key paths (for messages), the tokens flag.

    `tokens` is None when the data section has problems: token checks are skipped.
    """

    tokens: bool | None
    paths: dict[Location, str] = field(default_factory=dict)


def read_model(ctx: c.Ctx, node: Node | None, tokens: bool | None) -> tuple[Op, ...] | None:
    """The model ops with every weight named (see `naming`), or None after problems."""
    items = c.sequence(ctx, node, "model", "ops")
    if items is None:
        return None
    if not items:
        ctx.add(node, "model", "the model is empty", hint="add ops, ending with `- readout: {}`")
        return None
    info = ModelInfo(tokens)
    before = len(ctx.problems)
    ops = _ops(ctx, items, "model", info)
    done = [op for op in ops if op is not None]
    middle = len(ctx.problems)
    _structure(ctx, node, done, info)
    if len(ctx.problems) == middle:  # e.g. two readouts would also share the name w
        ctx.problems.extend(name_problems(with_default_names(done), info.paths))
    if len(ctx.problems) > before or len(done) < len(ops):
        return None
    return assign_names(done)


def _ops(ctx: c.Ctx, items: list[Node], path: str, info: ModelInfo) -> list[Op | None]:
    return [_op(ctx, item, c.join(path, i), info) for i, item in enumerate(items)]


def _op(ctx: c.Ctx, node: Node, path: str, info: ModelInfo) -> Op | None:
    if c.skip(node):
        return None
    if not isinstance(node, MapNode) or len(node.items) != 1:
        ctx.add(node, path, "expected one op: a mapping with one key", received=c.show(node),
                allowed=", ".join(OP_KEYS), hint="write e.g. `- dense: {out: N}` or `- act: relu`")
        return None
    key, body = node.items[0]
    if key.value not in OP_KEYS:
        known = OP_SYNONYMS.get(str(key.value).lower())
        hint = c.close_hint(key.value, OP_KEYS, "use one of the ops listed")
        hint = f"did you mean {known!r}?" if known else hint
        ctx.add(key, path, f"unknown op {key.value!r}", received=repr(key.value), allowed=", ".join(OP_KEYS),
                hint=hint)
        return None
    op_path = c.join(path, key.value)
    info.paths[node.loc] = op_path
    return _READERS[key.value](ctx, body, op_path, node.loc, info)


def _fields(ctx: c.Ctx, body: Node, path: str, kind: str) -> dict[str, Node] | None:
    return c.mapping(ctx, body, path, OP_KEYS[kind] or (), OP_REQUIRED.get(kind, ()))


def _name(ctx: c.Ctx, fields: dict[str, Node], path: str) -> str | None:
    node = fields.get("name")
    if node is None or (isinstance(node, Scalar) and node.tag == "null"):
        return None
    return c.identifier(ctx, node, c.join(path, "name"), "weight name")


def _expr(ctx: c.Ctx, fields: dict[str, Node], path: str, key: str, kind: str) -> Expr | None:
    """Parse fields[key] and check that its value at the finite sizes is a `kind`."""
    node = fields.get(key)
    expr = c.expression(ctx, node, c.join(path, key))
    if node is not None and expr is not None:
        c.valued(ctx, node, c.join(path, key), expr, kind)
    return expr


def _dense(ctx: c.Ctx, body: Node, path: str, pos: Location, info: ModelInfo) -> Op | None:
    fields = _fields(ctx, body, path, "dense")
    if fields is None:
        return None
    out = _expr(ctx, fields, path, "out", "count")
    name = _name(ctx, fields, path)
    return None if out is None else Dense(out=out, name=name, pos=pos)


def _act(ctx: c.Ctx, body: Node, path: str, pos: Location, info: ModelInfo) -> Op | None:
    fn = c.choice(ctx, body, path, ACTIVATIONS, "activation")
    return None if fn is None else Act(fn=fn, pos=pos)


def _repeat(ctx: c.Ctx, body: Node, path: str, pos: Location, info: ModelInfo) -> Op | None:
    fields = _fields(ctx, body, path, "repeat")
    if fields is None:
        return None
    times = _expr(ctx, fields, path, "times", "count0")
    ops = _block(ctx, fields.get("body"), c.join(path, "body"), info)
    index = _index(ctx, fields.get("index"), c.join(path, "index"))
    if times is None or ops is None or index is None:
        return None
    return Repeat(times=times, body=ops, index=index, pos=pos)


def _index(ctx: c.Ctx, node: Node | None, path: str) -> str | None:
    if node is None or (isinstance(node, Scalar) and node.tag == "null"):
        return "ell"
    name = c.identifier(ctx, node, path, "layer index")
    if name is not None and name in ctx.symbols:
        ctx.add(node, path, f"layer index {name!r} is also a declared size or hyperparameter",
                received=repr(name), hint="choose another name, e.g. ell")
        return None
    return name


def _block(ctx: c.Ctx, node: Node | None, path: str, info: ModelInfo) -> tuple[Op, ...] | None:
    items = c.sequence(ctx, node, path, "ops")
    if items is None:
        return None
    if not items:
        ctx.add(node, path, "empty block", hint="add at least one op")
        return None
    ops = _ops(ctx, items, path, info)
    return None if any(op is None for op in ops) else tuple(ops)  # type: ignore[arg-type]


def _residual(ctx: c.Ctx, body: Node, path: str, pos: Location, info: ModelInfo) -> Op | None:
    fields = _fields(ctx, body, path, "residual")
    if fields is None:
        return None
    scale = _expr(ctx, fields, path, "scale", "positive")
    branch = _block(ctx, fields.get("branch"), c.join(path, "branch"), info)
    if scale is None or branch is None:
        return None
    return Residual(scale=scale, branch=branch, pos=pos)


def _layernorm(ctx: c.Ctx, body: Node, path: str, pos: Location, info: ModelInfo) -> Op | None:
    return None if _fields(ctx, body, path, "layernorm") is None else LayerNorm(pos=pos)


def _attention(ctx: c.Ctx, body: Node, path: str, pos: Location, info: ModelInfo) -> Op | None:
    fields = _fields(ctx, body, path, "attention")
    if fields is None:
        return None
    heads = _expr(ctx, fields, path, "heads", "count")
    key_dim = _expr(ctx, fields, path, "key_dim", "count")
    logit_scale = _expr(ctx, fields, path, "logit_scale", "positive")
    name = _name(ctx, fields, path)
    if info.tokens is False:
        ctx.add(pos, path, "attention needs token data", received="data without tokens",
                hint="use token data: X of shape (P, S, D), or data.synthetic with S")
        return None
    if heads is None or key_dim is None or logit_scale is None:
        return None
    return Attention(heads=heads, key_dim=key_dim, logit_scale=logit_scale, name=name, pos=pos)


def _pool(ctx: c.Ctx, body: Node, path: str, pos: Location, info: ModelInfo) -> Op | None:
    mode = c.choice(ctx, body, path, POOL_MODES, "pooling")
    return None if mode is None else Pool(mode=mode, pos=pos)


def _readout(ctx: c.Ctx, body: Node, path: str, pos: Location, info: ModelInfo) -> Op | None:
    fields = _fields(ctx, body, path, "readout")
    if fields is None:
        return None
    return Readout(name=_name(ctx, fields, path), pos=pos)


_READERS: dict[str, Callable[[c.Ctx, Node, str, Location, ModelInfo], Op | None]] = {
    "dense": _dense,
    "act": _act,
    "repeat": _repeat,
    "residual": _residual,
    "layernorm": _layernorm,
    "attention": _attention,
    "pool": _pool,
    "readout": _readout,
}


# -------------------------------------------------------------------- structure
def _structure(ctx: c.Ctx, node: Node | None, ops: list[Op], info: ModelInfo) -> None:
    """Whole-model rules: one readout, last; at most one pool, where tokens need it."""
    _readout_rule(ctx, node, ops, info)
    _pool_rule(ctx, node, ops, info)


def _nested(ops: list[Op] | tuple[Op, ...]) -> list[Op]:
    """Ops inside repeat and residual bodies (not the top level)."""
    inner: list[Op] = []
    for op in ops:
        body = op.body if isinstance(op, Repeat) else op.branch if isinstance(op, Residual) else ()
        inner += [*body, *_nested(body)]
    return inner


def _readout_rule(ctx: c.Ctx, node: Node | None, ops: list[Op], info: ModelInfo) -> None:
    for op in _nested(ops):
        if isinstance(op, Readout):
            ctx.add(op.pos, info.paths.get(op.pos, "model"), "a readout inside a block",
                    hint="move the readout to the end of the top-level model")
    top = [op for op in ops if isinstance(op, Readout)]
    if not top and not any(isinstance(op, Readout) for op in _nested(ops)):
        ctx.add(node, "model", "the model has no readout", hint="end the model with `- readout: {}`")
    for op in top[1:]:
        ctx.add(op.pos, info.paths.get(op.pos, "model"), "a second readout: the model has one scalar output",
                received=f"{len(top)} readouts", allowed="exactly one, as the last op", hint="remove it")
    if len(top) == 1 and ops[-1] is not top[0]:
        ctx.add(top[0].pos, info.paths.get(top[0].pos, "model"), "the readout must be the last op",
                hint="move it to the end of the model")


def _pool_rule(ctx: c.Ctx, node: Node | None, ops: list[Op], info: ModelInfo) -> None:
    for op in _nested(ops):
        if isinstance(op, Pool):
            ctx.add(op.pos, info.paths.get(op.pos, "model"), "pooling inside a block",
                    hint="pool once, at the top level, before the readout")
    pools = [i for i, op in enumerate(ops) if isinstance(op, Pool)]
    for i in pools[1:]:
        ctx.add(ops[i].pos, info.paths.get(ops[i].pos, "model"), "a second pool", hint="remove it")
    if pools and info.tokens is False:
        op = ops[pools[0]]
        ctx.add(op.pos, info.paths.get(op.pos, "model"), "pooling over tokens needs token data",
                received="data without tokens", hint="remove `pool`, or use data with tokens (S)")
    if not pools and info.tokens:
        ctx.add(node, "model", "token data need `- pool: mean` before the readout",
                hint="add `- pool: mean` before `- readout`")
    if pools:
        _attention_after_pool(ctx, ops, pools[0], info)


def _attention_after_pool(ctx: c.Ctx, ops: list[Op], pool: int, info: ModelInfo) -> None:
    for op in ops[pool + 1 :]:
        for inner in (op, *_nested([op])):
            if isinstance(inner, Attention):
                ctx.add(inner.pos, info.paths.get(inner.pos, "model"), "attention after pooling",
                        hint="pool after the last attention op")
