"""The NumPy coverage table (``docs/numpy_coverage.md``), computed from the code.

``python -m tracejit.testing.coverage`` writes the table; ``--check`` exits 1 and prints the
difference when the file is stale (``tests/test_numpy_coverage.py`` runs the same check).

Every public function of NumPy's ``numpy`` and ``numpy.linalg`` namespaces (of the NumPy that
runs this module; classes, dtypes, constants and submodules are left out) gets one row:

- **supported** when ``tracejit.numpy`` (or ``tracejit.numpy.linalg``) has the name, or NumPy's
  ``__array_function__``/``__array_ufunc__`` protocol reaches a tracejit implementation. Its
  derivative status comes from tracing a sample call (``SAMPLES``, float64 inputs) under
  ``tracejit.jvp`` and ``tracejit.vjp`` with ``make_ir`` (tracing only: nothing is compiled or
  run), and asking the traced graph whether the output tangents depend on the input tangents
  (forward mode) and the input cotangents on the output cotangents (reverse mode). A supported
  function without a sample is an error: the table cannot be made until one is added.
- **not supported** otherwise, with the reason from ``REASONS`` ("not yet" when none is listed).

>>> classify("tanh")
Row(name='tanh', status='supported', derivatives='both modes', reason='', notes='')
>>> classify("loadtxt").reason
'I/O'
"""
from __future__ import annotations

import argparse
import dataclasses
import difflib
import re
import sys
import textwrap
import types
import warnings
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

import tracejit
import tracejit.numpy as tnp
from tracejit import pytree
from tracejit.ir import Var
from tracejit.numpy._dispatch import HANDLED_FUNCTIONS, HANDLED_UFUNCS

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "numpy_coverage.md"
COMMAND = "python -m tracejit.testing.coverage"
NAMESPACES = (("", np, tnp), ("linalg.", np.linalg, tnp.linalg))  # prefix, NumPy's, ours

BOTH, REVERSE, FORWARD, NONE = "both modes", "reverse only", "forward only", "not differentiable"
SUPPORTED, NOT_SUPPORTED = "supported", "not supported"


# --- why a function is not supported -------------------------------------------------------------

_REASON_NAMES = {
    "value-dependent shape": (
        "argwhere compress extract flatnonzero intersect1d nonzero roots setdiff1d setxor1d "
        "trim_zeros union1d unique unique_all unique_counts unique_inverse unique_values"),
    "I/O": ("from_dlpack frombuffer fromfile fromregex genfromtxt load loadtxt save savetxt savez "
            "savez_compressed"),
    "strings": ("array2string array_repr array_str base_repr binary_repr format_float_positional "
                "format_float_scientific fromstring typename"),
    "datetime": "busday_count busday_offset datetime_as_string datetime_data is_busday isnat",
    "complex dtypes": ("angle conj conjugate imag iscomplex iscomplexobj isreal isrealobj real "
                       "real_if_close sort_complex linalg.eig linalg.eigvals"),
    "polynomial / legacy": ("asmatrix bmat poly polyadd polyder polydiv polyfit polyint polymul "
                            "polysub polyval row_stack"),
    "in place": "copyto fill_diagonal place put put_along_axis putmask",
    "no array computation": (
        "broadcast_shapes can_cast common_type get_include get_printoptions getbufsize geterr "
        "geterrcall info isdtype isfortran isscalar issubdtype iterable may_share_memory "
        "min_scalar_type mintypecode nested_iters printoptions promote_types result_type "
        "set_printoptions setbufsize seterr seterrcall shares_memory show_config show_runtime"),
}
REASONS = {name: reason for reason, names in _REASON_NAMES.items() for name in names.split()}
NOT_YET = "not yet"
REASON_TEXT = {
    "value-dependent shape": "the result's shape depends on the input's values (use `where`, "
                             "or a `size=` argument where tracejit offers one)",
    "I/O": "reads or writes files or foreign buffers",
    "strings": "produces or parses strings",
    "datetime": "datetime and business-day dtypes",
    "complex dtypes": "needs complex dtypes, which tracejit does not have",
    "polynomial / legacy": "the legacy polynomial and matrix API",
    "in place": "writes into an argument; traced arrays are immutable (build a new array)",
    "no array computation": "a dtype, shape, memory or settings helper (call it on `x.shape` "
                            "or `x.dtype`, which are static while tracing)",
    NOT_YET: "not implemented yet",
}
# Caveats of supported functions that are facts of their signature, shown in the notes column.
NOTES = {"nonzero": "needs `size=`", "argwhere": "needs `size=`", "flatnonzero": "needs `size=`",
         "unique": "needs `size=`"}


