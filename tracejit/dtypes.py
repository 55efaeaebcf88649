"""Dtypes tracejit supports, their short names in IR text, and NumPy 2 (NEP 50) promotion.

A value's abstract type carries a *weak* flag: Python scalars (``2.0``, a Python ``int`` argument)
are weak, so ``float32_array * 2.0`` stays float32 exactly as in NumPy 2. Promotion itself is
delegated to NumPy: a weak operand is handed to ``np.result_type`` as a Python value of its kind,
which NumPy treats as weak. That keeps us in lock-step with NumPy's table rather than a copy of it.
"""
from __future__ import annotations

import numpy as np

# Order matters: it is the order of the README table and of error messages.
_SUPPORTED = (
    np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
    np.float16, np.float32, np.float64,
)
SUPPORTED_DTYPES = tuple(np.dtype(t) for t in _SUPPORTED)
_SHORT_NAMES = {
    np.dtype(np.bool_): "bool",
    np.dtype(np.int8): "i8", np.dtype(np.int16): "i16",
    np.dtype(np.int32): "i32", np.dtype(np.int64): "i64",
    np.dtype(np.uint8): "u8", np.dtype(np.uint16): "u16",
    np.dtype(np.uint32): "u32", np.dtype(np.uint64): "u64",
    np.dtype(np.float16): "f16", np.dtype(np.float32): "f32", np.dtype(np.float64): "f64",
}
# The representative Python value NumPy treats as a weak scalar of each kind.
_WEAK_VALUE = {"b": False, "i": 0, "u": 0, "f": 0.0}

INDEX_DTYPE = np.dtype(np.int64)  # what argmax / indices produce, as NumPy on 64-bit platforms


def short_name(dtype) -> str:
    return _SHORT_NAMES[np.dtype(dtype)]


def supported_names() -> str:
    return ", ".join(str(d) for d in SUPPORTED_DTYPES)


def is_supported(dtype: np.dtype) -> bool:
    return dtype in _SHORT_NAMES


def canonical_dtype(dtype) -> np.dtype:
    """``np.dtype(dtype)``, refusing the dtypes tracejit does not compile (complex, object, ...)."""
    dt = np.dtype(dtype)
    if dt not in _SHORT_NAMES:
        if dt.kind in "biuf" and dt.isnative is False:
            raise TypeError(f"non-native byte order dtype {dt.str} is not supported; "
                            "convert with .astype(dt.newbyteorder('='))")
        raise TypeError(f"dtype {dt} is not supported by tracejit (supported: {supported_names()})")
    return dt


def is_float(dtype) -> bool:
    return np.dtype(dtype).kind == "f"


def is_integer(dtype) -> bool:
    return np.dtype(dtype).kind in "iu"


def is_bool(dtype) -> bool:
    return np.dtype(dtype).kind == "b"


def is_python_scalar(value) -> bool:
    """A Python bool/int/float (weakly typed), not a NumPy scalar (np.float64 subclasses float)."""
    return isinstance(value, (bool, int, float)) and not isinstance(value, np.generic)


def python_scalar_dtype(value) -> np.dtype:
    """The dtype NumPy gives a Python scalar on its own (``np.asarray(value).dtype``)."""
    if isinstance(value, bool):
        return np.dtype(np.bool_)
    if isinstance(value, int):
        return np.dtype(np.int64)
    if isinstance(value, float):
        return np.dtype(np.float64)
    if isinstance(value, complex):
        raise TypeError("complex numbers are not supported by tracejit")
    raise TypeError(f"{type(value).__name__} is not a scalar type tracejit understands")


def result_type(*operands: tuple[np.dtype, bool]) -> tuple[np.dtype, bool]:
    """Promote ``(dtype, weak)`` pairs as NumPy 2 does; the result is weak iff every input is."""
    if not operands:
        raise ValueError("result_type needs at least one operand")
    args = [_WEAK_VALUE[dt.kind] if weak else dt for dt, weak in operands]
    dt = np.result_type(*args)
    weak = all(weak for _, weak in operands)
    return canonical_dtype(dt), weak


def sum_dtype(dtype) -> np.dtype:
    """The accumulator/result dtype of ``np.sum``/``np.prod``/``np.cumsum`` without ``dtype=``."""
    dt = np.dtype(dtype)
    if dt.kind == "b" or (dt.kind == "i" and dt.itemsize < 8):
        return np.dtype(np.int64)
    if dt.kind == "u" and dt.itemsize < 8:
        return np.dtype(np.uint64)
    return dt


def mean_dtype(dtype) -> np.dtype:
    """The result dtype of ``np.mean``/``np.var`` without ``dtype=``: integers give float64."""
    dt = np.dtype(dtype)
    return np.dtype(np.float64) if dt.kind in "biu" else dt


def float_dtype_for(dtype) -> np.dtype:
    """The dtype a float-only ufunc (``np.exp``, ``np.sin``, ...) computes an input of ``dtype`` in."""
    return canonical_dtype(np.exp.resolve_dtypes((np.dtype(dtype), None))[1])


def check_python_int_fits(value: int, dtype) -> None:
    """NumPy 2 raises when a Python int cannot be represented in the array's integer dtype."""
    dt = np.dtype(dtype)
    if dt.kind in "iu" and not isinstance(value, bool):
        info = np.iinfo(dt)
        if not info.min <= value <= info.max:
            raise OverflowError(f"Python integer {value} out of bounds for {dt}")
