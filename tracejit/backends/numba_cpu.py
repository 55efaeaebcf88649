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
from ..ir import Graph, Literal, Var
from . import buffers, codegen, entry_control
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


def _tuple(values) -> str:
    values = list(values)
    return "(" + ", ".join(map(str, values)) + ("," if len(values) == 1 else "") + ")"


class _EntryWriter:
    """Writes the entry function's source, one equation at a time."""

    def __init__(self, graph: Graph, plan: buffers.BufferPlan):
        self.graph = graph
        self.plan = plan
        self.donations = sorted(set(plan.donated.values()))
        self.lines: list[str] = []
        self.names: dict[int, str] = {}
        self.views: set[int] = set()  # values that may alias inputs or be read-only views
        self.kernels: list = []  # compiled kernel dispatchers, called as _k0, _k1, ...
        self.kernel_sources: list[str] = []
        self.kernel_eqns: list = []  # the fused equation behind each kernel, in call order
        self.kernel_builds: list = []  # (module text, options) per kernel, for compile workers
        self.kernel_inplace: list = []  # per kernel: output index -> input it is written into
        for k, v in enumerate(graph.inputs):
            self.names[id(v)] = f"a{k}"
            self.views.add(id(v))
        for k, (v, _) in enumerate(graph.consts):
            self.names[id(v)] = f"c{k}"
            self.views.add(id(v))
        self.counter = 0
        self.depth = 1  # indentation: loop and branch bodies are deeper
        # Numbers that depend on the shapes (sizes, slice bounds, `sum / n`) are read at run time
        # from two arguments, `s` (int64) and `f` (float64), so the entry's source, and its
        # compiled code, serve every shape of the same ranks and dtypes (docs/caching.md).
        self.ints: list[int] = []
        self.floats: list[float] = []

    def fresh(self) -> str:
        self.counter += 1
        return f"t{self.counter}"

    def use(self, atom) -> str:
        if isinstance(atom, Literal):
            return self.literal(atom)
        return self.names[id(atom)]

    def dim(self, n: int) -> str:
        """A size (or any shape-derived integer), read at run time."""
        self.ints.append(int(n))
        return f"s[{len(self.ints) - 1}]"

    def shape(self, shape) -> str:
        """A shape tuple of run-time sizes."""
        return _tuple(self.dim(n) for n in shape)

    def literal(self, lit: Literal) -> str:
        """A scalar constant, read at run time where it may depend on shapes (a float, or an
        integer that int64 holds); bools and huge uint64 values stay in the source."""
        dtype, value = lit.ttype.dtype, lit.value.item()
        if dtype.kind == "f":
            self.floats.append(float(value))
            return f"{codegen.dtype_name(dtype)}(f[{len(self.floats) - 1}])"
        if dtype.kind in "iu" and -2 ** 63 <= value < 2 ** 63:
            return f"{codegen.dtype_name(dtype)}({self.dim(value)})"
        return codegen.literal_code(lit)

    def buffer(self, var: Var, shape=None) -> str:
        """An expression for the array ``var`` is written into (see ``buffers.py``), in
        ``shape`` (same size) when given."""
        shape = tuple(var.ttype.shape if shape is None else shape)
        same = shape == tuple(var.ttype.shape)
        dtype = codegen.dtype_name(var.ttype.dtype)
        if id(var) in self.plan.donated:
            donated = f"d{self.donations.index(self.plan.donated[id(var)])}"
            return donated if same else f"{donated}.reshape({self.shape(shape)})"
        for k, v in enumerate(self.plan.preallocated):
            if v is var:
                return f"o{k}" if same else f"o{k}.reshape({self.shape(shape)})"
        slot = self.plan.slot_of.get(id(var))
        if slot is not None:  # (a slot holds at least its largest occupant: buffers.Slot)
            return f"w{slot}[:{self.dim(var.ttype.size)}].reshape({self.shape(shape)})"
        return f"np.empty({self.shape(shape)}, {dtype})"

    def scalar(self, atom) -> str:
        return self.literal(atom) if isinstance(atom, Literal) else f"{self.use(atom)}[()]"

    def emit(self, text: str):
        self.lines.append("    " * self.depth + text)

    def define(self, var: Var, expr: str, view: bool) -> str:
        name = self.fresh()
        self.emit(f"{name} = {expr}")
        self.names[id(var)] = name
        if view:
            self.views.add(id(var))
        return name

    def source(self) -> str:
        args = [f"a{k}" for k in range(len(self.graph.inputs))]
        args += [f"c{k}" for k in range(len(self.graph.consts))]
        args += [f"w{k}" for k in range(len(self.plan.slots))]
        args += [f"d{k}" for k in range(len(self.donations))]
        args += [f"o{k}" for k in range(len(self.plan.preallocated))]
        args += ["s", "f"]
        outs = []
        for atom in self.graph.outputs:
            if isinstance(atom, Literal):
                outs.append("None")  # filled in by the Python driver
            elif id(atom) in self.views:
                outs.append(f"{self.use(atom)}.copy()")  # outputs never alias inputs or views
            else:
                outs.append(self.use(atom))
        body = self.lines or ["    pass"]
        return f"def entry({', '.join(args)}):\n" + "\n".join(body) + \
            f"\n    return {_tuple(outs)}\n"