# --- sample calls: how each supported function is traced -----------------------------------------

@dataclasses.dataclass(frozen=True)
class Sample:
    """``call(fn, *inputs)`` with float64 inputs of these ``shapes`` (static arguments, integer
    indices and the like are written into ``call``)."""

    call: Callable
    shapes: tuple = ()

    def inputs(self) -> tuple:
        """Float64 inputs of these shapes: distinct values, square matrices diagonally dominant
        (so NumPy itself accepts every sample, positive definite ones included)."""
        out = []
        for shape in self.shapes:
            x = 0.5 + 0.1 * np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)
            if len(shape) == 2 and shape[0] == shape[1]:
                x = (x + x.T) / 2 + shape[0] * np.eye(shape[0])
            out.append(x)
        return tuple(out)


def _s(call, *shapes):
    return Sample(call, shapes)


def _ints(x):
    return tnp.astype(x, np.int64)


M, SQ = (2, 3), (3, 3)  # a matrix; a square matrix
UNARY = _s(lambda f, x: f(x), M)
BINARY = _s(lambda f, x, y: f(x, y), M, M)
INT_UNARY = _s(lambda f, x: f(_ints(x)), M)
INT_BINARY = _s(lambda f, x, y: f(_ints(x), _ints(y)), M, M)
AXIS1 = _s(lambda f, x: f(x, axis=1), M)
MATMUL = _s(lambda f, a, b: f(a, b), (2, 3), (3, 2))
JOIN = _s(lambda f, x, y: f([x, y]), M, M)
NO_INPUT = _s(lambda f: f((2, 3)))
SQUARE = _s(lambda f, a: f(a), SQ)

_UNARY_NAMES = (
    "abs absolute acos acosh arccos arccosh arcsin arcsinh arctan arctanh asin asinh atan atanh "
    "cbrt ceil cos cosh deg2rad degrees exp exp2 expm1 fabs fix floor i0 isfinite isinf isnan "
    "isneginf isposinf log log10 log1p log2 logical_not nan_to_num negative positive rad2deg "
    "radians reciprocal rint sign signbit sin sinc sinh spacing sqrt square tan tanh trunc "
    "all any amax amin argmax argmin average count_nonzero max mean median min nanargmax "
    "nanargmin nanmax nanmean nanmedian nanmin nanprod nanstd nansum nanvar prod ptp std sum var "
    "array asarray asanyarray ascontiguousarray asfortranarray asarray_chkfinite copy "
    "atleast_1d atleast_2d atleast_3d diagonal flip fliplr flipud ravel rot90 sort argsort "
    "transpose matrix_transpose trace tril triu ndim shape size "
    "empty_like ones_like zeros_like gradient "
    "linalg.norm linalg.vector_norm linalg.matrix_norm linalg.matrix_transpose linalg.diagonal "
    "linalg.trace")
_BINARY_NAMES = (
    "add arctan2 atan2 copysign divide equal float_power fmax fmin fmod greater greater_equal "
    "heaviside hypot less less_equal logaddexp logaddexp2 logical_and logical_or logical_xor "
    "maximum minimum mod multiply nextafter not_equal pow power remainder subtract true_divide "
    "floor_divide divmod isclose allclose array_equal array_equiv kron inner vdot append "
    "vecdot linalg.vecdot")
