"""Operator fusion: group equations into kernels, each one loop nest in generated code.

The result is a graph whose compute equations are ``kernel`` equations holding their sub-graph
(printed as a nested block); movement equations outside kernels stay as they are (backends make
them views). Kinds of kernel:

- ``elementwise``: a maximal connected group of elementwise equations over one shape. Operands
  broadcast into it (``broadcast_in_dim`` of an outside value) are read through index arithmetic,
  never materialised; broadcast literals become scalar constants.
- ``reduce``: reductions over the same axes of one shape, with the elementwise group that feeds
  them as a prologue (``sum(x * x)`` is one loop, no temporary). Elementwise values the group
  also stores are written from the same loop.
- ``row``: reduce-then-broadcast along the same axes (softmax, layernorm, variance): the
  results of a reduction, broadcast back along its rows, feed later elementwise work and
  reductions of the same kernel, which makes one pass per stage over each row.
- every other compute primitive (``dot_general``, ``gather``, ``cumsum``, ...) is a kernel of
  its own, of kind ``op``; a matmul's elementwise epilogue is the elementwise kernel after it.

Every refusal to fuse two connected equations is recorded with its reason in ``FusionReport``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import IRVerificationError
from ..ir import Eqn, Graph, Literal, TensorType, Var
from ..primitives.registry import Primitive

REDUCTIONS = ("reduce_sum", "reduce_prod", "reduce_max", "reduce_min")


def _kernel_abstract_eval(*in_types, kind, body):
    expected = [(t.shape, t.dtype) for t in body.in_types]
    if [(t.shape, t.dtype) for t in in_types] != expected:
        raise TypeError(f"kernel: operands {[str(t) for t in in_types]} do not match its body")
    return body.out_types


def _kernel_impl(*arrays, kind, body):
    from ..backends.interpreter import evaluate
    return evaluate(body, list(arrays))


kernel = Primitive("kernel", "fused", abstract_eval=_kernel_abstract_eval, impl=_kernel_impl,
                   multiple_results=True)
kernel.not_differentiable()  # fusion runs after differentiation


@dataclass
class Decision:
    consumer: str
    producer: str
    fused: bool
    reason: str

    def __str__(self) -> str:
        verdict = "fused" if self.fused else "not fused"
        return f"{self.producer} -> {self.consumer}: {verdict} ({self.reason})"


@dataclass
class FusionReport:
    decisions: list[Decision] = field(default_factory=list)

    def refusals(self) -> list[Decision]:
        return [d for d in self.decisions if not d.fused]

    def __str__(self) -> str:
        return "\n".join(str(d) for d in self.decisions)


def _describe(eqn: Eqn) -> str:
    where = f" at {eqn.source_info}" if eqn.source_info else ""
    return f"{eqn.prim.name}{list(eqn.outputs[0].ttype.shape)}{where}"


def _is_literal_broadcast(eqn: Eqn) -> bool:
    return eqn.prim.name == "broadcast_in_dim" and isinstance(eqn.inputs[0], Literal)


class _Group:
    def __init__(self, gid: int, shape):
        self.gid = gid
        self.shape = shape  # the iteration space
        self.eqns: list[Eqn] = []
        self.reduce_axes = None  # set once a reduction joins
        self.reductions: list[Eqn] = []
        self.deps: set[int] = set()  # groups its outside operands depend on (raw ids)


def fuse(graph: Graph) -> tuple[Graph, FusionReport]:
    report = FusionReport()
    producer: dict[int, Eqn] = {}
    order = {id(e): i for i, e in enumerate(graph.eqns)}
    for eqn in graph.eqns:
        for v in eqn.outputs:
            producer[id(v)] = eqn

    groups: dict[int, _Group] = {}
    parent: dict[int, int] = {}
    group_id: dict[int, int] = {}  # id(eqn) -> raw group id
    ancestors: dict[int, frozenset] = {}  # id(var) -> raw ids of groups it depends on

    def find(gid):
        while parent[gid] != gid:
            parent[gid] = parent[parent[gid]]
            gid = parent[gid]
        return gid

    def group_of(eqn):
        gid = group_id.get(id(eqn))
        return None if gid is None else groups[find(gid)]

    def source(a):
        """The var an operand reads: through a broadcast of an outside value."""
        eqn = producer.get(id(a)) if isinstance(a, Var) else None
        if eqn is not None and eqn.prim.name == "broadcast_in_dim":
            return eqn.inputs[0]
        return a

    def deps_of(a):
        a = source(a)
        return {find(g) for g in ancestors.get(id(a), ())} if isinstance(a, Var) else set()

    def new_group(shape):
        gid = len(groups)
        groups[gid], parent[gid] = _Group(gid, shape), gid
        return groups[gid]

    def merge(keep, other):
        parent[other.gid] = keep.gid
        keep.eqns += other.eqns
        keep.reductions += other.reductions
        keep.reduce_axes = keep.reduce_axes if keep.reduce_axes is not None else \
            other.reduce_axes
        keep.deps |= other.deps

    def joinable(eqn, a, shape):
        """(group, producer) of operand ``a`` if it is in the same iteration space, else None."""
        src = source(a)
        p = producer.get(id(src)) if isinstance(src, Var) else None
        g = group_of(p) if p is not None else None
        if g is None:
            return None
        if g.shape != shape:
            report.decisions.append(Decision(_describe(eqn), _describe(p), False,
                                             "different iteration shapes"))
            return None
        if id(src) in row_values:
            # A per-row value broadcast back over the axes it reduced: a row kernel can use it
            # in a later pass over the same row (softmax, layernorm).
            bcast = producer.get(id(a))
            expected = _row_dims(src.ttype.shape, g.shape, g.reduce_axes)
            if bcast is None or bcast.prim.name != "broadcast_in_dim" or \
                    bcast.params["dims"] != expected:
                report.decisions.append(Decision(_describe(eqn), _describe(p), False,
                                                 "reads a reduction's result other than "
                                                 "broadcast back along its rows"))
                return None
        elif p.outputs[0].ttype.shape != shape:
            report.decisions.append(Decision(_describe(eqn), _describe(p), False,
                                             "different iteration shapes"))
            return None
        return g, p

    row_values: dict[int, int] = {}  # id(var) -> raw group id: a value per row of a reduction

    def row_group(eqn):
        """The group whose per-row values (reduction results) are this eqn's only operands."""
        gids = set()
        for a in eqn.inputs:
            if isinstance(a, Literal):
                continue
            p = producer.get(id(a))
            if id(a) in row_values:
                gids.add(find(row_values[id(a)]))
            elif p is None or not _is_literal_broadcast(p):
                return None
        if len(gids) != 1:
            return None
        g = groups[gids.pop()]
        (out,) = eqn.outputs
        return g if _row_dims(out.ttype.shape, g.shape, g.reduce_axes) is not None else None

    for eqn in graph.eqns:
        kind = eqn.prim.kind
        is_reduction = eqn.prim.name in REDUCTIONS
        unit_reshape = eqn.prim.name == "reshape" and isinstance(eqn.inputs[0], Var) and \
            id(eqn.inputs[0]) in row_values
        if kind == "elementwise" or unit_reshape:
            g = row_group(eqn)
            if g is not None:  # per-row work after a reduction (mean = sum / n, 1 / sqrt(var))
                report.decisions.append(Decision(_describe(eqn), "its row kernel", True,
                                                 "per-row work on the kernel's reductions"))
                g.eqns.append(eqn)
                group_id[id(eqn)] = g.gid
                row_values[id(eqn.outputs[0])] = g.gid
                ancestors[id(eqn.outputs[0])] = frozenset({g.gid} | g.deps)
                continue
        if kind != "elementwise" and not is_reduction:
            deps = set().union(*[deps_of(a) for a in eqn.inputs]) if eqn.inputs else set()
            for v in eqn.outputs:
                ancestors[id(v)] = frozenset(deps)
            continue
        shape = eqn.inputs[0].ttype.shape if is_reduction else eqn.outputs[0].ttype.shape
        operand_groups = []  # per operand: the group it could be fused from, or None
        candidates = []
        for a in eqn.inputs:
            found = joinable(eqn, a, shape)
            operand_groups.append(found[0] if found else None)
            if found is not None and all(found[0] is not g for g, _ in candidates):
                candidates.append(found)

        def outside(chosen):
            """Groups the operands not read from ``chosen`` depend on."""
            roots = {find(c.gid) for c in chosen}
            deps = set()
            for a, g in zip(eqn.inputs, operand_groups):
                if g is None or find(g.gid) not in roots:
                    deps |= deps_of(a)
            return deps

        chosen = []
        for g, p in candidates:
            why = _refusal(g, chosen, outside(chosen + [g]), eqn, is_reduction, find)
            if is_reduction:
                reason = "elementwise prologue of the reduction"
            elif g.reductions:
                reason = "a later pass over the rows of the producer's reduction kernel"
            else:
                reason = "same iteration space"
            report.decisions.append(Decision(_describe(eqn), _describe(p), why is None,
                                             why or reason))
            if why is None:
                chosen.append(g)
        outside_deps = outside(chosen)
        target = chosen[0] if chosen else None
        for g in chosen[1:]:
            merge(target, g)
        if target is None:
            target = new_group(shape)
        target.deps |= outside_deps
        target.eqns.append(eqn)
        group_id[id(eqn)] = target.gid
        if is_reduction:
            target.reduce_axes = eqn.params["axes"]
            target.reductions.append(eqn)
            row_values[id(eqn.outputs[0])] = target.gid
        for v in eqn.outputs:
            ancestors[id(v)] = frozenset(outside_deps | {target.gid} | target.deps)

    final = {find(gid): groups[find(gid)] for gid in groups}
    for g in final.values():
        g.eqns.sort(key=lambda e: order[id(e)])
    member_group = {id(e): g for g in final.values() for e in g.eqns}
    return _assemble(graph, list(final.values()), member_group, producer), report


