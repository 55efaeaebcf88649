"""tracejit quickstart: trace a NumPy function, read its IR, take its gradient, run it
compiled, check it against NumPy, and time a fused kernel against NumPy.

    python examples/quickstart.py
"""
import time

import numpy as np

import tracejit
import tracejit.numpy as tnp


def loss(w, x, y):
    """Mean squared error of a one-layer tanh model: plain NumPy code."""
    p = np.tanh(x @ w)
    return np.mean((p - y) ** 2)


def softmax_rows(z):
    z = z - tnp.max(z, axis=1, keepdims=True)
    e = tnp.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def gelu(x):
    return 0.5 * x * (1.0 + np.tanh(0.7978845608 * (x + 0.044715 * x ** 3)))


def best_of(fn, repeats=5):
    fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main(size=4_000_000):
    rng = np.random.default_rng(0)
    w = rng.normal(size=(3, 2)).astype(np.float32)
    x = rng.normal(size=(8, 3)).astype(np.float32)
    y = rng.normal(size=(8, 2)).astype(np.float32)

    print("The traced IR of `loss` (types on every binder, params in brackets):\n")
    print(tracejit.make_ir(loss)(w, x, y))

    compiled = tracejit.compile(loss)
    got, expected = compiled(w, x, y), loss(w, x, y)
    print(f"\ncompiled loss = {got!r}\nNumPy    loss = {expected!r}")
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert got.dtype == np.asarray(expected).dtype == np.float32

    dloss = tracejit.grad(loss)
    print("\nThe gradient is a graph too (forward and backward):\n")
    print(tracejit.make_ir(dloss)(w, x, y))
    g = tracejit.compile(dloss)(w, x, y)
    tracejit.check_grads(loss, tuple(a.astype(np.float64) for a in (w, x, y)), order=2)
    print(f"\ncompiled gradient (shape {g.shape}, {g.dtype}) agrees with finite differences")

    smax = tracejit.compile(softmax_rows)
    z = rng.normal(size=(4, 5))
    np.testing.assert_allclose(smax(z), softmax_rows(z), rtol=1e-12)
    smax.wait(z)  # the first call ran on the interpreter; wait for the compiled code
    lowered = smax.lower(z)
    print("\nsoftmax over rows, traced:\n")
    print(lowered.as_text())
    print("\n... and fused: the whole softmax is one kernel, one pass per stage over each row:")
    for kernel in lowered.kernels():
        print(" ", kernel)
    stats = smax.compile_stats()[0]
    how = "loaded from the disk cache" if "load" in stats else "compiled by Numba"
    print(f"  ({how} in {stats['total'] * 1e3:.0f} ms; run this script again to see the cache)")

    fast_gelu = tracejit.compile(gelu)
    x = rng.normal(size=size).astype(np.float32)
    np.testing.assert_allclose(fast_gelu(x), gelu(x), rtol=1e-5, atol=1e-6)
    fast_gelu.wait(x)  # time the compiled code, not the first calls' interpreter
    t_numpy, t_compiled = best_of(lambda: gelu(x)), best_of(lambda: fast_gelu(x))
    print(f"\nGELU on {size:,} float32 values: NumPy {t_numpy * 1e3:.1f} ms (a pass over "
          f"memory and a temporary per operation), tracejit {t_compiled * 1e3:.1f} ms "
          f"(one fused kernel): {t_numpy / t_compiled:.1f}x faster")
    print("\nOK: compiled results match NumPy (values, shapes and dtypes).")
    return t_numpy / t_compiled


if __name__ == "__main__":
    main()