def _where(eqn) -> str:
    return f" (`{eqn.prim.name}` traced at {eqn.source_info})" if eqn.source_info else ""


def _emit(w: _EntryWriter, eqn, threshold: int):
    name, params = eqn.prim.name, eqn.params
    if eqn.prim.kind == "control":  # (its operands are named by entry_control)
        entry_control.emit_control(w, eqn, lambda w_, e: _emit(w_, e, threshold))
        return
    ins = [w.use(a) for a in eqn.inputs]
    (out,) = eqn.outputs if len(eqn.outputs) == 1 else (None,)
    shape = out.ttype.shape if out is not None else None
    dtype = codegen.dtype_name(out.ttype.dtype) if out is not None else None

    if name == "kernel":
        body, kind = params["body"], params["kind"]
        space = next(e.inputs[0] for e in body.eqns if e.prim.name.startswith("reduce_")
                     ).ttype if kind in ("reduce", "row") else body.outputs[0].ttype
        parallel = threshold > 0 and space.size >= threshold
        kname = f"_k{len(w.kernels)}"
        # Outputs written into a donated input: the kernel reads and writes that one argument.
        inplace = {}
        for k, v in enumerate(eqn.outputs):
            if id(v) in w.plan.donated:
                donor = w.graph.inputs[w.plan.donated[id(v)]]
                inplace[k] = next(p for p, a in enumerate(eqn.inputs) if a is donor)
        source = codegen.kernel_source("kernel", body, kind, parallel, _vector_math_overrides(),
                                       inplace)
        text, options = kernel_build(source, kind != "elementwise", source.parallel)
        w.kernels.append(_load("kernel", text, options, _kernel_cache))
        w.kernel_builds.append((text, options))
        w.kernel_inplace.append(inplace)
        w.kernel_sources.append(source.text)
        w.kernel_eqns.append(eqn)
        outs = []
        for k, v in enumerate(eqn.outputs):
            name_ = w.define(v, w.buffer(v), view=False)
            if k in inplace:
                ins[inplace[k]] = name_  # the donated buffer holds the input's values
            else:
                outs.append(name_)
        constants = [w.literal(c) for c in source.literals]
        w.emit(f"{kname}({', '.join(ins + outs + constants)})")
    elif name == "broadcast_in_dim":
        x = eqn.inputs[0]
        expanded = [1] * len(shape)
        for i, d in enumerate(params["dims"]):
            expanded[d] = x.ttype.shape[i]
        if isinstance(x, Literal):
            w.define(out, f"np.full({w.shape(shape)}, {ins[0]})", view=False)
        else:
            w.define(out, f"np.broadcast_to(np.ascontiguousarray({ins[0]}).reshape("
                          f"{w.shape(expanded)}), {w.shape(shape)})", view=True)
    elif name == "reshape":
        w.define(out, f"np.ascontiguousarray({ins[0]}).reshape({w.shape(shape)})", view=True)
    elif name == "transpose":
        w.define(out, f"np.transpose({ins[0]}, {_tuple(params['perm'])})", view=True)
    elif name == "slice":
        index = ", ".join(f"{w.dim(lo)}:{w.dim(hi)}:{w.dim(st)}" for lo, hi, st in
                          zip(params["start"], params["limit"], params["strides"]))
        w.define(out, f"{ins[0]}[{index},]" if index else ins[0], view=True)
    elif name == "rev":
        index = ", ".join("::-1" if d in params["axes"] else ":"
                          for d in range(eqn.inputs[0].ttype.ndim))
        w.define(out, f"{ins[0]}[{index},]", view=True)
    elif name == "pad":
        t = w.define(out, f"np.full({w.shape(shape)}, {w.scalar(eqn.inputs[1])}, {dtype})",
                     view=False)
        x = eqn.inputs[0]
        if x.ttype.size:
            index = ", ".join(f"{w.dim(lo)}:{w.dim(lo + (n - 1) * (i + 1) + 1)}:{w.dim(i + 1)}"
                              for (lo, _, i), n in zip(params["config"], x.ttype.shape))
            w.emit(f"{t}[{index},] = {ins[0]}")
    elif name == "concatenate":
        w.define(out, f"np.concatenate({_tuple(ins)}, axis={params['axis']})", view=False)
    elif name == "iota":
        expanded = [1] * len(shape)
        expanded[params["dimension"]] = shape[params["dimension"]]
        ramp = (f"np.arange({w.dim(shape[params['dimension']])})"
                f".astype({codegen.dtype_name(params['dtype'])})")
        w.define(out, f"np.broadcast_to({ramp}.reshape({w.shape(expanded)}), "
                      f"{w.shape(shape)})", view=True)
    elif name in ("cumsum", "cumprod", "argmax", "argmin", "argsort"):
        _emit_rows(w, eqn, ins[0], out)
    elif name in ("gather", "scatter_add"):
        _emit_indexing(w, eqn, ins, out)
    elif name == "dot_general":
        _emit_dot_general(w, eqn, ins, out)
    elif name in _LINALG_PRIMITIVES:
        _emit_linalg(w, eqn, ins)
    else:
        raise NotImplementedError(f"numba_cpu: no lowering for primitive `{name}`{_where(eqn)}")


