"""The CUDA backend (``device="cuda"``), on Numba's CUDA simulator in CI.

``conftest.py`` sets ``NUMBA_ENABLE_CUDASIM=1`` unless the environment says otherwise; on a
GPU machine run ``NUMBA_ENABLE_CUDASIM=0 python -m pytest tests/test_cuda.py`` for the same
tests on the real device. The simulator runs every CUDA thread as a Python thread, so the
tables here take a representative subset (said per table): every unary and binary function of
the op table on float32 / int64 / bool (the dtype kinds), every reduction on three axis forms,
every shape function, the gradient table's unary and binary functions on float64, the control
flow models. ``test_generated_kernels_compile_to_ptx`` compiles the generated kernels for a real
GPU (sm_90) with NVVM in a separate process, which the simulator cannot check.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp
from oracle import assert_matches_numpy, assert_same
from test_autodiff_table import BINARY_DIFF, GRAD_DOMAIN, UNARY_DIFF, grad_input
from test_control_flow import MODELS
from test_fusion import gelu, softmax
from test_numpy_reductions import REDUCTIONS
from test_numpy_shapes import JOIN_CASES, SHAPE_CASES
from test_numpy_table import BINARY, UNARY, inputs, make

CUDA = "numba_cuda"
DTYPES = [np.float32, np.int64, np.bool_]


def layernorm(x, g, b):
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / tnp.sqrt(var + 1e-5) * g + b


def mlp_loss(params, x, y):
    (w1, b1), (w2, b2) = params
    h = tnp.maximum(x @ w1 + b1, 0.0)
    return ((h @ w2 + b2 - y) ** 2).mean()


# --- the op table ------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name,fn,domain", UNARY, ids=[c[0] for c in UNARY])
def test_unary(name, fn, domain, dtype, rng):
    for shape in [(), (3, 4), "view"]:
        (x,) = inputs(rng, [shape], dtype, [domain])
        assert_matches_numpy(lambda x: fn(x), x, backend=CUDA)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name,fn,da,db", BINARY, ids=[c[0] for c in BINARY])
def test_binary(name, fn, da, db, dtype, rng):
    for shapes in [((3, 4), (4,)), ((3, 1), (1, 4)), ((), ())]:
        a, b = inputs(rng, shapes, dtype, [da, db])
        assert_matches_numpy(lambda a, b: fn(a, b), a, b, backend=CUDA)
    assert_matches_numpy(lambda a: fn(a, 2), make(rng, (5,), dtype, da), backend=CUDA)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name,fn", REDUCTIONS, ids=[r[0] for r in REDUCTIONS])
def test_reduction(name, fn, dtype, rng):
    x = make(rng, (2, 3, 4), dtype, "small")
    for axis in (None, 1, (0, 2)):
        assert_matches_numpy(lambda x: fn(x, axis=axis, keepdims=axis == 1), x, backend=CUDA)
    assert_matches_numpy(lambda x: fn(x), make(rng, (), dtype), backend=CUDA)


def test_full_reductions_over_many_blocks_combine_their_partials(rng):
    """Large enough for the two-pass reduction to use several blocks (and strided threads)."""
    x = rng.standard_normal(1000).astype(np.float32)
    for fn in (tnp.sum, tnp.max, tnp.min, tnp.mean, lambda x: (x * x).sum() / 3.0):
        assert_matches_numpy(fn, x, backend=CUDA)
    x[417] = np.nan
    assert_matches_numpy(tnp.max, x, backend=CUDA)
    assert_matches_numpy(lambda x: x.max(axis=1), x[:999].reshape(27, 37), backend=CUDA)


@pytest.mark.parametrize("name,fn,shape", SHAPE_CASES, ids=[c[0] for c in SHAPE_CASES])
def test_shape_functions(name, fn, shape, rng):
    assert_matches_numpy(fn, make(rng, shape, np.float32), backend=CUDA)


@pytest.mark.parametrize("name,fn,sa,sb", JOIN_CASES, ids=[c[0] for c in JOIN_CASES])
def test_two_array_functions(name, fn, sa, sb, rng):
    assert_matches_numpy(fn, make(rng, sa, np.float32), make(rng, sb, np.float32), backend=CUDA)


def test_indexing_scans_and_matmuls(rng):
    x = make(rng, (4, 5), np.float32)
    i = np.array([3, 0, 3, 1])
    checks = [
        (lambda x: x[1:3, ::-2], (x,)), (lambda x, i: x[i], (x, i)),
        (lambda x, i: x[:, i], (x, i.astype(np.int32))),
        (lambda x, i: x[i, 2:], (x, i)), (lambda x: tnp.cumsum(x, axis=1), (x,)),
        (lambda x: tnp.cumprod(x, axis=0), (x,)), (lambda x: tnp.argmax(x, axis=0), (x,)),
        (lambda x: tnp.argmin(x), (x,)),
        (lambda x: tnp.concatenate([x, x * 2], axis=1), (x,)),
        (lambda x: tnp.arange(5) * x, (x,)),
        (lambda x: x @ x.T, (x,)), (lambda x: tnp.tanh(x.T @ x + 1.0), (x,)),
        (lambda x: tnp.einsum("ij,kj->ik", x, x), (x,)),
        (lambda a: a @ a, (make(rng, (2, 3, 3), np.float32),)),
        (lambda a: a @ a, (make(rng, (3, 3), np.int64),)),
    ]
    for fn, args in checks:
        fn(*args)  # NumPy runs it (a case both sides refuse would prove nothing)
        assert_matches_numpy(fn, *args, backend=CUDA)
    # The gradient of a strided slice scatters into zeros: a `pad` with interior padding.
    sliced = tracejit.grad(lambda x: (x[1:3, ::2] ** 2).sum())
    assert "pad[" in str(tracejit.make_ir(sliced)(x))
    np.testing.assert_array_equal(tracejit.compile(sliced, device="cuda")(x), sliced(x))
    with pytest.raises(IndexError, match="index out of bounds"):
        tracejit.compile(lambda x, i: x[i], device="cuda")(x, np.array([0, 7]))
    grad = tracejit.compile(tracejit.grad(lambda x, i: (x[i] ** 2).sum()), device="cuda")
    expected = np.zeros_like(x)
    np.add.at(expected, i, 2 * x[i])
    np.testing.assert_allclose(grad(x, i), expected, rtol=1e-6)


def test_sorting(rng):
    """argsort's merge sort (one thread per row): ties, NaNs, both zeros, odd and power-of-two
    row lengths, every dtype kind; sort's gradient is a scatter of the permutation."""
    from test_numpy_sorting import sorts, tied_input
    for dtype, shape in [(np.float32, (3, 7)), (np.float64, (2, 8)), (np.int64, (4, 5)),
                         (np.bool_, (3, 6)), (np.float32, "view"), (np.float32, (2, 0))]:
        assert_matches_numpy(sorts, tied_input(rng, shape, dtype), backend=CUDA)
    x = rng.normal(size=(3, 5))
    assert_matches_numpy(lambda x: (tnp.partition(x, 2)[:, 2], tnp.sort(x, axis=None)), x,
                         backend=CUDA)
    loss = tracejit.grad(lambda x: (tnp.sort(x, axis=0) ** 2 * tnp.arange(3.0)[:, None]).sum())
    np.testing.assert_allclose(tracejit.compile(loss, device="cuda")(x), loss(x), rtol=1e-12)


