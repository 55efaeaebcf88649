"""The numba_cpu backend's loops in the form LLVM vectorises, and what they compute.

A loop that starts at a block or chunk offset indexes with an unsigned variable: Numba checks
every signed index for wrap-around (``a[-1]``), LLVM removes that check only where it proves the
index non-negative, and a loop that keeps it does not vectorise (a float32 sum ran 9x slower;
``benchmarks/guard.py`` times it). Values a later stage of a row re-reads (softmax's exp) are
kept in the row of the output that overwrites them, where one fits. Sizes around the block
(1024 elements) and chunk (65536) boundaries, against NumPy.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp
from oracle import assert_matches_numpy, assert_same

SIZES = [0, 1, 1023, 1024, 1025, 4097]
WIDTHS = [1, 1023, 1024, 1025, 4097]
DTYPES = [np.float32, np.float64, np.int32, np.int64]
# A `for` over a range starting anywhere but 0 with a signed variable: the loop form that
# keeps Numba's wrap-around check and does not vectorise.
_SIGNED_OFFSET_LOOP = re.compile(r"for i\d+ in range\((?!np\.uint64\()[^,)]+, ")


def compiled(fn, parallel=False):
    with tracejit.config.override(parallel_threshold=1 if parallel else 0):
        return tracejit.compile(fn, backend="numba_cpu")


def data(rng, shape, dtype):
    if np.dtype(dtype).kind == "f":
        return (rng.normal(size=shape) + 0.5).astype(dtype)
    return rng.integers(-50, 50, size=shape).astype(dtype)


def assert_close(f, fn, *args):
    """``f(*args)`` (compiled) against NumPy's ``fn(*args)``: same types, values within a few
    roundings (of float32 when any input is), absolute on the scale of the result (layernorm's
    x - mean cancels)."""
    single = any(np.asarray(a).dtype == np.float32 for a in args)
    got, want = f(*args), fn(*args)
    got, want = (got if isinstance(got, tuple) else (got,)), (want if isinstance(want, tuple)
                                                               else (want,))
    assert len(got) == len(want)
    for a, e in zip(got, want):
        e = np.asarray(e)
        assert (a.shape, a.dtype) == (e.shape, e.dtype)
        rtol = 1e-5 if single else 1e-12
        np.testing.assert_allclose(a, e, rtol=rtol, atol=rtol * max(1.0, np.abs(e).max()))


def softmax(x):
    e = tnp.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def layernorm(x):
    mu = x.mean(axis=1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=1, keepdims=True)
    return (x - mu) / tnp.sqrt(var + 1e-5)


FULL_REDUCTIONS = {
    "sum": lambda x: x.sum(),
    "sum of squares": lambda x: (x * x).sum(),
    "max and min": lambda x: (x.max(), x.min()),
    "mean": lambda x: x.mean(),
}
ROW_KERNELS = {
    "row sum": lambda x: x.sum(axis=1),
    "row max": lambda x: x.max(axis=1, keepdims=True),
    "softmax": softmax,
    "layernorm": layernorm,
}


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", FULL_REDUCTIONS)
def test_full_reductions_at_block_boundaries(rng, name, dtype):
    fn = compiled(FULL_REDUCTIONS[name])
    for n in SIZES:
        if n == 0 and name == "max and min":
            continue  # (NumPy refuses; tested with the other reductions of empty arrays)
        x = data(rng, n, dtype)
        assert_matches_numpy(fn, x, backend="numba_cpu", rtol=1e-5 if dtype == np.float32
                             else None)


def test_reductions_of_non_contiguous_and_empty_inputs(rng):
    x = data(rng, 8195, np.float32)
    for view in (x[::2], x[1::3], x[::-1]):  # 4098, 2732 and 8195 elements, strided
        assert_matches_numpy(lambda v: ((v * v).sum(), v.max(), v.mean()), view,
                             backend="numba_cpu", rtol=1e-5)
    empty = np.zeros(0, np.float32)
    assert_matches_numpy(lambda v: (v.sum(), (v * 2).sum()), empty, backend="numba_cpu")
    assert_matches_numpy(lambda v: v.max(), empty, backend="numba_cpu")  # both refuse


@pytest.mark.parametrize("parallel", [False, True], ids=["serial", "parallel"])
def test_chunked_full_reductions_at_chunk_and_block_boundaries(rng, parallel):
    f = compiled(lambda x, y: ((x * x).sum(), x.max(), y.sum(), y.astype(np.int64).sum()),
                 parallel)
    for n in (65535, 65536, 65537, 2 * 65536 + 1025):
        x, y = data(rng, n, np.float32), data(rng, n, np.float64)
        assert_same(f(x, y), ((x * x).sum(), x.max(), y.sum(), y.astype(np.int64).sum()),
                    rtol=1e-5)


@pytest.mark.parametrize("parallel", [False, True], ids=["serial", "parallel"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", ROW_KERNELS)
def test_row_kernels_at_block_boundaries(rng, name, dtype, parallel):
    fn = ROW_KERNELS[name]
    f = compiled(fn, parallel)
    for width in WIDTHS:
        assert_close(f, fn, data(rng, (3, width), dtype))


def test_row_kernels_of_integers_and_non_contiguous_rows(rng):
    ints = data(rng, (3, 1025), np.int32)
    assert_matches_numpy(lambda x: (x.sum(axis=1), x.max(axis=1), x.mean(axis=1)), ints,
                         backend="numba_cpu")
    x = data(rng, (4, 2 * 1025 + 1), np.float32)
    for fn in ROW_KERNELS.values():
        f = compiled(fn)
        for view in (x[:, ::2], x[::-1, 1:], x.T[:1025].T):
            assert_close(f, fn, view)
    assert_close(compiled(lambda x: softmax(x.T)), lambda x: softmax(x.T), x[:, :1025])


def test_values_kept_between_stages_in_the_output_or_a_row_buffer(rng):
    x = data(rng, (3, 1025), np.float32)

    def reads_input_again(x):  # the last stage reads x as well as the kept exp
        e = tnp.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True) * x

    def exp_is_an_output(x):  # exp itself is an output, written in its own stage
        e = tnp.exp(x - x.max(axis=1, keepdims=True))
        return e, e / e.sum(axis=1, keepdims=True)

    def float64_result(x):  # no output of exp's dtype: a row buffer
        e = tnp.exp(x - x.max(axis=1, keepdims=True))
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float64)

    for fn in (reads_input_again, exp_is_an_output, float64_result):
        for parallel in (False, True):
            assert_close(compiled(fn, parallel), fn, x)
    source = compiled(float64_result).lower(x).kernel_source()
    assert "buf0 = np.empty(n1, np.float32)" in source


def test_loop_bodies_inside_a_fori_loop_do_not_alias_their_input(rng):
    # The kernel's output may hold the exp between stages only if it is not the input's memory.
    def step(i, x):
        e = tnp.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True) + x * 0.5

    x = data(rng, (3, 1025), np.float32)
    expected = x
    for i in range(3):
        expected = step(i, expected)
    f = tracejit.compile(lambda x: tracejit.fori_loop(0, 3, step, x), backend="numba_cpu")
    assert_close(f, lambda x: expected, x)


# --- structural: the loop forms themselves ---------------------------------------------------

def test_float32_sums_loop_over_blocks_with_unsigned_indices():
    x = np.ones(4097, np.float32)
    source = compiled(lambda x: (x * x).sum()).lower(x).kernel_source()
    assert "    for b0 in range(0, n0, 1024):\n" \
           "        bacc0 = np.float32(0)\n" \
           "        for i0 in range(np.uint64(b0), np.uint64(min(n0, b0 + 1024))):\n" \
           "            v0 = in0[i0,]\n" in source
    assert "acc0 = np.float64(acc0 + bacc0)" in source  # float32 blocks folded into float64


def test_softmax_keeps_its_exp_in_the_output_row():
    x = np.ones((3, 1025), np.float32)
    source = compiled(softmax).lower(x).kernel_source()
    assert "for i1 in range(np.uint64(b1), np.uint64(min(n1, b1 + 1024))):" in source
    assert "out0[i0, i1] = v2\n" in source and "v0 = out0[i0, i1]\n" in source
    assert "np.empty(n1" not in source


@pytest.mark.parametrize("parallel", [False, True], ids=["serial", "parallel"])
def test_no_loop_starts_at_an_offset_with_a_signed_index(parallel):
    x, rows = np.ones(70_000, np.float32), np.ones((3, 1025), np.float32)
    cases = [(lambda x: ((x * x).sum(), x.max(), x.astype(np.float64).sum()), x),
             (lambda r: (r * r).sum(axis=(0, 1)), rows),
             (lambda r: (r.sum(axis=1), r.max(axis=1)), rows),
             (softmax, rows), (layernorm, rows)]
    for fn, arg in cases:
        source = compiled(fn, parallel).lower(arg).kernel_source()
        kernels = source.split("def kernel")[1:]
        assert kernels and not any(_SIGNED_OFFSET_LOOP.search(k) for k in kernels), source
    # (the pattern finds the old form)
    assert _SIGNED_OFFSET_LOOP.search("for i0 in range(b0, min(n0, b0 + 1024)):")
    assert _SIGNED_OFFSET_LOOP.search("for i0 in range(chunk * 65536, end0):")
    assert not _SIGNED_OFFSET_LOOP.search("for i0 in range(np.uint64(b0), np.uint64(n0)):")
