"""The benchmark workloads, written once over an array namespace.

``make(tnp, tracejit.grad)`` gives them for tracejit (plain NumPy when not traced),
``make(jax.numpy, jax.grad)`` for JAX. Importing this module imports neither Numba nor JAX.
"""
from __future__ import annotations

from types import SimpleNamespace


def make(xp, grad) -> SimpleNamespace:
    def gelu(x):
        return 0.5 * x * (1.0 + xp.tanh(0.7978845608 * (x + 0.044715 * x ** 3)))

    def bias_sigmoid(a, b, c):
        return (a * b + c) / (1.0 + xp.exp(-a))

    def softmax(x):
        e = xp.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def layernorm(x):
        mu = x.mean(axis=1, keepdims=True)
        var = ((x - mu) ** 2).mean(axis=1, keepdims=True)
        return (x - mu) / xp.sqrt(var + 1e-5)

    def sum_of_squares(x):
        return (x * x).sum()

    def adam(p, g, m, v, lr, t):
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        mhat = m / (1 - 0.9 ** t)
        vhat = v / (1 - 0.999 ** t)
        return p - lr * mhat / (xp.sqrt(vhat) + 1e-8), m, v

    def mlp_loss(params, x, y):
        h = xp.tanh(x @ params["w1"] + params["b1"])
        logits = h @ params["w2"] + params["b2"]
        z = logits - logits.max(axis=1, keepdims=True)
        logp = z - xp.log(xp.exp(z).sum(axis=1, keepdims=True))
        return -(logp * y).sum() / x.shape[0]

    def mlp_step(params, x, y):
        g = grad(mlp_loss)(params, x, y)
        return {k: params[k] - 0.01 * g[k] for k in params}

    return SimpleNamespace(**{k: v for k, v in locals().items() if callable(v) and k != "grad"})
