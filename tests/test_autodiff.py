"""Autodiff behaviour: the book's examples, higher order, composition with compile, conventions
at kinks, custom_vjp, and the errors."""
from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp
from tracejit.primitives import REGISTRY, Primitive

HERE = __file__.rsplit("/", 1)[-1]


# --- the book's examples (Dive into Deep Learning, automatic differentiation) ----------------

def test_book_examples():
    x = np.arange(4.0)
    np.testing.assert_allclose(tracejit.grad(lambda x: 2 * tnp.dot(x, x))(x), 4 * x)
    np.testing.assert_allclose(tracejit.grad(lambda x: x.sum())(x), np.ones(4))
    np.testing.assert_allclose(tracejit.grad(lambda x: (x * x).sum())(x), 2 * x)

    def detached(x):
        u = tracejit.stop_gradient(x * x)
        return (u * x).sum()

    np.testing.assert_allclose(tracejit.grad(detached)(x), x * x)


def control_flow(a):
    b = a * 2
    while tnp.linalg.norm(b) < 1000:  # MARK-while
        b = b * 2
    if b.sum() > 0:
        c = b
    else:
        c = 100 * b
    return c


def test_python_control_flow_under_plain_grad():
    for a in (np.array(0.3), np.array(-1.7), np.array(2e-3)):
        d = control_flow(a)
        g = tracejit.grad(control_flow)(a)
        np.testing.assert_allclose(g, d / a)


def test_python_control_flow_under_compile_names_the_while(jit):
    with pytest.raises(tracejit.TracerConversionError) as info:
        jit(tracejit.grad(control_flow))(np.array(0.3))
    marker_line = next(i for i, line in enumerate(open(__file__), 1) if "MARK-while" in line
                       and "marker" not in line)
    assert re.search(rf"{HERE}:{marker_line}\b", str(info.value))


# --- higher order and composition ------------------------------------------------------------

def test_grad_of_grad_of_tanh():
    for x in (-1.2, 0.0, 0.5):
        expected = -2 * np.tanh(x) * (1 - np.tanh(x) ** 2)
        np.testing.assert_allclose(tracejit.grad(tracejit.grad(tnp.tanh))(x), expected)
    third = tracejit.grad(tracejit.grad(tracejit.grad(tnp.sin)))(0.3)
    np.testing.assert_allclose(third, -np.cos(0.3))


def test_hessian_of_quadratic_form(rng):
    a = rng.normal(size=(4, 4))
    x = rng.normal(size=4)
    np.testing.assert_allclose(tracejit.hessian(lambda x: x @ a @ x)(x), a + a.T, atol=1e-12)


def test_hessian_of_a_function_that_calls_grad(rng):
    def energy(x):
        return (tnp.sin(x) * x).sum()

    def grad_norm(x):
        g = tracejit.grad(energy)(x)
        return (g * g).sum()

    x = rng.normal(size=3)
    h = tracejit.hessian(grad_norm)(x)
    # Reference: the Jacobian of the analytic gradient of grad_norm, by finite differences.
    def analytic_grad(x):
        g = np.sin(x) + x * np.cos(x)
        dg = 2 * np.cos(x) - x * np.sin(x)
        return 2 * g * dg
    eps = 1e-6
    ref = np.stack([(analytic_grad(x + eps * e) - analytic_grad(x - eps * e)) / (2 * eps)
                    for e in np.eye(3)], axis=1)
    np.testing.assert_allclose(h, ref, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("seed", range(4))
def test_jacfwd_equals_jacrev_on_random_functions(seed):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(3, 4))

    def f(x):
        h = tnp.tanh(x @ w) * tnp.exp(-x[:, :1] ** 2)
        return tnp.concatenate([h.sum(axis=0), tnp.cumsum(h[0]) / (1 + h[1] ** 2)])

    x = rng.normal(size=(2, 3))
    np.testing.assert_allclose(tracejit.jacfwd(f)(x), tracejit.jacrev(f)(x), atol=1e-12)
    assert tracejit.jacrev(f)(x).shape == (8, 2, 3)


