"""Control-flow primitives: branches and loops whose params hold sub-graphs.

Every sub-graph takes its explicit inputs first and the values it closes over ("consts", read
but never changed by the loop) last; an equation's operands follow the same order.

    cond[true_branch, false_branch]        pred, *ops                -> outs
    fori_loop[body, n_carry]               lower, upper, *carry, *consts -> carry
        body(i, *carry, *consts) -> carry
    while_loop[cond, body, n_carry, n_cond_consts]
                                           *carry, *cond_consts, *body_consts -> carry
        cond(*carry, *cond_consts) -> bool[]      body(*carry, *body_consts) -> carry
    scan[body, length, reverse, n_carry, n_xs]
                                           *carry, *xs, *consts      -> *carry, *ys
        body(*carry, *x, *consts) -> *carry, *y   (x: one slice of each xs along axis 0)
    while_loop_grad[cond, body, body_bwd, n_carry, n_cond_consts, diff_carry, diff_consts]
                               *init, *cond_consts, *body_consts, *ct_final, *bwd_consts
                                                                      -> *ct_init, *ct_consts
        body_bwd(*carry, *ct, *ct_consts_sum, *body_consts, *bwd_consts) -> *ct, *ct_consts_sum
        the reverse mode of while_loop (see ``transforms/control_ad.py``): runs the loop
        again keeping every carry, then the backward body over them in reverse.

The ``impl`` of each is the loop itself over the interpreter (``backends/interpreter.py``);
compiled backends emit real branches and loops in their entry function. Derivative rules live
in ``transforms/control_ad.py``.
"""
from __future__ import annotations

import numpy as np

from ..ir import TensorType
from .registry import Primitive


def _same(a: TensorType, b: TensorType) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype


def _check_inputs(what, graph, types):
    if len(graph.inputs) != len(types) or not all(map(_same, graph.in_types, types)):
        raise TypeError(f"{what}: operands {[str(t) for t in types]} do not match its sub-graph "
                        f"inputs {[str(t) for t in graph.in_types]}")


def _check_carry(what, outs, carry):
    if len(outs) != len(carry) or not all(map(_same, outs, carry)):
        raise TypeError(f"{what}: the body returns {[str(t) for t in outs]} for a carry of "
                        f"{[str(t) for t in carry]}")


def _check_scalar(what, t: TensorType, kinds="b"):
    if t.shape != () or t.dtype.kind not in kinds:
        raise TypeError(f"{what} must be a scalar of dtype kind {kinds!r}, not {t}")


def _evaluate(graph, values):
    from ..backends.interpreter import evaluate  # the interpreter imports the registry
    return evaluate(graph, list(values))


def _fresh(values, operands):
    """Results that are operands themselves (a loop run zero times) are copied: a primitive's
    results never alias its operands."""
    return [np.array(v, copy=True) if any(v is o for o in operands) else v for v in values]


# --- cond ------------------------------------------------------------------------------------

def _cond_abstract_eval(pred, *ops, true_branch, false_branch):
    _check_scalar("cond: the predicate", pred)
    _check_inputs("cond (true branch)", true_branch, ops)
    _check_inputs("cond (false branch)", false_branch, ops)
    t, f = true_branch.out_types, false_branch.out_types
    if len(t) != len(f) or not all(map(_same, t, f)):
        raise TypeError(f"cond: the branches return different types: {[str(x) for x in t]} "
                        f"and {[str(x) for x in f]}")
    return [TensorType(a.shape, a.dtype, a.weak and b.weak) for a, b in zip(t, f)]


def _cond_impl(pred, *ops, true_branch, false_branch):
    return _fresh(_evaluate(true_branch if pred else false_branch, ops), ops)


cond = Primitive("cond", "control", abstract_eval=_cond_abstract_eval, impl=_cond_impl,
                 multiple_results=True)


# --- fori_loop -------------------------------------------------------------------------------

def _fori_abstract_eval(lower, upper, *rest, body, n_carry):
    for bound in (lower, upper):
        _check_scalar("fori_loop: a bound", bound, "iu")
    _check_inputs("fori_loop", body, [body.in_types[0], *rest])
    carry = list(rest[:n_carry])
    _check_carry("fori_loop", body.out_types, carry)
    return carry


def _fori_impl(lower, upper, *rest, body, n_carry):
    carry, consts = list(rest[:n_carry]), list(rest[n_carry:])
    index = body.in_types[0].dtype
    for i in range(int(lower), int(upper)):
        carry = _evaluate(body, [np.asarray(i, dtype=index), *carry, *consts])
    return _fresh(carry, rest)


fori_loop = Primitive("fori_loop", "control", abstract_eval=_fori_abstract_eval,
                      impl=_fori_impl, multiple_results=True)


# --- while_loop ------------------------------------------------------------------------------

def _while_abstract_eval(*operands, cond, body, n_carry, n_cond_consts):
    carry = list(operands[:n_carry])
    cond_consts = operands[n_carry:n_carry + n_cond_consts]
    body_consts = operands[n_carry + n_cond_consts:]
    _check_inputs("while_loop (cond)", cond, [*carry, *cond_consts])
    _check_inputs("while_loop (body)", body, [*carry, *body_consts])
    (pred,) = cond.out_types
    _check_scalar("while_loop: the condition", pred)
    _check_carry("while_loop", body.out_types, carry)
    return carry


def _while_run(cond, body, carry, cond_consts, body_consts, saved=None):
    while _evaluate(cond, [*carry, *cond_consts])[0]:
        if saved is not None:
            saved.append(carry)
        carry = _evaluate(body, [*carry, *body_consts])
    return carry


