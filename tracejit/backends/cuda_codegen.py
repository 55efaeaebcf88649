"""CUDA kernel source for fused kernels: the same scalar bodies as the CPU, other drivers.

Each fused kernel's body (from the fusion pass) becomes straight-line scalar code through the
registry's ``scalar`` expressions (``codegen.scalar_statement``), with CUDA's own math library
for transcendental functions (``math.exp`` on a float32 is libdevice's ``expf``) and explicit
NaN-propagating selects for max/min. Only the driver around the body differs by kind:

    elementwise: a grid-stride loop over the flat index, decomposed into (i0, i1, ...);
                 broadcast operands are read with index 0 on their size-1 dimensions.
    reduce/row:  one block per output row (grid-stride over rows); the block's threads stride
                 over the row, each accumulating privately; a tree reduction in shared memory
                 combines them; every thread then reads the row's result, so later stages
                 (softmax's exp - max, then / sum) run in the same kernel.
    full reductions (no kept axis, one stage): ``kernel_partial`` on many blocks writes one
                 partial result per block, then ``kernel`` (one block) combines the partials.
    matmul:      a shared-memory tiled product (``matmul_source``) whose store runs the
                 elementwise epilogue that consumed the product (bias, activation) in place.

Block sizes and the tile are compile-time constants of the source (``Geometry``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir import Graph, Literal
from ..passes.fusion import row_equations
from .codegen import (KernelSource, _accumulator_dtype, _reduce_identity, _shape_source,
                      _stages, dtype_name, scalar_statement)

HEADER = """\
import math
import numpy as np
from numba import cuda

