"""``tracejit.compile`` and ``tracejit.make_ir``: signature keys, tracing once, calling fast.

A call flattens its arguments (pytrees), builds a key from the tree structure, every leaf's
abstract type and the static arguments' values, and looks the key up. On a miss the function is
traced into a Graph (verified when configured) and handed to the backend; on a hit the stored
executable runs at once. Python scalars are runtime inputs (weakly typed), never baked in.
"""
from __future__ import annotations

import collections
import functools
import inspect
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from . import config, debug, dtypes, errors, introspect, pytree, recompile, tiers
from .backends import get_backend, is_device_array
from .errors import at_user_line
from .ir import Graph, TensorType, verify
from .passes.pipeline import STAGES, run_pipeline  # noqa: F401  (STAGES re-exported)
from .tracing import Tracer, eval_graph, trace_flat



def _leaf_key(leaf):
    """The cache-key part of one argument leaf: (shape, dtype, weak). Fast path, no checks."""
    if isinstance(leaf, Tracer):
        t = leaf.ttype
        return t.shape, t.dtype, t.weak
    if isinstance(leaf, np.ndarray):
        return leaf.shape, leaf.dtype, False
    if isinstance(leaf, np.generic):
        return (), leaf.dtype, False
    if dtypes.is_python_scalar(leaf):
        return (), dtypes.python_scalar_dtype(leaf), True
    if is_device_array(leaf):
        return tuple(leaf.shape), np.dtype(leaf.dtype), False
    return None


def _leaf_ok(leaf, key) -> bool:
    if key is None or not dtypes.is_supported(key[1]):
        return False
    return not (key[2] and key[1].kind == "i") or isinstance(leaf, Tracer) or \
        -2**63 <= leaf < 2**63


def _check_leaf(leaf, key, path: str, fname: str) -> None:
    """A clear error, naming the argument, for a leaf that cannot be an input."""
    if key is None:
        raise TypeError(at_user_line(
            f"{fname}: argument {path} is a {type(leaf).__name__}; compiled functions take NumPy "
            "arrays, NumPy/Python scalars, and tuples/lists/dicts of them. If it is a "
            "configuration value, mark it static (static_argnums=... or static_argnames=...)."))
    if key[2] and key[1].kind == "i" and not -2**63 <= leaf < 2**63:
        raise OverflowError(at_user_line(f"{fname}: argument {path} = {leaf} does not fit in "
                                         "int64"))
    try:
        dtypes.canonical_dtype(key[1])
    except TypeError as e:
        raise TypeError(at_user_line(f"{fname}: argument {path}: {e}")) from None


def _to_runtime(leaf, key):
    if isinstance(leaf, np.ndarray) or is_device_array(leaf):
        return leaf
    return np.asarray(leaf, dtype=key[1])


@dataclass
class _Entry:
    stages: dict  # stage name -> Graph, in pipeline order
    out_tree: pytree.TreeDef
    run: Callable
    report: object = None  # the FusionReport, for backends that fuse
    signature: str = ""  # in words, for messages

    @property
    def graph(self) -> Graph:
        """The traced graph (what the user's function means)."""
        return self.stages["traced"]

    @property
    def optimized(self) -> Graph:
        """The graph after the target-independent passes (what other traces inline)."""
        return self.stages["dce"]


