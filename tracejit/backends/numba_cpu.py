"""The Numba CPU backend: one compiled entry function per graph, running fused kernels.

The graph is fused (``passes/fusion.py``); each kernel's loop nest is generated once per distinct
source text (``codegen.py``) and shared by every graph that needs it. The entry function, also
generated, allocates each kernel's outputs, makes views for movement equations (transpose,
slice, reverse and broadcasts are never copied), calls the kernels and helpers in order, and
returns the outputs. After the first call a call is one signature lookup in ``tracejit.compile``
and one call into the entry.

    def entry(a0, a1, c0, w0, d0, o0):  # inputs, constants, workspace slots, donated buffers,
                                        # large outputs (see buffers.py)
        t1 = np.transpose(a1, (1, 0))   # movement: a view
        t2 = w0.reshape((4, 3))         # a temporary, in a workspace slot
        _k0(a0, t1, t2, np.float32(2.0))  # a kernel: arrays, then its scalar constants
        ...

Kernels and entries are modules in the disk cache (``cache.py``), loaded from memory or disk
before anything is compiled. Graphs containing float16 (which Numba cannot load or store) run
on the interpreter instead; ``Lowered.kernel_source()`` says so.
"""
from __future__ import annotations

import sys
import threading
import time
import types

import numpy as np

from .. import cache, config, profiler
from ..errors import CompileError
from ..ir import Graph, Literal
from . import allocator, buffers, codegen
from . import interpreter

NEEDS_FUSION = True
# In memory, by module name (which is the content hash): one compiled dispatcher per distinct
# kernel or entry source in the process, shared by every graph and every compiled function.
_kernel_cache: dict[str, object] = {}
_entry_cache: dict[str, object] = {}
_cache_lock = threading.RLock()
# Idle workspace arrays by (dtype, capacity), shared by every compiled graph: a slot of a size
# class is any idle array of that class, so a function's neighbouring shapes (and other
# functions) reuse each other's temporaries; memory grows with size classes and concurrent
# calls, not with signatures.
_idle_slots: dict[tuple, list] = {}

_KERNEL_HEADER = """\
import numpy as np
from numba import prange
from tracejit.backends import vector_math as _vm

"""


def _numba():
    import numba  # imported lazily: `import tracejit` stays fast
    return numba


def _cacheable(kind: str) -> bool:
    """Unoptimised builds (NUMBA_OPT=0, the test suite's setting) leave calls between compiled
    functions unlinked (entries into kernels, kernels into the inlined vector math), which Numba
    refuses to cache ("dynamic globals"): nothing is offered to its cache there."""
    from numba.core import config as numba_config
    return int(numba_config.OPT) != 0


def _load(kind: str, text: str, options: dict, memo: dict):
    """The Numba dispatcher for the function ``kind`` defined by module ``text`` (from memory,
    or compiled from its module file in the disk cache, whose machine code Numba reuses)."""
    canonical = sorted((k, sorted(v) if isinstance(v, set) else v) for k, v in options.items())
    name = f"{kind}_{cache.key(text, repr(canonical))}"  # (set order varies per process)
    with _cache_lock:
        fn = memo.get(name)
        if fn is None:
            _numba()
            path = cache.module_file(name, text)
            # A real module, registered in sys.modules: Numba's cached code refers to its
            # function's module by name, and finds it there in the next process too.
            module = types.ModuleType(f"tracejit_generated_{name}")
            module.__file__ = path or f"<tracejit {name}>"
            sys.modules[module.__name__] = module
            exec(compile(text, module.__file__, "exec"), module.__dict__)
            cached = path is not None and _cacheable(kind)
            fn = cache.jit(getattr(module, kind), cached=cached, **options)
            fn.tracejit_name = name
            fn.tracejit_cached = cached  # (its machine code can reach another process)
            memo[name] = fn
        return fn


def kernel_build(source: codegen.KernelSource, reduce: bool, parallel: bool) -> tuple:
    """(module text, Numba options) of one kernel: what this process loads (``_load``), and
    what a compile worker (``compile_worker.py``) is sent to build the same module."""
    options = {"error_model": "numpy", "nogil": True, "parallel": parallel,
               "fastmath": {"reassoc", "contract"} if reduce else {"contract"}}
    return _KERNEL_HEADER + source.text, options


_ENTRY_OPTIONS = {"error_model": "numpy"}


