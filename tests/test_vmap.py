"""vmap: every primitive's batching rule against a Python loop over the examples (random
shapes, dtypes, in_axes and out_axes, None for some operands, negative axes), eager and
compiled; control flow with per-example trip counts; composition with the other transforms;
errors; random programs. (The Jacobians built on vmap: test_jacobians.py; numpy.linalg under
vmap: test_vmap_linalg.py.)"""
import re

import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp
from tracejit.primitives import REGISTRY

B = 3  # batch size


# --- the oracle: a Python loop over the examples ---------------------------------------------

def _take(x, axis, b):
    return x if axis is None else np.take(x, b, axis=axis)


def loop(f, args, axes, out_axis, size=B):
    """``f`` applied example by example, results stacked along ``out_axis`` (a list of them
    where ``f`` returns a list: a primitive with several results)."""
    outs = [f(*[_take(a, ax, b) for a, ax in zip(args, axes)]) for b in range(size)]
    if isinstance(outs[0], list):
        return [np.stack([np.asarray(o[k]) for o in outs], axis=out_axis)
                for k in range(len(outs[0]))]
    return np.stack([np.asarray(o) for o in outs], axis=out_axis)


def _batched(examples, axis):
    return examples[0] if axis is None else np.stack(examples, axis=axis)


def _random_axes(rng, ndims):
    """A batch axis (or None) per operand of ranks ``ndims``, at least one batched, about
    half of them negative."""
    while True:
        axes = []
        for nd in ndims:
            if rng.random() < 0.3:
                axes.append(None)
            else:
                a = int(rng.integers(0, nd + 1))
                axes.append(a - (nd + 1) if rng.random() < 0.5 else a)
        if any(a is not None for a in axes):
            return axes


def assert_close(got, expected, dtype):
    assert got.shape == expected.shape, (got.shape, expected.shape)
    assert got.dtype == expected.dtype, (got.dtype, expected.dtype)
    if np.dtype(dtype).kind == "f":
        tol = 1e-5 if np.dtype(dtype) == np.float32 else 1e-12
        np.testing.assert_allclose(got, expected, rtol=tol, atol=tol)
    else:
        np.testing.assert_array_equal(got, expected)


def assert_results_close(got, expected, dtype):
    """One result, or each of a list of them (integer ones, as pivots, exactly)."""
    if not isinstance(expected, list):
        return assert_close(np.asarray(got), expected, dtype)
    assert isinstance(got, (list, tuple)) and len(got) == len(expected)
    for g, e in zip(got, expected):
        assert_close(np.asarray(g), e, dtype if e.dtype.kind == "f" else e.dtype)


# --- the primitive table ---------------------------------------------------------------------
# name -> (make(rng, dtype) -> per-example operands, params, dtypes to draw from)

DTYPES = {"f": [np.float32, np.float64], "i": [np.int32, np.int64], "u": [np.uint8],
          "b": [np.bool_]}


def _values(rng, shape, dtype):
    dtype = np.dtype(dtype)
    if dtype.kind == "f":  # positive: in the domain of log, sqrt, pow
        return rng.uniform(0.5, 2.0, shape).astype(dtype)
    if dtype.kind == "b":
        return rng.random(shape) < 0.5
    return rng.integers(1, 4, shape).astype(dtype)


def _elementwise_case(prim):
    nin = len(set(re.findall(r"\{(\d)\}", prim.scalar)))
    kinds = prim.dtype_kinds
    dtypes = [d for k in kinds for d in DTYPES[k]]
    if prim.name == "select":
        def make(rng, dtype, shape=(2, 3)):
            return [rng.random(shape) < 0.5, _values(rng, shape, dtype),
                    _values(rng, shape, dtype)]
        return make, {}, dtypes
    params = {"dtype": np.dtype(np.float32)} if prim.name == "convert" else {}
    return (lambda rng, dtype, shape=(2, 3): [_values(rng, shape, dtype) for _ in range(nin)]), \
        params, dtypes


CASES = {name: _elementwise_case(p) for name, p in REGISTRY.items() if p.kind == "elementwise"}
NUMERIC = [np.float32, np.float64, np.int32, np.int64]
FLOATS = [np.float32, np.float64]


def _one(shape):
    return lambda rng, dtype: [_values(rng, shape, dtype)]


def _indices(rng, n, shape):
    return rng.integers(0, n, shape).astype(np.int64)


