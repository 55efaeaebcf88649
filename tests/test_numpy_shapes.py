"""Shape manipulation, products, creation and indexing against NumPy."""
from __future__ import annotations

import numpy as np
import pytest

import tracejit.numpy as tnp
from oracle import assert_matches_numpy
from test_numpy_table import make

# name, function of one array, input shape
SHAPE_CASES = [
    ("reshape", lambda x: tnp.reshape(x, (4, -1)), (2, 3, 4)),
    ("reshape_method", lambda x: x.reshape(6, 4), (2, 3, 4)),
    ("reshape_bad", lambda x: tnp.reshape(x, (5, -1)), (2, 3, 4)),
    ("ravel", tnp.ravel, (2, 3, 4)),
    ("flatten", lambda x: x.flatten(), (2, 3)),
    ("transpose", tnp.transpose, (2, 3, 4)),
    ("transpose_axes", lambda x: tnp.transpose(x, (1, 0, 2)), (2, 3, 4)),
    ("transpose_method", lambda x: x.transpose(2, 0, 1), (2, 3, 4)),
    ("T", lambda x: x.T, (2, 3)),
    ("moveaxis", lambda x: tnp.moveaxis(x, 0, -1), (2, 3, 4)),
    ("moveaxis_multi", lambda x: tnp.moveaxis(x, [0, 1], [-1, 0]), (2, 3, 4)),
    ("swapaxes", lambda x: tnp.swapaxes(x, 0, 2), (2, 3, 4)),
    ("expand_dims", lambda x: tnp.expand_dims(x, 1), (2, 3)),
    ("expand_dims_tuple", lambda x: tnp.expand_dims(x, (0, -1)), (2, 3)),
    ("squeeze", tnp.squeeze, (1, 3, 1)),
    ("squeeze_axis", lambda x: tnp.squeeze(x, axis=2), (1, 3, 1)),
    ("squeeze_bad", lambda x: tnp.squeeze(x, axis=1), (1, 3, 1)),
    ("broadcast_to", lambda x: tnp.broadcast_to(x, (2, 3, 4)), (3, 1)),
    ("broadcast_to_bad", lambda x: tnp.broadcast_to(x, (2, 4)), (3,)),
    ("flip", tnp.flip, (2, 3)),
    ("flip_axis", lambda x: tnp.flip(x, axis=1), (2, 3)),
    ("tile", lambda x: tnp.tile(x, 2), (2, 3)),
    ("tile_tuple", lambda x: tnp.tile(x, (2, 1, 3)), (2, 3)),
    ("repeat", lambda x: tnp.repeat(x, 3), (2, 3)),
    ("repeat_axis", lambda x: tnp.repeat(x, 2, axis=1), (2, 3)),
    ("repeat_counts", lambda x: tnp.repeat(x, [1, 0, 2], axis=1), (2, 3)),
    ("diag_1d", tnp.diag, (3,)),
    ("diag_1d_k", lambda x: tnp.diag(x, 2), (3,)),
    ("diag_1d_negk", lambda x: tnp.diag(x, -1), (3,)),
    ("diag_2d", tnp.diag, (3, 4)),
    ("diag_2d_k", lambda x: tnp.diag(x, -1), (3, 4)),
    ("diagonal", tnp.diagonal, (3, 4)),
    ("diagonal_offset", lambda x: tnp.diagonal(x, 1, 1, 2), (2, 3, 4)),
    ("trace", tnp.trace, (3, 4)),
    ("trace_offset", lambda x: tnp.trace(x, offset=-1), (4, 3)),
    ("triu", tnp.triu, (3, 4)),
    ("triu_k", lambda x: tnp.triu(x, 1), (2, 3, 4)),
    ("tril", tnp.tril, (4, 3)),
    ("tril_k", lambda x: tnp.tril(x, -1), (3, 3)),
    ("tril_1d", tnp.tril, (3,)),
    ("split", lambda x: tnp.split(x, 2, axis=1), (3, 4)),
    ("split_indices", lambda x: tnp.split(x, [1, 3]), (5, 2)),
    ("split_bad", lambda x: tnp.split(x, 3, axis=1), (3, 4)),
    ("array_split", lambda x: tnp.array_split(x, 3), (7,)),
    ("atleast_2d", tnp.atleast_2d, (3,)),
]


@pytest.mark.parametrize("name,fn,shape", SHAPE_CASES, ids=[c[0] for c in SHAPE_CASES])
def test_shape_functions(name, fn, shape, dtype, rng, backend):
    assert_matches_numpy(fn, make(rng, shape, dtype), backend=backend)


