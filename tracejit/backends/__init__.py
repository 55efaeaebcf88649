"""Backends turn a Graph into a callable ``run(list of arrays) -> list of arrays``."""
from __future__ import annotations

import importlib

BACKENDS = {"interpreter": "tracejit.backends.interpreter",
            "numba_cpu": "tracejit.backends.numba_cpu",
            "numba_cuda": "tracejit.backends.numba_cuda"}
DEVICES = {"cpu": "numba_cpu", "cuda": "numba_cuda"}  # compile(f, device=...) -> backend


def get_backend(name: str):
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; available: {', '.join(sorted(BACKENDS))}")
    return importlib.import_module(BACKENDS[name])
