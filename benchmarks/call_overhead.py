"""Per-call overhead of tracejit.compile, and trace time.

    python benchmarks/call_overhead.py

What the compile machinery costs on a call whose work is negligible (`x + 1` on 4 elements):
the signature lookup and the call into compiled code, on the default backend (numba_cpu) and
on the interpreter, against NumPy in the same run; and how long a trace takes.
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
    numpy_us = median_time(lambda x: x + 1, x) * 1e6
    for backend in ("numba_cpu", "interpreter"):
        plus_one = tracejit.compile(lambda x: x + 1, backend=backend, tiered=False)
        plus_one(x)
        traced_us = median_time(plus_one, x) * 1e6
        print(f"x + 1 on 4 float32: NumPy {numpy_us:.2f} us, tracejit({backend}) "
              f"{traced_us:.2f} us -> ratio {traced_us / numpy_us:.1f}x")

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
