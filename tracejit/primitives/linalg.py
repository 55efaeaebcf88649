"""Linear algebra primitives: factorisations and solves over the last two axes.

Every primitive here works on stacks of matrices: the last two axes are the matrix, the leading
axes a batch (operands of one equation share their batch shape; ``tracejit.numpy.linalg``
broadcasts first). Operands are float32 or float64 (``tracejit.numpy.linalg`` converts integers
to float64, as NumPy does). The reference implementations are NumPy: ``np.linalg`` (NumPy's
LAPACK) where it has the routine, and a blocked LU and substitutions of ours (``_lu_reference``,
``_substitute``) where it has none; ``numba_cpu`` calls LAPACK from compiled code
(``backends/lapack.py``).

| primitive | operands -> results | reads |
|---|---|---|
| ``lu_factor`` | a (..., n, n) -> lu (..., n, n), pivots (..., n) int32 | all of a |
| ``lu_solve[transpose, check]`` | a, lu, pivots, b (..., n, k) -> x, op(a) x = b | lu, pivots |
| ``triangular_solve[lower, transpose_a]`` | a, b as above -> op(a)^-1 b | a's triangle |
| ``cholesky`` | a (..., n, n) -> lower l, a = l l^T | a's lower triangle |
| ``slogdet`` | a, lu, pivots -> sign (...), log abs det (...) | lu, pivots |
| ``eigh[lower, compute_v]`` | a (..., n, n) -> w (..., n) ascending, v (or w only) | one triangle |
| ``svd[full_matrices, compute_uv]`` | a (..., m, n) -> u, s, vh (or s) | all of a |
| ``qr[complete]`` | a (..., m, n) -> q, r | all of a |

**Factorisations as values.** ``lu_factor`` is LAPACK's ``getrf`` of a^T, transposed: a = l u q
with ``lu``'s lower triangle and diagonal l, its strict upper triangle u (unit upper), and q the
column permutation made by swapping column j with column ``pivots[..., j]`` (0-based), for
j = 0, 1, ... in order. (A row-major matrix is its transpose in LAPACK's column-major order, so
``numba_cpu`` factors it where it lies and solves ``a x = b`` as ``getrs`` with ``trans='T'``,
with no transposed copies of the n x n matrix; partial pivoting on a^T is as stable for both
systems.) ``solve``, ``inv``,
``det`` and ``slogdet`` are ``lu_factor`` followed by ``lu_solve`` or ``slogdet``, and their
derivative rules call ``lu_solve`` with the same ``lu`` and ``pivots`` (the transposed solve of
reverse mode is ``getrs`` with ``trans='T'``): one factorisation per matrix, forward, backward and
at any order. To make that possible the consumers take the matrix ``a`` itself as well as its
factors: ``lu_solve(a, lu, pivots, b)`` *is* the function ``a^-1 b`` (and ``slogdet(a, lu,
pivots)`` the function of ``a``), the factors being how it is computed. Its derivatives are
taken with respect to ``a`` and ``b``, never through the factors (their partial derivatives are
zero by this definition), which costs an outer product (``-ct_b x^T``) where differentiating
through l and u would cost two more triangular solves per matrix. ``lu`` and ``pivots`` must be
``lu_factor(a)``; ``tracejit.numpy.linalg`` is the only place that builds these equations. The
factors are not differentiable values of their own: ``lu_factor``'s reverse rule refuses a
cotangent and its forward rule gives NaN tangents, so a use of the factors as numbers in a
differentiated computation fails loudly instead of giving a silently wrong derivative.

Derivative conventions (docs/linalg.md): ``cholesky`` and ``eigh`` read one triangle, but their
derivatives are those of the function of the symmetrised input (a + a^T) / 2, so cotangents are
symmetric and tangents are symmetrised first; eigenvector derivatives drop the terms of equal
eigenvalues (and ``svd`` those of equal singular values), which is exact for functions that do
not depend on the basis chosen within a degenerate eigenspace (sums of eigenvalues, projectors).
Values-only forms (``eigh[compute_v=False]``, ``svd[compute_uv=False]``) compute no vectors on
the way forward; their derivatives compute them (a second decomposition, only when
differentiated). Every rule is written with ``bind``, so second derivatives work.

Batching (``vmap``): the stacks make every rule one call over the whole batch. vmap's axis
becomes one more leading stack axis of every operand (an unbatched one broadcast along it) and
every result is batched at 0 (``batch_support.leading_batch_rule``). The solves keep an
unbatched matrix unbatched: with only b batched, the examples become more columns of b, one
solve with the matrix (or its factors) as they are, which is what the derivatives' solves
inside ``jacfwd``/``jacrev``/``hessian`` are.
"""
from __future__ import annotations

