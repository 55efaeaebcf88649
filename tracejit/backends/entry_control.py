"""Control flow in the generated entry function: real branches and loops around the code of
their sub-graphs (whose kernels are fused and compiled like any other).

    c1 = a0.copy()                       # fori_loop: the carry, owned by the loop
    t2 = np.empty((), np.int64)          # the index as a 0-d array, for the body's kernels
    for t3 in range(np.int64(0), a1[()]):
        t2[()] = t3
        _k0(c1, a2, t4)                  # the body's kernels, on the carry and what it reads
        c1 = t4                          # the body's results become the next carry

A carry is always an array the loop owns: initial values are copied, and a body result that
is not a fresh array (one of the body's inputs, a view, a literal) is copied or materialised,
so carries never alias each other, the loop's operands or a workspace buffer, and Numba sees
one array type per carry (C-contiguous, writable). The reverse mode of ``while_loop`` keeps
each iteration's carry in a list (its trip count is known only at run time).
"""
from __future__ import annotations

from contextlib import contextmanager

from ..ir import Literal
from . import codegen


@contextmanager
def _indented(w):
    w.depth += 1
    try:
        yield
    finally:
        w.depth -= 1


def _named(w, atom) -> str:
    """A name holding ``atom`` as an array (a literal operand becomes a 0-d array)."""
    if isinstance(atom, Literal):
        name = w.fresh()
        w.emit(f"{name} = np.full((), {w.literal(atom)})")
        return name
    return w.use(atom)


def _run(w, graph, names, emit):
    """Emit ``graph``'s equations with its inputs bound to ``names`` (never written)."""
    for var, name in zip(graph.inputs, names):
        w.names[id(var)] = name
        w.views.add(id(var))
    for eqn in graph.eqns:
        emit(w, eqn)


def _owned(w, atoms, carries=()) -> list[str]:
    """An expression per result atom giving an array the loop may keep: a fresh array as it
    is, a carry passed through once as it is, anything else copied."""
    result, used = [], set()
    for atom in atoms:
        if isinstance(atom, Literal):
            result.append(f"np.full((), {w.literal(atom)})")
            continue
        name = w.use(atom)
        fresh = id(atom) not in w.views or name in carries
        result.append(name if fresh and name not in used else f"{name}.copy()")
        used.add(name)
    return result


def _assign(w, names, exprs):
    if names:
        w.emit(f"{', '.join(names)}, = {', '.join(exprs)},")


def _new_carries(w, atoms) -> list[str]:
    names = []
    for atom in atoms:
        name = w.fresh()
        source = f"np.full((), {w.literal(atom)})" if isinstance(atom, Literal) \
            else f"{w.use(atom)}.copy()"
        w.emit(f"{name} = {source}")
        names.append(name)
    return names


def _results(w, eqn, names):
    for var, name in zip(eqn.outputs, names):
        w.names[id(var)] = name  # fresh arrays the loop owned: not views


def _cond(w, eqn, emit):
    pred, *ops = eqn.inputs
    names = [_named(w, a) for a in ops]
    results = [w.fresh() for _ in eqn.outputs]
    for keyword, branch in (("if", "true_branch"), ("else", "false_branch")):
        w.emit(f"if {w.scalar(pred)}:" if keyword == "if" else "else:")
        with _indented(w):
            graph = eqn.params[branch]
            _run(w, graph, names, emit)
            _assign(w, results, _owned(w, graph.outputs))
            if not results:
                w.emit("pass")
    _results(w, eqn, results)


def _fori_loop(w, eqn, emit):
    body, n = eqn.params["body"], eqn.params["n_carry"]
    lower, upper, *rest = eqn.inputs
    carries = _new_carries(w, rest[:n])
    consts = [_named(w, a) for a in rest[n:]]
    index, i = w.fresh(), w.fresh()
    w.emit(f"{index} = np.empty((), {codegen.dtype_name(body.inputs[0].ttype.dtype)})")
    w.emit(f"for {i} in range({w.scalar(lower)}, {w.scalar(upper)}):")
    with _indented(w):
        w.emit(f"{index}[()] = {i}")
        _run(w, body, [index, *carries, *consts], emit)
        _assign(w, carries, _owned(w, body.outputs, carries))
    _results(w, eqn, carries)


def _loop_while(w, cond, cond_names, emit):
    """``while True:`` with the condition's code and the exit test; the caller emits the
    body inside the returned indentation."""
    w.emit("while True:")
    w.depth += 1
    _run(w, cond, cond_names, emit)
    (pred,) = cond.outputs
    w.emit(f"if not {w.scalar(pred)}:")
    w.emit("    break")


