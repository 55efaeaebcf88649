"""Linear maps built from slices of one or two arrays: ``diff``, ``gradient`` (finite
differences), ``cross`` and ``kron`` (products). Movement primitives and elementwise
arithmetic only, so their derivatives, in both modes and to any order, are the primitives' own."""
from __future__ import annotations

import operator
import warnings

import numpy as np

from .. import dtypes
from ..errors import at_user_line
from . import _prims as P
from ._dispatch import implements
from .manipulation import _one_axis, concatenate, moveaxis, reshape, stack
from .reductions import normalize_axis
from .ufuncs import add, multiply, negative, not_equal, subtract


# --- differences and products: diff, gradient, cross, kron (linear maps of slices) ----------

_ABSENT = object()  # an argument that was not given (NumPy's own marker is private)


def _diff_end(value, x, axis, trace):
    """``prepend``/``append`` of ``diff``: a 0-d value fills one slice along ``axis``."""
    if value is _ABSENT:
        return None
    v = P.lift(value, trace)
    if v.ndim == 0:
        v = P.broadcast_to(v, x.shape[:axis] + (1,) + x.shape[axis + 1:])
    return v


@implements(np.diff)
def diff(a, n=1, axis=-1, prepend=_ABSENT, append=_ABSENT):
    trace = P.the_trace(a, prepend, append)
    x = P.lift(a, trace)
    n = operator.index(n)
    if n == 0:
        return x
    if n < 0:
        raise P.user_error(ValueError, f"order must be non-negative but got {n!r}")
    if x.ndim == 0:
        raise P.user_error(ValueError, "diff requires input that is at least one dimensional")
    ax = _one_axis(axis, x.ndim)
    ends = [_diff_end(prepend, x, ax, trace), x, _diff_end(append, x, ax, trace)]
    ends = [v for v in ends if v is not None]
    if len(ends) > 1:
        x = concatenate(ends, axis=ax)
    step = not_equal if x.dtype == np.bool_ else subtract  # NumPy's choice for booleans
    for _ in range(n):
        m = x.shape[ax]
        x = step(P.slice_axis(x, ax, min(1, m), m), P.slice_axis(x, ax, 0, max(m - 1, 0)))
    return x


def _axes_in_order(axis, ndim):
    """``axis`` (None, int or sequence) as non-negative ints in the order given (NumPy's
    ``normalize_axis_tuple``: a repeated axis is an error)."""
    if axis is None:
        return tuple(range(ndim))
    axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    out = tuple(normalize_axis(a, ndim, allow_tuple=False)[0] for a in axes)
    if len(set(out)) != len(out):
        raise P.user_error(ValueError, "repeated axis")
    return out


def _gradient_spacings(varargs, axes, x, trace):
    """One spacing per axis: ``("uniform", h)`` with a scalar h, or ``("coords", d)`` with the
    1-d differences d of the coordinates (NumPy's forms; NumPy's checks and messages)."""
    if not varargs:
        return [("uniform", 1.0)] * len(axes)
    if len(varargs) == 1 and P.ttype_of(varargs[0]).ndim == 0:
        return [("uniform", varargs[0])] * len(axes)
    if len(varargs) != len(axes):
        raise P.user_error(TypeError, "invalid number of arguments")
    out = []
    for ax, spacing in zip(axes, varargs):
        t = P.ttype_of(spacing)
        if t.ndim == 0:
            out.append(("uniform", spacing))
            continue
        if t.ndim != 1:
            raise P.user_error(ValueError, "distances must be either scalars or 1d")
        if t.shape[0] != x.shape[ax]:
            raise P.user_error(ValueError, "when 1d, distances must match the length of the "
                                           "corresponding dimension")
        if P.any_traced([spacing]):  # values unknown: the general (non-uniform) formulas
            coords = P.lift(spacing, trace)
            if coords.dtype.kind in "iu":
                coords = P.convert(coords, np.float64)
            out.append(("coords", diff(coords)))
            continue
        coords = np.asarray(spacing)
        if coords.dtype.kind in "iu":  # as NumPy: no modular arithmetic in the differences
            coords = coords.astype(np.float64)
        d = np.diff(coords)
        # Equal steps take the uniform formulas, as in NumPy (the same rounding).
        out.append(("uniform", d[0]) if d.size and (d == d[0]).all() else ("coords", d))
    return out


