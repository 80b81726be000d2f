"""Validation (loss and greedy BLEU) split across MPI ranks against rank 0 alone.

    mpiexec -n 2 python benchmarks/bench_validation.py runs/RUN/best.npz

Times `Trainer.validate` (with --select-by bleu) of a checkpoint on the validation split
twice: every rank taking its share (what `mpiexec -n N python -m tinynmt.train` does), then
rank 0 alone while the others wait; both must give the same numbers. Prints one JSON line.
"""
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tinynmt.training.checkpoint import load_checkpoint  # noqa: E402
from tinynmt.training.distributed import SINGLE, init  # noqa: E402
from tinynmt.training.build import load_data  # noqa: E402
from tinynmt.training.trainer import Trainer  # noqa: E402


def main(path):
    comm = init()
    comm.use_device("cpu")
    ckpt = load_checkpoint(path)
    config = ckpt.config.replace(select_by="bleu")
    trainer = Trainer(config, load_data(config), ckpt.model, comm)
    out = {}
    for name, ranks in (("split", comm), ("rank0_alone", SINGLE)):
        comm.barrier()
        start = time.perf_counter()
        loss = bleu = None
        if name == "split" or comm.is_root:
            loss, bleu = trainer.validate(comm=ranks)
        comm.barrier()
        out[name] = dict(seconds=round(time.perf_counter() - start, 2), loss=loss, bleu=bleu)
    if comm.is_root:
        print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
