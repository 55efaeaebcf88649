"""Derivatives of control flow: new sub-graphs made by differentiating the old ones.

Each rule traces a new sub-graph that evaluates the old one under ``jvp`` or ``vjp``
(``tracing.eval_graph`` replays it), and binds the same kind of primitive on it, so derivative
loops are real loops, fused and compiled like any other, and differentiable again.

- **Forward mode** (all four): the loop carries each float carry's tangent next to it; a
  branch returns its outputs' tangents next to them.
- **cond, reverse**: a ``cond`` choosing between the two branches' pullbacks (each branch
  recomputes its forward values from the operands: nothing is stored).
- **scan, reverse**: on the tape the forward scan also stacks the carry it entered each step
  with (memory: ``length`` x the carry); the backward pass is a ``scan`` in the other
  direction whose body recomputes one step from its stored carry and pulls the cotangents
  back through it, summing the cotangents of the values the body closes over.
- **fori_loop, reverse**: with bounds known at trace time, a ``scan`` over the trip count (as
  above); with traced bounds, the ``while_loop`` rule.
- **while_loop, reverse** (which JAX does not offer): the trip count is unknown when tracing,
  so no static-shaped IR value can hold the carries. The backward pass is one primitive,
  ``while_loop_grad``, that runs the loop again keeping every carry in a growing list (memory:
  trip count x the carry; time: one more forward loop), then runs the backward body over them
  in reverse. Its own derivative is not implemented (second order through a while_loop).
"""
from __future__ import annotations

import numpy as np

from ..errors import at_user_line
from ..primitives import ad_support as A
from ..primitives import control as C
from ..tracing import Tracer, eval_graph, trace_subgraph
from .ad_traces import _type_of
from .autodiff import jvp, vjp


def _is_float(ttype) -> bool:
    return ttype.dtype.kind == "f"


def _graph(fun, in_types, name):
    """(graph, captured): the sub-graph of ``fun``, and the values it closed over (constants
    a rule made, e.g. zero tangents), which the rule passes after its other consts."""
    graph, _, captured = trace_subgraph(fun, list(in_types), name)
    return graph, captured


def _subst(values, positions, new) -> list:
    out = list(values)
    for p, v in zip(positions, new):
        out[p] = v
    return out


def _split(values, *sizes) -> list[list]:
    parts, k = [], 0
    for n in sizes:
        parts.append(list(values[k:k + n]))
        k += n
    parts.append(list(values[k:]))
    return parts


def _zeros_if_none(tangents, values, positions) -> list:
    return [tangents[k] if tangents[k] is not None else A.zeros_like(values[k])
            for k in positions]


def _jvp_of(graph, args, positions, tangents):
    """(outs, output tangents) of ``graph`` on ``args``, differentiated along ``tangents`` for
    the arguments at ``positions``."""
    primals = tuple(args[p] for p in positions)
    return jvp(lambda *d: eval_graph(graph, _subst(args, positions, d)), primals,
               tuple(tangents))


def _pullback_of(graph, args, positions, pick, cts):
    """Cotangents of the arguments at ``positions`` of ``graph``, given cotangents ``cts`` of
    its outputs ``pick(outs)``."""
    def fun(*d):
        return pick(eval_graph(graph, _subst(args, positions, d)))

    _, pull = vjp(fun, *[args[p] for p in positions])
    return list(pull(list(cts)))


# --- cond ------------------------------------------------------------------------------------

def _cond_jvp(primals, tangents, *, true_branch, false_branch):
    pred, ops, t_ops = primals[0], list(primals[1:]), tangents[1:]
    n = len(ops)
    pos = [k for k, t in enumerate(t_ops) if t is not None]
    float_out = [j for j, t in enumerate(true_branch.out_types) if _is_float(t)]

    def transformed(branch):
        def f(*args):
            outs, touts = _jvp_of(branch, list(args[:n]), pos, args[n:])
            return list(outs) + [touts[j] for j in float_out]
        return _graph(f, branch.in_types + [branch.in_types[k] for k in pos], branch.name)

    results = _bind_cond(pred, [*ops, *[t_ops[k] for k in pos]], transformed(true_branch),
                         transformed(false_branch))
    m = len(true_branch.outputs)
    tangents_out = [None] * m
    for j, t in zip(float_out, results[m:]):
        tangents_out[j] = t
    return results[:m], tangents_out


