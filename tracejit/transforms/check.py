"""``check_grads``: derivatives checked against central finite differences, for users and tests.

Random projections keep it cheap for any number of inputs and outputs: forward mode compares
``J v`` with ``(f(x + eps v) - f(x - eps v)) / 2 eps`` for a random direction v; reverse mode
compares ``<u, J v>`` with ``<vjp(u), v>`` for random u and v (so it is checked against forward
mode, itself checked against differences). ``order=2`` applies the same checks to the first
derivatives, and so on.
"""
from __future__ import annotations

import numpy as np

from .. import pytree
from .autodiff import jvp, vjp

_EPS = {np.dtype(np.float64): 1e-6, np.dtype(np.float32): 3e-3, np.dtype(np.float16): 1e-1}
_TOL = {np.dtype(np.float64): 1e-5, np.dtype(np.float32): 2e-2, np.dtype(np.float16): 2e-1}


def _float_leaves(args):
    leaves, tree = pytree.flatten(tuple(args))
    leaves = [np.asarray(v) for v in leaves]
    for v in leaves:
        if v.dtype.kind != "f":
            raise TypeError(f"check_grads: every argument must be floating point, got {v.dtype}")
    return leaves, tree


def _random_like(leaves, rng):
    return [rng.standard_normal(v.shape).astype(v.dtype) for v in leaves]


def _vdot(a_leaves, b_leaves):
    return sum(float(np.sum(np.asarray(a, np.float64) * np.asarray(b, np.float64)))
               for a, b in zip(a_leaves, b_leaves))


def _assert_close(name, got, expected, tol):
    got, expected = np.asarray(got, np.float64), np.asarray(expected, np.float64)
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    if not np.allclose(got, expected, rtol=tol, atol=tol * scale, equal_nan=True):
        raise AssertionError(f"check_grads ({name}): derivative {got} differs from the "
                             f"reference {expected} (tolerance {tol})")


def check_grads(fun, args, order=2, modes=("fwd", "rev"), eps=None, tol=None, seed=0):
    """Raise AssertionError if ``fun``'s derivatives at ``args`` disagree with finite
    differences (``fwd``) or with forward mode (``rev``), recursively up to ``order``.

    >>> import numpy as np, tracejit, tracejit.numpy as tnp
    >>> tracejit.check_grads(lambda x: tnp.tanh(x) * x, (np.linspace(-1, 1, 5),), order=2)
    """
    rng = np.random.default_rng(seed)
    leaves, tree = _float_leaves(args)
    dtype = np.result_type(*[v.dtype for v in leaves])
    eps = eps if eps is not None else _EPS[np.dtype(dtype)]
    tol = tol if tol is not None else _TOL[np.dtype(dtype)]
    unpack = lambda flat: pytree.unflatten(tree, flat)  # noqa: E731
    call = lambda flat: fun(*unpack(flat))  # noqa: E731

    direction = _random_like(leaves, rng)
    if "fwd" in modes:
        _, tangent_out = jvp(fun, unpack(leaves), unpack(direction))
        plus = call([x + eps * v for x, v in zip(leaves, direction)])
        minus = call([x - eps * v for x, v in zip(leaves, direction)])
        numeric = [(np.asarray(p, np.float64) - np.asarray(m, np.float64)) / (2 * eps)
                   for p, m in zip(pytree.flatten(plus)[0], pytree.flatten(minus)[0])]
        for got, expected in zip(pytree.flatten(tangent_out)[0], numeric):
            _assert_close("forward mode vs finite differences", got, expected, tol)
    if "rev" in modes:
        out, pullback = vjp(fun, *unpack(leaves))
        out_leaves, out_tree = pytree.flatten(out)
        u = _random_like([np.asarray(o) for o in out_leaves], rng)
        cts = pytree.flatten(pullback(pytree.unflatten(out_tree, u)))[0]
        _, tangent_out = jvp(fun, unpack(leaves), unpack(direction))
        _assert_close("reverse mode vs forward mode", _vdot(cts, direction),
                      _vdot(u, pytree.flatten(tangent_out)[0]), tol)

    if order > 1:
        if "fwd" in modes:
            def first_fwd(*xs):
                return jvp(fun, xs, unpack(direction))[1]
            check_grads(first_fwd, args, order - 1, ("fwd",), eps, tol, seed + 1)
        if "rev" in modes:
            out_leaves, out_tree = pytree.flatten(call(leaves))
            u = _random_like([np.asarray(o) for o in out_leaves], rng)

            def first_rev(*xs):
                return vjp(fun, *xs)[1](pytree.unflatten(out_tree, u))
            check_grads(first_rev, args, order - 1, ("rev",), eps, tol, seed + 1)
