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
    # one factorisation of a[0] broadcast against b's stack
    ("solve_broadcast", lambda a, b: np.linalg.solve(a[0], b), "general,rhs"),
    ("cond_fro", lambda a: np.linalg.cond(a, "fro"), "general"),
    ("eigvalsh_upper", lambda x: np.linalg.eigvalsh(_sym(x), UPLO="U"), "general"),
    ("lstsq_residuals", lambda a, b: np.linalg.lstsq(a, b)[1], "tall,rhs"),
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


# --- one LU per matrix: the derivatives solve with the forward's factors -------------------------
def _lu_equations(graph):
    """The graph's lu_factor equations, and its equations reading factors (lu_solve, slogdet)."""
    factors = [e for e in graph.eqns if e.prim.name == "lu_factor"]
    readers = [e for e in graph.eqns if e.prim.name in ("lu_solve", "slogdet")]
    return factors, readers


@pytest.mark.parametrize("name,fn", [
    ("solve", lambda a: np.sum(np.linalg.solve(a, a[:, :1] + 1.0) ** 2)),
    ("inv", lambda a: np.sum(np.linalg.inv(a) ** 2)),
    ("slogdet", lambda a: np.linalg.slogdet(a)[1]),
    ("det", np.linalg.det),
], ids=lambda v: v if isinstance(v, str) else "")
def test_derivatives_reuse_the_forward_factorisation(name, fn, rng):
    """Reverse mode, forward mode and the hessian (forward over reverse) of each LU reader: no
    backward pass factors (the equations it makes are marked), every solve reads the factors of
    a forward pass together with the matrix they factor, which is the input. One forward pass
    factors once (the hessian too: its directions are batched by vmap)."""
    a, t = general(rng, (3, 3)), rng.normal(size=(3, 3))
    graphs = {"grad": tracejit.make_ir(tracejit.grad(fn))(a),
              "jvp": tracejit.make_ir(lambda a, t: tracejit.jvp(fn, (a,), (t,)))(a, t),
              "hessian": tracejit.make_ir(tracejit.hessian(fn))(a)}
    for mode, graph in graphs.items():
        factors, readers = _lu_equations(graph)
        assert len(factors) == 1, (mode, str(graph))  # (the hessian's directions: one vmap)
        assert all(e.inputs[0] is graph.inputs[0] and not e.source_info.backward
                   for e in factors), (mode, str(graph))
        factor_of = {id(v): e for e in factors for v in e.outputs}
        for r in readers:
            factor = factor_of[id(r.inputs[1])]
            assert factor_of[id(r.inputs[2])] is factor and r.inputs[0] is factor.inputs[0]
        backward = [r for r in readers if r.source_info.backward]
        assert (mode == "jvp") != bool(backward), (mode, str(graph))
        assert all(r.params["transpose"] for r in backward if r.prim.name == "lu_solve")
    check = tracejit.compile(tracejit.grad(fn), backend="interpreter")
    close(check(a), tracejit.grad(fn)(a), 1e-12)


def test_broadcast_solves_factor_each_matrix_once(rng):
    a, b = general(rng, (3, 3)), rng.normal(size=(4, 3, 2))
    graph = tracejit.make_ir(tracejit.grad(lambda a, b: np.sum(np.linalg.solve(a, b))))(a, b)
    factors, readers = _lu_equations(graph)
    assert len(factors) == 1 and factors[0].outputs[0].ttype.shape == (3, 3)
    assert all(r.inputs[1].ttype.shape == (4, 3, 3) for r in readers)


