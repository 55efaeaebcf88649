"""What a new shape costs a function already compiled for the same ranks and dtypes.

    python benchmarks/new_shapes.py

In a fresh process with an empty cache folder, for `exp(x) * 2 + 1` and for the value and
gradient of a one-layer network's loss (tanh(x @ w + b), mean squared error): the first call
(a compile), then many new shapes one after another (sizes the process has not seen): the
median time of a new shape's first call, the most memory a new shape kept (resident set
growth per shape), and the steady-state time of a call to a signature seen before. JAX's
first call of a new shape is timed in the same run when JAX is installed (jax.jit compiles
every new shape).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap

CHILD = textwrap.dedent('''
    import json, os, statistics, sys, time
    import numpy as np
    import tracejit
    import tracejit.numpy as tnp

    def rss():
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def loss(w, b, x, y):
        return ((tnp.tanh(x @ w + b) - y) ** 2).mean()

    rng = np.random.default_rng(0)
    which, count = sys.argv[1], int(sys.argv[2])
    if which == "elementwise":
        fn = tracejit.compile(lambda x: tnp.exp(x) * 2 + 1)
        make = lambda n: (rng.normal(size=n),)
    else:
        fn = tracejit.compile(tracejit.value_and_grad(loss, argnums=(0, 1)))
        w, b = rng.normal(size=(64, 32)), np.zeros(32)
        make = lambda n: (w, b, rng.normal(size=(n, 64)), rng.normal(size=(n, 32)))
    args = make(100)
    t0 = time.perf_counter(); fn(*args); first = time.perf_counter() - t0
    fn.wait(*args)  # (tiered: the first call ran on the interpreter; new shapes reuse the code)
    times, start = [], rss()
    for n in range(101, 101 + count):
        args = make(n)
        t0 = time.perf_counter(); fn(*args); times.append(time.perf_counter() - t0)
    grown = (rss() - start) / count
    t0 = time.perf_counter()
    for _ in range(2000):
        fn(*args)
    per_call = (time.perf_counter() - t0) / 2000
    kinds = [k for s in fn.compile_stats()[1:] for k in ("numba", "load", "reuse") if k in s]
    jax_new_shape = None
    try:
        import jax, jax.numpy as jnp
        jax.config.update("jax_enable_x64", True)
        if which == "elementwise":
            jf = jax.jit(lambda x: jnp.exp(x) * 2 + 1)
        else:
            jl = lambda w, b, x, y: ((jnp.tanh(x @ w + b) - y) ** 2).mean()
            jf = jax.jit(jax.value_and_grad(jl, argnums=(0, 1)))
        jax.block_until_ready(jf(*make(100)))
        jt = []
        for n in range(101, 111):
            a = make(n)
            t0 = time.perf_counter()
            jax.block_until_ready(jf(*a))
            jt.append(time.perf_counter() - t0)
        jax_new_shape = statistics.median(jt)
    except ImportError:
        pass
    print(json.dumps({"first": first, "new_shape": statistics.median(times),
                      "worst_new_shape": max(times), "kib_per_shape": grown / 1024,
                      "per_call": per_call, "reused": kinds.count("reuse"), "shapes": count,
                      "jax_new_shape": jax_new_shape}))
''')


def main():
    print("| function | first call | new shape (median of N) | worst new shape | memory per "
          "new shape | call, seen shape | JAX new shape |")
    print("|---|---|---|---|---|---|---|")
    for which, name in (("elementwise", "exp(x) * 2 + 1"),
                        ("grad", "value_and_grad, one tanh layer 64-32")):
        with tempfile.TemporaryDirectory() as folder:
            env = dict(os.environ, TRACEJIT_CACHE_DIR=folder, TRACEJIT_RETRACE_WARNING="0")
            env.pop("NUMBA_OPT", None)
            done = subprocess.run([sys.executable, "-c", CHILD, which, "120"], env=env,
                                  capture_output=True, text=True, check=True)
        r = json.loads(done.stdout.strip().splitlines()[-1])
        jax = f"{r['jax_new_shape'] * 1e3:.0f} ms" if r["jax_new_shape"] else "(not installed)"
        print(f"| {name} | {r['first']:.2f} s | {r['new_shape'] * 1e3:.2f} ms (N={r['shapes']},"
              f" {r['reused']} reused) | {r['worst_new_shape'] * 1e3:.1f} ms | "
              f"{r['kib_per_shape']:.1f} KiB | {r['per_call'] * 1e6:.1f} us | {jax} |")


if __name__ == "__main__":
    main()
