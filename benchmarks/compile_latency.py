"""Compile latency: first calls with a cold and a warm disk cache, each in a fresh process.

    python benchmarks/compile_latency.py

For each workload (GELU, a row softmax, the compiled gradient of the 784-512-10 MLP loss) a new
Python process imports tracejit and times the first call, twice: with an empty cache folder
(cold: tracing, passes, code generation, Numba's typing and LLVM) and again with the folder the
first process filled (warm: the machine code comes from disk). It also times `import tracejit`
and the steady-state per-call overhead. Each child prints its `compile_stats()`.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap

CHILD = textwrap.dedent('''
    import json, sys, time
    started = time.perf_counter()
    import numpy as np
    import tracejit
    import tracejit.numpy as tnp
    imported = time.perf_counter()

    sys.path.insert(0, sys.argv[2])
    import workloads  # the benchmark workloads; imports neither Numba nor JAX
    w = workloads.make(tnp, tracejit.grad)

    rng = np.random.default_rng(0)
    f32 = np.float32
    workload = sys.argv[1]
    if workload == "gelu":
        fn, args = w.gelu, (rng.normal(size=1 << 16).astype(f32),)
    elif workload == "softmax":
        fn, args = w.softmax, (rng.normal(size=(256, 512)).astype(f32),)
    else:
        params = {"w1": rng.normal(size=(784, 512)).astype(f32), "b1": np.zeros(512, f32),
                  "w2": rng.normal(size=(512, 10)).astype(f32), "b2": np.zeros(10, f32)}
        y = np.eye(10, dtype=f32)[rng.integers(0, 10, 256)]
        fn, args = tracejit.grad(w.mlp_loss), (params, rng.normal(size=(256, 784)).astype(f32), y)
    compiled = tracejit.compile(fn)
    t0 = time.perf_counter()
    compiled(*args)
    first = time.perf_counter() - t0
    tiny = np.ones(4, f32)
    plus = tracejit.compile(lambda x: x + 1)
    plus(tiny)
    t0 = time.perf_counter()
    for _ in range(20000):
        plus(tiny)
    per_call = (time.perf_counter() - t0) / 20000
    stats = {k: v for k, v in compiled.compile_stats()[0].items() if k != "signature"}
    print(json.dumps({"import": imported - started, "first_call": first, "per_call": per_call,
                      "stats": stats}))
''')


def run(workload: str, folder: str) -> dict:
    env = dict(os.environ, TRACEJIT_CACHE_DIR=folder)
    env.pop("NUMBA_OPT", None)
    here = os.path.dirname(os.path.abspath(__file__))
    done = subprocess.run([sys.executable, "-c", CHILD, workload, here], env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    print(f"{'workload':10} {'import':>8} {'cold first call':>16} {'warm first call':>16} "
          f"{'per call':>9}   cold breakdown / warm breakdown (ms)")
    for workload in ("gelu", "softmax", "mlp_grad"):
        with tempfile.TemporaryDirectory() as folder:
            cold = run(workload, folder)
            warm = run(workload, folder)
        brief = lambda s: ", ".join(f"{k} {v * 1e3:.0f}" for k, v in s.items()  # noqa: E731
                                    if k != "total")
        print(f"{workload:10} {cold['import']:7.2f}s {cold['first_call']:15.2f}s "
              f"{warm['first_call']:15.3f}s {warm['per_call'] * 1e6:7.2f}us   "
              f"{brief(cold['stats'])} / {brief(warm['stats'])}")


if __name__ == "__main__":
    main()