def _row_dims(shape, space, axes):
    """How a per-row value of this shape broadcasts back over ``space``: its dims, or None.

    Per-row values have the kept dims (``(4,)`` for rows of ``(4, 5)``) or, after a keepdims
    reshape, the full rank with 1 on the reduced axes (``(4, 1)``)."""
    if axes is None:
        return None
    kept = tuple(d for d in range(len(space)) if d not in axes)
    if tuple(shape) == tuple(space[d] for d in kept):
        return kept
    if len(shape) == len(space) and all(shape[d] == (1 if d in axes else space[d])
                                        for d in range(len(space))):
        return tuple(range(len(space)))
    return None


def row_equations(body: Graph) -> tuple[list[Eqn], set[int]]:
    """The per-row work of a reduce/row kernel's body, and the ids of every per-row value.

    Per-row values are the reductions' results and what is computed from them alone (``sum /
    n``, a keepdims ``reshape``), as ``fuse`` joins them. They are told apart by how they are
    made, never by shape: with size-1 dimensions a per-row value can have the iteration space's
    shape (rows of ``(4, 1)`` reduced over axis 1 and kept as ``(4, 1)``)."""
    producer = {id(v): e for e in body.eqns for v in e.outputs}
    row_ids = {id(e.outputs[0]) for e in body.eqns if e.prim.name in REDUCTIONS}
    eqns = []
    for e in body.eqns:
        if e.prim.name in REDUCTIONS or e.prim.name == "broadcast_in_dim":
            continue
        operands = [a for a in e.inputs if isinstance(a, Var)]
        if any(id(a) in row_ids for a in operands) and all(
                id(a) in row_ids or (id(a) in producer and _is_literal_broadcast(producer[id(a)]))
                for a in operands):
            eqns.append(e)
            row_ids.add(id(e.outputs[0]))
    return eqns, row_ids