_INT_UNARY_NAMES = "bitwise_count bitwise_invert bitwise_not invert"
_INT_BINARY_NAMES = ("bitwise_and bitwise_left_shift bitwise_or bitwise_right_shift bitwise_xor "
                     "gcd lcm left_shift right_shift")
_SQUARE_NAMES = ("linalg.cholesky linalg.cond linalg.det linalg.eigh linalg.eigvalsh linalg.inv "
                 "linalg.matrix_rank linalg.pinv linalg.qr linalg.slogdet linalg.svd "
                 "linalg.svdvals")

SAMPLES: dict[str, Sample] = {
    **{name: UNARY for name in _UNARY_NAMES.split()},
    **{name: BINARY for name in _BINARY_NAMES.split()},
    **{name: INT_UNARY for name in _INT_UNARY_NAMES.split()},
    **{name: INT_BINARY for name in _INT_BINARY_NAMES.split()},
    **{name: SQUARE for name in _SQUARE_NAMES.split()},
    **{name: MATMUL for name in "dot matmul linalg.matmul".split()},
    **{name: JOIN for name in "concatenate concat stack hstack vstack dstack column_stack "
                              "block".split()},
    **{name: NO_INPUT for name in "empty ones zeros".split()},
    **{name: AXIS1 for name in "cumsum cumprod cumulative_sum cumulative_prod nancumsum "
                               "nancumprod diff unstack".split()},
    # ufuncs with other arities
    "frexp": UNARY, "modf": UNARY,
    "ldexp": _s(lambda f, x: f(x, np.arange(3)), M),
    "clip": _s(lambda f, x: f(x, -0.5, 0.5), M),
    "where": _s(lambda f, x, y: f(x > 0, x, y), M, M),
    "select": _s(lambda f, x, y: f([x > 0, x < -1], [x, y], 0.5), M, M),
    "round": _s(lambda f, x: f(x, 1), M), "around": _s(lambda f, x: f(x, 1), M),
    "astype": _s(lambda f, x: f(x, np.float32), M),
    "interp": _s(lambda f, x, xp, fp: f(x, xp, fp), (4,), (3,), (3,)),
    "searchsorted": _s(lambda f, a, v: f(a, v), (4,), (3,)),
    "digitize": _s(lambda f, x, bins: f(x, bins), (4,), (3,)),
    "convolve": _s(lambda f, a, v: f(a, v), (5,), (3,)),
    "correlate": _s(lambda f, a, v: f(a, v), (5,), (3,)),
    "cov": UNARY, "corrcoef": UNARY,
    "percentile": _s(lambda f, x: f(x, 30.0), M), "quantile": _s(lambda f, x: f(x, 0.3), M),
    "nanpercentile": _s(lambda f, x: f(x, 30.0), M),
    "nanquantile": _s(lambda f, x: f(x, 0.3), M),
    "trapezoid": UNARY, "unwrap": UNARY, "ediff1d": UNARY,
    "histogram": _s(lambda f, x: f(x, bins=4, range=(0.0, 1.0)), (6,)),
    "histogram_bin_edges": _s(lambda f, x: f(x, bins=4, range=(0.0, 1.0)), (6,)),
    "histogram2d": _s(lambda f, x, y: f(x, y, bins=3, range=[[0, 1], [0, 1]]), (6,), (6,)),
    "histogramdd": _s(lambda f, x: f(x, bins=3, range=[[0, 1], [0, 1]]), (6, 2)),
    "bincount": _s(lambda f, x: f(_ints(x), minlength=4), (6,)),
    "isin": _s(lambda f, x, y: f(x, y), M, (4,)),
    # creation
    "arange": _s(lambda f: f(5.0)),
    "eye": _s(lambda f: f(3)), "identity": _s(lambda f: f(3)),
    "tri": _s(lambda f: f(3)), "indices": _s(lambda f: f((2, 3))),
    "bartlett": _s(lambda f: f(5)), "blackman": _s(lambda f: f(5)),
    "hamming": _s(lambda f: f(5)), "hanning": _s(lambda f: f(5)),
    "kaiser": _s(lambda f: f(5, 3.0)),
    "full": _s(lambda f, v: f((2, 3), v), ()),
    "full_like": _s(lambda f, x, v: f(x, v), M, ()),
    "linspace": _s(lambda f, a, b: f(a, b, 5), (), ()),
    "logspace": _s(lambda f, a, b: f(a, b, 5), (), ()),
    "geomspace": _s(lambda f, a, b: f(a, b, 5), (), ()),
    "meshgrid": _s(lambda f, x, y: f(x, y), (2,), (3,)),
    "diag": _s(lambda f, x: f(x), (3,)), "diagflat": _s(lambda f, x: f(x), (3,)),
    "vander": _s(lambda f, x: f(x, 3), (4,)),
    "tril_indices": _s(lambda f: f(3)), "triu_indices": _s(lambda f: f(3)),
    "diag_indices": _s(lambda f: f(3)), "mask_indices": _s(lambda f: f(3, np.triu)),
    "tril_indices_from": SQUARE, "triu_indices_from": SQUARE, "diag_indices_from": SQUARE,
    "ix_": _s(lambda f: f(np.arange(2), np.arange(3))),
    "unravel_index": _s(lambda f, x: f(_ints(x), (2, 3)), (4,)),
    "ravel_multi_index": _s(lambda f, x, y: f((_ints(x), _ints(y)), (4, 4)), (3,), (3,)),
    # shapes and joins
    "array_split": _s(lambda f, x: f(x, 2, axis=1), M),
    "split": _s(lambda f, x: f(x, 3, axis=1), M),
    "hsplit": _s(lambda f, x: f(x, 3), M), "vsplit": _s(lambda f, x: f(x, 2), M),
    "dsplit": _s(lambda f, x: f(x, 2), (2, 3, 4)),
    "broadcast_arrays": _s(lambda f, x, y: f(x, y), (2, 1), (3,)),
    "broadcast_to": _s(lambda f, x: f(x, (2, 2, 3)), M),
    "expand_dims": _s(lambda f, x: f(x, 0), M),
    "squeeze": _s(lambda f, x: f(x), (1, 3)),
    "moveaxis": _s(lambda f, x: f(x, 0, -1), M),
    "rollaxis": _s(lambda f, x: f(x, 1), M),
    "swapaxes": _s(lambda f, x: f(x, 0, 1), M),
    "permute_dims": _s(lambda f, x: f(x, (1, 0)), M),
    "reshape": _s(lambda f, x: f(x, (3, 2)), M),
    "resize": _s(lambda f, x: f(x, (4, 3)), M),
    "repeat": _s(lambda f, x: f(x, 2, axis=1), M),
    "tile": _s(lambda f, x: f(x, (2, 1)), M),
    "roll": _s(lambda f, x: f(x, 1, axis=1), M),
    "pad": _s(lambda f, x: f(x, 1), M),
    "insert": _s(lambda f, x, v: f(x, 1, v, axis=1), M, (2,)),
    "delete": _s(lambda f, x: f(x, 1, axis=1), M),
    "cross": _s(lambda f, a, b: f(a, b), (2, 3), (2, 3)),
    "linalg.cross": _s(lambda f, a, b: f(a, b), (2, 3), (2, 3)),
    "outer": _s(lambda f, a, b: f(a, b), (3,), (2,)),
    "linalg.outer": _s(lambda f, a, b: f(a, b), (3,), (2,)),
    "tensordot": _s(lambda f, a, b: f(a, b, axes=1), (2, 3), (3, 2)),
    "linalg.tensordot": _s(lambda f, a, b: f(a, b, axes=1), (2, 3), (3, 2)),
    "einsum": _s(lambda f, a, b: f("ij,jk->ik", a, b), (2, 3), (3, 2)),
    "einsum_path": _s(lambda f, a, b: f("ij,jk->ik", a, b), (2, 3), (3, 2)),
    "matvec": _s(lambda f, a, v: f(a, v), (2, 3), (3,)),
    "vecmat": _s(lambda f, v, a: f(v, a), (2,), (2, 3)),
    "linalg.multi_dot": _s(lambda f, a, b, c: f([a, b, c]), (2, 3), (3, 4), (4, 2)),
    "linalg.matrix_power": _s(lambda f, a: f(a, 2), SQ),
    "linalg.solve": _s(lambda f, a, b: f(a, b), SQ, (3,)),
    "linalg.lstsq": _s(lambda f, a, b: f(a, b), (4, 3), (4,)),
    "linalg.tensorinv": _s(lambda f, a: f(a, ind=1), SQ),
    "linalg.tensorsolve": _s(lambda f, a, b: f(a, b), SQ, (3,)),
    # indexing and sorting
    "take": _s(lambda f, x: f(x, np.array([0, 2]), axis=1), M),
    "take_along_axis": _s(lambda f, x: f(x, np.array([[0], [2]]), axis=1), M),
    "choose": _s(lambda f, x, y: f(np.array([0, 1, 0]), [x, y]), (3,), (3,)),
    "partition": _s(lambda f, x: f(x, 1, axis=1), M),
    "argpartition": _s(lambda f, x: f(x, 1, axis=1), M),
    "lexsort": _s(lambda f, x, y: f((x, y)), (4,), (4,)),
    # tracejit's own `size=` (NumPy has none): TRACEJIT_ONLY
    "nonzero": _s(lambda f, x: f(x, size=3), M),
    "argwhere": _s(lambda f, x: f(x, size=3), M),
    "flatnonzero": _s(lambda f, x: f(x, size=3), M),
    "unique": _s(lambda f, x: f(x, size=3), M),
    "packbits": _s(lambda f, x: f(_ints(x) > 0), (8,)),
    "unpackbits": _s(lambda f, x: f(tnp.astype(x, np.uint8)), (2,)),
    "apply_along_axis": _s(lambda f, x: f(lambda r: r * 2.0, 1, x), M),
    "apply_over_axes": _s(lambda f, x: f(tnp.sum, x, [1]), M),
    "piecewise": _s(lambda f, x: f(x, [x < 0, x >= 0], [-1.0, 1.0]), M),
    "fromfunction": _s(lambda f: f(lambda i, j: i + j, (2, 3))),
    "fromiter": _s(lambda f: f(iter([1.0, 2.0]), np.float64)),
    "frompyfunc": _s(lambda f: f(abs, 1, 1)),
    "require": UNARY,
}