class Lowered:
    """What a compiled function turns into for one signature: its graph at each stage, and for
    code-generating backends its fusion decisions, kernels and generated source."""

    def __init__(self, entry: _Entry, backend: str, name: str = "f"):
        self.name = name
        self.stages = entry.stages
        self.backend = backend
        self.fusion_report = entry.report
        self._run = entry.run

    def kernels(self) -> list:
        """One ``KernelInfo`` per kernel that runs: kind, iteration shape, the primitives
        fused, bytes read and written, the user's lines (``tracejit/introspect.py``)."""
        return introspect.kernels(self.stages.get("fused", self.stages["dce"]))

    def kernel_source(self) -> str:
        """The generated source: the entry function, then every kernel it calls, each kernel
        call and definition annotated with the user's lines its equations came from."""
        entry = getattr(self._run, "entry_source", None)
        if entry is None:
            raise ValueError(f"backend {self.backend!r} generates no source")
        note = getattr(self._run, "note", None)
        where = [", ".join(k.lines) for k in self.kernels() if k.name.startswith("_k")]
        lines = []
        ints, floats = getattr(self._run, "entry_numbers", ((), ()))
        for line in entry.splitlines():
            if line.startswith("def entry(") and (ints or floats):
                lines.append(line)
                line = f"    # this signature: s = {list(ints)}, f = {list(floats)}"
            call = line.strip().split("(")[0]
            if call.startswith("_k") and call[2:].isdigit() and int(call[2:]) < len(where) \
                    and where[int(call[2:])]:
                line += f"  # {where[int(call[2:])]}"
            lines.append(line)
        kernels = [(f"# _k{k}: from {where[k]}\n" if k < len(where) and where[k] else "") + text
                   for k, text in enumerate(self._run.kernel_sources)]
        parts = ([f"# {note}"] if note else []) + ["\n".join(lines) + "\n"] + kernels
        return "\n".join(parts)

    def to_dot(self, stage: str = "fused") -> str:
        """Graphviz DOT text of the graph at ``stage`` (fused kernels as clusters)."""
        return introspect.to_dot(self.stages[stage if stage in self.stages else "dce"])

    def render(self, path: str, stage: str = "fused") -> str:
        """Draw the graph at ``stage`` to ``path`` (.png/.svg/.pdf; see ``Graph.render``)."""
        return introspect.render(self.stages[stage if stage in self.stages else "dce"], path)

    def dump(self, folder) -> str:
        """Write every stage's IR, the generated source and a summary to ``folder``."""
        return str(introspect.dump(self, folder, self.name))

    @property
    def graph(self) -> Graph:
        return self.stages["traced"]

    def as_text(self, stage: str = "traced") -> str:
        """The IR at ``stage`` (``STAGES``: traced ... dce, and fused for code generators)."""
        if stage not in self.stages:
            raise ValueError(f"unknown stage {stage!r}; stages here: {', '.join(self.stages)}")
        return str(self.stages[stage])

    def __str__(self) -> str:
        return self.as_text()


