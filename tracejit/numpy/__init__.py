"""``tracejit.numpy`` (``tnp``): NumPy's names and signatures, usable inside traced code.

Every function here is a composite of tracejit primitives when any argument is traced, and is
NumPy itself when none is, so code and tests may mix traced values, NumPy arrays and Python
numbers freely. Plain ``np.*`` calls on traced values reach the same functions through NumPy's
``__array_function__``/``__array_ufunc__`` protocols.
"""
import numpy as _np

from . import linalg  # noqa: F401
from . import methods as _methods  # noqa: F401  (attaches operators to tracers)
from .contractions import dot, inner, matmul, outer, tensordot, vdot
from .creation import (arange, array, asarray, astype, empty, empty_like, eye, full, full_like,
                       identity, linspace, ones, ones_like, zeros, zeros_like)
from .einsum import einsum
from .sorting import argpartition, argsort, partition, sort
from .reductions import (all_, amax, amin, any_, argmax, argmin, cumprod, cumsum, max_, mean,
                         min_, prod, std, sum_, var)
from .manipulation import (append, array_split, atleast_1d, atleast_2d, broadcast_arrays, broadcast_to,
                    concatenate, copy, diag, diagonal, expand_dims, flip, hstack, moveaxis, ndim,
                    ravel, repeat, reshape, shape, size, split, squeeze, stack, swapaxes, tile,
                    trace, transpose, tril, triu, vstack)
from .manipulation import (atleast_3d, column_stack, dsplit, fliplr, flipud, hsplit, roll,
                           rollaxis, rot90, vsplit)
from .differences import cross, diff, gradient, kron
from .padding import pad
from .indexing import (ValueDependentShapeError, argwhere, flatnonzero, nonzero, select, take,
                       unique)
from .ufuncs import (absolute, acos, add, arccos, arcsin, arctan, arctan2, arctanh, around, asin,
                     atan, atan2, atanh, bitwise_and, bitwise_not, bitwise_or, bitwise_xor, ceil,
                     clip, cos, cosh, divide, equal, exp, exp2, expm1, floor, floor_divide,
                     greater, greater_equal, invert, isfinite, isinf, isnan, less, less_equal,
                     log, log1p, log2, log10, logaddexp, logical_and, logical_not, logical_or,
                     logical_xor, maximum, minimum, mod, multiply, negative, not_equal, positive,
                     power, reciprocal, remainder, rint, round_, sign, sin, sinh, sqrt, square,
                     subtract, tan, tanh, true_divide, trunc, where)
from .ufuncs import (acosh, arccosh, arcsinh, asinh, deg2rad, degrees, fabs, fmax, fmin, hypot,
                     logaddexp2, nan_to_num, rad2deg, radians, sinc)

# NumPy's names that are Python builtins are defined under another name and exported as NumPy's.
abs = absolute  # noqa: A001
round = round_  # noqa: A001
sum = sum_  # noqa: A001
max = max_  # noqa: A001
min = min_  # noqa: A001
all = all_  # noqa: A001
any = any_  # noqa: A001
pow = power

# Dtypes and constants are NumPy's own objects.
bool_ = _np.bool_
int8, int16, int32, int64 = _np.int8, _np.int16, _np.int32, _np.int64
uint8, uint16, uint32, uint64 = _np.uint8, _np.uint16, _np.uint32, _np.uint64
float16, float32, float64 = _np.float16, _np.float32, _np.float64
dtype = _np.dtype
pi, e, inf, nan, newaxis = _np.pi, _np.e, _np.inf, _np.nan, _np.newaxis
ndarray = _np.ndarray
