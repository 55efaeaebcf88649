"""A guard against speed regressions: every fused workload against its hand-written Numba
kernel (``benchmarks/fused_workloads.py``), in one fresh process.

    python benchmarks/guard.py           # prints the ratios; exit status 1 when one exceeds 2.0
    python benchmarks/guard.py --limit 1.5

The process starts with a clean environment for tracejit and Numba: default optimisation
(no ``NUMBA_OPT``, which the test suite sets to 0), an empty compile cache in a temporary
folder, one thread for every library (the ratio then measures the code generated for one core,
and does not depend on what else the machine runs on its other cores). Sizes are large enough
to be memory-bound (32 MiB an operand); each workload runs alternately on tracejit and on its
hand-written kernel, and the best time of each is kept, so a burst of noise hits both or
neither. The whole run takes about ten seconds, mostly compiling.

The limit is wide on purpose: ratios are around 1 (see docs/benchmarks.md), noise on a shared
machine moves them by tens of percent, and the regressions worth failing a build over are
several-fold (a loop that stops vectorising: 6-10x).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

LIMIT = 2.0
HERE = os.path.dirname(os.path.abspath(__file__))


def fresh_environment(cache_dir: str) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TRACEJIT_") and k != "NUMBA_OPT"}
    env.update(TRACEJIT_CACHE_DIR=cache_dir, NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1", TRACEJIT_PARALLEL_THRESHOLD="0",
               TRACEJIT_BLAS_PARALLEL_THRESHOLD="0")
    return env


def best_times(first, second, repeat=5, budget=0.3) -> tuple[float, float]:
    """Best time of one call of each, called alternately (at least ``repeat`` times each,
    more while under ``budget`` seconds)."""
    first(), second()  # warm up (and compile)
    best = [float("inf"), float("inf")]
    started, runs = time.perf_counter(), 0
    while runs < repeat or (time.perf_counter() - started < budget and runs < 50):
        for k, fn in enumerate((first, second)):
            t = time.perf_counter()
            fn()
            best[k] = min(best[k], time.perf_counter() - t)
        runs += 1
    return best[0], best[1]


def measure(limit: float) -> int:
    """In the fresh process: time every workload, print the ratios; 1 when one is over."""
    sys.path.insert(0, HERE)
    import numpy as np

    import fused_workloads as fw
    import tracejit

    rng = np.random.default_rng(0)
    normal = lambda *shape: rng.standard_normal(shape, dtype=np.float32)  # noqa: E731
    n, rows, cols = 1 << 23, 2048, 4096  # 32 MiB an operand: beyond the caches
    x, a, b, c = normal(n), normal(rows, cols), normal(rows, 1), normal(cols)
    ln = normal(n // 1024, 1024)
    cases = [("GELU (tanh form)", fw.gelu, fw.gelu_numba_vectorised, (x,)),
             ("(a*b + c) / (1 + exp(-a))", fw.bias_sigmoid, fw.bias_sigmoid_numba, (a, b, c)),
             ("row softmax", fw.softmax, fw.softmax_numba, (a,)),
             ("layernorm", fw.layernorm, fw.layernorm_numba, (ln,)),
             ("sum of squares", fw.sum_of_squares, fw.sum_of_squares_numba, (x,))]
    results = []
    for name, fn, handwritten, inputs in cases:
        compiled = tracejit.compile(fn, tiered=False)
        np.testing.assert_allclose(compiled(*inputs), handwritten(*inputs), rtol=2e-3,
                                   atol=1e-3)
        results.append((name, *best_times(lambda: compiled(*inputs),
                                          lambda: handwritten(*inputs))))

    # Adam: tracejit with the state donated (updated in place), as the hand-written loop is.
    p, g, m, v = (normal(n) for _ in range(4))
    v = np.abs(v)
    donated = tracejit.compile(fw.adam, donate_argnums=(0, 2, 3), tiered=False)
    pd, md, vd, pc, mc, vc = p.copy(), m.copy(), v.copy(), p.copy(), m.copy(), v.copy()
    results.append(("Adam update (donated)",
                    *best_times(lambda: donated(pd, g, md, vd, 1e-3, 3.0),
                                lambda: fw.adam_numba(pc, g, mc, vc, 1e-3, 3.0))))

    print(f"{'workload':28} {'tracejit':>10} {'Numba':>10} {'ratio':>7}   (limit {limit})")
    failed = []
    for name, t_jit, t_nb in results:
        ratio = t_jit / t_nb
        flag = "  TOO SLOW" if ratio > limit else ""
        print(f"{name:28} {t_jit * 1e3:8.2f}ms {t_nb * 1e3:8.2f}ms {ratio:7.2f}{flag}")
        if ratio > limit:
            failed.append(name)
    if failed:
        print(f"guard: tracejit is more than {limit}x slower than the hand-written kernel on: "
              f"{', '.join(failed)}")
        return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=float, default=LIMIT,
                        help="largest ratio tracejit / hand-written allowed")
    parser.add_argument("--in-fresh-process", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.in_fresh_process:
        return measure(args.limit)
    cache_dir = tempfile.mkdtemp(prefix="tracejit-guard-")
    try:
        command = [sys.executable, os.path.abspath(__file__), "--in-fresh-process",
                   "--limit", str(args.limit)]
        return subprocess.run(command, env=fresh_environment(cache_dir)).returncode
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
