"""Speed corner: a Python number in `x * 0.5` becomes a NumPy scalar, not a device array.

Plain (autograd/tensor.py Tensor._pair, beside the call): `xp.asarray(value, dtype=x.dtype)`,
a 0-d array on x's device. CuPy takes a NumPy scalar as a kernel argument, so on the GPU
each such operation skips making a 0-d device array and its host-to-device copy. On NumPy
the two are level. Measured: see benchmarks/bench_fast.py (the row "scalar operand").
"""
import numpy as np


def host_scalar(value, dtype):
    """`value` as a NumPy scalar of `dtype` (so x * 2 never promotes x)."""
    return np.asarray(value, dtype=dtype)[()]