def test_shape_and_selection_functions(rng):
    """The shape, difference and selection functions of tracejit.numpy (rolls, rotations,
    pads, takes, sized nonzero and unique, diff, gradient, cross, select): the compiled
    backends' representative program, on the device."""
    from test_numpy_shapes_more import _compiled_program
    for dtype in (np.float32, np.bool_):
        assert_matches_numpy(_compiled_program, make(rng, (3, 4), dtype, "small"), backend=CUDA)


# --- fused programs: values and launches -------------------------------------------------------
def launches(compiled, *args):
    """Kernel launches of one call (the driver counts them)."""
    run = compiled._entries[next(iter(compiled._entries))].run
    before = run.launches.count
    compiled(*args)
    return run.launches.count - before


@pytest.fixture(scope="module")
def programs():
    return {name: tracejit.compile(fn, device="cuda") for name, fn in
            [("gelu", gelu), ("softmax", softmax), ("layernorm", layernorm),
             ("mlp", tracejit.value_and_grad(mlp_loss))]}


def test_fused_programs_match_numpy_in_one_launch_each(programs, rng):
    x = rng.standard_normal((6, 40)).astype(np.float32)
    g, b = rng.standard_normal(40).astype(np.float32), rng.standard_normal(40).astype(np.float32)
    for name, args in [("gelu", (x,)), ("softmax", (x,)), ("layernorm", (x, g, b))]:
        fn = {"gelu": gelu, "softmax": softmax, "layernorm": layernorm}[name]
        assert_same(programs[name](*args), fn(*args))
        assert launches(programs[name], *args) == 1, name
        lowered = programs[name].lower(*args)
        assert len(lowered.kernels()) == 1
        assert "cuda.shared.array" in lowered.kernel_source() or name == "gelu"


