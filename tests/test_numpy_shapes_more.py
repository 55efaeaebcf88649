"""More shape, join and indexing functions against NumPy: diff gradient cross kron roll rollaxis
rot90 flipud fliplr atleast_3d column_stack hsplit vsplit dsplit select pad take, the functions
whose result shape depends on values (nonzero argwhere flatnonzero unique, ``x[mask]``), and
their derivatives against finite differences.

The per-function table runs on the interpreter over every dtype; the compiled backends run one
program that calls each function through NumPy's own names (``np.roll(tracer)``), once per dtype,
so numba_cpu compiles three functions for the whole table.
"""
from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp
from oracle import assert_matches_numpy, assert_same
from test_numpy_table import DTYPES, make, noncontiguous

HERE = __file__.rsplit("/", 1)[-1]

# name, function of one array, input shape ("view": a strided, reversed (2, 3) view)
CASES = [
    ("diff", tnp.diff, (3, 4)),
    ("diff_n2_axis0", lambda x: tnp.diff(x, 2, axis=0), (4, 3)),
    ("diff_negative_axis", lambda x: tnp.diff(x, axis=-2), (2, 3, 4)),
    ("diff_prepend_append", lambda x: tnp.diff(x, prepend=0, append=x[:, :1]), (3, 4)),
    ("diff_prepend_float", lambda x: tnp.diff(x, prepend=1.5), (5,)),
    ("diff_prepend_array", lambda x: tnp.diff(x, axis=0, prepend=x[:1], append=[[1, 2, 3]]),
     (2, 3)),
    ("diff_n0", lambda x: tnp.diff(x, 0), ()),
    ("diff_n_beyond_length", lambda x: tnp.diff(x, 7), (5,)),
    ("diff_empty", tnp.diff, (0,)),
    ("diff_size1", tnp.diff, (1,)),
    ("diff_view", tnp.diff, "view"),
    ("diff_0d_bad", tnp.diff, ()),
    ("diff_negative_n_bad", lambda x: tnp.diff(x, -1), (3,)),
    ("diff_axis_bad", lambda x: tnp.diff(x, axis=2), (3, 4)),
    ("diff_prepend_bad", lambda x: tnp.diff(x, prepend=x[0]), (3, 4)),
    ("gradient", tnp.gradient, (3, 4)),
    ("gradient_1d", tnp.gradient, (5,)),
    ("gradient_python_spacing", lambda x: tnp.gradient(x, 2.0), (3, 4)),
    ("gradient_int_spacing", lambda x: tnp.gradient(x, 3), (4,)),
    ("gradient_numpy_spacing", lambda x: tnp.gradient(x, np.float64(0.5)), (5,)),
    ("gradient_per_axis", lambda x: tnp.gradient(x, np.array([0.0, 1.0, 3.0]), 2), (3, 4)),
    ("gradient_int_coordinates", lambda x: tnp.gradient(x, [0, 1, 3, 7], axis=1), (3, 4)),
    ("gradient_uniform_coordinates", lambda x: tnp.gradient(x, np.arange(4) * 0.5, axis=-1),
     (3, 4)),
    ("gradient_edge_order_2", lambda x: tnp.gradient(x, edge_order=2), (3, 4)),
    ("gradient_edge_order_2_coordinates",
     lambda x: tnp.gradient(x, np.array([0.0, 1.0, 3.0, 3.5]), axis=1, edge_order=2), (3, 4)),
    ("gradient_axes_in_order", lambda x: tnp.gradient(x, axis=(1, 0)), (3, 4)),
    ("gradient_two_points", tnp.gradient, (2,)),
    ("gradient_0d", tnp.gradient, ()),
    ("gradient_view", tnp.gradient, "view"),
    ("gradient_too_short_bad", lambda x: tnp.gradient(x, edge_order=2), (2,)),
    ("gradient_edge_order_bad", lambda x: tnp.gradient(x, edge_order=3), (5,)),
    ("gradient_arguments_bad", lambda x: tnp.gradient(x, 1, 2, 3), (3, 4)),
    ("gradient_2d_spacing_bad", lambda x: tnp.gradient(x, np.ones((5, 5))), (5,)),
    ("gradient_spacing_length_bad", lambda x: tnp.gradient(x, np.ones(4)), (5,)),
    ("gradient_repeated_axis_bad", lambda x: tnp.gradient(x, axis=(0, -2)), (3, 4)),
    ("gradient_empty_bad", tnp.gradient, (0,)),
    ("cross", lambda x: tnp.cross(x[:, :3], x[:, 1:]), (2, 4)),
    ("cross_2_3", lambda x: tnp.cross(x[:, :2], x[:, 1:]), (2, 4)),
    ("cross_3_2", lambda x: tnp.cross(x[:, 1:], x[:, :2]), (2, 4)),
    ("cross_2_2", lambda x: tnp.cross(x[:, :2], x[:, 2:]), (2, 4)),
    ("cross_axisc", lambda x: tnp.cross(x[:, :3], x[:, 1:], axisc=0), (5, 4)),
    ("cross_axisa_axisb", lambda x: tnp.cross(x, x.T[::-1], axisa=0, axisb=-1), (3, 3)),
    ("cross_axis", lambda x: tnp.cross(x, x[::-1], axis=0), (3, 2)),
    ("cross_broadcast", lambda x: tnp.cross(x[:, None, :3], x[None, :, 1:]), (2, 4)),
    ("cross_empty", lambda x: tnp.cross(x[:0, :3], x[0, 1:]), (2, 4)),
    ("cross_view", lambda x: tnp.cross(x, x[::-1]), "view"),
    ("cross_dimension_bad", lambda x: tnp.cross(x, x), (2, 4)),
    ("cross_0d_bad", lambda x: tnp.cross(x[0, 0], x[0, :3]), (2, 4)),
    ("cross_axisc_bad", lambda x: tnp.cross(x[:, :3], x[:, 1:], axisc=2), (2, 4)),
    ("kron", lambda x: tnp.kron(x, x[:2, :2]), (2, 3)),
    ("kron_ranks", lambda x: tnp.kron(x[0], x), (2, 3)),
    ("kron_3d", lambda x: tnp.kron(x.reshape(1, 2, 3), x[:, :2]), (2, 3)),
    ("kron_python_scalar", lambda x: tnp.kron(x, 2), (2, 3)),
    ("kron_0d", lambda x: tnp.kron(x[0, 0], x[1]), (2, 3)),
    ("kron_0d_both", lambda x: tnp.kron(x[0, 0], x[1, 1]), (2, 3)),
    ("kron_empty", lambda x: tnp.kron(x[:0], x), (2, 3)),
    ("kron_view", lambda x: tnp.kron(x, x), "view"),
    ("roll", lambda x: tnp.roll(x, 2), (3, 4)),
    ("roll_axis", lambda x: tnp.roll(x, -1, axis=1), (3, 4)),
    ("roll_tuples", lambda x: tnp.roll(x, (1, 5), axis=(0, -1)), (3, 4)),
    ("roll_same_axis_twice", lambda x: tnp.roll(x, (1, 2), axis=(1, 1)), (3, 4)),
    ("roll_one_shift_many_axes", lambda x: tnp.roll(x, 1, axis=(0, 1)), (3, 4)),
    ("roll_shifts_one_axis", lambda x: tnp.roll(x, [1, 2], axis=1), (3, 4)),
    ("roll_0d", lambda x: tnp.roll(x, 3), ()),
    ("roll_empty", lambda x: tnp.roll(x, 1, axis=0), (0, 3)),
    ("roll_view", lambda x: tnp.roll(x, (1, -1), axis=(0, 1)), "view"),
    ("roll_mismatch_bad", lambda x: tnp.roll(x, (1, 2), axis=(0, 1, 0)), (3, 4)),
    ("roll_axis_bad", lambda x: tnp.roll(x, 1, axis=2), (3, 4)),
    ("rollaxis", lambda x: tnp.rollaxis(x, 2), (2, 3, 4)),
    ("rollaxis_start", lambda x: tnp.rollaxis(x, 0, 3), (2, 3, 4)),
    ("rollaxis_negative", lambda x: tnp.rollaxis(x, -1, -2), (2, 3, 4)),
    ("rollaxis_start_bad", lambda x: tnp.rollaxis(x, 0, 4), (3, 4)),
    ("rollaxis_axis_bad", lambda x: tnp.rollaxis(x, 3), (2, 3, 4)),
    ("rot90", tnp.rot90, (3, 4)),
    ("rot90_k2", lambda x: tnp.rot90(x, 2), (3, 4)),
    ("rot90_k3_axes", lambda x: tnp.rot90(x, 3, axes=(2, 0)), (2, 3, 4)),
    ("rot90_negative_k", lambda x: tnp.rot90(x, -1, axes=(-1, -2)), (2, 3, 4)),
    ("rot90_k4", lambda x: tnp.rot90(x, 4), (3, 4)),
    ("rot90_view", tnp.rot90, "view"),
    ("rot90_1d_bad", tnp.rot90, (3,)),
    ("rot90_same_axes_bad", lambda x: tnp.rot90(x, axes=(0, 2)), (3, 4)),
    ("rot90_axes_range_bad", lambda x: tnp.rot90(x, axes=(0, 3)), (2, 3, 4)),
    ("rot90_axes_length_bad", lambda x: tnp.rot90(x, axes=(0,)), (3, 4)),
    ("flipud", tnp.flipud, (3, 4)),
    ("flipud_1d", tnp.flipud, (5,)),
    ("flipud_0d_bad", tnp.flipud, ()),
    ("fliplr", tnp.fliplr, (2, 3, 4)),
    ("fliplr_view", tnp.fliplr, "view"),
    ("fliplr_1d_bad", tnp.fliplr, (3,)),
    ("atleast_3d_0d", tnp.atleast_3d, ()),
    ("atleast_3d_1d", tnp.atleast_3d, (3,)),
    ("atleast_3d_2d", tnp.atleast_3d, (2, 3)),
    ("atleast_3d_4d", tnp.atleast_3d, (2, 1, 3, 1)),
    ("atleast_3d_many", lambda x: tnp.atleast_3d(x, x[0], x[0, 0]), (2, 3)),
    ("column_stack", lambda x: tnp.column_stack([x[0], x[1], x.T]), (2, 3)),
    ("column_stack_0d", lambda x: tnp.column_stack([x[0, 0], x[1, :1]]), (2, 3)),
    ("column_stack_promotes", lambda x: tnp.column_stack([x[0], np.arange(3, dtype=np.int8)]),
     (2, 3)),
    ("column_stack_bad", lambda x: tnp.column_stack([x[0], x]), (2, 3)),
    ("hsplit", lambda x: tnp.hsplit(x, 2), (3, 4)),
    ("hsplit_1d", lambda x: tnp.hsplit(x, [1, 3]), (5,)),
    ("hsplit_0d_bad", lambda x: tnp.hsplit(x, 1), ()),
    ("hsplit_unequal_bad", lambda x: tnp.hsplit(x, 3), (3, 4)),
    ("vsplit", lambda x: tnp.vsplit(x, [2]), (3, 4)),
    ("vsplit_1d_bad", lambda x: tnp.vsplit(x, 1), (4,)),
    ("dsplit", lambda x: tnp.dsplit(x, 2), (2, 3, 4)),
    ("dsplit_2d_bad", lambda x: tnp.dsplit(x, 2), (3, 4)),
    ("select", lambda x: tnp.select([x > 0, x < 1], [x, x[::-1]]), (3, 4)),
    ("select_default_array", lambda x: tnp.select([x > 1], [x], default=x[0]), (3, 4)),
    ("select_python_scalars", lambda x: tnp.select([x > 0, x < 1], [1, 2.5], default=-1),
     (3, 4)),
    ("select_weak_default", lambda x: tnp.select([x > 0], [x], default=5), (3, 4)),
    ("select_default_wraps", lambda x: tnp.select([x > 0], [x.astype(np.int8)], default=1000),
     (3, 4)),
    ("select_broadcast", lambda x: tnp.select(
        [x[:, :1] > 0, np.array([True, False, True, False])], [x, x[0]]), (3, 4)),
    ("select_first_true_wins", lambda x: tnp.select([x >= 0, x >= 0], [x, x * 2]), (3, 4)),
    ("select_0d", lambda x: tnp.select([x > 0], [x], default=x), ()),
    ("select_condition_bad", lambda x: tnp.select([x.astype(np.float32)], [x]), (3, 4)),
    ("select_lengths_bad", lambda x: tnp.select([x > 0], [x, x]), (3, 4)),
    ("select_empty_bad", lambda x: tnp.select([], []), (3,)),
    ("select_shapes_bad", lambda x: tnp.select([x > 0], [x[0, :2]]), (3, 4)),
    ("pad", lambda x: tnp.pad(x, 2), (3, 4)),
    ("pad_pairs", lambda x: tnp.pad(x, ((1, 2), (0, 3))), (3, 4)),
    ("pad_one_pair", lambda x: tnp.pad(x, (1, 2)), (3, 4)),
    ("pad_one_width", lambda x: tnp.pad(x, (2,)), (3, 4)),
    ("pad_column_of_widths", lambda x: tnp.pad(x, [[1], [2]]), (3, 4)),
    ("pad_numpy_widths", lambda x: tnp.pad(x, np.array([[0, 1], [2, 0]])), (3, 4)),
    ("pad_negative_axis_widths", lambda x: tnp.pad(x, ((1, 0),)), (3, 4)),
    ("pad_values", lambda x: tnp.pad(x, 1, constant_values=((1, 2), (3, 4))), (3, 4)),
    ("pad_value_cast", lambda x: tnp.pad(x, 1, constant_values=2.7), (4,)),
    ("pad_traced_value", lambda x: tnp.pad(x, (1, 2), constant_values=x[0]), (4,)),
    ("pad_traced_values", lambda x: tnp.pad(x, 1, constant_values=(x[0, 0], x[1, 1])), (3, 4)),
    ("pad_edge", lambda x: tnp.pad(x, ((2, 0), (1, 3)), mode="edge"), (3, 4)),
    ("pad_wrap", lambda x: tnp.pad(x, ((5, 1), (2, 9)), mode="wrap"), (3, 4)),
    ("pad_reflect", lambda x: tnp.pad(x, ((1, 7), (3, 2)), mode="reflect"), (3, 4)),
    ("pad_reflect_odd", lambda x: tnp.pad(x, ((7, 1), (2, 9)), mode="reflect",
                                          reflect_type="odd"), (3, 4)),
    ("pad_symmetric", lambda x: tnp.pad(x, ((4, 1), (9, 2)), mode="symmetric"), (3, 4)),
    ("pad_symmetric_odd", lambda x: tnp.pad(x, 5, mode="symmetric", reflect_type="odd"), (2, 3)),
    ("pad_reflect_single_element", lambda x: tnp.pad(x, 3, mode="reflect"), (1, 2)),
    ("pad_0d", lambda x: tnp.pad(x, 3), ()),
    ("pad_empty_constant", lambda x: tnp.pad(x, 1), (0, 3)),
    ("pad_empty_other_axis", lambda x: tnp.pad(x, ((0, 0), (1, 2)), mode="wrap"), (0, 3)),
    ("pad_view", lambda x: tnp.pad(x, (3, 1), mode="reflect"), "view"),
    ("pad_empty_axis_bad", lambda x: tnp.pad(x, 1, mode="edge"), (0, 3)),
    ("pad_float_width_bad", lambda x: tnp.pad(x, 1.5), (3,)),
    ("pad_negative_width_bad", lambda x: tnp.pad(x, -1), (3,)),
    ("pad_width_shape_bad", lambda x: tnp.pad(x, ((1, 2), (3, 4), (5, 6))), (3, 4)),
    ("pad_mode_bad", lambda x: tnp.pad(x, 1, mode="foo"), (3,)),
    ("pad_keyword_bad", lambda x: tnp.pad(x, 1, mode="edge", constant_values=0), (3,)),
    ("take_flat", lambda x: tnp.take(x, [0, 5, -1]), (3, 4)),
    ("take_axis", lambda x: tnp.take(x, [[2, 0], [-1, 1]], axis=1), (3, 4)),
    ("take_negative_axis", lambda x: tnp.take(x, [1, 1], axis=-3), (2, 3, 4)),
    ("take_scalar", lambda x: tnp.take(x, 2, axis=0), (3, 4)),
    ("take_wrap", lambda x: tnp.take(x, [7, -9], axis=1, mode="wrap"), (3, 4)),
    ("take_clip", lambda x: tnp.take(x, [7, -9], axis=1, mode="clip"), (3, 4)),
    ("take_0d", lambda x: tnp.take(x, [0, 0]), ()),
    ("take_empty", lambda x: tnp.take(x, [], axis=0), (0, 3)),
    ("take_view", lambda x: tnp.take(x, [1, 0], axis=1), "view"),
    ("take_bool_indices", lambda x: tnp.take(x, [True, False]), (3,)),
    ("take_float_list", lambda x: tnp.take(x, [1.7]), (3,)),
    ("take_traced", lambda x: tnp.take(x, tnp.argmax(x, axis=0), axis=1), (3, 4)),
    ("take_traced_negative", lambda x: tnp.take(x[0], -1 - tnp.argmax(x, axis=1)), (3, 4)),
    ("take_traced_wrap", lambda x: tnp.take(x[0], (x * 7).astype(np.int64), mode="wrap"),
     (3, 4)),
    ("take_traced_clip", lambda x: tnp.take(x[0], (x * 7).astype(np.int32) - 9, mode="clip"),
     (3, 4)),
    ("take_out_of_bounds_bad", lambda x: tnp.take(x, 12), (3, 4)),
    ("take_from_empty_bad", lambda x: tnp.take(x, [0], axis=0), (0, 3)),
    ("take_mode_bad", lambda x: tnp.take(x, [0], mode="foo"), (3,)),
    ("take_mode_numbers", lambda x: tnp.take(x, [7, -9], mode=1) * 2 +  # 1 wrap, 0 clip
     tnp.take(x, [7, -9], mode=0) + tnp.take(x, [1], mode=2), (3,)),
    ("take_float_array_bad", lambda x: tnp.take(x, np.array([1.0])), (3,)),
    ("take_traced_float_bad", lambda x: tnp.take(x, x[0].astype(np.float64)), (3, 4)),
]


