"""Structured control flow: ``cond``, ``fori_loop``, ``while_loop`` and ``scan``.

Tracing runs Python's own ``if`` and ``for`` at trace time: a loop is unrolled and a branch on
a traced value is an error. These functions instead trace the functions they are given once,
into sub-graphs, and record one equation holding them (``primitives/control.py``); compiled
backends turn it into a real branch or loop inside the compiled function, and every transform
(``grad``, ``jvp``, ``vjp``) has rules for it (``transforms/control_ad.py``).

They work everywhere: under ``tracejit.compile``, under ``grad``, and on plain NumPy values
(the loop then runs on the interpreter). Carries and operands may be pytrees (tuples, lists,
dicts of arrays). A loop's carry must keep its structure, shapes and dtypes across iterations;
the one exception follows NumPy: a Python scalar in the initial carry (weakly typed) takes the
dtype the body gives it (``s = 0.0; s = s + x32[i]`` makes ``s`` float32).

    def newton(x0, a):                            # solve x**2 = a
        return tracejit.while_loop(lambda x: abs(x * x - a) > 1e-12,
                                   lambda x: x - (x * x - a) / (2 * x), x0)
"""
from __future__ import annotations

import numpy as np

from . import dtypes, pytree
from .errors import at_user_line
from .ir import TensorType
from .primitives import REGISTRY
from .primitives import control as C
from .tracing import Tracer, leaf_type, trace_subgraph
from .transforms import control_ad  # noqa: F401  (attaches the derivative rules)
from .transforms import control_batch  # noqa: F401  (attaches the batching rules)


def _leaf_type(leaf, what: str) -> TensorType:
    return leaf_type(leaf, what, "control flow")


def _as_type(leaf, ttype: TensorType):
    """``leaf`` with ``ttype``'s dtype (a weak initial carry after its type was settled)."""
    if isinstance(leaf, Tracer):
        if leaf.dtype == ttype.dtype:
            return leaf
        return REGISTRY["convert"].bind(leaf, dtype=ttype.dtype, weak=ttype.weak)
    if dtypes.is_python_scalar(leaf) and ttype.weak and \
            dtypes.python_scalar_dtype(leaf) == ttype.dtype:
        return leaf
    return np.asarray(leaf, dtype=ttype.dtype)


class _Promote(Exception):
    """A weakly typed carry leaf came back with another dtype: trace again with that one."""

    def __init__(self, index: int, ttype: TensorType):
        self.index, self.ttype = index, ttype


def _carry_out(what, out, tree, types, paths) -> list:
    """The leaves of a returned carry, checked against the carry going in. A weakly typed
    value coming back takes the carry's dtype; a weakly typed carry takes the dtype coming
    back (``_Promote``); anything else must match exactly."""
    leaves, out_tree = pytree.flatten(out)
    if out_tree != tree:
        raise TypeError(at_user_line(
            f"{what}: the body returns a carry with structure {out_tree}, but the carry has "
            f"structure {tree}; a loop carry must keep its structure across iterations"))
    result = []
    for k, (leaf, t, path) in enumerate(zip(leaves, types, paths)):
        got = _leaf_type(leaf, path)
        if got.shape != t.shape or (got.dtype != t.dtype and not (t.weak or got.weak)):
            raise TypeError(at_user_line(
                f"{what}: {path} comes back from the body as {got}, but went in as {t}; a "
                "loop carry must keep its shape and dtype across iterations (convert with "
                ".astype(...), or start the carry with the type the body gives it)"))
        if got.dtype != t.dtype:
            if t.weak:
                raise _Promote(k, TensorType(t.shape, got.dtype, got.weak))
            leaf = _as_type(leaf, t)
        result.append(leaf)
    return result


def _settle_carry(trace_once, types):
    """Trace a body until its carry types are a fixed point (at most one promotion per
    weakly typed leaf): (whatever ``trace_once`` returned, the final carry types)."""
    types = list(types)
    for _ in range(2 * len(types) + 1):
        try:
            return trace_once(types), types
        except _Promote as p:
            types[p.index] = p.ttype
    raise TypeError(at_user_line("a loop carry's dtype does not settle across iterations"))


def _carry(init, what):
    leaves, tree = pytree.flatten(init)
    paths = pytree.leaf_paths(tree, "carry")
    return leaves, tree, paths, [_leaf_type(leaf, p) for leaf, p in zip(leaves, paths)]


def _scalar_pred(value, what: str):
    """A scalar predicate as a boolean (non-zero is true, as in Python)."""
    t = _leaf_type(value, what)
    if t.shape != ():
        raise TypeError(at_user_line(f"{what} must be a scalar, but it is {t}"))
    if t.dtype.kind == "b":
        return value
    if isinstance(value, Tracer):
        return value != 0
    return np.asarray(bool(value))


# --- cond ------------------------------------------------------------------------------------

