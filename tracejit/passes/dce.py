"""Dead-code elimination: drop equations (and constants) no output depends on.

Every primitive is pure, so an equation is live exactly when one of its outputs is used.
"""
from __future__ import annotations

from ..ir import Graph, Var


def dce(graph: Graph) -> Graph:
    live = {id(a) for a in graph.outputs if isinstance(a, Var)}
    kept = []
    for eqn in reversed(graph.eqns):
        if any(id(v) in live for v in eqn.outputs):
            kept.append(eqn)
            live.update(id(a) for a in eqn.inputs if isinstance(a, Var))
    consts = [(v, value) for v, value in graph.consts if id(v) in live]
    return Graph(graph.inputs, kept[::-1], graph.outputs, consts, graph.name)
