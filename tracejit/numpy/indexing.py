"""``x[key]`` on traced arrays, with NumPy's basic and advanced indexing rules.

Basic indices (ints, slices with any step, ``None``, ``...``) become ``slice``/``rev``/``reshape``;
integer arrays (and ints mixed with them) become one ``gather``. As in NumPy, the broadcast index
dims go where the first advanced index was when the advanced indices are adjacent, else first.
Boolean masks are accepted only when concrete (a NumPy array): a traced mask would give a
value-dependent shape.
"""
from __future__ import annotations

import numpy as np

from ..primitives import elementwise as E
from . import _prims as P

_VALID = ("only integers, slices (`:`), ellipsis (`...`), numpy.newaxis (`None`) and integer or "
          "boolean arrays are valid indices")


def _is_int(k) -> bool:
    return isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_))


def _as_index_array(k, trace):
    """An integer-array index as a NumPy array (concrete) or an int tracer; None if not one."""
    if P.is_traced(k):
        if k.dtype.kind == "b":
            raise P.user_error(IndexError, (
                "boolean mask indexing with a traced mask gives a shape that depends on the "
                "mask's values, which cannot be traced. Use tracejit.numpy.where(mask, x, 0) "
                "(or multiply by the mask) to keep the shape static."))
        if k.dtype.kind not in "iu":
            raise P.user_error(IndexError, _VALID)
        return k
    if isinstance(k, (list, tuple)) or isinstance(k, np.ndarray):
        if any(P.is_traced(v) for v in P.flat_values([k])):
            from .creation import array
            return _as_index_array(array(k), trace)
        arr = np.asarray(k)
        if arr.size == 0 and arr.dtype.kind == "f":
            arr = arr.astype(np.int64)
        if arr.dtype.kind not in "iu":
            raise P.user_error(IndexError, _VALID)
        return arr
    return None


class _Mask:
    """A concrete boolean mask in an index; it consumes ``array.ndim`` dims."""

    __slots__ = ("array",)

    def __init__(self, array):
        self.array = array


def _expand(key, ndim):
    """Key as a list of entries each consuming one dim (ellipsis and masks expanded)."""
    if not isinstance(key, tuple):
        key = (key,)
    entries = []
    for k in key:
        concrete = isinstance(k, (np.ndarray, np.bool_, bool, list)) and \
            not any(P.is_traced(v) for v in P.flat_values([k]))
        if concrete and np.asarray(k).dtype == np.bool_:
            mask = np.asarray(k)
            if mask.ndim == 0:
                raise P.user_error(IndexError, "a boolean scalar index is not supported while "
                                               "tracing")
            entries.append(_Mask(mask))
        else:
            entries.append(k)
    consumed = sum(e.array.ndim if isinstance(e, _Mask) else
                   (0 if e is None or e is Ellipsis else 1) for e in entries)
    if sum(1 for e in entries if e is Ellipsis) > 1:
        raise P.user_error(IndexError, "an index can only have a single ellipsis ('...')")
    if consumed > ndim:
        raise P.user_error(IndexError, f"too many indices for array: array is {ndim}-dimensional,"
                                       f" but {consumed} were indexed")
    out = []
    for k in entries:
        if k is Ellipsis:
            out.extend([slice(None)] * (ndim - consumed))
        else:
            out.append(k)
    if not any(k is Ellipsis for k in entries):
        out.extend([slice(None)] * (ndim - consumed))
    return out