def _matrix_view(w, x: str, ndim: int, nb: int, rows, cols, shape) -> str | None:
    """``x`` (C-contiguous, its first ``nb`` axes the batch) as a view of shape ``shape``
    ((batch, rows, cols), or (rows, cols) without batch axes) that BLAS reads in place: its
    row axes then its column axes in memory order (a reshape), or the reverse (the transpose
    of a reshape); None when the axes are interleaved (the operand is then copied)."""
    batch, r, c = shape
    rest = tuple(range(nb, ndim))
    base = f"np.ascontiguousarray({x})"
    if tuple(rows) + tuple(cols) == rest:
        dims = (batch, r, c) if nb else (r, c)
        return f"{base}.reshape({w.shape(dims)})"
    if tuple(cols) + tuple(rows) == rest:
        if nb:
            return f"np.transpose({base}.reshape({w.shape((batch, c, r))}), (0, 2, 1))"
        return f"np.transpose({base}.reshape({w.shape((c, r))}))"
    return None


def _arranged(x: str, perm) -> str:
    """x with axes in ``perm`` order, C-contiguous (a copy only when needed)."""
    if tuple(perm) == tuple(range(len(perm))):
        return f"np.ascontiguousarray({x})"
    return f"np.transpose({x}, {_tuple(perm)}).copy()"


def _axis_last(x_type, axis):
    perm = [d for d in range(x_type.ndim) if d != axis] + [axis]
    rows = int(np.prod([x_type.shape[d] for d in perm[:-1]], dtype=np.int64))
    return perm, rows, x_type.shape[axis]


