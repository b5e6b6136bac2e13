"""The finite network at concrete sizes: graph nodes -> a flat tuple of `Layer`s and a table of `Param`s.

Repeats are unrolled (each copy its own weights, keyed by the weight name and the copy
index: "W1[0]", "W1[1]"; nested repeats "W1[0,1]"); residual branches stay nested as
children. Every number comes from `resolve_parameterization` evaluated at the concrete
sizes: the simulator never re-derives a scale.

Order-parameter sites (`Network.sites`), named as the DMFT of the spec names the same kernel
(docs/reading-output.md#in-python-to_xarray-and-plot):
- without residual blocks: the output h^l of each non-readout dense layer l = 1..L in
  forward order, with phi the chain of act and layernorm ops that directly follows it, up to
  the next dense, readout or residual (identity if none): Phi<l> = <phi(h^l) phi(h^l)>, G<l> (where
  phi holds a layernorm the DMFT's kernel of those features sits at LayerNorm's own position, so this
  Phi<l> has no counterpart in the solution);
- with residual blocks: the residual stream at its marks l = 0 (the input of the first block)
  and l (after block l). A block is one iteration of a repeat whose body holds residual ops (a
  transformer block: attention and MLP residuals), or a residual op outside such a repeat.
  The stream at mark l is the DMFT's field at position p = `stream_positions(layers)[l]`: its
  kernel H<p> = <h h>, G<p>, and, where the next branch (or the readout) starts with act ops,
  Phi<p> = <phi(h) phi(h)> with phi that chain: the features that branch reads.
"""

from __future__ import annotations

import os
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np
import sympy

from ..blocks import attention as attention_block
from ..errors import DmftcError
from ..graph import Node, build_graph
from ..scaling.parameterization import WeightScaling, resolve_parameterization
from ..spec.types import Spec
from .values import concrete_sizes, evaluate, evaluate_int, symbol_values


@dataclass(frozen=True)
class Param:
    """One weight copy: W_ij ~ N(0, init_std^2), forward multiplier * W x, update W -= lr * dLoss/dW."""

    key: str
    weight: str
    shape: tuple[int, int]
    multiplier: float
    init_std: float
    lr: float


@dataclass(frozen=True)
class Layer:
    """One concrete op: `kind` is an op kind, or "stream" (a recording point, identity).

    `params` maps the op's local weight slots ("W", "w", or "K", "Q", "V", "O") to param keys;
    `static` holds what shapes the program (activation name, head count, names); `numbers`
    its real-valued constants (multipliers, scales), which the compiled programs take as
    arguments so that one compilation serves every value of them; `children` a residual branch.
    """

    kind: str
    id: str
    params: Mapping[str, str] = field(default_factory=dict)
    static: Mapping[str, Any] = field(default_factory=dict)
    numbers: Mapping[str, float] = field(default_factory=dict)
    children: tuple["Layer", ...] = ()

    def skeleton(self) -> tuple:
        """Everything but the numbers, hashable."""
        return (self.kind, self.id, tuple(self.params.items()), tuple(self.static.items()),
                tuple(self.numbers), tuple(c.skeleton() for c in self.children))


@dataclass(frozen=True)
class Site:
    """Where an order parameter is measured: the kernel `name` = phi(tap) . phi(tap) / n, and `grad` =
    g . g / n of the tap's backward field g = (df/d tap) / s_hat (None: a second view of a tap that
    already records it). Names are the DMFT's: "Phi1", "H2", "G2".

    `phi` is the chain of pointwise ops applied in order to the tap: act fns ("relu", "tanh", ...) and
    "layernorm"; () is the identity (`activation` gives the single activation name some code needs).
    """

    tap: str
    phi: tuple[str, ...]
    name: str
    grad: str | None = None

    @property
    def activation(self) -> str | None:
        """The chain as one activation name: "linear" for (), the fn of a single act, None otherwise
        (a chain of several ops, or a layernorm)."""
        if not self.phi:
            return "linear"
        return self.phi[0] if len(self.phi) == 1 and self.phi[0] != "layernorm" else None


