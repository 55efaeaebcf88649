"""The numba_cpu backend specifically: generated source, parallel loops, views, fallbacks."""
from __future__ import annotations

import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp
from oracle import assert_same


def numba_jit(fn, **kw):
    return tracejit.compile(fn, backend="numba_cpu", **kw)


def test_golden_generated_source():
    lowered = numba_jit(lambda x, b: (x * b).sum(axis=1)).lower(np.ones((4, 3), np.float32),
                                                             np.ones(3, np.float32))
    # (kernel_source() annotates each kernel with the user's lines that made it)
    assert lowered.kernel_source().replace(__file__, "test.py") == '''\
def entry(a0, a1, s, f):
    # this signature: s = [4], f = []
    t1 = np.empty((s[0],), np.float32)
    _k0(a0, a1, t1)  # test.py:17
    return (t1,)

# _k0: from test.py:17
def kernel(in0, in1, out0):
    n0 = in0.shape[0]
    n1 = in0.shape[1]
    for i0 in range(n0):
        acc0 = np.float64(0)
        for b1 in range(0, n1, 1024):
            bacc0 = np.float32(0)
            for i1 in range(np.uint64(b1), np.uint64(min(n1, b1 + 1024))):
                v0 = in0[i0, i1]
                v1 = in1[i1,]
                v2 = np.float32((v0 * v1))
                bacc0 = np.float32(bacc0 + v2)
            acc0 = np.float64(acc0 + bacc0)
        red0 = np.float32(acc0)
        out0[i0,] = red0
'''


def test_golden_entry_with_views_and_a_matmul():
    lowered = numba_jit(lambda x, w: tnp.tanh(x.T @ w)[::-1]).lower(np.ones((3, 2)),
                                                                   np.ones((3, 4)))
    entry = lowered.kernel_source().replace(__file__, "test.py").split("\n\n")[0]
    assert entry == '''\
def entry(a0, a1, w0, s, f):
    # this signature: s = [8, 2, 4, 2, 4], f = []
    t1 = np.transpose(a0, (1, 0))
    t2 = w0[:s[0]].reshape((s[1], s[2]))
    _blas.gemm_f64(_blas.readable(t1), _blas.readable(a1), t2)
    t3 = np.empty((s[3], s[4]), np.float64)
    _k0(t2, t3)  # test.py:47
    t4 = t3[::-1, :,]
    return (t4.copy(),)'''


def test_parallel_loops_above_the_threshold(rng):
    x = rng.normal(size=(64, 33)).astype(np.float32)
    with tracejit.config.override(parallel_threshold=1):
        f = numba_jit(lambda x: (tnp.exp(x) * 2, (x * x).sum(axis=1), tnp.tanh(x).sum()))
        assert "prange" in f.lower(x).kernel_source()
        assert_same(f(x), (np.exp(x) * 2, (x * x).sum(axis=1), np.tanh(x).sum()), rtol=1e-5)


def test_outputs_are_fresh_even_when_they_are_views():
    x = np.arange(6.0).reshape(2, 3)
    out = numba_jit(lambda x: (x.T, x[:, ::-1], x))(x)
    for o in out:
        assert o.flags.writeable and not np.shares_memory(o, x)
    np.testing.assert_array_equal(out[0], x.T)


def test_float16_graphs_run_on_the_interpreter():
    f = numba_jit(lambda x: x * 2 + 1)
    x = np.ones(3, np.float16)
    assert_same(f(x), x * 2 + 1)
    assert "float16 is not supported by Numba" in f.lower(x).kernel_source()


def test_out_of_range_gather_raises_with_the_users_line():
    f = numba_jit(lambda x, i: x[i])  # MARK-numba-gather
    np.testing.assert_array_equal(f(np.arange(4.0), np.array([3, -1])), [3.0, 3.0])
    with pytest.raises(IndexError, match=r"`gather` traced at .*test_numba_cpu.py:\d+"):
        f(np.arange(4.0), np.array([7]))


