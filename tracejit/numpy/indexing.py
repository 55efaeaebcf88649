"""``x[key]`` on traced arrays, with NumPy's basic and advanced indexing rules.

Basic indices (ints, slices with any step, ``None``, ``...``) become ``slice``/``rev``/``reshape``;
integer arrays (and ints mixed with them) become one ``gather``. As in NumPy, the broadcast index
dims go where the first advanced index was when the advanced indices are adjacent, else first.
Boolean masks are accepted only when concrete (a NumPy array): a traced mask would give a
value-dependent shape.

Also NumPy's indexing routines: ``take`` and ``select``, and ``nonzero``/``argwhere``/
``flatnonzero``/``unique``, whose result shapes depend on values: on traced arrays they need a
static ``size=`` (as in other tracing compilers) and raise ``ValueDependentShapeError`` without.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..errors import ValueDependentShapeError, at_user_line
from ..primitives import elementwise as E
from ..primitives import structural as S
from . import _prims as P
from ._dispatch import _strong, implements
from .reductions import cumsum, normalize_axis

_VALID = ("only integers, slices (`:`), ellipsis (`...`), numpy.newaxis (`None`) and integer or "
          "boolean arrays are valid indices")


class _MaskIndexError(ValueDependentShapeError, IndexError):
    """``x[traced_mask]``: also an IndexError, NumPy's type for an index it cannot use."""


def value_dependent_shape(what, instead, also=None):
    """The error for ``what`` on a traced array, saying why and what to use ``instead``."""
    cls = _MaskIndexError if also is IndexError else ValueDependentShapeError
    return cls(at_user_line(
        f"{what} cannot be compiled: the shape of its result depends on the array's values, "
        "and a compiled graph has static shapes (only shapes and dtypes are known while "
        f"tracing). {instead}"))


def _is_int(k) -> bool:
    return isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_))


def _as_index_array(k, trace):
    """An integer-array index as a NumPy array (concrete) or an int tracer; None if not one."""
    if P.is_traced(k):
        if k.dtype.kind == "b":
            raise value_dependent_shape(
                "Indexing with a traced boolean mask (`x[mask]`)", (
                    "Keep the shape with tracejit.numpy.where(mask, x, fill) (a masked sum is "
                    "tnp.where(mask, x, 0).sum()), or pick a fixed number of elements with "
                    "x[tnp.nonzero(mask, size=n, fill_value=...)]."), IndexError)
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


def _move_batch(gathered, batch_ndim, axis):
    """A gather's result (batch dims first) with the batch dims moved to ``axis``."""
    rest = gathered.ndim - batch_ndim
    perm = ([batch_ndim + i for i in range(axis)] + list(range(batch_ndim)) +
            [batch_ndim + i for i in range(axis, rest)])
    return P.transpose(gathered, perm)


# --- take -----------------------------------------------------------------------------------

def _take_indices(indices, trace):
    """``take``'s indices as an int64 tracer or NumPy array, cast as NumPy casts them: arrays
    only within a kind ('same_kind'), Python numbers and lists truncated to integers."""
    if P.any_traced([indices]):
        t = P.lift(indices, trace)
        if t.dtype.kind == "f":
            raise P.user_error(TypeError, f"Cannot cast array data from dtype('{t.dtype}') to "
                                          "dtype('int64') according to the rule 'same_kind'")
        return P.convert(t, np.int64)
    arr = np.asarray(indices)
    if arr.dtype.kind not in "biuf":
        raise P.user_error(TypeError, f"Cannot cast array data from {arr.dtype!r} to "
                                      "dtype('int64') according to the rule 'same_kind'")
    if isinstance(indices, np.ndarray) and arr.dtype.kind == "f":
        raise P.user_error(TypeError, f"Cannot cast array data from dtype('{arr.dtype}') to "
                                      "dtype('int64') according to the rule 'same_kind'")
    return arr.astype(np.int64)


def _clip_mode(mode):
    """NumPy's spellings of a clip mode: the names, or the numbers of NumPy's C enum (0 clip,
    1 wrap, any other int raise)."""
    if isinstance(mode, str):
        if mode in ("raise", "wrap", "clip"):
            return mode
        if mode[:1].lower() in ("c", "r", "w"):
            raise P.user_error(ValueError, "Use one of 'clip', 'raise', or 'wrap' for clip mode")
        raise P.user_error(ValueError, "clipmode must be one of 'clip', 'raise', or 'wrap' "
                                       f"(got {mode!r})")
    if mode is None:
        return "raise"
    if isinstance(mode, (int, np.integer)) and not isinstance(mode, (bool, np.bool_)):
        return {0: "clip", 1: "wrap"}.get(int(mode), "raise")
    raise P.user_error(TypeError, "clipmode not understood")


