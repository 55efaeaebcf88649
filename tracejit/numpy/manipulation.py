"""Shape manipulation (NumPy's "array manipulation routines"): reshape, transpose, moveaxis,
swapaxes, rollaxis, expand_dims, squeeze, broadcast_to, atleast_3d, concatenate, stack, hstack,
vstack, column_stack, append, split, array_split, hsplit, vsplit, dsplit, flip, flipud, fliplr,
rot90, roll, tile, repeat, ravel, diag, diagonal, trace, triu, tril (``pad`` is in
``padding.py``; diff, gradient, cross, kron in ``differences.py``). Each is movement primitives only (plus
``select``/``iota`` masks and elementwise arithmetic), so every derivative, in both modes and
to any order, comes from the primitives' own rules.
"""
from __future__ import annotations

import operator

import numpy as np

from .. import dtypes
from ..errors import at_user_line
from ..primitives import elementwise as E
from . import _prims as P
from ._dispatch import implements
from .reductions import normalize_axis, sum_


def _shape_tuple(shape):
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    if P.is_traced(shape) or any(P.is_traced(d) for d in shape):
        raise P.user_error(TypeError, "shapes must be Python ints: a traced value cannot be a size")
    return tuple(int(d) for d in shape)


def _one_axis(axis, ndim):
    return normalize_axis(axis, ndim, allow_tuple=False)[0]