def test_values_only_eigh_computes_no_vectors(rng):
    """eigvalsh's forward is eigh[compute_v=False] (LAPACK's jobz='N'); its reverse mode computes
    the vectors (a second decomposition, for the derivative only); forward mode one with them."""
    a = spd(rng, (3, 3))
    (forward,) = [e for e in tracejit.make_ir(np.linalg.eigvalsh)(a).eqns if e.prim.name == "eigh"]
    assert forward.params["compute_v"] is False and len(forward.outputs) == 1
    loss = lambda a: np.sum(np.linalg.eigvalsh(a) ** 2)  # noqa: E731
    grad_eighs = [e.params["compute_v"] for e in tracejit.make_ir(tracejit.grad(loss))(a).eqns
                  if e.prim.name == "eigh"]
    assert grad_eighs == [False, True]
    jvp_graph = tracejit.make_ir(lambda a, t: tracejit.jvp(loss, (a,), (t,)))(a, a)
    assert [e.params["compute_v"] for e in jvp_graph.eqns if e.prim.name == "eigh"] == [True]
    (values,) = [e for e in tracejit.make_ir(np.linalg.svdvals)(a).eqns if e.prim.name == "svd"]
    assert values.params["compute_uv"] is False and len(values.outputs) == 1


# --- lstsq, cond and named results: NumPy's, on every backend -----------------------------------
ORDERS = (None, 2, -2, "fro", np.inf, -np.inf, 1, -1)


def factor_paths(a, b, singular, dense_singular):
    """The LU's readers (a factorisation broadcast over b's stack, a 1-D right-hand side),
    values-only eigh, and cond of an invertible and two singular matrices (NumPy: inf; 0 for
    p=-2) of every order."""
    return (np.linalg.solve(a, b), np.linalg.solve(a, b[0, :, 0]), np.linalg.inv(a),
            np.linalg.det(a), tuple(np.linalg.slogdet(a)), np.linalg.eigvalsh(a + a.T),
            tuple(np.linalg.cond(a, p) for p in ORDERS),
            tuple(np.linalg.cond(singular, p) for p in ORDERS),
            tuple(np.linalg.cond(dense_singular, p) for p in ORDERS[3:]))


def factor_paths_compiled(a, b, singular, dense_singular):
    """What numba_cpu's helpers do differently from factor_paths' other forms (compiled there;
    the rest is the same composition of primitives, covered by ``everything``): a broadcast
    factorisation, a vector right-hand side, an unchecked inverse (NaN, then inf)."""
    return (np.linalg.solve(a, b), np.linalg.solve(a, b[0, :, 0]),
            np.linalg.cond(dense_singular, 1))


def test_factor_paths_match_numpy(backend, rng):
    args = (general(rng, (3, 3)), rng.normal(size=(2, 3, 2)),
            np.array([[0.0, 2.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]),
            np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]]))
    fn = factor_paths if backend == "interpreter" else factor_paths_compiled
    got = tracejit.pytree.flatten(tracejit.compile(fn, backend=backend)(*args))[0]
    want = tracejit.pytree.flatten(fn(*args))[0]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        close(g, w, 1e-10)
    singular_conds = np.asarray(got[-(2 * len(ORDERS) - 3):] if fn is factor_paths else got[-1:])
    assert np.isinf(np.delete(singular_conds, 2) if fn is factor_paths else singular_conds).all()
    assert fn is not factor_paths or singular_conds[2] == 0  # (p=-2)


def test_lstsq_matches_numpy(rng):
    """Shapes and dtypes of every result for 1-D and 2-D right-hand sides, tall, square and wide
    matrices, float32 and float64. A rank-deficient tall matrix: NumPy's residuals are empty, a
    value-dependent shape; ours keep the static shape and are NaN (docs/linalg.md)."""
    for dtype in (np.float32, np.float64):
        for m, n in ((5, 3), (3, 3), (3, 5)):
            a = rng.normal(size=(m, n)).astype(dtype)
            for rhs in (rng.normal(size=m).astype(dtype), rng.normal(size=(m, 2)).astype(dtype)):
                f = tracejit.compile(np.linalg.lstsq, backend="interpreter")
                for got, want in zip(f(a, rhs), np.linalg.lstsq(a, rhs)):
                    close(got, want, TOL[np.dtype(dtype)] * 10)
    low = rng.normal(size=(5, 2)) @ rng.normal(size=(2, 3))
    for rhs in (rng.normal(size=5), rng.normal(size=(5, 2))):
        f = tracejit.compile(np.linalg.lstsq, backend="interpreter")
        (x, residuals, rank, s), want = f(low, rhs), np.linalg.lstsq(low, rhs)
        assert want[1].shape == (0,) and rank == want[2] == 2 and rank.dtype == want[2].dtype
        assert residuals.shape == (1 if rhs.ndim == 1 else 2,) and np.isnan(residuals).all()
        assert residuals.dtype == want[1].dtype
        close(x, want[0], 1e-9)
        close(s, want[3], 1e-10)