TRACEJIT_ONLY = ("nonzero", "argwhere", "flatnonzero", "unique")  # samples NumPy itself does not accept


# --- the table -----------------------------------------------------------------------------------

def _is_public_function(obj) -> bool:
    """Functions, builtins, ufuncs and NumPy's array-function dispatchers; not classes (dtypes,
    ``errstate``, ``vectorize``), modules, constants or the ``test`` runner object."""
    if isinstance(obj, (type, types.ModuleType)):
        return False
    if isinstance(obj, (np.ufunc, types.FunctionType, types.BuiltinFunctionType)):
        return True
    return type(obj).__name__ == "_ArrayFunctionDispatcher"


def numpy_functions() -> dict[str, object]:
    """The running NumPy's public functions, ``{"sum": np.sum, ..., "linalg.norm": ...}``."""
    found = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # attribute access of deprecated names may warn
        for prefix, module, _ in NAMESPACES:
            for name in sorted(dir(module)):
                if not name.startswith("_") and _is_public_function(getattr(module, name)):
                    found[prefix + name] = getattr(module, name)
    return dict(sorted(found.items()))


def _split(qualified: str):
    for prefix, np_module, our_module in reversed(NAMESPACES):  # the longest prefix first
        if qualified.startswith(prefix):
            return np_module, our_module, qualified[len(prefix):]
    raise AssertionError(qualified)


