"""benchmarks/blas_env.py: child processes time without the OpenBLAS kernel overrides."""
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.blas_env import OVERRIDES, clean_env, describe  # noqa: E402


def test_clean_env_drops_only_the_overrides_and_leaves_os_environ_alone():
    env = {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": "1048576",
           "OPENBLAS_NUM_THREADS": "2", "PATH": "/bin"}
    before = dict(os.environ)
    cleaned = clean_env(env)
    assert cleaned == {"OPENBLAS_NUM_THREADS": "2", "PATH": "/bin"}
    assert set(OVERRIDES) <= set(env)          # the argument is not modified
    assert dict(os.environ) == before


def test_describe_names_library_version_kernel_and_threads():
    pools = [{"user_api": "blas", "internal_api": "openblas", "prefix": "libopenblas",
              "version": "0.3.31", "architecture": "SkylakeX", "num_threads": 2}]
    assert describe(pools) == ["openblas 0.3.31 SkylakeX, 2 threads (blas, libopenblas)"]
