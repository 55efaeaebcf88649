"""Small operations the batching rules are written in (the ``vmap`` counterpart of
``ad_support``).

A batching rule receives its operands with a batch axis at ``bdims[i]`` (None: not batched) and
returns its result with the batch axis somewhere it says. The helpers here move that axis,
give an unbatched operand one (a broadcast, which fusion folds into whatever reads it), and
renumber axis parameters. Like the derivative rules they go through ``bind``, so they work on
NumPy arrays (an eager ``vmap``), graph tracers (under ``compile``) and autodiff tracers.
"""
from __future__ import annotations

from ..tracing import current_graph_trace, find_trace
from .registry import REGISTRY


def _p(name):
    return REGISTRY[name]


def bind_in_graph(name, x, **params):
    """``bind``, except that a constant operand under a graph being traced is recorded there
    rather than computed now: a batch-sized broadcast of a literal stays one equation (that
    fusion folds away), not an array baked into the graph."""
    graph = current_graph_trace()
    if graph is not None and find_trace([x]) is None:
        return graph.process(_p(name), [x], params)[0]
    return _p(name).bind(x, **params)


def batch_size(args, dims) -> int:
    """The size of the batch axis, read from the first batched operand."""
    for x, d in zip(args, dims):
        if d is not None:
            return int(x.shape[d])
    raise ValueError("a batching rule was called with no batched operand")


def moveaxis(x, src: int, dst: int):
    """``x`` with axis ``src`` moved to position ``dst`` (the others keep their order)."""
    if src == dst:
        return x
    order = [i for i in range(len(x.shape)) if i != src]
    order.insert(dst, src)
    return bind_in_graph("transpose", x, perm=tuple(order))


def broadcast_batch(x, size: int, at: int = 0):
    """An unbatched ``x`` given a batch axis of ``size`` at position ``at``."""
    shape = list(x.shape)
    shape.insert(at, size)
    dims = tuple(i if i < at else i + 1 for i in range(len(x.shape)))
    return bind_in_graph("broadcast_in_dim", x, shape=tuple(shape), dims=dims)


def batched_at(x, d, size: int, at: int = 0):
    """``x`` (batched at ``d``, or not batched when ``d`` is None) batched at ``at``."""
    return broadcast_batch(x, size, at) if d is None else moveaxis(x, d, at)


def all_batched_at(args, dims, at: int = 0) -> list:
    """Every operand batched at ``at`` (the unbatched ones broadcast)."""
    size = batch_size(args, dims)
    return [batched_at(x, d, size, at) for x, d in zip(args, dims)]


def shift_axis(axis: int, bdim: int) -> int:
    """An axis of the unbatched operand, numbered in the operand batched at ``bdim``."""
    return axis + 1 if axis >= bdim else axis


def shift_axes(axes, bdim: int) -> tuple:
    return tuple(shift_axis(a, bdim) for a in axes)


def dim_after_removing(bdim: int, removed) -> int:
    """Where the batch axis ``bdim`` ends up once the (batched-numbering) ``removed`` axes
    are gone."""
    return bdim - sum(1 for a in removed if a < bdim)


# --- generic rules ---------------------------------------------------------------------------

def elementwise_rule(prim):
    """Operands of an elementwise primitive share one shape: batched ones are brought to one
    batch position (kept where they all agree: no transpose), unbatched ones broadcast."""
    def rule(args, bdims, **params):
        size = batch_size(args, bdims)
        positions = sorted({d for d in bdims if d is not None})
        at = positions[0] if len(positions) == 1 else 0
        return prim.bind(*[batched_at(x, d, size, at) for x, d in zip(args, bdims)],
                         **params), at
    return rule


def axis_rule(prim, param: str):
    """A primitive working along one axis (``axis=``), the batch axis left where it is."""
    def rule(args, bdims, **params):
        (x,), (d,) = args, bdims
        params[param] = shift_axis(params[param], d)
        return prim.bind(x, **params), d
    return rule


def no_operands_rule(prim):
    """A primitive with no operands (``iota``): nothing of it is ever batched; the rule is
    the primitive itself, its result unbatched."""
    def rule(args, bdims, **params):
        return prim.bind(*args, **params), None
    return rule


def leading_batch_rule(prim):
    """A primitive whose leading axes are already a batch that its operands share (the
    linear-algebra ones, over stacks of matrices): the batch axis of ``vmap`` becomes one more
    leading axis of every operand (the unbatched ones broadcast), so the primitive runs once
    over the whole stack; every result is batched at 0."""
    def rule(args, bdims, **params):
        out = prim.bind(*all_batched_at(args, bdims, 0), **params)
        return (list(out), [0] * len(out)) if prim.multiple_results else (out, 0)
    return rule
