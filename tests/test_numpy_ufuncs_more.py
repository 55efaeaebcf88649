"""Issue 18's elementwise functions (hypot fabs fmax fmin arcsinh arccosh arctanh deg2rad rad2deg
degrees radians sinc logaddexp2 nan_to_num) and its two derivative conventions (``x ** 0`` at 0,
std of equal values).

NumPy is the oracle for values, shapes and dtypes (``oracle.assert_matches_numpy``), finite
differences for gradients (``check_grads``, order 2, both modes). The interpreter takes every
dtype and shape one function at a time; compiled backends run all functions of a table as one
compiled function per input (one compile instead of one per function), over the dtype kinds
(conftest.py's TABLE_DTYPES) and a few shapes.
"""
from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp
from oracle import assert_matches_numpy, assert_same
from test_numpy_table import make

# name, function, domain of each operand ("ge1": x >= 1; "special": with NaN and infinities)
UNARY = [
    ("fabs", tnp.fabs, "any"), ("arcsinh", tnp.arcsinh, "any"), ("asinh", tnp.asinh, "any"),
    ("arccosh", tnp.arccosh, "ge1"), ("acosh", tnp.acosh, "ge1"),
    ("arctanh", tnp.arctanh, "unit"), ("deg2rad", tnp.deg2rad, "any"),
    ("rad2deg", tnp.rad2deg, "any"), ("degrees", tnp.degrees, "any"),
    ("radians", tnp.radians, "any"), ("sinc", tnp.sinc, "any"),
    ("nan_to_num", tnp.nan_to_num, "special"),
]
BINARY = [
    ("hypot", tnp.hypot, "any", "any"), ("fmax", tnp.fmax, "special", "special"),
    ("fmin", tnp.fmin, "special", "special"), ("logaddexp2", tnp.logaddexp2, "any", "any"),
]
UNARY_SHAPES = [(), (0,), (1,), (5,), (3, 4), "view"]
BINARY_SHAPES = [((), ()), ((1,), (5,)), ((5,), ()), ((3, 4), (4,)), ((3, 1), (1, 4)),
                 ((2, 3, 4), (3, 4)), ((0, 3), (3,)), ("view", "view")]
COMPILED_UNARY_SHAPES = [(), (3, 4), "view"]
COMPILED_BINARY_SHAPES = [((3, 1), (1, 4)), ("view", "view")]


def make_more(rng, shape, dtype, domain):
    """``test_numpy_table.make`` plus the domains of this table; "view": a strided view."""
    dtype = np.dtype(dtype)
    if shape == "view":
        return make_more(rng, (4, 6), dtype, domain)[::2, ::-2]
    if domain == "ge1":
        if dtype.kind == "f":
            return rng.uniform(1.0, 6.0, shape).astype(dtype)
        return make(rng, shape, dtype, "pos")
    if domain == "special":
        x = make(rng, shape, dtype, "any")
        if dtype.kind == "f" and x.size:
            flat = x.reshape(-1)  # a fresh array: writing through it is writing into x
            picks = rng.integers(0, 4, flat.size)
            flat[picks == 0] = np.nan
            flat[(picks == 1) & (rng.random(flat.size) < 0.5)] = np.inf
            flat[(picks == 1) & (flat != np.inf)] = -np.inf
        return x
    return make(rng, shape, dtype, domain)


def assert_each_matches(table, args, backend, shared):
    """Every function of ``table`` (name -> fn of ``args``) against NumPy. ``shared``: as one
    compiled function returning a dict (one compile), else one compiled function each."""
    if not shared:
        for name, fn in table.items():
            try:
                assert_matches_numpy(fn, *args, backend=backend)
            except AssertionError as e:
                raise AssertionError(f"{name}: {e}") from None
        return
    compiled = tracejit.compile(lambda *xs: {n: fn(*xs) for n, fn in table.items()},
                                backend=backend)
    # NumPy's warnings, the interpreter's where it runs, the CUDA simulator's (in its threads,
    # which np.errstate does not reach)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        actual = compiled(*args)
        for name, fn in table.items():
            try:
                assert_same(actual[name], fn(*args))
            except AssertionError as e:
                raise AssertionError(f"{name}: {e}") from None


