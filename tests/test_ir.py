"""The IR: golden printouts, determinism, source provenance, the verifier, the registry."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp
from tracejit.errors import IRVerificationError
from tracejit.ir import Eqn, Graph, Literal, TensorType, Var, verify
from tracejit.primitives import REGISTRY

f32 = np.float32


def golden(fn, *args, **kwargs):
    return str(tracejit.make_ir(fn, **kwargs)(*args))


def test_golden_broadcast_mul_sum():
    def f(a, b):
        return (a * b).sum(axis=1)

    assert golden(f, np.ones((4, 3), f32), np.ones(3, f32)) == """\
graph f(a:f32[4,3], b:f32[3]) {
  c:f32[4,3] = broadcast_in_dim[shape=(4, 3) dims=(1,)] b
  d:f32[4,3] = mul a c
  e:f32[4] = reduce_sum[axes=(1,)] d
  return e
}"""


def test_golden_weak_scalars_and_promotion():
    """Python scalar arguments are weak runtime inputs (~): they take x's float32."""
    def g(x, s, i):
        return tnp.tanh(x * s) + i

    assert golden(g, np.ones(3, f32), 2.0, 3) == """\
graph g(a:f32[3], b:~f64[], c:~i64[]) {
  d:f32[] = convert[dtype=f32] b
  e:f32[3] = broadcast_in_dim[shape=(3,) dims=()] d
  f:f32[3] = mul a e
  g:f32[3] = tanh f
  h:f32[] = convert[dtype=f32] c
  i:f32[3] = broadcast_in_dim[shape=(3,) dims=()] h
  j:f32[3] = add g i
  return j
}"""


def test_golden_mlp_with_constants_and_pytrees():
    bias = np.arange(4, dtype=f32)

    def mlp(params, x):
        h = tnp.maximum(x @ params["w"] + bias, 0.0)
        return {"out": h.mean(), "first": h[0]}

    params = {"w": np.ones((3, 4), f32)}
    assert golden(mlp, params, np.ones((2, 3), f32)) == """\
graph mlp(a:f32[3,4], b:f32[2,3]) consts(c:f32[4]) {
  d:f32[2,4] = dot_general[contract=((1,), (0,)) batch=((), ())] b a
  e:f32[2,4] = broadcast_in_dim[shape=(2, 4) dims=(1,)] c
  f:f32[2,4] = add d e
  g:f32[2,4] = broadcast_in_dim[shape=(2, 4) dims=()] 0.0:f32
  h:f32[2,4] = max f g
  i:f32[] = reduce_sum[axes=(0, 1)] h
  j:f32[] = div i 8.0:f32
  k:f32[1,4] = slice[start=(0, 0) limit=(1, 4) strides=(1, 1)] h
  l:f32[4] = reshape[shape=(4,)] k
  return l, j
}"""


def test_golden_indexing_and_iota():
    def f(x):
        return x[::-1, [0, 2]] + tnp.arange(2)

    assert golden(f, np.ones((3, 4), np.int32)) == """\
graph f(a:i32[3,4]) consts(b:i64[2]) {
  c:i32[3,4] = rev[axes=(0,)] a
  d:i32[2,3] = gather[axes=(1,)] c b
  e:i32[3,2] = transpose[perm=(1, 0)] d
  f:i64[2] = iota[shape=(2,) dtype=i64 dimension=0]
  g:i64[3,2] = convert[dtype=i64] e
  h:i64[3,2] = broadcast_in_dim[shape=(3, 2) dims=(1,)] f
  i:i64[3,2] = add g h
  return i
}"""


def test_printing_is_deterministic():
    def f(x, y):
        return {"b": tnp.exp(x).sum(), "a": tnp.einsum("ij,jk->ik", x, y)}

    args = (np.ones((2, 3)), np.ones((3, 2)))
    texts = {golden(f, *args) for _ in range(3)}
    assert len(texts) == 1


def test_many_variables_get_distinct_names():
    def f(x):
        for _ in range(40):
            x = x + 1.0
        return x

    text = golden(f, np.ones(2))
    binders = [line.split(":")[0].strip() for line in text.splitlines()[1:-2]]
    assert len(set(binders)) == len(binders) == 80


def test_equations_record_the_users_line():
    def f(x):
        y = tnp.exp(x)  # line A
        return y * 2.0  # line B

    graph = tracejit.make_ir(f)(np.ones(3))
    lines = {e.prim.name: e.source_info.lineno for e in graph.eqns}
    first = f.__code__.co_firstlineno
    assert lines["exp"] == first + 1
    assert lines["mul"] == first + 2
    assert all(e.source_info.filename == __file__ for e in graph.eqns)


