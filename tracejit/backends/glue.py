"""The entry function run as Python: the middle tier of a tiered signature (``tiers.py``).

The compiled entry function is most of a cold compile (2-3 s of Numba typing and LLVM for an
MLP gradient, against 0.1-0.7 s per kernel), and it can only be compiled after every kernel
it calls. Its source is plain Python too, so while it compiles, calls run it as Python:
the kernels are compiled (by compile workers, one at a time each), the glue between them
(views, allocations, BLAS products) is NumPy. A kernel not built yet is evaluated by the
interpreter in its place (``Interpreted``), so calls speed up kernel by kernel. Per call the
glue costs a few microseconds per line of the entry; the compiled entry replaces it as soon as
it is ready.

The helpers the compiled entry calls (``numba_runtime``, ``blas``) are Numba functions that
would compile again for every array type Python passes them; here they are NumPy functions of
the same contracts (``GLUE_RUNTIME``, ``GLUE_BLAS``).

Which types to compile the kernels for is learnt from one run of the glue with every kernel
evaluated by the interpreter (``kernel_signatures``): the types of the arrays Python hands each
kernel (their dtype, rank, layout, writability), as Numba will see them.
"""
from __future__ import annotations

import types

import numpy as np


def _cumsum_rows(x, out):
    np.cumsum(x, axis=1, dtype=out.dtype, out=out)


def _cumprod_rows(x, out):
    np.cumprod(x, axis=1, dtype=out.dtype, out=out)


def _arg_extremum_rows(x, out, want_max):
    out[:] = np.argmax(x, axis=1) if want_max else np.argmin(x, axis=1)


def _argsort_rows(x, out):
    out[:] = np.argsort(x, axis=1, kind="stable")


def _linear_index(stack, dims, out):
    lin = np.zeros(stack.shape[1], np.int64)
    for k, n in enumerate(dims):
        if ((stack[k] < 0) | (stack[k] >= n)).any():
            return False
        lin = lin * n + stack[k]
    out[:] = lin
    return True


def _gather_rows(x2, lin, out):
    out[:] = x2[lin]


def _scatter_add_rows(base2, lin, updates2):
    np.add.at(base2, lin, updates2)


def _matmul(a, b, out):
    np.matmul(a, b, out=out)


GLUE_RUNTIME = types.SimpleNamespace(
    cumsum_rows=_cumsum_rows, cumprod_rows=_cumprod_rows, arg_extremum_rows=_arg_extremum_rows,
    linear_index=_linear_index, gather_rows=_gather_rows, scatter_add_rows=_scatter_add_rows,
    matmul_loops=_matmul, argsort_rows=_argsort_rows)
GLUE_BLAS = types.SimpleNamespace(
    readable=lambda x: x, gemm_f32=_matmul, gemm_f64=_matmul, gemm_batched_f32=_matmul,
    gemm_batched_f64=_matmul)


class _GlueLapack:
    """``lapack.<helper>_f32/_f64`` as NumPy: ``lapack.run_reference``, the primitive's reference
    implementation written into the result arrays; the status 1 where it raises ``LinAlgError``
    (the entry raises it, with the user's line), else 0."""

    def __getattr__(self, attr):
        helper, _, suffix = attr.rpartition("_")
        if suffix not in ("f32", "f64"):
            raise AttributeError(attr)
        from .lapack import HELPERS, run_reference  # (imported when a graph with linalg runs)
        if helper not in HELPERS:
            raise AttributeError(attr)
        return lambda *args: run_reference(helper, *args)


GLUE_LAPACK = _GlueLapack()


def python_entry(source: str, kernels: list, name: str, namespace: dict | None = None):
    """The entry function defined by ``source``, as Python calling ``kernels`` (``_k0``...).
    ``namespace`` (a new dict if None) becomes the function's globals: a kernel replaced
    there (``namespace["_k3"] = compiled``) is what the next call of the function runs."""
    namespace = {} if namespace is None else namespace
    namespace.update({"np": np, "_rt": GLUE_RUNTIME, "_blas": GLUE_BLAS,
                      "_lapack": GLUE_LAPACK})
    namespace.update({f"_k{k}": fn for k, fn in enumerate(kernels)})
    exec(compile(source, f"<tracejit entry of {name}, run as Python>", "exec"), namespace)
    return namespace["entry"]


class Interpreted:
    """Stands for kernel ``_k<k>`` until its compiled code is in place: computes the kernel's
    outputs with the interpreter (its fused body, primitive by primitive, in NumPy) and writes
    them where the compiled kernel would."""

    def __init__(self, eqn, inplace: dict):
        self.eqn, self.inplace = eqn, inplace

    def __call__(self, *arguments):
        n_in = len(self.eqn.inputs)
        ins, outs = list(arguments[:n_in]), list(arguments[n_in:])
        results = self.eqn.prim.impl(*ins, **self.eqn.params)
        written = iter(outs)
        for k, value in enumerate(results):
            target = ins[self.inplace[k]] if k in self.inplace else next(written)
            target[...] = value


class _Recorder(Interpreted):
    """An ``Interpreted`` kernel that also records the Numba types of its arguments."""

    def __init__(self, eqn, inplace: dict, seen: set):
        super().__init__(eqn, inplace)
        self.seen = seen

    def __call__(self, *arguments):
        import numba
        self.seen.add(tuple(numba.typeof(a) for a in arguments))
        super().__call__(*arguments)


def kernel_signatures(compiled, args) -> list[set]:
    """Per kernel of ``compiled`` (a ``CompiledGraph``), the Numba signatures the glue calls it
    with for these inputs (empty for a kernel this run did not reach: a branch not taken)."""
    seen = [set() for _ in compiled.kernel_sources]
    recorders = [_Recorder(eqn, inplace, seen[k]) for k, (eqn, inplace) in
                 enumerate(zip(compiled._kernel_eqns, compiled._kernel_inplace))]
    entry = python_entry(compiled.entry_source, recorders, compiled.fused.name)
    args = list(args)
    for k, _ in compiled._donations:  # (the user's donated buffer is not written here)
        args[k] = np.array(args[k], copy=True)
    compiled._call(args, entry)
    return seen


# What the entry run as Python costs per call beyond the compiled entry, measured on the CI
# machine (Python 3.11, NumPy 2): a statement of the glue (a view, a reshape, an allocation)
# about 0.3 us, a call of a compiled kernel through its Numba dispatcher about 0.4 us, a NumPy
# stand-in for a BLAS product or runtime helper (np.matmul's dispatch and checks, where the
# compiled entry calls BLAS directly) a few microseconds.
_PER_LINE = 0.5e-6
_PER_KERNEL_CALL = 0.5e-6
_PER_HELPER_CALL = 3e-6


def python_overhead(source: str) -> float | None:
    """An estimate of the seconds one call of the entry ``source`` spends as Python beyond
    what its compiled form spends (``tiers.py`` weighs it against a call's time); None where
    the entry loops (a ``fori_loop``/``while_loop`` whose body runs as Python every trip)."""
    lines = [line.strip() for line in source.splitlines()[1:] if line.strip()]
    if any(line.startswith(("for ", "while ")) for line in lines):
        return None
    calls = sum(line.count("_k") for line in lines)
    helpers = sum(line.count(f"{module}.") - line.count(f"{module}.readable(")
                  for line in lines for module in ("_blas", "_rt", "_lapack"))
    return len(lines) * _PER_LINE + calls * _PER_KERNEL_CALL + helpers * _PER_HELPER_CALL
