"""``tracejit.profile()``: where the time of compiled functions goes, kernel by kernel.

    with tracejit.profile() as p:
        for _ in range(100):
            step(params, x, y)
    # prints a table sorted by time; p.rows holds it

Inside the block, a compiled function runs its entry function as Python (the same generated
source) with every kernel and BLAS call timed; the kernels themselves are the same compiled
code. Calling them one by one from Python adds about a microsecond per kernel, which the table
includes: use it to see which kernels dominate, not to time a function end to end (for that,
time the calls outside the block). A signature's first call inside the block compiles and is
reported on its own row.
"""
from __future__ import annotations

import sys
import time
from contextlib import contextmanager

ACTIVE: list["Profile"] = []


class Profile:
    def __init__(self):
        self.rows: dict[tuple[str, str], list] = {}  # (function, what) -> [calls, seconds]

    def record(self, function: str, what: str, seconds: float) -> None:
        row = self.rows.setdefault((function, what), [0, 0.0])
        row[0] += 1
        row[1] += seconds

    def table(self) -> str:
        total = sum(s for (_, what), (_, s) in self.rows.items() if not what.startswith("("))
        lines = [f"{'function':16} {'kernel':60} {'calls':>7} {'total ms':>10} {'mean us':>9} "
                 f"{'share':>6}"]
        for (function, what), (calls, seconds) in sorted(self.rows.items(),
                                                         key=lambda r: -r[1][1]):
            share = f"{seconds / total:6.1%}" if total and not what.startswith("(") else ""
            lines.append(f"{function[:16]:16} {what[:60]:60} {calls:7d} {seconds * 1e3:10.3f} "
                         f"{seconds / calls * 1e6:9.1f} {share:>6}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


@contextmanager
def profile(show: bool = True):
    """Time every kernel of the compiled functions called inside the block; print the table
    (sorted by time) at the end when ``show``."""
    p = Profile()
    ACTIVE.append(p)
    try:
        yield p
    finally:
        ACTIVE.remove(p)
        if show:
            print(p.table(), file=sys.stderr)


class Timed:
    """A compiled callable whose calls are recorded in the active profiles."""

    def __init__(self, fn, function: str, what: str):
        self.fn, self.function, self.what = fn, function, what

    def __call__(self, *args):
        started = time.perf_counter()
        result = self.fn(*args)
        elapsed = time.perf_counter() - started
        for p in ACTIVE:
            p.record(self.function, self.what, elapsed)
        return result


class TimedModule:
    """A helper module (``_blas``, ``_rt``) whose functions are timed, by name."""

    def __init__(self, module, function: str):
        self._module, self._function = module, function

    def __getattr__(self, name):
        fn = getattr(self._module, name)
        return fn if name == "readable" else Timed(fn, self._function, name)
