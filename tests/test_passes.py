"""The optimisation pipeline: each pass's effect, golden dumps per stage, and semantics kept."""
from __future__ import annotations

import numpy as np

import tracejit
import tracejit.numpy as tnp
from tracejit.api import STAGES
from tracejit.backends.interpreter import evaluate
from tracejit.ir import verify
from tracejit.passes.cse import cse
from tracejit.passes.dce import dce
from tracejit.passes.pipeline import run_pipeline
from tracejit.passes.simplify import simplify


def stages(fn, *args):
    return run_pipeline(tracejit.make_ir(fn)(*args))[0]


def prim_names(graph):
    return [e.prim.name for e in graph.eqns]


def test_stage_names_and_golden_dumps_for_a_gradient():
    assert STAGES == ("traced", "simplify", "cse", "layout", "dce", "fused")
    lowered = tracejit.compile(tracejit.grad(lambda x: tnp.tanh(x).sum())).lower(np.ones(2))
    assert lowered.as_text("dce") == """\
graph <lambda>(a:f64[2]) {
  b:f64[2] = tanh a
  c:f64[2] = broadcast_in_dim[shape=(2,) dims=()] 1.0:f64
  d:f64[2] = mul b b
  e:f64[2] = sub c d
  return e
}"""
    # `ct * (1 - y*y)` with ct = 1 lost the multiplication; the two broadcasts of 1.0 became
    # one; the forward sum, which the gradient does not use, is gone.
    assert "reduce_sum" in lowered.as_text() and "reduce_sum" not in lowered.as_text("dce")


def test_identities():
    def f(x):
        a = x * 1.0 + 0.0 - 0.0
        b = -(-a) / 1.0
        c = b.reshape(2, 3).reshape(6).reshape(3, 2)
        d = c.T.T
        return d ** 1.0
    graph = stages(f, np.ones((3, 2)))["simplify"]
    graph = dce(graph)
    assert prim_names(graph) == []
    assert graph.outputs[0] is graph.inputs[0]


def test_compositions_and_strength_reduction():
    def f(x):
        y = tnp.transpose(tnp.transpose(x, (1, 2, 0)), (2, 0, 1))  # the identity
        z = tnp.broadcast_to(tnp.broadcast_to(x[0, 0], (3, 4)), (2, 3, 4))
        w = x.reshape(4, 6).reshape(24)
        return y ** 2, z, w
    graph = dce(stages(f, np.ones((2, 3, 4)))["simplify"])
    names = prim_names(graph)
    assert names.count("transpose") == 0 and names.count("pow") == 0 and "mul" in names
    assert names.count("broadcast_in_dim") == 1 and names.count("reshape") <= 2


def test_a_transposed_product_is_the_product_of_the_swapped_operands(rng):
    a, b = rng.normal(size=(3, 2)), rng.normal(size=(2, 4))
    graph = stages(lambda a, b: (a @ b).T * 2.0, a, b)["dce"]
    assert prim_names(graph) == ["dot_general", "broadcast_in_dim", "mul"]
    assert graph.eqns[0].inputs == [graph.inputs[1], graph.inputs[0]]
    np.testing.assert_allclose(evaluate(graph, [a, b])[0], (a @ b).T * 2.0, rtol=1e-14)
    # A product read elsewhere too stays as it is: one matmul, not two.
    kept = stages(lambda a, b: ((a @ b).T, a @ b), a, b)["dce"]
    assert prim_names(kept).count("dot_general") == 1


def test_constant_folding():
    graph = dce(stages(lambda x: x + tnp.full((3,), 2.0) * 3.0 - 1.0, np.ones(3))["simplify"])
    text = str(graph)
    assert "6.0:f64" in text and "mul" not in prim_names(graph), text


def test_cse_merges_equal_equations():
    def f(x):
        return tnp.exp(x) + tnp.exp(x) * tnp.sin(x) + tnp.exp(x)
    graph = dce(cse(tracejit.make_ir(f)(np.ones(3))))
    assert prim_names(graph).count("exp") == 1 and prim_names(graph).count("sin") == 1


