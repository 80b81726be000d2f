"""What tests/test_distributed.py runs under `mpiexec -n 2 python tests/mpi_worker.py KIND ...`.

    grad [RDROP]               2-rank float64 gradient of one global batch vs one process (rank 0
                               prints the largest differences as JSON; exit 1 when they are large;
                               Adam's m / sqrt(v) magnifies 1e-17 gradient noise to ~1e-11);
                               RDROP: the step's R-Drop alpha (dropout is off: its KL term is 0)
    train STOP RANK FLAGS...   train() with the CLI's FLAGS; rank RANK alone asks to stop after
                               step STOP (0: never); exit 130 when interrupted
"""
import json
import sys

import numpy as np

from tinynmt.data import PAD_IDX, Batches
from tinynmt.nn import CrossEntropyLoss, ModelConfig, build_transformer
from tinynmt.programs.train import build_parser, config_from_args
from tinynmt.training.config import Config
from tinynmt.training.distributed import SINGLE, init, rank_share_loss, shard_batch
from tinynmt.training.loop import train
from tinynmt.training.step import train_step
from tinynmt.training.trainer import make_after_backward, make_clip, make_loss, make_optimizer


def float64_model():
    """A tiny seeded Seq2Seq in float64, dropout off."""
    model = build_transformer(23, 19, PAD_IDX, PAD_IDX, ModelConfig(
        hid_dim=16, enc_layers=1, dec_layers=1, enc_heads=2, dec_heads=2, enc_pf_dim=32, dec_pf_dim=32,
        enc_dropout=0.0, dec_dropout=0.0, max_length=20), seed=7)
    for p in model.parameters():
        p.data = p.data.astype(np.float64)
    return model


def step_gradient(comm, batches, idx, rdrop=0.0):
    """train_step on this rank's share of batch idx, with what Trainer.step gives it (the run's
    loss scaled by the rank's share, the all-reduce after backward, the trainer's clipping and
    optimizer) -> (gradient, norm, weights after Adam), the arrays flattened."""
    model = float64_model()
    optimizer = make_optimizer(model.parameters(), Config(lr=1e-2))   # the trainer's: what it all-reduces
    criterion = CrossEntropyLoss(ignore_index=PAD_IDX, label_smoothing=0.1)
    batch, share, _ = shard_batch(batches, idx, comm)
    _, norm = train_step(model, criterion, optimizer, batch.src, batch.trg, 1e9,
                         loss_fn=rank_share_loss(make_loss(Config(rdrop=rdrop)), share),
                         after_backward=make_after_backward(optimizer, comm),
                         clip_grad_norm=make_clip(optimizer))
    return (np.concatenate([p.grad.ravel() for p in model.parameters()]), float(norm),
            np.concatenate([p.data.ravel() for p in model.parameters()]))


def grad(comm, rdrop=0.0):
    rng = np.random.default_rng(3)
    lengths = [(3, 9), (8, 4), (5, 5), (11, 7), (4, 12), (6, 3), (9, 10)]   # 7 rows: 4 and 3 a rank
    src = [[2, *rng.integers(4, 23, n - 2), 3] for n, _ in lengths]
    trg = [[2, *rng.integers(4, 19, n - 2), 3] for _, n in lengths]
    batches = Batches(src, trg, batch_size=7)
    idx = np.arange(7)
    shared = step_gradient(comm, batches, idx, rdrop)
    alone = step_gradient(SINGLE, batches, idx, rdrop)
    diffs = {name: float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
             for name, a, b in zip(("grad", "norm", "weights"), shared, alone)}
    rows = [len(r) for r in comm.allgather(comm.shard(idx))]
    widths = comm.allgather(shard_batch(batches, idx, comm)[0].trg.shape[1])
    if comm.is_root:
        print(json.dumps(dict(diffs, rows=rows, trg_widths=widths, grad_scale=float(np.abs(alone[0]).max()))))
    return 0 if max(diffs["grad"], diffs["norm"]) < 1e-12 and diffs["weights"] < 1e-9 else 1


def run_train(comm, stop_step, stop_rank, flags):
    config = config_from_args(vars(build_parser().parse_args(flags)))

    def should_stop(step):
        return comm.rank == stop_rank and step == stop_step
    result = train(config, should_stop=should_stop, comm=comm)
    return 130 if result.status == "interrupted" else 0


if __name__ == "__main__":
    world = init()
    kind = sys.argv[1]
    if kind == "grad":
        sys.exit(grad(world, float(sys.argv[2]) if len(sys.argv) > 2 else 0.0))
    sys.exit(run_train(world, int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]))
