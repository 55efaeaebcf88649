"""tracejit.tree_util: flatten / unflatten / map over nested containers, and user classes
registered as pytree nodes, as arguments and results of compiled and differentiated functions."""
from __future__ import annotations

import collections
import dataclasses

import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp
from tracejit import tree_util
from tracejit.tree_util import (register_dataclass, register_pytree_node,
                                register_pytree_node_class, tree_flatten, tree_leaves, tree_map,
                                tree_structure, tree_unflatten)
from oracle import assert_same


# --- user classes, registered once at import (registration is global and once per class) ------

class Linear:
    """Registered with functions; ``activation`` is aux data (static, part of the cache key)."""

    def __init__(self, w, b, activation="tanh"):
        self.w, self.b, self.activation = w, b, activation


register_pytree_node(Linear, lambda m: ((m.w, m.b), m.activation),
                     lambda activation, children: Linear(*children, activation))


@register_pytree_node_class
class MLP:
    """A registered class whose children are themselves registered nodes, in a list."""

    def __init__(self, layers):
        self.layers = layers

    def tree_flatten(self):
        return (self.layers,), None

    @classmethod
    def tree_unflatten(cls, aux_data, children):
        return cls(*children)


@register_dataclass
@dataclasses.dataclass
class Params:
    w: object
    b: object
    scale: float = dataclasses.field(default=1.0, metadata={"static": True})


Point = collections.namedtuple("Point", ["x", "y"])


class Unhashable:
    def __init__(self, x):
        self.x = x


register_pytree_node(Unhashable, lambda u: ([u.x], ["a list"]), lambda aux, c: Unhashable(*c))


class BadFlatten:
    pass


register_pytree_node(BadFlatten, lambda obj: 42, lambda aux, c: BadFlatten())


# --- flatten / unflatten / structure ----------------------------------------------------------

TREES = [
    ("leaf", np.ones(2), 1),
    ("none", None, 0),
    ("nested", {"b": (1.0, [2.0, None]), "a": {"z": 3, "y": ()}}, 3),
    ("empty containers", ([], {}, ()), 0),
    ("namedtuple", Point(np.zeros(1), [1, 2]), 3),
    ("registered", Linear(np.ones((2, 3)), np.zeros(3), "relu"), 2),
    ("registered in registered", MLP([Linear(1.0, 2.0), Linear(3.0, 4.0, "gelu")]), 4),
    ("dataclass", Params(np.ones(2), {"k": 1.0}, 0.5), 2),
]


def _same_tree(a, b) -> None:
    """Equal structure (classes included) and equal leaves."""
    la, ta = tree_flatten(a)
    lb, tb = tree_flatten(b)
    assert ta == tb and len(la) == len(lb)
    for x, y in zip(la, lb):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("name,tree,n", TREES, ids=[t[0] for t in TREES])
def test_flatten_unflatten_round_trip(name, tree, n):
    leaves, treedef = tree_flatten(tree)
    assert len(leaves) == n == treedef.num_leaves
    rebuilt = tree_unflatten(treedef, leaves)
    assert type(rebuilt) is type(tree)
    _same_tree(rebuilt, tree)
    # built afresh on every call, equal and hashable: usable in a cache key
    assert tree_structure(tree) == treedef and hash(tree_structure(tree)) == hash(treedef)
    _same_tree(treedef.unflatten(leaves), tree)


def test_leaf_order_and_printed_structure():
    tree = {"b": (1, [2, None]), "a": Point(3, 4), "c": Linear(5, 6), "d": Params(7, 8)}
    assert tree_leaves(tree) == [3, 4, 1, 2, 5, 6, 7, 8]  # dict keys sorted, then in order
    assert str(tree_structure(tree)) == ("{'a': Point(x=*, y=*), 'b': (*, [*, None]), "
                                         "'c': Linear['tanh'](*, *), "
                                         "'d': Params[(1.0,)](w=*, b=*)}")


def test_structures_differ_by_container_keys_and_aux_data():
    structures = [tree_structure(t) for t in
                  [(1, 2), [1, 2], Point(1, 2), {"a": 1, "b": 2}, {"a": 1, "c": 2},
                   Linear(1, 2), Linear(1, 2, "relu"), Params(1, 2), Params(1, 2, 2.0)]]
    assert len(set(structures)) == len(structures)


def test_unflatten_checks_the_number_of_leaves():
    treedef = tree_structure({"a": 1, "b": (2, 3)})
    with pytest.raises(ValueError, match="too few leaves"):
        tree_unflatten(treedef, [1, 2])
    with pytest.raises(ValueError, match="too many leaves"):
        tree_unflatten(treedef, [1, 2, 3, 4])


def test_is_leaf_stops_the_descent():
    tree = {"pair": (1, 2), "x": [3]}
    leaves, treedef = tree_flatten(tree, is_leaf=lambda n: isinstance(n, tuple))
    assert leaves == [(1, 2), 3]
    assert tree_unflatten(treedef, ["p", 30]) == {"pair": "p", "x": [30]}
    assert tree_leaves(Linear(1, 2), is_leaf=lambda n: isinstance(n, Linear))[0].w == 1