def test_named_tuples_are_rebuilt_by_the_dispatcher(rng):
    """``_dispatch._strong`` rebuilds a named tuple from its items (positional arguments), so
    NumPy's result types (EighResult, SVDResult, ...) come back from traced calls, and their
    fields read inside traced code."""
    from collections import namedtuple

    from tracejit.numpy._dispatch import _strong
    pair = namedtuple("Pair", "first second")
    assert _strong(pair(1, [2])) == pair(1, [2]) and type(_strong(pair(1, 2))) is pair
    seen = {}

    def weak_pair(x):
        result = _strong(pair(x, x + 1))
        seen["type"], seen["weak"] = type(result), [v.ttype.weak for v in result]
        return result.first

    tracejit.make_ir(weak_pair)(1.5)  # (a Python float: a weak input)
    assert seen == {"type": pair, "weak": [False, False]}

    def fields(x):
        return (np.linalg.eigh(x).eigenvalues, np.linalg.svd(x).S, np.linalg.qr(x).R,
                np.linalg.slogdet(x).logabsdet)

    a = spd(rng, (3, 3))
    for got, want in zip(tracejit.compile(fields, backend="interpreter")(a), fields(a)):
        close(got, want, 1e-12)
    results = tracejit.compile(lambda x: (np.linalg.eigh(x), np.linalg.svd(x), np.linalg.qr(x),
                                          np.linalg.slogdet(x)), backend="interpreter")(a)
    assert [type(r) for r in results] == [type(np.linalg.eigh(a)), type(np.linalg.svd(a)),
                                          type(np.linalg.qr(a)), type(np.linalg.slogdet(a))]


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
    with pytest.raises(LinAlgError, match="SVD did not converge"):
        np.linalg.cond(singular, "nuc")  # (NumPy: the SVD of its NaN inverse)
    _raises_at_this_file(LinAlgError, "SVD did not converge",
                         lambda a: np.linalg.cond(a, "nuc"), singular, backend=backend)


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
    with pytest.raises(NotImplementedError, match=r"`lu_factor`.*backend='numba_cpu'"):
        numba_cuda.compile_graph(fused)


# --- the middle tier's stand-ins (glue.py): the compiled helpers' contracts, in NumPy ------------
def test_glue_stand_ins_follow_the_helpers_contracts(rng):
    lapack = glue.GLUE_LAPACK
    a = general(rng, (2, 3, 3))
    b = rng.normal(size=(2, 3, 2))
    lu, pivots, out = np.empty_like(a), np.empty((2, 3), np.int32), np.empty_like(b)
    assert lapack.lu_factor_f64(a, lu, pivots) == 0
    for transpose in (False, True):
        assert lapack.lu_solve_f64(lu, pivots, b, out, transpose, True) == 0
        close(out, np.linalg.solve(np.swapaxes(a, 1, 2) if transpose else a, b), 1e-12)
    sign, logabs = np.empty(2), np.empty(2)
    assert lapack.slogdet_f64(lu, pivots, sign, logabs) == 0
    close(sign, np.linalg.slogdet(a)[0], 0)
    close(logabs, np.linalg.slogdet(a)[1], 1e-12)
    zero = np.zeros((1, 2, 2))
    assert lapack.lu_factor_f64(zero, lu[:1, :2, :2], pivots[:1, :2]) == 0  # (factors: no error)
    assert lapack.lu_solve_f64(lu[:1, :2, :2], pivots[:1, :2], b[:1, :2], out[:1, :2], False,
                               True) == 1
    assert lapack.lu_solve_f64(lu[:1, :2, :2], pivots[:1, :2], b[:1, :2], out[:1, :2], False,
                               False) == 0 and np.isnan(out[:1, :2]).all()
    w = np.empty((2, 3))
    assert lapack.eigvalsh_f64(a, w, True) == 0
    close(w, np.linalg.eigvalsh(a), 1e-12)
    q, r = np.empty((2, 4, 3)), np.empty((2, 3, 3))
    tall = rng.normal(size=(2, 4, 3))
    assert lapack.qr_f64(tall, q, r) == 0
    close(q @ r, tall, 1e-12)
    s = np.empty((2, 3))
    assert lapack.svdvals_f64(tall, s) == 0
    close(s, np.linalg.svdvals(tall), 1e-12)
    with pytest.raises(AttributeError):
        lapack.solve_f64


