"""Linear algebra primitives: factorisations and solves over the last two axes.

Every primitive here works on stacks of matrices: the last two axes are the matrix, the leading
axes a batch (operands of one equation share their batch shape; ``tracejit.numpy.linalg``
broadcasts first). Operands are float32 or float64 (``tracejit.numpy.linalg`` converts integers
to float64, as NumPy does). The reference implementations call NumPy's LAPACK (``np.linalg``);
``numba_cpu`` calls the same LAPACK from compiled code (``backends/lapack.py``).

| primitive | operands -> results | reads |
|---|---|---|
| ``solve`` | a (..., n, n), b (..., n, k) -> x = a^-1 b | all of a (LU, partial pivoting) |
| ``triangular_solve[lower, transpose_a]`` | a, b as solve -> op(a)^-1 b | a's triangle |
| ``cholesky`` | a (..., n, n) -> lower l, a = l l^T | a's lower triangle |
| ``slogdet`` | a (..., n, n) -> sign (...), log abs det (...) | all of a |
| ``eigh[lower]`` | a (..., n, n) -> w (..., n) ascending, v (..., n, n) | one triangle |
| ``svd[full_matrices, compute_uv]`` | a (..., m, n) -> u, s, vh (or s) | all of a |
| ``qr[complete]`` | a (..., m, n) -> q, r | all of a |

Derivative conventions (docs/linalg.md): ``cholesky`` and ``eigh`` read one triangle, but their
derivatives are those of the function of the symmetrised input (a + a^T) / 2, so cotangents are
symmetric and tangents are symmetrised first; eigenvector derivatives drop the terms of equal
eigenvalues (and ``svd`` those of equal singular values), which is exact for functions that do
not depend on the basis chosen within a degenerate eigenspace (sums of eigenvalues, projectors).
Every rule is written with ``bind``, so second derivatives work.
"""
from __future__ import annotations

import numpy as np

from ..ir import TensorType
from .registry import Primitive

_LinAlgError = np.linalg.LinAlgError


def _check_float(name, *xs):
    for x in xs:
        if x.dtype not in (np.float32, np.float64):
            raise TypeError(f"{name}: operands must be float32 or float64, got {x}")
    if len({x.dtype for x in xs}) > 1:
        raise TypeError(f"{name}: operand dtypes differ: {', '.join(map(str, xs))}")


def _check_square(name, a):
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise TypeError(f"{name}: expected a stack of square matrices, got {a}")


def _check_rhs(name, a, b):
    if b.ndim != a.ndim or b.shape[:-2] != a.shape[:-2] or b.shape[-2] != a.shape[-1]:
        raise TypeError(f"{name}: right-hand side {b} does not match {a}")


# --- solve: a x = b, a general (LU with partial pivoting) -------------------------------------
def _solve_abstract_eval(a, b):
    _check_float("solve", a, b)
    _check_square("solve", a)
    _check_rhs("solve", a, b)
    return TensorType(b.shape, b.dtype)


def _solve_impl(a, b):
    if a.shape[-1] == 0:
        return np.zeros(b.shape, b.dtype)
    return np.linalg.solve(a, b).astype(b.dtype, copy=False)


solve = Primitive("solve", "contraction", abstract_eval=_solve_abstract_eval, impl=_solve_impl)


# --- triangular_solve[lower, transpose_a]: op(a) x = b, a triangular --------------------------
def _triangular_solve_abstract_eval(a, b, *, lower, transpose_a):
    _check_float("triangular_solve", a, b)
    _check_square("triangular_solve", a)
    _check_rhs("triangular_solve", a, b)
    return TensorType(b.shape, b.dtype)


def _triangle(a, lower):
    return np.tril(a) if lower else np.triu(a)


def _triangular_solve_impl(a, b, *, lower, transpose_a):
    if a.shape[-1] == 0:
        return np.zeros(b.shape, b.dtype)
    t = _triangle(a, lower)
    if transpose_a:
        t = np.swapaxes(t, -1, -2)
    # NumPy has no triangular solver of its own: LU of a triangular matrix does no pivoting
    # (nothing below the diagonal to pick) unless the diagonal has zeros, which is singular.
    diagonal = np.diagonal(t, axis1=-2, axis2=-1)
    if np.any(diagonal == 0):
        raise _LinAlgError("Singular matrix")
    return np.linalg.solve(t, b).astype(b.dtype, copy=False)


