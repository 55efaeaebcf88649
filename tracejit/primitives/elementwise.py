"""Elementwise primitives: one line (block) per primitive.

Operands of an elementwise primitive have one shape and one dtype: broadcasting and promotion are
made explicit (``broadcast_in_dim``, ``convert``) by ``tracejit.numpy`` before binding. The result
is weak only when every operand is weak.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..ir import TensorType
from . import batch_support as B
from .registry import Primitive

FLOAT = "f"
INT = "iu"
NUM = "iuf"
ALL = "biuf"


def _check_operands(name, kinds, types):
    first = types[0]
    for t in types[1:]:
        if t.shape != first.shape or t.dtype != first.dtype:
            raise TypeError(f"{name}: operands must share shape and dtype, got "
                            + ", ".join(str(t) for t in types))
    if first.dtype.kind not in kinds:
        raise TypeError(f"{name}: dtype {first.dtype} not accepted (kinds {kinds!r})")
    return first


def _make(name, nin, np_fn, scalar, kinds, result_bool=False):
    def abstract_eval(*types):
        if len(types) != nin:
            raise TypeError(f"{name} takes {nin} operand(s), got {len(types)}")
        first = _check_operands(name, kinds, types)
        weak = all(t.weak for t in types)
        return TensorType(first.shape, np.bool_ if result_bool else first.dtype, weak)

    def impl(*arrays):
        return np.asarray(np_fn(*arrays))

    prim = Primitive(name, "elementwise", abstract_eval=abstract_eval, impl=impl, scalar=scalar,
                     dtype_kinds=kinds)
    return prim.def_batch(B.elementwise_rule(prim))


def unary(name, np_fn, scalar, kinds):
    return _make(name, 1, np_fn, scalar, kinds)


def binary(name, np_fn, scalar, kinds):
    return _make(name, 2, np_fn, scalar, kinds)


def predicate(name, nin, np_fn, scalar, kinds):
    return _make(name, nin, np_fn, scalar, kinds, result_bool=True)


# --- unary arithmetic ------------------------------------------------------------------------
neg = unary("neg", np.negative, "(-{0})", NUM)
sign = unary("sign", np.sign, "np.sign({0})", NUM)
abs_ = unary("abs", np.abs, "abs({0})", ALL)
floor = unary("floor", np.floor, "np.floor({0})", FLOAT)
ceil = unary("ceil", np.ceil, "np.ceil({0})", FLOAT)
round_ = unary("round", np.rint, "np.rint({0})", FLOAT)  # half to even, as np.round
# --- transcendental --------------------------------------------------------------------------
exp = unary("exp", np.exp, "np.exp({0})", FLOAT)
log = unary("log", np.log, "np.log({0})", FLOAT)
log1p = unary("log1p", np.log1p, "np.log1p({0})", FLOAT)
expm1 = unary("expm1", np.expm1, "np.expm1({0})", FLOAT)
sqrt = unary("sqrt", np.sqrt, "np.sqrt({0})", FLOAT)
sin = unary("sin", np.sin, "np.sin({0})", FLOAT)
cos = unary("cos", np.cos, "np.cos({0})", FLOAT)
tan = unary("tan", np.tan, "np.tan({0})", FLOAT)
tanh = unary("tanh", np.tanh, "np.tanh({0})", FLOAT)
arctan = unary("arctan", np.arctan, "np.arctan({0})", FLOAT)
# Primitives, not composites: log(x + sqrt(x*x + 1)) overflows for |x| > 1e154, cancels for
# x < 0 and loses the sign of -0.0; libm's asinh does none of that.
arcsinh = unary("arcsinh", np.arcsinh, "np.arcsinh({0})", FLOAT)
# --- bitwise / logical (logical on bool, bitwise on integers) --------------------------------
not_ = unary("not", np.invert, "(~{0})", "biu")
not_.scalar_by_kind["b"] = "(not {0})"
# --- predicates ------------------------------------------------------------------------------
isnan = predicate("isnan", 1, np.isnan, "np.isnan({0})", FLOAT)
isfinite = predicate("isfinite", 1, np.isfinite, "np.isfinite({0})", FLOAT)

# --- binary arithmetic -----------------------------------------------------------------------
add = binary("add", np.add, "({0} + {1})", ALL)  # on bool: logical or, as NumPy
sub = binary("sub", np.subtract, "({0} - {1})", NUM)
mul = binary("mul", np.multiply, "({0} * {1})", ALL)  # on bool: logical and, as NumPy
div = binary("div", np.true_divide, "({0} / {1})", FLOAT)
floordiv = binary("floordiv", np.floor_divide, "({0} // {1})", NUM)
mod = binary("mod", np.remainder, "({0} % {1})", NUM)  # sign of the divisor, as NumPy
pow_ = binary("pow", np.power, "({0} ** {1})", NUM)
max_ = binary("max", np.maximum, "np.maximum({0}, {1})", ALL)  # NaN-propagating
min_ = binary("min", np.minimum, "np.minimum({0}, {1})", ALL)
atan2 = binary("atan2", np.arctan2, "np.arctan2({0}, {1})", FLOAT)
# sqrt(a*a + b*b) overflows (and underflows) where the result does not; libm's hypot does not,
# and hypot(inf, nan) is inf.
hypot = binary("hypot", np.hypot, "np.hypot({0}, {1})", FLOAT)
and_ = binary("and", np.bitwise_and, "({0} & {1})", "biu")
or_ = binary("or", np.bitwise_or, "({0} | {1})", "biu")
xor = binary("xor", np.bitwise_xor, "({0} ^ {1})", "biu")
# --- comparisons -----------------------------------------------------------------------------
eq = predicate("eq", 2, np.equal, "({0} == {1})", ALL)
ne = predicate("ne", 2, np.not_equal, "({0} != {1})", ALL)
lt = predicate("lt", 2, np.less, "({0} < {1})", ALL)
le = predicate("le", 2, np.less_equal, "({0} <= {1})", ALL)
gt = predicate("gt", 2, np.greater, "({0} > {1})", ALL)
ge = predicate("ge", 2, np.greater_equal, "({0} >= {1})", ALL)


# --- select: where(pred, on_true, on_false) --------------------------------------------------
def _select_abstract_eval(pred, on_true, on_false):
    if pred.dtype != np.bool_ or pred.shape != on_true.shape:
        raise TypeError(f"select: predicate must be bool of the operands' shape, got {pred}")
    first = _check_operands("select", ALL, [on_true, on_false])
    return TensorType(first.shape, first.dtype, on_true.weak and on_false.weak)


select = Primitive("select", "elementwise", abstract_eval=_select_abstract_eval,
                   impl=lambda p, t, f: np.asarray(np.where(p, t, f)),
                   scalar="({1} if {0} else {2})", dtype_kinds=ALL)
select.def_batch(B.elementwise_rule(select))


# --- convert[dtype, weak]: NumPy's astype (C casts; float -> int truncates) ------------------
# `weak` (printed only when set) keeps a Python scalar weak when promotion changed its dtype.
def _convert_abstract_eval(x, *, dtype, weak=False):
    return TensorType(x.shape, dtypes.canonical_dtype(dtype), weak)


def _convert_impl(x, *, dtype, weak=False):
    with np.errstate(invalid="ignore", over="ignore"):
        return np.asarray(x).astype(dtype)


convert = Primitive("convert", "elementwise", abstract_eval=_convert_abstract_eval,
                    impl=_convert_impl, scalar="{dtype}({0})", dtype_kinds=ALL)
convert.def_batch(B.elementwise_rule(convert))


# =============================================================================================
# Derivative rules: one partial derivative per operand, ``partial(ct, *primals, out) -> ct_i``
# (ad_support.elementwise_rules builds the VJP and JVP from them). Conventions at kinks, in
# docs/autodiff.md: abs'(0) = 0, max/min split the cotangent evenly at ties, sqrt'(0) = inf,
# hypot's gradient at (0, 0) is 0, d(x ** 0)/dx = 0 everywhere.
# =============================================================================================
from . import ad_support as A  # noqa: E402  (the rules below need the primitives above)


def _elementwise_ad(prim, *partials):
    vjp, jvp = A.elementwise_rules(partials)
    prim.def_ad(vjp, jvp, takes_needed=True)


def _pow_dx(ct, x, y, *, out):
    # y * x**(y-1), taken as 0 where y == 0: x ** 0 is constant (so 0**0 has a finite
    # gradient). The unselected branch sees x = 1 there: at x == 0 it would read 0 * 0**-1 =
    # 0 * inf, a NaN that the zero cotangent of the branch not taken turns into the second
    # derivative's NaN.
    zero_y = eq.bind(y, A.zeros_like(y))
    safe_x = A.select(zero_y, A.full_like(x, 1), x)
    power = A.mul(y, pow_.bind(safe_x, A.sub(y, A.full_like(y, 1))))
    return A.mul(ct, A.select(zero_y, A.zeros_like(x), power))


def _pow_dy(ct, x, y, *, out):
    # x**y * log(x), taken as 0 where x == 0; log sees 1 there so that no inf/NaN enters the
    # graph even in the unselected branch (it would poison higher derivatives).
    zero_x = eq.bind(x, A.zeros_like(x))
    safe_log = log.bind(A.select(zero_x, A.full_like(x, 1), x))
    return A.mul(ct, A.select(zero_x, A.zeros_like(y), A.mul(out, safe_log)))


def _extremum_weight(strict, x, y):
    """1 where x wins, 1/2 at ties, 0 where y wins: the share of the cotangent x gets."""
    return A.select(strict.bind(x, y), A.full_like(x, 1),
                    A.select(eq.bind(x, y), A.full_like(x, 0.5), A.zeros_like(x)))


def _extremum_partials(strict):
    return (lambda ct, x, y, *, out: A.mul(ct, _extremum_weight(strict, x, y)),
            lambda ct, x, y, *, out: A.mul(ct, A.sub(A.full_like(x, 1),
                                                     _extremum_weight(strict, x, y))))


def _atan2_denominator(a, b):
    return A.add(A.mul(a, a), A.mul(b, b))


def _hypot_partial(ct, a, b, *, out):
    # a / hypot(a, b); hypot is 0 only where a == b == 0, where this reads 0 / 1 = 0 (the
    # convention of abs at 0), with nothing infinite in the graph for higher derivatives.
    zero = eq.bind(out, A.zeros_like(out))
    return A.mul(ct, A.div(a, A.select(zero, A.full_like(out, 1), out)))


def _convert_vjp(ct, x, *, out, dtype, weak=False):
    if x.dtype.kind != "f":
        return [None]
    return [convert.bind(ct, dtype=x.dtype)]


def _one_plus(x, v):
    return A.add(A.full_like(x, 1), v)


_elementwise_ad(neg, lambda ct, x, *, out: A.neg(ct))
_elementwise_ad(abs_, lambda ct, x, *, out: A.mul(ct, sign.bind(x)))
_elementwise_ad(exp, lambda ct, x, *, out: A.mul(ct, out))
_elementwise_ad(log, lambda ct, x, *, out: A.div(ct, x))
_elementwise_ad(log1p, lambda ct, x, *, out: A.div(ct, _one_plus(x, x)))
_elementwise_ad(expm1, lambda ct, x, *, out: A.mul(ct, _one_plus(out, out)))
_elementwise_ad(sqrt, lambda ct, x, *, out: A.div(ct, A.scaled(out, 2)))
_elementwise_ad(sin, lambda ct, x, *, out: A.mul(ct, cos.bind(x)))
_elementwise_ad(cos, lambda ct, x, *, out: A.neg(A.mul(ct, sin.bind(x))))
_elementwise_ad(tan, lambda ct, x, *, out: A.mul(ct, _one_plus(out, A.mul(out, out))))
_elementwise_ad(tanh, lambda ct, x, *, out: A.mul(ct, A.sub(A.full_like(out, 1),
                                                            A.mul(out, out))))
_elementwise_ad(arctan, lambda ct, x, *, out: A.div(ct, _one_plus(x, A.mul(x, x))))
# 1 / sqrt(1 + x*x) as 1 / hypot(x, 1): no overflow of x*x for |x| > 1e154.
_elementwise_ad(arcsinh, lambda ct, x, *, out: A.div(ct, hypot.bind(x, A.full_like(x, 1))))
_elementwise_ad(add, lambda ct, x, y, *, out: ct, lambda ct, x, y, *, out: ct)
_elementwise_ad(sub, lambda ct, x, y, *, out: ct, lambda ct, x, y, *, out: A.neg(ct))
_elementwise_ad(mul, lambda ct, x, y, *, out: A.mul(ct, y), lambda ct, x, y, *, out: A.mul(ct, x))
_elementwise_ad(div, lambda ct, x, y, *, out: A.div(ct, y),
                lambda ct, x, y, *, out: A.neg(A.div(A.mul(ct, out), y)))
_elementwise_ad(pow_, _pow_dx, _pow_dy)
_elementwise_ad(max_, *_extremum_partials(gt))
_elementwise_ad(min_, *_extremum_partials(lt))
_elementwise_ad(atan2, lambda ct, a, b, *, out: A.mul(ct, A.div(b, _atan2_denominator(a, b))),
                lambda ct, a, b, *, out: A.neg(A.mul(ct, A.div(a, _atan2_denominator(a, b)))))
_elementwise_ad(hypot, _hypot_partial, lambda ct, a, b, *, out: _hypot_partial(ct, b, a, out=out))
# NumPy's mod is x - floor(x / y) * y.
_elementwise_ad(mod, lambda ct, x, y, *, out: ct,
                lambda ct, x, y, *, out: A.neg(A.mul(ct, floor.bind(A.div(x, y)))))
select.def_ad(lambda ct, p, t, f, *, out: [None, A.select(p, ct, A.zeros_like(ct)),
                                           A.select(p, A.zeros_like(ct), ct)],
              A.linear_jvp("select", passthrough=(0,)))
convert.def_ad(_convert_vjp, A.linear_jvp("convert"))

for _prim in (sign, floor, ceil, round_, not_, isnan, isfinite, floordiv, and_, or_, xor,
              eq, ne, lt, le, gt, ge):
    _prim.not_differentiable()
