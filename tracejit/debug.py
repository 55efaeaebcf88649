"""``TRACEJIT_DEBUG`` and ``TRACEJIT_DUMP_DIR``: what each compile prints and writes.

The ladder (each level prints everything below it too, to stderr):

1. every trace and compile: the signature, why it retraced (what differs from the nearest
   signature seen before), and the time in tracing, passes, code generation, and Numba or the
   disk cache; and every call served by a signature seen before, with its time;
2. every kernel: its kind, iteration shape, the primitives fused, bytes read and written, the
   user's lines, and its run time in one extra run after the first (not for functions with
   donated arguments, whose inputs the first run consumed);
3. every fusion decision, refusals with their reasons;
4. the generated source (entry function and kernels, annotated with the user's lines);
5. the IR after every pass.

``TRACEJIT_DUMP_DIR=folder`` writes, for every compiled signature, a subfolder
``<n>_<function>/`` with the same information as files (``introspect.dump``).
"""
from __future__ import annotations

import itertools
import sys
from pathlib import Path

from . import config, introspect

_dump_counter = itertools.count()


def level() -> int:
    return int(config.get("debug") or 0)


def say(text: str) -> None:
    print(text, file=sys.stderr)


def kernel_times(name: str, run, runtime) -> None:
    """Level 2: time every kernel of one more run of a signature just compiled (the first run
    compiles; the run after it is measured, kernel by kernel, with tracejit.profile)."""
    from . import profiler
    with profiler.profile(show=False) as p:
        run(runtime)  # the profiled path's first run compiles helpers for Python calls
        run(runtime)
    say(f"tracejit: {name}: kernel times of one run:\n{p.table()}")


def after_trace(name: str, lowered, signature: str) -> None:
    """Print levels 2-5 and write the dump folder for a signature just compiled."""
    depth = level()
    if depth >= 5:
        for stage, graph in lowered.stages.items():
            say(f"tracejit: {name}{signature}: IR after {stage}:\n{graph}")
    if depth >= 3 and lowered.fusion_report is not None:
        say(f"tracejit: {name}: fusion decisions:\n{lowered.fusion_report}")
    if depth >= 2:
        infos = lowered.kernels()
        say(f"tracejit: {name}: {len(infos)} kernel(s):\n" +
             "\n".join(f"  {k}" for k in infos))
    if depth >= 4 and getattr(lowered._run, "entry_source", ""):
        say(f"tracejit: {name}: generated source:\n{lowered.kernel_source()}")
    folder = config.get("dump_dir")
    if folder:
        target = Path(folder) / f"{next(_dump_counter):03d}_{name}"
        introspect.dump(lowered, target, name)
        if depth >= 1:
            say(f"tracejit: {name}{signature}: dumped to {target}")


def after_first_run(name: str, lowered, stats: dict) -> None:
    """Rewrite the dump's summary with the compile times known after the first call."""
    folder = config.get("dump_dir")
    if folder:
        matches = sorted(Path(folder).glob(f"*_{name}"))
        if matches:
            introspect.dump(lowered, matches[-1], name, stats)