# --- NumPy oracle --------------------------------------------------------------------------------

def test_unary_functions_match_numpy(backend, dtype, rng):
    shapes = UNARY_SHAPES if backend == "interpreter" else COMPILED_UNARY_SHAPES
    # One input per domain, all given to each function: {domain: array}.
    table = {name: (lambda xs, fn=fn, d=d: fn(xs[d])) for name, fn, d in UNARY}
    for shape in shapes:
        xs = {d: make_more(rng, shape, dtype, d) for d in sorted({d for _, _, d in UNARY})}
        assert_each_matches(table, (xs,), backend, shared=backend != "interpreter")


def test_binary_functions_match_numpy(backend, dtype, rng):
    shapes = BINARY_SHAPES if backend == "interpreter" else COMPILED_BINARY_SHAPES
    table = {}
    for name, fn, _, _ in BINARY:
        table[name] = fn
        table[name + " swapped"] = lambda a, b, fn=fn: fn(b, a)
    for sa, sb in shapes:
        a, b = make_more(rng, sa, dtype, "special"), make_more(rng, sb, dtype, "special")
        assert_each_matches(table, (a, b), backend, shared=backend != "interpreter")


def test_python_scalars_are_weak(backend, rng):
    """NEP 50: a Python number leaves an array's dtype alone, as a runtime argument and as a
    constant in the code; Python numbers alone give float64."""
    table = {}
    for name, fn, _, _ in BINARY:
        table[f"{name}(a, s)"] = lambda a, s, fn=fn: fn(a, s)
        table[f"{name}(s, a)"] = lambda a, s, fn=fn: fn(s, a)
        table[f"{name}(a, 2.5)"] = lambda a, s, fn=fn: fn(a, 2.5)
        table[f"{name}(-3, a)"] = lambda a, s, fn=fn: fn(-3, a)
        table[f"{name}(True, a)"] = lambda a, s, fn=fn: fn(True, a)
        table[f"{name}(s, 4.5)"] = lambda a, s, fn=fn: fn(s, 4.5)  # Python numbers alone
    table["nan_to_num(a, nan=s)"] = lambda a, s: tnp.nan_to_num(a / 0.0, nan=s, posinf=7)
    cases = [(dtype, s) for dtype in (np.float16, np.float32, np.float64, np.int8, np.uint8,
                                      np.int32, np.bool_) for s in (1.5, 2)]
    for dtype, s in cases if backend == "interpreter" else [(np.float32, 2)]:
        a = make(rng, (3, 2), dtype, "any")
        assert_each_matches(table, (a, s), backend, shared=backend != "interpreter")
    assert_each_matches({name: fn for name, fn, _ in UNARY}, (2,), "interpreter", shared=False)


def test_comparisons_with_a_python_int_argument_beyond_the_array_dtype(backend):
    """A Python int given as an argument is traced (its value unknown): compared with an
    integer array it is compared as the number it is, as NumPy does, never wrapped into the
    array's dtype (uint8 >= -4 is True; found by the fuzzer, seed 43, program 123)."""
    compare = tracejit.compile(lambda a, s: (a >= s, a < s, a == s, s > a, s != a),
                               backend=backend)
    for a in (np.array([1, 200], np.uint8)[::-1], np.array([-3, 100], np.int8),
              np.array([1, 2 ** 63], np.uint64), np.array([5, -5], np.int64)):
        for s in (-4, 5, 300, -1):
            got, want = compare(a, s), (a >= s, a < s, a == s, s > a, s != a)
            for g, w in zip(got, want):
                np.testing.assert_array_equal(g, w, err_msg=f"{a.dtype} against {s}")