import numpy as np

from ..ir import TensorType
from . import batch_support as B
from .registry import Primitive

_LinAlgError = np.linalg.LinAlgError
_PIVOT = np.dtype(np.int32)  # (SciPy's lu_factor's too; LAPACK's own integers are converted)


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


def _check_factors(name, a, lu, pivots):
    if lu.shape != a.shape or lu.dtype != a.dtype:
        raise TypeError(f"{name}: factors {lu} do not match the matrix {a}")
    if pivots.dtype != _PIVOT or pivots.shape != a.shape[:-1]:
        raise TypeError(f"{name}: pivots must be int32 of shape {a.shape[:-1]}, got {pivots}")


# --- the NumPy reference algorithms: blocked LU and triangular substitution ---------------------
_BLOCK = 32  # rows or columns per block: the work between blocks is matrix products


def _stack(x, core: int):
    """x as (count, *core axes): the batch flattened (count may be 0)."""
    count = int(np.prod(x.shape[:x.ndim - core], dtype=np.int64))
    return x.reshape((count,) + x.shape[x.ndim - core:])


def _lu_reference(a):
    """LU with partial pivoting as LAPACK's ``getrf`` computes it (the pivot of each column is
    its first entry of largest magnitude; a zero pivot, a singular matrix, is left on the
    diagonal with the column below it unscaled), right-looking in blocks of columns. Returns
    ``(f, pivots)``: f packs l (unit lower, below the diagonal) and u (on and above it), and
    ``pivots[..., j]`` is the row swapped with row j at step j, so the rows swapped so, in
    order, are l u. (``lu_factor`` is this of a^T, transposed.)"""
    n = a.shape[-1]
    lu = np.array(_stack(a, 2), copy=True)
    count = lu.shape[0]
    pivots = np.zeros((count, n), _PIVOT)
    which = np.arange(count)
    for j0 in range(0, n, _BLOCK):
        j1 = min(n, j0 + _BLOCK)
        for j in range(j0, j1):  # the panel: columns j0..j1, one at a time
            p = j + np.argmax(np.abs(lu[:, j:, j]), axis=1)
            pivots[:, j] = p
            row = lu[which, j].copy()
            lu[which, j] = lu[which, p]
            lu[which, p] = row
            d = lu[:, j, j]
            lu[:, j + 1:, j] /= np.where(d == 0, 1, d)[:, None]
            lu[:, j + 1:, j + 1:j1] -= lu[:, j + 1:, j, None] * lu[:, j, None, j + 1:j1]
        if j1 < n:  # the block row of u right of the panel, then the trailing update
            for j in range(j0, j1):
                lu[:, j + 1:j1, j1:] -= lu[:, j + 1:j1, j, None] * lu[:, j, None, j1:]
            lu[:, j1:, j1:] -= lu[:, j1:, j0:j1] @ lu[:, j0:j1, j1:]
    return lu.reshape(a.shape), pivots.reshape(a.shape[:-1])


def _substitute(t, y, lower, unit):
    """x with t x = y, for (count, n, n) triangular t (only its ``lower`` or upper triangle is
    read; ``unit``: ones on the diagonal, not read) and y (count, n, k): blocks of rows, each
    after one matrix product with the rows solved before it."""
    n = t.shape[-1]
    x = np.array(y, copy=True)
    starts = range(0, n, _BLOCK)
    for j0 in (starts if lower else reversed(starts)):
        j1 = min(n, j0 + _BLOCK)
        if lower:
            x[:, j0:j1] -= t[:, j0:j1, :j0] @ x[:, :j0]
        else:
            x[:, j0:j1] -= t[:, j0:j1, j1:] @ x[:, j1:]
        for j in (range(j0, j1) if lower else reversed(range(j0, j1))):
            done = slice(j0, j) if lower else slice(j + 1, j1)
            x[:, j] -= (t[:, j, None, done] @ x[:, done])[:, 0]
            if not unit:
                x[:, j] /= t[:, j, j, None]
    return x


def _permutation(pivots):
    """(count, n) sequential row swaps -> the factored matrix's rows in factor order
    (m[perm] = l u)."""
    count, n = pivots.shape
    perm = np.array(np.broadcast_to(np.arange(n), (count, n)))
    which = np.arange(count)
    for j in range(n):
        p = pivots[:, j]
        row = perm[:, j].copy()
        perm[:, j] = perm[which, p]
        perm[which, p] = row
    return perm