def case_input(rng, shape, dtype):
    return noncontiguous(rng, dtype, "small") if shape == "view" else \
        make(rng, shape, dtype, "small")


def interpret(fn):
    return tracejit.compile(fn, backend="interpreter")


@pytest.mark.parametrize("dtype", DTYPES, ids=[np.dtype(d).name for d in DTYPES])
@pytest.mark.parametrize("name,fn,shape", CASES, ids=[c[0] for c in CASES])
def test_functions_on_the_interpreter(name, fn, shape, dtype, rng):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # cross of 2-vectors (NumPy's too)
        assert_matches_numpy(fn, case_input(rng, shape, dtype), backend="interpreter")


def _program(x):
    """One compiled program over the table's functions, each reached through NumPy's names."""
    out = [
        np.diff(x, axis=0, prepend=0), np.roll(x, (1, -2), axis=(0, 1)), np.rollaxis(x, 1),
        np.rot90(x), np.rot90(x, 3, axes=(1, 0)), np.flipud(x), np.fliplr(x),
        np.atleast_3d(x), np.column_stack([x[0], x[1]]), *np.hsplit(x, [1]), *np.vsplit(x, [1]),
        *np.dsplit(x[None], 2), np.kron(x[:2, :2], x), np.select([x > 0, x < 1], [x, x[::-1]]),
        np.pad(x, ((1, 2), (0, 3)), constant_values=((1, 0), (0, 1))),
        np.pad(x, ((3, 1), (5, 2)), mode="reflect", reflect_type="odd"),
        np.pad(x, 2, mode="symmetric"), np.pad(x, (1, 6), mode="wrap"), np.pad(x, 1, mode="edge"),
        np.take(x, [[0, 3], [-1, 1]], axis=1), np.take(x, tnp.argmax(x, axis=1), mode="clip"),
        tnp.nonzero(x, size=5, fill_value=-1), tnp.argwhere(x, size=3),
        tnp.flatnonzero(x, size=9), tnp.unique(x, return_counts=True, size=4),
    ]
    if x.dtype != np.bool_:  # NumPy has no boolean subtraction for gradient and cross
        out += [np.gradient(x), np.gradient(x, [0, 1, 3], 2.0, edge_order=2),
                np.cross(x[:, :3], x[:, 1:])]
    return out


