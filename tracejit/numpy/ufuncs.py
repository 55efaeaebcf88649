"""Elementwise functions with NumPy's ufunc semantics.

Each function asks NumPy itself which loop it would run (``ufunc.resolve_dtypes``, which knows
NEP 50 weak scalars), converts and broadcasts the operands to that loop, then builds the result
from primitives. Asking NumPy keeps every dtype rule, and every type error message, NumPy's own.
"""
from __future__ import annotations

import math

import numpy as np

from ..primitives import elementwise as E
from . import _prims as P
from ._dispatch import implements


def _resolve_key(x):
    t = P.ttype_of(x)
    if t.weak and t.dtype.kind in "if":
        return int if t.dtype.kind == "i" else float
    return t.dtype


def apply_ufunc(ufunc, body, args):
    """Promote and broadcast ``args`` as ``ufunc`` would, then ``body(*operands)``."""
    if len(args) != ufunc.nin:
        raise P.user_error(TypeError, f"{ufunc.__name__}() takes {ufunc.nin} arguments, "
                                      f"got {len(args)}")
    trace = P.the_trace(*args)
    # Only Python scalars: NumPy makes them arrays of their default dtypes first (asked with
    # `int` twice, a comparison would resolve to its object loop).
    only_weak = all(P.ttype_of(a).weak for a in args)
    keys = tuple(P.ttype_of(a).dtype if only_weak else _resolve_key(a) for a in args)
    try:
        resolved = ufunc.resolve_dtypes(keys + (None,))
    except TypeError as e:
        raise P.user_error(TypeError, str(e)) from None
    types = [P.ttype_of(a) for a in args]
    weak = all(t.weak for t in types)
    shape = P.broadcast_shapes(*(t.shape for t in types))
    out = body(*P.operands(args, resolved[:-1], shape, trace, weak))
    assert out.dtype == resolved[-1], f"tracejit bug: {ufunc.__name__} gave {out.dtype}"
    return out


def _define(ufunc, body, *aliases):
    @implements(ufunc)
    def fn(*args):
        return apply_ufunc(ufunc, body, args)

    fn.__name__ = fn.__qualname__ = ufunc.__name__
    fn.__doc__ = f"``numpy.{ufunc.__name__}`` on traced arrays (NumPy's dtype rules)."
    for alias in aliases:
        implements(alias)(fn)
    return fn


def _float_only(prim, on_integers):
    """A body for float primitives whose NumPy loop also exists for integers/bool."""
    return lambda x: prim.bind(x) if x.dtype.kind == "f" else on_integers(x)


def _const_like(x, value):
    return P.full_like(x, value, np.bool_ if isinstance(value, bool) else None)


def _truthy(x):
    return x if x.dtype == np.bool_ else E.ne.bind(x, _const_like(x, 0))


def _scalar(x, value):
    """A scalar constant of x's dtype, broadcast to x's shape."""
    return P.full_like(x, value)


# --- prim-backed -----------------------------------------------------------------------------
add = _define(np.add, E.add.bind)
subtract = _define(np.subtract, E.sub.bind)
multiply = _define(np.multiply, E.mul.bind)
true_divide = divide = _define(np.divide, E.div.bind)
floor_divide = _define(np.floor_divide, E.floordiv.bind)
remainder = mod = _define(np.remainder, E.mod.bind)
power = _define(np.power, E.pow_.bind, np.pow)
maximum = _define(np.maximum, E.max_.bind)
minimum = _define(np.minimum, E.min_.bind)
arctan2 = atan2 = _define(np.arctan2, E.atan2.bind, np.atan2)
bitwise_and = _define(np.bitwise_and, E.and_.bind)
bitwise_or = _define(np.bitwise_or, E.or_.bind)
bitwise_xor = _define(np.bitwise_xor, E.xor.bind)

# NumPy compares uint64 with int64 exactly (a loop of its own, no common dtype): a negative
# int64 is below every uint64, and a non-negative one compares as a uint64.
_MIXED_SIGN = {  # prim: (result when the int64 is negative, prim comparing as uint64)
    E.eq: (False, E.eq), E.ne: (True, E.ne), E.lt: (False, E.lt), E.le: (False, E.le),
    E.gt: (True, E.gt), E.ge: (True, E.ge)}
_SWAPPED = {E.eq: E.eq, E.ne: E.ne, E.lt: E.gt, E.le: E.ge, E.gt: E.lt, E.ge: E.le}


