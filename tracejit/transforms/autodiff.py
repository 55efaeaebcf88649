"""Automatic differentiation: vjp, jvp, grad, value_and_grad, stop_gradient and custom_vjp
(the Jacobians, ``jacfwd``, ``jacrev`` and ``hessian``, are ``vmap`` of these: ``jacobians.py``).

Reverse mode runs the function on a tape (``ad_traces.TapeTrace``) and then walks the tape
backwards applying each primitive's VJP rule; forward mode runs it on dual numbers. Both work on
concrete values (plain calls, where Python control flow on values is allowed) and inside
``compile`` (where the derivative computations become equations of the compiled graph), and they
compose: ``grad(grad(f))``, ``jacfwd(jacrev(f))``, ``compile(grad(f))``, ``grad(compile(f))``.

Broadcasting is explicit in the IR, so cotangents are reduced back to an input's shape in one
place: the VJP of ``broadcast_in_dim``.
"""
from __future__ import annotations

import functools
import warnings

import numpy as np

from .. import config, dtypes, errors, pytree
from ..errors import at_user_line
from ..primitives import REGISTRY
from ..primitives import ad_support as A
from ..tracing import Tracer, find_trace, new_trace
from .ad_traces import ADTracer, JVPTrace, JVPTracer, TapeTrace, TapeTracer, is_float


def _as_value(leaf, what: str):
    """A primal leaf as (value, weak): NumPy arrays and tracers as they are, scalars as arrays."""
    if isinstance(leaf, Tracer):
        return leaf, leaf.ttype.weak
    if dtypes.is_python_scalar(leaf):
        return np.asarray(leaf), True
    if isinstance(leaf, (np.ndarray, np.generic)):
        dtypes.canonical_dtype(leaf.dtype)
        return np.asarray(leaf), False
    raise TypeError(at_user_line(f"{what} is a {type(leaf).__name__}; differentiation needs "
                                 "arrays and scalars (in tuples, lists or dicts)"))


def _backward(tape, out_nodes, cts):
    """Walk the tape in reverse; returns {node: cotangent} for the nodes that received one."""
    ct_env: dict[int, object] = {}

    def accumulate(node, ct):
        ct_env[node] = ct if node not in ct_env else A.add(ct_env[node], ct)

    with errors.backward_pass():  # what this makes is marked backward (pictures show it)
        for node, ct in zip(out_nodes, cts):
            if node is not None:
                accumulate(node, ct)
        for entry in reversed(tape):
            if isinstance(entry.node, list):  # several results: a cotangent (or None) each
                ct = [None if n is None else ct_env.pop(n, None) for n in entry.node]
                if all(c is None for c in ct):
                    continue
            else:
                ct = ct_env.pop(entry.node, None)
                if ct is None:
                    continue
            needed = tuple(node is not None for node in entry.inputs)
            in_cts = entry.rule.pullback(ct, entry.values, entry.out, needed, entry.params)
            for node, in_ct in zip(entry.inputs, in_cts):
                if node is not None and in_ct is not None:
                    accumulate(node, in_ct)
    return ct_env


def _checked_cotangent(ct, value, index):
    shape = tuple(ct.shape) if isinstance(ct, Tracer) else np.shape(ct)
    if shape != tuple(np.shape(value)):
        raise ValueError(at_user_line(
            f"cotangent {index} has shape {shape}, but the output it belongs to has "
            f"shape {tuple(np.shape(value))}"))
    if isinstance(ct, Tracer):
        return ct if ct.dtype == value.dtype else REGISTRY["convert"].bind(ct, dtype=value.dtype)
    return np.asarray(ct, dtype=value.dtype)