def _compiled_program(x):
    """A representative part of ``_program`` for the compiled backends (compile time): each
    kind of graph the functions build (movement, pads with values and reflections, gathers
    with traced and clipped indices, the scatter of a sized nonzero, the arithmetic of
    gradient and cross)."""
    out = [np.roll(x, (1, -2), axis=(0, 1)), np.rot90(x, 3, axes=(1, 0)),
           np.pad(x, ((1, 2), (0, 3)), constant_values=((1, 0), (0, 1))),
           np.pad(x, ((3, 1), (5, 2)), mode="reflect", reflect_type="odd"),
           np.take(x, tnp.argmax(x, axis=1), mode="clip"), tnp.nonzero(x, size=5, fill_value=-1),
           tnp.unique(x, return_inverse=True, return_counts=True, size=4)]
    if x.dtype != np.bool_:
        out += [np.diff(x, axis=0, prepend=0), np.gradient(x, [0, 1, 3], 2.0, edge_order=2),
                np.cross(x[:, :3], x[:, 1:]), np.select([x > 0, x < 1], [x, x[::-1]])]
    return out


@pytest.mark.parametrize("dtype", DTYPES, ids=[np.dtype(d).name for d in DTYPES])
def test_functions_through_numpy_names(dtype, rng):
    assert_matches_numpy(_program, make(rng, (3, 4), dtype, "small"), backend="interpreter")