def _comparison(prim):
    def body(a, b):
        if a.dtype == b.dtype:
            return prim.bind(a, b)
        if a.dtype.kind == "i":  # the uint64 operand first
            return _uint64_against_int64(_SWAPPED[prim], b, a)
        return _uint64_against_int64(prim, a, b)

    return body


def _uint64_against_int64(prim, a, b):
    if_negative, compare = _MIXED_SIGN[prim]
    negative = E.lt.bind(b, _scalar(b, 0))
    as_unsigned = compare.bind(a, P.convert(b, a.dtype))
    if if_negative:
        return E.or_.bind(negative, as_unsigned)
    return E.and_.bind(E.not_.bind(negative), as_unsigned)


# An integer array against a Python int beyond its dtype's range: NumPy answers from the sign
# of the difference alone (every uint8 is > -1), where other ufuncs raise OverflowError.
_BEYOND = {E.eq: (False, False), E.ne: (True, True), E.lt: (False, True),
           E.le: (False, True), E.gt: (True, False), E.ge: (True, False)}  # (below, above)


def _define_comparison(ufunc, prim):
    body = _comparison(prim)

    @implements(ufunc)
    def fn(*args):
        if len(args) == 2:
            for k, (x, v) in enumerate((args, args[::-1])):
                answer = _beyond_range(prim if k == 0 else _SWAPPED[prim], x, v)
                if answer is not None:
                    return answer
        return apply_ufunc(ufunc, body, args)

    fn.__name__ = fn.__qualname__ = ufunc.__name__
    return fn


def _beyond_range(prim, x, value):
    """``x <prim> value`` where that is known without looking at x, else None."""
    if not P.is_traced(x) or type(value) is not int or x.dtype.kind not in "iu" or x.ttype.weak:
        return None
    info = np.iinfo(x.dtype)
    if info.min <= value <= info.max:
        return None
    below, above = _BEYOND[prim]
    return P.full_like(x, below if value < info.min else above, np.bool_)


equal = _define_comparison(np.equal, E.eq)
not_equal = _define_comparison(np.not_equal, E.ne)
less = _define_comparison(np.less, E.lt)
less_equal = _define_comparison(np.less_equal, E.le)
greater = _define_comparison(np.greater, E.gt)
greater_equal = _define_comparison(np.greater_equal, E.ge)

negative = _define(np.negative, E.neg.bind)
positive = _define(np.positive, lambda x: x)
absolute = _define(np.absolute, E.abs_.bind)
sign = _define(np.sign, E.sign.bind)
invert = bitwise_not = _define(np.invert, E.not_.bind, np.bitwise_invert)
floor = _define(np.floor, _float_only(E.floor, lambda x: x))
ceil = _define(np.ceil, _float_only(E.ceil, lambda x: x))
rint = _define(np.rint, E.round_.bind)
exp = _define(np.exp, E.exp.bind)
log = _define(np.log, E.log.bind)
log1p = _define(np.log1p, E.log1p.bind)
expm1 = _define(np.expm1, E.expm1.bind)
sqrt = _define(np.sqrt, E.sqrt.bind)
sin = _define(np.sin, E.sin.bind)
cos = _define(np.cos, E.cos.bind)
tan = _define(np.tan, E.tan.bind)
tanh = _define(np.tanh, E.tanh.bind)
arctan = atan = _define(np.arctan, E.arctan.bind, np.atan)
isnan = _define(np.isnan, _float_only(E.isnan, lambda x: _const_like(x, False)))
isfinite = _define(np.isfinite, _float_only(E.isfinite, lambda x: _const_like(x, True)))


# --- composites ------------------------------------------------------------------------------
def _trunc(x):
    if x.dtype.kind != "f":
        return x
    return E.select.bind(E.lt.bind(x, _scalar(x, 0)), E.ceil.bind(x), E.floor.bind(x))


def _isinf(x):
    if x.dtype.kind != "f":
        return _const_like(x, False)
    finite_or_nan = E.or_.bind(E.isfinite.bind(x), E.isnan.bind(x))
    return E.not_.bind(finite_or_nan)


def _reciprocal(x):
    if x.dtype.kind == "f":
        return E.div.bind(_scalar(x, 1), x)
    # Integer reciprocal truncates towards zero: 1/x is 0 unless |x| == 1 (1/0 is undefined).
    return E.select.bind(E.eq.bind(E.abs_.bind(x), _scalar(x, 1)), x, _scalar(x, 0))


def _log_base(base):
    inv_ln = 1.0 / math.log(base)
    return lambda x: E.mul.bind(E.log.bind(x), _scalar(x, inv_ln))


