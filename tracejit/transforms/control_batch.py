"""Batching rules of control flow (the ``vmap`` counterpart of ``control_ad.py``).

Each rule batches the primitive's sub-graphs (``batching.batch_graph``: batched inputs and
outputs carry the batch axis first) and binds the same kind of primitive on them, so a batched
loop is still one loop, compiled like any other.

- **Unbatched predicate / bounds**: the sub-graphs are batched as they are. A loop carry that
  starts unbatched but becomes batched in the body (it adds a batched value) is batched from
  the start: the body is batched again until which carries are batched no longer changes.
- **cond with a batched predicate**: each branch runs on the whole batch (inside an unbatched
  cond that skips it when no example takes it), and each output is a select between them by
  the predicate of each example. The examples not taking a branch are given the operands of
  one that does (``_substituted``): a branch never sees operands its guard excludes.
- **while_loop with a batched predicate**: the loop runs while any example's predicate holds;
  the body computes every example but keeps the old carry of those whose predicate is false
  (they are frozen), so each example ends with the carry its own loop would have ended with.
  A frozen example's body is given a running example's carry, as for cond.
- **fori_loop with batched bounds**: a while_loop over (index, carry) with a batched
  predicate ``index < upper``, as above.
- **scan**: ``xs`` batched have their batch axis moved to position 1 (the scan runs along 0),
  ``ys`` come out batched at 1.
- **while_loop_grad** (the reverse mode of while_loop): every operand batched, and the loop
  frozen per example as above, in the forward and the backward loop alike.
"""
from __future__ import annotations

import numpy as np

from ..ir import TensorType
from ..primitives import REGISTRY
from ..primitives import ad_support as A
from ..primitives import batch_support as B
from ..primitives import control as C
from ..tracing import eval_graph, trace_subgraph
from .batching import batch_eval, batch_graph
from .control_ad import _split


def _norm(args, bdims, at=0):
    """Batched operands moved to ``at``; (values, batched flags)."""
    values = [x if d is None else B.moveaxis(x, d, at) for x, d in zip(args, bdims)]
    return values, [d is not None for d in bdims]


def _broadcast_all(args, bdims, size):
    return [B.batched_at(x, d, size, 0) for x, d in zip(args, bdims)]


def _settle(graph, in_b, carry_in, carry_out, size):
    """Which inputs are batched once every carry the body batches is batched from the start."""
    in_b = list(in_b)
    while True:
        _, out_b, _ = batch_graph(graph, in_b, size)
        grew = [pi for pi, po in zip(carry_in, carry_out) if out_b[po] and not in_b[pi]]
        if not grew:
            return in_b
        for pi in grew:
            in_b[pi] = True


def _select_batched(pred, on_true, on_false, size):
    """Per example, ``on_true`` where ``pred`` (shape (size,), batched at 0) else ``on_false``;
    both batched at 0."""
    mask = REGISTRY["broadcast_in_dim"].bind(pred, shape=tuple(on_true.shape), dims=(0,))
    return REGISTRY["select"].bind(mask, on_true, on_false)


def _first_where(mask):
    """The batch index (shape (1,)) of the first example where ``mask`` holds (0 if none)."""
    first = REGISTRY["argmax"].bind(REGISTRY["convert"].bind(mask, dtype=np.dtype(np.int32)),
                                    axis=0)
    return REGISTRY["reshape"].bind(first, shape=(1,))


def _substituted(values, flags, keep, size):
    """The batched ``values`` (at 0), where ``keep`` is false replaced by the values of the
    first example where it holds. A branch or loop body then only ever sees operands that
    some example really gives it, so what guards it (an index checked in range, a loop
    condition) guards every example it runs on: no out-of-range gather, no garbage."""
    if not any(flags) or size == 0:  # (an empty batch: nothing runs, nothing to replace)
        return list(values)
    first = _first_where(keep)
    out = []
    for v, batched in zip(values, flags):
        if batched:
            row = REGISTRY["gather"].bind(v, first, axes=(0,))
            row = REGISTRY["broadcast_in_dim"].bind(row, shape=tuple(v.shape),
                                                    dims=tuple(range(len(v.shape))))
            v = _select_batched(keep, v, row, size)
        out.append(v)
    return out


# --- cond ------------------------------------------------------------------------------------