def _emit_rows(w, eqn, x, out):
    """Scans, arg-reductions and argsort along one axis: that axis made last, rows in a 2-D
    array (scans and argsort write rows of the same shape, int64 for argsort)."""
    name = eqn.prim.name
    x_type = eqn.inputs[0].ttype
    axis = eqn.params["axis"]
    perm, rows, n = _axis_last(x_type, axis)
    rows_in = w.fresh()
    w.emit(f"{rows_in} = {_arranged(x, perm)}.reshape({w.shape((rows, n))})")
    if name in ("cumsum", "cumprod", "argsort"):
        rows_out = w.fresh()
        w.emit(f"{rows_out} = np.empty({w.shape((rows, n))}, "
               f"{codegen.dtype_name(out.ttype.dtype)})")
        w.emit(f"_rt.{name}_rows({rows_in}, {rows_out})")
        moved = tuple(x_type.shape[d] for d in perm)
        inverse = [perm.index(d) for d in range(x_type.ndim)]
        w.define(out, f"np.transpose({rows_out}.reshape({w.shape(moved)}), "
                      f"{_tuple(inverse)})", view=True)
    else:
        flat = w.fresh()
        w.emit(f"{flat} = np.empty({w.dim(rows)}, np.int64)")
        w.emit(f"_rt.arg_extremum_rows({rows_in}, {flat}, {name == 'argmax'})")
        w.define(out, f"{flat}.reshape({w.shape(out.ttype.shape)})", view=False)


def _emit_indexing(w, eqn, ins, out):
    """gather / scatter_add: indexed axes moved first, rows addressed by linear position."""
    axes = eqn.params["axes"]
    x_type = eqn.inputs[0].ttype
    rest = [d for d in range(x_type.ndim) if d not in axes]
    perm = list(axes) + rest
    dims = tuple(x_type.shape[a] for a in axes)
    positions = int(np.prod(dims, dtype=np.int64))
    width = int(np.prod([x_type.shape[d] for d in rest], dtype=np.int64))
    index_atoms = eqn.inputs[1:] if eqn.prim.name == "gather" else eqn.inputs[2:]
    index_names = ins[1:] if eqn.prim.name == "gather" else ins[2:]
    batch = index_atoms[0].ttype.shape
    count = int(np.prod(batch, dtype=np.int64))
    stack, lin = w.fresh(), w.fresh()
    w.emit(f"{stack} = np.empty({w.shape((len(index_names), count))}, np.int64)")
    for k, n in enumerate(index_names):
        w.emit(f"{stack}[{k}] = np.ascontiguousarray({n}).reshape({w.dim(count)})")
    w.emit(f"{lin} = np.empty({w.dim(count)}, np.int64)")
    message = f"index out of bounds in `{eqn.prim.name}`" + \
        (f" traced at {eqn.source_info}" if eqn.source_info else "")
    w.emit(f"if not _rt.linear_index({stack}, {w.shape(dims)}, {lin}):")
    w.emit(f"    raise IndexError({message!r})")
    moved = w.fresh()
    if eqn.prim.name == "gather":
        w.emit(f"{moved} = {_arranged(ins[0], perm)}.reshape({w.shape((positions, width))})")
        picked = w.fresh()
        w.emit(f"{picked} = np.empty({w.shape((count, width))}, "
               f"{codegen.dtype_name(out.ttype.dtype)})")
        w.emit(f"_rt.gather_rows({moved}, {lin}, {picked})")
        w.define(out, f"{picked}.reshape({w.shape(out.ttype.shape)})", view=False)
    else:
        w.emit(f"{moved} = np.transpose({ins[0]}, {_tuple(perm)}).copy()")
        updates = w.fresh()
        w.emit(f"{updates} = np.ascontiguousarray({ins[1]}).reshape("
               f"{w.shape((count, width))})")
        w.emit(f"_rt.scatter_add_rows({moved}.reshape({w.shape((positions, width))}), {lin}, "
               f"{updates})")
        inverse = [perm.index(d) for d in range(x_type.ndim)]
        w.define(out, f"np.transpose({moved}, {_tuple(inverse)})", view=True)


