"""The persistent compile cache: generated code as real modules on disk, compiled once per machine.

Numba caches compiled machine code per source file (``cache=True``), which functions made with
``exec`` from a string cannot use. So every generated kernel and entry function is written to a
module file named by a content hash, and compiled from that file:

    <cache dir>/modules/kernel_<hash>.py     one fused kernel (hash: its source + options)
    <cache dir>/modules/entry_<hash>.py      one graph's entry function
    <cache dir>/modules/__pycache__/...      Numba's own index and object code for them

The hash covers the generated source, the compile options, and the versions of tracejit,
Numba, llvmlite, NumPy and Python, so a file's name says everything its code depends on; an
entry's source names its kernels by their hashes. A second process that needs the same code
writes nothing and loads Numba's machine code without type inference or LLVM.

Robustness:
- files are written to a unique temporary name, then renamed, with a fixed modification time
  (Numba keys its index on the source file's time and size): two processes writing the same
  module, or forked workers (``multiprocessing``, ``pytest -n``), write identical files;
- Numba saves only successful compiles; a module file whose text is not what we generated is
  rewritten;
- an unreadable index or object file (truncated, corrupted) gives a warning, is discarded and
  the function recompiled: never a crash, never a wrong answer;
- a cache folder that cannot be written gives one warning, and compiling goes on without it.

``TRACEJIT_CACHE=0`` turns it off; ``TRACEJIT_CACHE_DIR`` moves it (default: the user's cache
folder, ``$XDG_CACHE_HOME/tracejit`` or ``~/.cache/tracejit``); ``tracejit.clear_cache()``
empties it.
"""
from __future__ import annotations

import hashlib
import os
import platform
import shutil
import sys
import uuid
import warnings
from pathlib import Path

from . import config

_FIXED_MTIME = 1_000_000_000  # every copy of a module file has this time: see above
_warned_unwritable: set[str] = set()


def enabled() -> bool:
    return bool(config.get("cache"))


def directory() -> Path:
    configured = config.get("cache_dir")
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tracejit"


_TAG: list[str] = []


def _version_tag() -> str:
    """Versions, plus a hash of the compiled helpers generated code calls into (their machine
    code is linked into every cached entry, so a change to them must miss)."""
    if not _TAG:
        import llvmlite
        import numba
        import numpy
        from . import __version__
        from .backends import blas, numba_runtime, vector_math
        helpers = hashlib.sha256()
        for module in (blas, numba_runtime, vector_math):
            helpers.update(Path(module.__file__).read_bytes())
        _TAG.append(f"tracejit {__version__} numba {numba.__version__} llvmlite "
                    f"{llvmlite.__version__} numpy {numpy.__version__} python "
                    f"{sys.version.split()[0]} {platform.machine()} helpers "
                    f"{helpers.hexdigest()[:16]}")
    return _TAG[0]


def key(source: str, options: str) -> str:
    """The content hash naming the module that holds ``source`` compiled with ``options``."""
    digest = hashlib.sha256(f"{_version_tag()}\n{options}\n{source}".encode())
    return digest.hexdigest()[:32]


def module_file(name: str, source: str) -> str | None:
    """The path of the module file ``name`` holding exactly ``source``, written if missing or
    different; None when the cache is off or its folder cannot be written."""
    if not enabled():
        return None
    folder = directory() / "modules"
    path = folder / f"{name}.py"
    try:
        if path.is_file() and path.read_text(encoding="utf-8") == source:
            return str(path)
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / f".{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
        temporary.write_text(source, encoding="utf-8")
        os.utime(temporary, (_FIXED_MTIME, _FIXED_MTIME))
        os.replace(temporary, path)
        return str(path)
    except OSError as e:
        if str(folder) not in _warned_unwritable:
            _warned_unwritable.add(str(folder))
            warnings.warn(f"tracejit: cannot write the compile cache at {folder} ({e}); "
                          "compiling without it (set TRACEJIT_CACHE_DIR to a writable folder, "
                          "or TRACEJIT_CACHE=0)", stacklevel=2)
        return None


def jit(pyfunc, cached: bool, **options):
    """``numba.njit(**options)(pyfunc)``, caching its machine code next to its module file
    when ``cached`` (the function must come from a file made by ``module_file``)."""
    import numba
    dispatcher = numba.njit(**options)(pyfunc)
    if cached:
        dispatcher._cache = _safe_cache_class()(pyfunc)  # what enable_caching() would set
    return dispatcher


_SAFE_CACHE = None


def _safe_cache_class():
    """A Numba FunctionCache that survives unreadable cache files (made on first use, so that
    importing tracejit does not import Numba)."""
    global _SAFE_CACHE
    if _SAFE_CACHE is None:
        from numba.core.caching import FunctionCache

        class SafeFunctionCache(FunctionCache):
            def load_overload(self, sig, target_context):
                try:
                    return super().load_overload(sig, target_context)
                except Exception as e:  # truncated or corrupted index / object file
                    self._discard(e)
                    return None

            def save_overload(self, sig, data):
                try:
                    super().save_overload(sig, data)
                except Exception as e:  # e.g. the index went bad between load and save
                    self._discard(e)

            def _discard(self, error):
                cache_file = self._cache_file
                warnings.warn(f"tracejit: unreadable compile cache entry "
                              f"{cache_file._index_path} ({type(error).__name__}: {error}); "
                              "discarded, recompiling", stacklevel=2)
                folder = os.path.dirname(cache_file._index_path)
                stem = os.path.basename(cache_file._index_path).rsplit(".", 2)[0]
                for entry in os.listdir(folder):
                    if entry.startswith(stem):
                        try:
                            os.unlink(os.path.join(folder, entry))
                        except OSError:
                            pass

        _SAFE_CACHE = SafeFunctionCache
    return _SAFE_CACHE


def clear_cache() -> None:
    """Empty the on-disk compile cache (compiled functions already in memory keep working)."""
    folder = directory() / "modules"
    if folder.exists():
        shutil.rmtree(folder, ignore_errors=True)