triangular_solve = Primitive("triangular_solve", "contraction",
                             abstract_eval=_triangular_solve_abstract_eval,
                             impl=_triangular_solve_impl)


# --- cholesky: a = l l^T, l lower triangular ---------------------------------------------------
def _square_abstract_eval(name):
    def abstract_eval(a):
        _check_float(name, a)
        _check_square(name, a)
        return TensorType(a.shape, a.dtype)
    return abstract_eval


def _cholesky_impl(a):
    return np.linalg.cholesky(a).astype(a.dtype, copy=False)


cholesky = Primitive("cholesky", "contraction", abstract_eval=_square_abstract_eval("cholesky"),
                     impl=_cholesky_impl)


# --- slogdet: sign and log|det| ----------------------------------------------------------------
def _slogdet_abstract_eval(a):
    _check_float("slogdet", a)
    _check_square("slogdet", a)
    scalar = TensorType(a.shape[:-2], a.dtype)
    return [scalar, scalar]


def _slogdet_impl(a):
    sign, logabs = np.linalg.slogdet(a)
    return [np.asarray(sign, a.dtype), np.asarray(logabs, a.dtype)]


slogdet = Primitive("slogdet", "contraction", abstract_eval=_slogdet_abstract_eval,
                    impl=_slogdet_impl, multiple_results=True)


# --- eigh[lower]: a = v diag(w) v^T, eigenvalues ascending --------------------------------------
def _eigh_abstract_eval(a, *, lower):
    _check_float("eigh", a)
    _check_square("eigh", a)
    return [TensorType(a.shape[:-1], a.dtype), TensorType(a.shape, a.dtype)]


def _eigh_impl(a, *, lower):
    w, v = np.linalg.eigh(a, UPLO="L" if lower else "U")
    return [w.astype(a.dtype, copy=False), v.astype(a.dtype, copy=False)]


eigh = Primitive("eigh", "contraction", abstract_eval=_eigh_abstract_eval, impl=_eigh_impl,
                 multiple_results=True)


# --- svd[full_matrices, compute_uv]: a = u diag(s) vh, s descending ----------------------------
def _svd_abstract_eval(a, *, full_matrices, compute_uv):
    _check_float("svd", a)
    if a.ndim < 2:
        raise TypeError(f"svd: expected a stack of matrices, got {a}")
    *batch, m, n = a.shape
    k = min(m, n)
    s = TensorType(tuple(batch) + (k,), a.dtype)
    if not compute_uv:
        return [s]
    mu, nv = (m, n) if full_matrices else (k, k)
    return [TensorType(tuple(batch) + (m, mu), a.dtype), s,
            TensorType(tuple(batch) + (nv, n), a.dtype)]


def _svd_impl(a, *, full_matrices, compute_uv):
    if not compute_uv:
        return [np.linalg.svd(a, compute_uv=False).astype(a.dtype, copy=False)]
    u, s, vh = np.linalg.svd(a, full_matrices=full_matrices)
    return [x.astype(a.dtype, copy=False) for x in (u, s, vh)]


svd = Primitive("svd", "contraction", abstract_eval=_svd_abstract_eval, impl=_svd_impl,
                multiple_results=True)


# --- qr[complete]: a = q r, q orthonormal columns, r upper triangular ---------------------------
def _qr_abstract_eval(a, *, complete):
    _check_float("qr", a)
    if a.ndim < 2:
        raise TypeError(f"qr: expected a stack of matrices, got {a}")
    *batch, m, n = a.shape
    k = m if complete else min(m, n)
    return [TensorType(tuple(batch) + (m, k), a.dtype), TensorType(tuple(batch) + (k, n), a.dtype)]


def _qr_impl(a, *, complete):
    q, r = np.linalg.qr(a, mode="complete" if complete else "reduced")
    return [q.astype(a.dtype, copy=False), r.astype(a.dtype, copy=False)]


qr = Primitive("qr", "contraction", abstract_eval=_qr_abstract_eval, impl=_qr_impl,
               multiple_results=True)


# =============================================================================================
# Derivative rules. Matrices are the last two axes; helpers below batch over the rest.
# =============================================================================================
from . import ad_support as A  # noqa: E402
from .elementwise import eq, ge, gt, le, lt, ne  # noqa: E402
from .reductions import dot_general  # noqa: E402
from .structural import slice_  # noqa: E402


