"""The backend helpers: scatter-add, the seeded Generator, device names and host copies."""
import json
import sys

import numpy as np
import pytest

from tinynmt import backend, fast
from tinynmt.backend import (BackendError, Generator, check_device, device_of, get_array_module, index_add, scatter_add_rows, to_device, to_numpy, xp_for)


@pytest.fixture(autouse=True, params=["fast", "plain"])
def engine_path(request):
    """Every test here runs twice: with the speed corner's tricks (tinynmt/fast/) and without."""
    with fast.use_fast(request.param == "fast"):
        yield request.param


@pytest.fixture
def no_cupy(monkeypatch):
    """Make `import cupy` fail, as on a machine without it."""
    monkeypatch.setitem(sys.modules, "cupy", None)


# ----- scatter-add

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scatter_add_rows_matches_add_at(xp, rng, dtype):
    ids = np.array([3, 0, 3, 5, 3, 0, 1])                      # repeats, gaps (2, 4, 6 unused)
    values = rng.standard_normal((ids.size, 4)).astype(dtype)  # (N, D)
    expected = np.zeros((7, 4), dtype=dtype)
    np.add.at(expected, ids, values)
    out = scatter_add_rows(xp.asarray(ids), xp.asarray(values), 7)
    assert out.dtype == dtype and out.shape == (7, 4)
    np.testing.assert_allclose(to_numpy(out), expected, rtol=1e-6)


def test_scatter_add_rows_random_ids(xp, rng):
    ids = rng.integers(0, 50, size=1000)
    values = rng.standard_normal((1000, 8))
    expected = np.zeros((50, 8))
    np.add.at(expected, ids, values)
    out = scatter_add_rows(xp.asarray(ids), xp.asarray(values), 50)
    np.testing.assert_allclose(to_numpy(out), expected, rtol=1e-10, atol=1e-12)


def test_scatter_add_rows_no_ids_gives_zeros(xp):
    out = scatter_add_rows(xp.asarray(np.zeros(0, dtype=np.int64)),
                           xp.asarray(np.zeros((0, 3), dtype=np.float32)), 4)
    assert out.shape == (4, 3) and out.dtype == np.float32
    assert not to_numpy(out).any()


def test_index_add_matches_add_at(xp, rng):
    rows, cols = np.array([0, 2, 0, 0]), np.array([1, 1, 1, 3])
    values = rng.standard_normal(4)
    expected = np.zeros((3, 4))
    np.add.at(expected, (rows, cols), values)
    out = index_add(xp.zeros((3, 4)), (xp.asarray(rows), xp.asarray(cols)), xp.asarray(values))
    np.testing.assert_allclose(to_numpy(out), expected)


# ----- Generator

def test_generator_same_seed_same_numbers_other_seed_differs():
    a = Generator(7).random((5, 3))
    b = Generator(7).random((5, 3))
    c = Generator(8).random((5, 3))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_generator_draws_uniform_in_dtype(dtype):
    u = Generator(0).random((4000,), dtype=dtype)
    assert u.dtype == dtype
    assert u.min() >= 0 and u.max() < 1
    assert abs(u.mean() - 0.5) < 0.03


def test_generator_state_round_trip():
    gen = Generator(1234)
    gen.random((10,))                                  # move away from the seed's state
    state = gen.get_state()
    first = gen.random((6, 2))
    gen.random((3,))
    gen.set_state(state)
    np.testing.assert_array_equal(gen.random((6, 2)), first)


def test_generator_state_survives_json_into_a_new_generator():
    gen = Generator(99)
    gen.random((3,))
    saved = json.dumps(gen.get_state())
    expected = gen.random((8,))
    other = Generator(0)
    other.set_state(json.loads(saved))
    np.testing.assert_array_equal(other.random((8,)), expected)


