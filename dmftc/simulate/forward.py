"""The forward pass of a `Network`: walk its layers, calling each block's finite `forward`.

`apply(net, params, x, taps, numbers)` returns f (P,) and every tapped activation by name:
- "out:<param key>": the output of that weight's op (dense preactivation m W x, the
  readout f, attention "out:<name>_K[i]" keys, _Q queries, _V values, _O projected output);
- "logits:<attention name>[i]": (P, H, S, S) logits, softmax over the last axis;
- "branch:<residual layer id>": scale * branch(h);
- "stream:<l>": the residual stream at site l.
A tap array in `taps` under one of these names is added to that activation (a zero
perturbation whose gradient is df/d(activation): the backward fields). `numbers` are the
network's real constants (`Network.numbers()`, possibly traced); by default its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import jax

from ..blocks import BLOCKS
from ..blocks.attention import PARTS
from .network import Layer, Network

Params = Mapping[str, jax.Array]


def apply(net: Network, params: Params, x: jax.Array, taps: Mapping[str, jax.Array] | None = None,
          numbers: Mapping[str, jax.Array | float] | None = None) -> tuple[jax.Array, dict[str, jax.Array]]:
    """f (P,) and the dict of tapped activations of the network on inputs x."""
    ctx = _Ctx(params, net.numbers() if numbers is None else numbers, taps or {}, {})
    return run(net.layers, h=x, ctx=ctx), ctx.acts


@dataclass(frozen=True)
class _Ctx:
    """What every layer reads: weights, constants, taps; `acts` collects the tapped values."""

    params: Params
    numbers: Mapping[str, jax.Array | float]
    taps: Mapping[str, jax.Array]
    acts: dict[str, jax.Array]

    def num(self, layer: Layer, name: str):
        return self.numbers[f"{layer.id}/{name}"]

    def tap(self, name: str, value: jax.Array) -> jax.Array:
        if name in self.taps:
            value = value + self.taps[name]
        self.acts[name] = value
        return value

    def renamed(self, names: Mapping[str, str]) -> Callable[[str, jax.Array], jax.Array]:
        """A block's tap with its local names mapped to global ones."""
        return lambda name, value: self.tap(names[name], value)


def run(layers: tuple[Layer, ...], h: jax.Array, ctx: _Ctx) -> jax.Array:
    """Apply `layers` in order."""
    for layer in layers:
        h = _APPLY[layer.kind](layer, h, ctx)
    return h


def _dense(la: Layer, h, ctx: _Ctx):
    key = la.params["W"]
    return ctx.tap(f"out:{key}", BLOCKS["dense"].forward(ctx.params[key], h, ctx.num(la, "multiplier")))


def _readout(la: Layer, h, ctx: _Ctx):
    key = la.params["w"]
    return ctx.tap(f"out:{key}", BLOCKS["readout"].forward(ctx.params[key], h, ctx.num(la, "multiplier")))


def _act(la: Layer, h, ctx: _Ctx):
    return BLOCKS["act"].forward(h, la.static["fn"])


def _layernorm(la: Layer, h, ctx: _Ctx):
    return BLOCKS["layernorm"].forward(h)


def _pool(la: Layer, h, ctx: _Ctx):
    return BLOCKS["pool"].forward(h, la.static["mode"])


def _residual(la: Layer, h, ctx: _Ctx):
    return BLOCKS["residual"].forward(h, lambda z: run(la.children, z, ctx), ctx.num(la, "scale"),
                                      ctx.renamed({"branch": f"branch:{la.id}"}))


def _attention(la: Layer, h, ctx: _Ctx):
    names = {p: f"out:{k}" for p, k in la.params.items()} | {"logits": f"logits:{la.static['name']}"}
    return BLOCKS["attention"].forward(
        {p: ctx.params[k] for p, k in la.params.items()}, h, heads=la.static["heads"],
        logit_scale=ctx.num(la, "logit_scale"), multipliers={p: ctx.num(la, f"multiplier/{p}") for p in PARTS},
        tap=ctx.renamed(names))


def _stream(la: Layer, h, ctx: _Ctx):
    return ctx.tap(la.id, h)


_APPLY = {"dense": _dense, "readout": _readout, "act": _act, "layernorm": _layernorm, "pool": _pool,
          "residual": _residual, "attention": _attention, "stream": _stream}
