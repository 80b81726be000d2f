"""Shared fixtures: the `xp` backend fixture, the `gpu` marker, and float64 leaf tensors.

Tests that should run on every backend take `xp` (numpy always; cupy when it imports and a
CUDA device is usable, else that case is skipped with the reason). GPU-only tests carry
`@pytest.mark.gpu` and skip the same way.
"""
import functools

import numpy as np
import pytest

from tinynmt.autograd import Tensor
from tinynmt.backend import BackendError, cupy_module


@functools.cache
def usable_cupy():
    """(cupy, None) when CuPy works here, else (None, why not); checked once per session."""
    try:
        return cupy_module(), None
    except BackendError as exc:
        return None, f"needs CuPy and a CUDA device: {exc}"


def pytest_runtest_setup(item):
    if item.get_closest_marker("gpu") is not None:
        cupy, reason = usable_cupy()
        if cupy is None:
            pytest.skip(reason)


@pytest.fixture(params=["numpy", pytest.param("cupy", marks=pytest.mark.gpu)])
def xp(request):
    """The array module a test runs on: numpy, then cupy where usable."""
    if request.param == "numpy":
        return np
    return usable_cupy()[0]


@pytest.fixture
def rng():
    """A fresh seeded NumPy generator: test data is made on the host, then moved."""
    return np.random.default_rng(1234)


@pytest.fixture
def leaf(xp):
    """make(array, dtype=float64, requires_grad=True): a leaf Tensor on xp's device."""
    def make(array, dtype=np.float64, requires_grad=True):
        return Tensor(xp.asarray(np.asarray(array, dtype=dtype)), requires_grad=requires_grad)
    return make