def vjp(fun, *primals, has_aux=False):
    """``(out, vjp_fn)`` (``(out, vjp_fn, aux)`` with has_aux): ``vjp_fn(ct)`` pulls a cotangent
    of the output back to cotangents of every primal (same structure as ``primals``).

    >>> import numpy as np, tracejit
    >>> out, pullback = tracejit.vjp(lambda x: x * x, np.array([1.0, 2.0]))
    >>> pullback(np.array([1.0, 1.0]))
    (array([2., 4.]),)
    """
    leaves, in_tree = pytree.flatten(primals)
    values = [_as_value(leaf, f"primal {i}") for i, leaf in enumerate(leaves)]
    with new_trace(TapeTrace) as trace:
        tracers = [trace.new_input(v, weak) for v, weak in values]
        result = fun(*pytree.unflatten(in_tree, tracers))
        if has_aux:
            if not (isinstance(result, tuple) and len(result) == 2):
                raise TypeError(at_user_line("with has_aux=True the function must return a pair "
                                             "(output, auxiliary data)"))
            result, aux = result
        out_leaves, out_tree = pytree.flatten(result)
        out_tracers = [trace.lift(o) for o in out_leaves]
    out_values = [t.value for t in out_tracers]
    out_nodes = [t.node for t in out_tracers]

    def vjp_fn(ct):
        ct_leaves, ct_tree = pytree.flatten(ct)
        if ct_tree != out_tree:
            raise ValueError(at_user_line(f"cotangent structure {ct_tree} differs from the "
                                          f"output structure {out_tree}"))
        cts = [_checked_cotangent(c, v, i) for i, (c, v) in enumerate(zip(ct_leaves, out_values))]
        ct_env = _backward(trace.tape, out_nodes, cts)
        grads = []
        for tracer in tracers:
            g = ct_env.get(tracer.node) if tracer.node is not None else None
            grads.append(A.zeros_like(tracer.value) if g is None else g)
        vjp_fn.reached = [t.node in ct_env for t in tracers]
        return pytree.unflatten(in_tree, grads)

    out = pytree.unflatten(out_tree, out_values)
    if has_aux:
        return out, vjp_fn, stop_gradient(aux)
    return out, vjp_fn


def jvp(fun, primals, tangents):
    """``(out, tangent_out)``: the output and its directional derivative along ``tangents``.

    >>> import numpy as np, tracejit
    >>> tracejit.jvp(np.sin, (np.array(0.0),), (np.array(2.0),))
    (array(0.), array(2.))
    """
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TypeError(at_user_line("jvp(fun, primals, tangents) takes primals and tangents as "
                                     "tuples (one entry per argument of fun)"))
    leaves, in_tree = pytree.flatten(tuple(primals))
    t_leaves, t_tree = pytree.flatten(tuple(tangents))
    if t_tree != in_tree:
        raise ValueError(at_user_line(f"tangent structure {t_tree} differs from the primal "
                                      f"structure {in_tree}"))
    values = [_as_value(leaf, f"primal {i}") for i, leaf in enumerate(leaves)]
    with new_trace(JVPTrace) as trace:
        tracers = []
        for i, ((v, weak), t) in enumerate(zip(values, t_leaves)):
            if np.shape(t) != np.shape(v):
                raise ValueError(at_user_line(f"tangent {i} has shape {np.shape(t)}, its primal "
                                              f"has shape {np.shape(v)}"))
            tangent = None
            if is_float(v):
                tangent = t if isinstance(t, Tracer) else np.asarray(t, dtype=v.dtype)
            tracers.append(JVPTracer(trace, v, tangent, weak))
        result = fun(*pytree.unflatten(in_tree, tracers))
        out_leaves, out_tree = pytree.flatten(result)
        out_tracers = [trace.lift(o) for o in out_leaves]
    out = [t.value for t in out_tracers]
    tangent_out = [t.tangent if t.tangent is not None else A.zeros_like(t.value)
                   for t in out_tracers]
    return pytree.unflatten(out_tree, out), pytree.unflatten(out_tree, tangent_out)


# --- grad and friends ------------------------------------------------------------------------