"""


@dataclass(frozen=True)
class Geometry:
    """Launch geometry, named (see ``numba_cuda.geometry()``: from the device's properties)."""
    threads: int  # threads per block of elementwise kernels
    reduce_threads: int  # threads per block of reduce/row kernels (a power of two)
    tile: int  # matmul tile edge (tile x tile threads per block)
    max_blocks: int  # grid-stride kernels launch at most this many blocks
    partial_blocks: int  # blocks computing partial results of one full reduction


def _cuda_overrides() -> dict:
    """(primitive, dtype) -> CUDA expression, where the CPU template names a NumPy function."""
    table = {}
    math_fns = {"exp": "exp", "log": "log", "log1p": "log1p", "expm1": "expm1", "sqrt": "sqrt",
                "sin": "sin", "cos": "cos", "tan": "tan", "tanh": "tanh", "arctan": "atan",
                "floor": "floor", "ceil": "ceil"}
    for dtype in (np.dtype(np.float32), np.dtype(np.float64)):
        for prim, fn in math_fns.items():
            table[(prim, dtype)] = f"math.{fn}({{0}})"
        table[("atan2", dtype)] = "math.atan2({0}, {1})"
        table[("round", dtype)] = "_rint({0})"
        table[("isnan", dtype)] = "({0} != {0})"
        table[("isfinite", dtype)] = "(abs({0}) < math.inf)"
        table[("sign", dtype)] = "(1 if {0} > 0 else (-1 if {0} < 0 else {0}))"
    for dtype in map(np.dtype, (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16,
                                np.uint32, np.uint64)):
        table[("sign", dtype)] = "(1 if {0} > 0 else (-1 if {0} < 0 else 0))"
    for dtype in map(np.dtype, (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8,
                                np.uint16, np.uint32, np.uint64, np.float32, np.float64)):
        # NumPy's maximum/minimum: a NaN operand wins.
        table[("max", dtype)] = "({0} if ({0} > {1} or {0} != {0}) else {1})"
        table[("min", dtype)] = "({0} if ({0} < {1} or {0} != {0}) else {1})"
    return table


OVERRIDES = _cuda_overrides()
_RINT = '''
@cuda.jit(device=True, inline=True)
def _rint(x):
    """Round half to even (np.rint)."""
    r = math.floor(x + 0.5)
    if r - x == 0.5 and r % 2 != 0:
        r -= 1
    return r if abs(x) < 4503599627370496.0 else x

'''
_COMBINE = {"reduce_sum": "{a} + {b}", "reduce_prod": "{a} * {b}",
            "reduce_max": "{a} if ({a} > {b} or {a} != {a}) else {b}",
            "reduce_min": "{a} if ({a} < {b} or {a} != {a}) else {b}"}


def _index(names) -> str:
    return "[" + ", ".join(names) + ("," if len(names) == 1 else "") + "]" if names else "[0]"


def _decompose(lines, pad, flat, dims, sizes):
    """Statements splitting the flat position ``flat`` into the loop variables ``i{d}``."""
    if not dims:
        return
    rest = flat
    for k in range(len(dims) - 1, 0, -1):
        d = dims[k]
        lines.append(f"{pad}i{d} = {rest} % {sizes[d]}")
        lines.append(f"{pad}r{d} = {rest} // {sizes[d]}")
        rest = f"r{d}"
    lines.append(f"{pad}i{dims[0]} = {rest}")


class _Body:
    """Scalar code for a kernel body: values at the iteration point (i0, i1, ...)."""

    def __init__(self, body: Graph, space, scalar_inputs=None):
        self.body = body
        self.space = tuple(space)
        self.producer = {id(e.outputs[0]): e for e in body.eqns}
        self.in_names = {id(v): f"in{k}" for k, v in enumerate(body.inputs)}
        self.scalar_inputs = scalar_inputs or {}  # body input id -> a local holding its value
        self.row_name: dict[int, str] = {}
        self.constants: dict[tuple, str] = {}
        self.constant_values: list = []  # Literals
        self.uses_rint = False

    def constant(self, lit) -> str:
        key = (lit.ttype.dtype.str, repr(lit.value.item()))
        if key not in self.constants:
            self.constants[key] = f"c{len(self.constants)}"
            self.constant_values.append(lit)
        return self.constants[key]

    def statement(self, eqn, args) -> str:
        text = scalar_statement(eqn, args, OVERRIDES)
        self.uses_rint |= "_rint(" in text
        return text

    def values(self, targets, lines, pad):
        names: dict[int, str] = {}
        counter = [0]

        def fresh():
            counter[0] += 1
            return f"v{counter[0] - 1}"

        def value(atom) -> str:
            if isinstance(atom, Literal):
                return self.constant(atom)
            if id(atom) in names:
                return names[id(atom)]
            if id(atom) in self.row_name:
                return self.row_name[id(atom)]
            if id(atom) in self.scalar_inputs:
                return self.scalar_inputs[id(atom)]
            if id(atom) in self.in_names:
                index = _index([f"i{d}" for d in range(atom.ttype.ndim)])
                local = fresh()
                lines.append(f"{pad}{local} = {self.in_names[id(atom)]}{index}")
            else:
                eqn = self.producer[id(atom)]
                if eqn.prim.name == "broadcast_in_dim":
                    (src,) = eqn.inputs
                    if isinstance(src, Literal) or id(src) in self.row_name or \
                            src.ttype.ndim == 0 or id(src) in self.scalar_inputs:
                        names[id(atom)] = value(src)
                        return names[id(atom)]
                    index = _index(["0" if src.ttype.shape[k] == 1 and
                                    eqn.params["shape"][d] != 1 else f"i{d}"
                                    for k, d in enumerate(eqn.params["dims"])])
                    local = fresh()
                    lines.append(f"{pad}{local} = {self.in_names[id(src)]}{index}")
                else:
                    args = [value(a) for a in eqn.inputs]
                    local = fresh()
                    lines.append(f"{pad}{local} = {self.statement(eqn, args)}")
            names[id(atom)] = local
            return local

        for t in targets:
            value(t)
        return names


def _source(name, args, prelude, lines, uses_rint) -> str:
    text = ("" if not uses_rint else _RINT) + \
        f"@cuda.jit\ndef {name}({', '.join(args)}):\n"
    return text + "\n".join("    " + p for p in prelude) + ("\n" if prelude else "") + \
        "\n".join(lines) + "\n"


def elementwise_source(body: Graph) -> KernelSource:
    space = body.outputs[0].ttype.shape
    b = _Body(body, space)
    lines = []
    pad = "    " * 2
    sizes = {d: f"n{d}" for d in range(len(space))}
    lines.append("    for flat in range(cuda.grid(1), total, cuda.gridsize(1)):")
    _decompose(lines, pad, "flat", list(range(len(space))), sizes)
    names = b.values(body.outputs, lines, pad)
    full = _index([f"i{d}" for d in range(len(space))])
    for k, v in enumerate(body.outputs):
        lines.append(f"{pad}out{k}{full} = {names[id(v)]}")
    prelude = [f"n{d} = {_shape_source(body, space, d)}" for d in range(len(space))]
    prelude.append("total = " + (" * ".join(f"n{d}" for d in range(len(space))) or "1"))
    args = [f"in{k}" for k in range(len(body.inputs))] + \
        [f"out{k}" for k in range(len(body.outputs))] + \
        [f"c{k}" for k in range(len(b.constant_values))]
    text = HEADER + _source("kernel", args, prelude, lines, b.uses_rint)
    return KernelSource("kernel", text, False, b.constant_values)


def reduce_source(body: Graph, geometry: Geometry) -> tuple[KernelSource, bool]:
    """A reduce or row kernel, one block per output row; (source, whether it is split into a
    partial pass over many blocks and a combining pass: full reductions in one stage)."""
    reductions = [e for e in body.eqns if e.prim.name in _COMBINE]
    space = reductions[0].inputs[0].ttype.shape
    axes = list(reductions[0].params["axes"])
    kept = [d for d in range(len(space)) if d not in axes]
    stage = _stages(body)
    b = _Body(body, space)
    for k, r in enumerate(reductions):
        b.row_name[id(r.outputs[0])] = f"red{k}"
    row_eqns, row_ids = row_equations(body)
    stored = [v for v in body.outputs if id(v) not in row_ids]
    n_stages = max([stage[id(r)] for r in reductions] + [stage[id(v)] for v in stored]) + 1
    split = not kept and n_stages == 1
    threads = geometry.reduce_threads
    sizes = {d: f"n{d}" for d in range(len(space))}
    full = _index([f"i{d}" for d in range(len(space))])
    acc_types = [dtype_name(_accumulator_dtype(r.prim.name, r.outputs[0].ttype.dtype))
                 for r in reductions]

    def tree(lines, pad, k, r):
        """Combine the block's ``sh{k}`` into ``sh{k}[0]`` (``threads`` a power of two)."""
        combine = _COMBINE[r.prim.name].format(a=f"sh{k}[tid]", b=f"sh{k}[tid + s]")
        lines += [f"{pad}cuda.syncthreads()", f"{pad}s = {threads // 2}",
                  f"{pad}while s > 0:", f"{pad}    if tid < s:",
                  f"{pad}        sh{k}[tid] = {acc_types[k]}({combine})",
                  f"{pad}    cuda.syncthreads()", f"{pad}    s //= 2"]

    def row_work(lines, pad, s):
        for eqn in row_eqns:
            if stage[id(eqn.outputs[0])] != s + 1:
                continue
            args = []
            for a in eqn.inputs:
                if isinstance(a, Literal):
                    args.append(b.constant(a))
                elif id(a) in b.row_name:
                    args.append(b.row_name[id(a)])
                else:
                    args.append(b.constant(b.producer[id(a)].inputs[0]))  # broadcast literal
            if eqn.prim.name == "reshape":
                b.row_name[id(eqn.outputs[0])] = args[0]
                continue
            name_ = f"q{len(b.row_name)}"
            b.row_name[id(eqn.outputs[0])] = name_
            lines.append(f"{pad}{name_} = {b.statement(eqn, args)}")

    def row_outputs(lines, pad):
        if any(id(v) in row_ids for v in body.outputs):
            lines.append(f"{pad}if tid == 0:")
        for k, v in enumerate(body.outputs):
            if id(v) in row_ids:
                if v.ttype.ndim == len(space):
                    index = ["0" if d in axes else f"i{d}" for d in range(len(space))]
                else:
                    index = [f"i{d}" for d in kept]
                lines.append(f"{pad}    out{k}{_index(index)} = {b.row_name[id(v)]}")

    def stage_loop(lines, pad, s, start, step, reds):
        """The threads' strided pass over the row for stage ``s``."""
        for k, r in reds:
            ident = _reduce_identity(r.prim.name, r.outputs[0].ttype.dtype)
            lines.append(f"{pad}acc{k} = {acc_types[k]}({ident})")
        lines.append(f"{pad}for j in range({start}, width, {step}):")
        inner = pad + "    "
        _decompose(lines, inner, "j", axes, sizes)
        stores = [v for v in stored if stage[id(v)] == s]
        names = b.values([r.inputs[0] for _, r in reds] + stores, lines, inner)
        for v in stores:
            k = body.outputs.index(v)
            lines.append(f"{inner}out{k}{full} = {names[id(v)]}")
        for k, r in reds:
            combine = _COMBINE[r.prim.name].format(a=f"acc{k}", b=names[id(r.inputs[0])])
            lines.append(f"{inner}acc{k} = {acc_types[k]}({combine})")
        for k, _ in reds:
            lines.append(f"{pad}sh{k}[tid] = acc{k}")

    prelude = [f"n{d} = {_shape_source(body, space, d)}" for d in range(len(space))]
    prelude.append("rows = " + (" * ".join(f"n{d}" for d in kept) or "1"))
    prelude.append("width = " + (" * ".join(f"n{d}" for d in axes) or "1"))
    prelude.append("tid = cuda.threadIdx.x")
    prelude += [f"sh{k} = cuda.shared.array({threads}, {acc_types[k]})"
                for k in range(len(reductions))]
    texts = []
    if split:
        # Pass 1, many blocks: each reduces its share of the whole array to one partial.
        lines = []
        reds = list(enumerate(reductions))
        stage_loop(lines, "    ", 0, f"cuda.blockIdx.x * {threads} + tid",
                   f"cuda.gridDim.x * {threads}", reds)
        for k, r in reds:
            tree(lines, "    ", k, r)
        lines.append("    if tid == 0:")
        lines += [f"        part{k}[cuda.blockIdx.x] = sh{k}[0]" for k, _ in reds]
        args = [f"in{k}" for k in range(len(body.inputs))] + \
            [f"out{k}" for k in range(len(body.outputs))] + \
            [f"part{k}" for k in range(len(reductions))]
        texts.append((args, prelude, lines))
        # Pass 2, one block: combine the partials, then the per-row work and the outputs.
        lines = []
        for k, r in reds:
            ident = _reduce_identity(r.prim.name, r.outputs[0].ttype.dtype)
            combine = _COMBINE[r.prim.name].format(a=f"acc{k}", b=f"part{k}[j]")
            lines += [f"    acc{k} = {acc_types[k]}({ident})",
                      f"    for j in range(tid, part{k}.shape[0], {threads}):",
                      f"        acc{k} = {acc_types[k]}({combine})",
                      f"    sh{k}[tid] = acc{k}"]
            tree(lines, "    ", k, r)
            lines.append(f"    red{k} = {dtype_name(r.outputs[0].ttype.dtype)}(sh{k}[0])")
        row_work(lines, "    ", 0)
        row_outputs(lines, "    ")
        finish_prelude = ["tid = cuda.threadIdx.x"] + \
            [f"sh{k} = cuda.shared.array({threads}, {acc_types[k]})"
             for k in range(len(reductions))]
        texts.append(([f"part{k}" for k in range(len(reductions))] +
                      [f"out{k}" for k in range(len(body.outputs))], finish_prelude, lines))
    else:
        lines = ["    for row in range(cuda.blockIdx.x, rows, cuda.gridDim.x):"]
        pad = "    " * 2
        _decompose(lines, pad, "row", kept, sizes)
        for s in range(n_stages):
            reds = [(k, r) for k, r in enumerate(reductions) if stage[id(r)] == s]
            if not reds and not [v for v in stored if stage[id(v)] == s]:
                continue
            stage_loop(lines, pad, s, "tid", str(threads), reds)
            for k, r in reds:
                tree(lines, pad, k, r)
                lines.append(f"{pad}red{k} = {dtype_name(r.outputs[0].ttype.dtype)}(sh{k}[0])")
            if reds:
                lines.append(f"{pad}cuda.syncthreads()")  # all read sh before it is reused
            row_work(lines, pad, s)
        row_outputs(lines, pad)
        args = [f"in{k}" for k in range(len(body.inputs))] + \
            [f"out{k}" for k in range(len(body.outputs))]
        texts.append((args, prelude, lines))
    constants = [f"c{k}" for k in range(len(b.constant_values))]
    names = ["kernel_partial", "kernel"] if split else ["kernel"]
    text = HEADER + "\n".join(_source(n, args + constants, prelude, lines, False)
                              for n, (args, prelude, lines) in zip(names, texts))
    if b.uses_rint:
        text = HEADER + _RINT + text[len(HEADER):]
    return KernelSource("kernel", text, False, b.constant_values), split


def matmul_source(dtype, acc_dtype, geometry: Geometry, epilogue: Graph | None = None,
                  product_input: int = 0, batch_dims=(), m_dims=(), n_dims=()) -> KernelSource:
    """``out = epilogue(a @ b)`` for a: (batch, m, k), b: (batch, k, n), tiled in shared memory.

    Without an epilogue the kernel writes the product into ``out0`` of shape (batch, m, n).
    With one, the product is the epilogue body's input ``product_input`` (an elementwise body
    over the product's shape, whose dimensions are ``batch_dims + m_dims + n_dims``): each
    thread evaluates the body at its element and writes the body's outputs."""
    t = geometry.tile
    dt, acc = dtype_name(dtype), dtype_name(acc_dtype)
    lines = [
        "    tx = cuda.threadIdx.x", "    ty = cuda.threadIdx.y",
        f"    col = cuda.blockIdx.x * {t} + tx", f"    row = cuda.blockIdx.y * {t} + ty",
        "    z = cuda.blockIdx.z", "    m = a.shape[1]", "    kk = a.shape[2]",
        "    n = b.shape[2]",
        f"    ta = cuda.shared.array(({t}, {t}), {dt})",
        f"    tb = cuda.shared.array(({t}, {t}), {dt})",
        f"    acc = {acc}(0)",
        f"    for t0 in range(0, kk, {t}):",
        f"        ta[ty, tx] = a[z, row, t0 + tx] if row < m and t0 + tx < kk else {dt}(0)",
        f"        tb[ty, tx] = b[z, t0 + ty, col] if t0 + ty < kk and col < n else {dt}(0)",
        "        cuda.syncthreads()",
        f"        for q in range({t}):",
        f"            acc = {acc}(acc + ta[ty, q] * tb[q, tx])",
        "        cuda.syncthreads()",
        "    if row < m and col < n:",
        f"        p = {dt}(acc)",
    ]
    if epilogue is None:
        lines.append("        out0[z, row, col] = p")
        args = ["a", "b", "out0"]
        return KernelSource("kernel", HEADER + _source("kernel", args, [], lines, False), False,
                            [])
    space = epilogue.outputs[0].ttype.shape
    product = epilogue.inputs[product_input]
    body = _Body(epilogue, space, {id(product): "p"})
    pad = "    " * 2
    sizes = {d: space[d] for d in range(len(space))}
    for flat, dims in (("z", batch_dims), ("row", m_dims), ("col", n_dims)):
        _decompose(lines, pad, flat, list(dims), sizes)
    names = body.values(epilogue.outputs, lines, pad)
    full = _index([f"i{d}" for d in range(len(space))])
    for k, v in enumerate(epilogue.outputs):
        lines.append(f"{pad}out{k}{full} = {names[id(v)]}")
    args = ["a", "b"] + [f"in{k}" for k in range(len(epilogue.inputs)) if k != product_input] + \
        [f"out{k}" for k in range(len(epilogue.outputs))] + \
        [f"c{k}" for k in range(len(body.constant_values))]
    text = HEADER + _source("kernel", args, [], lines, body.uses_rint)
    return KernelSource("kernel", text, False, body.constant_values)