def test_jacobian_of_elementwise_is_diagonal(rng):
    x = rng.normal(size=4)
    np.testing.assert_allclose(tracejit.jacrev(tnp.sin)(x), np.diag(np.cos(x)))
    np.testing.assert_allclose(tracejit.jacfwd(tnp.sin)(x), np.diag(np.cos(x)))


def test_compile_of_grad_equals_interpreted_grad(jit, rng):
    w = rng.normal(size=(3, 2))

    def loss(w, x):
        return tnp.mean(tnp.tanh(x @ w) ** 2)

    x = rng.normal(size=(5, 3))
    expected = tracejit.grad(loss)(w, x)
    np.testing.assert_allclose(jit(tracejit.grad(loss))(w, x), expected, rtol=1e-12)
    np.testing.assert_allclose(tracejit.grad(jit(loss))(w, x), expected, rtol=1e-12)
    np.testing.assert_allclose(jit(tracejit.grad(jit(loss)))(w, x), expected, rtol=1e-12)


def test_grad_of_compiled_inlines_its_graph():
    inner = tracejit.compile(lambda x: tnp.exp(x).sum())
    graph = tracejit.make_ir(tracejit.grad(inner))(np.ones(3))
    names = [e.prim.name for e in graph.eqns]
    assert names.count("exp") == 1 and "mul" in names
    inner_line = inner.lower(np.ones(3)).graph.eqns[0].source_info
    assert graph.eqns[0].source_info == inner_line  # the inlined equation keeps its own line


def test_make_ir_of_grad_prints_forward_and_backward():
    text = str(tracejit.make_ir(tracejit.grad(lambda x: tnp.tanh(x).sum()))(np.ones(2)))
    assert text == """\
graph <lambda>(a:f64[2]) {
  b:f64[2] = tanh a
  c:f64[] = reduce_sum[axes=(0,)] b
  d:f64[2] = broadcast_in_dim[shape=(2,) dims=()] 1.0:f64
  e:f64[2] = broadcast_in_dim[shape=(2,) dims=()] 1.0:f64
  f:f64[2] = mul b b
  g:f64[2] = sub e f
  h:f64[2] = mul d g
  return h
}"""


def test_mlp_gradient_matches_finite_differences_and_compiles(jit, rng):
    sizes = [(6, 5), (5, 3)]
    params = {f"w{i}": rng.normal(size=s) * 0.5 for i, s in enumerate(sizes)}
    params.update({f"b{i}": rng.normal(size=s[1]) * 0.1 for i, s in enumerate(sizes)})
    x = rng.normal(size=(4, 6))
    labels = np.array([0, 2, 1, 2])

    def loss(params, x):
        h = tnp.tanh(x @ params["w0"] + params["b0"])
        logits = h @ params["w1"] + params["b1"]
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - tnp.log(tnp.exp(shifted).sum(axis=1, keepdims=True))
        return -tnp.mean(log_probs[tnp.arange(4), labels])

    tracejit.check_grads(loss, (params, x), order=1)
    g = tracejit.grad(loss)(params, x)
    gc = jit(tracejit.grad(loss))(params, x)
    assert g.keys() == gc.keys() == params.keys()
    for k in params:
        assert g[k].shape == params[k].shape
        np.testing.assert_allclose(gc[k], g[k], rtol=1e-12)


# --- API details -----------------------------------------------------------------------------

def test_argnums_has_aux_and_value_and_grad():
    def f(a, b, c):
        return (a * b + c).sum(), {"aux": a * 2}

    a, b, c = np.array([1.0, 2.0]), np.array([3.0, 4.0]), 5.0
    (ga, gc), aux = tracejit.grad(f, argnums=(0, 2), has_aux=True)(a, b, c)
    np.testing.assert_allclose(ga, b)
    np.testing.assert_allclose(gc, 2.0)
    np.testing.assert_allclose(aux["aux"], a * 2)
    (value, aux2), gb = tracejit.value_and_grad(f, argnums=1, has_aux=True)(a, b, c)
    np.testing.assert_allclose(value, 21.0)
    np.testing.assert_allclose(gb, a)


