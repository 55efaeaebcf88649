"""The CUDA backend: the fused graph's kernels as ``numba.cuda`` kernels (the ``numba-cuda``
package), launched by a Python driver that keeps every value on the device.

The graph is the one the CPU backend runs (same passes, same fusion); only the drivers differ
(``cuda_codegen.py``): grid-stride elementwise kernels, one block per row for reductions and
row kernels (softmax, layernorm), a two-pass many-block reduction for full reductions, and a
tiled shared-memory matmul that runs the elementwise kernel consuming its product as its
epilogue (``x @ w + b`` then an activation: one launch, the product never stored). Movement
(transpose, slice, rev, broadcast, pad, concatenate) is one strided-copy kernel
(``cuda_runtime.py``); control flow runs its sub-graphs' kernels from Python loops, reading a
loop condition or branch predicate back from the device once per iteration.

Inputs may be NumPy arrays (copied to the device), ``numba.cuda`` device arrays, or anything
with ``__cuda_array_interface__`` (CuPy, PyTorch), taken without a copy. Outputs come back as
NumPy arrays, or as device arrays with ``compile(..., return_device_arrays=True)``.

On a machine without a GPU, ``NUMBA_ENABLE_CUDASIM=1`` (set before Numba is imported) runs the
same kernels on Numba's CUDA simulator, with small launch geometry (``geometry()``).
"""
from __future__ import annotations

import functools
import hashlib
import sys
import threading
import time
import types

import numpy as np

from ..errors import CompileError, DeviceError
from ..ir import Graph
# (cuda_compat before anything compiles with numba.cuda)
from . import cuda_compat, interpreter, is_device_array  # noqa: F401
from .cuda_codegen import Geometry
from . import cuda_program  # noqa: E402  (it reads this module's plumbing at run time)

NEEDS_FUSION = True

# Launch geometry on a real GPU (the simulator runs every thread as a Python thread: small).
THREADS_PER_BLOCK = 256  # elementwise kernels (8 warps)
REDUCE_THREADS_PER_BLOCK = 256  # reduce/row kernels: one block per row, a power of two
MATMUL_TILE = 16  # 16 x 16 threads per matmul block, two 16 x 16 tiles in shared memory
BLOCKS_PER_SM = 32  # grid-stride kernels: at most this many blocks per multiprocessor
PARTIAL_BLOCKS_PER_SM = 4  # blocks of a full reduction's first pass, per multiprocessor
SIMULATOR_GEOMETRY = Geometry(threads=32, reduce_threads=16, tile=4, max_blocks=4,
                              partial_blocks=3)

_modules: dict[str, types.ModuleType] = {}
_lock = threading.RLock()


def simulator() -> bool:
    """Whether ``numba.cuda`` is Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``)."""
    from numba.core import config
    return bool(config.ENABLE_CUDASIM)


def cuda_module():
    """``numba.cuda``, after checking a GPU (or the simulator) is there to run on."""
    try:
        from numba import cuda
    except ImportError as e:  # pragma: no cover - numba-cuda is in the test extras
        raise DeviceError("tracejit: device='cuda' needs the numba-cuda package: "
                          "pip install 'tracejit[cuda]'") from e
    if not simulator() and not cuda.is_available():
        raise DeviceError(
            "tracejit: device='cuda' but no CUDA GPU is available here (no driver or no "
            "device). To run the CUDA backend on the CPU, on Numba's CUDA simulator (slow; for "
            "tests), set the environment variable NUMBA_ENABLE_CUDASIM=1 before Numba is first "
            "imported, e.g. `NUMBA_ENABLE_CUDASIM=1 python script.py`.")
    return cuda


@functools.lru_cache(maxsize=None)
def geometry() -> Geometry:
    """Launch geometry from the device's properties (its multiprocessor count)."""
    cuda = cuda_module()
    if simulator():
        return SIMULATOR_GEOMETRY
    return _real_geometry(cuda.get_current_device().MULTIPROCESSOR_COUNT)


def _real_geometry(sms: int) -> Geometry:
    return Geometry(THREADS_PER_BLOCK, REDUCE_THREADS_PER_BLOCK, MATMUL_TILE,
                    sms * BLOCKS_PER_SM, sms * PARTIAL_BLOCKS_PER_SM)


def device_put(x):
    """``x`` as a ``numba.cuda`` device array: copied over from the host, or (a device array
    already) taken as it is, without a copy."""
    return _on_device(cuda_module(), x)