def test_matmul_runs_its_elementwise_epilogue_in_the_same_launch(rng):
    x = rng.standard_normal((9, 5)).astype(np.float32)
    w = rng.standard_normal((5, 7)).astype(np.float32)
    b = rng.standard_normal(7).astype(np.float32)
    dense = tracejit.compile(lambda x, w, b: tnp.tanh(x @ w + b), device="cuda")
    assert_same(dense(x, w, b), np.tanh(x @ w + b))
    assert launches(dense, x, w, b) == 1
    assert "_k0(...)  # elementwise kernel as the epilogue of a tiled matmul" in \
        dense.lower(x, w, b).kernel_source()


def test_mlp_value_and_gradient_match_the_cpu(programs, rng):
    params = [(rng.standard_normal((4, 8)), np.zeros(8)), (rng.standard_normal((8, 2)),
                                                         np.zeros(2))]
    x, y = rng.standard_normal((5, 4)), rng.standard_normal((5, 2))
    got = programs["mlp"](params, x, y)
    expected = tracejit.value_and_grad(mlp_loss)(params, x, y)
    for g, e in zip(tracejit.pytree.flatten(got)[0], tracejit.pytree.flatten(expected)[0]):
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-12)


# --- gradients ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name,fn,domain", UNARY_DIFF, ids=[c[0] for c in UNARY_DIFF])
def test_unary_gradients_equal_the_interpreted_ones(name, fn, domain, rng):
    (dom,) = GRAD_DOMAIN.get(name, (domain,))
    x = grad_input(rng, (2, 3), dom)
    loss = lambda x: fn(x).sum()  # noqa: E731
    got = tracejit.compile(tracejit.grad(loss), device="cuda")(x)
    np.testing.assert_allclose(got, tracejit.grad(loss)(x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name,fn,da,db", BINARY_DIFF, ids=[c[0] for c in BINARY_DIFF])
def test_binary_gradients_equal_the_interpreted_ones(name, fn, da, db, rng):
    da, db = GRAD_DOMAIN.get(name, (da, db))
    a, b = grad_input(rng, (3, 4), da), grad_input(rng, (4,), db)
    loss = lambda a, b: fn(a, b).sum()  # noqa: E731
    got = tracejit.compile(tracejit.grad(loss, argnums=(0, 1)), device="cuda")(a, b)
    for g, e in zip(got, tracejit.grad(loss, argnums=(0, 1))(a, b)):
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12)


def test_check_grads_through_the_cuda_backend(rng):
    fn = tracejit.compile(lambda x: (softmax(x) * tnp.arange(4.0)).sum(), device="cuda")
    tracejit.check_grads(fn, (rng.standard_normal((3, 4)),), order=1)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_control_flow_and_its_gradients(model, rng):
    x, w = rng.standard_normal(3), rng.standard_normal(3)
    compiled = tracejit.compile(model, device="cuda")
    np.testing.assert_allclose(compiled(x, w), model(x, w), rtol=1e-12)
    expected = tracejit.grad(model, argnums=(0, 1))(x, w)
    got = tracejit.compile(tracejit.grad(model, argnums=(0, 1)), device="cuda")(x, w)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-12)


