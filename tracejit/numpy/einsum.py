"""``einsum`` with any number of operands, contracted pairwise left to right with dot_general.

Each operand is first reduced to distinct labels (repeated labels take a diagonal through
``gather``; labels used nowhere else are summed out), then operands are contracted two at a time:
labels shared by the pair and still needed later are batch dims, the rest of the shared ones are
summed. A final transpose puts the labels in the requested output order.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from . import _prims as P
from ._dispatch import implements


def _parse(subscripts, ndims):
    subscripts = subscripts.replace(" ", "")
    if "->" in subscripts:
        inputs, output = subscripts.split("->")
    else:
        inputs, output = subscripts, None
    terms = inputs.split(",")
    if len(terms) != len(ndims):
        raise P.user_error(ValueError, f"einsum: {len(terms)} subscript terms for "
                                       f"{len(ndims)} operands")
    used = set(subscripts) - set(".,->")
    spare = iter(c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" if c not in used)
    ell_rank = max((nd - len(t.replace("...", "")) for t, nd in zip(terms, ndims) if "..." in t),
                   default=0)
    ell = "".join(next(spare) for _ in range(ell_rank))
    expanded = []
    for t, nd in zip(terms, ndims):
        if "..." in t:
            k = nd - len(t.replace("...", ""))
            t = t.replace("...", ell[ell_rank - k:] if k else "")
        if len(t) != nd or not t.isalpha():
            raise P.user_error(ValueError, f"einsum: subscripts {t!r} do not match an operand "
                                           f"with {nd} dimension(s)")
        expanded.append(t)
    if output is None:
        counts = {c: "".join(expanded).count(c) for c in set("".join(expanded))}
        output = ell + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ell))
    else:
        output = output.replace("...", ell)
    if len(set(output)) != len(output) or any(c not in "".join(expanded) for c in output):
        raise P.user_error(ValueError, f"einsum: bad output subscripts {output!r}")
    return expanded, output


def _diagonal(x, labels, trace):
    """Take the diagonal over repeated labels so every label appears once."""
    while len(set(labels)) != len(labels):
        c = next(c for c in labels if labels.count(c) > 1)
        i, j = [k for k, d in enumerate(labels) if d == c][:2]
        n = x.shape[i]
        ramp = P.iota((n,), np.int64, 0, trace)
        x = P.gather(x, [ramp, ramp], (i, j))  # that label first, then the others in order
        labels = c + "".join(d for k, d in enumerate(labels) if k not in (i, j))
    return x, labels


def _sum_out(x, labels, keep):
    axes = [k for k, c in enumerate(labels) if c not in keep]
    return P.reduce("sum", x, axes), "".join(c for c in labels if c in keep)


@implements(np.einsum)
def einsum(subscripts, *operands, out=None, dtype=None, order="K", casting="safe",
           optimize=False):
    if out is not None:
        raise P.user_error(NotImplementedError, "einsum(out=...) is not supported")
    if not isinstance(subscripts, str):
        raise P.user_error(NotImplementedError, "einsum: only the subscripts-string form")
    trace = P.the_trace(*operands)
    xs = [P.lift(a, trace) for a in operands]
    result_dtype = dtypes.result_type(*[(x.dtype, False) for x in xs])[0] if dtype is None else \
        dtypes.canonical_dtype(dtype)
    xs = [P.convert(x, result_dtype) for x in xs]
    terms, output = _parse(subscripts, [x.ndim for x in xs])

    sizes: dict[str, int] = {}
    for x, t in zip(xs, terms):
        for c, n in zip(t, x.shape):
            if sizes.get(c, 1) not in (1, n) and n != 1:
                raise P.user_error(ValueError, (
                    f"einsum: size of label '{c}' differs between operands: {sizes[c]} and {n}"))
            if sizes.get(c, 1) == 1:  # (not max: a size 0 wins over a broadcast 1)
                sizes[c] = n
    # Size-1 dims broadcast against the other operands' sizes.
    xs = [P.broadcast_to(x, tuple(sizes[c] for c in t)) for x, t in zip(xs, terms)]

    ops = []
    for k, (x, t) in enumerate(zip(xs, terms)):
        x, t = _diagonal(x, t, trace)
        elsewhere = set(output).union(*[set(u) for m, u in enumerate(terms) if m != k])
        ops.append(_sum_out(x, t, elsewhere))

    x, lx = ops[0]
    for m, (y, ly) in enumerate(ops[1:], start=1):
        later = set(output).union(*[set(u) for _, u in ops[m + 1:]])
        shared = [c for c in lx if c in ly]
        batch = [c for c in shared if c in later]
        contract = [c for c in shared if c not in later]
        x = P.dot_general(x, y, contract=([lx.index(c) for c in contract],
                                          [ly.index(c) for c in contract]),
                          batch=([lx.index(c) for c in batch], [ly.index(c) for c in batch]))
        lx = "".join(batch) + "".join(c for c in lx if c not in shared) + \
            "".join(c for c in ly if c not in shared)
    x, lx = _sum_out(x, lx, set(output))
    return P.transpose(x, [lx.index(c) for c in output])
