"""Fused workloads on tracejit against NumPy, hand-written Numba and JAX, in one process.

    python benchmarks/fused_workloads.py               # the sizes of the fusion issue
    python benchmarks/fused_workloads.py --one-thread  # every library on one core
    python benchmarks/fused_workloads.py --quick       # small sizes, a smoke run

Each row prints the median time of tracejit, NumPy, a hand-written Numba kernel (the best
loop a person would write: one pass, no temporaries, `fastmath=True`, `error_model='numpy'`,
outputs allocated by NumPy, the same vectorisable float32 exp/tanh tracejit generates, prange
over rows or elements when Numba has more than one thread; GELU is also shown with
`math.tanh`), and `jax.jit` when JAX is installed (inputs already on its device, timed to
`block_until_ready`), then the ratios tracejit/NumPy, tracejit/Numba and tracejit/JAX. Ratios
within one run are what to compare: the machine is noisy. `--one-thread` is the per-core
comparison. `benchmarks/guard.py` runs the same workloads as a check (in CI).
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time

if "--one-thread" in sys.argv:  # before NumPy, Numba and JAX start their thread pools
    os.environ.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1",
                      TRACEJIT_PARALLEL_THRESHOLD="0", TRACEJIT_BLAS_PARALLEL_THRESHOLD="0",
                      XLA_FLAGS="--xla_cpu_multi_thread_eigen=false "
                                "intra_op_parallelism_threads=1")

import numba
import numpy as np

import tracejit
import tracejit.numpy as tnp
import workloads
from tracejit.backends import vector_math


def interleaved_medians(*cases, repeat=7, min_time=0.2) -> list[float]:
    """``median_seconds`` of each ``(fn, args)`` case, timed in turns (one batch of calls of
    each case per round): the machine's drift (other load, the memory the kernel has ready for
    fresh outputs, which changes over seconds) then falls on every case alike, so their
    ratio holds where medians measured one after the other drifted apart (up to 1.8x)."""
    for fn, args in cases:
        fn(*args)  # warm up (and compile)
    times = [[] for _ in cases]
    for _ in range(repeat):
        for k, (fn, args) in enumerate(cases):
            loops, start = 0, time.perf_counter()
            while True:
                fn(*args)
                loops += 1
                elapsed = time.perf_counter() - start
                if elapsed >= min_time / repeat or loops >= 1000:
                    break
            times[k].append(elapsed / loops)
    return [statistics.median(t) for t in times]


def median_seconds(fn, *args, repeat=7, min_time=0.2):
    return interleaved_medians((fn, args), repeat=repeat, min_time=min_time)[0]


# --- the workloads (benchmarks/workloads.py), on tracejit and as plain NumPy -----------------

_W = workloads.make(tnp, tracejit.grad)
gelu, bias_sigmoid, softmax, layernorm = _W.gelu, _W.bias_sigmoid, _W.softmax, _W.layernorm
sum_of_squares, adam, mlp_loss, mlp_step = _W.sum_of_squares, _W.adam, _W.mlp_loss, _W.mlp_step


# --- hand-written Numba ----------------------------------------------------------------------
# The bar tracejit is held to: the fastest loop a person would write with Numba. Full fastmath
# (tracejit keeps NaN/inf semantics and so may use only reassociation and contraction),
# error_model='numpy', the same vectorisable float32 exp/tanh tracejit generates, loops indexed
# from 0 (Numba's wrap-around check on negative indices stops vectorisation otherwise),
# division by a per-row value as a multiplication by its inverse, outputs from np.empty. With
# more than one thread the outer loops are pranges, as tracejit's large kernels are.

_PARALLEL = numba.config.NUMBA_NUM_THREADS > 1
_FAST = {"error_model": "numpy", "fastmath": True}


def _handwritten(fn):
    return numba.njit(parallel=_PARALLEL, **_FAST)(fn)


def _allocating(kernel):
    """``kernel(*inputs, out)`` called with an output from NumPy's allocator (huge pages, as
    tracejit's large outputs get), shaped like the first input."""
    return lambda *inputs: kernel(*inputs, np.empty_like(inputs[0]))


def _gelu_loop(tanh):
    @_handwritten
    def gelu_loop(x, out):
        for i in numba.prange(x.size):
            v = x[i]
            out[i] = np.float32(0.5) * v * (np.float32(1.0) + tanh(
                np.float32(0.7978845608) * (v + np.float32(0.044715) * v * v * v)))
        return out
    return gelu_loop


gelu_numba = _allocating(_gelu_loop(math.tanh))
# The same loop with the vectorisable tanh tracejit generates (the best this loop gets).
gelu_numba_vectorised = _allocating(_gelu_loop(vector_math.tanh_f32))


