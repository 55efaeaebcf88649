"""Small operations the derivative rules are written in.

Rules run on whatever values the primal computation had: NumPy arrays (plain ``grad``), graph
tracers (under ``compile``) or autodiff tracers (higher order). Every helper here therefore goes
through ``bind`` (which dispatches on its arguments) and creates constants in the trace of the
value they are shaped like. Primitives are looked up by name at call time: the rule modules
import this one, so it cannot import them.
"""
from __future__ import annotations

import numpy as np

from ..tracing import Tracer, constant_trace
from .registry import REGISTRY


def _p(name):
    return REGISTRY[name]


def full_like(x, value, dtype=None, shape=None):
    """A constant shaped like ``x`` (or ``shape``), in x's trace when x is traced."""
    dtype = np.dtype(dtype if dtype is not None else x.dtype)
    shape = tuple(x.shape if shape is None else shape)
    if isinstance(x, Tracer):
        scalar = constant_trace(x._trace).lift(np.asarray(value, dtype=dtype))
        return _p("broadcast_in_dim").bind(scalar, shape=shape, dims=()) if shape else scalar
    return np.full(shape, value, dtype=dtype)


def zeros_like(x):
    return full_like(x, 0)


def iota_like(x, shape, dimension, dtype=np.int64):
    if isinstance(x, Tracer):
        return constant_trace(x._trace).process(_p("iota"), (), {"shape": tuple(shape), "dtype": np.dtype(dtype),
                                                 "dimension": dimension})[0]
    return _p("iota").impl(shape=tuple(shape), dtype=np.dtype(dtype), dimension=dimension)


def add(a, b):
    return _p("add").bind(a, b)


def sub(a, b):
    return _p("sub").bind(a, b)


def mul(a, b):
    return _p("mul").bind(a, b)


def div(a, b):
    return _p("div").bind(a, b)


def neg(a):
    return _p("neg").bind(a)


def select(pred, on_true, on_false):
    return _p("select").bind(pred, on_true, on_false)


def scaled(x, factor):
    """x * factor for a Python number."""
    return mul(x, full_like(x, factor))


def reduce_sum(x, axes):
    axes = tuple(sorted(axes))
    return _p("reduce_sum").bind(x, axes=axes) if axes else x


def broadcast_back(ct, shape, reduced_axes):
    """Broadcast a reduction's result back over the axes it reduced."""
    dims = tuple(i for i in range(len(shape)) if i not in reduced_axes)
    if tuple(ct.shape) == tuple(shape):
        return ct
    return _p("broadcast_in_dim").bind(ct, shape=tuple(shape), dims=dims)


def reshape(x, shape):
    shape = tuple(shape)
    return x if tuple(x.shape) == shape else _p("reshape").bind(x, shape=shape)


def transpose(x, perm):
    perm = tuple(perm)
    return x if perm == tuple(range(len(perm))) else _p("transpose").bind(x, perm=perm)


def inverse_perm(perm):
    inverse = [0] * len(perm)
    for i, p in enumerate(perm):
        inverse[p] = i
    return tuple(inverse)


# --- generic JVPs ----------------------------------------------------------------------------

def elementwise_rules(partials):
    """VJP and JVP of an elementwise primitive from one function per operand,
    ``partial_i(ct, *primals, out) -> ct_i``. The Jacobian is diagonal, so the JVP is the sum of
    the partials applied to the tangents."""
    def vjp(ct, *primals, out, needed):
        return [partial(ct, *primals, out=out) if need else None
                for partial, need in zip(partials, needed)]

    def jvp(primals, tangents, out):
        total = None
        for partial, t in zip(partials, tangents):
            if t is not None:
                term = partial(t, *primals, out=out)
                total = term if total is None else add(total, term)
        return total

    return vjp, jvp


def linear_jvp(prim_name, passthrough=(), passthrough_from=None):
    """JVP of a primitive linear in its operands: apply it to the tangents. Operands listed in
    ``passthrough`` (predicates), or from index ``passthrough_from`` on (index arrays), are not
    differentiated and are passed as primals."""
    def jvp(primals, tangents, out, **params):
        args = []
        for i, (x, t) in enumerate(zip(primals, tangents)):
            if i in passthrough or (passthrough_from is not None and i >= passthrough_from):
                args.append(x)
            else:
                args.append(t if t is not None else zeros_like(x))
        return _p(prim_name).bind(*args, **params)
    return jvp