def test_compiled_entry_source_runs_as_python_glue(rng):
    """numba_cpu's generated entry (the LAPACK calls, their status checks and reshapes), run as
    Python over the glue stand-ins with kernels interpreted: what the middle tier runs while the
    entry compiles. Nothing is compiled here."""
    from tracejit.backends import numba_cpu
    from tracejit.passes.pipeline import run_pipeline
    args = everything_inputs(rng, np.float64)
    fused = run_pipeline(tracejit.make_ir(everything)(*args), fusion=True)[0]["fused"]
    compiled = numba_cpu.CompiledGraph(fused)
    for helper in ("lu_factor", "lu_solve", "slogdet", "svd", "svdvals", "eigh", "eigvalsh"):
        assert f"_lapack.{helper}_f64(" in compiled.entry_source, helper
    want = tracejit.compile(everything, backend="interpreter")(*args)
    for got, expected in zip(_run_as_glue(compiled, args), want):
        close(got, expected, 1e-12)
    singular = numba_cpu.CompiledGraph(run_pipeline(tracejit.make_ir(np.linalg.inv)(
        np.eye(2)), fusion=True)[0]["fused"])
    with pytest.raises(LinAlgError, match=r"Singular matrix \(in `lu_solve` traced at .*"):
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
    # (one factorisation of s, read by the solve and the log-determinant: passes/cse.py)
    assert [n for n in names if not n.startswith("_k")] == ["lu_factor", "lu_solve", "eigh",
                                                            "slogdet"]
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
            np.linalg.norm(w, "nuc", axis=(-2, -1)), np.linalg.eigvalsh(s, UPLO="U"))


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
    assert "_lapack.lu_solve_" in source and "_lapack.eigvalsh_" in source
    assert "objmode" not in source
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
                + np.sum(w) + np.sum(v[..., 0] ** 4) + np.sum(np.linalg.eigvalsh(spd_) ** 3))

    args = (general(rng, (2, 3, 3)), rng.normal(size=(2, 4, 3)), rng.normal(size=(2, 3, 3)))
    grad = tracejit.grad(loss, argnums=(0, 1, 2))
    got = tracejit.compile(grad, backend="numba_cpu")(*args)
    want = tracejit.compile(grad, backend="interpreter")(*args)
    for g, w in zip(got, want):
        close(g, w, 1e-9)
    check_grads(loss, args, order=1, modes=("rev",))
    # Second order, both modes: forward over reverse along one direction (a hessian-vector
    # product; the whole hessian would compile one such pass per entry).
    hvp = lambda a, t: tracejit.jvp(tracejit.grad(lu_readers), (a,), (t,))  # noqa: E731
    a, t = spd(rng, (3, 3)), rng.normal(size=(3, 3))
    for got, want in zip(tracejit.compile(hvp, backend="numba_cpu")(a, t),
                         tracejit.compile(hvp, backend="interpreter")(a, t)):
        close(got, want, 1e-9)