def _on_device(cuda, x):
    if is_device_array(x):
        return x if hasattr(x, "copy_to_host") else cuda.as_cuda_array(x)
    x = np.asarray(x, order="C")
    if x.size and x.strides != _c_strides(x.shape, x.itemsize):
        # C-contiguous by NumPy's flags, but a size-1 dimension has another stride (0, in a
        # broadcast view): numba-cuda's copies between device arrays compare strides.
        x = np.array(x, order="C")
    return cuda.to_device(x)


def _c_strides(shape, itemsize) -> tuple[int, ...]:
    strides, step = [], itemsize
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


def _runtime(name: str):
    """A fixed kernel of ``cuda_runtime.py`` (imported on first use: it imports numba.cuda)."""
    from . import cuda_runtime
    return cuda_runtime.kernel(name)


def _module(text: str) -> types.ModuleType:
    """The module defined by a kernel's source, once per distinct text in the process."""
    name = "tracejit_cuda_" + hashlib.sha256(text.encode()).hexdigest()[:20]
    with _lock:
        module = _modules.get(name)
        if module is None:
            module = types.ModuleType(name)
            module.__file__ = f"<tracejit cuda {name}>"
            sys.modules[name] = module  # Numba resolves the kernel's globals through it
            exec(compile(text, module.__file__, "exec"), module.__dict__)
            if simulator():
                module.math = _SimulatorMath
            _modules[name] = module
        return module


class _SimulatorMath:
    """``math`` as CUDA's math library behaves, for kernels run by the simulator: out of the
    domain gives NaN or inf (Python's ``math`` would raise ValueError)."""
    inf = np.inf

    @staticmethod
    def _wrap(fn):
        def call(*args):
            with np.errstate(all="ignore"):
                return fn(*args)
        return staticmethod(call)


for _name, _fn in {"exp": np.exp, "log": np.log, "log1p": np.log1p, "expm1": np.expm1,
                   "sqrt": np.sqrt, "sin": np.sin, "cos": np.cos, "tan": np.tan,
                   "tanh": np.tanh, "atan": np.arctan, "atan2": np.arctan2, "floor": np.floor,
                   "ceil": np.ceil}.items():
    setattr(_SimulatorMath, _name, _SimulatorMath._wrap(_fn))


def _uses_float16(graph: Graph) -> bool:
    from .numba_cpu import _uses_float16 as uses
    return uses(graph)


class CompiledGraph:
    """``run(list of arrays) -> list of arrays`` on the GPU (see the module docstring)."""

    def __init__(self, graph: Graph, donate=frozenset(), return_device_arrays=False,
                 codegen_only=False):
        """``codegen_only``: generate the kernels' source (for ``compile_ptx``) without a
        device: such an object cannot run."""
        started = time.perf_counter()
        self.fused = graph
        self.note = None
        self.return_device_arrays = return_device_arrays
        self.timings: dict[str, float] = {}
        self.kernel_sources: list[str] = []
        self.kernel_signatures: list[dict] = []
        self.other_kernels: list[tuple[str, dict]] = []  # plain matmuls: (source, signatures)
        self.listing: list[str] = []
        self._kernel_index: dict[int, int] = {}
        self._programs: dict[int, cuda_program.Program] = {}
        self.cuda = None if codegen_only else cuda_module()
        if _uses_float16(graph):
            self.note = ("float16 is not supported by this backend yet: this graph runs on "
                         "the interpreter, on the host")
            self._host = interpreter.compile_graph(graph)
            self.entry_source = ""
            return
        self._host = None
        self.launches = cuda_program.Launches(self.cuda, _real_geometry(132) if codegen_only
                                  else geometry())
        self.top = self.program(graph)
        self.entry_source = "def entry(...):  # the launches, in order (Python driver)\n" + \
            "".join(f"    {line}\n" for line in self.listing)
        self.timings["codegen"] = time.perf_counter() - started
        self._first = True

    def program(self, graph: Graph) -> cuda_program.Program:
        p = self._programs.get(id(graph))
        if p is None:
            p = self._programs[id(graph)] = cuda_program.Program(graph, self.launches, self)
        return p

    def add_kernel(self, eqn, text: str, signatures: dict) -> int | None:
        """Register a generated kernel; ``signatures``: function name -> its argument types
        (``("array", dtype, ndim)`` or ``("scalar", dtype)``), for ``compile_ptx``. Fused
        kernels (``eqn``: the graph's kernel equation) are numbered ``_k0, _k1, ...`` as
        ``Lowered.kernels()`` numbers them; a plain matmul (``eqn`` None) is not one."""
        if eqn is None:
            self.other_kernels.append((text, signatures))
            return None
        if id(eqn) not in self._kernel_index:
            self._kernel_index[id(eqn)] = len(self.kernel_sources)
            self.kernel_sources.append(text)
            self.kernel_signatures.append(signatures)
        return self._kernel_index[id(eqn)]

    def _inputs(self, args):
        ins = []
        for a in args:  # (NumPy arrays of the signature's dtypes, or device arrays)
            x = _on_device(self.cuda, a)
            if not x.is_c_contiguous():  # kernels index C-contiguous arrays
                x = self.cuda.to_device(np.ascontiguousarray(x.copy_to_host()))
            ins.append(x.reshape(1) if x.shape == () else x)
        return ins

    def __call__(self, args):
        if self._host is not None:
            host = [a.copy_to_host() if is_device_array(a) else a for a in args]
            outs = self._host(host)
            return [self.cuda.to_device(o) for o in outs] if self.return_device_arrays else outs
        started = time.perf_counter()
        try:
            outs = self.top.run(self._inputs(args))
        except Exception as e:
            if self._first and "numba" in type(e).__module__:
                raise CompileError(f"tracejit: numba-cuda could not compile a kernel of "
                                   f"`{self.fused.name}`; Numba said:\n\n{e}") from e
            raise
        results = []
        for value, var in zip(outs, self.fused.outputs):
            shape = var.ttype.shape
            if self.return_device_arrays:
                results.append(value.reshape(shape) if value.shape != shape else value)
            else:
                results.append(value.copy_to_host().reshape(shape))
        if self._first:
            self._first = False
            self.timings["numba"] = time.perf_counter() - started
        return results


