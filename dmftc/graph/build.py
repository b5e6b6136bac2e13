"""Spec -> Graph: the ops as a tree of nodes with symbolic widths and their weights.

A `repeat` with a symbolic count stays one layer-indexed template node (its body
is not unrolled), so later stages can reason about L -> infinity. Data flow is
sequential, with residual branches as children of their residual node;
`Graph.to_networkx()` gives the flat directed graph for printing and DOT.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from typing import Iterator, Mapping

import networkx as nx
import sympy

from ..errors import Problem, SpecError
from ..notation import as_expr, size_symbol
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
    `origin` names the weight of a repeat body this one is the peeled first copy of (else "").
    """

    name: str
    role: str
    fan_in: Expr
    fan_out: Expr
    indices: tuple[str, ...] = ()
    count: Expr = sympy.Integer(1)
    in_branch: bool = False
    node: str = ""
    origin: str = ""


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
    b = _Builder(iter(range(10**9)), set(_weight_names(spec.model)), {})
    nodes, _ = b.seq(spec.model, D, tokens, (), sympy.Integer(1), False)
    weights = {w.name: w for n in _walk(nodes) for w in n.weights}
    g = Graph(spec.name, nodes, D, tokens, weights)
    _check_widths(nodes)
    return g


@dataclass
class _Builder:
    """State of one build: node ids, and the weight names taken (for the peeled first copies)."""

    counter: Iterator[int]
    taken: set
    origins: dict  # peeled weight name -> the body weight's name

    def seq(self, ops, width, tokens, indices, count, in_branch):
        nodes = []
        for op in ops:
            for node in self.node(op, width, tokens, indices, count, in_branch):
                nodes.append(node)
                width, tokens = node.width_out, node.tokens
        return tuple(nodes), width

    def node(self, op, width, tokens, indices, count, in_branch) -> tuple[Node, ...]:
        """The node(s) of one op: a repeat whose body changes the width gives the peeled first
        iteration's nodes, then the repeat of the remaining times - 1 (see `_peel`)."""
        if isinstance(op, Repeat):
            idx = indices + (op.index,)
            # the body's output width, found without taking node ids or names
            _, out = _Builder(itertools.count(), set(self.taken), dict(self.origins)).seq(op.body, width, tokens, idx, count, in_branch)
            if sympy.simplify(out - width) != 0:
                return self._peel(op, width, tokens, indices, count, in_branch)
        nid = f"n{next(self.counter)}_{op.kind}"
        if isinstance(op, Repeat):
            body, out = self.seq(op.body, width, tokens, idx, count * op.times, in_branch)
            return (Node(nid, op, width, out, tokens, (), body, indices),)
        if isinstance(op, Residual):
            branch, out = self.seq(op.branch, width, tokens, indices, count, True)
            return (Node(nid, op, width, width, tokens, (), branch, indices),)
        out, weights = _weights_of(op, width, indices, count, in_branch, nid)
        weights = tuple(dataclasses.replace(w, origin=self.origins[w.name]) if w.name in self.origins else w
                        for w in weights)
        tokens_out = tokens and not isinstance(op, Pool)
        return (Node(nid, op, width, out, tokens_out, weights, (), indices),)

    def _peel(self, op: Repeat, width, tokens, indices, count, in_branch) -> tuple[Node, ...]:
        """A repeat whose body maps w_in to w_out != w_in (e.g. one holding the input layer): its first
        iteration, written out at w_in as ordinary nodes whose weights are their own (`<name>_first`),
        then the repeat of times - 1 iterations at w_out (dropped where times is the literal 1)."""
        first, w_out = self.seq(_renamed(op.body, self.taken, self.origins), width, tokens, indices, count, in_branch)
        tokens_out = first[-1].tokens if first else tokens
        times = sympy.simplify(as_expr(op.times) - 1)
        rest = dataclasses.replace(op, times=times)
        idx, nid = indices + (op.index,), f"n{next(self.counter)}_{op.kind}"
        body, out = self.seq(op.body, w_out, tokens_out, idx, count * times, in_branch)
        if sympy.simplify(out - w_out) != 0:
            raise SpecError([Problem(
                f"the repeat's body maps width {width} to {w_out}, then {w_out} to {out}: its widths "
                "cannot repeat", getattr(op, "pos", None), path=nid,
                hint=f"make the body map its output width to itself ({w_out} -> {w_out}), or write its "
                     "first iteration out before the repeat")])
        if times == 0:
            return first
        return first + (Node(nid, rest, w_out, out, tokens_out, (), body, indices),)


def _weight_names(ops) -> Iterator[str]:
    """Every weight name (and attention name) the ops define, nested ops included."""
    for op in ops:
        if isinstance(op, (Dense, Readout)):
            yield op.name
        elif isinstance(op, Attention):
            yield op.name
            yield from (f"{op.name}_{p}" for p in "KQVO")
        yield from _weight_names(getattr(op, "body", ()) or getattr(op, "branch", ()))


def _renamed(ops, taken: set, origins: dict) -> tuple[Op, ...]:
    """`ops` with every weight-bearing op renamed `<name>_first` (`<name>_first_2`, ... if taken);
    `origins` gets new weight name -> the original's."""
    out = []
    for op in ops:
        if isinstance(op, (Dense, Readout, Attention)):
            new = _fresh(op.name, taken, isinstance(op, Attention))
            parts = [f"_{p}" for p in "KQVO"] if isinstance(op, Attention) else [""]
            origins.update({new + p: origins.get(op.name + p, op.name + p) for p in parts})
            op = dataclasses.replace(op, name=new)
        elif isinstance(op, Repeat):
            op = dataclasses.replace(op, body=_renamed(op.body, taken, origins))
        elif isinstance(op, Residual):
            op = dataclasses.replace(op, branch=_renamed(op.branch, taken, origins))
        out.append(op)
    return tuple(out)


def _fresh(name: str, taken: set, attention: bool) -> str:
    def names(n):
        return [n] + ([f"{n}_{p}" for p in "KQVO"] if attention else [])

    base, k = f"{name}_first", 1
    new = base
    while any(n in taken for n in names(new)):
        k += 1
        new = f"{base}_{k}"
    taken.update(names(new))
    return new


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
