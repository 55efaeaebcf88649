"""Seeing what the compiler did: kernel tables, annotated source, DOT pictures, dump folders,
the TRACEJIT_DEBUG ladder, and Numba failures reported in terms of the user's program."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp
from tracejit.backends import vector_math

HERE = __file__


def softmax(x):
    e = tnp.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def mlp_loss(w, x):
    return tnp.tanh(x @ w).sum()


@pytest.fixture(scope="module")
def lowered_softmax():
    return tracejit.compile(softmax).lower(np.ones((3, 4), np.float32))


def test_kernels_say_kind_shape_primitives_bytes_and_lines(lowered_softmax):
    (info,) = lowered_softmax.kernels()
    assert (info.name, info.kind, info.shape) == ("_k0", "row", (3, 4))
    assert info.primitives == ["reduce_max", "broadcast_in_dim", "sub", "exp", "reduce_sum",
                               "broadcast_in_dim", "div"]
    assert (info.bytes_read, info.bytes_written) == (48, 48)
    assert info.lines == [f"{HERE}:19", f"{HERE}:20"]
    assert str(info).startswith("_k0 row         over (3, 4): reduce_max")


def test_generated_source_carries_the_users_lines(lowered_softmax):
    source = lowered_softmax.kernel_source()
    assert f"_k0(a0, t1)  # {HERE}:19, {HERE}:20" in source
    assert f"# _k0: from {HERE}:19, {HERE}:20\ndef kernel(" in source


_QUOTED = r'"(?:[^"\\]|\\.)*"'
_NODE = re.compile(rf'^\s*(n\d+) \[label={_QUOTED}(, [a-z]+=(?:{_QUOTED}|[a-z]+))*\];$')
_EDGE = re.compile(r'^\s*(n\d+) -> (n\d+) \[label="[^"]*"\];$')


def parse_dot(text: str):
    """A small DOT reader for what to_dot writes: (nodes, edges, clusters), failing on any line
    that is not a node, an edge, a cluster or a graph attribute."""
    lines = text.strip().splitlines()
    assert lines[0].startswith("digraph ") and lines[0].endswith("{") and lines[-1] == "}"
    nodes, edges, clusters, depth = set(), [], 0, 1
    for line in lines[1:-1]:
        stripped = line.strip()
        if m := _NODE.match(line):
            nodes.add(m.group(1))
        elif m := _EDGE.match(line):
            edges.append((m.group(1), m.group(2)))
        elif stripped.startswith("subgraph cluster_") and stripped.endswith("{"):
            clusters, depth = clusters + 1, depth + 1
        elif stripped == "}":
            depth -= 1
        else:
            assert re.match(r'^[a-z]+( \[.*\])?=?.*;$', stripped), f"not DOT: {line!r}"
    assert depth == 1, "unbalanced braces"
    assert all(a in nodes and b in nodes for a, b in edges), "an edge to an undeclared node"
    return nodes, edges, clusters


def test_to_dot_draws_one_cluster_per_fused_kernel():
    w, x = np.ones((3, 2), np.float32), np.ones((4, 3), np.float32)
    lowered = tracejit.compile(tracejit.grad(mlp_loss)).lower(w, x)
    fused = [k for k in lowered.kernels() if k.name.startswith("_k")]
    nodes, edges, clusters = parse_dot(lowered.to_dot())
    assert clusters == len(fused) >= 1
    assert len(edges) >= len(nodes) - 2  # connected: inputs feed through to the output
    assert 'label="f32[4,3]"' in lowered.to_dot()  # types on the edges
    traced = parse_dot(lowered.graph.to_dot())  # any Graph draws, fused or not
    assert traced[2] == 0
    # The backward pass is shaded: the forward tanh is not, the transposed products are.
    dot = lowered.graph.to_dot()
    assert "shaded: the backward pass" in dot
    assert re.search(r'label="tanh", tooltip="[^"]*"\]', dot)
    assert re.search(r'label="dot_general\[contract=\(\(0,\), \(0,\)\)[^"]*", tooltip="[^"]*", '
                     r'style=filled, fillcolor="#f8d9c4"\]', dot)


def test_render_draws_a_picture_with_or_without_graphviz(tmp_path):
    # matplotlib is in the test extras: without Graphviz the picture is drawn with it.
    graph = tracejit.make_ir(tracejit.grad(lambda x: softmax(x).sum()))(np.ones((2, 2)))
    png = tmp_path / "g.png"
    assert graph.render(str(png)) == str(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = tmp_path / "g.svg"
    graph.render(str(svg))
    text = svg.read_text()
    assert text.lstrip().startswith("<") and "reduce_max" in text


def test_matplotlib_picture_has_a_box_per_node_and_a_frame_per_kernel():
    from tracejit.introspect import _drawing
    from tracejit.picture import _layout
    lowered = tracejit.compile(softmax).lower(np.ones((2, 3), np.float32))
    fused = lowered.stages["fused"]
    picture = _drawing(fused)[1]
    assert len(picture["clusters"]) == len(lowered.kernels())
    positions, widths = _layout(picture)
    assert set(positions) == {n[0] for n in picture["nodes"]}
    for src, dst, _ in picture["edges"]:  # every edge points down the page
        assert positions[src][1] > positions[dst][1]


def test_dump_folder_holds_every_stage_the_source_and_a_summary(tmp_path):
    with tracejit.config.override(dump_dir=str(tmp_path)):
        tracejit.compile(softmax)(np.ones((3, 4), np.float32))
    (folder,) = tmp_path.iterdir()
    assert folder.name.endswith("_softmax")
    assert sorted(p.name for p in folder.iterdir()) == [
        "00_traced.ir", "01_simplify.ir", "02_cse.ir", "03_layout.ir", "04_dce.ir",
        "05_fused.ir", "entry.py", "fusion.txt", "graph.dot", "kernel_00.py", "summary.json"]
    assert (folder / "00_traced.ir").read_text().startswith("graph softmax(a:f32[3,4]) {")
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["function"] == "softmax" and summary["kernels"][0]["kind"] == "row"
    assert {"trace", "passes", "codegen", "total"} <= set(summary["compile_seconds"])
    assert all(d["fused"] for d in summary["fusion"])


@pytest.mark.parametrize("level,expected,absent", [
    (1, ["first trace", "tracejit: compiled softmax", "cache hit (args[0]: f32[2,5])"],
     ["kernel(s)", "fusion decisions"]),
    (2, ["1 kernel(s):", "_k0 row", "kernel times of one run:", "_k0 row (2, 5)"],
     ["fusion decisions"]),
    (3, ["fusion decisions:", "fused (elementwise prologue of the reduction)"],
     ["generated source"]),
    (4, ["generated source:", "def kernel(in0, out0):"], ["IR after"]),
    (5, ["IR after traced:", "IR after fused:", "kernel[kind=row"], []),
])
def test_each_debug_level_prints_what_it_promises(capsys, level, expected, absent):
    with tracejit.config.override(debug=level):
        compiled = tracejit.compile(softmax)
        compiled(np.ones((2, 5), np.float32))
        compiled(np.ones((2, 5), np.float32))  # a hit
    err = capsys.readouterr().err
    for text in expected:
        assert text in err, (level, text)
    for text in absent:
        assert text not in err, (level, text)


def test_a_numba_failure_names_the_kernel_and_the_users_line(monkeypatch):
    key = ("exp", np.dtype(np.float32))
    monkeypatch.setitem(vector_math.OVERRIDES, key, "_vm.planted_failure_xyz({0})")

    def f(x):
        return tnp.exp(x) * 2.0  # the failing line

    with pytest.raises(tracejit.CompileError) as caught:
        tracejit.compile(f)(np.ones(3, np.float32))
    message = str(caught.value)
    assert "Numba could not compile" in message and "exp" in message
    assert f"{HERE}:" in message and "planted_failure_xyz" in message