def compile_graph(graph: Graph, donate=frozenset(), return_device_arrays=False) -> CompiledGraph:
    """Donation is a permission: this backend allocates every result (buffer reuse is open
    work)."""
    return CompiledGraph(graph, donate, return_device_arrays)


def _numba_type(spec):
    from numba.core import types as nt
    from numba.np.numpy_support import from_dtype
    if spec[0] == "scalar":
        return from_dtype(np.dtype(spec[1]))
    return nt.Array(from_dtype(np.dtype(spec[1])), spec[2], "C")


def runtime_signatures() -> list[tuple[str, list]]:
    """Representative argument types of every fixed kernel (``cuda_runtime.py``)."""
    from numba.core import types as nt
    f32, i64 = ("array", np.float32, 1), ("array", np.int64, 1)
    tup = nt.UniTuple(nt.int64, 2)
    m32, m64 = ("array", np.float32, 2), ("array", np.int64, 2)
    return [("gather_strided", [f32, f32, ("scalar", np.int64), tup, tup]),
            ("place_strided", [f32, f32, ("scalar", np.int64), tup, tup]),
            ("fill", [f32, f32]), ("iota", [f32, ("scalar", np.int64), ("scalar", np.int64)]),
            ("cumsum_rows", [m32, m32]), ("cumprod_rows", [m32, m32]),
            ("arg_extremum_rows", [m32, i64, ("scalar", np.bool_)]),
            ("linear_index", [m64, nt.UniTuple(nt.int64, 1), i64, ("array", np.int32, 1)]),
            ("gather_rows", [m32, i64, m32]), ("scatter_add_rows", [m32, i64, m32]),
            ("argsort_rows", [m32, m64, m64])]


def compile_ptx(graph: Graph, cc=(9, 0)) -> list[str]:
    """PTX for every kernel generated for ``graph`` (a fused graph), compiled for compute
    capability ``cc``. Needs NVVM (``nvidia-cuda-nvcc``), not a GPU, and not the simulator:
    it checks that the generated code is valid CUDA Python that Numba can type and lower."""
    from numba import cuda
    compiled = CompiledGraph(graph, codegen_only=True)
    ptx = []
    for text, signatures in [*zip(compiled.kernel_sources, compiled.kernel_signatures),
                             *compiled.other_kernels]:
        module = _module(text)
        for name, specs in signatures.items():
            args = tuple(s if not isinstance(s, tuple) else _numba_type(s) for s in specs)
            ptx.append(cuda.compile_ptx(getattr(module, name).py_func, args, cc=cc)[0])
    return ptx