def test_small_int_and_half_dtypes_promote_as_numpy(rng):
    """int8 -> float16, int16 -> float32, uint64 -> float64, float16 computed as NumPy's float16
    loops (in float32, rounded once)."""
    for dtype in (np.int8, np.uint8, np.int16, np.uint16, np.uint32, np.uint64, np.float16):
        x = make_more(rng, (3, 4), dtype, "ge1")
        table = {name: fn for name, fn, _ in UNARY}
        table.update({name: (lambda x, fn=fn: fn(x, x[::-1])) for name, fn, _, _ in BINARY})
        assert_each_matches(table, (x,), "interpreter", shared=False)


# Values where formulas lose what libm keeps: -0.0, tiny, huge, near the poles, inf, NaN.
EDGES = np.array([0.0, -0.0, 5e-324, 1e-300, -1e-300, 1e-8, -1e-8, 0.5, -0.5, 1.0, -1.0,
                  1 + 1e-12, -1 + 1e-12, 1 - 1e-12, 1.5, 2.0, -2.0, 1e8, -1e8, 1e154, -1e155,
                  1e300, -1e300, 1.7e308, -1.7e308, np.inf, -np.inf, np.nan])


def _assert_close_in_ulps(actual, expected, ulps, what):
    assert actual.dtype == expected.dtype, what
    same = (actual == expected) | (np.isnan(actual) & np.isnan(expected))
    spacing = np.spacing(np.abs(expected).astype(expected.dtype))
    close = same | (np.abs(actual - expected) <= ulps * spacing)
    assert close.all(), f"{what}: at {np.argwhere(~close).ravel()}: {actual[~close]} != " \
                        f"NumPy's {expected[~close]}"
    zero = expected == 0  # the sign of a zero result (-0.0 stays -0.0)
    np.testing.assert_array_equal(np.signbit(actual[zero]), np.signbit(expected[zero]), what)


@pytest.fixture(scope="module")
def edge_functions():
    """The compiled functions of the edge tests, shared by them (one compile per backend)."""
    def unary(x):
        return {name: fn(x) for name, fn, _ in UNARY}

    def binary(a, b):
        return {name: fn(a, b) for name, fn, _, _ in BINARY}

    return {backend: (tracejit.compile(unary, backend=backend),
                      tracejit.compile(binary, backend=backend))
            for backend in ("interpreter", "numba_cpu")}


def test_edges_match_numpy_to_a_few_ulps(edge_functions, backend):
    unary, binary = edge_functions[backend]
    a, b = np.meshgrid(EDGES[::3], EDGES[::3])
    # compiled: float64 here, float32 in test_accuracy_where_naive_formulas_fail (compile time)
    dtypes = (np.float64, np.float32, np.float16) if backend == "interpreter" else (np.float64,)
    for dtype in dtypes:
        with np.errstate(all="ignore"):
            x = EDGES.astype(dtype)
            got, got2 = unary(x), binary(a.astype(dtype), b.astype(dtype))
            for name, fn, _ in UNARY:
                _assert_close_in_ulps(got[name], fn(x), 4, f"{name}[{np.dtype(dtype)}]")
            for name, fn, _, _ in BINARY:
                _assert_close_in_ulps(got2[name], fn(a.astype(dtype), b.astype(dtype)), 4,
                                      f"{name}[{np.dtype(dtype)}]")