def implementation(qualified: str):
    """The tracejit function behind NumPy's ``qualified`` name, or None: ``tnp``'s own name,
    else what NumPy's protocols dispatch to on a traced array."""
    np_module, our_module, name = _split(qualified)
    ours = getattr(our_module, name, None)
    if callable(ours) and not isinstance(ours, type):
        return ours
    np_fn = getattr(np_module, name, None)
    handled = HANDLED_FUNCTIONS.get(np_fn) if np_fn is not None else None
    if handled is None and isinstance(np_fn, np.ufunc):
        handled = HANDLED_UFUNCS.get(np_fn.__name__)
    return handled


class CoverageError(Exception):
    """A supported function has no sample, or its sample does not trace."""


def _depends(graph, first_source: int) -> list[bool]:
    """For each output of ``graph``: does it depend on an input from ``first_source`` on?"""
    live = {id(v) for v in graph.inputs[first_source:]}
    for eqn in graph.eqns:
        if any(isinstance(a, Var) and id(a) in live for a in eqn.inputs):
            live.update(id(o) for o in eqn.outputs)
    return [isinstance(o, Var) and id(o) in live for o in graph.outputs]


def _mode_works(trace_fn, first_source: int) -> tuple[bool, str]:
    """(some derivative output depends on the seeds, note) for one mode's tracing."""
    try:
        graph = trace_fn()
    except Exception as e:  # noqa: BLE001  (any failure means "this mode does not work")
        return False, type(e).__name__
    return any(_depends(graph, first_source)), ""


