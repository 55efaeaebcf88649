"""The fused-graph verifier: every kernel holds only what code generation can emit.

Fusion and code generation agree on a contract, checked here right after fusion so that a
fusion bug is an internal error naming the equation and the user's line, not a crash deep in
code generation:

- an ``elementwise`` kernel is elementwise equations over one iteration space (its output's
  shape), each with a scalar expression for its operands' dtype, and broadcasts of values from
  outside the kernel (or of literals), which become index arithmetic;
- a ``reduce``/``row`` kernel adds reductions, all over the same axes of that space, and
  per-row work on their results (elementwise equations and keepdims reshapes, ``row_equations``),
  whose results come back into the space only through broadcasts;
- kernels appear in an order where every operand is made before it is read (no cycle), which
  ``ir.verify`` checks for the whole graph.
"""
from __future__ import annotations

from ..errors import IRVerificationError
from ..ir import Eqn, Graph, Literal
from .fusion import REDUCTIONS, row_equations


def check_fused(graph: Graph) -> None:
    """Raise IRVerificationError naming the first kernel equation code generation cannot emit."""
    for eqn in graph.eqns:
        if eqn.prim.kind == "control":
            for value in eqn.params.values():
                if isinstance(value, Graph):
                    check_fused(value)
        elif eqn.prim.name == "kernel":
            _check_kernel(eqn)


def _fail(kernel: Eqn, eqn: Eqn, problem: str):
    where = f" (from {eqn.source_info})" if eqn.source_info else ""
    raise IRVerificationError(
        f"tracejit bug: fusion made a {kernel.params['kind']} kernel that code generation "
        f"cannot emit: {eqn.prim.name}{list(eqn.outputs[0].ttype.shape)}{where} {problem}")


def _has_scalar_code(eqn: Eqn) -> bool:
    prim = eqn.prim
    kind = eqn.inputs[0].ttype.dtype.kind if eqn.inputs else None
    return prim.scalar_by_kind.get(kind, prim.scalar) is not None


def _check_kernel(kernel: Eqn) -> None:
    kind, body = kernel.params["kind"], kernel.params["body"]
    reductions = [e for e in body.eqns if e.prim.name in REDUCTIONS]
    if (kind == "elementwise") != (not reductions):
        raise IRVerificationError(f"tracejit bug: a {kind} kernel with {len(reductions)} "
                                  f"reductions (from {kernel.source_info})")
    space = reductions[0].inputs[0].ttype.shape if reductions else body.outputs[0].ttype.shape
    axes = reductions[0].params["axes"] if reductions else None
    row_eqns, row_ids = row_equations(body)
    per_row = {id(e) for e in row_eqns}
    outside = {id(v) for v in body.inputs}
    for eqn in body.eqns:
        name = eqn.prim.name
        if name in REDUCTIONS:
            if eqn.inputs[0].ttype.shape != space or eqn.params["axes"] != axes:
                _fail(kernel, eqn, f"reduces over another space than {list(space)} axes {axes}")
            if id(eqn.inputs[0]) in row_ids:
                _fail(kernel, eqn, "reduces a per-row value")
        elif id(eqn) in per_row:
            if name != "reshape" and eqn.prim.kind != "elementwise":
                _fail(kernel, eqn, "is per-row work that is neither elementwise nor a reshape")
            if name != "reshape" and not _has_scalar_code(eqn):
                _fail(kernel, eqn, "has no scalar expression for its dtype")
        elif name == "broadcast_in_dim":
            src = eqn.inputs[0]
            if not (isinstance(src, Literal) or id(src) in outside or id(src) in row_ids):
                _fail(kernel, eqn, "broadcasts a value computed over the kernel's own space")
        elif eqn.prim.kind == "elementwise":
            if eqn.outputs[0].ttype.shape != space:
                _fail(kernel, eqn, f"is not over the kernel's iteration space {list(space)}")
            if not _has_scalar_code(eqn):
                _fail(kernel, eqn, "has no scalar expression for its dtype")
        else:
            _fail(kernel, eqn, f"is a {eqn.prim.kind} primitive, which has no scalar code")