def _cond_batch(args, bdims, *, true_branch, false_branch):
    size = B.batch_size(args, bdims)
    (pred, *ops), (pd, *op_dims) = args, bdims
    ops, ops_b = _norm(ops, op_dims)
    if pd is not None:  # both branches, then a select per example
        pred = B.moveaxis(pred, pd, 0)
        t_outs = _guarded_branch(true_branch, ops, ops_b, pred, size)
        f_outs = _guarded_branch(false_branch, ops, ops_b, REGISTRY["not"].bind(pred), size)
        outs = [_select_batched(pred, t, f, size) for t, f in zip(t_outs, f_outs)]
        return outs, [0] * len(outs)
    _, t_b, _ = batch_graph(true_branch, ops_b, size)
    _, f_b, _ = batch_graph(false_branch, ops_b, size)
    out_b = [a or b for a, b in zip(t_b, f_b)]
    t, _, t_captured = batch_graph(true_branch, ops_b, size, out_b)
    f, _, f_captured = batch_graph(false_branch, ops_b, size, out_b)
    t, f, captured = C.join_branches(t, t_captured, f, f_captured, len(ops))
    outs = C.cond.bind(pred, *ops, *captured, true_branch=t, false_branch=f)
    return outs, [0 if b else None for b in out_b]


def _guarded_branch(branch, ops, ops_b, take, size) -> list:
    """``branch`` on the whole batch (outputs batched at 0), the examples that do not take it
    given the operands of one that does; not run at all (zeros) when none takes it."""
    n_out = len(branch.outputs)
    graph, _, captured = batch_graph(branch, ops_b, size, [True] * n_out)
    in_types = graph.in_types[:len(ops)]
    def not_taken(*xs):
        return [B.bind_in_graph("broadcast_in_dim", np.zeros((), t.dtype), shape=t.shape,
                                dims=()) for t in graph.out_types]

    zeros, _, zeros_captured = trace_subgraph(not_taken, in_types, "not_taken")
    t, f, consts = C.join_branches(graph, captured, zeros, zeros_captured, len(ops))
    return C.cond.bind(_any_true(take), *_substituted(ops, ops_b, take, size), *consts,
                       true_branch=t, false_branch=f)


# --- fori_loop -------------------------------------------------------------------------------

def _fori_batch(args, bdims, *, body, n_carry):
    size = B.batch_size(args, bdims)
    if bdims[0] is not None or bdims[1] is not None:
        return _fori_as_while(args, bdims, body, n_carry, size)
    lower, upper = args[0], args[1]
    rest, rest_b = _norm(args[2:], bdims[2:])
    in_b = _settle(body, [False] + rest_b, range(1, n_carry + 1), range(n_carry), size)
    carry_b = in_b[1:n_carry + 1]
    new, _, captured = batch_graph(body, in_b, size, carry_b)
    carry = [B.batched_at(x, 0 if b else None, size) if want else x
             for x, b, want in zip(rest[:n_carry], rest_b[:n_carry], carry_b)]
    outs = C.fori_loop.bind(lower, upper, *carry, *rest[n_carry:], *captured, body=new,
                            n_carry=n_carry)
    return outs, [0 if b else None for b in carry_b]


def _fori_as_while(args, bdims, body, n_carry, size):
    """Per-example bounds: ``while i < upper: i, carry = i + 1, body(i, carry)``."""
    lower, upper, *rest = args
    index = body.in_types[0]
    upper_type = TensorType((), index.dtype, index.weak)

    def cond_fun(i, *xs):  # (index, *carry, upper)
        return [REGISTRY["lt"].bind(i, xs[-1])]

    def body_fun(i, *xs):
        return [REGISTRY["add"].bind(i, A.full_like(i, 1)), *eval_graph(body, [i, *xs])]

    cond_graph, _, cond_captured = trace_subgraph(
        cond_fun, [index, *body.in_types[1:n_carry + 1], upper_type], "cond")
    body_graph, _, body_captured = trace_subgraph(
        body_fun, [index, *body.in_types[1:]], "body")
    convert = REGISTRY["convert"]
    lower, upper = (convert.bind(b, dtype=index.dtype) if np.dtype(b.dtype) != index.dtype
                    else b for b in (lower, upper))
    operands = [lower, *rest[:n_carry], upper, *cond_captured, *rest[n_carry:], *body_captured]
    dims = [bdims[0], *bdims[2:2 + n_carry], bdims[1], *[None] * len(cond_captured),
            *bdims[2 + n_carry:], *[None] * len(body_captured)]
    outs, out_dims = _while_batch(operands, dims, cond=cond_graph, body=body_graph,
                                  n_carry=n_carry + 1, n_cond_consts=1 + len(cond_captured))
    return outs[1:], out_dims[1:]


