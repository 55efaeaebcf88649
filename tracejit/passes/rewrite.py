"""The loop every pass is written with: walk the equations in order, substituting atoms.

A pass gives ``step(eqn, inputs)`` the equation and its inputs after earlier substitutions; it
returns either an Atom (the equation's single output is replaced by that value and the equation
dropped), a list of Atoms (one per output, for an equation with several), or an ``Eqn`` to keep
(possibly rebuilt). Replacements must keep the outputs' types.
"""
from __future__ import annotations

from typing import Callable

from ..ir import Eqn, Graph, Literal, Var


def rewrite(graph: Graph, step: Callable) -> Graph:
    env: dict[int, object] = {}

    def read(atom):
        return atom if isinstance(atom, Literal) else env.get(id(atom), atom)

    eqns = []
    for eqn in graph.eqns:
        inputs = [read(a) for a in eqn.inputs]
        result = step(eqn, inputs)
        if isinstance(result, Eqn):
            eqns.append(result)
            continue
        results = result if isinstance(result, list) else [result]
        assert len(results) == len(eqn.outputs), f"{eqn.prim.name}: one replacement per output"
        for out, value in zip(eqn.outputs, results):
            assert value.ttype == out.ttype, f"{eqn.prim.name}: replacement changes the type"
            env[id(out)] = value
    return Graph(graph.inputs, eqns, [read(a) for a in graph.outputs], graph.consts, graph.name)


def with_inputs(eqn: Eqn, inputs) -> Eqn:
    if all(a is b for a, b in zip(inputs, eqn.inputs)):
        return eqn
    return Eqn(eqn.prim, list(inputs), eqn.params, eqn.outputs, eqn.source_info)


def is_var(atom) -> bool:
    return isinstance(atom, Var)
