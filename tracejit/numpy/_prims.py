"""Typed helpers that bind primitives on tracers, skipping no-ops (used by every tnp function).

Everything here runs while tracing: arguments are tracers (or values to lift into the trace).
The NumPy-visible rules (promotion, broadcasting, error messages) live one level up, in the tnp
modules; these helpers only build correct IR.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..errors import at_user_line
from ..ir import TensorType
from ..primitives import elementwise as E
from ..primitives import reductions as R
from ..primitives import structural as S
from ..tracing import Tracer, constant_trace, current_graph_trace, find_trace

is_python_scalar = dtypes.is_python_scalar


def is_traced(x) -> bool:
    return isinstance(x, Tracer)


def flat_values(args):
    """Leaves of (possibly nested) lists/tuples, for finding tracers among arguments."""
    for a in args:
        if isinstance(a, (list, tuple)):
            yield from flat_values(a)
        else:
            yield a


def any_traced(args, kwargs=None) -> bool:
    values = list(args) + (list(kwargs.values()) if kwargs else [])
    return any(isinstance(a, Tracer) for a in flat_values(values))


def the_trace(*args):
    """The trace that operations on ``args`` belong to (for creation functions, the innermost
    graph trace: constants need no differentiation, only recording)."""
    return constant_trace(find_trace(list(flat_values(args))))


def lift(x, trace=None):
    """A tracer for ``x`` (tracers pass through; arrays and scalars become constants)."""
    if isinstance(x, Tracer) and (trace is None or x._trace is trace):
        return x
    trace = trace or the_trace(x)
    if isinstance(x, (list, tuple)):
        from . import creation  # nested lists mixing tracers and numbers
        return creation.array(x)
    if is_python_scalar(x):
        return trace.lift(np.asarray(x))  # asarray of a Python scalar is a strong array
    return trace.lift(x)


def ttype_of(x) -> TensorType:
    """Abstract type of any operand: Python scalars are weak, everything else strong."""
    if isinstance(x, Tracer):
        return x.ttype
    if is_python_scalar(x):
        return TensorType((), dtypes.python_scalar_dtype(x), weak=True)
    a = np.asarray(x)
    return TensorType(a.shape, dtypes.canonical_dtype(a.dtype))


def shape_str(shape) -> str:
    """A shape as NumPy prints it in messages: (2,3), (4,), ()."""
    inner = ",".join(str(d) for d in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


def user_error(exc_type, message):
    return exc_type(at_user_line(message))


# --- elementwise -----------------------------------------------------------------------------

def convert(x, dtype, weak=False):
    dtype = np.dtype(dtype)
    if x.dtype == dtype and x.ttype.weak == weak:
        return x
    params = {"dtype": dtype, "weak": True} if weak else {"dtype": dtype}
    return E.convert.bind(x, **params)


def scalar_operand(value, dtype, weak):
    """A Python scalar as an operand of ``dtype`` (weak when the whole operation is weak)."""
    dtype = np.dtype(dtype)
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            dtypes.check_python_int_fits(value, dtype)
        except OverflowError as e:
            raise user_error(OverflowError, str(e)) from None
    if weak:  # the all-weak result types are Python's own: bool, int64, float64
        return {"b": bool, "i": int, "f": float}[dtype.kind](value)
    return np.asarray(value, dtype=dtype)


def broadcast_shapes(*shapes) -> tuple[int, ...]:
    """NumPy broadcasting, with NumPy's ufunc error message."""
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(ndim):
        sizes = {s[len(s) - ndim + i] for s in shapes if len(s) - ndim + i >= 0} - {1}
        if len(sizes) > 1:
            listed = " ".join(shape_str(s) for s in shapes)
            raise user_error(ValueError,
                             f"operands could not be broadcast together with shapes {listed} ")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def broadcast_to(x, shape):
    """Broadcast a tracer to ``shape`` with NumPy's trailing alignment (no checks: callers do)."""
    shape = tuple(shape)
    if x.shape == shape:
        return x
    dims = tuple(range(len(shape) - x.ndim, len(shape)))
    return S.broadcast_in_dim.bind(x, shape=shape, dims=dims)


