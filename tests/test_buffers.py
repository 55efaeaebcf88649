"""Buffer planning: donated inputs, the per-signature workspace, dead-buffer reuse.

Whatever the plan, results must be NumPy's: donation and workspace reuse change where values
live, never what they are.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp
from tracejit.backends import buffers
from oracle import assert_same


def adam(p, g, m, v, lr):
    m = 0.9 * m + 0.1 * g
    v = 0.999 * v + 0.001 * g * g
    return p - lr * m / (tnp.sqrt(v) + 1e-8), m, v


def test_donated_buffers_are_updated_in_place_with_numpys_values(backend, rng):
    p, g, m, v = (rng.random(50).astype(np.float32) for _ in range(4))
    expected = adam(p, g, m, v, 1e-3)
    step = tracejit.compile(adam, backend=backend, donate_argnums=(0, 2, 3))
    pd, md, vd = p.copy(), m.copy(), v.copy()
    out = step(pd, g, md, vd, 1e-3)
    for got, want in zip(out, expected):
        assert_same(got, want)
    if backend == "numba_cpu":  # the outputs are the donated arrays: no allocation
        assert out[0] is pd and out[1] is md and out[2] is vd
    else:  # the interpreter never reuses buffers
        assert_same(pd, p)


# Patterns where writing an output into the donated input would be wrong unless refused.
def _scale(x, w):
    return x * 2.0


def _reversed_read(x, w):  # the kernel reads x at another index than it writes
    return x + x[::-1]


def _returned_too(x, w):  # x is itself an output
    return x * 2.0, x


def _read_later(x, w):  # x is read by a matmul after the elementwise kernel
    y = tnp.exp(x)
    return y, (y @ w) + x.sum()


def _row_kernel(x, w):  # softmax: reads each row several times
    e = tnp.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _transposed(x, w):
    return x.T * 2.0


@pytest.mark.parametrize("fn", [_scale, _reversed_read, _returned_too, _read_later, _row_kernel,
                                _transposed])
def test_donation_never_changes_results(fn, rng):
    x = rng.normal(size=(4, 4))
    w = rng.normal(size=(4, 3))
    expected = fn(x, w)
    compiled = tracejit.compile(fn, backend="numba_cpu", donate_argnums=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # some patterns cannot reuse x: that is the point
        got = compiled(x.copy(), w)
    for a, b in zip(got if isinstance(got, tuple) else (got,),
                    expected if isinstance(expected, tuple) else (expected,)):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_which_patterns_reuse_the_donated_buffer(rng):
    x, w = rng.normal(size=(4, 4)), rng.normal(size=(4, 3))

    def reused(fn):
        xd = x.copy()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = tracejit.compile(fn, backend="numba_cpu", donate_argnums=0)(xd, w)
        return any(o is xd for o in (out if isinstance(out, tuple) else (out,)))

    assert reused(_scale)
    assert not reused(_reversed_read)
    assert not reused(_returned_too)
    assert not reused(_row_kernel)


def test_an_unusable_donation_warns_naming_the_argument(rng):
    compiled = tracejit.compile(lambda x, y: x.sum() + y, backend="numba_cpu", donate_argnums=0)
    with pytest.warns(UserWarning, match=r"donated args\[0\] cannot be reused"):
        compiled(np.ones(3), 1.0)


def test_overlapping_or_readonly_donated_arguments_are_copied_not_clobbered(rng):
    add = tracejit.compile(lambda a, b: a + b[::-1], backend="numba_cpu", donate_argnums=0)
    x = rng.normal(size=6)
    expected = x + x[::-1]
    assert_same(add(x, x), expected)  # a and b share memory: a is not written while b is read
    frozen = x.copy()
    frozen.flags.writeable = False
    assert_same(add(frozen, x), expected)
    assert_same(frozen, x)
    strided = np.repeat(x, 2)[::2]  # not C-contiguous: not reused
    assert_same(add(strided, x), expected)


def test_static_and_donated_is_an_error():
    with pytest.raises(ValueError, match="both static and donated"):
        tracejit.compile(lambda x, n: x * n, static_argnums=1, donate_argnums=1)
    with pytest.raises(TypeError, match="donate_argnums"):
        tracejit.compile(lambda x: x, donate_argnums="x")


def chain(x):
    a = tnp.exp(x)
    b = tnp.sin(a[::-1])  # a view ends fusion: a, b and c are temporaries in buffers
    c = tnp.cos(b[::-1])
    return c[::-1] * 2.0


def test_dead_temporaries_share_workspace_slots(rng):
    x = rng.normal(size=64)
    lowered = tracejit.compile(chain, backend="numba_cpu").lower(x)
    plan = buffers.plan(lowered.stages["fused"], workspace_kinds=("kernel",))
    # a is dead once b is computed, so c (computed from b) takes a's slot: 3 temporaries, 2 slots.
    assert len(plan.slot_of) == 3 and len(plan.slots) == 2


def test_workspace_is_reused_across_calls_and_never_returned(rng):
    compiled = tracejit.compile(chain, backend="numba_cpu")
    x1, x2 = rng.normal(size=64), rng.normal(size=64)
    first = compiled(x1)
    second = compiled(x2)
    assert_same(first, chain(x1))  # the second call did not overwrite the first's output
    assert_same(second, chain(x2))


def test_concurrent_calls_use_separate_workspaces(rng):
    compiled = tracejit.compile(chain, backend="numba_cpu")
    inputs = [rng.normal(size=2000) for _ in range(4)]
    compiled(inputs[0])
    results = [None] * len(inputs)

    def worker(k):
        for _ in range(20):
            results[k] = compiled(inputs[k])

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for x, got in zip(inputs, results):
        assert_same(got, chain(x))


FAULTS_SCRIPT = """
import resource, sys
import numpy as np
import tracejit
from tracejit.backends import allocator
f = tracejit.compile(lambda x: x * 2.0, tiered=False, backend="numba_cpu")
x = np.ones(1 << 18)  # 2 MiB: above glibc's first mmap threshold, below NumPy's huge pages
f(x)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):
    f(x)
print(allocator._done, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_per_call_outputs_reuse_freed_memory_instead_of_faulting_in_fresh_pages():
    """allocator.py: with glibc's thresholds set before the first compiled call, a call's
    2 MiB output comes from memory the previous call freed (no page faults); left as they are
    (TRACEJIT_MALLOC_TUNING=0), fresh pages are faulted in (hundreds of faults in 50 calls)."""
    def faults(tuning):
        env = dict(os.environ, TRACEJIT_MALLOC_TUNING=tuning)
        done = subprocess.run([sys.executable, "-c", FAULTS_SCRIPT], env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        tuned, count = done.stdout.split()
        return tuned == "True", int(count)

    (tuned, with_tuning), (untouched, without) = faults("1"), faults("0")
    assert tuned and not untouched
    assert with_tuning < 50 and without > 4 * max(with_tuning, 50)
