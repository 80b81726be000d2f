"""Time CPU code as a user's machine runs it, and record which BLAS did the work.

OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE override OpenBLAS's own choice of kernel and cache
size; a user's machine does not set them, so every CPU timing in benchmarks/ runs without
them: `clean_env()` is the environment for child processes, and `reexec_clean()` restarts a
script directly run with them set (OpenBLAS reads them once, when NumPy loads it).
`blas_info()` needs threadpoolctl, a benchmark-only requirement (the dev extra).
"""
import os
import sys

OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def clean_env(env=None):
    """A copy of `env` (default os.environ) without the OpenBLAS kernel overrides."""
    env = dict(os.environ if env is None else env)
    for name in OVERRIDES:
        env.pop(name, None)
    return env


def reexec_clean():
    """Restart this script without the overrides if any is set; call it before importing NumPy."""
    found = [name for name in OVERRIDES if name in os.environ]
    if found:
        print(f"{', '.join(found)} set: restarting without them (a user's machine does not set them)",
              file=sys.stderr)
        sys.stdout.flush()
        os.execve(sys.executable, [sys.executable, *sys.argv], clean_env())


def blas_info():
    """The thread pools loaded in this process (BLAS and OpenMP): library, version, kernel,
    threads, as threadpoolctl reports them; [] with a note when threadpoolctl is missing."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return [{"note": "threadpoolctl is not installed (pip install threadpoolctl)"}]
    keys = ("user_api", "internal_api", "prefix", "version", "architecture", "num_threads",
            "threading_layer")
    return [{k: pool.get(k) for k in keys} for pool in threadpool_info()]


def describe(pools):
    """One line per pool: 'openblas 0.3.31 SkylakeX, 2 threads (libscipy_openblas)'."""
    lines = []
    for p in pools:
        if "note" in p:
            lines.append(p["note"])
            continue
        kernel = f" {p['architecture']}" if p.get("architecture") else ""
        lines.append(f"{p['internal_api']} {p['version']}{kernel}, {p['num_threads']} threads "
                     f"({p['user_api']}, {p['prefix']})")
    return lines