def mm(x, y):
    """Batched matrix product over the last two axes (same batch shape)."""
    nd = len(x.shape)
    batch = tuple(range(nd - 2))
    return dot_general.bind(x, y, contract=((nd - 1,), (nd - 2,)), batch=(batch, batch))


def mT(x):
    nd = len(x.shape)
    return A.transpose(x, tuple(range(nd - 2)) + (nd - 1, nd - 2))


def _mask(x, shape, compare):
    """A bool mask of ``shape`` (..., r, c): compare(row index, column index)."""
    nd = len(shape)
    return compare.bind(A.iota_like(x, shape, nd - 2), A.iota_like(x, shape, nd - 1))


def eye_mask(x, shape):
    return _mask(x, shape, eq)


def keep(mask, x):
    return A.select(mask, x, A.zeros_like(x))


def triangle(x, lower, strict=False):
    """The lower (row >= column) or upper triangle of x, zero elsewhere."""
    compare = {(True, False): ge, (True, True): gt, (False, False): le, (False, True): lt}
    return keep(_mask(x, x.shape, compare[lower, strict]), x)


def diag_part(x):
    """(..., n, n) -> (..., n)."""
    nd = len(x.shape)
    return A.reduce_sum(keep(eye_mask(x, x.shape), x), (nd - 1,))


def rows(v, shape):
    """(..., c) broadcast to (..., r, c): v[j] in every row."""
    nd = len(shape)
    return A.broadcast_back(v, shape, (nd - 2,))


def cols(v, shape):
    """(..., r) broadcast to (..., r, c): v[i] in every column."""
    nd = len(shape)
    return A.broadcast_back(v, shape, (nd - 1,))


def diag_embed(v):
    n = v.shape[-1]
    shape = tuple(v.shape) + (n,)
    return keep(eye_mask(v, shape), rows(v, shape))


def sym(x):
    return A.scaled(A.add(x, mT(x)), 0.5)


def eye_like(x, n):
    shape = tuple(x.shape[:-2]) + (n, n)
    return A.select(eye_mask(x, shape), A.full_like(x, 1, shape=shape),
                    A.full_like(x, 0, shape=shape))


def _gap_inverse(values, square):
    """F[..., i, j] = 1 / (values[j] - values[i]) off the diagonal, 0 on it and wherever the two
    values are equal (the degenerate convention, docs/linalg.md)."""
    diff = A.sub(rows(values, square), cols(values, square))
    distinct = ne.bind(diff, A.zeros_like(diff))
    safe = A.select(distinct, diff, A.full_like(diff, 1))
    return keep(distinct, A.div(A.full_like(diff, 1), safe))


def _solve_vjp(ct, a, b, *, out, needed):
    ct_b = solve.bind(mT(a), ct)
    ct_a = A.neg(mm(ct_b, mT(out))) if needed[0] else None
    return [ct_a, ct_b if needed[1] else None]


def _solve_jvp(primals, tangents, out):
    (a, b), (ta, tb) = primals, tangents
    rhs = tb if tb is not None else A.zeros_like(b)
    if ta is not None:
        rhs = A.sub(rhs, mm(ta, out))
    return solve.bind(a, rhs)


def _triangular_solve_vjp(ct, a, b, *, out, lower, transpose_a, needed):
    ct_b = triangular_solve.bind(a, ct, lower=lower, transpose_a=not transpose_a)
    ct_a = None
    if needed[0]:
        ct_op = A.neg(mm(ct_b, mT(out)))
        ct_a = triangle(mT(ct_op) if transpose_a else ct_op, lower)
    return [ct_a, ct_b if needed[1] else None]


def _triangular_solve_jvp(primals, tangents, out, *, lower, transpose_a):
    (a, b), (ta, tb) = primals, tangents
    rhs = tb if tb is not None else A.zeros_like(b)
    if ta is not None:
        t = triangle(ta, lower)
        rhs = A.sub(rhs, mm(mT(t) if transpose_a else t, out))
    return triangular_solve.bind(a, rhs, lower=lower, transpose_a=transpose_a)


def _phi(x):
    """The lower triangle with the diagonal halved (the Cholesky derivative's projection)."""
    lower = triangle(x, True)
    return A.sub(lower, A.scaled(keep(eye_mask(x, x.shape), x), 0.5))


