"""networkx views of a :class:`~slayerc.ir.core.Graph`, for analysis only (never storage)."""

from __future__ import annotations

import networkx as nx

from slayerc.ir.core import Graph


def to_nx(g: Graph) -> nx.DiGraph:
    """A directed graph with an edge producer -> consumer per input; node data holds the op."""
    dg = nx.DiGraph()
    for node in g:
        dg.add_node(node.name, op=node)
    for node in g:
        for src in node.inputs:
            if src in g.nodes:
                dg.add_edge(src, node.name)
    return dg


def dataflow(g: Graph) -> nx.DiGraph:
    """``to_nx(g)`` without the edges into delaying ops: an acyclic view of one time step."""
    dg = to_nx(g)
    for node in g:
        if node.is_delay():
            dg.remove_edges_from([(src, node.name) for src in node.inputs])
    return dg


def topo_order(g: Graph) -> list[str]:
    """Node names in a topological order of one time step, ties broken by graph order."""
    index = {name: i for i, name in enumerate(g.nodes)}
    return list(nx.lexicographical_topological_sort(dataflow(g), key=index.__getitem__))


def cycles(g: Graph) -> list[list[str]]:
    """The strongly connected components that hold a cycle (recurrent loops), in graph order."""
    dg = to_nx(g)
    index = {name: i for i, name in enumerate(g.nodes)}
    out = []
    for comp in nx.strongly_connected_components(dg):
        if len(comp) > 1 or any(dg.has_edge(n, n) for n in comp):
            out.append(sorted(comp, key=index.__getitem__))
    return sorted(out, key=lambda c: index[c[0]])


def reachable(g: Graph, src: str) -> set[str]:
    """Names of the nodes whose value depends on ``src`` (``src`` excluded)."""
    return set(nx.descendants(to_nx(g), src))


def ancestors(g: Graph, dst: str) -> set[str]:
    """Names of the nodes ``dst`` depends on (``dst`` excluded)."""
    return set(nx.ancestors(to_nx(g), dst))