def _emit_dot_general(w, eqn, ins, out):
    """Matrix products through BLAS (``blas.py``): two matrices as they are (transposes are
    views); batched ones arranged as (batch, m, k) and (batch, k, n); integers by loops."""
    from ..primitives.reductions import _free_axes
    lhs, rhs = (a.ttype for a in eqn.inputs)
    (lc, rc), (lb, rb) = eqn.params["contract"], eqn.params["batch"]
    lf, rf = _free_axes(lhs.ndim, lc, lb), _free_axes(rhs.ndim, rc, rb)
    size = lambda t, axes: int(np.prod([t.shape[a] for a in axes], dtype=np.int64))  # noqa
    b, m, k, n = size(lhs, lb), size(lhs, lf), size(lhs, lc), size(rhs, rf)
    dtype = out.ttype.dtype
    float_kind = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}.get(np.dtype(dtype))
    if lhs.ndim == rhs.ndim == 2 and not lb and float_kind:
        # A plain matrix product: operands as they are, or as transposed views (blas.py).
        a2 = ins[0] if tuple(lf + lc) == (0, 1) else f"np.transpose({ins[0]})"
        b2 = ins[1] if tuple(rc + rf) == (0, 1) else f"np.transpose({ins[1]})"
        o2 = w.define(out, w.buffer(out), view=False)
        w.emit(f"_blas.gemm_{float_kind}(_blas.readable({a2}), _blas.readable({b2}), {o2})")
        return
    nb = len(lb)
    leading = tuple(lb) == tuple(rb) == tuple(range(nb))
    a_view = _matrix_view(w, ins[0], lhs.ndim, nb, lf, lc, (b, m, k))
    b_view = _matrix_view(w, ins[1], rhs.ndim, nb, rc, rf, (b, k, n))
    if float_kind and leading and a_view and b_view and \
            tuple(lc) == tuple(sorted(lc)) and tuple(rc) == tuple(sorted(rc)):
        # Each operand a matrix (or a stack of them) read in place by BLAS, transposed where
        # its axes are: no copy of a transposed operand (a dense layer's weight gradient).
        if nb:
            o3 = w.fresh()
            w.emit(f"{o3} = {w.buffer(out, (b, m, n))}")
            w.emit(f"_blas.gemm_batched_{float_kind}({a_view}, {b_view}, {o3})")
        else:
            o3 = w.fresh()
            w.emit(f"{o3} = {w.buffer(out, (m, n))}")
            w.emit(f"_blas.gemm_{float_kind}({a_view}, {b_view}, {o3})")
        w.define(out, f"{o3}.reshape({w.shape(out.ttype.shape)})", view=False)
        return
    a3, b3, o3 = w.fresh(), w.fresh(), w.fresh()
    w.emit(f"{a3} = {_arranged(ins[0], lb + lf + lc)}.reshape({w.shape((b, m, k))})")
    w.emit(f"{b3} = {_arranged(ins[1], rb + rc + rf)}.reshape({w.shape((b, k, n))})")
    w.emit(f"{o3} = {w.buffer(out, (b, m, n))}")
    if float_kind:
        w.emit(f"_blas.gemm_batched_{float_kind}({a3}, {b3}, {o3})")
    else:
        w.emit(f"_rt.matmul_loops({a3}, {b3}, {o3})")
    w.define(out, f"{o3}.reshape({w.shape(out.ttype.shape)})", view=False)


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
        writer = _EntryWriter(self.fused, self.plan)
        threshold = config.get("blas_parallel_threshold" if _calls_blas(graph)
                               else "parallel_threshold")
        for eqn in self.fused.eqns:
            _emit(writer, eqn, threshold)
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
        # The graph's constant arrays, then its shape-derived numbers (_EntryWriter.dim/literal)
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


# --- linear algebra: LAPACK calls written by lapack.py -----------------------------------------
_LINALG_PRIMITIVES = ("solve", "triangular_solve", "cholesky", "slogdet", "eigh", "svd", "qr")


def _emit_linalg(w, eqn, ins):
    from . import lapack
    lapack.emit(w, eqn, ins, codegen.dtype_name(eqn.outputs[0].ttype.dtype))


def _linalg_imports(graph: Graph) -> list[str]:
    """The entry module's import of the LAPACK helpers, only where the graph calls them (other
    entries keep their source, and their disk-cache keys)."""
    from . import lapack
    return [lapack.IMPORT] if lapack.uses_lapack(graph) else []