@_handwritten
def _bias_sigmoid_numba(a, b, c, out):
    for i in numba.prange(a.shape[0]):
        bi = b[i, 0]
        for j in range(a.shape[1]):
            v = a[i, j]
            out[i, j] = (v * bi + c[j]) / (np.float32(1.0) + vector_math.exp_f32(-v))
    return out


bias_sigmoid_numba = _allocating(_bias_sigmoid_numba)


@_handwritten
def _softmax_numba(x, out):
    for i in numba.prange(x.shape[0]):
        m = np.float32(-np.inf)
        for j in range(x.shape[1]):
            m = max(m, x[i, j])
        s = np.float32(0.0)
        for j in range(x.shape[1]):
            e = vector_math.exp_f32(x[i, j] - m)
            out[i, j] = e
            s += e
        inv = np.float32(1.0) / s
        for j in range(x.shape[1]):
            out[i, j] *= inv
    return out


softmax_numba = _allocating(_softmax_numba)


@_handwritten
def _layernorm_numba(x, out):
    n = x.shape[1]
    for i in numba.prange(x.shape[0]):
        s = np.float32(0.0)
        for j in range(n):
            s += x[i, j]
        mu = s / np.float32(n)
        q = np.float32(0.0)
        for j in range(n):
            d = x[i, j] - mu
            q += d * d
        inv = np.float32(1.0) / np.sqrt(q / np.float32(n) + np.float32(1e-5))
        for j in range(n):
            out[i, j] = (x[i, j] - mu) * inv
    return out


layernorm_numba = _allocating(_layernorm_numba)


@_handwritten
def sum_of_squares_numba(x):
    s = np.float32(0.0)
    for i in numba.prange(x.size):
        s += x[i] * x[i]
    return s


@_handwritten
def adam_numba(p, g, m, v, lr, t):
    c1, c2 = np.float32(1 - 0.9 ** t), np.float32(1 - 0.999 ** t)  # float32 math throughout
    lr32 = np.float32(lr)
    for i in numba.prange(p.size):
        mi = np.float32(0.9) * m[i] + np.float32(0.1) * g[i]
        vi = np.float32(0.999) * v[i] + np.float32(0.001) * g[i] * g[i]
        m[i] = mi
        v[i] = vi
        p[i] -= lr32 * (mi / c1) / (np.sqrt(vi / c2) + np.float32(1e-8))


@_handwritten
def _adam_into(p, g, m, v, lr, t, p_out, m_out, v_out):
    # (A near-copy of adam_numba on purpose: adam_numba calling this with its own arrays as
    # the outputs ran 10x slower in the guard, aliased outputs defeating the parallel loop.)
    c1, c2 = np.float32(1 - 0.9 ** t), np.float32(1 - 0.999 ** t)
    lr32 = np.float32(lr)
    for i in numba.prange(p.size):
        mi = np.float32(0.9) * m[i] + np.float32(0.1) * g[i]
        vi = np.float32(0.999) * v[i] + np.float32(0.001) * g[i] * g[i]
        m_out[i] = mi
        v_out[i] = vi
        p_out[i] = p[i] - lr32 * (mi / c1) / (np.sqrt(vi / c2) + np.float32(1e-8))


def adam_numba_allocating(p, g, m, v, lr, t):
    """The Adam update into new arrays (from np.empty), as tracejit's allocating call does."""
    outs = (np.empty_like(p), np.empty_like(m), np.empty_like(v))
    _adam_into(p, g, m, v, lr, t, *outs)
    return outs


@numba.njit(**_FAST)
def mlp_step_numba(w1, b1, w2, b2, x, y, lr):
    """The MLP step by hand: np.dot for the products, one loop per elementwise stage."""
    n = x.shape[0]
    pre = np.dot(x, w1)
    h = np.empty_like(pre)
    for i in range(n):
        for j in range(pre.shape[1]):
            h[i, j] = vector_math.tanh_f32(pre[i, j] + b1[j])
    logits = np.dot(h, w2)
    d = np.empty_like(logits)
    for i in range(n):
        mx = -np.inf
        for j in range(logits.shape[1]):
            logits[i, j] += b2[j]
            mx = max(mx, logits[i, j])
        s = np.float32(0.0)
        for j in range(logits.shape[1]):
            e = vector_math.exp_f32(logits[i, j] - mx)
            d[i, j] = e
            s += e
        for j in range(logits.shape[1]):
            d[i, j] = (d[i, j] / s - y[i, j]) / n
    gw2 = np.dot(h.T, d)
    gb2 = d.sum(axis=0)
    dh = np.dot(d, w2.T)
    for i in range(n):
        for j in range(dh.shape[1]):
            dh[i, j] *= 1 - h[i, j] * h[i, j]
    gw1 = np.dot(x.T, dh)
    gb1 = dh.sum(axis=0)
    return w1 - lr * gw1, b1 - lr * gb1, w2 - lr * gw2, b2 - lr * gb2