def derivatives(qualified: str, fn=None) -> tuple[str, str]:
    """(derivative status, note) of a supported function, from tracing its sample."""
    sample = SAMPLES.get(qualified)
    if sample is None:
        raise CoverageError(f"`{qualified}` has no sample call")
    fn = fn if fn is not None else implementation(qualified)
    inputs = sample.inputs()

    def primal(*xs):
        return sample.call(fn, *xs)

    structure = {}

    def record(*xs):
        leaves, structure["tree"] = pytree.flatten(primal(*xs))
        return leaves

    try:
        graph = tracejit.make_ir(record)(*inputs)
    except Exception as e:
        raise CoverageError(f"the sample call of `{qualified}` does not trace: "
                            f"{type(e).__name__}: {e}") from e
    out_types = graph.out_types
    float_out = [t.dtype.kind == "f" for t in out_types]
    if not inputs:
        return NONE, "no array input"
    if not any(float_out):
        return NONE, "integer or boolean result"

    def forward(xs, ts):
        return tracejit.jvp(primal, xs, ts)

    def reverse(xs, float_cts):
        _, pullback = tracejit.vjp(primal, *xs)
        cts, pending = [], list(float_cts)
        for t, is_float in zip(out_types, float_out):
            cts.append(pending.pop(0) if is_float else np.zeros(t.shape, t.dtype))
        return pullback(pytree.unflatten(structure["tree"], cts))

    n = len(inputs)
    float_cts = tuple(np.full(t.shape, 0.5, t.dtype) for t, f in zip(out_types, float_out) if f)
    tangents = tuple(x.copy() for x in inputs)  # distinct objects: distinct graph inputs
    fwd, fwd_error = _mode_works(lambda: tracejit.make_ir(forward)(inputs, tangents), n)
    rev, rev_error = _mode_works(lambda: tracejit.make_ir(reverse)(inputs, float_cts), n)
    if fwd and rev:
        return BOTH, ""
    if rev:
        return REVERSE, f"forward mode raises {fwd_error}" if fwd_error else ""
    if fwd:
        return FORWARD, f"reverse mode raises {rev_error}" if rev_error else ""
    if fwd_error or rev_error:
        errors = [f"{mode} mode raises {err}" for mode, err in
                  (("forward", fwd_error), ("reverse", rev_error)) if err]
        return NONE, "; ".join(errors)
    return NONE, "derivative is zero"