@implements(np.reshape)
def reshape(a, shape=None, order="C", *, newshape=None, copy=None):
    if order != "C":
        raise P.user_error(NotImplementedError, f"reshape(order={order!r}): only 'C' order")
    shape = _shape_tuple(newshape if shape is None else shape)
    x = P.lift(a)
    unknown = [i for i, d in enumerate(shape) if d == -1]
    known = int(np.prod([d for d in shape if d != -1], dtype=np.int64))
    if len(unknown) > 1:
        raise P.user_error(ValueError, "can only specify one unknown dimension")
    if unknown and known and x.size % known == 0:
        shape = shape[:unknown[0]] + (x.size // known,) + shape[unknown[0] + 1:]
    if any(d < 0 for d in shape) or int(np.prod(shape, dtype=np.int64)) != x.size:
        raise P.user_error(ValueError, f"cannot reshape array of size {x.size} into shape "
                                       f"{P.shape_str(shape)}")
    return P.reshape(x, shape)


@implements(np.ravel)
def ravel(a, order="C"):
    x = P.lift(a)
    return reshape(x, (x.size,), order=order)


@implements(np.transpose)
def transpose(a, axes=None):
    x = P.lift(a)
    if axes is None:
        return P.transpose(x, tuple(reversed(range(x.ndim))))
    axes = tuple(int(ax) for ax in axes)
    if len(axes) != x.ndim:
        raise P.user_error(ValueError, "axes don't match array")
    return P.transpose(x, normalize_perm(axes, x.ndim))


def normalize_perm(axes, ndim):
    perm = [_one_axis(a, ndim) for a in axes]
    if len(set(perm)) != len(perm):
        raise P.user_error(ValueError, "repeated axis in transpose")
    return tuple(perm)


@implements(np.moveaxis)
def moveaxis(a, source, destination):
    x = P.lift(a)
    src = [source] if isinstance(source, int) else list(source)
    dst = [destination] if isinstance(destination, int) else list(destination)
    if len(src) != len(dst):
        raise P.user_error(ValueError, "`source` and `destination` arguments must have the same "
                                       "number of elements")
    src = list(normalize_perm(src, x.ndim))
    dst = list(normalize_perm(dst, x.ndim))
    order = [n for n in range(x.ndim) if n not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return P.transpose(x, order)


@implements(np.swapaxes)
def swapaxes(a, axis1, axis2):
    x = P.lift(a)
    perm = list(range(x.ndim))
    i, j = _one_axis(axis1, x.ndim), _one_axis(axis2, x.ndim)
    perm[i], perm[j] = perm[j], perm[i]
    return P.transpose(x, perm)


@implements(np.expand_dims)
def expand_dims(a, axis):
    x = P.lift(a)
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    ndim = x.ndim + len(axes)
    axes = normalize_axis(axes, ndim)
    dims = iter(x.shape)
    return P.reshape(x, tuple(1 if i in axes else next(dims) for i in range(ndim)))


@implements(np.squeeze)
def squeeze(a, axis=None):
    x = P.lift(a)
    if axis is None:
        axes = tuple(i for i, n in enumerate(x.shape) if n == 1)
    else:
        axes = normalize_axis(axis, x.ndim)
        if any(x.shape[i] != 1 for i in axes):
            raise P.user_error(ValueError, "cannot select an axis to squeeze out which has size "
                                           "not equal to one")
    return P.reshape(x, tuple(n for i, n in enumerate(x.shape) if i not in axes))


@implements(np.broadcast_to)
def broadcast_to(array, shape, subok=False):
    x = P.lift(array)
    shape = _shape_tuple(shape)
    try:  # NumPy's own check and message, on a zero-stride dummy (allocates nothing)
        np.broadcast_to(np.broadcast_to(np.empty((), dtype=np.int8), x.shape), shape)
    except ValueError as e:
        raise P.user_error(ValueError, str(e)) from None
    return P.broadcast_to(x, shape)


@implements(np.broadcast_arrays)
def broadcast_arrays(*args, subok=False):
    xs = [P.lift(a, P.the_trace(*args)) for a in args]
    shape = P.broadcast_shapes(*(x.shape for x in xs))
    return tuple(P.broadcast_to(x, shape) for x in xs)


def _promoted(arrays, what):
    trace = P.the_trace(*arrays)
    xs = [P.lift(a, trace) for a in arrays]
    if not xs:
        raise P.user_error(ValueError, "need at least one array to concatenate")
    dtype, _ = dtypes.result_type(*[(x.dtype, False) for x in xs])
    return [P.convert(x, dtype) for x in xs]


@implements(np.concatenate)
def concatenate(arrays, axis=0, out=None, dtype=None, casting="same_kind"):
    if out is not None:
        raise P.user_error(NotImplementedError, "concatenate(out=...) is not supported")
    xs = _promoted(arrays, "concatenate")
    if axis is None:
        xs, axis = [P.reshape(x, (x.size,)) for x in xs], 0
    if any(x.ndim == 0 for x in xs):
        raise P.user_error(ValueError, "zero-dimensional arrays cannot be concatenated")
    ax = _one_axis(axis, xs[0].ndim)
    for i, x in enumerate(xs[1:], start=1):
        if x.ndim != xs[0].ndim:
            raise P.user_error(ValueError, (
                "all the input arrays must have same number of dimensions, but the array at "
                f"index 0 has {xs[0].ndim} dimension(s) and the array at index {i} has "
                f"{x.ndim} dimension(s)"))
        for d in range(x.ndim):
            if d != ax and x.shape[d] != xs[0].shape[d]:
                raise P.user_error(ValueError, (
                    "all the input array dimensions except for the concatenation axis must match "
                    f"exactly, but along dimension {d}, the array at index 0 has size "
                    f"{xs[0].shape[d]} and the array at index {i} has size {x.shape[d]}"))
    result = P.concatenate(xs, ax)
    return result if dtype is None else P.convert(result, dtypes.canonical_dtype(dtype))


@implements(np.stack)
def stack(arrays, axis=0, out=None, dtype=None, casting="same_kind"):
    xs = _promoted(arrays, "stack")
    if any(x.shape != xs[0].shape for x in xs):
        raise P.user_error(ValueError, "all input arrays must have the same shape")
    ax = _one_axis(axis, xs[0].ndim + 1)
    return concatenate([expand_dims(x, ax) for x in xs], axis=ax, out=out, dtype=dtype)


@implements(np.atleast_1d)
def atleast_1d(*arys):
    out = [P.reshape(x, (1,)) if x.ndim == 0 else x
           for x in (P.lift(a, P.the_trace(*arys)) for a in arys)]
    return out[0] if len(out) == 1 else tuple(out)


@implements(np.atleast_2d)
def atleast_2d(*arys):
    def two(x):
        return P.reshape(x, (1,) * (2 - x.ndim) + x.shape) if x.ndim < 2 else x

    out = [two(P.lift(a, P.the_trace(*arys))) for a in arys]
    return out[0] if len(out) == 1 else tuple(out)


@implements(np.hstack)
def hstack(tup, *, dtype=None, casting="same_kind"):
    xs = [atleast_1d(x) for x in _promoted(tup, "hstack")]
    return concatenate(xs, axis=0 if xs[0].ndim == 1 else 1, dtype=dtype)


@implements(np.vstack)
def vstack(tup, *, dtype=None, casting="same_kind"):
    return concatenate([atleast_2d(x) for x in _promoted(tup, "vstack")], axis=0, dtype=dtype)


@implements(np.append)
def append(arr, values, axis=None):
    trace = P.the_trace(arr, values)
    x, v = P.lift(arr, trace), P.lift(values, trace)
    if axis is None:
        return concatenate([ravel(x), ravel(v)], axis=0)
    return concatenate([x, v], axis=axis)


def _split_points(n, indices_or_sections, equal):
    if isinstance(indices_or_sections, (int, np.integer)):
        sections = int(indices_or_sections)
        if sections <= 0:
            raise P.user_error(ValueError, "number sections must be larger than 0.")
        if equal and n % sections:
            raise P.user_error(ValueError, "array split does not result in an equal division")
        base, extra = divmod(n, sections)
        sizes = [base + 1] * extra + [base] * (sections - extra)
        return list(np.cumsum([0] + sizes))
    points = [int(i) for i in indices_or_sections]
    return [0] + points + [n]


def _split(ary, indices_or_sections, axis, equal):
    x = P.lift(ary)
    ax = _one_axis(axis, x.ndim)
    n = x.shape[ax]
    bounds = _split_points(n, indices_or_sections, equal)
    pieces = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        lo, hi = (lo + n if lo < 0 else lo), (hi + n if hi < 0 else hi)
        lo, hi = min(max(lo, 0), n), min(max(hi, 0), n)
        pieces.append(P.slice_axis(x, ax, lo, max(lo, hi)))
    return pieces


@implements(np.split)
def split(ary, indices_or_sections, axis=0):
    return _split(ary, indices_or_sections, axis, equal=True)


@implements(np.array_split)
def array_split(ary, indices_or_sections, axis=0):
    return _split(ary, indices_or_sections, axis, equal=False)


@implements(np.flip)
def flip(m, axis=None):
    x = P.lift(m)
    return P.rev(x, normalize_axis(axis, x.ndim))


@implements(np.tile)
def tile(A, reps):
    x = P.lift(A)
    reps = (int(reps),) if isinstance(reps, (int, np.integer)) else tuple(int(r) for r in reps)
    ndim = max(x.ndim, len(reps))
    reps = (1,) * (ndim - len(reps)) + reps
    x = P.reshape(x, (1,) * (ndim - x.ndim) + x.shape)
    interleaved = tuple(v for n in x.shape for v in (1, n))
    target = tuple(v for r, n in zip(reps, x.shape) for v in (r, n))
    expanded = P.broadcast_to(P.reshape(x, interleaved), target)
    return P.reshape(expanded, tuple(r * n for r, n in zip(reps, x.shape)))


@implements(np.repeat)
def repeat(a, repeats, axis=None):
    x = P.lift(a)
    if axis is None:
        x, axis = P.reshape(x, (x.size,)), 0
    ax = _one_axis(axis, x.ndim)
    if P.is_traced(repeats):
        raise P.user_error(TypeError, "repeat(): `repeats` sets the output shape, so it must be "
                                      "concrete Python ints, not a traced value")
    counts = np.asarray(repeats)
    if counts.ndim == 0 or counts.size == 1:
        r = int(counts.reshape(()))
        n = x.shape[ax]
        expanded_shape = x.shape[:ax + 1] + (1,) + x.shape[ax + 1:]
        target = x.shape[:ax + 1] + (r,) + x.shape[ax + 1:]
        expanded = P.broadcast_to(P.reshape(x, expanded_shape), target)
        return P.reshape(expanded, x.shape[:ax] + (n * r,) + x.shape[ax + 1:])
    if counts.shape != (x.shape[ax],):
        raise P.user_error(ValueError, f"operands could not be broadcast together with shape "
                                       f"({x.shape[ax]},) ({counts.size},)")
    index = np.repeat(np.arange(x.shape[ax]), counts)  # static: known while tracing
    from .indexing import take_along_axis_static
    return take_along_axis_static(x, index, ax)


def _offset_iotas(n, row_start, col_start, trace):
    rows = P.iota((n,), np.int64, 0, trace)
    cols = rows
    if row_start:
        rows = E.add.bind(rows, P.full((n,), row_start, np.int64, trace))
    if col_start:
        cols = E.add.bind(cols, P.full((n,), col_start, np.int64, trace))
    return rows, cols


@implements(np.diagonal)
def diagonal(a, offset=0, axis1=0, axis2=1):
    x = P.lift(a)
    if x.ndim < 2:
        raise P.user_error(ValueError, "diag requires an array of at least two dimensions")
    ax1, ax2 = _one_axis(axis1, x.ndim), _one_axis(axis2, x.ndim)
    if ax1 == ax2:
        raise P.user_error(ValueError, "axis1 and axis2 cannot be the same")
    row0, col0 = max(0, -offset), max(0, offset)
    n = max(0, min(x.shape[ax1] - row0, x.shape[ax2] - col0))
    rows, cols = _offset_iotas(n, row0, col0, x._trace)
    picked = P.gather(x, [rows, cols], (ax1, ax2))  # shape (n,) + the other dims
    return moveaxis(picked, 0, -1)


@implements(np.diag)
def diag(v, k=0):
    x = P.lift(v)
    if x.ndim == 2:
        return diagonal(x, k)
    if x.ndim != 1:
        raise P.user_error(ValueError, "Input must be 1- or 2-d.")
    n = x.shape[0] + abs(k)
    padded = P.pad(x, P.the_trace(x).lift(np.zeros((), x.dtype)), [(0, abs(k), 0)])
    # Row i holds v[i] at column i + k (k >= 0); column j holds v[j] at row j - k (k < 0).
    values = P.broadcast_to(P.reshape(padded, (n, 1) if k >= 0 else (1, n)), (n, n))
    mask = _band_mask((n, n), k, k, x._trace)
    return E.select.bind(mask, values, P.full((n, n), 0, x.dtype, x._trace))


def _band_mask(shape, lo, hi, trace):
    """Boolean (M, N) mask of lo <= col - row <= hi (None for an open end)."""
    rows = P.iota(shape, np.int64, 0, trace)
    cols = P.iota(shape, np.int64, 1, trace)
    diff = E.sub.bind(cols, rows)
    mask = None
    if lo is not None:
        mask = E.ge.bind(diff, P.full(shape, lo, np.int64, trace))
    if hi is not None:
        upper = E.le.bind(diff, P.full(shape, hi, np.int64, trace))
        mask = upper if mask is None else E.and_.bind(mask, upper)
    return mask


def _triangle(m, lo, hi):
    x = P.lift(m)
    if x.ndim == 0:
        raise P.user_error(ValueError, "triu/tril need an array of at least one dimension")
    mat_shape = x.shape[-2:] if x.ndim >= 2 else (x.shape[0], x.shape[0])
    shape = x.shape if x.ndim >= 2 else mat_shape
    mask = P.broadcast_to(_band_mask(mat_shape, lo, hi, x._trace), shape)
    return E.select.bind(mask, P.broadcast_to(x, shape), P.full(shape, 0, x.dtype, x._trace))


@implements(np.triu)
def triu(m, k=0):
    return _triangle(m, k, None)


@implements(np.tril)
def tril(m, k=0):
    return _triangle(m, None, k)


@implements(np.trace)
def trace(a, offset=0, axis1=0, axis2=1, dtype=None, out=None):
    return sum_(diagonal(a, offset, axis1, axis2), axis=-1, dtype=dtype, out=out)


@implements(np.shape)
def shape(a):
    return P.lift(a).shape


@implements(np.ndim)
def ndim(a):
    return P.lift(a).ndim


@implements(np.size)
def size(a, axis=None):
    x = P.lift(a)
    return x.size if axis is None else x.shape[_one_axis(axis, x.ndim)]


@implements(np.copy)
def copy(a, order="K", subok=False):
    return P.lift(a)  # traced values are immutable: a copy is the value itself


# --- more shape functions: flips, rolls, rotations, stacking, splitting ----------------------

@implements(np.flipud)
def flipud(m):
    x = P.lift(m)
    if x.ndim < 1:
        raise P.user_error(ValueError, "Input must be >= 1-d.")
    return P.rev(x, (0,))


@implements(np.fliplr)
def fliplr(m):
    x = P.lift(m)
    if x.ndim < 2:
        raise P.user_error(ValueError, "Input must be >= 2-d.")
    return P.rev(x, (1,))


@implements(np.rot90)
def rot90(m, k=1, axes=(0, 1)):
    x = P.lift(m)
    axes = tuple(axes)
    if len(axes) != 2:
        raise P.user_error(ValueError, "len(axes) must be 2.")
    first, second = (operator.index(a) for a in axes)
    # NumPy's checks, in its order: (0, -2) on a matrix names one axis twice, too.
    if first == second or abs(first - second) == x.ndim:
        raise P.user_error(ValueError, "Axes must be different.")
    if not (-x.ndim <= first < x.ndim and -x.ndim <= second < x.ndim):
        raise P.user_error(ValueError, f"Axes={axes} out of range for array of ndim={x.ndim}.")
    first, second = first % x.ndim, second % x.ndim
    k = operator.index(k) % 4
    perm = list(range(x.ndim))
    perm[first], perm[second] = perm[second], perm[first]
    if k == 0:
        return x
    if k == 2:
        return P.rev(x, (first, second))
    if k == 1:  # a quarter turn from the first axis towards the second
        return P.transpose(P.rev(x, (second,)), perm)
    return P.rev(P.transpose(x, perm), (second,))


def _static_ints(value, what):
    if P.any_traced([value]):
        raise P.user_error(TypeError, f"roll(): `{what}` must be Python ints: it decides which "
                                      "elements move where, which must be known while tracing")
    return np.asarray(value)


@implements(np.roll)
def roll(a, shift, axis=None):
    x = P.lift(a)
    shifts = _static_ints(shift, "shift")
    if axis is None:
        return P.reshape(roll(P.reshape(x, (x.size,)), shifts, 0), x.shape)
    axes = [_one_axis(ax, x.ndim) for ax in np.atleast_1d(_static_ints(axis, "axis"))]
    try:
        pairs = np.broadcast(shifts, np.asarray(axes))
    except ValueError as e:
        raise P.user_error(ValueError, str(e)) from None
    if pairs.nd > 1:
        raise P.user_error(ValueError, "'shift' and 'axis' should be scalars or 1D sequences")
    total = [0] * x.ndim
    for s, ax in pairs:  # shifts along one axis add up, as NumPy's
        total[int(ax)] += int(s)
    for ax, s in enumerate(total):
        n = x.shape[ax]
        s = s % n if n else 0
        if s:
            x = P.concatenate([P.slice_axis(x, ax, n - s, n), P.slice_axis(x, ax, 0, n - s)], ax)
    return x


@implements(np.rollaxis)
def rollaxis(a, axis, start=0):
    x = P.lift(a)
    n = x.ndim
    ax = _one_axis(axis, n)
    start = operator.index(start)
    if start < 0:
        start += n
    if not 0 <= start < n + 1:
        raise np.exceptions.AxisError(at_user_line(
            f"'start' arg requires {-n} <= start < {n + 1}, but {start} was passed in"))
    if ax < start:
        start -= 1
    order = [d for d in range(n) if d != ax]
    order.insert(start, ax)
    return P.transpose(x, order)


@implements(np.atleast_3d)
def atleast_3d(*arys):
    def three(x):
        if x.ndim == 0:
            return P.reshape(x, (1, 1, 1))
        if x.ndim == 1:
            return P.reshape(x, (1,) + x.shape + (1,))
        return P.reshape(x, x.shape + (1,)) if x.ndim == 2 else x

    out = [three(P.lift(a, P.the_trace(*arys))) for a in arys]
    return out[0] if len(out) == 1 else tuple(out)


@implements(np.column_stack)
def column_stack(tup):
    def column(x):  # 0-d and 1-d inputs become columns
        return P.reshape(x, (x.size, 1)) if x.ndim < 2 else x

    return concatenate([column(x) for x in _promoted(tup, "column_stack")], axis=1)


def _split_along(name, ary, indices_or_sections, min_ndim, axis):
    x = P.lift(ary)
    if x.ndim < min_ndim:
        raise P.user_error(ValueError, f"{name} only works on arrays of {min_ndim} or more "
                                       "dimensions")
    return _split(x, indices_or_sections, axis, equal=True)


@implements(np.hsplit)
def hsplit(ary, indices_or_sections):
    x = P.lift(ary)
    return _split_along("hsplit", x, indices_or_sections, 1, 1 if x.ndim > 1 else 0)


@implements(np.vsplit)
def vsplit(ary, indices_or_sections):
    return _split_along("vsplit", ary, indices_or_sections, 2, 0)


@implements(np.dsplit)
def dsplit(ary, indices_or_sections):
    return _split_along("dsplit", ary, indices_or_sections, 3, 2)
