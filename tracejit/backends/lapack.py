"""Linear algebra for compiled code, through the LAPACK NumPy itself ships.

The entry functions ``numba_cpu`` generates call one helper per linalg primitive and dtype
(``lu_solve_f64``, ``cholesky_f32``, ...; ``emit`` writes the calls; ``HELPERS`` lists their
contracts). Each takes C-contiguous stacks of matrices, shape (batch, rows, cols) (vectors:
(batch, n)), writes its results into arrays the entry allocated, and returns a status: 0, or the
index of the first matrix LAPACK refused (singular, not positive definite, no convergence) plus
one. The entry checks it after the call and raises
NumPy's ``LinAlgError`` with NumPy's message and the user's line: never a crash, never object
mode.

Which LAPACK: NumPy's own. Its wheels bundle OpenBLAS with the LAPACK routines under prefixed
Fortran names (``scipy_dgesv_64_``: 64-bit integers); ``blas.py`` finds the library, and the
symbols are registered with LLVM under names of ours and called as external functions, so the
compiled code is cacheable and runs on NumPy's one thread pool, as the matrix products do.
Numba's own ``np.linalg`` would call SciPy's LAPACK (a second OpenBLAS) and needs SciPy.

Fortran is column-major: each matrix is copied into a column-major buffer (a transposed copy),
LAPACK is called on it with the routines and arguments NumPy's ``umath_linalg`` uses (``getrf``,
``potrf``, ``syevd``, ``gesdd``, ``geqrf`` + ``orgqr``; ``getrs`` for solves with factors kept
from ``getrf``, where NumPy calls ``gesv``, which is the two; ``trtrs`` for triangular solves,
which NumPy lacks), and the results are copied back transposed, so compiled results
match the interpreter's (NumPy's), signs of eigen- and singular vectors included. The copies
are O(n^2) against LAPACK's O(n^3). The LU is the exception: ``getrf`` factors each row-major
matrix where it lies, which LAPACK reads as its transpose, and ``getrs`` reads those factors
where they lie (``lu_factor`` defines its factors so: ``primitives/linalg.py``), so only the
right-hand sides are copied; solves then agree with NumPy's to rounding, not bit for bit.

When the symbols cannot be found (a NumPy built against a system LAPACK), the helpers run
``np.linalg`` from an object-mode block instead: correct, slower per call, not cached on disk.
"""
from __future__ import annotations

import ctypes

import numpy as np
from numba import njit, objmode, types

from ..primitives.linalg import PRIMITIVES
from . import blas

_OPTIONS = {"error_model": "numpy", "cache": False}
_ROUTINES = ("getrs", "trtrs", "potrf", "getrf", "syevd", "gesdd", "geqrf", "orgqr")
# (symbol pattern, integer dtype): NumPy >= 2 wheels (ILP64, prefixed), then plainer builds.
_CANDIDATES = [("scipy_{}_64_", np.int64), ("{}_64_", np.int64), ("scipy_{}_", np.int32),
               ("{}_", np.int32)]
# LAPACK's character arguments (upper, lower, no transpose / no vectors, transpose, vectors,
# some, all), passed as the address of an integer whose first byte is the character.
_U, _L, _N, _T, _V, _S, _A = (ord(c) for c in "ULNTVSA")


def _find_lapack():
    """({routine with s/d prefix: address}, integer dtype) from NumPy's LAPACK, or None."""
    for path in blas._numpy_blas_libraries():
        try:
            library = ctypes.CDLL(path)  # already loaded by NumPy: the same library
        except OSError:
            continue
        for pattern, int_dtype in _CANDIDATES:
            try:
                found = {p + r: ctypes.cast(getattr(library, pattern.format(p + r)),
                                            ctypes.c_void_p).value
                         for r in _ROUTINES for p in "sd"}
            except AttributeError:
                continue
            return found, int_dtype
    return None


FOUND = _find_lapack()
DIRECT = FOUND is not None
# (routine, pointer arguments, trailing Fortran string lengths): every argument is a pointer.
_SIGNATURES = {"getrs": (9, 1), "trtrs": (10, 3), "potrf": (5, 1), "getrf": (6, 0),
               "syevd": (11, 2), "gesdd": (14, 1), "geqrf": (8, 0), "orgqr": (9, 0)}