def _argnums_tuple(argnums, nargs, name):
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for n in nums:
        if not -nargs <= n < nargs:
            raise ValueError(at_user_line(f"{name}: argnums {argnums} out of range for "
                                          f"{nargs} positional argument(s)"))
    return tuple(n % nargs for n in nums)


def _check_real_inputs(args, nums, name):
    for n in nums:
        leaves, tree = pytree.flatten(args[n])
        for leaf, path in zip(leaves, pytree.leaf_paths(tree, f"argument {n}")):
            dtype = dtypes.python_scalar_dtype(leaf) if dtypes.is_python_scalar(leaf) else \
                np.asarray(leaf).dtype if not isinstance(leaf, Tracer) else leaf.dtype
            if dtype.kind != "f":
                hint = " (write 1.0, not 1)" if dtypes.is_python_scalar(leaf) else ""
                raise TypeError(at_user_line(
                    f"{name} requires real floating-point inputs, but {path} has dtype "
                    f"{dtype}{hint}. Convert it with .astype(float), or differentiate with "
                    "respect to another argument (argnums=...)"))


def _replace_args(args, nums, new):
    full = list(args)
    for n, value in zip(nums, new):
        full[n] = value
    return full


def value_and_grad(fun, argnums=0, has_aux=False):
    """Like ``grad``, returning ``(value, gradient)`` (``((value, aux), gradient)`` with
    has_aux)."""

    @functools.wraps(fun, updated=())
    def value_and_grad_fn(*args, **kwargs):
        nums = _argnums_tuple(argnums, len(args), "grad")
        _check_real_inputs(args, nums, "grad")
        diff = [args[n] for n in nums]

        def partial(*new):
            return fun(*_replace_args(args, nums, new), **kwargs)

        result = vjp(partial, *diff, has_aux=has_aux)
        (out, pullback, aux) = result if has_aux else (*result, None)
        out_leaves, _ = pytree.flatten(out)
        if len(out_leaves) != 1 or np.shape(out_leaves[0]) != () or \
                np.dtype(out_leaves[0].dtype).kind != "f":
            got = ", ".join(f"{np.dtype(getattr(v, 'dtype', np.asarray(v).dtype))}"
                            f"{list(np.shape(v))}" for v in out_leaves)
            raise TypeError(at_user_line(
                f"grad requires a function with a real scalar output, but it returned {got}. "
                "For a non-scalar output use tracejit.jacrev, or tracejit.vjp with a cotangent; "
                "to differentiate a sum, return x.sum()"))
        grads = pullback(pytree.unflatten(pytree.flatten(out)[1], [A.full_like(out_leaves[0],
                                                                                1)]))
        if config.get("debug") >= 1:
            for n, reached in zip(nums, pullback.reached):
                if not reached:
                    warnings.warn(f"grad: the output does not depend on argument {n}; its "
                                  "gradient is zero", stacklevel=2)
        grads = grads[0] if isinstance(argnums, int) else tuple(grads)
        return ((out, aux) if has_aux else out), grads

    return value_and_grad_fn


def grad(fun, argnums=0, has_aux=False):
    """The gradient of a real scalar-valued ``fun`` with respect to argument(s) ``argnums``.

    >>> import numpy as np, tracejit
    >>> tracejit.grad(lambda x: (x * x).sum())(np.array([1.0, 2.0, 3.0]))
    array([2., 4., 6.])
    """
    value_and_grad_fn = value_and_grad(fun, argnums, has_aux)

    @functools.wraps(fun, updated=())
    def grad_fn(*args, **kwargs):
        value, grads = value_and_grad_fn(*args, **kwargs)
        return (grads, value[1]) if has_aux else grads

    return grad_fn


def _one_argument(fun, args, kwargs, argnums, name):
    """(x, partial): the differentiated argument as an array, and fun as a function of it."""
    if not isinstance(argnums, int):
        raise TypeError(at_user_line(f"{name} takes a single int argnums"))
    n = _argnums_tuple(argnums, len(args), name)[0]
    _check_real_inputs(args, (n,), name)
    x, _ = _as_value(args[n], f"argument {n}")

    def partial(v):
        return fun(*_replace_args(args, (n,), (v,)), **kwargs)

    return x, partial


