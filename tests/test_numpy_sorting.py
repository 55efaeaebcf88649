"""sort, argsort, partition, argpartition against NumPy, and their errors.

NumPy is the oracle for ``sort`` and for ``argsort(kind="stable")`` (tracejit's order is always
the stable one; other kinds are compared on data without ties, where every kind agrees).
``partition``/``argpartition`` may return any valid partition, so they are checked against the
contract: the same values, each kth element where a sort puts it, the smaller ones before it.
Inputs have ties, NaNs (and infinities, and -0.0 next to 0.0) for floats. numba_cpu compiles
one function with every form per dtype and rank (shapes of the same rank share the compiled
code); gradients are in ``test_autodiff_table.py`` and the CUDA cases in ``test_cuda.py``.
"""
from __future__ import annotations

import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp
from oracle import assert_matches_numpy, assert_same
from test_numpy_table import make

SHAPES = [(), (0,), (1,), (7,), (3, 5), (2, 0), (0, 3), (2, 3, 4), "view"]
# numba_cpu compiles per rank, dtype and layout, and an axis of length 0 or 1 needs no sort (a
# different graph): one rank, with a view and an empty array on float32 only.
NUMBA_SHAPES = {np.dtype(np.float32): [(3, 5), "view", (2, 0)]}


def tied_input(rng, shape, dtype):
    """Values with ties; floats also get NaNs, infinities and both zeros."""
    if shape == "view":
        return tied_input(rng, (4, 10), dtype)[::2, ::-2]
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        return make(rng, shape, dtype, "small")
    x = np.round(rng.uniform(-2, 2, shape), 0).astype(dtype)
    flat = x.reshape(-1)
    specials = [np.nan, -0.0, np.inf, np.nan, -np.inf, 0.0]
    picks = rng.permutation(flat.size)[:min(flat.size, len(specials))]
    flat[picks] = specials[:len(picks)]
    return x


def sorts(x):
    """Every sorting form along every axis kind (one compiled function per dtype and rank)."""
    out = [tnp.sort(x, axis=None), np.argsort(x, axis=None, kind="stable")]
    if x.ndim:
        out += [np.sort(x), tnp.sort(x, axis=0, kind="quicksort"), tnp.argsort(x, kind="stable"),
                np.argsort(x, axis=0, stable=True), tnp.sort(x, axis=-1, stable=False)]
    else:
        out += [tnp.argsort(x)]  # (NumPy takes a 0-d array as 1-d here; sort refuses it)
    return tuple(out)


def test_sorts_match_numpy(backend, dtype, rng):
    shapes = NUMBA_SHAPES.get(np.dtype(dtype), [(3, 5)]) if backend == "numba_cpu" else SHAPES
    for shape in shapes:
        x = tied_input(rng, shape, dtype)
        assert_matches_numpy(sorts, x, backend=backend)


def test_sort_other_dtypes_and_inputs(rng):
    for dtype in (np.int8, np.uint8, np.int16, np.uint32, np.uint64, np.float16):
        assert_matches_numpy(sorts, tied_input(rng, (3, 5), dtype))
    x = tied_input(rng, (2, 3, 4), np.float64)
    assert_matches_numpy(lambda x: (tnp.sort(x, axis=1), tnp.argsort(x, axis=-2, kind="s")), x)
    assert_matches_numpy(lambda x: tnp.sort(x + 1.5, axis=None), 2.0)  # a Python scalar
    assert_matches_numpy(lambda x: tnp.sort(x * np.ones(3, np.float32)), 2.0)
    assert_matches_numpy(lambda x: tnp.sort([x, 3.0, 1.0]), np.float64(2.0))  # a list


def test_argsort_any_kind_on_distinct_values(backend, rng):
    """Without ties every kind's indices are the same: NumPy's default is the oracle."""
    x = rng.permutation(24).reshape(4, 6).astype(np.float32) - 7.5
    assert_matches_numpy(lambda x: (np.argsort(x), np.argsort(x, axis=0, kind="heapsort"),
                                    tnp.argsort(x, axis=None, kind="quicksort")), x,
                         backend=backend)


def test_nans_sort_last_in_their_order(backend):
    x = np.array([[np.nan, 1.0, -np.inf, np.inf, 0.0, -0.0, np.nan, -1.0]], np.float32)
    results = tracejit.compile(sorts, backend=backend)(x)  # (numba_cpu: compiled above)
    out, idx = results[2], results[4]  # np.sort(x), tnp.argsort(x, kind="stable")
    np.testing.assert_array_equal(out[0, -2:], [np.nan, np.nan])
    np.testing.assert_array_equal(idx, [[2, 7, 4, 5, 1, 3, 0, 6]])  # stable: 0.0 before -0.0
    assert np.signbit(out[0, 3]) and not np.signbit(out[0, 2])


