"""Per-call overhead and trace time of tracejit.compile on the reference interpreter.

    python benchmarks/call_overhead.py

The interpreter runs each primitive with NumPy, so it is not meant to be fast; this measures what
the compile machinery itself costs (signature key, cache lookup, pytree flattening) and how long a
trace takes, as ratios to NumPy in the same run. The Numba backend (fusion issue) has its own
benchmarks against hand-written Numba kernels.
"""
import statistics
import time

import numpy as np

import tracejit


def median_time(fn, *args, repeat=2000):
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn(*args)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main():
    x = np.ones(4, np.float32)
    plus_one = tracejit.compile(lambda x: x + 1)
    plus_one(x)
    numpy_us = median_time(lambda x: x + 1, x) * 1e6
    traced_us = median_time(plus_one, x) * 1e6
    print(f"x + 1 on 4 float32: NumPy {numpy_us:.2f} us, tracejit(interpreter) {traced_us:.2f} us"
          f" -> ratio {traced_us / numpy_us:.1f}x")

    def mlp(w1, w2, x):
        return np.tanh(np.tanh(x @ w1) @ w2).mean()

    args = (np.ones((8, 16)), np.ones((16, 4)), np.ones((2, 8)))
    start = time.perf_counter()
    for _ in range(20):
        tracejit.make_ir(mlp)(*args)
    trace_ms = (time.perf_counter() - start) / 20 * 1e3
    print(f"tracing a 2-layer MLP loss: {trace_ms:.2f} ms per trace")


if __name__ == "__main__":
    main()