def test_accuracy_where_naive_formulas_fail(edge_functions):
    """Dense samples of the hard regions, compiled, against NumPy in ulps: arctanh near -1
    (through 2x / (1 - x) it lost 1e-2 in float32), arccosh near 1 and beyond 1e154, arcsinh
    for huge and tiny |x| of both signs, sinc near 0, logaddexp2 of near-equal arguments."""
    unary, binary = edge_functions["numba_cpu"]
    rng = np.random.default_rng(7)
    close_to_one = 10.0 ** -rng.uniform(1, 15, 500)
    samples = {"arctanh": np.concatenate([-1 + close_to_one, 1 - close_to_one]),
               "arccosh": np.concatenate([1 + close_to_one, 10.0 ** rng.uniform(0, 308, 500)]),
               "arcsinh": 10.0 ** rng.uniform(-308, 308, 1000) * rng.choice([-1, 1], 1000),
               "sinc": 10.0 ** rng.uniform(-12, 1, 1000) * rng.choice([-1, 1], 1000)}
    for name, x in samples.items():
        for dtype in (np.float64, np.float32):
            with np.errstate(all="ignore"):
                xs = x.astype(dtype)
                _assert_close_in_ulps(unary(xs)[name], getattr(np, name)(xs), 3, name)
    a = rng.normal(0, 30, 1000)
    b = a + rng.normal(0, 1e-3, 1000)
    for dtype in (np.float64, np.float32):
        got = binary(a.astype(dtype), b.astype(dtype))["logaddexp2"]
        expected = np.logaddexp2(a.astype(dtype), b.astype(dtype))
        # absolute: where the result is near 0, NumPy's own error is many of its ulps
        np.testing.assert_allclose(got, expected, rtol=4 * np.finfo(dtype).eps,
                                   atol=4 * np.finfo(dtype).eps * np.abs(a).max())


def test_sinc_follows_numpys_steps_for_each_dtype():
    for x in (np.array([0, 1, -2, 3], np.int32), np.array([True, False]),
              np.array([0.0, -0.0, 0.5], np.float16), np.float32(0.0), 0.25, 0, False):
        assert_matches_numpy(lambda x: tnp.sinc(x), x)


# --- nan_to_num's keywords -------------------------------------------------------------------

def test_nan_to_num_keywords(backend, rng):
    x = np.array([[np.nan, np.inf, -np.inf, 1.5], [-0.0, np.nan, 3.0, -np.inf]], np.float32)
    cases = [
        lambda x: tnp.nan_to_num(x), lambda x: tnp.nan_to_num(x, nan=-1.0),
        lambda x: tnp.nan_to_num(x, posinf=1e3, neginf=-7),
        lambda x: tnp.nan_to_num(x, False, 2.0, 3.0, 4.0),
        lambda x: tnp.nan_to_num(x, copy=False, nan=np.float64(0.25)),
        lambda x: tnp.nan_to_num(x, nan=np.array([1.0, 2.0, 3.0, 4.0])),  # broadcast
        lambda x: tnp.nan_to_num(x, nan=x[0, 3] * 2, posinf=x[1, 2]),  # traced values
        lambda x: tnp.nan_to_num(x.astype(np.float16), posinf=1e10),  # inf again in float16
        lambda x: tnp.nan_to_num(x[0, 0]),  # 0-d
        lambda x: tnp.nan_to_num(x[:, :0]),  # empty
        lambda x: tnp.nan_to_num((x > 0).astype(np.int32), nan=5),  # integers: unchanged
        lambda x: tnp.nan_to_num(x > 0, nan=5),
    ]
    if backend != "interpreter":
        cases = cases[:1] + cases[5:7]
    for case in cases:
        assert_matches_numpy(case, x, backend=backend)


def test_nan_to_num_refuses_what_numpy_refuses():
    x = np.array([np.nan, 1.0])
    bad = [(lambda x: tnp.nan_to_num(x, nan="a"), TypeError, "Cannot cast scalar"),
           (lambda x: tnp.nan_to_num(x, posinf=1j), TypeError, "Cannot cast scalar"),
           (lambda x: tnp.nan_to_num(x, nan=np.ones(3)), ValueError, "could not broadcast"),
           (lambda x: tnp.nan_to_num(x, copy="yes"), ValueError, "strings are not allowed")]
    for case, error, message in bad:
        with pytest.raises(error):
            case(x)  # NumPy itself
        with pytest.raises(error, match=message):
            tracejit.compile(case)(x)