# --- partition: the contract, not NumPy's arrangement --------------------------------------

def assert_partitioned(values, x, kth, axis):
    """``values`` is a partition of ``x`` along ``axis`` at every index in ``kth``."""
    if axis is None:
        x, axis = x.reshape(-1), 0
    x = np.atleast_1d(x)
    rows = np.moveaxis(values, axis, -1)
    expected = np.moveaxis(np.sort(x, axis=axis), axis, -1)
    np.testing.assert_array_equal(np.sort(rows, axis=-1), expected)  # the same values
    n = rows.shape[-1]
    for k in np.atleast_1d(kth):
        k = k % n
        np.testing.assert_array_equal(rows[..., k], expected[..., k])  # in sorted position
        np.testing.assert_array_equal(np.sort(rows[..., :k], axis=-1), expected[..., :k])


def assert_argpartitioned(indices, x, kth, axis):
    assert indices.dtype == np.int64
    flat = x.reshape(-1) if axis is None else np.atleast_1d(x)
    ax = 0 if axis is None else axis
    moved = np.moveaxis(indices, ax, -1)
    np.testing.assert_array_equal(np.sort(moved, axis=-1),
                                  np.broadcast_to(np.arange(moved.shape[-1]), moved.shape))
    assert_partitioned(np.take_along_axis(flat, indices, ax), flat, kth, ax)


PARTITIONS = [(2, -1), ([0, 3], -1), ((-1, 1), 0), (np.array([4]), None), (-2, None)]


@pytest.fixture(scope="module")
def partitions():
    """One compiled function per backend and rank: every (kth, axis) of ``PARTITIONS``."""
    def fn(x):
        out = []
        for kth, axis in PARTITIONS:
            out += [tnp.partition(x, kth, axis=axis), np.argpartition(x, kth, axis=axis)]
        return tuple(out)
    return fn


# numba_cpu runs the same primitive as for sort (tested there on each dtype kind): float32 here.
PARTITION_PAIRS = [("interpreter", d) for d in (np.float32, np.float64, np.int32, np.int64,
                                                np.bool_)] + [("numba_cpu", np.float32)]


@pytest.mark.parametrize("on,dtype", PARTITION_PAIRS,
                         ids=[f"{b}-{np.dtype(d).name}" for b, d in PARTITION_PAIRS])
def test_partition_contract(partitions, on, dtype, rng):
    compiled = tracejit.compile(partitions, backend=on)
    for shape in [(5, 6), (6, 5), "view"]:
        x = tied_input(rng, shape, dtype)
        results = compiled(x)
        for (kth, axis), (values, indices) in zip(PARTITIONS, zip(results[::2], results[1::2])):
            assert values.dtype == x.dtype and values.shape == np.partition(x, kth, axis).shape
            assert_partitioned(values, x, kth, axis)
            assert_argpartitioned(indices, x, kth, axis)


def test_partition_small_and_empty(rng):
    f = tracejit.compile(lambda x: (tnp.partition(x, 0), tnp.argpartition(x, -1)))
    for shape in [(1,), (0,), (2, 0), (4, 1)]:
        x = tied_input(rng, shape, np.float64)
        values, indices = f(x)
        assert values.shape == x.shape and indices.shape == x.shape
        if x.shape[-1]:
            assert_partitioned(values, x, 0, -1)
            assert_argpartitioned(indices, x, -1, -1)
    idx = tracejit.compile(lambda x: tnp.argpartition(x, 0))(np.array(3.0))
    assert_same(idx, np.argpartition(np.array(3.0), 0))  # a 0-d array is taken as 1-d


# --- derivatives and errors -----------------------------------------------------------------

def test_argsort_has_no_derivative(rng):
    x = rng.normal(size=5)
    with pytest.raises(TypeError, match="real scalar output.*int64"):
        tracejit.grad(lambda x: tnp.argsort(x)[0])(x)
    with pytest.raises(TypeError, match="real scalar output.*int64"):
        tracejit.grad(lambda x: tnp.argpartition(x, 2)[2])(x)
    # Used as indices, the gradient flows through the values they pick, not through them.
    g = tracejit.grad(lambda x: (x[tnp.argsort(x)] * np.arange(5.0)).sum())(x)
    np.testing.assert_array_equal(g, np.argsort(np.argsort(x)).astype(np.float64))
    g = tracejit.grad(lambda x: tnp.argsort(x).astype(np.float64).sum())(x)
    np.testing.assert_array_equal(g, np.zeros(5))
    _, tangent = tracejit.jvp(tnp.argsort, (x,), (np.ones(5),))
    np.testing.assert_array_equal(tangent, np.zeros(5, np.int64))


