"""Gradients of every differentiable primitive and tnp function, against finite differences.

``check_grads`` (order 2, forward and reverse mode) on float64 over several shapes including
broadcasting; a looser order-1 pass on float32; non-differentiable functions give zeros.
"""
from __future__ import annotations

import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp
from test_numpy_reductions import REDUCTIONS
from test_numpy_shapes import EINSUM_CASES, INDEX_CASES, JOIN_CASES, NORM_CASES, SHAPE_CASES
from test_numpy_table import BINARY, UNARY, make
from test_einsum_forms import EINSUM_LIST_CASES
from test_numpy_sorting import SORT_GRAD_CASES

NOT_DIFFERENTIABLE = {
    "sign", "floor", "ceil", "trunc", "rint", "round", "around", "isnan", "isfinite", "isinf",
    "logical_not", "invert", "bitwise_not", "floor_divide", "equal", "not_equal", "less",
    "less_equal", "greater", "greater_equal", "logical_and", "logical_or", "logical_xor",
    "bitwise_and", "bitwise_or", "bitwise_xor", "all", "any",
}
# Domains away from kinks and discontinuities, where finite differences are meaningful.
GRAD_DOMAIN = {"mod": ("frac", "pos"), "remainder": ("frac", "pos"), "power": ("pos", "small"),
               "reciprocal": ("nonzero",), "divide": ("any", "nonzero"),
               "true_divide": ("any", "nonzero")}


def grad_input(rng, shape, domain, dtype=np.float64):
    if domain == "frac":  # x in (0.2, 0.8) * 1.5: x / y stays away from integers for y in (1.6, 5)
        return rng.uniform(0.2, 0.8, shape).astype(dtype)
    if domain == "pos":
        return rng.uniform(1.6, 3.0, shape).astype(dtype)
    return make(rng, shape, dtype, domain)


UNARY_DIFF = [c for c in UNARY if c[0] not in NOT_DIFFERENTIABLE]
BINARY_DIFF = [c for c in BINARY if c[0] not in NOT_DIFFERENTIABLE]
BINARY_GRAD_SHAPES = [((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 1), (1, 4)), ((), (3,))]


@pytest.mark.parametrize("name,fn,domain", UNARY_DIFF, ids=[c[0] for c in UNARY_DIFF])
def test_unary_gradients(name, fn, domain, rng):
    (dom,) = GRAD_DOMAIN.get(name, (domain,))
    for shape in [(), (5,), (2, 3)]:
        tracejit.check_grads(fn, (grad_input(rng, shape, dom),), order=2)
    tracejit.check_grads(fn, (grad_input(rng, (4,), dom, np.float32),), order=1)


@pytest.mark.parametrize("name,fn,da,db", BINARY_DIFF, ids=[c[0] for c in BINARY_DIFF])
def test_binary_gradients(name, fn, da, db, rng):
    da, db = GRAD_DOMAIN.get(name, (da, db))
    for sa, sb in BINARY_GRAD_SHAPES:
        a, b = grad_input(rng, sa, da), grad_input(rng, sb, db)
        tracejit.check_grads(fn, (a, b), order=2)
    a, b = grad_input(rng, (3, 2), da, np.float32), grad_input(rng, (2,), db, np.float32)
    tracejit.check_grads(fn, (a, b), order=1)
    tracejit.check_grads(lambda a: fn(a, 1.5), (a,), order=1)  # with a weak Python scalar


@pytest.mark.parametrize("name", sorted(NOT_DIFFERENTIABLE & {c[0] for c in UNARY + BINARY}))
def test_non_differentiable_functions_give_zero_gradients(name, rng):
    fn = getattr(tnp, name)
    nin = 2 if name in {c[0] for c in BINARY} else 1
    args = [make(rng, (3,), np.float64, "nonzero") for _ in range(nin)]
    if name in ("invert", "bitwise_not", "bitwise_and", "bitwise_or", "bitwise_xor"):
        return  # NumPy has no float loops for these: nothing to differentiate
    g = tracejit.grad(lambda *xs: fn(*xs).astype(np.float64).sum())(*args)
    np.testing.assert_array_equal(g, np.zeros(3))