def _sinh(x):
    # For |x| < 1 as (u + u / (u + 1)) / 2 with u = expm1(x): no cancellation near 0. Above, as
    # (h * h - g * g) / 2 with h = exp(x/2), g = exp(-x/2), which overflows only where sinh
    # does. Neither uses abs or a sign flip, so the derivative is cosh at 0 too (through abs it
    # came out 0 there); the small branch reads 0 where it is not chosen, so its infinities
    # never meet the zero cotangent of the branch not taken.
    near = E.lt.bind(E.abs_.bind(x), _scalar(x, 1))
    u = E.expm1.bind(E.select.bind(near, x, _scalar(x, 0)))
    half = _scalar(x, 0.5)
    small = E.mul.bind(half, E.add.bind(u, E.div.bind(u, E.add.bind(u, _scalar(x, 1)))))
    h, g = E.exp.bind(E.mul.bind(half, x)), E.exp.bind(E.mul.bind(_scalar(x, -0.5), x))
    large = E.sub.bind(E.mul.bind(E.mul.bind(half, h), h), E.mul.bind(E.mul.bind(half, g), g))
    return E.select.bind(near, small, large)


def _cosh(x):
    # (h * h + g * g) / 2 with h = exp(x/2), g = exp(-x/2): overflows only where cosh does, and
    # smooth at 0 (no abs).
    half = _scalar(x, 0.5)
    h, g = E.exp.bind(E.mul.bind(half, x)), E.exp.bind(E.mul.bind(_scalar(x, -0.5), x))
    return E.add.bind(E.mul.bind(E.mul.bind(half, h), h), E.mul.bind(E.mul.bind(half, g), g))


def _one_minus_x_squared(x):
    # (1 - x)(1 + x) keeps precision near |x| = 1, where 1 - x*x cancels.
    one = _scalar(x, 1)
    return E.mul.bind(E.sub.bind(one, x), E.add.bind(one, x))


def _arcsin(x):
    return E.atan2.bind(x, E.sqrt.bind(_one_minus_x_squared(x)))


def _arccos(x):
    return E.atan2.bind(E.sqrt.bind(_one_minus_x_squared(x)), x)


def _arctanh(x):
    ratio = E.div.bind(E.mul.bind(_scalar(x, 2), x), E.sub.bind(_scalar(x, 1), x))
    return E.mul.bind(_scalar(x, 0.5), E.log1p.bind(ratio))


def _logaddexp(a, b):
    # m + log(exp(a - m) + exp(b - m)) with m = max(a, b) held constant for differentiation:
    # the value is stable, and every derivative is the smooth one (m cancels). Writing it as
    # max + log1p(exp(-|a - b|)) instead would put kinks at a == b, where the conventions
    # max'(tie) = 1/2 and abs'(0) = 0 give the right gradient but a zero second derivative
    # (the Hessian of a softplus at 0 came out 0, not 1/4). Where m is not finite (an
    # infinity, a NaN) the answer is max(a, b), NumPy's.
    from ..transforms.autodiff import stop_gradient
    m = E.max_.bind(a, b)
    finite = E.isfinite.bind(m)
    safe = stop_gradient(E.select.bind(finite, m, _scalar(m, 0)))
    total = E.add.bind(E.exp.bind(E.sub.bind(a, safe)), E.exp.bind(E.sub.bind(b, safe)))
    return E.select.bind(finite, E.add.bind(safe, E.log.bind(total)), m)


def _logical(prim):
    return lambda *xs: prim.bind(*[_truthy(x) for x in xs])


def _half_in_single(body):
    """A composite over float16 computed in float32 and rounded once, as NumPy's float16 loops
    do: in float16 arithmetic its several roundings compound (arctanh(-0.9995) came out -3.81
    for NumPy's -4.16)."""
    def run(*xs):
        if not any(x.dtype == np.float16 for x in xs):
            return body(*xs)
        return P.convert(body(*[P.convert(x, np.float32) for x in xs]), np.float16)
    return run


