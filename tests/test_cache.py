"""The persistent compile cache and recompilation reporting.

Cross-process behaviour is tested with real processes: a cold cache, a warm one, corrupted
files, two writers at once, the cache switched off.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp
from tracejit import cache

# Run in a fresh process: compile three functions (elementwise, a row kernel, a gradient with
# matmuls), save their results, and report how each signature was compiled.
SCRIPT = textwrap.dedent('''
    import sys
    import numpy as np
    import tracejit
    import tracejit.numpy as tnp

    def gelu(x):
        return 0.5 * x * (1.0 + tnp.tanh(0.7978845608 * (x + 0.044715 * x ** 3)))

    def softmax(x):
        e = tnp.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def loss(w, x):
        return tnp.tanh(x @ w).sum()

    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 5)).astype(np.float32)
    w = rng.normal(size=(5, 3)).astype(np.float32)
    results, how = [], []
    for fn, args in [(gelu, (x,)), (softmax, (x,)), (tracejit.grad(loss), (w, x))]:
        compiled = tracejit.compile(fn)
        results.append(compiled(*args))
        info = compiled.cache_info()
        how.append(f"{info.compiles}c{info.disk_loads}l")
    np.savez(sys.argv[1], *results)
    print(" ".join(how))
''')


def run_script(folder: Path, out: Path, cache_on: bool = True, background: bool = False):
    env = dict(os.environ, TRACEJIT_CACHE_DIR=str(folder), TRACEJIT_CACHE="1" if cache_on else "0",
               PYTHONWARNINGS="default")
    env.pop("NUMBA_OPT", None)  # the suite's unoptimised mode makes entries uncacheable
    script = folder.parent / "script.py"
    script.write_text(SCRIPT)
    command = [sys.executable, str(script), str(out)]
    if background:
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done


def load(path: Path) -> list[np.ndarray]:
    with np.load(path) as data:
        return [data[f"arr_{k}"] for k in range(len(data.files))]


def assert_identical(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.dtype == y.dtype and np.array_equal(x, y)


@pytest.fixture(scope="module")
def cold_then_warm(tmp_path_factory):
    """One cache folder, compiled cold in one process and loaded warm in the next."""
    base = tmp_path_factory.mktemp("cache")
    folder = base / "cachedir"  # (not "tracejit": the script's folder is on its sys.path)
    cold = run_script(folder, base / "cold.npz")
    warm = run_script(folder, base / "warm.npz")
    return base, folder, cold, warm


def test_a_warm_cache_loads_every_graph_and_gives_identical_results(cold_then_warm):
    base, folder, cold, warm = cold_then_warm
    assert cold.stdout.split() == ["1c0l", "1c0l", "1c0l"]
    assert warm.stdout.split() == ["0c1l", "0c1l", "0c1l"]
    assert_identical(load(base / "cold.npz"), load(base / "warm.npz"))
    modules = sorted(p.name for p in (folder / "modules").glob("*.py"))
    assert any(m.startswith("entry_") for m in modules)
    assert any(m.startswith("kernel_") for m in modules)


def test_two_processes_writing_one_cache_at_once(cold_then_warm, tmp_path):
    base = cold_then_warm[0]
    folder = tmp_path / "cachedir"
    procs = [run_script(folder, tmp_path / f"p{k}.npz", background=True) for k in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    for k in range(2):
        assert_identical(load(base / "cold.npz"), load(tmp_path / f"p{k}.npz"))
    after = run_script(folder, tmp_path / "after.npz")  # what they left is a valid cache
    assert after.stdout.split() == ["0c1l", "0c1l", "0c1l"]


def test_the_cache_can_be_switched_off(cold_then_warm, tmp_path):
    base = cold_then_warm[0]
    folder = tmp_path / "cachedir"
    done = run_script(folder, tmp_path / "off.npz", cache_on=False)
    assert done.stdout.split() == ["1c0l", "1c0l", "1c0l"]
    assert not folder.exists()
    assert_identical(load(base / "cold.npz"), load(tmp_path / "off.npz"))


def test_clear_cache_empties_the_folder(tmp_path):
    with tracejit.config.override(cache=True, cache_dir=str(tmp_path)):
        tracejit.compile(lambda x: x * 3.5 - 1.25)(np.ones(3))
        assert list((tmp_path / "modules").glob("*.py"))
        tracejit.clear_cache()
        assert not (tmp_path / "modules").exists()


# --- the cache trusts only what it wrote ----------------------------------------------------
# Each case in a fresh process running one small function (a kernel and an entry), from a copy
# of one cache compiled cold; SMALL prints how it was compiled and the result.

SMALL = textwrap.dedent('''
    import errno, os, sys
    import numpy as np

    if len(sys.argv) > 1:  # a full disk: renaming into the cache fails ("numba": Numba's files)
        rename = os.replace
        def full_disk(source, target):
            if sys.argv[1] == "all" or str(target).endswith((".nbi", ".nbc")):
                raise OSError(errno.ENOSPC, "No space left on device")
            rename(source, target)
        os.replace = full_disk

    import tracejit
    import tracejit.numpy as tnp

    compiled = tracejit.compile(lambda x: tnp.tanh(x) * 2.0 + x)
    result = compiled(np.linspace(-2.0, 2.0, 7))
    info = compiled.cache_info()
    print(f"{info.compiles}c{info.disk_loads}l", *result.tolist())
''')
SMALL_X = np.linspace(-2.0, 2.0, 7)
SMALL_EXPECTED = np.tanh(SMALL_X) * 2.0 + SMALL_X


def run_small(folder: Path, *args: str):
    """Run SMALL with its cache at ``folder``: (how it compiled, its result, its warnings)."""
    env = dict(os.environ, TRACEJIT_CACHE_DIR=str(folder), TRACEJIT_CACHE="1",
               PYTHONWARNINGS="default")
    env.pop("NUMBA_OPT", None)  # (see run_script)
    script = folder.parent / "small.py"
    script.write_text(SMALL)
    done = subprocess.run([sys.executable, str(script), *args], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    how, *printed = done.stdout.split()
    values = [float(v) for v in printed]
    np.testing.assert_allclose(values, SMALL_EXPECTED, rtol=1e-12)
    warned = [line for line in done.stderr.splitlines() if "UserWarning: tracejit:" in line]
    return how, values, warned


@pytest.fixture(scope="module")
def small_cache(tmp_path_factory):
    folder = tmp_path_factory.mktemp("small") / "cachedir"
    how, values, warned = run_small(folder)
    assert how == "1c0l" and not warned
    return folder, values


def random_bytes(data: bytes) -> bytes:
    return np.random.default_rng(0).bytes(max(len(data), 64))


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def wrong_function(data: bytes) -> bytes:
    return b"import numpy as np\n\ndef entry(*args):\n    return np.zeros(7)\n"


def other_python(data: bytes) -> bytes:
    """The same sealed file, its SHA-256 right, but tagged for another Python."""
    header, _, payload = data.partition(b"\n")
    python = f"python {sys.version.split()[0]} ".encode()
    assert python in header
    return header.replace(python, b"python 3.0.0 ") + b"\n" + payload


CORRUPTIONS = {  # case: (the file, under <cache dir>/modules, and what is done to it)
    "module-random-bytes": ("kernel_*.py", random_bytes),
    "module-truncated": ("entry_*.py", truncated),
    "module-other-code": ("entry_*.py", wrong_function),
    "index-random-bytes": ("__pycache__/entry_*.nbi", random_bytes),
    "index-truncated": ("__pycache__/entry_*.nbi", truncated),
    "object-random-bytes": ("__pycache__/entry_*.nbc", random_bytes),
    "object-truncated": ("__pycache__/entry_*.nbc", truncated),
    "index-other-python": ("__pycache__/entry_*.nbi", other_python),
}


@pytest.mark.parametrize("case", CORRUPTIONS)
def test_a_corrupted_cache_file_warns_once_and_is_rebuilt(small_cache, tmp_path, case):
    pattern, corrupt = CORRUPTIONS[case]
    folder = tmp_path / "cachedir"
    shutil.copytree(small_cache[0], folder)
    (path,) = (folder / "modules").glob(pattern)
    original = path.read_bytes()
    path.write_bytes(corrupt(original))
    _, values, warned = run_small(folder)
    assert values == small_cache[1]
    assert len(warned) == 1 and f"discarded the compile cache file {path}:" in warned[0], warned
    if path.suffix == ".py":
        assert path.read_bytes() == original
    else:  # Numba's files of that function were compiled again, and sealed
        cache._unseal(path)


def test_a_cache_with_every_file_corrupted_is_rebuilt_whole(small_cache, tmp_path):
    folder = tmp_path / "cachedir"
    shutil.copytree(small_cache[0], folder)
    for path in (folder / "modules").rglob("*"):
        if path.is_file():
            path.write_bytes(truncated(path.read_bytes()))
    _, values, warned = run_small(folder)
    assert values == small_cache[1]
    assert len(warned) == 2, warned  # the two modules (their Numba files go with them)
    how, values, warned = run_small(folder)
    assert how == "0c1l" and values == small_cache[1] and not warned


def test_a_cache_folder_others_can_write_to_is_refused(tmp_path):
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(0o775)
    how, _, warned = run_small(folder)
    assert how == "1c0l"
    assert len(warned) == 1 and "can be written by other users (mode 775" in warned[0], warned
    assert list(folder.iterdir()) == []


def test_a_new_cache_folder_is_private(small_cache):
    modules = small_cache[0] / "modules"
    for folder in (small_cache[0], modules, modules / "__pycache__"):
        assert folder.stat().st_mode & 0o777 == 0o700


def test_an_unwritable_cache_folder_warns_once_and_compiles_anyway(tmp_path):
    blocker = tmp_path / "file"  # (chmod cannot stop root from writing: a file blocks mkdir)
    blocker.write_text("a file where the cache folder should be")
    how, _, warned = run_small(blocker)
    assert how == "1c0l"
    assert len(warned) == 1 and "cannot write the compile cache" in warned[0], warned


@pytest.mark.parametrize("failing", ["all", "numba"])
def test_a_full_disk_warns_once_and_turns_the_cache_off(tmp_path, failing):
    folder = tmp_path / "cachedir"
    how, _, warned = run_small(folder, failing)
    assert how == "1c0l"
    assert len(warned) == 1 and "No space left on device" in warned[0], warned
    written = sorted(p.name for p in folder.rglob("*") if p.is_file())
    assert not any(name.endswith((".tmp", ".nbi", ".nbc")) for name in written), written
    assert any(name.endswith(".py") for name in written) == (failing == "numba")


# --- recompilation made visible ---------------------------------------------------------------

def test_cache_info_counts_hits_traces_and_signatures():
    f = tracejit.compile(lambda x, n: x * n, static_argnums=1)
    f(np.ones(2), 2)
    f(np.ones(2), 2)
    f(np.ones(3), 2)
    f(np.ones(3, np.float32), 3)
    info = f.cache_info()
    assert (info.hits, info.misses, info.traces) == (1, 3, 3)
    assert info.compiles + info.disk_loads == 2 and info.reused == 1  # f64[3]: a new shape
    assert info.signatures == ["(args[0]: f64[2], args[1]: static 2)",
                               "(args[0]: f64[3], args[1]: static 2)",
                               "(args[0]: f32[3], args[1]: static 3)"]


def test_compile_stats_break_a_compile_down():
    f = tracejit.compile(lambda x: tnp.exp(x).sum())
    f(np.ones(4))
    (stats,) = f.compile_stats()
    assert stats["signature"] == "(args[0]: f64[4])"
    assert {"trace", "passes", "codegen", "total"} <= set(stats)
    assert ("numba" in stats) != ("load" in stats)
    assert stats["total"] >= stats["trace"] + stats["passes"] + stats["codegen"]


def test_retracing_warns_naming_what_keeps_changing():
    f = tracejit.compile(lambda x, scale: x * scale, static_argnums=1, backend="interpreter")
    with tracejit.config.override(retrace_warning=3):
        f(np.ones(2), 1.0)
        f(np.ones(2), 2.0)
        with pytest.warns(UserWarning, match=r"traced 3 times.*Changing: args\[1\] \(static 1.0, "
                                             r"static 2.0, static 3.0\)") as caught:
            f(np.ones(2), 3.0)
    assert caught[0].filename == __file__  # points at the caller's line


def test_explaining_misses_names_the_difference(capsys):
    f = tracejit.compile(lambda x, y: x + y, backend="interpreter")
    with tracejit.config.override(explain_cache_misses=True):
        f(np.ones(2), np.ones(2))
        f(np.ones(2), np.ones(2, np.float32))
    err = capsys.readouterr().err
    assert "first trace" in err
    assert "args[1] was f64[2], now f32[2]" in err


def test_a_function_redefined_on_every_call_is_detected():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            tracejit.compile(lambda x: x - 7.0, backend="interpreter")(np.ones(2))
    messages = [str(w.message) for w in caught]
    assert any("3 different function objects made from the same code" in m for m in messages)


def test_log_compiles_prints_one_line_per_compile(capsys):
    with tracejit.config.override(log_compiles=True):
        f = tracejit.compile(lambda x: x * 9.0)
        f(np.ones(2))
        f(np.ones(2))
    lines = [l for l in capsys.readouterr().err.splitlines() if l.startswith("tracejit: compiled")]
    assert len(lines) == 1 and "(args[0]: f64[2])" in lines[0] and "trace" in lines[0]
