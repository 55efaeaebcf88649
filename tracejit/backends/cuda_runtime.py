"""Fixed CUDA kernels for the primitives that are not fused: data movement and the row helpers.

Movement (transpose, slice, rev, broadcast, pad, concatenate) is one affine map from output
positions to input positions: ``gather_strided`` reads ``src[offset + sum(i_d * stride_d)]``
for every output element, ``place_strided`` writes the other way (pad's interior, a block of a
concatenation). Strides are in elements and may be zero (broadcast) or negative (rev). The
kernels are compiled by ``numba.cuda`` on first use (specialised per dtype and rank);
importing this module needs ``numba-cuda`` but no GPU.
"""
from __future__ import annotations

import functools

from . import cuda_compat  # noqa: F401  (before numba.cuda)
from numba import cuda


@cuda.jit(device=True, inline=True)
def _position(i, offset, strides, shape):
    """Element position of the i-th point (C order) of ``shape`` under ``offset + i . strides``."""
    rest = i
    at = offset
    for d in range(len(shape) - 1, -1, -1):
        at += (rest % shape[d]) * strides[d]
        rest //= shape[d]
    return at


def _gather_strided(src, dst, offset, strides, shape):
    for i in range(cuda.grid(1), dst.shape[0], cuda.gridsize(1)):
        dst[i] = src[_position(i, offset, strides, shape)]


def _place_strided(src, dst, offset, strides, shape):
    for i in range(cuda.grid(1), src.shape[0], cuda.gridsize(1)):
        dst[_position(i, offset, strides, shape)] = src[i]


def _fill(dst, value):
    for i in range(cuda.grid(1), dst.shape[0], cuda.gridsize(1)):
        dst[i] = value[0]


def _iota(dst, inner, n):
    for i in range(cuda.grid(1), dst.shape[0], cuda.gridsize(1)):
        dst[i] = (i // inner) % n


# Rows of at least one element (the driver launches no empty scan). The accumulator starts as
# the first element stored and read back, which gives it out's dtype: starting from
# `out[i, 0] - out[i, 0]` read the fresh output's uninitialised memory (NaN - NaN on a GPU whose
# memory was used before, so the whole row came out NaN).
def _cumsum_rows(x, out):
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        out[i, 0] = x[i, 0]
        acc = out[i, 0]
        for j in range(1, x.shape[1]):
            acc += x[i, j]
            out[i, j] = acc


def _cumprod_rows(x, out):
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        out[i, 0] = x[i, 0]
        acc = out[i, 0]
        for j in range(1, x.shape[1]):
            acc *= x[i, j]
            out[i, j] = acc


def _arg_extremum_rows(x, out, want_max):
    """First index of each row's maximum (minimum); a NaN wins (NumPy's rule)."""
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        best = x[i, 0]
        where = 0
        for j in range(1, x.shape[1]):
            if best != best:
                break
            v = x[i, j]
            if v != v or (v > best if want_max else v < best):
                best = v
                where = j
        out[i] = where


@cuda.jit(device=True, inline=True)
def _sorts_before(a, b):
    """NumPy's sort order: ascending, NaN after everything (a NaN is never before another)."""
    return a < b or (b != b and a == a)


# (Inline, like every device function here: one compiled on its own asks the driver for the
# GPU's compute capability, which compiling ahead of time to PTX without a GPU cannot answer.)
@cuda.jit(device=True, inline=True)
def _merge_pass(x, i, src, dst, width):
    """Row i: merge each pair of adjacent sorted runs of ``width`` indices from src into dst,
    the left run's index first unless the right one's value sorts strictly before (stable)."""
    n = x.shape[1]
    for lo in range(0, n, 2 * width):
        mid = min(lo + width, n)
        hi = min(lo + 2 * width, n)
        a = lo
        b = mid
        for k in range(lo, hi):
            if b < hi and (a >= mid or _sorts_before(x[i, src[i, b]], x[i, src[i, a]])):
                dst[i, k] = src[i, b]
                b += 1
            else:
                dst[i, k] = src[i, a]
                a += 1


def _argsort_rows(x, out, work):
    """The stable sorting permutation of each row (NaNs last), one thread per row: a bottom-up
    merge sort of indices between ``out`` and ``work`` (int64, x's shape)."""
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        n = x.shape[1]
        for j in range(n):
            out[i, j] = j
        width = 1
        in_work = False
        while width < n:
            if in_work:
                _merge_pass(x, i, work, out, width)
            else:
                _merge_pass(x, i, out, work, width)
            in_work = not in_work
            width *= 2
        if in_work:
            for j in range(n):
                out[i, j] = work[i, j]


def _linear_index(stack, dims, out, bad):
    """Row-major positions of k index arrays (rows of ``stack``); ``bad[0] = 1`` when one is
    out of bounds (the driver checks it and raises, naming the user's line)."""
    for b in range(cuda.grid(1), stack.shape[1], cuda.gridsize(1)):
        lin = 0
        for k in range(stack.shape[0]):
            i = stack[k, b]
            if i < 0 or i >= dims[k]:
                bad[0] = 1
                i = 0
            lin = lin * dims[k] + i
        out[b] = lin


def _gather_rows(x2, lin, out):
    for p in range(cuda.grid(1), out.shape[0] * out.shape[1], cuda.gridsize(1)):
        b = p // out.shape[1]
        j = p % out.shape[1]
        out[b, j] = x2[lin[b], j]


def _scatter_add_rows(base2, lin, updates2):
    for p in range(cuda.grid(1), updates2.shape[0] * updates2.shape[1], cuda.gridsize(1)):
        b = p // updates2.shape[1]
        j = p % updates2.shape[1]
        cuda.atomic.add(base2, (lin[b], j), updates2[b, j])


_PYTHON = {"gather_strided": _gather_strided, "place_strided": _place_strided, "fill": _fill,
           "iota": _iota, "cumsum_rows": _cumsum_rows, "cumprod_rows": _cumprod_rows,
           "arg_extremum_rows": _arg_extremum_rows, "linear_index": _linear_index,
           "gather_rows": _gather_rows, "scatter_add_rows": _scatter_add_rows,
           "argsort_rows": _argsort_rows}


@functools.lru_cache(maxsize=None)
def kernel(name: str):
    """The compiled (lazily, per argument types) CUDA kernel ``name``."""
    return cuda.jit(_PYTHON[name])


def python_function(name: str):
    """The kernel's Python function (for compiling it ahead of time to PTX)."""
    return _PYTHON[name]
