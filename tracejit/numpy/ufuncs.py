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
    if ufunc.nin < len(args) <= ufunc.nin + ufunc.nout:  # NumPy reads these as out=
        from ._dispatch import unsupported
        raise unsupported(f"numpy.{ufunc.__name__} with out= (given positionally)")
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
    def fn(*args, **kwargs):
        if kwargs:  # out=, where=, ... refused by name, dtype= applied: as through np.<ufunc>
            from ._dispatch import array_ufunc
            return array_ufunc(ufunc, "__call__", *args, **kwargs)
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
            args = [_exact_int(a, other) for a, other in (args, args[::-1])]
        return apply_ufunc(ufunc, body, args)

    fn.__name__ = fn.__qualname__ = ufunc.__name__
    return fn


def _exact_int(value, x):
    """A traced Python int (a weak int64 argument, its value unknown while tracing) compared
    with an integer array: made a strong int64, so the comparison is of the numbers themselves
    (an int8 or uint8 array then compares in int64, a uint64 one as mixed signs), as NumPy's
    is for any Python int, where converting it to the array's dtype would wrap (uint8 >= -4
    read as uint8 >= 252). The value-known case is ``_beyond_range``."""
    if not (P.is_traced(value) and value.ttype.weak and value.dtype.kind in "iu"
            and P.is_traced(x) and not x.ttype.weak and x.dtype.kind in "iu"):
        return value
    return P.convert(value, np.int64)


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


def _log_add_exp(a, b, ln_base=None):
    """log(base**a + base**b) / ln(base) (natural logarithm without ``ln_base``).

    As m + log1p(t) / ln(base) with t = base**(a - m) + base**(b - m) - 1 and m = max(a, b)
    held constant for differentiation: the value is stable, and every derivative is the smooth
    one (m cancels). Writing it as max + log1p(base**-|a - b|) instead would put kinks at
    a == b, where the conventions max'(tie) = 1/2 and abs'(0) = 0 give the right gradient but
    a zero second derivative (the Hessian of a softplus at 0 came out 0, not 1/4). t is summed
    with expm1 for the larger operand (exactly 0 there), never as 1 + tiny - 1: log of the
    rounded 1 + tiny lost 90 ulps of a result near 0. Where m is not finite (an infinity, a
    NaN) the answer is max(a, b), NumPy's.
    """
    from ..transforms.autodiff import stop_gradient
    m = E.max_.bind(a, b)
    finite = E.isfinite.bind(m)
    safe = stop_gradient(E.select.bind(finite, m, _scalar(m, 0)))
    da, db = E.sub.bind(a, safe), E.sub.bind(b, safe)
    if ln_base is not None:  # base**u = exp(u * ln(base))
        da, db = E.mul.bind(da, _scalar(da, ln_base)), E.mul.bind(db, _scalar(db, ln_base))
    t = E.select.bind(E.ge.bind(a, b), E.add.bind(E.expm1.bind(da), E.exp.bind(db)),
                      E.add.bind(E.exp.bind(da), E.expm1.bind(db)))
    log_total = E.log1p.bind(t)
    if ln_base is not None:  # where a == b, log1p(1) / ln 2 is exactly 1, as NumPy's m + 1
        log_total = E.div.bind(log_total, _scalar(log_total, ln_base))
    return E.select.bind(finite, E.add.bind(safe, log_total), m)


def _logaddexp(a, b):
    return _log_add_exp(a, b)


def _logaddexp2(a, b):
    return _log_add_exp(a, b, math.log(2.0))


def _odd(body):
    """An odd function from its half on x >= 0: body(|x|), negated where x < 0. A composite
    computed on |x| has no cancellation where one on x would (arctanh(-1 + 1e-6) lost 1e-2 of
    its value in float32), keeps -0.0 (where x < 0 is false: body(-0.0)), and has the smooth
    derivative at 0 (through the selects, not through abs, whose derivative is 0 there)."""
    def run(x):
        negative = E.lt.bind(x, _scalar(x, 0))
        r = body(E.select.bind(negative, E.neg.bind(x), x))
        return E.select.bind(negative, E.neg.bind(r), r)
    return run


def _arccosh(x):
    # arcsinh(sqrt(x*x - 1)) with the root as sqrt(x - 1) * sqrt(x + 1): exact near 1 (x - 1 is
    # exact there), no overflow for x > 1e154, NaN below 1 as NumPy. arcsinh is a primitive.
    one = _scalar(x, 1)
    root = E.mul.bind(E.sqrt.bind(E.sub.bind(x, one)), E.sqrt.bind(E.add.bind(x, one)))
    return E.arcsinh.bind(root)


def _nan_ignoring(prim):
    """fmax/fmin: maximum/minimum with each operand replaced by the other where it is NaN, so a
    NaN loses to a number (two NaNs give NaN). The derivative follows the selected operand (a
    NaN operand gets none); at ties it is split as maximum's."""
    def body(a, b):
        if a.dtype.kind != "f":
            return prim.bind(a, b)
        a_or_b = E.select.bind(E.isnan.bind(a), b, a)
        b_or_a = E.select.bind(E.isnan.bind(b), a, b)
        return prim.bind(a_or_b, b_or_a)
    return body


def _scale_by(factors):
    """x times a constant, the constant per dtype as NumPy's loop rounds it (NumPy's float32
    rad2deg multiplies by float32(180) / float32(pi), not by float32(180 / pi))."""
    return lambda x: E.mul.bind(x, _scalar(x, factors[x.dtype]))