# --- lu_factor: a = l u q (getrf of a^T: partial pivoting); never raises --------------------------
def _lu_factor_abstract_eval(a):
    _check_float("lu_factor", a)
    _check_square("lu_factor", a)
    return [TensorType(a.shape, a.dtype), TensorType(a.shape[:-1], _PIVOT)]


def _lu_factor_impl(a):
    factors, pivots = _lu_reference(np.swapaxes(a, -1, -2))  # (getrf of a^T: see the top)
    return [np.ascontiguousarray(np.swapaxes(factors, -1, -2)), pivots]


lu_factor = Primitive("lu_factor", "contraction", abstract_eval=_lu_factor_abstract_eval,
                      impl=_lu_factor_impl, multiple_results=True)
lu_factor.def_batch(B.leading_batch_rule(lu_factor))  # (vmap's axis: one more stack axis)


# --- lu_solve[transpose, check]: op(a) x = b through a's LU ---------------------------------------
def _lu_solve_abstract_eval(a, lu, pivots, b, *, transpose, check):
    _check_float("lu_solve", a, lu, b)
    _check_square("lu_solve", a)
    _check_factors("lu_solve", a, lu, pivots)
    _check_rhs("lu_solve", a, b)
    return TensorType(b.shape, b.dtype)


def _lu_solve_impl(a, lu, pivots, b, *, transpose, check):
    """``a`` is not read (it may be None): ``lu`` and ``pivots`` are its factors. A singular
    matrix (a zero on the factors' diagonal) raises ``LinAlgError`` with ``check``, else gives
    NaN (NumPy's ``inv`` with errors ignored, what ``cond`` uses)."""
    n = b.shape[-2]
    # f (the transpose of lu) holds a^T's row-pivoted LU: a^T = p l u, so a x = b is the
    # transposed solve with f, and a^T x = b the plain one.
    f = np.swapaxes(_stack(lu, 2), 1, 2)
    flat_b = _stack(b, 2)
    singular = np.any(np.diagonal(f, axis1=1, axis2=2) == 0, axis=1)
    if check and singular.any():
        raise _LinAlgError("Singular matrix")
    perm = _permutation(_stack(pivots, 1))
    which = np.arange(flat_b.shape[0])[:, None]
    with np.errstate(all="ignore"):
        if transpose:  # l u x = (p^T b)
            y = _substitute(f, flat_b[which, perm], True, True)
            x = _substitute(f, y, False, False)
        else:  # u^T l^T (p^T x) = b
            t = np.swapaxes(f, 1, 2)
            w = _substitute(t, _substitute(t, flat_b, True, False), False, True)
            x = np.empty_like(w)
            x[which, perm] = w
    x[singular] = np.nan
    return x.reshape(b.shape).astype(b.dtype, copy=False) if n else np.zeros(b.shape, b.dtype)


def _as_more_columns(solve, b, d):
    """``solve`` (by one unbatched matrix) of every example's b (..., n, k), batched at ``d``:
    the examples become more right-hand sides, b (..., n, k * size), so the matrix is solved
    with once (and never copied per example). The result is batched along its last axis."""
    last = len(b.shape) - 1
    moved = B.moveaxis(b, d, last)  # (..., n, k, size)
    shape = tuple(moved.shape)
    x = solve(B.bind_in_graph("reshape", moved, shape=shape[:-2] + (shape[-2] * shape[-1],)))
    return B.bind_in_graph("reshape", x, shape=shape), last


def _lu_solve_batch(args, bdims, *, transpose, check):
    """Only b batched (the usual case: one matrix and many right-hand sides, as in every
    derivative's solve with the forward's factors under ``jacfwd``/``jacrev``): more columns
    of one solve. Otherwise vmap's axis is one more stack axis of every operand."""
    a, lu, pivots, b = args
    if all(d is None for d in bdims[:3]):
        return _as_more_columns(lambda rhs: lu_solve.bind(a, lu, pivots, rhs, transpose=transpose,
                                                          check=check), b, bdims[3])
    return B.leading_batch_rule(lu_solve)(args, bdims, transpose=transpose, check=check)


lu_solve = Primitive("lu_solve", "contraction", abstract_eval=_lu_solve_abstract_eval,
                     impl=_lu_solve_impl).def_batch(_lu_solve_batch)


