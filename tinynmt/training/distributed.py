"""Data parallelism: N processes (ranks) train one model on shares of every batch.

    mpiexec -n 2 python -m tinynmt.train           # two CPU ranks: MPI on NumPy buffers
    mpiexec -n 8 python -m tinynmt.train --device cuda   # one GPU each: NCCL through CuPy

    comm = distributed.init()            # under mpiexec: the MPI world; alone: SINGLE, a no-op
    comm.use_device("cuda")              # rank -> GPU (local rank), NCCL communicator
    comm.broadcast_(param.data)          # for each parameter: every rank starts from rank 0's weights
    batch, share, _ = shard_batch(batches, idx, comm)          # this rank's rows of batch idx
    train_step(model, criterion, optimizer, batch.src, batch.trg, clip,
               loss_fn=rank_share_loss(teacher_forced_loss, share),
               after_backward=allreduce_gradients(comm))   # once a step: the ranks' gradients summed

Each rank takes every N-th row of the global batch, scales its mean loss by its share of the
global batch's target tokens, and backpropagates; the all-reduced (summed) gradient is then
the gradient of the one-process loss, so clipping and Adam do the same thing on every rank
and the weights stay equal without ever being sent again (docs/distributed.md). The last
three functions are how this plugs into train_step (tinynmt/training/step.py): a loss
function and a hook after backward.

This is the only module that imports mpi4py (and cupy.cuda.nccl), and only when mpiexec
started more than one process; with one, nothing here touches MPI.
"""
import hashlib
import json
import os
import sys

import numpy as np

from ..backend import BackendError, cupy_module, get_array_module

MPI_HINT = "pip install -e \".[mpi]\" (mpi4py and the mpich wheel, which ships mpiexec)"
# Variables the common launchers set in every process they start: world size and rank.
LAUNCHER_SIZE = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "PMIX_SIZE")


def launched_size():
    """How many processes the launcher (mpiexec) says it started; 1 without one."""
    for name in LAUNCHER_SIZE:
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 1


class SingleProcess:
    """One process: rank 0 of 1. Every collective returns its input; nothing is sent."""

    rank, size, local_rank, local_size = 0, 1, 0, 1

    @property
    def is_root(self):
        return self.rank == 0

    def use_device(self, device):
        """Pick this rank's device (a GPU by local rank) before any array is made there."""
        return device

    def shard(self, rows):
        """This rank's share of a global batch's rows: every size-th one, from its rank."""
        return rows[self.rank::self.size]

    def broadcast_(self, array, root=0):
        """Overwrite `array` in place with root's copy."""
        return array

    def allreduce_(self, array):
        """Replace `array` in place with the sum of every rank's copy."""
        return array

    def sum(self, values):
        """The element-wise sum over ranks of a host float64 vector (a copy)."""
        return np.array(values, dtype=np.float64)

    def any(self, flag):
        """True on every rank when `flag` is true on any rank."""
        return bool(flag)

    def allgather(self, obj):
        """[rank 0's obj, rank 1's obj, ...] on every rank (small, picklable objects)."""
        return [obj]

    def barrier(self):
        """Wait until every rank gets here."""

    def abort(self, status):
        """End every rank of the job now with exit status `status`."""
        sys.exit(status)


SINGLE = SingleProcess()


class MPIComm(SingleProcess):
    """The MPI world of an mpiexec job; gradients move by MPI (NumPy) or NCCL (CuPy)."""

    def __init__(self, MPI):
        self.MPI, self.world = MPI, MPI.COMM_WORLD
        self.rank, self.size = self.world.Get_rank(), self.world.Get_size()
        node = self.world.Split_type(MPI.COMM_TYPE_SHARED)      # the ranks on this machine
        self.local_rank, self.local_size = node.Get_rank(), node.Get_size()
        node.Free()
        self.nccl = None

    def use_device(self, device):
        if device == "cuda":
            self.nccl = NCCL(self)
        else:
            limit_blas_threads(self.local_size)
        return device

    def broadcast_(self, array, root=0):
        if get_array_module(array) is np:
            self.world.Bcast(array, root=root)
        else:
            self.nccl.broadcast_(array, root)
        return array

    def allreduce_(self, array):
        if get_array_module(array) is np:
            self.world.Allreduce(self.MPI.IN_PLACE, array, op=self.MPI.SUM)
        else:
            self.nccl.allreduce_(array)
        return array

    def sum(self, values):
        out = np.array(values, dtype=np.float64)
        self.world.Allreduce(self.MPI.IN_PLACE, out, op=self.MPI.SUM)
        return out

    def any(self, flag):
        return bool(self.world.allreduce(bool(flag), op=self.MPI.LOR))

    def allgather(self, obj):
        return self.world.allgather(obj)

    def barrier(self):
        self.world.Barrier()

    def abort(self, status):
        sys.stdout.flush()
        sys.stderr.flush()
        self.world.Abort(status)


