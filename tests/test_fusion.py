"""Fusion: kernel counts, recorded refusals, the fused IR, and fused graphs computing the same."""
from __future__ import annotations

import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp
from tracejit.backends.interpreter import evaluate
from tracejit.passes.fusion import kernel_eqns
from tracejit.passes.pipeline import run_pipeline


def gelu(x):
    return 0.5 * x * (1.0 + tnp.tanh(0.7978845608 * (x + 0.044715 * x ** 3)))


def softmax(x):
    e = tnp.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def fused(fn, *args):
    stages, report = run_pipeline(tracejit.make_ir(fn)(*args), fusion=True)
    return stages, report


def count(fn, *args):
    stages, _ = fused(fn, *args)
    return len(kernel_eqns(stages["fused"]))


F32 = np.float32


def test_kernel_counts():
    x = np.ones((8, 16), F32)
    assert count(gelu, x) == 1
    assert count(lambda x: (x * x).sum(), x) == 1
    assert count(lambda a, b, c: (a * b + c) / (1 + tnp.exp(-a)),
                 x, np.ones((8, 1), F32), np.ones(16, F32)) == 1
    w, b = np.ones((16, 4), F32), np.ones(4, F32)
    stages, _ = fused(lambda x, w, b: tnp.tanh(x @ w + b), x, w, b)
    kinds = [e.prim.name if e.prim.name != "kernel" else e.params["kind"]
             for e in kernel_eqns(stages["fused"])]
    assert kinds == ["dot_general", "elementwise"]  # a matmul, then one epilogue kernel


def layernorm(x):
    mu = x.mean(axis=1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=1, keepdims=True)
    return (x - mu) / tnp.sqrt(var + 1e-5)


def test_row_kernels():
    """Reduce-then-broadcast along one axis is one kernel with one pass per stage per row."""
    x = np.ones((4, 8), F32)
    assert count(softmax, x) == 1
    assert count(layernorm, x) == 1
    assert count(lambda x: x.var(axis=1), x) == 1
    assert count(lambda x: (x - x.mean(axis=1, keepdims=True), x.mean(axis=1)), x) == 1
    stages, _ = fused(softmax, x)
    (k,) = kernel_eqns(stages["fused"])
    assert k.params["kind"] == "row"


def test_refusals_are_recorded_with_reasons():
    def f(x):
        s = x.sum(axis=0, keepdims=True)  # reduces the other axis than the next one
        return (x / s).sum(axis=1)
    stages, report = fused(f, np.ones((4, 8), F32))
    assert count(f, np.ones((4, 8), F32)) == 2
    reasons = [d.reason for d in report.refusals()]
    assert reasons and all(isinstance(r, str) and r for r in reasons), reasons
    assert str(report)  # printable, one decision a line


def test_fusion_refuses_cycles():
    def f(x):
        e = tnp.exp(x)
        s = e.sum(axis=1, keepdims=True)  # depends on e's kernel
        return e * s  # must not join e's kernel: it needs the whole sum first
    stages, report = fused(f, np.ones((3, 4)))
    graph = stages["fused"]
    tracejit.verify(graph)
    x = np.random.default_rng(0).normal(size=(3, 4))
    np.testing.assert_allclose(evaluate(graph, [x])[0], f(x))


def test_fused_ir_prints_kernels_as_nested_blocks():
    lowered = tracejit.compile(lambda x: (x * x).sum(axis=1), backend="interpreter")
    stages, _ = fused(lambda x: (x * x).sum(axis=1), np.ones((2, 3), F32))
    assert str(stages["fused"]) == """\
graph <lambda>(a:f32[2,3]) {
  b:f32[2] = kernel[kind=reduce body=reduce_kernel] a
    graph reduce_kernel(a:f32[2,3]) {
      b:f32[2,3] = mul a a
      c:f32[2] = reduce_sum[axes=(1,)] b
      return c
    }
  return b
}"""
    del lowered


@pytest.mark.parametrize("seed", range(3))
def test_fused_graphs_compute_what_the_traced_graph_does(seed):
    rng = np.random.default_rng(seed)
    x, w = rng.normal(size=(5, 6)), rng.normal(size=(6, 3))

    def f(x, w):
        h = tnp.tanh(x @ w) * 2 + 1
        s = softmax(h)
        return s, (h * s).sum(axis=0), tnp.cumsum(h, axis=1)[:, ::-1], x.T @ x

    stages, _ = fused(f, x, w)
    want = evaluate(stages["traced"], [x, w])
    for got, expected in zip(evaluate(stages["fused"], [x, w]), want):
        np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_mlp_loss_gradient_kernel_count():
    """A guard on fusion of a whole backward pass: 5 matmuls (2 forward, 3 backward) and 8
    fused kernels. A change here should be deliberate (update the count and say why)."""
    def loss(params, x, y):
        h = tnp.tanh(x @ params["w1"] + params["b1"])
        logits = h @ params["w2"] + params["b2"]
        z = logits - logits.max(axis=1, keepdims=True)
        logp = z - tnp.log(tnp.exp(z).sum(axis=1, keepdims=True))
        return -(logp * y).sum() / x.shape[0]

    params = {"w1": np.ones((8, 6), F32), "b1": np.ones(6, F32),
              "w2": np.ones((6, 3), F32), "b2": np.ones(3, F32)}
    stages, _ = fused(tracejit.grad(loss), params, np.ones((4, 8), F32), np.ones((4, 3), F32))
    kinds = [e.prim.name if e.prim.name != "kernel" else e.params["kind"]
             for e in kernel_eqns(stages["fused"])]
    assert kinds.count("dot_general") == 5
    assert len(kinds) == 13, kinds
