"""Tracing: tracers stand in for arrays, and every primitive applied to one becomes an equation.

A ``GraphTrace`` builds one ``Graph``. ``bind(prim, args, params)`` is the single entry point of
every primitive application: with no tracer among the arguments it runs the NumPy reference
implementation; otherwise the innermost trace among the arguments records the equation. Traces
are kept in a stack with levels so that later transforms (autodiff) can nest their own.

The NumPy-facing surface of ``Tracer`` (operators, methods, ``__array_ufunc__``) is attached by
``tracejit.numpy.methods``; here live only the parts that are about tracing itself.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager

import numpy as np

from . import dtypes
from .errors import SourceInfo, TracerConversionError, at_user_line, user_source_info
from .ir import Eqn, Graph, Literal, TensorType, Var

_state = threading.local()


def _trace_stack() -> list:
    stack = getattr(_state, "stack", None)
    if stack is None:
        stack = _state.stack = []
    return stack


def current_trace():
    """The innermost active trace, or None outside tracing."""
    stack = _trace_stack()
    return stack[-1] if stack else None


def current_graph_trace():
    """The innermost trace that builds a graph (where creation functions record), or None."""
    for trace in reversed(_trace_stack()):
        if isinstance(trace, GraphTrace):
            return trace
    return None


class Trace:
    """An interpretation of primitives. Subclasses define how to lift values and process binds.

    Traces nest by ``level``: a bind goes to the highest-level trace among its arguments' tracers,
    and that trace's own computations bind again, reaching the traces below.
    """

    def __init__(self, level: int):
        self.level = level
        self.alive = True

    def lift(self, value) -> Tracer:
        raise NotImplementedError(f"{type(self).__name__} must define lift")

    def process(self, prim, args, params) -> list:
        raise NotImplementedError(f"{type(self).__name__} must define process")


class UnexpectedTracerError(Exception):
    """A tracer was used after the trace that made it had finished (it leaked out of ``f``)."""


def _uniform(array: np.ndarray) -> bool:
    """Every element the same value, signed zeros told apart (NaN never counts as the same)."""
    if array.size == 0:
        return False
    first = array.flat[0]
    if not (array.flat[:64] == first).all():  # most arrays that are not differ early
        return False
    same = array == first
    if array.dtype.kind == "f":
        same &= np.signbit(array) == np.signbit(first)
    return bool(same.all())


class Tracer:
    """An abstract array inside a trace: shape and dtype are known, values are not."""

    __array_priority__ = 1000
    __slots__ = ("_trace",)

    @property
    def ttype(self) -> TensorType:
        raise NotImplementedError(f"{type(self).__name__} must define ttype")

    # Static facts are free to read while tracing.
    shape = property(lambda self: self.ttype.shape)
    dtype = property(lambda self: self.ttype.dtype)
    ndim = property(lambda self: self.ttype.ndim)
    size = property(lambda self: self.ttype.size)

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of unsized object")
        return self.shape[0]

    def __iter__(self):
        if not self.shape:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self.shape[0]))

    def __repr__(self) -> str:
        return f"Traced<{self.ttype}>"

    # Values are not: any conversion to a concrete Python value fails with a pointer to the line.
    def _concretization_error(self, what: str):
        info = user_source_info()
        message = (
            f"{what} needs the value of a traced array ({self.ttype}), but only its shape and "
            "dtype are known while tracing.\nA Python `if`/`while` on array values, `int(x)`, "
            "`float(x)` or `bool(x)` cannot be compiled into a static graph. Use "
            "`tracejit.cond(pred, true_fun, false_fun, *operands)` for a branch, "
            "`tracejit.while_loop(cond_fun, body_fun, init)` or "
            "`tracejit.fori_loop(lower, upper, body_fun, init)` for a loop whose trip count "
            "depends on values, `tracejit.numpy.where(cond, a, b)` to choose elementwise, or "
            "mark the argument static with `static_argnums`/`static_argnames` if it is a "
            "configuration value.")
        raise TracerConversionError(at_user_line(message, info)) from None

    def __bool__(self):
        self._concretization_error("bool() (a Python `if`, `while`, `and`, `or` or `not`)")

    def __int__(self):
        self._concretization_error("int()")

    def __float__(self):
        self._concretization_error("float()")

    def __complex__(self):
        self._concretization_error("complex()")

    def __index__(self):
        self._concretization_error("Using it as an index (__index__; to index a NumPy array "
                                   "with a traced index, write tracejit.numpy.asarray(a)[i])")

    def __array__(self, dtype=None, copy=None):
        self._concretization_error("Converting it to a NumPy array (np.asarray; to index a "
                                   "NumPy array with a traced index, write "
                                   "tracejit.numpy.asarray(a)[i])")

    def item(self, *args):
        self._concretization_error(".item()")

    def tolist(self):
        self._concretization_error(".tolist()")

    def __setitem__(self, key, value):
        raise TypeError(at_user_line(
            "traced arrays are immutable: item assignment is not supported. Build the new value "
            "with tracejit.numpy.where(mask, new, x) or tracejit.numpy.concatenate instead."))

    __hash__ = None  # like ndarray: == is elementwise, so tracers cannot be dict keys


class GraphTracer(Tracer):
    __slots__ = ("atom",)

    def __init__(self, trace: GraphTrace, atom):
        self._trace = trace
        self.atom = atom

    @property
    def ttype(self) -> TensorType:
        return self.atom.ttype


class GraphTrace(Trace):
    """Records equations into a graph under construction."""

    def __init__(self, level: int):
        super().__init__(level)
        self.inputs: list[Var] = []
        self.eqns: list[Eqn] = []
        self.consts: list[tuple[Var, np.ndarray]] = []
        self._const_ids: dict[int, tuple] = {}

    def new_input(self, ttype: TensorType) -> GraphTracer:
        var = Var(ttype)
        self.inputs.append(var)
        return GraphTracer(self, var)

    def to_atom(self, value):
        """The atom for a tracer of this trace, or a constant lifted into it."""
        if isinstance(value, GraphTracer):
            if value._trace is not self:
                _check_alive(value)
                raise UnexpectedTracerError(at_user_line(
                    "a traced value from another trace was mixed into this one"))
            return value.atom
        if isinstance(value, Tracer):
            raise UnexpectedTracerError(f"cannot record {type(value).__name__} in a graph trace")
        if dtypes.is_python_scalar(value):
            dtype = dtypes.python_scalar_dtype(value)
            if dtype.kind == "i":
                dtypes.check_python_int_fits(value, dtype)
            return Literal(value, TensorType((), dtype, weak=True))
        array = np.asarray(value)
        dtype = dtypes.canonical_dtype(array.dtype)
        if array.ndim == 0:
            return Literal(array, TensorType((), dtype))
        # Dedupe by identity; the entry holds `value` so its id cannot be reused while tracing.
        held = self._const_ids.get(id(value))
        if held is not None and held[0] is value:
            return held[1]
        if _uniform(array):
            var = self._broadcast_literal(array, dtype)
        else:
            frozen = np.array(array, copy=True)  # later mutation of the user's array can't leak
            var = Var(TensorType(array.shape, dtype))
            self.consts.append((var, frozen))
        self._const_ids[id(value)] = (value, var)
        return var

    def _broadcast_literal(self, array, dtype) -> Var:
        """A constant array of one value as a broadcast literal, not a stored array: reverse
        mode makes many (the zero mask and exponent of ``x ** 2``'s derivative), and as arrays
        they held memory per signature and made the graph's source shape-specific."""
        from .primitives.structural import broadcast_in_dim
        scalar = Literal(np.asarray(array.flat[0], dtype), TensorType((), dtype))
        var = Var(TensorType(array.shape, dtype))
        params = {"shape": tuple(array.shape), "dims": ()}
        self.eqns.append(Eqn(broadcast_in_dim, [scalar], params, [var], user_source_info()))
        return var

    def lift(self, value) -> GraphTracer:
        return value if isinstance(value, GraphTracer) and value._trace is self else \
            GraphTracer(self, self.to_atom(value))

    def process(self, prim, args, params):
        atoms = [self.to_atom(a) for a in args]
        out_types = prim.abstract_eval(*[a.ttype for a in atoms], **params)
        outs = [Var(t) for t in out_types]
        source = getattr(_state, "replayed_source", None) or user_source_info()
        self.eqns.append(Eqn(prim, atoms, dict(params), outs, source))
        return [GraphTracer(self, v) for v in outs]


def _check_alive(tracer: Tracer):
    if not tracer._trace.alive:
        raise UnexpectedTracerError(at_user_line(
            f"a traced value ({tracer.ttype}) was used after the function that traced it had "
            "returned. Tracers must not escape the traced function (e.g. stored in a global or an "
            "attribute); return the value instead."))


def constant_trace(trace):
    """Where a constant made for an operation on values of ``trace`` belongs: that trace, or
    the graph being traced above it (a loop body or branch using an outside value: there the
    constant is a literal of the body, not a value passed in)."""
    graph = current_graph_trace()
    if trace is None or (graph is not None and graph.level > trace.level):
        return graph
    return trace


def find_trace(args):
    """The innermost trace among the tracers in ``args`` (flat), or None."""
    top = None
    for a in args:
        if isinstance(a, Tracer):
            _check_alive(a)
            if top is None or a._trace.level > top.level:
                top = a._trace
    return top


def bind(prim, args, params):
    trace = find_trace(args)
    if trace is None:
        return prim.impl(*[np.asarray(a) for a in args], **params)
    outs = trace.process(prim, args, params)
    return outs if prim.multiple_results else outs[0]


@contextmanager
def new_trace(trace_class, *args):
    """Push a new trace of ``trace_class`` one level above the current ones; pop it after."""
    stack = _trace_stack()
    trace = trace_class(len(stack), *args)
    stack.append(trace)
    try:
        yield trace
    finally:
        stack.pop()
        trace.alive = False


def new_graph_trace():
    return new_trace(GraphTrace)


def eval_graph(graph: Graph, args) -> list:
    """Replay a graph's equations with ``bind`` on ``args`` (tracers or arrays).

    This inlines a compiled function into whatever is tracing around it (a graph being built,
    a ``grad``), keeping each equation's original source line.
    """
    env: dict[int, object] = {}

    def read(atom):
        return atom.value if isinstance(atom, Literal) else env[id(atom)]

    for var, value in zip(graph.inputs, args):
        env[id(var)] = value
    for var, value in graph.consts:
        env[id(var)] = value
    previous = getattr(_state, "replayed_source", None)
    try:
        for eqn in graph.eqns:
            _state.replayed_source = eqn.source_info
            values = [read(a) for a in eqn.inputs]
            graph_trace = current_graph_trace()
            if graph_trace is not None and find_trace(values) is None:
                # Only constants (a broadcast literal): recorded, not computed here, so the
                # graph being traced keeps the same equation.
                results = graph_trace.process(eqn.prim, values, eqn.params)
            else:
                result = bind(eqn.prim, values, eqn.params)
                results = result if eqn.prim.multiple_results else [result]
            for var, value in zip(eqn.outputs, results):
                env[id(var)] = value
    finally:
        _state.replayed_source = previous
    return [read(a) for a in graph.outputs]


class ClosureTrace(GraphTrace):
    """Traces a function given to a control-flow primitive (a loop body, a branch) into a
    sub-graph. Values it closes over (tracers of the traces below, arrays) are not baked in:
    each becomes an extra input of the sub-graph, after the explicit ones, and the primitive
    receives the outer value as an operand. So a sub-graph has no constants, a derivative
    flows through what a body closes over, and a compiled loop reads the array it was given."""

    def __init__(self, level: int):
        super().__init__(level)
        self.captured: list = []  # the outer values, in the order of the extra inputs
        self.capture_vars: list[Var] = []
        self._capture_ids: dict[int, tuple] = {}

    def _capture(self, value, ttype: TensorType, outer=None) -> Var:
        """The input standing for ``value`` (deduplicated by identity); the primitive will
        receive ``outer`` (default: ``value`` itself) for it."""
        held = self._capture_ids.get(id(value))
        if held is not None and held[0] is value:
            return held[1]
        var = Var(ttype)
        self.captured.append(value if outer is None else outer)
        self.capture_vars.append(var)
        self._capture_ids[id(value)] = (value, var)
        return var

    def to_atom(self, value):
        if isinstance(value, Tracer) and value._trace is not self:
            _check_alive(value)
            return self._capture(value, value.ttype)
        if not isinstance(value, Tracer) and not dtypes.is_python_scalar(value):
            array = np.asarray(value)
            if array.ndim > 0:  # a copy: later mutation of the user's array can't leak in
                frozen = np.array(array, dtype=dtypes.canonical_dtype(array.dtype), copy=True)
                return self._capture(value, TensorType(frozen.shape, frozen.dtype), frozen)
        return super().to_atom(value)


def trace_subgraph(fun, in_types: list[TensorType], name: str) -> tuple[Graph, list, list]:
    """Trace ``fun(*tracers) -> list of leaves`` as a sub-graph: (graph, raw output leaves,
    captured outer values). The graph's inputs are the explicit ones, then one per captured
    value."""
    with new_trace(ClosureTrace) as trace:
        tracers = [trace.new_input(t) for t in in_types]
        leaves = fun(*tracers)
        outputs = [trace.to_atom(leaf) for leaf in leaves]
    graph = Graph(trace.inputs + trace.capture_vars, trace.eqns, outputs, [], name)
    return graph, leaves, trace.captured


def trace_flat(fun, in_types: list[TensorType], name: str) -> tuple[Graph, list]:
    """Trace ``fun(*tracers) -> list of leaves`` into a Graph; returns (graph, raw leaves)."""
    with new_graph_trace() as trace:
        tracers = [trace.new_input(t) for t in in_types]
        leaves = fun(*tracers)
        outputs = []
        for i, leaf in enumerate(leaves):
            try:
                outputs.append(trace.to_atom(leaf))
            except TypeError:
                raise TypeError(
                    f"{name} returned a {type(leaf).__name__} as output leaf {i}; outputs must be "
                    "arrays or scalars (in tuples, lists or dicts)") from None
    graph = Graph(trace.inputs, trace.eqns, outputs, trace.consts, name)
    return graph, leaves


__all__ = ["Trace", "Tracer", "GraphTracer", "GraphTrace", "bind", "current_trace",
           "constant_trace", "current_graph_trace", "eval_graph", "find_trace", "new_trace",
           "new_graph_trace", "trace_flat", "trace_subgraph", "ClosureTrace",
           "SourceInfo", "UnexpectedTracerError"]



def leaf_type(leaf, what: str, taker: str) -> TensorType:
    """The abstract type of a traced function's argument ``leaf`` (a tracer's own, a Python
    scalar's weak one, an array's); ``what`` names it and ``taker`` the function taking it in
    the error for anything else."""
    if isinstance(leaf, Tracer):
        return leaf.ttype
    if dtypes.is_python_scalar(leaf):
        return TensorType((), dtypes.python_scalar_dtype(leaf), weak=True)
    try:
        array = np.asarray(leaf)
        return TensorType(array.shape, dtypes.canonical_dtype(array.dtype))
    except (TypeError, ValueError) as e:
        raise TypeError(at_user_line(f"{what} is a {type(leaf).__name__} ({e}); {taker} "
                                     "takes arrays and scalars (in tuples, lists or dicts)"))
