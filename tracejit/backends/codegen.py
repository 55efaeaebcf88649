"""Kernel source generation shared by the compiled backends: scalar bodies and loop nests.

A kernel's body graph (from the fusion pass) becomes straight-line scalar code, one statement
per equation, from each primitive's registry ``scalar`` expression. Every value is cast to its
exact dtype after each operation (``np.int32(a * b)``), so integer wrap-around and float32
rounding are NumPy's even where the host language would widen. Operands broadcast into the
kernel are read through index arithmetic: a dimension of size 1 is indexed with 0. Loop bounds
come from the arrays and scalar constants are parameters (``c0, c1, ...`` after the outputs),
so kernels that differ only in sizes or constants have one source text: one compiled function
in memory and one module in the disk cache.

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
from ..passes.fusion import row_equations

DTYPE_NAMES = {np.dtype(t): f"np.{np.dtype(t).name}" for t in (
    np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
    np.float16, np.float32, np.float64)}
DTYPE_NAMES[np.dtype(np.bool_)] = "np.bool_"



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


def scalar_statement(eqn, args: list[str], overrides=None) -> str:
    """The expression computing one elementwise equation from its operands' names.

    ``overrides`` maps (primitive name, dtype) to a target's own expression (e.g. the CPU
    backend's vectorisable float32 exp)."""
    prim = eqn.prim
    template = prim.scalar
    if eqn.inputs:
        dtype = eqn.inputs[0].ttype.dtype
        template = prim.scalar_by_kind.get(dtype.kind, template)
        template = (overrides or {}).get((prim.name, dtype), template)
    params = {}
    if prim.name == "convert":
        params["dtype"] = dtype_name(eqn.params["dtype"])
    expr = template.format(*args, **params)
    return f"{dtype_name(eqn.outputs[0].ttype.dtype)}({expr})"


class KernelSource:
    """Source text of one kernel function; ``parallel`` when its outer loop is a prange;
    ``literals``: the scalar constants (``Literal``) the caller passes after the outputs, and
    ``constants`` their code."""

    def __init__(self, name: str, text: str, parallel: bool = False, literals=()):
        self.name = name
        self.text = text
        self.parallel = parallel
        self.literals = list(literals)
        self.constants = [literal_code(lit) for lit in self.literals]


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


_CHUNK = 1 << 16  # elements of the first reduced axis per parallel chunk of a full reduction
_REDUCE_COMBINE = {"reduce_sum": "{acc} + {v}", "reduce_prod": "{acc} * {v}",
                   "reduce_max": "np.maximum({acc}, {v})", "reduce_min": "np.minimum({acc}, {v})"}


def _offset_loop(var: str, start: str, stop: str) -> str:
    """A loop over ``range(start, stop)``, ``start`` a block or chunk offset, with an unsigned
    loop variable. Numba wraps negative indices around (``a[i]`` reads ``a[i + n]`` when
    ``i < 0``); LLVM drops that check only where it proves ``i >= 0``, which it does for
    ``range(n)`` but not from an offset, and a loop that keeps it does not vectorise (a float32
    sum ran 9x slower). An unsigned index has no wrap-around to check."""
    return f"for {var} in range(np.uint64({start}), np.uint64({stop})):"


def _nan_tracked(prim_name, dtype) -> bool:
    """Float max/min accumulate with a plain compare-and-select, which vectorises (3x faster
    than ``np.maximum``), and a separate any-NaN flag: NumPy's max of anything with a NaN is
    NaN."""
    return prim_name in ("reduce_max", "reduce_min") and np.dtype(dtype).kind == "f"


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


_BLOCK = 1024  # elements of the innermost reduced axis summed in float32 before a float64 add


def _blocked(prim_name, dtype) -> bool:
    """float32 sums run in blocks: each block summed in float32 (reassociated, so it vectorises
    at full SIMD width, 8 to 32 lanes of at most 128 terms each), block sums added in float64.
    The error does not grow with the length beyond one block's: about NumPy's pairwise
    summation's (tested against it), at the speed of a plain float32 loop."""
    return prim_name == "reduce_sum" and np.dtype(dtype) == np.float32


