"""The differential fuzzer: random valid NumPy programs, run by NumPy and by tracejit.

    python -m tracejit.testing.fuzz --backend numba_cpu --n 500 --seed 0
    python -m tracejit.testing.fuzz --backend numba_cpu --grad --n 200 --shrink
    NUMBA_ENABLE_CUDASIM=1 python -m tracejit.testing.fuzz --backend numba_cuda --n 200

Each program (``programs.py``) is run under NumPy and under ``tracejit.compile`` on the chosen
backend; values, shapes and dtypes must agree (floats to a tolerance per dtype, scaled to the
output's magnitude; everything else exactly). With ``--grad`` the program ends in a scalar loss
(``sum(sin(out))`` over its float outputs) and ``compile(grad(f))`` over its float64 inputs is
compared with the interpreter's gradient and with central finite differences along a random
direction (skipped where two step sizes disagree: the loss is not smooth there, as at a kink of
``abs`` or a branch of ``cond``). A failing program is shrunk (``--shrink``): outputs dropped,
statements cut (their value becomes an input) or bypassed, inputs made contiguous, while the
failure stays the same; the result is printed as a runnable script.

Program ``k`` of seed ``s`` is always the same program: ``--seed s --index k`` reruns it alone.
"""
from __future__ import annotations

import argparse
import os
import random
import re
import sys
import time
import traceback
import warnings
from collections import Counter
from dataclasses import dataclass, field, replace

import numpy as np

from .programs import Input, Program, Stmt, names_in, generate

RTOL = {np.dtype(np.float16): 1e-2, np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-8}


@dataclass
class Outcome:
    kind: str  # "ok", "error", "mismatch", "grad-mismatch"
    detail: str = ""
    note: str = ""  # e.g. why finite differences were skipped
    trace: str = ""  # an error's last frames

    @property
    def failed(self) -> bool:
        return self.kind != "ok"

    def signature(self) -> str:
        """What must stay the same while shrinking: the kind, and an error's type."""
        if self.kind == "error":
            return "error:" + self.detail.split(":", 1)[0]
        return self.kind

    def category(self) -> str:
        """The failure with numbers and names blurred: failures of one class share it."""
        first = self.detail.splitlines()[0] if self.detail else ""
        first = re.sub(r"<fuzz program [0-9a-f]+>", "<program>", first)
        first = re.sub(r"\d+", "N", first)
        return f"{self.kind}: {first[:120]}"


def program(seed, index, grad=False, max_stmts=8) -> Program:
    return generate(random.Random(f"{seed}-{index}"), grad=grad, max_stmts=max_stmts)


# --- comparing ---------------------------------------------------------------------------------
def _leaves(value) -> list:
    return list(value) if isinstance(value, (tuple, list)) else [value]


def compare(actual, expected, rtol=None) -> str | None:
    """None if ``actual`` is NumPy's ``expected``, else what differs."""
    actual, expected = _leaves(actual), _leaves(expected)
    if len(actual) != len(expected):
        return f"{len(actual)} outputs, NumPy has {len(expected)}"
    for k, (a, e) in enumerate(zip(actual, expected)):
        if not isinstance(a, np.ndarray):
            return f"output {k} is a {type(a).__name__}, not an ndarray"
        e = np.asarray(e)
        if a.shape != e.shape or a.dtype != e.dtype:
            return f"output {k}: {a.dtype}{list(a.shape)}, NumPy has {e.dtype}{list(e.shape)}"
        if e.dtype.kind in "fc":
            tol = rtol or RTOL[e.dtype]
            finite = np.abs(e[np.isfinite(e)].astype(np.float64))
            atol = tol * max(1.0, float(finite.max(initial=0.0)))
            with np.errstate(all="ignore"):
                close = np.isclose(a, e, rtol=tol, atol=atol, equal_nan=True)
            if not close.all():
                where = tuple(int(i) for i in np.argwhere(~close)[0])
                return (f"output {k}: {(~close).sum()} of {close.size} values differ, e.g. at "
                        f"{where}: {a[where]!r}, NumPy has {e[where]!r}")
        elif not np.array_equal(a, e):
            where = tuple(int(i) for i in np.argwhere(a != e)[0])
            return f"output {k} differs at {where}: {a[where]!r}, NumPy has {e[where]!r}"
    return None


def _error(e: BaseException) -> Outcome:
    message = str(e).strip().splitlines()
    return Outcome("error", f"{type(e).__name__}: {message[0] if message else ''}",
                   trace="".join(traceback.format_exception(type(e), e, e.__traceback__)[-6:]))