# --- device arrays -----------------------------------------------------------------------------
def test_device_arrays_in_and_out(rng):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    on_device = tracejit.device_put(x)
    assert tracejit.device_put(on_device) is on_device
    f = tracejit.compile(lambda x, y: (tnp.exp(x) * y, x.sum()), device="cuda")
    a, s = f(on_device, 2.0)
    assert isinstance(a, np.ndarray) and isinstance(s, np.ndarray) and s.shape == ()
    np.testing.assert_allclose(a, np.exp(x) * 2, rtol=1e-6)
    g = tracejit.compile(lambda x, y: (tnp.exp(x) * y, x.sum()), device="cuda",
                         return_device_arrays=True)
    a_dev, s_dev = g(on_device, 2.0)
    assert not isinstance(a_dev, np.ndarray) and hasattr(a_dev, "copy_to_host")
    assert a_dev.shape == (3, 4) and s_dev.shape == ()
    np.testing.assert_allclose(a_dev.copy_to_host(), a, rtol=0)
    again, _ = g(a_dev, 0.5)  # a device result feeds the next call without a copy back
    np.testing.assert_allclose(again.copy_to_host(), np.exp(a) * 0.5, rtol=1e-5)
    assert_same(f(on_device[1:], 1.0), (np.exp(x[1:]), np.float32(x[1:].sum())))


def test_outputs_never_alias_inputs():
    x = np.arange(6.0).reshape(2, 3)
    f = tracejit.compile(lambda x: (x, x.reshape(3, 2), x), device="cuda",
                         return_device_arrays=True)
    dev = tracejit.device_put(x)
    a, b, c = f(dev)
    a[0:1] = np.full((1, 3), -1.0)  # writing one result leaves the input and the others alone
    np.testing.assert_array_equal(dev.copy_to_host(), x)
    np.testing.assert_array_equal(c.copy_to_host(), x)
    np.testing.assert_array_equal(b.copy_to_host(), x.reshape(3, 2))


# --- errors ------------------------------------------------------------------------------------
def test_device_arrays_given_to_a_cpu_function_are_refused_by_name():
    dev = tracejit.device_put(np.ones(3))
    with pytest.raises(tracejit.DeviceError, match=r"(?s)argument args\[0\] is a CUDA device array.*"
                                                   r"test_cuda.py"):
        tracejit.compile(lambda x: x + 1)(dev)


def test_device_and_backend_must_agree():
    with pytest.raises(ValueError, match="disagree"):
        tracejit.compile(lambda x: x, device="cuda", backend="numba_cpu")
    with pytest.raises(ValueError, match="return_device_arrays=True needs device='cuda'"):
        tracejit.compile(lambda x: x, return_device_arrays=True)
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        tracejit.compile(lambda x: x, device="tpu")


def run_python(code: str, **env) -> subprocess.CompletedProcess:
    environment = {**os.environ, **env}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=environment, timeout=300)


