"""Reductions and scans against NumPy: every axis form, keepdims, dtype=, empty axes."""
from __future__ import annotations

import numpy as np
import pytest

import tracejit.numpy as tnp
from oracle import assert_matches_numpy
from test_numpy_table import make

REDUCTIONS = [
    ("sum", tnp.sum), ("prod", tnp.prod), ("mean", tnp.mean), ("var", tnp.var),
    ("std", tnp.std), ("max", tnp.max), ("min", tnp.min), ("amax", tnp.amax),
    ("amin", tnp.amin), ("all", tnp.all), ("any", tnp.any),
]
AXES = [None, 0, 1, -1, (0, 2), (0, 1, 2), ()]
SHAPES = [(2, 3, 4), (2, 0, 3)]
# Compiled backends take a representative subset (compile time; see conftest.py).
AXES_BY_BACKEND = {"numba_cpu": [None, 1, (0, 2)]}
SHAPES_BY_BACKEND = {"numba_cpu": [(2, 3, 4)]}


@pytest.mark.parametrize("name,fn", REDUCTIONS, ids=[r[0] for r in REDUCTIONS])
def test_reduction(name, fn, dtype, rng, backend):
    for shape in SHAPES_BY_BACKEND.get(backend, SHAPES):
        x = make(rng, shape, dtype, "small")
        for axis in AXES_BY_BACKEND.get(backend, AXES):
            for keepdims in (False, True):
                assert_matches_numpy(lambda x: fn(x, axis=axis, keepdims=keepdims), x, backend=backend)
    assert_matches_numpy(lambda x: fn(x), make(rng, (), dtype), backend=backend)
    assert_matches_numpy(lambda x: fn(x[::2, ::-1]), make(rng, (4, 3), dtype), backend=backend)


@pytest.mark.parametrize("name", ["sum", "prod", "mean", "var", "std"])
def test_reduction_dtype_argument(name, rng, backend):
    fn = getattr(tnp, name)
    for src in (np.int32, np.float32, np.bool_):
        x = make(rng, (3, 4), src, "small")
        for dtype in (np.float64, np.float32, np.int64):
            assert_matches_numpy(lambda x: fn(x, axis=1, dtype=dtype), x, backend=backend)


def test_var_std_ddof(rng, backend):
    x = make(rng, (4, 5), np.float64)
    for ddof in (0, 1, 2):
        assert_matches_numpy(lambda x: tnp.var(x, axis=0, ddof=ddof), x, backend=backend)
        assert_matches_numpy(lambda x: tnp.std(x, ddof=ddof), x, backend=backend)


@pytest.mark.parametrize("name,fn", [("argmax", tnp.argmax), ("argmin", tnp.argmin)])
def test_arg_reductions(name, fn, dtype, rng, backend):
    x = make(rng, (3, 4, 5), dtype, "small")
    for axis in (None, 0, 1, -1):
        for keepdims in (False, True):
            assert_matches_numpy(lambda x: fn(x, axis=axis, keepdims=keepdims), x, backend=backend)
    # Empty axes: NumPy raises, and so must tracejit.
    assert_matches_numpy(lambda x: fn(x, axis=1), make(rng, (3, 0), dtype), backend=backend)
    assert_matches_numpy(lambda x: fn(x, axis=0), make(rng, (0, 3), dtype), backend=backend)


def test_argmax_nan_first_occurrence(backend):
    x = np.array([[1.0, np.nan, 3.0, np.nan], [2.0, 2.0, 1.0, 0.0]])
    assert_matches_numpy(lambda x: tnp.argmax(x, axis=1), x, backend=backend)
    assert_matches_numpy(lambda x: tnp.argmin(x, axis=1), x, backend=backend)
    assert_matches_numpy(lambda x: tnp.max(x, axis=1), x, backend=backend)


@pytest.mark.parametrize("name,fn", [("cumsum", tnp.cumsum), ("cumprod", tnp.cumprod)])
def test_scans(name, fn, dtype, rng, backend):
    x = make(rng, (3, 4), dtype, "small")
    for axis in (None, 0, 1, -1):
        assert_matches_numpy(lambda x: fn(x, axis=axis), x, backend=backend)
    assert_matches_numpy(lambda x: fn(x, axis=0, dtype=np.float64), x, backend=backend)
    assert_matches_numpy(lambda x: fn(x), make(rng, (0,), dtype), backend=backend)


def test_methods(rng, backend):
    x = make(rng, (3, 4), np.float32)
    for method in ("sum", "mean", "max", "min", "prod", "argmax", "argmin", "std", "var",
                   "all", "any", "cumsum", "cumprod"):
        assert_matches_numpy(lambda x: getattr(x, method)(), x, backend=backend)
        assert_matches_numpy(lambda x: getattr(x, method)(axis=0), x, backend=backend)


def test_numpy_functions_on_tracers_dispatch(rng, backend):
    """np.* calls on traced values go through __array_function__/__array_ufunc__."""
    x = make(rng, (3, 4), np.float64)
    assert_matches_numpy(lambda x: np.sum(np.exp(x), axis=1), x, backend=backend)
    assert_matches_numpy(lambda x: np.mean(x, axis=0, keepdims=True), x, backend=backend)
    assert_matches_numpy(lambda x: np.add.reduce(x, axis=1), x, backend=backend)
    assert_matches_numpy(lambda x: np.maximum.reduce(x), x, backend=backend)
    assert_matches_numpy(lambda x: np.multiply.accumulate(x, axis=1), x, backend=backend)
    assert_matches_numpy(lambda x: np.exp(x, dtype=np.float32), x, backend=backend)
    assert_matches_numpy(lambda x: np.where(x > 0, np.sqrt(np.abs(x)), -x), x, backend=backend)
    assert_matches_numpy(lambda x: np.linalg.norm(x), x, backend=backend)
