"""How a tnp function chooses between tracing and NumPy, and NumPy's protocols on tracers.

``@implements(np.foo)`` marks the traced implementation of ``np.foo``. Called with no tracer among
its arguments (and, for creation functions, outside any trace) the wrapper simply calls NumPy,
so eager results are NumPy's own, bit for bit. The same table answers ``__array_function__``
and ``__array_ufunc__``, so ``np.sum(tracer)`` and ``np.exp(tracer)`` land on the tnp functions.
"""
from __future__ import annotations

import functools

import numpy as np

from ..errors import at_user_line
from ..tracing import current_graph_trace
from ..tracing import Tracer
from ._prims import any_traced, convert

HANDLED_FUNCTIONS: dict = {}  # NumPy function -> tnp function (for __array_function__)
HANDLED_UFUNCS: dict = {}  # ufunc name -> tnp function (for __array_ufunc__)


def implements(np_fn, *, creation=False, ufunc=None):
    def decorate(traced_fn):
        @functools.wraps(traced_fn)
        def wrapper(*args, **kwargs):
            if any_traced(args, kwargs) or (creation and current_graph_trace() is not None):
                return _strong(traced_fn(*args, **kwargs))
            return np_fn(*args, **kwargs)

        wrapper.numpy_function = np_fn
        HANDLED_FUNCTIONS[np_fn] = wrapper
        if isinstance(np_fn, np.ufunc):
            HANDLED_UFUNCS[np_fn.__name__] = wrapper
        return wrapper

    return decorate


def _strong(result):
    """A NumPy function's result is a NumPy value, never weakly typed: ``np.sin(x)`` of a Python
    float ``x`` is a float64 that promotes float32 arrays to float64, where ``x * 2.0`` is a
    Python float that does not (NEP 50). Python's operators on traced values keep weak types
    (they call the unwrapped functions); calls through NumPy's names make them strong."""
    if isinstance(result, tuple) and hasattr(type(result), "_fields"):  # a named tuple
        return type(result)(*(_strong(r) for r in result))
    if isinstance(result, (tuple, list)):
        return type(result)(_strong(r) for r in result)
    if isinstance(result, Tracer) and result.ttype.weak:
        return convert(result, result.dtype)
    return result


def _qualified_name(fn) -> str:
    module = getattr(fn, "__module__", None) or "numpy"
    module = "numpy" if module.startswith("numpy._core") or module == "numpy.core" else module
    return f"{module}.{getattr(fn, '__name__', repr(fn))}"


def unsupported(what: str, why: str = ""):
    """The error for ``what`` (e.g. "numpy.fft.fft") used on a traced array, with ``why`` (a
    clause) where there is a reason beyond "not implemented"."""
    reason = f": {why}" if why else ""
    return NotImplementedError(at_user_line(
        f"{what} is not supported on traced arrays by tracejit{reason}. See `tracejit.numpy` for "
        "the supported NumPy functions, or compute this outside the compiled function."))


_UFUNC_REDUCTIONS = {"add": "sum", "multiply": "prod", "maximum": "max", "minimum": "min",
                     "logical_and": "all", "logical_or": "any"}
_UFUNC_ACCUMULATIONS = {"add": "cumsum", "multiply": "cumprod"}


def array_ufunc(ufunc, method, *inputs, **kwargs):
    from .. import numpy as tnp

    for bad in ("out", "where", "casting", "order", "subok", "signature"):
        if kwargs.get(bad) is not None:
            raise unsupported(f"numpy.{ufunc.__name__} with {bad}=")
    dtype = kwargs.pop("dtype", None)
    if method == "__call__":
        fn = HANDLED_UFUNCS.get(ufunc.__name__)
        if fn is None:
            raise unsupported(f"numpy.{ufunc.__name__}")
        if kwargs:
            raise unsupported(f"numpy.{ufunc.__name__} with {', '.join(kwargs)}=")
        result = fn(*inputs)
        return result if dtype is None else tnp.astype(result, dtype)
    if method == "reduce" and ufunc.__name__ in _UFUNC_REDUCTIONS:
        name = _UFUNC_REDUCTIONS[ufunc.__name__]
        axis = kwargs.pop("axis", 0)
        keepdims = kwargs.pop("keepdims", False)
        if kwargs:
            raise unsupported(f"numpy.{ufunc.__name__}.reduce with {', '.join(kwargs)}=")
        extra = {"dtype": dtype} if dtype is not None and name in ("sum", "prod") else {}
        return getattr(tnp, name)(inputs[0], axis=axis, keepdims=keepdims, **extra)
    if method == "accumulate" and ufunc.__name__ in _UFUNC_ACCUMULATIONS:
        axis = kwargs.pop("axis", 0)
        return getattr(tnp, _UFUNC_ACCUMULATIONS[ufunc.__name__])(inputs[0], axis=axis, dtype=dtype)
    raise unsupported(f"numpy.{ufunc.__name__}.{method}")


def array_function(func, types, args, kwargs):
    fn = HANDLED_FUNCTIONS.get(func)
    if fn is None:
        raise unsupported(_qualified_name(func))
    return fn(*args, **kwargs)
