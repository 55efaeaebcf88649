"""Backends turn a Graph into a callable ``run(list of arrays) -> list of arrays``."""
from __future__ import annotations

import importlib

BACKENDS = {"interpreter": "tracejit.backends.interpreter",
            "numba_cpu": "tracejit.backends.numba_cpu",
            "numba_cuda": "tracejit.backends.numba_cuda"}
DEVICES = {"cpu": "numba_cpu", "cuda": "numba_cuda"}  # compile(f, device=...) -> backend


def is_device_array(x) -> bool:
    """A CUDA device array: a ``numba.cuda`` array, anything exposing
    ``__cuda_array_interface__`` (CuPy, PyTorch CUDA tensors), or the CUDA simulator's arrays.
    (Checked without importing Numba.)"""
    t = type(x)
    return hasattr(t, "__cuda_array_interface__") or t.__name__ == "FakeCUDAArray"


def get_backend(name: str):
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; available: {', '.join(sorted(BACKENDS))}")
    return importlib.import_module(BACKENDS[name])
