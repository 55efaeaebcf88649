"""``argsort[axis]``: the sorting permutation along one axis, the one sorting primitive.

The order is NumPy's: ascending, NaN after everything else (``-inf < ... < inf < nan``), and
stable: equal values (``-0.0`` and ``0.0`` among them, and NaNs among themselves) keep their
order. Being stable makes the result a function of the values alone, so every backend gives
the same indices, and ``np.argsort(..., kind="stable")`` is the reference implementation.

``sort`` and ``partition`` are not primitives: ``tracejit.numpy`` gathers the values by this
permutation, so their derivatives are the gather's (a scatter of the cotangent back to where
each value came from). The indices themselves are integers: ``argsort`` is not differentiable.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..ir import TensorType
from . import batch_support as B
from .registry import Primitive


def _argsort_abstract_eval(x, *, axis):
    if not 0 <= axis < x.ndim:
        raise TypeError(f"argsort: axis {axis} out of range for {x}")
    return TensorType(x.shape, dtypes.INDEX_DTYPE)


def _argsort_impl(x, *, axis):
    return np.argsort(x, axis=axis, kind="stable").astype(dtypes.INDEX_DTYPE, copy=False)


argsort = Primitive("argsort", "indexing", abstract_eval=_argsort_abstract_eval,
                    impl=_argsort_impl)
argsort.not_differentiable()
argsort.def_batch(B.axis_rule(argsort, "axis"))
