"""``pad``: NumPy's modes (constant, edge, reflect, symmetric, wrap, empty) as slices,
reversals and concatenations along each axis; its derivative is theirs."""
from __future__ import annotations

import numpy as np

from . import _prims as P
from ._dispatch import implements
from .manipulation import broadcast_to, reshape
from .ufuncs import subtract


# --- pad: NumPy's modes as slices, reversals and concatenations along each axis --------------

_PAD_KEYWORDS = {"constant": ("constant_values",), "edge": (), "wrap": (), "empty": (),
                 "reflect": ("reflect_type",), "symmetric": ("reflect_type",),
                 "linear_ramp": ("end_values",), "maximum": ("stat_length",),
                 "mean": ("stat_length",), "median": ("stat_length",),
                 "minimum": ("stat_length",)}
_PAD_TRACED_MODES = ("constant", "edge", "reflect", "symmetric", "wrap", "empty")


def _as_pairs(values, ndim):
    """NumPy's forms of a per-side pad argument as one (before, after) pair per axis: one value
    for every side; (before, after) for every axis; or one pair per axis (broadcast to
    (ndim, 2)). ``values`` is a NumPy array or a tracer."""
    if values.size == 1:
        one = reshape(values, ())
        return [(one, one)] * ndim
    if values.size == 2 and values.shape != (2, 1):
        flat = reshape(values, (2,))
        return [(flat[0], flat[1])] * ndim
    if P.is_traced(values):
        pairs = broadcast_to(values, (ndim, 2))
    else:
        try:
            pairs = np.broadcast_to(values, (ndim, 2))
        except ValueError as e:
            raise P.user_error(ValueError, str(e)) from None
    return [(pairs[i, 0], pairs[i, 1]) for i in range(ndim)]


def _pad_widths(pad_width, ndim):
    if P.any_traced([pad_width]):
        raise P.user_error(TypeError, "pad(): `pad_width` sets the output shape, so it must be "
                                      "Python ints, not a traced value")
    widths = np.asarray(pad_width)
    if widths.dtype.kind != "i":
        raise P.user_error(TypeError, "`pad_width` must be of integral type.")
    if widths.size and widths.min() < 0:
        raise P.user_error(ValueError, "index can't contain negative values")
    return [(int(lo), int(hi)) for lo, hi in _as_pairs(widths, ndim)]


def _pad_constant(x, widths, values, trace):
    if P.any_traced([values]):
        pairs = [tuple(P.convert(v, x.dtype) for v in pair)
                 for pair in _as_pairs(P.lift(values, trace), x.ndim)]
        same = [before is after for before, after in pairs]
    else:  # stored as NumPy stores them: cast to x's dtype (wrapping integers, truncating floats)
        pairs = [tuple(np.asarray(v).astype(x.dtype) for v in pair)
                 for pair in _as_pairs(np.asarray(values), x.ndim)]
        same = [np.array_equal(before, after) for before, after in pairs]
        pairs = [tuple(trace.lift(v) for v in pair) for pair in pairs]
    # Axis by axis, so corners hold the values of the last axis, as in NumPy.
    for ax, ((lo, hi), (before, after)) in enumerate(zip(widths, pairs)):
        config = [(0, 0, 0)] * x.ndim
        if same[ax]:
            config[ax] = (lo, hi, 0)
            x = P.pad(x, before, config)
            continue
        config[ax] = (lo, 0, 0)
        x = P.pad(x, before, config)
        config[ax] = (0, hi, 0)
        x = P.pad(x, after, config)
    return x


def _pad_edge(x, ax, lo, hi):
    n = x.shape[ax]
    shape = list(x.shape)
    pieces = []
    if lo:
        shape[ax] = lo
        pieces.append(P.broadcast_to(P.slice_axis(x, ax, 0, 1), shape))
    pieces.append(x)
    if hi:
        shape[ax] = hi
        pieces.append(P.broadcast_to(P.slice_axis(x, ax, n - 1, n), shape))
    return P.concatenate(pieces, ax)