class Row(NamedTuple):
    name: str  # "sum", "linalg.norm"
    status: str  # SUPPORTED or NOT_SUPPORTED
    derivatives: str  # BOTH, REVERSE, FORWARD or NONE; "" when not supported
    reason: str  # a key of REASON_TEXT; "" when supported
    notes: str

    def cells(self) -> list[str]:
        notes = "; ".join(n for n in (self.reason, self.notes) if n)
        return [f"`{self.name}`", self.status, self.derivatives, notes]


def classify(qualified: str) -> Row:
    """The row of one NumPy name, e.g. ``"sum"`` or ``"linalg.norm"``."""
    fn = implementation(qualified)
    alias = _alias_of(qualified)
    if fn is None:
        return Row(qualified, NOT_SUPPORTED, "", REASONS.get(qualified, NOT_YET), alias)
    status, note = derivatives(qualified, fn)
    notes = "; ".join(n for n in (alias, NOTES.get(qualified, ""), note) if n)
    return Row(qualified, SUPPORTED, status, "", notes)


def _alias_of(qualified: str) -> str:
    """``"alias of `absolute`"`` for ``abs``: the other public name of the same NumPy object."""
    np_module, _, name = _split(qualified)
    obj = getattr(np_module, name)
    real = getattr(obj, "__name__", name)
    if real != name and getattr(np_module, real, None) is obj:
        return f"alias of `{real}`"
    return ""


def rows() -> list[Row]:
    """Every public NumPy function's row, sorted by name. Raises ``CoverageError`` naming
    every supported function whose sample is missing or does not trace."""
    table, problems = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracing may warn (e.g. an output that ignores inputs)
        for qualified in numpy_functions():
            try:
                table.append(classify(qualified))
            except CoverageError as e:
                problems.append(str(e))
    if problems:
        raise CoverageError(
            "tracejit supports these NumPy functions, but the coverage table cannot classify "
            "them; add or fix their entries in SAMPLES (tracejit/testing/coverage.py):\n  "
            + "\n  ".join(problems))
    return table


def numpy_version() -> str:
    return ".".join(np.__version__.split(".")[:2])


def _counts(values, order) -> str:
    counted = [(order.index(v), v, sum(x == v for x in values)) for v in set(values)]
    return ", ".join(f"{n} {v}" for _, v, n in sorted(counted))