@dataclass(frozen=True)
class Network:
    """A spec's finite network at concrete sizes (`sizes` includes P, D and S).

    `readout_scale` is s_hat = m_readout * init_std_readout, by which backward fields are normalised
    (`observe`; the DMFT's s_hat, `dmftc.dmft.coefficients`).
    """

    name: str
    sizes: Mapping[str, int]
    layers: tuple[Layer, ...]
    params: Mapping[str, Param]
    readout_scale: float
    sites: tuple[Site, ...]
    attentions: tuple[str, ...]
    residual: bool
    tokens: bool

    def init(self, seed: int, seeds: int, dtype=np.float32, first: int = 0) -> dict[str, np.ndarray]:
        """Initial weights of networks first..first+seeds-1, stacked: key -> (seeds, fan_out, fan_in).

        W = init_std * N(0, 1), drawn on the host by numpy from the seed sequence
        (seed, network index, crc32 of the param key): network i does not depend on how many
        run beside it, and "W0" is the same draw whatever else the network holds (e.g. at
        another depth). Draws are float64, then cast, so float32 and float64 runs start from
        the same weights. (Host numpy: no compile, and its ziggurat sampler is several times
        faster than jax's threefry on CPU.)
        """
        out = {k: np.empty((seeds, *p.shape), dtype) for k, p in self.params.items()}

        def draw(job: tuple[str, int]) -> None:
            k, i = job
            rng = np.random.default_rng([seed, first + i, zlib.crc32(k.encode())])
            out[k][i] = self.params[k].init_std * rng.standard_normal(self.params[k].shape)

        # numpy's samplers release the GIL: threads use every core (each job its own generator,
        # so the draws do not depend on scheduling)
        with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
            list(pool.map(draw, [(k, i) for k in self.params for i in range(seeds)]))
        return out

    def numbers(self) -> dict[str, float]:
        """Every real constant, by name: "<layer id>/<name>" for the layers', "lr/<param key>" for the
        GD steps, "s_readout" for the readout's scale s_hat. The compiled programs take these as input."""
        out = {"s_readout": self.readout_scale}
        out.update({f"lr/{k}": p.lr for k, p in self.params.items()})
        out.update(_layer_numbers(self.layers))
        return out

    def skeleton(self) -> tuple:
        """What a compiled program depends on besides `numbers()`: structure and shapes (hashable)."""
        return (tuple(la.skeleton() for la in self.layers), tuple((k, p.shape) for k, p in self.params.items()),
                self.sites, self.attentions)


def _layer_numbers(layers: tuple[Layer, ...]) -> dict[str, float]:
    out = {}
    for la in layers:
        out.update({f"{la.id}/{name}": v for name, v in la.numbers.items()})
        out.update(_layer_numbers(la.children))
    return out


# ------------------------------------------------------------------ building
@dataclass
class _Ctx:
    """Mutable state of one build: values for substitution, the scaling table, params found."""

    values: Mapping[sympy.Symbol, sympy.Expr]
    table: Mapping[str, WeightScaling]
    params: dict[str, Param] = field(default_factory=dict)


def build_network(spec: Spec, sizes: Mapping[str, int] | None, data_shape: tuple[int, ...]) -> Network:
    """The finite network of `spec` at `sizes` (overrides of spec.sizes) for inputs of `data_shape`."""
    graph = build_graph(spec)
    concrete = concrete_sizes(spec, sizes, data_shape)
    ctx = _Ctx(symbol_values(spec, concrete), resolve_parameterization(spec, graph))
    layers = _number_streams(_seq(graph.nodes, ctx, (), False))
    readouts = [p for p in ctx.params.values() if graph.weights[p.weight].role == "readout"]
    if len(readouts) != 1 or layers[-1].kind != "readout":
        raise DmftcError(f"spec {spec.name!r}: the simulator needs exactly one readout, as the last op "
                         f"(found {len(readouts)}); end the model with `- readout: {{}}`")
    residual = any(la.kind == "residual" for la in layers)
    return Network(spec.name, concrete, layers, MappingProxyType(dict(sorted(ctx.params.items()))),
                   readouts[0].multiplier * readouts[0].init_std, _sites(layers, residual), _attentions(layers),
                   residual, graph.tokens)