trunc = _define(np.trunc, _trunc)
isinf = _define(np.isinf, _isinf)
square = _define(np.square, lambda x: E.mul.bind(x, x))
reciprocal = _define(np.reciprocal, _reciprocal)
exp2 = _define(np.exp2, _half_in_single(lambda x: E.pow_.bind(_scalar(x, 2), x)))
log2 = _define(np.log2, _half_in_single(_log_base(2)))
log10 = _define(np.log10, _half_in_single(_log_base(10)))
sinh = _define(np.sinh, _half_in_single(_sinh))
cosh = _define(np.cosh, _half_in_single(_cosh))
arcsin = asin = _define(np.arcsin, _half_in_single(_arcsin), np.asin)
arccos = acos = _define(np.arccos, _half_in_single(_arccos), np.acos)
arctanh = atanh = _define(np.arctanh, _half_in_single(_arctanh), np.atanh)
logaddexp = _define(np.logaddexp, _half_in_single(_logaddexp))
logical_and = _define(np.logical_and, _logical(E.and_))
logical_or = _define(np.logical_or, _logical(E.or_))
logical_xor = _define(np.logical_xor, _logical(E.xor))
logical_not = _define(np.logical_not, _logical(E.not_))


# --- non-ufunc elementwise functions ---------------------------------------------------------
def _where_traced(condition, x=None, y=None):
    if x is None or y is None:
        raise P.user_error(NotImplementedError,
                           "where(condition) with one argument returns indices whose count "
                           "depends on the values; it cannot be traced. Use where(cond, x, y).")
    trace = P.the_trace(condition, x, y)
    types = [P.ttype_of(v) for v in (condition, x, y)]
    from .. import dtypes
    try:
        dtype, weak = dtypes.result_type(*[(t.dtype, t.weak) for t in types[1:]])
    except TypeError as e:
        raise P.user_error(TypeError, str(e)) from None
    shape = P.broadcast_shapes(*(t.shape for t in types))
    cond = P.broadcast_to(_truthy(P.lift(condition, trace)), shape)
    x, y = (_wrapped(v, dtype) for v in (x, y))
    on_true, on_false = P.operands((x, y), (dtype, dtype), shape, trace, weak)
    return E.select.bind(cond, on_true, on_false)


def _wrapped(value, dtype):
    """A Python int as np.where stores it in an integer dtype: modulo 2**bits (-1 in uint32 is
    4294967295), where ufuncs would raise OverflowError."""
    if type(value) is not int or dtype.kind not in "iu":
        return value
    bits = 8 * dtype.itemsize
    value %= 1 << bits
    return value - (1 << bits) if dtype.kind == "i" and value >= 1 << (bits - 1) else value


where = implements(np.where)(_where_traced)


@implements(np.clip)
def clip(a, a_min=None, a_max=None, out=None, **kwargs):
    if out is not None:
        raise P.user_error(NotImplementedError, "clip(out=...) is not supported on traced arrays")
    a_min = kwargs.pop("min", a_min)
    a_max = kwargs.pop("max", a_max)
    if kwargs:
        raise P.user_error(TypeError, f"clip() got unexpected arguments {sorted(kwargs)}")
    if a_min is None and a_max is None:
        raise P.user_error(ValueError, "One of max or min must be given")
    dtype = np.result_type(a) if not P.is_traced(a) else a.dtype
    if dtype.kind in "iu":  # as NumPy: a Python int bound beyond the dtype's range is no bound
        info = np.iinfo(dtype)
        a_min = None if type(a_min) is int and a_min <= info.min else a_min
        a_max = None if type(a_max) is int and a_max >= info.max else a_max
        if a_min is None and a_max is None:
            return positive(a)
    result = a
    if a_min is not None:
        result = maximum(result, a_min)
    if a_max is not None:
        result = minimum(result, a_max)
    return result if P.is_traced(result) else P.lift(result, P.the_trace(a))


@implements(np.round)
def round_(a, decimals=0, out=None):
    if out is not None:
        raise P.user_error(NotImplementedError, "round(out=...) is not supported on traced arrays")
    a = P.lift(a)
    if a.dtype.kind == "b":
        if decimals != 0:
            raise P.user_error(TypeError, "Cannot cast ufunc 'multiply' output from "
                                          "dtype('float64') to dtype('bool')")
        return rint(a)  # as NumPy: float16
    if a.dtype.kind in "iu":
        if decimals >= 0:
            return a
        # As NumPy: rint(x / 10**-d) * 10**-d in float64, cast back to the integer type.
        return P.convert(round_(P.convert(a, np.float64), decimals), a.dtype)
    if decimals == 0:
        return E.round_.bind(a)
    scale = P.full_like(a, 10.0 ** (decimals if decimals > 0 else -decimals))
    if decimals > 0:  # as NumPy: rint(x * 10**d) / 10**d
        return E.div.bind(E.round_.bind(E.mul.bind(a, scale)), scale)
    return E.mul.bind(E.round_.bind(E.div.bind(a, scale)), scale)


around = implements(np.around)(round_)
