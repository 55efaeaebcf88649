"""Random programs against NumPy (the differential fuzzer, ``tracejit/testing``), and every
minimal failing program it found, kept as a regression test.

Each backend runs a few hundred random programs: fixed ones (program k of a seed is always the
same program), in chunks that the xdist workers share, and ones Hypothesis draws (its
``st.randoms()`` drives the generator, so it can shrink the choices too). A failure prints the
program shrunk by the fuzzer as a runnable script. ``python -m tracejit.testing.fuzz`` runs
the same checks at any length (docs/testing.md).
"""
from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tracejit
import tracejit.numpy as tnp
from oracle import assert_matches_numpy
from tracejit.errors import IRVerificationError
from tracejit.ir import Eqn, Graph, Var
from tracejit.passes.check_fused import check_fused
from tracejit.passes.fusion import kernel
from tracejit.primitives import elementwise as E
from tracejit.testing import fuzz
from tracejit.testing.programs import generate

CUDA = "numba_cuda"
# (programs per chunk, chunks) of the fixed programs, forward and gradient, per backend:
# compiled backends cost about 0.4 s a program (1 s with its gradient) on the CI machine.
FIXED = {"interpreter": ((100, 4), (100, 4)), "numba_cpu": ((40, 4), (20, 4)),
         CUDA: ((50, 4), (25, 4))}
DRAWN = {"interpreter": (100, 100), "numba_cpu": (40, 20), CUDA: (40, 20)}  # Hypothesis


def _fail(program, backend, outcome):
    small, outcome = fuzz.shrink(program, backend, outcome)
    pytest.fail(f"{outcome.kind}: {outcome.detail}\n{outcome.trace}\nsmallest program found:\n"
                f"{small.snippet(backend)}", pytrace=False)


def _chunks():
    cases = []
    for backend, modes in FIXED.items():
        for grad, (size, count) in zip((False, True), modes):
            cases += [(backend, grad, k * size, size) for k in range(count)]
    return cases


@pytest.mark.parametrize("target,grad,start,size", _chunks(),
                         ids=lambda v: v if isinstance(v, str) else str(v))
def test_fixed_random_programs(target, grad, start, size):
    report = fuzz.run(target, size, seed=0, grad=grad, start=start, log=lambda line: None)
    if report.failures:
        index, outcome, program = report.failures[0]
        _fail(program, target, outcome)


def _drawn(backend, grad):
    @settings(max_examples=DRAWN[backend][grad], deadline=None, derandomize=True,
              database=None, suppress_health_check=list(HealthCheck))
    @given(rnd=st.randoms(use_true_random=False))
    def check(rnd):
        program = generate(rnd, grad=grad)
        outcome = fuzz.check(program, backend)
        if outcome.failed:
            _fail(program, backend, outcome)
    return check


@pytest.mark.parametrize("grad", [False, True], ids=["forward", "grad"])
@pytest.mark.parametrize("target", list(DRAWN))
def test_drawn_random_programs(target, grad):
    _drawn(target, grad)()


# --- the fuzzer itself -------------------------------------------------------------------------
def test_fuzzer_finds_and_shrinks_a_planted_bug(monkeypatch):
    """A wrong rule for one primitive (float multiplication off by 0.1%) is caught and shrunk
    to a smaller program that still shows it."""
    def wrong_mul(a, b):
        product = np.multiply(a, b)
        return (product * 1.001).astype(product.dtype) if product.dtype.kind == "f" else product
    monkeypatch.setattr(E.mul, "impl", wrong_mul)
    found = None
    for index in range(100):
        program = fuzz.program(7, index, max_stmts=6)
        outcome = fuzz.check(program, "interpreter")
        if outcome.failed:
            found = (program, outcome)
            break
    assert found is not None, "no program failed"
    small, outcome = fuzz.shrink(found[0], "interpreter", found[1])
    assert outcome.kind == "mismatch"
    assert len(small.stmts) <= len(found[0].stmts) and len(small.stmts) <= 3
    snippet = small.snippet("interpreter")
    namespace = {}
    exec(compile(snippet.replace("print(", "(lambda *a: a)("), "<snippet>", "exec"), namespace)
    assert callable(namespace["f"])  # the snippet is a runnable script


def test_fuzzer_checks_gradients_against_finite_differences(monkeypatch):
    """A wrong derivative (sin' = 1.01 cos) fails the finite-difference comparison."""
    from tracejit.primitives import elementwise
    original = elementwise.sin.pullback

    def wrong(ct, values, out, needed, params):
        return [g * 1.01 if g is not None else g for g in original(ct, values, out, needed,
                                                                  params)]
    monkeypatch.setattr(elementwise.sin, "pullback", wrong)
    # Every gradient program ends in sum(sin(out)); those whose output depends on a float
    # input (not all: integer inputs are not differentiated) must be caught.
    kinds = [fuzz.check(fuzz.program(0, k, grad=True), "interpreter").kind for k in range(20)]
    assert set(kinds) <= {"ok", "grad-mismatch"}, kinds
    assert kinds.count("grad-mismatch") >= 10, kinds


def test_program_k_of_a_seed_is_always_the_same():
    assert fuzz.program(3, 11).source() == fuzz.program(3, 11).source()
    assert fuzz.program(3, 11).source() != fuzz.program(3, 12).source()


