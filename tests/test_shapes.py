"""A new shape of a compiled function costs a trace, not a compile (numba_cpu).

The entry function reads every shape-derived number (sizes, slice bounds, ``sum / n``) from its
arguments, so its source, and its compiled code, serve every shape of the same ranks and dtypes;
``compile_stats()`` says ``reuse`` for such a signature. Decisions that do depend on sizes
(parallel or serial loops, outputs large enough to be allocated by NumPy) make a few variants,
keyed by size class (docs/caching.md).
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp
from oracle import assert_same


def _backend_times(fn) -> list[str]:
    """Per signature, how its compiled code was had: numba, load or reuse."""
    return [next(k for k in ("numba", "load", "reuse") if k in s) for s in fn.compile_stats()]


def _program(x, w):
    y = tnp.tanh(x @ w) - x.mean(axis=1, keepdims=True)[:, :1]
    return y[1:, ::-1], tnp.cumsum(y, axis=0).sum(), tnp.concatenate([x, x[:1]], axis=0)


def test_new_shapes_reuse_the_compiled_entry(rng):
    f = tracejit.compile(_program, backend="numba_cpu")
    for rows in (5, 6, 9, 40):
        x = rng.normal(size=(rows, 3)).astype(np.float32)
        w = rng.normal(size=(3, 3)).astype(np.float32)
        assert_same(f(x, w), _program(x, w), rtol=1e-4)
    assert _backend_times(f)[1:] == ["reuse"] * 3


@pytest.mark.parametrize("n", [0, 1, 2, 3, 17])
def test_every_size_is_right(n, rng):
    """Sizes 0 and 1 may make other graphs (a variant), never a wrong answer."""
    f = tracejit.compile(lambda x: (np.exp(x) * 2 + 1, x.sum(), np.var(x), x[::-2], x[1:]),
                         backend="numba_cpu")
    f(np.ones(5))
    x = rng.normal(size=n)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's, for the variance of nothing
        expected = (np.exp(x) * 2 + 1, x.sum(), np.var(x), x[::-2], x[1:])
    assert_same(f(x), expected)


def _loss(params, x, y):
    (w1, b1), (w2, b2) = params
    h = tnp.tanh(x @ w1 + b1)
    return ((h @ w2 + b2 - y) ** 2).mean()


def test_a_new_batch_size_of_a_gradient_costs_no_compile(rng):
    params = ((rng.normal(size=(6, 5)), np.zeros(5)), (rng.normal(size=(5, 2)), np.zeros(2)))
    step = tracejit.compile(tracejit.value_and_grad(_loss), backend="numba_cpu")
    reference = tracejit.compile(tracejit.value_and_grad(_loss), backend="interpreter")
    for batch in (8, 3, 17, 1):
        x, y = rng.normal(size=(batch, 6)), rng.normal(size=(batch, 2))
        assert_same(step(params, x, y), reference(params, x, y), rtol=1e-9)
    assert _backend_times(step)[1:3] == ["reuse", "reuse"]


def test_loops_take_new_shapes_too(rng):
    f = tracejit.compile(lambda x, n: tracejit.fori_loop(0, n, lambda i, c: c * 0.5 + x, x),
                         backend="numba_cpu")
    g = tracejit.compile(lambda xs: tracejit.scan(lambda c, x: (c + x, c * x), xs[0], xs),
                         backend="numba_cpu")
    for n in (4, 7, 12):
        x = rng.normal(size=n)
        expected = x.copy()
        for _ in range(3):
            expected = expected * 0.5 + x
        assert_same(f(x, 3), expected)
        xs = rng.normal(size=(n, 2))
        carry, ys = g(xs)
        np.testing.assert_allclose(carry, xs[0] + xs.sum(axis=0))
        assert ys.shape == (n, 2)
    assert _backend_times(f)[1:] == ["reuse"] * 2
    assert _backend_times(g)[1:] == ["reuse"] * 2


def test_parallel_loops_are_a_size_class(rng):
    """Serial and parallel kernels are two variants; sizes within a class share one."""
    with tracejit.config.override(parallel_threshold=1000):
        f = tracejit.compile(lambda x: np.sin(x) * 3.0, backend="numba_cpu")
        for n in (10, 20, 2000, 3000):
            x = rng.normal(size=n)
            assert_same(f(x), np.sin(x) * 3.0)
        kinds = _backend_times(f)
    assert kinds[1] == "reuse" and kinds[3] == "reuse" and kinds[2] != "reuse"


def test_signatures_kept_are_bounded(rng):
    with tracejit.config.override(max_signatures=5, retrace_warning=0):
        f = tracejit.compile(lambda x: x * 2.0, backend="numba_cpu")
        for n in range(1, 21):
            assert_same(f(np.ones(n)), np.full(n, 2.0))
        info = f.cache_info()
        assert len(info.signatures) == 5 and info.traces == 20
        assert info.signatures[-1] == "(args[0]: f64[20])"
        f(np.ones(3))  # forgotten: traced again, and the compiled code reused
        assert f.cache_info().traces == 21 and _backend_times(f)[-1] == "reuse"
        f(np.ones(3))
        assert f.cache_info().traces == 21


def test_retrace_warning_says_new_shapes_cost_no_compile():
    f = tracejit.compile(lambda x: x + 1.0, backend="numba_cpu")
    with tracejit.config.override(retrace_warning=3), warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        for n in (1, 2, 3):
            f(np.ones(n))
    (warning,) = [x for x in w if "traced 3 times" in str(x.message)]
    assert "args[0] (f64[1], f64[2], f64[3])" in str(warning.message)
    assert "compiled code is reused" in str(warning.message)


def test_memory_stays_flat_over_many_shapes(tmp_path):
    """A process meeting hundreds of shapes: at most 50 KiB each, and flat once the bounded
    signature cache is full."""
    script = textwrap.dedent("""
        import os
        import numpy as np
        import tracejit, tracejit.numpy as tnp

        def rss():
            with open("/proc/self/statm") as fh:
                return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

        f = tracejit.compile(lambda x: (tnp.exp(x) * 2 + 1).sum(axis=0), backend="numba_cpu")
        for n in range(1, 60):
            f(np.ones((n, 3)))
        start = rss()
        for n in range(60, 460):
            f(np.ones((n, 3)))
        print((rss() - start) / 400)
    """)
    env = dict(os.environ, TRACEJIT_MAX_SIGNATURES="50", TRACEJIT_RETRACE_WARNING="0",
               TRACEJIT_CACHE_DIR=str(tmp_path))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    per_shape = float(result.stdout.split()[-1])
    assert per_shape < 50 * 1024, f"{per_shape / 1024:.1f} KiB per shape"
