"""Vectorisable math functions for the Numba CPU backend.

Numba lowers ``np.exp``, ``np.log``, ``np.sin``... on scalars to calls into libm, which keep a
loop from being vectorised: a fused kernel then runs no faster than NumPy, or many times slower
(libm's float32 ``sinf``, ``log1pf``, ``expm1f``, ``tanhf`` and float64 ``tanh`` take 8 to 15 ns
a call here). These are branch-free versions (selects only) that LLVM vectorises: our own
range reductions, and polynomials that are minimax fits (Remez exchange in 50-digit arithmetic)
of the reduced function on the reduced interval, the error weighted as it reaches the result,
the coefficients rounded to the working precision.

| function | method | ULP | NumPy's |
|---|---|---|---|
| ``exp_f32`` | x = n ln2 + r, abs(r) <= ln2/2; degree-6 polynomial; 2^n from bits | 1.00 | 2.35 |
| ``tanh_f32`` | odd polynomial below 0.625, else 1 - 2 / (exp(2 abs(x)) + 1) | 1.29 | 1.36 |
| ``log_f32`` | x = 2^k (1 + f), 1 + f in [sqrt(1/2), sqrt(2)); s = f / (2 + f); | 0.82 | 3.51 |
| | log(1 + f) = f - (f^2/2 - s (f^2/2 + R(s^2))), R of degree 3 | | |
| ``log1p_f32`` | the same on u = 1 + x, plus the rounding error of 1 + x over u | 0.83 | 1.89 |
| ``expm1_f32`` | 2^n (expm1(r) + 1) - 1, grouped so that the -1 is exact | 1.25 | 2.61 |
| ``sin_f32``, | in float64: x 2/pi mod 4 exactly (below); degree-9 and -10 | 0.50 | 1.39 |
| ``cos_f32`` | polynomials on abs(r) <= pi/4, one rounding to float32 | | |
| ``exp_f64`` | as ``exp_f32``, r kept in two parts, degree 11 | 0.86 | 0.72 |
| ``tanh_f64`` | as ``tanh_f32``, odd polynomial of degree 23 | 1.26 | 1.16 |
| ``log_f64`` | as ``log_f32``, R of degree 7 | 0.83 | 0.62 |

Bounds are the largest errors in ULP ``tests/test_vector_math.py`` measures (it allows 0.5 more)
over each whole domain, against a float64 reference for the float32 functions and an
``np.longdouble`` (80-bit) one for the float64 functions; NumPy 2.4's own functions measured the
same way on this machine (x86-64, AVX-512). inf, -inf, NaN, signed zeros, denormal inputs and
outputs, overflow, log of 0 and of negatives, and sin/cos of huge arguments behave as NumPy's.

sin and cos reduce exactly over the whole float32 range: x = m 2^e with an integer m < 2^24, and
x 2/pi mod 4 = m (2^e 2/pi mod 4), whose second factor is a 3-part float64 row of a table (built
at import from 320 bits of 2/pi) for abs(x) >= 2^24, and 2/pi itself below, so that m times each
of its leading parts is exact. Large arguments alone load the table, but a masked gather costs
every lane: about 2 ns an element, a quarter of libm's time and four times NumPy's SIMD ``sin``;
a reduction only valid up to some bound would be 3 to 6 times faster, and wrong above it.

Each function is compiled once per process and argument type (``forceinline``: LLVM inlines the
compiled body into every loop calling it, where it is vectorised with the loop), not inlined into
each kernel's Numba IR: a kernel using one then compiles as fast as one calling libm (0.07 s),
after the first in the process (0.1-0.2 s more). The functions keep their own floating-point
flags inside kernels compiled with ``reassoc``, which could otherwise undo their exact steps.
(Numba's ``inline='always'`` would instead type and lower a function again in every kernel.)
"""
from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import intrinsic

_INLINE = {"forceinline": True, "error_model": "numpy", "cache": False}
F, I = np.float32, np.int32


def _bitcast(source, target):
    """An intrinsic reinterpreting a ``source`` value's bits as a ``target`` (an LLVM bitcast:
    free, and vectorisable). An integer of another width is converted to ``source`` first
    (Numba widens int32 arithmetic to int64)."""

    @intrinsic
    def cast(typingctx, value):
        if value != source and not (isinstance(source, types.Integer)
                                    and isinstance(value, types.Integer)):
            return None

        def codegen(context, builder, signature, args):
            bits = context.cast(builder, args[0], signature.args[0], source)
            return builder.bitcast(bits, context.get_value_type(target))

        return target(value), codegen

    return cast


