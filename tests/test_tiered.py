"""Tiered calls (tracejit/tiers.py): the interpreter first, the compiled code once it is built.

In this process the suite's NUMBA_OPT=0 keeps compiled code out of the disk cache, so the
background build runs in a thread here; the compile workers (processes building into the cache)
are tested in child processes with Numba's default optimisation.
"""
import multiprocessing
import os
import subprocess
import sys
import textwrap
import threading
import warnings

import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp
from tracejit import config, tiers
from tracejit.backends import numba_cpu
from tracejit.errors import CompileError


def gelu(x):
    return 0.5 * x * (1.0 + tnp.tanh(0.7978845608 * (x + 0.044715 * x ** 3)))


def gelu_numpy(x):
    return 0.5 * x * (1.0 + np.tanh(0.7978845608 * (x + 0.044715 * x ** 3)))


def loss(w, x):
    return (tnp.tanh(x @ w) ** 2).sum()


@pytest.fixture(autouse=True)
def fresh_entries(monkeypatch):
    """No compiled entry from another test in memory: each test's first call is a new build
    (a new shape of code already in memory skips the tiers: see the test below)."""
    monkeypatch.setattr(numba_cpu, "_entry_cache", {})


@pytest.fixture
def x():
    return np.random.default_rng(0).normal(size=(6, 5)).astype(np.float32)


def entry_run(f):
    (entry,) = f._entries.values()
    return entry.run


def test_tiers_are_on_by_default_for_numba_cpu_only():
    assert config.SETTINGS["tiered"].default is True
    with config.override(tiered=True):
        f = tracejit.compile(lambda a: a + 1.0)
        f(np.ones(3))
        assert isinstance(entry_run(f), (tiers.TieredRun, numba_cpu.CompiledGraph))
        g = tracejit.compile(lambda a: a + 1.0, backend="interpreter")
        g(np.ones(3))
        assert not isinstance(entry_run(g), tiers.TieredRun) and g.ready(np.ones(3))
    with pytest.raises(TypeError, match="tiered"):
        tracejit.compile(lambda a: a, tiered="yes")


def test_first_call_on_the_interpreter_then_the_switch(x):
    f = tracejit.compile(gelu, tiered=True)
    first = f(x)
    np.testing.assert_allclose(first, gelu_numpy(x), rtol=1e-5, atol=1e-6)
    assert first.dtype == np.float32
    run = f._stats[0]["run"]  # (the entry itself holds the compiled graph once it is ready)
    assert isinstance(run, tiers.TieredRun) and "tier0" in run.timings
    assert f.wait(x, timeout=120)
    assert f.ready(x)
    compiled = entry_run(f)
    assert isinstance(compiled, numba_cpu.CompiledGraph)  # later calls skip the tiers
    second = f(x)
    # Same values to float32 rounding: the compiled loop contracts a*b+c into FMAs and uses
    # the vectorised tanh (docs/caching.md lists the last-bit differences).
    np.testing.assert_allclose(second, first, rtol=2e-6, atol=1e-7)
    stats = f.compile_stats()[0]
    assert {"tier0", "codegen", "ready_after"} <= set(stats)
    assert "tier0" not in stats or stats["total"] < stats["ready_after"] + stats["trace"] + 1
    info = f.cache_info()
    assert info.traces == 1 and info.compiles + info.disk_loads == 1


def test_gradients_agree_across_the_switch(x):
    w = np.random.default_rng(1).normal(size=(5, 3)).astype(np.float32)
    f = tracejit.compile(tracejit.value_and_grad(loss), tiered=True)
    value0, grad0 = f(w, x)
    assert f.wait(w, x, timeout=120)
    value1, grad1 = f(w, x)
    np.testing.assert_allclose(value1, value0, rtol=1e-5)
    np.testing.assert_allclose(grad1, grad0, rtol=1e-5, atol=1e-6)


def test_a_new_shape_of_code_in_memory_skips_the_tiers(x):
    f = tracejit.compile(gelu, tiered=True)
    f(x)
    assert f.wait(x, timeout=120)
    wider = np.ones((6, 9), np.float32)  # same ranks and dtypes: the entry is reused
    np.testing.assert_allclose(f(wider), gelu_numpy(wider), rtol=1e-5)
    assert f.ready(wider) and "reuse" in f.compile_stats()[-1]


def test_tiered_false_compiles_before_the_first_call_returns(x):
    f = tracejit.compile(gelu, tiered=False)
    assert not f.ready(x)  # not traced yet
    f(x)
    assert f.ready(x)
    assert isinstance(entry_run(f), numba_cpu.CompiledGraph)
    stats = f.compile_stats()[0]
    assert "tier0" not in stats and {"numba", "load", "reuse"} & set(stats)


