"""Reductions (``reduce_*``, ``argmax``/``argmin``), scans (``cumsum``/``cumprod``) and
``dot_general``. Results keep the operand dtype: ``tracejit.numpy`` converts first where NumPy
accumulates in a wider type (``np.sum`` of int32 is int64).
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..ir import TensorType
from . import batch_support as B
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

    def batch(args, bdims, *, axes):  # the batch axis stays; the reduced ones are renumbered
        (x,), (d,) = args, bdims
        axes = B.shift_axes(axes, d)
        return prim.bind(x, axes=axes), B.dim_after_removing(d, axes)

    prim = Primitive(name, "reduction", abstract_eval=abstract_eval, impl=impl)
    return prim.def_batch(batch)


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

    def batch(args, bdims, *, axis):
        (x,), (d,) = args, bdims
        axis = B.shift_axis(axis, d)
        return prim.bind(x, axis=axis), B.dim_after_removing(d, (axis,))

    prim = Primitive(name, "reduction", abstract_eval=abstract_eval, impl=impl)
    return prim.def_batch(batch)


argmax = _arg_reducer("argmax", np.argmax)  # first occurrence; NaN wins, as NumPy
argmin = _arg_reducer("argmin", np.argmin)


def _scan(name, np_fn):
    def abstract_eval(x, *, axis):
        if not 0 <= axis < x.ndim:
            raise TypeError(f"{name}: axis {axis} out of range for {x}")
        return x

    def impl(x, *, axis):
        return np_fn(x, axis=axis, dtype=x.dtype)

    prim = Primitive(name, "reduction", abstract_eval=abstract_eval, impl=impl)
    return prim.def_batch(B.axis_rule(prim, "axis"))


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


def _dot_general_batch(args, bdims, *, contract, batch):
    """Both operands batched: the batch axis becomes one more batch dimension of the product
    (one batched matmul). One batched: it becomes a free dimension of that operand, so a
    batched matrix-vector product is one matrix-matrix product."""
    (lhs, rhs), (ld, rd) = args, bdims
    (lc, rc), (lb, rb) = contract, batch
    if ld is not None and rd is not None:
        lhs, rhs = B.moveaxis(lhs, ld, 0), B.moveaxis(rhs, rd, 0)
        contract = (B.shift_axes(lc, 0), B.shift_axes(rc, 0))
        batch = ((0,) + B.shift_axes(lb, 0), (0,) + B.shift_axes(rb, 0))
        return dot_general.bind(lhs, rhs, contract=contract, batch=batch), 0
    if ld is not None:
        lc, lb = B.shift_axes(lc, ld), B.shift_axes(lb, ld)
        lfree = _free_axes(lhs.ndim, lc, lb)
        out_dim = len(lb) + lfree.index(ld)
    else:
        rc, rb = B.shift_axes(rc, rd), B.shift_axes(rb, rd)
        rfree = _free_axes(rhs.ndim, rc, rb)
        out_dim = len(lb) + len(_free_axes(lhs.ndim, lc, lb)) + rfree.index(rd)
    return dot_general.bind(lhs, rhs, contract=(lc, rc), batch=(lb, rb)), out_dim


dot_general = Primitive("dot_general", "contraction", abstract_eval=_dot_general_abstract_eval,
                        impl=_dot_general_impl).def_batch(_dot_general_batch)


# =============================================================================================
# Derivative rules
# =============================================================================================
from . import ad_support as A  # noqa: E402
from .elementwise import convert, eq, ge  # noqa: E402
from .structural import pad, rev, slice_  # noqa: E402


def _reduce_sum_vjp(ct, x, *, out, axes):
    return [A.broadcast_back(ct, x.shape, axes)]


def _extremum_mask(x, out, axes):
    """Where x attains its max/min, and how many positions share it (ties split evenly)."""
    hit = eq.bind(x, A.broadcast_back(out, x.shape, axes))
    count = A.reduce_sum(convert.bind(hit, dtype=x.dtype), axes)
    return hit, count


def _extremum_vjp(ct, x, *, out, axes):
    hit, count = _extremum_mask(x, out, axes)
    share = A.broadcast_back(A.div(ct, count), x.shape, axes)
    return [A.select(hit, share, A.zeros_like(x))]


def _extremum_jvp(primals, tangents, out, *, axes):
    (x,), (t,) = primals, tangents
    hit, count = _extremum_mask(x, out, axes)
    return A.div(A.reduce_sum(A.select(hit, t, A.zeros_like(t)), axes), count)


def _exclusive_cumprod(x, axis, reverse=False):
    """Products of the elements strictly before (after, when reverse) each position."""
    n = x.shape[axis]
    one = A.full_like(x, 1, shape=())
    start, limit = [0] * len(x.shape), list(x.shape)
    config = [(0, 0, 0)] * len(x.shape)
    if reverse:
        start[axis], config[axis] = 1, (0, 1, 0)
    else:
        limit[axis], config[axis] = n - 1, (1, 0, 0)
    shifted = pad.bind(slice_.bind(x, start=tuple(start), limit=tuple(limit),
                                   strides=(1,) * len(x.shape)), one, config=tuple(config))
    if reverse:
        return rev.bind(cumprod.bind(rev.bind(shifted, axes=(axis,)), axis=axis), axes=(axis,))
    return cumprod.bind(shifted, axis=axis)


def _product_of_others(x, axes):
    """For each element, the product of the other elements of its reduction group, computed
    without dividing by x (so zeros are handled exactly)."""
    keep = [i for i in range(len(x.shape)) if i not in axes]
    perm = tuple(keep + list(axes))
    moved = A.transpose(x, perm)
    n = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    flat = A.reshape(moved, tuple(x.shape[i] for i in keep) + (n,))
    last = len(keep)
    others = A.mul(_exclusive_cumprod(flat, last), _exclusive_cumprod(flat, last, reverse=True))
    return A.transpose(A.reshape(others, moved.shape), A.inverse_perm(perm))


def _reduce_prod_vjp(ct, x, *, out, axes):
    if 0 in x.shape:
        return [A.zeros_like(x)]
    return [A.mul(A.broadcast_back(ct, x.shape, axes), _product_of_others(x, axes))]


def _reduce_prod_jvp(primals, tangents, out, *, axes):
    (x,), (t,) = primals, tangents
    if 0 in x.shape:
        return A.zeros_like(out)
    return A.reduce_sum(A.mul(t, _product_of_others(x, axes)), axes)


def _cumsum_vjp(ct, x, *, out, axis):
    return [rev.bind(cumsum.bind(rev.bind(ct, axes=(axis,)), axis=axis), axes=(axis,))]


def _cumprod_partials(x, axis):
    """C[..., k, i] = prod_{j <= i, j != k} x_j on x moved to the last axis, and the mask i >= k.

    Quadratic in the axis length, but exact where x has zeros (dividing out[i] by x[k] is not).
    """
    nd = len(x.shape)
    perm = tuple(i for i in range(nd) if i != axis) + (axis,)
    moved = A.transpose(x, perm)
    n = x.shape[axis]
    square = tuple(moved.shape) + (n,)
    rows = A.broadcast_back(moved, square, (nd - 1,))  # rows[..., k, i] = x_i
    k = A.iota_like(x, square, nd - 1)
    i = A.iota_like(x, square, nd)
    with_one = A.select(eq.bind(k, i), A.full_like(rows, 1), rows)
    partial = cumprod.bind(with_one, axis=nd)
    return perm, partial, ge.bind(i, k)


def _cumprod_vjp(ct, x, *, out, axis):
    if x.shape[axis] == 0:
        return [A.zeros_like(x)]
    perm, partial, upper = _cumprod_partials(x, axis)
    nd = len(x.shape)
    ct_rows = A.broadcast_back(A.transpose(ct, perm), partial.shape, (nd - 1,))
    terms = A.select(upper, A.mul(ct_rows, partial), A.zeros_like(partial))
    return [A.transpose(A.reduce_sum(terms, (nd,)), A.inverse_perm(perm))]


def _cumprod_jvp(primals, tangents, out, *, axis):
    (x,), (t,) = primals, tangents
    if x.shape[axis] == 0:
        return A.zeros_like(x)
    perm, partial, upper = _cumprod_partials(x, axis)
    nd = len(x.shape)
    t_cols = A.broadcast_back(A.transpose(t, perm), partial.shape, (nd,))  # [..., k, i] = t_k
    terms = A.select(upper, A.mul(t_cols, partial), A.zeros_like(partial))
    return A.transpose(A.reduce_sum(terms, (nd - 1,)), A.inverse_perm(perm))


def _dot_general_vjp(ct, lhs, rhs, *, out, contract, batch, needed):
    (lc, rc), (lb, rb) = contract, batch
    lfree, rfree = _free_axes(len(lhs.shape), lc, lb), _free_axes(len(rhs.shape), rc, rb)
    nb = len(lb)
    ct_batch = tuple(range(nb))
    ct_lfree = tuple(range(nb, nb + len(lfree)))
    ct_rfree = tuple(range(nb + len(lfree), len(ct.shape)))
    ct_lhs = ct_rhs = None
    if needed[0]:
        # Contract ct's rhs-free dims with rhs's free dims. The result's dims are batch, lhs
        # free, then rhs's contracted dims in rhs order; each maps to its paired lhs axis.
        g = dot_general.bind(ct, rhs, contract=(ct_rfree, rfree), batch=(ct_batch, rb))
        lhs_axes = list(lb) + list(lfree) + [lc[rc.index(a)] for a in sorted(rc)]
        ct_lhs = A.transpose(g, [lhs_axes.index(d) for d in range(len(lhs.shape))])
    if needed[1]:
        h = dot_general.bind(ct, lhs, contract=(ct_lfree, lfree), batch=(ct_batch, lb))
        rhs_axes = list(rb) + list(rfree) + [rc[lc.index(a)] for a in sorted(lc)]
        ct_rhs = A.transpose(h, [rhs_axes.index(d) for d in range(len(rhs.shape))])
    return [ct_lhs, ct_rhs]


def _dot_general_jvp(primals, tangents, out, *, contract, batch):
    (lhs, rhs), (tl, tr) = primals, tangents
    terms = []
    if tl is not None:
        terms.append(dot_general.bind(tl, rhs, contract=contract, batch=batch))
    if tr is not None:
        terms.append(dot_general.bind(lhs, tr, contract=contract, batch=batch))
    return terms[0] if len(terms) == 1 else A.add(*terms)


reduce_sum.def_ad(_reduce_sum_vjp, A.linear_jvp("reduce_sum"))
reduce_max.def_ad(_extremum_vjp, _extremum_jvp)
reduce_min.def_ad(_extremum_vjp, _extremum_jvp)
reduce_prod.def_ad(_reduce_prod_vjp, _reduce_prod_jvp)
cumsum.def_ad(_cumsum_vjp, A.linear_jvp("cumsum"))
cumprod.def_ad(_cumprod_vjp, _cumprod_jvp)
dot_general.def_ad(_dot_general_vjp, _dot_general_jvp, takes_needed=True)
argmax.not_differentiable()
argmin.not_differentiable()