def test_one_entry_per_signature_and_kernels_shared_by_source():
    from tracejit.backends import numba_cpu
    f = numba_jit(lambda x: tnp.sin(x) * 3.5)
    f(np.ones(5))
    before = len(numba_cpu._kernel_cache)
    f(np.ones(7))  # new signature: a new entry, the same kernel source
    g = numba_jit(lambda y: tnp.sin(y) * 3.5)
    g(np.ones(9))
    assert len(numba_cpu._kernel_cache) == before
    h = numba_jit(lambda y: tnp.sin(y) * -0.25)  # another constant: a parameter, same kernel
    assert_same(h(np.arange(4.0)), np.sin(np.arange(4.0)) * -0.25)
    assert len(numba_cpu._kernel_cache) == before
    source = h.lower(np.ones(4)).kernel_source()
    assert "_k0(a0, t1, np.float64(f[0]))" in source and "f = [-0.25]" in source


def test_full_reductions_run_in_parallel_chunks(rng):
    x = rng.normal(size=150_001).astype(np.float32)  # three chunks, the last one short
    y = rng.normal(size=(70_000, 3))
    with tracejit.config.override(parallel_threshold=1):
        f = numba_jit(lambda x: ((x * x).sum(), tnp.max(x), x.astype(np.int64).sum()))
        assert "for chunk in prange(nchunks)" in f.lower(x).kernel_source()
        assert_same(f(x), ((x * x).sum(), x.max(), x.astype(np.int64).sum()), rtol=1e-5)
        g = numba_jit(lambda y: (tnp.exp(y), (y * 2).sum()))  # a stored output as well
        assert_same(g(y), (np.exp(y), (y * 2).sum()), rtol=1e-12)


@pytest.mark.parametrize("parallel", [False, True])
def test_float32_sums_are_blocked_and_as_accurate_as_numpys_pairwise_sum(rng, parallel):
    # An offset makes a plain float32 running sum lose about 3 digits here (relative error
    # ~1e-3); NumPy's pairwise sum stays within a few float32 roundings, and so must ours
    # (float32 blocks of 1024, folded in float64).
    x = (rng.random(200_003) + 1000.0).astype(np.float32)
    rows = x[:199_998].reshape(6, 33_333)
    with tracejit.config.override(parallel_threshold=1 if parallel else 0):
        f = numba_jit(lambda x, r: (x.sum(), r.sum(axis=1), (r * 1.0).mean()))
        assert "bacc0 = np.float32(bacc0 + " in f.lower(x, rows).kernel_source()
        total, per_row, mean = f(x, rows)
    for got, exact, numpy in [(total, x.astype(np.float64).sum(), x.sum()),
                              (per_row, rows.astype(np.float64).sum(axis=1), rows.sum(axis=1)),
                              (mean, rows.astype(np.float64).mean(), rows.mean())]:
        assert got.dtype == np.float32
        ours, theirs = np.abs(got - exact) / exact, np.abs(numpy - exact) / exact
        assert np.all(ours <= np.maximum(2 * theirs, 4 * 2.0 ** -24)), (ours, theirs)


@pytest.mark.parametrize("parallel", [False, True])
def test_float_max_min_propagate_nan_like_numpy(rng, parallel):
    x = rng.normal(size=(6, 70_001)).astype(np.float32)
    x[1, 5] = np.nan
    x[3, 70_000] = np.nan  # the last element of a row (and of the last chunk)
    x[4] = -np.inf  # a row with no finite value
    with tracejit.config.override(parallel_threshold=1 if parallel else 0):
        f = numba_jit(lambda x: (x.max(axis=1), x.min(axis=1), x[4].max(), x[0].min(),
                                 x.max()))
        assert "if v0 > acc0 else acc0" in f.lower(x).kernel_source()
        assert_same(f(x), (x.max(axis=1), x.min(axis=1), x[4].max(), x[0].min(), x.max()))


def test_large_outputs_are_allocated_by_numpy_and_fresh_per_call(rng):
    x = rng.normal(size=1 << 20).astype(np.float32)  # a 4 MiB result: passed in, huge pages
    f = numba_jit(lambda x: (tnp.exp(x), x[:10] * 2))
    assert "def entry(a0, o0, s, f):" in f.lower(x).kernel_source()
    first, small = f(x)
    second, _ = f(x)
    assert first is not second
    assert_same(first, np.exp(x))
    assert_same(small, x[:10] * 2)