@pytest.mark.parametrize("name,fn", [r for r in REDUCTIONS if r[0] not in NOT_DIFFERENTIABLE],
                         ids=[r[0] for r in REDUCTIONS if r[0] not in NOT_DIFFERENTIABLE])
def test_reduction_gradients(name, fn, rng):
    x = rng.uniform(0.5, 2.0, (2, 3, 4))  # distinct values: no ties for max/min
    for axis in (None, 0, -1, (0, 2)):
        for keepdims in (False, True):
            tracejit.check_grads(lambda x: fn(x, axis=axis, keepdims=keepdims), (x,), order=2)
    tracejit.check_grads(lambda x: fn(x, axis=1), (x.astype(np.float32),), order=1)


@pytest.mark.parametrize("fn", [tnp.cumsum, tnp.cumprod], ids=["cumsum", "cumprod"])
def test_scan_gradients(fn, rng):
    x = rng.uniform(0.5, 2.0, (3, 4))
    for axis in (None, 0, 1):
        tracejit.check_grads(lambda x: fn(x, axis=axis), (x,), order=2)


def test_products_with_zeros_have_exact_gradients():
    x = np.array([[2.0, 0.0, 3.0], [0.0, 0.0, 5.0]])
    g = tracejit.grad(lambda x: tnp.prod(x, axis=1).sum())(x)
    np.testing.assert_array_equal(g, [[0.0, 6.0, 0.0], [0.0, 0.0, 0.0]])
    g = tracejit.grad(lambda x: tnp.cumprod(x[0]).sum())(x)
    np.testing.assert_array_equal(g, [[1.0 + 0.0 + 0.0, 2.0 + 6.0, 0.0], [0.0, 0.0, 0.0]])
    tracejit.check_grads(lambda x: tnp.prod(x, axis=0), (x,), order=2)


SHAPE_DIFF = [c for c in SHAPE_CASES if not c[0].endswith("_bad")]


@pytest.mark.parametrize("name,fn,shape", SHAPE_DIFF, ids=[c[0] for c in SHAPE_DIFF])
def test_shape_function_gradients(name, fn, shape, rng):
    tracejit.check_grads(fn, (rng.normal(size=shape),), order=2)


JOIN_DIFF = [c for c in JOIN_CASES if not c[0].endswith("_bad")]


@pytest.mark.parametrize("name,fn,sa,sb", JOIN_DIFF, ids=[c[0] for c in JOIN_DIFF])
def test_two_array_gradients(name, fn, sa, sb, rng):
    tracejit.check_grads(fn, (rng.normal(size=sa), rng.normal(size=sb)), order=2)


@pytest.mark.parametrize("spec,shapes", EINSUM_CASES, ids=[c[0] for c in EINSUM_CASES])
def test_einsum_gradients(spec, shapes, rng):
    arrays = tuple(rng.normal(size=s) for s in shapes)
    tracejit.check_grads(lambda *xs: tnp.einsum(spec, *xs), arrays, order=2)


@pytest.mark.parametrize("name,fn,shapes", EINSUM_LIST_CASES,
                         ids=[c[0] for c in EINSUM_LIST_CASES])
def test_einsum_operand_list_gradients(name, fn, shapes, rng):
    tracejit.check_grads(fn, tuple(rng.normal(size=s) for s in shapes), order=2)


@pytest.mark.parametrize("name,fn", SORT_GRAD_CASES, ids=[c[0] for c in SORT_GRAD_CASES])
def test_sort_and_partition_gradients(name, fn, rng):
    """The derivative of sorting is the gather of the sorting permutation (distinct values:
    finite differences never cross a tie)."""
    for shape in [(6,), (3, 6), (2, 3, 6)] if name != "partition" else [(4, 6)]:
        tracejit.check_grads(fn, (rng.normal(size=shape),), order=2, modes=("rev", "fwd"))
    tracejit.check_grads(fn, (rng.normal(size=(5, 6)).astype(np.float32),), order=1)


