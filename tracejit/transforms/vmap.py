"""``tracejit.vmap``: a function of one example turned into a function of a batch.

``vmap(f)(*args)`` traces ``f`` once on one example's worth of abstract values (a graph with
the batch axis removed from every batched argument), then evaluates that graph with the
batching interpreter (``transforms/batching.py``): each primitive's batching rule applies it to
the whole batch at once. Arguments that are not batched (``in_axes`` None) are given to ``f``
as they are, so Python code may read their values and shapes.
"""
from __future__ import annotations

import functools
import inspect

import numpy as np

from .. import dtypes, pytree
from ..errors import TracerConversionError, at_user_line
from ..ir import TensorType
from ..primitives import batch_support as B
from ..tracing import leaf_type
from .batching import batch_eval, check_batchable
from .custom_batch import trace_example


def _is_axis_leaf(node) -> bool:
    return node is None or isinstance(node, (int, np.integer)) and not isinstance(node, bool)


def _check_axis_spec(spec, what: str):
    leaves, _ = pytree.flatten(spec, is_leaf=_is_axis_leaf)
    for leaf in leaves:
        if not _is_axis_leaf(leaf):
            raise TypeError(at_user_line(
                f"vmap: {what} holds {leaf!r}; axes are ints (negative counts from the end) "
                "or None (not batched), alone or in a tree shaped like a prefix of the values"))


def _expand(spec, tree_value, what: str) -> list:
    """One axis (int or None) per leaf of ``tree_value``, from the prefix tree ``spec``."""
    if _is_axis_leaf(spec):
        return [None if spec is None else int(spec)] * len(pytree.flatten(tree_value)[0])
    spec_leaves, spec_tree = pytree.flatten(spec, is_leaf=_is_axis_leaf)
    try:
        subtrees = pytree.flatten_up_to(spec_tree, tree_value, what)
    except ValueError as e:
        raise ValueError(at_user_line(f"vmap: {what} does not match the structure of the "
                                      f"value it describes: {e}")) from None
    axes = []
    for axis, sub in zip(spec_leaves, subtrees):
        axes += [None if axis is None else int(axis)] * len(pytree.flatten(sub)[0])
    return axes


