"""Spec -> Graph: the ops as a tree of nodes with symbolic widths and their weights.

A `repeat` with a symbolic count stays one layer-indexed template node (its body
is not unrolled), so later stages can reason about L -> infinity. Data flow is
sequential, with residual branches as children of their residual node;
`Graph.to_networkx()` gives the flat directed graph for printing and DOT.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Mapping

import networkx as nx
import sympy

from ..errors import Problem, SpecError
from ..notation import size_symbol
from ..spec.types import (
    Act,
    Attention,
    Dense,
    LayerNorm,
    Op,
    Pool,
    Readout,
    Repeat,
    Residual,
    Spec,
)

Expr = sympy.Expr

#: weight roles: what a weight does in the network, which decides its preset scaling.
ROLES = ("embed", "hidden", "readout", "key", "query", "value", "out")


@dataclass(frozen=True)
class Weight:
    """One weight matrix (or a layer-indexed family of them) of shape (fan_out, fan_in).

    `indices` are the layer-index symbols of the enclosing repeats, `count` the number
    of copies (product of their counts), `in_branch` whether it sits in a residual branch.
    """

    name: str
    role: str
    fan_in: Expr
    fan_out: Expr
    indices: tuple[str, ...] = ()
    count: Expr = sympy.Integer(1)
    in_branch: bool = False
    node: str = ""


@dataclass(frozen=True)
class Node:
    """One op with its input and output width; `children` holds a repeat body or a residual branch."""

    id: str
    op: Op
    width_in: Expr
    width_out: Expr
    tokens: bool
    weights: tuple[Weight, ...] = ()
    children: tuple["Node", ...] = ()
    indices: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        return self.op.kind


@dataclass(frozen=True)
class Graph:
    """The computation graph of a spec: a sequence of (possibly nested) nodes.

    input_dim is D, tokens whether inputs are sequences (P, S, D).
    """

    name: str
    nodes: tuple[Node, ...]
    input_dim: Expr
    tokens: bool
    weights: Mapping[str, Weight] = field(default_factory=dict)

    def walk(self) -> Iterator[Node]:
        """All nodes, depth first, parents before children."""
        yield from _walk(self.nodes)

    def to_networkx(self) -> nx.DiGraph:
        """A flat DiGraph: data-flow edges ('flow'), skip edges ('skip'), template edges ('body')."""
        g = nx.DiGraph(name=self.name)
        g.add_node("input", label=f"input (P, {'S, ' if self.tokens else ''}{self.input_dim})")
        _add_chain(g, self.nodes, "input")
        return g

    def to_dot(self) -> str:
        """Graphviz DOT text of `to_networkx()`, deterministic."""
        g = self.to_networkx()
        lines = [f'digraph "{self.name}" {{', "  rankdir=TB;", "  node [shape=box, fontname=monospace];"]
        for n, d in g.nodes(data=True):
            lines.append(f'  "{n}" [label="{d.get("label", n)}"];')
        for a, b, d in g.edges(data=True):
            style = {"skip": " [style=dashed]", "body": " [style=dotted]"}.get(d.get("kind"), "")
            lines.append(f'  "{a}" -> "{b}"{style};')
        lines.append("}")
        return "\n".join(lines) + "\n"

    def describe(self) -> str:
        """A readable indented listing of the nodes with widths and weights."""
        return "\n".join(_describe(self.nodes, 0))

    def check(self) -> None:
        """Re-verify width consistency; raises SpecError naming the op."""
        _check_widths(self.nodes)


# ------------------------------------------------------------------ building
def build_graph(spec: Spec) -> Graph:
    """Build the `Graph` of a validated `Spec` (raises SpecError on inconsistent widths)."""
    tokens = "S" in spec.sizes
    D = size_symbol("D")
    counter = iter(range(10**9))
    nodes, _ = _build_seq(spec.model, D, tokens, (), sympy.Integer(1), False, counter)
    weights = {w.name: w for n in _walk(nodes) for w in n.weights}
    g = Graph(spec.name, nodes, D, tokens, weights)
    _check_widths(nodes)
    return g


def _build_seq(ops, width, tokens, indices, count, in_branch, counter):
    nodes = []
    for op in ops:
        node = _build_node(op, width, tokens, indices, count, in_branch, counter)
        nodes.append(node)
        width, tokens = node.width_out, node.tokens
    return tuple(nodes), width


def _build_node(op, width, tokens, indices, count, in_branch, counter) -> Node:
    nid = f"n{next(counter)}_{op.kind}"
    if isinstance(op, Repeat):
        idx = indices + (op.index,)
        body, out = _build_seq(op.body, width, tokens, idx, count * op.times, in_branch, counter)
        return Node(nid, op, width, out, tokens, (), body, indices)
    if isinstance(op, Residual):
        branch, out = _build_seq(op.branch, width, tokens, indices, count, True, counter)
        return Node(nid, op, width, width, tokens, (), branch, indices)
    out, weights = _weights_of(op, width, indices, count, in_branch, nid)
    tokens_out = tokens and not isinstance(op, Pool)
    return Node(nid, op, width, out, tokens_out, weights, (), indices)


def _weights_of(op, width, indices, count, in_branch, nid):
    def w(name, role, fan_in, fan_out):
        return Weight(name, role, fan_in, fan_out, indices, count, in_branch, nid)

    if isinstance(op, Dense):
        role = "hidden" if (in_branch or width != size_symbol("D")) else "embed"
        return op.out, (w(op.name, role, width, op.out),)
    if isinstance(op, Readout):
        return sympy.Integer(1), (w(op.name, "readout", width, sympy.Integer(1)),)
    if isinstance(op, Attention):
        inner = op.heads * op.key_dim
        return width, (
            w(f"{op.name}_K", "key", width, inner),
            w(f"{op.name}_Q", "query", width, inner),
            w(f"{op.name}_V", "value", width, inner),
            w(f"{op.name}_O", "out", inner, width),
        )
    if isinstance(op, (Act, LayerNorm, Pool)):
        return width, ()
    raise TypeError(f"unknown op {op!r}")  # pragma: no cover - the loader admits only known ops


# ------------------------------------------------------------------ checks
def _check_widths(nodes) -> None:
    problems = []
    for n in _walk(nodes):
        if isinstance(n.op, Residual):
            out = n.children[-1].width_out if n.children else n.width_in
            if sympy.simplify(out - n.width_in) != 0:
                problems.append(_problem(n, f"residual branch maps width {n.width_in} to {out}",
                                         "make the branch's last dense layer output the stream width "
                                         f"({n.width_in})"))
        if isinstance(n.op, Readout) and n.tokens:
            problems.append(_problem(n, "readout of a token sequence", "insert `- pool: mean` before the readout"))
    if problems:
        raise SpecError(problems)


def _problem(node: Node, message: str, hint: str) -> Problem:
    return Problem(message, getattr(node.op, "pos", None), path=node.id, hint=hint)


# ------------------------------------------------------------------ walking and printing
def _walk(nodes) -> Iterator[Node]:
    for n in nodes:
        yield n
        yield from _walk(n.children)


def _label(n: Node) -> str:
    op = n.op
    extra = {
        "dense": lambda: f" {op.name}: {n.width_in} -> {n.width_out}",
        "act": lambda: f" {op.fn}",
        "repeat": lambda: f" x {op.times} over {op.index}",
        "residual": lambda: f" scale {op.scale}",
        "attention": lambda: f" {op.name}: H={op.heads}, N={op.key_dim}, logit scale {op.logit_scale}",
        "readout": lambda: f" {op.name}: {n.width_in} -> 1",
        "pool": lambda: f" {op.mode} over tokens",
    }.get(n.kind, lambda: "")()
    idx = f" [{','.join(n.indices)}]" if n.indices else ""
    return f"{n.kind}{extra}{idx}"


def _describe(nodes, depth) -> list[str]:
    out = []
    for n in nodes:
        out.append("  " * depth + f"{n.id}: {_label(n)}")
        out.extend(_describe(n.children, depth + 1))
    return out


def _add_chain(g: nx.DiGraph, nodes, prev: str) -> str:
    for n in nodes:
        g.add_node(n.id, label=_label(n), kind=n.kind, width=str(n.width_out))
        g.add_edge(prev, n.id, kind="flow")
        if isinstance(n.op, Repeat):
            last = _add_chain(g, n.children, n.id)
            g.add_edge(last, n.id, kind="body")
            prev = n.id
        elif isinstance(n.op, Residual):
            last = _add_chain(g, n.children, n.id)
            merge = f"{n.id}_add"
            g.add_node(merge, label="add", kind="add", width=str(n.width_out))
            g.add_edge(last, merge, kind="flow")
            g.add_edge(n.id, merge, kind="skip")
            prev = merge
        else:
            prev = n.id
    return prev