def build_in_this_process(task: dict) -> float:
    """Compile what ``CompiledGraph.build_task`` or ``kernel_groups`` describe (kernels for
    the signatures listed, then the entry for its signature), writing the machine code to the
    disk cache; the seconds it took. This is what a compile worker runs
    (``compile_worker.py``)."""
    started = time.perf_counter()
    with config.override(cache=True, cache_dir=task["cache_dir"]):
        kernels = [_load("kernel", text, options, _kernel_cache)
                   for text, options in task["kernels"]]
        for k, signature in task.get("compile", ()):
            kernels[k].compile(signature)
        if task.get("entry"):
            entry = _load("entry", task["entry"], _ENTRY_OPTIONS, _entry_cache)
            entry.compile(task["signature"])
    return time.perf_counter() - started


_WARM_UP = """\
def kernel(in0, out0):
    for i0 in range(in0.shape[0]):
        out0[i0,] = np.float32(in0[i0,] + np.float32(1))
"""


def warm_up() -> float:
    """Compile one tiny kernel, not cached: Numba's first compile in a process pays about 0.3 s
    of its own set-up (typing registries, LLVM), which an idle compile worker pays this way
    before its first task arrives. About as long as the set-up it saves, so it costs little
    even when a task arrives just after it began. The seconds it took."""
    started = time.perf_counter()
    with config.override(cache=False):
        fn = _load("kernel", _KERNEL_HEADER + _WARM_UP, {"error_model": "numpy", "nogil": True},
                   {})
        numba = _numba()
        array = numba.types.Array(numba.types.float32, 1, "C")
        fn.compile((array, array))
    return time.perf_counter() - started


def prepare_loading() -> None:
    """Numba's set-up for loading machine code (its lowering registries: about 0.5 s, once per
    process), done ahead of the first ``_load_cached`` that finds code."""
    from numba.core.compiler_lock import global_compiler_lock
    from numba.core.registry import cpu_target
    with global_compiler_lock:  # (refresh walks shared registries: not safe beside a compile)
        cpu_target.target_context.refresh()


def _load_cached(dispatcher, signature) -> bool:
    """Give ``dispatcher`` its machine code for ``signature`` from the disk cache if it is
    there (True), never compiling: the first half of Numba's ``Dispatcher.compile``."""
    from numba.core.compiler_lock import global_compiler_lock
    with global_compiler_lock:
        if tuple(signature) in dispatcher.overloads:
            return True
        try:
            result = dispatcher._cache.load_overload(signature, dispatcher.targetctx)
        except AttributeError:  # (a Numba whose dispatchers differ: compile instead)
            return False
        if result is None:
            return False
        dispatcher._cache_hits[signature] += 1
        dispatcher.targetctx.insert_user_function(result.entry_point, result.fndesc,
                                                  [result.library])
        dispatcher.add_overload(result)
    return True


def kernel_by_name(name: str):
    """A kernel compiled in this process, by module name (entry modules import them so)."""
    return _kernel_cache[name]


def _blas():
    from . import blas
    return blas


def _vector_math_overrides():
    from . import vector_math
    return vector_math.OVERRIDES


def _runtime():
    from . import numba_runtime
    return numba_runtime


def _uses_float16(graph: Graph) -> bool:
    def types(g):
        yield from g.in_types
        for e in g.eqns:
            for v in e.outputs:
                yield v.ttype
            for value in e.params.values():
                if isinstance(value, Graph):
                    yield from types(value)
    return any(t.dtype == np.float16 for t in types(graph))


def _calls_blas(graph: Graph) -> bool:
    return any(e.prim.name == "dot_general" and e.outputs[0].ttype.dtype in (np.float32,
                                                                              np.float64)
               for e in graph.eqns)