# --- running one program ---------------------------------------------------------------------
def check(prog: Program, backend: str) -> Outcome:
    """Run ``prog`` on ``backend`` against NumPy (and finite differences, for ``grad``)."""
    import tracejit

    if prog.grad:
        return _check_grad(prog, backend)
    fn = prog.function()
    expected = [prog.values[o] for o in prog.outputs]
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            actual = _call(fn, backend, prog.args())
    except Exception as e:  # noqa: BLE001 - every exception is a finding
        return _error(e)
    problem = compare(actual, expected if len(expected) > 1 else expected[0], _rtol(prog))
    return Outcome("mismatch", problem) if problem else Outcome("ok")


def _call(fn, backend: str, args):
    """``fn(*args)`` compiled for ``backend``; ``glue`` is numba_cpu's middle tier (the entry
    function run as Python around compiled kernels, ``backends/glue.py``), after the run that
    records the kernels' argument types (kernels evaluated by the interpreter)."""
    import tracejit
    from tracejit import pytree
    from tracejit.api import _to_runtime
    from tracejit.backends import glue

    if backend != "glue":
        return tracejit.compile(fn, backend=backend, tiered=False)(*args)
    compiled = tracejit.compile(fn, backend="numba_cpu", tiered=False)
    entry, key, leaves, _ = compiled._entry(args, {})
    runtime = [_to_runtime(leaf, k) for leaf, k in zip(leaves, key[1])]
    graph = entry.run
    if graph.note is not None:  # (float16: the whole graph runs on the interpreter)
        return pytree.unflatten(entry.out_tree, graph(runtime))
    glue.kernel_signatures(graph, runtime)
    return pytree.unflatten(entry.out_tree, graph.glue()(runtime))


def _rtol(prog: Program) -> float | None:
    """The tolerance of the least precise float the program computes in: a float32 value
    widened to float64 keeps float32's last-bit differences (composites such as arccos =
    atan2(sqrt(1 - x*x), x), contracted multiply-adds, reassociated sums)."""
    tols = [RTOL[np.asarray(v).dtype] for v in prog.values.values()
            if np.asarray(v).dtype in RTOL]
    return max(tols, default=None)


def _check_grad(prog: Program, backend: str) -> Outcome:
    import tracejit

    argnums = prog.grad_argnums()
    if not argnums:
        return Outcome("ok", note="no float64 input to differentiate")
    fn, args = prog.function(), prog.args()
    gradient = tracejit.grad(fn, argnums=argnums)
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = _call(gradient, backend, args)
            reference = got if backend == "interpreter" else \
                tracejit.compile(gradient, backend="interpreter")(*args)
    except Exception as e:  # noqa: BLE001
        return _error(e)
    problem = compare(got, reference, rtol=1e-7)
    if problem:
        return Outcome("grad-mismatch", f"against the interpreter's gradient: {problem}")
    return _finite_differences(fn, args, argnums, got, prog.values.values())


def _finite_differences(fn, args, argnums, grads, values) -> Outcome:
    if any(np.abs(args[k]).max(initial=0.0) > 1e4 for k in argnums):
        # A step of 1e-6 is lost in the rounding of such values.
        return Outcome("ok", note="inputs too large for finite differences")
    floats = [np.asarray(v, np.float64) for v in values if np.asarray(v).dtype.kind == "f"]
    if any(np.abs(v).max(initial=0.0) > 1e6 for v in floats if np.isfinite(v).all()):
        # sin(exp(34)): the loss turns a full period within a step.
        return Outcome("ok", note="values too large for finite differences")
    rng = np.random.default_rng(0)
    directions = {k: rng.standard_normal(np.shape(args[k])) for k in argnums}

    def loss_at(h):
        moved = list(args)
        for k in argnums:
            moved[k] = args[k] + h * directions[k]
        return float(fn(*moved))

    h = 1e-6
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        at, ahead, behind = loss_at(0.0), loss_at(h), loss_at(-h)
    central = (ahead - behind) / (2 * h)
    exact = sum(float(np.sum(np.asarray(g) * directions[k])) for g, k in zip(grads, argnums))
    if not all(np.isfinite([at, ahead, behind, exact])):
        return Outcome("ok", note="loss or gradient not finite")
    scale = 1.0 + abs(central) + abs(exact)
    # One-sided slopes that disagree: a kink here (abs at 0, a tie in max, a cond's branch
    # switching), where the gradient is a convention and finite differences say nothing.
    if abs((ahead - at) / h - (at - behind) / h) > 1e-3 * scale:
        return Outcome("ok", note="not smooth here")
    if abs(exact - central) > 1e-4 * scale:
        return Outcome("grad-mismatch", f"directional derivative {exact!r}, finite differences "
                                        f"{central!r}")
    return Outcome("ok")


