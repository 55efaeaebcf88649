"""The CPU backend's vectorisable math functions (``vector_math.py``): ULP bounds over each whole
domain against a high-precision reference; NumPy's results at inf, -inf, NaN, signed zeros,
denormals, overflow and domain edges; loops calling them vectorise (at Numba's default
optimisation, in a subprocess: the suite runs at NUMBA_OPT=0); kernels call them."""
from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from numba import njit

import tracejit
import tracejit.numpy as tnp
from oracle import assert_matches_numpy
from tracejit.backends import vector_math

F32, F64 = np.float32, np.float64
N = 1_000_000
INF32, ONE32 = 0x7F800000, 0x3F800000
INF64, ONE64 = 0x7FF0000000000000, 0x3FF0000000000000
# float64 functions are measured against np.longdouble: x86's 80-bit float (or a 128-bit one).
EXTENDED = np.finfo(np.longdouble).nmant >= 63
needs_extended = pytest.mark.skipif(not EXTENDED, reason="np.longdouble is float64 here: no "
                                    "reference precise enough for the float64 functions")
# The numba_cpu kernels' floating-point flags (numba_cpu.kernel_build): elementwise, reductions.
ELEMENTWISE, REDUCTION = frozenset({"contract"}), frozenset({"reassoc", "contract"})


def bit_range(dtype, lo, hi, n):
    """n values spread evenly over the bit patterns lo ... hi: every binade, evenly within it."""
    return np.linspace(lo, hi, n).astype(np.int32 if dtype == F32 else np.int64).view(dtype)


def signed(x):
    return np.concatenate([x, -x])