@implements(np.take)
def take(a, indices, axis=None, out=None, mode="raise"):
    """``numpy.take``. With ``mode='raise'`` concrete indices are checked while tracing; traced
    ones are checked when the compiled code runs (an out-of-range index raises IndexError
    then, naming this line), as for ``x[i]``."""
    if out is not None:
        raise P.user_error(NotImplementedError, "take(out=...) is not supported on traced arrays")
    mode = _clip_mode(mode)
    trace = P.the_trace(a, indices)
    x = P.lift(a, trace)
    if axis is None or x.ndim == 0:  # NumPy takes from a 0-d array as from a 1-d one
        x = P.reshape(x, (x.size,))
    ax = normalize_axis(0 if axis is None else axis, x.ndim, allow_tuple=False)[0]
    idx = _take_indices(indices, trace)
    n = x.shape[ax]
    out_shape = x.shape[:ax] + tuple(idx.shape) + x.shape[ax + 1:]
    if n == 0:
        if idx.size:
            raise P.user_error(IndexError, "cannot do a non-empty take from an empty axes.")
        return P.full(out_shape, 0, x.dtype, trace)
    if mode == "raise":
        idx = _normalise_index(idx, n, ax, trace)
    elif not P.is_traced(idx):
        idx = trace.lift(np.mod(idx, n) if mode == "wrap" else np.clip(idx, 0, n - 1))
    elif mode == "wrap":
        idx = E.mod.bind(idx, P.full(idx.shape, n, np.int64, trace))
    else:
        idx = E.min_.bind(E.max_.bind(idx, P.full(idx.shape, 0, np.int64, trace)),
                          P.full(idx.shape, n - 1, np.int64, trace))
    return _move_batch(P.gather(x, [idx], (ax,)), idx.ndim, ax)


# --- select ---------------------------------------------------------------------------------

@implements(np.select)
def select(condlist, choicelist, default=0):
    if len(condlist) != len(choicelist):
        raise P.user_error(ValueError, "list of cases must be same length as list of conditions")
    if len(condlist) == 0:
        raise P.user_error(ValueError, "select with an empty condition list is not possible")
    trace = P.the_trace(condlist, choicelist, default)

    def operand(v):  # as NumPy: Python numbers stay weakly typed, the rest become arrays
        if type(v) in (int, float) or P.is_traced(v):
            return v
        return P.lift(v, trace) if P.any_traced([v]) else np.asarray(v)

    choices = [operand(v) for v in list(choicelist) + [default]]
    types = [P.ttype_of(v) for v in choices]
    try:
        dtype, _ = dtypes.result_type(*[(t.dtype, t.weak) for t in types])
    except TypeError as e:
        raise P.user_error(TypeError, "Choicelist and default value do not have a common "
                                      f"dtype: {e}") from None
    conds = [P.lift(c, trace) if P.any_traced([c]) else trace.lift(np.asarray(c))
             for c in condlist]
    try:
        cond_shape = np.broadcast_shapes(*(c.shape for c in conds))
        choice_shape = np.broadcast_shapes(*(t.shape for t in types))
        shape = np.broadcast_shapes(cond_shape, choice_shape)
    except ValueError as e:
        raise P.user_error(ValueError, str(e)) from None
    for i, c in enumerate(conds):
        if c.dtype != np.bool_:
            raise P.user_error(TypeError, f"invalid entry {i} in condlist: should be boolean "
                                          "ndarray")

    def as_result(v):  # Python ints wrap into small integer dtypes, as NumPy stores them
        t = P.convert(v, dtype) if P.is_traced(v) else trace.lift(np.asarray(v).astype(dtype))
        return P.broadcast_to(t, shape)

    result = as_result(choices[-1])
    # The first true condition wins: apply the choices from the last to the first.
    for cond, choice in reversed(list(zip(conds, choices[:-1]))):
        result = P.select(P.broadcast_to(cond, shape), as_result(choice), result)
    return result