def _cholesky_vjp(ct, a, *, out):
    m = _phi(mm(mT(out), ct))
    w = triangular_solve.bind(out, m, lower=True, transpose_a=True)  # l^-T m
    g = mT(triangular_solve.bind(out, mT(w), lower=True, transpose_a=True))  # l^-T m l^-1
    return [sym(g)]


def _cholesky_jvp(primals, tangents, out):
    (t,) = tangents
    y = triangular_solve.bind(out, sym(t), lower=True, transpose_a=False)
    x = triangular_solve.bind(out, mT(y), lower=True, transpose_a=False)  # l^-1 t l^-T
    return mm(out, _phi(x))


def _slogdet_vjp(ct, a, *, out):
    _, ct_log = ct
    if ct_log is None:
        return [None]
    inv_t = solve.bind(mT(a), eye_like(a, a.shape[-1]))
    return [A.mul(inv_t, A.broadcast_back(ct_log, a.shape, (len(a.shape) - 2,
                                                               len(a.shape) - 1)))]


def _slogdet_jvp(primals, tangents):
    (a,), (t,) = primals, tangents
    sign, logabs = slogdet.bind(a)
    return [sign, logabs], [None, diag_sum(solve.bind(a, t))]


def diag_sum(x):
    return A.reduce_sum(diag_part(x), (len(x.shape) - 2,))


def _eigh_vjp(ct, a, *, out, lower):
    ct_w, ct_v = ct
    w, v = out
    inner = diag_embed(ct_w) if ct_w is not None else None
    if ct_v is not None:
        f = A.mul(_gap_inverse(w, v.shape), mm(mT(v), ct_v))
        inner = f if inner is None else A.add(inner, f)
    return [sym(mm(v, mm(inner, mT(v))))]


def _eigh_jvp(primals, tangents, *, lower):
    (a,), (t,) = primals, tangents
    w, v = eigh.bind(a, lower=lower)
    p = mm(mT(v), mm(sym(t), v))
    dv = mm(v, A.mul(_gap_inverse(w, v.shape), p))
    return [w, v], [diag_part(p), dv]


def _leading(x, axis, k):
    """The first k entries of x along ``axis`` (negative: from the end)."""
    nd = len(x.shape)
    limit = list(x.shape)
    limit[axis % nd] = k
    if tuple(limit) == tuple(x.shape):
        return x
    return slice_.bind(x, start=(0,) * nd, limit=tuple(limit), strides=(1,) * nd)


def _thin(u, vh, k):
    """Thin factors from full ones: the first k columns of u, rows of vh."""
    return _leading(u, -1, k), _leading(vh, -2, k)


def _svd_vjp(ct, a, *, out, full_matrices, compute_uv):
    *_, m, n = a.shape
    k = min(m, n)
    if compute_uv:
        ct_u, ct_s, ct_vh = ct
        u, s, vh = out
        if full_matrices and m != n:
            if ct_u is not None or ct_vh is not None:
                raise NotImplementedError(
                    "the derivative of svd(full_matrices=True) of a non-square matrix through "
                    "its singular vectors is not defined (the extra vectors are arbitrary); "
                    "use full_matrices=False")
            u, vh = _thin(u, vh, k)
    else:
        (ct_s,), ct_u, ct_vh = ct, None, None
        u, s, vh = svd.bind(a, full_matrices=False, compute_uv=True)
    square = tuple(s.shape) + (k,)
    v = mT(vh)
    s_rows = rows(s, square)  # [..., i, j] = s_j
    inner = diag_embed(ct_s) if ct_s is not None else A.full_like(s, 0, shape=square)
    f = _gap_inverse(A.mul(s, s), square)
    extra = None
    if ct_u is not None:
        x = A.mul(f, mm(mT(u), ct_u))
        inner = A.add(inner, A.mul(A.add(x, mT(x)), s_rows))
        if m > k:  # (i - u u^T) ct_u s^-1 v^T
            rest = A.sub(ct_u, mm(u, mm(mT(u), ct_u)))
            extra = mm(A.div(rest, rows(s, rest.shape)), vh)
    if ct_vh is not None:
        ct_v = mT(ct_vh)
        y = A.mul(f, mm(vh, ct_v))
        inner = A.add(inner, A.mul(cols(s, square), A.add(y, mT(y))))
        if n > k:  # u s^-1 ct_v^T (i - v v^T)
            rest = A.sub(ct_v, mm(v, mm(vh, ct_v)))
            term = mm(u, mT(A.div(rest, rows(s, rest.shape))))
            extra = term if extra is None else A.add(extra, term)
    ct_a = mm(u, mm(inner, vh))
    return [ct_a if extra is None else A.add(ct_a, extra)]


