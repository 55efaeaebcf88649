"""Reductions with NumPy's axis/keepdims/dtype rules: sum prod mean var std max min argmax argmin
all any cumsum cumprod.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..errors import at_user_line
from ..primitives import elementwise as E
from ..primitives import reductions as R
from . import _prims as P
from ._dispatch import implements


def normalize_axis(axis, ndim, *, allow_tuple=True):
    """``axis`` (None, int or tuple) as a sorted tuple of non-negative ints; NumPy's errors."""
    if axis is None:
        return tuple(range(ndim))
    if P.is_traced(axis):
        raise P.user_error(TypeError, "axis must be a Python int, not a traced value")
    axes = tuple(axis) if isinstance(axis, (tuple, list)) and allow_tuple else (axis,)
    out = []
    for a in axes:
        a = int(a)
        if not -ndim <= a < ndim:
            raise np.exceptions.AxisError(at_user_line(
                f"axis {a} is out of bounds for array of dimension {ndim}"))
        out.append(a % ndim if ndim else 0)
    if len(set(out)) != len(out):
        raise P.user_error(ValueError, "duplicate value in 'axis'")
    return tuple(sorted(out))


def _keepdims(result, x_shape, axes, keepdims):
    if not keepdims:
        return result
    return P.reshape(result, tuple(1 if i in axes else n for i, n in enumerate(x_shape)))


def _no_out(out, name, where=None, initial=None):
    if out is not None:
        raise P.user_error(NotImplementedError, f"{name}(out=...) is not supported on traced arrays")
    if where is not None and where is not True:
        raise P.user_error(NotImplementedError, f"{name}(where=...) is not supported while tracing")
    if initial is not None:
        raise P.user_error(NotImplementedError, f"{name}(initial=...) is not supported while tracing")


def _count(shape, axes) -> int:
    return int(np.prod([shape[a] for a in axes], dtype=np.int64))


def _accumulating(kind, np_fn):
    def reducer(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None):
        _no_out(out, np_fn.__name__, where, initial)
        x = P.lift(a)
        axes = normalize_axis(axis, x.ndim)
        acc = dtypes.canonical_dtype(dtype) if dtype is not None else dtypes.sum_dtype(x.dtype)
        result = P.reduce(kind, P.convert(x, acc), axes)
        return _keepdims(result, x.shape, axes, keepdims)

    reducer.__name__ = reducer.__qualname__ = np_fn.__name__
    return implements(np_fn)(reducer)


def _extremum(kind, np_fn):
    def reducer(a, axis=None, out=None, keepdims=False, initial=None, where=None):
        _no_out(out, np_fn.__name__, where, initial)
        x = P.lift(a)
        axes = normalize_axis(axis, x.ndim)
        return _keepdims(P.reduce(kind, x, axes), x.shape, axes, keepdims)

    reducer.__name__ = reducer.__qualname__ = np_fn.__name__
    return implements(np_fn)(reducer)


sum_ = _accumulating("sum", np.sum)
prod = _accumulating("prod", np.prod)
max_ = amax = _extremum("max", np.max)
min_ = amin = _extremum("min", np.min)
implements(np.amax)(max_)
implements(np.amin)(min_)


def _mean_parts(a, axis, dtype):
    """(x converted to the compute dtype, axes, result dtype), as ``np.mean`` chooses them."""
    x = P.lift(a)
    axes = normalize_axis(axis, x.ndim)
    if dtype is not None:
        result = compute = dtypes.canonical_dtype(dtype)
    else:
        result = dtypes.mean_dtype(x.dtype)
        # NumPy accumulates float16 in float32 and rounds once at the end.
        compute = np.dtype(np.float32) if result == np.float16 else result
    return P.convert(x, compute), axes, result


def _divide_by_count(total, count):
    return E.div.bind(total, P.full_like(total, count))


@implements(np.mean)
def mean(a, axis=None, dtype=None, out=None, keepdims=False, *, where=None):
    _no_out(out, "mean", where)
    x, axes, result = _mean_parts(a, axis, dtype)
    total = P.reduce("sum", x, axes)
    m = _divide_by_count(total, _count(x.shape, axes)) if total.dtype.kind == "f" else \
        P.convert(_divide_by_count(P.convert(total, np.float64), _count(x.shape, axes)), result)
    return _keepdims(P.convert(m, result), x.shape, axes, keepdims)


def _true_divide_into(total, count):
    """``true_divide(total, count, out=total, casting='unsafe')``: integers truncate back."""
    if total.dtype.kind == "f":
        return _divide_by_count(total, count)
    return P.convert(_divide_by_count(P.convert(total, np.float64), count), total.dtype)