# --- JAX, when installed -------------------------------------------------------------------------

def jax_workloads():
    """The same workloads in jax.numpy, jitted; None when JAX is not installed."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None

    j = workloads.make(jnp, jax.grad)

    def timed(fn, donate=()):
        jitted = jax.jit(fn, donate_argnums=donate)

        def run(*args):
            return jax.block_until_ready(jitted(*args))
        return run

    return {"GELU": timed(j.gelu), "bias_sigmoid": timed(j.bias_sigmoid),
            "softmax": timed(j.softmax), "layernorm": timed(j.layernorm),
            "sum_of_squares": timed(j.sum_of_squares),
            "adam": timed(j.adam, donate=(0, 2, 3)), "mlp": timed(j.mlp_step),
            "plus": timed(lambda x: x + 1),
            "put": jax.device_put}


ROWS = []  # every _row, for --markdown


def _row(name, t_jit, t_np, t_nb, t_jax, note=""):
    ROWS.append((name, t_jit, t_np, t_nb, t_jax, note))
    cell = lambda t: f"{t * 1e3:9.2f}ms" if t else f"{'-':>11}"  # noqa: E731
    ratio = lambda t: f"{t_jit / t:9.2f}" if t else f"{'-':>9}"  # noqa: E731
    print(f"{name:28} {cell(t_jit)} {cell(t_np)} {cell(t_nb)} {cell(t_jax)} "
          f"{ratio(t_np)} {ratio(t_nb)} {ratio(t_jax)}  {note}")


def _markdown(one_thread: bool) -> str:
    """The rows as the table docs/benchmarks.md holds, headed by the date, the commit and the
    threads (the tables there are written by this, never by hand)."""
    import datetime
    import subprocess
    here = os.path.dirname(os.path.abspath(__file__))
    commit = subprocess.run(["git", "-C", here, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip() or "unknown"
    dirty = subprocess.run(["git", "-C", here, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    lines = [f"`python benchmarks/fused_workloads.py{' --one-thread' if one_thread else ''}"
             f" --markdown`, {datetime.date.today()}, commit {commit}"
             f"{' (with uncommitted changes)' if dirty else ''}, "
             f"{'one thread' if one_thread else f'{os.cpu_count()} cores'}; medians:", "",
             "| workload | tracejit | NumPy | Numba (by hand) | JAX | / NumPy | / Numba | / JAX |"
             " note |", "|---|---|---|---|---|---|---|---|---|"]
    ms = lambda t: f"{t * 1e3:.2f} ms" if t else ""  # noqa: E731
    for name, t_jit, t_np, t_nb, t_jax, note in ROWS:
        ratio = lambda t: f"{t_jit / t:.2f}" if t else ""  # noqa: E731
        lines.append(f"| {name} | {ms(t_jit)} | {ms(t_np)} | {ms(t_nb)} | {ms(t_jax)} | "
                     f"{ratio(t_np)} | {ratio(t_nb)} | {ratio(t_jax)} | {note} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    parser.add_argument("--one-thread", action="store_true", help="every library on one core")
    parser.add_argument("--markdown", action="store_true",
                        help="also print the table for docs/benchmarks.md")
    args = parser.parse_args()
    n = 10_000 if args.quick else 10_000_000
    side = 64 if args.quick else 4096
    rng = np.random.default_rng(0)
    f32 = np.float32
    x = rng.normal(size=n).astype(f32)
    a = rng.normal(size=(side, side)).astype(f32)
    b = rng.normal(size=(side, 1)).astype(f32)
    c = rng.normal(size=side).astype(f32)
    ln = rng.normal(size=(128, 64) if args.quick else (8192, 1024)).astype(f32)
    jx = jax_workloads()
    put = (lambda *xs: tuple(jx["put"](v) for v in xs)) if jx else None

    rows = [
        ("GELU (tanh form)", "GELU", gelu, gelu_numba_vectorised, (x,)),
        ("GELU, Numba with math.tanh", None, gelu, gelu_numba, (x,)),
        ("(a*b + c) / (1 + exp(-a))", "bias_sigmoid", bias_sigmoid, bias_sigmoid_numba,
         (a, b, c)),
        ("row softmax", "softmax", softmax, softmax_numba, (a,)),
        ("layernorm", "layernorm", layernorm, layernorm_numba, (ln,)),
        ("sum of squares", "sum_of_squares", sum_of_squares, sum_of_squares_numba, (x,)),
    ]
    print(f"{'workload':28} {'tracejit':>11} {'NumPy':>11} {'Numba':>11} {'JAX':>11} "
          f"{'vs NumPy':>9} {'vs Numba':>9} {'vs JAX':>9}")
    for name, jax_name, fn, handwritten, inputs in rows:
        compiled = tracejit.compile(fn, tiered=False)
        np.testing.assert_allclose(compiled(*inputs), fn(*inputs), rtol=2e-3, atol=1e-3)
        t_jit, t_nb = interleaved_medians((compiled, inputs), (handwritten, inputs))
        t_np = median_seconds(fn, *inputs)
        t_jax = median_seconds(jx[jax_name], *put(*inputs)) if jx and jax_name else None
        _row(name, t_jit, t_np, t_nb, t_jax)

    p, g, m, v = (rng.normal(size=n).astype(f32) for _ in range(4))
    v = np.abs(v)
    t_np = median_seconds(adam, p, g, m, v, 1e-3, 3.0)
    donated = tracejit.compile(adam, donate_argnums=(0, 2, 3), tiered=False)
    pd, md, vd = p.copy(), m.copy(), v.copy()
    pc, mc, vc = p.copy(), m.copy(), v.copy()
    t_jit, t_nb = interleaved_medians(
        (lambda: donated(pd, g, md, vd, 1e-3, 3.0), ()),  # updates pd, md, vd
        (adam_numba, (pc, g, mc, vc, 1e-3, 3.0)))
    t_jax = None
    if jx:
        jargs = list(put(p, g, m, v))

        def jax_step():  # donated state goes back in as the next call's arguments
            jargs[0], jargs[2], jargs[3] = jx["adam"](*jargs, 1e-3, 3.0)
        t_jax = median_seconds(jax_step)
    _row("Adam update (donated)", t_jit, t_np, t_nb, t_jax, "(Numba: in place)")
    t_alloc, t_nb_alloc = interleaved_medians(
        (tracejit.compile(adam, tiered=False), (p, g, m, v, 1e-3, 3.0)),
        (adam_numba_allocating, (p, g, m, v, 1e-3, 3.0)))
    _row("Adam update (allocating)", t_alloc, t_np, t_nb_alloc, None, "(Numba: new arrays)")

    batch, d_in, d_h, d_out = (16, 32, 16, 4) if args.quick else (256, 784, 512, 10)
    params = {"w1": rng.normal(size=(d_in, d_h)).astype(f32) * 0.05,
              "b1": np.zeros(d_h, f32),
              "w2": rng.normal(size=(d_h, d_out)).astype(f32) * 0.05,
              "b2": np.zeros(d_out, f32)}
    xb = rng.normal(size=(batch, d_in)).astype(f32)
    yb = np.eye(d_out, dtype=f32)[rng.integers(0, d_out, batch)]
    step = tracejit.compile(mlp_step, tiered=False)
    nb_args = (params["w1"], params["b1"], params["w2"], params["b2"], xb, yb, f32(0.01))
    for got, want in zip(mlp_step_numba(*nb_args), (step(params, xb, yb)[k]
                                                      for k in ("w1", "b1", "w2", "b2"))):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    t_jit, t_nb = interleaved_medians((step, (params, xb, yb)), (mlp_step_numba, nb_args))
    t_interp = median_seconds(tracejit.compile(mlp_step, backend="interpreter"), params, xb, yb)
    t_jax = median_seconds(jx["mlp"], jx["put"](params), *put(xb, yb)) if jx else None
    _row("MLP step (fwd+bwd+SGD)", t_jit, t_interp, t_nb, t_jax,
         "(NumPy column: tracejit's interpreter)")

    tiny = np.ones(4, f32)
    plus = tracejit.compile(lambda x: x + 1, tiered=False)
    t_jit = median_seconds(plus, tiny, min_time=0.5)
    t_np = median_seconds(lambda x: x + 1, tiny, min_time=0.5)
    t_jax = median_seconds(jx["plus"], tiny, min_time=0.5) if jx else None
    print(f"{'per-call overhead (4 elems)':28} {t_jit * 1e6:9.2f}us {t_np * 1e6:9.2f}us "
          f"{'':>11} " + (f"{t_jax * 1e6:9.2f}us" if t_jax else ""))
    if args.markdown:
        print("\n" + _markdown(args.one_thread))


if __name__ == "__main__":
    main()
