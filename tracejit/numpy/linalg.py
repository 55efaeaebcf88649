"""``tracejit.numpy.linalg``: ``norm`` (vector and matrix norms that need no factorisation), and
the products NumPy also exposes here."""
from __future__ import annotations

import numpy as np

from . import _prims as P
from ._dispatch import implements
from .contractions import matmul, outer, tensordot, vdot  # noqa: F401  (NumPy exposes these here)
from .reductions import max_, min_, normalize_axis, sqrt_of_squares, sum_
from .ufuncs import absolute, multiply, not_equal, power


@implements(np.linalg.norm)
def norm(x, ord=None, axis=None, keepdims=False):  # noqa: A002  (NumPy's name)
    t = P.lift(x)
    if t.dtype.kind != "f":
        t = P.convert(t, np.float64)
    if axis is None and ord is None:
        r = sqrt_of_squares(sum_(multiply(t, t)))
        return P.reshape(r, (1,) * t.ndim) if keepdims else r
    if axis is None:
        axis = tuple(range(t.ndim))
    axes = normalize_axis(axis, t.ndim)
    if len(axes) == 1:
        r = _vector_norm(t, ord, axes[0])
    elif len(axes) == 2:
        r = _matrix_norm(t, ord, axis if isinstance(axis, tuple) else tuple(axes))
    else:
        raise P.user_error(ValueError, "Improper number of dimensions to norm.")
    if keepdims:
        r = P.reshape(r, tuple(1 if i in axes else n for i, n in enumerate(t.shape)))
    return r


def _vector_norm(t, ord, axis):  # noqa: A002
    if ord is None or ord == 2:
        return sqrt_of_squares(sum_(multiply(t, t), axis=axis))
    if ord == np.inf:
        return max_(absolute(t), axis=axis)
    if ord == -np.inf:
        return min_(absolute(t), axis=axis)
    if ord == 0:
        return sum_(P.convert(not_equal(t, 0), t.dtype), axis=axis)
    if ord == 1:
        return sum_(absolute(t), axis=axis)
    if isinstance(ord, str):
        raise P.user_error(ValueError, f"Invalid norm order '{ord}' for vectors")
    return power(sum_(power(absolute(t), ord), axis=axis), 1.0 / ord)


def _matrix_norm(t, ord, axis):  # noqa: A002
    row, col = (a % t.ndim for a in axis)
    if ord is None or ord == "fro":
        return sqrt_of_squares(sum_(multiply(t, t), axis=(row, col)))
    if ord in (1, -1, np.inf, -np.inf):
        # 1: largest column sum (sum over rows); inf: largest row sum (sum over columns).
        summed, other = (row, col) if ord in (1, -1) else (col, row)
        sums = sum_(absolute(t), axis=summed)
        other -= 1 if other > summed else 0
        return max_(sums, axis=other) if ord > 0 else min_(sums, axis=other)
    if ord in (2, -2, "nuc"):
        raise P.user_error(NotImplementedError, (
            f"linalg.norm(ord={ord!r}) needs singular values, which tracejit does not compute "
            "yet; use ord='fro', 1, -1, inf or -inf"))
    raise P.user_error(ValueError, "Invalid norm order for matrices.")