COMPILED_DTYPES = (np.float32, np.bool_)


@pytest.mark.parametrize("kind", COMPILED_DTYPES, ids=[np.dtype(d).name for d in COMPILED_DTYPES])
def test_functions_compiled(backend, kind, rng):
    assert_matches_numpy(_compiled_program, make(rng, (3, 4), kind, "small"), backend=backend)


# --- value-dependent shapes: nonzero, argwhere, flatnonzero with a static size -------------

def padded(indices, size, fill):
    """The reference: NumPy's indices, cut to ``size`` or filled up with ``fill``."""
    out = np.full(size, fill, dtype=np.int64)
    out[:min(size, indices.size)] = indices[:size]
    return out


SIZED = [((3, 4), 5), ((3, 4), 12), ((3, 4), 0), ((7,), 2), ((0,), 3), ((2, 1, 3), 4)]


@pytest.mark.parametrize("shape,size", SIZED, ids=[f"{s}-{n}" for s, n in SIZED])
def test_nonzero_with_a_static_size(shape, size, rng):
    for dtype in DTYPES:
        x = make(rng, shape, dtype, "small")
        got = interpret(lambda x: tnp.nonzero(x, size=size, fill_value=-1))(x)
        expected = tuple(padded(i, size, -1) for i in np.nonzero(x))
        assert_same(got, expected)
        got = interpret(lambda x: tnp.flatnonzero(x, size=size))(x)
        assert_same(got, padded(np.flatnonzero(x), size, 0))
        got = interpret(lambda x: tnp.argwhere(x, size=size, fill_value=7))(x)
        expected = np.stack([padded(c, size, 7) for c in np.argwhere(x).T], axis=1)
        assert_same(got, expected)


