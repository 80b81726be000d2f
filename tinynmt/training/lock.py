"""A run folder's lock: one process at a time writes a run, and only into a folder that holds a run.

    with RunLock(run_dir) as lock:      # RunLockedError naming the pid that holds it
        lock.stale_pid                   # a dead run's pid whose lock was taken over, or None
    foreign_files(run_dir)               # names in the folder that no run writes ([] for a run)

The lock is `RUN/.lock`, held with fcntl.flock for the run's lifetime and holding the pid of
the process that holds it. The kernel drops a flock when its process ends, however it ends,
so a lock is never stuck: a killed run leaves only its pid in the file (a clean end empties
it), and the next run takes the lock over and reports that pid in `stale_pid`. What it
protects: two `train --out DIR` (or `--resume DIR`) at once would interleave metrics.jsonl
and overwrite each other's checkpoints; the second now stops before it writes anything.
Where fcntl does not exist (Windows) the lock is a no-op.
"""
import os
import re
from pathlib import Path

try:
    import fcntl
except ImportError:          # Windows: no flock, no lock
    fcntl = None

LOCK_NAME = ".lock"
# What a run writes: its files, kept epochs, and the temporary files of atomic writes (a
# killed process may leave one: .best.npz.1234.ab12cd34.tmp).
RUN_FILE = re.compile(r"(config\.json|metrics\.jsonl|loss\.png|best\.npz|last\.npz|averaged\.npz"
                      r"|epoch\d{3}\.npz|\.lock|\..+\.\d+\.[0-9a-f]{8}\.tmp)")


class RunLockedError(RuntimeError):
    """Another live process holds the run folder's lock."""


def foreign_files(run_dir):
    """The names in `run_dir` that no run writes, sorted ([] for a run's folder or an empty one)."""
    return sorted(p.name for p in Path(run_dir).iterdir() if not RUN_FILE.fullmatch(p.name))


def _read_pid(fd):
    """The pid written in the lock file, or None."""
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 64).decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else None


class RunLock:
    """The lock of one run folder (see the module docstring); a context manager."""

    def __init__(self, run_dir):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self.fd = None
        self.stale_pid = None

    def acquire(self):
        """Take the lock or raise RunLockedError naming the process that holds it."""
        if fcntl is None or self.fd is not None:
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:                                   # BlockingIOError: a live holder
            holder = _read_pid(fd)
            os.close(fd)
            who = f"process {holder}" if holder is not None else "another process"
            raise RunLockedError(f"{self.run_dir} is in use: {who} is training into it ({self.path}); "
                                 f"wait for it to end or stop it (or train into another folder)") from None
        previous = _read_pid(fd)
        self.stale_pid = previous if previous not in (None, os.getpid()) else None
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        self.fd = fd
        return self

    def release(self):
        """Empty the file (no run holds it) and drop the lock."""
        if self.fd is None:
            return
        try:
            os.ftruncate(self.fd, 0)
        finally:
            os.close(self.fd)             # closing drops the flock
            self.fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