_DEG2RAD = {np.dtype(t): t(math.pi / 180) for t in (np.float32, np.float64)}
_RAD2DEG = {np.dtype(np.float32): np.float32(180) / np.float32(math.pi),
            np.dtype(np.float64): 180 / math.pi}


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
arctanh = atanh = _define(np.arctanh, _half_in_single(_odd(_arctanh)), np.atanh)
logaddexp = _define(np.logaddexp, _half_in_single(_logaddexp))
logaddexp2 = _define(np.logaddexp2, _half_in_single(_logaddexp2))
hypot = _define(np.hypot, E.hypot.bind)
fabs = _define(np.fabs, E.abs_.bind)  # NumPy's loops are float only: integers arrive as floats
fmax = _define(np.fmax, _nan_ignoring(E.max_))
fmin = _define(np.fmin, _nan_ignoring(E.min_))
arcsinh = asinh = _define(np.arcsinh, E.arcsinh.bind, np.asinh)
arccosh = acosh = _define(np.arccosh, _half_in_single(_arccosh), np.acosh)
deg2rad = _define(np.deg2rad, _half_in_single(_scale_by(_DEG2RAD)))
radians = _define(np.radians, _half_in_single(_scale_by(_DEG2RAD)))
rad2deg = _define(np.rad2deg, _half_in_single(_scale_by(_RAD2DEG)))
degrees = _define(np.degrees, _half_in_single(_scale_by(_RAD2DEG)))
logical_and = _define(np.logical_and, _logical(E.and_))
logical_or = _define(np.logical_or, _logical(E.or_))
logical_xor = _define(np.logical_xor, _logical(E.xor))
logical_not = _define(np.logical_not, _logical(E.not_))


# --- non-ufunc elementwise functions ---------------------------------------------------------
def _where_traced(condition, x=None, y=None):
    if x is None or y is None:
        from ..errors import ValueDependentShapeError
        raise P.user_error(ValueDependentShapeError,
                           "where(condition) with one argument returns indices whose count "
                           "depends on the values; it cannot be traced. Use where(cond, x, y), "
                           "or nonzero(cond, size=n) for at most n indices.")
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


# --- sinc, nan_to_num: NumPy functions written with ufuncs ------------------------------------
def _sinc_of_scaled(y):
    # NumPy's sin(y) / y (it puts eps in place of y == 0, where the value is 1), and near 0 its
    # Taylor polynomial 1 - y**2/6 + y**4/120 - ...: there the quotient's derivatives cancel
    # catastrophically (the second derivative at 0 came out 0, not -pi**2/3). Below 0.1 the
    # polynomial's next term is under 3e-18; each branch reads a harmless value where it is
    # not chosen, so neither puts an inf or NaN into the derivative of the other.
    small = E.lt.bind(E.abs_.bind(y), _scalar(y, 0.1))
    near = E.select.bind(small, y, _scalar(y, 0))
    far = E.select.bind(small, _scalar(y, 1), y)
    z = E.mul.bind(near, near)
    poly = _scalar(y, 1 / 362880)
    for coefficient in (-1 / 5040, 1 / 120, -1 / 6, 1):
        poly = E.add.bind(E.mul.bind(poly, z), _scalar(y, coefficient))
    return E.select.bind(small, poly, E.div.bind(E.sin.bind(far), far))


@implements(np.sinc)
def sinc(x):
    """``numpy.sinc``: sin(pi x) / (pi x), 1 at 0; pi * x in NumPy's dtype (float64 for
    integers and bools), as NumPy's own first step."""
    y = multiply(P.lift(x), math.pi)
    return _half_in_single(_sinc_of_scaled)(y)


@implements(np.nan_to_num)
def nan_to_num(x, copy=True, nan=0.0, posinf=None, neginf=None):
    """``numpy.nan_to_num``: NaN, +inf and -inf replaced (by default with 0 and the dtype's
    largest and smallest finite values); integer and bool arrays unchanged. ``copy=False``
    cannot update a traced array in place: the result is the same new value either way. The
    derivative is the identity where ``x`` is finite and 0 elsewhere (and flows to traced
    replacement values where they are chosen)."""
    if isinstance(copy, str):
        raise P.user_error(ValueError, "strings are not allowed for 'copy' keyword. Use "
                                       "True/False/None instead.")
    t = P.lift(x)
    if t.dtype.kind != "f":
        return t
    info = np.finfo(t.dtype)
    fills = [_fill_value(t, nan, "nan"),
             _fill_value(t, info.max if posinf is None else posinf, "posinf"),
             _fill_value(t, info.min if neginf is None else neginf, "neginf")]
    inf = _scalar(t, np.inf)
    result = E.select.bind(E.eq.bind(t, inf), fills[1], t)
    result = E.select.bind(E.eq.bind(t, E.neg.bind(inf)), fills[2], result)
    return E.select.bind(E.isnan.bind(t), fills[0], result)


def _fill_value(t, value, name):
    """A replacement value of ``nan_to_num`` as ``np.copyto`` stores it into ``t``: cast to t's
    dtype by the 'same_kind' rule (real numbers only), broadcast to t's shape."""
    array = value if P.is_traced(value) else np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise P.user_error(TypeError, f"Cannot cast scalar from dtype('{array.dtype}') to "
                                      f"dtype('{t.dtype}') according to the rule 'same_kind'")
    shape = tuple(array.shape)
    if len(shape) > t.ndim or any(n not in (1, m) for n, m in zip(shape[::-1], t.shape[::-1])):
        raise P.user_error(ValueError, f"could not broadcast input array from shape "
                                       f"{P.shape_str(shape)} into shape {P.shape_str(t.shape)}"
                                       f" (nan_to_num's {name}=)")
    if not P.is_traced(value):
        with np.errstate(over="ignore"):  # 1e10 into float16 is inf, as copyto stores it
            value = P.lift(array.astype(t.dtype), t._trace)
    return P.broadcast_to(P.convert(value, t.dtype), t.shape)
