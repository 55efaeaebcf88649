"""Matrix products for compiled code, through the BLAS NumPy itself ships.

Generated entry functions call ``gemm_f32``/``gemm_f64`` (one product of 2-D operands, each C- or
F-ordered: a transposed operand is read transposed, never copied) and ``gemm_batched_f32`` /
``gemm_batched_f64``.

Which BLAS: NumPy's own (its wheels bundle OpenBLAS with prefixed ``cblas_*gemm`` symbols).
Numba's ``np.dot`` calls the OpenBLAS that SciPy ships instead, a second thread pool beside
NumPy's; the two fought (an MLP step ran 2-3x slower than on NumPy). The symbol's address is
registered with LLVM under a name of ours and called as an external function, so compiled code
that uses it can be cached on disk (it refers to the name, not to an address) and calls BLAS
with no trip through Python.

When no such symbol can be found (a NumPy built against a system BLAS), the products fall back
to NumPy's matmul from an object-mode block: correct, a few microseconds slower per call, and
compiled once per process (object mode is not cached).
"""
from __future__ import annotations

import ctypes

import numpy as np
from numba import njit, objmode, types

from .blas_threads import numpy_blas_libraries as _numpy_blas_libraries

_OPTIONS = {"error_model": "numpy", "cache": False}
_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112

# (symbol, integer type) in the order we look for them: NumPy >= 2 wheels, older wheels, LP64.
_CANDIDATES = [("scipy_cblas_{}gemm64_", types.int64), ("cblas_{}gemm64_", types.int64),
               ("scipy_cblas_{}gemm", types.int32), ("cblas_{}gemm", types.int32)]


def _find_gemm():
    """((sgemm address, dgemm address), blas int type) from NumPy's BLAS, or None."""
    for path in _numpy_blas_libraries():
        try:
            library = ctypes.CDLL(path)  # already loaded by NumPy: the same library, same pool
        except OSError:
            continue
        for pattern, int_type in _CANDIDATES:
            try:
                s = getattr(library, pattern.format("s"))
                d = getattr(library, pattern.format("d"))
            except AttributeError:
                continue
            address = lambda f: ctypes.cast(f, ctypes.c_void_p).value  # noqa: E731
            return (address(s), address(d)), int_type
    return None


FOUND = _find_gemm()
DIRECT = FOUND is not None

if DIRECT:
    import llvmlite.binding as llvm

    (_s_address, _d_address), _INT = FOUND
    llvm.add_symbol("tracejit_cblas_sgemm", _s_address)
    llvm.add_symbol("tracejit_cblas_dgemm", _d_address)
    _i32, _ptr = types.int32, types.uintp
    _sgemm = types.ExternalFunction("tracejit_cblas_sgemm", types.void(
        _i32, _i32, _i32, _INT, _INT, _INT, types.float32, _ptr, _INT, _ptr, _INT, types.float32,
        _ptr, _INT))
    _dgemm = types.ExternalFunction("tracejit_cblas_dgemm", types.void(
        _i32, _i32, _i32, _INT, _INT, _INT, types.float64, _ptr, _INT, _ptr, _INT, types.float64,
        _ptr, _INT))

    @njit(**_OPTIONS)
    def _layout(x):
        """(transpose flag, leading dimension) to read 2-D ``x`` in place, or (0, 0).

        The stride of a dimension of size 1 is never stepped along, so it can be anything
        (a broadcast (1, 1) operand has strides (0, 0), and NumPy calls it contiguous): the
        leading dimension BLAS is given is then the smallest it accepts."""
        rows, cols = x.shape
        size = x.itemsize
        s0, s1 = x.strides
        if (cols <= 1 or s1 == size) and (rows <= 1 or (s0 % size == 0 and
                                                        s0 // size >= max(1, cols))):
            return _NO_TRANS, max(1, cols) if rows <= 1 else s0 // size
        if (rows <= 1 or s0 == size) and (cols <= 1 or (s1 % size == 0 and
                                                        s1 // size >= max(1, rows))):
            return _TRANS, max(1, rows) if cols <= 1 else s1 // size
        return 0, 0

    @njit(**_OPTIONS)
    def readable(x):
        """``x`` itself when BLAS can read it in place, else a C-contiguous copy."""
        flag, _ = _layout(x)
        if flag == 0:
            return np.ascontiguousarray(x)
        return x

    def _gemm(external, dtype):
        one, zero = dtype(1.0), dtype(0.0)

        @njit(**_OPTIONS)
        def gemm(a, b, out):
            """out (C-contiguous) = a @ b; a and b as ``readable`` returns them."""
            m, k = a.shape
            n = b.shape[1]
            if m == 0 or n == 0:
                return
            if k == 0:
                out[:] = 0
                return
            ta, lda = _layout(a)
            tb, ldb = _layout(b)
            external(_ROW_MAJOR, ta, tb, m, n, k, one, a.ctypes.data, lda, b.ctypes.data, ldb,
                     zero, out.ctypes.data, max(1, n))
        return gemm

    gemm_f32 = _gemm(_sgemm, np.float32)
    gemm_f64 = _gemm(_dgemm, np.float64)

    @njit(**_OPTIONS)
    def gemm_batched_f32(a3, b3, out3):
        """out3[i] = a3[i] @ b3[i], all C-contiguous."""
        for i in range(a3.shape[0]):
            gemm_f32(a3[i], b3[i], out3[i])

    @njit(**_OPTIONS)
    def gemm_batched_f64(a3, b3, out3):
        for i in range(a3.shape[0]):
            gemm_f64(a3[i], b3[i], out3[i])
else:
    @njit(**_OPTIONS)
    def readable(x):
        return x

    @njit(**_OPTIONS)
    def gemm_f32(a, b, out):
        with objmode():
            a = a if a.flags.c_contiguous or a.flags.f_contiguous else np.ascontiguousarray(a)
            b = b if b.flags.c_contiguous or b.flags.f_contiguous else np.ascontiguousarray(b)
            np.matmul(a, b, out=out)

    gemm_f64 = gemm_f32

    @njit(**_OPTIONS)
    def gemm_batched_f32(a3, b3, out3):
        with objmode():
            np.matmul(a3, b3, out=out3)

    gemm_batched_f64 = gemm_batched_f32
