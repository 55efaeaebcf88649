"""The batching interpreter behind ``vmap``: a graph evaluated on values that carry a batch axis.

``batch_eval(graph, args, bdims)`` walks the graph's equations in order, the same small loop
as every other consumer of the IR: read the operands and where their batch axis is (None: not
batched) from an environment, run the primitive's batching rule (``Primitive.def_batch``) when
any operand is batched and the primitive itself when none is, and write the results back with
their batch axes. Rules go through ``bind``, so the batched computation is recorded into
whatever traces below (a graph under ``compile``, a tape under ``grad``) or run at once on
NumPy arrays: a batched graph is an ordinary graph, fused, differentiated and batched again
like any other.

``batch_graph`` applies the same to a control-flow sub-graph, producing a new sub-graph whose
batched inputs and outputs carry the batch axis first (the convention inside loops and
branches).
"""
from __future__ import annotations

from ..errors import at_user_line
from ..ir import Graph, Literal, TensorType
from ..primitives import batch_support as B
from ..tracing import _state, bind, current_graph_trace, find_trace, trace_subgraph


class NoBatchingRuleError(NotImplementedError):
    """A primitive in the function given to ``vmap`` has no batching rule (yet)."""


def check_batchable(graph: Graph) -> None:
    """Raise NoBatchingRuleError naming the first primitive of ``graph`` (or of its
    sub-graphs) without a batching rule, and the user's line that made it: before any
    batched equation is recorded, so a caller may fall back to another way."""
    for eqn in graph.eqns:
        if eqn.prim.batch is None:
            raise NoBatchingRuleError(at_user_line(
                f"vmap: primitive `{eqn.prim.name}` has no batching rule yet",
                eqn.source_info))
        for value in eqn.params.values():
            if isinstance(value, Graph):
                check_batchable(value)


def _apply(prim, values, params) -> list:
    """An equation with no batched operand: the primitive itself (a constant-only equation
    under a graph being traced is recorded there, not computed now, as ``eval_graph`` does)."""
    graph_trace = current_graph_trace()
    if graph_trace is not None and find_trace(values) is None:
        return graph_trace.process(prim, values, params)
    result = bind(prim, values, params)
    return list(result) if prim.multiple_results else [result]


def batch_eval(graph: Graph, args, bdims) -> tuple[list, list]:
    """``(outs, out_bdims)``: ``graph`` on ``args`` batched at ``bdims`` (None: unbatched)."""
    env: dict[int, tuple] = {}

    def read(atom):
        return (atom.value, None) if isinstance(atom, Literal) else env[id(atom)]

    for var, value, d in zip(graph.inputs, args, bdims):
        env[id(var)] = (value, d)
    for var, value in graph.consts:
        env[id(var)] = (value, None)
    previous = getattr(_state, "replayed_source", None)
    try:
        for eqn in graph.eqns:
            _state.replayed_source = eqn.source_info  # what rules make keeps the user's line
            values, dims = zip(*[read(a) for a in eqn.inputs]) if eqn.inputs else ((), ())
            if all(d is None for d in dims):
                own = getattr(eqn.prim, "apply_unbatched", None)  # (a custom_vjp call)
                outs = own(list(values)) if own else _apply(eqn.prim, list(values), eqn.params)
                out_dims = None
            else:
                if eqn.prim.batch is None:
                    check_batchable(graph)
                outs, out_dims = eqn.prim.batch(list(values), list(dims), **eqn.params)
                if not eqn.prim.multiple_results:
                    outs, out_dims = [outs], [out_dims]
            out_dims = out_dims or [None] * len(eqn.outputs)
            for var, value, d in zip(eqn.outputs, outs, out_dims):
                env[id(var)] = (value, d)
    finally:
        _state.replayed_source = previous
    results = [read(a) for a in graph.outputs]
    return [v for v, _ in results], [d for _, d in results]


def batched_type(ttype: TensorType, size: int) -> TensorType:
    return TensorType((size,) + ttype.shape, ttype.dtype, ttype.weak)


def batch_graph(graph: Graph, in_batched, size: int, out_batched=None,
                name: str | None = None) -> tuple[Graph, list, list]:
    """``graph`` batched: ``(new graph, out_batched, captured)``. Inputs marked in
    ``in_batched`` take a leading batch axis of ``size``, and batched outputs give one.
    ``out_batched`` (when given) says per output whether it must be batched (True: an
    unbatched result is broadcast, as for a loop carry that became batched) or may come as it
    is (None); ``out_batched`` in the result says which outputs are batched. ``captured``
    are constants the rules made (passed after the graph's own inputs, unbatched)."""
    in_types = [batched_type(t, size) if b else t for t, b in zip(graph.in_types, in_batched)]
    result_batched: list = []

    def fun(*tracers):
        outs, dims = batch_eval(graph, list(tracers), [0 if b else None for b in in_batched])
        want = [d is not None if w is None else w
                for d, w in zip(dims, out_batched or [None] * len(dims))]
        moved = []
        for value, d, w in zip(outs, dims, want):
            if d is not None and not w:
                raise AssertionError("tracejit bug: a batched result where an unbatched one "
                                     "was promised")
            moved.append(B.batched_at(value, d, size, 0) if w else value)
        result_batched[:] = list(want)
        return moved

    new, _, captured = trace_subgraph(fun, in_types, name or graph.name)
    return new, result_batched, captured


__all__ = ["NoBatchingRuleError", "batch_eval", "batch_graph", "batched_type",
           "check_batchable"]
