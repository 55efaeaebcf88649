"""Buffer planning for a fused graph: where each kernel's result lives.

Three homes, decided once per signature from the graph alone:

- **a donated input** (``compile(..., donate_argnums=...)``): a graph output written by an
  elementwise kernel into an input of the same shape and dtype that nothing reads afterwards.
  Safe because an elementwise kernel reads all its operands at a point before writing its
  results there, and the donated input is read at that same point only.
- **a workspace slot**: a temporary (a value that is not an output, nor viewed by one) gets a
  slot of the workspace; slots are reused by later temporaries once every reader of the
  earlier one has run (dead-buffer reuse), and workspace arrays survive across calls, so large
  temporaries are not allocated (and page-faulted) on every call. A slot's array is of its
  size rounded up to a power of two, taken from the idle arrays of that size class, so
  signatures at neighbouring shapes share them (``numba_cpu._idle_slots``).
- **a fresh array**: everything else, outputs in particular (the caller owns them). Outputs
  of 4 MiB or more are allocated by the Python driver (``np.empty``) and passed in: NumPy asks
  the kernel for transparent huge pages on such allocations, Numba's allocator does not, and
  first-touch page faults on 4 KiB pages made writing a 64 MB result 3.5x slower.

Liveness goes through views: a transpose, reshape, slice, reverse or broadcast of a buffer keeps
that buffer alive as long as the view is read.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..ir import Graph, Var

VIEWS = ("broadcast_in_dim", "reshape", "transpose", "slice", "rev")
HUGE = 1 << 22  # bytes: NumPy's threshold for asking for huge pages
_NEVER = -1


@dataclass
class Slot:
    dtype: np.dtype
    size: int  # elements, the largest of its occupants

    @property
    def capacity(self) -> int:
        """Elements allocated: the size rounded up to a power of two, so that signatures at
        neighbouring shapes share workspace arrays (the entry slices each slot to the size it
        needs; ``numba_cpu`` keeps idle arrays by size class)."""
        return 1 << max(self.size - 1, 0).bit_length()


@dataclass
class BufferPlan:
    donated: dict[int, int] = field(default_factory=dict)  # id(output var) -> graph input index
    slot_of: dict[int, int] = field(default_factory=dict)  # id(var) -> workspace slot
    slots: list[Slot] = field(default_factory=list)
    preallocated: list[Var] = field(default_factory=list)  # large outputs the driver allocates
    unused_donations: list[int] = field(default_factory=list)  # input indices never reused



def _roots(graph: Graph) -> dict[int, int]:
    """id(var) -> id of the buffer it is a view of (itself for anything else)."""
    root: dict[int, int] = {}
    for eqn in graph.eqns:
        if eqn.prim.name in VIEWS and isinstance(eqn.inputs[0], Var):
            src = eqn.inputs[0]
            root[id(eqn.outputs[0])] = root.get(id(src), id(src))
    return root


def _last_reads(graph: Graph, root) -> tuple[dict[int, int], set[int]]:
    """Per buffer root: the index of the last equation reading it; and the roots outputs see."""
    last: dict[int, int] = {}
    for k, eqn in enumerate(graph.eqns):
        for a in eqn.inputs:
            if isinstance(a, Var):
                r = root.get(id(a), id(a))
                last[r] = k
    escaping = {root.get(id(a), id(a)) for a in graph.outputs if isinstance(a, Var)}
    return last, escaping


def _elementwise_reader(eqn, position: int) -> bool:
    """Whether an elementwise kernel reads operand ``position`` only at the iteration point."""
    body = eqn.params["body"]
    var = body.inputs[position]
    if var.ttype.shape != body.outputs[0].ttype.shape:
        return False
    return all(e.prim.kind == "elementwise" or
               (e.prim.name == "broadcast_in_dim" and e.outputs[0].ttype.shape == var.ttype.shape)
               for e in body.eqns if any(a is var for a in e.inputs))


def plan(graph: Graph, donate: frozenset = frozenset(), workspace_kinds=("kernel",)) -> BufferPlan:
    """Plan the buffers of ``graph`` (fused); ``donate`` holds indices into ``graph.inputs``."""
    result = BufferPlan()
    root = _roots(graph)
    last, escaping = _last_reads(graph, root)
    outputs = {id(a) for a in graph.outputs if isinstance(a, Var)}

    # Donations: each donated input goes to at most one output, first come first served.
    free_inputs = {id(graph.inputs[k]): k for k in sorted(donate) if k < len(graph.inputs)}
    for k, eqn in enumerate(graph.eqns):
        if eqn.prim.name != "kernel" or eqn.params["kind"] != "elementwise" or not free_inputs:
            continue
        for out in eqn.outputs:
            if id(out) not in outputs:
                continue
            for position, a in enumerate(eqn.inputs):
                index = free_inputs.get(id(a)) if isinstance(a, Var) else None
                if index is None or a.ttype.shape != out.ttype.shape or \
                        a.ttype.dtype != out.ttype.dtype or id(a) in escaping or \
                        last.get(id(a), _NEVER) > k or not _elementwise_reader(eqn, position):
                    continue
                # Other views of the same input read by this kernel would see it change.
                if any(isinstance(b, Var) and root.get(id(b)) == id(a) for b in eqn.inputs):
                    continue
                result.donated[id(out)] = index
                del free_inputs[id(a)]
                break
    result.unused_donations = sorted(free_inputs.values())

    # Large outputs: allocated by the caller, with huge pages.
    for eqn in graph.eqns:
        if eqn.prim.name in workspace_kinds:
            result.preallocated += [v for v in eqn.outputs
                                    if id(v) in outputs and id(v) not in result.donated and
                                    v.ttype.size * v.ttype.dtype.itemsize >= HUGE]

    # Workspace: temporaries in slots, a slot reused once its occupant's readers have all run.
    occupant_end: list[int] = []  # per slot, the last read of its current occupant
    for k, eqn in enumerate(graph.eqns):
        if eqn.prim.name not in workspace_kinds:
            continue
        for out in eqn.outputs:
            if id(out) in escaping or out.ttype.ndim == 0 or out.ttype.size == 0:
                continue
            end = last.get(id(out), k)
            fits = [s for s, slot in enumerate(result.slots)
                    if slot.dtype == out.ttype.dtype and occupant_end[s] < k]
            if fits:
                big_enough = [s for s in fits if result.slots[s].size >= out.ttype.size]
                s = min(big_enough, key=lambda s: result.slots[s].size) if big_enough else \
                    max(fits, key=lambda s: result.slots[s].size)
                result.slots[s].size = max(result.slots[s].size, out.ttype.size)
                occupant_end[s] = end
            else:
                s = len(result.slots)
                result.slots.append(Slot(out.ttype.dtype, out.ttype.size))
                occupant_end.append(end)
            result.slot_of[id(out)] = s
    return result
