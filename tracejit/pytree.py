"""Nested containers of arrays ("pytrees"): tuples, lists, dicts and None around leaves.

``flatten`` gives the leaves in a deterministic order (dict keys sorted) and a hashable
``TreeDef`` describing the structure; ``unflatten`` rebuilds it. Two calls with different
structures have different TreeDefs, so a compiled function never reuses a trace across them.
"""
from __future__ import annotations

from typing import Any, NamedTuple


class TreeDef(NamedTuple):
    """Hashable structure of a pytree (a NamedTuple: built on every call, so it must be cheap)."""

    kind: str  # "leaf", "none", "tuple", "list", "dict"
    children: tuple = ()  # of TreeDef
    keys: tuple = ()  # dict keys, in the sorted order the children follow

    @property
    def num_leaves(self) -> int:
        if self.kind == "leaf":
            return 1
        return sum(c.num_leaves for c in self.children)

    def __str__(self) -> str:
        if self.kind == "leaf":
            return "*"
        if self.kind == "none":
            return "None"
        inner = [str(c) for c in self.children]
        if self.kind == "dict":
            return "{" + ", ".join(f"{k!r}: {c}" for k, c in zip(self.keys, inner)) + "}"
        if self.kind == "tuple":
            return "(" + ", ".join(inner) + ("," if len(inner) == 1 else "") + ")"
        return "[" + ", ".join(inner) + "]"


LEAF = TreeDef("leaf")


def _sorted_keys(d: dict) -> tuple:
    try:
        return tuple(sorted(d))
    except TypeError:  # mixed key types: fall back to a stable order by repr
        return tuple(sorted(d, key=repr))


def flatten(tree: Any) -> tuple[list, TreeDef]:
    leaves: list = []

    def rec(node) -> TreeDef:
        if node is None:
            return TreeDef("none")
        if isinstance(node, tuple) and not hasattr(node, "_fields"):
            return TreeDef("tuple", tuple(rec(c) for c in node))
        if isinstance(node, list):
            return TreeDef("list", tuple(rec(c) for c in node))
        if isinstance(node, dict):
            keys = _sorted_keys(node)
            return TreeDef("dict", tuple(rec(node[k]) for k in keys), keys)
        leaves.append(node)
        return LEAF

    return leaves, rec(tree)


def unflatten(treedef: TreeDef, leaves) -> Any:
    it = iter(leaves)

    def rec(td: TreeDef):
        if td.kind == "leaf":
            return next(it)
        if td.kind == "none":
            return None
        children = [rec(c) for c in td.children]
        if td.kind == "tuple":
            return tuple(children)
        if td.kind == "list":
            return children
        return dict(zip(td.keys, children))

    result = rec(treedef)
    if next(it, _SENTINEL) is not _SENTINEL:
        raise ValueError("too many leaves for the tree structure")
    return result


_SENTINEL = object()


def leaf_paths(treedef: TreeDef, prefix: str = "") -> list[str]:
    """Human-readable paths of the leaves (``args[0]['w']``), for error messages."""
    if treedef.kind == "leaf":
        return [prefix]
    if treedef.kind == "none":
        return []
    paths = []
    for i, child in enumerate(treedef.children):
        key = treedef.keys[i] if treedef.kind == "dict" else i
        paths.extend(leaf_paths(child, f"{prefix}[{key!r}]"))
    return paths