def lu_readers(x):
    """The readers of one LU: solves both ways (forward and backward), slogdet, det."""
    return np.linalg.slogdet(x)[1] + np.linalg.det(x) + np.sum(np.linalg.solve(x, x[0]) ** 2)


@needs_numba
def test_numba_cpu_linalg_between_fused_kernels(rng):
    a, b = rng.normal(size=(3, 3)), rng.normal(size=(3, 2))
    compiled = tracejit.compile(kernels_around_linalg, backend="numba_cpu")
    for got, want in zip(compiled(a, b), kernels_around_linalg(a, b)):
        close(got, want, 1e-12)
    names = [k.name for k in compiled.lower(a, b).kernels()]
    # (one factorisation of s, read by the solve and the log-determinant: passes/cse.py)
    assert [n for n in names if not n.startswith("_k")] == ["lu_factor", "lu_solve", "eigh",
                                                            "slogdet"]
    with tracejit.profile(show=False) as profile:  # (the entry run as Python, helpers timed)
        compiled(a, b)
        compiled(a, b)
    assert any("lu_solve_f64" in line for line in profile.table().splitlines())


@needs_numba
def test_object_mode_fallback_helpers_follow_the_same_contracts(rng):
    """Used where NumPy's LAPACK symbols cannot be found (checked here by calling them)."""
    from tracejit.backends import lapack
    helpers = lapack._fallback_helpers()
    a, b = general(rng, (2, 3, 3)), rng.normal(size=(2, 3, 2))
    lu, pivots, out = np.empty_like(a), np.empty((2, 3), np.int32), np.empty_like(b)
    assert helpers["lu_factor"](a, lu, pivots) == 0
    assert helpers["lu_solve"](lu, pivots, b, out, False, True) == 0
    close(out, np.linalg.solve(a, b), 1e-12)
    assert helpers["cholesky"](-np.eye(2)[None], np.empty((1, 2, 2))) == 1


# --- the reference LU (NumPy, blocked) against its definition and LAPACK's getrf ------------------
def _rebuild(lu, pivots):
    """a from its factors (primitives/linalg.py): a = l u q, l the lower triangle of lu with its
    diagonal, u the strict upper one with ones on the diagonal, q the column swaps undone."""
    n = lu.shape[-1]
    rebuilt = np.tril(lu) @ (np.triu(lu, 1) + np.eye(n))
    for j in reversed(range(n)):
        columns = rebuilt[:, [j, pivots[j]]].copy()
        rebuilt[:, [pivots[j], j]] = columns
    return rebuilt


def test_reference_lu_is_getrf(rng):
    """Past one block of columns (the blocked path), singular included; where LAPACK is found,
    the same pivots as its getrf and the same factors to rounding."""
    from tracejit.backends import lapack
    from tracejit.primitives import linalg as L
    a = rng.normal(size=(2, 70, 70))
    a[1, 5] = 0.0  # (singular: an exact zero pivot, left on the diagonal)
    lu, pivots = L.lu_factor.impl(a)
    assert lu.dtype == np.float64 and pivots.dtype == np.int32 and pivots.shape == (2, 70)
    assert np.all(np.abs(np.triu(lu, 1)) <= 1.0)  # (partial pivoting)
    assert np.sum(np.diagonal(lu[1]) == 0) == 1
    for k in range(2):
        close(_rebuild(lu[k], pivots[k]), a[k], 1e-12)
    logabs = L.slogdet.impl(None, lu, pivots)[1]
    assert logabs[0] == pytest.approx(np.linalg.slogdet(a[0])[1]) and logabs[1] == -np.inf
    if NUMBA:
        got_lu, got_pivots = np.empty_like(a), np.empty((2, 70), np.int32)
        assert lapack.lu_factor_f64(a, got_lu, got_pivots) == 0
        np.testing.assert_array_equal(got_pivots[0], pivots[0])
        close(got_lu[0], lu[0], 1e-10)
