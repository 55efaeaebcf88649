"""The two autodiff interpreters: a tape for reverse mode and dual numbers for forward mode.

Both are traces (``tracejit.tracing.Trace``): a primitive bound on their tracers runs its ordinary
computation one level down (``bind`` on the tracers' values) and records what differentiation
needs. Because the values can themselves be tracers of the traces below (a graph being compiled,
an outer ``grad``), derivative computations are recorded there too: under ``compile`` the
backward pass becomes ordinary equations of the graph, and derivatives of derivatives work.

Values are concrete NumPy arrays when nothing below is tracing, so Python control flow on them
works in plain ``grad``/``jvp`` (``bool()``, ``int()``, ``float()`` read the value); under
``compile`` the value is a graph tracer and the same conversion raises TracerConversionError.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import dtypes
from ..errors import TracerConversionError, at_user_line
from ..ir import TensorType
from ..tracing import Trace, Tracer, bind


def is_float(x) -> bool:
    return np.dtype(x.dtype).kind == "f"


def _type_of(value, weak=False) -> TensorType:
    if isinstance(value, Tracer):
        return value.ttype
    return TensorType(np.shape(value), value.dtype, weak)


class ADTracer(Tracer):
    """A tracer carrying the primal ``value`` one level down; conversions read that value."""

    __slots__ = ("value", "weak")

    @property
    def ttype(self) -> TensorType:
        return _type_of(self.value, self.weak)

    def _concrete(self):
        value = self.value
        while isinstance(value, ADTracer):
            value = value.value
        return value

    def __bool__(self):
        return bool(self._concrete())

    def __int__(self):
        return int(self._concrete())

    def __float__(self):
        return float(self._concrete())

    def __index__(self):
        return int(np.asarray(self._concrete()).__index__())

    def __array__(self, dtype=None, copy=None):
        raise TracerConversionError(at_user_line(
            f"converting a value being differentiated ({self.ttype}) to a NumPy array would "
            "silently drop its derivative; use tracejit.numpy functions on it, or "
            "tracejit.stop_gradient(x) first if no derivative is wanted"))

    def item(self, *args):
        return self._concrete().item(*args) if isinstance(self._concrete(), np.ndarray) else \
            float(self)


# --- reverse mode: a tape of equations --------------------------------------------------------

@dataclass
class TapeEntry:
    rule: object  # a Primitive, or a custom rule with the same .vjp(ct, *primals, out, **params)
    inputs: list  # per operand: its tape node (int) or None for constants
    values: list  # the operands' primal values (one level down)
    params: dict
    node: int | list  # a list (a node or None per result) for primitives with several results
    out: object


class TapeTracer(ADTracer):
    __slots__ = ("node",)

    def __init__(self, trace, value, node=None, weak=False):
        self._trace = trace
        self.value = value
        self.node = node  # None: a constant (no derivative flows to or through it)
        self.weak = weak


class TapeTrace(Trace):
    """Runs the program forward, keeping every equation with float outputs on a tape."""

    def __init__(self, level: int):
        super().__init__(level)
        self.tape: list[TapeEntry] = []
        self.num_nodes = 0

    def new_node(self) -> int:
        self.num_nodes += 1
        return self.num_nodes - 1

    def new_input(self, value, weak=False) -> TapeTracer:
        node = self.new_node() if is_float(value) else None
        return TapeTracer(self, value, node, weak)

    def lift(self, value) -> TapeTracer:
        if isinstance(value, TapeTracer) and value._trace is self:
            return value
        if dtypes.is_python_scalar(value):
            return TapeTracer(self, np.asarray(value), None, weak=True)
        return TapeTracer(self, value if isinstance(value, Tracer) else np.asarray(value))

    def process(self, prim, args, params):
        tracers = [self.lift(a) for a in args]
        values = [t.value for t in tracers]
        nodes = [t.node for t in tracers]
        if prim.differentiable is None:
            raise NotImplementedError(at_user_line(
                f"primitive `{prim.name}` has no differentiation rule"))
        if prim.multiple_results:
            return self._process_multiple(prim, values, nodes, params)
        out = bind(prim, values, params)
        weak = all(t.ttype.weak for t in tracers) and bool(tracers)
        if not prim.differentiable or not is_float(out) or all(n is None for n in nodes):
            return [TapeTracer(self, out, None, weak)]
        return [self.record(prim, nodes, values, params, out, weak)]

    def _process_multiple(self, prim, values, nodes, params):
        """A primitive with several results (control flow): one tape entry with a node per
        float result. A primitive may run a different forward computation on the tape
        (``tape_forward``: a loop that also keeps what its backward pass needs), returning
        its results and the rule object whose ``pullback`` the backward walk calls."""
        if not prim.differentiable or all(n is None for n in nodes):
            return [TapeTracer(self, o, None) for o in bind(prim, values, params)]
        forward = prim.tape_forward
        outs, rule = forward(values, params) if forward else (bind(prim, values, params), prim)
        out_nodes = [self.new_node() if is_float(o) else None for o in outs]
        self.tape.append(TapeEntry(rule, nodes, values, dict(params), out_nodes, list(outs)))
        return [TapeTracer(self, o, n) for o, n in zip(outs, out_nodes)]

    def record(self, rule, nodes, values, params, out, weak=False) -> TapeTracer:
        node = self.new_node()
        self.tape.append(TapeEntry(rule, nodes, values, dict(params), node, out))
        return TapeTracer(self, out, node, weak)


# --- forward mode: dual numbers ---------------------------------------------------------------

class JVPTracer(ADTracer):
    __slots__ = ("tangent",)

    def __init__(self, trace, value, tangent, weak=False):
        self._trace = trace
        self.value = value
        self.tangent = tangent  # None: zero
        self.weak = weak


class JVPTrace(Trace):
    def lift(self, value) -> JVPTracer:
        if isinstance(value, JVPTracer) and value._trace is self:
            return value
        if dtypes.is_python_scalar(value):
            return JVPTracer(self, np.asarray(value), None, weak=True)
        return JVPTracer(self, value if isinstance(value, Tracer) else np.asarray(value), None)

    def process(self, prim, args, params):
        tracers = [self.lift(a) for a in args]
        values = [t.value for t in tracers]
        tangents = [t.tangent if is_float(t.value) else None for t in tracers]
        if prim.differentiable is None:
            raise NotImplementedError(at_user_line(
                f"primitive `{prim.name}` has no differentiation rule"))
        if prim.multiple_results:  # control flow: its jvp rule computes values and tangents
            if not prim.differentiable or all(t is None for t in tangents):
                return [JVPTracer(self, o, None) for o in bind(prim, values, params)]
            outs, tangents_out = prim.jvp(values, tangents, **params)
            return [JVPTracer(self, o, t) for o, t in zip(outs, tangents_out)]
        out = bind(prim, values, params)
        weak = all(t.ttype.weak for t in tracers) and bool(tracers)
        if not prim.differentiable or not is_float(out) or all(t is None for t in tangents):
            return [JVPTracer(self, out, None, weak)]
        tangent = prim.jvp(values, tangents, out, **params)
        return [JVPTracer(self, out, tangent, weak)]