_float32_from_bits = _bitcast(types.int32, types.float32)
_bits_of_float32 = _bitcast(types.float32, types.int32)
_float64_from_bits = _bitcast(types.int64, types.float64)
_bits_of_float64 = _bitcast(types.float64, types.int64)


# --- float32 -----------------------------------------------------------------------------------

@njit(**_INLINE)
def exp_f32(x):
    # Clamped: below -104.5 the result rounds to 0, above 88.72284 it overflows to inf; a NaN
    # goes through (compares are false) and is returned as it is.
    xc = min(max(x, F(-104.5)), F(88.72284))
    n = np.floor(xc * F(1.44269504088896341) + F(0.5))
    r = xc - n * F(0.693359375)  # ln2 in two parts: n times the first is exact
    r = r - n * F(-2.12194440e-4)
    p = F(0.001381459878757596)
    p = p * r + F(0.008368716575205326)
    p = p * r + F(0.04166838899254799)
    p = p * r + F(0.1666652113199234)
    p = p * r + F(0.4999999403953552)
    p = p * r * r + r + F(1.0)
    # 2p * 2^(n - 1), 2^(n - 1) from its exponent bits: normal for n in [-125, 128] (2^128
    # itself is not a float32). Below that (n down to -151) 2^(n + 63) * 2^-64: one rounding
    # into the denormals, at the end.
    ni = np.int32(n)
    tiny = ni < I(-125)
    ni = ni + I(64) if tiny else ni
    y = (p + p) * _float32_from_bits((ni + I(126)) << I(23))
    y = y * F(5.421010862427522e-20) if tiny else y  # 2^-64
    return x if x != x else y


@njit(**_INLINE)
def tanh_f32(x):
    ax = abs(x)
    z = x * x
    p = F(-0.005664775613695383)
    p = p * z + F(0.020615996792912483)
    p = p * z + F(-0.05373862385749817)
    p = p * z + F(0.13331541419029236)
    p = p * z + F(-0.33333292603492737)
    small = p * z * x + x
    small = small if ax != F(0.0) else x  # keeps the sign of -0.0
    large = F(1.0) - F(2.0) / (exp_f32(F(2.0) * ax) + F(1.0))
    large = -large if x < F(0.0) else large
    return small if ax < F(0.625) else large


@njit(**_INLINE)
def _log_normal_f32(bits, c):
    """log(v) + c for the positive normal float32 v with these bits; c is a correction below
    log(v)'s rounding (log1p's). v = 2^k (1 + f) with 1 + f in [sqrt(1/2), sqrt(2)): adding
    1.0's bits less sqrt(1/2)'s moves the exponent boundary to sqrt(1/2)."""
    ix = bits + I(0x3F800000 - 0x3F3504F3)
    k = np.float32((ix >> I(23)) - I(127))
    f = _float32_from_bits((ix & I(0x007FFFFF)) + I(0x3F3504F3)) - F(1.0)  # exact
    s = f / (F(2.0) + f)
    z = s * s
    q = F(0.299255907535553)
    q = q * z + F(0.39976078271865845)
    q = q * z + F(0.6666677594184875)
    h = F(0.5) * f * f
    # ln2 in two parts (k times the first is exact); f, exact, is added last.
    lo = k * F(1.428606765330187e-06) + c
    return k * F(0.693145751953125) + (f - (h - (s * (h + z * q) + lo)))


@njit(**_INLINE)
def log_f32(x):
    # Denormals scaled by 2^25 into the normals, and their exponent taken back in the bits.
    scale = F(33554432.0) if x < F(1.1754944e-38) else F(1.0)
    bits = _bits_of_float32(x * scale) - (_bits_of_float32(scale) - I(0x3F800000))
    y = _log_normal_f32(bits, F(0.0))
    y = y if x < F(np.inf) else x  # inf, NaN
    y = y if x > F(0.0) else F(np.nan)
    return y if x != F(0.0) else F(-np.inf)


@njit(**_INLINE)
def log1p_f32(x):
    u = F(1.0) + x
    # The rounding error of 1 + x, exactly (the larger operand first), over u: log(u + err).
    err = (x - (u - F(1.0))) if x < F(1.0) else (F(1.0) - (u - x))
    y = _log_normal_f32(_bits_of_float32(u), err / u)
    y = y if x != F(0.0) else x  # -0.0
    y = y if u < F(np.inf) else u  # inf, NaN
    y = y if u > F(0.0) else F(np.nan)
    return y if u != F(0.0) else F(-np.inf)