def _externals():
    import llvmlite.binding as llvm
    addresses, _ = FOUND
    table = {}
    for name, address in addresses.items():
        pointers, lengths = _SIGNATURES[name[1:]]
        symbol = f"tracejit_lapack_{name}"
        llvm.add_symbol(symbol, address)
        table[name] = types.ExternalFunction(
            symbol, types.void(*([types.uintp] * pointers + [types.int64] * lengths)))
    return table


LAPACK_INT = FOUND[1] if DIRECT else np.int64


# Integer arguments live in one array per call site, ``iv``, passed by address (``_at``):
# Fortran takes every argument by reference. Each helper reads iv[_INFO] after its last call,
# which keeps the array (and so every address into it) alive until then: Numba frees a local
# array after its last use, and taking an address is not a use of what it points to.
# Slots of iv (named apart from the character codes above: _NN is a size, _N the letter N).
_INFO, _NN, _KK, _LD, _LD2, _C1, _C2, _C3, _QUERY, _LWORK, _LIWORK = range(11)
_SLOTS = 11


def _helpers(prefix: str, dtype, ext: dict) -> dict:
    """The compiled helpers for one dtype (prefix "s": float32, "d": float64)."""
    getrs, trtrs, potrf, getrf = (ext[prefix + r] for r in ("getrs", "trtrs", "potrf", "getrf"))
    syevd, gesdd, geqrf, orgqr = (ext[prefix + r] for r in ("syevd", "gesdd", "geqrf", "orgqr"))
    INT = LAPACK_INT  # noqa: N806

    @njit(**_OPTIONS)
    def _at(iv, slot):
        # (unsigned + unsigned: Numba makes int64 + uint64 a float)
        return iv.ctypes.data + np.uintp(slot * iv.itemsize)

    @njit(**_OPTIONS)
    def _ints(n, k, ld, ld2):
        iv = np.zeros(_SLOTS, INT)
        iv[_NN], iv[_KK], iv[_LD], iv[_LD2], iv[_QUERY] = n, k, max(1, ld), max(1, ld2), -1
        return iv

    @njit(**_OPTIONS)
    def lu_factor(a3, lu3, piv2):
        """getrf in place on each row-major matrix, which LAPACK reads as a^T: lu3[i] is then
        the transposed factors lu_factor defines (primitives/linalg.py), with no transposed
        copy. Pivots 0-based. A zero pivot (info > 0) is not an error here: the solves check
        the diagonal, slogdet reads it as det = 0."""
        n = a3.shape[1]
        if n == 0:
            return 0
        iv = _ints(n, 0, n, n)
        ipiv = np.empty(n, INT)
        for i in range(a3.shape[0]):
            lu3[i] = a3[i]
            getrf(_at(iv, _NN), _at(iv, _NN), lu3[i].ctypes.data, _at(iv, _LD),
                  ipiv.ctypes.data, _at(iv, _INFO))
            if iv[_INFO] < 0:
                return i + 1
            for j in range(n):
                piv2[i, j] = ipiv[j] - 1
        return 0

    @njit(**_OPTIONS)
    def lu_solve(lu3, piv2, b3, out3, transpose, check):
        """getrs per matrix with the factors of lu_factor (those of a^T, read where they lie):
        a x = b is their transposed solve. A zero on the diagonal (singular): the status with
        ``check``, else NaN results for that matrix."""
        n, k = b3.shape[1], b3.shape[2]
        if n == 0 or k == 0:
            return 0
        iv = _ints(n, k, n, n)
        iv[_C1] = _N if transpose else _T
        ipiv = np.empty(n, INT)
        fb = np.empty((k, n), dtype)  # column-major b
        for i in range(lu3.shape[0]):
            singular = False
            for j in range(n):
                singular |= lu3[i, j, j] == 0
            if singular:
                if check:
                    return i + 1
                out3[i] = np.nan
                continue
            fb[:] = b3[i].T
            for j in range(n):
                ipiv[j] = piv2[i, j] + 1
            getrs(_at(iv, _C1), _at(iv, _NN), _at(iv, _KK), lu3[i].ctypes.data, _at(iv, _LD),
                  ipiv.ctypes.data, fb.ctypes.data, _at(iv, _LD), _at(iv, _INFO), 1)
            if iv[_INFO] != 0:
                return i + 1
            out3[i] = fb.T
        return 0

    @njit(**_OPTIONS)
    def triangular_solve(a3, b3, out3, lower, transpose_a):
        n, k = b3.shape[1], b3.shape[2]
        if n == 0 or k == 0:
            return 0
        iv = _ints(n, k, n, n)
        iv[_C1], iv[_C2], iv[_C3] = _L if lower else _U, _T if transpose_a else _N, _N
        fa, fb = np.empty((n, n), dtype), np.empty((k, n), dtype)
        for i in range(a3.shape[0]):
            fa[:] = a3[i].T
            fb[:] = b3[i].T
            trtrs(_at(iv, _C1), _at(iv, _C2), _at(iv, _C3), _at(iv, _NN), _at(iv, _KK),
                  fa.ctypes.data, _at(iv, _LD), fb.ctypes.data, _at(iv, _LD), _at(iv, _INFO),
                  1, 1, 1)
            if iv[_INFO] != 0:
                return i + 1
            out3[i] = fb.T
        return iv[_INFO]

    @njit(**_OPTIONS)
    def cholesky(a3, out3):
        n = a3.shape[1]
        if n == 0:
            return 0
        iv = _ints(n, 0, n, n)
        iv[_C1] = _L
        fa = np.empty((n, n), dtype)
        for i in range(a3.shape[0]):
            fa[:] = a3[i].T
            potrf(_at(iv, _C1), _at(iv, _NN), fa.ctypes.data, _at(iv, _LD), _at(iv, _INFO), 1)
            if iv[_INFO] != 0:
                return i + 1
            for r in range(n):  # (LAPACK leaves the other triangle as it was)
                for c in range(n):
                    out3[i, r, c] = fa[c, r] if c <= r else 0
        return iv[_INFO]

    @njit(**_OPTIONS)
    def slogdet(lu3, piv2, sign, logabs):
        """From lu_factor's results (no LAPACK call): NumPy's sign and log|det|, 0 and -inf for
        an exact zero on u's diagonal."""
        n = lu3.shape[1]
        for i in range(lu3.shape[0]):
            s, total, singular = dtype(1), dtype(0), False
            for j in range(n):
                d = lu3[i, j, j]
                if piv2[i, j] != j:
                    s = -s
                if d < 0:
                    s, d = -s, -d
                singular |= d == 0
                total += np.log(d)
            if singular:
                s, total = dtype(0), dtype(-np.inf)
            sign[i], logabs[i] = s, total
        return 0

    @njit(**_OPTIONS)
    def _syevd(job, a3, w2, v3, lower):
        """v3 (batch, n, n) not written when job is 'N' (values only: LAPACK computes none)."""
        n = a3.shape[1]
        if n == 0:
            return 0
        iv = _ints(n, 0, n, n)
        iv[_C1], iv[_C2] = job, _L if lower else _U
        fa, values = np.empty((n, n), dtype), np.empty(n, dtype)
        query, iquery = np.empty(1, dtype), np.empty(1, INT)
        syevd(_at(iv, _C1), _at(iv, _C2), _at(iv, _NN), fa.ctypes.data, _at(iv, _LD),
              values.ctypes.data, query.ctypes.data, _at(iv, _QUERY), iquery.ctypes.data,
              _at(iv, _QUERY), _at(iv, _INFO), 1, 1)
        iv[_LWORK], iv[_LIWORK] = max(1, int(query[0])), max(1, iquery[0])
        work, iwork = np.empty(iv[_LWORK], dtype), np.empty(iv[_LIWORK], INT)
        for i in range(a3.shape[0]):
            fa[:] = a3[i].T
            syevd(_at(iv, _C1), _at(iv, _C2), _at(iv, _NN), fa.ctypes.data, _at(iv, _LD),
                  values.ctypes.data, work.ctypes.data, _at(iv, _LWORK), iwork.ctypes.data,
                  _at(iv, _LIWORK), _at(iv, _INFO), 1, 1)
            if iv[_INFO] != 0:
                return i + 1
            w2[i] = values
            if job != _N:
                v3[i] = fa.T
        return iv[_INFO]

    @njit(**_OPTIONS)
    def eigh(a3, w2, v3, lower):
        return _syevd(_V, a3, w2, v3, lower)

    @njit(**_OPTIONS)
    def eigvalsh(a3, w2, lower):
        unused = np.empty((1, 1, 1), dtype)
        return _syevd(_N, a3, w2, unused, lower)

    @njit(**_OPTIONS)
    def _gesdd(job, a3, s2, u3, vh3):
        """u3 (batch, m, mu), vh3 (batch, nv, n); not written when job is 'N'."""
        m, n = a3.shape[1], a3.shape[2]
        k = min(m, n)
        if k == 0:
            if job != _N:
                for i in range(u3.shape[0]):  # (NumPy: identity factors of an empty matrix)
                    u3[i] = np.eye(u3.shape[1], u3.shape[2], 0, dtype)
                    vh3[i] = np.eye(vh3.shape[1], vh3.shape[2], 0, dtype)
            return 0
        mu, nv = (u3.shape[2], vh3.shape[1]) if job != _N else (1, 1)
        iv = _ints(m, n, m, nv)  # (ldu = m, ldvt = nv)
        iv[_C1] = job
        fa, values = np.empty((n, m), dtype), np.empty(k, dtype)
        fu, fvt = np.empty((mu, m), dtype), np.empty((n, max(1, nv)), dtype)
        iwork, query = np.empty(8 * k, INT), np.empty(1, dtype)
        gesdd(_at(iv, _C1), _at(iv, _NN), _at(iv, _KK), fa.ctypes.data, _at(iv, _LD),
              values.ctypes.data, fu.ctypes.data, _at(iv, _LD), fvt.ctypes.data,
              _at(iv, _LD2), query.ctypes.data, _at(iv, _QUERY), iwork.ctypes.data,
              _at(iv, _INFO), 1)
        iv[_LWORK] = max(1, int(query[0]))
        work = np.empty(iv[_LWORK], dtype)
        for i in range(a3.shape[0]):
            fa[:] = a3[i].T
            gesdd(_at(iv, _C1), _at(iv, _NN), _at(iv, _KK), fa.ctypes.data, _at(iv, _LD),
                  values.ctypes.data, fu.ctypes.data, _at(iv, _LD), fvt.ctypes.data,
                  _at(iv, _LD2), work.ctypes.data, _at(iv, _LWORK), iwork.ctypes.data,
                  _at(iv, _INFO), 1)
            if iv[_INFO] != 0:
                return i + 1
            s2[i] = values
            if job != _N:
                u3[i] = fu.T
                vh3[i] = fvt.T
        return iv[_INFO]

    @njit(**_OPTIONS)
    def svd(a3, u3, s2, vh3, full_matrices):
        return _gesdd(_A if full_matrices else _S, a3, s2, u3, vh3)

    @njit(**_OPTIONS)
    def svdvals(a3, s2):
        unused = np.empty((1, 1, 1), dtype)
        return _gesdd(_N, a3, s2, unused, unused)

    @njit(**_OPTIONS)
    def qr(a3, q3, r3):
        """Reduced (q3 (batch, m, k)) or complete (q3 (batch, m, m)) QR of (batch, m, n)."""
        m, n = a3.shape[1], a3.shape[2]
        k, kq = min(m, n), q3.shape[2]
        if m == 0:
            return 0
        if k == 0:
            for i in range(q3.shape[0]):
                q3[i] = np.eye(m, kq, 0, dtype)
                r3[i] = 0
            return 0
        iv = _ints(m, n, m, 0)
        iv[_C1], iv[_C2] = k, kq  # (integers here: orgqr's k and its number of columns)
        tau, query = np.empty(k, dtype), np.empty(1, dtype)
        buffer = np.zeros((max(n, kq), m), dtype)  # column-major (m, width): a, then q
        geqrf(_at(iv, _NN), _at(iv, _KK), buffer.ctypes.data, _at(iv, _LD), tau.ctypes.data,
              query.ctypes.data, _at(iv, _QUERY), _at(iv, _INFO))
        lwork = int(query[0])
        orgqr(_at(iv, _NN), _at(iv, _C2), _at(iv, _C1), buffer.ctypes.data, _at(iv, _LD),
              tau.ctypes.data, query.ctypes.data, _at(iv, _QUERY), _at(iv, _INFO))
        iv[_LWORK] = max(lwork, int(query[0]), 1)
        work = np.empty(iv[_LWORK], dtype)
        for i in range(a3.shape[0]):
            buffer[:] = 0
            buffer[:n] = a3[i].T
            geqrf(_at(iv, _NN), _at(iv, _KK), buffer.ctypes.data, _at(iv, _LD),
                  tau.ctypes.data, work.ctypes.data, _at(iv, _LWORK), _at(iv, _INFO))
            if iv[_INFO] != 0:
                return i + 1
            for r in range(r3.shape[1]):  # (complete mode: rows past k are zeros)
                for c in range(n):
                    r3[i, r, c] = buffer[c, r] if c >= r and r < k else 0
            orgqr(_at(iv, _NN), _at(iv, _C2), _at(iv, _C1), buffer.ctypes.data, _at(iv, _LD),
                  tau.ctypes.data, work.ctypes.data, _at(iv, _LWORK), _at(iv, _INFO))
            if iv[_INFO] != 0:
                return i + 1
            q3[i] = buffer[:kq].T
        return iv[_INFO]

    return {"lu_factor": lu_factor, "lu_solve": lu_solve, "triangular_solve": triangular_solve,
            "cholesky": cholesky, "slogdet": slogdet, "eigh": eigh, "eigvalsh": eigvalsh,
            "svd": svd, "svdvals": svdvals, "qr": qr}


