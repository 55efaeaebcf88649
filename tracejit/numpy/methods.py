"""The NumPy-facing surface of ``Tracer``: operators, ndarray methods and NumPy's protocols.

Attached here rather than in ``tracing`` so that tracing knows nothing of NumPy's API.
"""
from __future__ import annotations

import numpy as np

from ..tracing import Tracer
from . import (_dispatch, contractions, creation, indexing, manipulation, reductions, sorting,
               ufuncs)
from . import _prims as P
from ._dispatch import unsupported


def _binary(fn):
    fn = _operator(fn)
    return (lambda self, other: fn(self, other)), (lambda self, other: fn(other, self))


def _operator(fn):
    """The traced function under ``fn``'s NumPy wrapper: Python's operators keep the weak type
    of Python scalars (``a * 2.0`` of a Python float is a Python float), NumPy calls do not."""
    return fn.__wrapped__


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
    power, square = _operator(ufuncs.power), _operator(ufuncs.square)
    # NumPy's `a ** 2` with a Python int is np.square(a) (its fast path), which differs from
    # np.power(a, 2) for bools: int8, not int64.
    Tracer.__pow__ = lambda self, other: square(self) if type(other) is int and other == 2 \
        else power(self, other)
    for name, fn in {"eq": ufuncs.equal, "ne": ufuncs.not_equal, "lt": ufuncs.less,
                     "le": ufuncs.less_equal, "gt": ufuncs.greater,
                     "ge": ufuncs.greater_equal}.items():
        setattr(Tracer, f"__{name}__", lambda self, other, fn=_operator(fn): fn(self, other))
    for name, fn in {"neg": ufuncs.negative, "pos": ufuncs.positive, "abs": ufuncs.absolute,
                     "invert": ufuncs.invert}.items():
        setattr(Tracer, f"__{name}__", lambda self, fn=_operator(fn): fn(self))
    floordiv, mod = _operator(ufuncs.floor_divide), _operator(ufuncs.remainder)
    Tracer.__divmod__ = lambda self, o: (floordiv(self, o), mod(self, o))
    Tracer.__rdivmod__ = lambda self, o: (floordiv(o, self), mod(o, self))
    for name, symbol in (("lshift", "<<"), ("rlshift", "<<"), ("rshift", ">>"),
                         ("rrshift", ">>")):
        def shift(self, other, symbol=symbol):
            raise unsupported(f"the `{symbol}` operator")
        setattr(Tracer, f"__{name}__", shift)


def _reshape(self, *new_shape, order="C", copy=None):
    if not new_shape:
        raise P.user_error(TypeError, "reshape() takes exactly 1 argument (0 given)")
    if len(new_shape) == 1 and not isinstance(new_shape[0], int):
        new_shape = new_shape[0]
    return manipulation.reshape(self, new_shape, order=order, copy=copy)


def _transpose(self, *axes):
    if len(axes) == 1 and not isinstance(axes[0], int):
        axes = axes[0]
    return manipulation.transpose(self, axes or None)


def _matrix_transpose(self):
    if self.ndim < 2:
        raise P.user_error(ValueError, "matrix transpose with ndim < 2 is undefined")
    return manipulation.swapaxes(self, -1, -2)


def _astype(self, dtype, order="K", casting="unsafe", subok=True, copy=True):
    if not np.can_cast(self.dtype, dtype, casting):
        raise P.user_error(TypeError, f"Cannot cast array data from {self.dtype!r} to "
                                      f"{np.dtype(dtype)!r} according to the rule {casting!r}")
    return creation.astype(self, dtype)


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
        "argsort": sorting.argsort, "argpartition": sorting.argpartition, "take": indexing.take,
    }
    for name, fn in methods.items():
        setattr(Tracer, name, fn)
    Tracer.reshape = _reshape
    Tracer.transpose = _transpose
    Tracer.astype = _astype
    Tracer.copy = lambda self, order="C": self  # traced arrays are immutable: nothing to copy
    # tracejit has no complex dtypes, so every traced array is its own real part and conjugate.
    Tracer.conj = Tracer.conjugate = lambda self: self
    Tracer.real = property(lambda self: self)
    Tracer.imag = property(lambda self: creation.zeros_like(self))
    Tracer.itemsize = property(lambda self: self.dtype.itemsize)
    Tracer.nbytes = property(lambda self: self.size * self.dtype.itemsize)
    Tracer.T = property(lambda self: manipulation.transpose(self))
    Tracer.mT = property(_matrix_transpose)
    Tracer.__getitem__ = indexing.getitem
    Tracer.__array_ufunc__ = lambda self, ufunc, method, *inputs, **kwargs: \
        _dispatch.array_ufunc(ufunc, method, *inputs, **kwargs)
    Tracer.__array_function__ = lambda self, func, types, args, kwargs: \
        _dispatch.array_function(func, types, args, kwargs)


# The rest of ndarray's public names, refused with the reason where there is one, so that using
# them names the user's line instead of failing with AttributeError. Methods raise when called
# (so `hasattr` stays True, as on an ndarray), attributes when read. tests/test_methods.py walks
# dir(np.ndarray): a name a new NumPy adds fails there until it is attached above or listed here.
_IN_PLACE = "it changes the array in place, and traced arrays are immutable"
_NO_MEMORY = "a traced array has a shape and dtype but no memory (buffer, strides, flags)"
_VALUE_SHAPE = "the shape of its result depends on the array's values"
_DEVICE = "the device is chosen by `tracejit.compile(..., device=...)`"
_REFUSED_METHODS = {
    "fill": _IN_PLACE, "partition": _IN_PLACE, "put": _IN_PLACE, "resize": _IN_PLACE,
    "setfield": _IN_PLACE, "setflags": _IN_PLACE, "sort": _IN_PLACE,
    "byteswap": _NO_MEMORY, "getfield": _NO_MEMORY, "view": _NO_MEMORY,
    "compress": _VALUE_SHAPE, "nonzero": _VALUE_SHAPE,
    "to_device": _DEVICE, "choose": "", "searchsorted": "",
}
_REFUSED_ATTRIBUTES = {
    "base": _NO_MEMORY, "ctypes": _NO_MEMORY, "data": _NO_MEMORY, "flags": _NO_MEMORY,
    "strides": _NO_MEMORY, "device": _DEVICE, "flat": "index `x.ravel()` instead",
}
# Methods that hand back the values themselves (`item` and `tolist` are on Tracer already).
_NEEDS_VALUES = ("dump", "dumps", "tobytes", "tofile")


def _refused_method(name: str, why: str):
    def method(self, *args, **kwargs):
        raise unsupported(f"`ndarray.{name}()`", why)
    return method


def _refused_attribute(name: str, why: str):
    def read(self):
        raise unsupported(f"`ndarray.{name}`", why)
    return property(read)


def _needs_values(name: str):
    def method(self, *args, **kwargs):
        self._concretization_error(f"`ndarray.{name}()`")
    return method


def _attach_refusals():
    for name, why in _REFUSED_METHODS.items():
        setattr(Tracer, name, _refused_method(name, why))
    for name, why in _REFUSED_ATTRIBUTES.items():
        setattr(Tracer, name, _refused_attribute(name, why))
    for name in _NEEDS_VALUES:
        setattr(Tracer, name, _needs_values(name))


_attach_operators()
_attach_methods()
_attach_refusals()
