"""Sorting: ``sort``, ``argsort``, ``partition``, ``argpartition``.

All four rest on one primitive, ``argsort[axis]`` (``primitives/sorting.py``): the stable
ascending permutation along an axis, NaNs last as NumPy sorts them. ``sort`` gathers the values
by it, so its derivative is the gather's, in both modes and to any order: each output element
is the input element it came from. ``argsort`` and ``argpartition`` return int64 indices and
have no derivative (``grad`` of a function returning them says it needs a real scalar output,
as for ``argmax``).

Every ``kind`` gives the same values. Indices of ties are implementation-defined in NumPy
unless ``kind="stable"``; tracejit's sort is always stable, so its indices are the stable
ones whatever ``kind`` says. ``partition``/``argpartition`` promise only that the ``kth``
elements are in sorted position with no larger element before and no smaller one after; a full
(stable) sort keeps that promise for every ``kth`` at once, and is what they compute here.
"""
from __future__ import annotations

import operator

import numpy as np

from .. import dtypes
from ..errors import at_user_line
from ..primitives import sorting as S
from . import _prims as P
from ._dispatch import implements


def _index(value, what):
    """A Python int from an int-like argument (bools included, as NumPy); TypeError otherwise."""
    if P.is_traced(value):
        raise P.user_error(TypeError, f"{what} must be a Python int, not a traced value: the "
                                      "shape of the computation depends on it")
    try:
        return operator.index(value)
    except TypeError:
        raise P.user_error(TypeError, f"{what} must be an integer, not "
                                      f"{type(value).__name__}") from None


def _normalize_axis(axis, ndim):
    a = _index(axis, "axis")
    if not -ndim <= a < ndim:
        raise np.exceptions.AxisError(at_user_line(
            f"axis {a} is out of bounds for array of dimension {ndim}"))
    return a % ndim


def _check_sort_kind(kind, stable):
    """NumPy's rule: ``kind`` is read by its first letter (quick, heap, stable, merge)."""
    if kind is not None and stable is not None:
        raise P.user_error(ValueError, "`kind` and keyword parameters can't be provided at the "
                                       "same time. Use only one of them.")
    if kind is None:
        return
    if not isinstance(kind, str):
        raise P.user_error(TypeError, f"sort kind must be str, not {type(kind).__name__}")
    if not kind or kind[0].lower() not in "qhsm":
        raise P.user_error(ValueError, "sort kind must be one of 'quick', 'heap', or 'stable' "
                                       f"(got {kind!r})")


def _check_select_kind(kind):
    if not isinstance(kind, str):
        raise P.user_error(TypeError, f"select kind must be str, not {type(kind).__name__}")
    if kind != "introselect":
        raise P.user_error(ValueError, f"select kind must be 'introselect' (got {kind!r})")


def _check_order(order):
    if order is not None:
        raise P.user_error(ValueError, "Cannot specify order when the array has no fields. "
                                       "(tracejit arrays have no structured dtypes: sort the "
                                       "fields' arrays instead)")


def _operand(a, axis, *, as_1d):
    """(x, axis) with axis a non-negative int: None flattens; with ``as_1d`` a 0-d array is
    taken as 1-d (NumPy's argsort/argpartition do that, its sort/partition do not)."""
    x = P.lift(a)
    if axis is None or (as_1d and x.ndim == 0):
        x = P.reshape(x, (x.size,))
    if axis is None:
        return x, 0
    return x, _normalize_axis(axis, x.ndim)


def _check_kth(kth, n):
    """NumPy's checks on ``kth`` (an int or a 1-d sequence of ints) for an axis of size n."""
    if P.is_traced(kth) or any(P.is_traced(k) for k in P.flat_values([kth])):
        raise P.user_error(TypeError, "kth must be concrete (Python ints), not a traced value")
    if isinstance(kth, (bool, np.bool_)):
        raise P.user_error(ValueError, "Booleans unacceptable as partition index")
    try:
        ks = np.asarray(kth)
    except ValueError:
        ks = np.asarray(kth, dtype=object)
    if ks.dtype == np.bool_:
        raise P.user_error(ValueError, "Booleans unacceptable as partition index")
    if ks.dtype.kind not in "iu":
        raise P.user_error(TypeError, "Partition index must be integer")
    if ks.ndim > 1:
        raise P.user_error(ValueError, "kth must be an integer or a 1-d sequence of integers")
    if n == 0:
        return  # (nothing to partition: NumPy checks no bound)
    for k in ks.reshape(-1).tolist():
        at = k + n if k < 0 else k
        if not 0 <= at < n:
            raise P.user_error(ValueError, f"kth(={at}) out of bounds ({n})")