_PYTHON_DTYPES = (np.dtype(np.bool_), np.dtype(np.int64), np.dtype(np.float64))


def operands(args, dts, shape, trace, weak):
    """Lift, convert and broadcast each argument to its loop dtype and the common shape."""
    out = []
    for a, dt in zip(args, dts):
        # Only Python scalars: weak when the loop is on Python's own types; NumPy's loop for
        # two bools may be int8 (``True % True``), a NumPy type, hence strong.
        weak = weak and np.dtype(dt) in _PYTHON_DTYPES
        if is_python_scalar(a):
            t = trace.lift(scalar_operand(a, dt, weak))
        else:
            t = lift(a, trace)
            t = convert(t, dt, weak=weak and t.ttype.weak)
        out.append(broadcast_to(t, shape))
    return out


def full(shape, value, dtype, trace=None):
    trace = trace or current_graph_trace()
    scalar = trace.lift(np.asarray(value, dtype=dtype))
    return broadcast_to(scalar, shape)


def full_like(x, value, dtype=None):
    """A constant of x's shape (and dtype unless given), in x's trace."""
    return full(x.shape, value, x.dtype if dtype is None else dtype, x._trace)


def select(pred, on_true, on_false):
    return E.select.bind(pred, on_true, on_false)


# --- movement --------------------------------------------------------------------------------

def reshape(x, shape):
    shape = tuple(shape)
    return x if x.shape == shape else S.reshape.bind(x, shape=shape)


def transpose(x, perm):
    perm = tuple(perm)
    return x if perm == tuple(range(x.ndim)) else S.transpose.bind(x, perm=perm)


def slice_(x, start, limit, strides=None):
    strides = tuple(strides) if strides is not None else (1,) * x.ndim
    if tuple(start) == (0,) * x.ndim and tuple(limit) == x.shape and strides == (1,) * x.ndim:
        return x
    return S.slice_.bind(x, start=tuple(start), limit=tuple(limit), strides=strides)


def slice_axis(x, axis, start, limit, stride=1):
    starts, limits, strides = [0] * x.ndim, list(x.shape), [1] * x.ndim
    starts[axis], limits[axis], strides[axis] = start, limit, stride
    return slice_(x, starts, limits, strides)


def rev(x, axes):
    axes = tuple(sorted(a for a in axes if x.shape[a] > 1))
    return S.rev.bind(x, axes=axes) if axes else x


def pad(x, value, config):
    if all(c == (0, 0, 0) for c in config):
        return x
    return S.pad.bind(x, value, config=tuple(tuple(c) for c in config))


def concatenate(xs, axis):
    return xs[0] if len(xs) == 1 else S.concatenate.bind(*xs, axis=axis)


def iota(shape, dtype, dimension, trace=None):
    trace = trace or current_graph_trace()
    return trace.process(S.iota, (), {"shape": tuple(shape), "dtype": np.dtype(dtype),
                                      "dimension": dimension})[0]


def gather(x, indices, axes):
    return S.gather.bind(x, *indices, axes=tuple(axes))


# --- reductions ------------------------------------------------------------------------------

REDUCERS = {"sum": R.reduce_sum, "prod": R.reduce_prod, "max": R.reduce_max,
            "min": R.reduce_min}


def reduce(kind, x, axes):
    axes = tuple(sorted(axes))
    if not axes:
        return x
    try:
        return REDUCERS[kind].bind(x, axes=axes)
    except ValueError as e:  # empty max/min: NumPy's own message, at the user's line
        raise user_error(ValueError, str(e)) from None


def dot_general(lhs, rhs, contract, batch=((), ())):
    contract = tuple(tuple(c) for c in contract)
    batch = tuple(tuple(b) for b in batch)
    return R.dot_general.bind(lhs, rhs, contract=contract, batch=batch)
