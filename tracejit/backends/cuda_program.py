"""A graph's device program for the CUDA backend: ``Program`` turns each equation of the fused
graph into steps on device arrays (fused kernels from ``cuda_codegen.py`` and the fixed
kernels of ``cuda_runtime.py``, launched through ``Launches``, which counts them), control flow
included; ``numba_cuda.CompiledGraph`` builds one per graph and runs it.
"""
from __future__ import annotations

import numpy as np

from ..ir import Graph, Literal
from . import cuda_codegen
from . import numba_cuda as cu  # (device plumbing: modules, runtime kernels; imported first)
from .cuda_codegen import Geometry

def _contiguous_strides(shape) -> list[int]:
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= n
    return strides[::-1]


def _size(shape) -> int:
    return int(np.prod(shape, dtype=np.int64))


def _array(t) -> tuple:
    return ("array", t.dtype, max(t.ndim, 1))  # 0-d values are (1,) arrays on the device


def _where(eqn) -> str:
    return f" (`{eqn.prim.name}` traced at {eqn.source_info})" if eqn.source_info else ""


class Launches:
    """Launch helpers shared by every program of one compiled graph."""

    def __init__(self, cuda, geo: Geometry):
        self.cuda = cuda
        self.geo = geo
        self.count = 0  # kernel launches so far (tests count a call's launches)

    def grid(self, n: int, threads: int) -> int:
        return max(1, min(-(-n // threads), self.geo.max_blocks))

    def run(self, fn, n, *args):
        """Launch ``fn`` over ``n`` items (grid-stride: at most ``max_blocks`` blocks)."""
        if n:
            fn[self.grid(n, self.geo.threads), self.geo.threads](*args)
            self.count += 1

    def empty(self, shape, dtype):
        return self.cuda.device_array(tuple(shape) or (1,), dtype)  # 0-d values as (1,)

    def flat(self, x):
        return x.reshape(x.size) if len(x.shape) != 1 else x

    def gather(self, src, out_shape, dtype, offset, strides):
        """A new array of ``out_shape``: element i is ``src.flat[offset + i . strides]``."""
        out = self.empty(out_shape, dtype)
        shape, strides = (tuple(out_shape), tuple(strides)) if out_shape else ((1,), (0,))
        self.run(cu._runtime("gather_strided"), _size(shape), self.flat(src),
                 self.flat(out), int(offset), tuple(map(int, strides)), shape)
        return out

    def place(self, src, src_shape, dst, offset, strides):
        shape, strides = (tuple(src_shape), tuple(strides)) if src_shape else ((1,), (0,))
        self.run(cu._runtime("place_strided"), _size(shape), self.flat(src),
                 self.flat(dst), int(offset), tuple(map(int, strides)), shape)

    def transposed(self, x, shape, dtype, perm):
        """``x`` (C-contiguous, ``shape``) with axes in ``perm`` order, C-contiguous."""
        if tuple(perm) == tuple(range(len(perm))):
            return x
        cs = _contiguous_strides(shape)
        return self.gather(x, [shape[p] for p in perm], dtype, 0, [cs[p] for p in perm])

    def copy(self, x):
        y = self.cuda.device_array(x.shape, x.dtype)
        self.put(y, x)
        return y

    @staticmethod
    def put(dst, src):
        """Copy ``src`` (host or device) into the device array ``dst``. Empty arrays are
        skipped: numba-cuda compares their strides, which are arbitrary when a size is 0."""
        if dst.size:
            dst.copy_to_device(src)

    def scalar(self, x):
        """A device value of one element, read on the host (a synchronisation)."""
        return x.copy_to_host().reshape(-1)[0]


class Program:
    """One graph (the top level, or a loop body or branch) as steps launching kernels."""

    def __init__(self, graph: Graph, launches: Launches, owner: "cu.CompiledGraph"):
        self.graph = graph
        self.l = launches
        self.owner = owner
        self.steps: list = []  # (eqn, fn taking the operand arrays, returning the results)
        self.consts_device = None
        self._literals: dict = {}
        users: dict[int, list] = {}
        for eqn in graph.eqns:
            for a in eqn.inputs:
                if not isinstance(a, Literal):
                    users.setdefault(id(a), []).append(eqn)
        outputs = {id(a) for a in graph.outputs}
        dot_of = {}  # id(elementwise kernel eqn) -> the float matmul it is the epilogue of
        for eqn in graph.eqns:
            product = eqn.outputs[0]
            if eqn.prim.name != "dot_general" or id(product) in outputs or \
                    product.ttype.dtype.kind != "f":
                continue
            (user, *others) = users.get(id(product), [None])
            if user is not None and not others and user.prim.name == "kernel" and \
                    user.params["kind"] == "elementwise" and \
                    user.params["body"].outputs[0].ttype.shape == product.ttype.shape and \
                    sum(a is product for a in user.inputs) == 1:
                dot_of[id(user)] = eqn
        fused_dots = {id(d) for d in dot_of.values()}
        for eqn in graph.eqns:
            if id(eqn) in fused_dots:
                continue  # launched with its epilogue, at the epilogue's place
            dot = dot_of.get(id(eqn))
            self.steps.append((eqn, self._matmul(dot, eqn) if dot else self._step(eqn), dot))

    # --- running -------------------------------------------------------------------------------
    def literal(self, lit):
        key = (lit.ttype.dtype.str, repr(lit.value.item()))
        box = self._literals.get(key)
        if box is None:
            box = self._literals[key] = self.l.cuda.to_device(
                np.asarray(lit.value, lit.ttype.dtype).reshape(1))
        return box

    def run(self, args) -> list:
        env: dict[int, object] = {}
        borrowed: set[int] = set()  # values that are the caller's (inputs, constants) or views

        def read(atom):
            return self.literal(atom) if isinstance(atom, Literal) else env[id(atom)]

        for var, value in zip(self.graph.inputs, args):
            env[id(var)] = value
            borrowed.add(id(var))
        if self.consts_device is None:
            self.consts_device = [cu.device_put(np.asarray(v).reshape(np.shape(v) or (1,)))
                                  for _, v in self.graph.consts]
        for (var, _), value in zip(self.graph.consts, self.consts_device):
            env[id(var)] = value
            borrowed.add(id(var))
        for eqn, step, dot in self.steps:
            if dot is None:
                results = step(*[read(a) for a in eqn.inputs])
            else:  # the epilogue's operands (the product: computed by the step), the dot's
                results = step(*[None if a is dot.outputs[0] else read(a) for a in eqn.inputs],
                               *[read(a) for a in dot.inputs])
            for var, value in zip(eqn.outputs, results):
                env[id(var)] = value
            if eqn.prim.name == "reshape" and not isinstance(eqn.inputs[0], Literal) and \
                    id(eqn.inputs[0]) in borrowed:
                borrowed.add(id(eqn.outputs[0]))
        outs, seen = [], set()
        for atom in self.graph.outputs:
            value = read(atom)
            if isinstance(atom, Literal) or id(atom) in borrowed or id(value) in seen:
                value = self.l.copy(value)
            seen.add(id(value))
            outs.append(value)
        return outs

    # --- steps ---------------------------------------------------------------------------------
    def _step(self, eqn):
        name, p = eqn.prim.name, eqn.params
        out_types = [v.ttype for v in eqn.outputs]
        l = self.l
        if name == "kernel":
            return self._kernel(eqn)
        if eqn.prim.kind == "control":
            return getattr(self, f"_{name}")(eqn)
        if name == "dot_general":
            return self._matmul(eqn, None)
        from ..primitives.linalg import PRIMITIVES as linalg_primitives
        if name in linalg_primitives:
            # Decided (docs/linalg.md): no CUDA linear algebra; factorisations stay on the CPU.
            raise NotImplementedError(
                f"numba_cuda: linear algebra (`{name}`{_where(eqn)}) is not implemented on the "
                "CUDA backend; compile this function with backend='numba_cpu' (LAPACK) or "
                "compute the factorisation outside the CUDA function")
        (t,) = out_types
        x_type = eqn.inputs[0].ttype if eqn.inputs else None
        if name == "reshape":
            return lambda x: [x.reshape(t.shape or (1,))]
        if name == "broadcast_in_dim":
            cs = _contiguous_strides(x_type.shape)
            strides = [0] * t.ndim
            for k, d in enumerate(p["dims"]):
                if x_type.shape[k] == t.shape[d]:
                    strides[d] = cs[k]
            return lambda x: [l.gather(x, t.shape, t.dtype, 0, strides)]
        if name == "transpose":
            return lambda x: [l.transposed(x, x_type.shape, t.dtype, p["perm"])]
        if name == "slice":
            cs = _contiguous_strides(x_type.shape)
            offset = sum(s * c for s, c in zip(p["start"], cs))
            strides = [c * st for c, st in zip(cs, p["strides"])]
            return lambda x: [l.gather(x, t.shape, t.dtype, offset, strides)]
        if name == "rev":
            cs = _contiguous_strides(x_type.shape)
            offset = sum((x_type.shape[d] - 1) * cs[d] for d in p["axes"])
            strides = [-c if d in p["axes"] else c for d, c in enumerate(cs)]
            return lambda x: [l.gather(x, t.shape, t.dtype, offset, strides)]
        if name == "pad":
            cs = _contiguous_strides(t.shape)
            offset = sum(lo * c for (lo, _, _), c in zip(p["config"], cs))
            strides = [c * (interior + 1) for (_, _, interior), c in zip(p["config"], cs)]

            def pad(x, value):
                out = l.empty(t.shape, t.dtype)
                l.run(cu._runtime("fill"), t.size, l.flat(out), value)
                l.place(x, x_type.shape, out, offset, strides)
                return [out]
            return pad
        if name == "concatenate":
            cs = _contiguous_strides(t.shape)
            shapes = [a.ttype.shape for a in eqn.inputs]

            def concatenate(*xs):
                out = l.empty(t.shape, t.dtype)
                at = 0
                for x, shape in zip(xs, shapes):
                    l.place(x, shape, out, at * cs[p["axis"]], cs)
                    at += shape[p["axis"]]
                return [out]
            return concatenate
        if name == "iota":
            inner = _size(t.shape[p["dimension"] + 1:])

            def iota():
                out = l.empty(t.shape, t.dtype)
                l.run(cu._runtime("iota"), t.size, l.flat(out), inner,
                      t.shape[p["dimension"]])
                return [out]
            return iota
        if name in ("cumsum", "cumprod", "argmax", "argmin", "argsort"):
            return self._rows(eqn)
        if name in ("gather", "scatter_add"):
            return self._indexing(eqn)
        raise NotImplementedError(f"numba_cuda: no lowering for primitive `{name}`{_where(eqn)}")

    def _kernel(self, eqn):
        body, kind = eqn.params["body"], eqn.params["kind"]
        l, geo = self.l, self.l.geo
        out_types = [v.ttype for v in eqn.outputs]
        if kind == "elementwise":
            source = cuda_codegen.elementwise_source(body)
            split = False
            space = body.outputs[0].ttype.shape
        else:
            source, split = cuda_codegen.reduce_source(body, geo)
            reduction = next(e for e in body.eqns if e.prim.name in cuda_codegen._COMBINE)
            space = reduction.inputs[0].ttype.shape
            axes = reduction.params["axes"]
            rows = _size([n for d, n in enumerate(space) if d not in axes])
            width = _size([space[d] for d in axes])
            acc_types = [cuda_codegen._accumulator_dtype(e.prim.name, e.outputs[0].ttype.dtype)
                         for e in body.eqns if e.prim.name in cuda_codegen._COMBINE]
        constants = [eval(c, {"np": np}) for c in source.constants]  # noqa: S307 (our code)
        ins = [_array(a.ttype) for a in eqn.inputs]
        outs_ = [_array(t) for t in out_types]
        consts = [("scalar", np.asarray(c).dtype) for c in constants]
        if split:
            parts = [("array", t, 1) for t in acc_types]
            signatures = {"kernel_partial": ins + outs_ + parts + consts,
                          "kernel": parts + outs_ + consts}
        else:
            signatures = {"kernel": ins + outs_ + consts}
        index = self.owner.add_kernel(eqn, source.text, signatures)
        module = cu._module(source.text)
        fn = module.kernel

        def elementwise(*ins):
            outs = [l.empty(t.shape, t.dtype) for t in out_types]
            l.run(fn, _size(space), *ins, *outs, *constants)
            return outs

        def reduce(*ins):
            outs = [l.empty(t.shape, t.dtype) for t in out_types]
            if rows:
                fn[min(rows, geo.max_blocks), geo.reduce_threads](*ins, *outs, *constants)
                l.count += 1
            return outs

        def reduce_split(*ins):
            outs = [l.empty(t.shape, t.dtype) for t in out_types]
            blocks = max(1, min(-(-width // geo.reduce_threads), geo.partial_blocks))
            parts = [l.cuda.device_array(blocks, t) for t in acc_types]
            module.kernel_partial[blocks, geo.reduce_threads](*ins, *outs, *parts, *constants)
            fn[1, geo.reduce_threads](*parts, *outs, *constants)
            l.count += 2
            return outs

        self.owner.listing.append(f"_k{index}(...)  # {kind}" +
                                  (": two passes (partials, then one block)" if split else ""))
        return elementwise if kind == "elementwise" else reduce_split if split else reduce

    def _matmul(self, dot, epilogue):
        """The tiled matmul kernel, with ``epilogue`` (an elementwise kernel eqn reading the
        product) evaluated at each element before the store."""
        from ..primitives.reductions import _free_axes
        l, geo = self.l, self.l.geo
        lhs, rhs = (a.ttype for a in dot.inputs)
        (lc, rc), (lb, rb) = dot.params["contract"], dot.params["batch"]
        lf, rf = _free_axes(lhs.ndim, lc, lb), _free_axes(rhs.ndim, rc, rb)
        size = lambda t, axes: _size([t.shape[a] for a in axes])  # noqa: E731
        b, m, k, n = size(lhs, lb), size(lhs, lf), size(lhs, lc), size(rhs, rf)
        out_t = dot.outputs[0].ttype
        acc = np.dtype(np.float32) if out_t.dtype == np.float32 else out_t.dtype
        ranks = (len(lb), len(lf), len(rf))
        if epilogue is None:
            source = cuda_codegen.matmul_source(out_t.dtype, acc, geo)
            out_types = [out_t]
            product_at = None
        else:
            body = epilogue.params["body"]
            product_at = next(i for i, a in enumerate(epilogue.inputs) if a is dot.outputs[0])
            dims = list(range(out_t.ndim))
            source = cuda_codegen.matmul_source(
                out_t.dtype, acc, geo, body, product_at, dims[:ranks[0]],
                dims[ranks[0]:ranks[0] + ranks[1]], dims[ranks[0] + ranks[1]:])
            out_types = [v.ttype for v in epilogue.outputs]
        constants = [eval(c, {"np": np}) for c in source.constants]  # noqa: S307 (our code)
        operands = [("array", lhs.dtype, 3), ("array", rhs.dtype, 3)]
        if epilogue is None:
            signature = operands + [("array", out_t.dtype, 3)]
        else:
            signature = operands + [_array(a.ttype) for i, a in enumerate(epilogue.inputs)
                                    if i != product_at] + [_array(t) for t in out_types] + \
                [("scalar", np.asarray(c).dtype) for c in constants]
        index = self.owner.add_kernel(epilogue, source.text, {"kernel": signature})
        self.owner.listing.append(
            (f"_k{index}(...)  # {epilogue.params['kind']} kernel as the epilogue of a "
             if epilogue is not None else "matmul(...)  # ") +
            f"tiled matmul ({b} x {m} x {k} x {n}, {geo.tile}x{geo.tile} tiles)")
        module = cu._module(source.text)
        t = geo.tile
        n_epilogue = len(epilogue.inputs) if epilogue is not None else 0

        def matmul(*operands):
            ins, (x, y) = operands[:n_epilogue], operands[n_epilogue:]
            a3 = l.transposed(x, lhs.shape, lhs.dtype, lb + lf + lc).reshape((b, m, k))
            b3 = l.transposed(y, rhs.shape, rhs.dtype, rb + rc + rf).reshape((b, k, n))
            outs = [l.empty(tt.shape, tt.dtype) for tt in out_types]
            if b * m * n == 0:
                return outs  # (an empty product; a k of 0 is handled by the kernel: zeros)
            grid = (-(-n // t), -(-m // t), b)
            if epilogue is None:
                module.kernel[grid, (t, t)](a3, b3, outs[0].reshape((b, m, n)))
            else:
                others = [v for i, v in enumerate(ins) if i != product_at]
                module.kernel[grid, (t, t)](a3, b3, *others, *outs, *constants)
            l.count += 1
            return outs
        return matmul

    def _rows(self, eqn):
        """Scans and arg-reductions: the axis moved last, one thread per row."""
        l = self.l
        name, axis = eqn.prim.name, eqn.params["axis"]
        x_type, t = eqn.inputs[0].ttype, eqn.outputs[0].ttype
        perm = [d for d in range(x_type.ndim) if d != axis] + [axis]
        n = x_type.shape[axis]
        rows = _size(x_type.shape) // n if n else 0
        inverse = [perm.index(d) for d in range(x_type.ndim)]
        moved = [x_type.shape[d] for d in perm]

        def run(x):
            rows_in = l.transposed(x, x_type.shape, x_type.dtype, perm)
            if name in ("cumsum", "cumprod"):
                out = l.empty(moved, t.dtype)
                if rows and n:
                    l.run(cu._runtime(f"{name}_rows"), rows, rows_in.reshape((rows, n)),
                          out.reshape((rows, n)))
                return [l.transposed(out, moved, t.dtype, inverse)]
            if name == "argsort":  # (a merge sort per row, between out and a work buffer)
                out = l.empty(moved, np.int64)
                if rows and n:
                    work = l.empty((rows, n), np.int64)
                    l.run(cu._runtime("argsort_rows"), rows, rows_in.reshape((rows, n)),
                          out.reshape((rows, n)), work)
                return [l.transposed(out, moved, np.int64, inverse)]
            out = l.empty(t.shape, np.int64)
            l.run(cu._runtime("arg_extremum_rows"), rows, rows_in.reshape((rows, n)),
                  l.flat(out), name == "argmax")
            return [out]
        return run

    def _indexing(self, eqn):
        """gather / scatter_add: indexed axes first, rows addressed by linear position; an
        out-of-bounds index sets a flag the driver checks (one read back per call)."""
        l = self.l
        axes = eqn.params["axes"]
        x_type = eqn.inputs[0].ttype
        t = eqn.outputs[0].ttype
        rest = [d for d in range(x_type.ndim) if d not in axes]
        perm = list(axes) + rest
        dims = tuple(x_type.shape[a] for a in axes)
        positions, width = _size(dims), _size([x_type.shape[d] for d in rest])
        n_index = len(eqn.inputs) - (1 if eqn.prim.name == "gather" else 2)
        batch = eqn.inputs[-1].ttype.shape
        count = _size(batch)
        message = f"index out of bounds in `{eqn.prim.name}`" + \
            (f" traced at {eqn.source_info}" if eqn.source_info else "")
        moved_shape = [x_type.shape[d] for d in perm]
        inverse = [perm.index(d) for d in range(x_type.ndim)]
        if eqn.prim.name == "scatter_add" and np.dtype(t.dtype).name not in (
                "int32", "int64", "uint32", "uint64", "float32", "float64"):
            raise NotImplementedError(f"numba_cuda: scatter_add of {t.dtype} (CUDA atomics "
                                      f"take 32/64-bit numbers){_where(eqn)}")

        def run(x, *rest_ops):
            indices = rest_ops[-n_index:]
            stack = l.empty((n_index, count), np.int64)
            for k, idx in enumerate(indices):  # (any integer dtype, stored as int64)
                l.place(idx, (count,), stack, k * count, (1,))
            lin = l.empty((count,), np.int64)
            bad = l.cuda.to_device(np.zeros(1, np.int32))
            l.run(cu._runtime("linear_index"), count, stack, dims, lin, bad)
            if count and l.scalar(bad):
                raise IndexError(message)
            moved = l.transposed(x, x_type.shape, x_type.dtype, perm)
            if eqn.prim.name == "gather":
                picked = l.empty((count, width), t.dtype)
                l.run(cu._runtime("gather_rows"), count * width,
                      moved.reshape((positions, width)), lin, picked)
                return [picked.reshape(t.shape or (1,))]
            if moved is x:
                moved = l.copy(x)
            updates = rest_ops[0]
            l.run(cu._runtime("scatter_add_rows"), count * width,
                  moved.reshape((positions, width)), lin, updates.reshape((count, width)))
            return [l.transposed(moved, moved_shape, t.dtype, inverse)]
        return run

    # --- control flow: sub-graphs run by sub-programs, loops in Python -------------------------
    def _sub(self, graph):
        return self.owner.program(graph)

    def _index_box(self, i, dtype):
        return self.l.cuda.to_device(np.asarray([i], dtype))

    def _cond(self, eqn):
        t, f = self._sub(eqn.params["true_branch"]), self._sub(eqn.params["false_branch"])
        return lambda pred, *ops: (t if self.l.scalar(pred) else f).run(list(ops))

    def _fori_loop(self, eqn):
        body, n_carry = self._sub(eqn.params["body"]), eqn.params["n_carry"]
        index = eqn.params["body"].in_types[0].dtype

        def run(lower, upper, *rest):
            carry, consts = list(rest[:n_carry]), list(rest[n_carry:])
            carry = [self.l.copy(c) for c in carry]
            for i in range(int(self.l.scalar(lower)), int(self.l.scalar(upper))):
                carry = body.run([self._index_box(i, index), *carry, *consts])
            return carry
        return run

    def _while(self, cond, body, carry, cond_consts, body_consts, saved=None):
        carry = [self.l.copy(c) for c in carry]
        while self.l.scalar(cond.run([*carry, *cond_consts])[0]):
            if saved is not None:
                saved.append(carry)
            carry = body.run([*carry, *body_consts])
        return carry

    def _while_loop(self, eqn):
        cond, body = self._sub(eqn.params["cond"]), self._sub(eqn.params["body"])
        n_carry, n_cond = eqn.params["n_carry"], eqn.params["n_cond_consts"]

        def run(*ops):
            return self._while(cond, body, ops[:n_carry], ops[n_carry:n_carry + n_cond],
                               ops[n_carry + n_cond:])
        return run

    def _scan(self, eqn):
        p = eqn.params
        body, n_carry, n_xs, length = self._sub(p["body"]), p["n_carry"], p["n_xs"], p["length"]
        y_types = p["body"].out_types[n_carry:]

        def run(*ops):
            carry = [self.l.copy(c) for c in ops[:n_carry]]
            xs, consts = ops[n_carry:n_carry + n_xs], list(ops[n_carry + n_xs:])
            ys = [self.l.empty((length, *t.shape), t.dtype) for t in y_types]
            for k in (range(length - 1, -1, -1) if p["reverse"] else range(length)):
                # (numba-cuda refuses to slice an empty array: empty rows are made, not cut)
                slices = [x[k:k + 1].reshape(x.shape[1:] or (1,)) if x.size else
                          self.l.empty(x.shape[1:], x.dtype) for x in xs]
                outs = body.run([*carry, *slices, *consts])
                carry = outs[:n_carry]
                for y, value, t in zip(ys, outs[n_carry:], y_types):
                    if y.size:
                        self.l.put(y[k:k + 1].reshape(t.shape or (1,)), value)
            return carry + ys
        return run

    def _while_loop_grad(self, eqn):
        from ..primitives.control import _split_grad_operands
        p = eqn.params
        cond, body, bwd = self._sub(p["cond"]), self._sub(p["body"]), self._sub(p["body_bwd"])

        def run(*operands):
            carry, cond_consts, body_consts, cts, bwd_consts = _split_grad_operands(
                operands, p["body"], p["n_carry"], p["n_cond_consts"], p["diff_carry"])
            saved: list = []
            self._while(cond, body, carry, cond_consts, body_consts, saved)
            accs = []
            for k in p["diff_consts"]:
                z = self.l.empty(body_consts[k].shape, body_consts[k].dtype)
                self.l.put(z, np.zeros(z.shape, z.dtype))
                accs.append(z)
            cts = [self.l.copy(c) for c in cts]
            for carry_k in reversed(saved):
                outs = bwd.run([*carry_k, *cts, *accs, *body_consts, *bwd_consts])
                cts, accs = outs[:len(cts)], outs[len(cts):]
            return [*cts, *accs]
        return run