def _cond_vjp(cts, pred, *ops, out, needed, true_branch, false_branch):
    n = len(ops)
    ct_pos = [j for j, c in enumerate(cts) if c is not None]
    need = [k for k in range(n) if needed[1 + k] and _is_float(true_branch.in_types[k])]
    result = [None] * (1 + n)
    if not need or not ct_pos:
        return result

    def transformed(branch):
        def f(*args):
            return _pullback_of(branch, list(args[:n]), need,
                                lambda outs: [outs[j] for j in ct_pos], args[n:])
        return _graph(f, branch.in_types + [branch.out_types[j] for j in ct_pos], branch.name)

    grads = _bind_cond(pred, [*ops, *[cts[j] for j in ct_pos]], transformed(true_branch),
                       transformed(false_branch))
    for k, g in zip(need, grads):
        result[1 + k] = g
    return result


def _bind_cond(pred, operands, true_branch, false_branch):
    (t, t_captured), (f, f_captured) = true_branch, false_branch
    t, f, captured = C.join_branches(t, t_captured, f, f_captured, len(operands))
    return C.cond.bind(pred, *operands, *captured, true_branch=t, false_branch=f)


C.cond.def_ad(_cond_vjp, _cond_jvp, takes_needed=True)


# --- loops: forward mode ---------------------------------------------------------------------

def _fori_jvp(primals, tangents, *, body, n_carry):
    n = n_carry
    lower, upper = primals[:2]
    carry, consts = _split(primals[2:], n)
    t_carry, t_consts = _split(tangents[2:], n)
    i_type, c_types, k_types = body.in_types[0], body.in_types[1:1 + n], body.in_types[1 + n:]
    fc = [k for k in range(n) if _is_float(c_types[k])]
    kp = [k for k, t in enumerate(t_consts) if t is not None]
    nf, m = len(fc), len(consts)

    def f(i, *args):
        c, tc, ks, tks = _split(args, n, nf, m)
        outs, touts = _jvp_of(body, [i, *c, *ks], [1 + k for k in fc] + [1 + n + k for k in kp],
                              [*tc, *tks])
        return list(outs) + [touts[k] for k in fc]

    new_body, captured = _graph(f, [i_type, *c_types, *[c_types[k] for k in fc], *k_types,
                                    *[k_types[k] for k in kp]], "body")
    results = C.fori_loop.bind(lower, upper, *carry, *_zeros_if_none(t_carry, carry, fc),
                               *consts, *[t_consts[k] for k in kp], *captured, body=new_body,
                               n_carry=n + nf)
    return results[:n], _scattered(results[n:], fc, n)


def _scattered(values, positions, size) -> list:
    out = [None] * size
    for p, v in zip(positions, values):
        out[p] = v
    return out


def _while_jvp(primals, tangents, *, cond, body, n_carry, n_cond_consts):
    n, ncc = n_carry, n_cond_consts
    carry, cond_consts, body_consts = _split(primals, n, ncc)
    t_carry, _, t_body = _split(tangents, n, ncc)
    c_types = body.in_types[:n]
    fc = [k for k in range(n) if _is_float(c_types[k])]
    kp = [k for k, t in enumerate(t_body) if t is not None]
    nf, m = len(fc), len(body_consts)
    new_cond, cond_captured = _graph(
        lambda *args: eval_graph(cond, [*args[:n], *args[n + nf:]]),
        [*c_types, *[c_types[k] for k in fc], *cond.in_types[n:]], "cond")

    def f(*args):
        c, tc, ks, tks = _split(args, n, nf, m)
        outs, touts = _jvp_of(body, [*c, *ks], fc + [n + k for k in kp], [*tc, *tks])
        return list(outs) + [touts[k] for k in fc]

    b_types = body.in_types[n:]
    new_body, captured = _graph(f, [*c_types, *[c_types[k] for k in fc], *b_types,
                                    *[b_types[k] for k in kp]], "body")
    results = C.while_loop.bind(*carry, *_zeros_if_none(t_carry, carry, fc), *cond_consts,
                                *cond_captured, *body_consts, *[t_body[k] for k in kp],
                                *captured, cond=new_cond, body=new_body, n_carry=n + nf,
                                n_cond_consts=ncc + len(cond_captured))
    return results[:n], _scattered(results[n:], fc, n)