@implements(np.var)
def var(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None, mean=None,
        correction=None):
    _no_out(out, "var", where)
    if mean is not None:
        raise P.user_error(NotImplementedError, "var(mean=...) is not supported while tracing")
    if correction is not None:
        ddof = correction
    x = P.lift(a)
    axes = normalize_axis(axis, x.ndim)
    n = _count(x.shape, axes)
    # NumPy's two-pass algorithm step by step (so every dtype comes out as NumPy's):
    # the mean in `dtype` (float64 for integers), the centred squares, their sum, the division.
    if dtype is not None:
        acc = dtypes.canonical_dtype(dtype)
    else:
        acc = np.dtype(np.float64) if x.dtype.kind in "biu" else x.dtype
    arrmean = _true_divide_into(P.reduce("sum", P.convert(x, acc), axes), n)
    keep_shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
    diff_dtype, _ = dtypes.result_type((x.dtype, False), (acc, False))
    centred = E.sub.bind(P.convert(x, diff_dtype),
                         P.broadcast_to(P.reshape(P.convert(arrmean, diff_dtype), keep_shape),
                                        x.shape))
    squares = P.reduce("sum", P.convert(E.mul.bind(centred, centred), acc), axes)
    v = _true_divide_into(squares, max(n - ddof, 0))
    return _keepdims(v, x.shape, axes, keepdims)


@implements(np.std)
def std(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None, mean=None,
        correction=None):
    v = var(a, axis=axis, dtype=dtype, out=out, ddof=ddof, keepdims=keepdims, where=where,
            mean=mean, correction=correction)
    if v.dtype.kind != "f":
        raise P.user_error(TypeError, "Cannot cast ufunc 'sqrt' output from dtype('float64') to "
                                      f"dtype('{v.dtype}') with casting rule 'same_kind'")
    return sqrt_of_squares(v)


def sqrt_of_squares(v):
    """sqrt of a sum of squares (a variance, a squared norm), with derivative 0 where ``v`` is 0.

    There the root has a kink (std of equal values, a norm at the origin): sqrt's derivative
    is inf, and inf times the zero derivative of ``v`` is NaN. 0 is the one-sided convention of
    other autodiff libraries. The root reads 1 where it is not chosen, so no inf enters the
    graph (a zero cotangent times inf would be NaN again). ``sqrt`` itself keeps its
    derivative, inf at 0 (docs/autodiff.md).
    """
    zero = E.eq.bind(v, P.full_like(v, 0))
    root = E.sqrt.bind(P.select(zero, P.full_like(v, 1), v))
    return P.select(zero, P.full_like(v, 0), root)


def _arg_extremum(prim, np_fn):
    def reducer(a, axis=None, out=None, *, keepdims=False):
        _no_out(out, np_fn.__name__)
        x = P.lift(a)
        if axis is None:
            flat = P.reshape(x, (x.size,))
            result = _bind_arg(prim, flat, 0)
            return P.reshape(result, (1,) * x.ndim) if keepdims else result
        (ax,) = normalize_axis(axis, x.ndim, allow_tuple=False)
        return _keepdims(_bind_arg(prim, x, ax), x.shape, (ax,), keepdims)

    reducer.__name__ = reducer.__qualname__ = np_fn.__name__
    return implements(np_fn)(reducer)


def _bind_arg(prim, x, axis):
    if x.shape[axis] == 0:
        raise P.user_error(ValueError, f"attempt to get {prim.name} of an empty sequence")
    return prim.bind(x, axis=axis)


argmax = _arg_extremum(R.argmax, np.argmax)
argmin = _arg_extremum(R.argmin, np.argmin)


def _truth_reduction(kind, np_fn):
    def reducer(a, axis=None, out=None, keepdims=False, *, where=None):
        _no_out(out, np_fn.__name__, where)
        x = P.lift(a)
        axes = normalize_axis(axis, x.ndim)
        truth = x if x.dtype == np.bool_ else E.ne.bind(x, P.full_like(x, 0))
        # On bool, a product is `and` and a sum is `or`, with the right empty results.
        return _keepdims(P.reduce(kind, truth, axes), x.shape, axes, keepdims)

    reducer.__name__ = reducer.__qualname__ = np_fn.__name__
    return implements(np_fn)(reducer)


all_ = _truth_reduction("prod", np.all)
any_ = _truth_reduction("sum", np.any)


def _scan(prim, np_fn):
    def scanner(a, axis=None, dtype=None, out=None):
        _no_out(out, np_fn.__name__)
        x = P.lift(a)
        if axis is None:
            x, axis = P.reshape(x, (x.size,)), 0
        (ax,) = normalize_axis(axis, x.ndim, allow_tuple=False)
        acc = dtypes.canonical_dtype(dtype) if dtype is not None else dtypes.sum_dtype(x.dtype)
        return prim.bind(P.convert(x, acc), axis=ax)

    scanner.__name__ = scanner.__qualname__ = np_fn.__name__
    return implements(np_fn)(scanner)


cumsum = _scan(R.cumsum, np.cumsum)
cumprod = _scan(R.cumprod, np.cumprod)
