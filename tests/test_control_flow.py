"""cond, fori_loop, while_loop and scan: against Python loops, on every backend; their
derivatives against finite differences; real loops in the compiled code; and their errors."""
import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp
from tracejit import check_grads, cond, fori_loop, scan, while_loop


# --- each primitive against a Python-loop reference -------------------------------------------

def branchy(x, w):
    return cond(x.sum() > 0, lambda a: (a * w, a.sum()), lambda a: (-a, 2.0), x)


def branchy_reference(x, w):
    return (x * w, x.sum()) if x.sum() > 0 else (-x, 2.0)


def test_cond_takes_the_branch_numpy_would(jit, rng):
    f = jit(branchy)
    w = rng.standard_normal(3)
    for x in (rng.standard_normal(3) + 2, rng.standard_normal(3) - 2):
        for got, expected in zip(f(x, w), branchy_reference(x, w)):
            np.testing.assert_allclose(got, expected, rtol=1e-12)
            assert np.asarray(got).dtype == np.float64


def recurrence(x, n):
    """fori_loop with traced bounds, a pytree carry and a value the body closes over."""
    def body(i, c):
        return {"v": c["v"] * 0.5 + x[i % 3], "k": c["k"] + i}
    return fori_loop(0, n, body, {"v": tnp.zeros_like(x), "k": 0})


def recurrence_reference(x, n):
    c = {"v": np.zeros_like(x), "k": 0}
    for i in range(n):
        c = {"v": c["v"] * 0.5 + x[i % 3], "k": c["k"] + i}
    return c


def test_fori_loop_matches_the_python_loop(jit, rng):
    f = jit(recurrence)
    x = rng.standard_normal(3).astype(np.float32)
    for n in (0, 1, 5):
        got, expected = f(x, n), recurrence_reference(x, n)
        np.testing.assert_allclose(got["v"], expected["v"], rtol=1e-6)
        assert got["v"].dtype == np.float32 and int(got["k"]) == expected["k"]
    # The same compiled function serves every trip count: the bound is read at run time.
    assert f.cache_info().misses == 1


def test_fori_loop_static_bounds_and_weak_initial_carry_follows_numpy(jit):
    x = np.arange(4, dtype=np.float32)
    f = jit(lambda x: fori_loop(0, 4, lambda i, s: s + x[i], 0.0))
    s = 0.0
    for i in range(4):
        s = s + x[i]
    got = f(x)
    assert got == s and got.dtype == np.asarray(s).dtype == np.float32


