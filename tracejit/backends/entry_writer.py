"""The entry function's source, written equation by equation: kernel calls (each kernel's
module from ``codegen.py``, loaded through ``numba_cpu._load``), views for movement
equations, rows helpers, gathers and scatters, matrix products through BLAS on views, and the
LAPACK calls of ``lapack.py``; control flow is ``entry_control.py``'s. ``numba_cpu.CompiledGraph``
runs one ``EntryWriter`` over the fused graph and compiles (or runs as Python) what it wrote.
"""
from __future__ import annotations

import numpy as np

from ..ir import Graph, Literal, Var
from . import buffers, codegen, entry_control
from . import numba_cpu as cpu  # (the loader and kernel options; imported first)


def _tuple(values) -> str:
    values = list(values)
    return "(" + ", ".join(map(str, values)) + ("," if len(values) == 1 else "") + ")"


class EntryWriter:
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


def emit(w: EntryWriter, eqn, threshold: int):
    name, params = eqn.prim.name, eqn.params
    if eqn.prim.kind == "control":  # (its operands are named by entry_control)
        entry_control.emit_control(w, eqn, lambda w_, e: emit(w_, e, threshold))
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
        source = codegen.kernel_source("kernel", body, kind, parallel, cpu._vector_math_overrides(),
                                       inplace)
        text, options = cpu.kernel_build(source, kind != "elementwise", source.parallel)
        w.kernels.append(cpu._load("kernel", text, options, cpu._kernel_cache))
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



# --- linear algebra: LAPACK calls written by lapack.py -----------------------------------------
from ..primitives.linalg import PRIMITIVES as _LINALG_PRIMITIVES  # noqa: E402


def _emit_linalg(w, eqn, ins):
    from . import lapack
    lapack.emit(w, eqn, ins, codegen.dtype_name)
