"""Pytrees: nested tuples, lists, dicts, named tuples and None around array leaves, and the
container classes a user registers. Compiled and differentiated functions take and return
them; these are the functions to work with them yourself, named as in ``jax.tree_util``.

    >>> import numpy as np
    >>> from tracejit import tree_util
    >>> params = {"w": np.ones(2), "layers": [np.zeros(1), None]}
    >>> tree_util.tree_leaves(params)  # dict keys sorted; None has no leaves
    [array([0.]), array([1., 1.])]
    >>> tree_util.tree_map(lambda a: a + 1, params)
    {'layers': [array([1.]), None], 'w': array([2., 2.])}
    >>> print(tree_util.tree_structure(params))
    {'layers': [*, None], 'w': *}

A class of your own becomes a node with ``register_pytree_node`` (or the
``register_pytree_node_class`` decorator, or ``register_dataclass``): its flatten function
returns ``(children, aux_data)``, where the children are arrays or pytrees and the aux data is
the rest (hashable: it is part of the tree structure, and so of a compiled function's cache
key; objects whose aux data differ trace separately). Registration is by exact class, once per
class; subclasses are not included.
"""
from __future__ import annotations

from functools import reduce
from typing import Any, Callable

from . import pytree
from .pytree import TreeDef

__all__ = ["TreeDef", "register_dataclass", "register_pytree_node", "register_pytree_node_class",
           "tree_flatten", "tree_leaves", "tree_map", "tree_reduce", "tree_structure",
           "tree_unflatten"]

IsLeaf = Callable[[Any], bool] | None


def tree_flatten(tree: Any, is_leaf: IsLeaf = None) -> tuple[list, TreeDef]:
    """``(leaves, treedef)``: the leaves in a fixed order (dict keys sorted) and the structure,
    hashable. ``is_leaf(node)`` returning true treats ``node`` as a leaf.

    >>> leaves, treedef = tree_flatten((1, {"b": 2, "a": 3}))
    >>> leaves, treedef.num_leaves
    ([1, 3, 2], 3)
    >>> tree_unflatten(treedef, [10, 30, 20])
    (10, {'a': 30, 'b': 20})
    """
    return pytree.flatten(tree, is_leaf)


def tree_unflatten(treedef: TreeDef, leaves) -> Any:
    """The tree of structure ``treedef`` holding ``leaves`` (the inverse of ``tree_flatten``)."""
    return pytree.unflatten(treedef, leaves)


def tree_leaves(tree: Any, is_leaf: IsLeaf = None) -> list:
    """The leaves of ``tree``, in ``tree_flatten``'s order.

    >>> tree_leaves([1, (2, None), {"x": 3}])
    [1, 2, 3]
    """
    return pytree.flatten(tree, is_leaf)[0]


def tree_structure(tree: Any, is_leaf: IsLeaf = None) -> TreeDef:
    """The structure of ``tree`` (a hashable ``TreeDef``; ``str`` draws leaves as ``*``).

    >>> print(tree_structure({"w": 1.0, "b": (2.0, 3.0)}))
    {'b': (*, *), 'w': *}
    """
    return pytree.flatten(tree, is_leaf)[1]


def tree_map(f: Callable, tree: Any, *rest: Any, is_leaf: IsLeaf = None) -> Any:
    """A tree of the structure of ``tree`` holding ``f(leaf, *others)``, where ``others`` are
    the values at the same place in each tree of ``rest``. Each of ``rest`` must have the
    structure of ``tree``, or extend it: where ``tree`` has a leaf, the other may have a subtree,
    which ``f`` receives whole.

    >>> tree_map(lambda p, g: p - 0.1 * g, {"w": 1.0, "b": 2.0}, {"w": 10.0, "b": 0.0})
    {'b': 2.0, 'w': 0.0}
    >>> tree_map(lambda x: x is None, [None, 1])  # None is an empty node, not a leaf
    [None, False]
    """
    leaves, treedef = pytree.flatten(tree, is_leaf)
    others = [pytree.flatten_up_to(treedef, r, f"tree_map: tree {i + 1} of rest")
              for i, r in enumerate(rest)]
    return pytree.unflatten(treedef, [f(*xs) for xs in zip(leaves, *others)])


_NO_INITIAL = object()


def tree_reduce(function: Callable, tree: Any, initializer: Any = _NO_INITIAL,
                is_leaf: IsLeaf = None) -> Any:
    """``functools.reduce`` over the leaves of ``tree``.

    >>> tree_reduce(lambda a, b: a + b, {"x": 1, "y": [2, 3]})
    6
    """
    leaves = pytree.flatten(tree, is_leaf)[0]
    if initializer is _NO_INITIAL:
        return reduce(function, leaves)
    return reduce(function, leaves, initializer)


def register_pytree_node(nodetype: type, flatten_func: Callable, unflatten_func: Callable) -> None:
    """Make instances of ``nodetype`` pytree nodes. ``flatten_func(obj)`` returns
    ``(children, aux_data)``: a sequence of children (arrays or pytrees) and the hashable rest;
    ``unflatten_func(aux_data, children)`` builds the object back. It is also called with
    tracers or gradients as children, so it should store them without checking their type.

    >>> import numpy as np
    >>> class Linear:
    ...     def __init__(self, w, b, activation="tanh"):
    ...         self.w, self.b, self.activation = w, b, activation
    >>> register_pytree_node(Linear, lambda m: ((m.w, m.b), m.activation),
    ...                      lambda activation, wb: Linear(*wb, activation))
    >>> print(tree_structure(Linear(np.ones(2), 0.0)))
    Linear['tanh'](*, *)
    """
    pytree.register_node(nodetype, flatten_func, unflatten_func)


def register_pytree_node_class(cls: type) -> type:
    """Class decorator: register ``cls`` through its methods ``tree_flatten(self) ->
    (children, aux_data)`` and classmethod ``tree_unflatten(cls, aux_data, children)``.

    >>> @register_pytree_node_class
    ... class Pair:
    ...     def __init__(self, a, b):
    ...         self.a, self.b = a, b
    ...     def tree_flatten(self):
    ...         return (self.a, self.b), None
    ...     @classmethod
    ...     def tree_unflatten(cls, aux_data, children):
    ...         return cls(*children)
    >>> tree_map(lambda x: 2 * x, Pair(1, 2)).b
    4
    """
    pytree.register_node(cls, lambda obj: obj.tree_flatten(), cls.tree_unflatten)
    return cls


def register_dataclass(nodetype: type, data_fields=None, meta_fields=None) -> type:
    """Register a dataclass: ``data_fields`` are its children and ``meta_fields`` its aux data
    (hashable). By default every field is a data field except those declared with
    ``field(metadata={"static": True})``. Usable as a decorator; error messages name the
    children by field (``args[0].w``).

    >>> import dataclasses
    >>> @register_dataclass
    ... @dataclasses.dataclass
    ... class Params:
    ...     w: float
    ...     b: float
    ...     name: str = dataclasses.field(default="dense", metadata={"static": True})
    >>> print(tree_structure(Params(1.0, 2.0)))
    Params[('dense',)](w=*, b=*)
    >>> tree_leaves(Params(1.0, 2.0))
    [1.0, 2.0]
    """
    return pytree.register_dataclass_node(nodetype, data_fields, meta_fields)