def test_python_float_argument_gradient():
    g = tracejit.grad(lambda s, x: (x * s * s).sum())(1.5, np.ones(3, np.float32))
    np.testing.assert_allclose(g, 9.0)
    assert g.dtype == np.float64 and g.shape == ()


def test_gradient_dtype_follows_the_input(rng):
    x = rng.normal(size=3).astype(np.float32)
    g = tracejit.grad(lambda x: (x * 2.0).sum())(x)
    assert g.dtype == np.float32


def test_vjp_and_jvp_with_pytrees():
    def f(p):
        return {"y": p["a"] * p["b"], "z": p["a"].sum()}

    p = {"a": np.array([1.0, 2.0]), "b": np.array([3.0, 4.0])}
    out, pullback = tracejit.vjp(f, p)
    (ct,) = pullback({"y": np.array([1.0, 0.0]), "z": np.array(1.0)})
    np.testing.assert_allclose(ct["a"], [3.0 + 1.0, 1.0])
    np.testing.assert_allclose(ct["b"], [1.0, 0.0])
    _, tangent = tracejit.jvp(f, (p,), ({"a": np.ones(2), "b": np.zeros(2)},))
    np.testing.assert_allclose(tangent["y"], p["b"])
    np.testing.assert_allclose(tangent["z"], 2.0)


def test_output_independent_of_input_gives_zeros_and_a_debug_warning():
    f = tracejit.grad(lambda x, y: (y * 2).sum(), argnums=0)
    x = np.ones((2, 3), np.float32)
    g = f(x, np.ones(3))
    assert g.shape == (2, 3) and g.dtype == np.float32 and not g.any()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f(x, np.ones(3))  # no warning at the default debug level
    with tracejit.config.override(debug=1), pytest.warns(UserWarning, match="does not depend"):
        f(x, np.ones(3))


# --- conventions at kinks --------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's, for sqrt'(0) = 1/0
def test_subgradient_conventions():
    grad = tracejit.grad
    assert grad(lambda x: tnp.abs(x))(0.0) == 0.0
    assert grad(lambda x: tnp.maximum(x, 1.0))(1.0) == 0.5
    assert grad(lambda x: tnp.minimum(x, 1.0))(1.0) == 0.5
    assert grad(lambda x: tnp.maximum(x, x).sum())(np.array([2.0])) == 1.0
    assert grad(lambda x: tnp.max(x))(np.array([1.0, 3.0, 3.0])).tolist() == [0.0, 0.5, 0.5]
    assert grad(lambda x: tnp.sqrt(x))(0.0) == np.inf
    assert grad(lambda x: x ** 2.0)(0.0) == 0.0
    assert grad(lambda x: 0.0 ** x)(2.0) == 0.0


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's, for log(-1) and 0 * inf
def test_where_with_nan_in_the_unselected_branch():
    x = np.array([-1.0, 4.0])
    # log(-1) is NaN, but it is not selected and log's derivative is finite there: finite grad.
    g = tracejit.grad(lambda x: tnp.where(x > 0, tnp.log(x), 0.0).sum())(x)
    np.testing.assert_array_equal(g, [0.0, 0.25])
    # sqrt'(0) is infinite: 0 * inf is NaN even though the branch is not selected...
    zero = np.array([0.0, 4.0])
    g = tracejit.grad(lambda x: tnp.where(x > 0, tnp.sqrt(x), 0.0).sum())(zero)
    assert np.isnan(g[0]) and g[1] == 0.25
    # ...and the documented fix, a second where on the input, keeps it finite.
    safe = tracejit.grad(lambda x: tnp.where(x > 0, tnp.sqrt(tnp.where(x > 0, x, 1.0)), 0.0)
                         .sum())(zero)
    np.testing.assert_array_equal(safe, [0.0, 0.25])


# --- custom_vjp ------------------------------------------------------------------------------

@tracejit.custom_vjp
def log1pexp(x):
    return tnp.log1p(tnp.exp(x))


def _log1pexp_fwd(x):
    return log1pexp(x), x


def _log1pexp_bwd(x, ct):
    return (ct * (1 - 1 / (1 + tnp.exp(x))),)


log1pexp.defvjp(_log1pexp_fwd, _log1pexp_bwd)


