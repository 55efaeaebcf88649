"""``custom_vjp`` functions under ``vmap``: the custom backward function survives batching.

``vmap`` traces its function into a graph, and a ``custom_vjp`` function called on a traced
value would otherwise just run its original function, so a ``grad`` taken *around* the
``vmap`` would differentiate that function instead of using the custom rule. The trace
``vmap`` uses (``ExampleTrace``) therefore takes such calls (``custom_vjp.__call__`` asks the
trace for ``custom_vjp_call``): it records one equation standing for the call, and batching
that equation calls a ``custom_vjp`` function made of the batched function, the batched
``fwd`` and the batched ``bwd``, on whatever values the batch has. A ``grad`` below then
records the batched custom rule on its tape.

A ``custom_vjp`` function called inside a loop body or branch within the vmapped function is
traced by that construct's own trace and runs its original function (a limit, docs/vmap.md).
"""
from __future__ import annotations

from ..ir import Eqn, Graph, Var
from ..primitives import ad_support as A
from ..primitives import batch_support as B
from .. import pytree
from ..errors import user_source_info
from ..tracing import ClosureTrace, GraphTracer, new_trace, trace_subgraph


class CustomVJPCall:
    """The equation's "primitive": one call of a ``custom_vjp`` function (never leaves the
    graph vmap traces: batching replaces it by the batched call)."""

    multiple_results = False
    kind = "custom"

    def __init__(self, fn, out_type):
        self.fn, self.out_type = fn, out_type
        self.name = f"custom_vjp_call[{getattr(fn, '__name__', 'f')}]"

    def abstract_eval(self, *in_types, **params):
        return [self.out_type]

    def apply_unbatched(self, args) -> list:
        return [self.fn(*args)]

    def batch(self, args, bdims):
        return batched_custom_vjp(self.fn, tuple(bdims))(*args), 0


def batched_custom_vjp(fn, bdims):
    """``fn`` (a custom_vjp function) over a batch of its arguments (batched at ``bdims``),
    itself a custom_vjp function whose backward function is ``fn``'s, batched."""
    from .autodiff import custom_vjp
    from .vmap import vmap

    batched = custom_vjp(vmap(fn.fun, in_axes=bdims))
    if fn.fwd is None:
        return batched

    def fwd(*args):
        return vmap(fn.fwd, in_axes=bdims)(*args)  # (out, residuals), all batched at 0

    def bwd(residuals, ct):
        cts = vmap(fn.bwd, in_axes=(0, 0))(residuals, ct)
        # back to each argument's own layout: an unbatched one gets the sum over the batch
        return tuple(c if c is None else A.reduce_sum(c, (0,)) if d is None else
                     B.moveaxis(c, 0, d) for c, d in zip(cts, bdims))

    batched.defvjp(fwd, bwd)
    return batched


class ExampleTrace(ClosureTrace):
    """The trace ``vmap`` runs its function on (one example's abstract values)."""

    def custom_vjp_call(self, fn, args):
        if any(pytree.flatten(a)[1] != pytree.LEAF for a in args):
            return fn.fun(*args)  # (trees in: not a function reverse mode takes a rule for)
        atoms = [self.to_atom(a) for a in args]
        types = [a.ttype for a in atoms]
        single = []

        def call(*xs):
            out = fn.fun(*xs)
            single.append(pytree.flatten(out)[1] == pytree.LEAF)
            return pytree.flatten(out)[0]

        graph, _, _ = trace_subgraph(call, types, "custom")  # for the type of its result
        if not single[0]:
            return fn.fun(*args)
        out = Var(graph.out_types[0])
        self.eqns.append(Eqn(CustomVJPCall(fn, out.ttype), atoms, {}, [out],
                             user_source_info()))
        return GraphTracer(self, out)


def trace_example(fun, in_types, name: str) -> tuple[Graph, list]:
    """Like ``tracing.trace_subgraph``, on an ``ExampleTrace``: (graph, captured values)."""
    with new_trace(ExampleTrace) as trace:
        tracers = [trace.new_input(t) for t in in_types]
        leaves = fun(*tracers)
        outputs = [trace.to_atom(leaf) for leaf in leaves]
    return Graph(trace.inputs + trace.capture_vars, trace.eqns, outputs, [], name), \
        trace.captured