def _svd_jvp(primals, tangents, *, full_matrices, compute_uv):
    (a,), (t,) = primals, tangents
    *_, m, n = a.shape
    k = min(m, n)
    if full_matrices and m != n and compute_uv:
        # The extra singular vectors are arbitrary: their tangents are NaN (docs/linalg.md),
        # the singular values' exact.
        u_full, s, vh_full = svd.bind(a, full_matrices=True, compute_uv=True)
        u, vh = _thin(u_full, vh_full, k)
        ds = diag_part(mm(mT(u), mm(t, mT(vh))))
        return [u_full, s, vh_full], [A.full_like(u_full, np.nan), ds,
                                      A.full_like(vh_full, np.nan)]
    u, s, vh = svd.bind(a, full_matrices=False, compute_uv=True)
    v = mT(vh)
    dp = mm(mT(u), mm(t, v))
    ds = diag_part(dp)
    if not compute_uv:
        return [s], [ds]
    square = tuple(s.shape) + (k,)
    f = _gap_inverse(A.mul(s, s), square)
    s_rows, s_cols = rows(s, square), cols(s, square)
    du = mm(u, A.mul(f, A.add(A.mul(dp, s_rows), A.mul(s_cols, mT(dp)))))
    dv = mm(v, A.mul(f, A.add(A.mul(s_cols, dp), A.mul(mT(dp), s_rows))))
    if m > k:
        tv = mm(t, v)
        rest = A.sub(tv, mm(u, mm(mT(u), tv)))
        du = A.add(du, A.div(rest, rows(s, rest.shape)))
    if n > k:
        tu = mm(mT(t), u)
        rest = A.sub(tu, mm(v, mm(vh, tu)))
        dv = A.add(dv, A.div(rest, rows(s, rest.shape)))
    return [u, s, vh], [du, ds, mT(dv)]


def _qr_check(a, complete):
    *_, m, n = a.shape
    if m < n or (complete and m != n):
        raise NotImplementedError(
            f"the derivative of qr is implemented for square and tall matrices in mode "
            f"'reduced' (got a {m}x{n} matrix{', mode complete' if complete else ''})")


def _right_solve_upper_t(x, r):
    """x r^-T for upper triangular r."""
    return mT(triangular_solve.bind(r, mT(x), lower=False, transpose_a=False))


def _qr_vjp(ct, a, *, out, complete):
    _qr_check(a, complete)
    q, r = out
    ct_q, ct_r = ct
    ct_q = ct_q if ct_q is not None else A.zeros_like(q)
    ct_r = ct_r if ct_r is not None else A.zeros_like(r)
    qt_ctq = mm(mT(q), ct_q)
    m = A.sub(qt_ctq, mm(ct_r, mT(r)))
    inner = A.sub(triangle(A.sub(m, mT(m)), True, strict=True), qt_ctq)
    left = A.add(ct_q, mm(q, inner))
    return [A.add(mm(q, ct_r), _right_solve_upper_t(left, r))]


def _qr_jvp(primals, tangents, *, complete):
    (a,), (t,) = primals, tangents
    _qr_check(a, complete)
    q, r = qr.bind(a, complete=complete)
    t_rinv = mT(triangular_solve.bind(r, mT(t), lower=False, transpose_a=True))  # t r^-1
    c = mm(mT(q), t_rinv)
    low = triangle(c, True, strict=True)
    omega = A.sub(low, mT(low))
    dq = A.add(mm(q, omega), A.sub(t_rinv, mm(q, c)))
    dr = A.sub(mm(mT(q), t), mm(omega, r))
    return [q, r], [dq, dr]


solve.def_ad(_solve_vjp, _solve_jvp, takes_needed=True)
triangular_solve.def_ad(_triangular_solve_vjp, _triangular_solve_jvp, takes_needed=True)
cholesky.def_ad(_cholesky_vjp, _cholesky_jvp)
slogdet.def_ad(_slogdet_vjp, _slogdet_jvp)
eigh.def_ad(_eigh_vjp, _eigh_jvp)
svd.def_ad(_svd_vjp, _svd_jvp)
qr.def_ad(_qr_vjp, _qr_jvp)