CASES.update({
    "reduce_sum": (_one((3, 4, 2)), {"axes": (0, 2)}, NUMERIC),
    "reduce_prod": (_one((3, 4)), {"axes": (1,)}, NUMERIC),
    "reduce_max": (_one((3, 4, 2)), {"axes": (1,)}, NUMERIC),
    "reduce_min": (_one((3, 4, 2)), {"axes": (0, 1, 2)}, NUMERIC),
    "argmax": (_one((3, 4)), {"axis": 1}, NUMERIC),
    "argmin": (_one((3, 4)), {"axis": 0}, NUMERIC),
    "cumsum": (_one((3, 4)), {"axis": 1}, NUMERIC),
    "cumprod": (_one((3, 4)), {"axis": 0}, NUMERIC),
    "argsort": (_one((4, 3)), {"axis": 0}, NUMERIC),
    "dot_general": (lambda rng, dtype: [_values(rng, (3, 4), dtype), _values(rng, (4,), dtype)],
                    {"contract": ((1,), (0,)), "batch": ((), ())}, NUMERIC),
    "broadcast_in_dim": (_one((3, 1)), {"shape": (2, 3, 4), "dims": (1, 2)}, NUMERIC),
    "reshape": (_one((3, 4)), {"shape": (2, 6)}, NUMERIC),
    "transpose": (_one((2, 3, 4)), {"perm": (2, 0, 1)}, NUMERIC),
    "slice": (_one((5, 4)), {"start": (1, 0), "limit": (5, 3), "strides": (2, 1)}, NUMERIC),
    "rev": (_one((3, 4)), {"axes": (1,)}, NUMERIC),
    "pad": (lambda rng, dtype: [_values(rng, (2, 3), dtype), _values(rng, (), dtype)],
            {"config": ((1, 0, 1), (0, 2, 0))}, NUMERIC),
    "concatenate": (lambda rng, dtype: [_values(rng, (2, k), dtype) for k in (1, 3, 2)],
                    {"axis": 1}, NUMERIC),
    "gather": (lambda rng, dtype: [_values(rng, (5, 3), dtype), _indices(rng, 5, (4,))],
               {"axes": (0,)}, NUMERIC),
    "scatter_add": (lambda rng, dtype: [_values(rng, (5, 3), dtype), _values(rng, (4, 3), dtype),
                                        _indices(rng, 5, (4,))], {"axes": (0,)}, NUMERIC),
})


# Linear algebra: stacks of matrices (an example may be a stack itself: the primitive's own
# leading axes, which vmap's axis joins), well conditioned.
def _square(rng, dtype, stack=(), n=3):
    """Normal entries plus n on the diagonal (one triangle of it a well conditioned
    triangular matrix too)."""
    return (rng.standard_normal(stack + (n, n)) + n * np.eye(n)).astype(dtype)


def _spd(rng, dtype, stack=(), n=3):
    x = rng.standard_normal(stack + (n, n))
    return (x @ np.swapaxes(x, -1, -2) + n * np.eye(n)).astype(dtype)


def _normal(rng, dtype, shape):
    return rng.standard_normal(shape).astype(dtype)


def _factored(stack=(), rhs=2):
    """a, its LU factors and (with ``rhs`` columns) a right-hand side: lu_solve's and
    slogdet's operands."""
    def make(rng, dtype):
        a = _square(rng, dtype, stack)
        ops = [a, *REGISTRY["lu_factor"].impl(a)]
        return ops + [_normal(rng, dtype, stack + (3, rhs))] if rhs else ops
    return make


CASES.update({
    "lu_factor": (lambda rng, dtype: [_square(rng, dtype)], {}, FLOATS),
    "lu_solve": (_factored(), {"transpose": False, "check": True}, FLOATS),
    "triangular_solve": (lambda rng, dtype: [_square(rng, dtype), _normal(rng, dtype, (3, 2))],
                         {"lower": True, "transpose_a": False}, FLOATS),
    "cholesky": (lambda rng, dtype: [_spd(rng, dtype)], {}, FLOATS),
    "slogdet": (_factored(rhs=0), {}, FLOATS),
    "eigh": (lambda rng, dtype: [_spd(rng, dtype)], {"lower": True, "compute_v": True}, FLOATS),
    "svd": (lambda rng, dtype: [_normal(rng, dtype, (4, 3))],
            {"full_matrices": False, "compute_uv": True}, FLOATS),
    "qr": (lambda rng, dtype: [_normal(rng, dtype, (4, 3))], {"complete": False}, FLOATS),
})
# Further forms of the rules with several cases.
EXTRA_CASES = {
    "dot_general/batched matmul": ("dot_general", lambda rng, dtype: [
        _values(rng, (2, 3, 4), dtype), _values(rng, (2, 4, 5), dtype)],
        {"contract": ((2,), (1,)), "batch": ((0,), (0,))}, FLOATS),
    "dot_general/vector-matrix": ("dot_general", lambda rng, dtype: [
        _values(rng, (4,), dtype), _values(rng, (4, 2), dtype)],
        {"contract": ((0,), (0,)), "batch": ((), ())}, FLOATS),
    "gather/two index arrays": ("gather", lambda rng, dtype: [
        _values(rng, (4, 2, 5), dtype), _indices(rng, 4, (3,)), _indices(rng, 5, (3,))],
        {"axes": (0, 2)}, NUMERIC),
    "scatter_add/repeated indices": ("scatter_add", lambda rng, dtype: [
        _values(rng, (3, 4), dtype), _values(rng, (6, 3), dtype), np.array([1, 1, 0, 3, 1, 0])],
        {"axes": (1,)}, NUMERIC),
    "reduce_sum/bool": ("reduce_sum", _one((3, 4)), {"axes": (1,)}, [np.bool_]),
    "lu_factor/stacked": ("lu_factor", lambda rng, dtype: [_square(rng, dtype, (2,))], {},
                          FLOATS),
    "lu_solve/stacked, transposed": ("lu_solve", _factored((2,), rhs=1),
                                     {"transpose": True, "check": False}, FLOATS),
    "triangular_solve/upper, transposed, stacked": ("triangular_solve", lambda rng, dtype: [
        _square(rng, dtype, (2,)), _normal(rng, dtype, (2, 3, 4))],
        {"lower": False, "transpose_a": True}, FLOATS),
    "slogdet/stacked": ("slogdet", _factored((2,), rhs=0), {}, FLOATS),
    "eigh/values only, upper": ("eigh", lambda rng, dtype: [_spd(rng, dtype, (2,))],
                                {"lower": False, "compute_v": False}, FLOATS),
    "svd/values only, wide": ("svd", lambda rng, dtype: [_normal(rng, dtype, (3, 5))],
                              {"full_matrices": False, "compute_uv": False}, FLOATS),
    "svd/full matrices": ("svd", lambda rng, dtype: [_normal(rng, dtype, (2, 4, 3))],
                          {"full_matrices": True, "compute_uv": True}, FLOATS),
    "qr/complete": ("qr", lambda rng, dtype: [_normal(rng, dtype, (4, 3))], {"complete": True},
                    FLOATS),
}
TABLE = {name: (name, *case) for name, case in CASES.items() if name != "iota"}
TABLE.update(EXTRA_CASES)