def test_wait_traces_and_compiles_a_signature_not_called_yet(x):
    f = tracejit.compile(gelu, tiered=True)
    assert f.wait(x, timeout=120) and f.ready(x)
    assert f.cache_info().traces == 1


def test_unbounded_loops_wait_for_the_compiled_code(capsys):
    def halve_until_small(a):
        return tracejit.while_loop(lambda v: v.sum() > 1.0, lambda v: v * 0.5, a)

    f = tracejit.compile(halve_until_small, tiered=True)
    a = np.full(4, 8.0)
    with config.override(debug=1):
        np.testing.assert_allclose(f(a), np.full(4, 0.25))
    assert f.ready(a) and isinstance(entry_run(f), numba_cpu.CompiledGraph)
    assert "while_loop" in capsys.readouterr().err


def test_plan_counts_loop_trips():
    def steps(n):
        def run(a):
            return tracejit.fori_loop(0, n, lambda i, v: v * 0.999 + 1.0, a)
        lowered = tracejit.compile(run, tiered=False).lower(np.ones(1000, np.float32))
        return lowered.stages["dce"], lowered.stages["fused"]

    assert tiers.plan(*steps(10)).interpret_first
    long = tiers.plan(*steps(1_000_000))
    assert not long.interpret_first and "more than compiling" in long.why


def test_plan_counts_matrix_products():
    def products(n):
        lowered = tracejit.compile(lambda a: (a @ a).sum(), tiered=False).lower(
            np.ones((n, n), np.float32))
        return tiers.plan(lowered.stages["dce"], lowered.stages["fused"])

    assert products(64).interpret_first
    assert not products(8192).interpret_first  # a teraflop: longer than compiling


def test_a_failed_background_compile_keeps_the_interpreter_and_warns_once(x, monkeypatch):
    def broken(self, args, timing=None):
        raise CompileError("tracejit: Numba could not compile kernel _k0 (injected)")

    monkeypatch.setattr(numba_cpu.CompiledGraph, "prepare", broken)
    f = tracejit.compile(gelu, tiered=True)
    np.testing.assert_allclose(f(x), gelu_numpy(x), rtol=1e-5, atol=1e-6)
    with pytest.warns(UserWarning, match="injected"):
        assert f.wait(x, timeout=120) is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once only
        np.testing.assert_allclose(f(x), gelu_numpy(x), rtol=1e-5, atol=1e-6)
    assert not f.ready(x)
    assert "failed" in entry_run(f).tier


def test_threads_calling_during_the_switch(x):
    f = tracejit.compile(gelu, tiered=True)
    expected = gelu_numpy(x)
    failures = []

    def caller():
        for _ in range(40):
            out = f(x)
            if not np.allclose(out, expected, rtol=1e-5, atol=1e-6):
                failures.append(out)

    threads = [threading.Thread(target=caller) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures
    assert f.wait(x, timeout=120)
    np.testing.assert_allclose(f(x), expected, rtol=1e-5, atol=1e-6)
    assert f.cache_info().traces == 1


def _forked_child(queue):
    x = np.linspace(-2, 2, 12, dtype=np.float32)
    ok = np.allclose(_FORKED(x), gelu_numpy(x), rtol=1e-5, atol=1e-6)
    ready = _FORKED.wait(x, timeout=120)
    ok = ok and np.allclose(_FORKED(x), gelu_numpy(x), rtol=1e-5, atol=1e-6)
    queue.put((ok, ready))


_FORKED = None


@pytest.mark.skipif(sys.platform != "linux", reason="fork start method")
def test_a_process_forked_while_compiling_gets_correct_results():
    global _FORKED
    _FORKED = tracejit.compile(gelu, tiered=True)
    x = np.linspace(-2, 2, 12, dtype=np.float32)
    _FORKED(x)  # the background compile is running (or done) when the child starts
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_forked_child, args=(queue,))
    child.start()
    ok, ready = queue.get(timeout=180)
    child.join(60)
    assert ok and ready and child.exitcode == 0
    assert _FORKED.wait(x, timeout=120)


def test_unused_donations_still_warn_when_tiered():
    f = tracejit.compile(lambda a, b: a.sum() + b, donate_argnums=0, tiered=True)
    with pytest.warns(UserWarning, match="cannot be reused"):
        f(np.ones(4), 1.0)


def test_introspection_before_the_switch(x):
    f = tracejit.compile(gelu, tiered=True)
    f(x)
    assert "def entry(" in f.lower(x).kernel_source()
    assert f.wait(x, timeout=120)


