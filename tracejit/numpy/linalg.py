"""``tracejit.numpy.linalg``: NumPy's ``numpy.linalg`` on traced arrays.

Factorisations and solves are primitives (``tracejit/primitives/linalg.py``: ``lu_factor``,
``lu_solve``, ``triangular_solve``, ``cholesky``, ``slogdet``, ``eigh``, ``svd``, ``qr``);
everything else is a composition of them, written so that its derivative is the primitives'
(``solve`` is ``lu_factor`` then ``lu_solve``, whose derivatives solve with the same factors;
``inv`` is a solve against the identity, ``det`` is ``sign * exp(logabsdet)`` with ``slogdet``
read off the LU, ``pinv`` and ``lstsq`` go through the SVD, the matrix 2-norms through singular
values). NumPy's conventions hold: the last two axes are the matrix and leading axes a batch,
integers are computed in float64, float32 stays float32, float16 is refused, and bad input
raises NumPy's ``LinAlgError`` with its message (with the user's line). Conventions of the
derivatives: ``docs/linalg.md``.

>>> import numpy as np, tracejit
>>> a = np.array([[4.0, 1.0], [1.0, 3.0]])
>>> g = tracejit.grad(lambda m: np.linalg.slogdet(m)[1])(a)
>>> bool(np.allclose(g, np.linalg.inv(a).T))
True
"""
from __future__ import annotations

import numpy as np

from ..primitives import elementwise as E
from ..primitives import linalg as L
from . import _prims as P
from ._dispatch import implements
from .contractions import matmul, outer, promote_pair, tensordot, vdot  # noqa: F401  (NumPy's)
from .manipulation import diagonal as _diagonal, moveaxis, swapaxes, trace as _trace
from .reductions import any_, max_, min_, normalize_axis, sqrt_of_squares, sum_
from .ufuncs import (absolute, divide, exp, greater, isnan, logical_and, logical_not,
                     multiply, not_equal, power, subtract, where)

LinAlgError = np.linalg.LinAlgError


def _result_class(name):
    """NumPy's named-tuple result type (``EighResult``...), where this NumPy has it."""
    try:
        from numpy.linalg import _linalg
    except ImportError:  # (NumPy 1.x: plain tuples)
        return None
    return getattr(_linalg, name, None)


_EighResult = _result_class("EighResult")
_QRResult = _result_class("QRResult")
_SlogdetResult = _result_class("SlogdetResult")
_SVDResult = _result_class("SVDResult")


def _named(cls, *items):
    """NumPy's named tuple ``cls`` of ``items`` (a plain tuple where this NumPy has none)."""
    return items if cls is None else cls(*items)


# --- operands: NumPy's dtype and shape rules ---------------------------------------------------
def _float_dtype(dtype) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype == np.float16:
        raise P.user_error(TypeError, "array type float16 is unsupported in linalg")
    if dtype.kind == "c":
        raise P.user_error(NotImplementedError,
                           "tracejit.numpy.linalg supports real (float32, float64) arrays only")
    return dtype if dtype.kind == "f" else np.dtype(np.float64)


def _operand(x):
    t = P.lift(x)
    return P.convert(t, _float_dtype(t.dtype))


def _pair(a, b):
    x, y = promote_pair(a, b)
    dtype = _float_dtype(x.dtype)
    return P.convert(x, dtype), P.convert(y, dtype)


def _at_least_2d(t):
    if t.ndim < 2:
        raise P.user_error(LinAlgError, f"{t.ndim}-dimensional array given. Array must be at "
                                        "least two-dimensional")


def _square(t):
    _at_least_2d(t)
    if t.shape[-1] != t.shape[-2]:
        raise P.user_error(LinAlgError, "Last 2 dimensions of the array must be square")


def _mT(t):
    return L.mT(t)


def _eye(n, dtype, batch, trace):
    shape = tuple(batch) + (n, n)
    same = E.eq.bind(P.iota(shape, np.int64, len(batch), trace),
                     P.iota(shape, np.int64, len(batch) + 1, trace))
    return P.convert(same, dtype)


