"""Fused workloads on tracejit (numba_cpu) against NumPy and hand-written Numba, in one process.

    python benchmarks/fused_workloads.py            # the sizes of the fusion issue
    python benchmarks/fused_workloads.py --quick    # small sizes, a smoke run

Each row prints the median time of tracejit, NumPy and a hand-written Numba kernel (the same
loop a person would write: one pass, no temporaries, `math` functions, fastmath off; for GELU
also the loop with tracejit's vectorisable tanh), and the ratios tracejit/NumPy and
tracejit/Numba. Ratios within one run are what to compare: the machine
is noisy. JAX's `jit` is timed too when it is installed.
"""
from __future__ import annotations

import argparse
import math
import statistics
import time

import numba
import numpy as np

import tracejit
import tracejit.numpy as tnp
from tracejit.backends import vector_math


def median_seconds(fn, *args, repeat=7, min_time=0.2):
    fn(*args)  # warm up (and compile)
    times = []
    for _ in range(repeat):
        loops, start = 0, time.perf_counter()
        while True:
            fn(*args)
            loops += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_time / repeat or loops >= 1000:
                break
        times.append(elapsed / loops)
    return statistics.median(times)


# --- the workloads, written once with tnp (NumPy when not traced) -----------------------------

def gelu(x):
    return 0.5 * x * (1.0 + tnp.tanh(0.7978845608 * (x + 0.044715 * x ** 3)))


def bias_sigmoid(a, b, c):
    return (a * b + c) / (1.0 + tnp.exp(-a))


def softmax(x):
    e = tnp.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def layernorm(x):
    mu = x.mean(axis=1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=1, keepdims=True)
    return (x - mu) / tnp.sqrt(var + 1e-5)


def sum_of_squares(x):
    return (x * x).sum()


def adam(p, g, m, v, lr, t):
    m = 0.9 * m + 0.1 * g
    v = 0.999 * v + 0.001 * g * g
    mhat = m / (1 - 0.9 ** t)
    vhat = v / (1 - 0.999 ** t)
    return p - lr * mhat / (tnp.sqrt(vhat) + 1e-8), m, v


def mlp_loss(params, x, y):
    h = tnp.tanh(x @ params["w1"] + params["b1"])
    logits = h @ params["w2"] + params["b2"]
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - tnp.log(tnp.exp(z).sum(axis=1, keepdims=True))
    return -(logp * y).sum() / x.shape[0]


def mlp_step(params, x, y):
    g = tracejit.grad(mlp_loss)(params, x, y)
    return {k: params[k] - 0.01 * g[k] for k in params}


# --- hand-written Numba ----------------------------------------------------------------------

@numba.njit(error_model="numpy")
def gelu_numba(x):
    out = np.empty_like(x)
    for i in range(x.size):
        v = x[i]
        out[i] = np.float32(0.5) * v * (np.float32(1.0) + math.tanh(
            np.float32(0.7978845608) * (v + np.float32(0.044715) * v * v * v)))
    return out


@numba.njit(error_model="numpy")
def gelu_numba_vectorised(x):
    """The same loop with the vectorisable tanh tracejit generates (the best this loop gets)."""
    out = np.empty_like(x)
    for i in range(x.size):
        v = x[i]
        out[i] = np.float32(0.5) * v * (np.float32(1.0) + vector_math.tanh_f32(
            np.float32(0.7978845608) * (v + np.float32(0.044715) * v * v * v)))
    return out


@numba.njit(error_model="numpy")
def bias_sigmoid_numba(a, b, c):
    out = np.empty_like(a)
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            v = a[i, j]
            out[i, j] = (v * b[i, 0] + c[j]) / (np.float32(1.0) + math.exp(-v))
    return out


@numba.njit(error_model="numpy")
def softmax_numba(x):
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        m = x[i, 0]
        for j in range(x.shape[1]):
            m = max(m, x[i, j])
        s = np.float32(0.0)
        for j in range(x.shape[1]):
            e = math.exp(x[i, j] - m)
            out[i, j] = e
            s += e
        for j in range(x.shape[1]):
            out[i, j] /= s
    return out


@numba.njit(error_model="numpy", fastmath={"reassoc", "contract"})
def layernorm_numba(x):
    out = np.empty_like(x)
    n = x.shape[1]
    for i in range(x.shape[0]):
        s = np.float32(0.0)
        for j in range(n):
            s += x[i, j]
        mu = s / n
        q = np.float32(0.0)
        for j in range(n):
            d = x[i, j] - mu
            q += d * d
        inv = np.float32(1.0) / math.sqrt(q / n + np.float32(1e-5))
        for j in range(n):
            out[i, j] = (x[i, j] - mu) * inv
    return out


