"""vmap of the linear-algebra primitives and of ``tracejit.numpy.linalg``: against NumPy per
example, solves by one matrix as more columns of one solve, per-example gradients and the
Hessian of a log-determinant built on vmap, compiled solves and singular matrices. (The
per-primitive rule table, with the linear-algebra entries, is in test_vmap.py.)"""
import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp
from tracejit.primitives import REGISTRY
from tracejit.primitives.linalg import PRIMITIVES as LINALG_PRIMITIVES

from test_jacobians import _numeric_jacobian, loop_jacfwd, loop_jacrev
from test_vmap import B, FLOATS, _normal, _square, _take, assert_close, loop


# --- linear algebra --------------------------------------------------------------------------

def _spd_stack(rng, count, n=3):
    x = rng.standard_normal((count, n, n))
    return x @ np.swapaxes(x, -1, -2) + n * np.eye(n)


def _assert_tree_close(got, expected, rtol):
    got, expected = tracejit.tree_util.tree_leaves(got), tracejit.tree_util.tree_leaves(expected)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert np.shape(g) == np.shape(e) and np.asarray(g).dtype == np.asarray(e).dtype
        np.testing.assert_allclose(g, e, rtol=rtol, atol=rtol)


def _stacked(examples):
    """Per-example results (arrays or tuples of them) stacked along axis 0."""
    if isinstance(examples[0], tuple):
        return tuple(np.stack([e[k] for e in examples]) for k in range(len(examples[0])))
    return np.stack(examples)


# case -> (numpy.linalg function name, keyword arguments, batched arguments, in_axes):
# tracejit.numpy.linalg's function vmapped, against NumPy's on each example.
def _linalg_cases(rng):
    general = rng.standard_normal((B, 3, 3)) + 3 * np.eye(3)
    spd = _spd_stack(rng, B)
    tall, rhs = rng.standard_normal((B, 4, 3)), rng.standard_normal((B, 3, 2))
    f32 = np.float32
    return {
        "solve, both batched": ("solve", {}, (general, rhs), (0, 0)),
        "solve, one matrix": ("solve", {}, (general[0], rhs[:, :, 0]), (None, 0)),
        "solve, one right-hand side, axis -1": (
            "solve", {}, (np.moveaxis(general, 0, -1), rhs[0]), (-1, None)),
        "solve, float32": ("solve", {}, (general.astype(f32), rhs.astype(f32)), (0, 0)),
        "inv": ("inv", {}, (np.moveaxis(general, 0, 1),), (1,)),
        "det": ("det", {}, (general,), (0,)),
        "slogdet": ("slogdet", {}, (general * np.array([1, -1, 1])[:, None, None],), (0,)),
        "cholesky": ("cholesky", {}, (spd,), (0,)),
        "eigh": ("eigh", {}, (np.moveaxis(spd, 0, -1),), (-1,)),
        "eigvalsh, float32": ("eigvalsh", {}, (spd.astype(f32),), (0,)),
        "svd": ("svd", {"full_matrices": False}, (tall,), (0,)),
        "qr, float32": ("qr", {}, (tall.astype(f32),), (0,)),
        "lstsq": ("lstsq", {}, (tall, tall[:, :, 0] + 1.0), (0, 0)),
        "lstsq, one matrix": ("lstsq", {}, (tall[0], tall[:, :, 1]), (None, 0)),
    }


LINALG_CASES = sorted(_linalg_cases(np.random.default_rng(0)))


def _linalg_count(graph):
    return sorted(e.prim.name for e in graph.eqns if e.prim.name in LINALG_PRIMITIVES)


@pytest.mark.parametrize("case", LINALG_CASES)
def test_vmap_of_numpy_linalg_against_a_loop(case):
    name, kwargs, args, axes = _linalg_cases(np.random.default_rng(1))[case]
    fn = lambda *a: getattr(tnp.linalg, name)(*a, **kwargs)  # noqa: E731
    examples = [[_take(a, ax, b) for a, ax in zip(args, axes)] for b in range(B)]
    expected = _stacked([getattr(np.linalg, name)(*ex, **kwargs) for ex in examples])
    got = tracejit.vmap(fn, in_axes=axes)(*args)
    _assert_tree_close(got, expected, 2e-4 if args[0].dtype == np.float32 else 1e-10)
    # each linear-algebra equation of one example's graph once in the batched one
    batched = tracejit.make_ir(tracejit.vmap(fn, in_axes=axes))(*args)
    assert _linalg_count(batched) == _linalg_count(tracejit.make_ir(fn)(*examples[0]))