# --- solves and inverses: one LU per matrix ------------------------------------------------------
def _lu(x):
    """x's LU factors, for ``lu_solve`` and ``slogdet`` (which take x as well)."""
    lu, pivots = L.lu_factor.bind(x)
    return lu, pivots


def _lu_solve(x, y, batch, check=True):
    """x^-1 y for x factored at its own batch shape and y at ``batch`` (the broadcast one): the
    factorisation is done once per matrix of x, and its factors broadcast with it."""
    lu, pivots = _lu(x)
    matrices = batch + x.shape[-2:]
    x, lu = P.broadcast_to(x, matrices), P.broadcast_to(lu, matrices)
    pivots = P.broadcast_to(pivots, batch + pivots.shape[-1:])
    return L.lu_solve.bind(x, lu, pivots, y, transpose=False, check=check)


@implements(np.linalg.solve)
def solve(a, b):
    x, y = _pair(a, b)
    _square(x)
    n = x.shape[-1]
    if y.ndim == 1:  # NumPy 2: a 1-D b is one vector, for every matrix of the stack
        if y.shape[0] != n:
            raise P.user_error(ValueError, (
                f"solve1: Input operand 1 has a mismatch in its core dimension 0, with gufunc "
                f"signature (m,m),(m)->(m) (size {y.shape[0]} is different from {n})"))
        batch = x.shape[:-2]
        column = P.broadcast_to(P.reshape(y, (n, 1)), batch + (n, 1))
        return P.reshape(_lu_solve(x, column, batch), batch + (n,))
    if y.shape[-2] != n:
        raise P.user_error(ValueError, (
            f"solve: Input operand 1 has a mismatch in its core dimension 0, with gufunc "
            f"signature (m,m),(m,n)->(m,n) (size {y.shape[-2]} is different from {n})"))
    batch = P.broadcast_shapes(x.shape[:-2], y.shape[:-2])
    return _lu_solve(x, P.broadcast_to(y, batch + y.shape[-2:]), batch)


def solve_triangular(a, b, *, lower=False, trans=0):
    """``op(a) x = b`` with ``a`` triangular (only its ``lower`` or upper triangle is read),
    ``op`` the transpose when ``trans`` is 1 or ``"T"``: SciPy's ``solve_triangular``
    (a subset of its arguments; NumPy has no such function). Batched like ``solve``; a 1-D
    ``b`` is one vector. Not a NumPy name: reach it as ``tracejit.numpy.linalg``'s.

    >>> import numpy as np, tracejit.numpy as tnp
    >>> tnp.linalg.solve_triangular(np.array([[2.0, 0.0], [1.0, 1.0]]), np.array([2.0, 3.0]),
    ...                             lower=True)
    array([1., 2.])
    """
    if trans not in (0, 1, "N", "T"):
        raise P.user_error(ValueError, f"trans must be 0, 1, 'N' or 'T', got {trans!r}")
    transpose_a = trans in (1, "T")
    if not P.any_traced((a, b)):
        x, y = np.asarray(a), np.asarray(b)
        dtype = np.result_type(x.dtype, y.dtype, np.float64 if x.dtype.kind != "f" else x.dtype)
        if x.ndim < 2 or x.shape[-1] != x.shape[-2]:
            raise LinAlgError("Last 2 dimensions of the array must be square")
        y2 = y[..., None] if y.ndim == 1 else y
        x = np.broadcast_to(x, np.broadcast_shapes(x.shape[:-2], y2.shape[:-2]) + x.shape[-2:])
        y2 = np.broadcast_to(y2, x.shape[:-2] + y2.shape[-2:])
        out = L.triangular_solve.impl(x.astype(dtype), y2.astype(dtype), lower=bool(lower),
                                      transpose_a=transpose_a)
        return out[..., 0] if y.ndim == 1 else out
    x, y = _pair(a, b)
    _square(x)
    n = x.shape[-1]
    vector = y.ndim == 1
    y2 = P.reshape(y, (n, 1)) if vector else y
    if y2.ndim < 2 or y2.shape[-2] != n:
        raise P.user_error(ValueError, f"solve_triangular: right-hand side of shape "
                                       f"{P.shape_str(y.shape)} does not match a matrix of "
                                       f"size {n}")
    batch = P.broadcast_shapes(x.shape[:-2], y2.shape[:-2])
    x = P.broadcast_to(x, batch + x.shape[-2:])
    y2 = P.broadcast_to(y2, batch + y2.shape[-2:])
    out = L.triangular_solve.bind(x, y2, lower=bool(lower), transpose_a=transpose_a)
    return P.reshape(out, batch + (n,)) if vector else out