JOIN_CASES = [
    ("concatenate", lambda a, b: tnp.concatenate([a, b]), (2, 3), (4, 3)),
    ("concatenate_axis1", lambda a, b: tnp.concatenate((a, b), axis=1), (2, 3), (2, 1)),
    ("concatenate_none", lambda a, b: tnp.concatenate([a, b], axis=None), (2, 3), (4,)),
    ("concatenate_bad", lambda a, b: tnp.concatenate([a, b], axis=1), (2, 3), (3, 3)),
    ("stack", lambda a, b: tnp.stack([a, b]), (2, 3), (2, 3)),
    ("stack_axis", lambda a, b: tnp.stack([a, b], axis=-1), (2, 3), (2, 3)),
    ("hstack", lambda a, b: tnp.hstack([a, b]), (2, 3), (2, 2)),
    ("hstack_1d", lambda a, b: tnp.hstack([a, b]), (3,), (2,)),
    ("vstack", lambda a, b: tnp.vstack([a, b]), (3,), (2, 3)),
    ("append", lambda a, b: tnp.append(a, b), (2, 3), (2,)),
    ("append_axis", lambda a, b: tnp.append(a, b, axis=0), (2, 3), (1, 3)),
    ("dot", tnp.dot, (3, 4), (4, 2)),
    ("dot_vec", tnp.dot, (4,), (4,)),
    ("dot_nd", tnp.dot, (2, 3, 4), (5, 4, 2)),
    ("dot_scalar", tnp.dot, (), (3,)),
    ("dot_bad", tnp.dot, (3, 4), (3, 4)),
    ("matmul", tnp.matmul, (3, 4), (4, 2)),
    ("matmul_batch", tnp.matmul, (2, 1, 3, 4), (5, 4, 2)),
    ("matmul_vec", tnp.matmul, (4,), (2, 4, 3)),
    ("matmul_vec_right", tnp.matmul, (2, 3, 4), (4,)),
    ("matmul_empty", tnp.matmul, (3, 0), (0, 2)),
    ("matmul_bad", tnp.matmul, (3, 4), (3, 2)),
    ("outer", tnp.outer, (3,), (2, 2)),
    ("inner", tnp.inner, (2, 4), (3, 4)),
    ("tensordot", tnp.tensordot, (2, 3, 4), (3, 4, 5)),
    ("tensordot_axes", lambda a, b: tnp.tensordot(a, b, axes=([0], [1])), (2, 3), (4, 2)),
    ("vdot", tnp.vdot, (2, 3), (3, 2)),
]


@pytest.mark.parametrize("name,fn,sa,sb", JOIN_CASES, ids=[c[0] for c in JOIN_CASES])
def test_two_array_functions(name, fn, sa, sb, dtype, rng, backend):
    a, b = make(rng, sa, dtype, "small"), make(rng, sb, dtype, "small")
    assert_matches_numpy(fn, a, b, backend=backend)


def test_products_promote_dtypes(rng, backend):
    a, b = make(rng, (3, 4), np.int32), make(rng, (4, 2), np.float32)
    for fn in (tnp.dot, tnp.matmul, lambda a, b: a @ b, lambda a, b: tnp.einsum("ij,jk", a, b)):
        assert_matches_numpy(fn, a, b, backend=backend)


EINSUM_CASES = [
    ("ij,jk->ik", [(2, 3), (3, 4)]), ("ij,jk", [(2, 3), (3, 4)]), ("ii->i", [(3, 3)]),
    ("ii", [(3, 3)]), ("ij->ji", [(2, 3)]), ("ij->", [(2, 3)]), ("i,i->", [(4,), (4,)]),
    ("i,j->ij", [(3,), (2,)]), ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]), ("...ij,...jk->...ik", [(2, 3, 4), (4, 5)]),
    ("ijk,ikl->jl", [(2, 3, 4), (2, 4, 5)]), ("iij->j", [(3, 3, 2)]),
    ("ij,ij->i", [(3, 4), (3, 4)]), ("i,i,i->i", [(3,), (3,), (3,)]),
]


@pytest.mark.parametrize("spec,shapes", EINSUM_CASES, ids=[c[0] for c in EINSUM_CASES])
def test_einsum(spec, shapes, rng, backend):
    for dtype in (np.float64, np.float32, np.int64):
        arrays = [make(rng, s, dtype, "small") for s in shapes]
        assert_matches_numpy(lambda *xs: tnp.einsum(spec, *xs), *arrays, backend=backend)


