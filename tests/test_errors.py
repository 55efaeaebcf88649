"""Every user-facing error names the problem and the user's file:line."""
from __future__ import annotations

import os
import re

import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp

HERE = __file__.rsplit("/", 1)[-1]


def line_of(marker: str, path: str = __file__) -> int:
    """The line number in ``path`` (this file) of the line containing ``marker``."""
    with open(path) as f:
        for number, line in enumerate(f, start=1):
            if marker in line and "line_of(" not in line:
                return number
    raise AssertionError(f"marker {marker!r} not found")


def assert_names_line(excinfo, marker):
    message = str(excinfo.value)
    assert re.search(rf"{re.escape(HERE)}:{line_of(marker)}\b", message), message


def numpy_message(fn, *args):
    with pytest.raises(Exception) as info:
        fn(*args)
    return str(info.value)


def test_value_dependent_if_names_the_line(jit):
    def f(x):
        if x.sum() > 0:  # MARK-if
            return x
        return -x

    with pytest.raises(tracejit.TracerConversionError) as info:
        jit(f)(np.ones(3))
    assert_names_line(info, "MARK-if")
    assert "tracejit.numpy.where" in str(info.value)
    assert "if x.sum() > 0" in str(info.value)  # the offending source line is shown


def test_while_int_float_on_tracers(jit):
    def loop(x):
        while x.max() < 10:  # MARK-while
            x = x * 2
        return x

    def as_int(x):
        return np.zeros(int(x[0]))  # MARK-int

    def as_float(x):
        return float(x.sum())  # MARK-float

    for fn, marker in ((loop, "MARK-while"), (as_int, "MARK-int"), (as_float, "MARK-float")):
        with pytest.raises(tracejit.TracerConversionError) as info:
            jit(fn)(np.ones(3))
        assert_names_line(info, marker)
    assert issubclass(tracejit.TracerConversionError, TypeError)


def test_unsupported_numpy_function(jit):
    def f(x):
        return np.fft.fft(x)  # MARK-fft

    with pytest.raises(NotImplementedError) as info:
        jit(f)(np.ones(4))
    assert_names_line(info, "MARK-fft")
    assert "numpy.fft.fft" in str(info.value)
    assert "tracejit/" not in str(info.value).split("\n")[0]  # nothing internal listed


def test_unsupported_ufunc_and_method(jit):
    def f(x):
        return np.cbrt(x)  # MARK-cbrt

    def g(x):
        return np.add.outer(x, x)  # MARK-outer

    for fn, marker, name in ((f, "MARK-cbrt", "numpy.cbrt"), (g, "MARK-outer", "numpy.add.outer")):
        with pytest.raises(NotImplementedError) as info:
            jit(fn)(np.ones(4))
        assert_names_line(info, marker)
        assert name in str(info.value)


def test_broadcast_mismatch_has_numpy_message(jit):
    def f(a, b):
        return a + b  # MARK-bcast

    a, b = np.ones((2, 3)), np.ones((4,))
    with pytest.raises(ValueError) as info:
        jit(f)(a, b)
    assert numpy_message(f, a, b) in str(info.value)
    assert_names_line(info, "MARK-bcast")


@pytest.mark.parametrize("name,fn,args", [
    ("matmul", lambda a, b: a @ b, (np.ones((2, 3)), np.ones((4, 5)))),
    ("reshape", lambda a: a.reshape(5, 3), (np.ones((2, 3)),)),
    ("concatenate", lambda a, b: tnp.concatenate([a, b], axis=0), (np.ones((2, 3)),
                                                                     np.ones((2, 4)))),
    ("dot", lambda a, b: tnp.dot(a, b), (np.ones((2, 3)), np.ones((4, 5)))),
    ("broadcast_to", lambda a: tnp.broadcast_to(a, (2, 4)), (np.ones(3),)),
    ("max-empty", lambda a: a.max(axis=0), (np.ones((0, 3)),)),
    ("argmax-empty", lambda a: a.argmax(axis=0), (np.ones((0, 3)),)),
    ("index", lambda a: a[5], (np.ones((2, 3)),)),
    ("index-array", lambda a: a[[0, 9]], (np.ones((2, 3)),)),
    ("too-many-indices", lambda a: a[0, 0, 0], (np.ones((2, 3)),)),
    ("axis", lambda a: a.sum(axis=3), (np.ones((2, 3)),)),
    ("bool-subtract", lambda a: a - a, (np.ones(3, bool),)),
    ("int-overflow-literal", lambda a: a + 1000, (np.ones(3, np.int8),)),
])
def test_shape_and_type_errors_match_numpy(name, fn, args, jit):
    expected = numpy_message(fn, *args)
    with pytest.raises(Exception) as info:
        jit(fn)(*args)
    assert expected in str(info.value), f"{expected!r} not in {str(info.value)!r}"
    assert re.search(rf"{re.escape(HERE)}:\d+", str(info.value)), str(info.value)