@implements(np.linalg.inv)
def inv(a):
    x = _operand(a)
    _square(x)
    # A solve against the identity: its derivative, -inv ct inv^T, comes from lu_solve's rules.
    return _lu_solve(x, _eye(x.shape[-1], x.dtype, x.shape[:-2], x._trace), x.shape[:-2])


@implements(np.linalg.slogdet)
def slogdet(a):
    x = _operand(a)
    _square(x)
    sign, logabsdet = L.slogdet.bind(x, *_lu(x))
    return _named(_SlogdetResult, sign, logabsdet)


@implements(np.linalg.det)
def det(a):
    x = _operand(a)
    _square(x)
    # sign * exp(log|det|): the derivative det * inv^T through slogdet's rule (NaN at a
    # singular matrix, where log|det| is -inf).
    sign, logabsdet = L.slogdet.bind(x, *_lu(x))
    return multiply(sign, exp(logabsdet))


@implements(np.linalg.matrix_power)
def matrix_power(a, n):
    x = P.lift(a)
    _square(x)
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool):
        raise P.user_error(TypeError, "exponent must be an integer")
    n = int(n)
    if n == 0:
        return _eye(x.shape[-1], x.dtype, x.shape[:-2], x._trace)
    if n < 0:
        x, n = inv(x), -n
    result, power_ = None, x
    while n:  # binary powering: about 2 log2(n) products
        if n & 1:
            result = power_ if result is None else matmul(result, power_)
        n >>= 1
        if n:
            power_ = matmul(power_, power_)
    return result


@implements(np.linalg.multi_dot)
def multi_dot(arrays, *, out=None):
    if out is not None:
        raise P.user_error(NotImplementedError, "multi_dot(out=...) is not supported")
    ts = [P.lift(a) for a in arrays]
    if len(ts) < 2:
        raise P.user_error(ValueError, "Expecting at least two arrays.")
    first_vector, last_vector = ts[0].ndim == 1, ts[-1].ndim == 1
    if first_vector:
        ts[0] = P.reshape(ts[0], (1,) + ts[0].shape)
    if last_vector:
        ts[-1] = P.reshape(ts[-1], ts[-1].shape + (1,))
    for t in ts:
        if t.ndim != 2:
            raise P.user_error(LinAlgError, f"{t.ndim}-dimensional array given. Array must be "
                                            "two-dimensional")
    dims = [ts[0].shape[0]] + [t.shape[1] for t in ts]
    order = _chain_order(dims)

    def product(i, j):
        if i == j:
            return ts[i]
        k = order[i][j]
        return matmul(product(i, k), product(k + 1, j))

    result = product(0, len(ts) - 1)
    if first_vector and last_vector:
        return P.reshape(result, ())
    if first_vector:
        return P.reshape(result, result.shape[1:])
    if last_vector:
        return P.reshape(result, result.shape[:1])
    return result


def _chain_order(dims):
    """The cheapest parenthesisation of a matrix chain (the textbook dynamic programme): split
    points ``order[i][j]``; the shapes are static, so this runs while tracing."""
    n = len(dims) - 1
    cost = [[0] * n for _ in range(n)]
    order = [[0] * n for _ in range(n)]
    for length in range(1, n):
        for i in range(n - length):
            j = i + length
            cost[i][j] = None
            for k in range(i, j):
                c = cost[i][k] + cost[k + 1][j] + dims[i] * dims[k + 1] * dims[j + 1]
                if cost[i][j] is None or c < cost[i][j]:
                    cost[i][j], order[i][j] = c, k
    return order