@njit(**_INLINE)
def expm1_f32(x):
    xc = min(max(x, F(-25.0)), F(88.72284))  # expm1(-25) rounds to -1
    n = np.floor(xc * F(1.44269504088896341) + F(0.5))
    r = xc - n * F(0.693359375)
    r = r - n * F(-2.12194440e-4)
    p = F(0.00019824125047307462)
    p = p * r + F(0.0013933252776041627)
    p = p * r + F(0.0083334194496274)
    p = p * r + F(0.041666481643915176)
    p = p * r + F(0.1666666567325592)
    p = r + r * r * (F(0.5) + r * p)  # expm1(r)
    # 2 (t p + t - 1/2), t = 2^(n - 1): t - 1/2 is exact for n < 25; above, t p - 1/2 is exact
    # while it matters, and t is added last.
    t = _float32_from_bits((np.int32(n) + I(126)) << I(23))
    near = n < F(25.0)
    y = F(2.0) * ((t * p + (t - F(0.5) if near else F(-0.5))) + (F(0.0) if near else t))
    # Below 2^-25 expm1(x) rounds to x: zeros keep their sign, denormals stay exact, NaN.
    return y if abs(x) >= F(2.9802322387695312e-08) else x


def _two_over_pi_parts():
    """2/pi 2^e mod 4 (the factor of a float32 m 2^e, m an integer below 2^24) for e = 0 (row 0)
    and e = 1 ... 105 (abs(x) >= 2^24, biased exponents 151 ... 255), in three float64 parts:
    28, 28 and 53 significant bits, so m times each of the first two is exact."""
    two_over_pi = int("a2f9836e4e441529fc2757d1f534ddc0db6295993c439041fe5163abdebbc561b72"
                      "46e3a424dd2e0", 16)  # floor(2/pi 2^320)

    def split(g, bits):  # (g rounded to `bits` significant bits, the rest); g in 2^-320 units
        drop = max(abs(g).bit_length() - bits, 0)
        head = (g + (1 << drop >> 1)) >> drop << drop
        return head, g - head

    rows = []
    for e in range(106):
        g = (two_over_pi << e) % (4 << 320)
        g1, rest = split(g, 28)
        g2, g3 = split(rest, 28)
        rows.append([part / (1 << 320) for part in (g1, g2, g3)])  # (correctly rounded)
    return np.array(rows).T.copy()


_TWO_OVER_PI_1, _TWO_OVER_PI_2, _TWO_OVER_PI_3 = _two_over_pi_parts()
_LARGE = 151  # the biased exponent of 2^24


@njit(**_INLINE)
def _sin_cos_quadrant_f32(x):
    """(sin r, cos r, n), r in float64 and n an integer with abs(x) = n pi/2 + r (mod 2 pi),
    abs(r) <= pi/4 (and a rounding)."""
    bits = _bits_of_float32(x) & I(0x7FFFFFFF)
    e = bits >> I(23)
    big = e >= I(_LARGE)
    m = np.float64((bits & I(0x007FFFFF)) | I(0x00800000)) if big else np.float64(abs(x))
    # Below 2^24: m = abs(x) and row 0 (2/pi), constants; only large arguments read the table.
    row = np.uint32(max(e, I(_LARGE - 1)) - I(_LARGE - 1))
    g1 = _TWO_OVER_PI_1[row] if big else _TWO_OVER_PI_1[0]
    g2 = _TWO_OVER_PI_2[row] if big else _TWO_OVER_PI_2[0]
    g3 = _TWO_OVER_PI_3[row] if big else _TWO_OVER_PI_3[0]
    a = m * g1  # exact, and so is its reduction mod 4
    a = a - 4.0 * np.floor(a * 0.25)
    b = m * g2  # exact
    n = np.floor((a + b) + 0.5)
    r = (((a - n) + b) + m * g3) * 1.5707963267948966
    z = r * r
    s = 2.7172731637575456e-06
    s = s * z + -0.00019839253543202986
    s = s * z + 0.008333329305093942
    s = s * z + -0.16666666644040362
    s = r + r * z * s
    c = -2.7236530476797206e-07
    c = c * z + 2.4799904982523196e-05
    c = c * z + -0.001388888552744293
    c = c * z + 0.041666666647784734
    c = 1.0 - 0.5 * z + z * z * c
    return s, c, np.int32(n)


@njit(**_INLINE)
def sin_f32(x):
    s, c, n = _sin_cos_quadrant_f32(x)
    y = c if (n & I(1)) != I(0) else s
    # sin is odd: the sign of x (also -0.0's) flips the quadrant's.
    y = -y if ((n & I(2)) != I(0)) != (_bits_of_float32(x) < I(0)) else y
    return np.float32(y) if abs(x) < F(np.inf) else x - x  # inf, NaN: NaN


