"""tracejit.compile / make_ir / lower: signatures, retracing, pytrees, statics, constants."""
from __future__ import annotations

import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp
from oracle import assert_same


def counting(fn):
    """Wrap fn to count how many times it is traced (its Python body runs once per trace)."""
    calls = []

    def wrapped(*args, **kwargs):
        calls.append(1)
        return fn(*args, **kwargs)

    wrapped.__name__ = fn.__name__
    return wrapped, calls


def test_bare_decorator_and_with_arguments(backend):
    @tracejit.compile
    def f(x):
        return x * 2

    @tracejit.compile(static_argnums=1, backend=backend)
    def g(x, n):
        return x ** n

    assert isinstance(f, tracejit.Compiled)
    assert f.__name__ == "f" and f.__wrapped__ is not None
    np.testing.assert_array_equal(f(np.arange(3)), [0, 2, 4])
    np.testing.assert_array_equal(g(np.arange(3), 3), [0, 1, 8])


def test_traces_once_per_signature(jit):
    body, calls = counting(lambda x, s: x * s)
    f = jit(body)
    x32 = np.ones(3, np.float32)
    f(x32, 2.0)
    f(x32 + 1, 3.0)  # new values, same signature: no retrace, scalar is a runtime value
    assert len(calls) == 1
    np.testing.assert_array_equal(f(x32, 5.0), np.full(3, 5.0, np.float32))
    assert len(calls) == 1
    f(np.ones(4, np.float32), 2.0)  # new shape
    f(np.ones(3, np.float64), 2.0)  # new dtype
    f(x32, 2)  # Python int instead of float
    f(x32, np.float64(2.0))  # NumPy scalar: strong, a different signature
    assert len(calls) == 5
    assert f(x32, np.float64(2.0)).dtype == np.float64  # strong float64 promotes
    assert f(x32, 2.0).dtype == np.float32  # weak Python float does not


def test_pytree_arguments_and_outputs(jit):
    def f(params, xs, scale=1.0):
        w, b = params["w"], params["b"]
        outs = [tnp.tanh(x @ w + b) * scale for x in xs]
        return {"outs": outs, "total": sum(o.sum() for o in outs), "none": None}

    params = {"w": np.ones((3, 2)), "b": np.zeros(2)}
    xs = (np.ones((4, 3)), np.full((1, 3), 0.5))
    assert_same(jit(f)(params, xs, scale=2.0), f(params, xs, scale=2.0))


def test_different_pytree_structure_retraces(jit):
    body, calls = counting(lambda t: sum(v.sum() for v in (t.values() if isinstance(t, dict)
                                                          else t)))
    f = jit(body)
    a = np.ones(2)
    assert f((a, a)) == 4.0
    assert f([a, a, a]) == 6.0
    assert f({"x": a}) == 2.0
    assert f({"y": a, "x": 2 * a}) == 6.0
    assert len(calls) == 4


def test_static_argnums_and_argnames(jit):
    body, calls = counting(lambda x, n, mode="sum": x.sum() * n if mode == "sum" else x.max())
    f = jit(body, static_argnums=(1,), static_argnames="mode")
    x = np.arange(4.0)
    assert f(x, 2) == 12.0
    assert f(x, 3) == 18.0  # new static value: retrace
    assert f(x, 3, mode="max") == 3.0
    assert f(x, n=3, mode="max") == 3.0  # static by position is also static by name
    # Passing an argument by keyword instead of by position is another signature (as jax.jit).
    assert len(calls) == 4


def test_python_control_flow_on_static_values_and_shapes(jit):
    def f(x, n):
        for _ in range(n):
            x = x * 2
        if x.shape[0] > 2:
            x = x[:2]
        return x

    np.testing.assert_array_equal(jit(f, static_argnums=1)(np.ones(4), 3), [8.0, 8.0])


def test_closed_over_arrays_are_constants_and_frozen(jit):
    table = np.arange(3.0)
    f = jit(lambda x: x + table)
    np.testing.assert_array_equal(f(np.ones(3)), [1.0, 2.0, 3.0])
    graph = f.lower(np.ones(3)).graph
    assert len(graph.consts) == 1 and "consts(" in f.lower(np.ones(3)).as_text()
    table[:] = 100  # the trace took a copy: a later mutation does not change compiled results
    np.testing.assert_array_equal(f(np.ones(3)), [1.0, 2.0, 3.0])


def test_outputs_are_fresh_arrays(jit):
    x = np.ones(3)
    out = jit(lambda x: (x, x))(x)
    assert out[0] is not x and out[1] is not out[0]
    out[0][0] = 5.0
    assert x[0] == 1.0 and out[1][0] == 1.0


def test_scalar_and_constant_outputs(jit):
    out = jit(lambda x: (1.5, 3, np.float32(2), x.shape[0]))(np.ones(4))
    assert [o.dtype for o in out] == [np.float64, np.int64, np.float32, np.int64]
    assert all(isinstance(o, np.ndarray) and o.shape == () for o in out)


def test_nested_compile_is_inlined(jit):
    inner = jit(lambda x: tnp.exp(x) * 2)
    outer = jit(lambda x: inner(x).sum())
    np.testing.assert_allclose(outer(np.zeros(3)), 6.0)
    assert "exp" in outer.lower(np.zeros(3)).as_text()


def test_make_ir_and_lower_share_the_trace():
    def f(x, k):
        return x * k

    graph = tracejit.make_ir(f, static_argnums=1)(np.ones(2, np.float32), 3)
    assert isinstance(graph, tracejit.Graph)
    lowered = tracejit.compile(f, static_argnums=1).lower(np.ones(2, np.float32), 3)
    assert lowered.as_text() == lowered.as_text("traced") == str(graph)


def test_numpy_scalar_and_zero_d_inputs(jit):
    f = jit(lambda a, b: a * b + 1)
    assert_same(f(np.float32(2), np.array(3.0, np.float32)),
                np.float32(2) * np.array(3.0, np.float32) + 1)
    assert_same(f(np.int8(3), 2), np.int8(3) * 2 + 1)


def test_bool_and_int_python_arguments(jit):
    f = jit(lambda x, flag, k: tnp.where(flag, x * k, x))
    assert_same(f(np.arange(3, dtype=np.int32), True, 2), np.arange(3, dtype=np.int32) * 2)
    assert_same(f(np.arange(3, dtype=np.int32), False, 2), np.arange(3, dtype=np.int32))


def test_config_override_and_unknown_setting():
    with tracejit.config.override(verify=False):
        assert tracejit.config.get("verify") is False
    assert tracejit.config.get("verify") is True
    with pytest.raises(KeyError, match="unknown tracejit setting"):
        with tracejit.config.override(nope=1):
            pass


def test_config_bad_environment_value_warns(monkeypatch):
    monkeypatch.setenv("TRACEJIT_VERIFY", "maybe")
    with pytest.warns(UserWarning, match="TRACEJIT_VERIFY"):
        assert tracejit.config.get("verify") is False
