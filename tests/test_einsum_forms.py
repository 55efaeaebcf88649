"""einsum's operand-list form, size-0/size-1 label broadcasting and NumPy's refusals.

NumPy is the oracle (values, shapes, dtypes, or the same exception type). The subscripts-string
table is ``EINSUM_CASES`` in ``test_numpy_shapes.py``; gradients of the operand-list form are
in ``test_autodiff_table.py`` (``EINSUM_LIST_CASES`` below).
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp
from oracle import assert_matches_numpy
from test_numpy_table import make

E = Ellipsis

# name, function, operand shapes: the operand-list form (labels 0-51 are A-Z, a-z).
EINSUM_LIST_CASES = [
    ("matmul", lambda a, b: tnp.einsum(a, [0, 1], b, [1, 2], [0, 2]), [(2, 3), (3, 4)]),
    ("implicit", lambda a, b: np.einsum(a, [0, 1], b, [1, 2]), [(2, 3), (3, 4)]),
    ("tuples_transposed", lambda a, b: tnp.einsum(a, (0, 1), b, (1, 2), (2, 0)),
     [(2, 3), (3, 4)]),
    ("trace", lambda a: tnp.einsum(a, [5, 5]), [(3, 3)]),
    ("diagonal", lambda a: tnp.einsum(a, [5, 5], [5]), [(3, 3)]),
    ("upper_before_lower", lambda a: tnp.einsum(a, [51, 0]), [(2, 3)]),
    ("numpy_ints", lambda a: tnp.einsum(a, [np.int64(0), 1], [np.int32(1)]), [(2, 3)]),
    ("ellipsis_batch", lambda a, b: tnp.einsum(a, [E, 0, 1], b, [E, 1, 2], [E, 0, 2]),
     [(2, 3, 4), (4, 5)]),
    ("ellipsis_implicit", lambda a, b: tnp.einsum(a, [E, 1], b, [E, 1]), [(2, 3), (2, 3)]),
    ("ellipsis_middle", lambda a: tnp.einsum(a, [0, E, 1], [1, E]), [(2, 3, 4)]),
    ("three_operands", lambda a, b, c: tnp.einsum(a, [0, 1], b, [1, 2], c, [2, 3], [0, 3]),
     [(2, 3), (3, 4), (4, 2)]),
    ("outer", lambda a, b: tnp.einsum(a, [0], b, [1], [0, 1]), [(3,), (2,)]),
    ("batch_dot", lambda a, b: tnp.einsum(a, [0, 1], b, [0, 1], [0]), [(3, 4), (3, 4)]),
]


@pytest.mark.parametrize("name,fn,shapes", EINSUM_LIST_CASES,
                         ids=[c[0] for c in EINSUM_LIST_CASES])
def test_operand_list_form(name, fn, shapes, rng):
    for dtype in (np.float64, np.float32, np.int64, np.bool_):
        arrays = [make(rng, s, dtype, "small") for s in shapes]
        assert_matches_numpy(fn, *arrays)


def test_operand_list_form_on_numba_cpu(rng):
    a, b = make(rng, (2, 3, 4), np.float32), make(rng, (4, 5), np.float32)
    assert_matches_numpy(lambda a, b: (tnp.einsum(a, [E, 0, 1], b, [E, 1, 2], [E, 0, 2]),
                                       np.einsum(a, [0, 1, 2], [2, 0])), a, b,
                         backend="numba_cpu")


def test_operand_list_with_a_python_scalar_and_arrays_as_sublists(rng):
    a = make(rng, (2, 3), np.float64)
    assert_matches_numpy(lambda a: tnp.einsum(2.0, [], a, [0, 1]), a)
    assert_matches_numpy(lambda a: tnp.einsum(a, np.array([0, 1]), [1]), a)
    # Pairs are read left to right: a trailing list after complete pairs is the output.
    b = make(rng, (3, 4), np.float64)
    assert_matches_numpy(lambda a, b: tnp.einsum(a, [0, 1], b, [1, 2], [0, 2], [0]), a, b)


def _size_cases():
    """Every assignment of sizes 0, 1, 2 to the dims of a few specs that has a 0 and a 1 (the
    broadcasting NumPy allows between operands)."""
    specs = ["ij,jk->ik", "ij,jk", "i,i", "i,i->", "ij,ij->ij", "ij,j", "bij,bjk->bik",
             "...i,...i", "...i,...i->...", "i,j->ij"]
    cases = []
    for spec in specs:
        terms = spec.split("->")[0].split(",")
        ndims = [len(t.replace("...", "")) + ("..." in t) for t in terms]
        for sizes in itertools.product([0, 1, 2], repeat=sum(ndims)):
            if 0 in sizes and 1 in sizes:
                shapes, at = [], 0
                for nd in ndims:
                    shapes.append(sizes[at:at + nd])
                    at += nd
                cases.append((spec, shapes))
    return cases


SIZE_CASES = _size_cases()


def as_operand_list(spec):
    """``np.einsum(spec, *xs)`` written in the operand-list form (``spec`` without '...')."""
    inputs, _, output = spec.partition("->")
    number = {c: k for k, c in enumerate(sorted(set(spec) - set(",->")))}
    lists = [[number[c] for c in term] for term in inputs.split(",")]
    tail = [[number[c] for c in output]] if "->" in spec else []

    def fn(*xs):
        return np.einsum(*[v for pair in zip(xs, lists) for v in pair], *tail)
    return fn


def test_size_zero_labels_broadcast_against_size_one(rng):
    """A label of size 1 in one operand and 0 in another has size 0 (and differently sized
    labels are refused as NumPy refuses them), in both forms, values and gradients."""
    checked = 0
    for spec, shapes in SIZE_CASES:
        arrays = [rng.normal(size=s) for s in shapes]
        fn = lambda *xs: tnp.einsum(spec, *xs)  # noqa: E731
        if assert_matches_numpy(fn, *arrays) is None:
            continue  # NumPy refused too
        checked += 1
        if "..." not in spec:
            assert_matches_numpy(as_operand_list(spec), *arrays)
        tracejit.grad(lambda *xs: fn(*xs).sum(), argnums=tuple(range(len(arrays))))(*arrays)
    assert checked > 100


def test_size_zero_and_one_on_numba_cpu(rng):
    f = tracejit.compile(lambda a, b: tnp.einsum("ij,jk->ik", a, b), backend="numba_cpu")
    for sa, sb in [((2, 1), (0, 3)), ((2, 0), (1, 3)), ((0, 1), (1, 0)), ((1, 0), (0, 2))]:
        a, b = rng.normal(size=sa), rng.normal(size=sb)
        np.testing.assert_array_equal(f(a, b), np.einsum("ij,jk->ik", a, b))


def test_zero_dimensional_operands(rng):
    a = make(rng, (2, 3), np.float64)
    for fn in (lambda a: tnp.einsum(",ij", 2.0, a), lambda a: tnp.einsum("...,...", 2.0, a),
               lambda a: tnp.einsum("...,ij->ji", np.float32(2), a),
               lambda a: tnp.einsum("->", a[0, 0]), lambda a: tnp.einsum("ij...->...", a),
               lambda a: tnp.einsum("ij->i...", a)):
        assert_matches_numpy(fn, a)


BAD_CALLS = [
    lambda a, b: np.einsum(a, [0, 52]), lambda a, b: np.einsum(a, [0, -1]),
    lambda a, b: np.einsum(a, [0, 1.0]), lambda a, b: np.einsum(a, [0, "a"]),
    lambda a, b: np.einsum(a, [0, True]), lambda a, b: np.einsum(a, [0]),
    lambda a, b: np.einsum(a, [0, 1], b), lambda a, b: np.einsum(a, [0, 1], [0, 0]),
    lambda a, b: np.einsum(a, [0, 1], [3]), lambda a, b: np.einsum(a, 0),
    lambda a, b: np.einsum(a, [E, E]), lambda a, b: np.einsum(a, [E, 1], [1]),
    lambda a, b: np.einsum(a, [0, 1], b, [1, 2], dtype=np.float32),
    lambda a, b: np.einsum("...i->i", a), lambda a, b: np.einsum("i..j", a),
    lambda a, b: np.einsum("ij->->", a), lambda a, b: np.einsum("ij-", a),
    lambda a, b: np.einsum("ijk", a), lambda a, b: np.einsum("ij,ij", a),
    lambda a, b: np.einsum("ij", a, a), lambda a, b: np.einsum("ii", a),
    lambda a, b: np.einsum("ij->ii", a), lambda a, b: np.einsum("ij->k", a),
    lambda a, b: np.einsum("...->", a), lambda a, b: np.einsum("i1", a),
    lambda a, b: np.einsum("ij,jk", a, a), lambda a, b: np.einsum("ii", np.ones((1, 3)) * a),
]


@pytest.mark.parametrize("case", range(len(BAD_CALLS)))
def test_bad_calls_are_refused_as_numpy_refuses(case, rng):
    a, b = make(rng, (2, 3), np.float64), make(rng, (3, 4), np.float64)
    assert_matches_numpy(BAD_CALLS[case], a, b)


def test_casting_rule_and_dtype(rng):
    a, b = make(rng, (2, 3), np.float32), make(rng, (3, 4), np.int32)
    for kwargs in ({"dtype": np.float64}, {"dtype": np.float16, "casting": "unsafe"},
                   {"dtype": np.float32, "casting": "same_kind"}):
        assert_matches_numpy(lambda a, b: tnp.einsum(a, [0, 1], b, [1, 2], **kwargs), a, b)
    with pytest.raises(TypeError, match="according to the rule 'safe'(.|\n)*test_einsum_forms"):
        tracejit.compile(lambda a, b: tnp.einsum("ij,jk", a, b, dtype=np.int32))(a, b)