# --- compile workers, in child processes (optimised Numba, so the disk cache carries code) ----

WORKER_SCRIPT = textwrap.dedent('''
    import json, sys
    import numpy as np
    import tracejit
    import tracejit.numpy as tnp
    from tracejit.backends import compile_worker

    def f(x):
        return tnp.exp(x) * 2.0 + 1.0

    if sys.argv[1] == "die":  # the workers building g's kernels, then its entry, exit mid-task
        real = compile_worker.Worker.build
        calls = []
        def dying(self, task):
            calls.append(1)
            return real(self, {"exit": 9} if len(calls) <= 2 else task)
        compile_worker.Worker.build = dying
    x = np.linspace(-1, 1, 7)
    g = tracejit.compile(f, tiered=True)
    first = g(x)
    run = g._stats[0]["run"]  # the TieredRun (the entry holds the compiled graph once ready)
    ok = g.wait(x, timeout=120)
    second = g(x)
    close = bool(np.allclose(first, np.exp(x) * 2 + 1) and np.allclose(second, first))
    h = tracejit.compile(lambda x: tnp.sin(x) - 1.0, tiered=True)  # after a death: a new worker
    h(x)
    h_how = h._stats[0]["run"]
    h_ok = h.wait(x, timeout=120) and bool(np.allclose(h(x), np.sin(x) - 1))
    print(json.dumps({"ok": ok, "close": close, "how": run.how, "h_ok": h_ok, "h_how": h_how.how,
                      "stats": sorted(g.compile_stats()[0])}))
''')


