"""The reference interpreter: runs a graph with each primitive's NumPy implementation.

It is the executable spec every compiled backend is tested against. The loop is the same small
one every consumer of the IR uses: read the inputs from an environment, run the rule, write the
outputs. Failures are re-raised naming the primitive and the user's line that created it.
"""
from __future__ import annotations

import numpy as np

from ..ir import Graph, Literal


def _with_provenance(error: Exception, eqn) -> Exception:
    where = f" (in `{eqn.prim.name}`" + (f" traced at {eqn.source_info})" if eqn.source_info else ")")
    try:
        new = type(error)(f"{error}{where}")
    except Exception:  # exception types with unusual constructors keep their own message
        return error
    return new


def evaluate(graph: Graph, args) -> list[np.ndarray]:
    env: dict[int, np.ndarray] = {}

    def read(atom):
        return np.asarray(atom.value) if isinstance(atom, Literal) else env[id(atom)]

    for var, value in zip(graph.inputs, args):
        env[id(var)] = value
    for var, value in graph.consts:
        env[id(var)] = value
    for eqn in graph.eqns:
        try:
            result = eqn.prim.impl(*[read(a) for a in eqn.inputs], **eqn.params)
        except Exception as e:
            raise _with_provenance(e, eqn) from e
        results = result if eqn.prim.multiple_results else [result]
        for var, out in zip(eqn.outputs, results):
            out = np.asarray(out)
            if out.shape != var.ttype.shape or out.dtype != var.ttype.dtype:
                raise AssertionError(f"tracejit bug: {eqn.prim.name} produced "
                                     f"{out.dtype}{out.shape}, its rule promised {var.ttype}")
            env[id(var)] = out
    # Outputs are fresh, writable arrays that alias neither the inputs nor each other.
    results, seen = [], set()
    for atom in graph.outputs:
        value = read(atom)
        if id(value) in seen or not (value.flags.owndata and value.flags.writeable) or \
                any(value is a for a in args) or any(value is c for _, c in graph.consts):
            value = np.array(value, copy=True)
        seen.add(id(value))
        results.append(value)
    return results


def compile_graph(graph: Graph, donate=frozenset()):
    """The interpreter has nothing to compile: the callable evaluates the graph each time.
    Donation is a permission, not a promise: the interpreter never reuses input buffers."""
    return lambda args: evaluate(graph, args)
