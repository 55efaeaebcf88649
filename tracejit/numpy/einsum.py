"""``einsum`` with any number of operands, contracted pairwise left to right with dot_general.

Both of NumPy's calling forms are accepted: the subscripts string (``einsum("ij,jk->ik", a,
b)``) and the operand list (``einsum(a, [0, 1], b, [1, 2], [0, 2])``, labels 0-51 standing
for the letters A-Z, a-z, ``Ellipsis`` for ``...``); the second is turned into the first.

Each operand is first reduced to distinct labels (repeated labels take a diagonal through
``gather``; labels used nowhere else are summed out), then operands are contracted two at a time:
labels shared by the pair and still needed later are batch dims, the rest of the shared ones are
summed. A final transpose puts the labels in the requested output order. A label of size 1 in
one operand broadcasts against the others, a size of 0 included (the label has size 0).
"""
from __future__ import annotations

import operator
import string

import numpy as np

from .. import dtypes
from . import _prims as P
from ._dispatch import implements

_LETTERS = string.ascii_uppercase + string.ascii_lowercase  # NumPy's sublist labels 0..51
_NO_ELLIPSIS = ("has more dimensions than subscripts given in einstein sum, but no '...' "
                "ellipsis provided to broadcast the extra dimensions.")


def _sublist_term(sublist) -> str:
    """One operand-list sublist as subscripts text (``[0, Ellipsis, 27]`` -> ``"A...b"``)."""
    if P.is_traced(sublist) or not isinstance(sublist, (list, tuple, np.ndarray)):
        raise P.user_error(TypeError, "einsum: the subscripts for each operand must be a list "
                                      "or a tuple (of ints 0-51 and Ellipsis)")
    term = []
    for label in (sublist.tolist() if isinstance(sublist, np.ndarray) else sublist):
        if label is Ellipsis:
            term.append("...")
            continue
        if isinstance(label, (bool, np.bool_)) or P.is_traced(label):
            label = None  # (not an int label: refused below)
        try:
            k = operator.index(label)
        except TypeError:
            raise P.user_error(TypeError, "einsum: each subscript must be either an integer or "
                                          "an ellipsis") from None
        if not 0 <= k < len(_LETTERS):
            raise P.user_error(ValueError, "einsum: subscript is not within the valid range "
                                           f"[0, {len(_LETTERS)})")
        term.append(_LETTERS[k])
    return "".join(term)


def _from_operand_list(args):
    """``(a, sub_a, b, sub_b, ..., [sub_out])`` as (subscripts string, operands)."""
    pairs = len(args) // 2
    operands = [args[2 * k] for k in range(pairs)]
    text = ",".join(_sublist_term(args[2 * k + 1]) for k in range(pairs))
    if len(args) % 2:
        text += "->" + _sublist_term(args[-1])
    return text, operands


def _check_term(term, where):
    """Letters, and at most one ``...``; NumPy's messages otherwise."""
    if term.count("...") > 1:
        raise P.user_error(ValueError, f"einsum: {where} has more than one ellipsis ('...')")
    rest = term.replace("...", "", 1)
    for c in rest:
        if c == ".":
            raise P.user_error(ValueError, "einstein sum subscripts string contains a '.' that "
                                           f"is not part of an ellipsis ('...') in {where}")
        if c not in _LETTERS:
            raise P.user_error(ValueError, f"invalid subscript {c!r} in einstein sum subscripts "
                                           "string, subscripts must be letters")


