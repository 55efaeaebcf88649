"""tracejit: trace NumPy-style functions into a typed IR, transform it, and run it.

    import tracejit
    import tracejit.numpy as tnp

    @tracejit.compile
    def f(x, w):
        return tnp.tanh(x @ w).sum()

    print(tracejit.make_ir(f)(x, w))   # the typed IR
"""
from . import config
from . import numpy  # noqa: F401  (attaches NumPy's operators and protocols to tracers)
from . import tree_util
from .api import Compiled, Lowered, compile, make_ir
from .cache import clear_cache
from .control_flow import cond, fori_loop, scan, while_loop
from .profiler import profile
from .errors import (CompileError, DeviceError, IRVerificationError, TracerConversionError,
                     ValueDependentShapeError)
from .ir import Graph, TensorType, verify
from .tracing import UnexpectedTracerError
from .transforms.autodiff import custom_vjp, grad, jvp, stop_gradient, value_and_grad, vjp
from .transforms.check import check_grads
from .transforms.jacobians import hessian, jacfwd, jacrev
from .transforms.vmap import vmap



def device_put(x):
    """``x`` on the CUDA device, as a ``numba.cuda`` device array (copied from the host; a
    device array is returned as it is). Needs ``tracejit[cuda]`` and a GPU or the simulator."""
    from .backends.numba_cuda import device_put as put
    return put(x)


__version__ = "0.1.0"

__all__ = ["CompileError", "Compiled", "DeviceError", "Graph", "IRVerificationError", "Lowered",
           "TensorType", "TracerConversionError", "UnexpectedTracerError",
           "ValueDependentShapeError", "check_grads", "clear_cache", "compile", "cond", "config", "custom_vjp", "device_put", "fori_loop", "grad", "hessian", "jacfwd",
           "jacrev", "jvp", "make_ir", "profile", "scan", "stop_gradient", "tree_util",
           "value_and_grad", "verify", "vjp", "vmap", "while_loop"]
