"""Tiered execution: a new signature's first calls run on the interpreter while its compiled
code is built in the background; calls switch to the compiled code the moment it is ready.

    call 1 ─ trace, passes ─ interpreter (tier 0) ─ result          (milliseconds)
                                  └─ background: generate the code, build it in compile workers
                                     into the disk cache, load it here ─ switch
    calls 2..k ─ interpreter (tier 0)
    calls k+1..m ─ the entry as Python, each kernel compiled once a worker has built it and on
                   the interpreter until then (the middle tier, ``backends/glue.py``)
    calls m+1.. ─ compiled code (what ``tiered=False`` runs from the first call)

The build runs in a compile worker process (``backends/compile_worker.py``), so Numba's typing
and LLVM neither block the calling thread nor hold its GIL; this process then only loads the
machine code from the cache. Where the cache cannot carry code between processes (it is off,
``NUMBA_OPT=0``, ``TRACEJIT_COMPILE_WORKERS=0``) the build runs in a background thread here.

Not every graph starts on the interpreter (``plan``): one whose single call may run long there
(an unbounded ``while_loop``, a ``fori_loop`` with bounds known only at run time, or more
estimated interpreter time than its estimated compile time) waits for its compiled code, as
with ``tiered=False``, so one long call never costs much more than compiling would have.

Faults: a build that fails leaves the function on the interpreter and warns once, at the next
call, with the ``CompileError``; a worker that dies is replaced and this build is done in this
process instead; a forked child restarts the builds its parent had in flight (threads do not
survive ``fork``).
"""
from __future__ import annotations

import os
import threading
import time
import warnings
from dataclasses import dataclass

from . import config, debug
from .ir import Graph, Literal

_starting = threading.Lock()
# The interpreter's cost per equation run (NumPy dispatch, checks), per element read or
# written (about 1 GB/s for NumPy ufuncs) and per flop of a matrix product (BLAS): rough, for
# the order of magnitude.
_PER_EQUATION = 5e-6
_PER_ELEMENT = 1e-9
_PER_FLOP = 1 / 20e9
# A cold compile (the CI machine, Numba): per fused kernel, per entry equation, and Numba's own
# start; measured on the MLP gradient and transformer blocks (docs/caching.md), low rather
# than high, so that a graph waits only when the interpreter would surely lose.
_COMPILE_PER_KERNEL = 0.25
_COMPILE_PER_EQUATION = 0.01
_COMPILE_START = 0.5
# Where the entry run as Python costs at most this part of a call (an estimate, by the time per
# line, kernel call and NumPy stand-in of ``glue.python_overhead``), its compile is skipped on
# machines with few cores (``TieredRun._entry_worth_building``). Measured: the transformer
# blocks' Python entries cost 0-4% of a call (estimated 0.3-3.7%), the MLP gradient's 3-15%
# (estimated 4-6%).
_PYTHON_ENTRY_SHARE = 0.04


@dataclass(frozen=True)
class Plan:
    interpret_first: bool
    why: str


def estimated_seconds(graph: Graph) -> float | None:
    """A rough estimate of one interpreter run of ``graph``; None when it cannot be bounded
    (a while loop, a fori_loop whose bounds are run-time values)."""
    total = 0.0
    for eqn in graph.eqns:
        name, params = eqn.prim.name, eqn.params
        if name in ("while_loop", "while_loop_grad"):
            return None
        if name == "fori_loop":
            lower, upper = eqn.inputs[:2]
            body = estimated_seconds(params["body"])
            if body is None or not (isinstance(lower, Literal) and isinstance(upper, Literal)):
                return None
            total += max(0, int(upper.value) - int(lower.value)) * body
        elif name == "scan" or name.startswith("scan_"):
            inner = [estimated_seconds(g) for g in params.values() if isinstance(g, Graph)]
            if None in inner:
                return None
            total += int(params.get("length", 1)) * sum(inner)
        elif name == "cond":
            inner = [estimated_seconds(params[b]) for b in ("true_branch", "false_branch")]
            if None in inner:
                return None
            total += max(inner)
        else:
            elements = sum(v.ttype.size for v in eqn.outputs) + \
                sum(a.ttype.size for a in eqn.inputs)
            total += _PER_EQUATION + _PER_ELEMENT * elements
            if name == "dot_general":  # 2 x output elements x the contracted length
                contracted = 1
                for axis in params["contract"][0]:
                    contracted *= eqn.inputs[0].ttype.shape[axis]
                total += _PER_FLOP * 2 * eqn.outputs[0].ttype.size * contracted
    return total