def _parse(subscripts, ndims):
    """(one label string per operand with the ellipsis expanded, output labels)."""
    subscripts = subscripts.replace(" ", "")
    if subscripts.count("->") > 1 or subscripts.count("-") != subscripts.count("->") or \
            subscripts.count(">") != subscripts.count("->"):
        raise P.user_error(ValueError, "einsum: the subscripts string must have at most one "
                                       "'->' (and no other '-' or '>')")
    inputs, output = subscripts.split("->") if "->" in subscripts else (subscripts, None)
    terms = inputs.split(",")
    if len(terms) != len(ndims):
        more = "more" if len(ndims) > len(terms) else "fewer"
        raise P.user_error(ValueError, f"{more} operands provided to einstein sum function than "
                                       f"specified in the subscripts string ({len(terms)} "
                                       f"terms, {len(ndims)} operands)")
    for k, t in enumerate(terms):
        _check_term(t, f"operand {k}")
        named = len(t.replace("...", ""))
        if named > ndims[k]:
            raise P.user_error(ValueError, "einstein sum subscripts string contains too many "
                                           f"subscripts for operand {k}")
        if named < ndims[k] and "..." not in t:
            raise P.user_error(ValueError, f"operand {k} {_NO_ELLIPSIS}")
    if output is not None:
        _check_term(output, "the output")

    used = set(subscripts)
    spare = iter(c for c in _LETTERS if c not in used)
    ell_rank = max((nd - len(t.replace("...", "")) for t, nd in zip(terms, ndims) if "..." in t),
                   default=0)
    ell = "".join(next(spare) for _ in range(ell_rank))
    expanded = []
    for t, nd in zip(terms, ndims):
        if "..." in t:
            k = nd - len(t.replace("...", ""))
            t = t.replace("...", ell[ell_rank - k:])
        expanded.append(t)
    labels = "".join(expanded)
    if output is None:
        once = sorted(c for c in set(labels) if labels.count(c) == 1 and c not in ell)
        return expanded, ell + "".join(once)
    if ell_rank and "..." not in output:
        raise P.user_error(ValueError, f"output {_NO_ELLIPSIS}")
    output = output.replace("...", ell)
    for c in output:
        if output.count(c) > 1:
            raise P.user_error(ValueError, "einstein sum subscripts string includes output "
                                           f"subscript {c!r} multiple times")
        if c not in labels:
            raise P.user_error(ValueError, "einstein sum subscripts string included output "
                                           f"subscript {c!r} which never appeared in an input")
    return expanded, output


def _label_sizes(xs, terms):
    """The size of every label. Within one operand a repeated label's dims must be equal;
    across operands a size of 1 broadcasts (against any size, 0 included).

    (NumPy 2.4 lets a repeated label whose first dim is 0 take the size of the next one:
    ``np.einsum("ii->i", np.ones((0, 2)))`` has shape (2,), a diagonal of an empty array.
    That is refused here, like the same shape the other way round.)"""
    sizes: dict[str, int] = {}
    for k, (x, t) in enumerate(zip(xs, terms)):
        own: dict[str, int] = {}
        for c, n in zip(t, x.shape):
            if own.setdefault(c, n) != n:
                raise P.user_error(ValueError, f"dimensions in operand {k} for collapsing index "
                                               f"'{c}' don't match ({own[c]} != {n})")
        for c, n in own.items():
            seen = sizes.get(c, 1)
            if seen != 1 and n != 1 and seen != n:
                raise P.user_error(ValueError, f"einsum: size of label '{c}' differs between "
                                               f"operands: {seen} and {n}")
            if seen == 1:  # (not max(seen, n): a size 0 wins over a broadcast 1)
                sizes[c] = n
    return sizes


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
def einsum(*operands, out=None, dtype=None, order="K", casting="safe", optimize=False):
    """NumPy's ``einsum``, both forms (subscripts string, or operand list).

    >>> import numpy as np, tracejit, tracejit.numpy as tnp
    >>> a, b = np.arange(6.0).reshape(2, 3), np.arange(12.0).reshape(3, 4)
    >>> f = tracejit.compile(lambda a, b: tnp.einsum(a, [0, 1], b, [1, 2], [0, 2]))
    >>> bool(np.array_equal(f(a, b), a @ b))
    True
    """
    if out is not None:
        raise P.user_error(NotImplementedError, "einsum(out=...) is not supported")
    if not operands:
        raise P.user_error(ValueError, "must specify the einstein sum subscripts string and at "
                                       "least one operand, or at least one operand and its "
                                       "corresponding subscripts list")
    if isinstance(operands[0], str):
        subscripts, arrays = operands[0], operands[1:]
    else:
        subscripts, arrays = _from_operand_list(operands)
    if not arrays:
        raise P.user_error(ValueError, "must specify the einstein sum subscripts string and at "
                                       "least one operand")
    trace = P.the_trace(*arrays)
    xs = [P.lift(a, trace) for a in arrays]
    if dtype is None:
        result_dtype = dtypes.result_type(*[(x.dtype, False) for x in xs])[0]
    else:
        result_dtype = dtypes.canonical_dtype(dtype)
        for k, x in enumerate(xs):
            if not np.can_cast(x.dtype, result_dtype, casting):
                raise P.user_error(TypeError, (
                    f"Iterator operand {k} dtype could not be cast from {x.dtype!r} to "
                    f"{result_dtype!r} according to the rule {casting!r}"))
    xs = [P.convert(x, result_dtype) for x in xs]
    terms, output = _parse(subscripts, [x.ndim for x in xs])
    sizes = _label_sizes(xs, terms)
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