def test_compiled_sort_gradient_on_numba_cpu(rng):
    loss = lambda x: (tnp.sort(x, axis=0) ** 2 * np.arange(4.0)[:, None]).sum()  # noqa: E731
    x = rng.normal(size=(4, 3))
    expected = tracejit.grad(loss)(x)
    np.testing.assert_allclose(tracejit.compile(tracejit.grad(loss), backend="numba_cpu")(x),
                               expected, rtol=1e-12)
    ranks = np.argsort(np.argsort(x, axis=0), axis=0)
    np.testing.assert_allclose(expected, 2 * x * ranks, rtol=1e-12)


BAD_CALLS = [
    lambda x: tnp.sort(x, order="f"), lambda x: tnp.argsort(x, order=["f"]),
    lambda x: tnp.partition(x, 1, order="f"), lambda x: tnp.argpartition(x, 1, order="f"),
    lambda x: tnp.sort(x, kind="bogus"), lambda x: tnp.argsort(x, kind=""),
    lambda x: tnp.sort(x, kind=3), lambda x: tnp.sort(x, kind="stable", stable=True),
    lambda x: tnp.sort(x, axis=2), lambda x: tnp.argsort(x, axis=-3),
    lambda x: tnp.sort(x, axis=1.0), lambda x: tnp.sort(x, axis=(0, 1)),
    lambda x: tnp.sort(x[0, 0]), lambda x: tnp.partition(x[0, 0], 0),
    lambda x: tnp.partition(x, 5), lambda x: tnp.partition(x, -6),
    lambda x: tnp.argpartition(x, [0, 5]), lambda x: tnp.partition(x, 1.0),
    lambda x: tnp.partition(x, True), lambda x: tnp.partition(x, []),
    lambda x: tnp.partition(x, [[0]]), lambda x: tnp.partition(x, np.array([True])),
    lambda x: tnp.partition(x, 1, kind="quicksort"), lambda x: tnp.argpartition(x, 1, kind=None),
    lambda x: tnp.argpartition(x, 20, axis=None), lambda x: tnp.argsort(x[0, 0], axis=1),
]


@pytest.mark.parametrize("case", range(len(BAD_CALLS)))
def test_bad_arguments_are_refused_as_numpy_refuses(case, rng):
    assert_matches_numpy(BAD_CALLS[case], rng.normal(size=(3, 5)))


def test_errors_name_the_users_line(rng):
    f = tracejit.compile(lambda x: tnp.partition(x, 9))
    with pytest.raises(ValueError, match=r"kth\(=9\) out of bounds \(5\)(.|\n)*test_numpy_sorting"):
        f(rng.normal(size=(3, 5)))
    with pytest.raises(ValueError, match="no fields(.|\n)*structured"):
        tracejit.compile(lambda x: tnp.sort(x, order="f"))(rng.normal(size=3))
    with pytest.raises(TypeError, match="traced value"):
        tracejit.compile(lambda x: tnp.sort(x, axis=x[0].astype(int)))(np.ones(3))
    with pytest.raises(TypeError, match="traced value"):
        tracejit.compile(lambda x: tnp.partition(x, x[0].astype(int)))(np.ones(3))


def test_ir_is_one_argsort_and_one_gather(rng):
    text = str(tracejit.make_ir(lambda x: tnp.sort(x, axis=0))(rng.normal(size=(3, 4))))
    assert "argsort[axis=0]" in text and text.count("gather[") == 1
    # Axes of length 0 or 1 are already sorted: no primitive at all.
    text = str(tracejit.make_ir(lambda x: (tnp.sort(x), tnp.argsort(x)))(np.ones((3, 1))))
    assert "argsort" not in text and "gather" not in text


def _partition_parts(x):
    """What partition defines whatever arrangement it picks: the kth values and functions of
    the sets before and after them (finite differences run NumPy's own partition)."""
    p = tnp.partition(x, (1, 3), axis=-1)
    q = np.partition(x, -1, axis=0)
    return (p[..., 1] * p[..., 3] + (p[..., :1] ** 2).sum(-1) + tnp.sin(p[..., 4:]).sum(-1),
            q[-1] + tnp.exp(q[:-1]).sum(0))


# Gradient cases (run by test_autodiff_table.py with check_grads, order 2, both modes).
SORT_GRAD_CASES = [
    ("sort", lambda x: tnp.sort(x)), ("sort_axis0", lambda x: tnp.sort(x, axis=0)),
    ("sort_flat", lambda x: np.sort(x, axis=None)),
    ("sort_times_x", lambda x: tnp.sort(x, axis=-1) * x),  # (a second derivative, not 0)
    ("sort_squared", lambda x: tnp.sort(x ** 2, axis=0, kind="stable")),
    ("partition", _partition_parts),
]