def cond(pred, true_fun, false_fun, *operands):
    """``true_fun(*operands)`` if ``pred`` else ``false_fun(*operands)``, as one branch in
    the compiled code (only the branch taken runs).

    >>> import numpy as np, tracejit
    >>> f = tracejit.compile(lambda x: tracejit.cond(x.sum() > 0, lambda v: v * 2,
    ...                                              lambda v: -v, x))
    >>> f(np.array([1.0, 2.0])), f(np.array([-1.0, -2.0]))
    (array([2., 4.]), array([1., 2.]))

    Both functions must return the same structure of the same shapes and dtypes (Python
    scalars take the other branch's dtype). ``pred`` is a scalar; a number is true when
    non-zero. Values the functions close over are passed to the branch, not baked in.
    """
    pred = _scalar_pred(pred, "cond: the predicate")
    leaves, tree = pytree.flatten(operands)
    types = [_leaf_type(leaf, p) for leaf, p in zip(leaves, pytree.leaf_paths(tree, "operand"))]

    def trace_branch(fun, name, targets=None):
        out_tree = []

        def f(*xs):
            out = fun(*pytree.unflatten(tree, xs))
            outs, t = pytree.flatten(out)
            out_tree.append(t)
            if targets is not None:
                outs = [_as_type(o, tt) if tt is not None else o for o, tt in zip(outs, targets)]
            return outs
        graph, _, captured = trace_subgraph(f, types, name)
        return graph, out_tree[0], captured

    t_graph, t_tree, t_captured = trace_branch(true_fun, "true_branch")
    f_graph, f_tree, f_captured = trace_branch(false_fun, "false_branch")
    if t_tree != f_tree:
        raise TypeError(at_user_line(f"cond: the branches return different structures: "
                                     f"{t_tree} from true_fun, {f_tree} from false_fun"))
    t_targets, f_targets = _branch_targets(t_graph.out_types, f_graph.out_types,
                                           pytree.leaf_paths(t_tree, "output"))
    if any(t_targets):
        t_graph, _, t_captured = trace_branch(true_fun, "true_branch", t_targets)
    if any(f_targets):
        f_graph, _, f_captured = trace_branch(false_fun, "false_branch", f_targets)
    t_graph, f_graph, captured = C.join_branches(t_graph, t_captured, f_graph, f_captured,
                                                 len(leaves))
    outs = C.cond.bind(pred, *leaves, *captured, true_branch=t_graph, false_branch=f_graph)
    return pytree.unflatten(t_tree, outs)


def _branch_targets(t_types, f_types, paths):
    """Per output, the type each branch must convert to (None: already right)."""
    t_targets, f_targets = [], []
    for t, f, path in zip(t_types, f_types, paths):
        t_to = f_to = None
        if t.shape != f.shape or (t.dtype != f.dtype and not (t.weak or f.weak)):
            raise TypeError(at_user_line(
                f"cond: {path} is {t} in true_fun but {f} in false_fun; both branches must "
                "return the same shapes and dtypes"))
        if t.dtype != f.dtype:
            if t.weak and f.weak:
                both = TensorType(t.shape, np.promote_types(t.dtype, f.dtype), True)
                t_to, f_to = (both if t.dtype != both.dtype else None,
                              both if f.dtype != both.dtype else None)
            elif t.weak:
                t_to = f
            else:
                f_to = t
        t_targets.append(t_to)
        f_targets.append(f_to)
    return t_targets, f_targets


# --- fori_loop -------------------------------------------------------------------------------

def _bounds(lower, upper):
    """The bounds as operands, and the type of the loop index the body receives."""
    traced = [b for b in (lower, upper) if isinstance(b, Tracer)]
    for name, b in (("lower", lower), ("upper", upper)):
        t = _leaf_type(b, f"fori_loop: {name}")
        if t.shape != () or t.dtype.kind not in "iu":
            raise TypeError(at_user_line(f"fori_loop: {name} must be an integer scalar, not "
                                         f"{t}" + (" (a bool)" if t.dtype.kind == "b" else "")))
    if not traced:  # Python ints: the index is a weakly typed int, like range()'s
        return int(lower), int(upper), TensorType((), np.int64, weak=True)
    index = TensorType((), np.int64)
    return _as_type(lower, index), _as_type(upper, index), index


def fori_loop(lower, upper, body_fun, init):
    """``for i in range(lower, upper): carry = body_fun(i, carry)``, as one loop in the
    compiled code.

    >>> import numpy as np, tracejit
    >>> tracejit.fori_loop(0, 5, lambda i, c: c + i, 0)
    array(10)

    Bounds that are Python ints are fixed when tracing (and reverse mode stores each
    iteration's carry: memory grows with the trip count); traced bounds are read when the
    function runs.
    """
    lower, upper, index = _bounds(lower, upper)
    leaves, tree, paths, types = _carry(init, "fori_loop")

    def trace_once(types):
        def f(i, *carry):
            return _carry_out("fori_loop", body_fun(i, pytree.unflatten(tree, carry)), tree,
                              types, paths)
        return trace_subgraph(f, [index, *types], "body")

    (graph, _, captured), types = _settle_carry(trace_once, types)
    leaves = [_as_type(leaf, t) for leaf, t in zip(leaves, types)]
    outs = C.fori_loop.bind(lower, upper, *leaves, *captured, body=graph, n_carry=len(leaves))
    return pytree.unflatten(tree, outs)