# --- factorisations ----------------------------------------------------------------------------
@implements(np.linalg.cholesky)
def cholesky(a, /, *, upper=False):
    x = _operand(a)
    _square(x)
    if upper:  # (NumPy reads the upper triangle then: the lower one of the transpose)
        return _mT(L.cholesky.bind(_mT(x)))
    return L.cholesky.bind(x)


def _uplo(UPLO):  # noqa: N803  (NumPy's name)
    if UPLO not in ("L", "U"):
        raise P.user_error(ValueError, "UPLO argument must be 'L' or 'U'")
    return UPLO == "L"


@implements(np.linalg.eigh)
def eigh(a, UPLO="L"):  # noqa: N803
    x = _operand(a)
    _square(x)
    w, v = L.eigh.bind(x, lower=_uplo(UPLO), compute_v=True)
    return _named(_EighResult, w, v)


@implements(np.linalg.eigvalsh)
def eigvalsh(a, UPLO="L"):  # noqa: N803
    x = _operand(a)
    _square(x)
    # Values only (LAPACK computes no vectors); differentiating computes them (docs/linalg.md).
    return L.eigh.bind(x, lower=_uplo(UPLO), compute_v=False)[0]


@implements(np.linalg.svd)
def svd(a, full_matrices=True, compute_uv=True, hermitian=False):
    # hermitian=True: NumPy then takes the SVD from eigh; the singular values agree, the signs
    # of the singular vectors may differ (any SVD is a valid result).
    x = _operand(a)
    _at_least_2d(x)
    if not compute_uv:
        return L.svd.bind(x, full_matrices=False, compute_uv=False)[0]
    u, s, vh = L.svd.bind(x, full_matrices=bool(full_matrices), compute_uv=True)
    return _named(_SVDResult, u, s, vh)


if hasattr(np.linalg, "svdvals"):
    @implements(np.linalg.svdvals)
    def svdvals(x, /):
        t = _operand(x)
        _at_least_2d(t)
        return L.svd.bind(t, full_matrices=False, compute_uv=False)[0]


@implements(np.linalg.qr)
def qr(a, mode="reduced"):
    x = _operand(a)
    _at_least_2d(x)
    if mode not in ("reduced", "complete", "r"):
        raise P.user_error(NotImplementedError if mode in ("raw", "full", "economic") else
                           ValueError, f"qr mode {mode!r} is not supported by tracejit "
                                       "(use 'reduced', 'complete' or 'r')")
    q, r = L.qr.bind(x, complete=mode == "complete")
    return r if mode == "r" else _named(_QRResult, q, r)


# --- through the SVD -----------------------------------------------------------------------------
@implements(np.linalg.pinv)
def pinv(a, rcond=None, hermitian=False, *, rtol=np._NoValue):
    x = _operand(a)
    _at_least_2d(x)
    if rcond is None:
        if rtol is np._NoValue:
            rcond = 1e-15
        elif rtol is None:
            rcond = max(x.shape[-2:]) * np.finfo(x.dtype).eps
        else:
            rcond = rtol
    elif rtol is not np._NoValue:
        raise P.user_error(ValueError, "`rtol` and `rcond` can't be both set.")
    if P.is_traced(rcond):
        raise P.user_error(NotImplementedError, "pinv: a traced rcond is not supported")
    return _pinv(x, rcond)


def _pinv(x, rcond):
    m, n = x.shape[-2:]
    if m == 0 or n == 0:
        return P.full(x.shape[:-2] + (n, m), 0, x.dtype, x._trace)
    u, s, vh = L.svd.bind(x, full_matrices=False, compute_uv=True)
    cutoff = multiply(max_(s, axis=-1, keepdims=True), np.asarray(rcond, x.dtype))
    large = greater(s, cutoff)
    # 1/s where kept, 0 elsewhere: the division reads a safe 1 where s is cut off, so neither
    # the value nor the derivative sees 1/0.
    safe = where(large, s, P.full(s.shape, 1, s.dtype, s._trace))
    s_inv = where(large, divide(P.full(s.shape, 1, s.dtype, s._trace), safe),
                  P.full(s.shape, 0, s.dtype, s._trace))
    scaled_ut = multiply(L.cols(s_inv, s.shape + (m,)), _mT(u))  # diag(1/s) u^T
    return matmul(_mT(vh), scaled_ut)