class CompiledGraph:
    """The callable a backend returns: ``run(list of arrays) -> list of arrays``."""

    def __init__(self, graph: Graph, donate=frozenset()):
        """``graph`` is the fused graph (the pipeline's last stage); ``donate`` holds the indices
        of inputs whose buffers outputs may reuse."""
        started = time.perf_counter()
        allocator.tune()  # (per-call arrays reuse freed memory: allocator.py)
        self.fused = graph
        self.note = None
        self.unused_donations = sorted(donate)
        self.timings: dict[str, float] = {}  # codegen, then numba or load (at the first call)
        if _uses_float16(graph):
            self.note = "float16 is not supported by Numba: this graph runs on the interpreter"
            self.entry_source, self.kernel_sources = "", []
            self._run = interpreter.compile_graph(graph)
            return
        self.plan = buffers.plan(graph, frozenset(donate), ("kernel", "dot_general"))
        self.unused_donations = self.plan.unused_donations
        from . import entry_writer
        writer = entry_writer.EntryWriter(self.fused, self.plan)
        threshold = config.get("blas_parallel_threshold" if _calls_blas(graph)
                               else "parallel_threshold")
        for eqn in self.fused.eqns:
            entry_writer.emit(writer, eqn, threshold)
        self.entry_source = writer.source()
        self.kernel_sources = writer.kernel_sources
        self._kernel_eqns = writer.kernel_eqns
        self._kernels = writer.kernels
        header = ["import numpy as np",
                  "from tracejit.backends import numba_runtime as _rt",
                  "from tracejit.backends import blas as _blas",
                  "from tracejit.backends.numba_cpu import kernel_by_name as _kernel", ""]
        header += [f"_k{k} = _kernel({fn.tracejit_name!r})"
                   for k, fn in enumerate(writer.kernels)]
        header[3:3] = _linalg_imports(self.fused)
        self._entry_module = "\n".join(header) + "\n\n" + self.entry_source
        self._kernel_builds = writer.kernel_builds
        self._kernel_inplace = writer.kernel_inplace
        self._entry = _load("entry", self._entry_module, _ENTRY_OPTIONS, _entry_cache)
        # The graph's constant arrays, then its shape-derived numbers (EntryWriter.dim/literal)
        self._consts = [value for _, value in graph.consts]
        self._numbers = [np.array(writer.ints, np.int64), np.array(writer.floats, np.float64)]
        self.entry_numbers = (writer.ints, writer.floats)
        self._literal_outputs = [(k, a) for k, a in enumerate(graph.outputs)
                                 if isinstance(a, Literal)]
        self._donations = [(k, graph.inputs[k].ttype) for k in writer.donations]
        self._slot_classes = [(s.dtype, s.capacity) for s in self.plan.slots]
        self._preallocated = [(v.ttype.shape, v.ttype.dtype) for v in self.plan.preallocated]
        self._call = self._call_entry if self.plan.slots or self._donations or \
            self._preallocated else self._call_plain
        self._run = self._first_call
        self._python_entry = None  # the entry run as Python, for tracejit.profile()
        self.timings["codegen"] = time.perf_counter() - started

    def _extras(self, args) -> list:
        """The entry's arguments after the inputs and constants, for typing: workspace slots,
        donated buffers, preallocated outputs (contents irrelevant), then the numbers."""
        if self._call != self._call_entry:
            return list(self._numbers)
        workspace = self._take_workspace()
        self._give_back(workspace)
        return [*workspace, *self._donated(args),
                *[np.empty(shape, dtype) for shape, dtype in self._preallocated], *self._numbers]

    def signature(self, args) -> tuple:
        """The Numba types of the entry's arguments for these inputs."""
        numba = _numba()
        return tuple(numba.typeof(a) for a in (*args, *self._consts, *self._extras(args)))

    def build_task(self, args) -> dict | None:
        """What a compile worker needs to build this graph's code for these inputs into the
        disk cache (``build_in_this_process``); None where the cache cannot carry it back
        (the cache off or unusable, NUMBA_OPT=0, float16 graphs run on the interpreter)."""
        if self.note is not None or not self._entry.tracejit_cached:
            return None
        return {"cache_dir": str(cache.directory()), "kernels": self._kernel_builds,
                "entry": self._entry_module, "signature": self.signature(args)}

    def prepare(self, args, timing: str | None = None) -> None:
        """Compile the entry for these inputs (or load it from the disk cache), timed in
        ``timings``; calls then run the compiled code. ``timing`` names the time (default:
        numba, load or reuse, by what happened)."""
        if self.ready:
            return
        signature = self.signature(args)
        loaded_before = sum(self._entry.stats.cache_hits.values())
        # The entry of an earlier signature with the same source and argument types (a new
        # shape: the sizes are arguments) is already compiled: a cache hit, no compile.
        known = signature in self._entry.overloads
        started = time.perf_counter()
        try:
            self._entry.compile(signature)
        except Exception as e:
            raise self._compile_error(e) from e
        elapsed = time.perf_counter() - started
        loaded = sum(self._entry.stats.cache_hits.values()) > loaded_before
        self.timings[timing or ("reuse" if known else "load" if loaded else "numba")] = elapsed
        self._run = self._call

    def in_memory(self, args) -> bool:
        """Whether this process holds compiled code for these inputs (an earlier signature's
        entry with the same source and argument types: a new shape); it is then made ready."""
        if self.ready:
            return True
        if self.signature(args) not in self._entry.overloads:
            return False
        self.prepare(args)
        return True

    def load_if_cached(self, args) -> bool:
        """Load the entry for these inputs from the disk cache if it is there (True), never
        compiling: a tiered signature whose code another process built needs no worker."""
        if self.ready:
            return True
        started = time.perf_counter()
        if not _load_cached(self._entry, self.signature(args)):
            return False
        self.timings["load"] = time.perf_counter() - started
        self._run = self._call
        return True

    # --- the middle tier: the entry run as Python, calling kernels as they compile (glue.py) -
    def kernel_groups(self, signatures: list) -> list[tuple[list[int], dict]]:
        """Compile-worker tasks, one per distinct kernel module (kernels of one text share
        it), each building it for the ``signatures`` the glue calls it with (one set per
        kernel, from ``glue.kernel_signatures``), with the kernels it serves; ordered so that
        calls approach compiled speed early: most run time saved per compile second first
        (run time: elements times fused operations; compile time: about proportional to the
        source's length, plus Numba's fixed cost per function: rough measures, measured)."""
        groups: dict[str, list] = {}
        for k, sigs in enumerate(signatures):
            if sigs:
                cost = _run_cost(self._kernel_eqns[k])
                group = groups.setdefault(self._kernels[k].tracejit_name, [0.0, k, [], set()])
                group[0] += cost
                group[2].append(k)
                group[3].update(sigs)
        tasks = []
        def benefit(group):  # (about 60 ms for a 250-character kernel, 350 ms for 2000)
            return -group[0] / (_COMPILE_FIXED + len(self._kernel_builds[group[1]][0])), group[1]

        for cost, first, ks, sigs in sorted(groups.values(), key=benefit):
            tasks.append((ks, {"cache_dir": str(cache.directory()),
                               "kernels": [self._kernel_builds[first]],
                               "compile": [(0, sig) for sig in sorted(sigs, key=str)]}))
        return tasks

    def load_kernels(self, kernels: list[int], signatures: list) -> bool:
        """Load these kernels for their signatures from the disk cache (where a compile
        worker put them); False if one is missing."""
        return all(_load_cached(self._kernels[k], sig) for k in kernels for sig in signatures[k])

    def glue(self):
        """``run(args)`` running the entry as Python around the compiled kernels."""
        from . import glue
        entry = glue.python_entry(self.entry_source, self._kernels, self.fused.name)
        return lambda args: self._call(args, entry)

    def progressive_glue(self):
        """``(run, install)``: ``run(args)`` runs the entry as Python with every kernel
        evaluated by the interpreter (``glue.Interpreted``) until ``install(k)`` puts kernel
        ``k``'s compiled code in its place (loaded first: ``load_kernels``)."""
        from . import glue
        namespace: dict = {}
        stand_ins = [glue.Interpreted(eqn, inplace)
                     for eqn, inplace in zip(self._kernel_eqns, self._kernel_inplace)]
        entry = glue.python_entry(self.entry_source, stand_ins, self.fused.name, namespace)

        def install(k: int) -> None:
            namespace[f"_k{k}"] = self._kernels[k]  # (the next lookup of _k<k> finds it)

        return (lambda args: self._call(args, entry)), install

    def _first_call(self, args):
        """Compile (or load from the disk cache) for these argument types, timed; then run."""
        self.prepare(args)
        return self._call(args)

    @property
    def ready(self) -> bool:
        """Whether calls run compiled code, or the interpreter for float16 graphs (no compile
        left to do at the next call)."""
        return self._run != self._first_call

    def _compile_error(self, error: Exception) -> CompileError:
        """The Numba failure, said in terms of the user's program: which kernel (found by its
        module name in Numba's message), the primitives fused into it, and their lines."""
        text = str(error)
        culprits = [k for k, fn in enumerate(self._kernels) if fn.tracejit_name in text]
        described = []
        for k in culprits or range(len(self._kernels)):
            eqn = self._kernel_eqns[k]
            body = eqn.params["body"].eqns
            lines = sorted({str(e.source_info) for e in body if e.source_info})
            described.append(f"kernel _k{k} ({eqn.params['kind']}: "
                             f"{' '.join(e.prim.name for e in body)})" +
                             (f" from {', '.join(lines)}" if lines else ""))
        which = "; ".join(described) if culprits else \
            f"the entry function of `{self.fused.name}` (kernels: {'; '.join(described)})"
        return CompileError(f"tracejit: Numba could not compile {which}. This is a tracejit bug "
                            f"or an unsupported combination; Numba said:\n\n{text}")

    def _call_plain(self, args, entry=None):
        return self._finish(list((entry or self._entry)(*args, *self._consts, *self._numbers)))

    def _call_entry(self, args, entry=None):
        workspace = self._take_workspace()
        try:
            outs = (entry or self._entry)(
                *args, *self._consts, *workspace, *self._donated(args),
                *[np.empty(shape, dtype) for shape, dtype in self._preallocated],
                *self._numbers)
        finally:
            self._give_back(workspace)
        return self._finish(list(outs))

    def _take_workspace(self) -> list[np.ndarray]:
        workspace = []
        for key in self._slot_classes:
            try:
                workspace.append(_idle_slots[key].pop())
            except (KeyError, IndexError):  # none idle (another thread may have just taken it)
                workspace.append(np.empty(key[1], key[0]))
        return workspace

    def _give_back(self, workspace) -> None:
        for key, array in zip(self._slot_classes, workspace):
            _idle_slots.setdefault(key, []).append(array)

    def _donated(self, args) -> list[np.ndarray]:
        """The donated arrays outputs are written into (kernels read the input from them too);
        a C-contiguous copy where one cannot be used (read-only, not C-contiguous, or
        overlapping another argument)."""
        buffers_ = []
        for k, t in self._donations:
            x = args[k]
            usable = type(x) is np.ndarray and x.flags.c_contiguous and x.flags.writeable and \
                not any(j != k and np.may_share_memory(x, y) for j, y in enumerate(args)) and \
                not any(np.may_share_memory(x, c) for c in self._consts)
            buffers_.append(x if usable else np.array(x, dtype=t.dtype, order="C"))
        return buffers_

    def _finish(self, outs):
        for k, lit in self._literal_outputs:
            outs[k] = np.array(lit.value, dtype=lit.ttype.dtype)
        return outs

    def __call__(self, args):
        if profiler.ACTIVE:
            return self._profiled(args)
        return self._run(args)

    def _profiled(self, args):
        """Run with every kernel timed (``tracejit.profile()``): the entry's source executed as
        Python, calling the same compiled kernels through timers."""
        name = self.fused.name
        if self._run != self._call:  # not compiled yet, or run by the interpreter
            started = time.perf_counter()
            outs = self._run(args)
            what = "(first call: compile and run)" if self._run == self._call else "(whole call)"
            for p in profiler.ACTIVE:
                p.record(name, what, time.perf_counter() - started)
            return outs
        if self._python_entry is None:
            from .. import introspect
            labels = [f"{k.name} {k.kind} {k.shape} " + (k.lines[0] if k.lines else "")
                      for k in introspect.kernels(self.fused) if k.name.startswith("_k")]
            namespace = {"np": np, "_rt": profiler.TimedModule(_runtime(), name),
                         "_blas": profiler.TimedModule(_blas(), name)}
            if _linalg_imports(self.fused):
                from . import lapack
                namespace["_lapack"] = profiler.TimedModule(lapack, name)
            namespace.update({f"_k{k}": profiler.Timed(fn, name, labels[k])
                              for k, fn in enumerate(self._kernels)})
            exec(compile(self.entry_source, f"<tracejit profiled entry {name}>", "exec"),
                 namespace)
            self._python_entry = namespace["entry"]
            # One unrecorded run: called from Python, helpers compile for the array types
            # they see (the compiled entry had them inlined).
            active = profiler.ACTIVE[:]
            profiler.ACTIVE.clear()
            started = time.perf_counter()
            try:
                outs = self._call(args, self._python_entry)
            finally:
                profiler.ACTIVE.extend(active)
            for p in active:
                p.record(name, "(first profiled call: helpers compile)",
                         time.perf_counter() - started)
            return outs
        return self._call(args, self._python_entry)


_COMPILE_FIXED = 250  # Numba's cost per kernel, in characters of kernel source (kernel_groups)


def _run_cost(eqn) -> float:
    """A rough measure of one run of a kernel equation: elements read and written, times the
    operations fused into it."""
    elements = sum(v.ttype.size for v in (*eqn.inputs, *eqn.outputs))
    return float(elements) * max(1, len(eqn.params["body"].eqns))


def compile_graph(graph: Graph, donate=frozenset()) -> CompiledGraph:
    return CompiledGraph(graph, donate)


def unused_donations(graph: Graph, donate=frozenset()) -> list:
    """The donated inputs of ``graph`` (fused) that no output can reuse (what
    ``CompiledGraph.unused_donations`` will say, known before any code is generated)."""
    if not donate or _uses_float16(graph):
        return sorted(donate)
    return buffers.plan(graph, frozenset(donate), ("kernel", "dot_general")).unused_donations


def _linalg_imports(graph: Graph) -> list[str]:
    """The entry module's import of the LAPACK helpers, only where the graph calls them (other
    entries keep their source, and their disk-cache keys)."""
    from . import lapack
    return [lapack.IMPORT] if lapack.uses_lapack(graph) else []