# --- NumPy's protocols, keywords and refusals ---------------------------------------------------

def test_numpy_names_reach_the_traced_functions(backend, rng):
    """``np.hypot(tracer, ...)`` (``__array_ufunc__``) and ``np.sinc(tracer)``
    (``__array_function__``) compile: the same code runs under NumPy and traced."""
    a, b = make(rng, (3, 4), np.float64), make(rng, (4,), np.float64)

    def program(a, b):
        return (np.hypot(a, b), np.fabs(a), np.fmax(a, b), np.fmin(b, a), np.arcsinh(a),
                np.asinh(b), np.arccosh(np.abs(a) + 1), np.acosh(np.abs(b) + 1),
                np.arctanh(np.tanh(a)), np.atanh(np.tanh(b)), np.deg2rad(a), np.rad2deg(a),
                np.degrees(b), np.radians(b), np.logaddexp2(a, b), np.sinc(a),
                np.nan_to_num(a / b, posinf=9.0), np.fmax(a, 2), np.hypot(3, b))

    assert_matches_numpy(program, a, b, backend=backend)
    assert tnp.hypot.__name__ == "hypot" and tnp.nan_to_num.__name__ == "nan_to_num"
    assert tnp.radians.__name__ == "radians" and tnp.asinh is tnp.arcsinh


def test_dtype_keyword_and_refused_keywords():
    a = np.array([1, 5, -3])
    for fn in (lambda a: np.fmax(a, 2, dtype=np.float64), lambda a: tnp.fmin(a, 2, dtype=float),
               lambda a: tnp.hypot(a, a, dtype=np.float64)):
        assert_matches_numpy(fn, a)
    buffer = np.empty(3)
    for fn in (lambda a: tnp.hypot(a, 1.0, out=buffer), lambda a: np.hypot(a, 1.0, out=buffer),
               lambda a: np.fabs(a, where=a > 0), lambda a: tnp.deg2rad(a, out=(buffer,))):
        with pytest.raises(NotImplementedError, match=r"(out|where)="):
            tracejit.compile(fn)(a.astype(np.float64))
    with pytest.raises(NotImplementedError, match="out= \\(given positionally\\)"):
        tracejit.compile(lambda a: tnp.fmax(a, a, a))(a.astype(np.float64))
    for fn in (lambda a: tnp.hypot(a), lambda a: tnp.fmax(a, a, a, a)):  # NumPy: TypeError
        assert_matches_numpy(fn, a.astype(np.float64))


# --- gradients -----------------------------------------------------------------------------------

def grad_input(rng, shape, domain, dtype=np.float64):
    if domain == "ge1":
        return rng.uniform(1.2, 4.0, shape).astype(dtype)
    if domain == "special":  # finite, away from ties
        return rng.uniform(-3, 3, shape).astype(dtype)
    return make(rng, shape, dtype, domain)


@pytest.mark.parametrize("name,fn,domain", UNARY, ids=[c[0] for c in UNARY])
def test_unary_gradients(name, fn, domain, rng):
    for shape in [(), (5,), (2, 3)]:
        tracejit.check_grads(fn, (grad_input(rng, shape, domain),), order=2)
    tracejit.check_grads(fn, (grad_input(rng, (4,), domain, np.float32),), order=1)


@pytest.mark.parametrize("name,fn,da,db", BINARY, ids=[c[0] for c in BINARY])
def test_binary_gradients(name, fn, da, db, rng):
    for sa, sb in [((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 1), (1, 4)), ((), (3,))]:
        a, b = grad_input(rng, sa, da), grad_input(rng, sb, db)
        tracejit.check_grads(fn, (a, b), order=2)
    a, b = grad_input(rng, (3, 2), da, np.float32), grad_input(rng, (2,), db, np.float32)
    tracejit.check_grads(fn, (a, b), order=1)
    tracejit.check_grads(lambda a: fn(a, 1.5), (a,), order=1)  # with a weak Python scalar