UNIQUE_INPUTS = [np.array([[3, 1, 3], [0, 1, 3]]), np.array([3.0, np.nan, 1.0, np.nan, 3.0]),
                 np.array(2.5), np.array([]), np.array([True, False, True]),
                 np.array([np.nan, np.nan, -0.0, 0.0])]


@pytest.mark.parametrize("case", range(len(UNIQUE_INPUTS)))
def test_unique_with_a_static_size(case):
    x = UNIQUE_INPUTS[case]
    for equal_nan in (True, False):
        values, index, inverse, counts = np.unique(
            x, return_index=True, return_inverse=True, return_counts=True, equal_nan=equal_nan)
        for size in (0, 2, 6):
            fill = values[0] if values.size else 0
            f = interpret(lambda x: tnp.unique(x, True, True, True, size=size,
                                               equal_nan=equal_nan))
            n = min(size, values.size)
            expected = (np.concatenate([values[:n], np.full(size - n, fill, x.dtype)]),
                        padded(index, size, 0), inverse, padded(counts, size, 0))
            assert_same(f(x), expected)
            g = interpret(lambda x: tnp.unique(x, size=size, fill_value=7, equal_nan=equal_nan))
            assert_same(g(x), np.concatenate([values[:n], np.full(size - n, 7, x.dtype)]))
            assert_same(tnp.unique(x, True, True, True, size=size, equal_nan=equal_nan),
                        expected)  # NumPy arrays: NumPy's unique, cut or filled