@implements(np.linalg.lstsq)
def lstsq(a, b, rcond=None):
    """x, residuals, rank, s as NumPy. The residuals (squared 2-norm of each column of
    ``b - a @ x``; shape (1,) for a 1-D b) are empty, shape (0,), when a has no more rows than
    columns, as NumPy's. When a has more rows, NumPy's also depend on the rank (empty where a is
    rank deficient); a compiled function's shapes are fixed while tracing, so tracejit keeps the
    shape and gives NaN residuals where NumPy gives none (docs/linalg.md)."""
    x, y = _pair(a, b)
    if x.ndim != 2:
        raise P.user_error(LinAlgError, f"{x.ndim}-dimensional array given. Array must be "
                                        "two-dimensional")
    vector = y.ndim == 1
    y2 = P.reshape(y, y.shape + (1,)) if vector else y
    if y2.ndim != 2:
        raise P.user_error(LinAlgError, f"{y.ndim}-dimensional array given. Array must be one "
                                        "or two-dimensional")
    m, n = x.shape
    if y2.shape[0] != m:
        raise P.user_error(LinAlgError, "Incompatible dimensions")
    if rcond is None:
        rcond = np.finfo(x.dtype).eps * max(m, n)
    solution = matmul(_pinv(x, rcond), y2)
    s = L.svd.bind(x, full_matrices=False, compute_uv=False)[0] if min(m, n) else \
        P.full((0,), 0, x.dtype, x._trace)
    rank = P.convert(_rank(s, x.dtype, rcond), np.int32)  # (NumPy: LAPACK's int)
    if m > n:
        r = subtract(matmul(x, solution), y2)
        residuals = sum_(multiply(r, r), axis=0)
        full_rank = P.broadcast_to(E.eq.bind(rank, P.full((), n, np.int32, x._trace)),
                                   residuals.shape)
        residuals = where(full_rank, residuals, P.full(residuals.shape, np.nan, x.dtype, x._trace))
    else:
        residuals = P.full((0,), 0, x.dtype, x._trace)
    if vector:
        solution = P.reshape(solution, (n,))
    return solution, residuals, rank, s


def _rank(s, dtype, rtol):
    if s.shape[-1] == 0:
        return P.full(s.shape[:-1], 0, np.int64, s._trace)
    tol = multiply(max_(s, axis=-1, keepdims=True), np.asarray(rtol, dtype))
    return sum_(P.convert(greater(s, tol), np.int64), axis=-1)


@implements(np.linalg.matrix_rank)
def matrix_rank(A, tol=None, hermitian=False, *, rtol=None):  # noqa: N803  (NumPy's name)
    x = _operand(A)
    if x.ndim < 2:
        return P.convert(P.reduce("max", P.convert(not_equal(x, 0), np.int64),
                                  tuple(range(x.ndim))), np.int64) if x.ndim else \
            P.convert(not_equal(x, 0), np.int64)
    s = L.svd.bind(x, full_matrices=False, compute_uv=False)[0]
    if tol is not None:
        if s.shape[-1] == 0:
            return P.full(s.shape[:-1], 0, np.int64, s._trace)
        limit = P.lift(np.asarray(tol, x.dtype)) if not P.is_traced(tol) else tol
        limit = P.reshape(limit, limit.shape + (1,))
        return sum_(P.convert(greater(s, limit), np.int64), axis=-1)
    if rtol is None:
        rtol = max(x.shape[-2:]) * np.finfo(x.dtype).eps
    return _rank(s, x.dtype, rtol)