@pytest.mark.parametrize("solve", ["lu_solve", "triangular_solve"])
@pytest.mark.parametrize("dtype", FLOATS)
def test_solves_by_one_matrix_take_the_examples_as_more_columns(solve, dtype, rng):
    """An unbatched matrix solving for batched right-hand sides is not copied per example:
    one solve, with the examples as more columns."""
    a = _square(rng, dtype)
    b = _normal(rng, dtype, (3, B, 2))  # three examples of (3, 2), batched along axis 1
    if solve == "lu_solve":
        operands, axes = [a, *REGISTRY["lu_factor"].impl(a), b], (None, None, None, -2)
        params = {"transpose": True, "check": True}
    else:
        operands, axes = [a, b], (None, -2)
        params = {"lower": False, "transpose_a": False}
    fn = lambda *ops: REGISTRY[solve].bind(*ops, **params)  # noqa: E731
    expected = loop(fn, operands, axes, 0)
    assert_close(tracejit.vmap(fn, in_axes=axes)(*operands), expected, dtype)
    graph = tracejit.make_ir(tracejit.vmap(fn, in_axes=axes))(*operands)
    (eqn,) = [e for e in graph.eqns if e.prim.name == solve]
    assert all(v is graph.inputs[k] for k, v in enumerate(eqn.inputs[:-1]))  # as given
    assert eqn.inputs[-1].ttype.shape == (3, 2 * B)
    assert not any(e.prim.name == "broadcast_in_dim" for e in graph.eqns)


def logdet(a):
    return np.linalg.slogdet(a)[1]


def test_per_example_gradients_of_a_log_determinant(rng):
    mats = _spd_stack(rng, B)
    expected = np.stack([tracejit.grad(logdet)(a) for a in mats])
    np.testing.assert_allclose(expected, np.linalg.inv(mats).transpose(0, 2, 1), rtol=1e-10)
    np.testing.assert_allclose(tracejit.vmap(tracejit.grad(logdet))(mats), expected, rtol=1e-12)
    total = lambda m: tracejit.vmap(logdet)(m).sum()  # noqa: E731  (grad of a vmap)
    np.testing.assert_allclose(tracejit.grad(total)(mats), expected, rtol=1e-12)


def test_hessian_of_a_log_determinant_is_built_on_vmap(rng):
    a = _spd_stack(rng, 1)[0]
    h = tracejit.hessian(logdet)(a)
    inv = np.linalg.inv(a)
    np.testing.assert_allclose(h, -np.einsum("jk,li->ijkl", inv, inv), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h, _numeric_jacobian(tracejit.grad(logdet), a), rtol=1e-6,
                               atol=1e-8)
    np.testing.assert_allclose(h, loop_jacfwd(loop_jacrev(logdet))(a), rtol=1e-10, atol=1e-12)
    graphs = [tracejit.make_ir(tracejit.hessian(logdet))(_spd_stack(rng, 1, n)[0])
              for n in (2, 3, 5)]
    assert len({len(g.eqns) for g in graphs}) == 1, [len(g.eqns) for g in graphs]
    for g in graphs:  # one factorisation, and every solve of every direction at once
        assert [e.prim.name for e in g.eqns].count("lu_factor") == 1, str(g)


# numba_cpu: one compiled function (every example its own matrix; one matrix for all)
@pytest.fixture(scope="module")
def batched_solves():
    def solves(mats, mat, rhs):
        return (tracejit.vmap(tnp.linalg.solve)(mats, rhs),
                tracejit.vmap(tnp.linalg.solve, in_axes=(None, 0))(mat, rhs))
    return tracejit.compile(solves, backend="numba_cpu")


def test_compiled_vmap_of_solve(batched_solves, rng):
    mats, rhs = rng.standard_normal((5, 3, 3)) + 3 * np.eye(3), rng.standard_normal((5, 3))
    each, shared = batched_solves(mats, mats[0], rhs)
    np.testing.assert_allclose(each, [np.linalg.solve(m, r) for m, r in zip(mats, rhs)],
                               rtol=1e-10)
    np.testing.assert_allclose(shared, [np.linalg.solve(mats[0], r) for r in rhs], rtol=1e-10)


def test_a_singular_matrix_in_one_example_raises(batched_solves, rng):
    mats, rhs = rng.standard_normal((4, 3, 3)) + 3 * np.eye(3), rng.standard_normal((4, 3))
    mats[2] = 0.0
    with pytest.raises(np.linalg.LinAlgError, match="Singular matrix"):
        tracejit.vmap(tnp.linalg.solve)(mats, rhs)
    with pytest.raises(np.linalg.LinAlgError, match="Singular matrix"):
        tracejit.vmap(tnp.linalg.inv)(mats)
    with pytest.raises(np.linalg.LinAlgError):
        batched_solves(mats, mats[0], rhs)
    assert tracejit.vmap(tnp.linalg.det)(mats)[2] == 0.0  # (not an error, as in NumPy)