# --- triangular_solve[lower, transpose_a]: op(a) x = b, a triangular --------------------------
def _triangular_solve_abstract_eval(a, b, *, lower, transpose_a):
    _check_float("triangular_solve", a, b)
    _check_square("triangular_solve", a)
    _check_rhs("triangular_solve", a, b)
    return TensorType(b.shape, b.dtype)


def _triangular_solve_impl(a, b, *, lower, transpose_a):
    diagonal = np.diagonal(a, axis1=-2, axis2=-1)
    if np.any(diagonal == 0):
        raise _LinAlgError("Singular matrix")
    t = _stack(a, 2)
    if transpose_a:  # (the transpose of the lower triangle is upper)
        t, lower = np.swapaxes(t, 1, 2), not lower
    x = _substitute(t, _stack(b, 2), lower, False)
    return x.reshape(b.shape).astype(b.dtype, copy=False)


def _triangular_solve_batch(args, bdims, *, lower, transpose_a):
    """Only b batched: more columns of one solve (as ``lu_solve``); otherwise one more stack
    axis of both operands."""
    (a, b), (da, db) = args, bdims
    if da is None:
        return _as_more_columns(lambda rhs: triangular_solve.bind(
            a, rhs, lower=lower, transpose_a=transpose_a), b, db)
    return B.leading_batch_rule(triangular_solve)(args, bdims, lower=lower,
                                                  transpose_a=transpose_a)


triangular_solve = Primitive("triangular_solve", "contraction",
                             abstract_eval=_triangular_solve_abstract_eval,
                             impl=_triangular_solve_impl).def_batch(_triangular_solve_batch)


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
cholesky.def_batch(B.leading_batch_rule(cholesky))


# --- slogdet: sign and log|det| from a's LU ----------------------------------------------------
def _slogdet_abstract_eval(a, lu, pivots):
    _check_float("slogdet", a, lu)
    _check_square("slogdet", a)
    _check_factors("slogdet", a, lu, pivots)
    scalar = TensorType(a.shape[:-2], a.dtype)
    return [scalar, scalar]


def _slogdet_impl(a, lu, pivots):
    """``a`` is not read (it may be None). det a = (-1)^(swaps) * prod(diag lu); an exact
    zero on the diagonal (getrf's info > 0) gives NumPy's 0 and -inf."""
    n = lu.shape[-1]
    diagonal = np.diagonal(lu, axis1=-2, axis2=-1)
    swaps = np.sum(pivots != np.arange(n, dtype=_PIVOT), axis=-1)
    singular = np.any(diagonal == 0, axis=-1)
    sign = np.where(swaps % 2 == 1, -1, 1) * np.prod(np.sign(diagonal), axis=-1)
    with np.errstate(divide="ignore"):
        logabs = np.sum(np.log(np.abs(diagonal)), axis=-1)
    sign, logabs = np.where(singular, 0, sign), np.where(singular, -np.inf, logabs)
    return [np.asarray(sign, lu.dtype), np.asarray(logabs, lu.dtype)]


slogdet = Primitive("slogdet", "contraction", abstract_eval=_slogdet_abstract_eval,
                    impl=_slogdet_impl, multiple_results=True)
slogdet.def_batch(B.leading_batch_rule(slogdet))  # (an unbatched matrix's factors broadcast)


# --- eigh[lower, compute_v]: a = v diag(w) v^T, eigenvalues ascending -----------------------------
def _eigh_abstract_eval(a, *, lower, compute_v):
    _check_float("eigh", a)
    _check_square("eigh", a)
    w = TensorType(a.shape[:-1], a.dtype)
    return [w, TensorType(a.shape, a.dtype)] if compute_v else [w]


def _eigh_impl(a, *, lower, compute_v):
    uplo = "L" if lower else "U"
    if not compute_v:  # (LAPACK's syevd with jobz='N': no vectors computed)
        return [np.linalg.eigvalsh(a, UPLO=uplo).astype(a.dtype, copy=False)]
    w, v = np.linalg.eigh(a, UPLO=uplo)
    return [w.astype(a.dtype, copy=False), v.astype(a.dtype, copy=False)]


eigh = Primitive("eigh", "contraction", abstract_eval=_eigh_abstract_eval, impl=_eigh_impl,
                 multiple_results=True)
eigh.def_batch(B.leading_batch_rule(eigh))


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
svd.def_batch(B.leading_batch_rule(svd))


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
qr.def_batch(B.leading_batch_rule(qr))


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


