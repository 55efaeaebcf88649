"""What the compiler did, in forms a person can read: kernel tables, DOT pictures, dump folders.

- ``kernels(graph)``: one ``KernelInfo`` per kernel of a fused graph (its kind, iteration shape,
  the primitives fused, bytes read and written, the user's lines it came from);
- ``to_dot(graph)``: Graphviz DOT text (no dependency): a box per equation, types on the
  edges, each fused kernel a cluster holding its body; ``render(graph, path)`` draws it where
  the ``graphviz`` package and its ``dot`` program are installed;
- ``dump(lowered, folder)``: the IR after every pass as numbered files, the generated source,
  the fusion decisions, the picture, and ``summary.json`` (``TRACEJIT_DUMP_DIR`` does this for
  every compile).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .ir import Graph, Literal, Var, format_param
from .passes.fusion import REDUCTIONS, kernel_eqns


@dataclass
class KernelInfo:
    name: str  # _k0, _k1, ... (as the entry function calls them), or the primitive
    kind: str  # elementwise / reduce / row for fused kernels, else the primitive (dot_general)
    shape: tuple  # the iteration space
    primitives: list  # the equations fused, by primitive name, in order
    bytes_read: int
    bytes_written: int
    lines: list  # the user's file:line of the fused equations, first seen first

    def __str__(self) -> str:
        where = f"  from {', '.join(self.lines)}" if self.lines else ""
        return (f"{self.name} {self.kind:11} over {self.shape}: {' '.join(self.primitives)} | "
                f"reads {_size(self.bytes_read)}, writes {_size(self.bytes_written)}{where}")


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _nbytes(atom) -> int:
    if isinstance(atom, Literal):
        return 0
    return int(atom.ttype.size) * atom.ttype.dtype.itemsize


def kernels(graph: Graph) -> list[KernelInfo]:
    """The kernels of a fused graph (movement equations, which are views, are not kernels)."""
    result, fused = [], 0
    for eqn in kernel_eqns(graph):
        if eqn.prim.name == "kernel":
            body, kind = eqn.params["body"], eqn.params["kind"]
            reds = [e for e in body.eqns if e.prim.name in REDUCTIONS]
            shape = reds[0].inputs[0].ttype.shape if reds else body.outputs[0].ttype.shape
            eqns = body.eqns
        else:
            kind, shape, eqns = eqn.prim.name, eqn.outputs[0].ttype.shape, [eqn]
        lines = []
        for e in eqns or [eqn]:
            if e.source_info and str(e.source_info) not in lines:
                lines.append(str(e.source_info))
        name = f"_k{fused}" if eqn.prim.name == "kernel" else eqn.prim.name
        fused += eqn.prim.name == "kernel"
        result.append(KernelInfo(name, kind, tuple(shape),
                                 [e.prim.name for e in eqns],
                                 sum(_nbytes(a) for a in eqn.inputs),
                                 sum(_nbytes(v) for v in eqn.outputs), lines))
    return result


# --- pictures ----------------------------------------------------------------------------------

def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _label(eqn) -> str:
    params = [f"{k}={format_param(v)}" for k, v in eqn.params.items() if not isinstance(v, Graph)]
    literals = [f"{a.value.item()!r}" for a in eqn.inputs if isinstance(a, Literal)]
    text = eqn.prim.name + (f"[{' '.join(params)}]" if params else "")
    return text + (f" {' '.join(literals)}" if literals else "")


def _look(eqn) -> str:
    """Tooltip (the user's line) and fill: backward-pass equations of a gradient are shaded."""
    info = eqn.source_info
    if info is None:
        return ""
    fill = ', style=filled, fillcolor="#f8d9c4"' if info.backward else ""
    return f", tooltip={_quote(str(info))}{fill}"


def to_dot(graph: Graph) -> str:
    """Graphviz DOT text for ``graph``: inputs as ellipses, equations as boxes (with the user's
    line in the tooltip), edges labelled with types, fused kernels as clusters, and the
    backward pass of a gradient shaded."""
    return _drawing(graph)[0]


def _drawing(graph: Graph):
    """(DOT text, the same picture as plain data for the matplotlib drawer): nodes as
    (name, label, shape, shaded, cluster), edges as (from, to, label), clusters as titles."""
    picture = {"nodes": [], "edges": [], "clusters": []}
    lines = [f"digraph {_quote(graph.name)} {{", "  rankdir=TB;",
             '  node [shape=box, fontname="monospace", fontsize=10];',
             '  edge [fontname="monospace", fontsize=9];']
    producer: dict[int, str] = {}  # id(var) -> node
    counter = [0]

    def node(label: str, attrs: str = "", indent: str = "  ") -> str:
        name = f"n{counter[0]}"
        counter[0] += 1
        lines.append(f"{indent}{name} [label={_quote(label)}{attrs}];")
        shape = "ellipse" if "ellipse" in attrs else "box"
        cluster = len(picture["clusters"]) - 1 if indent != "  " else None
        picture["nodes"].append((name, label, shape, "fillcolor" in attrs, cluster))
        return name

    def edge(atom, target: str, indent: str = "  "):
        if isinstance(atom, Var) and id(atom) in producer:
            lines.append(f"{indent}{producer[id(atom)]} -> {target} "
                         f"[label={_quote(str(atom.ttype))}];")
            picture["edges"].append((producer[id(atom)], target, str(atom.ttype)))

    for k, v in enumerate(graph.inputs):
        producer[id(v)] = node(f"input {k}: {v.ttype}", ", shape=ellipse")
    for k, (v, _) in enumerate(graph.consts):
        producer[id(v)] = node(f"const {k}: {v.ttype}", ", shape=ellipse, style=dashed")
    n_kernels = 0
    for eqn in graph.eqns:
        tip = _look(eqn)
        if eqn.prim.name != "kernel":
            target = node(_label(eqn), tip)
            for a in eqn.inputs:
                edge(a, target)
            for v in eqn.outputs:
                producer[id(v)] = target
            continue
        body = eqn.params["body"]
        lines.append(f"  subgraph cluster_k{n_kernels} {{")
        title = f"kernel _k{n_kernels} ({eqn.params['kind']})"
        picture["clusters"].append(title)
        lines.append(f"    label={_quote(title)};")
        lines.append('    style=rounded; color="#4a7ab5"; fontname="monospace";')
        n_kernels += 1
        inner = dict(zip((id(v) for v in body.inputs), eqn.inputs))
        for e in body.eqns:
            if e.prim.name == "broadcast_in_dim" and isinstance(e.inputs[0], Var) and \
                    id(e.inputs[0]) in inner:  # a broadcast operand: read by index, not a node
                inner[id(e.outputs[0])] = inner[id(e.inputs[0])]
                continue
            target = node(_label(e), _look(e) or tip, "    ")
            for a in e.inputs:
                edge(inner.get(id(a), a) if isinstance(a, Var) else a, target, "    ")
            producer[id(e.outputs[0])] = target
        lines.append("  }")
        for outer, out in zip(eqn.outputs, body.outputs):
            source = inner.get(id(out), out)
            if isinstance(source, Var) and id(source) in producer:
                producer[id(outer)] = producer[id(source)]
    for k, a in enumerate(graph.outputs):
        target = node(f"output {k}: {a.ttype}", ", shape=ellipse")
        edge(a, target)
    if any("fillcolor" in line for line in lines):
        lines.insert(4, '  label="shaded: the backward pass of the gradient"; labelloc=t;')
    lines.append("}")
    return "\n".join(lines) + "\n", picture


def render(graph: Graph, path: str) -> str:
    """Draw ``graph`` to ``path`` (format from its suffix: .svg, .png, .pdf): with Graphviz
    where its Python package and ``dot`` program are installed, else with matplotlib (a
    simpler layered layout)."""
    target = Path(path)
    try:
        import graphviz
        source = graphviz.Source(to_dot(graph))
        return source.render(outfile=str(target), format=target.suffix.lstrip(".") or "svg",
                             cleanup=True)
    except ImportError:
        pass
    except Exception as e:  # graphviz.ExecutableNotFound: the package without the program
        if type(e).__name__ != "ExecutableNotFound":
            raise
    try:
        from .picture import draw
    except ImportError:
        raise RuntimeError("rendering needs Graphviz (its `graphviz` Python package and `dot` "
                           "program) or matplotlib: pip install 'tracejit[viz]'; "
                           "graph.to_dot() gives the DOT text without either") from None
    draw(_drawing(graph)[1], graph.name, target)
    return str(target)


# --- dump folders ------------------------------------------------------------------------------

def summary(lowered, name: str = "f", stats: dict | None = None) -> dict:
    fused = lowered.stages.get("fused", lowered.stages["dce"])
    report = lowered.fusion_report
    return {
        "function": name,
        "backend": lowered.backend,
        "stages": list(lowered.stages),
        "kernels": [asdict(k) for k in kernels(fused)],
        "fusion": [{"producer": d.producer, "consumer": d.consumer, "fused": d.fused,
                    "reason": d.reason} for d in (report.decisions if report else [])],
        "compile_seconds": {k: v for k, v in (stats or {}).items() if isinstance(v, float)},
    }


def dump(lowered, folder, name: str = "f", stats: dict | None = None) -> Path:
    """Write what ``lowered`` holds to ``folder``: ``00_traced.ir``, ``01_simplify.ir``, ...,
    ``entry.py`` and ``kernel_00.py``, ... (generated source), ``fusion.txt``, ``graph.dot``,
    ``summary.json``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for k, (stage, graph) in enumerate(lowered.stages.items()):
        (folder / f"{k:02d}_{stage}.ir").write_text(str(graph) + "\n")
    run = lowered._run
    if getattr(run, "entry_source", ""):
        (folder / "entry.py").write_text(run.entry_source)
        for k, text in enumerate(run.kernel_sources):
            (folder / f"kernel_{k:02d}.py").write_text(text)
    if lowered.fusion_report is not None:
        (folder / "fusion.txt").write_text(str(lowered.fusion_report) + "\n")
    final = lowered.stages.get("fused", lowered.stages["dce"])
    (folder / "graph.dot").write_text(to_dot(final))
    (folder / "summary.json").write_text(json.dumps(summary(lowered, name, stats), indent=2,
                                                    default=_json_default) + "\n")
    return folder


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