def collatz_steps(n):
    def body(c):
        k, steps = c
        return tnp.where(k % 2 == 0, k // 2, 3 * k + 1), steps + 1
    return while_loop(lambda c: c[0] != 1, body, (n, 0))[1]


def test_while_loop_matches_the_python_loop(jit):
    f = jit(collatz_steps)
    for n in (1, 6, 27):
        k, steps = n, 0
        while k != 1:
            k, steps = (k // 2 if k % 2 == 0 else 3 * k + 1), steps + 1
        assert int(f(np.int64(n))) == steps


def running(xs, ws):
    def step(c, x):
        total, prev = c
        return (total + x["a"] * ws, x["a"]), {"d": x["a"] - prev, "t": total.sum()}
    return scan(step, (tnp.zeros(3), tnp.zeros(3)), {"a": xs})


def running_reference(xs, ws):
    total, prev = np.zeros(3), np.zeros(3)
    out_d, out_t = np.empty_like(xs), np.empty(len(xs))
    for k in range(len(xs)):
        out_d[k], out_t[k] = xs[k] - prev, total.sum()
        total, prev = total + xs[k] * ws, xs[k]
    return (total, prev), {"d": out_d, "t": out_t}


def test_scan_matches_the_python_loop_forwards_and_in_reverse(jit, rng):
    xs, ws = rng.standard_normal((5, 3)), rng.standard_normal(3)
    got = jit(running)(xs, ws)
    expected = running_reference(xs, ws)
    np.testing.assert_allclose(got[0][0], expected[0][0], rtol=1e-12)
    np.testing.assert_allclose(got[0][1], expected[0][1], rtol=1e-12)
    np.testing.assert_allclose(got[1]["d"], expected[1]["d"], rtol=1e-12)
    np.testing.assert_allclose(got[1]["t"], expected[1]["t"], rtol=1e-12)

    def backwards(xs):
        return scan(lambda c, x: (c + x, c.sum()), tnp.zeros(3), xs, reverse=True)
    carry, ys = jit(backwards)(xs)
    c, expected_ys = np.zeros(3), np.empty(5)
    for k in range(4, -1, -1):
        expected_ys[k] = c.sum()
        c = c + xs[k]
    np.testing.assert_allclose(carry, c, rtol=1e-12)
    np.testing.assert_allclose(ys, expected_ys, rtol=1e-12)


def test_scan_without_xs_and_nested_control_flow(jit):
    def powers(a):
        def step(c, _):
            inner = fori_loop(0, 2, lambda i, v: cond(v > 100.0, lambda u: u, lambda u: u * a,
                                                      v), c)
            return inner, inner
        return scan(step, 1.0, None, length=4)

    carry, ys = jit(powers)(3.0)
    expected, v = [], 1.0
    for _ in range(4):
        for _ in range(2):
            v = v if v > 100.0 else v * 3.0
        expected.append(v)
    np.testing.assert_allclose(ys, expected)
    assert float(carry) == v


def test_control_flow_runs_eagerly_on_numpy_values():
    assert int(fori_loop(0, 5, lambda i, c: c + i, 0)) == 10
    assert int(while_loop(lambda c: c < 100, lambda c: c * 2, 1)) == 128
    carry, ys = scan(lambda c, x: (c + x, c * x), 0.0, np.array([1.0, 2.0, 3.0]))
    assert float(carry) == 6.0 and ys.tolist() == [0.0, 2.0, 9.0]
    assert cond(True, lambda: 1.0, lambda: 2.0) == 1.0


# --- compiled into real loops ------------------------------------------------------------------

GOLDEN_FORI = """\
graph scaled_sum(a:f32[4], b:~i64[]) {
  c:f32[4] = fori_loop[body=body n_carry=1] 0:i64 b a a
    graph body(a:i64[], b:f32[4], c:f32[4]) {
      d:f32[4] = broadcast_in_dim[shape=(4,) dims=()] 0.5:f32
      e:f32[4] = mul b d
      f:f32[4] = add e c
      return f
    }
  return c
}"""


def scaled_sum(x, n):
    return fori_loop(0, n, lambda i, c: c * np.float32(0.5) + x, x)


def test_loop_is_one_equation_holding_its_body():
    lowered = tracejit.compile(scaled_sum, backend="interpreter").lower(
        np.ones(4, np.float32), 3)
    assert lowered.as_text("traced") == GOLDEN_FORI


def test_loop_bodies_are_fused_and_not_unrolled():
    f = tracejit.compile(scaled_sum)
    x = np.ones(4, np.float32)
    lowered = f.lower(x, 1000)
    kernels = lowered.kernels()
    assert len(kernels) == 1 and kernels[0].primitives == ["broadcast_in_dim", "mul", "add"]
    source = lowered.kernel_source()
    assert "for " in source.split("def kernel")[0] and source.count("_k0(") == 1
    expected = x.copy()
    for _ in range(1000):
        expected = expected * np.float32(0.5) + x
    np.testing.assert_allclose(f(x, 1000), expected, rtol=1e-6)


# --- derivatives -------------------------------------------------------------------------------

def fori_model(x, w):
    return fori_loop(0, 4, lambda i, c: tnp.sin(c * w) + x * i, x).sum()


def fori_traced_bounds(x, w):
    return fori_loop(0, tnp.asarray(x.shape[0] + 1), lambda i, c: tnp.sin(c * w) + x, x).sum()


def while_model(x, w):
    def body(c):
        v, k = c
        return tnp.sin(v * w) + x, k + 1
    v, _ = while_loop(lambda c: c[1] < 5, body, (x, 0))
    return (v * v).sum()


def scan_model(x, w):
    c, ys = scan(lambda c, xi: (tnp.tanh(c * xi + w), c.sum() * xi), x, tnp.stack([x, w, x * w]))
    return c.sum() + (ys * ys).sum()


def cond_model(x, w):
    return cond(x.sum() > 0, lambda a, b: (a * b).sum(), lambda a, b: tnp.sin(a).sum() * 2, x, w)


MODELS = [fori_model, fori_traced_bounds, while_model, scan_model, cond_model]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_gradients_match_finite_differences(model, rng):
    x, w = rng.standard_normal(3), rng.standard_normal(3)
    check_grads(model, (x, w), order=1, modes=("fwd", "rev"))
    check_grads(model, (-np.abs(x), w), order=1, modes=("fwd", "rev"))


@pytest.mark.parametrize("model", [fori_model, scan_model, cond_model], ids=lambda m: m.__name__)
def test_second_order_through_static_loops_and_branches(model, rng):
    check_grads(model, (rng.standard_normal(3), rng.standard_normal(3)), order=2)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_compiled_gradients_equal_the_interpreted_ones(model, jit, rng):
    x, w = rng.standard_normal(3), rng.standard_normal(3)
    expected = tracejit.grad(model, argnums=(0, 1))(x, w)
    for got in (jit(tracejit.grad(model, argnums=(0, 1)))(x, w),
                tracejit.grad(jit(model), argnums=(0, 1))(x, w)):
        for g, e in zip(got, expected):
            np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-12)


def test_reverse_mode_through_while_loop_is_first_order_only(rng):
    x, w = rng.standard_normal(3), rng.standard_normal(3)
    with pytest.raises(NotImplementedError, match="while_loop.*not supported"):
        tracejit.hessian(lambda x: while_model(x, w))(x)


# --- the programs ----------------------------------------------------------------------

def mlp_loss(params, x, y):
    w1, b1, w2, b2 = params
    h = tnp.tanh(x @ w1 + b1)
    return ((h @ w2 + b2 - y) ** 2).mean()


def sgd_step(params, x, y):
    grads = tracejit.grad(mlp_loss)(params, x, y)
    return tuple(p - 0.1 * g for p, g in zip(params, grads))


def test_100_sgd_steps_in_one_compiled_fori_loop_match_stepwise_training(jit, rng):
    x = rng.standard_normal((16, 4)).astype(np.float32)
    y = np.sin(x.sum(axis=1, keepdims=True)).astype(np.float32)
    params = tuple(p.astype(np.float32) for p in (rng.standard_normal((4, 8)) * 0.5,
                                                  np.zeros(8), rng.standard_normal((8, 1)) * 0.5,
                                                  np.zeros(1)))
    train = jit(lambda params, x, y: fori_loop(0, 100, lambda i, p: sgd_step(p, x, y), params))
    trained = train(params, x, y)
    step = jit(sgd_step)
    expected = params
    for _ in range(100):
        expected = step(expected, x, y)
    for got, e in zip(trained, expected):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, e, rtol=2e-4, atol=2e-5)
    assert mlp_loss(trained, x, y) < 0.5 * mlp_loss(params, x, y)
    assert len(train.lower(params, x, y).as_text("traced").split("fori_loop")) == 2