def _accumulator_dtype(prim_name, dtype) -> np.dtype:
    """Sums of float16/float32 accumulate in float64 (float32 in blocks, see ``_blocked``): at
    least as accurate as NumPy's pairwise summation, rounded once at the end."""
    dtype = np.dtype(dtype)
    if prim_name == "reduce_sum" and dtype.kind == "f" and dtype.itemsize < 8:
        return np.dtype(np.float64)
    return dtype


# Worth storing in a per-row buffer rather than recomputing in a later pass over the row.
_EXPENSIVE = {"exp", "log", "log1p", "expm1", "tanh", "sin", "cos", "tan", "arctan", "atan2",
              "pow", "arcsinh", "hypot"}


def _buffered_values(body: Graph, stage, axes, row_ids) -> list:
    """Full-shape values used by a later stage than their own whose computation is expensive
    (softmax's exp): stored once per row instead of recomputed. One reduced axis only."""
    if len(axes) != 1:
        return []
    producer = {id(e.outputs[0]): e for e in body.eqns}
    chosen, seen = [], set()
    for eqn in body.eqns:
        for a in eqn.inputs:
            p = producer.get(id(a)) if not isinstance(a, Literal) else None
            if p is None or id(a) in seen or id(a) in row_ids:
                continue
            if p.prim.name in _EXPENSIVE and stage[id(eqn.outputs[0])] > stage[id(a)]:
                seen.add(id(a))
                chosen.append(a)
    return chosen


def _output_host(value, body: Graph, stored, stage, inplace, taken, out_names, out_position):
    """The name of an output that can hold the buffered ``value`` between the stages of a row,
    or None. It must have the value's type and be written in the last stage that reads the
    value, where every read of the buffer at a point comes before the store to that point; it
    must not be an input's (an in-place output) nor already hold another buffer."""
    readers = [stage[id(e)] if e.prim.name in _REDUCE_COMBINE else stage[id(e.outputs[0])]
               for e in body.eqns if any(a is value for a in e.inputs)]
    for out in stored:
        k = out_position[id(out)]
        if out is not value and out.ttype == value.ttype and k not in inplace and \
                out_names[k] not in taken and stage[id(out)] == max(readers):
            return out_names[k]
    return None


def _small_integer_power(eqn, producer):
    """k for ``x ** k`` with a constant float exponent k in 3..4 (x**2 is simplified earlier),
    else None. Repeated multiplication is within an ULP or two of pow, and vectorises."""
    if eqn.prim.name != "pow" or eqn.outputs[0].ttype.dtype.kind != "f":
        return None
    exponent = eqn.inputs[1]
    if not isinstance(exponent, Literal):
        p = producer.get(id(exponent))
        if p is None or p.prim.name != "broadcast_in_dim" or not isinstance(p.inputs[0], Literal):
            return None
        exponent = p.inputs[0]
    value = float(exponent.value)
    return int(value) if value in (3.0, 4.0) else None


def _stages(body: Graph):
    """Stage of every value: 0 for inputs and what they compute, k + 1 for what needs the
    result of a stage-k reduction (read as one scalar per row)."""
    stage: dict[int, int] = {id(v): 0 for v in body.inputs}
    for eqn in body.eqns:
        ins = [0 if isinstance(a, Literal) else stage[id(a)] for a in eqn.inputs]
        (out,) = eqn.outputs
        if eqn.prim.name in _REDUCE_COMBINE:
            stage[id(eqn)] = ins[0]
            stage[id(out)] = ins[0] + 1
        else:
            stage[id(out)] = max(ins, default=0)
    return stage


