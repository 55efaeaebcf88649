"""Per-call arrays and glibc's malloc: keeping freed blocks in the process.

A compiled call allocates arrays every time: its outputs, and the copies and temporaries its
entry makes (a transposed operand made contiguous for BLAS, a broadcast materialised). glibc
serves a block larger than its *mmap threshold* from fresh pages of the operating system and
returns them when it is freed, and trims free memory at the top of its heap beyond its *trim
threshold*; both thresholds start at 128 KiB and grow only as the process happens to free
large blocks. Until they have grown, every call of a transformer block's gradient faulted in
and zeroed its megabytes of temporaries again: measured, 7.2-7.5 ms per call where the same
code ran 3.6-3.8 ms once the thresholds were up, or with them set at start (which one a
process got depended on what it had freed before: the tiered switch, a benchmark run).

So before its first compiled call, ``numba_cpu`` sets both (``mallopt``): blocks of up to
32 MiB (glibc's largest mmap threshold on 64-bit) come from the heap and are reused, and up
to 64 MiB of free heap stays in the process. Larger arrays still get fresh pages (NumPy asks
for huge pages for those: ``buffers.py``). The cost: a process keeps up to 64 MiB it has
freed. Linux with glibc only; ``TRACEJIT_MALLOC_TUNING=0`` leaves malloc as it is.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading

from .. import config

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 64 << 20

_lock = threading.Lock()
_done = False


def tune() -> bool:
    """Set glibc's thresholds once per process (True where they are set, now or before)."""
    global _done
    if _done:
        return True
    with _lock:
        if _done or not sys.platform.startswith("linux") or not config.get("malloc_tuning"):
            return _done
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt
        except (OSError, AttributeError):  # (musl and other libcs: nothing to set)
            return False
        mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        _done = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and \
            bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
        return _done