def decay_rk4(y0, k, dt=0.01, steps=100):
    """dy/dt = -k y by fourth-order Runge-Kutta in a scan; returns the trajectory."""
    def f(y):
        return -k * y

    def step(y, _):
        k1 = f(y)
        k2 = f(y + 0.5 * dt * k1)
        k3 = f(y + 0.5 * dt * k2)
        k4 = f(y + dt * k3)
        y = y + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        return y, y
    return scan(step, y0, None, length=steps)


def test_scan_integrates_an_ode(jit):
    y0, k = np.array([1.0, 2.0]), np.array([0.5, 3.0])
    final, trajectory = jit(decay_rk4)(y0, k)
    y, expected = y0, []
    for _ in range(100):  # the same RK4 steps in NumPy
        k1 = -k * y
        k2 = -k * (y + 0.005 * k1)
        k3 = -k * (y + 0.005 * k2)
        k4 = -k * (y + 0.01 * k3)
        y = y + 0.01 / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        expected.append(y)
    np.testing.assert_allclose(trajectory, expected, rtol=1e-12)
    times = 0.01 * np.arange(1, 101)  # and RK4's error against the exact solution is tiny
    np.testing.assert_allclose(trajectory, y0 * np.exp(-np.outer(times, k)), rtol=1e-7)
    np.testing.assert_allclose(final, trajectory[-1])
    # d final / d k = -t y0 exp(-k t) at t = 1
    grad = jit(tracejit.grad(lambda k: decay_rk4(y0, k)[0].sum()))(k)
    np.testing.assert_allclose(grad, -y0 * np.exp(-k), rtol=1e-6)


