"""The optimisation pipeline: the passes, in order, each a named Graph -> Graph function.

    traced -> simplify -> cse -> layout -> dce [-> fused, for backends that generate kernels]

The verifier runs after every pass when ``TRACEJIT_VERIFY`` is on (the test suite sets it), and
every intermediate graph is kept, by stage name, for ``compiled.lower(...).as_text(stage)``.
"""
from __future__ import annotations

from .. import config
from ..ir import Graph, verify
from .cse import cse
from .dce import dce
from .fusion import fuse
from .layout import layout
from .simplify import simplify

PASSES = (
    ("simplify", simplify),  # algebraic identities, compositions, constant folding
    ("cse", cse),            # merge equal equations (e.g. the same broadcast constant twice)
    ("layout", layout),      # values in the layout their readers want ((a @ b).T = b.T @ a.T)
    ("dce", dce),            # drop what no output needs (e.g. unused cotangents)
)
STAGES = ("traced",) + tuple(name for name, _ in PASSES) + ("fused",)


def run_pipeline(graph: Graph, fusion: bool = False):
    """(stages, fusion report): every stage's graph by name, in order, the last one being what
    the backend compiles. ``fusion`` adds the ``fused`` stage for backends that generate code."""
    stages = {"traced": graph}
    check = config.get("verify")
    for name, pass_fn in PASSES:
        graph = pass_fn(graph)
        if check:
            verify(graph)
        stages[name] = graph
    report = None
    if fusion:
        graph, report = fuse(graph)
        if check:
            verify(graph)
        stages["fused"] = graph
    return stages, report
