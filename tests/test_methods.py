"""ndarray methods and attributes on traced arrays: NumPy's signatures where tracejit traces them,
and an error naming the method and the user's line for every other public ndarray name."""
from __future__ import annotations

import re

import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp
import test_errors
from oracle import assert_matches_numpy
from test_numpy_table import make

HERE = __file__.rsplit("/", 1)[-1]

# ndarray name, a function using it, input shape (default (3, 4))
CASES = [
    ("all", lambda x: x.all(), None), ("all", lambda x: x.all(axis=1, keepdims=True), None),
    ("any", lambda x: x.any(0), None),
    ("argmax", lambda x: x.argmax(), None),
    ("argmax", lambda x: x.argmax(axis=1, keepdims=True), None),
    ("argmin", lambda x: x.argmin(0), None),
    ("argsort", lambda x: x.argsort(kind="stable"), None),
    ("argsort", lambda x: x.argsort(axis=0, stable=True), None),
    # (which of equal values lands where is NumPy's choice: compare the kth values)
    ("argpartition", lambda x: x[tnp.arange(3)[:, None], x.argpartition(2)][:, 2], None),
    ("astype", lambda x: x.astype(np.float32), None),
    ("astype", lambda x: x.astype("int8", "C", casting="unsafe"), None),
    ("clip", lambda x: x.clip(-1, 1), None), ("clip", lambda x: x.clip(min=0), None),
    ("clip", lambda x: x.clip(max=0.5), None),
    ("conj", lambda x: x.conj(), None), ("conjugate", lambda x: x.conjugate(), None),
    ("copy", lambda x: x.copy() + x.copy(order="C"), None),
    ("cumprod", lambda x: x.cumprod(axis=1), None), ("cumsum", lambda x: x.cumsum(), None),
    ("cumsum", lambda x: x.cumsum(0, np.float64), None),
    ("diagonal", lambda x: x.diagonal(), None),
    ("diagonal", lambda x: x.diagonal(1, axis1=2, axis2=1), (2, 3, 4)),
    ("dot", lambda x: x.dot(x.T), None), ("dot", lambda x: x[0].dot(x[1]), None),
    ("dtype", lambda x: tnp.ones(2, x.dtype), None),
    ("flatten", lambda x: x.flatten(), None), ("flatten", lambda x: x.flatten("C"), None),
    ("imag", lambda x: x.imag, None), ("real", lambda x: x.real, None),
    ("itemsize", lambda x: x.itemsize, None), ("nbytes", lambda x: x.nbytes, None),
    ("max", lambda x: x.max(), None), ("max", lambda x: x.max(axis=0, keepdims=True), None),
    ("mean", lambda x: x.mean(axis=1), None), ("mean", lambda x: x.mean(dtype=np.float64), None),
    ("min", lambda x: x.min(1), None),
    ("mT", lambda x: x.mT, (2, 3, 4)),
    ("ndim", lambda x: x.ndim, None), ("shape", lambda x: x.shape, None),
    ("size", lambda x: x.size, None),
    ("prod", lambda x: x.prod(axis=1, keepdims=True), None),
    ("ravel", lambda x: x.ravel(), None),
    ("repeat", lambda x: x.repeat(2), None), ("repeat", lambda x: x.repeat(2, axis=0), None),
    ("reshape", lambda x: x.reshape(4, 3), None), ("reshape", lambda x: x.reshape((2, -1)), None),
    ("reshape", lambda x: x.reshape([12], order="C"), None),
    ("round", lambda x: x.round(), None), ("round", lambda x: x.round(1), None),
    ("squeeze", lambda x: x.squeeze(), (1, 3, 1)),
    ("squeeze", lambda x: x.squeeze(axis=0), (1, 3, 1)),
    ("std", lambda x: x.std(), None), ("std", lambda x: x.std(axis=0, ddof=1), None),
    ("sum", lambda x: x.sum(), None), ("sum", lambda x: x.sum(1, np.float64, keepdims=True), None),
    ("swapaxes", lambda x: x.swapaxes(0, 1), None),
    ("take", lambda x: x.take([2, 0, 2], axis=1), None), ("take", lambda x: x.take(5), None),
    ("T", lambda x: x.T, None),
    ("trace", lambda x: x.trace(), None), ("trace", lambda x: x.trace(offset=1), None),
    ("transpose", lambda x: x.transpose(), None), ("transpose", lambda x: x.transpose(1, 0), None),
    ("transpose", lambda x: x.transpose((2, 0, 1)), (2, 3, 4)),
    ("var", lambda x: x.var(ddof=1), None), ("var", lambda x: x.var(axis=1, keepdims=True), None),
]
# Calls NumPy refuses: tracejit must refuse them with the same exception type.
REFUSED_BY_NUMPY = [
    ("astype_safe", lambda x: x.astype(np.int8, casting="safe")),
    ("reshape_no_shape", lambda x: x.reshape()),
    ("reshape_bad", lambda x: x.reshape(5, -1)),
    ("swapaxes_bad", lambda x: x.swapaxes(0, 2)),
    ("squeeze_bad", lambda x: x.squeeze(axis=0)),
    ("mT_1d", lambda x: x[0].mT),
]
DTYPES = [np.float32, np.int64, np.bool_]


