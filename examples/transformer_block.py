"""One pre-norm transformer block (causal multi-head attention + GELU MLP), forward and backward,
compiled, and checked against a plain NumPy implementation.

    python examples/transformer_block.py

The block is written once over an array namespace: with ``np`` it is the NumPy reference,
with ``tnp`` under ``tracejit.compile`` it is traced, fused and compiled. The gradient of a
loss with respect to every parameter comes from ``tracejit.grad`` and is checked against
central finite differences of the NumPy reference.
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np

import tracejit
import tracejit.numpy as tnp


def layernorm(xp, x, g, b):
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / xp.sqrt(var + 1e-5) * g + b


def gelu(xp, x):
    return 0.5 * x * (1.0 + xp.tanh(0.7978845608 * (x + 0.044715 * x ** 3)))


def block(xp, p, x, heads):
    """x: (batch, seq, d). Pre-norm: x + attn(ln1(x)), then + mlp(ln2(.))."""
    batch, seq, d = x.shape
    hd = d // heads
    h = layernorm(xp, x, p["ln1_g"], p["ln1_b"])
    qkv = h @ p["w_qkv"]  # (batch, seq, 3d)
    q, k, v = qkv[..., :d], qkv[..., d:2 * d], qkv[..., 2 * d:]
    split = lambda t: t.reshape((batch, seq, heads, hd)).transpose((0, 2, 1, 3))  # noqa: E731
    q, k, v = split(q), split(k), split(v)  # (batch, heads, seq, hd)
    # A Python float scale: NumPy's float64 scalar (np.sqrt) would promote float32 scores to
    # float64 (NEP 50), and with them the rest of the block, as NumPy itself does.
    scores = q @ k.transpose((0, 1, 3, 2)) / math.sqrt(hd)
    causal = np.tril(np.ones((seq, seq), dtype=bool))
    scores = xp.where(causal, scores, -1e9)
    scores = scores - scores.max(axis=-1, keepdims=True)
    att = xp.exp(scores)
    att = att / att.sum(axis=-1, keepdims=True)
    out = (att @ v).transpose((0, 2, 1, 3)).reshape((batch, seq, d))
    x = x + out @ p["w_o"]
    h = layernorm(xp, x, p["ln2_g"], p["ln2_b"])
    return x + gelu(xp, h @ p["w_1"] + p["b_1"]) @ p["w_2"] + p["b_2"]


def loss(xp, p, x, heads):
    y = block(xp, p, x, heads)
    return (y * y).mean()


def init(rng, d, dtype):
    def w(*shape):
        return (rng.standard_normal(shape) / np.sqrt(shape[0])).astype(dtype)
    return {"ln1_g": np.ones(d, dtype), "ln1_b": np.zeros(d, dtype), "w_qkv": w(d, 3 * d),
            "w_o": w(d, d), "ln2_g": np.ones(d, dtype), "ln2_b": np.zeros(d, dtype),
            "w_1": w(d, 4 * d), "b_1": np.zeros(4 * d, dtype), "w_2": w(4 * d, d),
            "b_2": np.zeros(d, dtype)}


def finite_difference_check(p, x, heads, grads, rng, probes=3, eps=1e-6) -> float:
    """Largest relative error of the compiled gradient against central differences of the
    NumPy reference, at a few random coordinates of every parameter."""
    worst = 0.0
    for name, value in p.items():
        for _ in range(probes):
            i = tuple(rng.integers(0, n) for n in value.shape)
            plus, minus = {**p, name: value.copy()}, {**p, name: value.copy()}
            plus[name][i] += eps
            minus[name][i] -= eps
            numeric = (loss(np, plus, x, heads) - loss(np, minus, x, heads)) / (2 * eps)
            worst = max(worst, abs(grads[name][i] - numeric) / max(1e-6, abs(numeric)))
    return worst


def main(batch=8, seq=64, d=128, heads=4, verbose=True) -> dict:
    rng = np.random.default_rng(0)
    results = {}
    # float32: the size a model runs at; compared with the NumPy reference.
    p32, x32 = init(rng, d, np.float32), rng.standard_normal((batch, seq, d)).astype(np.float32)
    forward = tracejit.compile(lambda p, x: block(tnp, p, x, heads))
    backward = tracejit.compile(tracejit.value_and_grad(lambda p, x: loss(tnp, p, x, heads)))
    y = forward(p32, x32)
    forward.wait(p32, x32)  # (first calls run on the interpreter while the code compiles)
    expected = block(np, p32, x32, heads)
    results["forward_max_error"] = float(np.abs(y - expected).max())
    value, g32 = backward(p32, x32)
    backward.wait(p32, x32)
    results["loss_error"] = abs(float(value) - float(loss(np, p32, x32, heads)))
    timings = {}
    for name, fn in [("compiled forward", lambda: forward(p32, x32)),
                     ("NumPy forward", lambda: block(np, p32, x32, heads)),
                     ("compiled forward + backward", lambda: backward(p32, x32))]:
        fn()
        started = time.perf_counter()
        for _ in range(5):
            fn()
        timings[name] = (time.perf_counter() - started) / 5
    results["timings"] = timings
    # float64, small: every parameter's gradient against finite differences of NumPy.
    p64 = init(rng, 16, np.float64)
    x64 = rng.standard_normal((2, 5, 16))
    grad64 = tracejit.compile(tracejit.grad(lambda p, x: loss(tnp, p, x, 2)))(p64, x64)
    results["gradient_max_relative_error"] = finite_difference_check(p64, x64, 2, grad64, rng)
    if verbose:
        print(f"block: batch {batch}, sequence {seq}, width {d}, {heads} heads (float32)")
        print(f"forward: max |compiled - NumPy| = {results['forward_max_error']:.2e}")
        print(f"loss:    |compiled - NumPy| = {results['loss_error']:.2e}")
        print("gradient of every parameter vs central differences (float64, small block): "
              f"max relative error {results['gradient_max_relative_error']:.2e}")
        for name, t in timings.items():
            print(f"{name:30s} {t * 1e3:8.2f} ms")
        kernels = forward.lower(p32, x32).kernels()
        print(f"the forward pass runs {len(kernels)} kernels (matmuls through BLAS, the rest "
              "fused); `forward.lower(p, x).kernels()` lists them")
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.parse_args()
    r = main()
    assert r["forward_max_error"] < 1e-3 and r["gradient_max_relative_error"] < 1e-5