# What each helper computes: (primitive, the primitive's operands it takes (the others are the
# matrix ``a`` that lu_solve and slogdet take for their derivatives and do not read), its
# trailing flag arguments (the equation's params), params it fixes). Its arguments are those
# operands as stacks, then its result arrays, then the flags.
HELPERS = {
    "lu_factor": ("lu_factor", (0,), (), {}),
    "lu_solve": ("lu_solve", (1, 2, 3), ("transpose", "check"), {}),
    "triangular_solve": ("triangular_solve", (0, 1), ("lower", "transpose_a"), {}),
    "cholesky": ("cholesky", (0,), (), {}),
    "slogdet": ("slogdet", (1, 2), (), {}),
    "eigh": ("eigh", (0,), ("lower",), {"compute_v": True}),
    "eigvalsh": ("eigh", (0,), ("lower",), {"compute_v": False}),
    "svd": ("svd", (0,), ("full_matrices",), {"compute_uv": True}),
    "svdvals": ("svd", (0,), (), {"full_matrices": False, "compute_uv": False}),
    "qr": ("qr", (0,), (), {}),
}


def _run_impl(name, ins, outs, params) -> int:
    """The primitive's reference implementation into ``outs``; 1 where it raises
    ``LinAlgError``."""
    from ..primitives import REGISTRY
    prim = REGISTRY[name]
    try:
        values = prim.impl(*ins, **params)
    except np.linalg.LinAlgError:
        return 1
    for target, value in zip(outs, values if prim.multiple_results else [values]):
        target[...] = value
    return 0