def newton_root(a, x0):
    """The root of x**3 + a x - 1 = 0 by Newton's method until the update is tiny."""
    def body(c):
        x, _ = c
        step = (x ** 3 + a * x - 1) / (3 * x ** 2 + a)
        return x - step, tnp.abs(step)
    return while_loop(lambda c: c[1] > 1e-13, body, (x0, tnp.asarray(1.0)))[0]


def test_while_loop_newton_iteration_and_its_gradient(jit):
    a = np.array(2.0)
    root = jit(newton_root)(a, np.array(1.0))
    assert abs(root ** 3 + a * root - 1) < 1e-12
    # Implicit function theorem: F(x, a) = x^3 + a x - 1 = 0 gives dx/da = -x / (3x^2 + a).
    expected = -root / (3 * root ** 2 + a)
    for grad in (tracejit.grad(newton_root), jit(tracejit.grad(newton_root))):
        np.testing.assert_allclose(grad(a, np.array(1.0)), expected, rtol=1e-8)


# --- errors ------------------------------------------------------------------------------------

def test_carry_type_change_names_the_leaf():
    with pytest.raises(TypeError, match=r"carry\['b'\].*f64\[3\].*went in as f64\[\]"):
        fori_loop(0, 2, lambda i, c: {"a": c["a"], "b": c["b"] * np.ones(3)},
                  {"a": np.zeros(2), "b": np.float64(1.0)})
    with pytest.raises(TypeError, match=r"structure"):
        while_loop(lambda c: c[0] < 1, lambda c: c[0], (0.0, 1.0))
    with pytest.raises(TypeError, match=r"carry.*comes back.*f32\[2\].*f64\[2\]"):
        fori_loop(0, 2, lambda i, c: c.astype(np.float32), np.zeros(2))


def test_cond_branches_must_agree():
    with pytest.raises(TypeError, match=r"output.*f64\[2\] in true_fun but f64\[3\]"):
        cond(True, lambda: np.zeros(2), lambda: np.zeros(3))
    with pytest.raises(TypeError, match="different structures"):
        cond(True, lambda: (1.0, 2.0), lambda: 1.0)
    with pytest.raises(TypeError, match="must be a scalar"):
        cond(np.array([True, False]), lambda: 1.0, lambda: 2.0)


def test_bad_bounds_and_scan_inputs():
    with pytest.raises(TypeError, match="upper must be an integer scalar"):
        fori_loop(0, 2.5, lambda i, c: c, 0.0)
    with pytest.raises(ValueError, match="different leading dimensions"):
        scan(lambda c, x: (c, x), 0.0, (np.zeros(3), np.zeros(4)))
    with pytest.raises(ValueError, match="length="):
        scan(lambda c, x: (c, x), 0.0, None)
    with pytest.raises(TypeError, match="pair"):
        scan(lambda c, x: c, 0.0, np.zeros(3))


def test_value_dependent_python_if_suggests_the_control_flow_functions():
    def f(x):
        if x.sum() > 0:
            return x
        return -x
    with pytest.raises(tracejit.TracerConversionError) as info:
        tracejit.compile(f)(np.ones(2))
    message = str(info.value)
    for name in ("tracejit.cond", "tracejit.while_loop", "tracejit.fori_loop"):
        assert name in message
    assert "test_control_flow.py" in message


def test_python_int_arguments_compare_like_numpy(jit):
    # Two Python ints: NumPy compares them as int64 (its dtype resolver alone would pick the
    # object loop); a while_loop over an int carry needs exactly this.
    f = jit(lambda n: (n < 100, n == 3))
    less, equal = f(7)
    assert bool(less) and not bool(equal) and less.dtype == np.bool_


def test_asarray_inside_a_trace_gives_a_traced_array_a_traced_index_can_read(jit):
    table = np.array([10.0, 20.0, 30.0])
    f = jit(lambda n: fori_loop(0, n, lambda i, s: s + tnp.asarray(table)[i], 0.0))
    assert float(f(3)) == 60.0
