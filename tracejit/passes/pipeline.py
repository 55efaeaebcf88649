"""The optimisation pipeline: the passes, in order, each a named Graph -> Graph function.

    traced -> simplify -> cse -> layout -> dce [-> fused, for backends that generate kernels]

The verifier runs after every pass when ``TRACEJIT_VERIFY`` is on (the test suite sets it), and
every intermediate graph is kept, by stage name, for ``compiled.lower(...).as_text(stage)``.
"""
from __future__ import annotations

from .. import config
from ..ir import Eqn, Graph, verify
from .check_fused import check_fused
from .cse import cse
from .dce import dce
from .fusion import FusionReport, fuse
from .layout import layout
from .simplify import simplify

PASSES = (
    ("simplify", simplify),  # algebraic identities, compositions, constant folding
    ("cse", cse),            # merge equal equations (e.g. the same broadcast constant twice)
    ("layout", layout),      # values in the layout their readers want ((a @ b).T = b.T @ a.T)
    ("dce", dce),            # drop what no output needs (e.g. unused cotangents)
)
STAGES = ("traced",) + tuple(name for name, _ in PASSES) + ("fused",)


def nested(pass_fn):
    """``pass_fn`` applied to a graph and, first, to the sub-graphs of its control-flow
    equations (loop bodies and branches are optimised and fused like any graph)."""
    def run(graph: Graph) -> Graph:
        eqns = []
        for eqn in graph.eqns:
            if eqn.prim.kind == "control":
                params = {k: run(v) if isinstance(v, Graph) else v for k, v in eqn.params.items()}
                eqn = Eqn(eqn.prim, eqn.inputs, params, eqn.outputs, eqn.source_info)
            eqns.append(eqn)
        return pass_fn(Graph(graph.inputs, eqns, graph.outputs, graph.consts, graph.name))
    return run


def run_pipeline(graph: Graph, fusion: bool = False):
    """(stages, fusion report): every stage's graph by name, in order, the last one being what
    the backend compiles. ``fusion`` adds the ``fused`` stage for backends that generate code."""
    stages = {"traced": graph}
    check = config.get("verify")
    for name, pass_fn in PASSES:
        graph = nested(pass_fn)(graph)
        if check:
            verify(graph)
        stages[name] = graph
    report = None
    if fusion:
        reports = []

        def fuse_one(g):
            fused, one = fuse(g)
            reports.append(one)
            return fused
        graph = nested(fuse_one)(graph)
        report = FusionReport([d for one in reports for d in one.decisions])
        check_fused(graph)  # always: a few microseconds, and it names a fusion bug's equation
        if check:
            verify(graph)
        stages["fused"] = graph
    return stages, report