class Compiled:
    """A function traced once per signature and run by a backend. Made by ``tracejit.compile``."""

    def __init__(self, fun: Callable, static_argnums=(), static_argnames=(), backend=None,
                 donate_argnums=(), device=None, return_device_arrays=False, tiered=None):
        if not callable(fun):
            raise TypeError(f"compile() expects a function, got {type(fun).__name__}")
        self.fun = fun
        self.backend = _choose_backend(backend, device)
        get_backend(self.backend)  # fail early on an unknown name
        self._on_device = self.backend == "numba_cuda"
        if return_device_arrays and not self._on_device:
            raise ValueError("return_device_arrays=True needs device='cuda' (the backend "
                             f"{self.backend!r} returns NumPy arrays)")
        self._backend_options = {"return_device_arrays": True} if return_device_arrays else {}
        if tiered is not None and not isinstance(tiered, bool):
            raise TypeError(f"compile(tiered=...) takes True, False or None, got {tiered!r}")
        self.tiered = tiered  # None: TRACEJIT_TIERED decides (tiers.py)
        self.static_argnums, self.static_argnames = _static_sets(fun, static_argnums,
                                                                 static_argnames)
        self.donate_argnums = _donate_set(donate_argnums, self.static_argnums, fun)
        self._hits = 0
        self._traces = 0
        # Bounded by TRACEJIT_MAX_SIGNATURES, least recently used first out (the recent ones):
        self._seen: collections.deque = collections.deque()  # signatures traced, in order
        self._stats: collections.deque = collections.deque()  # per signature: trace, passes, ...
        self._entries: collections.OrderedDict[Any, _Entry] = collections.OrderedDict()
        self._fast: dict[tuple, _Entry] = {}  # (shape, dtype) per positional ndarray -> entry
        self._tracing = threading.RLock()  # (re-entrant: a function may call itself in a trace)
        functools.update_wrapper(self, fun, updated=())  # never merge fun's __dict__ in

    @property
    def _name(self) -> str:
        return getattr(self.fun, "__name__", "f")

    # --- keys ----------------------------------------------------------------------------------
    def _split(self, args, kwargs):
        """(dynamic args, dynamic kwargs, static items) with static values checked hashable."""
        dyn_args, statics = [], []
        for i, a in enumerate(args):
            if i in self.static_argnums:
                statics.append((i, _hashable_static(a, f"positional argument {i}", self._name)))
            else:
                dyn_args.append(a)
        dyn_kwargs = {}
        for k, v in kwargs.items():
            if k in self.static_argnames:
                statics.append((k, _hashable_static(v, f"argument {k!r}", self._name)))
            else:
                dyn_kwargs[k] = v
        return dyn_args, dyn_kwargs, tuple(statics)

    def _signature(self, args, kwargs):
        """(key, leaves) for the dynamic arguments (tracers, when called inside a trace)."""
        dyn_args, dyn_kwargs, statics = self._split(args, kwargs)
        leaves, treedef = pytree.flatten((tuple(dyn_args), dyn_kwargs))
        keys = tuple(_leaf_key(leaf) for leaf in leaves)
        if not self._on_device and any(map(is_device_array, leaves)):
            for leaf, path in zip(leaves, pytree.leaf_paths(treedef)):
                if is_device_array(leaf):
                    raise errors.DeviceError(at_user_line(
                        f"{self._name}: argument {recompile.pretty_path(path)} is a CUDA device "
                        f"array, but this function runs on the CPU (backend {self.backend!r}). "
                        "Copy it to the host (x.copy_to_host()) or compile with "
                        "device='cuda'."))
        if not all(_leaf_ok(leaf, k) for leaf, k in zip(leaves, keys)):
            for leaf, key, path in zip(leaves, keys, pytree.leaf_paths(treedef)):
                _check_leaf(leaf, key, recompile.pretty_path(path), self._name)
        return (treedef, keys, statics), leaves

    # --- tracing -------------------------------------------------------------------------------
    def _trace(self, key, n_args: int) -> tuple[Graph, pytree.TreeDef]:
        treedef, types, statics = key
        static_pos = dict(s for s in statics if isinstance(s[0], int))
        static_kw = {k: v for k, v in statics if isinstance(k, str)}
        out_tree = []

        def flat_fun(*leaf_tracers):
            dyn_args, dyn_kwargs = pytree.unflatten(treedef, leaf_tracers)
            it = iter(dyn_args)
            full_args = [static_pos[i] if i in static_pos else next(it) for i in range(n_args)]
            out = self.fun(*full_args, **dyn_kwargs, **static_kw)
            leaves, tree = pytree.flatten(out)
            out_tree.append(tree)
            return leaves

        in_types = [TensorType(shape, dtype, weak) for shape, dtype, weak in types]
        graph, _ = trace_flat(flat_fun, in_types, self._name)
        if config.get("verify"):
            verify(graph)
        return graph, out_tree[0]

    def _entry(self, args, kwargs) -> tuple[_Entry, tuple, list, bool]:
        """(entry, key, leaves, whether this call traced it)."""
        key, leaves = self._signature(args, kwargs)
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            return entry, key, leaves, False
        with self._tracing:  # threads making a signature's first call trace it once
            entry = self._entries.get(key)
            if entry is not None:
                return entry, key, leaves, False
            return self._new_entry(key, leaves, len(args))

    def _new_entry(self, key, leaves, n_args: int) -> tuple[_Entry, tuple, list, bool]:
        where = recompile.function_location(self.fun)
        if config.get("explain_cache_misses") or debug.level() >= 1:
            recompile.explain_miss(self._name, self._seen, key)
        if not self._traces:
            recompile.note_new_function(self.fun, where)
        self._traces += 1
        self._seen.append(key)
        recompile.warn_if_retracing(self._name, self._seen, self._traces, where)
        started = time.perf_counter()
        graph, out_tree = self._trace(key, n_args)
        traced = time.perf_counter()
        backend = get_backend(self.backend)
        stages, report = run_pipeline(graph, fusion=getattr(backend, "NEEDS_FUSION", False))
        passed = time.perf_counter()
        donate = self._donated_leaves(key)
        signature = recompile.describe(key)
        run = self._runner(backend, stages, donate, signature, key, leaves)
        self._warn_unused_donations(key, getattr(run, "unused_donations", ()))
        entry = self._entries[key] = _Entry(stages, out_tree, run, report, signature)
        if isinstance(run, tiers.TieredRun):
            run.on_ready = functools.partial(setattr, entry, "run")  # later calls: no tiers
        self._stats.append({"signature": signature, "trace": traced - started,
                            "passes": passed - traced, "run": run})
        self._forget_beyond(config.get("max_signatures"))
        if debug.level() >= 2 or config.get("dump_dir"):
            debug.after_trace(self._name, Lowered(entry, self.backend, self._name), signature)
        return entry, key, leaves, True

    def _runner(self, backend, stages, donate, signature, key, leaves):
        """The signature's ``run``: compiled code, or, tiered, the interpreter until the
        compiled code is built in the background (``tiers.py``)."""
        fused = list(stages.values())[-1]

        def build():
            return backend.compile_graph(fused, donate=donate, **self._backend_options)

        tiered = config.hot("tiered") if self.tiered is None else self.tiered
        if not tiered or self.backend != "numba_cpu":
            return build()
        compiled = None
        if "numba" in sys.modules and not any(isinstance(x, Tracer) for x in leaves):
            # Numba is running already, so generating the code costs milliseconds: a new shape
            # whose compiled code is in memory (same ranks and dtypes) runs it at once.
            compiled = build()
            if compiled.in_memory([_to_runtime(x, k) for x, k in zip(leaves, key[1])]):
                return compiled
        plan = tiers.plan(stages["dce"], fused)
        if debug.level() >= 1:
            debug.say(f"tracejit: {self._name}{signature}: first call on "
                      f"{'the interpreter' if plan.interpret_first else 'compiled code'}: "
                      f"{plan.why}")
        if not plan.interpret_first:
            return build()
        from .backends import interpreter
        return tiers.TieredRun(interpreter.compile_graph(stages["dce"]), build, self._name,
                               unused_donations=backend.unused_donations(fused, donate),
                               compiled=compiled)

    def _forget_beyond(self, limit: int) -> None:
        """Keep the ``limit`` most recently used signatures (TRACEJIT_MAX_SIGNATURES)."""
        if limit <= 0 or len(self._entries) <= limit:
            return
        while len(self._entries) > limit:
            self._entries.popitem(last=False)
        while len(self._seen) > limit:
            self._seen.popleft()
        while len(self._stats) > limit:
            self._stats.popleft()
        self._fast.clear()  # (it refills from the entries kept, one call each)

    def _donated_leaves(self, key) -> frozenset:
        """Indices of the flat inputs that belong to donated positional arguments."""
        if not self.donate_argnums:
            return frozenset()
        positions = {i - sum(1 for s in self.static_argnums if s < i) for i in self.donate_argnums}
        paths = pytree.leaf_paths(key[0])
        return frozenset(j for j, p in enumerate(paths)
                         if p.startswith("[0][") and int(p[4:p.index("]", 4)]) in positions)

    def _warn_unused_donations(self, key, unused) -> None:
        if unused:
            paths = pytree.leaf_paths(key[0])
            names = ", ".join(recompile.pretty_path(paths[j]) for j in unused)
            warnings.warn(f"{self._name}: donated {names} cannot be reused: no output of the same "
                          "shape and dtype is computed elementwise from it after its last use; "
                          "the call allocates instead", stacklevel=5)

    # --- public --------------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        # Fast path for the common call: positional ndarrays only, a signature seen before.
        fast_key = None
        if not kwargs and not self.static_argnums:
            fast_key = tuple((a.shape, a.dtype) if type(a) is np.ndarray else None for a in args)
            entry = self._fast.get(fast_key)
            if entry is not None:
                self._hits += 1
                if config.hot("debug"):
                    return self._logged_hit(entry, list(args))
                return pytree.unflatten(entry.out_tree, entry.run(list(args)))
        try:
            entry, key, leaves, traced = self._entry(args, kwargs)
        except Exception as e:
            if config.get("traceback_filtering"):
                e.with_traceback(errors.without_internal_frames(e.__traceback__))
            raise
        if fast_key is not None and None not in fast_key and \
                not any(isinstance(leaf, Tracer) for leaf in leaves):
            self._fast[fast_key] = entry
        if any(isinstance(leaf, Tracer) for leaf in leaves):
            # Inside another trace (a compile, a grad): inline this function's graph there.
            return pytree.unflatten(entry.out_tree, eval_graph(entry.optimized, leaves))
        self._hits += not traced
        runtime = [_to_runtime(leaf, k) for leaf, k in zip(leaves, key[1])]
        if not traced and config.hot("debug"):
            return self._logged_hit(entry, runtime)
        outs = entry.run(runtime)
        if traced and (config.get("log_compiles") or debug.level() >= 1):
            recompile.log_compile(self._name, key, self.compile_stats()[-1])
        if traced and debug.level() >= 2 and not self.donate_argnums:
            debug.kernel_times(self._name, entry.run, runtime)
        if traced and config.get("dump_dir"):
            debug.after_first_run(self._name, Lowered(entry, self.backend, self._name),
                                  self.compile_stats()[-1])
        return pytree.unflatten(entry.out_tree, outs)

    def _logged_hit(self, entry, runtime):
        """A call served by a signature seen before, printed with its time and the tier that
        ran it (TRACEJIT_DEBUG)."""
        tier = getattr(entry.run, "tier", "compiled")
        started = time.perf_counter()
        outs = entry.run(runtime)
        debug.say(f"tracejit: {self._name}: cache hit {entry.signature} on {tier} "
                  f"({(time.perf_counter() - started) * 1e6:.1f} us)")
        return pytree.unflatten(entry.out_tree, outs)

    def cache_info(self) -> recompile.CacheInfo:
        """Calls served by a signature seen before, traces, compiles, disk-cache loads, and
        every signature seen (see ``tracejit/recompile.py``)."""
        runs = [s["run"] for s in self._stats]
        loads = sum("load" in getattr(r, "timings", {}) for r in runs)
        compiles = sum("numba" in getattr(r, "timings", {}) for r in runs)
        reused = sum("reuse" in getattr(r, "timings", {}) for r in runs)
        return recompile.CacheInfo(self._hits, self._traces, self._traces, compiles, loads,
                                   [recompile.describe(k) for k in self._seen], reused)

    def compile_stats(self) -> list[dict]:
        """Per signature compiled, the seconds spent: ``trace``, ``passes``, ``codegen``
        (generating the source), ``numba`` (Numba's typing and LLVM), ``load`` (from the disk
        cache) or ``reuse`` (the compiled code of an earlier signature with the same ranks and
        dtypes: a cache hit, no compile), and their ``total``. Tiered signatures
        (``tiers.py``) add ``kernels`` (the compile workers' time on the kernels; their
        ``numba`` is the worker's time on the entry) and, not in ``total``: ``tier0`` (the
        first call, on the interpreter), ``kernels_load`` and ``switch`` (loading what the
        workers built), ``glue_after`` and ``ready_after`` (seconds from the first call to
        compiled kernels, and to the compiled entry).
        Backend times appear after the signature's first call (tiered: once the compiled code
        is ready); the most recent TRACEJIT_MAX_SIGNATURES signatures are kept."""
        result = []
        for s in self._stats:
            times = {"signature": s["signature"], "trace": s["trace"], "passes": s["passes"]}
            times.update(getattr(s["run"], "timings", {}))
            times["total"] = sum(v for k, v in times.items() if isinstance(v, float) and
                                 k not in _TIER_TIMES)
            result.append(times)
        return result

    def ready(self, *args, **kwargs) -> bool:
        """Whether calls with these arguments run compiled code (False before the first call
        of their signature, and while a tiered function builds it in the background)."""
        key, _ = self._signature(args, kwargs)
        entry = self._entries.get(key)
        return entry is not None and getattr(entry.run, "ready", True)

    def wait(self, *args, timeout=None, **kwargs) -> bool:
        """Block until calls with these arguments run compiled code, tracing and compiling
        their signature if needed; False if ``timeout`` seconds passed first or the compile
        failed (the calls keep running on the interpreter, after one warning)."""
        entry, key, leaves, _ = self._entry(args, kwargs)
        if any(isinstance(leaf, Tracer) for leaf in leaves):
            raise TypeError(f"{self._name}.wait() takes arrays, not traced values")
        runtime = [_to_runtime(leaf, k) for leaf, k in zip(leaves, key[1])]
        run = entry.run
        if isinstance(run, tiers.TieredRun):
            return run.wait(runtime, timeout)
        if hasattr(run, "prepare"):
            run.prepare(runtime)
        return True

    def lower(self, *args, **kwargs) -> Lowered:
        """Trace (or reuse the trace) for these arguments without running; inspect the result."""
        entry, _, _, _ = self._entry(args, kwargs)
        return Lowered(entry, self.backend, self._name)

    def __repr__(self) -> str:
        return f"<tracejit.compile({self._name}) backend={self.backend}>"