def render(table: list[Row]) -> str:
    """The Markdown text of ``docs/numpy_coverage.md``."""
    supported = [r for r in table if r.status == SUPPORTED]
    unsupported = [r for r in table if r.status != SUPPORTED]
    legend = "; ".join(f"*{k}*: {v}" for k, v in REASON_TEXT.items())
    intro = [
        f"Generated by `{COMMAND}` from the public functions of NumPy {numpy_version()}'s "
        "`numpy` and `numpy.linalg` namespaces (classes, dtypes, constants and submodules such "
        "as `numpy.fft` are not listed). Do not edit it by hand: `tests/test_numpy_coverage.py` "
        "regenerates it in memory and fails when it differs from this file.",
        "",
        "- **supported**: `tracejit.numpy` (or `tracejit.numpy.linalg`) has the function, or "
        "NumPy's `__array_function__`/`__array_ufunc__` protocol reaches a tracejit "
        "implementation.",
        "- **derivatives**: found by tracing a sample call (float64 inputs; `SAMPLES` in "
        "`tracejit/testing/coverage.py`) under `tracejit.jvp` and `tracejit.vjp` with "
        "`tracejit.make_ir`, and asking the traced graph whether the output tangents depend on "
        "the input tangents (forward mode) and the input cotangents on the output cotangents "
        "(reverse mode). *not differentiable*: an integer or boolean result, no array input, "
        "or a derivative that is zero (piecewise constant functions such as `floor`).",
        f"- **not supported**, with the reason: {legend}.",
        "- **NumPy versions**: the rows are the functions of the NumPy that generated the file. "
        "Under another NumPy 2.x minor version the test compares only the status and "
        "derivatives of the names both have (which names are aliases varies between versions); "
        "under the same minor version, the whole file.",
    ]
    lines = [f"<!-- generated from NumPy {numpy_version()} by `{COMMAND}`: do not edit -->",
             "# NumPy coverage", ""]
    for paragraph in intro:
        indent = "  " if paragraph.startswith("- ") else ""
        lines += textwrap.wrap(paragraph, 100, subsequent_indent=indent) if paragraph else [""]
    summary = (
        f"**Summary**: {len(table)} functions: {len(supported)} supported "
        f"({_counts([r.derivatives for r in supported], [BOTH, REVERSE, FORWARD, NONE])}), "
        f"{len(unsupported)} not supported "
        f"({_counts([r.reason for r in unsupported], list(REASON_TEXT))}).")
    lines += [""] + textwrap.wrap(summary, 100) + [
        "",
        "| name | status | derivatives | reason / notes |",
        "|---|---|---|---|",
    ]
    for row in table:
        lines.append("|" + "|".join(f" {c} " if c else " " for c in row.cells()) + "|")
    return "\n".join(lines) + "\n"


_VERSION = re.compile(r"<!-- generated from NumPy (\d+\.\d+) ")
_ROW = re.compile(r"^\| `([^`]+)` \|")


def _table_rows(text: str) -> dict[str, str]:
    """{name: "| name | status | derivatives |"}: the cells that do not depend on the NumPy
    version (the notes do: which names are aliases of which)."""
    return {m.group(1): "|".join(line.split("|")[:4]) + "|"
            for line in text.splitlines() if (m := _ROW.match(line))}


def compare(old: str, fresh: str) -> str:
    """'' when the file text ``old`` agrees with the ``fresh`` rendering, else the difference.
    A file made under another NumPy minor version is compared on the names both have: their
    status and derivatives."""
    match = _VERSION.search(old)
    if match is None or match.group(1) == numpy_version():
        if old == fresh:
            return ""
        return "\n".join(difflib.unified_diff(old.splitlines(), fresh.splitlines(), "file",
                                               "code", lineterm="", n=0))
    old_rows, new_rows = _table_rows(old), _table_rows(fresh)
    diffs = [f"-{old_rows[n]}\n+{new_rows[n]}" for n in sorted(old_rows.keys() & new_rows.keys())
             if old_rows[n] != new_rows[n]]
    if not diffs:
        return ""
    return (f"(the file was made with NumPy {match.group(1)}, this is NumPy {numpy_version()}: "
            "comparing status and derivatives of the names both have)\n" + "\n".join(diffs))


def stale_report(path: Path = DOC_PATH) -> str:
    """'' when the file at ``path`` agrees with the code, else what differs and how to fix it."""
    old = path.read_text() if path.exists() else ""
    difference = compare(old, render(rows()))
    if not difference:
        return ""
    return f"{path} is stale: run `{COMMAND}` to regenerate it.\n{difference}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 and print the difference when the file is stale")
    parser.add_argument("--output", type=Path, default=DOC_PATH, help=f"default: {DOC_PATH}")
    args = parser.parse_args(argv)
    try:
        if args.check:
            report = stale_report(args.output)
            print(report or f"{args.output} is up to date.")
            return 1 if report else 0
        text = render(rows())
    except CoverageError as e:
        print(e, file=sys.stderr)
        return 1
    args.output.write_text(text)
    summary = text[text.index("**Summary**"):text.index("\n\n|")]
    print(f"wrote {args.output}\n{summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
