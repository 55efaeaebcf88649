"""Layout: compute values in the layout their readers want.

One rule so far: a transpose that swaps a matmul's result dims (its batch dims staying in
place), where nothing else reads the product, becomes the matmul with its operands swapped
(``(a @ b).T`` is ``b.T @ a.T``). The
product is then written in the order it is read, instead of read back with a stride (reverse
mode makes this pattern for every weight gradient). It runs after CSE, so a product that CSE
merged with another use is left alone: one matmul, never two.
"""
from __future__ import annotations

from ..ir import Eqn, Graph
from .rewrite import rewrite, with_inputs


def layout(graph: Graph) -> Graph:
    uses: dict[int, int] = {}
    for e in graph.eqns:
        for a in e.inputs:
            uses[id(a)] = uses.get(id(a), 0) + 1
    for a in graph.outputs:
        uses[id(a)] = uses.get(id(a), 0) + 1
    producers: dict[int, Eqn] = {}

    def step(eqn, inputs):
        result = None
        if eqn.prim.name == "transpose":
            result = _swapped_product(eqn, inputs, producers, uses)
        result = result or with_inputs(eqn, inputs)
        for v in eqn.outputs:
            producers[id(v)] = result
        return result

    return rewrite(graph, step)


def _swapped_product(eqn, inputs, producers, uses):
    """transpose(dot_general(a, b)) -> dot_general(b, a) when the transpose keeps the batch
    dims where they are and exactly swaps the lhs-free and rhs-free result dims, and only it
    reads the product (which dead-code elimination then drops). With batch dims this is what
    ``vmap`` of a weight gradient makes: per-example outer products, then transposed."""
    producer = producers.get(id(inputs[0]))
    if producer is None or producer.prim.name != "dot_general" or \
            uses.get(id(inputs[0]), 0) != 1:
        return None
    a, b = producer.inputs
    (lc, rc), (lb, rb) = producer.params["contract"], producer.params["batch"]
    n_batch = len(lb)
    n_lhs_free = a.ttype.ndim - len(lc) - n_batch
    n_rhs_free = b.ttype.ndim - len(rc) - n_batch
    lhs_free = tuple(range(n_batch, n_batch + n_lhs_free))
    rhs_free = tuple(range(n_batch + n_lhs_free, n_batch + n_lhs_free + n_rhs_free))
    if tuple(eqn.params["perm"]) != tuple(range(n_batch)) + rhs_free + lhs_free:
        return None
    return Eqn(producer.prim, [b, a], {**producer.params, "contract": (rc, lc),
                                       "batch": (rb, lb)}, eqn.outputs, producer.source_info)
