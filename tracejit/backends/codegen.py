"""Kernel source generation shared by the compiled backends: scalar bodies and loop nests.

A kernel's body graph (from the fusion pass) becomes straight-line scalar code, one statement
per equation, from each primitive's registry ``scalar`` expression. Every value is cast to its
exact dtype after each operation (``np.int32(a * b)``), so integer wrap-around and float32
rounding are NumPy's even where the host language would widen. Operands broadcast into the
kernel are read through index arithmetic: a dimension of size 1 is indexed with 0.

    elementwise kernel over shape (n0, n1):          reduce kernel over axes (1,):
        for i0 in range(n0):                             for i0 in range(n0):
            for i1 in range(n1):                             acc = identity
                v = <body>(in[i0, i1], b[0, i1])             for i1 in range(n1):
                out[i0, i1] = v                                  acc = combine(acc, <body>)
                                                             out[i0] = acc
"""
from __future__ import annotations

import numpy as np

from ..ir import Graph, Literal

DTYPE_NAMES = {np.dtype(t): f"np.{np.dtype(t).name}" for t in (
    np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
    np.float16, np.float32, np.float64)}
DTYPE_NAMES[np.dtype(np.bool_)] = "np.bool_"

# Where the registry's expression is Python's and the compiled language differs on bool.
_BOOL_OVERRIDES = {"not": "(not {0})"}


def dtype_name(dtype) -> str:
    return DTYPE_NAMES[np.dtype(dtype)]


def literal_code(lit: Literal) -> str:
    value = lit.value.item()
    if lit.ttype.dtype.kind != "f":
        text = repr(value)
    elif np.isnan(value):
        text = "np.nan"
    elif np.isinf(value):
        text = "np.inf" if value > 0 else "-np.inf"
    else:
        text = repr(float(value))
    return f"{dtype_name(lit.ttype.dtype)}({text})"


def scalar_statement(eqn, args: list[str]) -> str:
    """The expression computing one elementwise equation from its operands' names."""
    prim = eqn.prim
    template = prim.scalar
    if prim.name in _BOOL_OVERRIDES and eqn.inputs[0].ttype.dtype.kind == "b":
        template = _BOOL_OVERRIDES[prim.name]
    params = {}
    if prim.name == "convert":
        params["dtype"] = dtype_name(eqn.params["dtype"])
    expr = template.format(*args, **params)
    return f"{dtype_name(eqn.outputs[0].ttype.dtype)}({expr})"


class KernelSource:
    """Source text of one kernel function; ``parallel`` when its outer loop is a prange."""

    def __init__(self, name: str, text: str, parallel: bool = False):
        self.name = name
        self.text = text
        self.parallel = parallel


def _index(ndim: int, dims=None, shape=None, out_shape=None) -> str:
    """Index expression for an operand read at the iteration point (i0, i1, ...)."""
    if dims is None:
        names = [f"i{d}" for d in range(ndim)]
    else:
        names = ["0" if shape[k] == 1 and out_shape[d] != 1 else f"i{d}"
                 for k, d in enumerate(dims)]
    if not names:
        return "[()]"
    return "[" + ", ".join(names) + ("," if len(names) == 1 else "") + "]"


_REDUCE_COMBINE = {"reduce_sum": "{acc} + {v}", "reduce_prod": "{acc} * {v}",
                   "reduce_max": "np.maximum({acc}, {v})", "reduce_min": "np.minimum({acc}, {v})"}


def _reduce_identity(prim_name, dtype) -> str:
    dtype = np.dtype(dtype)
    if prim_name == "reduce_sum":
        return "0"
    if prim_name == "reduce_prod":
        return "1"
    if dtype.kind == "f":
        return "-np.inf" if prim_name == "reduce_max" else "np.inf"
    if dtype.kind == "b":
        return "False" if prim_name == "reduce_max" else "True"
    info = np.iinfo(dtype)
    return str(info.min if prim_name == "reduce_max" else info.max)


def _accumulator_dtype(prim_name, dtype) -> np.dtype:
    """Sums of float16/float32 accumulate in float64: at least as accurate as NumPy's pairwise
    summation, rounded once at the end."""
    dtype = np.dtype(dtype)
    if prim_name == "reduce_sum" and dtype.kind == "f" and dtype.itemsize < 8:
        return np.dtype(np.float64)
    return dtype