def run_reference(helper: str, *args) -> int:
    """``helper``'s contract (``HELPERS``) computed by the primitive's reference implementation:
    what the object-mode fallback helpers and the middle tier's stand-ins (``glue.py``) run."""
    name, positions, flags, fixed = HELPERS[helper]
    split = len(args) - len(flags)
    given, outs = args[:len(positions)], args[len(positions):split]
    params = dict(fixed, **{flag: bool(v) for flag, v in zip(flags, args[split:])})
    if helper == "qr":
        params["complete"] = outs[0].shape[2] > min(given[0].shape[1:])
    ins = [None] * (max(positions) + 1)
    for k, x in zip(positions, given):
        ins[k] = x
    return _run_impl(name, ins, outs, params)


def _fallback_helpers() -> dict:
    """The same contracts through the reference implementations in object mode (no LAPACK
    symbols found)."""
    @njit(**_OPTIONS)
    def lu_factor(a3, lu3, piv2):
        with objmode(status="int64"):
            status = run_reference("lu_factor", a3, lu3, piv2)
        return status

    @njit(**_OPTIONS)
    def lu_solve(lu3, piv2, b3, out3, transpose, check):
        with objmode(status="int64"):
            status = run_reference("lu_solve", lu3, piv2, b3, out3, transpose, check)
        return status

    @njit(**_OPTIONS)
    def triangular_solve(a3, b3, out3, lower, transpose_a):
        with objmode(status="int64"):
            status = run_reference("triangular_solve", a3, b3, out3, lower, transpose_a)
        return status

    @njit(**_OPTIONS)
    def cholesky(a3, out3):
        with objmode(status="int64"):
            status = run_reference("cholesky", a3, out3)
        return status

    @njit(**_OPTIONS)
    def slogdet(lu3, piv2, sign, logabs):
        with objmode(status="int64"):
            status = run_reference("slogdet", lu3, piv2, sign, logabs)
        return status

    @njit(**_OPTIONS)
    def eigh(a3, w2, v3, lower):
        with objmode(status="int64"):
            status = run_reference("eigh", a3, w2, v3, lower)
        return status

    @njit(**_OPTIONS)
    def eigvalsh(a3, w2, lower):
        with objmode(status="int64"):
            status = run_reference("eigvalsh", a3, w2, lower)
        return status

    @njit(**_OPTIONS)
    def svd(a3, u3, s2, vh3, full_matrices):
        with objmode(status="int64"):
            status = run_reference("svd", a3, u3, s2, vh3, full_matrices)
        return status

    @njit(**_OPTIONS)
    def svdvals(a3, s2):
        with objmode(status="int64"):
            status = run_reference("svdvals", a3, s2)
        return status

    @njit(**_OPTIONS)
    def qr(a3, q3, r3):
        with objmode(status="int64"):
            status = run_reference("qr", a3, q3, r3)
        return status

    return {"lu_factor": lu_factor, "lu_solve": lu_solve, "triangular_solve": triangular_solve,
            "cholesky": cholesky, "slogdet": slogdet, "eigh": eigh, "eigvalsh": eigvalsh,
            "svd": svd, "svdvals": svdvals, "qr": qr}