@numba.njit(error_model="numpy", fastmath={"reassoc", "contract"})
def sum_of_squares_numba(x):
    s = np.float32(0.0)
    for i in range(x.size):
        s += x[i] * x[i]
    return s


@numba.njit(error_model="numpy")
def adam_numba(p, g, m, v, lr, t):
    c1, c2 = 1 - 0.9 ** t, 1 - 0.999 ** t
    for i in range(p.size):
        m[i] = np.float32(0.9) * m[i] + np.float32(0.1) * g[i]
        v[i] = np.float32(0.999) * v[i] + np.float32(0.001) * g[i] * g[i]
        p[i] -= np.float32(lr) * (m[i] / c1) / (math.sqrt(v[i] / c2) + np.float32(1e-8))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
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
    p, g, m, v = (rng.normal(size=n).astype(f32) for _ in range(4))
    v = np.abs(v)

    rows = [
        ("GELU (tanh form)", gelu, gelu_numba, (x,)),
        ("GELU, Numba with fast tanh", gelu, gelu_numba_vectorised, (x,)),
        ("(a*b + c) / (1 + exp(-a))", bias_sigmoid, bias_sigmoid_numba, (a, b, c)),
        ("row softmax", softmax, softmax_numba, (a,)),
        ("layernorm", layernorm, layernorm_numba, (ln,)),
        ("sum of squares", sum_of_squares, sum_of_squares_numba, (x,)),
    ]
    print(f"{'workload':28} {'tracejit':>10} {'NumPy':>10} {'Numba':>10} "
          f"{'vs NumPy':>9} {'vs Numba':>9}")
    for name, fn, handwritten, inputs in rows:
        compiled = tracejit.compile(fn, backend="numba_cpu")
        np.testing.assert_allclose(compiled(*inputs), fn(*inputs), rtol=2e-3, atol=1e-3)
        t_jit = median_seconds(compiled, *inputs)
        t_np = median_seconds(fn, *inputs)
        t_nb = median_seconds(handwritten, *inputs)
        print(f"{name:28} {t_jit * 1e3:9.2f}ms {t_np * 1e3:9.2f}ms {t_nb * 1e3:9.2f}ms "
              f"{t_jit / t_np:9.2f} {t_jit / t_nb:9.2f}")

    compiled_adam = tracejit.compile(adam, backend="numba_cpu")
    t_jit = median_seconds(compiled_adam, p, g, m, v, 1e-3, 3.0)
    t_np = median_seconds(adam, p, g, m, v, 1e-3, 3.0)
    pc, mc, vc = p.copy(), m.copy(), v.copy()
    t_nb = median_seconds(adam_numba, pc, g, mc, vc, 1e-3, 3.0)
    print(f"{'Adam update':28} {t_jit * 1e3:9.2f}ms {t_np * 1e3:9.2f}ms {t_nb * 1e3:9.2f}ms "
          f"{t_jit / t_np:9.2f} {t_jit / t_nb:9.2f}   (Numba in place; tracejit allocates)")

    batch, d_in, d_h, d_out = (16, 32, 16, 4) if args.quick else (256, 784, 512, 10)
    params = {"w1": rng.normal(size=(d_in, d_h)).astype(f32) * 0.05,
              "b1": np.zeros(d_h, f32),
              "w2": rng.normal(size=(d_h, d_out)).astype(f32) * 0.05,
              "b2": np.zeros(d_out, f32)}
    xb = rng.normal(size=(batch, d_in)).astype(f32)
    yb = np.eye(d_out, dtype=f32)[rng.integers(0, d_out, batch)]
    step = tracejit.compile(mlp_step, backend="numba_cpu")
    t_jit = median_seconds(step, params, xb, yb)
    t_interp = median_seconds(tracejit.compile(mlp_step, backend="interpreter"), params, xb, yb)
    print(f"{'MLP step (fwd+bwd)':28} {t_jit * 1e3:9.2f}ms {t_interp * 1e3:9.2f}ms "
          f"{'':>10} {t_jit / t_interp:9.2f}   (NumPy column: tracejit's interpreter)")

    tiny = np.ones(4, f32)
    plus = tracejit.compile(lambda x: x + 1, backend="numba_cpu")
    t_jit = median_seconds(plus, tiny, min_time=0.5)
    t_np = median_seconds(lambda x: x + 1, tiny, min_time=0.5)
    print(f"{'per-call overhead (4 elems)':28} {t_jit * 1e6:9.2f}us {t_np * 1e6:9.2f}us")


if __name__ == "__main__":
    main()