def kernel_source(name: str, body: Graph, kind: str, parallel: bool) -> KernelSource:
    """A kernel ``name(in..., out...)`` computing ``body`` over its iteration space."""
    reductions = [e for e in body.eqns if e.prim.name in _REDUCE_COMBINE]
    space = reductions[0].inputs[0].ttype.shape if reductions else body.outputs[0].ttype.shape
    axes = reductions[0].params["axes"] if reductions else ()
    kept = [d for d in range(len(space)) if d not in axes]
    in_names = [f"in{k}" for k in range(len(body.inputs))]
    out_names = [f"out{k}" for k in range(len(body.outputs))]
    names: dict[int, str] = {id(v): n for v, n in zip(body.inputs, in_names)}
    constants: list[str] = []
    statements: list[str] = []  # run at each point of the iteration space
    reads: dict[int, str] = {}

    def operand(atom) -> str:
        if isinstance(atom, Literal):
            code = literal_code(atom)
            constants.append(f"c{len(constants)} = {code}")
            return f"c{len(constants) - 1}"
        if id(atom) in reads:
            return reads[id(atom)]
        if id(atom) in names and atom in body.inputs:  # an input read at the iteration point
            local = f"r{len(reads)}"
            statements.append(f"{local} = {names[id(atom)]}{_index(atom.ttype.ndim)}")
            reads[id(atom)] = local
            return local
        return names[id(atom)]

    counter = 0
    reduced: dict[int, str] = {}  # reduction -> the name of the value it accumulates
    for eqn in body.eqns:
        (out,) = eqn.outputs
        if eqn.prim.name == "broadcast_in_dim":
            (src,) = eqn.inputs
            if isinstance(src, Literal):
                names[id(out)] = operand(src)
            else:  # an input broadcast into the kernel: index arithmetic, no copy
                local = f"r{len(reads)}"
                index = _index(src.ttype.ndim, eqn.params["dims"], src.ttype.shape,
                               eqn.params["shape"])
                statements.append(f"{local} = {names[id(src)]}{index}")
                reads[id(out)] = local
                names[id(out)] = local
            continue
        if eqn.prim.name in _REDUCE_COMBINE:
            reduced[id(eqn)] = operand(eqn.inputs[0])
            continue
        args = [operand(a) for a in eqn.inputs]
        local = f"v{counter}"
        counter += 1
        statements.append(f"{local} = {scalar_statement(eqn, args)}")
        names[id(out)] = local

    lines = [f"def {name}({', '.join(in_names + out_names)}):"]
    lines += [f"    {c}" for c in constants]
    for d in range(len(space)):
        lines.append(f"    n{d} = {_shape_source(body, space, d)}")
    parallel = parallel and bool(kept)  # a full reduction has no independent outer loop
    loop = "prange" if parallel else "range"
    depth = 1
    out_index_full = _index(len(space))
    acc_names = {}
    for position, d in enumerate(kept):
        lines.append("    " * depth + f"for i{d} in {loop if position == 0 else 'range'}(n{d}):")
        depth += 1
    for k, r in enumerate(reductions):
        acc = f"acc{k}"
        acc_names[id(r)] = acc
        acc_dtype = _accumulator_dtype(r.prim.name, r.outputs[0].ttype.dtype)
        ident = _reduce_identity(r.prim.name, r.outputs[0].ttype.dtype)
        lines.append("    " * depth + f"{acc} = {dtype_name(acc_dtype)}({ident})")
    for d in axes:  # reduced loops stay serial: the accumulator carries between iterations
        lines.append("    " * depth + f"for i{d} in range(n{d}):")
        depth += 1
    pad = "    " * depth
    lines += [pad + s for s in statements]
    for k, v in enumerate(body.outputs):
        if any(v is r.outputs[0] for r in reductions):
            continue
        lines.append(pad + f"out{k}{out_index_full} = {names[id(v)]}")
    for r in reductions:
        acc = acc_names[id(r)]
        acc_dtype = _accumulator_dtype(r.prim.name, r.outputs[0].ttype.dtype)
        combine = _REDUCE_COMBINE[r.prim.name].format(acc=acc, v=reduced[id(r)])
        lines.append(pad + f"{acc} = {dtype_name(acc_dtype)}({combine})")
    depth -= len(axes)
    pad = "    " * depth
    kept_index = "[" + ", ".join(f"i{d}" for d in kept) + ("," if len(kept) == 1 else "") + "]" \
        if kept else "[()]"
    for k, v in enumerate(body.outputs):
        for r in reductions:
            if v is r.outputs[0]:
                out_dtype = dtype_name(v.ttype.dtype)
                lines.append(pad + f"out{k}{kept_index} = {out_dtype}({acc_names[id(r)]})")
    if len(lines) == 1 + len(constants) + len(space):
        lines.append("    pass")
    return KernelSource(name, "\n".join(lines) + "\n", parallel)


def _shape_source(body, space, d) -> str:
    """Loop bounds come from an array argument, so one kernel serves every size."""
    for k, v in enumerate(body.inputs):
        if v.ttype.shape == tuple(space):
            return f"in{k}.shape[{d}]"
    for k, v in enumerate(body.outputs):
        if v.ttype.shape == tuple(space):
            return f"out{k}.shape[{d}]"
    return str(space[d])
