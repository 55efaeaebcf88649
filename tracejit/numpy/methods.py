"""The NumPy-facing surface of ``Tracer``: operators, ndarray methods and NumPy's protocols.

Attached here rather than in ``tracing`` so that tracing knows nothing of NumPy's API.
"""
from __future__ import annotations

from ..tracing import Tracer
from . import _dispatch, contractions, creation, indexing, manipulation, reductions, ufuncs
from ._dispatch import unsupported


def _binary(fn):
    return (lambda self, other: fn(self, other)), (lambda self, other: fn(other, self))


def _attach_operators():
    table = {
        "add": ufuncs.add, "sub": ufuncs.subtract, "mul": ufuncs.multiply,
        "truediv": ufuncs.true_divide, "floordiv": ufuncs.floor_divide, "mod": ufuncs.remainder,
        "pow": ufuncs.power, "matmul": contractions.matmul, "and": ufuncs.bitwise_and,
        "or": ufuncs.bitwise_or, "xor": ufuncs.bitwise_xor,
    }
    for name, fn in table.items():
        forward, reflected = _binary(fn)
        setattr(Tracer, f"__{name}__", forward)
        setattr(Tracer, f"__r{name}__", reflected)
    for name, fn in {"eq": ufuncs.equal, "ne": ufuncs.not_equal, "lt": ufuncs.less,
                     "le": ufuncs.less_equal, "gt": ufuncs.greater,
                     "ge": ufuncs.greater_equal}.items():
        setattr(Tracer, f"__{name}__", lambda self, other, fn=fn: fn(self, other))
    Tracer.__neg__ = lambda self: ufuncs.negative(self)
    Tracer.__pos__ = lambda self: ufuncs.positive(self)
    Tracer.__abs__ = lambda self: ufuncs.absolute(self)
    Tracer.__invert__ = lambda self: ufuncs.invert(self)
    Tracer.__divmod__ = lambda self, o: (ufuncs.floor_divide(self, o), ufuncs.remainder(self, o))
    Tracer.__rdivmod__ = lambda self, o: (ufuncs.floor_divide(o, self), ufuncs.remainder(o, self))
    for name, symbol in (("lshift", "<<"), ("rlshift", "<<"), ("rshift", ">>"),
                         ("rrshift", ">>")):
        def shift(self, other, symbol=symbol):
            raise unsupported(f"the `{symbol}` operator")
        setattr(Tracer, f"__{name}__", shift)


def _reshape(self, *new_shape, order="C"):
    if len(new_shape) == 1 and not isinstance(new_shape[0], int):
        new_shape = new_shape[0]
    return manipulation.reshape(self, new_shape, order=order)


def _transpose(self, *axes):
    if len(axes) == 1 and not isinstance(axes[0], int):
        axes = axes[0]
    return manipulation.transpose(self, axes or None)


def _attach_methods():
    methods = {
        "sum": reductions.sum_, "prod": reductions.prod, "mean": reductions.mean,
        "var": reductions.var, "std": reductions.std, "max": reductions.max_,
        "min": reductions.min_, "argmax": reductions.argmax, "argmin": reductions.argmin,
        "all": reductions.all_, "any": reductions.any_, "cumsum": reductions.cumsum,
        "cumprod": reductions.cumprod, "squeeze": manipulation.squeeze, "ravel": manipulation.ravel,
        "flatten": manipulation.ravel, "swapaxes": manipulation.swapaxes, "clip": ufuncs.clip,
        "dot": contractions.dot, "round": ufuncs.round_, "diagonal": manipulation.diagonal,
        "trace": manipulation.trace, "repeat": manipulation.repeat,
    }
    for name, fn in methods.items():
        setattr(Tracer, name, fn)
    Tracer.reshape = _reshape
    Tracer.transpose = _transpose
    Tracer.astype = lambda self, dtype, **kwargs: creation.astype(self, dtype)
    Tracer.copy = lambda self: self
    Tracer.T = property(lambda self: manipulation.transpose(self))
    Tracer.mT = property(lambda self: manipulation.swapaxes(self, -1, -2))
    Tracer.__getitem__ = indexing.getitem
    Tracer.__array_ufunc__ = lambda self, ufunc, method, *inputs, **kwargs: \
        _dispatch.array_ufunc(ufunc, method, *inputs, **kwargs)
    Tracer.__array_function__ = lambda self, func, types, args, kwargs: \
        _dispatch.array_function(func, types, args, kwargs)


_attach_operators()
_attach_methods()
