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

The cache runs what it finds, so it trusts only what it wrote:
- the folders are created private to the user (0700); a folder of another user, or one that
  others may write to, gives one warning and the cache is off for the process;
- a module file must be byte for byte the text its name is the hash of, else one warning names
  it and it is written again, its Numba files deleted (the code run is always the text generated
  in this process; the file is there for Numba, which keys its index on it);
- Numba's index and object files are written sealed: a first line holding the SHA-256 of the rest
  and the version tag (``_seal``). A file that is not, or whose tag is not this process's, or
  that fails to load, gives one warning naming it; it is deleted and the function recompiled;
- files are written to a unique temporary name, then renamed, with a fixed modification time:
  two processes writing the same module, or forked workers (``multiprocessing``,
  ``pytest -n``), write identical files, and a reader never sees half a file;
- a failed write (a full disk, a read-only folder) gives one warning, and the cache is off for
  the process; compiling goes on without it.

``TRACEJIT_CACHE=0`` turns it off; ``TRACEJIT_CACHE_DIR`` moves it (default: the user's cache
folder, ``$XDG_CACHE_HOME/tracejit`` or ``~/.cache/tracejit``); ``tracejit.clear_cache()``
empties it.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
import pickle
import platform
import shutil
import sys
import uuid
import warnings
from pathlib import Path

from . import config

_FIXED_MTIME = 1_000_000_000  # every copy of a module file has this time: see above
_unusable: dict[str, str] = {}  # cache folder -> why this process no longer uses it


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
    """The path of the module file ``name`` holding exactly ``source``, written if missing and
    rewritten (after a warning) if different; None when the cache is off."""
    folder = _modules_folder()
    if folder is None:
        return None
    path = folder / f"{name}.py"
    expected = source.encode()
    try:
        found = path.read_bytes()
        if found == expected:
            return str(path)
        _discard(path, "truncated" if expected.startswith(found) else
                 "its text is not the one its name is the hash of")
    except FileNotFoundError:
        pass
    except OSError as e:
        _discard(path, f"unreadable ({e})")
    try:
        _write(path, expected)
    except OSError as e:
        _turn_off(folder.parent, f"cannot write the compile cache at {folder} ({e})")
        return None
    return str(path)


def _modules_folder() -> Path | None:
    """``<cache dir>/modules``, made private to the user if missing; None (after one warning)
    when the cache is off, its folders are open to other users, or writing to them failed."""
    if not enabled():
        return None
    root = directory()
    if str(root) in _unusable:
        return None
    modules = root / "modules"
    try:
        for folder in (root, modules, modules / "__pycache__"):  # each checked before used
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            problem = _open_to_others(folder)
            if problem:
                _turn_off(root, problem)
                return None
    except OSError as e:
        _turn_off(root, f"cannot write the compile cache at {root} ({e})")
        return None
    return modules


def _open_to_others(folder: Path) -> str | None:
    """Why users other than this one (and root) could change what ``folder`` holds, if so."""
    if os.name != "posix":
        return None
    stat = folder.stat()
    if stat.st_uid not in (0, os.getuid()):
        return f"the compile cache folder {folder} belongs to another user"
    if stat.st_mode & 0o022:
        return (f"the compile cache folder {folder} can be written by other users (mode "
                f"{stat.st_mode & 0o777:o}; the cache runs the code it finds, so `chmod 700` it)")
    return None


def _turn_off(root: Path, why: str) -> None:
    """Stop using the cache at ``root`` for the rest of the process, with one warning."""
    if str(root) not in _unusable:
        _unusable[str(root)] = why
        warnings.warn(f"tracejit: {why}; compiling without the disk cache (set "
                      "TRACEJIT_CACHE_DIR to a private writable folder, or TRACEJIT_CACHE=0)",
                      stacklevel=2)


