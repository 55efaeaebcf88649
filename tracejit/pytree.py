"""Nested containers of arrays ("pytrees"): tuples, lists, dicts, named tuples, None, and the
classes a user registers, around leaves.

``flatten`` gives the leaves in a deterministic order (dict keys sorted) and a hashable
``TreeDef`` describing the structure; ``unflatten`` rebuilds it. Two calls with different
structures have different TreeDefs, so a compiled function never reuses a trace across them.

A registered class (``register_node``) is flattened by its own function into children and
*aux data*: the part of the object that is not arrays (a name, a flag, a static shape). The aux
data becomes part of the TreeDef, and so of a compiled function's cache key: it must be
hashable, and two objects whose aux data differ trace separately. The public face of this
module is ``tracejit.tree_util``.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple


class TreeDef(NamedTuple):
    """Hashable structure of a pytree (a NamedTuple: built on every call, so it must be cheap)."""

    kind: str  # "leaf", "none", "tuple", "list", "dict", "namedtuple", "node"
    children: tuple = ()  # of TreeDef
    keys: tuple = ()  # dict keys, in the sorted order the children follow
    node: Any = None  # "namedtuple": its class; "node": (registered class, aux data)

    @property
    def num_leaves(self) -> int:
        if self.kind == "leaf":
            return 1
        return sum(c.num_leaves for c in self.children)

    def unflatten(self, leaves) -> Any:
        """The tree of this structure holding ``leaves`` (as ``unflatten(self, leaves)``)."""
        return unflatten(self, leaves)

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
        if self.kind == "list":
            return "[" + ", ".join(inner) + "]"
        cls = self.node if self.kind == "namedtuple" else self.node[0]
        names = _child_names(self)
        if names is not None:
            inner = [f"{n}={c}" for n, c in zip(names, inner)]
        aux = f"[{self.node[1]!r}]" if self.kind == "node" and self.node[1] is not None else ""
        return f"{cls.__qualname__}{aux}(" + ", ".join(inner) + ")"


LEAF = TreeDef("leaf")
NONE = TreeDef("none")


# --- registered classes ------------------------------------------------------------------------

class _NodeRules(NamedTuple):
    flatten: Callable  # obj -> (children, aux data)
    unflatten: Callable  # (aux data, children) -> obj
    names: tuple | None  # the children's attribute names, when fixed (for paths and printing)


_REGISTRY: dict[type, _NodeRules] = {}
_BUILT_IN = (tuple, list, dict, type(None))


def register_node(nodetype: type, flatten_func: Callable, unflatten_func: Callable,
                  names: tuple | None = None) -> None:
    """Make ``nodetype`` a pytree node: ``flatten_func(obj) -> (children, aux_data)`` and
    ``unflatten_func(aux_data, children) -> obj``. ``names``, when every object of the class
    has the same children, names them in error messages (``args[0].w``)."""
    if not isinstance(nodetype, type):
        raise TypeError(f"register_pytree_node: expected a class, got {nodetype!r}")
    if nodetype in _BUILT_IN:
        raise ValueError(f"register_pytree_node: {nodetype.__qualname__} is a pytree node "
                         "already (tuples, lists, dicts, named tuples and None are built in)")
    if nodetype in _REGISTRY:
        raise ValueError(f"register_pytree_node: {nodetype.__module__}.{nodetype.__qualname__} "
                         "is registered already; a class is registered once (at import of the "
                         "module that defines it)")
    if not callable(flatten_func) or not callable(unflatten_func):
        raise TypeError("register_pytree_node: flatten_func and unflatten_func must be "
                        "callables: flatten_func(obj) -> (children, aux_data), "
                        "unflatten_func(aux_data, children) -> obj")
    _REGISTRY[nodetype] = _NodeRules(flatten_func, unflatten_func,
                                     None if names is None else tuple(names))


def register_dataclass_node(nodetype: type, data_fields=None, meta_fields=None) -> type:
    """Register a dataclass: ``data_fields`` are its children (arrays or pytrees), and
    ``meta_fields`` its aux data (hashable values, part of the cache key). By default every
    field is a data field except those declared ``field(metadata={"static": True})``."""
    if data_fields is None or meta_fields is None:
        if not dataclasses.is_dataclass(nodetype):
            raise TypeError(f"register_dataclass: {nodetype!r} is not a dataclass; name its "
                            "data_fields and meta_fields")
        fields = [f for f in dataclasses.fields(nodetype) if f.init]
        static = [f.name for f in fields if f.metadata.get("static", False)]
        data_fields = [f.name for f in fields if f.name not in static] \
            if data_fields is None else data_fields
        meta_fields = static if meta_fields is None else meta_fields
    data, meta = tuple(data_fields), tuple(meta_fields)

    def flatten_func(obj):
        return [getattr(obj, n) for n in data], tuple(getattr(obj, n) for n in meta) or None

    def unflatten_func(aux, children):
        return nodetype(**dict(zip(data, children)), **dict(zip(meta, aux or ())))

    register_node(nodetype, flatten_func, unflatten_func, names=data)
    return nodetype


def _node_children(rules: _NodeRules, node) -> tuple[list, Any]:
    """A registered node's (children, aux data), checked: a clear error instead of a failed
    unpacking here or an unhashable cache key later."""
    cls = type(node)
    result = rules.flatten(node)
    try:
        children, aux = result
        children = list(children)
    except (TypeError, ValueError) as e:
        raise TypeError(f"the pytree flatten function of {cls.__qualname__} must return "
                        f"(children, aux_data), with children a sequence ({e})") from None
    try:
        hash(aux)
    except TypeError as e:
        raise TypeError(f"the pytree flatten function of {cls.__qualname__} returned aux data "
                        f"that is not hashable ({e}). Aux data is part of the tree structure "
                        "and of a compiled function's cache key: make it hashable (a tuple, "
                        "not a list or dict), and return arrays as children instead") from None
    return children, aux


# --- flatten / unflatten -----------------------------------------------------------------------

def _sorted_keys(d: dict) -> tuple:
    try:
        return tuple(sorted(d))
    except TypeError:  # mixed key types: fall back to a stable order by repr
        return tuple(sorted(d, key=repr))


def _one_level(node):
    """``(kind, keys, node data, children)`` of a pytree node, or None for a leaf. The one
    place that knows which objects are nodes."""
    rules = _REGISTRY.get(type(node))
    if rules is not None:  # (first: a registered subclass of dict or tuple is the user's node)
        children, aux = _node_children(rules, node)
        return "node", (), (type(node), aux), children
    if node is None:
        return "none", (), None, ()
    if isinstance(node, tuple):
        if hasattr(node, "_fields"):
            return "namedtuple", (), type(node), node
        return "tuple", (), None, node
    if isinstance(node, list):
        return "list", (), None, node
    if isinstance(node, dict):
        keys = _sorted_keys(node)
        return "dict", keys, None, [node[k] for k in keys]
    return None


def flatten(tree: Any, is_leaf: Callable[[Any], bool] | None = None) -> tuple[list, TreeDef]:
    """``(leaves, treedef)``; ``is_leaf(node)`` true stops the descent at ``node``."""
    leaves: list = []

    def rec(node) -> TreeDef:
        parts = None if is_leaf is not None and is_leaf(node) else _one_level(node)
        if parts is None:
            leaves.append(node)
            return LEAF
        kind, keys, data, children = parts
        if kind == "none":
            return NONE
        return TreeDef(kind, tuple([rec(c) for c in children]), keys, data)

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
        if td.kind == "dict":
            return dict(zip(td.keys, children))
        if td.kind == "namedtuple":
            return td.node(*children)
        cls, aux = td.node
        return _REGISTRY[cls].unflatten(aux, children)

    try:
        result = rec(treedef)
    except StopIteration:
        raise ValueError(f"too few leaves for the tree structure {treedef} "
                         f"({treedef.num_leaves} leaves)") from None
    if next(it, _SENTINEL) is not _SENTINEL:
        raise ValueError("too many leaves for the tree structure")
    return result


_SENTINEL = object()


def flatten_up_to(treedef: TreeDef, tree: Any, what: str = "tree") -> list:
    """The subtrees of ``tree`` at the leaf positions of ``treedef``, whose structure ``tree``
    must extend (``tree_map`` over several trees). Raises naming the first place they differ."""
    out: list = []

    def rec(td: TreeDef, node, path: str) -> None:
        if td.kind == "leaf":
            out.append(node)
            return
        parts = _one_level(node)
        if parts is None or parts[:3] != (td.kind, td.keys, td.node) or \
                len(parts[3]) != len(td.children):
            raise ValueError(f"{what} does not have the structure of the first tree at "
                             f"{path or 'its root'}: expected {td}, got "
                             f"{flatten(node)[1] if parts is not None else 'a leaf'}")
        for i, (child_td, child) in enumerate(zip(td.children, parts[3])):
            rec(child_td, child, path + _step(td, i))

    rec(treedef, tree, "")
    return out


# --- paths -----------------------------------------------------------------------------------

def _child_names(treedef: TreeDef) -> tuple | None:
    if treedef.kind == "namedtuple":
        return treedef.node._fields
    if treedef.kind == "node":
        rules = _REGISTRY.get(treedef.node[0])
        if rules is not None and rules.names is not None and \
                len(rules.names) == len(treedef.children):
            return rules.names
    return None


def _step(treedef: TreeDef, i: int) -> str:
    """The path step from a node to its child ``i``: ``['key']``, ``[i]`` or ``.name``."""
    if treedef.kind == "dict":
        return f"[{treedef.keys[i]!r}]"
    names = _child_names(treedef)
    return f".{names[i]}" if names is not None else f"[{i}]"


def leaf_paths(treedef: TreeDef, prefix: str = "") -> list[str]:
    """Human-readable paths of the leaves (``args[0]['w']``, ``args[1].bias``), for error
    messages. A registered class's children are ``.name`` where the class names them, else
    ``[i]`` in the order its flatten function gives them."""
    if treedef.kind == "leaf":
        return [prefix]
    paths = []
    for i, child in enumerate(treedef.children):
        paths.extend(leaf_paths(child, prefix + _step(treedef, i)))
    return paths
