"""A graph picture drawn with matplotlib, for machines without Graphviz (``Graph.render``).

The same picture ``to_dot`` describes (boxes per equation, types on edges, fused kernels as
clusters, the backward pass shaded), laid out in layers: a node sits one row below the lowest
of its operands, and each row is ordered by where its operands are (one barycentre sweep,
which keeps most edges short and uncrossed). Only ``matplotlib.figure`` is used, never
``pyplot``, so drawing does not touch the user's plotting backend.
"""
from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

_ROW = 1.0  # inches between layers
_CHAR = 0.068  # inches per character of 7-point monospace
_GAP = 0.35  # inches between boxes in a row
_MAX_LABEL = 44
_BACKWARD = "#f8d9c4"
_KERNEL = "#4a7ab5"


def _short(label: str) -> str:
    return label if len(label) <= _MAX_LABEL else label[:_MAX_LABEL - 1] + "…"


def _layout(picture):
    """Per node: (x, y) in inches, and the box width."""
    names = [n[0] for n in picture["nodes"]]
    preds: dict[str, list[str]] = {n: [] for n in names}
    for src, dst, _ in picture["edges"]:
        preds[dst].append(src)
    layer: dict[str, int] = {}
    for name in names:  # nodes are made after their operands: one pass suffices
        layer[name] = 1 + max((layer[p] for p in preds[name]), default=-1)
    consumers: dict[str, list[str]] = {n: [] for n in names}
    for src, dst, _ in picture["edges"]:
        consumers[src].append(dst)
    for name, _, shape, _, _ in picture["nodes"]:
        if shape == "box" and not preds[name] and consumers[name]:
            # an equation without operands (a broadcast literal): just above its first reader
            layer[name] = min(layer[c] for c in consumers[name]) - 1
    widths = {n[0]: _CHAR * len(_short(n[1])) + 0.25 for n in picture["nodes"]}
    rows: dict[int, list[str]] = {}
    for name in names:
        rows.setdefault(layer[name], []).append(name)
    x: dict[str, float] = {}
    for k in sorted(rows):
        row = rows[k]
        if k:  # barycentre of the operands' positions, ties by creation order
            row.sort(key=lambda n: (sum(x[p] for p in preds[n]) / len(preds[n])
                                    if preds[n] else 0.0, names.index(n)))
        total = sum(widths[n] for n in row) + _GAP * (len(row) - 1)
        left = -total / 2
        for n in row:
            x[n] = left + widths[n] / 2
            left += widths[n] + _GAP
    return {n: (x[n], -layer[n] * _ROW) for n in names}, widths


def draw(picture, title: str, path: Path) -> None:
    positions, widths = _layout(picture)
    xs = [positions[n][0] + s * widths[n] / 2 for n in positions for s in (-1, 1)]
    ys = [positions[n][1] for n in positions]
    width = max(xs) - min(xs) + 1.0
    height = max(ys) - min(ys) + 1.6
    fig = Figure(figsize=(max(width, 4.0), max(height, 2.0)))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(min(xs) - 0.5, min(xs) - 0.5 + max(width, 4.0))
    ax.set_ylim(min(ys) - 0.6, max(ys) + 1.0)
    ax.axis("off")
    ax.text(min(xs), max(ys) + 0.7, title + ("   (shaded: backward pass)" if any(
        n[3] for n in picture["nodes"]) else ""), family="monospace", fontsize=9,
        weight="bold")

    for k, cluster in enumerate(picture["clusters"]):
        members = [n[0] for n in picture["nodes"] if n[4] == k]
        if not members:
            continue
        left = min(positions[m][0] - widths[m] / 2 for m in members) - 0.12
        right = max(positions[m][0] + widths[m] / 2 for m in members) + 0.12
        bottom = min(positions[m][1] for m in members) - 0.3
        top = max(positions[m][1] for m in members) + 0.38
        ax.add_patch(FancyBboxPatch((left, bottom), right - left, top - bottom,
                                    boxstyle="round,pad=0.02,rounding_size=0.1",
                                    facecolor="#eef3fa", edgecolor=_KERNEL, linewidth=1.0,
                                    zorder=0))
        ax.text(left + 0.05, top - 0.1, cluster, family="monospace", fontsize=6,
                color=_KERNEL, va="top", zorder=1)

    for src, dst, label in picture["edges"]:
        (x0, y0), (x1, y1) = positions[src], positions[dst]
        ax.annotate("", xy=(x1, y1 + 0.17), xytext=(x0, y0 - 0.17),
                    arrowprops={"arrowstyle": "-|>", "color": "#555555", "lw": 0.7,
                                "shrinkA": 0, "shrinkB": 0}, zorder=2)
        ax.text((x0 + x1) / 2 + 0.05, (y0 + y1) / 2, label, family="monospace", fontsize=5,
                color="#666666", zorder=3)

    for name, label, shape, shaded, _ in picture["nodes"]:
        x, y = positions[name]
        w = widths[name]
        style = "round,pad=0.02,rounding_size=0.17" if shape == "ellipse" else \
            "square,pad=0.02"
        ax.add_patch(FancyBboxPatch((x - w / 2, y - 0.15), w, 0.3, boxstyle=style,
                                    facecolor=_BACKWARD if shaded else "white",
                                    edgecolor="#333333", linewidth=0.8, zorder=4))
        ax.text(x, y, _short(label), family="monospace", fontsize=7, ha="center",
                va="center", zorder=5)
    fig.savefig(str(path), format=path.suffix.lstrip(".") or "svg", dpi=150)
