"""The primitive registry: one ``Primitive`` object per operation, holding all of its rules.

Every rule of a primitive is attached in its one block (see the sibling modules):

- ``abstract_eval(*in_types, **params) -> TensorType``: shape and dtype of the result; raises on
  ill-typed input. Used by tracing and by ``ir.verify``.
- ``impl(*arrays, **params) -> ndarray``: the NumPy reference implementation (the interpreter).
- ``scalar``: for elementwise primitives, the scalar expression code generation emits, as a
  format string over the operands (``"({0} + {1})"``); it must agree with ``impl`` on scalars.
- ``vjp`` / ``jvp``: derivative rules, attached with ``def_ad`` (or ``not_differentiable()``).
  They are written with ``bind`` like any tracing code, so backward graphs are ordinary graphs.
- ``batch``: the batching rule ``vmap`` uses, attached with ``def_batch``. It too is written
  with ``bind``, so a batched graph is an ordinary graph (fused, differentiated, batched again).

``kind`` groups primitives the way passes ask about them (tinygrad style): passes test
``prim.kind == "elementwise"`` rather than listing names.
"""
from __future__ import annotations

from typing import Callable

KINDS = ("elementwise", "movement", "reduction", "contraction", "indexing", "creation", "fused",
         "control")

REGISTRY: dict[str, Primitive] = {}


class Primitive:
    def __init__(self, name: str, kind: str, *, abstract_eval: Callable, impl: Callable,
                 scalar: str | None = None, dtype_kinds: str | None = None,
                 multiple_results: bool = False):
        if kind not in KINDS:
            raise ValueError(f"unknown primitive kind {kind!r}")
        if name in REGISTRY:
            raise ValueError(f"primitive {name!r} registered twice")
        self.name = name
        self.kind = kind
        self._abstract_eval = abstract_eval
        self.impl = impl
        self.scalar = scalar
        # Per dtype kind, where a compiled language reads the expression differently (in Numba,
        # `~True` is the Python int -2, not False).
        self.scalar_by_kind: dict[str, str] = {}
        self.dtype_kinds = dtype_kinds  # elementwise: the dtype kinds ("biuf") operands may have
        self.multiple_results = multiple_results  # abstract_eval/impl return lists
        self.vjp: Callable | None = None
        self.jvp: Callable | None = None
        self.differentiable: bool | None = None  # None: not yet decided (the registry test fails)
        self._vjp_takes_needed = False
        self.tape_forward: Callable | None = None
        self.batch: Callable | None = None  # None: no batching rule (the registry test fails)
        REGISTRY[name] = self

    def abstract_eval(self, *in_types, **params):
        """Always a list of result types."""
        result = self._abstract_eval(*in_types, **params)
        return list(result) if self.multiple_results else [result]

    def def_ad(self, vjp: Callable | None, jvp: Callable, *, takes_needed=False,
               tape_forward: Callable | None = None) -> Primitive:
        """Attach derivative rules (both emit IR through ``bind``, so they compose):

        ``vjp(ct, *primals, out, **params) -> [ct per primal or None]``
        ``jvp(primals, tangents, out, **params) -> tangent of out`` (tangents may be None: zero)

        With ``takes_needed`` the VJP also receives ``needed`` (one bool per operand) and computes
        only those cotangents: no work, and no spurious warnings, for constant operands.

        Primitives with several results (control flow) take and give lists: ``ct`` has one
        cotangent (or None) per result, and ``jvp(primals, tangents, **params)`` returns
        ``(results, tangents)``, computing both. Instead of ``vjp`` such a primitive may give
        ``tape_forward(values, params) -> (results, rule)``: what reverse mode runs forward (a
        loop that also keeps what its backward pass needs), and the object whose
        ``pullback(ct, values, out, needed, params)`` the backward pass calls.
        """
        if vjp is None and tape_forward is None:
            raise ValueError(f"{self.name}: def_ad needs a vjp rule or a tape_forward")
        self.vjp, self.jvp, self.differentiable = vjp, jvp, True
        self._vjp_takes_needed = takes_needed
        self.tape_forward = tape_forward
        return self

    def def_batch(self, rule: Callable) -> Primitive:
        """Attach the batching rule ``vmap`` uses:

        ``rule(args, bdims, **params) -> (out, out_bdim)``

        ``args`` are the operands with a batch axis added to some of them; ``bdims[i]`` is the
        position of that axis in ``args[i]``, or None where operand ``i`` is not batched (at
        least one is). ``out`` has the batch axis at ``out_bdim`` (None: the result does not
        vary along it). Primitives with several results return lists of both. A rule keeps
        the work batched: one application of a (possibly other) primitive over the whole
        batch, never a loop over its examples (``primitives/batch_support.py`` has helpers).
        """
        self.batch = rule
        return self

    def pullback(self, ct, values, out, needed, params) -> list:
        """The VJP rule applied (the autodiff driver's single entry point to it)."""
        if self._vjp_takes_needed:
            return self.vjp(ct, *values, out=out, needed=needed, **params)
        return self.vjp(ct, *values, out=out, **params)

    def not_differentiable(self) -> Primitive:
        """Piecewise-constant or integer-valued: zero cotangents and tangents."""
        self.differentiable = False
        return self

    def bind(self, *args, **params):
        """Apply the primitive: record it when an argument is traced, else run ``impl``."""
        from ..tracing import bind  # tracing imports the registry; bind lives with the traces
        return bind(self, args, params)

    def __repr__(self) -> str:
        return f"<primitive {self.name}>"