# --- nonzero, argwhere, flatnonzero, unique: static only with size= --------------------------

def _fills(fill_value, count, what):
    """``fill_value`` as ``count`` int64 values (one, or one per output)."""
    values = fill_value if isinstance(fill_value, (tuple, list)) else [fill_value] * count
    if len(values) != count:
        raise P.user_error(ValueError, f"{what}: fill_value must be a scalar or a sequence of "
                                       f"{count} values, got {len(values)}")
    out = []
    for v in values:
        v = 0 if v is None else v
        if P.ttype_of(v).dtype.kind not in "biu" or P.ttype_of(v).ndim:
            raise P.user_error(TypeError, f"{what}: fill_value must be integer scalars, got "
                                          f"{P.ttype_of(v)}")
        out.append(v)
    return out


def _nonzero_positions(flat, size):
    """The first ``size`` flat positions where 1-d ``flat`` is non-zero, and which of the
    ``size`` slots hold one. Each non-zero element goes to slot (number of non-zeros up to
    it) - 1 by a scatter; slot ``size`` collects the rest and is dropped."""
    trace = P.the_trace(flat)
    n = flat.shape[0]
    slots = P.iota((size,), np.int64, 0, trace)
    if n == 0:
        return slots, E.lt.bind(slots, P.full((size,), 0, np.int64, trace))
    truth = flat if flat.dtype == np.bool_ else E.ne.bind(flat, P.full_like(flat, 0))
    counts = cumsum(P.convert(truth, np.int64))
    spill = P.full((n,), size, np.int64, trace)
    slot = E.min_.bind(P.select(truth, E.sub.bind(counts, P.full((n,), 1, np.int64, trace)),
                                spill), spill)
    positions = S.scatter_add.bind(P.full((size + 1,), 0, np.int64, trace),
                                   P.iota((n,), np.int64, 0, trace), slot, axes=(0,))
    total = P.broadcast_to(P.slice_(counts, (n - 1,), (n,)), (size,))
    return P.slice_(positions, (0,), (size,)), E.lt.bind(slots, total)


def _static_size(size, what):
    if P.any_traced([size]):
        raise P.user_error(TypeError, f"{what}: size= sets the output shape, so it must be a "
                                      "Python int, not a traced value")
    size = int(size)
    if size < 0:
        raise P.user_error(ValueError, f"{what}: size= must be non-negative, got {size}")
    return size


def _nonzero_sized(x, size, fill_value, what):
    """One int64 index array per dim of x, each of length ``size``."""
    size = _static_size(size, what)
    positions, valid = _nonzero_positions(P.reshape(x, (x.size,)), size)
    fills = _fills(fill_value, x.ndim, what)
    trace = P.the_trace(x)
    out, stride = [], x.size
    for d, (n, fill) in enumerate(zip(x.shape, fills)):
        stride //= max(n, 1)
        coord = positions
        if stride > 1:
            coord = E.floordiv.bind(coord, P.full((size,), stride, np.int64, trace))
        if d > 0:
            coord = E.mod.bind(coord, P.full((size,), max(n, 1), np.int64, trace))
        fill = P.broadcast_to(P.convert(P.lift(fill, trace), np.int64), (size,))
        out.append(P.select(valid, coord, fill))
    return tuple(out)


def _eager_sized(indices, size, fill_value, what):
    """NumPy's (value-dependent) index arrays cut or filled to ``size``, for concrete inputs."""
    size = _static_size(size, what)
    fills = _fills(fill_value, len(indices), what)
    out = []
    for idx, fill in zip(indices, fills):
        full = np.full(size, fill, dtype=np.int64)
        count = min(size, idx.size)
        full[:count] = idx[:count]
        out.append(full)
    return tuple(out)


def _sized(np_fn, what, eager):
    """``np_fn`` with a static ``size=``/``fill_value=``: the traced function gets them, and
    ``eager(a, size, fill_value, *args, **kwargs)`` answers concrete calls with them; NumPy's
    own function (which has no such arguments) answers the others."""
    def decorate(traced_fn):
        dispatched = implements(np_fn)(traced_fn)

        def public(a, *args, size=None, fill_value=None, **kwargs):
            if size is None:
                if fill_value is not None:
                    raise P.user_error(TypeError, f"{what}: fill_value= needs size=")
                return dispatched(a, *args, **kwargs)
            if P.any_traced([a, fill_value]):
                x = P.lift(a, P.the_trace(a, fill_value))
                return _strong(traced_fn(x, *args, size=size, fill_value=fill_value, **kwargs))
            return eager(a, _static_size(size, what), fill_value, *args, **kwargs)

        public.__name__ = public.__qualname__ = traced_fn.__name__
        public.__doc__ = traced_fn.__doc__
        public.__wrapped__ = traced_fn
        public.numpy_function = np_fn
        return public

    return decorate


