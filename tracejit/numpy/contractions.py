"""Products: dot matmul outer inner tensordot vdot, all lowered to ``dot_general``."""
from __future__ import annotations

import numpy as np

from .. import dtypes
from . import _prims as P
from ._dispatch import implements
from .ufuncs import multiply


def promote_pair(a, b):
    trace = P.the_trace(a, b)
    x, y = P.lift(a, trace), P.lift(b, trace)
    dtype, _ = dtypes.result_type((x.dtype, x.ttype.weak), (y.dtype, y.ttype.weak))
    return P.convert(x, dtype), P.convert(y, dtype)


def _not_aligned(x, y, ax_x, ax_y):
    return P.user_error(ValueError, (
        f"shapes {P.shape_str(x.shape)} and {P.shape_str(y.shape)} not aligned: "
        f"{x.shape[ax_x]} (dim {ax_x}) != "
        f"{y.shape[ax_y]} (dim {ax_y})"))


@implements(np.matmul)
def matmul(a, b, /, out=None, **kwargs):
    if out is not None:
        raise P.user_error(NotImplementedError, "matmul(out=...) is not supported")
    x, y = promote_pair(a, b)
    for i, t in enumerate((x, y)):
        if t.ndim == 0:
            raise P.user_error(ValueError, (
                f"matmul: Input operand {i} does not have enough dimensions (has 0, gufunc core "
                "with signature (n?,k),(k,m?)->(n?,m?) requires 1)"))
    x2 = P.reshape(x, (1,) + x.shape) if x.ndim == 1 else x
    y2 = P.reshape(y, y.shape + (1,)) if y.ndim == 1 else y
    if x2.shape[-1] != y2.shape[-2]:
        raise P.user_error(ValueError, (
            "matmul: Input operand 1 has a mismatch in its core dimension 0, with gufunc "
            f"signature (n?,k),(k,m?)->(n?,m?) (size {y2.shape[-2]} is different from "
            f"{x2.shape[-1]})"))
    batch = P.broadcast_shapes(x2.shape[:-2], y2.shape[:-2])
    shape = batch + ((x.shape[-2],) if x.ndim > 1 else ()) + ((y.shape[-1],) if y.ndim > 1 else ())
    if y2.ndim == 2:
        # A stack of matrices times one matrix (a dense layer on (batch, seq, d) activations):
        # one product over all the rows, not the matrix broadcast to every batch entry.
        result = P.dot_general(x2, y2, contract=((x2.ndim - 1,), (0,)))
        return P.reshape(result, shape)
    x2 = P.broadcast_to(x2, batch + x2.shape[-2:])
    y2 = P.broadcast_to(y2, batch + y2.shape[-2:])
    nb = len(batch)
    result = P.dot_general(x2, y2, contract=((nb + 1,), (nb,)),
                           batch=(tuple(range(nb)), tuple(range(nb))))
    return P.reshape(result, shape)


@implements(np.dot)
def dot(a, b, out=None):
    if out is not None:
        raise P.user_error(NotImplementedError, "dot(out=...) is not supported")
    x, y = promote_pair(a, b)
    if x.ndim == 0 or y.ndim == 0:
        return multiply(x, y)
    ax_y = 0 if y.ndim == 1 else y.ndim - 2
    if x.shape[-1] != y.shape[ax_y]:
        raise _not_aligned(x, y, x.ndim - 1, ax_y)
    return P.dot_general(x, y, contract=((x.ndim - 1,), (ax_y,)))


@implements(np.vdot)
def vdot(a, b, /):
    x, y = promote_pair(a, b)
    if x.size != y.size:
        raise P.user_error(ValueError, "cannot reshape array: vdot needs inputs of equal size")
    return P.dot_general(P.reshape(x, (x.size,)), P.reshape(y, (y.size,)), contract=((0,), (0,)))


@implements(np.inner)
def inner(a, b, /):
    x, y = promote_pair(a, b)
    if x.ndim == 0 or y.ndim == 0:
        return multiply(x, y)
    if x.shape[-1] != y.shape[-1]:
        raise _not_aligned(x, y, x.ndim - 1, y.ndim - 1)
    return P.dot_general(x, y, contract=((x.ndim - 1,), (y.ndim - 1,)))


@implements(np.outer)
def outer(a, b, out=None):
    if out is not None:
        raise P.user_error(NotImplementedError, "outer(out=...) is not supported")
    trace = P.the_trace(a, b)
    x, y = P.lift(a, trace), P.lift(b, trace)
    return multiply(P.reshape(x, (x.size, 1)), P.reshape(y, (1, y.size)))


@implements(np.tensordot)
def tensordot(a, b, axes=2):
    x, y = promote_pair(a, b)
    if isinstance(axes, (int, np.integer)):
        n = int(axes)
        ax_x, ax_y = list(range(x.ndim - n, x.ndim)), list(range(n))
    else:
        ax_x, ax_y = axes
        ax_x = [ax_x] if isinstance(ax_x, int) else list(ax_x)
        ax_y = [ax_y] if isinstance(ax_y, int) else list(ax_y)
    ax_x = [a % x.ndim for a in ax_x]
    ax_y = [a % y.ndim for a in ax_y]
    if len(ax_x) != len(ax_y) or any(x.shape[i] != y.shape[j] for i, j in zip(ax_x, ax_y)):
        raise P.user_error(ValueError, "shape-mismatch for sum")
    return P.dot_general(x, y, contract=(tuple(ax_x), tuple(ax_y)))