def _while_loop(w, eqn, emit):
    p = eqn.params
    cond, body, n, ncc = p["cond"], p["body"], p["n_carry"], p["n_cond_consts"]
    carries = _new_carries(w, eqn.inputs[:n])
    cond_consts = [_named(w, a) for a in eqn.inputs[n:n + ncc]]
    body_consts = [_named(w, a) for a in eqn.inputs[n + ncc:]]
    _loop_while(w, cond, [*carries, *cond_consts], emit)
    _run(w, body, [*carries, *body_consts], emit)
    _assign(w, carries, _owned(w, body.outputs, carries))
    w.depth -= 1
    _results(w, eqn, carries)


def _scan(w, eqn, emit):
    p = eqn.params
    body, n, nx, length = p["body"], p["n_carry"], p["n_xs"], p["length"]
    carries = _new_carries(w, eqn.inputs[:n])
    xs = [w.use(a) for a in eqn.inputs[n:n + nx]]
    consts = [_named(w, a) for a in eqn.inputs[n + nx:]]
    ys = []
    for v in eqn.outputs[n:]:
        ys.append(w.fresh())
        w.emit(f"{ys[-1]} = np.empty({w.shape(v.ttype.shape)}, "
               f"{codegen.dtype_name(v.ttype.dtype)})")
    slices = []
    for var in body.inputs[n:n + nx]:
        slices.append(w.fresh())
        if var.ttype.ndim == 0:  # a 0-d array, refilled each step
            w.emit(f"{slices[-1]} = np.empty((), {codegen.dtype_name(var.ttype.dtype)})")
    k = w.fresh()
    n_steps = w.dim(length)
    steps = f"range({n_steps} - 1, -1, -1)" if p["reverse"] else f"range({n_steps})"
    w.emit(f"for {k} in {steps}:")
    with _indented(w):
        for name, x, var in zip(slices, xs, body.inputs[n:n + nx]):
            w.emit(f"{name}[()] = {x}[{k}]" if var.ttype.ndim == 0 else f"{name} = {x}[{k}]")
        _run(w, body, [*carries, *slices, *consts], emit)
        for y, atom in zip(ys, body.outputs[n:]):
            value = w.literal(atom) if isinstance(atom, Literal) else \
                w.use(atom) + ("[()]" if atom.ttype.ndim == 0 else "")
            w.emit(f"{y}[{k}] = {value}")
        _assign(w, carries, _owned(w, body.outputs[:n], carries))
    _results(w, eqn, carries + ys)


def _while_loop_grad(w, eqn, emit):
    p = eqn.params
    cond, body, bwd, n, ncc = p["cond"], p["body"], p["body_bwd"], p["n_carry"], \
        p["n_cond_consts"]
    nb, nct = len(body.inputs) - n, len(p["diff_carry"])
    ops = eqn.inputs
    carries = _new_carries(w, ops[:n])
    cond_consts = [_named(w, a) for a in ops[n:n + ncc]]
    body_consts = [_named(w, a) for a in ops[n + ncc:n + ncc + nb]]
    bwd_consts = [_named(w, a) for a in ops[n + ncc + nb + nct:]]
    saved = [w.fresh() for _ in carries]
    for s, c in zip(saved, carries):
        w.emit(f"{s} = [{c}]")  # saved[k]: the carry iteration k started with
    steps = w.fresh()
    w.emit(f"{steps} = 0")
    _loop_while(w, cond, [*carries, *cond_consts], emit)
    _run(w, body, [*carries, *body_consts], emit)
    _assign(w, carries, _owned(w, body.outputs, carries))
    for s, c in zip(saved, carries):
        w.emit(f"{s}.append({c})")
    w.emit(f"{steps} += 1")
    w.depth -= 1
    # Backward: cotangents of the carry and sums of the closed-over values' cotangents.
    cts = _new_carries(w, ops[n + ncc + nb:n + ncc + nb + nct])
    accs = []
    for k in p["diff_consts"]:
        t = body.inputs[n + k].ttype
        accs.append(w.fresh())
        w.emit(f"{accs[-1]} = np.zeros({w.shape(t.shape)}, {codegen.dtype_name(t.dtype)})")
    k, step_carries = w.fresh(), [w.fresh() for _ in carries]
    w.emit(f"for {k} in range({steps} - 1, -1, -1):")
    with _indented(w):
        for name, s in zip(step_carries, saved):
            w.emit(f"{name} = {s}[{k}]")
        _run(w, bwd, [*step_carries, *cts, *accs, *body_consts, *bwd_consts], emit)
        _assign(w, cts + accs, _owned(w, bwd.outputs, cts + accs))
    _results(w, eqn, cts + accs)


EMITTERS = {"cond": _cond, "fori_loop": _fori_loop, "while_loop": _while_loop, "scan": _scan,
            "while_loop_grad": _while_loop_grad}


def emit_control(w, eqn, emit):
    """Emit a control-flow equation; ``emit(w, eqn)`` emits the equations of its sub-graphs."""
    EMITTERS[eqn.prim.name](w, eqn, emit)