def _scan_jvp(primals, tangents, *, body, length, reverse, n_carry, n_xs):
    n, nx = n_carry, n_xs
    carry, xs, consts = _split(primals, n, nx)
    t_carry, t_xs, t_consts = _split(tangents, n, nx)
    c_types, x_types, k_types = _split(body.in_types, n, nx)
    y_types = body.out_types[n:]
    fc = [k for k in range(n) if _is_float(c_types[k])]
    xp = [k for k, t in enumerate(t_xs) if t is not None]
    kp = [k for k, t in enumerate(t_consts) if t is not None]
    fy = [j for j, t in enumerate(y_types) if _is_float(t)]
    nf, m = len(fc), len(consts)

    def f(*args):
        c, tc, x, tx, ks, tks = _split(args, n, nf, nx, len(xp), m)
        positions = fc + [n + k for k in xp] + [n + nx + k for k in kp]
        outs, touts = _jvp_of(body, [*c, *x, *ks], positions, [*tc, *tx, *tks])
        return [*outs[:n], *[touts[k] for k in fc], *outs[n:], *[touts[n + j] for j in fy]]

    new_body, captured = _graph(f, [*c_types, *[c_types[k] for k in fc], *x_types,
                                    *[x_types[k] for k in xp], *k_types,
                                    *[k_types[k] for k in kp]], "body")
    results = C.scan.bind(*carry, *_zeros_if_none(t_carry, carry, fc), *xs,
                          *[t_xs[k] for k in xp], *consts, *[t_consts[k] for k in kp],
                          *captured, body=new_body, length=length, reverse=reverse, n_carry=n + nf,
                          n_xs=nx + len(xp))
    out_carry, t_out_carry, ys, t_ys = _split(results, n, nf, len(y_types))
    return out_carry + ys, _scattered(t_out_carry, fc, n) + _scattered(t_ys, fy, len(y_types))


# --- loops: reverse mode ---------------------------------------------------------------------

class _ScanPullback:
    """The backward scan of one forward scan, holding the carries it stacked."""

    name = "scan"

    def __init__(self, values, params, saved):
        self.values, self.params, self.saved = values, params, saved

    def pullback(self, cts, values, out, needed, params):
        p = self.params
        body, n, nx = p["body"], p["n_carry"], p["n_xs"]
        carry, xs, consts = _split(self.values, n, nx)
        c_types, x_types, k_types = _split(body.in_types, n, nx)
        y_types = body.out_types[n:]
        fc = [k for k in range(n) if _is_float(c_types[k])]
        yc = [j for j in range(len(y_types)) if cts[n + j] is not None]
        xn = [k for k in range(nx) if needed[n + k] and _is_float(x_types[k])]
        kn = [k for k in range(len(consts)) if needed[n + nx + k] and _is_float(k_types[k])]
        result = [None] * len(self.values)
        if not (fc or yc) or not (fc or xn or kn):
            return result
        nf, na = len(fc), len(kn)
        positions = fc + [n + k for k in xn] + [n + nx + k for k in kn]

        def f(*args):
            ct_c, acc, c, x, ct_y, ks = _split(args, nf, na, n, nx, len(yc))
            g = _pullback_of(body, [*c, *x, *ks], positions,
                             lambda outs: [outs[k] for k in fc] + [outs[n + j] for j in yc],
                             [*ct_c, *ct_y])
            g_c, g_x, g_k = _split(g, nf, len(xn))
            return [*g_c, *[A.add(a, b) for a, b in zip(acc, g_k)], *g_x]

        bwd, captured = _graph(f, [*[c_types[k] for k in fc], *[k_types[k] for k in kn],
                                   *c_types, *x_types, *[y_types[j] for j in yc], *k_types],
                               "body_bwd")
        results = C.scan.bind(*_zeros_if_none(cts, carry, fc), *[A.zeros_like(consts[k])
                                                                  for k in kn],
                              *self.saved, *xs, *[cts[n + j] for j in yc], *consts, *captured,
                              body=bwd,
                              length=p["length"], reverse=not p["reverse"], n_carry=nf + na,
                              n_xs=n + nx + len(yc))
        ct_init, ct_consts, ct_xs = _split(results, nf, na)
        for k, g in zip(fc, ct_init):
            result[k] = g
        for k, g in zip(xn, ct_xs):
            result[n + k] = g
        for k, g in zip(kn, ct_consts):
            result[n + nx + k] = g
        return result


def _scan_tape_forward(values, params):
    """The forward scan on the tape: also returns the carry each step entered with."""
    body, n = params["body"], params["n_carry"]
    saving, captured = _graph(lambda *args: [*eval_graph(body, list(args)), *args[:n]],
                              body.in_types, body.name)
    outs = C.scan.bind(*values, *captured, **{**params, "body": saving})
    m = len(body.outputs)
    return outs[:m], _ScanPullback(list(values), params, outs[m:])


