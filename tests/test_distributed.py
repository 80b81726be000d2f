"""Data-parallel training: the 2-rank step is the 1-process step, files, resume, faults.

The MPI tests start `mpiexec -n 2` (the mpich wheel's) as a subprocess and skip only when
mpi4py or mpiexec is missing.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tiny_runs import TINY, records
from tinynmt.training import distributed
from tinynmt.backend import BackendError
from tinynmt.training.checkpoint import load_checkpoint
from tinynmt.data import Batches

ROOT = Path(__file__).resolve().parents[1]
WORKER = str(ROOT / "tests" / "mpi_worker.py")
# the mpich wheel puts mpiexec beside the interpreter, which may not be on PATH
BESIDE = Path(sys.executable).parent / "mpiexec"
MPIEXEC = str(BESIDE) if BESIDE.exists() else shutil.which("mpiexec")
try:
    import mpi4py  # noqa: F401
    HAVE_MPI4PY = True
except ImportError:
    HAVE_MPI4PY = False
needs_mpi = pytest.mark.skipif(not HAVE_MPI4PY, reason="needs mpi4py (pip install -e \".[mpi]\")")


def flags(out, **changes):
    """The CLI flags of the tiny run (tests/tiny_runs.py), with changes."""
    options = dict(TINY, out=str(out), **changes)
    words = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        words += [flag if value else "--no-" + flag[2:]] if isinstance(value, bool) else [flag, str(value)]
    return words


def environment():
    env = dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return {k: v for k, v in env.items() if not k.startswith(("PMI_", "OMPI_"))}


def mpirun(*args, n=2, timeout=120):
    """Run `mpiexec -n N python ARGS` from the repository root -> CompletedProcess."""
    assert MPIEXEC, "mpi4py is installed but no mpiexec was found (pip install mpich)"
    return subprocess.run([MPIEXEC, "-n", str(n), sys.executable, *args], cwd=ROOT, env=environment(),
                          capture_output=True, text=True, timeout=timeout)


def single(*args, timeout=120):
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=environment(), capture_output=True,
                          text=True, timeout=timeout)


def step_losses(run_dir):
    return np.array([r["loss"] for r in records(run_dir, "step")])


# ----- without MPI: the one-process communicator and the launcher's variables

def test_one_process_is_rank_0_of_1_and_every_collective_returns_its_input(monkeypatch):
    for name in distributed.LAUNCHER_SIZE:
        monkeypatch.delenv(name, raising=False)
    comm = distributed.init()
    assert comm is distributed.SINGLE and (comm.rank, comm.size, comm.is_root) == (0, 1, True)
    a = np.arange(5, dtype=np.float32)
    assert comm.allreduce_(a) is a and comm.broadcast_(a) is a and a.tolist() == [0, 1, 2, 3, 4]
    assert comm.sum([1.5, 2]).tolist() == [1.5, 2.0] and comm.any(1) is True and comm.any(0) is False
    assert comm.allgather("x") == ["x"] and comm.shard([1, 2, 3]) == [1, 2, 3]


def test_launcher_size_is_read_from_the_environment(monkeypatch):
    for name in distributed.LAUNCHER_SIZE:
        monkeypatch.delenv(name, raising=False)
    assert distributed.launched_size() == 1
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "4")
    assert distributed.launched_size() == 4


def test_many_processes_without_mpi4py_is_a_one_line_error(monkeypatch):
    monkeypatch.setenv("PMI_SIZE", "2")
    monkeypatch.setitem(sys.modules, "mpi4py", None)          # import mpi4py now fails
    with pytest.raises(BackendError, match=r"started 2 processes but mpi4py is not installed.*\[mpi\]"):
        distributed.init()


class FakeWorld(distributed.SingleProcess):
    """Rank `rank` of `size`, for the sharding rule alone."""

    def __init__(self, rank, size):
        self.rank, self.size = rank, size


def test_shards_cover_the_batch_once_and_an_empty_rank_reruns_a_row_with_weight_zero():
    from tinynmt.training.distributed import shard_batch
    src = [[2, 5, 3], [2, 5, 6, 3], [2, 3], [2, 7, 7, 7, 3], [2, 8, 3]]
    trg = [[2, 4, 4, 3], [2, 3], [2, 9, 3], [2, 4, 3], [2, 4, 4, 4, 4, 3]]
    batches = Batches(src, trg, batch_size=5)
    idx = np.array([4, 0, 2, 1, 3])
    parts = [shard_batch(batches, idx, FakeWorld(r, 2)) for r in range(2)]
    assert sorted(np.concatenate([b.index for b, _, _ in parts]).tolist()) == [0, 1, 2, 3, 4]
    assert sum(share for _, share, _ in parts) == pytest.approx(1.0)
    assert all(tokens == sum(map(len, trg)) for _, _, tokens in parts)
    batch, share, _ = shard_batch(batches, idx[:1], FakeWorld(1, 2))      # one row, two ranks
    assert share == 0.0 and batch.index.tolist() == [4]


# ----- under mpiexec -n 2

@needs_mpi
@pytest.mark.parametrize("rdrop", ["0", "2.5"])       # R-Drop's loss, too, weighs each rank's share
def test_two_rank_gradient_of_one_global_batch_equals_one_process_in_float64(rdrop):
    result = mpirun(WORKER, "grad", rdrop)
    assert result.returncode == 0, result.stderr + result.stdout
    diffs = json.loads(result.stdout.strip().splitlines()[-1])
    assert diffs["rows"] == [4, 3] and diffs["trg_widths"][0] != diffs["trg_widths"][1]
    assert diffs["grad_scale"] > 1e-3                        # a gradient that is not all zeros
    assert max(diffs["grad"], diffs["norm"]) < 1e-12 and diffs["weights"] < 1e-9   # after one Adam step


@needs_mpi
def test_twenty_steps_on_two_ranks_equal_one_process_and_only_rank_0_writes(tmp_path):
    common = dict(enc_dropout=0.0, dec_dropout=0.0, epochs=5, max_steps=20, seed=5)
    alone = single("-m", "tinynmt.train", *flags(tmp_path / "alone", **common))
    assert alone.returncode == 0, alone.stderr
    # MPMD: rank 1 is told another --out; it must write nothing at all
    rank1_out = tmp_path / "rank1"
    command = [MPIEXEC, "-n", "1", sys.executable, "-m", "tinynmt.train", *flags(tmp_path / "two", **common),
               ":", "-n", "1", sys.executable, "-m", "tinynmt.train", *flags(rank1_out, **common)]
    two = subprocess.run(command, cwd=ROOT, env=environment(), capture_output=True, text=True, timeout=120)
    assert two.returncode == 0, two.stderr
    assert not rank1_out.exists()
    assert two.stdout.count("Epoch: 01") == 1 and "Training on 2 ranks (cpu)" in two.stdout
    a, b = step_losses(tmp_path / "alone"), step_losses(tmp_path / "two")
    assert len(a) == len(b) == 20 and np.allclose(a, b, rtol=0, atol=2e-5)
    wa = load_checkpoint(tmp_path / "alone" / "last.npz").model.state_dict()
    wb = load_checkpoint(tmp_path / "two" / "last.npz").model.state_dict()
    assert max(float(np.max(np.abs(wa[k] - wb[k]))) for k in wa) < 1e-4
    assert [r["valid_loss"] for r in records(tmp_path / "alone", "epoch")] == pytest.approx(
        [r["valid_loss"] for r in records(tmp_path / "two", "epoch")], abs=1e-5)


@needs_mpi
def test_a_stop_seen_by_one_rank_stops_both_and_resume_continues_exactly(tmp_path):
    full, cut = tmp_path / "full", tmp_path / "cut"
    run = mpirun(WORKER, "train", "0", "0", *flags(full, max_steps=12))
    assert run.returncode == 0, run.stderr
    stopped = mpirun(WORKER, "train", "7", "1", *flags(cut, max_steps=12))   # only rank 1 is told
    assert stopped.returncode == 130, stopped.stderr
    assert [r["step"] for r in records(cut, "interrupted")] == [7]
    state = load_checkpoint(cut / "last.npz").train_state
    assert state["counters"]["step"] == 7 and state["ranks"] == 2 and len(state["rank_rngs"]) == 2
    resumed = mpirun(WORKER, "train", "0", "0", "--resume", str(cut))
    assert resumed.returncode == 0, resumed.stderr
    assert step_losses(cut).tolist() == step_losses(full).tolist()      # dropout on: bit for bit
    alone = single("-m", "tinynmt.train", "--resume", str(cut))
    assert alone.returncode == 2 and "trained on 2 process(es)" in alone.stderr


@needs_mpi
def test_ranks_started_with_different_flags_fail_at_start_up_with_one_line(tmp_path):
    command = [MPIEXEC, "-n", "1", sys.executable, "-m", "tinynmt.train", *flags(tmp_path / "a"),
               ":", "-n", "1", sys.executable, "-m", "tinynmt.train", *flags(tmp_path / "a", hid_dim=16)]
    result = subprocess.run(command, cwd=ROOT, env=environment(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: rank 1's config differs from rank 0's: start every rank with the same "
                      "data and flags"]
    assert not (tmp_path / "a").exists()


def start_long_run(out):
    """A 2-rank run that would take minutes, started in its own process group."""
    command = [MPIEXEC, "-n", "2", sys.executable, "-m", "tinynmt.train", *flags(out, epochs=500)]
    proc = subprocess.Popen(command, cwd=ROOT, env=environment(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (out / "last.npz").exists():
        time.sleep(0.2)
    assert (out / "last.npz").exists(), "the run did not reach its first epoch end"
    return proc


def rank_pid(out, rank):
    """The pid of the python process of `rank` in the run writing to `out` (from /proc)."""
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            env = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if str(out).encode() in cmdline and b"tinynmt.train" in cmdline and f"PMI_RANK={rank}".encode() in env:
            return int(entry.name)
    raise AssertionError(f"no rank {rank} process found")


@needs_mpi
@pytest.mark.slow
def test_a_killed_rank_ends_the_job_with_an_error_within_seconds(tmp_path):
    out = tmp_path / "run"
    proc = start_long_run(out)
    before = load_checkpoint(out / "last.npz").train_state["counters"]["step"]
    os.kill(rank_pid(out, 1), signal.SIGKILL)
    start = time.monotonic()
    try:
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode != 0 and time.monotonic() - start < 30
    assert load_checkpoint(out / "last.npz").train_state["counters"]["step"] >= before


@needs_mpi
@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_the_job_saves_last_once_and_exits_130(tmp_path, sig):
    out = tmp_path / "run"
    proc = start_long_run(out)
    proc.send_signal(sig)
    try:
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, stderr
    assert stdout.count("Stopped at step") == 1 and len(records(out, "interrupted")) == 1
    assert stdout.count("Resume with:") == 1 and f"mpiexec -n 2 python -m tinynmt.train --resume {out}" in stdout
    step = records(out, "interrupted")[0]["step"]
    assert load_checkpoint(out / "last.npz").train_state["counters"]["step"] == step