# --- while_loop ------------------------------------------------------------------------------

def _while_batch(args, bdims, *, cond, body, n_carry, n_cond_consts):
    size = B.batch_size(args, bdims)
    values, flags = _norm(args, bdims)
    carry, cond_consts, body_consts = _split(values, n_carry, n_cond_consts)
    carry_b, cc_b, bc_b = _split(flags, n_carry, n_cond_consts)
    in_b = _settle(body, carry_b + bc_b, range(n_carry), range(n_carry), size)
    carry_b = in_b[:n_carry]
    _, (pred_b,), _ = batch_graph(cond, carry_b + cc_b, size)
    if not pred_b:
        new_body, _, body_captured = batch_graph(body, in_b, size, carry_b)
        new_cond, _, cond_captured = batch_graph(cond, carry_b + cc_b, size)
        carry = [B.batched_at(x, 0 if b else None, size) if want else x
                 for x, b, want in zip(carry, flags[:n_carry], carry_b)]
        outs = C.while_loop.bind(*carry, *cond_consts, *cond_captured, *body_consts,
                                 *body_captured, cond=new_cond, body=new_body, n_carry=n_carry,
                                 n_cond_consts=n_cond_consts + len(cond_captured))
        return outs, [0 if b else None for b in carry_b]
    return _frozen_while(carry, flags[:n_carry], cond_consts, cc_b, body_consts, bc_b, cond,
                         body, size)


def _any_true(pred):
    return REGISTRY["reduce_sum"].bind(pred, axes=(0,))  # on bool: any


def _frozen_while(carry, carry_flags, cond_consts, cc_b, body_consts, bc_b, cond, body, size):
    """A batched predicate: every carry batched; loop while any example goes on, freezing the
    others (the body's results are selected per example against the carry it was given)."""
    n, ncc = len(carry), len(cond_consts)
    carry = [B.batched_at(x, 0 if b else None, size) for x, b in zip(carry, carry_flags)]
    carry_types = [TensorType(np.shape(x), x.dtype) for x in carry]
    cc_dims = [0 if b else None for b in cc_b]
    bc_dims = [0 if b else None for b in bc_b]
    cc_types = [_type(x) for x in cond_consts]
    bc_types = [_type(x) for x in body_consts]

    def pred_of(xs, consts):
        p, (pd,) = batch_eval(cond, [*xs, *consts], [0] * n + cc_dims)
        return B.batched_at(p[0], pd, size)

    def cond_fun(*xs):
        return [_any_true(pred_of(xs[:n], xs[n:]))]

    def body_fun(*xs):
        carry_k, ccs, bcs = xs[:n], xs[n:n + ncc], xs[n + ncc:]
        keep_going = pred_of(carry_k, ccs)
        running = _substituted([*carry_k, *bcs], [True] * n + list(bc_b), keep_going, size)
        new, dims = batch_eval(body, running, [0] * n + bc_dims)
        return [_select_batched(keep_going, B.batched_at(v, d, size), old, size)
                for v, d, old in zip(new, dims, carry_k)]

    new_cond, _, cond_captured = trace_subgraph(cond_fun, [*carry_types, *cc_types], "cond")
    new_body, _, body_captured = trace_subgraph(
        body_fun, [*carry_types, *cc_types, *bc_types], "body")
    outs = C.while_loop.bind(*carry, *cond_consts, *cond_captured, *cond_consts, *body_consts,
                             *body_captured, cond=new_cond, body=new_body, n_carry=n,
                             n_cond_consts=ncc + len(cond_captured))
    return outs, [0] * n


def _type(x) -> TensorType:
    return TensorType(np.shape(x), x.dtype)


# --- scan ------------------------------------------------------------------------------------