def test_boolean_mask_on_tracer_is_rejected(jit):
    def f(x):
        return x[x > 0]  # MARK-mask

    with pytest.raises(IndexError) as info:
        jit(f)(np.arange(-2.0, 3.0))
    assert_names_line(info, "MARK-mask")
    assert "where" in str(info.value)


def test_static_argument_errors():
    f = tracejit.compile(lambda x, n: x * n, static_argnums=1)
    with pytest.raises(TypeError, match="static .* is an array") as info:
        f(np.ones(3), np.ones(2))  # MARK-static-array
    assert_names_line(info, "MARK-static-array")
    with pytest.raises(TypeError, match="not hashable.*tuple") as info:
        f(np.ones(3), [1, 2])  # MARK-static-list
    assert_names_line(info, "MARK-static-list")
    np.testing.assert_array_equal(f(np.ones(3), 3), np.full(3, 3.0))


def test_bad_argument_types_name_the_argument():
    f = tracejit.compile(lambda x, cfg: x)
    with pytest.raises(TypeError, match=r"args\[1\]\['mode'\] is a str") as info:
        f(np.ones(2), {"mode": "fast"})  # MARK-str-arg
    assert_names_line(info, "MARK-str-arg")
    with pytest.raises(TypeError, match=r"args\[0\].*complex128 is not supported"):
        f(np.ones(2, complex), 1)
    with pytest.raises(OverflowError):
        f(np.ones(2), 2**70)


def test_leaked_tracer_is_reported():
    leaked = []

    @tracejit.compile
    def f(x):
        leaked.append(x)
        return x

    f(np.ones(2))
    g = tracejit.compile(lambda y: y + leaked[0])  # MARK-leak
    with pytest.raises(tracejit.UnexpectedTracerError) as info:
        g(np.ones(2))
    assert "escape" in str(info.value)


def test_setitem_on_tracer_suggests_where(jit):
    def f(x):
        x[0] = 1.0  # MARK-setitem
        return x

    with pytest.raises(TypeError) as info:
        jit(f)(np.ones(3))
    assert_names_line(info, "MARK-setitem")
    assert "immutable" in str(info.value)


def test_runtime_failure_names_primitive_and_line():
    def f(x, i):
        return x[i]  # MARK-gather

    compiled = tracejit.compile(f)
    np.testing.assert_array_equal(compiled(np.arange(3.0), np.array([2, -1])), [2.0, 2.0])
    with pytest.raises(IndexError) as info:
        compiled(np.arange(3.0), np.array([5, 0]))
    assert "gather" in str(info.value)
    assert_names_line(info, "MARK-gather")


def test_unknown_backend_and_stage():
    with pytest.raises(ValueError, match="unknown backend 'nope'; available: interpreter"):
        tracejit.compile(lambda x: x, backend="nope")
    lowered = tracejit.compile(lambda x: x + 1, backend="interpreter").lower(np.ones(2))
    with pytest.raises(ValueError, match="unknown stage 'fused'; stages here: traced, simplify"):
        lowered.as_text("fused")  # the interpreter does not fuse


def test_tracing_errors_hide_tracejit_frames_unless_asked():
    import traceback
    import tracejit.errors

    package = os.path.dirname(tracejit.errors.__file__)

    def f(x, y):
        return x + y  # the user's line

    def frames(**settings):
        with tracejit.config.override(**settings):
            with pytest.raises(ValueError) as caught:
                tracejit.compile(f, backend="interpreter")(np.ones(3), np.ones(4))
        return [fr.filename for fr in traceback.extract_tb(caught.value.__traceback__)]

    shown = frames()
    assert shown[-1] == __file__ and not any(name.startswith(package) for name in shown)
    assert any(name.startswith(package) for name in frames(traceback_filtering=False))