_TIER_TIMES = ("tier0", "kernels_load", "switch", "glue_after", "ready_after")


def _hashable_static(value, what: str, fname: str):
    if isinstance(value, (np.ndarray, Tracer)):
        raise TypeError(at_user_line(
            f"{fname}: static {what} is an array; static arguments must be hashable Python "
            "values (ints, strings, tuples). Pass arrays as ordinary arguments."))
    try:
        hash(value)
    except TypeError:
        raise TypeError(at_user_line(
            f"{fname}: static {what} of type {type(value).__name__} is not hashable; static "
            "arguments must be hashable (use a tuple instead of a list)")) from None
    return value


def _donate_set(donate_argnums, static_argnums, fun) -> frozenset:
    nums = (donate_argnums,) if isinstance(donate_argnums, int) else tuple(donate_argnums)
    if not all(isinstance(n, int) and n >= 0 for n in nums):
        raise TypeError(f"donate_argnums must be non-negative ints, got {donate_argnums!r}")
    both = sorted(set(nums) & static_argnums)
    if both:
        raise ValueError(f"{getattr(fun, '__name__', 'f')}: argument(s) {both} are both static "
                         "and donated; static arguments have no buffer to donate")
    return frozenset(nums)


def _static_sets(fun, static_argnums, static_argnames):
    nums = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)
    names = (static_argnames,) if isinstance(static_argnames, str) else tuple(static_argnames)
    try:
        params = list(inspect.signature(fun).parameters.values())
    except (TypeError, ValueError):
        params = []
    positional = [p.name for p in params
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    nums = {n % len(positional) if n < 0 and positional else n for n in nums}
    names = set(names)
    for n in list(nums):  # a static position may also be passed by keyword
        if n < len(positional):
            names.add(positional[n])
    for name in list(names):
        if name in positional:
            nums.add(positional.index(name))
    return frozenset(nums), frozenset(names)


def _choose_backend(backend, device) -> str:
    from .backends import DEVICES
    if device is None:
        return backend or config.get("backend")
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; devices: {', '.join(DEVICES)}")
    if backend is not None and backend != DEVICES[device] and \
            not (device == "cpu" and backend == "interpreter"):
        raise ValueError(f"device={device!r} and backend={backend!r} disagree (device "
                         f"{device!r} runs on backend {DEVICES[device]!r})")
    return backend or DEVICES[device]


def compile(fun=None, *, static_argnums=(), static_argnames=(), backend=None,  # noqa: A001
            donate_argnums=(), device=None, return_device_arrays=False, tiered=None):
    """Compile ``fun``: trace once per signature, then run the traced graph.

    >>> import numpy as np, tracejit
    >>> @tracejit.compile
    ... def f(x, y):
    ...     return np.tanh(x) * y + 1.0
    >>> f(np.zeros(3, np.float32), 2.0)
    array([1., 1., 1.], dtype=float32)

    Usable bare (``@compile``) or with arguments (``@compile(static_argnums=1)``).

    ``donate_argnums``: positional arguments whose buffers the outputs may reuse (an optimizer
    update written in place). After the call a donated array's contents are unspecified: use
    the returned values instead. Backends that cannot reuse a buffer allocate as usual.

    ``device="cuda"`` (the ``numba_cuda`` backend, needs ``tracejit[cuda]``) runs the kernels
    on a GPU: inputs may be NumPy arrays (copied over) or device arrays (taken as they are);
    results are NumPy arrays, or device arrays with ``return_device_arrays=True``. Without a
    GPU, ``NUMBA_ENABLE_CUDASIM=1`` runs it on Numba's CUDA simulator.

    ``tiered`` (numba_cpu; default ``TRACEJIT_TIERED``, on): a new signature's first calls run
    on the interpreter while the compiled code is built in a background process, and calls
    switch to it when it is ready (``f.ready(*args)``, ``f.wait(*args)``; docs/caching.md).
    ``tiered=False`` compiles before the first call returns.
    """
    options = dict(backend=backend, donate_argnums=donate_argnums, device=device,
                   return_device_arrays=return_device_arrays, tiered=tiered)
    if fun is None:
        return lambda f: Compiled(f, static_argnums, static_argnames, **options)
    return Compiled(fun, static_argnums, static_argnames, **options)


def make_ir(fun, *, static_argnums=(), static_argnames=()):
    """``make_ir(f)(*args)`` traces ``f`` for these arguments and returns the Graph.

    >>> import numpy as np, tracejit
    >>> print(tracejit.make_ir(lambda x: (x * 2.0).sum())(np.ones(3, np.float32)))
    graph <lambda>(a:f32[3]) {
      b:f32[3] = broadcast_in_dim[shape=(3,) dims=()] 2.0:f32
      c:f32[3] = mul a b
      d:f32[] = reduce_sum[axes=(0,)] c
      return d
    }
    """
    compiled = Compiled(fun, static_argnums, static_argnames, backend="interpreter")

    @functools.wraps(fun, updated=())
    def traced(*args, **kwargs):
        key, _ = compiled._signature(args, kwargs)
        graph, _ = compiled._trace(key, len(args))
        return graph

    return traced