def test_without_a_gpu_or_the_simulator_the_error_says_how_to_enable_it():
    result = run_python("""
        import numpy as np, tracejit
        from numba import cuda
        if cuda.is_available():
            print("HAS-GPU")
        else:
            try:
                tracejit.compile(lambda x: x + 1, device="cuda")(np.ones(3))
            except tracejit.DeviceError as e:
                print(e)
    """, NUMBA_ENABLE_CUDASIM="0")
    assert result.returncode == 0, result.stderr
    if "HAS-GPU" not in result.stdout:
        assert "no CUDA GPU is available" in result.stdout
        assert "NUMBA_ENABLE_CUDASIM=1" in result.stdout


def test_generated_kernels_compile_to_ptx():
    """Numba's own CUDA compiler (NVVM, no GPU needed) types and lowers every kernel the
    backend generates for these programs, and every fixed kernel: the simulator runs Python,
    so only this shows the generated code is valid for a real GPU."""
    result = run_python("""
        import numpy as np, tracejit, tracejit.numpy as tnp
        from numba import cuda
        from tracejit.backends import numba_cuda, cuda_runtime
        from tracejit.passes.pipeline import run_pipeline
        import test_cuda as t

        rng = np.random.default_rng(0)
        x32 = rng.standard_normal((4, 6)).astype(np.float32)
        x64, i64 = x32.astype(np.float64), np.arange(24).reshape(4, 6)
        w = rng.standard_normal((6, 3)).astype(np.float32)
        b = rng.standard_normal(3).astype(np.float32)
        params = [(np.ones((6, 8)), np.zeros(8)), (np.ones((8, 2)), np.zeros(2))]
        programs = [(t.gelu, (x32,)), (t.softmax, (x64,)), (t.layernorm, (x32, w[:, 0], w[:, 1])),
                    (lambda x, w, b: tnp.tanh(x @ w + b), (x32, w, b)),
                    (tracejit.grad(t.mlp_loss), (params, x64, np.ones((4, 2)))),
                    (lambda x: (x.sum(), x.max(), x.min(axis=0), x.prod(axis=1)), (x32,)),
                    (lambda x: (x.sum(), x.max(axis=1), x // 3, x % 4, abs(x), -x), (i64,)),
                    (lambda x: (tnp.round(x), tnp.sign(x), tnp.isnan(x), tnp.isfinite(x),
                                tnp.floor(x), tnp.arctan2(x, 2.0), tnp.log1p(abs(x)),
                                x ** 3.5, tnp.minimum(x, 0.5), (x > 0).any()), (x64,)),
                    (lambda x: (x > 0).all(axis=0), (x32,))]
        count = 0
        for fn, args in programs:
            graph = tracejit.make_ir(fn)(*args)
            stages, _ = run_pipeline(graph, fusion=True)
            count += len(numba_cuda.compile_ptx(list(stages.values())[-1]))
        for name, specs in numba_cuda.runtime_signatures():
            types = tuple(numba_cuda._numba_type(s) if isinstance(s, tuple) else s for s in specs)
            cuda.compile_ptx(cuda_runtime.python_function(name), types, cc=(9, 0))
            count += 1
        print("PTX", count)
    """, NUMBA_ENABLE_CUDASIM="0", PYTHONPATH=os.path.dirname(__file__))
    if "DynamicLibNotFoundError" in result.stderr or "NvvmSupportError" in result.stderr:
        pytest.fail("NVVM is not installed: the test extras install nvidia-cuda-nvcc-cu12 and "
                    "nvidia-cuda-nvrtc-cu12 for this check\n" + result.stderr[-2000:])
    assert result.returncode == 0, result.stderr[-4000:]
    assert int(result.stdout.split("PTX")[1]) >= 25


def test_float16_runs_on_the_host_and_says_so():
    f = tracejit.compile(lambda x: x * 2, device="cuda")
    x = np.arange(3, dtype=np.float16)
    assert_same(f(x), x * 2)
    assert "float16 is not supported by this backend yet" in f.lower(x).kernel_source()