def _eager_nonzero(a, size, fill_value):
    return _eager_sized(np.nonzero(a), size, fill_value, "nonzero")


def _eager_flatnonzero(a, size, fill_value):
    return _eager_sized(np.nonzero(np.ravel(a)), size, fill_value, "flatnonzero")[0]


def _eager_argwhere(a, size, fill_value):
    if np.ndim(a) == 0:
        return np.zeros((size, 0), np.int64)
    columns = _eager_sized(tuple(np.argwhere(a).T), size, fill_value, "argwhere")
    return np.stack(columns, axis=1)


_NEEDS_SIZE = ("Pass a static size: tnp.{name}(x, size=n, fill_value=0) gives exactly n "
               "results (the first n, or padded with fill_value); or keep the shape with "
               "tnp.where(x != 0, x, fill).")


@_sized(np.nonzero, "nonzero", _eager_nonzero)
def nonzero(a, *, size=None, fill_value=None):
    """``numpy.nonzero``; on traced arrays only with a static ``size=``: the first ``size``
    indices of non-zero elements, padded with ``fill_value`` (default 0) if there are fewer.

    >>> import numpy as np, tracejit, tracejit.numpy as tnp
    >>> tracejit.compile(lambda x: tnp.nonzero(x, size=3, fill_value=-1))(np.array([0, 5, 7]))
    (array([ 1,  2, -1]),)
    """
    x = P.lift(a)
    if x.ndim == 0:
        raise P.user_error(ValueError, "Calling nonzero on 0d arrays is not allowed. Use "
                                       "np.atleast_1d(scalar).nonzero() instead.")
    if size is None:
        raise value_dependent_shape("numpy.nonzero on a traced array",
                                    _NEEDS_SIZE.format(name="nonzero"))
    return _nonzero_sized(x, size, fill_value, "nonzero")


@_sized(np.flatnonzero, "flatnonzero", _eager_flatnonzero)
def flatnonzero(a, *, size=None, fill_value=None):
    """``numpy.flatnonzero``; on traced arrays only with a static ``size=`` (as ``nonzero``)."""
    x = P.lift(a)
    if size is None:
        raise value_dependent_shape("numpy.flatnonzero on a traced array",
                                    _NEEDS_SIZE.format(name="flatnonzero"))
    return _nonzero_sized(P.reshape(x, (x.size,)), size, fill_value, "flatnonzero")[0]


@_sized(np.argwhere, "argwhere", _eager_argwhere)
def argwhere(a, *, size=None, fill_value=None):
    """``numpy.argwhere``; on traced arrays only with a static ``size=``: a (size, ndim) array
    of the first ``size`` index tuples of non-zero elements, padded with ``fill_value``."""
    x = P.lift(a)
    if size is None:
        raise value_dependent_shape("numpy.argwhere on a traced array",
                                    _NEEDS_SIZE.format(name="argwhere"))
    if x.ndim == 0:
        _static_size(size, "argwhere")
        return P.full((int(size), 0), 0, np.int64, P.the_trace(x))
    columns = _nonzero_sized(x, size, fill_value, "argwhere")
    return P.concatenate([P.reshape(c, (c.shape[0], 1)) for c in columns], 1)


def _eager_unique(ar, size, fill_value, return_index=False, return_inverse=False,
                  return_counts=False, axis=None, *, equal_nan=True, sorted=True):  # noqa: A002
    results = np.unique(ar, return_index=True, return_inverse=True, return_counts=True,
                        axis=axis, equal_nan=equal_nan)
    values, index, inverse, counts = results
    count = min(size, values.size)
    fill = fill_value if fill_value is not None else (values[0] if values.size else 0)
    out = [np.concatenate([values[:count], np.full(size - count, fill, values.dtype)])]
    if return_index:
        out.append(np.concatenate([index[:count], np.zeros(size - count, np.int64)]))
    if return_inverse:
        out.append(inverse)
    if return_counts:
        out.append(np.concatenate([counts[:count], np.zeros(size - count, np.int64)]))
    return out[0] if len(out) == 1 else tuple(out)