def _while_impl(*operands, cond, body, n_carry, n_cond_consts):
    carry = list(operands[:n_carry])
    cond_consts = operands[n_carry:n_carry + n_cond_consts]
    body_consts = operands[n_carry + n_cond_consts:]
    return _fresh(_while_run(cond, body, carry, cond_consts, body_consts), operands)


while_loop = Primitive("while_loop", "control", abstract_eval=_while_abstract_eval,
                       impl=_while_impl, multiple_results=True)


# --- scan ------------------------------------------------------------------------------------

def _scan_abstract_eval(*operands, body, length, reverse, n_carry, n_xs):
    carry = list(operands[:n_carry])
    xs = operands[n_carry:n_carry + n_xs]
    consts = operands[n_carry + n_xs:]
    for x in xs:
        if x.ndim == 0 or x.shape[0] != length:
            raise TypeError(f"scan: every xs must have leading dimension {length}, got {x}")
    slices = [TensorType(x.shape[1:], x.dtype, x.weak) for x in xs]
    _check_inputs("scan", body, [*carry, *slices, *consts])
    outs = body.out_types
    _check_carry("scan", outs[:n_carry], carry)
    return carry + [TensorType((length, *y.shape), y.dtype) for y in outs[n_carry:]]


def _scan_impl(*operands, body, length, reverse, n_carry, n_xs):
    carry = list(operands[:n_carry])
    xs = operands[n_carry:n_carry + n_xs]
    consts = list(operands[n_carry + n_xs:])
    ys = [np.empty((length, *t.shape), t.dtype) for t in body.out_types[n_carry:]]
    for k in (range(length - 1, -1, -1) if reverse else range(length)):
        outs = _evaluate(body, [*carry, *[x[k] for x in xs], *consts])
        carry = outs[:n_carry]
        for y, value in zip(ys, outs[n_carry:]):
            y[k] = value
    return _fresh(carry, operands) + ys


scan = Primitive("scan", "control", abstract_eval=_scan_abstract_eval, impl=_scan_impl,
                 multiple_results=True)


# --- while_loop_grad -------------------------------------------------------------------------

def _split_grad_operands(operands, body, n_carry, n_cond_consts, diff_carry):
    sizes = (n_carry, n_cond_consts, len(body.inputs) - n_carry, len(diff_carry))
    parts, k = [], 0
    for size in sizes:
        parts.append(list(operands[k:k + size]))
        k += size
    return parts + [list(operands[k:])]  # carry, cond/body consts, cts, backward consts


def _while_grad_abstract_eval(*operands, cond, body, body_bwd, n_carry, n_cond_consts,
                              diff_carry, diff_consts):
    carry, cond_consts, body_consts, cts, bwd_consts = _split_grad_operands(
        operands, body, n_carry, n_cond_consts, diff_carry)
    _while_abstract_eval(*carry, *cond_consts, *body_consts, cond=cond, body=body,
                         n_carry=n_carry, n_cond_consts=n_cond_consts)
    expected_cts = [carry[k] for k in diff_carry]
    accs = [body_consts[k] for k in diff_consts]
    _check_inputs("while_loop_grad (backward body)", body_bwd,
                  [*carry, *expected_cts, *accs, *body_consts, *bwd_consts])
    _check_carry("while_loop_grad", body_bwd.out_types, [*expected_cts, *accs])
    if len(cts) != len(expected_cts) or not all(map(_same, cts, expected_cts)):
        raise TypeError("while_loop_grad: cotangents do not match the differentiated carries")
    return [TensorType(t.shape, t.dtype) for t in [*expected_cts, *accs]]


def _while_grad_impl(*operands, cond, body, body_bwd, n_carry, n_cond_consts, diff_carry,
                     diff_consts):
    carry, cond_consts, body_consts, cts, bwd_consts = _split_grad_operands(
        operands, body, n_carry, n_cond_consts, diff_carry)
    saved: list = []
    _while_run(cond, body, carry, cond_consts, body_consts, saved)
    accs = [np.zeros_like(body_consts[k]) for k in diff_consts]
    for carry_k in reversed(saved):
        outs = _evaluate(body_bwd, [*carry_k, *cts, *accs, *body_consts, *bwd_consts])
        cts, accs = outs[:len(cts)], outs[len(cts):]
    return _fresh([*cts, *accs], operands)


while_loop_grad = Primitive("while_loop_grad", "control",
                            abstract_eval=_while_grad_abstract_eval, impl=_while_grad_impl,
                            multiple_results=True)


def with_unused_inputs(graph, at: int, types):
    """``graph`` taking extra, unused inputs of ``types``, inserted before input ``at``."""
    from ..ir import Graph, Var
    extra = [Var(t) for t in types]
    return Graph(graph.inputs[:at] + extra + graph.inputs[at:], graph.eqns, graph.outputs, [],
                 graph.name)


def join_branches(true_branch, true_captured, false_branch, false_captured, n: int):
    """Two branches over the same ``n`` operands, each with the values it closed over
    appended: both made to take every captured value (the other branch's unused). Returns
    the branches and the captured values to pass after the operands."""
    t = with_unused_inputs(true_branch, len(true_branch.inputs),
                           false_branch.in_types[n:])
    f = with_unused_inputs(false_branch, n, true_branch.in_types[n:])
    return t, f, [*true_captured, *false_captured]


def sub_graphs(eqn) -> list:
    """The sub-graphs of a control-flow equation, in the order compiled code runs them."""
    from ..ir import Graph
    return [v for v in eqn.params.values() if isinstance(v, Graph)]


__all__ = ["cond", "fori_loop", "join_branches", "scan", "sub_graphs", "while_loop",
           "while_loop_grad", "with_unused_inputs"]