def _refusal(g, chosen, outside_deps, eqn, is_reduction, find):
    """Why ``eqn`` may not join group ``g`` together with the groups already ``chosen``, or
    None. ``outside_deps``: the groups its other operands depend on if it does."""
    if is_reduction and g.reduce_axes not in (None, eqn.params["axes"]):
        return "the producer's kernel reduces over other axes"
    roots = {find(c.gid) for c in chosen} | {find(g.gid)}
    if roots & outside_deps:
        return "another operand depends on that kernel (fusing would make a cycle)"
    for c in chosen:
        if None not in (c.reduce_axes, g.reduce_axes) and c.reduce_axes != g.reduce_axes:
            return "the kernels reduce over different axes"
        if find(g.gid) in {find(d) for d in c.deps} or find(c.gid) in {find(d) for d in g.deps}:
            return "one kernel depends on the other through outside work"
    return None


def _assemble(graph, groups, group_of, producer) -> Graph:
    """Rebuild the graph with one kernel equation per group, in a dependency order.

    Members of a group need not be adjacent, and outside work between them may read an early
    member's value; the cycle check guarantees a valid order exists, and a topological sort
    (ties broken by original position, so the result is deterministic) finds it.
    """
    graph_outputs = {id(a) for a in graph.outputs if isinstance(a, Var)}
    position = {id(e): i for i, e in enumerate(graph.eqns)}
    nodes = []  # (first position, eqn)
    for g in groups:
        nodes.append((position[id(g.eqns[0])], _kernel_eqn(g, group_of, graph_outputs, producer,
                                                           graph)))
    for eqn in graph.eqns:
        if id(eqn) not in group_of and not _absorbed_broadcast(eqn, group_of, graph):
            nodes.append((position[id(eqn)], eqn))
    return Graph(graph.inputs, _topological(nodes, graph), graph.outputs, graph.consts,
                 graph.name)