def estimated_compile_seconds(fused: Graph) -> float:
    """A rough estimate of a cold compile of ``fused`` (the fused graph)."""
    def count(graph):
        kernels = equations = 0
        for eqn in graph.eqns:
            equations += 1
            kernels += eqn.prim.name == "kernel"
            for value in eqn.params.values():
                if isinstance(value, Graph) and eqn.prim.name != "kernel":
                    k, e = count(value)
                    kernels, equations = kernels + k, equations + e
        return kernels, equations
    kernels, equations = count(fused)
    return _COMPILE_START + _COMPILE_PER_KERNEL * kernels + _COMPILE_PER_EQUATION * equations


def plan(graph: Graph, fused: Graph) -> Plan:
    """Whether the first call of ``graph`` (the optimised graph; ``fused``, the same fused)
    runs on the interpreter: when it is estimated to take less than compiling."""
    seconds = estimated_seconds(graph)
    if seconds is None:
        return Plan(False, "its loops have no bound known before the call (a while_loop, or "
                           "fori_loop bounds that are arguments): one call could run long on "
                           "the interpreter")
    compiling = estimated_compile_seconds(fused)
    if seconds > compiling:
        return Plan(False, f"one call is estimated at {seconds:.2f} s on the interpreter, "
                           f"more than compiling ({compiling:.1f} s)")
    return Plan(True, f"one call is estimated at {seconds * 1e3:.1f} ms on the interpreter, "
                      f"compiling at {compiling:.1f} s")


def _workers() -> int:
    import sys
    if getattr(sys, "frozen", False):  # (a bundled app: sys.executable is not Python)
        return 0
    n = config.get("compile_workers")
    if n < 0:
        n = max(1, min(4, (os.cpu_count() or 2) - 1))
    return n


def _start_workers() -> None:
    """Start the compile workers if they are not running (a worker imports Numba as it
    starts: about half a second, spent while this process traces, interprets and generates
    the code)."""
    workers = _workers()
    if workers > 0:
        from .backends import compile_worker
        compile_worker.pool(workers).start()