def every_float(dtype, n=N // 2):
    """Finite values of both signs from 0 to the largest, denormals included."""
    return signed(bit_range(dtype, 0, INF32 - 1 if dtype == F32 else INF64 - 1, n))


# name: (NumPy's function, bound in ULP: the measured one (vector_math's table) + about 0.5,
# the domain densely where its reduction or branches change, edge values beyond the common ones)
CASES = {
    "exp_f32": (np.exp, 1.5, lambda: np.linspace(-110, 95, N, dtype=F32),
                [88.72283, 88.72284, 88.7229, -87.33654, -103.97, -103.98, -104.5, -150.0]),
    "tanh_f32": (np.tanh, 1.8, lambda: np.linspace(-12, 12, N, dtype=F32),
                 [0.6249, 0.625, -0.625, 9.0, -9.0, 50.0, 1e-8]),
    "log_f32": (np.log, 1.4, lambda: np.linspace(0.5, 2, N, dtype=F32),
                [0.70710677, 0.7071068, 1.4142135, 1.4142137, 0.99999994, 1.0000001]),
    "log1p_f32": (np.log1p, 1.4, lambda: np.linspace(-1, 3, N, dtype=F32),
                  [-1.0000001, -0.99999994, 0.99999994, 1.0000001, 2.0 ** -25, -2.0 ** -25,
                   -0.29289323, 0.41421357]),
    "expm1_f32": (np.expm1, 1.75, lambda: np.linspace(-30, 89, N, dtype=F32),
                  [88.72283, 88.72284, 88.7229, -25.0, -17.0, 0.34657, -0.34657, 2.0 ** -25,
                   2.0 ** -26, 17.3, 17.4]),
    "sin_f32": (np.sin, 1.0, lambda: np.linspace(-100, 100, N, dtype=F32),
                [1.5707964, 3.1415927, 4.712389, 2.0 ** 24, 2.0 ** 24 - 1, 2.0 ** 24 + 2, 1e10,
                 1e30, 8192.0, 71476.0625, 1e-20, 3.0 ** 40]),
    "exp_f64": (np.exp, 1.4, lambda: np.linspace(-750, 712, N),
                [709.782712893384, 709.7827128933841, 709.79, 710.0, -708.39, -708.4, -745.13,
                 -745.14, -746.0, -1000.0, 1e-300]),
    "tanh_f64": (np.tanh, 1.8, lambda: np.linspace(-20, 20, N),
                 [0.6249999999999999, 0.625, 19.06, 20.0, -20.0, 1e-300]),
    "log_f64": (np.log, 1.4, lambda: np.linspace(0.5, 2, N),
                [0.7071067811865475, 0.7071067811865476, 1.414213562373095, 1.4142135623730951,
                 0.9999999999999999, 1.0000000000000002]),
}
CASES["cos_f32"] = (np.cos,) + CASES["sin_f32"][1:]
COMMON_EDGES = [np.inf, -np.inf, np.nan, 0.0, -0.0, 1.0, -1.0, 0.5, 2.0, -2.0, 1e-3]
EXTREME_EDGES = {F32: [1e-45, -1e-45, 1e-40, -1e-40, 1.1754942e-38, 1.1754944e-38,
                       3.4028235e38, -3.4028235e38],
                 F64: [5e-324, -5e-324, 1e-310, -1e-310, 2.225073858507201e-308,
                       2.2250738585072014e-308, 1.7976931348623157e308, -1.7976931348623157e308]}
NAMES = [pytest.param(name, marks=() if name.endswith("f32") else needs_extended)
         for name in CASES]


def dtype_of(name):
    return F32 if name.endswith("f32") else F64


def domain(name):
    dtype = dtype_of(name)
    x = np.concatenate([CASES[name][2](), every_float(dtype),
                        signed(bit_range(dtype, 0, ONE32 if dtype == F32 else ONE64, N // 4))])
    return x.astype(dtype)


def edges(name):
    dtype = dtype_of(name)
    values = COMMON_EDGES + EXTREME_EDGES[dtype] + CASES[name][3]
    return np.array(values + [-v for v in values], dtype=dtype)


@functools.cache
def loop(name, flags):
    """A loop applying the function, compiled with a numba_cpu kernel's options."""
    fn = getattr(vector_math, name)

    @njit(error_model="numpy", fastmath=set(flags))
    def apply(x, out):
        for i in range(x.size):
            out[i] = fn(x[i])

    return apply


def run(name, x, flags=ELEMENTWISE):
    out = np.empty_like(x)
    loop(name, flags)(x, out)
    return out


def reference(name, x):
    """The exact result, from float64 (float32 functions) or np.longdouble (float64 functions)
    arithmetic, and its rounding to x's dtype."""
    with np.errstate(all="ignore"):
        exact = CASES[name][0](x.astype(F64 if x.dtype == F32 else np.longdouble))
        return exact, exact.astype(x.dtype)


@functools.cache
def whole_domain(name):
    x = domain(name)
    return (x,) + reference(name, x)


def worst(name, x, got, exact=None, rounded=None):
    """The largest abs(got - exact) in units of the last place of exact rounded to x's dtype,
    its x and got; where exact rounds to +-inf or is NaN, got must be the same (0 or inf)."""
    if exact is None:
        exact, rounded = reference(name, x)
    with np.errstate(all="ignore"):
        error = np.abs(got.astype(exact.dtype) - exact) / np.spacing(np.abs(rounded)).astype(
            exact.dtype)
    special = ~np.isfinite(rounded)
    same = (np.isnan(got) & np.isnan(rounded)) | (got == rounded)
    error[special] = np.where(same[special], 0.0, np.inf)
    i = int(np.argmax(error))
    return float(error[i]), x[i], got[i]


@pytest.mark.parametrize("name", NAMES)
def test_ulp_bound_over_the_whole_domain(name):
    x, exact, rounded = whole_domain(name)
    error, at, got = worst(name, x, run(name, x), exact, rounded)
    assert error <= CASES[name][1], f"{name}({at!r}) = {got!r}: {error:.3f} ULP"


@pytest.mark.parametrize("name", NAMES)
def test_special_values_match_numpy(name):
    x = edges(name)
    got = run(name, x)
    with np.errstate(all="ignore"):
        expected = CASES[name][0](x)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    settled = np.isinf(expected) | (expected == 0)  # infinities and zeros: the same, signed
    np.testing.assert_array_equal(got[settled], expected[settled])
    np.testing.assert_array_equal(np.signbit(got[settled]), np.signbit(expected[settled]))
    error, at, value = worst(name, x, got)  # the rest (denormals too) within the bound
    assert error <= CASES[name][1], f"{name}({at!r}) = {value!r}: {error:.3f} ULP"


def test_overrides_name_functions_of_their_dtype():
    for (prim, dtype), template in vector_math.OVERRIDES.items():
        name = re.fullmatch(r"_vm\.(\w+)\(\{0\}\)", template).group(1)
        assert name == f"{prim}_{'f32' if dtype == np.float32 else 'f64'}", template
        assert name in CASES and callable(getattr(vector_math, name))


def test_kernels_call_them(rng):
    def ten(a, b):  # a float32, b float64, both positive
        return (tnp.exp(a), tnp.tanh(a), tnp.log(a), tnp.log1p(a), tnp.expm1(a), tnp.sin(a),
                tnp.cos(a), tnp.exp(b), tnp.tanh(b), tnp.log(b))

    a = rng.uniform(0.01, 20, 1025).astype(F32)
    b = rng.uniform(0.01, 20, 1025)
    assert_matches_numpy(ten, a, b, backend="numba_cpu")
    source = tracejit.compile(ten, backend="numba_cpu").lower(a, b).kernel_source()
    for template in vector_math.OVERRIDES.values():
        assert template.split("(")[0] + "(" in source


# --- at Numba's default optimisation (a subprocess): loops vectorise, bounds hold -------------

_VECTOR_OP = re.compile(r"= (?:fmul|fadd|fsub)\b[^\n]*<\d+ x (?:float|double)>")
_CALLED = re.compile(r"call [^@\n]*@([\w.$]+)\(")
_LIBM = re.compile(r"(?:llvm\.)?(?:exp|expm1|log|log1p|sin|cos|tanh)(?:f|\.|$)")


def check_optimised():
    """Run by the subprocess: each function's loop has vector arithmetic and calls no libm;
    with either kernel flags, its bound holds over the whole domain."""
    failures = []
    for name in CASES:
        if dtype_of(name) == F64 and not EXTENDED:
            continue
        x, exact, rounded = whole_domain(name)
        for flags in (ELEMENTWISE, REDUCTION):
            error, at, got = worst(name, x, run(name, x, flags), exact, rounded)
            if error > CASES[name][1]:
                failures.append(f"{name}({at!r}) = {got!r}: {error:.3f} ULP with {set(flags)}")
        ir = "".join(loop(name, ELEMENTWISE).inspect_llvm().values())
        calls = [c for c in _CALLED.findall(ir) if _LIBM.match(c)]
        if not _VECTOR_OP.search(ir) or calls:
            failures.append(f"{name}: the loop does not vectorise (libm calls: {calls})")
    return failures


def test_optimised_loops_vectorise_and_keep_their_bounds():
    env = dict(os.environ, NUMBA_OPT="3")
    here = Path(__file__).parent
    script = (f"import sys; sys.path.insert(0, {str(here)!r}); import test_vector_math as t; "
              "print('\\n'.join(t.check_optimised()))")
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", done.stdout