def _gradient_along(f, ax, spacing, edge_order):
    """The derivative estimate of f along one axis: central differences inside, one-sided
    differences of ``edge_order`` at both ends (pieces concatenated by the caller)."""
    n = f.shape[ax]

    def at(lo, hi):
        return P.slice_axis(f, ax, lo, hi)

    kind, h = spacing
    if kind == "uniform":
        interior = (at(2, n) - at(0, n - 2)) / (2. * h)
    else:
        dx1, dx2 = (reshape(d, [1] * ax + [n - 2] + [1] * (f.ndim - ax - 1))
                    for d in (h[0:-1], h[1:]))
        a = -(dx2) / (dx1 * (dx1 + dx2))
        b = (dx2 - dx1) / (dx1 * dx2)
        c = dx1 / (dx2 * (dx1 + dx2))
        interior = add(add(multiply(a, at(0, n - 2)), multiply(b, at(1, n - 1))),
                       multiply(c, at(2, n)))
    f0, f1, l0, l1 = at(0, 1), at(1, 2), at(n - 1, n), at(n - 2, n - 1)
    if edge_order == 1:
        first_h, last_h = (h, h) if kind == "uniform" else (h[0], h[-1])
        return [(f1 - f0) / first_h, interior, (l0 - l1) / last_h]
    if kind == "uniform":
        f2, l2 = at(2, 3), at(n - 3, n - 2)  # edge_order 2 needs 3 points (checked)
        a, b, c = -1.5 / h, 2. / h, -0.5 / h
        first = a * f0 + b * f1 + c * f2
        a, b, c = 0.5 / h, -2. / h, 1.5 / h
        last = a * l2 + b * l1 + c * l0
        return [first, interior, last]
    f2, l2 = at(2, 3), at(n - 3, n - 2)
    dx1, dx2 = h[0], h[1]
    a = -(2. * dx1 + dx2) / (dx1 * (dx1 + dx2))
    b = (dx1 + dx2) / (dx1 * dx2)
    c = - dx1 / (dx2 * (dx1 + dx2))
    first = add(add(multiply(a, f0), multiply(b, f1)), multiply(c, f2))
    dx1, dx2 = h[-2], h[-1]
    a = (dx2) / (dx1 * (dx1 + dx2))
    b = - (dx2 + dx1) / (dx1 * dx2)
    c = (2. * dx2 + dx1) / (dx2 * (dx1 + dx2))
    last = add(add(multiply(a, l2), multiply(b, l1)), multiply(c, l0))
    return [first, interior, last]


@implements(np.gradient)
def gradient(f, *varargs, axis=None, edge_order=1):
    trace = P.the_trace(f, *varargs)
    x = P.lift(f, trace)
    axes = _axes_in_order(axis, x.ndim)
    spacings = _gradient_spacings(varargs, axes, x, trace)
    if edge_order > 2:
        raise P.user_error(ValueError, "'edge_order' greater than 2 not supported")
    # The result has f's float dtype (float64 for integers and bools), whatever the spacing's.
    out_dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)
    if x.dtype.kind in "iu":
        x = P.convert(x, np.float64)
    results = []
    for ax, spacing in zip(axes, spacings):
        if x.shape[ax] < edge_order + 1:
            raise P.user_error(ValueError, (
                "Shape of array too small to calculate a numerical gradient, at least "
                "(edge_order + 1) elements are required."))
        pieces = [P.convert(P.lift(p, trace), out_dtype)
                  for p in _gradient_along(x, ax, spacing, edge_order)]
        results.append(P.concatenate(pieces, ax))
    return results[0] if len(results) == 1 else tuple(results)


