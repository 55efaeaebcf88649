"""Algebraic simplification and constant folding.

Rules (each keeps the replaced value's type exactly, or does not fire):
- identities: ``x + 0``, ``x - 0``, ``x * 1``, ``x / 1``, ``x ** 1``, ``neg(neg x)``, ``convert`` to
  the same type, ``reshape``/``transpose``/``broadcast_in_dim`` that change nothing;
- compositions: reshape of reshape, transpose of transpose, broadcast of broadcast become one,
  and so does a broadcast of a reshape that only inserted size-1 dims (``keepdims``);
- strength reduction: ``x ** 2`` becomes ``x * x`` (NumPy computes float powers of 2 as a
  square, so the value is identical);
- constant folding: an elementwise equation whose operands are all constants (literals, or
  literals broadcast to a shape) becomes one broadcast literal.

``x + 0`` gives ``-0.0`` where NumPy would give ``+0.0`` for ``x = -0.0``; the values compare
equal, and like other compilers we accept that.
"""
from __future__ import annotations

import numpy as np

from ..ir import Eqn, Graph, Literal, TensorType
from ..primitives import REGISTRY
from .rewrite import rewrite, with_inputs

_IDENTITY_OPERAND = {"add": (0, (0, 1)), "sub": (0, (1,)), "mul": (1, (0, 1)),
                     "div": (1, (1,)), "pow": (1, (1,))}


def simplify(graph: Graph) -> Graph:
    producers: dict[int, Eqn] = {}

    def constant(atom):
        """The scalar value of a constant operand (a literal, or a broadcast literal)."""
        if isinstance(atom, Literal):
            return atom.value
        eqn = producers.get(id(atom))
        if eqn is not None and eqn.prim.name == "broadcast_in_dim" and \
                isinstance(eqn.inputs[0], Literal):
            return eqn.inputs[0].value
        return None

    def step(eqn, inputs):
        if len(eqn.outputs) != 1:  # control flow (its sub-graphs are simplified on their own)
            return with_inputs(eqn, inputs)
        (out,) = eqn.outputs
        result = _simplify(eqn, inputs, out, constant, producers)

        if result is None:
            result = with_inputs(eqn, inputs)
        if isinstance(result, Eqn):
            producers[id(out)] = result
            return result
        if result.ttype != out.ttype:  # only type-preserving replacements
            kept = with_inputs(eqn, inputs)
            producers[id(out)] = kept
            return kept
        return result

    return rewrite(graph, step)


def _simplify(eqn, inputs, out, constant, producers):
    name, params = eqn.prim.name, eqn.params
    if eqn.prim.kind == "elementwise" and inputs:
        values = [constant(a) for a in inputs]
        if all(v is not None for v in values):
            return _fold(eqn, values, out)
    if name in _IDENTITY_OPERAND:
        unit, positions = _IDENTITY_OPERAND[name]
        for pos in positions:
            value = constant(inputs[pos])
            if value is not None and value == unit:
                return inputs[1 - pos]
        if name == "pow" and out.ttype.dtype.kind == "f" and constant(inputs[1]) == 2:
            return Eqn(REGISTRY["mul"], [inputs[0], inputs[0]], {}, [out], eqn.source_info)
    producer = producers.get(id(inputs[0])) if inputs else None
    inner = producer.prim.name if producer is not None else None
    if name == "neg" and inner == "neg":
        return producer.inputs[0]
    if name == "convert" and inputs[0].ttype == out.ttype:
        return inputs[0]
    if name == "reshape":
        if inputs[0].ttype.shape == out.ttype.shape:
            return inputs[0]
        if inner == "reshape":
            source = producer.inputs[0]
            if source.ttype.shape == out.ttype.shape:
                return source
            return Eqn(eqn.prim, [source], params, [out], eqn.source_info)
    if name == "transpose":
        if params["perm"] == tuple(range(len(params["perm"]))):
            return inputs[0]
        if inner == "transpose":
            first = producer.params["perm"]
            perm = tuple(first[p] for p in params["perm"])
            if perm == tuple(range(len(perm))):
                return producer.inputs[0]
            return Eqn(eqn.prim, [producer.inputs[0]], {"perm": perm}, [out], eqn.source_info)
    if name == "broadcast_in_dim":
        if params["dims"] == tuple(range(len(params["shape"]))) and \
                inputs[0].ttype.shape == out.ttype.shape:
            return inputs[0]
        if inner == "broadcast_in_dim":
            dims = tuple(params["dims"][d] for d in producer.params["dims"])
            return Eqn(eqn.prim, [producer.inputs[0]], {"shape": params["shape"], "dims": dims},
                       [out], eqn.source_info)
        if inner == "reshape":
            dims = _unit_reshape_dims(producer.inputs[0].ttype.shape, inputs[0].ttype.shape)
            if dims is not None:  # keepdims-style reshape then broadcast: one broadcast
                dims = tuple(params["dims"][d] for d in dims)
                return Eqn(eqn.prim, [producer.inputs[0]], {"shape": params["shape"],
                                                            "dims": dims}, [out],
                           eqn.source_info)
    return None


def _fold(eqn, values, out):
    with np.errstate(all="ignore"):
        value = eqn.prim.impl(*[np.asarray(v) for v in values], **eqn.params)
    literal = Literal(np.asarray(value).reshape(()), TensorType((), out.ttype.dtype, out.ttype.weak))
    if out.ttype.shape == ():
        return literal
    return Eqn(REGISTRY["broadcast_in_dim"], [literal], {"shape": out.ttype.shape, "dims": ()},
               [out], eqn.source_info)


def _unit_reshape_dims(before, after):
    """If reshaping ``before`` to ``after`` only inserts size-1 dims, where each old dim went."""
    dims, j = [], 0
    for n in before:
        while j < len(after) and after[j] == 1 and n != 1:
            j += 1
        if j >= len(after) or after[j] != n:
            return None
        dims.append(j)
        j += 1
    if any(after[k] != 1 for k in range(j, len(after))):
        return None
    return tuple(dims)
