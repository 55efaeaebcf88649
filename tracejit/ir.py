"""The IR: typed, single-assignment graphs of primitive equations, their text form and verifier.

    graph f(a:f32[4,3], b:f32[3]) {
      c:f32[4,3] = broadcast_in_dim[shape=(4, 3) dims=(1,)] b
      d:f32[4,3] = mul a c
      e:f32[4] = reduce_sum[axes=(1,)] d
      return e
    }

Variables carry no names: names are given at print time in order of first definition, so the same
program always prints byte-identically (golden tests and content hashes rely on this).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import dtypes
from .errors import IRVerificationError, SourceInfo


@dataclass(frozen=True)
class TensorType:
    """Abstract value: a static shape, a dtype, and whether the type is weak (a Python scalar)."""

    shape: tuple[int, ...]
    dtype: np.dtype
    weak: bool = False

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        object.__setattr__(self, "dtype", np.dtype(self.dtype))

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def strong(self) -> TensorType:
        return TensorType(self.shape, self.dtype, False) if self.weak else self

    def with_shape(self, shape) -> TensorType:
        return TensorType(shape, self.dtype, self.weak)

    def __str__(self) -> str:
        weak = "~" if self.weak else ""
        return f"{weak}{dtypes.short_name(self.dtype)}[{','.join(map(str, self.shape))}]"


class Var:
    """A value defined once in a graph: a graph input, a constant, or an equation's output."""

    __slots__ = ("ttype",)

    def __init__(self, ttype: TensorType):
        self.ttype = ttype

    def __repr__(self) -> str:
        return f"Var({self.ttype})"


class Literal:
    """A scalar constant written inline in an equation (``mul a 2.0:f32``)."""

    __slots__ = ("value", "ttype")

    def __init__(self, value, ttype: TensorType):
        assert ttype.shape == (), "literals are scalars; arrays become graph constants"
        self.value = np.asarray(value, dtype=ttype.dtype)[()]
        self.ttype = ttype

    def __repr__(self) -> str:
        return f"Literal({self.value!r}:{self.ttype})"


Atom = Var | Literal


@dataclass
class Eqn:
    prim: Any  # tracejit.primitives.Primitive (not imported: the registry imports this module)
    inputs: list[Atom]
    params: dict[str, Any]
    outputs: list[Var]
    source_info: SourceInfo | None = None


@dataclass
class Graph:
    """``inputs`` are the flattened arguments; ``consts`` are arrays the function closed over."""

    inputs: list[Var]
    eqns: list[Eqn]
    outputs: list[Atom]
    consts: list[tuple[Var, np.ndarray]] = field(default_factory=list)
    name: str = "f"

    @property
    def in_types(self) -> list[TensorType]:
        return [v.ttype for v in self.inputs]

    @property
    def out_types(self) -> list[TensorType]:
        return [a.ttype for a in self.outputs]

    def __str__(self) -> str:
        return pretty_print(self)

    def __repr__(self) -> str:
        return f"<Graph {self.name}: {len(self.inputs)} inputs, {len(self.eqns)} eqns>"

    def to_dot(self) -> str:
        """Graphviz DOT text: a box per equation, types on edges, fused kernels as clusters."""
        from .introspect import to_dot
        return to_dot(self)

    def render(self, path: str) -> str:
        """Draw the graph to ``path`` (.svg/.png/.pdf) with Graphviz where its ``dot``
        program is installed, else with matplotlib (the ``viz`` extra has both packages)."""
        from .introspect import render
        return render(self, path)


# --------------------------------------------------------------------------------------------
# Text form


def _var_names():
    """a, b, ..., z, ba, bb, ...: bijective base-26 without a leading 'a' so names never clash."""
    i = 0
    while True:
        n, name = i, ""
        while True:
            name = chr(ord("a") + n % 26) + name
            n //= 26
            if n == 0:
                break
        yield name
        i += 1