# --- while_loop ------------------------------------------------------------------------------

def while_loop(cond_fun, body_fun, init):
    """``while cond_fun(carry): carry = body_fun(carry)``, as one loop in the compiled code.

    >>> import numpy as np, tracejit
    >>> tracejit.while_loop(lambda c: c < 100, lambda c: c * 2, 1)
    array(128)

    ``cond_fun`` returns a scalar (non-zero is true). Reverse mode (``grad``) works: the
    backward pass runs the loop once more, keeping every iteration's carry (memory grows
    with the trip count).
    """
    leaves, tree, paths, types = _carry(init, "while_loop")

    def trace_once(types):
        def f(*carry):
            return _carry_out("while_loop", body_fun(pytree.unflatten(tree, carry)), tree,
                              types, paths)
        return trace_subgraph(f, types, "body")

    (body, _, body_captured), types = _settle_carry(trace_once, types)

    def c(*carry):
        result = cond_fun(pytree.unflatten(tree, carry))
        if pytree.flatten(result)[1] != pytree.LEAF:
            raise TypeError(at_user_line("while_loop: cond_fun must return one scalar, not "
                                         f"a {type(result).__name__}"))
        return [_scalar_pred(result, "while_loop: the value cond_fun returns")]

    cond_graph, _, cond_captured = trace_subgraph(c, types, "cond")
    leaves = [_as_type(leaf, t) for leaf, t in zip(leaves, types)]
    outs = C.while_loop.bind(*leaves, *cond_captured, *body_captured, cond=cond_graph,
                             body=body, n_carry=len(leaves), n_cond_consts=len(cond_captured))
    return pytree.unflatten(tree, outs)


# --- scan ------------------------------------------------------------------------------------

def scan(f, init, xs=None, length=None, reverse=False):
    """Loop ``f(carry, x) -> (carry, y)`` over the leading axis of ``xs``; returns the final
    carry and the ``y`` of every step stacked: ``(carry, ys)``.

    >>> import numpy as np, tracejit
    >>> tracejit.scan(lambda c, x: (c + x, c * x), 0.0, np.array([1.0, 2.0, 3.0]))
    (array(6.), array([0., 2., 9.]))

    ``xs`` may be a pytree of arrays sharing their first dimension, or None with ``length``
    given. ``reverse=True`` runs from the last slice to the first (``ys`` keep ``xs``'s
    order). Reverse mode stores the carry of every step (memory: length x the carry).
    """
    leaves, tree, paths, types = _carry(init, "scan")
    x_leaves, x_tree = pytree.flatten(xs)
    x_paths = pytree.leaf_paths(x_tree, "xs")
    x_types = [_leaf_type(x, p) for x, p in zip(x_leaves, x_paths)]
    for t, p in zip(x_types, x_paths):
        if t.ndim == 0:
            raise TypeError(at_user_line(f"scan: {p} is a scalar; xs are sliced along "
                                         "their first axis"))
    lengths = sorted({t.shape[0] for t in x_types})
    if length is None:
        if len(lengths) != 1:
            raise ValueError(at_user_line(
                "scan: give length= when xs is None" if not lengths else
                f"scan: the xs have different leading dimensions {lengths}"))
        length = lengths[0]
    elif any(n != length for n in lengths):
        raise ValueError(at_user_line(f"scan: length={length}, but the xs have leading "
                                      f"dimensions {lengths}"))
    slices = [TensorType(t.shape[1:], t.dtype) for t in x_types]
    y_tree = []

    def trace_once(types):
        def body(*args):
            carry = pytree.unflatten(tree, args[:len(types)])
            x = pytree.unflatten(x_tree, args[len(types):])
            out = f(carry, x)
            if not (isinstance(out, tuple) and len(out) == 2):
                raise TypeError(at_user_line("scan: f must return a pair (new carry, y)"))
            new = _carry_out("scan", out[0], tree, types, paths)
            ys, t = pytree.flatten(out[1])
            y_tree[:] = [t]
            return new + [np.asarray(y) if dtypes.is_python_scalar(y) else y for y in ys]
        return trace_subgraph(body, [*types, *slices], "body")

    (graph, _, captured), types = _settle_carry(trace_once, types)
    leaves = [_as_type(leaf, t) for leaf, t in zip(leaves, types)]
    outs = C.scan.bind(*leaves, *x_leaves, *captured, body=graph, length=int(length),
                       reverse=bool(reverse), n_carry=len(leaves), n_xs=len(x_leaves))
    n = len(leaves)
    return pytree.unflatten(tree, outs[:n]), pytree.unflatten(y_tree[0], outs[n:])


__all__ = ["cond", "fori_loop", "scan", "while_loop"]
