"""Creation functions: array asarray zeros ones full empty *_like arange linspace eye identity
astype. Inside a trace they build ``iota``/broadcast constants (no arrays baked into the graph);
outside one they are NumPy's own.
"""
from __future__ import annotations

import math

import numpy as np

from .. import dtypes
from ..primitives import elementwise as E
from . import _prims as P
from ._dispatch import implements
from .manipulation import _shape_tuple


def _dtype_or(dtype, default):
    return dtypes.canonical_dtype(default if dtype is None else dtype)


def _nested(obj):
    """(leaves, outer shape, leaf shape) of a nested list; every level must have one length."""
    if isinstance(obj, (list, tuple)):
        parts = [_nested(o) for o in obj]
        shapes = {(outer, leaf) for _, outer, leaf in parts}
        if len(shapes) > 1:
            raise P.user_error(ValueError, (
                "setting an array element with a sequence. The requested array has an "
                f"inhomogeneous shape after 1 dimensions. The detected shape was ({len(obj)},) + "
                "inhomogeneous part."))
        outer, leaf = shapes.pop() if shapes else ((), ())
        return [x for leaves, _, _ in parts for x in leaves], (len(obj),) + outer, leaf
    leaf_shape = tuple(obj.shape) if P.is_traced(obj) or isinstance(obj, np.ndarray) else ()
    return [obj], (), leaf_shape


def _array_from_nested(obj, dtype):
    leaves, outer, leaf_shape = _nested(obj)
    trace = P.the_trace(*leaves)
    # In array construction Python scalars are not weak: np.array([f32, 1.0]) is float64.
    lifted = [P.lift(np.asarray(v) if P.is_python_scalar(v) else v, trace) for v in leaves]
    if dtype is None:
        dtype = dtypes.result_type(*[(t.dtype, False) for t in lifted])[0] if lifted else \
            np.float64
    dtype = dtypes.canonical_dtype(dtype)
    flat = [P.reshape(P.convert(t, dtype), (1,) + leaf_shape) for t in lifted]
    if not flat:
        return P.full(outer, 0, dtype, trace)
    return P.reshape(P.concatenate(flat, 0), outer + leaf_shape)


def _array_traced(object, dtype=None, *, copy=True, order="K", subok=False, ndmin=0, like=None):
    if P.is_traced(object):
        result = object if dtype is None else P.convert(object, dtypes.canonical_dtype(dtype))
    elif isinstance(object, (np.ndarray, np.generic)):  # inside a trace: a traced constant
        result = P.lift(object)
        result = result if dtype is None else P.convert(result, dtypes.canonical_dtype(dtype))
    else:
        result = _array_from_nested(object, dtype)
    if ndmin > result.ndim:
        result = P.reshape(result, (1,) * (ndmin - result.ndim) + result.shape)
    return result


# Inside a trace even NumPy arrays become traced arrays (so `tnp.asarray(a)[i]` can take a
# traced index); outside one these are NumPy's own.
array = implements(np.array, creation=True)(_array_traced)


@implements(np.asarray, creation=True)
def asarray(a, dtype=None, order=None, *, device=None, copy=None, like=None):
    return _array_traced(a, dtype)


@implements(np.astype)
def astype(x, dtype, /, *, copy=True, device=None):
    return P.convert(P.lift(x), dtypes.canonical_dtype(dtype))


@implements(np.zeros, creation=True)
def zeros(shape, dtype=float, order="C", *, device=None, like=None):
    return P.full(_shape_tuple(shape), 0, _dtype_or(dtype, float))


@implements(np.ones, creation=True)
def ones(shape, dtype=None, order="C", *, device=None, like=None):
    return P.full(_shape_tuple(shape), 1, _dtype_or(dtype, float))


@implements(np.empty, creation=True)
def empty(shape, dtype=float, order="C", *, device=None, like=None):
    return zeros(shape, dtype)  # any contents are valid for `empty`; zeros are deterministic


@implements(np.full, creation=True)
def full(shape, fill_value, dtype=None, order="C", *, device=None, like=None):
    shape = _shape_tuple(shape)
    trace = P.the_trace(fill_value)
    if P.is_traced(fill_value):
        value = fill_value if dtype is None else P.convert(fill_value, dtypes.canonical_dtype(dtype))
    else:
        value = trace.lift(np.asarray(fill_value, dtype=dtype))
    from .manipulation import broadcast_to
    return broadcast_to(value, shape)