class _WhilePullback:
    name = "while_loop"

    def __init__(self, values, params):
        self.values, self.params = values, params

    def pullback(self, cts, values, out, needed, params):
        p = self.params
        cond, body, n, ncc = p["cond"], p["body"], p["n_carry"], p["n_cond_consts"]
        carry, cond_consts, body_consts = _split(self.values, n, ncc)
        c_types, b_types = body.in_types[:n], body.in_types[n:]
        fc = [k for k in range(n) if _is_float(c_types[k])]
        kn = [k for k in range(len(body_consts))
              if needed[n + ncc + k] and _is_float(b_types[k])]
        result = [None] * len(self.values)
        if not fc:
            return result
        nf, na = len(fc), len(kn)

        def f(*args):
            c, ct_c, acc, ks = _split(args, n, nf, na)
            g = _pullback_of(body, [*c, *ks], fc + [n + k for k in kn],
                             lambda outs: [outs[k] for k in fc], ct_c)
            return [*g[:nf], *[A.add(a, b) for a, b in zip(acc, g[nf:])]]

        bwd, captured = _graph(f, [*c_types, *[c_types[k] for k in fc],
                                   *[b_types[k] for k in kn], *b_types], "body_bwd")
        results = C.while_loop_grad.bind(*carry, *cond_consts, *body_consts,
                                         *_zeros_if_none(cts, carry, fc), *captured,
                                         cond=cond, body=body,
                                         body_bwd=bwd, n_carry=n, n_cond_consts=ncc,
                                         diff_carry=tuple(fc), diff_consts=tuple(kn))
        for k, g in zip(fc, results[:nf]):
            result[k] = g
        for k, g in zip(kn, results[nf:]):
            result[n + ncc + k] = g
        return result


def _while_tape_forward(values, params):
    return C.while_loop.bind(*values, **params), _WhilePullback(list(values), params)


class _Remapped:
    """A pullback of a loop rewritten as another kind of loop (fori_loop as scan or
    while_loop): operands and cotangents mapped between the two."""

    name = "fori_loop"

    def __init__(self, inner, to_inner, to_outer):
        self.inner, self.to_inner, self.to_outer = inner, to_inner, to_outer

    def pullback(self, cts, values, out, needed, params):
        inner_needed = self.to_inner(needed)
        return self.to_outer(self.inner.pullback([None, *cts], None, None, inner_needed, None))


def _fori_tape_forward(values, params):
    body, n = params["body"], params["n_carry"]
    lower, upper = values[:2]
    carry, consts = _split(values[2:], n)
    i_type = body.in_types[0]

    def stepped(i, *args):
        return [i + 1, *eval_graph(body, [i, *args])]

    step_body, step_captured = _graph(stepped, body.in_types, "body")
    if not isinstance(lower, Tracer) and not isinstance(upper, Tracer):
        # Bounds known now: a scan of (upper - lower) steps carrying the index.
        length = max(int(upper) - int(lower), 0)
        scan_values = [np.asarray(int(lower), dtype=i_type.dtype), *carry, *consts,
                       *step_captured]
        outs, inner = _scan_tape_forward(scan_values, dict(
            body=step_body, length=length, reverse=False, n_carry=n + 1, n_xs=0))
        extra = [False] * len(step_captured)
        rule = _Remapped(inner, lambda needed: [False, *needed[2:], *extra],
                         lambda r: [None, None, *r[1:1 + n + len(consts)]])
        return outs[1:], rule
    # Traced bounds: a while_loop carrying the index, with `upper` read by its condition.
    cond, cond_captured = _graph(lambda i, *args: [i < args[n]],
                                 [i_type, *body.in_types[1:1 + n], _type_of(upper)], "cond")
    while_values = [lower, *carry, upper, *cond_captured, *consts, *step_captured]
    nc = 1 + len(cond_captured)
    outs, inner = _while_tape_forward(while_values, dict(cond=cond, body=step_body,
                                                         n_carry=n + 1, n_cond_consts=nc))
    extra = [False] * len(step_captured)
    rule = _Remapped(inner, lambda needed: [False, *needed[2:2 + n], *[False] * nc,
                                            *needed[2 + n:], *extra],
                     lambda r: [None, None, *r[1:1 + n], *r[1 + n + nc:1 + n + nc + len(consts)]])
    return outs[1:], rule


def _no_second_order(*args, **kwargs):
    raise NotImplementedError(at_user_line(
        "differentiating the reverse-mode derivative of a while_loop (grad of grad, hessian, "
        "jvp of grad) is not supported: the backward pass of a while_loop is one primitive "
        "without derivative rules of its own. Use fori_loop with bounds known at trace time, "
        "or scan, which are differentiable to any order."))


C.fori_loop.def_ad(None, _fori_jvp, tape_forward=_fori_tape_forward)
C.while_loop.def_ad(None, _while_jvp, tape_forward=_while_tape_forward)
C.scan.def_ad(None, _scan_jvp, tape_forward=_scan_tape_forward)
C.while_loop_grad.def_ad(_no_second_order, _no_second_order)