def test_custom_vjp_gives_a_stable_gradient(jit):
    x = np.array([0.0, 10.0, 1000.0])
    with np.errstate(all="ignore"):
        naive = tracejit.grad(lambda x: tnp.log1p(tnp.exp(x)).sum())(x)
    assert np.isnan(naive[2])
    with np.errstate(over="ignore"):  # exp(1000) overflows in the (naive) forward pass
        g = tracejit.grad(lambda x: log1pexp(x).sum())(x)
    np.testing.assert_allclose(g, [0.5, 1 / (1 + np.exp(-10.0)), 1.0])
    with np.errstate(over="ignore"):
        np.testing.assert_allclose(jit(tracejit.grad(lambda x: log1pexp(x).sum()))(x), g)
    np.testing.assert_allclose(log1pexp(np.array(0.0)), np.log(2.0))


def test_custom_vjp_second_order_and_errors():
    x = np.array(0.3)
    s = 1 / (1 + np.exp(-0.3))
    np.testing.assert_allclose(tracejit.grad(tracejit.grad(log1pexp))(x), s * (1 - s))

    @tracejit.custom_vjp
    def f(x):
        return x * 2

    with pytest.raises(TypeError, match="defvjp"):
        tracejit.grad(f)(1.0)
    f.defvjp(lambda x: (x * 2, None), lambda res, ct: ct * 2)  # not a tuple
    with pytest.raises(TypeError, match="must return a tuple"):
        tracejit.grad(f)(1.0)


# --- errors ----------------------------------------------------------------------------------

def test_grad_of_non_scalar_output_suggests_jacrev():
    with pytest.raises(TypeError, match=r"real scalar output.*float64\[3\].*jacrev") as info:
        tracejit.grad(lambda x: x * 2)(np.ones(3))  # MARK-nonscalar
    assert HERE in str(info.value)


def test_grad_with_respect_to_integers_names_the_argument():
    with pytest.raises(TypeError, match=r"argument 1 has dtype int64") as info:
        tracejit.grad(lambda x, n: (x * n).sum(), argnums=1)(np.ones(2), np.arange(2))
    assert HERE in str(info.value)
    with pytest.raises(TypeError, match=r"argument 0 has dtype int64 \(write 1.0, not 1\)"):
        tracejit.grad(lambda x: x * 2.0)(3)
    with pytest.raises(TypeError, match=r"argument 0\['w'\] has dtype bool"):
        tracejit.grad(lambda p: p["w"].sum())({"w": np.ones(2, bool)})


def test_primitive_without_rules_names_itself_and_the_line():
    prim = Primitive("mystery", "elementwise", abstract_eval=lambda x: x, impl=lambda x: x,
                     scalar="{0}", dtype_kinds="f")
    try:
        with pytest.raises(NotImplementedError, match="`mystery` has no differentiation rule") \
                as info:
            tracejit.grad(lambda x: prim.bind(x).sum())(np.ones(2))  # MARK-mystery
        assert HERE in str(info.value)
    finally:
        del REGISTRY["mystery"]


def test_converting_a_differentiated_value_to_numpy_is_refused():
    with pytest.raises(tracejit.TracerConversionError, match="drop its derivative"):
        tracejit.grad(lambda x: np.asarray(x).sum())(np.ones(2))


def test_check_grads_catches_a_wrong_rule(monkeypatch):
    sin = REGISTRY["sin"]
    wrong_vjp = lambda ct, x, *, out, needed: [ct * np.sin(x)]  # noqa: E731
    monkeypatch.setattr(sin, "vjp", wrong_vjp)
    with pytest.raises(AssertionError, match="reverse mode"):
        tracejit.check_grads(np.sin, (np.array([0.1, 0.7]),), order=1)


def test_registry_has_derivative_rules_for_every_primitive():
    undecided = [name for name, p in REGISTRY.items() if p.differentiable is None]
    assert not undecided, f"primitives neither differentiable nor marked not: {undecided}"
    missing = [name for name, p in REGISTRY.items()
               if p.differentiable and ((p.vjp is None and p.tape_forward is None) or
                                        p.jvp is None)]
    assert not missing, f"differentiable primitives missing a rule: {missing}"
