"""Compatibility of ``numba-cuda`` with the installed NumPy; imported before ``numba.cuda``.

numba-cuda 0.30 registers an overload for ``np.row_stack`` when its first kernel is compiled.
NumPy 2.5 removed that name (a deprecated alias of ``np.vstack`` since NumPy 2.0), so on NumPy
2.5 every kernel compile failed with ``AttributeError: module 'numpy' has no attribute
'row_stack'`` (seen on an H200 machine with numpy 2.5.2 and numba-cuda 0.30.4). The alias is
given back, only where it is missing; nothing in tracejit reads it.
"""
import numpy as np

if "row_stack" not in dir(np):
    np.row_stack = np.vstack
