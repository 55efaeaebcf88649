"""Shared fixtures: the verifier is on for every trace, and every test runs on every backend."""
import os

os.environ.setdefault("TRACEJIT_VERIFY", "1")
# Tests check what compiled code computes, not how fast: Numba's unoptimised code generation
# compiles about a third faster, which is most of the suite's time on the numba_cpu backend.
os.environ.setdefault("NUMBA_OPT", "0")
# Tests check the compiled code from the first call on; tests/test_tiered.py turns tiers on.
os.environ.setdefault("TRACEJIT_TIERED", "0")
# The CUDA backend's tests run on Numba's CUDA simulator unless told otherwise (set it to 0 on
# a GPU machine). Numba reads it once, when first imported: so here, before anything imports it.
os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")
# The compile cache goes to a temporary folder, shared by the xdist workers (they inherit the
# environment), removed when the controlling process exits.
if "TRACEJIT_CACHE_DIR" not in os.environ:
    import atexit
    import shutil
    import tempfile
    _cache_dir = tempfile.mkdtemp(prefix="tracejit-test-cache-")
    os.environ["TRACEJIT_CACHE_DIR"] = _cache_dir
    atexit.register(shutil.rmtree, _cache_dir, True)

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import tracejit  # noqa: E402
from tracejit.testing.poison import poison  # noqa: E402

# On the simulator, new device arrays start as garbage, as a GPU's reused memory does: a kernel
# reading what it never wrote fails here, not only on a GPU (tracejit/testing/poison.py).
poison()

# Every backend by default; TRACEJIT_TEST_BACKENDS=interpreter narrows a local run.
BACKENDS = os.environ.get("TRACEJIT_TEST_BACKENDS", "interpreter,numba_cpu").split(",")


# The NumPy-oracle tables run every function on every backend. The interpreter takes every
# dtype; numba_cpu compiles one entry function per graph (about 0.15 s each on the CI machine),
# so it takes a representative dtype of each kind, and the tables give it fewer shapes
# (see *_BY_BACKEND in the table modules). A test asking for `dtype` gets the pairs below.
TABLE_DTYPES = {
    "interpreter": [np.float32, np.float64, np.int32, np.int64, np.bool_],
    "numba_cpu": [np.float32, np.int64, np.bool_],
}


def pytest_generate_tests(metafunc):
    if "backend" not in metafunc.fixturenames:
        return
    if "dtype" in metafunc.fixturenames:
        pairs = [(b, d) for b in BACKENDS for d in TABLE_DTYPES[b]]
        metafunc.parametrize("backend,dtype", pairs,
                             ids=[f"{b}-{np.dtype(d).name}" for b, d in pairs])
    else:
        metafunc.parametrize("backend", BACKENDS)


@pytest.fixture
def jit(backend):
    """``jit(f, **kw)``: tracejit.compile on the backend under test."""
    return lambda f, **kw: tracejit.compile(f, backend=backend, **kw)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