def test_every_generated_program_is_valid_numpy():
    for k in range(200):
        program = generate(random.Random(k))
        program.evaluate()  # raises if NumPy refuses a statement
        assert program.stmts


# --- the fused-graph verifier ------------------------------------------------------------------
def test_verifier_names_an_equation_codegen_cannot_emit():
    """A kernel holding a reshape of a full-space value (fusion once did this with size-1
    dimensions) is refused right after fusion, naming the equation."""
    from tracejit.ir import TensorType
    from tracejit.primitives import structural as S
    x, y, z = (Var(TensorType((1, 1), np.dtype(np.float32))) for _ in range(3))
    body = Graph([x], [Eqn(E.exp, [x], {}, [y]), Eqn(S.reshape, [y], {"shape": (1, 1)}, [z])],
                 [z], [], "elementwise_kernel")
    a, out = Var(x.ttype), Var(z.ttype)
    graph = Graph([a], [Eqn(kernel, [a], {"kind": "elementwise", "body": body}, [out])], [out])
    with pytest.raises(IRVerificationError, match=r"reshape\[1, 1\].*no scalar code"):
        check_fused(graph)


# --- what the fuzzer found, each the smallest program, on every backend ------------------------
def _std_all_axes_keepdims(x):  # (1, 1): per-row values have the space's shape
    return x.std(axis=(0, -1), keepdims=True, ddof=1)


def _row_value_reshaped(x):  # rows of (4, 1) kept as (4, 1), then more per-row work
    return np.sqrt(x.var(axis=1, keepdims=True) + 1.0), x - x.mean(axis=1, keepdims=True)


def _broadcast_read_by_reduction_and_elementwise(v):
    return np.var(tnp.broadcast_to(v, (3,)), axis=-1, keepdims=True)


def _matmul_of_broadcast(a, b):  # strides (0, 0): BLAS was given a leading dimension of 0
    return (np.einsum("ij,jm->im", a, b) + 0.0)[0]


def _einsum_size_zero(a, b):
    return np.std(np.einsum("ij,jm->im", a, b).T)


REGRESSIONS = [
    ("std_all_axes_keepdims", _std_all_axes_keepdims, [np.array([[0.5]], np.float32)]),
    ("row_value_reshaped", _row_value_reshaped, [np.arange(4.0).reshape(4, 1)]),
    ("broadcast_read_by_reduction", _broadcast_read_by_reduction_and_elementwise,
     [np.array([1.6], np.float32)]),
    ("matmul_of_broadcast", _matmul_of_broadcast,
     [np.broadcast_to(np.array([[3.138]]), (1, 1)), np.array([[-2.4, 1.7]])]),
    ("einsum_size_zero", _einsum_size_zero,
     [np.zeros((0, 4), np.float32), np.ones((4, 2), np.int8)]),
    ("clip_beyond_uint8", lambda a: a.clip(-1, 1), [np.array([[4], [5], [0]], np.uint8)]),
    ("uint64_vs_int64", lambda a, b: (a <= b, np.greater(b, a), a == b),
     [np.array([1, 2, 2 ** 63 + 5], np.uint64), np.array([-1, 3, -2 ** 62])]),
    ("compare_beyond_range", lambda a: (np.not_equal(a, -1), a < 300, -1 >= a),
     [np.zeros((2, 3), np.uint8)]),
    ("where_wraps_python_int", lambda c, u: np.where(c, u, -1),
     [np.array([[True], [False]]), np.array([[0, 3, 5]], np.uint32)]),
    ("round_of_python_bool", lambda a: tnp.clip(np.round(a), -2, 2), [True]),
    ("numpy_call_on_python_float_is_strong", lambda x, a: (x + np.sin(a), x + a * 2.0),
     [np.ones(2, np.float32), 1.5]),
    ("remainder_of_python_bools", lambda a: tnp.remainder(a, True), [True]),
    ("float16_composite", lambda x: (np.arctanh(x), np.sinh(x), np.logaddexp(x, x)),
     [np.array([-0.99951171875, -0.84912109375, 0.3], np.float16)]),
    ("bool_squared_operator", lambda a: (a ** 2, np.power(a, 2), a ** 3),  # int8, int64, int64
     [np.array([[True], [False]])]),
]


@pytest.mark.parametrize("name,fn,args", REGRESSIONS, ids=[r[0] for r in REGRESSIONS])
def test_found_by_the_fuzzer(name, fn, args, backend):
    assert_matches_numpy(fn, *args, backend=backend)


@pytest.mark.parametrize("name,fn,args", REGRESSIONS[:5], ids=[r[0] for r in REGRESSIONS[:5]])
def test_found_by_the_fuzzer_on_cuda(name, fn, args):
    assert_matches_numpy(fn, *args, backend=CUDA)


def test_sinh_and_cosh_differentiate_at_zero():
    """sinh was written with abs(x), whose derivative convention at 0 made sinh'(0) = 0."""
    x = np.array([0.0, -0.0, 0.4, -1.5, 3.0])
    g = tracejit.grad(lambda x: (np.sinh(x) + np.cosh(x)).sum())(x)
    np.testing.assert_allclose(g, np.cosh(x) + np.sinh(x), rtol=1e-12)
    tracejit.check_grads(lambda x: np.sinh(x).sum() * np.cosh(x).sum(), (x,), order=2)