def test_compiled_gradients_equal_the_interpreted_ones(rng):
    """grad and jvp of every function, compiled on numba_cpu as one graph, against the same
    derivatives run eagerly (themselves checked against finite differences above)."""
    x, y = rng.uniform(-0.9, 0.9, (3, 4)), rng.uniform(-2.0, 2.0, (4,))

    def total(x, y):
        parts = [fn(x + 2.0 if domain == "ge1" else x) for _, fn, domain in UNARY]
        parts += [fn(x, y) for _, fn, _, _ in BINARY]
        return sum((p * (k + 1)).sum() for k, p in enumerate(parts))

    f = tracejit.grad(total, argnums=(0, 1))
    assert_same(tracejit.compile(f, backend="numba_cpu")(x, y), f(x, y), rtol=1e-12)
    j = lambda x, y: tracejit.jvp(total, (x, y), (np.ones_like(x), y))[1]  # noqa: E731
    assert_same(tracejit.compile(j, backend="numba_cpu")(x, y), j(x, y), rtol=1e-12)


def _grad(fn, x):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no inf or NaN even unselected
        return tracejit.grad(lambda x: fn(x).sum())(x)


def _jvp(fn, x, t):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        return tracejit.jvp(fn, (x,), (t,))[1]


def test_derivatives_at_the_edges():
    # fmax/fmin: the NaN operand gets nothing, the number everything; ties split as maximum's.
    a, b = np.array([np.nan, 1.0, 2.0, np.nan]), np.array([3.0, np.nan, 2.0, np.nan])
    for fn in (tnp.fmax, tnp.fmin):
        ga, gb = tracejit.grad(lambda a, b: tnp.nan_to_num(fn(a, b)).sum(), argnums=(0, 1))(a, b)
        np.testing.assert_array_equal(ga, [0.0, 1.0, 0.5, 0.0])
        np.testing.assert_array_equal(gb, [1.0, 0.0, 0.5, 0.0])
        t = tracejit.jvp(fn, (a, b), (np.full(4, 2.0), np.full(4, 3.0)))[1]
        np.testing.assert_array_equal(t[:3], [3.0, 2.0, 2.5])
    # nan_to_num: the identity where finite, 0 at NaN and at the infinities, in both modes.
    x = np.array([1.5, np.nan, np.inf, -np.inf, -0.0])
    np.testing.assert_array_equal(_grad(tnp.nan_to_num, x), [1, 0, 0, 0, 1])
    np.testing.assert_array_equal(_jvp(tnp.nan_to_num, x, np.full(5, 3.0)), [3, 0, 0, 0, 3])
    # hypot: no overflow, and 0 (abs's convention) at the origin, to second order.
    big = np.array([1e200, 3e-200, 0.0])
    np.testing.assert_allclose(tracejit.grad(lambda a: tnp.hypot(a, big).sum())(big),
                               [math.sqrt(0.5), math.sqrt(0.5), 0.0])
    h = tracejit.hessian(lambda v: tnp.hypot(v[0], v[1]))(np.array([0.0, 0.0]))
    assert np.isfinite(h).all()
    # arcsinh: 1 / sqrt(1 + x*x) without overflow; arccosh: 1 / sqrt(x*x - 1) for huge x.
    x = np.array([0.0, -0.0, 1e-300, 1e200, -1e300])
    np.testing.assert_allclose(_grad(tnp.arcsinh, x), [1.0, 1.0, 1.0, 1e-200, 1e-300])
    np.testing.assert_allclose(_grad(tnp.arccosh, np.array([1e200, 2.0])),
                               [1e-200, 1 / math.sqrt(3)])
    # arctanh, sinh-like odd composites: the derivative at 0 is the smooth one.
    np.testing.assert_allclose(_grad(tnp.arctanh, np.array([0.0, -0.0, -0.5])),
                               [1.0, 1.0, 1 / 0.75])
    # sinc at 0: value 1, derivative 0, second derivative -pi**2/3 (forward and reverse).
    assert _grad(tnp.sinc, np.zeros(2)).tolist() == [0.0, 0.0]
    for second in (tracejit.hessian(tnp.sinc)(0.0),
                   tracejit.jacfwd(tracejit.grad(tnp.sinc))(0.0)):
        np.testing.assert_allclose(second, -math.pi ** 2 / 3, rtol=1e-12)
    # deg2rad/rad2deg: the constant, exactly.
    assert tracejit.grad(tnp.deg2rad)(1.0) == math.pi / 180
    assert tracejit.grad(lambda x: tnp.rad2deg(x))(1.0) == 180 / math.pi


