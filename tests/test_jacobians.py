"""jacfwd, jacrev and hessian built on vmap: against finite differences and a loop of JVPs or
VJPs (the oracle, kept here), graph sizes that do not grow with the input, batched and compiled
Hessians."""
import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp


# --- Jacobians on vmap -----------------------------------------------------------------------

def _numeric_jacobian(f, x, eps=1e-6):
    cols = []
    for k in range(x.size):
        e = np.zeros(x.size)
        e[k] = eps
        e = e.reshape(x.shape)
        cols.append((np.asarray(f(x + e)) - np.asarray(f(x - e))) / (2 * eps))
    return np.stack(cols, axis=-1).reshape(np.shape(f(x)) + x.shape)


def _basis(x):
    """The rows of the identity over x's elements, each shaped like x."""
    size = int(np.prod(np.shape(x), dtype=np.int64))
    return np.eye(size, dtype=x.dtype).reshape((size,) + tuple(np.shape(x)))


def loop_jacfwd(f):
    """The oracle: the Jacobian as it was built before vmap, one JVP per input element in a
    Python loop (stacked with tnp, so it works on traced values too: a loop hessian)."""
    def jac(x):
        columns = [tracejit.jvp(f, (x,), (e,))[1] for e in _basis(x)]
        return tnp.reshape(tnp.stack(columns, axis=-1),
                           tuple(np.shape(columns[0])) + tuple(np.shape(x)))
    return jac


def loop_jacrev(f):
    """The oracle: one VJP per output element in a Python loop."""
    def jac(x):
        out, pullback = tracejit.vjp(f, x)
        rows = [pullback(e)[0] for e in _basis(out)]
        return tnp.reshape(tnp.stack(rows), tuple(np.shape(out)) + tuple(np.shape(x)))
    return jac


def jac_fun(x):
    return tnp.tanh(x[:, None] * x[None, :]).sum(axis=0) * tnp.sin(x)


@pytest.mark.parametrize("jac", ["jacfwd", "jacrev"])
def test_jacobians_against_finite_differences_and_the_loop(jac, rng):
    x = rng.standard_normal(4)
    got = getattr(tracejit, jac)(jac_fun)(x)
    np.testing.assert_allclose(got, _numeric_jacobian(jac_fun, x), rtol=1e-6, atol=1e-8)
    oracle = loop_jacfwd if jac == "jacfwd" else loop_jacrev
    np.testing.assert_allclose(got, oracle(jac_fun)(x), rtol=1e-12)


@pytest.mark.parametrize("jac", ["jacfwd", "jacrev", "hessian"])
def test_jacobian_graph_size_does_not_grow_with_the_input(jac):
    f = (lambda x: (tnp.sin(x) * x).sum()) if jac == "hessian" else jac_fun
    sizes = [len(tracejit.make_ir(getattr(tracejit, jac)(f))(np.linspace(0.1, 1, n)).eqns)
             for n in (2, 5, 9)]
    assert len(set(sizes)) == 1, sizes


def test_hessian_against_the_loop_and_compiled(rng):
    f = lambda x: (tnp.exp(x[:2]) * tnp.cos(x[1:])).sum()  # noqa: E731
    x = rng.standard_normal(3)
    expected = loop_jacfwd(loop_jacrev(f))(x)
    np.testing.assert_allclose(tracejit.hessian(f)(x), expected, rtol=1e-12)
    np.testing.assert_allclose(tracejit.hessian(f)(x), _numeric_jacobian(tracejit.grad(f), x),
                               rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(tracejit.compile(tracejit.hessian(f), backend="interpreter")(x),
                               expected, rtol=1e-12)


def test_batched_jacobians_and_hessians(rng):
    """vmap of a Jacobian (vmap inside vmap, over jvp/vjp) against one per example."""
    xs = rng.standard_normal((4, 3))
    f = lambda x: (tnp.sin(x) * x.sum()).sum()  # noqa: E731
    for transform in (tracejit.jacrev, tracejit.jacfwd, tracejit.hessian):
        fn = transform(tracejit.grad(f)) if transform is not tracejit.hessian else transform(f)
        got = tracejit.vmap(fn)(xs)
        np.testing.assert_allclose(got, np.stack([fn(x) for x in xs]), rtol=1e-12)