class TieredRun:
    """A signature's ``run``: the interpreter until the compiled code (built by ``build()``,
    a ``CompiledGraph``) is in place, then the compiled code. ``on_ready(compiled)`` is told
    at the switch (``tracejit.compile`` puts the compiled code in the signature's entry, so
    calls after the switch pay nothing for the tiers)."""

    def __init__(self, interpret, build, name: str, on_ready=None, unused_donations=(),
                 compiled=None):
        self._interpret = interpret
        self._build = build
        self.name = name
        self.on_ready = on_ready
        self.unused_donations = unused_donations
        self._compiled = compiled  # the CompiledGraph, once generated (before it is ready)
        self._ready = None  # the CompiledGraph, once it runs compiled code
        self._glue = None  # run(args): the entry as Python around compiled kernels, meanwhile
        self.kernels_built = (0, 0)  # (kernels compiled and in use by _glue, kernels)
        self._error: Exception | None = None
        self._warned = False
        self._started_in = None  # the pid whose thread builds (a forked child starts again)
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._first = None  # perf_counter of the first call
        self.timings: dict[str, float] = {}
        self.how = ""  # how the compiled code was built, in words (TRACEJIT_DEBUG)
        self.final_note = ""  # why the entry stays Python for good (an empty string: it does not)
        self.kernels_loaded = False  # whether the middle tier found every kernel in the cache

    # --- calls -------------------------------------------------------------------------------
    def __call__(self, args):
        ready = self._ready
        if ready is not None:
            return ready(args)
        if self._error is not None and not self._warned:
            self._warn_once()
        glue = self._glue
        if glue is not None:
            return glue(args)
        if self._error is not None:
            return self._interpret(args)
        started = time.perf_counter()
        if self._started_in != os.getpid():
            _start_workers()  # (they import Numba while this call runs on the interpreter)
        outs = self._interpret(args)
        if self._started_in != os.getpid():
            if self._first is None:
                self._first = started
                self.timings["tier0"] = time.perf_counter() - started
            self._start(args)
        return outs

    @property
    def tier(self) -> str:
        """Which tier the next call runs on, in words."""
        if self._ready is not None:
            return f"compiled ({self.final_note})" if self.final_note else "compiled"
        if self._glue is not None:
            built, total = self.kernels_built
            return f"compiled kernels ({built} of {total}, the others on the interpreter; " \
                "the entry as Python" + \
                (": its compile failed)" if self._error is not None else " while it compiles)")
        if self._error is not None:
            return "interpreter (the background compile failed)"
        return "interpreter (compiled code building in the background)"

    @property
    def ready(self) -> bool:
        return self._ready is not None

    def wait(self, args, timeout=None) -> bool:
        """Block until the compiled code runs (True), the build failed (False, after the
        warning), or ``timeout`` seconds passed (False)."""
        if self._started_in != os.getpid() and self._ready is None and self._error is None:
            self._start(args)
        self._done.wait(timeout)
        if self._error is not None:
            self._warn_once()
        return self._ready is not None

    # --- the compiled code -------------------------------------------------------------------
    @property
    def compiled(self):
        """The CompiledGraph (generated here if the background has not yet: introspection)."""
        with self._lock:
            if self._compiled is None:
                self._compiled = self._build()
            return self._compiled

    def __getattr__(self, name):  # entry_source, kernel_sources, note...: the compiled code's
        if name.startswith("__") or name in ("_compiled", "_build", "_lock", "_glue"):
            raise AttributeError(name)
        return getattr(self.compiled, name)

    def _start(self, args) -> None:
        with _starting:  # (two threads making the first call start one build)
            if self._started_in == os.getpid():
                return
            self._started_in = os.getpid()
            self._lock = threading.Lock()  # (a fork may have copied it held)
            self._done = threading.Event()
        _start_workers()
        thread = threading.Thread(target=self._background, args=(list(args),),
                                  name=f"tracejit compile {self.name}", daemon=True)
        thread.start()

    def _background(self, args) -> None:
        started = time.perf_counter()
        try:
            compiled = self.compiled
            self.timings.update(compiled.timings)  # codegen
            final = self._build_compiled(compiled, args)
            self.timings.update(compiled.timings)
            self.timings["ready_after"] = time.perf_counter() - (self._first or started)
            if final is not None:  # the entry as Python around the compiled kernels, for good
                self._ready = final
            else:
                self._ready = compiled
                if self.on_ready is not None:
                    self.on_ready(compiled)
            if debug.level() >= 1:
                debug.say(f"tracejit: {self.name}: compiled code ready "
                          f"{self.timings['ready_after']:.2f} s after the first call "
                          f"({self.how}); calls run it from now on")
        except Exception as e:
            self._error = e
        finally:
            self._done.set()

    def _build_compiled(self, compiled, args):
        """Load the code from the disk cache if another process built it; else have compile
        workers build the kernels (in parallel), run the entry as Python around them while
        one builds the entry, and load that. In this thread where workers cannot help (or a
        worker died). Returns None, or ``run(args)`` where the entry stays Python for good
        (``_entry_worth_building``)."""
        workers = _workers()
        task = compiled.build_task(args) if workers > 0 else None
        if task is not None and compiled.load_if_cached(args):
            self.how = f"loaded from the disk cache in {compiled.timings['load'] * 1e3:.0f} ms"
            return
        if task is None:
            self.how = "compiled in a background thread of this process"
            compiled.prepare(args)
            return
        return self._build_in_workers(compiled, args, task, workers)

    def _build_in_workers(self, compiled, args, task: dict, workers: int):
        from .backends import blas_threads, compile_worker
        pool = compile_worker.pool(workers)
        answers = []

        def build_entry():
            try:
                answers.append(pool.build(task))
            except compile_worker.WorkerDied as e:
                answers.append(e)

        # With cores to spare, one worker builds the entry (compiling its kernels itself) from
        # the start, beside the others building the kernels; with few, it waits for them and
        # loads them from the cache.
        beside = workers >= 3
        thread = threading.Thread(target=build_entry, daemon=True) if beside else None
        if thread is not None:
            thread.start()
        # While workers build, this process's BLAS keeps off their cores: its threads would
        # spin there between the products that calls run meanwhile (blas_threads.py).
        with blas_threads.capped(workers):
            try:
                self._middle_tier(compiled, args, pool, workers - 1 if beside else workers)
            except Exception as e:  # a tracejit bug: calls stay on the interpreter meanwhile
                if debug.level() >= 1:
                    debug.say(f"tracejit: {self.name}: no compiled kernels before the "
                              f"compiled entry ({type(e).__name__}: {e})")
        if thread is not None:
            with blas_threads.capped(1):
                thread.join()
        else:
            final = self._entry_worth_building(compiled, args)
            if final is not None:
                return final
            with blas_threads.capped(workers):
                build_entry()
        answer = answers[0]
        if isinstance(answer, compile_worker.WorkerDied):
            self.how = f"{answer}: compiled in this process instead"
            compiled.prepare(args)
            return
        if not answer["ok"]:  # compiled again here, to raise the CompileError in full
            self.how = "the compile worker failed; compiled again in this process"
            compiled.prepare(args)
            return
        compiled.prepare(args, timing="switch")
        compiled.timings["numba"] = answer["seconds"]
        self.how = (f"entry built in a compile worker in {answer['seconds']:.2f} s, loaded in "
                    f"{compiled.timings['switch'] * 1e3:.0f} ms")

    def _entry_worth_building(self, compiled, args):
        """None where the compiled entry is worth its compile, else the entry as Python that
        calls the compiled kernels, to run from now on. Building the entry (seconds of Numba,
        20 s for a transformer block) on a machine with few cores takes a core from the calls
        for all that time; where the Python entry costs a small part of a call
        (``_PYTHON_ENTRY_SHARE``, by ``glue.python_overhead`` against the best of five calls
        timed here) the calls are at compiled speed already, and nothing is built. Machines
        with cores to spare (3 workers or more) build the entry beside the kernels instead."""
        from .backends import glue
        built, total = self.kernels_built
        run = self._glue
        overhead = glue.python_overhead(compiled.entry_source)
        if run is None or built < total or overhead is None:
            return None
        args = list(args)
        for k, _ in getattr(compiled, "_donations", ()):  # (never write the user's buffers)
            args[k] = args[k].copy()
        best = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            run(args)
            best = min(best, time.perf_counter() - started)
        share = overhead / best
        if share > _PYTHON_ENTRY_SHARE:
            return None
        self.final_note = (f"the entry run as Python, an estimated {share:.2%} of a "
                           f"{best * 1e3:.2f} ms call: not compiled")
        source = "loaded from the disk cache" if self.kernels_loaded else \
            "built by compile workers"
        self.how = f"kernels {source}; {self.final_note}"
        return run

    def _middle_tier(self, compiled, args, pool, workers: int) -> None:
        """Kernels built by the workers, one at a time each, those that save the most run time
        per compile second first; from the first one built, calls run the entry as Python
        (``backends/glue.py``) with every kernel built so far compiled and the others on the
        interpreter, until the compiled entry is ready. A kernel that fails to build or load
        stays on the interpreter (the entry's build then says why in full)."""
        from .backends import glue, numba_cpu
        started = time.perf_counter()
        # (Numba's set-up for loading code, here while a worker builds the first kernel)
        threading.Thread(target=numba_cpu.prepare_loading, daemon=True).start()
        signatures = glue.kernel_signatures(compiled, args)
        pending = compiled.kernel_groups(signatures)
        run, install = compiled.progressive_glue()
        lock = threading.Lock()
        built, failed, seconds, loaded = [], [], [], []

        def build() -> None:
            while True:
                with lock:
                    if not pending:
                        return
                    kernels, task = pending.pop(0)
                if compiled.load_kernels(kernels, signatures):  # (an earlier process's)
                    answer, ok = {"ok": True, "seconds": 0.0}, True
                    loaded.append(kernels)
                else:
                    try:
                        answer = pool.build(task)
                    except Exception as e:  # (a death: the entry's build finds it again)
                        answer = {"ok": False, "error": str(e)}
                    ok = answer["ok"] and compiled.load_kernels(kernels, signatures)
                with lock:
                    if not ok:
                        failed.append(answer.get("error", "not found in the disk cache"))
                        continue
                    seconds.append(answer["seconds"])
                    for k in kernels:
                        install(k)
                    built.append(kernels)
                    self.kernels_built = (sum(map(len, built)), len(compiled.kernel_sources))
                    if self._glue is None:
                        self.timings["glue_after"] = time.perf_counter() - (self._first or
                                                                            started)
                        self._glue = run

        threads = [threading.Thread(target=build, daemon=True) for _ in range(workers - 1)]
        for t in threads:
            t.start()
        build()
        for t in threads:
            t.join()
        self.timings["kernels"] = sum(seconds)
        self.kernels_loaded = len(loaded) == len(built)  # (all from the disk cache)
        self.timings["kernels_after"] = time.perf_counter() - (self._first or started)
        if debug.level() >= 1:
            debug.say(f"tracejit: {self.name}: {sum(map(len, built))} of "
                      f"{len(compiled.kernel_sources)} kernel(s) built by compile workers in "
                      f"{self.timings['kernels']:.2f} s, each used by calls from the moment it "
                      "was built (the entry run as Python)" +
                      (f"; {len(failed)} failed and stay on the interpreter ({failed[0]})"
                       if failed else ""))

    def _warn_once(self) -> None:
        if not self._warned:
            self._warned = True
            warnings.warn(f"tracejit: {self.name}: compiling in the background failed; calls "
                          f"keep running on the {self.tier.split(' (')[0]}. {self._error}",
                          stacklevel=4)


def _compile_locks() -> list:
    """The locks a compile holds: a fork while another thread holds one would leave it held
    for ever in the child, so a fork waits for them (``os.register_at_fork`` below)."""
    import sys
    locks = [_starting]  # (in the order threads take them: starting, modules, Numba's)
    backend = sys.modules.get("tracejit.backends.numba_cpu")
    if backend is not None:
        locks.append(backend._cache_lock)
    numba_lock = sys.modules.get("numba.core.compiler_lock")
    if numba_lock is not None:
        locks.append(numba_lock.global_compiler_lock)
    return locks


_held: list = []


def _before_fork() -> None:
    for lock in _compile_locks():
        lock.acquire()
        _held.append(lock)


def _after_fork() -> None:
    while _held:
        _held.pop().release()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork,
                        after_in_child=_after_fork)