# --- shrinking ---------------------------------------------------------------------------------
def _uses(prog: Program) -> set[str]:
    needed = set(prog.outputs)
    for s in reversed(prog.stmts):
        if s.out in needed:
            needed |= names_in(s.expr)
    return needed


def _pruned(prog: Program) -> Program:
    """Without statements and inputs no output needs."""
    needed = _uses(prog)
    return replace(prog, stmts=[s for s in prog.stmts if s.out in needed],
                   inputs=[i for i in prog.inputs if i.name in needed])


def _candidates(prog: Program):
    """Smaller programs, most promising first."""
    if len(prog.outputs) > 1:
        for o in prog.outputs:
            yield replace(prog, outputs=[o])
    for k in reversed(range(len(prog.stmts))):  # cut: the statement's value becomes an input
        s = prog.stmts[k]
        value = prog.values[s.out]
        if prog.grad and np.asarray(value).dtype.kind != "f":
            continue
        cut = Input(s.out, np.array(value, copy=True))
        yield replace(prog, stmts=prog.stmts[:k] + prog.stmts[k + 1:],
                      inputs=prog.inputs + [cut])
    for k in reversed(range(len(prog.stmts))):  # bypass: read an operand instead
        s = prog.stmts[k]
        out = np.asarray(prog.values[s.out])
        for name in sorted(names_in(s.expr)):
            v = np.asarray(prog.values[name])
            if v.shape == out.shape and v.dtype == out.dtype:
                yield _renamed(prog, k, name)
    for k, i in enumerate(prog.inputs):
        if i.layout not in ("contiguous", "scalar"):
            inputs = list(prog.inputs)
            inputs[k] = Input(i.name, np.array(i.value, copy=True))
            yield replace(prog, inputs=inputs)
        elif i.layout == "contiguous" and i.base.dtype.kind == "f" and i.base.size:
            rounded = np.round(i.base, 1)
            if not np.array_equal(rounded, i.base):
                inputs = list(prog.inputs)
                inputs[k] = Input(i.name, rounded)
                yield replace(prog, inputs=inputs)


def _renamed(prog: Program, k: int, name: str) -> Program:
    old = prog.stmts[k].out
    pattern = re.compile(rf"\b{old}\b")
    stmts = [Stmt(s.out, pattern.sub(name, s.expr)) for s in prog.stmts[k + 1:]]
    outputs = [name if o == old else o for o in prog.outputs]
    return replace(prog, stmts=prog.stmts[:k] + stmts, outputs=outputs)


def shrink(prog: Program, backend: str, outcome: Outcome, budget: int = 300,
           log=lambda text: None) -> tuple[Program, Outcome]:
    """The smallest program found that fails the same way (``Outcome.signature``)."""
    want = outcome.signature()
    prog = _pruned(prog)
    progress = True
    while progress and budget > 0:
        progress = False
        for candidate in _candidates(prog):
            if budget <= 0:
                break
            try:
                candidate = _pruned(candidate).evaluate()
            except Exception:  # noqa: BLE001 - NumPy refuses the smaller program
                continue
            if not candidate.stmts and not candidate.grad:
                continue
            budget -= 1
            result = check(candidate, backend)
            if result.failed and result.signature() == want:
                prog, outcome, progress = candidate, result, True
                log(f"  shrunk to {len(prog.stmts)} statements")
                break
    return prog, outcome


# --- many programs -----------------------------------------------------------------------------
@dataclass
class Report:
    backend: str
    grad: bool
    ran: int = 0
    notes: Counter = field(default_factory=Counter)
    failures: list = field(default_factory=list)  # (index, Outcome, Program)
    seconds: float = 0.0

    def summary(self) -> str:
        mode = "gradients" if self.grad else "forward"
        lines = [f"{self.backend}, {mode}: {self.ran} programs, {len(self.failures)} failed "
                 f"({self.seconds:.0f} s)"]
        lines += [f"  {n} x {note}" for note, n in sorted(self.notes.items())]
        by_class = Counter(o.category() for _, o, _ in self.failures)
        lines += [f"  FAILED {n} x {c}" for c, n in by_class.most_common()]
        return "\n".join(lines)


