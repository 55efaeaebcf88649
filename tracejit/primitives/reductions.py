"""Reductions (``reduce_*``, ``argmax``/``argmin``), scans (``cumsum``/``cumprod``) and
``dot_general``. Results keep the operand dtype: ``tracejit.numpy`` converts first where NumPy
accumulates in a wider type (``np.sum`` of int32 is int64).
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..ir import TensorType
from .registry import Primitive


def _check_axes(name, x, axes):
    if list(axes) != sorted(set(axes)) or any(not 0 <= a < x.ndim for a in axes):
        raise TypeError(f"{name}: axes {axes} must be sorted, unique and within {x}")


def _reducer(name, ufunc, has_identity):
    def abstract_eval(x, *, axes):
        _check_axes(name, x, axes)
        if not has_identity and any(x.shape[a] == 0 for a in axes):
            raise ValueError(f"zero-size array to reduction operation {ufunc.__name__} "
                             "which has no identity")
        return x.with_shape(tuple(n for i, n in enumerate(x.shape) if i not in axes))

    def impl(x, *, axes):
        return np.asarray(ufunc.reduce(x, axis=tuple(axes), dtype=x.dtype))

    return Primitive(name, "reduction", abstract_eval=abstract_eval, impl=impl)


reduce_sum = _reducer("reduce_sum", np.add, True)  # on bool: any
reduce_prod = _reducer("reduce_prod", np.multiply, True)  # on bool: all
reduce_max = _reducer("reduce_max", np.maximum, False)
reduce_min = _reducer("reduce_min", np.minimum, False)


def _arg_reducer(name, np_fn):
    def abstract_eval(x, *, axis):
        if not 0 <= axis < x.ndim:
            raise TypeError(f"{name}: axis {axis} out of range for {x}")
        if x.shape[axis] == 0:
            raise ValueError(f"attempt to get {name} of an empty sequence")
        return TensorType(x.shape[:axis] + x.shape[axis + 1:], dtypes.INDEX_DTYPE)

    def impl(x, *, axis):
        return np.asarray(np_fn(x, axis=axis)).astype(dtypes.INDEX_DTYPE)

    return Primitive(name, "reduction", abstract_eval=abstract_eval, impl=impl)


argmax = _arg_reducer("argmax", np.argmax)  # first occurrence; NaN wins, as NumPy
argmin = _arg_reducer("argmin", np.argmin)


def _scan(name, np_fn):
    def abstract_eval(x, *, axis):
        if not 0 <= axis < x.ndim:
            raise TypeError(f"{name}: axis {axis} out of range for {x}")
        return x

    def impl(x, *, axis):
        return np_fn(x, axis=axis, dtype=x.dtype)

    return Primitive(name, "reduction", abstract_eval=abstract_eval, impl=impl)


cumsum = _scan("cumsum", np.cumsum)
cumprod = _scan("cumprod", np.cumprod)


# --- dot_general[contract, batch] ------------------------------------------------------------
# contract = ((lhs axes), (rhs axes)) summed over; batch = ((lhs axes), (rhs axes)) paired.
# Result dims: batch dims, then lhs free dims, then rhs free dims, each in operand order.
def _free_axes(ndim, *used):
    taken = set().union(*map(set, used))
    return tuple(i for i in range(ndim) if i not in taken)


def _dot_general_abstract_eval(lhs, rhs, *, contract, batch):
    (lc, rc), (lb, rb) = contract, batch
    if lhs.dtype != rhs.dtype:
        raise TypeError(f"dot_general: operand dtypes differ: {lhs} and {rhs}")
    if len(lc) != len(rc) or len(lb) != len(rb):
        raise TypeError("dot_general: contracting/batch axes must pair up")
    for a, b in list(zip(lc, rc)) + list(zip(lb, rb)):
        if lhs.shape[a] != rhs.shape[b]:
            raise TypeError(f"dot_general: size mismatch between {lhs} axis {a} and {rhs} axis {b}")
    lfree, rfree = _free_axes(lhs.ndim, lc, lb), _free_axes(rhs.ndim, rc, rb)
    shape = tuple(lhs.shape[a] for a in lb) + tuple(lhs.shape[a] for a in lfree) + \
        tuple(rhs.shape[a] for a in rfree)
    return TensorType(shape, lhs.dtype, lhs.weak and rhs.weak)


def _dot_general_impl(lhs, rhs, *, contract, batch):
    (lc, rc), (lb, rb) = contract, batch
    lfree, rfree = _free_axes(lhs.ndim, lc, lb), _free_axes(rhs.ndim, rc, rb)
    sizes = lambda x, axes: int(np.prod([x.shape[a] for a in axes], dtype=np.int64))  # noqa: E731
    b, m, k, n = sizes(lhs, lb), sizes(lhs, lfree), sizes(lhs, lc), sizes(rhs, rfree)
    lhs3 = np.transpose(lhs, lb + lfree + lc).reshape(b, m, k)
    rhs3 = np.transpose(rhs, rb + rc + rfree).reshape(b, k, n)
    out = np.matmul(lhs3, rhs3)
    shape = tuple(lhs.shape[a] for a in lb) + tuple(lhs.shape[a] for a in lfree) + \
        tuple(rhs.shape[a] for a in rfree)
    return out.reshape(shape).astype(lhs.dtype, copy=False)


dot_general = Primitive("dot_general", "contraction", abstract_eval=_dot_general_abstract_eval,
                        impl=_dot_general_impl)
