"""Shared fixtures: the verifier is on for every trace, and every test runs on every backend."""
import os

os.environ.setdefault("TRACEJIT_VERIFY", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import tracejit  # noqa: E402

# Every backend by default; TRACEJIT_TEST_BACKENDS=interpreter narrows a local run.
BACKENDS = os.environ.get("TRACEJIT_TEST_BACKENDS", "interpreter,numba_cpu").split(",")


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def jit(backend):
    """``jit(f, **kw)``: tracejit.compile on the backend under test."""
    return lambda f, **kw: tracejit.compile(f, backend=backend, **kw)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