def run(backend: str, n: int, seed: int = 0, grad: bool = False, start: int = 0,
        shrink_failures: bool = False, max_stmts: int = 8, log=print,
        deadline: float | None = None) -> Report:
    """Programs ``start .. start + n`` of ``seed``; none is started after ``deadline`` (a
    ``time.time()``)."""
    report = Report(backend, grad)
    started = time.perf_counter()
    for index in range(start, start + n):
        if deadline is not None and time.time() > deadline:
            break
        prog = program(seed, index, grad, max_stmts)
        outcome = check(prog, backend)
        report.ran += 1
        if outcome.note:
            report.notes[outcome.note] += 1
        if outcome.failed:
            log(f"program {index} (seed {seed}): {outcome.kind}: {outcome.detail}")
            if shrink_failures:
                prog, outcome = shrink(prog, backend, outcome)
                log(prog.snippet(backend))
            report.failures.append((index, outcome, prog))
    report.seconds = time.perf_counter() - started
    return report


def _worker(job):
    backend, n, seed, grad, start, shrink_failures, max_stmts, deadline, poisoned = job
    if poisoned:
        from .poison import poison
        poison()
    lines = []
    report = run(backend, n, seed, grad, start, shrink_failures, max_stmts, log=lines.append,
                 deadline=deadline)
    report.failures = [(i, o, None) for i, o, _ in report.failures]  # programs stay behind
    return report, lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tracejit.testing.fuzz",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--backend", default="numba_cpu",
                        help="interpreter, numba_cpu, numba_cuda, or glue (numba_cpu's "
                             "middle tier: the entry run as Python; default numba_cpu)")
    parser.add_argument("--n", type=int, default=100, help="how many programs (default 100)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start", type=int, default=0, help="index of the first program")
    parser.add_argument("--index", type=int, help="run (and print) only program INDEX")
    parser.add_argument("--grad", action="store_true", help="check gradients")
    parser.add_argument("--shrink", action="store_true", help="shrink and print failures")
    parser.add_argument("--max-stmts", type=int, default=8, help="statements per program")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes")
    parser.add_argument("--seconds", type=float,
                        help="start no program after this many seconds (the summary says how "
                             "many ran)")
    parser.add_argument("--poison", action="store_true",
                        help="numba_cuda on the simulator: new device arrays start as NaN/77/True, "
                             "as a real GPU's reused memory does (tracejit/testing/poison.py)")
    parser.add_argument("--opt", action="store_true",
                        help="compile at Numba's default optimisation (default: NUMBA_OPT=0, "
                             "about a third faster to compile)")
    args = parser.parse_args(argv)
    if not args.opt:
        os.environ.setdefault("NUMBA_OPT", "0")
    os.environ.setdefault("TRACEJIT_VERIFY", "1")  # the IR verifier after every pass, as in tests
    if args.poison:
        from .poison import poison
        poison()
    if args.index is not None:
        prog = program(args.seed, args.index, args.grad, args.max_stmts)
        print(prog.snippet(args.backend))
        outcome = check(prog, args.backend)
        print(outcome.kind, outcome.detail, outcome.note)
        if outcome.failed and args.shrink:
            prog, outcome = shrink(prog, args.backend, outcome, log=print)
            print(prog.snippet(args.backend))
            print(outcome.kind, outcome.detail)
        return int(outcome.failed)
    deadline = time.time() + args.seconds if args.seconds else None
    if args.jobs > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        chunk = -(-args.n // (4 * args.jobs))
        jobs = [(args.backend, min(chunk, args.n - s), args.seed, args.grad, args.start + s,
                 args.shrink, args.max_stmts, deadline, args.poison)
                for s in range(0, args.n, chunk)]
        report = Report(args.backend, args.grad)
        started = time.perf_counter()
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
            for part, lines in pool.map(_worker, jobs):
                for line in lines:
                    print(line, flush=True)
                report.ran += part.ran
                report.notes.update(part.notes)
                report.failures += part.failures
        report.seconds = time.perf_counter() - started
    else:
        report = run(args.backend, args.n, args.seed, args.grad, args.start, args.shrink,
                     args.max_stmts, log=lambda line: print(line, flush=True), deadline=deadline)
    print(report.summary())
    return int(bool(report.failures))


if __name__ == "__main__":
    sys.exit(main())