def _pad_wrap(x, ax, lo, hi):
    n = x.shape[ax]
    left, right = -(-lo // n), -(-hi // n)  # whole copies needed on each side
    if not left + right:
        return x
    copies = P.concatenate([x] * (left + 1 + right), ax)
    return P.slice_axis(copies, ax, left * n - lo, left * n + n + hi)


def _pad_reflect(x, ax, lo, hi, symmetric, odd):
    """Reflections in rounds, as NumPy pads: each round mirrors the current array (without its
    edge for `reflect`, with it for `symmetric`) onto both sides, as far as it reaches; with
    ``odd`` the mirror image is also turned about the edge value (2 * edge - image). A round
    mirrors at most a whole number of the original periods, so that sides padded by different
    amounts stay in phase."""
    period = x.shape[ax] - (0 if symmetric else 1)  # > 0: a single element pads as an edge
    skip = 0 if symmetric else 1
    while lo or hi:
        reach = (x.shape[ax] - skip) // period * period
        m = x.shape[ax]
        pieces = []
        if lo:
            count = min(lo, reach)
            image = P.rev(P.slice_axis(x, ax, skip, skip + count), (ax,))
            if odd:
                image = P.convert(subtract(2 * P.slice_axis(x, ax, 0, 1), image), x.dtype)
            pieces.append(image)
            lo -= count
        pieces.append(x)
        if hi:
            count = min(hi, reach)
            image = P.rev(P.slice_axis(x, ax, m - skip - count, m - skip), (ax,))
            if odd:
                image = P.convert(subtract(2 * P.slice_axis(x, ax, m - 1, m), image), x.dtype)
            pieces.append(image)
            hi -= count
        x = P.concatenate(pieces, ax)
    return x


@implements(np.pad)
def pad(array, pad_width, mode="constant", **kwargs):
    trace = P.the_trace(array, kwargs.get("constant_values"))
    x = P.lift(array, trace)
    widths = _pad_widths(pad_width, x.ndim)
    if callable(mode):
        raise P.user_error(NotImplementedError, (
            "pad(mode=<function>) is not supported on traced arrays: the function writes into "
            "the padded array in place, and traced arrays are immutable"))
    if mode not in _PAD_KEYWORDS:
        raise P.user_error(ValueError, f"mode '{mode}' is not supported")
    unexpected = set(kwargs) - set(_PAD_KEYWORDS[mode])
    if unexpected:
        raise P.user_error(ValueError, f"unsupported keyword arguments for mode '{mode}': "
                                       f"{unexpected}")
    if mode not in _PAD_TRACED_MODES:
        raise P.user_error(NotImplementedError, (
            f"pad(mode={mode!r}) is not supported on traced arrays by tracejit (supported: "
            f"{', '.join(_PAD_TRACED_MODES)})"))
    if mode in ("constant", "empty"):  # `empty` leaves any values: zeros here
        values = kwargs.get("constant_values", 0) if mode == "constant" else 0
        return _pad_constant(x, widths, values, trace)
    for ax, (lo, hi) in enumerate(widths):
        if x.shape[ax] == 0 and (lo or hi):
            raise P.user_error(ValueError, f"can't extend empty axis {ax} using modes other "
                                           "than 'constant' or 'empty'")
    if x.size == 0:
        return _pad_constant(x, widths, 0, trace)
    odd = kwargs.get("reflect_type", "even") == "odd"
    for ax, (lo, hi) in enumerate(widths):
        if not (lo or hi):
            continue
        if mode == "edge" or (mode == "reflect" and x.shape[ax] == 1):
            x = _pad_edge(x, ax, lo, hi)  # NumPy reflects a single element as an edge
        elif mode == "wrap":
            x = _pad_wrap(x, ax, lo, hi)
        else:
            x = _pad_reflect(x, ax, lo, hi, mode == "symmetric", odd)
    return x