@_sized(np.unique, "unique", _eager_unique)
def unique(ar, return_index=False, return_inverse=False, return_counts=False, axis=None, *,
           equal_nan=True, sorted=True, size=None, fill_value=None):  # noqa: A002
    """``numpy.unique``; on traced arrays only with a static ``size=``: the first ``size``
    distinct values in ascending order (NaNs last, one NaN with ``equal_nan``), padded with
    ``fill_value`` (default: the smallest value) if there are fewer. Padding slots have index
    0 and count 0; ``return_inverse`` is as NumPy's (an element whose value was cut off by
    ``size`` maps to a slot >= size). Differentiable in the values, as ``sort``.

    >>> import numpy as np, tracejit, tracejit.numpy as tnp
    >>> f = tracejit.compile(lambda x: tnp.unique(x, return_counts=True, size=4, fill_value=-1))
    >>> f(np.array([3, 1, 3, 3]))
    (array([ 1,  3, -1, -1]), array([1, 3, 0, 0]))
    """
    x = P.lift(ar)
    if size is None:
        raise value_dependent_shape("numpy.unique on a traced array", (
            "Pass a static size: tnp.unique(x, size=n, fill_value=...) gives exactly n values "
            "(the smallest n, or padded with fill_value); or work with a fixed shape: "
            "comparisons and tnp.where, or tnp.sort(x) and a mask of where neighbours differ."))
    if axis is not None:
        raise P.user_error(NotImplementedError, "unique(axis=...) is not supported on traced "
                                                "arrays; only the flattened form (axis=None)")
    size = _static_size(size, "unique")
    trace = P.the_trace(x, fill_value)
    n = x.size
    zeros = P.full((size,), 0, np.int64, trace)
    if n == 0:  # only padding
        fill = 0 if fill_value is None else fill_value
        out = [P.broadcast_to(P.convert(P.lift(fill, trace), x.dtype), (size,))]
        out += [zeros] if return_index else []
        out += [P.full(x.shape, 0, np.int64, trace)] if return_inverse else []
        out += [zeros] if return_counts else []
        return out[0] if len(out) == 1 else tuple(out)
    from .sorting import argsort
    flat = P.reshape(x, (n,))
    order = argsort(flat, kind="stable")
    ordered = P.gather(flat, [order], (0,))
    after, before = P.slice_(ordered, (1,), (n,)), P.slice_(ordered, (0,), (n - 1,))
    differs = E.ne.bind(after, before)
    if ordered.dtype.kind == "f" and equal_nan:  # NaN != NaN, but they are one value here
        both_nan = E.and_.bind(E.isnan.bind(after), E.isnan.bind(before))
        differs = E.and_.bind(differs, E.not_.bind(both_nan))
    starts = P.concatenate([P.full((1,), True, np.bool_, trace), differs], 0)
    slot, valid = _nonzero_positions(starts, size + 1)  # one more slot: where the last ends
    first, has_value = P.slice_(slot, (0,), (size,)), P.slice_(valid, (0,), (size,))
    values = P.gather(ordered, [first], (0,))  # slots without a value read position 0
    if fill_value is None:
        fill = P.broadcast_to(P.slice_(ordered, (0,), (1,)), (size,))
    else:
        fill = P.broadcast_to(P.convert(P.lift(fill_value, trace), x.dtype), (size,))
    out = [P.select(has_value, values, fill)]
    if return_index:
        out.append(P.select(has_value, P.gather(order, [first], (0,)), zeros))
    if return_inverse:
        group = E.sub.bind(cumsum(P.convert(starts, np.int64)), P.full((n,), 1, np.int64, trace))
        inverse = S.scatter_add.bind(P.full((n,), 0, np.int64, trace), group, order, axes=(0,))
        out.append(P.reshape(inverse, x.shape))
    if return_counts:
        ends = P.select(P.slice_(valid, (1,), (size + 1,)), P.slice_(slot, (1,), (size + 1,)),
                        P.full((size,), n, np.int64, trace))
        out.append(P.select(has_value, E.sub.bind(ends, first), zeros))
    return out[0] if len(out) == 1 else tuple(out)