def _arg_names(fun, n: int) -> list[str]:
    """``argument 1 (`x`)`` per positional argument, with the parameter name where known."""
    try:
        params = [p for p in inspect.signature(fun).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    return [f"argument {i} (`{params[i].name}`)" if i < len(params) else f"argument {i}"
            for i in range(n)]


def _leaf_type(leaf, path: str) -> TensorType:
    return leaf_type(leaf, f"vmap: {path}", "vmap")


def _in_axes_per_leaf(in_axes, args, kwargs, names) -> list:
    if _is_axis_leaf(in_axes):
        per_arg = [in_axes] * len(args)
    elif isinstance(in_axes, (tuple, list)):
        if len(in_axes) != len(args):
            raise ValueError(at_user_line(
                f"vmap: in_axes has {len(in_axes)} entries but the function was called with "
                f"{len(args)} positional argument(s); give one entry per argument (or one int "
                "or None for all)"))
        per_arg = list(in_axes)
    else:
        raise TypeError(at_user_line(
            f"vmap: in_axes must be an int, None, or a tuple with one entry per positional "
            f"argument, not a {type(in_axes).__name__}"))
    axes = []
    for i, (spec, arg) in enumerate(zip(per_arg, args)):
        axes += _expand(spec, arg, f"in_axes[{i}] for {names[i]}")
    return axes + [0] * len(pytree.flatten(kwargs)[0])  # keyword arguments: batched at 0


def _normalised(axis, ndim: int, what: str) -> int:
    if not -ndim <= axis < ndim:
        raise ValueError(at_user_line(
            f"vmap: axis {axis} is out of range for {what}, which has {ndim} dimension(s)"
            + (" (a scalar cannot be batched: give it in_axes None)" if ndim == 0 else "")))
    return axis % ndim


def _batch_size(types, axes, paths, axis_size) -> int:
    sizes = [(t.shape[a], p, a) for t, a, p in zip(types, axes, paths) if a is not None]
    distinct = sorted({n for n, _, _ in sizes})
    if len(distinct) > 1:
        listing = "; ".join(f"{p} has size {n} along axis {a}" for n, p, a in sizes)
        raise ValueError(at_user_line(f"vmap: the batched arguments have different sizes "
                                      f"along their batch axes: {listing}"))
    if axis_size is not None:
        if distinct and distinct[0] != axis_size:
            raise ValueError(at_user_line(
                f"vmap: axis_size={axis_size}, but the batched arguments have size "
                f"{distinct[0]} along their batch axes"))
        return int(axis_size)
    if not distinct:
        raise ValueError(at_user_line("vmap: no argument is batched (every in_axes is None); "
                                      "give axis_size= to say how many copies to make"))
    return distinct[0]


def _place_output(value, d, axis, size, path, inputs):
    ndim = len(np.shape(value)) + (d is None)  # the rank with the batch axis
    if axis is None:
        if d is not None:
            raise ValueError(at_user_line(
                f"vmap: out_axes is None for {path}, but that output varies along the batch "
                "axis; give it an int axis"))
        return value
    axis = _normalised(axis, ndim, f"out_axes for {path}")
    placed = B.batched_at(value, d, size, axis)
    if isinstance(placed, np.ndarray) and (not (placed.flags.owndata and placed.flags.writeable)
                                           or any(placed is x for x in inputs)):
        placed = np.array(placed, copy=True)  # an eager result may be a view, or an input
    return placed


def vmap(fun, in_axes=0, out_axes=0, axis_size=None):
    """``fun`` mapped over an axis of its arguments, all examples at once (no Python loop).

    >>> import numpy as np, tracejit
    >>> w = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> tracejit.vmap(lambda x: w @ x)(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
    array([[1., 3.],
           [2., 4.],
           [3., 7.]])

    ``in_axes``: the batch axis of each argument: an int for all of them, None for none, or a
    tuple with one entry per positional argument, each an int, None or a tree of them shaped
    like a prefix of that argument (``({'w': None, 'b': 0}, 0)``). Negative axes count from
    the end. Keyword arguments are batched along axis 0. ``out_axes`` says where the batch
    axis goes in each output, the same way (None: the output must not vary). ``axis_size``
    gives the batch size when no argument is batched.

    It composes with every transform: ``vmap(grad(f))`` gives per-example gradients,
    ``compile(vmap(f))`` fuses the batched graph, ``vmap(vmap(f))`` maps twice.
    """
    _check_axis_spec(in_axes, "in_axes")
    _check_axis_spec(out_axes, "out_axes")
    if axis_size is not None and (not isinstance(axis_size, (int, np.integer)) or axis_size < 0):
        raise TypeError(at_user_line(f"vmap: axis_size must be a non-negative int, not "
                                     f"{axis_size!r}"))
    name = getattr(fun, "__name__", "f")

    @functools.wraps(fun, updated=())
    def vmapped(*args, **kwargs):
        names = _arg_names(fun, len(args))
        leaves, tree = pytree.flatten((args, kwargs))
        paths = [_display_path(p, names) for p in pytree.leaf_paths(tree, "")]
        axes = _in_axes_per_leaf(in_axes, args, kwargs, names)
        types = [_leaf_type(leaf, p) for leaf, p in zip(leaves, paths)]
        axes = [None if a is None else _normalised(a, t.ndim, f"{p} (shape {t.shape})")
                for a, t, p in zip(axes, types, paths)]
        size = _batch_size(types, axes, paths, axis_size)
        batched = [k for k, a in enumerate(axes) if a is not None]
        example_types = [types[k].with_shape(tuple(n for i, n in enumerate(types[k].shape)
                                                   if i != axes[k])) for k in batched]
        out_tree = []

        def flat_fun(*tracers):
            full = list(leaves)
            for k, tracer in zip(batched, tracers):
                full[k] = tracer
            a, kw = pytree.unflatten(tree, full)
            outs, t = pytree.flatten(fun(*a, **kw))
            out_tree[:] = [t]
            return [np.asarray(o) if dtypes.is_python_scalar(o) else o for o in outs]

        try:
            graph, captured = trace_example(flat_fun, example_types, f"vmap_{name}")
        except TracerConversionError as e:
            raise TracerConversionError(
                f"vmap({name}): a concrete value was needed while tracing; the batched "
                "arguments are traced (one value per example, unknown while tracing), so a "
                "configuration value must be passed unbatched (in_axes None). " + str(e)) \
                from None
        check_batchable(graph)
        values = [leaves[k] for k in batched] + list(captured)
        bdims = [axes[k] for k in batched] + [None] * len(captured)
        outs, out_bdims = batch_eval(graph, values, bdims)
        out_paths = pytree.leaf_paths(out_tree[0], "output")
        out_spec = _expand(out_axes, pytree.unflatten(out_tree[0], outs), "out_axes")
        placed = [_place_output(v, d, a, size, p, leaves)
                  for v, d, a, p in zip(outs, out_bdims, out_spec, out_paths)]
        return pytree.unflatten(out_tree[0], placed)

    return vmapped


def _display_path(path: str, names) -> str:
    """``[0][1]['w']`` (the path in ``(args, kwargs)``) as ``argument 1 (`x`)['w']``."""
    if path.startswith("[0]["):
        index, rest = path[4:].split("]", 1)
        return names[int(index)] + rest
    if path.startswith("[1]"):
        return "keyword argument " + path[3:]
    return path


__all__ = ["vmap"]