def format_param(value) -> str:
    if isinstance(value, np.dtype):
        return dtypes.short_name(value)
    if isinstance(value, type) and issubclass(value, np.generic):
        return dtypes.short_name(value)
    if isinstance(value, tuple):
        inner = ", ".join(format_param(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, Graph):
        return value.name
    if isinstance(value, str):
        return value
    return repr(value)


def _format_literal(lit: Literal) -> str:
    value = lit.value
    if lit.ttype.dtype.kind == "b":
        text = "True" if value else "False"
    elif lit.ttype.dtype.kind == "f":
        text = repr(float(value))
    else:
        text = str(int(value))
    return f"{text}:{dtypes.short_name(lit.ttype.dtype)}"


class _Namer:
    def __init__(self):
        self._names: dict[int, str] = {}
        self._fresh = _var_names()

    def define(self, var: Var) -> str:
        name = next(self._fresh)
        self._names[id(var)] = name
        return name

    def binder(self, var: Var) -> str:
        return f"{self.define(var)}:{var.ttype}"

    def use(self, atom: Atom) -> str:
        if isinstance(atom, Literal):
            return _format_literal(atom)
        return self._names.get(id(atom), "<undefined>")


def pretty_print(graph: Graph, indent: int = 0) -> str:
    namer = _Namer()
    pad = " " * indent
    ins = ", ".join(namer.binder(v) for v in graph.inputs)
    header = f"{pad}graph {graph.name}({ins})"
    if graph.consts:
        header += " consts(" + ", ".join(namer.binder(v) for v, _ in graph.consts) + ")"
    lines = [header + " {"]
    for eqn in graph.eqns:
        args = " ".join(namer.use(a) for a in eqn.inputs)
        params = " ".join(f"{k}={format_param(v)}" for k, v in eqn.params.items())
        params = f"[{params}]" if params else ""
        outs = " ".join(namer.binder(v) for v in eqn.outputs)
        lines.append(f"{pad}  {outs} = {eqn.prim.name}{params} {args}".rstrip())
        for value in eqn.params.values():  # sub-graphs (fused kernels) print as nested blocks
            if isinstance(value, Graph):
                lines.append(pretty_print(value, indent + 4))
    lines.append(f"{pad}  return " + ", ".join(namer.use(a) for a in graph.outputs))
    lines.append(pad + "}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Verifier


def verify(graph: Graph) -> None:
    """Check single assignment, definition before use, and every equation's types.

    Raises IRVerificationError naming the equation (and the user's line that made it).
    """
    defined: set[int] = set()

    def bind(var, what):
        if not isinstance(var, Var):
            raise IRVerificationError(f"{what} binds {var!r}, which is not a Var")
        if id(var) in defined:
            raise IRVerificationError(f"{what} assigns {var!r} a second time")
        defined.add(id(var))

    def check_use(atom, what):
        if isinstance(atom, Literal):
            return
        if not isinstance(atom, Var) or id(atom) not in defined:
            raise IRVerificationError(f"{what} uses {atom!r} before it is defined")

    for v in graph.inputs:
        bind(v, "graph input")
    for v, value in graph.consts:
        bind(v, "graph constant")
        if value.shape != v.ttype.shape or value.dtype != v.ttype.dtype:
            raise IRVerificationError(f"constant {v!r} holds an array of {value.dtype}{value.shape}")
    for i, eqn in enumerate(graph.eqns):
        origin = f" from {eqn.source_info}" if eqn.source_info else ""
        where = f"equation {i} ({eqn.prim.name}{origin})"
        for a in eqn.inputs:
            check_use(a, where)
        for value in eqn.params.values():
            if isinstance(value, Graph):
                verify(value)
        try:
            expected = eqn.prim.abstract_eval(*[a.ttype for a in eqn.inputs], **eqn.params)
        except Exception as e:  # a rule refusing its inputs is a verification failure
            raise IRVerificationError(f"{where}: its primitive rejects its inputs: {e}") from e
        got = [v.ttype for v in eqn.outputs]
        if list(expected) != got:
            raise IRVerificationError(
                f"{where}: output types {[str(t) for t in got]} differ from the primitive's "
                f"abstract eval {[str(t) for t in expected]}")
        for v in eqn.outputs:
            bind(v, where)
    for a in graph.outputs:
        check_use(a, "graph output")
