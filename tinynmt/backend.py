"""Array backends: NumPy on the CPU, CuPy on NVIDIA GPUs.

This is the only module that imports CuPy, and only when a tensor or module is moved to
"cuda". Everything else asks `get_array_module(x)` for the array namespace `xp` and writes
one code path. Where NumPy and CuPy differ (scatter-add, random numbers, host copies,
synchronisation) a helper below hides the difference. Two helpers take a NumPy-only trick
of the speed corner (tinynmt/fast/) when its switch is on; CuPy always takes the plain line.
"""
import sys

import numpy as np

from . import fast

DEVICES = ("cpu", "cuda")
CUPY_HINT = ("CuPy is not installed: install the GPU extra that matches your CUDA driver, "
             "pip install -e \".[cuda12]\" (or \".[cuda13]\")")


class BackendError(RuntimeError):
    """A backend cannot be used here (CuPy missing, no GPU, unknown device)."""


def _loaded_cupy():
    """The cupy module if something already imported it, else None (never imports it)."""
    return sys.modules.get("cupy")


def cupy_module():
    """Import CuPy and check that a CUDA device is visible, or raise a one-line BackendError."""
    try:
        import cupy
    except ImportError:
        raise BackendError(CUPY_HINT) from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # the CUDA runtime raises its own error types
        raise BackendError(f"CuPy is installed but CUDA is not usable: {exc}") from None
    if count == 0:
        raise BackendError("CuPy is installed but no CUDA device is visible")
    return cupy


def check_device(device):
    """Return the device name if it is known, else raise a one-line error listing the valid ones."""
    if device not in DEVICES:
        raise BackendError(f"unknown device {device!r}: use one of {', '.join(DEVICES)}")
    return device


def get_array_module(*arrays):
    """The array namespace (numpy or cupy) of the given arrays."""
    cupy = _loaded_cupy()
    if cupy is not None and any(isinstance(a, cupy.ndarray) for a in arrays):
        return cupy
    return np


def xp_for(device):
    """The array namespace for a device name."""
    return cupy_module() if check_device(device) == "cuda" else np


def device_of(array):
    """'cuda' for a CuPy array, 'cpu' otherwise."""
    return "cpu" if get_array_module(array) is np else "cuda"


def to_device(array, device):
    """Move an array to a device; a no-op when it is already there."""
    if device_of(array) == check_device(device):
        return array
    if device == "cuda":
        return cupy_module().asarray(array)
    return array.get()


def to_numpy(array):
    """A NumPy copy (or the array itself) on the host."""
    return array if isinstance(array, np.ndarray) else to_device(array, "cpu")


def synchronize(xp):
    """Wait for queued GPU work (timing needs it); nothing to do on the CPU."""
    if xp is not np:
        xp.cuda.get_current_stream().synchronize()


def scatter_add_rows(ids, values, num_rows):
    """Sum rows of `values` (N, D) into a (num_rows, D) array at rows `ids` (N,)."""
    xp = get_array_module(values)
    out = xp.zeros((num_rows, values.shape[1]), dtype=values.dtype)
    if xp is np and fast.enabled():
        return fast.scatter_add_sorted(out, ids, values)    # by sorting ids, faster on NumPy
    xp.add.at(out, ids, values)     # NumPy 2; on CuPy >= 12 an atomic scatter-add kernel
    return out


def index_add(out, index, values):
    """out[index] += values, with repeated indices summed (for getitem's backward)."""
    get_array_module(out).add.at(out, index, values)
    return out


class Generator:
    """A seeded random generator on one device; its state can be saved for resuming.

    NumPy: PCG64 whose state is a JSON-able dict. CuPy: a RandomState seeded from the NumPy
    generator, reseeded on `set_state`, so runs are reproducible but not resumable bit for bit.
    """

    def __init__(self, seed=None, device="cpu"):
        self.device = check_device(device)
        self.host = np.random.default_rng(seed)
        self._gpu = None

    def _gpu_rng(self):
        if self._gpu is None:
            seed = int(self.host.integers(0, 2**31 - 1))
            self._gpu = cupy_module().random.RandomState(seed)
        return self._gpu

    def to(self, device):
        """Draw later numbers on `device`."""
        self.device = check_device(device)
        return self

    def random(self, shape, dtype=np.float32):
        """Uniform numbers in [0, 1) of a float dtype, on the generator's device."""
        if self.device == "cpu":
            return self.host.random(shape, dtype=dtype)
        return self._gpu_rng().random_sample(shape, dtype=dtype)

    def keep_mask(self, shape, p):
        """A boolean mask, True with probability 1 - p (dropout keeps those elements)."""
        if self.device == "cpu" and fast.enabled():     # from cheaper raw bits (other numbers)
            return fast.keep_mask_from_bits(self.host.bit_generator, shape, p)
        return self.random(shape, dtype=np.float32) >= p

    def get_state(self):
        """A JSON-able snapshot of the host generator."""
        return self.host.bit_generator.state

    def set_state(self, state):
        """Restore a snapshot from `get_state`."""
        self.host.bit_generator.state = state
        self._gpu = None