# --- tree_map ---------------------------------------------------------------------------------

def test_tree_map_keeps_structure_and_classes():
    model = MLP([Linear(np.ones(2), np.zeros(2), "relu"), Linear(np.ones(1), 1.0)])
    doubled = tree_map(lambda a: a * 2, model)
    assert isinstance(doubled, MLP) and [m.activation for m in doubled.layers] == ["relu", "tanh"]
    np.testing.assert_array_equal(doubled.layers[0].w, [2.0, 2.0])
    assert doubled.layers[1].b == 2.0
    assert tree_map(lambda x: x + 1, {"a": [1, None, (2,)]}) == {"a": [2, None, (3,)]}
    assert tree_map(lambda x: x, None) is None


def test_tree_map_over_several_trees():
    params = Params(np.ones(2), np.zeros(2))
    grads = Params(np.full(2, 10.0), np.ones(2))
    new = tree_map(lambda p, g: p - 0.1 * g, params, grads)
    assert isinstance(new, Params) and new.scale == 1.0
    np.testing.assert_allclose(new.w, [0.0, 0.0])
    np.testing.assert_allclose(new.b, [-0.1, -0.1])
    # where the first tree has a leaf, the others may have a whole subtree
    assert tree_map(lambda a, b: (a, b), {"x": 1}, {"x": [2, 3]}) == {"x": (1, [2, 3])}
    assert tree_map(lambda a, b, c: a + b + c, [1, (2,)], [10, (20,)], [100, (200,)]) == \
        [111, (222,)]


@pytest.mark.parametrize("other,where", [
    ({"a": 1}, "its root"),  # keys differ
    ({"a": 1, "b": [2]}, r"\['b'\]"),  # a list where the first has a tuple
    ({"a": 1, "b": (2, 3)}, r"\['b'\]"),  # lengths differ
    ({"a": 1, "b": 5}, r"\['b'\]"),  # a leaf where the first has a node
], ids=["keys", "kind", "length", "leaf"])
def test_tree_map_names_where_structures_differ(other, where):
    with pytest.raises(ValueError, match=f"tree 1 of rest does not have the structure of the "
                                         f"first tree at {where}"):
        tree_map(lambda a, b: a, {"a": 1, "b": (2,)}, other)


def test_tree_map_compares_aux_data():
    with pytest.raises(ValueError, match="structure"):
        tree_map(lambda a, b: a, Linear(1, 2, "relu"), Linear(1, 2, "tanh"))


def test_tree_reduce():
    assert tree_util.tree_reduce(lambda a, b: a + b, Params(1, {"x": 2})) == 3
    assert tree_util.tree_reduce(max, [None], initializer=-1) == -1


# --- registration errors ----------------------------------------------------------------------

def test_registering_twice_or_a_built_in_is_an_error():
    with pytest.raises(ValueError, match="Linear is registered already"):
        register_pytree_node(Linear, lambda m: ((), None), lambda a, c: Linear(1, 2))
    with pytest.raises(ValueError, match="is a pytree node already"):
        register_pytree_node(dict, lambda d: ((), None), lambda a, c: {})
    with pytest.raises(TypeError, match="expected a class"):
        register_pytree_node(Linear(1, 2), lambda m: ((), None), lambda a, c: None)
    with pytest.raises(TypeError, match="must be callables"):
        register_pytree_node(type("Fresh", (), {}), None, None)
    with pytest.raises(TypeError, match="not a dataclass"):
        register_dataclass(type("NotADataclass", (), {}))


def test_unhashable_aux_data_is_a_clear_error():
    with pytest.raises(TypeError, match="Unhashable returned aux data that is not hashable"):
        tree_flatten(Unhashable(1.0))
    with pytest.raises(TypeError, match="not hashable"):
        tracejit.compile(lambda u: u.x * 2)(Unhashable(np.ones(2)))


def test_a_flatten_function_with_the_wrong_result_is_a_clear_error():
    with pytest.raises(TypeError, match=r"BadFlatten must return \(children, aux_data\)"):
        tree_leaves([BadFlatten()])


# --- compile --------------------------------------------------------------------------------

def _forward(model, x):
    for layer in model.layers:
        x = x @ layer.w + layer.b
        x = tnp.tanh(x) if layer.activation == "tanh" else tnp.maximum(x, 0.0)
    return x


def _model(rng, activations=("tanh", "relu")):
    sizes = [3, 4, 2]
    return MLP([Linear(rng.normal(size=(m, n)), rng.normal(size=n), a)
                for m, n, a in zip(sizes, sizes[1:], activations)])


def test_compile_takes_and_returns_registered_classes(jit, rng):
    def step(model, params, x):
        y = _forward(model, x)
        out = Params(y * params.scale, params.b + y.sum(), params.scale)
        return {"model": tree_map(lambda a: a * 2, model), "out": out, "p": Point(y, None)}

    model, x = _model(rng), rng.normal(size=(5, 3))
    params = Params(np.ones(2), np.float64(0.5), 3.0)
    got, expected = jit(step)(model, params, x), step(model, params, x)
    assert isinstance(got["model"], MLP) and isinstance(got["model"].layers[1], Linear)
    assert got["model"].layers[1].activation == "relu"
    assert isinstance(got["out"], Params) and got["out"].scale == 3.0
    assert isinstance(got["p"], Point) and got["p"].y is None
    assert_same(tree_leaves(got), tree_leaves(expected))


