"""NumPy as the oracle: run a function eagerly (tnp is NumPy outside a trace) and compiled, and
require the same values, shapes and dtypes, or the same exception type from both."""
from __future__ import annotations

import warnings

import numpy as np

import tracejit
from tracejit import pytree

RTOL = {np.dtype(np.float16): 2e-3, np.dtype(np.float32): 2e-5, np.dtype(np.float64): 1e-9}


def assert_same(actual, expected, rtol=None):
    a_leaves, a_tree = pytree.flatten(actual)
    e_leaves, e_tree = pytree.flatten(expected)
    assert a_tree == e_tree, f"structure {a_tree} != {e_tree}"
    for a, e in zip(a_leaves, e_leaves):
        assert isinstance(a, np.ndarray), f"compiled output is a {type(a).__name__}, not ndarray"
        e = np.asarray(e)
        assert a.shape == e.shape, f"shape {a.shape} != NumPy's {e.shape}"
        assert a.dtype == e.dtype, f"dtype {a.dtype} != NumPy's {e.dtype}"
        if e.dtype.kind == "f":
            tol = rtol if rtol is not None else RTOL[e.dtype]
            atol = tol * max(1.0, float(np.nanmax(np.abs(e[np.isfinite(e)]), initial=0.0))) * 1e-3
            np.testing.assert_allclose(a, e, rtol=tol, atol=atol, equal_nan=True)
        else:
            np.testing.assert_array_equal(a, e)


def assert_matches_numpy(fn, *args, backend="interpreter", rtol=None, **compile_kwargs):
    """Compare ``compile(fn)(*args)`` with ``fn(*args)`` run by NumPy."""
    compiled = tracejit.compile(fn, backend=backend, **compile_kwargs)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's own (e.g. mean of empty)
        try:
            expected = fn(*args)
        except AttributeError as e:  # `tnp.nonexistent`: a broken case, not a refusal
            raise AssertionError(f"the case itself fails under NumPy: {e}") from e
        except Exception as e:  # NumPy refuses: tracejit must refuse the same way
            # NumPy's private subclasses (UFuncTypeError, AxisError) compare by builtin base.
            base = next(c for c in type(e).__mro__ if c.__module__ == "builtins")
            try:
                compiled(*args)
            except base:
                return None
            except Exception as other:
                raise AssertionError(f"NumPy raised {type(e).__name__}: {e}; tracejit raised "
                                     f"{type(other).__name__}: {other}") from other
            raise AssertionError(f"NumPy raised {type(e).__name__}: {e}; tracejit did not")
        actual = compiled(*args)
    assert_same(actual, expected, rtol)
    return actual
