"""Recompilation made visible: what a compiled function has traced, and why it traced again.

A compiled function traces once per signature: the arguments' tree structure, every leaf's
shape, dtype and weakness, and the static arguments' values. This module describes signatures
in words, finds what differs between two of them, and names what keeps changing when a function
retraces again and again (``TRACEJIT_RETRACE_WARNING``, ``TRACEJIT_EXPLAIN_CACHE_MISSES``). It
also notices ``compile`` applied over and over to new function objects made from the same code
(a lambda or inner function defined in a loop), each of which traces from scratch.
"""
from __future__ import annotations

import sys
import warnings
from typing import NamedTuple

from . import config, pytree
from .ir import TensorType


class CacheInfo(NamedTuple):
    """``compiled.cache_info()``: calls served by a signature seen before (``hits``), calls that
    traced a new one (``misses``), traces, backend compiles (``compiles``: code generated and
    compiled by Numba in this process), compiles served by the disk cache (``disk_loads``), and
    the signatures kept (TRACEJIT_MAX_SIGNATURES), in words, and traces whose compiled code
    was an earlier signature's (``reused``: a new shape of the same ranks and dtypes)."""
    hits: int
    misses: int
    traces: int
    compiles: int
    disk_loads: int
    signatures: list
    reused: int = 0  # new signatures served by compiled code of the same ranks and dtypes


def _leaves(key) -> dict[str, str]:
    """Argument path -> its type in words, static arguments included."""
    treedef, types, statics = key
    paths = [pretty_path(p) for p in pytree.leaf_paths(treedef)]
    described = {p: str(TensorType(shape, dtype, weak)) for p, (shape, dtype, weak)
                 in zip(paths, types)}
    for where, value in statics:
        name = f"args[{where}]" if isinstance(where, int) else f"kwargs[{where!r}]"
        described[name] = f"static {value!r}"
    return described


def pretty_path(path: str) -> str:
    # Paths come as "[0][i]..." over (args, kwargs): show args[i] / kwargs['k'].
    if path.startswith("[0]"):
        return "args" + path[3:]
    if path.startswith("[1]"):
        return "kwargs" + path[3:]
    return path


def describe(key) -> str:
    """A signature in words: ``(args[0]: f32[3], args[1]: static 2)``."""
    return "(" + ", ".join(f"{p}: {t}" for p, t in _leaves(key).items()) + ")"


def differences(old, new) -> list[str]:
    """What changed from signature ``old`` to ``new``, one phrase per argument."""
    before, after = _leaves(old), _leaves(new)
    changes = []
    for path in list(before) + [p for p in after if p not in before]:
        a, b = before.get(path), after.get(path)
        if a == b:
            continue
        if a is None:
            changes.append(f"{path} is new ({b})")
        elif b is None:
            changes.append(f"{path} is gone (was {a})")
        else:
            changes.append(f"{path} was {a}, now {b}")
    if not changes and old[0] != new[0]:
        changes.append("the arguments' tree structure changed")
    return changes


def explain_miss(name: str, seen: list, key) -> None:
    """Print (``TRACEJIT_EXPLAIN_CACHE_MISSES``) why ``key`` missed: its differences from the
    nearest signature seen before."""
    if not seen:
        print(f"tracejit: {name}: first trace, signature {describe(key)}", file=sys.stderr)
        return
    nearest = min(seen, key=lambda old: len(differences(old, key)))
    print(f"tracejit: {name}: retracing (signature {len(seen) + 1}); against the nearest "
          f"signature seen before: {'; '.join(differences(nearest, key))}", file=sys.stderr)


def warn_if_retracing(name: str, seen, traces: int, where: str) -> None:
    """After ``retrace_warning`` traces, warn once naming the arguments that keep changing."""
    limit = config.get("retrace_warning")
    if not limit or traces != limit:
        return
    varying: dict[str, set] = {}
    for key in seen:
        for path, text in _leaves(key).items():
            varying.setdefault(path, set()).add(text)
    changing = [f"{p} ({', '.join(sorted(v)[:4])}{', ...' if len(v) > 4 else ''})"
                for p, v in varying.items() if len(v) > 1 or
                any(p not in _leaves(k) for k in seen)]
    what = "; ".join(changing) or "the arguments' tree structure"
    warnings.warn(f"tracejit: {name}{where} has been traced {limit} times. Changing: {what}. "
                  "A new shape of the same ranks and dtypes only traces again (about a "
                  "millisecond: the compiled code is reused); a new dtype, rank or static value "
                  "also compiles. If dtypes, ranks or static values change, pass a changing "
                  "configuration value as an array rather than a static argument. "
                  "(TRACEJIT_RETRACE_WARNING sets the count; TRACEJIT_EXPLAIN_CACHE_MISSES=1 "
                  "prints every retrace.)", stacklevel=5)


_functions_per_code: dict = {}  # code object -> number of compiled functions made from it


def note_new_function(fun, where: str) -> None:
    """Warn once when compile() has traced a third function object with the same code."""
    code = getattr(fun, "__code__", None)
    if code is None:
        return
    count = _functions_per_code.get(code, 0) + 1
    _functions_per_code[code] = count
    if count == 3:
        warnings.warn(
            f"tracejit: compile() has now traced 3 different function objects made from the "
            f"same code ({getattr(fun, '__qualname__', '?')}{where}): each new function object "
            "traces and runs the passes again (the compiled code itself is reused). "
            "This happens when `tracejit.compile(lambda ...)` or a decorated inner function is "
            "created inside a loop or a function called repeatedly; create the compiled "
            "function once and reuse it.", stacklevel=5)


def function_location(fun) -> str:
    code = getattr(fun, "__code__", None)
    return f" at {code.co_filename}:{code.co_firstlineno}" if code is not None else ""


def log_compile(name: str, key, stats: dict) -> None:
    """One line per compile (``TRACEJIT_LOG_COMPILES``)."""
    parts = [f"{k} {v * 1e3:.1f} ms" for k, v in stats.items()
             if isinstance(v, float) and k != "total"]
    print(f"tracejit: compiled {name}{describe(key)} in {stats.get('total', 0.0) * 1e3:.1f} ms "
          f"({', '.join(parts)})", file=sys.stderr)