def test_aux_data_is_part_of_the_signature(rng):
    traces = []

    @tracejit.compile
    def f(model, x):
        traces.append(1)
        return _forward(model, x)

    x = rng.normal(size=(5, 3))
    model = _model(rng)
    f(model, x)
    f(tree_map(lambda a: a + 1, model), x)  # new values, same classes and aux data
    assert len(traces) == 1
    other = _model(rng, ("relu", "relu"))  # the activation is aux data: traced again
    np.testing.assert_allclose(f(other, x), _forward(other, x))
    assert len(traces) == 2


def test_errors_name_the_field_of_a_registered_argument(rng):
    f = tracejit.compile(lambda p: p.w * p.b)
    with pytest.raises(TypeError, match=r"argument args\[0\]\.b is a str"):
        f(Params(np.ones(2), "not an array"))
    g = tracejit.compile(lambda m: m.w * m.b)
    with pytest.raises(TypeError, match=r"argument args\[0\]\[1\] is a str"):
        g(Linear(np.ones(2), "not an array"))


# --- autodiff -------------------------------------------------------------------------------

def _loss(model, x):
    return (_forward(model, x) ** 2).mean()


def _numeric_grad(f, model, eps=1e-6):
    """Central differences of ``f`` for every coordinate of every leaf of ``model``."""
    leaves, treedef = tree_flatten(model)
    grads = []
    for i, leaf in enumerate(leaves):
        g = np.zeros_like(leaf)
        for j in np.ndindex(leaf.shape):
            plus, minus = [list(leaves) for _ in range(2)]
            plus[i], minus[i] = leaf.copy(), leaf.copy()
            plus[i][j] += eps
            minus[i][j] -= eps
            difference = f(tree_unflatten(treedef, plus)) - f(tree_unflatten(treedef, minus))
            g[j] = difference / (2 * eps)
        grads.append(g)
    return tree_unflatten(treedef, grads)


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_grad_with_respect_to_a_registered_class(compiled, rng):
    model, x = _model(rng), rng.normal(size=(5, 3))
    grad = tracejit.value_and_grad(_loss)
    if compiled:
        grad = tracejit.compile(grad)
    value, g = grad(model, x)
    assert isinstance(g, MLP) and all(isinstance(layer, Linear) for layer in g.layers)
    assert [layer.activation for layer in g.layers] == ["tanh", "relu"]
    np.testing.assert_allclose(value, _loss(model, x))
    expected = _numeric_grad(lambda m: _loss(m, x), model)
    for got, want in zip(tree_leaves(g), tree_leaves(expected)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


def test_grad_of_a_dataclass_and_an_sgd_step(rng):
    def loss(p, x):
        return ((x * p.w + p.b) ** 2).sum() * p.scale

    p, x = Params(rng.normal(size=3), np.float64(0.3), 2.0), rng.normal(size=3)
    g = tracejit.grad(loss)(p, x)
    assert isinstance(g, Params) and g.scale == 2.0
    np.testing.assert_allclose(g.w, 4.0 * x * (x * p.w + p.b))
    np.testing.assert_allclose(g.b, 4.0 * (x * p.w + p.b).sum())

    @tracejit.compile
    def sgd(p, x):
        return tree_map(lambda a, da: a - 0.1 * da, p, tracejit.grad(loss)(p, x))

    new = sgd(p, x)
    assert isinstance(new, Params)
    np.testing.assert_allclose(new.w, p.w - 0.1 * g.w)


def test_vjp_and_jvp_with_registered_classes():
    layer = Linear(np.array([1.0, 2.0]), np.array(3.0), "relu")
    out, pullback = tracejit.vjp(lambda m: Point(m.w * m.b, m.w.sum()), layer)
    assert isinstance(out, Point)
    (ct,) = pullback(Point(np.ones(2), np.array(1.0)))
    assert isinstance(ct, Linear) and ct.activation == "relu"
    np.testing.assert_allclose(ct.w, [3.0 + 1.0, 3.0 + 1.0])
    np.testing.assert_allclose(ct.b, 3.0)
    _, tangent = tracejit.jvp(lambda m: m.w * m.b, (layer,),
                              (Linear(np.ones(2), np.array(0.0), "relu"),))
    np.testing.assert_allclose(tangent, [3.0, 3.0])


def test_loop_carry_can_be_a_registered_class():
    def body(i, p):
        return Params(p.w * 2.0, p.b + 1.0, p.scale)

    f = tracejit.compile(lambda p: tracejit.fori_loop(0, 3, body, p))
    out = f(Params(np.ones(2), np.float64(0.0), 1.5))
    assert isinstance(out, Params) and out.scale == 1.5
    np.testing.assert_allclose(out.w, [8.0, 8.0])
    np.testing.assert_allclose(out.b, 3.0)