def _install():
    ext = _externals() if DIRECT else None
    for prefix, dtype, suffix in (("s", np.float32, "f32"), ("d", np.float64, "f64")):
        helpers = _helpers(prefix, dtype, ext) if DIRECT else _fallback_helpers()
        for name, fn in helpers.items():
            globals()[f"{name}_{suffix}"] = fn


_install()


# --- what the entry function says: one call per equation, its status checked -------------------
# NumPy's messages for a matrix LAPACK refused (lu_factor: only for an illegal argument, a bug).
_MESSAGES = {"lu_factor": "LU factorization failed", "lu_solve": "Singular matrix",
             "triangular_solve": "Singular matrix",
             "cholesky": "Matrix is not positive definite", "slogdet": "Singular matrix",
             "eigh": "Eigenvalues did not converge", "svd": "SVD did not converge",
             "qr": "QR factorization failed"}


def helper_name(eqn) -> str:
    """The helper an equation calls (values-only forms have their own)."""
    name, params = eqn.prim.name, eqn.params
    if name == "eigh" and not params["compute_v"]:
        return "eigvalsh"
    if name == "svd" and not params["compute_uv"]:
        return "svdvals"
    return name


def emit(w, eqn, ins, dtype_name) -> None:
    """Write the entry lines of one linalg equation (``entry_writer.emit``): the operands the
    helper reads as C-contiguous (batch, core axes...) stacks, result arrays allocated, the
    helper called, its status checked, results reshaped to the equation's shapes.
    ``dtype_name(dtype)`` is the dtype's name in the entry's source."""
    helper = helper_name(eqn)
    _, positions, flags, _ = HELPERS[helper]
    suffix = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}[eqn.inputs[0].ttype.dtype]
    nb = len(eqn.inputs[0].ttype.shape) - 2  # batch axes (the first operand is a matrix stack)
    batch = int(np.prod(eqn.inputs[0].ttype.shape[:nb], dtype=np.int64))

    def stack(k):
        core = eqn.inputs[k].ttype.shape[nb:]
        name_ = w.fresh()
        w.emit(f"{name_} = np.ascontiguousarray({ins[k]}).reshape({w.shape((batch,) + core)})")
        return name_

    def result(var):
        name_ = w.fresh()
        core = var.ttype.shape[nb:]
        w.emit(f"{name_} = np.empty({w.shape((batch,) + core)}, "
               f"{dtype_name(var.ttype.dtype)})")
        return name_

    operands = [stack(k) for k in positions]
    results = [result(v) for v in eqn.outputs]
    extra = [str(bool(eqn.params[flag])) for flag in flags]
    where = f" (in `{eqn.prim.name}`" + \
        (f" traced at {eqn.source_info})" if eqn.source_info else ")")
    message = _MESSAGES[eqn.prim.name] + where
    w.emit(f"if _lapack.{helper}_{suffix}({', '.join(operands + results + extra)}) != 0:")
    w.emit(f"    raise np.linalg.LinAlgError({message!r})")
    for var, name_ in zip(eqn.outputs, results):
        w.define(var, f"{name_}.reshape({w.shape(var.ttype.shape)})", view=False)


def uses_lapack(graph) -> bool:
    """Whether the entry of ``graph`` calls these helpers (its module then imports them)."""
    def walk(g):
        for e in g.eqns:
            if e.prim.name in PRIMITIVES:
                return True
            for value in e.params.values():
                if hasattr(value, "eqns") and walk(value):
                    return True
        return False
    return walk(graph)


IMPORT = "from tracejit.backends import lapack as _lapack"
