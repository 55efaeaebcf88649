"""User-facing errors and the source provenance they carry (the user's file:line)."""
from __future__ import annotations

import linecache
import os
import sys
import threading
import types
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_NUMPY_DIR = os.path.dirname(os.path.abspath(np.__file__)) + os.sep


@dataclass(frozen=True)
class SourceInfo:
    """Where in the user's code an equation was created."""

    filename: str
    lineno: int
    function: str
    backward: bool = False  # made by a reverse-mode rule (the backward pass of a gradient)

    def __str__(self) -> str:
        return f"{self.filename}:{self.lineno}"

    def line_text(self) -> str:
        return linecache.getline(self.filename, self.lineno).strip()


def _is_internal(filename: str) -> bool:
    path = os.path.abspath(filename)
    return path.startswith((_PACKAGE_DIR, _NUMPY_DIR)) or filename.startswith("<frozen")


def without_internal_frames(tb):
    """The traceback ``tb`` without tracejit's own frames (and NumPy's dispatch frames beneath
    them), so an error raised while tracing ends at the user's line."""
    frames = []
    while tb is not None:
        if not _is_internal(tb.tb_frame.f_code.co_filename):
            frames.append(tb)
        tb = tb.tb_next
    result = None
    for t in reversed(frames):
        result = types.TracebackType(result, t.tb_frame, t.tb_lasti, t.tb_lineno)
    return result


_phase = threading.local()


@contextmanager
def backward_pass():
    """Equations made inside this block are marked as the backward pass of a gradient."""
    outer = getattr(_phase, "backward", False)
    _phase.backward = True
    try:
        yield
    finally:
        _phase.backward = outer


def user_source_info() -> SourceInfo | None:
    """The innermost stack frame outside tracejit and NumPy: the line the user wrote."""
    frame = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        if not _is_internal(code.co_filename):
            return SourceInfo(code.co_filename, frame.f_lineno, code.co_name,
                              getattr(_phase, "backward", False))
        frame = frame.f_back
    return None


def at_user_line(message: str, info: SourceInfo | None = None) -> str:
    """Append the user's file:line (and the line itself) to an error message."""
    info = info or user_source_info()
    if info is None:
        return message
    text = info.line_text()
    where = f"\n  at {info} in {info.function}()"
    return message + where + (f"\n      {text}" if text else "")


class TracerConversionError(TypeError):
    """A traced value was used where a concrete Python value is needed (``if x > 0:``, ``int(x)``).

    Shapes and dtypes are known while tracing, values are not: a Python ``if``/``while`` whose
    condition depends on an array's *values* cannot be recorded into a static graph.
    """


class ValueDependentShapeError(NotImplementedError):
    """The shape of a result would depend on array values (``x[mask]``, ``nonzero``, ``unique``
    on traced arrays): compiled graphs have static shapes, fixed while tracing. The message
    says what to use instead (``where``, or a static ``size=``)."""


class CompileError(RuntimeError):
    """Numba could not compile generated code. The message names the kernel, the primitives
    fused into it and the user's lines they came from; Numba's own message follows it."""


class DeviceError(RuntimeError):
    """The requested device cannot be used here (no GPU, no simulator, no numba-cuda), or an
    array lives on a device the compiled function does not run on."""


class IRVerificationError(Exception):
    """A graph broke an IR invariant; this is a bug in tracejit (or in a pass), not in user code."""