def test_reductions_over_leading_axes_loop_over_rows_outside(rng):
    # A bias gradient: the sum over the batch. Reduced axes outside, the contiguous kept axis
    # inside, accumulator arrays: contiguous reads (the other order read columns).
    x = rng.normal(size=(7, 5, 3)).astype(np.float32)
    x[2, 1, 0] = np.nan
    with tracejit.config.override(parallel_threshold=0):
        f = numba_jit(lambda x: (x.sum(axis=0), x.max(axis=(0, 1)),
                                 (x * 2).mean(axis=0, keepdims=True),
                                 x.min(axis=0) - x.sum(axis=0), tnp.tanh(x)))
        source = f.lower(x).kernel_source()
        assert "acc0 = np.full((n1, n2,), np.float64(0), np.float64)" in source
        assert "acc0[i1, i2] = np.float64(acc0[i1, i2] + v0)" in source
        assert_same(f(x), (x.sum(axis=0), x.max(axis=(0, 1)), (x * 2).mean(axis=0, keepdims=True),
                           x.min(axis=0) - x.sum(axis=0), np.tanh(x)))


def test_profile_times_every_kernel_of_the_calls_inside_it(rng):
    f = numba_jit(lambda x, w: tnp.tanh(x @ w).sum(axis=0))
    x, w = rng.normal(size=(6, 4)), rng.normal(size=(4, 3))
    expected = f(x, w)
    with tracejit.profile(show=False) as p:
        for _ in range(3):
            assert_same(f(x, w), expected)
    rows = {what: calls for (_, what), (calls, _) in p.rows.items()}
    assert rows.pop("(first profiled call: helpers compile)") == 1
    assert rows.pop("gemm_f64") == 2
    ((what, calls),) = rows.items()
    assert what.startswith("_k0 reduce (6, 3) ") and calls == 2
    assert "gemm_f64" in p.table() and "share" in p.table()


def test_per_row_operands_are_loaded_once_per_row(rng):
    # b[i, 0] does not change along the innermost loop: loaded in the row's loop, not per element
    a, b, c = rng.normal(size=(5, 6)), rng.normal(size=(5, 1)), rng.normal(size=(1, 1))
    f = numba_jit(lambda a, b, c: a * b + c)
    source = f.lower(a, b, c).kernel_source()
    assert "    v3 = in2[0, 0]\n    for i0 in range(n0):\n        v1 = in1[i0, 0]\n" \
           "        for i1 in range(n1):" in source
    assert_same(f(a, b, c), a * b + c)


def _dense(x, w):
    return tnp.tanh(x @ w)


PRODUCTS = {
    # a dense layer on (batch, seq, d) activations, its value and gradients
    "dense": (tracejit.value_and_grad(lambda x, w: (_dense(x, w) ** 2).sum(), argnums=(0, 1)),
              lambda r, dt: (r.normal(size=(2, 3, 4)).astype(dt), r.normal(size=(4, 5)).astype(dt))),
    # attention scores and their gradient: batched products of transposed stacks
    "heads": (tracejit.value_and_grad(
        lambda q, k: (tnp.tanh(q @ tnp.swapaxes(k, -1, -2)) * q.sum()).sum(), argnums=(0, 1)),
              lambda r, dt: (r.normal(size=(2, 3, 4, 5)).astype(dt),
                             r.normal(size=(2, 3, 6, 5)).astype(dt))),
    # size-1 rows and columns (BLAS's leading dimensions at their edges)
    "ones": (tracejit.value_and_grad(lambda x, w: ((x @ w) ** 2).sum(), argnums=(0, 1)),
             lambda r, dt: (r.normal(size=(1, 1, 3)).astype(dt), r.normal(size=(3, 1)).astype(dt))),
}


@pytest.mark.parametrize("name", sorted(PRODUCTS))
def test_products_read_their_operands_in_place(name, rng):
    """Stacked and transposed operands of matrix products reach BLAS as views: no broadcast
    copy of a weight per batch entry, no transposed copy (gradients), values as the
    interpreter's."""
    fn, make = PRODUCTS[name]
    for dt in (np.float32, np.float64):
        args = make(rng, dt)
        f = tracejit.compile(fn, tiered=False)
        value, grads = f(*args)
        expected_value, expected_grads = tracejit.compile(fn, backend="interpreter")(*args)
        tol = 1e-5 if dt == np.float32 else 1e-12
        np.testing.assert_allclose(value, expected_value, rtol=tol, atol=tol)
        for g, e in zip(grads, expected_grads):
            assert g.dtype == e.dtype == dt and g.shape == e.shape
            np.testing.assert_allclose(g, e, rtol=tol, atol=tol)
        entry = f.lower(*args).kernel_source().split("\n\n")[0]
        assert "broadcast_to" not in entry and ".copy()" not in entry