def _argsort(x, axis):
    """The stable ascending permutation along ``axis`` (int64, NaNs last)."""
    if x.shape[axis] <= 1:
        return P.full(x.shape, 0, dtypes.INDEX_DTYPE, P.the_trace(x))
    return S.argsort.bind(x, axis=axis)


def _take_along(x, order, axis):
    """``x`` rearranged along ``axis`` by the int64 ``order`` of x's shape: one gather over
    every axis, the others indexed by their own position."""
    trace = P.the_trace(x)
    index = [order if d == axis else P.iota(x.shape, dtypes.INDEX_DTYPE, d, trace)
             for d in range(x.ndim)]
    return P.gather(x, index, range(x.ndim))


def _sorted(x, axis):
    if x.shape[axis] <= 1:
        return x
    return _take_along(x, _argsort(x, axis), axis)


@implements(np.sort)
def sort(a, axis=-1, kind=None, order=None, *, stable=None):
    """A sorted copy of ``a`` along ``axis`` (None: flattened), NaNs last. Differentiable: the
    derivative moves with each element to its sorted position.

    >>> import numpy as np, tracejit, tracejit.numpy as tnp
    >>> tracejit.compile(tnp.sort)(np.array([3.0, np.nan, 1.0, 2.0]))
    array([ 1.,  2.,  3., nan])
    >>> tracejit.grad(lambda x: (tnp.sort(x) * np.arange(3.0)).sum())(np.array([5.0, 1.0, 3.0]))
    array([2., 0., 1.])
    """
    _check_sort_kind(kind, stable)
    _check_order(order)
    x, axis = _operand(a, axis, as_1d=False)
    return _sorted(x, axis)


@implements(np.argsort)
def argsort(a, axis=-1, kind=None, order=None, *, stable=None):
    """Indices (int64) that sort ``a`` along ``axis``. Always the stable order (equal values
    keep their order, NaNs last), which is NumPy's for ``kind="stable"``; NumPy leaves the
    order of ties open for the other kinds. Not differentiable (integer-valued).

    >>> import numpy as np, tracejit, tracejit.numpy as tnp
    >>> tracejit.compile(tnp.argsort)(np.array([2.0, 1.0, np.nan, 1.0]))
    array([1, 3, 0, 2])
    """
    _check_sort_kind(kind, stable)
    _check_order(order)
    x, axis = _operand(a, axis, as_1d=True)
    return _argsort(x, axis)


@implements(np.partition)
def partition(a, kth, axis=-1, kind="introselect", order=None):
    """``a`` rearranged along ``axis`` so that each ``kth`` element is where a sort would put
    it, with nothing larger before it and nothing smaller after. This returns the sorted
    array, which is one such arrangement (NumPy's own may differ elsewhere). Differentiable,
    as ``sort``.

    >>> import numpy as np, tracejit, tracejit.numpy as tnp
    >>> out = tracejit.compile(lambda x: tnp.partition(x, 1))(np.array([4.0, 1.0, 3.0, 2.0]))
    >>> float(out[1]), bool(out[0] <= out[1] <= out[2:].min())
    (2.0, True)
    """
    _check_select_kind(kind)
    _check_order(order)
    x, axis = _operand(a, axis, as_1d=False)
    _check_kth(kth, x.shape[axis])
    return _sorted(x, axis)


@implements(np.argpartition)
def argpartition(a, kth, axis=-1, kind="introselect", order=None):
    """Indices (int64) that partition ``a`` along ``axis`` as ``partition`` does: here the
    stable sorting order, one valid answer. Not differentiable (integer-valued).

    >>> import numpy as np, tracejit, tracejit.numpy as tnp
    >>> x = np.array([4.0, 1.0, 3.0, 2.0])
    >>> idx = tracejit.compile(lambda x: tnp.argpartition(x, -1))(x)
    >>> float(x[idx[-1]])
    4.0
    """
    _check_select_kind(kind)
    _check_order(order)
    x, axis = _operand(a, axis, as_1d=True)
    _check_kth(kth, x.shape[axis])
    return _argsort(x, axis)