def test_unique_refuses_axis_with_size():
    with pytest.raises(NotImplementedError, match="axis="):
        interpret(lambda x: tnp.unique(x, axis=0, size=2))(np.ones((2, 2)))


def test_sized_functions_on_numpy_arrays_and_per_dimension_fills(rng):
    x = make(rng, (3, 4), np.float64, "small")
    for fn in (lambda x: tnp.nonzero(x > 1, size=4, fill_value=(-1, -2)),
               lambda x: tnp.argwhere(x[0, 0], size=2), lambda x: tnp.argwhere(x, size=13),
               lambda x: x[tnp.nonzero(x > 1, size=3)],
               lambda x: tnp.flatnonzero(x.astype(bool), size=2, fill_value=x.size)):
        assert_matches_numpy(fn, x)  # eager: NumPy's indices, cut or filled
    assert_same(tnp.nonzero(np.array([0, 2, 0, 3]), size=3, fill_value=9),
                (np.array([1, 3, 9]),))
    np.testing.assert_array_equal(tnp.nonzero(np.array([1, 0])), np.nonzero(np.array([1, 0])))
    # A NumPy constant inside a trace keeps NumPy's value-dependent results.
    mask = np.array([True, False, True])
    f = interpret(lambda x: x[tnp.nonzero(mask)] + x[mask] + tnp.argwhere(mask)[:, 0])
    np.testing.assert_array_equal(f(np.arange(3.0)), [0.0, 6.0])


VALUE_DEPENDENT = [
    ("nonzero", lambda x: np.nonzero(x), "size="), ("tnp.nonzero", tnp.nonzero, "size="),
    ("argwhere", lambda x: np.argwhere(x), "size="),
    ("flatnonzero", lambda x: tnp.flatnonzero(x), "size="),
    ("unique", lambda x: np.unique(x), "size="),
    ("tnp.unique", lambda x: tnp.unique(x, return_counts=True), "tnp.sort(x)"),
]


@pytest.mark.parametrize("name,fn,advice", VALUE_DEPENDENT, ids=[c[0] for c in VALUE_DEPENDENT])
def test_value_dependent_shapes_say_why_and_what_instead(name, fn, advice):
    with pytest.raises(NotImplementedError) as info:
        interpret(lambda x: fn(x))(np.array([0.0, 2.0, 2.0]))  # MARK-value-shape
    assert isinstance(info.value, tnp.ValueDependentShapeError)
    message = str(info.value)
    assert "depends on the array's values" in message and "static shapes" in message, message
    assert advice in message, message
    assert re.search(rf"{HERE}:\d+", message), message
    fn(np.array([0.0, 2.0, 2.0]))  # on NumPy arrays: NumPy's own function


def test_traced_mask_index_says_why_and_what_instead():
    with pytest.raises(IndexError) as info:
        interpret(lambda x: x[x > 0])(np.arange(-2.0, 3.0))
    assert isinstance(info.value, tnp.ValueDependentShapeError)  # and a NotImplementedError
    message = str(info.value)
    assert "static shapes" in message and "tracejit.numpy.where(mask, x, fill)" in message
    assert "size=" in message and re.search(rf"{HERE}:\d+", message)