def _topological(nodes, graph) -> list[Eqn]:
    import heapq

    made_by = {id(v): k for k, (_, e) in enumerate(nodes) for v in e.outputs}
    waiting = [0] * len(nodes)
    readers: dict[int, list[int]] = {}
    for k, (_, eqn) in enumerate(nodes):
        needs = {made_by[id(a)] for a in _reads(eqn) if id(a) in made_by}
        waiting[k] = len(needs)
        for n in needs:
            readers.setdefault(n, []).append(k)
    ready = [(pos, k) for k, (pos, _) in enumerate(nodes) if waiting[k] == 0]
    heapq.heapify(ready)
    ordered = []
    while ready:
        _, k = heapq.heappop(ready)
        ordered.append(nodes[k][1])
        for r in readers.get(k, []):
            waiting[r] -= 1
            if waiting[r] == 0:
                heapq.heappush(ready, (nodes[r][0], r))
    if len(ordered) != len(nodes):
        stuck = [f"{e.prim.name}{_kernel_kind(e)} at {e.source_info}" for k, (_, e)
                 in enumerate(nodes) if waiting[k] > 0]
        raise IRVerificationError("tracejit bug: fusion made a cycle: these equations wait on "
                                  "each other: " + "; ".join(stuck))
    return ordered


def _kernel_kind(eqn) -> str:
    return f"[{eqn.params['kind']}]" if eqn.prim.name == "kernel" else ""


def _reads(eqn):
    return [a for a in eqn.inputs if isinstance(a, Var)]


def _consumers(var, graph):
    return [e for e in graph.eqns if any(a is var for a in e.inputs)]


def _absorbed_broadcast(eqn, group_of, graph) -> bool:
    """A broadcast read by kernels only (never materialised): kernels index its operand."""
    if eqn.prim.name != "broadcast_in_dim":
        return False
    (out,) = eqn.outputs
    if any(a is out for a in graph.outputs):
        return False
    consumers = _consumers(out, graph)
    return bool(consumers) and all(id(c) in group_of and _reads_through_index(c)
                                   for c in consumers)