class NCCL:
    """An NCCL communicator over one GPU per rank (by local rank); its id goes round by MPI."""

    def __init__(self, comm):
        cupy = cupy_module()
        from cupy.cuda import nccl
        count = cupy.cuda.runtime.getDeviceCount()
        if count < comm.local_size:
            raise BackendError(f"{comm.local_size} ranks on this machine but {count} GPU(s): "
                               f"one rank per GPU")
        cupy.cuda.Device(comm.local_rank).use()
        uid = comm.world.bcast(nccl.get_unique_id() if comm.rank == 0 else None, root=0)
        self.cupy, self.nccl = cupy, nccl
        self.comm = nccl.NcclCommunicator(comm.size, uid, comm.rank)
        self.types = {np.dtype(np.float32): nccl.NCCL_FLOAT32, np.dtype(np.float64): nccl.NCCL_FLOAT64}

    def _stream(self):
        return self.cupy.cuda.get_current_stream().ptr

    def allreduce_(self, array):
        """In place, on the current stream: the host never waits for it."""
        self.comm.allReduce(array.data.ptr, array.data.ptr, array.size, self.types[array.dtype],
                            self.nccl.NCCL_SUM, self._stream())

    def broadcast_(self, array, root):
        self.comm.bcast(array.data.ptr, array.size, self.types[array.dtype], root, self._stream())


def limit_blas_threads(ranks_here):
    """Share this machine's cores among its ranks (unless the user set a thread count).

    Two ranks that each run OpenBLAS with every core's thread slow each other down many-fold.
    """
    if any(name in os.environ for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")):
        return
    from threadpoolctl import threadpool_limits
    threadpool_limits(max(1, (os.cpu_count() or 1) // ranks_here), user_api="blas")


def init():
    """SINGLE without a launcher (or with one process); else the MPI world (mpi4py needed)."""
    size = launched_size()
    if size <= 1:
        return SINGLE
    try:
        from mpi4py import MPI
    except ImportError:
        raise BackendError(f"mpiexec started {size} processes but mpi4py is not installed: "
                           f"{MPI_HINT}") from None
    return MPIComm(MPI)


def fingerprint(*parts):
    """A short hash of JSON-able parts (config, data sizes): equal on every rank, or a mistake."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def first_different(comm, value):
    """The first rank whose `value` differs from rank 0's, or None when all agree."""
    values = comm.allgather(value)
    return next((rank for rank, other in enumerate(values) if other != values[0]), None)


# ----- how data parallelism plugs into training

def shard_batch(batches, idx, comm=SINGLE):
    """This rank's Batch of the global batch of sentences `idx` -> (batch, share, target tokens).

    share: the rank's part of the global batch's predicted tokens (the loss's denominator; 1
    with one process); target tokens: the global batch's. A rank left without rows (a batch
    smaller than the world) reruns the last one with share 0, so it still takes part in the
    all-reduce.
    """
    n_pred = int(batches.trg.lengths[idx].sum()) - len(idx)
    rows = comm.shard(idx)
    batch = batches.make_batch(rows if len(rows) else idx[-1:])
    share = batch.n_pred_tokens / max(n_pred, 1) if len(rows) else 0.0
    return batch, share, n_pred + len(idx)


def rank_share_loss(loss_fn, share):
    """train_step's loss_fn for one rank: loss_fn's mean loss times the rank's `share` of the
    global batch's target tokens. The ranks' scaled losses sum to the one-process mean, so their
    summed gradients are its gradient. With one process share is exactly 1: the same numbers."""
    def scaled(model, criterion, src, trg):
        return loss_fn(model, criterion, src, trg) * share
    return scaled


def allreduce_gradients(comm):
    """train_step's after_backward under data parallelism: every rank's gradients are replaced by
    their sum over the ranks, before clipping. One collective a step, on one vector: the .grad
    arrays packed side by side, summed, and unpacked (a parameter without one sends zeros)."""
    def after_backward(optimizer):
        params = optimizer.params
        xp = get_array_module(params[0].data)
        grads = [xp.zeros_like(p.data) if p.grad is None else p.grad for p in params]
        flat = xp.concatenate([g.ravel() for g in grads])               # (P,) every parameter's
        comm.allreduce_(flat)
        start = 0
        for p, g in zip(params, grads):
            p.grad = flat[start:start + g.size].reshape(g.shape)
            start += g.size
    return after_backward


def allreduce_flat_gradients(comm):
    """allreduce_gradients for the speed corner's FlatAdam (fast/flat_adam.py): its gradient
    buffer already is the packed vector (gather_grads() copies in any .grad that is not a view
    of it), so the sum is taken in place and nothing is packed or unpacked."""
    def after_backward(optimizer):
        comm.allreduce_(optimizer.gather_grads())
    return after_backward
