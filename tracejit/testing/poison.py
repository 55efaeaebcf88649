"""Device memory that starts as garbage on Numba's CUDA simulator.

A real GPU hands out memory that earlier kernels wrote (NaN, anything), while the simulator's
fresh arrays happen to hold zeros: a kernel that reads an element it never wrote is right on the
simulator and wrong on the GPU (a scan started its accumulator from `out - out`, and every row
came out NaN on an H200 only). With ``poison()`` every new device array is filled with NaN
(floats), 77 (integers) or True (bools) first, so such a kernel fails on the simulator too. The
test suite poisons the simulator (``tests/conftest.py``); ``python -m tracejit.testing.fuzz
--poison`` does it for the fuzzer.
"""
from __future__ import annotations

import numpy as np

_FILL = {"f": np.nan, "i": 77, "u": 77, "b": True}


def poison() -> None:
    """Fill every array that ``numba.cuda.device_array`` makes from now on with garbage; only on
    the simulator (``NUMBA_ENABLE_CUDASIM=1``), where it costs nothing that matters."""
    from numba import cuda
    from numba.core import config
    if not config.ENABLE_CUDASIM or getattr(cuda.device_array, "poisoned", False):
        return
    fresh = cuda.device_array

    def device_array(shape, dtype=np.float64, *args, **kwargs):
        array = fresh(shape, dtype, *args, **kwargs)
        if array.size:
            array.copy_to_device(np.full(array.shape, _FILL[np.dtype(dtype).kind], dtype))
        return array

    device_array.poisoned = True
    cuda.device_array = device_array