def test_a_transposed_batched_product_is_the_batched_product_of_the_swapped_operands(rng):
    """vmap of a weight gradient: per-example products (batch dims) then a transpose of their
    free dims; written in the order it is read (437 -> 52 ms for benchmarks/per_example_grads.py)
    and the same values. A transpose that moves the batch dim is left alone."""
    a, b = rng.normal(size=(5, 3, 1)), rng.normal(size=(5, 1, 4))
    graph = stages(lambda a, b: tnp.swapaxes(a @ b, 1, 2) * 2.0, a, b)["dce"]
    assert "transpose" not in prim_names(graph)
    product = next(e for e in graph.eqns if e.prim.name == "dot_general")
    assert product.inputs == [graph.inputs[1], graph.inputs[0]]
    np.testing.assert_allclose(evaluate(graph, [a, b])[0], np.swapaxes(a @ b, 1, 2) * 2.0,
                               rtol=1e-14)
    moved = stages(lambda a, b: tnp.transpose(a @ b, (1, 0, 2)), a, b)["dce"]
    assert "transpose" in prim_names(moved)
    np.testing.assert_allclose(evaluate(moved, [a, b])[0], np.transpose(a @ b, (1, 0, 2)),
                               rtol=1e-14)

    def example_loss(w, x):
        return tnp.tanh(x @ w).sum()

    w, xs = rng.normal(size=(3, 4)), rng.normal(size=(6, 3))
    per_example = tracejit.vmap(tracejit.grad(example_loss), in_axes=(None, 0))
    fused = stages(per_example, w, xs)["dce"]
    assert "transpose" not in prim_names(fused)
    loop = np.stack([tracejit.grad(example_loss)(w, x) for x in xs])
    np.testing.assert_allclose(evaluate(fused, [w, xs])[0], loop, rtol=1e-12)


def test_cse_merges_equations_with_several_results_and_keeps_control_flow_apart():
    """A factorisation read by two functions of one matrix (inv and det: lu_factor, two
    results) is computed once; so are two equal eigendecompositions; loops are never merged."""
    a = np.array([[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]])

    def f(a):
        w1, _ = tnp.linalg.eigh(a)
        w2, v2 = tnp.linalg.eigh(a)
        return tnp.linalg.inv(a).sum() + tnp.linalg.det(a) + w1.sum() + (w2 * v2).sum()

    traced = tracejit.make_ir(f)(a)
    assert prim_names(traced).count("lu_factor") == 2 and prim_names(traced).count("eigh") == 2
    merged = dce(cse(traced))
    assert prim_names(merged).count("lu_factor") == 1 and prim_names(merged).count("eigh") == 1
    verify(merged)
    w, v = np.linalg.eigh(a)
    expected = np.linalg.inv(a).sum() + np.linalg.det(a) + w.sum() + (w * v).sum()
    assert np.allclose(evaluate(merged, [a])[0], expected)

    def loops(x):
        body = lambda i, c: c * 2.0  # noqa: E731
        return tracejit.fori_loop(0, 3, body, x) + tracejit.fori_loop(0, 3, body, x)

    looped = dce(cse(tracejit.make_ir(loops)(np.ones(2))))
    assert prim_names(looped).count("fori_loop") == 2


def test_dce_drops_unused_work_and_constants():
    table = np.arange(3.0)

    def f(x):
        tnp.exp(x) + table  # computed, never used
        return x * 2
    graph = tracejit.make_ir(f)(np.ones(3))
    assert len(graph.consts) == 1
    pruned = dce(graph)
    assert prim_names(pruned) == ["broadcast_in_dim", "mul"] and pruned.consts == []


def test_every_stage_verifies_and_computes_the_same(rng):
    def f(x, y):
        h = tnp.tanh(x @ y) * 1.0
        return (h - h.mean(axis=0)).T.T, tnp.exp(h) + tnp.exp(h)

    x, y = rng.normal(size=(3, 4)), rng.normal(size=(4, 2))
    all_stages = stages(f, x, y)
    reference = evaluate(all_stages["traced"], [x, y])
    for name, graph in all_stages.items():
        verify(graph)
        for got, want in zip(evaluate(graph, [x, y]), reference):
            np.testing.assert_array_equal(got, want, err_msg=name)


def test_simplify_never_changes_types():
    def f(x, s):
        return x * s, s * 1.0, (s + 0) * x.astype(np.float32)
    graph = tracejit.make_ir(f)(np.ones(3, np.float32), 2.0)
    simplified = simplify(graph)
    verify(simplified)
    assert [a.ttype for a in simplified.outputs] == [a.ttype for a in graph.outputs]