def _reads_through_index(eqn) -> bool:
    """Whether a kernel member reads a broadcast operand by index arithmetic (the broadcast is
    pulled into the kernel, never materialised): elementwise equations and reductions. (Had a
    reduction and an elementwise member disagreed, the broadcast would have been both a kernel
    input and made inside the kernel.)"""
    return eqn.prim.kind == "elementwise" or eqn.prim.name in REDUCTIONS


def _kernel_eqn(g, group_of, graph_outputs, producer, graph) -> Eqn:
    members = {id(e) for e in g.eqns}
    body_eqns, inputs, input_ids, pulled = [], [], set(), set()

    def external(a):
        if isinstance(a, Var) and id(a) not in input_ids:
            input_ids.add(id(a))
            inputs.append(a)

    for eqn in g.eqns:
        for a in eqn.inputs:
            p = producer.get(id(a)) if isinstance(a, Var) else None
            if p is not None and id(p) in members:
                continue
            if p is not None and p.prim.name == "broadcast_in_dim" and id(p) not in group_of \
                    and _reads_through_index(eqn):
                if id(p) not in pulled:  # the broadcast becomes index arithmetic in the kernel
                    pulled.add(id(p))
                    body_eqns.append(p)
                    src = p.inputs[0]
                    made_here = isinstance(src, Var) and id(producer.get(id(src))) in members
                    if not made_here:  # else: a row kernel reading its own reduction
                        external(src)
                continue
            external(a)
        body_eqns.append(eqn)
    def needed_outside(v) -> bool:
        if id(v) in graph_outputs:
            return True
        for c in _consumers(v, graph):
            if id(c) in members:
                continue
            # A broadcast this kernel pulled in is outside work only if someone else reads it.
            if id(c) in pulled and all(id(r) in members for r in _consumers(c.outputs[0], graph)) \
                    and not any(c.outputs[0] is a for a in graph.outputs):
                continue
            return True
        return False

    outputs = [v for eqn in g.eqns for v in eqn.outputs if needed_outside(v)]
    reduced = {id(r.outputs[0]) for r in g.reductions}
    in_rows = any(id(a) in reduced for e in body_eqns for a in e.inputs)
    kind = "row" if in_rows else "reduce" if g.reductions else "elementwise"
    body = Graph(list(inputs), body_eqns, list(outputs), [], f"{kind}_kernel")
    body = _rename(body)
    return Eqn(kernel, list(inputs), {"kind": kind, "body": body}, list(outputs),
               g.eqns[-1].source_info)


def _rename(body: Graph) -> Graph:
    """Give the body its own variables, so a Var is defined in exactly one graph."""
    env = {id(v): Var(v.ttype) for v in body.inputs}

    def read(a):
        return a if isinstance(a, Literal) else env[id(a)]

    eqns = []
    for eqn in body.eqns:
        ins = [read(a) for a in eqn.inputs]
        outs = []
        for v in eqn.outputs:
            env[id(v)] = Var(v.ttype)
            outs.append(env[id(v)])
        eqns.append(Eqn(eqn.prim, ins, eqn.params, outs, eqn.source_info))
    return Graph([env[id(v)] for v in body.inputs], eqns, [read(a) for a in body.outputs], [],
                 body.name)


def kernel_eqns(graph: Graph) -> list[Eqn]:
    """The equations that run as kernels: fused kernels and every other compute primitive,
    those inside loop bodies and branches included (in the order compiled code meets them)."""
    result = []
    for e in graph.eqns:
        if e.prim.kind == "control":
            for value in e.params.values():
                if isinstance(value, Graph):
                    result += kernel_eqns(value)
        elif e.prim.kind != "movement":
            result.append(e)
    return result


__all__ = ["Decision", "FusionReport", "fuse", "kernel", "kernel_eqns", "TensorType"]