# --- the two derivative conventions of issue 18 --------------------------------------------

def test_the_derivative_of_x_to_the_zero_is_zero_everywhere():
    powers = [lambda x: x ** 0, lambda x: x ** 0.0, lambda x: tnp.power(x, np.int64(0)),
              lambda x: tnp.power(x, np.zeros(3))]
    x = np.array([0.0, -2.0, 3.0])
    for f in powers:
        np.testing.assert_array_equal(_grad(f, x), np.zeros(3))
        np.testing.assert_array_equal(_jvp(f, x, np.ones(3)), np.zeros(3))
        np.testing.assert_array_equal(tracejit.hessian(lambda x: f(x).sum())(x), np.zeros((3, 3)))
        g = tracejit.compile(tracejit.grad(lambda x: f(x).sum()), backend="numba_cpu")
        np.testing.assert_array_equal(g(x), np.zeros(3))
    assert tracejit.grad(lambda x: x ** 0)(0.0) == 0.0
    assert tracejit.grad(tracejit.grad(lambda x: x ** 0))(0.0) == 0.0
    # Other exponents at 0 keep their values: d(x)/dx = 1, d(x^2)/dx = 0, d2(x^2)/dx2 = 2.
    for f, first, second in [(lambda x: x ** 1, 1.0, 0.0), (lambda x: x ** 2, 0.0, 2.0),
                             (lambda x: x ** 2.0, 0.0, 2.0), (lambda x: x ** 3, 0.0, 0.0)]:
        assert tracejit.grad(f)(0.0) == first
        assert tracejit.grad(tracejit.grad(f))(0.0) == second
        assert tracejit.jvp(tracejit.grad(f), (0.0,), (1.0,))[1] == second


def test_std_of_equal_values_has_derivative_zero():
    """std (and var-based roots) of one value or of equal values: 0 in both modes (the
    one-sided convention), never NaN; elsewhere the ordinary derivative."""
    cases = [(lambda x: tnp.std(x), np.array([2.0])), (lambda x: tnp.std(x), np.full(4, 1.5)),
             (lambda x: tnp.std(x, axis=1), np.array([[1.0, 1.0], [1.0, 3.0]])),
             (lambda x: x.std(axis=0, keepdims=True), np.ones((3, 2))),
             (lambda x: tnp.std(x, ddof=1), np.full(3, -2.0))]
    for f, x in cases:
        assert np.isfinite(_grad(f, x)).all()
        for t in (np.ones_like(x), np.arange(x.size, dtype=float).reshape(x.shape)):
            assert np.isfinite(_jvp(f, x, t)).all()
    f, x = cases[2]
    assert_same(tracejit.compile(tracejit.grad(lambda x: f(x).sum()), backend="numba_cpu")(x),
                _grad(f, x))
    np.testing.assert_array_equal(_grad(lambda x: tnp.std(x, axis=1),
                                        np.array([[1.0, 1.0], [1.0, 3.0]]))[0], [0.0, 0.0])
    assert _jvp(lambda x: tnp.std(x), np.full(4, 1.5), np.arange(4.0)) == 0.0
    np.testing.assert_array_equal(tracejit.hessian(tnp.std)(np.full(3, 1.5)), np.zeros((3, 3)))
    # Away from equal values: the ordinary derivative, to second order.
    tracejit.check_grads(lambda x: tnp.std(x, axis=-1), (np.random.default_rng(0).normal(
        size=(2, 5)),), order=2)
    # sqrt keeps its documented derivative at 0: inf.
    with np.errstate(divide="ignore"):
        assert tracejit.grad(tnp.sqrt)(0.0) == np.inf


