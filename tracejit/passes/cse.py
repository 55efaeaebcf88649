"""Common-subexpression elimination: an equation equal to an earlier one (same primitive, same
inputs, same params) is replaced by the earlier one's outputs (control flow excepted)."""
from __future__ import annotations

import numpy as np

from ..ir import Graph, Literal
from .rewrite import rewrite, with_inputs


def _atom_key(atom):
    if isinstance(atom, Literal):
        return ("lit", atom.ttype, atom.value.item())
    return ("var", id(atom))


def _param_key(value):
    if isinstance(value, np.dtype):
        return ("dtype", value.str)
    return value


def cse(graph: Graph) -> Graph:
    seen: dict = {}

    def step(eqn, inputs):
        if eqn.prim.kind == "control":  # (bodies are graphs: never merged)
            return with_inputs(eqn, inputs)
        key = (eqn.prim.name, tuple(_atom_key(a) for a in inputs),
               tuple((k, _param_key(v)) for k, v in eqn.params.items()))
        try:
            earlier = seen.get(key)
        except TypeError:  # an unhashable param: never merged
            return with_inputs(eqn, inputs)
        # (an equation with several results, a factorisation, is merged whole: lu_factor of one
        # matrix read by inv and det is computed once)
        if earlier is not None and [a.ttype for a in earlier] == [o.ttype for o in eqn.outputs]:
            return earlier if len(earlier) > 1 else earlier[0]
        seen[key] = list(eqn.outputs)
        return with_inputs(eqn, inputs)

    return rewrite(graph, step)
