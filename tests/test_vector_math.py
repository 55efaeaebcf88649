"""The CPU backend's vectorisable float32 exp and tanh: ULP bounds over the whole range, and
NumPy's behaviour at inf, -inf, NaN, signed zeros, denormals and the overflow edges."""
from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from tracejit.backends import vector_math


@njit(error_model="numpy")
def _apply_exp(x, out):
    for i in range(x.size):
        out[i] = vector_math.exp_f32(x[i])


@njit(error_model="numpy")
def _apply_tanh(x, out):
    for i in range(x.size):
        out[i] = vector_math.tanh_f32(x[i])


APPLY = {"exp": _apply_exp, "tanh": _apply_tanh}
# Documented in vector_math.py; NumPy's own float32 functions are within 2.4 / 1.4 ULP.
BOUND = {"exp": 2.1, "tanh": 1.3}
RANGE = {"exp": (-110.0, 95.0), "tanh": (-12.0, 12.0)}
EDGES = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 1e-40, -1e-40, 1e-45, 88.72283, 88.72284,
                  88.7229, -87.0, -87.33654, -103.97, -103.98, -150.0, 1e-8, 0.6249, 0.625,
                  9.0, -9.0, 50.0], dtype=np.float32)


def ulp_error(got, x, fn):
    ref = getattr(np, fn)(x.astype(np.float64))
    with np.errstate(over="ignore"):
        ref32 = ref.astype(np.float32)
    finite = np.isfinite(ref32)
    spacing = np.spacing(np.abs(ref32[finite])).astype(np.float64)
    return np.abs(got[finite].astype(np.float64) - ref[finite]) / spacing


@pytest.mark.parametrize("fn", ["exp", "tanh"])
def test_ulp_bound_over_the_whole_range(fn):
    lo, hi = RANGE[fn]
    x = np.concatenate([np.linspace(lo, hi, 1_000_001, dtype=np.float32), EDGES])
    got = np.empty_like(x)
    APPLY[fn](x, got)
    assert ulp_error(got, x, fn).max() <= BOUND[fn]


@pytest.mark.parametrize("fn", ["exp", "tanh"])
def test_special_values_match_numpy(fn):
    got = np.empty_like(EDGES)
    APPLY[fn](EDGES, got)
    with np.errstate(all="ignore"):
        expected = getattr(np, fn)(EDGES)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(expected))
    np.testing.assert_array_equal(np.signbit(got[got == 0]), np.signbit(expected[got == 0]))
    # At the bottom of the denormals, one ULP of 1.4e-45 either way.
    np.testing.assert_allclose(got, expected, rtol=3e-7, atol=2e-45)