@pytest.mark.parametrize("shape,kwargs", NORM_CASES, ids=[str(c[1]) for c in NORM_CASES])
def test_norm_gradients(shape, kwargs, rng):
    if kwargs.get("ord") == 0:
        return  # counts non-zeros: piecewise constant
    x = rng.uniform(0.5, 2.0, shape) * rng.choice([-1, 1], shape)
    tracejit.check_grads(lambda x: tnp.linalg.norm(x, **kwargs), (x,), order=2)


@pytest.mark.parametrize("kwargs", [{}, {"axis": 1}, {"ord": "fro"}])
def test_two_norms_at_the_origin_have_zero_derivatives(kwargs):
    """The one-sided convention of std at zero spread (docs/autodiff.md), for the 2-norms:
    0 in both modes, not NaN (sqrt's inf times the sum of squares' zero derivative)."""
    x = np.zeros((2, 3))
    g = tracejit.grad(lambda x: tnp.linalg.norm(x, **kwargs).sum())(x)
    _, tangent = tracejit.jvp(lambda x: tnp.linalg.norm(x, **kwargs), (x,), (np.ones_like(x),))
    assert np.array_equal(g, np.zeros_like(x)) and not np.isnan(tangent).any()
    assert np.array_equal(np.asarray(tangent), np.zeros_like(np.asarray(tangent)))


GOOD_INDEX_CASES = [c for i, c in enumerate(INDEX_CASES) if i not in (28, 29, 30, 31, 32)]


@pytest.mark.parametrize("case", range(len(GOOD_INDEX_CASES)))
def test_indexing_gradients(case, rng):
    fn, shape = GOOD_INDEX_CASES[case]
    tracejit.check_grads(fn, (rng.normal(size=shape),), order=2)


def test_creation_and_where_gradients(rng):
    x = rng.normal(size=(2, 3))
    cases = [
        lambda x: tnp.linspace(x[0, 0], x[1, 1], 5), lambda x: tnp.full_like(x, x[0, 1]) * x,
        lambda x: tnp.array([x[0, 0], 1.0, x[1, 1]]) ** 2,
        lambda x: tnp.where(x > 0, x * x, tnp.sin(x)), lambda x: tnp.clip(x, -0.5, 0.5),
        lambda x: tnp.concatenate([x, tnp.zeros((1, 3))]) @ tnp.ones(3),
        lambda x: tnp.maximum(x, 0.0), lambda x: x.var(axis=0, ddof=1),
    ]
    for case in cases:
        tracejit.check_grads(case, (x,), order=2, modes=("rev", "fwd"))


def test_convert_gradient_keeps_the_input_dtype(rng):
    x = rng.normal(size=(2, 3))
    g = tracejit.grad(lambda x: (x.astype(np.float32) * 2).sum())(x)
    assert g.dtype == np.float64
    np.testing.assert_array_equal(g, np.full((2, 3), 2.0))
    g32 = tracejit.grad(lambda x: x.astype(np.float64).sum())(x.astype(np.float32))
    assert g32.dtype == np.float32


def test_logaddexp_has_its_smooth_second_derivative_where_its_arguments_tie():
    """softplus(z) = logaddexp(0, z): f'(0) = 1/2, f''(0) = 1/4 (a kinked formulation gives 0)."""
    softplus = lambda z: tnp.logaddexp(0.0, z)  # noqa: E731
    assert tracejit.grad(softplus)(np.float64(0.0)) == 0.5
    assert tracejit.hessian(softplus)(np.float64(0.0)) == 0.25
    h = tracejit.hessian(lambda v: tnp.logaddexp(v[0], v[1]))(np.array([1.5, 1.5]))
    np.testing.assert_allclose(h, [[0.25, -0.25], [-0.25, 0.25]])
