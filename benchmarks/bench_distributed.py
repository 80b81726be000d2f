"""Data-parallel step time: 1 process x T threads, N MPI ranks x 1 thread, PyTorch eager.

    python benchmarks/bench_distributed.py                 # 1x2 threads, 2 ranks x 1, torch 2 threads
    python benchmarks/bench_distributed.py --rounds 3 --batches 8 --repeats 3

The driver starts each engine as its own child process (mpiexec for the ranks) with
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE removed from the child's environment, as on a user's
machine, and alternates them for --rounds rounds so that each ratio is measured in one run.
Every child trains the tutorial model (seed 1234) on the same first --batches batches of 64
sentences of epoch 0 that benchmarks/bench.py uses; ranks split each batch's rows as
`mpiexec -n N python -m tinynmt.train` does. A child reports the median step time over
--repeats passes (after one warm-up pass), the BLAS library, kernel and thread count, and,
for the ranks, the median time of the all-reduce of the 41.6 MB gradient buffer alone.
"""
import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench import machine_info  # noqa: E402
from benchmarks.blas_env import blas_info, clean_env, describe  # noqa: E402
from benchmarks.runners import TorchRunner, median_time  # noqa: E402
from tinynmt.backend import Generator  # noqa: E402
from tinynmt.fast.cpu import keep_freed_memory  # noqa: E402
from tinynmt.data import PAD_IDX, load_dataset  # noqa: E402
from tinynmt.training.distributed import init, rank_share_loss, shard_batch  # noqa: E402
from tinynmt.nn import CrossEntropyLoss, build_transformer, set_dropout_generator, teacher_forced_loss  # noqa: E402
from tinynmt.training.step import train_step  # noqa: E402
from tinynmt.training.config import Config  # noqa: E402
from tinynmt.training.trainer import make_after_backward, make_clip, make_optimizer  # noqa: E402

def worker(args):
    """Time the step in this process (one rank of an mpiexec job, or alone); print JSON."""
    keep_freed_memory()
    comm = init()
    comm.use_device("cpu")
    data = load_dataset(progress=False)
    train = data.train.batches(batch_size=64, shuffle=True, seed=1234)
    plan = train.plan(0)[:args.batches]
    model = build_transformer(len(data.src_vocab), len(data.trg_vocab), PAD_IDX, PAD_IDX, seed=1234)
    result = {"engine": args.engine, "ranks": comm.size}
    if args.engine == "torch":
        import torch
        torch.set_num_threads(args.threads)
        runner = TorchRunner(model, "cpu", PAD_IDX)
        batches = [train.make_batch(idx) for idx in plan]
        step = median_time(lambda: [runner.train_step(b) for b in batches], runner.sync, args.repeats, 1)
        info = machine_info()
        result.update(torch=info["torch"], torch_threads=torch.get_num_threads(),
                      torch_blas=f"{info['torch_blas']}, {info['torch_cpu_capability']}")
    else:
        model.train()
        set_dropout_generator(model, Generator(1234 if comm.rank == 0 else [1234, comm.rank]))
        optimizer = make_optimizer(model.parameters(), Config(lr=5e-4))    # what the trainer uses
        criterion = CrossEntropyLoss(ignore_index=PAD_IDX)
        for param in model.parameters():
            comm.broadcast_(param.data)
        shards = [shard_batch(train, idx, comm)[:2] for idx in plan]    # (batch, share)
        after_backward, clip = make_after_backward(optimizer, comm), make_clip(optimizer)

        def one_pass():
            for batch, share in shards:
                train_step(model, criterion, optimizer, batch.src, batch.trg, 1.0,
                           loss_fn=rank_share_loss(teacher_forced_loss, share), after_backward=after_backward,
                           clip_grad_norm=clip)
        comm.barrier()
        step = median_time(one_pass, comm.barrier, args.repeats, 1)
        buffer = optimizer.gather_grads() if hasattr(optimizer, "gather_grads") else \
            np.concatenate([p.grad.ravel() for p in model.parameters()])   # the vector all-reduced
        result["allreduce_s"] = median_time(lambda: comm.allreduce_(buffer), comm.barrier, 20, 2)
        result["allreduce_mb"] = buffer.nbytes / 1e6
    result.update(step_s=step / len(plan), blas=blas_info())
    if comm.is_root:
        print("RESULT " + json.dumps(result), flush=True)


