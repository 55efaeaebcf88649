"""Every environment variable tracejit reads, typed, in one table (the README mirrors it).

Read a setting as ``config.get("backend")``; override it for a block with
``with tracejit.config.override(verify=True): ...``. ``get`` reads the environment each time;
per-call paths use ``hot`` instead, which reads it once (an environment variable changed while
the program runs is not seen there; ``override`` always is).
"""
from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected a boolean (1/0/true/false), got {text!r}")


@dataclass(frozen=True)
class Setting:
    name: str
    env: str
    parse: Callable[[str], Any]
    default: Any
    doc: str


SETTINGS = {s.name: s for s in (
    Setting("backend", "TRACEJIT_BACKEND", str, "numba_cpu",
            "backend used when compile() names neither a backend nor a device: numba_cpu (fused "
            "kernels compiled with Numba), interpreter (each primitive run by NumPy: no compile "
            "time) or numba_cuda (CUDA kernels through numba-cuda; docs/cuda.md)"),
    Setting("debug", "TRACEJIT_DEBUG", int, 0,
            "what compiles print (tracejit/debug.py): 1 traces and compiles with timings (and "
            "warnings about suspicious programs, e.g. a gradient that is zero because the "
            "output does not depend on the input), 2 kernels, 3 fusion decisions, 4 generated "
            "source, 5 the IR after every pass"),
    Setting("tiered", "TRACEJIT_TIERED", _bool, True,
            "numba_cpu: a new signature's first calls run on the interpreter while its compiled "
            "code is built in the background, then calls switch to it (tracejit/tiers.py); 0 "
            "compiles before the first call returns. compile(f, tiered=...) overrides it"),
    Setting("compile_workers", "TRACEJIT_COMPILE_WORKERS", int, -1,
            "processes that build compiled code in the background (tiered calls): -1 one fewer "
            "than the cores (1 to 4), 0 builds in a thread of the calling process instead"),
    Setting("malloc_tuning", "TRACEJIT_MALLOC_TUNING", _bool, True,
            "numba_cpu, Linux with glibc: keep freed memory of up to 32 MiB per block in the "
            "process (mallopt), so the arrays each call allocates do not fault in fresh pages "
            "every call (backends/allocator.py); 0 leaves malloc as it is"),
    Setting("dump_dir", "TRACEJIT_DUMP_DIR", str, "",
            "write, for every compiled signature, a folder with the IR after each pass, the "
            "generated source, the fusion decisions, a DOT picture and summary.json"),
    Setting("parallel_threshold", "TRACEJIT_PARALLEL_THRESHOLD", int, 1 << 18,
            "numba_cpu: kernels whose iteration space has at least this many elements run their "
            "outer loop with prange; 0 turns parallel loops off"),
    Setting("blas_parallel_threshold", "TRACEJIT_BLAS_PARALLEL_THRESHOLD", int, 1 << 22,
            "numba_cpu: the same threshold for graphs that call BLAS (matmul), whose own "
            "threads need the cores: a parallel kernel right after a threaded BLAS call fights "
            "its spinning threads; 0 turns parallel loops off in such graphs"),
    Setting("cache", "TRACEJIT_CACHE", _bool, True,
            "numba_cpu: keep compiled code on disk, so a new process loads it instead of "
            "compiling (see tracejit/cache.py); 0 turns it off"),
    Setting("cache_dir", "TRACEJIT_CACHE_DIR", str, "",
            "where the compile cache lives (empty: $XDG_CACHE_HOME/tracejit or "
            "~/.cache/tracejit)"),
    Setting("retrace_warning", "TRACEJIT_RETRACE_WARNING", int, 8,
            "warn when one compiled function has been traced this many times, naming the "
            "argument whose shape, dtype or static value keeps changing; 0 never warns"),
    Setting("max_signatures", "TRACEJIT_MAX_SIGNATURES", int, 256,
            "signatures one compiled function keeps in memory (least recently used dropped "
            "first): a process that meets thousands of shapes stays flat in memory; a dropped "
            "signature that comes back traces again (about a millisecond, no compile)"),
    Setting("explain_cache_misses", "TRACEJIT_EXPLAIN_CACHE_MISSES", _bool, False,
            "on every retrace, print what differs from the nearest signature seen before"),
    Setting("log_compiles", "TRACEJIT_LOG_COMPILES", _bool, False,
            "print one line per compile: the signature and the time in tracing, passes, code "
            "generation, Numba, and loading from the disk cache"),
    Setting("traceback_filtering", "TRACEJIT_TRACEBACK_FILTERING", _bool, True,
            "errors raised while tracing show the user's frames only (tracejit's own frames "
            "hidden); 0 shows every frame, for debugging tracejit itself"),
    Setting("verify", "TRACEJIT_VERIFY", _bool, False,
            "run the IR verifier on every traced graph (the test suite turns it on)"),
)}

_overrides: list[dict[str, Any]] = []


def _from_env(setting: Setting):
    raw = os.environ.get(setting.env)
    if raw is None:
        return setting.default
    try:
        return setting.parse(raw)
    except ValueError as e:
        warnings.warn(f"ignoring {setting.env}={raw!r}: {e}; using {setting.default!r}",
                      stacklevel=3)
        return setting.default


def get(name: str):
    for layer in reversed(_overrides):
        if name in layer:
            return layer[name]
    return _from_env(SETTINGS[name])


_hot: dict[str, Any] = {}


def hot(name: str):
    """``get(name)`` for per-call paths (about 50 ns instead of 1 µs): the environment is read
    once, and ``override`` blocks take effect (they clear this cache on entry and exit)."""
    try:
        return _hot[name]
    except KeyError:
        value = _hot[name] = get(name)
        return value


@contextmanager
def override(**values):
    unknown = sorted(set(values) - set(SETTINGS))
    if unknown:
        raise KeyError(f"unknown tracejit setting(s) {unknown}; known: {sorted(SETTINGS)}")
    _overrides.append(values)
    _hot.clear()
    try:
        yield
    finally:
        _overrides.remove(values)
        _hot.clear()