def kernel_source(name: str, body: Graph, kind: str, parallel: bool,
                  overrides=None, inplace=None) -> KernelSource:
    """A kernel ``name(in..., out...)`` computing ``body`` over its iteration space.

    ``inplace`` maps output positions to input positions (elementwise kernels only): those
    outputs are written into their input and take no argument of their own. Writing through
    the same name lets the compiler see the store hits the element just loaded, so the loop
    still vectorises; a separate output argument aliasing the input would not.

    Reductions run in stages: stage k loops over the reduced axes once per row, accumulating the
    stage-k reductions; stage k + 1 may use their results (softmax: max, then sum of exp, then
    the division). Elementwise values are recomputed in each stage that needs them rather than
    stored: they are cheap, and memory traffic is what costs.
    """
    reductions = [e for e in body.eqns if e.prim.name in _REDUCE_COMBINE]
    space = reductions[0].inputs[0].ttype.shape if reductions else body.outputs[0].ttype.shape
    axes = reductions[0].params["axes"] if reductions else ()
    kept = [d for d in range(len(space)) if d not in axes]
    stage = _stages(body)
    producer = {id(e.outputs[0]): e for e in body.eqns}
    inplace = inplace or {}
    out_names = [f"in{inplace[k]}" if k in inplace else f"out{k}"
                 for k in range(len(body.outputs))]
    out_position = {id(v): k for k, v in enumerate(body.outputs)}
    # Per-row values: reduction results, and the work done on them once per row (sum / n).
    row_eqns, row_ids = row_equations(body)
    row_name: dict[int, str] = {id(r.outputs[0]): f"red{k}" for k, r in enumerate(reductions)}
    in_names = {id(v): f"in{k}" for k, v in enumerate(body.inputs)}
    constants: dict[tuple, str] = {}

    def constant(lit) -> str:
        key = (lit.ttype.dtype.str, repr(lit.value.item()))
        if key not in constants:
            constants[key] = f"c{len(constants)}"
            constant_values.append(lit)
        return constants[key]

    constant_values: list = []  # passed in, so kernels differing only in them are one
    full_index = _index(len(space))

    constants_code: dict[str, str] = {}

    def hoisted(var) -> str:
        """A 0-d input, read once before the loops (also what parallel loops need)."""
        local = f"s{in_names[id(var)][2:]}"
        constants_code[local] = f"{in_names[id(var)]}[()]"
        return local

    stored = [v for v in body.outputs if id(v) not in row_ids]
    row_index = f"[i{axes[0]}]" if len(axes) == 1 else ""
    # Buffered values: id -> (array, index). One is kept in the row of an output where it can
    # (softmax's exp, overwritten by the division that reads it): fewer bytes per row to keep
    # in the L1 cache, and no allocation.
    buffers: dict[int, tuple[str, str]] = {}
    new_buffers: list[tuple[str, object]] = []  # (name, value) of those needing an array
    for v in _buffered_values(body, stage, axes, row_ids):
        host = _output_host(v, body, stored, stage, inplace,
                            [o for o, _ in buffers.values()], out_names, out_position)
        if host is not None:
            buffers[id(v)] = (host, full_index)
        else:
            buffers[id(v)] = (f"buf{len(new_buffers)}", row_index)
            new_buffers.append((f"buf{len(new_buffers)}", v))
    filled: set[int] = set()  # buffers written by an earlier stage

    hoisting = not reductions and len(space) >= 2  # elementwise over 2+ dims
    row_loads: list[tuple[int, str]] = []  # (innermost loop var it needs, load), hoisted

    def values_for(targets) -> tuple[list[str], dict[int, str]]:
        """Statements computing ``targets`` (vars) at the iteration point, and their names."""
        lines, names, counter = [], {}, [0]

        def value(atom) -> str:
            if isinstance(atom, Literal):
                return constant(atom)
            if id(atom) in names:
                return names[id(atom)]
            if id(atom) in row_name:  # computed once per row, after an earlier stage
                return row_name[id(atom)]
            if id(atom) in filled:  # stored by an earlier pass over this row
                local = f"v{counter[0]}"
                counter[0] += 1
                lines.append(f"{local} = {''.join(buffers[id(atom)])}")
                names[id(atom)] = local
                return local
            def fresh() -> str:
                counter[0] += 1
                return f"v{counter[0] - 1}"

            if id(atom) in in_names and atom.ttype.ndim == 0:
                return hoisted(atom)
            if id(atom) in in_names:
                local = fresh()
                lines.append(f"{local} = {in_names[id(atom)]}{full_index}")
            else:
                eqn = producer[id(atom)]
                if eqn.prim.name == "broadcast_in_dim":
                    (src,) = eqn.inputs
                    if isinstance(src, Literal) or id(src) in row_name or src.ttype.ndim == 0:
                        names[id(atom)] = value(src)
                        return names[id(atom)]
                    index = _index(src.ttype.ndim, eqn.params["dims"], src.ttype.shape,
                                   eqn.params["shape"])
                    local = fresh()
                    used = [int(t[1:]) for t in index.strip("[],").split(", ") if t[:1] == "i"]
                    if hoisting and max(used, default=-1) < len(space) - 1:
                        # Invariant in the innermost loop (a per-row operand): loaded once
                        # per row. (Stores to the outputs, which might alias it, keep the
                        # compiler from hoisting the load itself.)
                        row_loads.append((max(used, default=-1), f"{local} = "
                                          f"{in_names[id(src)]}{index}"))
                    else:
                        lines.append(f"{local} = {in_names[id(src)]}{index}")
                else:
                    args = [value(a) for a in eqn.inputs]
                    local = fresh()
                    k = _small_integer_power(eqn, producer)
                    if k is not None:  # x**3 as x*x*x: vectorises, unlike a pow call
                        expr = " * ".join([args[0]] * k)
                        lines.append(f"{local} = {dtype_name(eqn.outputs[0].ttype.dtype)}({expr})")
                    else:
                        lines.append(f"{local} = {scalar_statement(eqn, args, overrides)}")
            names[id(atom)] = local
            return local

        for t in targets:
            value(t)
        return lines, names

    def row_operand(atom) -> str:
        if isinstance(atom, Literal):
            return constant(atom)
        if id(atom) in row_name:
            return row_name[id(atom)]
        return constant(producer[id(atom)].inputs[0])  # a broadcast literal

    n_stages = max([stage[id(r)] for r in reductions] + [stage[id(v)] for v in stored] + [0]) + 1

    def row_work(s: int, pad: str) -> None:
        """Per-row work on the stage-s reduction results (``sum / n``, ``1 / sqrt(var)``)."""
        for eqn in row_eqns:
            if stage[id(eqn.outputs[0])] != s + 1:
                continue
            args = [row_operand(a) for a in eqn.inputs]
            if eqn.prim.name == "reshape":
                row_name[id(eqn.outputs[0])] = args[0]
                continue
            name_ = f"q{len(row_name)}"
            row_name[id(eqn.outputs[0])] = name_
            body_lines.append(pad + f"{name_} = {scalar_statement(eqn, args, overrides)}")

    def row_outputs(pad: str) -> None:
        for v in body.outputs:
            if id(v) in row_ids:  # per-row outputs: at the row's index (0 on kept dims of 1)
                if v.ttype.ndim == len(space):
                    index = [("0" if d in axes else f"i{d}") for d in range(len(space))]
                else:
                    index = [f"i{d}" for d in kept]
                text = "[" + ", ".join(index) + ("," if len(index) == 1 else "") + "]" \
                    if index else "[()]"
                body_lines.append(pad + f"{out_names[out_position[id(v)]]}{text} = "
                                        f"{row_name[id(v)]}")

    body_lines: list[str] = []
    # Reductions over the leading axes of a C-ordered array (a bias gradient: sum over the
    # batch) loop over the reduced axes outside and the kept ones inside, accumulating into
    # arrays: every read is contiguous and the inner loop vectorises. (The row order would read
    # columns with a stride.) Serial kernels in one pass only.
    if reductions and kept and not parallel and n_stages == 1 and \
            list(axes) == list(range(len(axes))):
        return _column_kernel(name, body, reductions, stored, kept, axes, space, values_for,
                              row_work, row_outputs, body_lines, out_names, out_position,
                              constants_code, constant_values, inplace)
    # A full reduction has no independent outer loop: it is split into chunks of the first
    # reduced axis, reduced in parallel into partial accumulators, then combined (one stage).
    chunked = parallel and not kept and bool(reductions) and n_stages == 1
    parallel = parallel and (bool(kept) or chunked)
    loop = "prange" if parallel else "range"
    depth = 1
    headers: dict[int, tuple[int, int]] = {}  # loop var -> (position in body_lines, depth)
    for position, d in enumerate(kept):
        headers[d] = (len(body_lines), depth)
        body_lines.append("    " * depth +
                          f"for i{d} in {loop if position == 0 else 'range'}(n{d}):")
        depth += 1
    outer = depth
    for buf, v in new_buffers:
        body_lines.append("    " * outer + f"{buf} = np.empty(n{axes[0]}, "
                                          f"{dtype_name(v.ttype.dtype)})")
    for s in range(n_stages):
        stage_reds = [(k, r) for k, r in enumerate(reductions) if stage[id(r)] == s]
        stage_stores = [v for v in stored if stage[id(v)] == s]
        if not stage_reds and not stage_stores:
            continue
        tracked = {k for k, r in stage_reds if _nan_tracked(r.prim.name, r.outputs[0].ttype.dtype)}

        def start_accumulators(pad: str) -> None:
            for k, r in stage_reds:
                acc_dtype = _accumulator_dtype(r.prim.name, r.outputs[0].ttype.dtype)
                ident = _reduce_identity(r.prim.name, r.outputs[0].ttype.dtype)
                body_lines.append(pad + f"acc{k} = {dtype_name(acc_dtype)}({ident})")
                if k in tracked:
                    body_lines.append(pad + f"nan{k} = False")

        if not chunked:  # (chunks start their own)
            start_accumulators("    " * outer)
        depth = outer
        if chunked:
            first = axes[0]
            body_lines.append("    " * depth + f"nchunks = (n{first} + {_CHUNK - 1}) // {_CHUNK}")
            for k, r in stage_reds:
                acc_dtype = _accumulator_dtype(r.prim.name, r.outputs[0].ttype.dtype)
                body_lines.append("    " * depth + f"part{k} = np.empty(nchunks, "
                                                    f"{dtype_name(acc_dtype)})")
            body_lines.append("    " * depth + "for chunk in prange(nchunks):")
            depth += 1
            start_accumulators("    " * depth)
            chunk_depth = depth
            body_lines.append("    " * depth + f"end{first} = min(n{first}, (chunk + 1) * "
                                                f"{_CHUNK})")
            body_lines.append("    " * depth + _offset_loop(f"i{first}", f"chunk * {_CHUNK}",
                                                              f"end{first}"))
            depth += 1
        blocked = [(k, r) for k, r in stage_reds
                   if _blocked(r.prim.name, r.outputs[0].ttype.dtype)]
        inner = list(axes[1:] if chunked else axes)  # serial: the accumulators carry over
        for d in inner[:-1] if blocked else inner:
            body_lines.append("    " * depth + f"for i{d} in range(n{d}):")
            depth += 1
        if blocked:  # the innermost reduced loop, in blocks with float32 block accumulators
            d = inner[-1] if inner else axes[0]
            start, stop = (f"chunk * {_CHUNK}", f"end{d}") if not inner else ("0", f"n{d}")
            if not inner:  # the chunk's own loop over i{d} becomes the block loop
                body_lines.pop()
                depth -= 1
            body_lines.append("    " * depth + f"for b{d} in range({start}, {stop}, {_BLOCK}):")
            depth += 1
            for k, _ in blocked:
                body_lines.append("    " * depth + f"bacc{k} = np.float32(0)")
            body_lines.append("    " * depth + _offset_loop(f"i{d}", f"b{d}",
                                                              f"min({stop}, b{d} + {_BLOCK})"))
            depth += 1
        pad = "    " * depth
        lines, names = values_for([r.inputs[0] for _, r in stage_reds] + stage_stores)
        body_lines += [pad + line for line in lines]
        for key, (buf, index) in buffers.items():
            if key in names and key not in filled and stage[key] == s:
                body_lines.append(pad + f"{buf}{index} = {names[key]}")
                filled.add(key)
        for v in stage_stores:
            body_lines.append(pad + f"{out_names[out_position[id(v)]]}{full_index} = "
                                    f"{names[id(v)]}")
        for k, r in stage_reds:
            acc_dtype = _accumulator_dtype(r.prim.name, r.outputs[0].ttype.dtype)
            if (k, r) in blocked:
                body_lines.append(pad + f"bacc{k} = np.float32(bacc{k} + {names[id(r.inputs[0])]})")
                continue
            v = names[id(r.inputs[0])]
            if k in tracked:
                op = ">" if r.prim.name == "reduce_max" else "<"
                body_lines.append(pad + f"acc{k} = {v} if {v} {op} acc{k} else acc{k}")
                body_lines.append(pad + f"nan{k} |= {v} != {v}")
                continue
            combine = _REDUCE_COMBINE[r.prim.name].format(acc=f"acc{k}", v=v)
            body_lines.append(pad + f"acc{k} = {dtype_name(acc_dtype)}({combine})")
        for k, r in stage_reds:  # a NaN seen makes the result NaN (per chunk when chunked)
            if k in tracked:
                nan = f"{dtype_name(r.outputs[0].ttype.dtype)}(np.nan)"
                body_lines.append("    " * (chunk_depth if chunked else outer) +
                                  f"acc{k} = {nan} if nan{k} else acc{k}")
        for k, _ in blocked:  # after the block's loop: fold its float32 sum into float64
            body_lines.append("    " * (depth - 1) + f"acc{k} = np.float64(acc{k} + bacc{k})")
        if chunked:  # combine the chunks' partial results, in order
            for k, r in stage_reds:
                acc_dtype = _accumulator_dtype(r.prim.name, r.outputs[0].ttype.dtype)
                ident = _reduce_identity(r.prim.name, r.outputs[0].ttype.dtype)
                body_lines.append("    " * chunk_depth + f"part{k}[chunk] = acc{k}")
                combine = _REDUCE_COMBINE[r.prim.name].format(acc=f"acc{k}", v=f"part{k}[chunk]")
                body_lines.append("    " * outer + f"acc{k} = {dtype_name(acc_dtype)}({ident})")
                body_lines.append("    " * outer + "for chunk in range(nchunks):")
                body_lines.append("    " * (outer + 1) +
                                  f"acc{k} = {dtype_name(acc_dtype)}({combine})")
        for k, r in stage_reds:  # the rounded result, as later stages and outputs see it
            out_dtype = dtype_name(r.outputs[0].ttype.dtype)
            body_lines.append("    " * outer + f"red{k} = {out_dtype}(acc{k})")
        row_work(s, "    " * outer)
    row_outputs("    " * outer)
    for d, line in sorted(row_loads, key=lambda h: -h[0]):  # deepest first: positions hold
        at, level = headers[d] if d >= 0 else (-1, 0)
        body_lines.insert(at + 1, "    " * (level + 1) + line)

    return _assemble(name, body, space, body_lines, out_names, constants_code, constant_values,
                     inplace, parallel)