def case_input(rng, shape, dtype):
    return make(rng, shape or (3, 4), dtype, "small")


@pytest.mark.parametrize("name,fn,shape", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_method_matches_numpy(name, fn, shape, rng):
    for dtype in DTYPES:
        assert_matches_numpy(fn, case_input(rng, shape, dtype))


@pytest.mark.parametrize("name,fn", REFUSED_BY_NUMPY, ids=[c[0] for c in REFUSED_BY_NUMPY])
def test_method_refuses_as_numpy(name, fn, rng):
    assert_matches_numpy(fn, case_input(rng, None, np.float32))


# Compiled backends take a few of the table's names (a compile costs seconds on numba_cpu).
NAMES_BY_BACKEND = {"numba_cpu": {"astype", "clip", "imag", "nbytes", "reshape", "sum", "var"}}


def test_methods_compiled(rng, backend):
    """The table, or the backend's part of it, as one compiled function."""
    names = NAMES_BY_BACKEND.get(backend)
    cases = [c for c in CASES if names is None or c[0] in names]
    xs = [case_input(rng, shape, np.float32) for _, _, shape in cases]

    def every_case(*xs):
        return [fn(x) for (_, fn, _), x in zip(cases, xs)]

    assert_matches_numpy(every_case, *xs, backend=backend)


SUPPORTED = sorted({name for name, _, _ in CASES})
# Refused as `float(x)` is (TracerConversionError): they hand back the values themselves.
NEEDS_VALUES = {"item", "tolist", "tobytes", "tofile", "dump", "dumps"}
# Walked at collection time: a name a new NumPy adds to ndarray fails here (AttributeError)
# until tracejit/numpy/methods.py traces or refuses it.
REFUSED = [n for n in dir(np.ndarray) if not n.startswith("_") and n not in SUPPORTED]


def line_of(marker: str) -> int:
    return test_errors.line_of(marker, __file__)


def test_table_names_are_ndarray_names():
    assert [n for n in SUPPORTED if not hasattr(np.ndarray, n)] == []


@pytest.mark.parametrize("name", REFUSED)
def test_other_ndarray_names_are_refused_at_the_users_line(name):
    is_method = callable(getattr(np.ndarray, name))

    def use(x):
        return getattr(x, name)() if is_method else getattr(x, name)  # MARK-use

    expected = tracejit.TracerConversionError if name in NEEDS_VALUES else NotImplementedError
    with pytest.raises(expected) as info:
        tracejit.compile(use, backend="interpreter")(np.ones(3))
    message = str(info.value)
    assert re.search(rf"\.{name}\b", message), message
    assert f"{HERE}:{line_of('MARK-use')}" in message, message


def test_in_place_methods_say_arrays_are_immutable():
    with pytest.raises(NotImplementedError, match="immutable"):
        tracejit.compile(lambda x: x.sort(), backend="interpreter")(np.ones(3))


def test_refused_under_grad_without_compile():
    with pytest.raises(NotImplementedError) as info:
        tracejit.grad(lambda x: x.choose([x, x]).sum())(np.ones(3))  # MARK-grad
    assert f"{HERE}:{line_of('MARK-grad')}" in str(info.value)


def test_other_attributes_stay_missing():
    """Names that are not ndarray's raise AttributeError, so probes (pytrees, device arrays)
    answer False on tracers."""
    seen = []

    def f(x):
        seen.extend(hasattr(x, n) for n in ("not_an_ndarray_attr", "_fields", "keys",
                                             "__cuda_array_interface__", "__array_interface__"))
        with pytest.raises(AttributeError, match="not_an_ndarray_attr"):
            x.not_an_ndarray_attr
        return x

    tracejit.compile(f, backend="interpreter")(np.ones(3))
    assert seen == [False] * 5