def _scan_batch(args, bdims, *, body, length, reverse, n_carry, n_xs):
    size = B.batch_size(args, bdims)
    carry, xs, consts = _split(list(zip(args, bdims)), n_carry, n_xs)
    carry, carry_b = _norm([x for x, _ in carry], [d for _, d in carry])
    xs, xs_b = _norm([x for x, _ in xs], [d for _, d in xs], at=1)
    consts, consts_b = _norm([x for x, _ in consts], [d for _, d in consts])
    in_b = _settle(body, carry_b + xs_b + consts_b, range(n_carry), range(n_carry), size)
    new_carry_b = in_b[:n_carry]
    n_ys = len(body.outputs) - n_carry
    new, out_b, captured = batch_graph(body, in_b, size, new_carry_b + [None] * n_ys)
    carry = [B.batched_at(x, 0 if b else None, size) if want else x
             for x, b, want in zip(carry, carry_b, new_carry_b)]
    outs = C.scan.bind(*carry, *xs, *consts, *captured, body=new, length=length,
                       reverse=reverse, n_carry=n_carry, n_xs=n_xs)
    dims = [0 if b else None for b in new_carry_b] + [1 if b else None for b in out_b[n_carry:]]
    return outs, dims


# --- while_loop_grad -------------------------------------------------------------------------

def _while_grad_batch(args, bdims, *, cond, body, body_bwd, n_carry, n_cond_consts,
                      diff_carry, diff_consts):
    size = B.batch_size(args, bdims)
    values = _broadcast_all(args, bdims, size)
    carry, cond_consts, body_consts, cts, bwd_consts = C._split_grad_operands(
        values, body, n_carry, n_cond_consts, diff_carry)
    n, ncc, nbc, nct = len(carry), len(cond_consts), len(body_consts), len(cts)
    nacc = len(diff_consts)
    types = lambda xs: [_type(x) for x in xs]  # noqa: E731

    def pred_of(xs, consts):
        p, (pd,) = batch_eval(cond, [*xs, *consts], [0] * (n + ncc))
        return B.batched_at(p[0], pd, size)

    def cond_fun(*xs):
        return [_any_true(pred_of(xs[:n], xs[n:]))]

    def body_fun(*xs):  # body consts: the old ones, then the cond consts
        carry_k, bcs, ccs = xs[:n], xs[n:n + nbc], xs[n + nbc:n + nbc + ncc]
        keep = pred_of(carry_k, ccs)
        running = _substituted([*carry_k, *bcs], [True] * (n + nbc), keep, size)
        new, dims = batch_eval(body, running, [0] * (n + nbc))
        return [_select_batched(keep, B.batched_at(v, d, size), old, size)
                for v, d, old in zip(new, dims, carry_k)]

    new_cond, _, cond_captured = trace_subgraph(cond_fun, types(carry + cond_consts), "cond")
    new_body, _, body_captured = trace_subgraph(
        body_fun, types(carry + body_consts + cond_consts), "body")
    # The backward body takes the forward body's consts (the old ones, the cond consts, what
    # the batched body captured) before its own.
    body_consts_all = [*body_consts, *cond_consts, *body_captured]
    nall = len(body_consts_all)

    def bwd_fun(*xs):
        carry_k, ct, acc, bcs_all, bwd = _split(xs, n, nct, nacc, nall)
        bcs, ccs = bcs_all[:nbc], bcs_all[nbc:nbc + ncc]
        keep = pred_of(carry_k, ccs)
        operands = [*carry_k, *ct, *acc, *bcs, *bwd]
        running = _substituted(operands, [True] * len(operands), keep, size)
        new, dims = batch_eval(body_bwd, running, [0] * len(operands))
        return [_select_batched(keep, B.batched_at(v, d, size), old, size)
                for v, d, old in zip(new, dims, [*ct, *acc])]

    accs = [body_consts[k] for k in diff_consts]
    new_bwd, _, bwd_captured = trace_subgraph(
        bwd_fun, types(carry + cts + accs + body_consts_all + bwd_consts), "body_bwd")
    outs = C.while_loop_grad.bind(
        *carry, *cond_consts, *cond_captured, *body_consts_all, *cts, *bwd_consts,
        *bwd_captured, cond=new_cond, body=new_body, body_bwd=new_bwd, n_carry=n,
        n_cond_consts=ncc + len(cond_captured), diff_carry=diff_carry, diff_consts=diff_consts)
    return outs, [0] * len(outs)


C.cond.def_batch(_cond_batch)
C.fori_loop.def_batch(_fori_batch)
C.while_loop.def_batch(_while_batch)
C.scan.def_batch(_scan_batch)
C.while_loop_grad.def_batch(_while_grad_batch)
