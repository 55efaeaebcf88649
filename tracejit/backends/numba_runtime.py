"""Numba helpers the generated entry functions call for the non-fused primitives.

Each works on 2-D row layouts (the entry function moves the interesting axis last or first and
reshapes), so one compiled helper serves every rank; Numba specialises them per dtype.
"""
from __future__ import annotations

import numpy as np
from numba import njit

_OPTIONS = {"error_model": "numpy", "nogil": True, "cache": False}


@njit(**_OPTIONS)
def cumsum_rows(x, out):
    for i in range(x.shape[0]):
        acc = out.dtype.type(0)
        for j in range(x.shape[1]):
            acc = out.dtype.type(acc + x[i, j])
            out[i, j] = acc


@njit(**_OPTIONS)
def cumprod_rows(x, out):
    for i in range(x.shape[0]):
        acc = out.dtype.type(1)
        for j in range(x.shape[1]):
            acc = out.dtype.type(acc * x[i, j])
            out[i, j] = acc


@njit(**_OPTIONS)
def arg_extremum_rows(x, out, want_max):
    """First index of each row's maximum (minimum); a NaN wins (NumPy's rule)."""
    for i in range(x.shape[0]):
        best, where = x[i, 0], 0
        for j in range(1, x.shape[1]):
            if best != best:
                break
            v = x[i, j]
            if v != v or (v > best if want_max else v < best):
                best, where = v, j
        out[i] = where


@njit(**_OPTIONS)
def linear_index(stack, dims, out):
    """Row-major linear positions of k index arrays (rows of ``stack``); False if one is out of
    bounds (the caller raises, naming the user's line)."""
    for b in range(stack.shape[1]):
        lin = 0
        for k in range(stack.shape[0]):
            i = stack[k, b]
            if i < 0 or i >= dims[k]:
                return False
            lin = lin * dims[k] + i
        out[b] = lin
    return True


@njit(**_OPTIONS)
def gather_rows(x2, lin, out):
    for b in range(lin.shape[0]):
        for j in range(x2.shape[1]):
            out[b, j] = x2[lin[b], j]


@njit(**_OPTIONS)
def scatter_add_rows(base2, lin, updates2):
    for b in range(lin.shape[0]):
        for j in range(base2.shape[1]):
            base2[lin[b], j] = base2[lin[b], j] + updates2[b, j]


@njit(**_OPTIONS)
def matmul_loops(a3, b3, out3):
    """Batched matmul for integer and bool dtypes (BLAS has none), accumulating in the output
    dtype like NumPy."""
    for i in range(a3.shape[0]):
        for m in range(a3.shape[1]):
            for n in range(b3.shape[2]):
                acc = out3.dtype.type(0)
                for k in range(a3.shape[2]):
                    acc = out3.dtype.type(acc + a3[i, m, k] * b3[i, k, n])
                out3[i, m, n] = acc


@njit(**_OPTIONS)
def _sorts_before(a, b):
    """NumPy's sort order: ascending, NaN after everything (a NaN is never before another)."""
    return a < b or (b != b and a == a)


@njit(**_OPTIONS)
def _merge_pass(row, src, dst, width):
    """Merge each pair of adjacent sorted runs of ``width`` indices from src into dst. Taking
    the left run's index unless the right one's value sorts strictly before keeps it stable."""
    n = src.shape[0]
    for lo in range(0, n, 2 * width):
        mid = min(lo + width, n)
        hi = min(lo + 2 * width, n)
        a, b = lo, mid
        for k in range(lo, hi):
            if b < hi and (a >= mid or _sorts_before(row[src[b]], row[src[a]])):
                dst[k] = src[b]
                b += 1
            else:
                dst[k] = src[a]
                a += 1


@njit(**_OPTIONS)
def argsort_rows(x, out):
    """The stable sorting permutation of each row of ``x`` (NaNs last), into ``out`` (int64):
    a bottom-up merge sort of indices, ping-ponging between the output row and one buffer."""
    n = x.shape[1]
    work = np.empty(n, np.int64)
    for i in range(x.shape[0]):
        row, first = x[i], out[i]
        for j in range(n):
            first[j] = j
        src, dst = first, work
        width = 1
        in_work = False
        while width < n:
            _merge_pass(row, src, dst, width)
            src, dst = dst, src
            in_work = not in_work
            width *= 2
        if in_work:
            first[:] = work