def _seq(nodes: tuple[Node, ...], ctx: _Ctx, copy: tuple[int, ...], in_repeat: bool) -> tuple[Layer, ...]:
    out: list[Layer] = []
    for node in nodes:
        if node.kind == "repeat":
            out.extend(_repeat(node, ctx, copy))
            continue
        out.append(_layer(node, ctx, copy))
        if node.kind == "residual" and not in_repeat:
            out.append(Layer("stream", "stream"))
    return tuple(out)


def _repeat(node: Node, ctx: _Ctx, copy: tuple[int, ...]) -> list[Layer]:
    count = evaluate_int(node.op.times, ctx.values, f"{node.id}: repeat count")
    blocks = any(c.kind == "residual" for c in node.children)
    out: list[Layer] = []
    for i in range(count):
        out.extend(_seq(node.children, ctx, copy + (i,), True))
        if blocks:
            out.append(Layer("stream", "stream"))
    return out


def _suffix(copy: tuple[int, ...]) -> str:
    return f"[{','.join(map(str, copy))}]" if copy else ""


def _layer(node: Node, ctx: _Ctx, copy: tuple[int, ...]) -> Layer:
    sfx, op = _suffix(copy), node.op
    lid = node.id + sfx
    if node.kind == "residual":
        scale = evaluate(op.scale, ctx.values, f"{node.id}: residual scale")
        # in_repeat=True: no stream marks inside a branch (the stream is the top-level sequence)
        return Layer("residual", lid, {}, {}, {"scale": scale}, _seq(node.children, ctx, copy, True))
    if node.kind in ("dense", "readout"):
        slot = "W" if node.kind == "dense" else "w"
        key = _param(node.weights[0], ctx, sfx)
        return Layer(node.kind, lid, {slot: key}, {}, {"multiplier": ctx.params[key].multiplier})
    if node.kind == "attention":
        keys = {part: _param(w, ctx, sfx) for part, w in zip(attention_block.PARTS, node.weights)}
        static = {"heads": evaluate_int(op.heads, ctx.values, f"{node.id}: heads"), "name": op.name + sfx}
        numbers = {"logit_scale": evaluate(op.logit_scale, ctx.values, f"{node.id}: logit scale")}
        numbers.update({f"multiplier/{p}": ctx.params[k].multiplier for p, k in keys.items()})
        return Layer("attention", lid, keys, static, numbers)
    if node.kind == "act":
        return Layer("act", lid, {}, {"fn": op.fn})
    if node.kind == "pool":
        return Layer("pool", lid, {}, {"mode": op.mode})
    return Layer(node.kind, lid)


def _param(w, ctx: _Ctx, sfx: str) -> str:
    key = w.name + sfx
    s, what = ctx.table[w.name], f"weight {w.name}"
    shape = (evaluate_int(w.fan_out, ctx.values, f"{what}: fan_out"),
             evaluate_int(w.fan_in, ctx.values, f"{what}: fan_in"))
    ctx.params[key] = Param(key, w.name, shape, evaluate(s.multiplier, ctx.values, f"{what}: multiplier"),
                            evaluate(s.init_std, ctx.values, f"{what}: init_std"),
                            evaluate(s.lr, ctx.values, f"{what}: lr"))
    return key