@njit(**_INLINE)
def cos_f32(x):
    s, c, n = _sin_cos_quadrant_f32(x)
    y = s if (n & I(1)) != I(0) else c
    y = -y if ((n + I(1)) & I(2)) != I(0) else y
    return np.float32(y) if abs(x) < F(np.inf) else x - x


# --- float64 -----------------------------------------------------------------------------------

@njit(**_INLINE)
def exp_f64(x):
    xc = min(max(x, -746.0), 709.79)  # as exp_f32's clamp: 0 and inf by the arithmetic
    n = np.floor(xc * 1.4426950408889634 + 0.5)
    # r = rh + rl: ln2 in two parts, n times the first (40 bits) exact, so is rh; rl is kept
    # apart from the polynomial's leading terms.
    rh = xc - n * 0.6931471805601177
    rl = n * 1.7239444525614835e-13
    r = rh + rl
    p = 2.497838729724626e-08
    p = p * r + 2.7625189834859626e-07
    p = p * r + 2.7557640857696476e-06
    p = p * r + 2.4801508675797934e-05
    p = p * r + 0.0001984126946621378
    p = p * r + 0.0013888888926801009
    p = p * r + 0.008333333333500045
    p = p * r + 0.04166666666660395
    p = p * r + 0.16666666666666433
    p = 1.0 + (rh + (rl + r * r * (0.5 + r * p)))
    # 2p * 2^(n - 1) as in exp_f32: 2^(n + 63) * 2^-64 below the normal range.
    ni = np.int64(n)
    tiny = ni < -1021
    ni = ni + 64 if tiny else ni
    y = (p + p) * _float64_from_bits((ni + 1022) << 52)
    y = y * 5.421010862427522e-20 if tiny else y
    return x if x != x else y


@njit(**_INLINE)
def tanh_f64(x):
    ax = abs(x)
    z = x * x
    p = -1.6023111486036605e-05
    p = p * z + 7.708960704427687e-05
    p = p * z + -0.00022856585703436496
    p = p * z + 0.0005863476699175813
    p = p * z + -0.0014549798769801165
    p = p * z + 0.0035919960706623333
    p = p * z + -0.008863222298447753
    p = p * z + 0.021869487718115876
    p = p * z + -0.053968253939909484
    p = p * z + 0.133333333332876
    p = p * z + -0.33333333333333115
    small = x + x * z * p
    small = small if ax != 0.0 else x  # keeps the sign of -0.0
    large = 1.0 - 2.0 / (exp_f64(2.0 * ax) + 1.0)
    large = -large if x < 0.0 else large
    return small if ax < 0.625 else large


@njit(**_INLINE)
def log_f64(x):
    # As log_f32: denormals scaled by 2^54; 1 + f in [sqrt(1/2), sqrt(2)).
    scale = 1.8014398509481984e16 if x < 2.2250738585072014e-308 else 1.0
    ix = (_bits_of_float64(x * scale) - _bits_of_float64(scale)
          + (0x3FF0000000000000 + 0x3FF0000000000000 - 0x3FE6A09E667F3BCD))
    k = np.float64((ix >> 52) - 1023)
    f = _float64_from_bits((ix & 0x000FFFFFFFFFFFFF) + 0x3FE6A09E667F3BCD) - 1.0
    s = f / (2.0 + f)
    z = s * s
    q = 0.14810516588261222
    q = q * z + 0.15313164721826442
    q = q * z + 0.1818357152734557
    q = q * z + 0.22222199091164738
    q = q * z + 0.2857142872928209
    q = q * z + 0.39999999999519836
    q = q * z + 0.666666666666671
    h = 0.5 * f * f
    y = k * 0.6931471805601177 + (f - (h - (s * (h + z * q) + k * -1.7239444525614835e-13)))
    y = y if x < np.inf else x
    y = y if x > 0.0 else np.nan
    return y if x != 0.0 else -np.inf


# (primitive name, dtype) -> scalar expression the CPU code generator uses instead of the
# registry's; the kernel namespace binds `_vm` to this module.
_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)
OVERRIDES = {
    ("exp", _F32): "_vm.exp_f32({0})",
    ("tanh", _F32): "_vm.tanh_f32({0})",
    ("log", _F32): "_vm.log_f32({0})",
    ("log1p", _F32): "_vm.log1p_f32({0})",
    ("expm1", _F32): "_vm.expm1_f32({0})",
    ("sin", _F32): "_vm.sin_f32({0})",
    ("cos", _F32): "_vm.cos_f32({0})",
    ("exp", _F64): "_vm.exp_f64({0})",
    ("tanh", _F64): "_vm.tanh_f64({0})",
    ("log", _F64): "_vm.log_f64({0})",
}