def child_command(kind, args):
    """The command line of one engine's child."""
    me = [sys.executable, str(Path(__file__).resolve()), "--worker", "--batches", str(args.batches),
          "--repeats", str(args.repeats)]
    if kind == "ranks":
        return ["mpiexec", "-n", str(args.ranks), *me, "--engine", "tinynmt", "--threads", "1"]
    return [*me, "--engine", kind, "--threads", str(args.threads)]


def child_env(kind, args):
    env = clean_env()                    # without OpenBLAS's kernel overrides, as a user runs it
    threads = "1" if kind == "ranks" else str(args.threads)
    env.update(OPENBLAS_NUM_THREADS=threads, OMP_NUM_THREADS=threads, PYTHONPATH=str(ROOT))
    return env


def drive(args):
    """Alternate the engines for --rounds rounds; print the table and write JSON."""
    kinds = {"tinynmt": f"tinynmt 1 process x {args.threads} threads",
             "ranks": f"tinynmt {args.ranks} ranks x 1 thread",
             "torch": f"PyTorch eager, {args.threads} threads"}
    runs = {k: [] for k in kinds}
    for r in range(args.rounds):
        for kind in kinds:
            out = subprocess.run(child_command(kind, args), env=child_env(kind, args), capture_output=True,
                                 text=True, check=True).stdout
            runs[kind].append(json.loads(out.split("RESULT ", 1)[1]))
            print(f"round {r + 1} {kinds[kind]}: {runs[kind][-1]['step_s']:.4f} s/step", flush=True)
    summary = {k: float(np.median([x["step_s"] for x in v])) for k, v in runs.items()}
    allreduce = float(np.median([x["allreduce_s"] for x in runs["ranks"]]))
    print(f"\n| engine | step (s, median of {args.rounds} rounds) | vs PyTorch |\n| --- | --- | --- |")
    for kind, label in kinds.items():
        print(f"| {label} | {summary[kind]:.4f} | {summary[kind] / summary['torch']:.2f}x |")
    print(f"\nall-reduce of {runs['ranks'][0]['allreduce_mb']:.1f} MB between {args.ranks} ranks: "
          f"{allreduce * 1e3:.1f} ms = {100 * allreduce / summary['ranks']:.0f}% of the ranks' step")
    for kind, label in kinds.items():
        pools = "; ".join(describe(runs[kind][0]["blas"]))
        torch_blas = f"; torch: {runs[kind][0]['torch_blas']}" if "torch_blas" in runs[kind][0] else ""
        print(f"{label}: {pools}{torch_blas}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    record = {"date": time.strftime("%Y-%m-%d"), "command": " ".join(sys.argv), "runs": runs,
              "median_step_s": summary, "allreduce_s": allreduce}
    (out / "distributed.json").write_text(json.dumps(record, indent=2))
    print(f"wrote {out / 'distributed.json'}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=8, help="training batches per pass")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes in each child")
    parser.add_argument("--rounds", type=int, default=3, help="alternations of the engines")
    parser.add_argument("--ranks", type=int, default=2, help="MPI ranks (one BLAS thread each)")
    parser.add_argument("--threads", type=int, default=2, help="threads of the one-process engines")
    parser.add_argument("--out", default="benchmarks/out", help="folder for distributed.json")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--engine", default="tinynmt", choices=("tinynmt", "torch"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    worker(args) if args.worker else drive(args)


if __name__ == "__main__":
    main()