NORM_CASES = [
    ((5,), {}), ((5,), {"ord": 1}), ((5,), {"ord": np.inf}), ((5,), {"ord": -np.inf}),
    ((5,), {"ord": 0}), ((5,), {"ord": 3}), ((3, 4), {}), ((3, 4), {"ord": "fro"}),
    ((3, 4), {"ord": 1}), ((3, 4), {"ord": -1}), ((3, 4), {"ord": np.inf}),
    ((3, 4), {"ord": -np.inf}), ((2, 3, 4), {"axis": 1}), ((2, 3, 4), {"axis": (0, 2)}),
    ((2, 3, 4), {"axis": -1, "keepdims": True}), ((3, 4), {"keepdims": True}),
    ((2, 3, 4), {"axis": (2, 0), "ord": 1}),
]


@pytest.mark.parametrize("shape,kwargs", NORM_CASES, ids=[str(c[1]) for c in NORM_CASES])
def test_linalg_norm(shape, kwargs, rng, backend):
    for dtype in (np.float32, np.float64, np.int32):
        x = make(rng, shape, dtype)
        assert_matches_numpy(lambda x: tnp.linalg.norm(x, **kwargs), x, backend=backend)


CREATION_CASES = [
    lambda x: x + tnp.zeros((2, 3)), lambda x: x + tnp.ones(3, dtype=np.float32),
    lambda x: x * tnp.full((2, 3), 2.5, dtype=np.float32), lambda x: tnp.zeros_like(x),
    lambda x: tnp.ones_like(x, dtype=np.int32), lambda x: tnp.full_like(x, 7),
    lambda x: tnp.full_like(x, x[0, 0]), lambda x: tnp.full((2,), x[0, 0]),
    lambda x: tnp.empty_like(x) * 0, lambda x: x + tnp.arange(3),
    lambda x: tnp.arange(2, 11, 3) + x[1, 2], lambda x: tnp.arange(0.5, 3.0, 0.5) + x[0, 0],
    lambda x: tnp.arange(5, dtype=np.float32) * x[0, 0],
    lambda x: tnp.linspace(0, 1, 7) + x[0, 0], lambda x: tnp.linspace(x[0, 0], 2.0, 5),
    lambda x: tnp.linspace(0, 10, 4, endpoint=False, dtype=np.int32) + x[0, 0].astype(int),
    lambda x: tnp.linspace(0, 1, 5, retstep=True)[1] + x[0, 0],
    lambda x: tnp.eye(3) @ x.T, lambda x: tnp.eye(2, 3, k=1) * x,
    lambda x: tnp.identity(2, dtype=np.float32) @ x,
    lambda x: tnp.array([x[0, 0], 1.0, x[1, 1]]),
    lambda x: tnp.array([[x[0, 0], 2], [3, x[1, 2]]], dtype=np.float64),
    lambda x: tnp.asarray([x[0], x[1]]), lambda x: tnp.asarray(x, dtype=np.int64),
    lambda x: tnp.array(x), lambda x: tnp.astype(x, np.int8), lambda x: x.astype(bool),
]


@pytest.mark.parametrize("case", range(len(CREATION_CASES)))
def test_creation_functions(case, rng, backend):
    assert_matches_numpy(CREATION_CASES[case], make(rng, (2, 3), np.float32), backend=backend)


def test_creation_outside_a_trace_is_numpy():
    assert tnp.zeros((2, 3), np.int32).dtype == np.int32
    np.testing.assert_array_equal(tnp.arange(5), np.arange(5))
    np.testing.assert_array_equal(tnp.linspace(0, 1, 7), np.linspace(0, 1, 7))
    np.testing.assert_array_equal(tnp.eye(3, k=1), np.eye(3, k=1))
    assert type(tnp.sum(np.ones(3))) is type(np.sum(np.ones(3)))  # noqa: E721