# --- CUDA (the simulator in CI), and the generated CUDA code compiled for a real GPU ---------

def _cuda_program(x, y):
    return {"hypot": tnp.hypot(x, y), "arcsinh": tnp.arcsinh(x),
            "arccosh": tnp.arccosh(tnp.abs(x) + 1), "arctanh": tnp.arctanh(tnp.tanh(x)),
            "fmax": tnp.fmax(x, y), "fmin": tnp.fmin(x, y), "fabs": tnp.fabs(x),
            "sinc": tnp.sinc(x), "logaddexp2": tnp.logaddexp2(x, y),
            "deg2rad": tnp.deg2rad(x), "rad2deg": tnp.rad2deg(y),
            "nan_to_num": tnp.nan_to_num(x / (y > 0))}


def test_cuda_backend_matches_numpy_and_its_gradients_the_interpreters(rng):
    for dtype in (np.float32, np.float64, np.int64):
        x, y = make_more(rng, (3, 4), dtype, "special"), make_more(rng, (4,), dtype, "special")
        assert_each_matches({"all": _cuda_program}, (x, y), "numba_cuda", shared=True)
    # y > 0: where nan_to_num meets an infinity, 0 * the infinite derivative of x / 0 is NaN
    x, y = rng.uniform(-2, 2, (3, 4)), rng.uniform(0.5, 2, (4,))
    loss = tracejit.grad(lambda x, y: sum(v.sum() for v in _cuda_program(x, y).values()),
                         argnums=(0, 1))
    assert_same(tracejit.compile(loss, backend="numba_cuda")(x, y), loss(x, y), rtol=1e-12)


def run_python(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env={**os.environ, **env}, timeout=300)


def test_generated_cuda_kernels_compile_to_ptx():
    """The new primitives' scalar code (np.hypot, np.arcsinh) is valid CUDA device code: the
    simulator runs Python, so only NVVM shows it."""
    result = run_python("""
        import numpy as np, tracejit
        from tracejit.backends import numba_cuda
        from tracejit.passes.pipeline import run_pipeline
        import test_numpy_ufuncs_more as t

        count = 0
        loss = lambda x, y: sum(v.sum() for v in t._cuda_program(x, y).values())
        for fn, dtype in ((t._cuda_program, np.float32), (tracejit.grad(loss, (0, 1)), float)):
            x, y = np.ones((3, 4), dtype), np.ones(4, dtype)
            stages, _ = run_pipeline(tracejit.make_ir(fn)(x, y), fusion=True)
            count += len(numba_cuda.compile_ptx(list(stages.values())[-1]))
        print("PTX", count)
    """, NUMBA_ENABLE_CUDASIM="0", PYTHONPATH=os.path.dirname(__file__))
    if "DynamicLibNotFoundError" in result.stderr or "NvvmSupportError" in result.stderr:
        pytest.fail("NVVM is not installed: the test extras install nvidia-cuda-nvcc-cu12 and "
                    "nvidia-cuda-nvrtc-cu12 for this check\n" + result.stderr[-2000:])
    assert result.returncode == 0, result.stderr[-4000:]
    assert int(result.stdout.split("PTX")[1]) >= 2
