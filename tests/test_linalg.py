"""numpy.linalg on traced arrays: values against NumPy, derivatives against finite differences.

NumPy is the oracle for values, shapes and dtypes (stacked and 1x1 matrices, float32 and
float64, integers computed in float64), with tolerances scaled by the condition number for
ill-conditioned cases; ``check_grads`` (order 2, both modes) for every function's derivative;
NumPy's ``LinAlgError`` for singular and non-positive-definite input, from compiled code too.
Eigen- and singular vectors are compared after fixing their signs (any sign is a valid result).

numba_cpu compiles one function with every form per dtype (tests share it through a
module-scoped fixture), and gradients are compiled once as one scalar loss.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp
from tracejit import check_grads
from tracejit.backends import glue

NUMBA = "numba_cpu" in os.environ.get("TRACEJIT_TEST_BACKENDS", "interpreter,numba_cpu")
needs_numba = pytest.mark.skipif(not NUMBA, reason="numba_cpu not among the tested backends")
LinAlgError = np.linalg.LinAlgError
TOL = {np.dtype(np.float32): 2e-4, np.dtype(np.float64): 1e-10}


def general(rng, shape, dtype=np.float64):
    """Well conditioned: a random matrix plus n on the diagonal."""
    n = shape[-1]
    return (rng.normal(size=shape) + n * np.eye(n)).astype(dtype)


def spd(rng, shape, dtype=np.float64):
    x = rng.normal(size=shape)
    return (x @ np.swapaxes(x, -1, -2) + shape[-1] * np.eye(shape[-1])).astype(dtype)


def fix_signs(vectors, partner=None):
    """Eigen/singular vectors (columns) with the sign making each column's largest entry
    positive; ``partner`` (vh rows) flipped with them. Written with operations tracejit traces,
    so compiled functions normalise their own results the same way."""
    idx = np.argmax(np.abs(vectors), axis=-2)
    hit = np.arange(vectors.shape[-2])[:, None] == idx[..., None, :]
    pick = np.sum(np.where(hit, vectors, 0), axis=-2, keepdims=True)
    signs = np.where(pick < 0, -1.0, 1.0).astype(vectors.dtype)
    if partner is None:
        return vectors * signs
    return vectors * signs, partner * np.swapaxes(signs, -1, -2)


def as_tuple(result):
    return tuple(result) if isinstance(result, tuple) else (result,)


def close(actual, expected, tol, scale=1.0):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    if expected.dtype.kind == "f":
        atol = tol * scale * max(1.0, float(np.abs(expected).max(initial=0.0)))
        np.testing.assert_allclose(actual, expected, rtol=tol * scale, atol=atol)
    else:
        np.testing.assert_array_equal(actual, expected)


# --- the table: (name, function, inputs maker) ---------------------------------------------------
def _eigh(a):
    w, v = np.linalg.eigh(a)
    return w, fix_signs(v)


def _eigh_upper(a):
    w, v = np.linalg.eigh(a, UPLO="U")
    return w, fix_signs(v)


def _svd(a, full=False):
    u, s, vh = np.linalg.svd(a, full_matrices=full)
    u, vh = fix_signs(u, vh)
    return u, s, vh


def _qr(a):
    q, r = np.linalg.qr(a)
    return q, r


CASES = [
    ("solve", lambda a, b: np.linalg.solve(a, b), "general,rhs"),
    ("solve_vector", lambda a, b: np.linalg.solve(a, b.reshape(-1)[:a.shape[-1]]), "general,rhs"),
    ("inv", np.linalg.inv, "general"),
    ("det", np.linalg.det, "general"),
    ("slogdet", lambda a: tuple(np.linalg.slogdet(a)), "general"),
    ("cholesky", np.linalg.cholesky, "spd"),
    ("cholesky_upper", lambda a: np.linalg.cholesky(a, upper=True), "spd"),
    ("eigh", _eigh, "spd"),
    ("eigh_upper", _eigh_upper, "spd"),
    ("eigvalsh", np.linalg.eigvalsh, "spd"),
    ("svd", _svd, "tall"),
    ("svd_wide", _svd, "wide"),
    ("svd_full", lambda a: tuple(np.abs(x) for x in np.linalg.svd(a)), "wide"),
    ("svdvals", np.linalg.svdvals, "tall"),
    ("qr", _qr, "tall"),
    ("qr_r", lambda a: np.linalg.qr(a, mode="r"), "wide"),
    ("qr_complete", lambda a: tuple(np.abs(x) for x in np.linalg.qr(a, mode="complete")), "tall"),
    ("pinv", np.linalg.pinv, "tall"),
    ("matrix_power", lambda a: np.linalg.matrix_power(a, 3), "general"),
    ("matrix_power_neg", lambda a: np.linalg.matrix_power(a, -2), "general"),
    ("matrix_power_0", lambda a: np.linalg.matrix_power(a, 0), "general"),
    ("matrix_rank", np.linalg.matrix_rank, "tall"),
    ("norm_2", lambda a: np.linalg.norm(a, 2, axis=(-2, -1)), "tall"),
    ("norm_-2", lambda a: np.linalg.norm(a, -2, axis=(-2, -1)), "tall"),
    ("norm_nuc", lambda a: np.linalg.norm(a, "nuc", axis=(-2, -1)), "wide"),
    ("matrix_norm", lambda a: np.linalg.matrix_norm(a, ord="nuc"), "tall"),
    ("vector_norm", lambda a: np.linalg.vector_norm(a, axis=(-2, -1), ord=3), "tall"),
    ("trace", lambda a: np.linalg.trace(a, offset=1), "tall"),
    ("diagonal", lambda a: np.linalg.diagonal(a), "tall"),
    ("matrix_transpose", np.linalg.matrix_transpose, "tall"),
]
SQUARE_SHAPES = [(1, 1), (3, 3), (2, 4, 4), (2, 1, 2, 2)]
SHAPES = {"general": SQUARE_SHAPES, "spd": SQUARE_SHAPES,
          "tall": [(1, 1), (4, 3), (2, 5, 2)], "wide": [(1, 2), (3, 4), (2, 2, 5)]}


def inputs(kind, shape, dtype, rng):
    first = kind.split(",")[0]
    maker = {"general": general, "spd": spd}.get(first)
    a = maker(rng, shape, dtype) if maker else rng.normal(size=shape).astype(dtype)
    if kind.endswith(",rhs"):
        return a, rng.normal(size=shape[:-1] + (2,)).astype(dtype)
    return (a,)


@pytest.mark.parametrize("name,fn,kind", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_interpreter_matches_numpy(name, fn, kind, dtype, rng):
    compiled = tracejit.compile(fn, backend="interpreter")
    for shape in SHAPES[kind.split(",")[0]]:
        args = inputs(kind, shape, dtype, rng)
        expected, actual = as_tuple(fn(*args)), as_tuple(compiled(*args))
        assert len(actual) == len(expected)
        for a, e in zip(actual, expected):
            close(a, e, TOL[np.dtype(dtype)])


def test_integer_input_computes_in_float64_and_float16_is_refused():
    a = np.array([[2, 1], [1, 3]])
    for fn in (np.linalg.inv, np.linalg.det, np.linalg.cholesky, np.linalg.eigvalsh):
        close(tracejit.compile(fn, backend="interpreter")(a), fn(a), 1e-12)
    close(tracejit.compile(lambda a, b: np.linalg.solve(a, b), backend="interpreter")(
        a, np.array([1, 2])), np.linalg.solve(a, np.array([1, 2])), 1e-12)
    with pytest.raises(TypeError, match="float16 is unsupported in linalg"):
        tracejit.make_ir(np.linalg.inv)(a.astype(np.float16))


def test_factorisations_read_the_triangle_numpy_reads(backend):
    """cholesky (lower / upper) and eigh (UPLO) of a matrix whose two triangles differ: each
    reads the triangle NumPy reads."""
    a = np.array([[4.0, 1.0, 0.2], [0.5, 3.0, -0.3], [0.1, 0.4, 2.0]])

    def factors(a):
        w_lower, v_lower = np.linalg.eigh(a)
        w_upper, v_upper = np.linalg.eigh(a, UPLO="U")
        return (np.linalg.cholesky(a), np.linalg.cholesky(a, upper=True), w_lower,
                fix_signs(v_lower), w_upper, fix_signs(v_upper))

    for got, want in zip(tracejit.compile(factors, backend=backend)(a), factors(a)):
        close(got, want, 1e-12)


def newton(a, x0):
    """Newton's method for x^3 + a x = 1 (componentwise cubes, a coupling matrix), with a
    linear solve per step inside a compiled loop."""
    def step(i, x):
        residual = x ** 3 + a @ x - 1.0
        jacobian = a + 3.0 * x[:, None] ** 2 * np.eye(x.shape[0])
        return x - np.linalg.solve(jacobian, residual)
    return tracejit.fori_loop(0, 8, step, x0)


def test_solves_inside_a_compiled_loop(backend, rng):
    a = spd(rng, (3, 3))
    x = tracejit.compile(newton, backend=backend)(a, np.zeros(3))
    close(x ** 3 + a @ x, np.ones(3), 1e-12)
    close(x, newton(a, np.zeros(3)), 1e-12)


def test_solve_broadcasts_batches_and_takes_vectors(rng):
    a, b = general(rng, (2, 1, 3, 3)), rng.normal(size=(4, 3, 2))
    f = tracejit.compile(lambda a, b, v: (np.linalg.solve(a, b), np.linalg.solve(a, v)),
                         backend="interpreter")
    v = rng.normal(size=3)
    x, y = f(a, b, v)
    close(x, np.linalg.solve(a, b), 1e-10)
    close(y, np.linalg.solve(a, v), 1e-10)


def test_multi_dot_and_lstsq_match_numpy(rng):
    a, b, c, d = (rng.normal(size=s) for s in [(5, 3), (3, 8), (8, 2), (2,)])
    v = rng.normal(size=5)
    f = tracejit.compile(lambda a, b, c, d, v: (np.linalg.multi_dot([a, b, c, d]),
                                                np.linalg.multi_dot([v, a, b]),
                                                np.linalg.multi_dot([a, b])),
                         backend="interpreter")
    for got, want in zip(f(a, b, c, d, v), (np.linalg.multi_dot([a, b, c, d]),
                                            np.linalg.multi_dot([v, a, b]), a @ b)):
        close(got, want, 1e-10)
    tall, y, y2 = rng.normal(size=(6, 3)), rng.normal(size=6), rng.normal(size=(6, 2))
    g = tracejit.compile(lambda a, y: np.linalg.lstsq(a, y), backend="interpreter")
    for rhs in (y, y2):
        for got, want in zip(g(tall, rhs), np.linalg.lstsq(tall, rhs)):
            close(np.asarray(got), np.asarray(want), 1e-10)
    wide = rng.normal(size=(3, 5))
    for got, want in zip(g(wide, y[:3]), np.linalg.lstsq(wide, y[:3])):
        close(np.asarray(got), np.asarray(want), 1e-10)


def test_cond_and_tensor_functions_match_numpy(rng):
    a = general(rng, (2, 3, 3))
    conds = tracejit.compile(lambda a: tuple(np.linalg.cond(a, p) for p in
                                             (None, 2, -2, "fro", "nuc", 1, -1, np.inf, -np.inf)),
                             backend="interpreter")
    for got, p in zip(conds(a), (None, 2, -2, "fro", "nuc", 1, -1, np.inf, -np.inf)):
        close(got, np.linalg.cond(a, p), 1e-10)
    singular = np.array([[1.0, 2.0], [2.0, 4.0]])
    assert tracejit.compile(np.linalg.cond, backend="interpreter")(singular) > 1e15
    t, y = rng.normal(size=(2, 3, 2, 3)), rng.normal(size=(2, 3))
    f = tracejit.compile(lambda t, y: (np.linalg.tensorsolve(t, y),
                                       np.linalg.tensorsolve(np.swapaxes(t, 1, 2), y,
                                                             axes=(0, 2)),
                                       np.linalg.tensorinv(t, ind=2)), backend="interpreter")
    for got, want in zip(f(t, y), (np.linalg.tensorsolve(t, y),
                                   np.linalg.tensorsolve(np.swapaxes(t, 1, 2), y, axes=(0, 2)),
                                   np.linalg.tensorinv(t, ind=2))):
        close(got, want, 1e-9)


def test_rank_deficient_input(rng):
    low = rng.normal(size=(5, 2)) @ rng.normal(size=(2, 4))
    f = tracejit.compile(lambda a: (np.linalg.matrix_rank(a), np.linalg.pinv(a),
                                    np.linalg.det(a[:4])), backend="interpreter")
    rank, p, det = f(low)
    assert rank == 2 and rank.dtype == np.linalg.matrix_rank(low).dtype
    close(p, np.linalg.pinv(low), 1e-9)
    assert abs(det) < 1e-12


def hilbert(n):
    i = np.arange(n)
    return 1.0 / (i[:, None] + i[None, :] + 1.0)


def test_ill_conditioned_but_invertible(backend):
    """Hilbert matrices (condition number 1.5e7 at n = 6): results agree with NumPy to the
    condition number times the rounding unit."""
    h, b = hilbert(6), np.arange(6.0)
    cond = np.linalg.cond(h)
    f = tracejit.compile(lambda h, b: (np.linalg.solve(h, b), np.linalg.inv(h),
                                       np.linalg.slogdet(h)[1], np.linalg.cholesky(h)),
                         backend=backend)
    scale = cond * np.finfo(np.float64).eps * 10
    for got, want in zip(f(h, b), (np.linalg.solve(h, b), np.linalg.inv(h),
                                   np.linalg.slogdet(h)[1], np.linalg.cholesky(h))):
        close(got, want, 1.0, scale)


# --- derivatives ----------------------------------------------------------------------------------
def _sym(x):
    return x + np.swapaxes(x, -1, -2)


GRAD_CASES = [
    ("solve", lambda a, b: np.linalg.solve(a, b), "general,rhs"),
    ("solve_vector", lambda a, b: np.linalg.solve(a, b.reshape(-1)[:a.shape[-1]]), "general,rhs"),
    ("solve_triangular", lambda a, b: tnp.linalg.solve_triangular(a, b, lower=True), "general,rhs"),
    ("solve_triangular_t", lambda a, b: tnp.linalg.solve_triangular(a, b, trans=1), "general,rhs"),
    ("inv", np.linalg.inv, "general"),
    ("det", np.linalg.det, "general"),
    ("slogdet", lambda a: np.linalg.slogdet(a)[1], "general"),
    # cholesky and eigh read one triangle; their rules assume a symmetric input (docs/linalg.md)
    ("cholesky", lambda x: np.linalg.cholesky(x @ np.swapaxes(x, -1, -2) + 3 * np.eye(
        x.shape[-1])), "general"),
    ("eigh", lambda x: tuple(np.linalg.eigh(_sym(x))), "general"),
    ("eigvalsh", lambda x: np.linalg.eigvalsh(_sym(x)), "general"),
    ("svd", lambda x: tuple(np.linalg.svd(x, full_matrices=False)), "tall"),
    ("svd_wide", lambda x: tuple(np.linalg.svd(x, full_matrices=False)), "wide"),
    ("svd_square_full", lambda x: tuple(np.linalg.svd(x)), "general"),
    ("svdvals", np.linalg.svdvals, "wide"),
    ("qr", lambda x: tuple(np.linalg.qr(x)), "tall"),
    ("qr_square", lambda x: tuple(np.linalg.qr(x)), "general"),
    ("pinv", np.linalg.pinv, "tall"),
    ("lstsq", lambda a, b: np.linalg.lstsq(a, b)[0], "tall,rhs"),
    ("matrix_power", lambda a: np.linalg.matrix_power(a, -3), "general"),
    ("multi_dot", lambda a: np.linalg.multi_dot([a, a.T, a]), "tall"),
    ("norm_nuc", lambda a: np.linalg.norm(a, "nuc"), "tall"),
    ("norm_2", lambda a: np.linalg.norm(a, 2), "wide"),
    ("trace", lambda a: np.linalg.trace(a), "general"),
    ("cond", np.linalg.cond, "general"),
    ("cond_inf", lambda a: np.linalg.cond(a, np.inf), "general"),
    ("tensorinv", lambda a: np.linalg.tensorinv(a[0].reshape(3, 3, 1), ind=1), "general"),
]
GRAD_SHAPES = {"general": (2, 3, 3), "tall": (4, 3), "wide": (2, 4)}


@pytest.mark.parametrize("name,fn,kind", GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
def test_gradients_order_two_both_modes(name, fn, kind, rng):
    first = kind.split(",")[0]
    shape = GRAD_SHAPES[first]
    if kind.endswith(",rhs"):
        args = (general(rng, shape) if first == "general" else rng.normal(size=shape),
                rng.normal(size=shape[:-1] + (2,)))
    else:
        args = (general(rng, shape) if first == "general" else rng.normal(size=shape),)
    check_grads(fn, args, order=2, modes=("fwd", "rev"))


def test_hessian_of_a_log_determinant(rng):
    a = spd(rng, (3, 3))
    h = tracejit.hessian(lambda x: np.linalg.slogdet(x)[1])(a)
    inv = np.linalg.inv(a)
    close(h, -np.einsum("jk,li->ijkl", inv, inv), 1e-10)  # d(a^-T)_ij / d a_kl
    f = tracejit.compile(tracejit.hessian(lambda x: np.linalg.slogdet(x)[1]),
                         backend="interpreter")
    close(f(a), h, 1e-12)


def test_degenerate_eigenvalues_give_finite_gradients_of_invariant_functions(rng):
    """At a repeated eigenvalue the eigenvector terms are dropped: functions of the eigenvalues
    (and projector-like functions) still get their exact gradient."""
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    a = q @ np.diag([1.0, 1.0, 2.0]) @ q.T
    g = tracejit.grad(lambda x: np.sum(np.linalg.eigvalsh(x) ** 2))(a)
    close(g, 2 * a, 1e-10)  # d tr(a^2) / da = 2 a^T
    g = tracejit.grad(lambda x: np.sum(np.linalg.eigh(x)[1] ** 2))(a)
    assert np.all(np.isfinite(g))


# --- errors ---------------------------------------------------------------------------------------
def _raises_at_this_file(error, match, fn, *args, backend="interpreter"):
    with pytest.raises(error, match=match) as info:
        tracejit.compile(fn, backend=backend)(*args)
    assert "test_linalg.py" in str(info.value), str(info.value)


def test_singular_and_not_positive_definite_raise_linalgerror(backend):
    singular = np.array([[1.0, 2.0], [2.0, 4.0]])
    _raises_at_this_file(LinAlgError, "Singular matrix",
                         lambda a: np.linalg.solve(a, np.ones(2)), singular, backend=backend)
    _raises_at_this_file(LinAlgError, "Singular matrix", np.linalg.inv, singular,
                         backend=backend)
    _raises_at_this_file(LinAlgError, "not positive definite", np.linalg.cholesky,
                         -np.eye(2), backend=backend)
    _raises_at_this_file(LinAlgError, "Singular matrix",
                         lambda a: tnp.linalg.solve_triangular(a, np.ones(2)),
                         np.array([[1.0, 2.0], [0.0, 0.0]]), backend=backend)
    f = tracejit.compile(lambda a: (np.linalg.det(a), *np.linalg.slogdet(a)), backend=backend)
    det, sign, logabs = f(singular)  # (no error: NumPy's 0, 0, -inf)
    assert det == 0 and sign == 0 and logabs == -np.inf


def test_non_square_and_low_rank_input_are_refused_at_the_users_line():
    for fn in (np.linalg.inv, np.linalg.det, np.linalg.cholesky, np.linalg.eigh,
               lambda a: np.linalg.solve(a, np.ones(2))):
        with pytest.raises(LinAlgError, match="Last 2 dimensions of the array must be square"
                           ) as info:
            tracejit.make_ir(fn)(np.ones((2, 3)))
        assert "test_linalg.py" in str(info.value)
    with pytest.raises(LinAlgError, match="1-dimensional array given"):
        tracejit.make_ir(np.linalg.svd)(np.ones(3))
    with pytest.raises(ValueError, match="mismatch in its core dimension"):
        tracejit.make_ir(np.linalg.solve)(np.eye(3), np.ones(2))
    with pytest.raises(ValueError, match="UPLO"):
        tracejit.make_ir(lambda a: np.linalg.eigh(a, UPLO="X"))(np.eye(2))


def test_derivatives_outside_their_domain_say_so(rng):
    a = rng.normal(size=(3, 2))
    with pytest.raises(NotImplementedError, match="full_matrices=False"):
        tracejit.grad(lambda a: np.sum(np.linalg.svd(a)[0]))(a)
    # The singular values of the default (full) SVD are differentiable; in forward mode the
    # extra singular vectors' tangents are NaN.
    values = lambda a: np.sum(np.linalg.svd(a)[1] ** 2)  # noqa: E731
    close(tracejit.grad(values)(a), 2 * a, 1e-10)  # (sum of s^2 = |a|_F^2)
    (_, ds, _), (du, ds_dot, dvh) = tracejit.jvp(lambda a: tuple(np.linalg.svd(a)), (a,), (a,))
    close(ds_dot, np.linalg.svd(a)[1], 1e-10)  # (d s along a itself: s)
    assert np.isnan(du).all() and np.isnan(dvh).all()
    with pytest.raises(NotImplementedError, match="square and tall"):
        tracejit.grad(lambda a: np.sum(np.linalg.qr(a)[1]))(rng.normal(size=(2, 3)))


def test_cuda_backend_refuses_by_name():
    from tracejit.backends import numba_cuda
    from tracejit.passes.pipeline import run_pipeline
    graph = tracejit.make_ir(np.linalg.inv)(np.eye(2))
    fused = run_pipeline(graph, fusion=True)[0]["fused"]
    with pytest.raises(NotImplementedError, match=r"`solve`.*backend='numba_cpu'"):
        numba_cuda.compile_graph(fused)


# --- the middle tier's stand-ins (glue.py): the compiled helpers' contracts, in NumPy ------------
def test_glue_stand_ins_follow_the_helpers_contracts(rng):
    a = general(rng, (2, 3, 3))
    b = rng.normal(size=(2, 3, 2))
    out = np.empty_like(b)
    assert glue.GLUE_LAPACK.solve_f64(a, b, out) == 0
    close(out, np.linalg.solve(a, b), 1e-12)
    assert glue.GLUE_LAPACK.solve_f64(np.zeros((1, 2, 2)), b[:1, :2], out[:1, :2]) == 1
    q, r = np.empty((2, 4, 3)), np.empty((2, 3, 3))
    tall = rng.normal(size=(2, 4, 3))
    assert glue.GLUE_LAPACK.qr_f64(tall, q, r) == 0
    close(q @ r, tall, 1e-12)
    s = np.empty((2, 3))
    assert glue.GLUE_LAPACK.svdvals_f64(tall, s) == 0
    close(s, np.linalg.svdvals(tall), 1e-12)


def test_compiled_entry_source_runs_as_python_glue(rng):
    """numba_cpu's generated entry (the LAPACK calls, their status checks and reshapes), run as
    Python over the glue stand-ins with kernels interpreted: what the middle tier runs while the
    entry compiles. Nothing is compiled here."""
    from tracejit.backends import numba_cpu
    from tracejit.passes.pipeline import run_pipeline
    args = everything_inputs(rng, np.float64)
    fused = run_pipeline(tracejit.make_ir(everything)(*args), fusion=True)[0]["fused"]
    compiled = numba_cpu.CompiledGraph(fused)
    assert "_lapack.svd_f64(" in compiled.entry_source
    want = tracejit.compile(everything, backend="interpreter")(*args)
    for got, expected in zip(_run_as_glue(compiled, args), want):
        close(got, expected, 1e-12)
    singular = numba_cpu.CompiledGraph(run_pipeline(tracejit.make_ir(np.linalg.inv)(
        np.eye(2)), fusion=True)[0]["fused"])
    with pytest.raises(LinAlgError, match=r"Singular matrix \(in `solve` traced at .*"):
        _run_as_glue(singular, [np.zeros((2, 2))])


def _run_as_glue(compiled, args):
    kernels = [glue.Interpreted(e, inplace) for e, inplace in
               zip(compiled._kernel_eqns, compiled._kernel_inplace)]
    entry = glue.python_entry(compiled.entry_source, kernels, compiled.fused.name)
    return compiled._call(list(args), entry)


# --- fusion around linalg -----------------------------------------------------------------------
def kernels_around_linalg(a, b):
    s = np.tanh(a) + 3.0 * np.eye(a.shape[-1])
    x = np.linalg.solve(s, b * 2.0 + 1.0)
    w = np.linalg.eigvalsh(s + s.T)
    return np.exp(x) + 1.0, np.sum(w) * 2.0, np.linalg.slogdet(s)[1] + 1.0


def test_linalg_sits_between_fused_kernels(rng):
    from tracejit.backends import interpreter
    from tracejit.introspect import kernels
    from tracejit.passes.pipeline import run_pipeline
    a, b = rng.normal(size=(3, 3)), rng.normal(size=(3, 2))
    fused = run_pipeline(tracejit.make_ir(kernels_around_linalg)(a, b), fusion=True)[0]["fused"]
    names = [k.name for k in kernels(fused)]
    assert [n for n in names if not n.startswith("_k")] == ["solve", "eigh", "slogdet"]
    assert sum(n.startswith("_k") for n in names) >= 4
    for got, want in zip(interpreter.evaluate(fused, [a, b]), kernels_around_linalg(a, b)):
        close(got, want, 1e-12)


# --- numba_cpu: LAPACK from compiled code ---------------------------------------------------------
def everything(a, b, s, t, w):
    """Every primitive and form, on a stack of square matrices a (with right-hand sides b), an
    SPD stack s, a tall stack t and a wide stack w: one compiled function per dtype."""
    u, sv, vh = np.linalg.svd(t, full_matrices=False)
    uw, svw, vhw = np.linalg.svd(w, full_matrices=False)
    uf, svf, vhf = np.linalg.svd(w)
    ev, vecs = np.linalg.eigh(s)
    evu, vecsu = np.linalg.eigh(s, UPLO="U")
    q, r = np.linalg.qr(t)
    qc, rc = np.linalg.qr(t, mode="complete")
    sign, logabs = np.linalg.slogdet(a)
    return (np.linalg.solve(a, b), np.linalg.inv(a), np.linalg.det(a), sign, logabs,
            np.linalg.cholesky(s), tnp.linalg.solve_triangular(s, b, lower=True),
            tnp.linalg.solve_triangular(s, b, lower=False, trans=1),
            ev, fix_signs(vecs), evu, fix_signs(vecsu),
            *fix_signs(u, vh), sv, *fix_signs(uw, vhw), svw, svf,
            np.abs(uf), np.abs(vhf), np.abs(q), np.abs(r), np.abs(qc), np.abs(rc),
            np.linalg.svdvals(w), np.linalg.pinv(t), np.linalg.matrix_rank(t),
            np.linalg.norm(w, "nuc", axis=(-2, -1)))


def everything_inputs(rng, dtype):
    return (general(rng, (2, 3, 3), dtype), rng.normal(size=(2, 3, 2)).astype(dtype),
            spd(rng, (2, 3, 3), dtype), rng.normal(size=(2, 4, 3)).astype(dtype),
            rng.normal(size=(2, 2, 4)).astype(dtype))


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numba_cpu_matches_the_interpreter_and_numpy(dtype, rng):
    args = everything_inputs(rng, dtype)
    compiled = tracejit.compile(everything, backend="numba_cpu")
    interpreted = tracejit.compile(everything, backend="interpreter")
    got, want = compiled(*args), interpreted(*args)
    assert len(got) == len(want)
    for k, (g, w) in enumerate(zip(got, want)):
        close(g, w, TOL[np.dtype(dtype)] * 10)
    close(got[0], np.linalg.solve(args[0], args[1]), TOL[np.dtype(dtype)] * 10)
    source = compiled.lower(*args).kernel_source()
    assert "_lapack.solve_" in source and "objmode" not in source
    # one stack of 1x1 and one empty batch: same compiled code (shapes are run-time numbers)
    small = (args[0][:, :1, :1], args[1][:, :1])
    h = tracejit.compile(lambda a, b: (np.linalg.solve(a, b), np.linalg.det(a)),
                         backend="numba_cpu")
    for a, b in (small, (args[0][:0], args[1][:0])):
        for g, w in zip(h(a, b), (np.linalg.solve(a, b), np.linalg.det(a))):
            close(g, w, TOL[np.dtype(dtype)])


@needs_numba
def test_numba_cpu_gradients_match_the_interpreter(rng):
    def loss(a, t, s):
        spd_ = s @ np.swapaxes(s, -1, -2) + 3.0 * np.eye(3)
        chol = np.linalg.cholesky(spd_)
        u, sv, vh = np.linalg.svd(t, full_matrices=False)
        q, r = np.linalg.qr(t)
        w, v = np.linalg.eigh(spd_)
        return (np.sum(np.linalg.inv(a) ** 2) + np.sum(np.linalg.slogdet(a)[1])
                + np.sum(chol) + np.sum(sv ** 2) + np.sum((u @ vh) ** 2) + np.sum(q * r[..., :1, :])
                + np.sum(w) + np.sum(v[..., 0] ** 4))

    args = (general(rng, (2, 3, 3)), rng.normal(size=(2, 4, 3)), rng.normal(size=(2, 3, 3)))
    grad = tracejit.grad(loss, argnums=(0, 1, 2))
    got = tracejit.compile(grad, backend="numba_cpu")(*args)
    want = tracejit.compile(grad, backend="interpreter")(*args)
    for g, w in zip(got, want):
        close(g, w, 1e-9)
    check_grads(loss, args, order=1, modes=("rev",))
    h = tracejit.compile(tracejit.hessian(lambda x: np.linalg.slogdet(x)[1]),
                         backend="numba_cpu")
    a = spd(rng, (3, 3))
    inv = np.linalg.inv(a)
    close(h(a), -np.einsum("jk,li->ijkl", inv, inv), 1e-10)


@needs_numba
def test_numba_cpu_linalg_between_fused_kernels(rng):
    a, b = rng.normal(size=(3, 3)), rng.normal(size=(3, 2))
    compiled = tracejit.compile(kernels_around_linalg, backend="numba_cpu")
    for got, want in zip(compiled(a, b), kernels_around_linalg(a, b)):
        close(got, want, 1e-12)
    names = [k.name for k in compiled.lower(a, b).kernels()]
    assert [n for n in names if not n.startswith("_k")] == ["solve", "eigh", "slogdet"]
    with tracejit.profile(show=False) as profile:  # (the entry run as Python, helpers timed)
        compiled(a, b)
        compiled(a, b)
    assert any("solve_f64" in line for line in profile.table().splitlines())


@needs_numba
def test_object_mode_fallback_helpers_follow_the_same_contracts(rng):
    """Used where NumPy's LAPACK symbols cannot be found (checked here by calling them)."""
    from tracejit.backends import lapack
    helpers = lapack._fallback_helpers()
    a, b = general(rng, (2, 3, 3)), rng.normal(size=(2, 3, 2))
    out = np.empty_like(b)
    assert helpers["solve"](a, b, out) == 0
    close(out, np.linalg.solve(a, b), 1e-12)
    assert helpers["cholesky"](-np.eye(2)[None], np.empty((1, 2, 2))) == 1