@implements(np.linalg.cond)
def cond(x, p=None):
    """The condition number, as NumPy: p None, 2, -2 a ratio of singular values; other orders
    ``norm(x) * norm(inv(x))`` with an inverse that gives NaN instead of raising for a singular
    matrix. NaN results become inf, unless the matrix holds a NaN."""
    t = _operand(x)
    _at_least_2d(t)
    if t.size == 0 and t.shape[-2] * t.shape[-1] == 0:
        raise P.user_error(LinAlgError, "cond is not defined on empty arrays")
    if p in (None, 2, -2):
        s = L.svd.bind(t, full_matrices=False, compute_uv=False)[0]
        largest, smallest = max_(s, axis=-1), min_(s, axis=-1)
        top, bottom = (smallest, largest) if p == -2 else (largest, smallest)
        # x / 0 is inf or NaN, which becomes inf below: inf at once, without NumPy's warning
        # (np.linalg.cond silences it) and with no 1/0 in the derivative.
        zero = E.eq.bind(bottom, P.full(bottom.shape, 0, bottom.dtype, bottom._trace))
        safe = where(zero, P.full(bottom.shape, 1, bottom.dtype, bottom._trace), bottom)
        r = where(zero, P.full(bottom.shape, np.inf, bottom.dtype, bottom._trace),
                  divide(top, safe))
    else:
        _square(t)
        inverse = _lu_solve(t, _eye(t.shape[-1], t.dtype, t.shape[:-2], t._trace),
                            t.shape[:-2], check=False)
        r = multiply(norm(t, p, axis=(-2, -1)), norm(inverse, p, axis=(-2, -1)))
    to_inf = logical_and(isnan(r), logical_not(any_(isnan(t), axis=(-2, -1))))
    return where(to_inf, P.full(r.shape, np.inf, r.dtype, r._trace), r)


@implements(np.linalg.tensorsolve)
def tensorsolve(a, b, axes=None):
    x, y = _pair(a, b)
    if axes is not None:
        axes = [ax % x.ndim for ax in axes]
        rest = [d for d in range(x.ndim) if d not in axes]
        x = P.transpose(x, rest + axes)
    unknowns = x.shape[y.ndim:]
    size = int(np.prod(unknowns, dtype=np.int64))
    if int(np.prod(x.shape[:y.ndim], dtype=np.int64)) != size or y.size != size:
        raise P.user_error(LinAlgError, "Input arrays must satisfy the requirement "
                                        "prod(a.shape[b.ndim:]) == prod(a.shape[:b.ndim])")
    solution = solve(P.reshape(x, (size, size)), P.reshape(y, (size,)))
    return P.reshape(solution, unknowns)


@implements(np.linalg.tensorinv)
def tensorinv(a, ind=2):
    x = _operand(a)
    if not isinstance(ind, int) or ind <= 0:
        raise P.user_error(ValueError, "Invalid ind argument.")
    first, last = x.shape[:ind], x.shape[ind:]
    rows = int(np.prod(first, dtype=np.int64))
    if rows != int(np.prod(last, dtype=np.int64)):
        raise P.user_error(LinAlgError, "Last 2 dimensions of the array must be square")
    return P.reshape(inv(P.reshape(x, (rows, rows))), last + first)


# --- norms ---------------------------------------------------------------------------------------
@implements(np.linalg.norm)
def norm(x, ord=None, axis=None, keepdims=False):  # noqa: A002  (NumPy's name)
    t = P.lift(x)
    if t.dtype.kind != "f":
        t = P.convert(t, np.float64)
    if axis is None and ord is None:
        r = sqrt_of_squares(sum_(multiply(t, t)))
        return P.reshape(r, (1,) * t.ndim) if keepdims else r
    if axis is None:
        axis = tuple(range(t.ndim))
    axes = normalize_axis(axis, t.ndim)
    if len(axes) == 1:
        r = _vector_norm(t, ord, axes[0])
    elif len(axes) == 2:
        r = _matrix_norm(t, ord, axis if isinstance(axis, tuple) else tuple(axes))
    else:
        raise P.user_error(ValueError, "Improper number of dimensions to norm.")
    if keepdims:
        r = P.reshape(r, tuple(1 if i in axes else n for i, n in enumerate(t.shape)))
    return r