def test_sized_arguments_are_checked():
    x = np.ones(3)
    for fn, exc, text in [
        (lambda x: tnp.nonzero(x, size=-1), ValueError, "non-negative"),
        (lambda x: tnp.nonzero(x, fill_value=1), TypeError, "needs size="),
        (lambda x: tnp.nonzero(x, size=2, fill_value=1.5), TypeError, "integer"),
        (lambda x: tnp.nonzero(x, size=2, fill_value=(1, 2)), ValueError, "sequence of 1"),
        (lambda x: tnp.nonzero(x, size=x.shape[0] + x[0]), TypeError, "Python int"),
        (lambda x: tnp.nonzero(x[0], size=2), ValueError, "0d arrays"),
    ]:
        with pytest.raises(exc, match=text):
            interpret(fn)(x)


# --- errors: NumPy's types and messages, at the user's line ---------------------------------

ERROR_CASES = [
    ("diff", lambda x: tnp.diff(x[0, 0])),
    ("gradient", lambda x: tnp.gradient(x, np.ones(5))),
    ("cross", lambda x: tnp.cross(x, x[:, :1])),
    ("cross_axisa", lambda x: tnp.cross(x[0], x[0], axisa=1)),
    ("roll", lambda x: tnp.roll(x, (1, 2), axis=(0, 1, 0))),
    ("rollaxis", lambda x: tnp.rollaxis(x, 0, -4)),
    ("rot90", lambda x: tnp.rot90(x, axes=(0, 1, 1))),
    ("flipud", lambda x: tnp.flipud(x[0, 0])),
    ("vsplit", lambda x: tnp.vsplit(x[0], 1)),
    ("select", lambda x: tnp.select([x], [x])),
    ("pad_width", lambda x: tnp.pad(x, 1.5)),
    ("pad_mode", lambda x: tnp.pad(x, 1, mode="linear")),
    ("pad_keywords", lambda x: tnp.pad(x, 1, reflect_type="odd")),
    ("pad_empty_axis", lambda x: tnp.pad(x[:0], 1, mode="wrap")),
    ("take", lambda x: tnp.take(x, [0, 9], axis=1)),
    ("take_mode", lambda x: tnp.take(x, 0, mode="wrapped")),
    ("take_mode_name", lambda x: tnp.take(x, 0, mode="x")),
    ("take_mode_type", lambda x: tnp.take(x, 0, mode=1.0)),
]


