"""Compile workers: separate processes that build compiled code into the disk cache.

A tiered function (``tracejit/tiers.py``) hands the build of a signature's code to a worker, so
that Numba's typing and LLVM (seconds, mostly holding the GIL) never run in the user's process.
The worker is sent the generated module texts and the entry's argument types
(``CompiledGraph.build_task``), compiles them with the same content-hashed names the caller uses
(``cache.py``), and answers when the machine code is on disk; the caller then loads it from
there (tens of milliseconds, no compile).

Workers are plain ``python -m tracejit.backends.compile_worker`` processes talking over their
stdin and stdout (length-prefixed pickles): not ``multiprocessing``, which would import the
user's main script again in every worker. A worker imports Numba as it starts, builds one task
at a time, and exits when its stdin closes (the caller exited or let it go). One that dies is
replaced by the next request; its task is compiled in the calling process instead.
"""
from __future__ import annotations

import atexit
import os
import pickle
import struct
import subprocess
import sys
import threading

_HEADER = struct.Struct("<Q")


def _send(stream, message) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _receive(stream):
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError("the compile worker closed its pipe")
    size = _HEADER.unpack(header)[0]
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("the compile worker closed its pipe")
    return pickle.loads(data)


class WorkerDied(Exception):
    """The worker process exited (or its pipe broke) before answering."""


class Worker:
    """One worker process, and the lock held by whoever has a task on it (``Pool``)."""

    def __init__(self):
        # The worker imports this tracejit, wherever the caller found it (its sys.path may
        # have been changed by the script, which the environment does not carry).
        package_root = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
        path = [package_root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                                 if p]
        env = dict(os.environ, TRACEJIT_COMPILE_WORKER="1", PYTHONPATH=os.pathsep.join(path))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tracejit.backends.compile_worker"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        self.lock = threading.Lock()
        self.pid = os.getpid()  # the process that started it (a forked child must not use it)

    def build(self, task: dict) -> dict:
        """Send ``task``, wait for the answer: {"ok": True, "seconds": s} or {"ok": False,
        "error": text}. WorkerDied when the process is gone. (Call with ``lock`` held.)"""
        try:
            _send(self.process.stdin, task)
            return _receive(self.process.stdout)
        except (EOFError, OSError, pickle.UnpicklingError) as e:
            try:  # (its pipe closes just before it exits)
                code = self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                code = None
            raise WorkerDied(f"compile worker {self.process.pid} " +
                             (f"exited with status {code}" if code is not None
                              else f"broke its pipe ({e})")) from None

    def alive(self) -> bool:
        return self.process.poll() is None

    def close(self) -> None:
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass
        if self.process.poll() is None:
            self.process.kill()


class Pool:
    """A few workers, started on first use; ``build`` picks an idle one (or waits for the one
    with the fewest waiters), replacing any that died."""

    def __init__(self, size: int):
        self.size = size
        self.workers: list[Worker] = []
        self.lock = threading.Lock()
        self.turn = 0

    def _prune(self) -> None:
        """Forget the workers that died (their pipes closed); call with ``lock`` held."""
        for w in [w for w in self.workers if not w.alive()]:
            w.close()
            self.workers.remove(w)

    def _reserve(self) -> Worker:
        """An idle worker (a new one while fewer than ``size`` run), its lock taken; when all
        are busy, the next in turn, once it is free."""
        with self.lock:
            self._prune()
            for w in self.workers:
                if w.lock.acquire(blocking=False):
                    return w
            if len(self.workers) < self.size:
                self.workers.append(Worker())
                self.workers[-1].lock.acquire()
                return self.workers[-1]
            self.turn += 1
            busy = self.workers[self.turn % len(self.workers)]
        busy.lock.acquire()
        return busy

    def build(self, task: dict) -> dict:
        """Build ``task`` on a worker (see ``Worker.build``)."""
        worker = self._reserve()
        try:
            return worker.build(task)
        finally:
            worker.lock.release()

    def start(self) -> None:
        """Start the workers now (they import Numba while the caller generates code)."""
        with self.lock:
            self._prune()
            while len(self.workers) < self.size:
                self.workers.append(Worker())

    def close(self) -> None:
        with self.lock:
            for w in self.workers:
                w.close()
            self.workers = []


_pools: dict[int, Pool] = {}  # by the pid that made it


def pool(size: int) -> Pool:
    """This process's pool (a forked child makes its own: the parent's pipes are not its)."""
    mine = _pools.get(os.getpid())
    if mine is None:
        mine = _pools[os.getpid()] = Pool(size)
    mine.size = size
    return mine


def _close_all() -> None:
    mine = _pools.pop(os.getpid(), None)
    if mine is not None:
        mine.close()


atexit.register(_close_all)


def _waiting(stream) -> bool:
    """Whether a task is already waiting on ``stream`` (True where that cannot be known)."""
    import select
    try:
        return bool(select.select([stream], [], [], 0)[0])
    except (OSError, ValueError):
        return True


def _serve() -> None:
    """The worker's loop: tasks in on stdin, answers out on the original stdout (Python's
    ``sys.stdout`` goes to stderr, so nothing else can write into the answers)."""
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    tasks = sys.stdin.buffer
    import warnings
    warnings.simplefilter("ignore")
    import numba  # noqa: F401  (start-up paid while the caller traces and runs tier 0)
    from tracejit.backends import numba_cpu
    if not _waiting(tasks):  # (idle: Numba's set-up now, not in the first task)
        numba_cpu.warm_up()
    while True:
        try:
            task = _receive(tasks)
        except EOFError:
            return
        if task.get("exit"):  # (tests: a worker that dies mid-task)
            os._exit(task["exit"])
        try:
            answer = {"ok": True, "seconds": numba_cpu.build_in_this_process(task)}
        except Exception as e:  # the caller compiles again in-process to say it in full
            answer = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        _send(answers, answer)


if __name__ == "__main__":
    _serve()