def _vector_norm(t, ord, axis):  # noqa: A002
    if ord is None or ord == 2:
        return sqrt_of_squares(sum_(multiply(t, t), axis=axis))
    if ord == np.inf:
        return max_(absolute(t), axis=axis)
    if ord == -np.inf:
        return min_(absolute(t), axis=axis)
    if ord == 0:
        return sum_(P.convert(not_equal(t, 0), t.dtype), axis=axis)
    if ord == 1:
        return sum_(absolute(t), axis=axis)
    if isinstance(ord, str):
        raise P.user_error(ValueError, f"Invalid norm order '{ord}' for vectors")
    return power(sum_(power(absolute(t), ord), axis=axis), 1.0 / ord)


def _matrix_norm(t, ord, axis):  # noqa: A002
    row, col = (a % t.ndim for a in axis)
    if row == col:
        raise P.user_error(ValueError, "Duplicate axes given.")
    if ord is None or ord == "fro":
        return sqrt_of_squares(sum_(multiply(t, t), axis=(row, col)))
    if ord in (1, -1, np.inf, -np.inf):
        # 1: largest column sum (sum over rows); inf: largest row sum (sum over columns).
        summed, other = (row, col) if ord in (1, -1) else (col, row)
        sums = sum_(absolute(t), axis=summed)
        other -= 1 if other > summed else 0
        return max_(sums, axis=other) if ord > 0 else min_(sums, axis=other)
    if ord in (2, -2, "nuc"):
        if t.dtype == np.float16:
            t = P.convert(t, np.float32)
        s = L.svd.bind(moveaxis(t, (row, col), (-2, -1)), full_matrices=False,
                       compute_uv=False)[0]
        if ord == 2:
            return max_(s, axis=-1)
        if ord == -2:
            return min_(s, axis=-1)
        return sum_(s, axis=-1)
    raise P.user_error(ValueError, "Invalid norm order for matrices.")


if hasattr(np.linalg, "matrix_norm"):
    @implements(np.linalg.matrix_norm)
    def matrix_norm(x, /, *, keepdims=False, ord="fro"):  # noqa: A002
        return norm(x, ord=ord, axis=(-2, -1), keepdims=keepdims)

    @implements(np.linalg.vector_norm)
    def vector_norm(x, /, *, axis=None, keepdims=False, ord=2):  # noqa: A002
        t = P.lift(x)
        if axis is None:
            r = norm(P.reshape(t, (t.size,)), ord=ord, axis=0)
            return P.reshape(r, (1,) * t.ndim) if keepdims else r
        if isinstance(axis, tuple) and len(axis) > 1:
            # Several axes: one vector per position of the others (NumPy moves them last).
            axes = normalize_axis(axis, t.ndim)
            rest = [d for d in range(t.ndim) if d not in axes]
            moved = P.transpose(t, rest + list(axes))
            size = int(np.prod([t.shape[d] for d in axes], dtype=np.int64))
            flat = P.reshape(moved, tuple(t.shape[d] for d in rest) + (size,))
            r = norm(flat, ord=ord, axis=-1)
            if keepdims:
                r = P.reshape(r, tuple(1 if d in axes else n for d, n in enumerate(t.shape)))
            return r
        return norm(t, ord=ord, axis=axis, keepdims=keepdims)

    @implements(np.linalg.matrix_transpose)
    def matrix_transpose(x, /):
        t = P.lift(x)
        if t.ndim < 2:
            raise P.user_error(ValueError, "Input array must be at least 2-dimensional")
        return swapaxes(t, -1, -2)

    @implements(np.linalg.trace)
    def trace(x, /, *, offset=0, dtype=None):
        return _trace(x, offset, -2, -1, dtype)

    @implements(np.linalg.diagonal)
    def diagonal(x, /, *, offset=0):
        return _diagonal(x, offset, -2, -1)