@pytest.mark.parametrize("name,fn", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_errors_match_numpy_and_name_the_line(name, fn):
    x = np.ones((3, 3))
    with pytest.raises(Exception) as expected:
        fn(x)
    with pytest.raises(type(expected.value)) as info:
        interpret(lambda x: fn(x))(x)
    assert str(expected.value) in str(info.value), f"{expected.value} not in {info.value}"
    assert re.search(rf"{HERE}:\d+", str(info.value)), str(info.value)


def test_what_is_not_traced_is_refused_clearly():
    x = np.arange(6.0).reshape(2, 3)
    for fn, exc, text in [
        (lambda x: tnp.pad(x, 1, mode="mean"), NotImplementedError, "mode='mean'"),
        (lambda x: tnp.pad(x, 1, mode=lambda *a: None), NotImplementedError, "in place"),
        (lambda x: tnp.pad(x, x.shape[0] + x[0, 0]), TypeError, "pad_width"),
        (lambda x: tnp.roll(x, x[0, 0]), TypeError, "shift"),
        (lambda x: tnp.take(x, 0, out=x), NotImplementedError, "out="),
    ]:
        with pytest.raises(exc, match=re.escape(text)) as info:
            interpret(fn)(x)
        assert re.search(rf"{HERE}:\d+", str(info.value)), str(info.value)


def test_traced_indices_are_checked_when_the_code_runs(backend):
    f = tracejit.compile(lambda x, i: tnp.take(x, i), backend=backend)
    np.testing.assert_array_equal(f(np.arange(4.0), np.array([1, -4])), [1.0, 0.0])
    with pytest.raises(IndexError, match="out of bounds"):
        f(np.arange(4.0), np.array([1, 4]))


def test_cross_of_2_vectors_warns_as_numpy():
    with pytest.warns(DeprecationWarning, match="2-dimensional vectors"):
        interpret(lambda a, b: tnp.cross(a, b))(np.ones(2), np.ones(3))


def test_pad_empty_mode_has_numpy_shape_and_dtype():
    x = np.ones((2, 3), np.int32)
    got = interpret(lambda x: tnp.pad(x, ((1, 2), (0, 1)), mode="empty"))(x)
    expected = np.pad(x, ((1, 2), (0, 1)), mode="empty")
    assert got.shape == expected.shape and got.dtype == expected.dtype
    np.testing.assert_array_equal(got[1:3, :3], x)


def test_gradient_with_traced_spacing(rng):
    x, t = rng.normal(size=6), np.cumsum(rng.uniform(0.5, 1.5, size=6))
    for edge_order in (1, 2):
        f = interpret(lambda x, t: tnp.gradient(x, t, edge_order=edge_order))
        np.testing.assert_allclose(f(x, t), np.gradient(x, t, edge_order=edge_order),
                                   rtol=1e-12)
        f = interpret(lambda x, h: tnp.gradient(x, h, edge_order=edge_order))
        np.testing.assert_allclose(f(x, 0.5), np.gradient(x, 0.5, edge_order=edge_order),
                                   rtol=1e-12)


# --- derivatives: check_grads, order 2, both modes, float64 ---------------------------------

GRAD_CASES = [
    ("diff", lambda x: tnp.diff(x, 2, axis=0, prepend=x[:1] * 2, append=1.0)),
    ("gradient", lambda x: tnp.gradient(x, 0.5, np.array([0.0, 1.0, 3.0, 3.5]), edge_order=2)),
    ("gradient_traced_coordinates",
     lambda x: tnp.gradient(x[0], tnp.cumsum(tnp.exp(x[1])), edge_order=2)),
    ("gradient_traced_spacing", lambda x: tnp.gradient(x, x[0, 0] ** 2 + 1, axis=1)),
    ("cross", lambda x: tnp.cross(x[:, :3], x[:, 1:])),
    ("cross_2_vectors", lambda x: tnp.cross(x[:, :2], x[:, 1:], axisc=0)),
    ("kron", lambda x: tnp.kron(x, x[:2, :2])),
    ("roll", lambda x: tnp.roll(x, (1, -3), axis=(0, 1))),
    ("roll_flat", lambda x: tnp.roll(x, 5)),
    ("rollaxis", lambda x: tnp.rollaxis(x, 1)),
    ("rot90", lambda x: tnp.rot90(x, 3)),
    ("flipud", tnp.flipud), ("fliplr", tnp.fliplr), ("atleast_3d", tnp.atleast_3d),
    ("column_stack", lambda x: tnp.column_stack([x[:, 0], x])),
    ("hsplit", lambda x: tnp.hsplit(x, 2)), ("vsplit", lambda x: tnp.vsplit(x, [1])),
    ("dsplit", lambda x: tnp.dsplit(x.reshape(1, 3, 4), [1])),
    ("select", lambda x: tnp.select([x > 0, x < -1], [x ** 2, tnp.sin(x)], default=x[0])),
    ("pad_constant", lambda x: tnp.pad(x, 2, constant_values=(x[0, 0], 3.0))),
    ("pad_edge", lambda x: tnp.pad(x, 2, mode="edge")),
    ("pad_reflect", lambda x: tnp.pad(x, ((4, 1), (2, 5)), mode="reflect")),
    ("pad_reflect_odd", lambda x: tnp.pad(x, ((4, 1), (2, 5)), mode="reflect",
                                          reflect_type="odd")),
    ("pad_symmetric", lambda x: tnp.pad(x, 3, mode="symmetric")),
    ("pad_wrap", lambda x: tnp.pad(x, (2, 7), mode="wrap")),
    ("take", lambda x: tnp.take(x, [[0, 2], [-1, 1]], axis=1)),
    ("take_wrap", lambda x: tnp.take(x, [5, 2, 5], mode="wrap")),
    ("take_traced_indices", lambda x: tnp.take(x, tnp.argmax(x, axis=0), axis=1)),
    ("unique", lambda x: tnp.unique(x, size=14, fill_value=0.5)),
]


@pytest.mark.parametrize("name,fn", GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
def test_gradients(name, fn, rng):
    x = rng.normal(size=(3, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        tracejit.check_grads(fn, (x,), order=2, modes=("fwd", "rev"))


def test_sized_nonzero_is_not_differentiated(rng):
    x = rng.normal(size=5)
    g = tracejit.grad(lambda x: x[tnp.nonzero(x > 0, size=2)].sum())(x)
    expected = np.zeros(5)
    expected[np.nonzero(x > 0)[0][:2]] = 1.0
    np.testing.assert_array_equal(g, expected)


NEW_FUNCTIONS = """
    diff gradient cross kron roll rollaxis rot90 flipud fliplr atleast_3d column_stack hsplit
    vsplit dsplit select pad take nonzero argwhere flatnonzero unique
""".split()


def test_every_new_function_dispatches_and_is_tested():
    import pathlib

    source = pathlib.Path(__file__).read_text()
    for name in NEW_FUNCTIONS:
        fn = getattr(tnp, name)
        assert fn.numpy_function is getattr(np, name), name
        assert f"tnp.{name}" in source, f"tnp.{name} is not tested"
