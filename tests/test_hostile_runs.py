"""Issue 22, family 2: a run folder is locked while a run writes it (a second run at once is one
error line naming the pid; a dead run's lock is taken over and reported), and a folder holding
files that are not a run's is refused."""
import os
import signal
import subprocess
import sys

import pytest

from hostile_tools import ROOT
from tinynmt.training.lock import LOCK_NAME, RunLock, RunLockedError, foreign_files

pytest.importorskip("fcntl")         # POSIX: the lock is a no-op where flock does not exist

SMALL = ["--limit-train", "20", "--limit-eval", "2", "--max-steps", "1", "--hid-dim", "16", "--enc-heads", "2",
         "--dec-heads", "2", "--no-plot", "--no-progress"]
HOLD = """
import sys, time
from tinynmt.training.lock import RunLock
lock = RunLock(sys.argv[1]).acquire()
print("locked", flush=True)
time.sleep(60)
"""


def holder(run_dir):
    """A process that takes the run's lock and keeps it; returns once it holds it."""
    child = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir)], stdout=subprocess.PIPE, text=True,
                             env=dict(os.environ, PYTHONPATH=str(ROOT)))
    with child.stdout:
        assert child.stdout.readline() == "locked\n"
    return child


def test_a_second_run_at_once_is_refused_naming_the_first(tmp_path):
    child = holder(tmp_path)
    try:
        with pytest.raises(RunLockedError, match=rf"{tmp_path} is in use: process {child.pid} is training "
                                                 rf"into it .*another folder"):
            RunLock(tmp_path).acquire()
    finally:
        child.kill()
        child.wait()


def test_a_dead_runs_lock_is_taken_over_and_reported(tmp_path):
    child = holder(tmp_path)
    child.send_signal(signal.SIGKILL)                  # no clean-up: its pid stays in the file
    child.wait()
    with RunLock(tmp_path) as lock:
        assert lock.stale_pid == child.pid
        assert (tmp_path / LOCK_NAME).read_text() == f"{os.getpid()}\n"
    assert (tmp_path / LOCK_NAME).read_text() == ""    # a clean end leaves no pid behind
    with RunLock(tmp_path) as lock:
        assert lock.stale_pid is None


def test_only_a_runs_own_files_make_a_run_folder(tmp_path):
    for name in ("config.json", "metrics.jsonl", "loss.png", "best.npz", "last.npz", "averaged.npz",
                 "epoch007.npz", LOCK_NAME, ".last.npz.4242.0123abcd.tmp"):
        (tmp_path / name).write_bytes(b"")
    assert foreign_files(tmp_path) == []
    (tmp_path / "thesis.tex").write_text("three years of work")
    (tmp_path / "data").mkdir()
    assert foreign_files(tmp_path) == ["data", "thesis.tex"]


def test_train_into_a_locked_folder_is_one_error_line(tmp_path, capsys):
    from hostile_tools import assert_one_error_line, status_of
    from tinynmt.programs import train
    child = holder(tmp_path)
    try:
        assert status_of(train.main, ["--out", tmp_path, *SMALL]) == 2
        assert_one_error_line(capsys.readouterr().err, f"is in use: process {child.pid} is training into it")
    finally:
        child.kill()
        child.wait()


def test_train_into_a_folder_of_other_files_is_one_error_line(tmp_path, capsys):
    from hostile_tools import assert_one_error_line, status_of
    from tinynmt.programs import train
    (tmp_path / "thesis.tex").write_text("three years of work")
    assert status_of(train.main, ["--out", tmp_path, *SMALL]) == 2
    assert_one_error_line(capsys.readouterr().err, "thesis.tex")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis.tex"]