def _cross_axis(axis, ndim, which):
    axis = operator.index(axis)
    if not -ndim <= axis < ndim:
        raise np.exceptions.AxisError(at_user_line(
            f"{which}: axis {axis} is out of bounds for array of dimension {ndim}"))
    return axis % ndim


@implements(np.cross)
def cross(a, b, axisa=-1, axisb=-1, axisc=-1, axis=None):
    if axis is not None:
        axisa = axisb = axisc = axis
    trace = P.the_trace(a, b)
    x, y = P.lift(a, trace), P.lift(b, trace)
    if x.ndim < 1 or y.ndim < 1:
        raise P.user_error(ValueError, "At least one array has zero dimension")
    x = moveaxis(x, _cross_axis(axisa, x.ndim, "axisa"), -1)
    y = moveaxis(y, _cross_axis(axisb, y.ndim, "axisb"), -1)
    nx, ny = x.shape[-1], y.shape[-1]
    if nx not in (2, 3) or ny not in (2, 3):
        raise P.user_error(ValueError, "incompatible dimensions for cross product\n"
                                       "(dimension must be 2 or 3)")
    if nx == 2 or ny == 2:
        warnings.warn("Arrays of 2-dimensional vectors are deprecated. Use arrays of "
                      "3-dimensional vectors instead. (deprecated in NumPy 2.0)",
                      DeprecationWarning, stacklevel=3)
    shape = P.broadcast_shapes(x.shape[:-1], y.shape[:-1])
    if nx == 3 or ny == 3:  # checked before any arithmetic, as NumPy
        axisc = _cross_axis(axisc, len(shape) + 1, "axisc")
    dtype, _ = dtypes.result_type((x.dtype, False), (y.dtype, False))
    xs = [P.broadcast_to(P.convert(P.reshape(P.slice_axis(x, x.ndim - 1, i, i + 1),
                                             x.shape[:-1]), dtype), shape) for i in range(nx)]
    ys = [P.broadcast_to(P.convert(P.reshape(P.slice_axis(y, y.ndim - 1, i, i + 1),
                                             y.shape[:-1]), dtype), shape) for i in range(ny)]
    if nx == 2 and ny == 2:
        return subtract(multiply(xs[0], ys[1]), multiply(xs[1], ys[0]))
    if nx == 3 and ny == 3:
        parts = [subtract(multiply(xs[1], ys[2]), multiply(xs[2], ys[1])),
                 subtract(multiply(xs[2], ys[0]), multiply(xs[0], ys[2])),
                 subtract(multiply(xs[0], ys[1]), multiply(xs[1], ys[0]))]
    elif nx == 2:  # a's third component is zero
        parts = [multiply(xs[1], ys[2]), negative(multiply(xs[0], ys[2])),
                 subtract(multiply(xs[0], ys[1]), multiply(xs[1], ys[0]))]
    else:  # b's third component is zero
        parts = [negative(multiply(xs[2], ys[1])), multiply(xs[2], ys[0]),
                 subtract(multiply(xs[0], ys[1]), multiply(xs[1], ys[0]))]
    return moveaxis(stack(parts, axis=-1), -1, axisc)


@implements(np.kron)
def kron(a, b):
    trace = P.the_trace(a, b)
    x, y = P.lift(a, trace), P.lift(b, trace)
    if x.ndim < y.ndim:
        x = P.reshape(x, (1,) * (y.ndim - x.ndim) + x.shape)
    if x.ndim == 0 or y.ndim == 0:
        return multiply(x, y)
    y = P.reshape(y, (1,) * (x.ndim - y.ndim) + y.shape)
    # Block (i, j, ...) of the result is x[i, j, ...] * y: interleave x's and y's axes.
    xs = P.reshape(x, tuple(v for n in x.shape for v in (n, 1)))
    ys = P.reshape(y, tuple(v for n in y.shape for v in (1, n)))
    product = multiply(xs, ys)
    return P.reshape(product, tuple(m * n for m, n in zip(x.shape, y.shape)))
