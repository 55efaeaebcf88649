"""Vectorisable float32 ``exp`` and ``tanh`` for the Numba CPU backend.

Numba lowers ``np.exp``/``np.tanh`` on scalars to calls into libm, which keep a loop from being
vectorised: a fused GELU then runs no faster than NumPy. These are branch-free (selects only)
polynomial versions that LLVM vectorises, in the style of Cephes' ``expf``/``tanhf``:

- ``exp_f32``: x = n ln2 + r with |r| <= ln2 / 2, exp(r) by a degree-6 polynomial, 2^n built
  from its exponent bits (2^(n + 64) * 2^-64 for results below the normal range, so denormals
  come out right); overflow gives inf, NaN stays NaN. The clamp of x to [-104.5, 88.72284]
  gives 0 and inf at the ends by the arithmetic itself: no selects beyond NaN's and the
  denormals', which is what the loops' speed depends on (about 1.35x faster than with a
  select per special case).
- ``tanh_f32``: an odd polynomial for |x| < 0.625, else 1 - 2 / (exp(2|x|) + 1) with the sign
  restored; +-0, +-inf and NaN behave as NumPy's.

Measured bound (``tests/test_vector_math.py`` checks it over the whole float32 range against a
float64 reference): ``exp_f32`` within 1.0 ULP (the test allows 2.1), ``tanh_f32`` within 1.3 ULP;
NumPy's own float32 functions are within 2.4 and 1.4 ULP of the same reference. float64 keeps
libm (open work).
"""
from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import intrinsic

_INLINE = {"inline": "always", "error_model": "numpy", "cache": False}


@intrinsic
def _float32_from_bits(typingctx, bits):
    """Reinterpret an int32's bits as a float32 (an LLVM bitcast: free, and vectorisable)."""
    sig = types.float32(types.int32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float32))

    return sig, codegen


@njit(**_INLINE)
def exp_f32(x):
    # Clamped: below -104.5 the result rounds to 0, above 88.72284 it overflows to inf; a NaN
    # goes through (compares are false) and is returned as it is.
    xc = min(max(x, np.float32(-104.5)), np.float32(88.72284))
    n = np.floor(xc * np.float32(1.44269504088896341) + np.float32(0.5))
    r = xc - n * np.float32(0.693359375)  # ln2 in two parts: the first is exact in float32
    r = r - n * np.float32(-2.12194440e-4)
    p = np.float32(1.9875691500e-4)
    p = p * r + np.float32(1.3981999507e-3)
    p = p * r + np.float32(8.3334519073e-3)
    p = p * r + np.float32(4.1665795894e-2)
    p = p * r + np.float32(1.6666665459e-1)
    p = p * r + np.float32(5.0000001201e-1)
    p = p * r * r + r + np.float32(1.0)
    # 2p * 2^(n - 1), 2^(n - 1) from its exponent bits: normal for n in [-125, 128] (2^128
    # itself is not a float32). Below that (n down to -151) 2^(n + 63) * 2^-64: one rounding
    # into the denormals, at the end.
    ni = np.int32(n)
    tiny = ni < np.int32(-125)
    ni = ni + np.int32(64) if tiny else ni
    y = (p + p) * _float32_from_bits((ni + np.int32(126)) << np.int32(23))
    y = y * np.float32(5.421010862427522e-20) if tiny else y  # 2^-64
    return x if x != x else y


@njit(**_INLINE)
def tanh_f32(x):
    ax = abs(x)
    z = x * x
    p = np.float32(-5.70498872745e-3)
    p = p * z + np.float32(2.06390887954e-2)
    p = p * z + np.float32(-5.37397155531e-2)
    p = p * z + np.float32(1.33314422036e-1)
    p = p * z + np.float32(-3.33332819422e-1)
    small = p * z * x + x
    small = small if ax != np.float32(0.0) else x  # keeps the sign of -0.0
    large = np.float32(1.0) - np.float32(2.0) / (exp_f32(np.float32(2.0) * ax) + np.float32(1.0))
    large = -large if x < np.float32(0.0) else large
    return small if ax < np.float32(0.625) else large


# (primitive name, dtype) -> scalar expression the CPU code generator uses instead of the
# registry's; the kernel namespace binds `_vm` to this module.
OVERRIDES = {
    ("exp", np.dtype(np.float32)): "_vm.exp_f32({0})",
    ("tanh", np.dtype(np.float32)): "_vm.tanh_f32({0})",
}