INDEX_CASES = [
    (lambda x: x[1], (4, 5)), (lambda x: x[-1], (4, 5)), (lambda x: x[1, 2], (4, 5)),
    (lambda x: x[1:3], (4, 5)), (lambda x: x[::2], (4, 5)), (lambda x: x[::-1], (4, 5)),
    (lambda x: x[3:0:-2, 1:], (4, 5)), (lambda x: x[-3:], (4, 5)), (lambda x: x[:, -1], (4, 5)),
    (lambda x: x[None], (4, 5)), (lambda x: x[:, None, 1:3], (4, 5)),
    (lambda x: x[..., 1], (2, 3, 4)), (lambda x: x[1, ...], (2, 3, 4)),
    (lambda x: x[..., None, ::-1], (2, 3, 4)), (lambda x: x[10:], (4, 5)),
    (lambda x: x[[0, 2, -1]], (4, 5)), (lambda x: x[:, [1, 1, 0]], (4, 5)),
    (lambda x: x[[0, 1], [2, 3]], (4, 5)), (lambda x: x[[[0], [1]], [2, 3]], (4, 5)),
    (lambda x: x[:, [0, 1], [1, 2]], (2, 3, 4)), (lambda x: x[[0, 1], :, [1, 2]], (2, 3, 4)),
    (lambda x: x[0, :, [1, 2]], (2, 3, 4)), (lambda x: x[:, 0, [1, 2]], (2, 3, 4)),
    (lambda x: x[np.array([1, 0])], (4, 5)), (lambda x: x[np.array([True, False, True, True])],
                                              (4, 5)),
    (lambda x: x[np.arange(20).reshape(4, 5) % 3 == 0], (4, 5)),
    (lambda x: x[[True, False], 1:], (2, 3)), (lambda x: x[None, [0, 1]], (4, 5)),
    (lambda x: x[5], (4, 5)), (lambda x: x[0, 0, 0], (4, 5)), (lambda x: x[[0, 7]], (4, 5)),
    (lambda x: x[1.5], (4, 5)), (lambda x: x[..., ...], (4, 5)),
    (lambda x: x[x.argmax()] if x.ndim == 1 else x[x.argmax(axis=0), 0], (4, 5)),
    (lambda x: x[x[:, 0].astype(np.int64) % 4], (4, 5)),
    (lambda x: x[-(x[:, 0].astype(np.int64) % 4) - 1], (4, 5)),
]


@pytest.mark.parametrize("case", range(len(INDEX_CASES)))
def test_indexing(case, rng, backend):
    fn, shape = INDEX_CASES[case]
    for dtype in (np.float32, np.int32, np.bool_):
        assert_matches_numpy(fn, make(rng, shape, dtype, "small"), backend=backend)


def test_iteration_and_len(rng, backend):
    x = make(rng, (3, 2), np.float64)
    assert_matches_numpy(lambda x: [row * 2 for row in x], x, backend=backend)
    assert_matches_numpy(lambda x: x[: len(x) - 1], x, backend=backend)
    assert_matches_numpy(lambda x: x.shape[0] * x + x.ndim + x.size, x, backend=backend)


def test_static_shape_queries(rng, backend):
    x = make(rng, (2, 3), np.float32)
    assert_matches_numpy(lambda x: tnp.zeros(np.shape(x)) + np.ndim(x) + np.size(x) + np.size(x, 1), x,
          backend=backend)
    assert_matches_numpy(lambda x: np.copy(x) * 2, x, backend=backend)


REQUIRED = """
    negative exp log log1p expm1 sin cos tan tanh arctan sqrt abs sign floor ceil round
    logical_not isnan isfinite add subtract multiply divide true_divide floor_divide mod
    remainder power square reciprocal exp2 log2 log10 logaddexp sinh cosh arcsin arccos arctanh
    maximum minimum clip where equal not_equal less less_equal greater greater_equal logical_and
    logical_or logical_xor sum prod mean var std max min amax amin argmax argmin all any cumsum
    cumprod reshape transpose moveaxis swapaxes expand_dims squeeze broadcast_to concatenate stack
    hstack vstack append split array_split flip tile repeat ravel diag diagonal trace triu tril
    dot matmul outer inner tensordot einsum linalg.norm array asarray zeros ones full zeros_like
    ones_like full_like arange linspace eye astype
""".split()


def test_every_required_function_is_in_the_tables():
    """The issue's list of tnp functions: each is exported and exercised by a NumPy-oracle test."""
    import pathlib

    sources = "".join(p.read_text() for p in pathlib.Path(__file__).parent.glob("test_numpy*.py"))
    sources += pathlib.Path(__file__).parent.joinpath("test_properties.py").read_text()
    for name in REQUIRED:
        obj = tnp
        for part in name.split("."):
            obj = getattr(obj, part)
        assert hasattr(obj, "numpy_function"), f"tnp.{name} does not dispatch to NumPy eagerly"
        assert f"tnp.{name}" in sources or f'"{name}"' in sources, f"tnp.{name} is not tested"
    for dtype in ("float32", "float64", "int32", "int64", "bool_"):
        assert getattr(tnp, dtype) is getattr(np, dtype)