def test_verifier_rejects_broken_graphs():
    t = TensorType((3,), np.float32)
    a, b = Var(t), Var(t)
    add = REGISTRY["add"]
    ok = Graph([a], [Eqn(add, [a, a], {}, [b])], [b])
    verify(ok)
    with pytest.raises(IRVerificationError, match="before it is defined"):
        verify(Graph([a], [Eqn(add, [a, Var(t)], {}, [b])], [b]))
    with pytest.raises(IRVerificationError, match="second time"):
        verify(Graph([a], [Eqn(add, [a, a], {}, [a])], [a]))
    wrong = Var(TensorType((3,), np.float64))
    with pytest.raises(IRVerificationError, match="abstract eval"):
        verify(Graph([a], [Eqn(add, [a, a], {}, [wrong])], [wrong]))
    with pytest.raises(IRVerificationError, match="rejects its inputs"):
        lit = Literal(1.0, TensorType((), np.float64))
        verify(Graph([a], [Eqn(add, [a, lit], {}, [b])], [b]))
    with pytest.raises(IRVerificationError, match="graph output"):
        verify(Graph([a], [], [b]))


def test_every_traced_graph_verifies():
    """The suite runs with TRACEJIT_VERIFY=1: a quick check that the setting is live."""
    assert tracejit.config.get("verify") is True


# --- the registry ----------------------------------------------------------------------------

SAMPLES = {"b": [True, False], "i": [-3, 0, 7], "u": [0, 5], "f": [-1.5, 0.0, 0.75, 2.0]}


def test_registry_is_complete():
    missing = []
    for name, prim in REGISTRY.items():
        if prim._abstract_eval is None or prim.impl is None:
            missing.append(f"{name}: abstract_eval/impl")
        if prim.kind == "elementwise" and not prim.scalar:
            missing.append(f"{name}: scalar expression for code generation")
        for slot in ("vjp", "jvp"):
            if not hasattr(prim, slot):
                missing.append(f"{name}: {slot} slot")
    assert not missing, "primitives with missing rules:\n" + "\n".join(missing)
    assert 40 <= len(REGISTRY) <= 90, sorted(REGISTRY)  # (a guard against runaway growth)


def test_registry_has_batching_rules():
    from tracejit.primitives import linalg
    # The linear-algebra primitives (the last to get their rules) are among those checked.
    assert set(linalg.PRIMITIVES) <= set(REGISTRY)
    # `kernel` (kind "fused") is made by fusion, which runs after every transform: like its
    # derivative, its batching rule would never be called.
    missing = sorted(name for name, prim in REGISTRY.items()
                     if prim.batch is None and prim.kind != "fused")
    assert not missing, f"primitives without a batching rule (def_batch): {missing}"


@pytest.mark.parametrize("name", sorted(n for n, p in REGISTRY.items() if p.kind == "elementwise"))
def test_scalar_expressions_agree_with_impl(name):
    """Each elementwise primitive's codegen expression computes what its NumPy impl does."""
    prim = REGISTRY[name]
    nin = len({int(c) for c in "".join(ch for ch in prim.scalar if ch.isdigit())}) or 1
    for kind in prim.dtype_kinds:
        dtype = {"b": np.bool_, "i": np.int32, "u": np.uint8, "f": np.float64}[kind]
        for values in itertools.product(SAMPLES[kind], repeat=nin):
            if name == "select":
                values = (np.bool_(values[0]),) + tuple(dtype(v) for v in values[1:])
            else:
                values = tuple(dtype(v) for v in values)
            params = {"dtype": np.dtype(np.float32)} if name == "convert" else {}
            with np.errstate(all="ignore"):
                try:
                    expected = prim.impl(*[np.asarray(v) for v in values], **params)
                except Exception:
                    continue  # e.g. integer to a negative power: no value to compare
                namespace = {"np": np, "math": __import__("math")}
                template = prim.scalar_by_kind.get(kind, prim.scalar)
                code = template.format(*[f"v{i}" for i in range(nin)], dtype="np.float32")
                got = eval(code, namespace, {f"v{i}": v for i, v in enumerate(values)})
            np.testing.assert_array_equal(np.asarray(got, dtype=expected.dtype), expected,
                                          err_msg=f"{name}{values}: {code}")
