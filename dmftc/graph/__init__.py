"""Stage 2: the computation graph of a spec (networkx), repeats kept as layer-indexed templates."""

from .build import Graph as Graph, Node as Node, Weight as Weight, build_graph as build_graph
