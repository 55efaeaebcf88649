"""GPU benchmarks of the CUDA backend: fused GELU, row softmax, layernorm and an MLP step.

    python benchmarks/gpu.py            # on a machine with a CUDA GPU
    python benchmarks/gpu.py --quick    # tiny sizes (also runs on the simulator:
                                        #   NUMBA_ENABLE_CUDASIM=1, numbers meaningless)

For each workload: tracejit's median time (inputs and outputs stay on the device), the memory
bandwidth it achieved (bytes that must be read and written once, over the time) as a share of
the device's peak (from its memory clock and bus width), a hand-written numba-cuda kernel
measured in the same run, and CuPy / PyTorch where they are installed. Ratios are tracejit's
time over the other's: below 1 means tracejit is faster.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import statistics
import time

import numpy as np

import tracejit
import tracejit.numpy as tnp
from numba import cuda


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import workloads  # noqa: E402  the workloads of every benchmark (benchmarks/workloads.py)

W = workloads.make(tnp, tracejit.grad)


# --- hand-written numba-cuda kernels: the baseline --------------------------------------------
@cuda.jit
def gelu_kernel(x, out):
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        v = x[i]
        out[i] = np.float32(0.5) * v * (np.float32(1.0) + math.tanh(
            np.float32(0.7978845608) * (v + np.float32(0.044715) * v * v * v)))


ROW_THREADS = 256


@cuda.jit
def softmax_kernel(x, out):
    shared = cuda.shared.array(ROW_THREADS, np.float32)
    tid = cuda.threadIdx.x
    for row in range(cuda.blockIdx.x, x.shape[0], cuda.gridDim.x):
        m = -np.inf
        for j in range(tid, x.shape[1], ROW_THREADS):
            m = max(m, x[row, j])
        shared[tid] = m
        cuda.syncthreads()
        s = ROW_THREADS // 2
        while s > 0:
            if tid < s:
                shared[tid] = max(shared[tid], shared[tid + s])
            cuda.syncthreads()
            s //= 2
        m = shared[0]
        cuda.syncthreads()
        total = np.float32(0)
        for j in range(tid, x.shape[1], ROW_THREADS):
            total += math.exp(x[row, j] - m)
        shared[tid] = total
        cuda.syncthreads()
        s = ROW_THREADS // 2
        while s > 0:
            if tid < s:
                shared[tid] += shared[tid + s]
            cuda.syncthreads()
            s //= 2
        total = shared[0]
        cuda.syncthreads()
        for j in range(tid, x.shape[1], ROW_THREADS):
            out[row, j] = math.exp(x[row, j] - m) / total


def peak_bandwidth() -> float:
    """Bytes per second: memory clock (kHz) x 2 (double data rate) x bus width (bytes)."""
    dev = cuda.get_current_device()
    try:
        return dev.MEMORY_CLOCK_RATE * 1e3 * 2 * dev.GLOBAL_MEMORY_BUS_WIDTH / 8
    except AttributeError:  # the simulator's device
        return float("nan")


def timed(fn, repeats: int) -> float:
    fn()
    cuda.synchronize()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        cuda.synchronize()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def peers():
    found = {}
    try:
        import cupy
        found["CuPy"] = cupy
    except ImportError:
        pass
    try:
        import torch
        if torch.cuda.is_available():
            found["PyTorch"] = torch
    except ImportError:
        pass
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, few repeats")
    quick = parser.parse_args().quick
    n = 1 << 10 if quick else 1 << 26
    rows, cols = (8, 64) if quick else (16384, 4096)
    batch, hidden, features = (8, 16, 12) if quick else (4096, 1024, 784)
    repeats = 2 if quick else 20
    rng = np.random.default_rng(0)
    peak = peak_bandwidth()
    libs = peers()
    dev = lambda a: tracejit.device_put(np.asarray(a, np.float32))  # noqa: E731
    x1 = dev(rng.standard_normal(n))
    x2 = dev(rng.standard_normal((rows, cols)))
    params = {"w1": dev(rng.standard_normal((features, hidden)) * 0.03),
              "b1": dev(np.zeros(hidden)),
              "w2": dev(rng.standard_normal((hidden, 10)) * 0.03), "b2": dev(np.zeros(10))}
    xb = dev(rng.standard_normal((batch, features)))
    yb = dev(np.eye(10)[rng.integers(0, 10, batch)])
    compiled = {name: tracejit.compile(fn, device="cuda", return_device_arrays=True)
                for name, fn in [("gelu", W.gelu), ("softmax", W.softmax),
                                 ("layernorm", W.layernorm), ("mlp", W.mlp_step)]}
    out1, out2 = cuda.device_array_like(x1), cuda.device_array_like(x2)
    blocks = 4 if quick else cuda.get_current_device().MULTIPROCESSOR_COUNT * 32
    row_blocks = min(rows, 65535)
    workloads = [
        ("GELU, %d elements" % n, lambda: compiled["gelu"](x1), 8 * n,
         lambda: gelu_kernel[blocks, 256](x1, out1),
         {"CuPy": lambda cp, a: 0.5 * a * (1.0 + cp.tanh(0.7978845608 * (a + 0.044715 * a ** 3))),
          "PyTorch": lambda torch, a: torch.nn.functional.gelu(a, approximate="tanh")}, [x1]),
        ("row softmax, %dx%d" % (rows, cols), lambda: compiled["softmax"](x2), 8 * rows * cols,
         lambda: softmax_kernel[row_blocks, ROW_THREADS](x2, out2),
         {"CuPy": lambda cp, a: (lambda e: e / e.sum(-1, keepdims=True))(
             cp.exp(a - a.max(-1, keepdims=True))),
          "PyTorch": lambda torch, a: torch.softmax(a, -1)}, [x2]),
        ("layernorm, %dx%d" % (rows, cols), lambda: compiled["layernorm"](x2),
         8 * rows * cols, None,
         {"PyTorch": lambda torch, a: torch.nn.functional.layer_norm(a, (a.shape[-1],),
                                                                     eps=1e-5)}, [x2]),
        ("MLP %d-%d-10 step, batch %d" % (features, hidden, batch),
         lambda: compiled["mlp"](params, xb, yb), None, None, None, []),
    ]
    print(f"device: {getattr(cuda.get_current_device(), 'name', 'simulator')!s}, peak memory bandwidth "
          f"{peak / 1e9:.0f} GB/s" + ("  (simulator: numbers meaningless)"
                                       if tracejit.backends.numba_cuda.simulator() else ""))
    header = "| workload (float32) | tracejit | share of peak bandwidth | numba-cuda by hand " + \
        "| / by hand |" + "".join(f" {k} | / {k} |" for k in libs)
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for name, fn, nbytes, hand, peer_fn, peer_args in workloads:
        t = timed(fn, repeats)
        share = f"{nbytes / t / peak:.0%}" if nbytes and peak == peak else ""
        cells = [f"{t * 1e3:.3f} ms", share]
        if hand is not None:
            th = timed(hand, repeats)
            cells += [f"{th * 1e3:.3f} ms", f"{t / th:.2f}"]
        else:
            cells += ["", ""]
        for lib_name, lib in libs.items():
            if peer_fn is None or lib_name not in peer_fn:
                cells += ["", ""]
                continue
            if lib_name == "CuPy":
                args = [lib.asarray(a) for a in peer_args]
            else:
                args = [lib.as_tensor(a, device="cuda") for a in peer_args]
            run = lambda: peer_fn[lib_name](lib, *args)  # noqa: E731
            tp = timed(run, repeats)
            cells += [f"{tp * 1e3:.3f} ms", f"{t / tp:.2f}"]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