def _assemble(name, body, space, body_lines, out_names, constants_code, constant_values,
              inplace, parallel) -> KernelSource:
    args = [f"in{k}" for k in range(len(body.inputs))] + \
        [n for k, n in enumerate(out_names) if k not in inplace] + \
        [f"c{k}" for k in range(len(constant_values))]
    lines = [f"def {name}({', '.join(args)}):"]
    lines += [f"    {n} = {code}" for n, code in constants_code.items()]
    lines += [f"    n{d} = {_shape_source(body, space, d)}" for d in range(len(space))]
    lines += body_lines or ["    pass"]
    return KernelSource(name, "\n".join(lines) + "\n", parallel, constant_values)


def _column_kernel(name, body, reductions, stored, kept, axes, space, values_for, row_work,
                   row_outputs, body_lines, out_names, out_position, constants_code,
                   constant_values, inplace) -> KernelSource:
    """Reductions over leading axes: reduced loops outside, kept loops inside, accumulator
    arrays over the kept shape; then one pass over the kept shape for the results."""
    shape = "(" + ", ".join(f"n{d}" for d in kept) + ",)"
    at = "[" + ", ".join(f"i{d}" for d in kept) + ("," if len(kept) == 1 else "") + "]"
    full_index = _index(len(space))
    tracked = set()
    for k, r in enumerate(reductions):
        out_dtype = r.outputs[0].ttype.dtype
        acc = dtype_name(_accumulator_dtype(r.prim.name, out_dtype))
        body_lines.append(f"    acc{k} = np.full({shape}, {acc}("
                          f"{_reduce_identity(r.prim.name, out_dtype)}), {acc})")
        if _nan_tracked(r.prim.name, out_dtype):
            tracked.add(k)
            body_lines.append(f"    nan{k} = np.zeros({shape}, np.bool_)")
    depth = 1
    for d in list(axes) + list(kept):
        body_lines.append("    " * depth + f"for i{d} in range(n{d}):")
        depth += 1
    pad = "    " * depth
    lines, names = values_for([r.inputs[0] for r in reductions] + stored)
    body_lines += [pad + line for line in lines]
    for v in stored:
        body_lines.append(pad + f"{out_names[out_position[id(v)]]}{full_index} = {names[id(v)]}")
    for k, r in enumerate(reductions):
        v = names[id(r.inputs[0])]
        if k in tracked:
            op = ">" if r.prim.name == "reduce_max" else "<"
            body_lines.append(pad + f"acc{k}{at} = {v} if {v} {op} acc{k}{at} else acc{k}{at}")
            body_lines.append(pad + f"nan{k}{at} |= {v} != {v}")
        else:
            acc = dtype_name(_accumulator_dtype(r.prim.name, r.outputs[0].ttype.dtype))
            combine = _REDUCE_COMBINE[r.prim.name].format(acc=f"acc{k}{at}", v=v)
            body_lines.append(pad + f"acc{k}{at} = {acc}({combine})")
    depth = 1
    for d in kept:
        body_lines.append("    " * depth + f"for i{d} in range(n{d}):")
        depth += 1
    pad = "    " * depth
    for k, r in enumerate(reductions):
        out_dtype = dtype_name(r.outputs[0].ttype.dtype)
        value = f"{out_dtype}(np.nan) if nan{k}{at} else acc{k}{at}" if k in tracked else \
            f"acc{k}{at}"
        body_lines.append(pad + f"red{k} = {out_dtype}({value})")
    row_work(0, pad)
    row_outputs(pad)
    return _assemble(name, body, space, body_lines, out_names, constants_code, constant_values,
                     inplace, False)


def _shape_source(body, space, d) -> str:
    """Loop bounds come from an array argument, so one kernel serves every size."""
    for k, v in enumerate(body.inputs):
        if v.ttype.shape == tuple(space):
            return f"in{k}.shape[{d}]"
    for k, v in enumerate(body.outputs):
        if v.ttype.shape == tuple(space):
            return f"out{k}.shape[{d}]"
    return str(space[d])