def _draw(case, seed):
    prim_name, make, params, dtypes = TABLE[case]
    rng = np.random.default_rng(seed)
    dtype = dtypes[int(rng.integers(len(dtypes)))]
    shaped = {}
    if REGISTRY[prim_name].kind == "elementwise":  # a random shape, scalars (rank 0) included
        shaped["shape"] = tuple(int(n) for n in rng.integers(1, 4, size=rng.integers(0, 4)))
    draws = [make(rng, dtype, **shaped) for _ in range(B)]
    ndims = [np.ndim(x) for x in draws[0]]
    axes = _random_axes(rng, ndims)
    args = [_batched([d[i] for d in draws], ax) for i, ax in enumerate(axes)]
    prim = REGISTRY[prim_name]
    fn = lambda *ops: prim.bind(*ops, **params)  # noqa: E731
    first = fn(*draws[0])
    ranks = [np.ndim(r) for r in first] if prim.multiple_results else [np.ndim(first)]
    out_ndim = min(ranks) + 1  # (one out_axes for every result)
    out_axis = int(rng.integers(-out_ndim, out_ndim))
    return fn, args, axes, out_axis, dtype


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("case", sorted(TABLE))
def test_rule_against_a_loop(case, seed):
    fn, args, axes, out_axis, dtype = _draw(case, seed)
    expected = loop(fn, args, axes, out_axis)
    got = tracejit.vmap(fn, in_axes=tuple(axes), out_axes=out_axis)(*args)
    assert_results_close(got, expected, dtype)


@pytest.mark.parametrize("case", sorted(TABLE))
def test_rule_against_a_loop_compiled(case):
    """Under compile (the interpreter backend: the batched graph traced and verified)."""
    fn, args, axes, out_axis, dtype = _draw(case, 100)
    expected = loop(fn, args, axes, out_axis)
    f = tracejit.compile(tracejit.vmap(fn, in_axes=tuple(axes), out_axes=out_axis),
                         backend="interpreter")
    assert_results_close(f(*args), expected, dtype)


NUMBA_CASES = ["add", "select", "reduce_max", "cumsum", "dot_general/batched matmul",
               "transpose", "pad", "gather/two index arrays", "scatter_add"]


@pytest.mark.parametrize("case", NUMBA_CASES)
def test_rule_against_a_loop_on_numba_cpu(case):
    """A representative few compiled by the numba_cpu backend (compiling is what costs)."""
    fn, args, axes, out_axis, dtype = _draw(case, 200)
    expected = loop(fn, args, axes, out_axis)
    f = tracejit.compile(tracejit.vmap(fn, in_axes=tuple(axes), out_axes=out_axis),
                         backend="numba_cpu")
    assert_close(f(*args), expected, dtype)


def test_every_primitive_with_a_rule_is_in_the_table():
    tested = {entry[0] for entry in TABLE.values()} | {"iota"}
    control = {n for n, p in REGISTRY.items() if p.kind == "control"}
    untested = sorted(n for n, p in REGISTRY.items()
                      if p.batch is not None and n not in tested and n not in control)
    assert not untested, untested


def test_iota_rule_gives_an_unbatched_result():
    iota = REGISTRY["iota"]
    out, bdim = iota.batch([], [], shape=(2, 3), dtype=np.dtype(np.int64), dimension=1)
    assert bdim is None
    np.testing.assert_array_equal(out, np.broadcast_to(np.arange(3), (2, 3)))


def test_batched_matrix_vector_product_is_one_matrix_product(rng):
    w, xs = rng.standard_normal((3, 4)), rng.standard_normal((5, 4))
    graph = tracejit.make_ir(tracejit.vmap(lambda x: w @ x))(xs)
    dots = [e for e in graph.eqns if e.prim.name == "dot_general"]
    assert len(dots) == 1 and dots[0].params["batch"] == ((), ())
    assert not any(e.prim.kind == "control" for e in graph.eqns)
    assert str(graph) == str(tracejit.make_ir(tracejit.vmap(lambda x: w @ x))(xs))  # stable
    np.testing.assert_allclose(tracejit.vmap(lambda x: w @ x)(xs), xs @ w.T, rtol=1e-12)


