"""The per-function table: every tnp function against NumPy, over shapes and dtypes.

Each case is one line: a name, the function (written with ``tnp``, which is NumPy when not
traced), and how to make its inputs. For every dtype either NumPy and tracejit agree on values,
shape and dtype, or both raise the same exception type.
"""
from __future__ import annotations

import numpy as np
import pytest

import tracejit.numpy as tnp
from oracle import assert_matches_numpy

DTYPES = [np.float32, np.float64, np.int32, np.int64, np.bool_]


def make(rng, shape, dtype, domain="any"):
    """Random input of a shape/dtype; ``domain`` keeps float functions inside their domain."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if dtype.kind in "iu":
        lo = {"any": -9, "pos": 1, "unit": -1, "small": 0, "nonzero": 1}[domain]
        values = rng.integers(lo, 10 if domain != "small" else 4, size=shape)
        if domain == "nonzero":
            values = values * rng.choice([-1, 1], size=shape)
        return values.astype(dtype)
    values = {
        "any": lambda: rng.normal(0, 3, shape),
        "pos": lambda: rng.uniform(0.1, 5, shape),
        "unit": lambda: rng.uniform(-0.95, 0.95, shape),
        "small": lambda: rng.uniform(-2, 2, shape),
        "nonzero": lambda: rng.uniform(0.5, 4, shape) * rng.choice([-1, 1], shape),
    }[domain]()
    return np.asarray(values).astype(dtype)


def noncontiguous(rng, dtype, domain="any"):
    return make(rng, (4, 6), dtype, domain)[::2, ::-2]  # strided and negative-stride view


UNARY_SHAPES = [(), (0,), (5,), (3, 4), "view"]
BINARY_SHAPES = [((), ()), ((5,), ()), ((3, 4), (4,)), ((3, 1), (1, 4)), ((2, 3, 4), (3, 4)),
                 ((0, 3), (3,)), ("view", "view")]
# Compiled backends take a representative subset (compile time; see conftest.py).
UNARY_SHAPES_BY_BACKEND = {"numba_cpu": [(), (3, 4), "view"]}
BINARY_SHAPES_BY_BACKEND = {"numba_cpu": [((3, 4), (4,)), ((3, 1), (1, 4)), ("view", "view")]}


def inputs(rng, shapes, dtype, domains):
    out = []
    for shape, domain in zip(shapes, domains):
        out.append(noncontiguous(rng, dtype, domain) if shape == "view" else
                   make(rng, shape, dtype, domain))
    return out


# name, function, domain of each operand
UNARY = [
    ("negative", tnp.negative, "any"), ("positive", tnp.positive, "any"),
    ("abs", tnp.abs, "any"), ("absolute", tnp.absolute, "any"), ("sign", tnp.sign, "any"),
    ("floor", tnp.floor, "any"), ("ceil", tnp.ceil, "any"), ("trunc", tnp.trunc, "any"),
    ("rint", tnp.rint, "any"), ("round", tnp.round, "any"), ("around", tnp.around, "any"),
    ("exp", tnp.exp, "small"), ("exp2", tnp.exp2, "small"), ("expm1", tnp.expm1, "small"),
    ("log", tnp.log, "pos"), ("log2", tnp.log2, "pos"), ("log10", tnp.log10, "pos"),
    ("log1p", tnp.log1p, "pos"), ("sqrt", tnp.sqrt, "pos"), ("square", tnp.square, "any"),
    ("reciprocal", tnp.reciprocal, "nonzero"), ("sin", tnp.sin, "any"),
    ("cos", tnp.cos, "any"), ("tan", tnp.tan, "unit"), ("sinh", tnp.sinh, "small"),
    ("cosh", tnp.cosh, "small"), ("tanh", tnp.tanh, "any"), ("arcsin", tnp.arcsin, "unit"),
    ("arccos", tnp.arccos, "unit"), ("arctan", tnp.arctan, "any"),
    ("arctanh", tnp.arctanh, "unit"), ("isnan", tnp.isnan, "any"),
    ("isfinite", tnp.isfinite, "any"), ("isinf", tnp.isinf, "any"),
    ("logical_not", tnp.logical_not, "any"), ("invert", tnp.invert, "any"),
    ("bitwise_not", tnp.bitwise_not, "any"),
]

BINARY = [
    ("add", tnp.add, "any", "any"), ("subtract", tnp.subtract, "any", "any"),
    ("multiply", tnp.multiply, "any", "any"), ("divide", tnp.divide, "any", "nonzero"),
    ("true_divide", tnp.true_divide, "any", "nonzero"),
    ("floor_divide", tnp.floor_divide, "any", "nonzero"), ("mod", tnp.mod, "any", "nonzero"),
    ("remainder", tnp.remainder, "any", "nonzero"), ("power", tnp.power, "pos", "small"),
    ("maximum", tnp.maximum, "any", "any"), ("minimum", tnp.minimum, "any", "any"),
    ("arctan2", tnp.arctan2, "any", "any"), ("logaddexp", tnp.logaddexp, "any", "any"),
    ("equal", tnp.equal, "small", "small"), ("not_equal", tnp.not_equal, "small", "small"),
    ("less", tnp.less, "any", "any"), ("less_equal", tnp.less_equal, "small", "small"),
    ("greater", tnp.greater, "any", "any"),
    ("greater_equal", tnp.greater_equal, "small", "small"),
    ("logical_and", tnp.logical_and, "small", "small"),
    ("logical_or", tnp.logical_or, "small", "small"),
    ("logical_xor", tnp.logical_xor, "small", "small"),
    ("bitwise_and", tnp.bitwise_and, "any", "any"), ("bitwise_or", tnp.bitwise_or, "any", "any"),
    ("bitwise_xor", tnp.bitwise_xor, "any", "any"),
]


@pytest.mark.parametrize("name,fn,domain", UNARY, ids=[c[0] for c in UNARY])
def test_unary(name, fn, domain, dtype, rng, backend):
    for shape in UNARY_SHAPES_BY_BACKEND.get(backend, UNARY_SHAPES):
        (x,) = inputs(rng, [shape], dtype, [domain])
        assert_matches_numpy(lambda x: fn(x), x, backend=backend)


@pytest.mark.parametrize("name,fn,da,db", BINARY, ids=[c[0] for c in BINARY])
def test_binary(name, fn, da, db, dtype, rng, backend):
    for shapes in BINARY_SHAPES_BY_BACKEND.get(backend, BINARY_SHAPES):
        a, b = inputs(rng, shapes, dtype, [da, db])
        assert_matches_numpy(lambda a, b: fn(a, b), a, b, backend=backend)
        assert_matches_numpy(lambda a, b: fn(b, a), a, b, backend=backend)


@pytest.mark.parametrize("name,fn,da,db", BINARY, ids=[c[0] for c in BINARY])
def test_binary_with_python_scalars(name, fn, da, db, dtype, rng, backend):
    """Python scalars are weak (NEP 50), both as runtime arguments and as constants in code."""
    a = make(rng, (3, 2), dtype, da)
    scalars = {"nonzero": [2, 1.5], "small": [1, 0.5], "pos": [2, 1.5]}.get(db, [3, -2.5, True])
    scalars = scalars[:SCALARS_BY_BACKEND.get(backend, len(scalars))]
    for s in scalars:
        assert_matches_numpy(lambda a, s: fn(a, s), a, s, backend=backend)
        assert_matches_numpy(lambda a: fn(a, s), a, backend=backend)
        if db == da or da == "any":
            assert_matches_numpy(lambda a, s: fn(s, a), a, s, backend=backend)


SCALARS_BY_BACKEND = {"numba_cpu": 1}


def test_mixed_dtypes_promote_as_numpy(rng, backend):
    pairs = [(np.float32, np.float64), (np.int32, np.float32), (np.int64, np.float32),
             (np.bool_, np.int32), (np.int8, np.uint8), (np.int32, np.int64),
             (np.uint8, np.float16), (np.float16, np.float32), (np.uint32, np.int32)]
    for da, db in pairs:
        a, b = make(rng, (3, 4), da), make(rng, (4,), db, "nonzero")
        for fn in (tnp.add, tnp.multiply, tnp.true_divide, tnp.maximum, tnp.less):
            assert_matches_numpy(lambda a, b: fn(a, b), a, b, backend=backend)


def test_operators_match_numpy(rng, backend):
    a, b = make(rng, (3, 4), np.float32), make(rng, (4,), np.float32, "nonzero")
    i, j = make(rng, (3, 4), np.int32), make(rng, (4,), np.int32, "nonzero")
    ops = [lambda x, y: x + y, lambda x, y: x - y, lambda x, y: x * y, lambda x, y: x / y,
           lambda x, y: x // y, lambda x, y: x % y, lambda x, y: -x, lambda x, y: abs(x),
           lambda x, y: x < y, lambda x, y: x <= y, lambda x, y: x > y, lambda x, y: x >= y,
           lambda x, y: x == y, lambda x, y: x != y, lambda x, y: divmod(x, y),
           lambda x, y: 2.0 - x, lambda x, y: 1 / y, lambda x, y: 3 ** (y * 0 + 1),
           lambda x, y: x ** 2, lambda x, y: 2 * x + 1]
    for op in ops:
        assert_matches_numpy(op, a, b, backend=backend)
        assert_matches_numpy(op, i, j, backend=backend)
    for op in (lambda x, y: x & y, lambda x, y: x | y, lambda x, y: x ^ y, lambda x, y: ~x):
        assert_matches_numpy(op, i, j, backend=backend)
        assert_matches_numpy(op, i > 0, j > 0, backend=backend)
    m, v = make(rng, (3, 4), np.float64), make(rng, (4,), np.float64)
    assert_matches_numpy(lambda m, v: m @ v, m, v, backend=backend)
    assert_matches_numpy(lambda m, v: v @ m.T, m, v, backend=backend)


def test_mixed_ndarray_and_traced_both_orders(rng, backend):
    const = make(rng, (3, 4), np.float64)
    x = make(rng, (3, 4), np.float32)
    assert_matches_numpy(lambda x: const * x, x, backend=backend)
    assert_matches_numpy(lambda x: x * const, x, backend=backend)
    assert_matches_numpy(lambda x: np.float32(2) - x, x, backend=backend)
    assert_matches_numpy(lambda x: x @ const.T, x, backend=backend)
    assert_matches_numpy(lambda x: const.T @ x, x, backend=backend)


def test_where_and_clip(rng, backend):
    for dtype in DTYPES:
        c = make(rng, (3, 4), np.bool_)
        a, b = make(rng, (3, 4), dtype), make(rng, (4,), dtype)
        assert_matches_numpy(lambda c, a, b: tnp.where(c, a, b), c, a, b, backend=backend)
        assert_matches_numpy(lambda a, b: tnp.where(a > 0, a, 0), a, b, backend=backend)
        assert_matches_numpy(lambda a, b: tnp.where(a, 1.5, b), a, b, backend=backend)
        assert_matches_numpy(lambda a: tnp.clip(a, 0, 1), a, backend=backend)
        assert_matches_numpy(lambda a: tnp.clip(a, -1.5, None), a, backend=backend)
        assert_matches_numpy(lambda a, b: tnp.clip(a, b, 5), a, b, backend=backend)
        assert_matches_numpy(lambda a: a.clip(max=2), a, backend=backend)


def test_round_decimals(rng, backend):
    for dtype in (np.float32, np.float64, np.int32):
        a = make(rng, (5,), dtype)
        for decimals in (0, 1, 2, -1):
            assert_matches_numpy(lambda a: tnp.round(a, decimals), a, backend=backend)


def test_small_int_and_half_dtypes(rng, backend):
    """Type resolution of int8/uint8/float16 (e.g. np.exp(int8) is float16) follows NumPy."""
    for dtype in (np.int8, np.uint8, np.int16, np.uint32, np.uint64, np.float16):
        x = make(rng, (3, 4), dtype, "pos")
        for fn in (tnp.exp, tnp.sqrt, tnp.negative, tnp.abs, tnp.square, tnp.sum, tnp.mean,
                   tnp.cumsum, tnp.sign, tnp.max, lambda v: v / 3, lambda v: v * 2,
                   lambda v: v + v.astype(np.float32)):
            assert_matches_numpy(fn, x, backend=backend)