def run_worker_script(folder, mode):
    env = dict(os.environ, TRACEJIT_CACHE_DIR=str(folder), TRACEJIT_COMPILE_WORKERS="1")
    env.pop("NUMBA_OPT", None)
    env.pop("TRACEJIT_TIERED", None)
    script = folder / "script.py"
    script.write_text(WORKER_SCRIPT)
    done = subprocess.run([sys.executable, str(script), mode], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    import json
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_worker_builds_into_the_cache_and_a_new_process_loads_it(tmp_path):
    built = run_worker_script(tmp_path, "normal")
    assert built["ok"] and built["close"] and built["h_ok"]
    assert "compile worker" in built["how"] and "compile worker" in built["h_how"]
    assert {"numba", "switch", "kernels", "glue_after"} <= set(built["stats"])
    loaded = run_worker_script(tmp_path, "normal")
    assert loaded["ok"] and loaded["close"]
    assert "loaded from the disk cache" in loaded["how"]
    assert "load" in loaded["stats"] and "numba" not in loaded["stats"]


def test_a_worker_that_dies_is_survived(tmp_path):
    result = run_worker_script(tmp_path, "die")
    assert result["ok"] and result["close"]
    assert "exited with status 9" in result["how"] and "this process instead" in result["how"]
    assert result["h_ok"] and "compile worker" in result["h_how"]  # a new worker


# --- the middle tier: the entry run as Python around compiled kernels (backends/glue.py) ------

GLUE_PROGRAMS = {
    "mlp_grad": (tracejit.grad(loss), lambda r: (r.normal(size=(5, 3)).astype(np.float32),
                                                 r.normal(size=(6, 5)).astype(np.float32))),
    "scans_and_argmax": (lambda a: (tnp.cumsum(a, axis=0), tnp.cumprod(a, axis=1),
                                    tnp.argmax(a, axis=1), tnp.argmin(a, axis=0)),
                         lambda r: (r.normal(size=(4, 5)),)),
    "gather": (lambda a, i: a[i] * 2.0 + 1.0,
               lambda r: (r.normal(size=(6, 3)).astype(np.float32), np.array([0, 5, 2, 2]))),
    "scatter_add_grad": (tracejit.grad(lambda a, i: (a[i] ** 2).sum()),
                         lambda r: (r.normal(size=(6, 3)), np.array([1, 1, 4]))),
    "integer_and_batched_matmul": (lambda a, b, c: (a @ b, c @ c),
                                   lambda r: (r.integers(-3, 3, (3, 4)), r.integers(-3, 3, (4, 2)),
                                              r.normal(size=(2, 3, 3)).astype(np.float32))),
    "cond": (lambda a: tracejit.cond(a.sum() > 0, lambda v: v * 2.0, lambda v: v - 1.0, a),
             lambda r: (r.normal(size=5),)),
}


@pytest.mark.parametrize("name", sorted(GLUE_PROGRAMS))
def test_the_entry_run_as_python_matches_the_compiled_entry(name):
    from tracejit.backends import glue
    fn, make = GLUE_PROGRAMS[name]
    args = make(np.random.default_rng(3))
    f = tracejit.compile(fn, tiered=False)
    expected = f(*args)
    compiled = entry_run(f)
    leaves = tracejit.pytree.flatten((tuple(args), {}))[0]
    signatures = glue.kernel_signatures(compiled, leaves)
    reached = [k for k, sigs in enumerate(signatures) if sigs]
    assert len(reached) >= len(signatures) - (name == "cond")  # (one branch is not taken)
    out_tree = next(iter(f._entries.values())).out_tree
    outs = tracejit.pytree.unflatten(out_tree, compiled.glue()(leaves))
    for a, b in zip(tracejit.pytree.flatten(outs)[0], tracejit.pytree.flatten(expected)[0]):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def _glue_case(name):
    from tracejit.backends import glue
    fn, make = GLUE_PROGRAMS[name]
    args = make(np.random.default_rng(3))
    f = tracejit.compile(fn, tiered=False)
    expected = tracejit.pytree.flatten(f(*args))[0]
    compiled = entry_run(f)
    leaves = tracejit.pytree.flatten((tuple(args), {}))[0]
    out_tree = next(iter(f._entries.values())).out_tree
    return compiled, leaves, glue.kernel_signatures(compiled, leaves), out_tree, expected


def test_kernels_join_the_python_entry_one_by_one():
    """The middle tier starts with every kernel on the interpreter; each compiled kernel
    replaces its stand-in as it arrives, and every mixture gives the compiled entry's results."""
    compiled, leaves, signatures, out_tree, expected = _glue_case("mlp_grad")
    groups = compiled.kernel_groups(signatures)
    served = sorted(k for kernels, _ in groups for k in kernels)
    assert served == [k for k, sigs in enumerate(signatures) if sigs]
    assert len(groups) == len({compiled._kernels[k].tracejit_name for k in served})
    for kernels, task in groups:  # one module each, built for every signature it is called with
        assert len(task["kernels"]) == 1
        assert {sig for _, sig in task["compile"]} == set().union(*(signatures[k]
                                                                    for k in kernels))
    run, install = compiled.progressive_glue()
    steps = [[]] + [kernels for kernels, _ in groups]
    for kernels in steps:
        for k in kernels:
            install(k)
        outs = tracejit.pytree.flatten(tracejit.pytree.unflatten(out_tree, run(leaves)))[0]
        for a, b in zip(outs, expected):
            assert a.dtype == b.dtype and a.shape == b.shape
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_kernels_that_save_the_most_run_time_are_built_first():
    def two_kernels(big, small):
        return tnp.exp(big) * 2.0, (small + 1.0).sum()

    f = tracejit.compile(two_kernels, tiered=False)
    args = (np.ones(100_000, np.float32), np.ones(3, np.float32))
    f(*args)
    compiled = entry_run(f)
    from tracejit.backends import glue
    signatures = glue.kernel_signatures(compiled, list(args))
    (first, _), (second, _) = compiled.kernel_groups(signatures)
    sizes = [compiled._kernel_eqns[k].inputs[0].ttype.size for k in first + second]
    assert sizes == [100_000, 3]


KILLED_SCRIPT = textwrap.dedent('''
    import os, signal, sys, time
    import numpy as np
    import tracejit
    import tracejit.numpy as tnp
    f = tracejit.compile(lambda x: tnp.tanh(x) * 3.0 - x, tiered=True)
    x = np.linspace(-1, 1, 9)
    f(x)
    if sys.argv[1] == "kill":  # killed while its worker (or this process) compiles
        time.sleep(float(sys.argv[2]))
        os.kill(os.getpid(), signal.SIGKILL)
    assert f.wait(x, timeout=120)
    assert np.allclose(f(x), np.tanh(x) * 3 - x)
    print("ok")
''')


@pytest.mark.parametrize("after", [0.05, 0.6])
def test_a_process_killed_while_compiling_leaves_no_broken_cache_entry(tmp_path, after):
    env = dict(os.environ, TRACEJIT_CACHE_DIR=str(tmp_path / "cache"))
    env.pop("NUMBA_OPT", None)
    script = tmp_path / "script.py"
    script.write_text(KILLED_SCRIPT)
    killed = subprocess.run([sys.executable, str(script), "kill", str(after)], env=env,
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9
    again = subprocess.run([sys.executable, str(script), "run"], env=env, capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 0 and "ok" in again.stdout, again.stderr
    assert "tracejit:" not in again.stderr  # no warning about the cache (or anything else)


# --- the entry left as Python where it costs little; BLAS threads while workers build -----

CHEAP_ENTRY_SCRIPT = textwrap.dedent('''
    import json, sys
    import numpy as np
    import tracejit
    import tracejit.numpy as tnp
    from tracejit.backends import blas_threads

    before = blas_threads.threads()
    x = np.linspace(-1, 1, 2_000_000)
    big = tracejit.compile(lambda x: tnp.tanh(x) * 2.0 + tnp.sum(x * x), tiered=True)
    big(x)
    run = big._stats[0]["run"]
    ok = big.wait(x, timeout=120)
    close = bool(np.allclose(big(x), np.tanh(x) * 2 + np.sum(x * x)))
    small = tracejit.compile(lambda x: tnp.tanh(x) * 2.0, tiered=True)  # calls of microseconds
    y = x[:5]
    small(y)
    small_run = small._stats[0]["run"]
    small_ok = small.wait(y, timeout=120) and bool(np.allclose(small(y), np.tanh(y) * 2))
    print(json.dumps({"ok": ok, "close": close, "tier": run.tier, "how": run.how,
                      "stats": sorted(big.compile_stats()[0]), "small_ok": small_ok,
                      "small_tier": small_run.tier, "small_stats": sorted(small.compile_stats()[0]),
                      "threads": [before, blas_threads.threads()]}))
''')


def run_cheap_entry_script(folder):
    env = dict(os.environ, TRACEJIT_CACHE_DIR=str(folder), TRACEJIT_COMPILE_WORKERS="1")
    env.pop("NUMBA_OPT", None)
    env.pop("TRACEJIT_TIERED", None)
    script = folder / "cheap.py"
    script.write_text(CHEAP_ENTRY_SCRIPT)
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    import json
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_an_entry_that_costs_little_as_python_is_not_compiled(tmp_path):
    built = run_cheap_entry_script(tmp_path)
    assert built["ok"] and built["close"]
    # A call of milliseconds: the entry stays Python around the compiled kernels, no entry
    # compile (no "numba"/"switch" stage), and the tier says so.
    assert built["tier"].startswith("compiled (the entry run as Python, an estimated")
    assert "kernels built by compile workers" in built["how"]
    assert "kernels" in built["stats"] and "numba" not in built["stats"]
    # A call of microseconds: the Python entry would be most of it, so the entry is compiled.
    assert built["small_ok"] and built["small_tier"] == "compiled"
    assert "numba" in built["small_stats"]
    assert built["threads"][0] == built["threads"][1]  # BLAS has its threads back
    again = run_cheap_entry_script(tmp_path)  # a new process: the kernels from the cache
    assert again["ok"] and again["close"]
    assert "kernels loaded from the disk cache" in again["how"]
    assert "load" in again["small_stats"]  # (that entry was compiled: loaded whole)


def test_python_overhead_counts_lines_and_kernel_calls_and_refuses_loops():
    from tracejit.backends import glue
    straight = ("def entry(a0, w0, s, f):\n    t1 = w0[:s[0]]\n    _k0(a0, t1)\n"
                "    _blas.gemm_f32(_blas.readable(a0), _blas.readable(t1), w0)\n"
                "    return (t1,)\n")
    assert glue.python_overhead(straight) == pytest.approx(
        4 * glue._PER_LINE + glue._PER_KERNEL_CALL + glue._PER_HELPER_CALL)
    looped = tracejit.compile(lambda x: tracejit.fori_loop(0, 3, lambda i, c: tnp.sin(c) * 2.0,
                                                           x), tiered=False)
    x = np.linspace(0, 1, 5)
    looped(x)
    assert "for " in entry_run(looped).entry_source  # (the loop is in the entry)
    assert glue.python_overhead(entry_run(looped).entry_source) is None


@pytest.mark.skipif(__import__("tracejit.backends.blas_threads").backends.blas_threads.threads()
                    is None, reason="NumPy's BLAS here is not an OpenBLAS whose threads can be "
                    "set (a NumPy built against a system BLAS): nothing to cap")
def test_blas_threads_are_capped_while_builds_overlap_and_given_back():
    from tracejit.backends import blas_threads
    before = blas_threads.threads()
    cores = len(os.sched_getaffinity(0))
    with blas_threads.capped(cores):  # every core busy with workers: one BLAS thread left
        assert blas_threads.threads() == 1
        with blas_threads.capped(1):  # a second build, overlapping: still capped
            assert blas_threads.threads() == 1
        assert blas_threads.threads() == 1
        a = np.ones((64, 64))
        assert np.allclose(a @ a, 64.0)  # (products still run)
    assert blas_threads.threads() == before