# --- numba_cpu: a few representative batched graphs, compiled once ----------------------------

def mlp_loss(params, x, y):
    w1, b1, w2 = params
    h = tnp.tanh(x @ w1 + b1)
    return ((h @ w2 - y) ** 2).sum()


@pytest.fixture(scope="module")
def per_example_grads():
    return tracejit.compile(tracejit.vmap(tracejit.grad(mlp_loss), in_axes=(None, 0, 0)),
                            backend="numba_cpu")


def _mlp(rng):
    params = (rng.standard_normal((4, 5)), rng.standard_normal(5), rng.standard_normal((5, 2)))
    return params, rng.standard_normal((6, 4)), rng.standard_normal((6, 2))


def test_compiled_per_example_gradients_match_a_loop(per_example_grads, rng):
    params, x, y = _mlp(rng)
    got = per_example_grads(params, x, y)
    for k in range(6):
        for g, e in zip(got, tracejit.grad(mlp_loss)(params, x[k], y[k])):
            np.testing.assert_allclose(g[k], e, rtol=1e-10, atol=1e-12)
    kernels = per_example_grads.lower(params, x, y).kernels()
    assert len(kernels) < 25  # fused like any graph, not one kernel per example


def test_compiled_control_flow_with_per_example_trip_counts():
    def collatz_steps(n):
        return tracejit.while_loop(lambda c: c[0] != 1,
                                   lambda c: (tnp.where(c[0] % 2 == 0, c[0] // 2, 3 * c[0] + 1),
                                              c[1] + 1), (n, 0))[1]
    ns = np.array([1, 6, 7, 27, 2])
    expected = [collatz_steps(np.int64(n)) for n in ns]
    f = tracejit.compile(tracejit.vmap(collatz_steps), backend="numba_cpu")
    np.testing.assert_array_equal(f(ns), expected)


# --- in_axes / out_axes forms ----------------------------------------------------------------

def test_pytree_prefix_in_axes_and_out_axes(rng):
    params = {"w": rng.standard_normal((3, 2)), "b": rng.standard_normal((4, 2))}
    xs = rng.standard_normal((4, 3))

    def f(p, x):
        return {"out": x @ p["w"] + p["b"], "norm": (x * x).sum()}

    got = tracejit.vmap(f, in_axes=({"w": None, "b": 0}, 0), out_axes={"out": 1, "norm": 0})(
        params, xs)
    for k in range(4):
        e = f({"w": params["w"], "b": params["b"][k]}, xs[k])
        np.testing.assert_allclose(got["out"][:, k], e["out"], rtol=1e-12)
        np.testing.assert_allclose(got["norm"][k], e["norm"], rtol=1e-12)


def test_unbatched_output_is_broadcast_and_axis_size(rng):
    x = rng.standard_normal(3)
    out = tracejit.vmap(lambda a: a * 2, in_axes=None, axis_size=4)(x)
    np.testing.assert_array_equal(out, np.broadcast_to(x * 2, (4, 3)))
    out = tracejit.vmap(lambda a, b: a, in_axes=(None, 0), out_axes=1)(x, np.ones(5))
    assert out.shape == (3, 5) and out.flags.writeable
    assert tracejit.vmap(lambda a: a, out_axes=None, in_axes=None, axis_size=2)(x) is not None


def test_an_empty_batch():
    empty = np.zeros((0, 3))
    assert tracejit.vmap(lambda x: tnp.sin(x).sum())(empty).shape == (0,)
    branch = tracejit.vmap(lambda x: tracejit.cond(x.sum() > 0, lambda v: v, lambda v: -v, x))
    assert branch(empty).shape == (0, 3)
    loop_ = tracejit.vmap(lambda x: tracejit.while_loop(lambda c: c.sum() < 1, lambda c: c + 1,
                                                        x))
    assert loop_(empty).shape == (0, 3)


def test_unbatched_arguments_are_given_as_they_are(rng):
    """A static argument (a Python int used as a shape) works when it is not batched."""
    xs = rng.standard_normal((3, 6))
    got = tracejit.vmap(lambda x, n: x.reshape(n, -1).sum(axis=1), in_axes=(0, None))(xs, 2)
    np.testing.assert_allclose(got, xs.reshape(3, 2, 3).sum(axis=2), rtol=1e-12)


def test_keyword_arguments_are_batched_along_axis_0(rng):
    xs, ys = rng.standard_normal((3, 2)), rng.standard_normal((3, 2))
    got = tracejit.vmap(lambda x, y=None: x * y)(xs, y=ys)
    np.testing.assert_allclose(got, xs * ys)


# --- control flow ----------------------------------------------------------------------------

def _check_control(f, args, axes, out_axis=0):
    expected = loop(f, args, axes, out_axis, size=len(next(
        np.moveaxis(a, ax, 0) for a, ax in zip(args, axes) if ax is not None)))
    for mapped in (tracejit.vmap(f, in_axes=tuple(axes), out_axes=out_axis),
                   tracejit.compile(tracejit.vmap(f, in_axes=tuple(axes), out_axes=out_axis),
                                    backend="interpreter")):
        np.testing.assert_allclose(mapped(*args), expected, rtol=1e-12)


def test_cond_with_a_batched_predicate(rng):
    xs = rng.standard_normal((6, 3))
    f = lambda x: tracejit.cond(x.sum() > 0, lambda v: tnp.exp(v), lambda v: -v * 2, x)  # noqa
    _check_control(f, [xs], [0])
    graph = tracejit.make_ir(tracejit.vmap(f))(xs)
    names = [e.prim.name for e in graph.eqns]
    # each branch run (guarded: skipped when no example takes it), then a select
    assert names.count("cond") == 2 and "select" in names
    for branch in [e for e in graph.eqns if e.prim.name == "cond"]:
        assert branch.inputs[0].ttype.shape == ()  # the guard is one flag, not per example


def test_batched_branches_keep_their_side_conditions():
    """The branch an example does not take never sees its operands: an index out of range
    for the table is only ever read where the predicate checked it."""
    table = np.array([10.0, 20.0, 30.0])

    def lookup(i):
        return tracejit.cond(i < 3, lambda j: tnp.asarray(table)[j], lambda j: -1.0 * j, i)

    idx = np.array([0, 7, 2, 3, 1])
    expected = [lookup(i) for i in idx]
    np.testing.assert_array_equal(tracejit.vmap(lookup)(idx), expected)
    compiled = tracejit.compile(tracejit.vmap(lookup), backend="interpreter")
    np.testing.assert_array_equal(compiled(idx), expected)
    np.testing.assert_array_equal(tracejit.vmap(lookup)(np.array([5, 9])), [-5.0, -9.0])
    on_numba = tracejit.compile(tracejit.vmap(lookup), backend="numba_cpu")
    np.testing.assert_array_equal(on_numba(idx), expected)
    np.testing.assert_array_equal(on_numba(np.array([5, 9, 4, 3, 8])), [-5.0, -9, -4, -3, -8])


def test_finished_examples_of_a_loop_are_frozen_and_never_read_out_of_range():
    """Each example walks the table with its own stride until it passes the end; the body of
    a finished example (its index now past the end) is given a running example's carry, so
    the table is never read out of range."""
    table = np.arange(1.0, 5.0)

    def walk(step):
        return tracejit.while_loop(lambda c: c[0] < 4,
                                   lambda c: (c[0] + step, c[1] + tnp.asarray(table)[c[0]]),
                                   (0, 0.0))[1]

    steps = np.array([3, 1, 2, 5])
    expected = [table[::k].sum() for k in steps]
    np.testing.assert_array_equal(tracejit.vmap(walk)(steps), expected)
    compiled = tracejit.compile(tracejit.vmap(walk), backend="interpreter")
    np.testing.assert_array_equal(compiled(steps), expected)


def test_cond_with_an_unbatched_predicate_stays_a_branch(rng):
    xs = rng.standard_normal((6, 3))
    f = lambda x, s: tracejit.cond(s > 0, lambda v: v + s, lambda v: v * x[0], x)  # noqa
    for s in (1.0, -1.0):
        _check_control(f, [xs, np.float64(s)], [1, None], out_axis=-1)
    graph = tracejit.make_ir(tracejit.vmap(f, in_axes=(0, None)))(xs, 1.0)
    assert [e.prim.name for e in graph.eqns].count("cond") == 1


def test_while_loop_with_per_example_trip_counts(rng):
    def newton_sqrt(a):
        return tracejit.while_loop(lambda c: abs(c[0] * c[0] - a) > 1e-10,
                                   lambda c: ((c[0] + a / c[0]) / 2, c[1] + 1), (a, 0))
    avals = np.array([1.0, 4.0, 100.0, 2.0, 1e6])
    roots, steps = tracejit.vmap(newton_sqrt)(avals)
    loop_steps = [int(newton_sqrt(a)[1]) for a in avals]
    np.testing.assert_array_equal(steps, loop_steps)
    assert len(set(loop_steps)) > 2  # each example stopped after its own count
    np.testing.assert_allclose(roots, np.sqrt(avals), rtol=1e-10)


def test_while_loop_with_an_unbatched_predicate(rng):
    def f(x):
        return tracejit.while_loop(lambda c: c[1] < 4, lambda c: (c[0] * 1.5 + 1, c[1] + 1),
                                   (x, 0))[0]

    _check_control(f, [rng.standard_normal((3, 4))], [-1])


def test_fori_loop_with_batched_bounds_and_carries(rng):
    f = lambda x, n: tracejit.fori_loop(1, n, lambda i, c: c * 0.5 + i, x)  # noqa
    _check_control(f, [rng.standard_normal((5, 2)), np.array([0, 1, 2, 5, 3])], [0, 0])
    g = lambda x, lo: tracejit.fori_loop(lo, 4, lambda i, c: c + x * i, tnp.zeros(2))  # noqa
    _check_control(g, [rng.standard_normal((2, 5)), np.array([0, 1, 2, 5, 3])], [1, 0])


def test_fori_loop_whose_carry_becomes_batched(rng):
    def f(x):
        return tracejit.fori_loop(0, 3, lambda i, c: (c[0] + x, c[1] * 2), (tnp.zeros(3), 1.0))

    got = tracejit.vmap(f)(rng.standard_normal((4, 3)))
    assert got[0].shape == (4, 3) and got[1].shape == (4,)


def test_scan_with_batched_xs_carries_and_consts(rng):
    def f(x, c0, w):
        return tracejit.scan(lambda c, v: (c * w + v, c - v), c0, x)

    x, c0, w = rng.standard_normal((4, 3, 2)), rng.standard_normal((3, 2)), rng.standard_normal(2)
    cases = [([x, c0, w], [1, 0, None]),  # batched xs (not along the scanned axis) and carry
             ([x, c0[0], w], [1, None, None]),  # the carry becomes batched
             ([x[:, 0], c0[0], rng.standard_normal((3, 2))], [None, None, 0]),  # only consts
             ([x, c0[0], rng.standard_normal((2, 3))], [-2, None, -1])]
    for args, axes in cases:
        got = tracejit.vmap(f, in_axes=tuple(axes))(*args)
        for k in range(3):
            e = f(*[_take(a, ax, k) for a, ax in zip(args, axes)])
            np.testing.assert_allclose(got[0][k], e[0], rtol=1e-12)
            np.testing.assert_allclose(got[1][k], e[1], rtol=1e-12)


# --- composition -----------------------------------------------------------------------------

def test_grad_of_a_function_that_calls_vmap(rng):
    w, xs = rng.standard_normal((3, 4)), rng.standard_normal((5, 4))

    def batched_loss(w):
        return tracejit.vmap(lambda x: tnp.tanh(w @ x).sum())(xs).sum()

    def loop_loss(w):
        return sum(tnp.tanh(w @ x).sum() for x in xs)

    np.testing.assert_allclose(tracejit.grad(batched_loss)(w), tracejit.grad(loop_loss)(w),
                               rtol=1e-12)
    tracejit.check_grads(batched_loss, (w,), order=2)


def test_grad_and_jvp_of_vmap_through_batched_control_flow(rng):
    xs, w = rng.standard_normal((5, 3)), rng.standard_normal(3)

    def per_example(x, w):
        a = tracejit.cond(x.sum() > 0, lambda v: tnp.sin(v * w), lambda v: v * v * w, x)
        b = tracejit.while_loop(lambda c: c[1] < 3 * abs(c[0]).sum(),
                                lambda c: (tnp.tanh(c[0] * w), c[1] + 1.0), (x, 0.0))[0]
        return a + b

    def batched(w):
        return tracejit.vmap(per_example, in_axes=(0, None))(xs, w).sum()

    def looped(w):
        return sum(per_example(x, w).sum() for x in xs)

    expected = tracejit.grad(looped)(w)
    np.testing.assert_allclose(tracejit.grad(batched)(w), expected, rtol=1e-10)
    np.testing.assert_allclose(tracejit.compile(tracejit.grad(batched), backend="interpreter")(w),
                               expected, rtol=1e-10)
    t = rng.standard_normal(3)
    np.testing.assert_allclose(tracejit.jvp(batched, (w,), (t,))[1],
                               tracejit.jvp(looped, (w,), (t,))[1], rtol=1e-10)


def test_jvp_of_vmap_and_vmap_of_jvp(rng):
    xs, ts = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    f = lambda x: tnp.sin(x) * x.sum()  # noqa: E731
    out, tangent = tracejit.jvp(tracejit.vmap(f), (xs,), (ts,))
    per_example = [tracejit.jvp(f, (x,), (t,)) for x, t in zip(xs, ts)]
    np.testing.assert_allclose(out, [p[0] for p in per_example], rtol=1e-12)
    np.testing.assert_allclose(tangent, [p[1] for p in per_example], rtol=1e-12)
    vt = tracejit.vmap(lambda x, t: tracejit.jvp(f, (x,), (t,))[1])(xs, ts)
    np.testing.assert_allclose(vt, [p[1] for p in per_example], rtol=1e-12)


def test_vmap_of_a_compiled_function(rng):
    f = tracejit.compile(lambda x: (tnp.sin(x) * x).sum(), backend="interpreter")
    xs = rng.standard_normal((4, 3))
    expected = (np.sin(xs) * xs).sum(axis=1)
    np.testing.assert_allclose(tracejit.vmap(f)(xs), expected, rtol=1e-12)
    np.testing.assert_allclose(tracejit.vmap(tracejit.grad(f))(xs), np.sin(xs) + xs * np.cos(xs),
                               rtol=1e-12)


def test_identity_returns_a_fresh_array():
    a = np.ones((3, 2))
    out = tracejit.vmap(lambda x: x)(a)
    assert out is not a and np.array_equal(out, a)


def test_vmap_of_vmap(rng):
    x, y = rng.standard_normal((2, 3, 4)), rng.standard_normal((4, 3))
    f = lambda a, b: (a * b).sum()  # noqa: E731
    got = tracejit.vmap(tracejit.vmap(f, in_axes=(0, 1)), in_axes=(0, None))(x, y)
    expected = np.array([[f(x[i, j], y[:, j]) for j in range(3)] for i in range(2)])
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    compiled = tracejit.compile(tracejit.vmap(tracejit.vmap(f, in_axes=(0, 1)),
                                              in_axes=(0, None)), backend="interpreter")
    np.testing.assert_allclose(compiled(x, y), expected, rtol=1e-12)


def test_vmap_inside_a_fori_loop_body(rng):
    w, xs = rng.standard_normal((3, 3)) * 0.5, rng.standard_normal((4, 3))

    def f(xs):
        return tracejit.fori_loop(0, 3, lambda i, c: tracejit.vmap(lambda x: tnp.tanh(w @ x))(c),
                                  xs)

    expected = xs
    for _ in range(3):
        expected = np.tanh(expected @ w.T)
    np.testing.assert_allclose(f(xs), expected, rtol=1e-12)
    np.testing.assert_allclose(tracejit.compile(f, backend="interpreter")(xs), expected,
                               rtol=1e-12)


def test_vmap_of_grad_through_control_flow(rng):
    def f(x):
        y = tracejit.fori_loop(0, 3, lambda i, c: tnp.sin(c) * x, x)
        z = tracejit.cond(y.sum() > 0, lambda v: v * v, lambda v: -v, y)
        return tracejit.scan(lambda c, v: (c + v * c, None), 1.0, z)[0]

    xs = rng.standard_normal((5, 3))
    got = tracejit.vmap(tracejit.grad(f))(xs)
    np.testing.assert_allclose(got, [tracejit.grad(f)(x) for x in xs], rtol=1e-10)


def test_vmap_of_grad_through_a_while_loop_with_per_example_trip_counts(rng):
    def f(x):
        return tracejit.while_loop(lambda c: c[1] < 3 * abs(c[0]).sum(),
                                   lambda c: (tnp.sin(c[0]) + c[0], c[1] + 1.0), (x, 0.0))[0].sum()

    xs = rng.standard_normal((4, 2))
    got = tracejit.vmap(tracejit.grad(f))(xs)
    np.testing.assert_allclose(got, [tracejit.grad(f)(x) for x in xs], rtol=1e-10)

    def g(w, x):  # the gradient with respect to a weight the loop body closes over
        return tracejit.while_loop(lambda c: c[1] < 2 * abs(x).sum(),
                                   lambda c: (tnp.tanh(c[0] * w), c[1] + 1.0), (x, 0.0))[0].sum()

    w = rng.standard_normal(2)
    got = tracejit.vmap(tracejit.grad(g), in_axes=(None, 0))(w, xs)
    np.testing.assert_allclose(got, [tracejit.grad(g)(w, x) for x in xs], rtol=1e-10)
    trips = [int(np.ceil(2 * abs(x).sum())) for x in xs]
    assert len(set(trips)) > 1


def test_custom_vjp_function_under_vmap(rng):
    @tracejit.custom_vjp
    def clip_grad(x):
        return x * 1.0

    clip_grad.defvjp(lambda x: (x * 1.0, None), lambda res, ct: (tnp.clip(ct, -0.1, 0.1),))
    xs = rng.standard_normal((4, 3))
    f = lambda x: (clip_grad(x) * 3.0).sum()  # noqa: E731
    np.testing.assert_allclose(tracejit.vmap(clip_grad)(xs), xs)
    np.testing.assert_allclose(tracejit.vmap(tracejit.grad(f))(xs), np.full((4, 3), 0.1))


def test_grad_of_vmap_keeps_the_custom_backward_function(rng):
    @tracejit.custom_vjp
    def scaled_clip(x, w):  # forward x * w; backward: the cotangent clipped, then scaled
        return x * w

    scaled_clip.defvjp(lambda x, w: (x * w, w),
                       lambda w, ct: (tnp.clip(ct, -0.1, 0.1) * w, tnp.clip(ct, -0.2, 0.2)))
    xs, w = rng.standard_normal((4, 3)), rng.standard_normal(3)

    def batched(xs, w):
        return (tracejit.vmap(scaled_clip, in_axes=(1, None))(xs.T, w) * 3.0).sum()

    def looped(xs, w):
        return sum((scaled_clip(x, w) * 3.0).sum() for x in xs)

    for got in (tracejit.grad(batched, argnums=(0, 1))(xs, w),
                tracejit.compile(tracejit.grad(batched, argnums=(0, 1)),
                                 backend="interpreter")(xs, w)):
        for g, e in zip(got, tracejit.grad(looped, argnums=(0, 1))(xs, w)):
            np.testing.assert_allclose(g, e, rtol=1e-12)
    np.testing.assert_allclose(tracejit.grad(batched, argnums=1)(xs, w), np.full(3, 4 * 0.2))
    twice = lambda xs: tracejit.vmap(tracejit.vmap(scaled_clip, in_axes=(0, None)),  # noqa
                                     in_axes=(0, None))(xs, w).sum()
    np.testing.assert_allclose(tracejit.grad(twice)(xs[None]),
                               0.1 * np.broadcast_to(w, (1, 4, 3)), rtol=1e-12)


# --- errors ----------------------------------------------------------------------------------

def test_error_in_axes_structure_names_the_argument(rng):
    def f(params, x):
        return params["w"] * x

    with pytest.raises(ValueError, match=r"(?s)in_axes\[0\] for argument 0 \(`params`\).*"
                                         r"test_vmap.py"):
        tracejit.vmap(f, in_axes=({"v": 0}, 0))({"w": np.ones(3)}, np.ones(3))
    with pytest.raises(ValueError, match="in_axes has 1 entries.*2 positional"):
        tracejit.vmap(f, in_axes=(0,))({"w": np.ones(3)}, np.ones(3))
    with pytest.raises(TypeError, match="in_axes holds 'a'"):
        tracejit.vmap(f, in_axes=("a", 0))


def test_error_batch_sizes_differ_names_both_arguments():
    with pytest.raises(ValueError, match=r"argument 0 \(`a`\) has size 3 along axis 0.*"
                                         r"argument 1 \(`b`\) has size 4 along axis 1"):
        tracejit.vmap(lambda a, b: a + b.T, in_axes=(0, 1))(np.ones((3, 2)), np.ones((2, 4)))


def test_error_axis_out_of_range():
    with pytest.raises(ValueError, match=r"(?s)axis -3 is out of range for argument 0 \(`x`\).*"
                                         r"test_vmap.py"):
        tracejit.vmap(lambda x: x, in_axes=-3)(np.ones((2, 2)))
    with pytest.raises(ValueError, match="a scalar cannot be batched"):
        tracejit.vmap(lambda x, y: x * y)(np.ones(2), 3.0)
    with pytest.raises(ValueError, match="out_axes for output"):
        tracejit.vmap(lambda x: x, out_axes=2)(np.ones(2))


def test_error_batched_value_where_a_static_one_is_needed():
    def f(x, n):
        return x * int(n)

    with pytest.raises(tracejit.TracerConversionError,
                       match=r"(?s)vmap\(f\): a concrete value.*in_axes None.*int\(\).*"
                             r"test_vmap.py"):
        tracejit.vmap(f)(np.ones(3), np.arange(3))


def test_error_nothing_batched_and_out_axes_none_for_a_batched_output():
    with pytest.raises(ValueError, match="axis_size"):
        tracejit.vmap(lambda x: x, in_axes=None)(np.ones(2))
    with pytest.raises(ValueError, match="out_axes is None for output.*varies"):
        tracejit.vmap(lambda x: x, out_axes=None)(np.ones(2))


# --- random programs (the project's fuzzer) --------------------------------------------------

def _batched_program_args(prog, rng):
    """The program's inputs, each batched (B examples: its value and permutations of it, which
    keep every value valid where the original is, as indices in range) along a random axis,
    or left unbatched."""
    args, axes = [], []
    for inp in prog.inputs:
        v = inp.value
        if inp.layout == "scalar" or np.ndim(v) == 0 or rng.random() < 0.25:
            args.append(v)
            axes.append(None)
            continue
        v = np.array(v)
        examples = [v] + [rng.permutation(v.ravel()).reshape(v.shape) for _ in range(B - 1)]
        axis = int(rng.integers(0, v.ndim + 1))
        axis = axis - (v.ndim + 1) if rng.random() < 0.5 else axis
        args.append(np.stack(examples, axis=axis))
        axes.append(axis)
    return args, axes


@pytest.mark.parametrize("grad", [False, True], ids=["forward", "grad"])
def test_random_programs_against_a_loop(grad):
    """vmap of the fuzzer's random programs (and of their gradients) against a loop."""
    import warnings

    from tracejit.testing import fuzz
    tested = 0
    for index in range(100 if not grad else 60):
        prog = fuzz.program(1, index, grad=grad)
        try:
            prog = prog.evaluate()
        except Exception:  # noqa: BLE001  (NumPy refuses the program: not a case)
            continue
        fn = prog.function()
        if grad:
            if not prog.grad_argnums():
                continue
            fn = tracejit.grad(fn, argnums=prog.grad_argnums())
        args, axes = _batched_program_args(prog, np.random.default_rng(index))
        if all(a is None for a in axes):
            continue
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                examples = [fn(*[_take(a, ax, b) for a, ax in zip(args, axes)])
                            for b in range(B)]
            except Exception:  # noqa: BLE001
                continue
            got = tracejit.vmap(fn, in_axes=tuple(axes))(*args)
        multi = isinstance(examples[0], tuple)
        expected = [np.stack([np.asarray(e[k]) for e in examples])
                    for k in range(len(examples[0]))] if multi else \
            np.stack([np.asarray(e) for e in examples])
        problem = fuzz.compare(list(got) if multi else got, expected,
                               1e-6 if grad else fuzz._rtol(prog))
        assert problem is None, f"{prog.source()}in_axes={axes}: {problem}"
        tested += 1
    assert tested >= 40


@pytest.mark.parametrize("name", ["vmap", "jacfwd", "jacrev", "hessian"])
def test_docstring_examples_run(name):
    import doctest
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner()
    for test in finder.find(getattr(tracejit, name), name):
        runner.run(test)
    assert runner.failures == 0 and runner.tries > 0
