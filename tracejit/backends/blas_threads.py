"""NumPy's BLAS threads, fewer while compile workers build in the background.

OpenBLAS keeps its threads spinning for a while after each product, waiting for the next. A
tiered function's first calls run matrix products in a loop (the interpreter, then the entry
as Python) while a compile worker builds the kernels: on a 2-core machine the caller's BLAS
threads then hold both cores and the worker gets what is left (measured: the MLP's kernels took
3.4 s of worker time beside the calls, 2.0 s with the caller's BLAS on one thread). So while a
background build runs, the caller's BLAS is capped to the cores the workers leave free, and
given back its threads when the last build ends (``capped``, counted across signatures).

Only NumPy's own OpenBLAS (the library its wheels bundle, the one ``blas.py`` calls) is
touched, through its ``*set_num_threads*`` symbol; with another BLAS nothing changes. This
module imports no Numba: the tiered runtime uses it before Numba is loaded.
"""
from __future__ import annotations

import ctypes
import glob
import os
import threading
from contextlib import contextmanager

import numpy as np

# (set, get) symbol names, NumPy >= 2 wheels first, then older wheels.
_SYMBOLS = [("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
            ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
            ("openblas_set_num_threads", "openblas_get_num_threads")]


def numpy_blas_libraries() -> list[str]:
    """The BLAS libraries NumPy's wheels bundle (none for a NumPy built against a system
    BLAS)."""
    root = os.path.dirname(np.__file__)
    patterns = [os.path.join(root, "..", "numpy.libs", "*openblas*"),  # manylinux wheels
                os.path.join(root, ".dylibs", "*openblas*"),  # macOS wheels
                os.path.join(root, "..", "numpy.libs", "*blas*")]
    return sorted({p for pattern in patterns for p in glob.glob(pattern)})


def _find():
    for path in numpy_blas_libraries():
        try:
            library = ctypes.CDLL(path)  # already loaded by NumPy: the same library
        except OSError:
            continue
        for set_name, get_name in _SYMBOLS:
            set_, get = getattr(library, set_name, None), getattr(library, get_name, None)
            if set_ is not None and get is not None:
                set_.argtypes, set_.restype = [ctypes.c_int], None
                get.argtypes, get.restype = [], ctypes.c_int
                return set_, get
    return None


_found = None
_lock = threading.Lock()
_depth = 0  # builds running with the cap
_saved = None  # the thread count before the first of them


def _functions():
    global _found
    if _found is None:
        _found = _find() or ()
    return _found


def threads() -> int | None:
    """NumPy's BLAS thread count now (None: not an OpenBLAS we can ask)."""
    found = _functions()
    return found[1]() if found else None


@contextmanager
def capped(workers: int):
    """While the block runs, NumPy's BLAS uses at most the cores ``workers`` busy processes
    leave (at least one thread); the count before the first cap comes back when the last of
    the overlapping blocks ends."""
    global _depth, _saved
    found = _functions()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    limit = max(1, (cores or 1) - workers)
    with _lock:
        if found and _depth == 0:
            _saved = found[1]()
            if _saved > limit:
                found[0](limit)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if found and _depth == 0 and _saved is not None:
                if found[1]() != _saved:
                    found[0](_saved)
                _saved = None


def _after_fork_in_child() -> None:
    """A forked child has none of the parent's builds: its BLAS gets its threads back."""
    global _depth, _saved, _lock
    _lock = threading.Lock()
    if _depth and _saved is not None and _found:
        _found[0](_saved)
    _depth, _saved = 0, None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
