"""Property-based tests (hypothesis): broadcasting and reductions over random axes and shapes."""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tracejit.numpy as tnp
from oracle import assert_matches_numpy

DTYPES = [np.float32, np.float64, np.int32, np.int64, np.bool_]
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def broadcastable_pair(draw):
    """Two shapes that broadcast: each dim of the shorter is equal or 1 (or missing)."""
    ndim = draw(st.integers(0, 4))
    full = draw(st.lists(st.integers(0, 3), min_size=ndim, max_size=ndim))
    def variant():
        dims = [d if draw(st.booleans()) else 1 for d in full]
        drop = draw(st.integers(0, ndim))
        return tuple(dims[drop:])
    return variant(), variant()


def values(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype) == np.bool_:
        return rng.random(shape) < 0.5
    return (rng.normal(0, 4, shape)).astype(dtype)


@SETTINGS
@given(shapes=broadcastable_pair(), da=st.sampled_from(DTYPES), db=st.sampled_from(DTYPES),
       op=st.sampled_from([tnp.add, tnp.multiply, tnp.maximum, tnp.less, tnp.where]),
       seed=st.integers(0, 2**16))
def test_broadcasting_matches_numpy(shapes, da, db, op, seed):
    a, b = values(shapes[0], da, seed), values(shapes[1], db, seed + 1)
    if op is tnp.where:
        assert_matches_numpy(lambda a, b: tnp.where(a > b, a, b), a, b)
    else:
        assert_matches_numpy(op, a, b)


@st.composite
def shape_and_axes(draw):
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=0, max_size=4)))
    ndim = len(shape)
    axes = draw(st.one_of(
        st.none(),
        st.integers(-ndim, ndim - 1) if ndim else st.none(),
        st.lists(st.integers(0, ndim - 1), unique=True, max_size=ndim).map(tuple)
        if ndim else st.none()))
    return shape, axes


@SETTINGS
@given(case=shape_and_axes(), dtype=st.sampled_from(DTYPES), keepdims=st.booleans(),
       name=st.sampled_from(["sum", "prod", "mean", "max", "min", "var", "all", "any"]),
       seed=st.integers(0, 2**16))
def test_reductions_over_random_axes(case, dtype, keepdims, name, seed):
    shape, axes = case
    fn = getattr(tnp, name)
    assert_matches_numpy(lambda x: fn(x, axis=axes, keepdims=keepdims), values(shape, dtype, seed))