def _like(name, np_fn, value_of):
    def like_fn(a, *args, dtype=None, order="K", subok=True, shape=None, device=None, **kwargs):
        x = P.lift(a)
        target_shape = x.shape if shape is None else _shape_tuple(shape)
        if name == "full_like":
            fill = args[0] if args else kwargs.pop("fill_value")
            dt = x.dtype if dtype is None else dtypes.canonical_dtype(dtype)
            if P.is_traced(fill):
                return full(target_shape, P.convert(fill, dt))
            return P.full(target_shape, np.asarray(fill).astype(dt), dt, x._trace)
        return P.full(target_shape, value_of, _dtype_or(dtype, x.dtype), x._trace)

    like_fn.__name__ = like_fn.__qualname__ = name
    return implements(np_fn)(like_fn)


zeros_like = _like("zeros_like", np.zeros_like, 0)
ones_like = _like("ones_like", np.ones_like, 1)
empty_like = _like("empty_like", np.empty_like, 0)
full_like = _like("full_like", np.full_like, None)


def _concrete(name, *values):
    for v in values:
        if P.is_traced(v):
            raise P.user_error(TypeError, (
                f"{name}() needs concrete Python numbers: its length must be known while tracing"
                ", and a traced value's is not."))


@implements(np.arange, creation=True)
def arange(start_or_stop, stop=None, step=None, *, dtype=None, device=None, like=None):
    _concrete("arange", start_or_stop, stop, step)
    start, stop = (0, start_or_stop) if stop is None else (start_or_stop, stop)
    step = 1 if step is None else step
    if step == 0:
        raise P.user_error(ZeroDivisionError, "division by zero")
    default = np.result_type(*[np.asarray(v) for v in (start, stop, step)])
    dt = _dtype_or(dtype, default)
    n = max(0, math.ceil((stop - start) / step))
    ramp = P.iota((n,), dt if dt.kind != "b" else np.int64, 0)
    if step != 1:
        ramp = E.mul.bind(ramp, P.full((n,), step, ramp.dtype))
    if start != 0:
        ramp = E.add.bind(ramp, P.full((n,), start, ramp.dtype))
    return P.convert(ramp, dt)


@implements(np.linspace, creation=True)
def linspace(start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0, *,
             device=None):
    if num < 0:
        raise P.user_error(ValueError, f"Number of samples, {num}, must be non-negative.")
    trace = P.the_trace(start, stop)
    # Python scalars are weak here (NumPy 2): linspace(float32(0), 2.0) is float32.
    types = [P.ttype_of(v) for v in (start, stop)]
    dt, _ = dtypes.result_type(*[(t.dtype, t.weak) for t in types], (np.dtype(np.float64), True))
    lo, hi = P.lift(start, trace), P.lift(stop, trace)
    lo, hi = P.convert(lo, dt), P.convert(hi, dt)
    inner = P.broadcast_shapes(lo.shape, hi.shape)
    shape = (num,) + inner
    lo, hi = P.broadcast_to(lo, inner), P.broadcast_to(hi, inner)
    div = (num - 1) if endpoint else num
    delta = E.sub.bind(hi, lo)
    # As NumPy: y = arange(num) * step + start, and the last sample is exactly `stop`.
    step = E.div.bind(delta, P.full(inner, div, dt, trace)) if div > 0 else \
        P.full(inner, np.nan, dt, trace)
    ramp = P.convert(P.iota(shape, np.int64, 0, trace), dt)
    y = E.mul.bind(ramp, P.broadcast_to(step if div > 0 else delta, shape))
    y = E.add.bind(y, P.broadcast_to(lo, shape))
    if endpoint and num > 1:
        last = E.eq.bind(P.iota(shape, np.int64, 0, trace), P.full(shape, num - 1, np.int64, trace))
        y = E.select.bind(last, P.broadcast_to(hi, shape), y)
    if axis != 0:
        from .manipulation import moveaxis
        y = moveaxis(y, 0, axis)
    if dtype is not None:
        target = dtypes.canonical_dtype(dtype)
        if target.kind in "iu":
            y = E.floor.bind(y)
        y = P.convert(y, target)
    return (y, step) if retstep else y


@implements(np.eye, creation=True)
def eye(N, M=None, k=0, dtype=float, order="C", *, device=None, like=None):
    _concrete("eye", N, M, k)
    shape = (int(N), int(N if M is None else M))
    from .manipulation import _band_mask
    mask = _band_mask(shape, k, k, P.current_graph_trace())
    return P.convert(mask, _dtype_or(dtype, float))


@implements(np.identity, creation=True)
def identity(n, dtype=None, *, like=None):
    return eye(n, dtype=float if dtype is None else dtype)
