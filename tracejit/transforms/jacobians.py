"""``jacfwd``, ``jacrev`` and ``hessian`` built on ``vmap``: one batched JVP (or VJP) over the
basis vectors, instead of one per element.

``jacfwd(f)(x)`` is ``vmap`` of ``t -> jvp(f, (x,), (t,))`` over the rows of the identity;
``jacrev(f)(x)`` runs ``f`` forward once and maps its pullback over the identity of the
output's size. Either way the function is traced once, so the graph of ``make_ir(jacrev(f))(x)``
has as many equations whatever the size of ``x`` (a loop of one JVP or VJP per element grows
with it), and what does not depend on the direction (the forward pass, a factorisation) is
computed once for all of them.
"""
from __future__ import annotations

import functools

import numpy as np

from ..primitives import REGISTRY
from ..primitives import ad_support as A
from ..tracing import current_graph_trace
from .autodiff import _one_argument, jvp, vjp
from .vmap import vmap


def _identity(shape, dtype):
    """The rows of the identity over an array of ``shape``: shape (size,) + shape. Under a
    graph being traced it is made by equations (two iotas compared), not baked in as a
    size x size constant."""
    size = int(np.prod(shape, dtype=np.int64))
    graph = current_graph_trace()
    if graph is None:
        return np.eye(size, dtype=dtype).reshape((size,) + tuple(shape))
    rows, cols = (graph.process(REGISTRY["iota"], [], {"shape": (size, size),
                                                       "dtype": np.dtype(np.int64),
                                                       "dimension": d})[0] for d in (0, 1))
    eye = REGISTRY["convert"].bind(REGISTRY["eq"].bind(rows, cols), dtype=np.dtype(dtype))
    return REGISTRY["reshape"].bind(eye, shape=(size,) + tuple(shape))


def _reshaped(value, shape):
    from .. import numpy as tnp  # ordinary (possibly traced) array code
    return tnp.reshape(value, tuple(shape))


def jacfwd(fun, argnums=0):
    """The Jacobian by forward mode, shape out.shape + x.shape: ``vmap`` of ``jvp`` over the
    basis vectors of x.

    >>> import numpy as np, tracejit, tracejit.numpy as tnp
    >>> tracejit.jacfwd(lambda x: x * x)(np.array([1.0, 2.0]))
    array([[2., 0.],
           [0., 4.]])
    """
    @functools.wraps(fun, updated=())
    def jacfwd_fn(*args, **kwargs):
        x, partial = _one_argument(fun, args, kwargs, argnums, "jacfwd")
        if 0 in np.shape(x):
            out = partial(x)
            return A.full_like(out, 0, shape=tuple(np.shape(out)) + tuple(np.shape(x)))
        columns = vmap(lambda t: jvp(partial, (x,), (t,))[1], out_axes=-1)(
            _identity(np.shape(x), x.dtype))
        return _reshaped(columns, tuple(np.shape(columns))[:-1] + tuple(np.shape(x)))

    return jacfwd_fn


def jacrev(fun, argnums=0):
    """The Jacobian by reverse mode, shape out.shape + x.shape: one forward pass, and
    ``vmap`` of its pullback over the basis vectors of the output.

    >>> import numpy as np, tracejit, tracejit.numpy as tnp
    >>> tracejit.jacrev(lambda x: x * x)(np.array([1.0, 2.0]))
    array([[2., 0.],
           [0., 4.]])
    """
    @functools.wraps(fun, updated=())
    def jacrev_fn(*args, **kwargs):
        x, partial = _one_argument(fun, args, kwargs, argnums, "jacrev")
        out, pullback = vjp(partial, x)
        out_shape, x_shape = tuple(np.shape(out)), tuple(np.shape(x))
        if 0 in out_shape or 0 in x_shape:
            return A.full_like(x, 0, shape=out_shape + x_shape)
        rows = vmap(lambda ct: pullback(ct)[0])(_identity(out_shape, out.dtype))
        return _reshaped(rows, out_shape + x_shape)

    return jacrev_fn


def hessian(fun, argnums=0):
    """The Hessian: ``jacfwd(jacrev(fun))``, shape x.shape + x.shape for a scalar fun.

    >>> import numpy as np, tracejit
    >>> tracejit.hessian(lambda x: (x ** 3).sum())(np.array([1.0, 2.0]))
    array([[ 6.,  0.],
           [ 0., 12.]])
    """
    return jacfwd(jacrev(fun, argnums), argnums)


__all__ = ["hessian", "jacfwd", "jacrev"]
