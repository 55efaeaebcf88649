"""Movement, creation and indexing primitives: they rearrange or make values, computing nothing.

``broadcast_in_dim``, ``reshape``, ``transpose``, ``slice``, ``rev``, ``pad``, ``concatenate``,
``iota`` and ``gather``. Every shape parameter is a tuple of Python ints (printable, hashable).
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..ir import TensorType
from . import ad_support as A
from . import batch_support as B
from .registry import REGISTRY, Primitive


def _is_perm(axes, ndim):
    return sorted(axes) == list(range(ndim))


# --- broadcast_in_dim[shape, dims]: operand dim i becomes output dim dims[i] -----------------
def _broadcast_in_dim_abstract_eval(x, *, shape, dims):
    if len(dims) != x.ndim or list(dims) != sorted(set(dims)) or any(d >= len(shape) for d in dims):
        raise TypeError(f"broadcast_in_dim: dims {dims} do not map {x} into {shape}")
    for i, d in enumerate(dims):
        if x.shape[i] not in (1, shape[d]):
            raise TypeError(f"broadcast_in_dim: operand dim {i} of {x} cannot broadcast to {shape}")
    return x.with_shape(shape)


def _broadcast_in_dim_impl(x, *, shape, dims):
    expanded = [1] * len(shape)
    for i, d in enumerate(dims):
        expanded[d] = x.shape[i]
    return np.broadcast_to(np.reshape(x, expanded), shape)


def _broadcast_in_dim_batch(args, bdims, *, shape, dims):
    (x,), (d,) = args, bdims
    x = B.moveaxis(x, d, 0)
    return broadcast_in_dim.bind(x, shape=(x.shape[0],) + tuple(shape),
                                 dims=(0,) + tuple(k + 1 for k in dims)), 0


broadcast_in_dim = Primitive("broadcast_in_dim", "movement",
                             abstract_eval=_broadcast_in_dim_abstract_eval,
                             impl=_broadcast_in_dim_impl).def_batch(_broadcast_in_dim_batch)


# --- reshape[shape]: row-major order ---------------------------------------------------------
def _reshape_abstract_eval(x, *, shape):
    if int(np.prod(shape, dtype=np.int64)) != x.size or any(d < 0 for d in shape):
        raise TypeError(f"reshape: cannot reshape {x} into {shape}")
    return x.with_shape(shape)


def _reshape_batch(args, bdims, *, shape):  # row-major: the batch axis must lead
    (x,), (d,) = args, bdims
    x = B.moveaxis(x, d, 0)
    return reshape.bind(x, shape=(x.shape[0],) + tuple(shape)), 0


reshape = Primitive("reshape", "movement", abstract_eval=_reshape_abstract_eval,
                    impl=lambda x, *, shape: np.reshape(x, shape)).def_batch(_reshape_batch)


# --- transpose[perm] -------------------------------------------------------------------------
def _transpose_abstract_eval(x, *, perm):
    if not _is_perm(perm, x.ndim):
        raise TypeError(f"transpose: {perm} is not a permutation of {x.ndim} axes")
    return x.with_shape(tuple(x.shape[p] for p in perm))


def _transpose_batch(args, bdims, *, perm):  # one transpose that also brings the batch first
    (x,), (d,) = args, bdims
    return transpose.bind(x, perm=(d,) + B.shift_axes(perm, d)), 0


transpose = Primitive("transpose", "movement", abstract_eval=_transpose_abstract_eval,
                      impl=lambda x, *, perm: np.transpose(x, perm)).def_batch(_transpose_batch)


# --- slice[start, limit, strides]: positive strides, in-bounds -------------------------------
def _slice_abstract_eval(x, *, start, limit, strides):
    if not (len(start) == len(limit) == len(strides) == x.ndim):
        raise TypeError(f"slice: parameters do not match the rank of {x}")
    shape = []
    for lo, hi, st, n in zip(start, limit, strides, x.shape):
        if not (0 <= lo <= hi <= n and st >= 1):
            raise TypeError(f"slice: [{lo}:{hi}:{st}] out of bounds for a dim of size {n}")
        shape.append((hi - lo + st - 1) // st)
    return x.with_shape(tuple(shape))


def _slice_impl(x, *, start, limit, strides):
    return x[tuple(slice(lo, hi, st) for lo, hi, st in zip(start, limit, strides))]


def _slice_batch(args, bdims, *, start, limit, strides):  # the whole batch axis, in place
    (x,), (d,) = args, bdims
    insert = lambda params, value: tuple(params[:d]) + (value,) + tuple(params[d:])  # noqa: E731
    return slice_.bind(x, start=insert(start, 0), limit=insert(limit, x.shape[d]),
                       strides=insert(strides, 1)), d


slice_ = Primitive("slice", "movement", abstract_eval=_slice_abstract_eval,
                   impl=_slice_impl).def_batch(_slice_batch)


# --- rev[axes]: reverse the order along axes -------------------------------------------------
def _rev_abstract_eval(x, *, axes):
    if len(set(axes)) != len(axes) or any(not 0 <= a < x.ndim for a in axes):
        raise TypeError(f"rev: bad axes {axes} for {x}")
    return x


def _rev_batch(args, bdims, *, axes):
    (x,), (d,) = args, bdims
    return rev.bind(x, axes=B.shift_axes(axes, d)), d


rev = Primitive("rev", "movement", abstract_eval=_rev_abstract_eval,
                impl=lambda x, *, axes: np.flip(x, axes) if axes else x).def_batch(_rev_batch)


# --- pad[config]: config[i] = (low, high, interior) >= 0; the pad value is operand 1 ---------
def _pad_abstract_eval(x, value, *, config):
    if value.shape != () or value.dtype != x.dtype or len(config) != x.ndim:
        raise TypeError(f"pad: needs a scalar pad value of {x.dtype} and one config per dim")
    shape = []
    for (lo, hi, interior), n in zip(config, x.shape):
        if min(lo, hi, interior) < 0:
            raise TypeError(f"pad: negative padding {config}")
        shape.append(lo + hi + n + max(n - 1, 0) * interior)
    return TensorType(shape, x.dtype, x.weak and value.weak)


def _pad_impl(x, value, *, config):
    shape = _pad_abstract_eval(TensorType(x.shape, x.dtype), TensorType((), x.dtype),
                               config=config).shape
    out = np.full(shape, value, dtype=x.dtype)
    index = tuple(slice(lo, lo + (n - 1) * (interior + 1) + 1 if n else lo, interior + 1)
                  for (lo, _, interior), n in zip(config, x.shape))
    out[index] = x
    return out


def _pad_batch(args, bdims, *, config):
    """A batched operand gets no padding along the batch axis. A batched pad value (one per
    example) cannot be one pad: the operand is padded with zeros, and a mask of where the
    operand landed selects between it and the values."""
    (x, value), (xd, vd) = args, bdims
    size = B.batch_size(args, bdims)
    x = B.batched_at(x, xd, size, 0)
    config = ((0, 0, 0),) + tuple(config)
    if vd is None:
        return pad.bind(x, value, config=config), 0
    zero = A.full_like(value, 0, shape=())
    padded = pad.bind(x, zero, config=config)
    inside = pad.bind(A.full_like(x, True, dtype=np.bool_), A.full_like(x, False, np.bool_, ()),
                      config=config)
    values = broadcast_in_dim.bind(B.moveaxis(value, vd, 0), shape=tuple(padded.shape),
                                   dims=(0,))
    return REGISTRY["select"].bind(inside, padded, values), 0


pad = Primitive("pad", "movement", abstract_eval=_pad_abstract_eval,
                impl=_pad_impl).def_batch(_pad_batch)


# --- concatenate[axis] -----------------------------------------------------------------------
def _concatenate_abstract_eval(*xs, axis):
    first = xs[0]
    if not 0 <= axis < first.ndim:
        raise TypeError(f"concatenate: axis {axis} out of range for {first}")
    for x in xs[1:]:
        same = x.ndim == first.ndim and all(
            a == b for i, (a, b) in enumerate(zip(x.shape, first.shape)) if i != axis)
        if not same or x.dtype != first.dtype:
            raise TypeError(f"concatenate: operands {first} and {x} do not fit along axis {axis}")
    shape = list(first.shape)
    shape[axis] = sum(x.shape[axis] for x in xs)
    return TensorType(shape, first.dtype, all(x.weak for x in xs))


def _concatenate_batch(args, bdims, *, axis):
    return concatenate.bind(*B.all_batched_at(args, bdims, 0), axis=axis + 1), 0


concatenate = Primitive("concatenate", "movement", abstract_eval=_concatenate_abstract_eval,
                        impl=lambda *xs, axis: np.concatenate(xs, axis=axis))
concatenate.def_batch(_concatenate_batch)


# --- iota[shape, dtype, dimension]: 0, 1, 2, ... along one dimension -------------------------
def _iota_abstract_eval(*, shape, dtype, dimension):
    if not 0 <= dimension < len(shape):
        raise TypeError(f"iota: dimension {dimension} out of range for {shape}")
    return TensorType(shape, dtypes.canonical_dtype(dtype))


def _iota_impl(*, shape, dtype, dimension):
    ramp = np.arange(shape[dimension], dtype=dtype)
    return np.broadcast_to(ramp.reshape([-1 if i == dimension else 1 for i in range(len(shape))]),
                           shape)


iota = Primitive("iota", "creation", abstract_eval=_iota_abstract_eval, impl=_iota_impl)
iota.def_batch(B.no_operands_rule(iota))


# --- gather[axes]: operand[i0[b], i1[b], ...] over the operand axes `axes` -------------------
# The index arrays share one shape B; the result has shape B + (the operand's other dims, in
# order). Indices must be in range (tracejit.numpy wraps negative ones first); out-of-range
# indices raise IndexError in the interpreter.
def _gather_abstract_eval(x, *indices, axes):
    if len(indices) != len(axes) or not indices or len(set(axes)) != len(axes):
        raise TypeError(f"gather: {len(indices)} index arrays for axes {axes}")
    if any(not 0 <= a < x.ndim for a in axes):
        raise TypeError(f"gather: axes {axes} out of range for {x}")
    batch = indices[0].shape
    for idx in indices:
        if idx.dtype.kind not in "iu" or idx.shape != batch:
            raise TypeError(f"gather: index arrays must be integers of one shape, got {idx}")
    rest = tuple(n for i, n in enumerate(x.shape) if i not in axes)
    return x.with_shape(batch + rest)


def _gather_impl(x, *indices, axes):
    moved = np.moveaxis(x, axes, tuple(range(len(axes))))
    return moved[tuple(indices)]


def _batch_index(indices):
    """The index of each example along a leading batch axis, shaped like the (batched at 0)
    index arrays."""
    return A.iota_like(indices[0], indices[0].shape, 0, indices[0].dtype)


def _gather_batch(args, bdims, *, axes):
    """Only the operand batched: its batch axis is one more gathered-over-whole axis (the
    first of the result's operand dims). Indices batched: every index array gets the batch
    axis, and where the operand is batched too an index array for its batch axis is added."""
    x, indices = args[0], list(args[1:])
    xd, idims = bdims[0], bdims[1:]
    size = B.batch_size(args, bdims)
    if all(d is None for d in idims):
        x = B.moveaxis(x, xd, 0)
        return gather.bind(x, *indices, axes=B.shift_axes(axes, 0)), len(indices[0].shape)
    indices = [B.batched_at(i, d, size, 0) for i, d in zip(indices, idims)]
    if xd is None:
        return gather.bind(x, *indices, axes=axes), 0
    x = B.moveaxis(x, xd, 0)
    return gather.bind(x, _batch_index(indices), *indices,
                       axes=(0,) + B.shift_axes(axes, 0)), 0


gather = Primitive("gather", "indexing", abstract_eval=_gather_abstract_eval,
                   impl=_gather_impl).def_batch(_gather_batch)


# --- scatter_add[axes]: operand with updates added at the gathered positions -----------------
# The transpose of gather: updates have gather's result shape B + (other dims); repeated
# indices accumulate (np.add.at).
def _scatter_add_abstract_eval(x, updates, *indices, axes):
    expected = _gather_abstract_eval(x, *indices, axes=axes)
    if updates.shape != expected.shape or updates.dtype != x.dtype:
        raise TypeError(f"scatter_add: updates {updates} do not fit gather shape {expected}")
    return TensorType(x.shape, x.dtype, x.weak and updates.weak)


def _scatter_add_impl(x, updates, *indices, axes):
    out = np.array(x, copy=True)
    moved = np.moveaxis(out, axes, tuple(range(len(axes))))  # a view into `out`
    np.add.at(moved, tuple(indices), updates)
    return out


def _scatter_add_batch(args, bdims, *, axes):
    """Indices unbatched: the batch axis is one more whole axis of the operand and of the
    updates (the first of their operand dims). Otherwise every operand gets the batch axis
    and an index array for it is added, so each example scatters into its own slice."""
    x, updates, indices = args[0], args[1], list(args[2:])
    xd, ud, idims = bdims[0], bdims[1], bdims[2:]
    size = B.batch_size(args, bdims)
    x = B.batched_at(x, xd, size, 0)
    if all(d is None for d in idims):
        updates = B.batched_at(updates, ud, size, len(indices[0].shape))
        return scatter_add.bind(x, updates, *indices, axes=B.shift_axes(axes, 0)), 0
    indices = [B.batched_at(i, d, size, 0) for i, d in zip(indices, idims)]
    updates = B.batched_at(updates, ud, size, 0)
    return scatter_add.bind(x, updates, _batch_index(indices), *indices,
                            axes=(0,) + B.shift_axes(axes, 0)), 0


scatter_add = Primitive("scatter_add", "indexing", abstract_eval=_scatter_add_abstract_eval,
                        impl=_scatter_add_impl).def_batch(_scatter_add_batch)


# =============================================================================================
# Derivative rules: all of these primitives are linear in their array operands, so each JVP is
# the primitive applied to the tangents; each VJP is the transposed movement.
# =============================================================================================


def _broadcast_in_dim_vjp(ct, x, *, out, shape, dims):
    # The one place where broadcasting is undone: new dims and size-1 dims that grew are summed.
    grown = [d for i, d in enumerate(dims) if x.shape[i] == 1 and shape[d] != 1]
    new = [d for d in range(len(shape)) if d not in dims]
    return [A.reshape(A.reduce_sum(ct, new + grown), x.shape)]


def _slice_vjp(ct, x, *, out, start, limit, strides):
    if 0 in out.shape:
        return [A.zeros_like(x)]
    config = []
    for lo, st, m, n in zip(start, strides, out.shape, x.shape):
        used = lo + (m - 1) * st + 1
        config.append((lo, n - used, st - 1))
    return [pad.bind(ct, A.full_like(ct, 0, shape=()), config=tuple(config))]


def _pad_vjp(ct, x, value, *, out, config):
    if 0 in x.shape:
        ct_x = A.zeros_like(x)
    else:
        start = tuple(lo for lo, _, _ in config)
        limit = tuple(lo + (n - 1) * (interior + 1) + 1 for (lo, _, interior), n in
                      zip(config, x.shape))
        strides = tuple(interior + 1 for _, _, interior in config)
        ct_x = slice_.bind(ct, start=start, limit=limit, strides=strides)
    everything = tuple(range(len(ct.shape)))
    ct_value = A.sub(A.reduce_sum(ct, everything), A.reduce_sum(ct_x, everything))
    return [ct_x, ct_value]


def _concatenate_vjp(ct, *xs, out, axis):
    cts, offset = [], 0
    for x in xs:
        start = [0] * len(ct.shape)
        limit = list(ct.shape)
        start[axis], limit[axis] = offset, offset + x.shape[axis]
        cts.append(slice_.bind(ct, start=tuple(start), limit=tuple(limit),
                               strides=(1,) * len(ct.shape)))
        offset += x.shape[axis]
    return cts


def _gather_vjp(ct, x, *indices, out, axes):
    return [scatter_add.bind(A.zeros_like(x), ct, *indices, axes=axes)] + [None] * len(indices)


def _scatter_add_vjp(ct, x, updates, *indices, out, axes):
    return [ct, gather.bind(ct, *indices, axes=axes)] + [None] * len(indices)


broadcast_in_dim.def_ad(_broadcast_in_dim_vjp, A.linear_jvp("broadcast_in_dim"))
reshape.def_ad(lambda ct, x, *, out, shape: [A.reshape(ct, x.shape)], A.linear_jvp("reshape"))
transpose.def_ad(lambda ct, x, *, out, perm: [A.transpose(ct, A.inverse_perm(perm))],
                 A.linear_jvp("transpose"))
slice_.def_ad(_slice_vjp, A.linear_jvp("slice"))
rev.def_ad(lambda ct, x, *, out, axes: [rev.bind(ct, axes=axes)], A.linear_jvp("rev"))
pad.def_ad(_pad_vjp, A.linear_jvp("pad"))
concatenate.def_ad(_concatenate_vjp, A.linear_jvp("concatenate"))
gather.def_ad(_gather_vjp, A.linear_jvp("gather", passthrough_from=1))
scatter_add.def_ad(_scatter_add_vjp, A.linear_jvp("scatter_add", passthrough_from=2))
iota.not_differentiable()