@pytest.mark.parametrize("p", [0.0, 0.1, 0.5])
def test_generator_keep_mask_keeps_one_minus_p_and_follows_the_state(p):
    gen = Generator(5)
    state = gen.get_state()
    mask = gen.keep_mask((300, 400), p)
    assert mask.shape == (300, 400) and mask.dtype == bool
    assert abs(mask.mean() - (1 - p)) < 0.005                # 120,000 draws: sd < 0.0015
    assert not np.array_equal(gen.keep_mask((300, 400), 0.5), gen.keep_mask((300, 400), 0.5))
    gen.set_state(state)
    np.testing.assert_array_equal(gen.keep_mask((300, 400), p), mask)


def test_generator_unknown_device_errors():
    with pytest.raises(BackendError, match="unknown device"):
        Generator(0, device="tpu")
    with pytest.raises(BackendError, match="unknown device"):
        Generator(0).to("gpu")


@pytest.mark.gpu
def test_generator_on_gpu_is_reproducible_after_set_state():
    cupy = xp_for("cuda")
    gen = Generator(5, device="cuda")
    state = gen.get_state()
    first = gen.random((100,))
    assert isinstance(first, cupy.ndarray) and first.dtype == np.float32
    gen.set_state(state)
    np.testing.assert_array_equal(to_numpy(gen.random((100,))), to_numpy(first))


# ----- devices and host copies

def test_numpy_arrays_are_on_the_cpu():
    a = np.arange(6.0).reshape(2, 3)
    assert device_of(a) == "cpu"
    assert get_array_module(a, a) is np
    assert to_numpy(a) is a                        # no copy for host arrays
    assert to_device(a, "cpu") is a
    assert xp_for("cpu") is np


def test_check_device_names_the_valid_devices():
    assert check_device("cpu") == "cpu" and check_device("cuda") == "cuda"
    with pytest.raises(BackendError) as info:
        check_device("gpu0")
    message = str(info.value)
    assert "'gpu0'" in message and "cpu" in message and "cuda" in message
    assert "\n" not in message


def test_missing_cupy_gives_the_install_hint(no_cupy):
    for attempt in (backend.cupy_module, lambda: xp_for("cuda"),
                    lambda: to_device(np.zeros(2), "cuda"),
                    lambda: Generator(0, device="cuda").random((2,))):
        with pytest.raises(BackendError) as info:
            attempt()
        assert "pip install" in str(info.value)
        assert "\n" not in str(info.value)


def test_synchronize_on_the_cpu_is_a_no_op():
    assert backend.synchronize(np) is None


@pytest.mark.gpu
def test_device_round_trip_on_gpu():
    cupy = xp_for("cuda")
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    g = to_device(a, "cuda")
    assert isinstance(g, cupy.ndarray) and device_of(g) == "cuda"
    assert get_array_module(g) is cupy and get_array_module(a, g) is cupy
    assert to_device(g, "cuda") is g
    back = to_numpy(g)
    assert isinstance(back, np.ndarray)
    np.testing.assert_array_equal(back, a)
    backend.synchronize(cupy)


def test_keep_freed_memory_applies_on_glibc():
    import platform
    from tinynmt.fast.cpu import keep_freed_memory
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        pytest.skip("glibc only")
    with fast.use_fast(True):
        assert keep_freed_memory() is True


REUSE_SCRIPT = """
import resource
import numpy as np
from tinynmt.fast.cpu import keep_freed_memory
keep_freed_memory()
a = np.ones(100 << 18, np.float32); del a        # 100 MiB: over glibc's largest mmap threshold
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(3):
    a = np.ones(100 << 18, np.float32); del a
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.parametrize("plain", ["0", "1"])
def test_kept_memory_serves_a_block_over_32_mib_again_without_page_faults(plain):
    """The tiny recipe's logits (160 MB) reuse their pages; glibc's defaults map fresh ones."""
    import os
    import platform
    import subprocess
    from pathlib import Path
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        pytest.skip("glibc only")
    env = dict(os.environ, TINYNMT_PLAIN=plain, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    faults = int(subprocess.run([sys.executable, "-c", REUSE_SCRIPT], env=env, capture_output=True,
                                text=True, check=True).stdout)
    if plain == "0":
        assert faults < 20
    else:                 # the measurement can tell: three fresh 100 MiB maps, 4 KiB or 2 MiB pages
        assert faults >= 3 * 50