def stop_gradient(x):
    """The value of ``x`` with no derivative flowing through it (any pytree).

    >>> import numpy as np, tracejit
    >>> tracejit.grad(lambda x: (tracejit.stop_gradient(x * x) * x).sum())(np.array([3.0]))
    array([9.])
    """
    def strip(v):
        while isinstance(v, ADTracer):
            v = v.value
        return v

    leaves, tree = pytree.flatten(x)
    return pytree.unflatten(tree, [strip(v) for v in leaves])


# --- custom_vjp ------------------------------------------------------------------------------

class _CustomRule:
    """Stands in for a primitive on the tape: its vjp calls the user's backward function."""

    name = "custom_vjp"

    def __init__(self, fun_name, bwd, residuals, nargs):
        self.fun_name, self.bwd, self.residuals, self.nargs = fun_name, bwd, residuals, nargs

    def pullback(self, ct, values, out, needed, params):
        cts = self.bwd(self.residuals, ct)
        if not isinstance(cts, (tuple, list)) or len(cts) != self.nargs:
            raise TypeError(at_user_line(
                f"the backward function of custom_vjp `{self.fun_name}` must return a tuple with "
                f"one cotangent per argument ({self.nargs}), got {type(cts).__name__}"))
        return list(cts)


class custom_vjp:  # noqa: N801  (a decorator, named like JAX's)
    """A function with a user-defined gradient.

    >>> import numpy as np, tracejit, tracejit.numpy as tnp
    >>> @tracejit.custom_vjp
    ... def log1pexp(x):
    ...     return tnp.log1p(tnp.exp(x))
    >>> def fwd(x):
    ...     return log1pexp(x), x
    >>> def bwd(x, ct):
    ...     return (ct * (1 - 1 / (1 + tnp.exp(x))),)   # stable where exp(x) overflows
    >>> log1pexp.defvjp(fwd, bwd)
    >>> with np.errstate(over="ignore"):   # exp(1000) overflows in the forward pass
    ...     tracejit.grad(lambda x: log1pexp(x).sum())(np.array([0.0, 1000.0]))
    array([0.5, 1. ])

    ``fwd(*args) -> (out, residuals)`` runs the forward pass; ``bwd(residuals, ct)`` returns one
    cotangent per argument. Forward mode (jvp, jacfwd) differentiates the original function.
    """

    def __init__(self, fun):
        self.fun = fun
        self.fwd = self.bwd = None
        functools.update_wrapper(self, fun, updated=())  # never merge fun's __dict__ in

    def defvjp(self, fwd, bwd) -> None:
        self.fwd, self.bwd = fwd, bwd

    def __call__(self, *args):
        trace = find_trace(list(pytree.flatten(args)[0]))
        if not isinstance(trace, TapeTrace):
            # A trace that carries the custom rule through a transform of its own (vmap's)
            # takes the call; any other runs the function.
            keep = getattr(trace, "custom_vjp_call", None)
            return keep(self, args) if keep is not None else self.fun(*args)
        if self.fwd is None:
            raise TypeError(at_user_line(f"custom_vjp `{self.fun.__name__}` is being "
                                         "differentiated, but defvjp(fwd, bwd) was never called"))
        tracers = [trace.lift(a) for a in args]
        values = [t.value for t in tracers]
        out, residuals = self.fwd(*values)
        nodes = [t.node for t in tracers]
        if isinstance(out, TapeTracer) and out._trace is trace:  # fwd closed over our tracers
            return out
        if not is_float(out) or all(n is None for n in nodes):
            return trace.lift(out)
        rule = _CustomRule(self.fun.__name__, self.bwd, residuals, len(args))
        return trace.record(rule, nodes, values, {}, out)


__all__ = ["custom_vjp", "grad", "jvp", "stop_gradient", "value_and_grad", "vjp"]