def _lu_factor_vjp(ct, a, *, out):
    raise NotImplementedError(
        "lu_factor: its results are the factorisation that lu_solve and slogdet read; they are "
        "not differentiated as values (derivatives go through the matrix those equations take "
        "as well, primitives/linalg.py)")


def _lu_factor_jvp(primals, tangents):
    lu, pivots = lu_factor.bind(*primals)
    # NaN: the factors' tangents are never computed (their readers take the matrix's tangent),
    # and a computation that used them as numbers would show it.
    return [lu, pivots], [A.full_like(lu, np.nan), None]


def _op(x, transpose):
    return mT(x) if transpose else x


def _lu_solve_vjp(ct, a, lu, pivots, b, *, out, transpose, check, needed):
    # The transposed solve with the same factors; then op(a)'s cotangent -ct_b x^T.
    ct_b = lu_solve.bind(a, lu, pivots, ct, transpose=not transpose, check=check)
    ct_a = None
    if needed[0]:
        ct_a = A.neg(mm(out, mT(ct_b)) if transpose else mm(ct_b, mT(out)))
    return [ct_a, None, None, ct_b if needed[3] else None]


def _lu_solve_jvp(primals, tangents, out, *, transpose, check):
    (a, lu, pivots, b), (ta, _, _, tb) = primals, tangents
    if ta is None and tb is None:  # (only the factors' tangents: zero by definition)
        return A.zeros_like(out)
    rhs = tb if tb is not None else A.zeros_like(b)
    if ta is not None:
        rhs = A.sub(rhs, mm(_op(ta, transpose), out))
    return lu_solve.bind(a, lu, pivots, rhs, transpose=transpose, check=check)


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


def _slogdet_vjp(ct, a, lu, pivots, *, out):
    _, ct_log = ct
    if ct_log is None:
        return [None, None, None]
    # a^-T from the forward's factors; unchecked: NaN at a singular matrix, not an error.
    inv_t = lu_solve.bind(a, lu, pivots, eye_like(a, a.shape[-1]), transpose=True, check=False)
    nd = len(a.shape)
    return [A.mul(inv_t, A.broadcast_back(ct_log, a.shape, (nd - 2, nd - 1))), None, None]


def _slogdet_jvp(primals, tangents):
    (a, lu, pivots), (ta, _, _) = primals, tangents
    sign, logabs = slogdet.bind(a, lu, pivots)
    if ta is None:
        return [sign, logabs], [None, None]
    d_logabs = diag_sum(lu_solve.bind(a, lu, pivots, ta, transpose=False, check=False))
    return [sign, logabs], [None, d_logabs]


def diag_sum(x):
    return A.reduce_sum(diag_part(x), (len(x.shape) - 2,))


def _eigh_vjp(ct, a, *, out, lower, compute_v):
    if compute_v:
        (ct_w, ct_v), (w, v) = ct, out
    else:  # values only: the vectors are computed now, for the derivative alone
        (ct_w,), ct_v = ct, None
        w, v = eigh.bind(a, lower=lower, compute_v=True)
    inner = diag_embed(ct_w) if ct_w is not None else None
    if ct_v is not None:
        f = A.mul(_gap_inverse(w, v.shape), mm(mT(v), ct_v))
        inner = f if inner is None else A.add(inner, f)
    return [sym(mm(v, mm(inner, mT(v))))]


def _eigh_jvp(primals, tangents, *, lower, compute_v):
    (a,), (t,) = primals, tangents
    w, v = eigh.bind(a, lower=lower, compute_v=True)
    p = mm(mT(v), mm(sym(t), v))
    if not compute_v:  # (one decomposition: the tangent needs the vectors anyway)
        return [w], [diag_part(p)]
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


lu_factor.def_ad(_lu_factor_vjp, _lu_factor_jvp)
lu_solve.def_ad(_lu_solve_vjp, _lu_solve_jvp, takes_needed=True)
triangular_solve.def_ad(_triangular_solve_vjp, _triangular_solve_jvp, takes_needed=True)
cholesky.def_ad(_cholesky_vjp, _cholesky_jvp)
slogdet.def_ad(_slogdet_vjp, _slogdet_jvp)
eigh.def_ad(_eigh_vjp, _eigh_jvp)
svd.def_ad(_svd_vjp, _svd_jvp)
qr.def_ad(_qr_vjp, _qr_jvp)

# The primitives of this module: what backends lower as linear algebra (LAPACK calls on
# numba_cpu, a refusal naming them on CUDA).
PRIMITIVES = ("lu_factor", "lu_solve", "triangular_solve", "cholesky", "slogdet", "eigh", "svd",
              "qr")