def _number_streams(layers: tuple[Layer, ...]) -> tuple[Layer, ...]:
    """Give the stream marks their indices l = 1, 2, ... and add l = 0 before the first block."""
    first = next((i for i, la in enumerate(layers) if la.kind == "residual"), None)
    if first is None:
        return layers
    marked = layers[:first] + (Layer("stream", "stream"),) + layers[first:]
    out, l = [], 0
    for la in marked:
        if la.kind == "stream":
            la, l = Layer("stream", f"stream:{l}"), l + 1
        out.append(la)
    return tuple(out)


def _sites(layers: tuple[Layer, ...], residual: bool) -> tuple[Site, ...]:
    if residual:
        marks = [(i, la) for i, la in enumerate(layers) if la.kind == "stream"]
        positions = stream_positions(layers)
        stream = [Site(la.id, (), f"H{p}", f"G{p}") for (_, la), p in zip(marks, positions) if p]
        # the features the next block's branch (or the readout) reads, phi(h) with phi a chain of acts: the
        # DMFT's Phi at the same position (a chain with a layernorm reads LayerNorm's own field, a chain of
        # layernorms alone, as where a transformer's branches start, no such view)
        acts = [Site(la.id, chain, f"Phi{p}") for (i, la), p in zip(marks, positions)
                if p and (chain := _next_chain(layers[i + 1:])) and "layernorm" not in chain]
        return tuple(stream + acts)
    sites = []
    for i, la in enumerate(layers):
        if la.kind == "dense":
            l = len(sites) + 1
            sites.append(Site(f"out:{la.params['W']}", _pointwise(layers[i + 1:]), f"Phi{l}", f"G{l}"))
    return tuple(sites)


def stream_positions(layers: tuple[Layer, ...]) -> tuple[int | None, ...]:
    """The DMFT's position of the residual stream at each stream mark l = 0, 1, ... of `layers` (None where
    the value there is not a stream field: a block that ends in another op, such as a post-LN layernorm).

    The DMFT numbers the stream's fields first, 1, 2, ..., in the order its walk meets them
    (`dmftc.dmft.walk.Walk.positions`): each residual op h' = h + c branch(h) opens one position for its
    output h', after the positions its branch opens, and one before for its input h unless h is already
    a stream field (the output of the op just before it, or the stream a branch starts from). Mark 0, the
    input of the first block, is position 1. The derivation records the same map (EquationSystem.stream_sites).
    """
    out: list[int | None] = []
    count = 0

    def walk(seq: tuple[Layer, ...], bare: bool) -> None:
        """`bare`: the value entering `seq` is a stream field."""
        nonlocal count
        for la in seq:
            if la.kind == "stream":
                out.append(1 if la.id == "stream:0" else count if bare else None)
                continue
            if la.kind == "residual":
                count += 0 if bare else 1
                walk(la.children, True)
                count += 1
            bare = la.kind == "residual"

    walk(layers, False)
    return tuple(out)


def _pointwise(layers) -> tuple[str, ...]:
    """The leading act (their fn) and layernorm ("layernorm") ops of `layers`, in order."""
    out = []
    for la in layers:
        if la.kind == "act":
            out.append(la.static["fn"])
        elif la.kind == "layernorm":
            out.append("layernorm")
        else:
            break
    return tuple(out)


def _next_chain(rest) -> tuple[str, ...]:
    """The pointwise ops the next consumer of the stream applies first: the leading act/layernorm ops
    of the next residual branch, or the ops between the stream mark and the next residual (or the
    readout); () where that consumer starts with a dense (it reads the stream itself)."""
    if rest and rest[0].kind == "residual":
        return _pointwise(rest[0].children)
    return _pointwise(rest)


def _attentions(layers: tuple[Layer, ...]) -> tuple[str, ...]:
    out = []
    for la in layers:
        if la.kind == "attention":
            out.append(la.static["name"])
        out.extend(_attentions(la.children))
    return tuple(out)