def getitem(x, key):
    x = P.lift(x)
    trace = P.the_trace(x)
    entries = _expand(key, x.ndim)
    # newaxis is a length-1 axis taken whole: insert the axes first, then index them with `:`.
    if any(e is None for e in entries):
        dims = iter(x.shape)
        shape, new_entries = [], []
        for e in entries:
            if e is None:
                shape.append(1)
                new_entries.append(slice(None))
            else:
                count = e.array.ndim if isinstance(e, _Mask) else 1
                for _ in range(count):
                    shape.append(next(dims))
                new_entries.append(e)
        x, entries = P.reshape(x, tuple(shape)), new_entries

    # Concrete boolean masks become integer arrays (their count is known while tracing).
    flat_entries = []
    dim = 0
    for e in entries:
        if isinstance(e, _Mask):
            mask = e.array
            for i, n in enumerate(mask.shape):
                if x.shape[dim + i] != n:
                    raise P.user_error(IndexError, (
                        f"boolean index did not match indexed array along axis {dim + i}; size "
                        f"of axis is {x.shape[dim + i]} but size of corresponding boolean axis "
                        f"is {n}"))
            flat_entries.extend(np.nonzero(mask))
            dim += mask.ndim
        else:
            flat_entries.append(e)
            dim += 1
    entries = flat_entries

    arrays = [_as_index_array(e, trace) if not isinstance(e, slice) and not _is_int(e) else None
              for e in entries]
    for e, arr in zip(entries, arrays):
        if arr is None and not isinstance(e, slice) and not _is_int(e):
            raise P.user_error(IndexError, _VALID)
    advanced = any(a is not None for a in arrays)

    # Basic part: slices (and ints when there is no advanced index) on each dim.
    starts, limits, strides, flips, drop = [], [], [], [], []
    for d, (e, arr) in enumerate(zip(entries, arrays)):
        n = x.shape[d]
        if isinstance(e, slice):
            start, stop, step = e.indices(n)
            count = len(range(start, stop, step))
            if step < 0:
                flips.append(d)
                start, step = n - 1 - start, -step
            start = min(start, n)
            starts.append(start)
            limits.append(start + (count - 1) * step + 1 if count else start)
            strides.append(step)
        elif arr is None and not advanced:
            i = int(e)
            if not -n <= i < n:
                raise P.user_error(IndexError, f"index {i} is out of bounds for axis {d} with "
                                               f"size {n}")
            i %= n
            starts.append(i), limits.append(i + 1), strides.append(1), drop.append(d)
        else:
            starts.append(0), limits.append(n), strides.append(1)
    x = P.rev(x, flips)
    x = P.slice_(x, starts, limits, strides)
    if not advanced:
        return P.reshape(x, tuple(n for d, n in enumerate(x.shape) if d not in drop))

    # Advanced part: ints join the integer arrays; all are broadcast together and gathered.
    adv_axes = [d for d, e in enumerate(entries) if arrays[d] is not None or _is_int(e)]
    idx = []
    for d in adv_axes:
        e = entries[d] if arrays[d] is None else arrays[d]
        idx.append(_normalise_index(e, x.shape[d], d, trace))
    batch = P.broadcast_shapes(*(i.shape for i in idx)) if len(idx) > 1 else idx[0].shape
    idx = [P.broadcast_to(i, batch) for i in idx]
    result = P.gather(x, idx, adv_axes)
    adjacent = adv_axes == list(range(adv_axes[0], adv_axes[0] + len(adv_axes)))
    if adjacent and adv_axes[0] > 0:
        nb = len(batch)
        before = list(range(nb, nb + adv_axes[0]))
        perm = before + list(range(nb)) + list(range(nb + adv_axes[0], result.ndim))
        result = P.transpose(result, perm)
    return result


def _normalise_index(e, n, axis, trace):
    """An in-range int64 index tracer for dim size n (negative indices wrapped)."""
    if not P.is_traced(e):
        arr = np.asarray(e)
        bad = (arr < -n) | (arr >= n)
        if np.any(bad):
            raise P.user_error(IndexError, f"index {int(arr[bad].flat[0])} is out of bounds for "
                                           f"axis {axis} with size {n}")
        return trace.lift(np.where(arr < 0, arr + n, arr).astype(np.int64))
    t = P.convert(e, np.int64)
    wrapped = E.add.bind(t, P.full(t.shape, n, np.int64, trace))
    return E.select.bind(E.lt.bind(t, P.full(t.shape, 0, np.int64, trace)), wrapped, t)


def take_along_axis_static(x, index, axis):
    """x gathered along ``axis`` by a concrete index vector (the result keeps x's rank)."""
    gathered = P.gather(x, [P.the_trace(x).lift(np.asarray(index, dtype=np.int64))], (axis,))
    return P.transpose(gathered, list(range(1, axis + 1)) + [0] + list(range(axis + 1, x.ndim)))