def _write(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all: under a unique temporary name, then renamed."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        temporary.write_bytes(data)
        os.utime(temporary, (_FIXED_MTIME, _FIXED_MTIME))
        os.replace(temporary, path)
    except OSError:
        temporary.unlink(missing_ok=True)
        raise


def _discard(path: Path, why: str) -> None:
    """Warn that the cache file ``path`` is bad, and delete it with every Numba file of its
    module (Numba names them ``<module>.<function>-<line>.py<version>...``)."""
    warnings.warn(f"tracejit: discarded the compile cache file {path}: {why}; recompiling",
                  stacklevel=2)
    numba_folder = path.parent / "__pycache__" if path.suffix == ".py" else path.parent
    module = path.name.split(".")[0]
    for doomed in [path, *numba_folder.glob(f"{module}.*")]:
        with contextlib.suppress(OSError):
            doomed.unlink()


# --- Numba's index and object files, sealed ---------------------------------------------------

_SEAL = b"tracejit-cache sha256="


class CorruptCacheFile(Exception):
    """A cache file that is not what tracejit wrote (``why`` says how it differs)."""

    def __init__(self, path: Path, why: str):
        super().__init__(f"{path}: {why}")
        self.path, self.why = path, why


def _seal(payload: bytes, tag: str | None = None) -> bytes:
    """``payload`` behind a first line holding its SHA-256 and the version tag."""
    digest = hashlib.sha256(payload).hexdigest()
    return _SEAL + f"{digest} {tag or _version_tag()}\n".encode() + payload


def _unseal(path: Path) -> bytes:
    """The payload of the sealed file ``path``, or CorruptCacheFile saying what is wrong."""
    header, newline, payload = path.read_bytes().partition(b"\n")
    if not header.startswith(_SEAL) or not newline:
        raise CorruptCacheFile(path, "not a complete tracejit cache file")
    digest, _, tag = header[len(_SEAL):].decode(errors="replace").partition(" ")
    if hashlib.sha256(payload).hexdigest() != digest:
        raise CorruptCacheFile(path, "its content does not match its SHA-256")
    if tag != _version_tag():
        raise CorruptCacheFile(path, f"written for other versions ({tag})")
    return payload


def jit(pyfunc, cached: bool, **options):
    """``numba.njit(**options)(pyfunc)``, caching its machine code next to its module file
    when ``cached`` (the function must come from a file made by ``module_file``)."""
    import numba
    dispatcher = numba.njit(**options)(pyfunc)
    if cached:
        try:
            dispatcher._cache = _sealed_cache_class()(pyfunc)  # what enable_caching() would set
        except (OSError, RuntimeError) as e:  # RuntimeError: Numba found __pycache__ unwritable
            _turn_off(directory(), f"cannot write the compile cache at {directory()} ({e})")
    return dispatcher


_SEALED_CACHE = None


def _sealed_cache_class():
    """A Numba FunctionCache writing sealed files into ``modules/__pycache__`` only, checking
    them before use (made on first use, so that importing tracejit does not import Numba)."""
    global _SEALED_CACHE
    if _SEALED_CACHE is not None:
        return _SEALED_CACHE
    from numba.core import caching

    class SealedCacheFile(caching.IndexDataCacheFile):
        def _load_index(self):
            try:
                stream = io.BytesIO(_unseal(Path(self._index_path)))
            except FileNotFoundError:
                return {}
            version = pickle.load(stream)
            if version != self._version:
                raise CorruptCacheFile(Path(self._index_path), f"written by Numba {version}")
            stamp, overloads = pickle.loads(stream.read())
            return overloads if stamp == self._source_stamp else {}  # (stamp: a source hash)

        def _load_data(self, name):
            return pickle.loads(_unseal(Path(self._data_path(name))))

        @contextlib.contextmanager
        def _open_for_write(self, filepath):  # both of Numba's writers come through here
            buffer = io.BytesIO()
            yield buffer
            _write(Path(filepath), _seal(buffer.getvalue()))

    class InTreeOnly(caching.CompileResultCacheImpl):
        # never NUMBA_CACHE_DIR or ~/.cache/numba: every file of the cache stays in its folder
        _locator_classes = [getattr(caching, "InTreeCacheLocator", None)
                            or caching._InTreeCacheLocator]  # (renamed in Numba 0.6x)

    class SealedFunctionCache(caching.FunctionCache):
        _impl_class = InTreeOnly

        def __init__(self, py_func):
            super().__init__(py_func)
            self._cache_file = SealedCacheFile(self._cache_path, self._impl.filename_base,
                                               self._cache_file._source_stamp)
            self._root = Path(self._cache_path).parent.parent  # <root>/modules/__pycache__

        def load_overload(self, sig, target_context):
            if str(self._root) in _unusable:
                return None
            if not os.path.exists(self._cache_file._index_path):
                return None  # (nothing cached: Numba's set-up, refresh(), not paid for that)
            try:
                return super().load_overload(sig, target_context)
            except CorruptCacheFile as e:
                _discard(e.path, e.why)
            except Exception as e:  # unreadable, or sealed and still failing to load
                _discard(Path(self._cache_file._index_path), f"{type(e).__name__}: {e}")
            return None

        def save_overload(self, sig, data):
            if str(self._root) in _unusable:
                return
            try:
                super().save_overload(sig, data)
            except OSError as e:
                _turn_off(self._root, f"cannot write the compile cache at {self._cache_path} "
                                      f"({e})")
            except CorruptCacheFile as e:  # the index went bad between load and save
                _discard(e.path, e.why)
            except Exception as e:  # never fail a call for want of saving it
                _discard(Path(self._cache_file._index_path), f"{type(e).__name__}: {e}")

    _SEALED_CACHE = SealedFunctionCache
    return _SEALED_CACHE


def clear_cache() -> None:
    """Empty the on-disk compile cache (compiled functions already in memory keep working)."""
    folder = directory() / "modules"
    if folder.exists():
        shutil.rmtree(folder, ignore_errors=True)
