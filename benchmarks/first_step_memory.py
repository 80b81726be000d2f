"""Memory at the first training step: the data path's part apart from the step's activations.

    python benchmarks/bench_corpus.py --sizes 100000 1000000 --ranks 1 --keep   # kept folders
    python benchmarks/first_step_memory.py DATA [BATCH_FROM] [--half] [--max-tokens 1500]

In this process, as `train --data DATA --preset strong --max-tokens 1500` does: load the data
(load_data), build the model and Adam, plan epoch 0, then take one step on the first batch of
BATCH_FROM's epoch 0 (found by a child process; default DATA's; --half: its rows 0, 2, 4, ...,
rank 0's share under mpiexec -n 2). The same batch on two corpora shows what the data path
costs per pair; the same corpus with two batches shows the activations. Prints VmRSS and
RssAnon (MB) before and after the step. Memory only: nothing is timed.
"""
import argparse
import multiprocessing
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tinynmt.fast import keep_freed_memory  # noqa: E402
from tinynmt.programs.train import build_parser, config_from_args  # noqa: E402
from tinynmt.training.build import load_data  # noqa: E402
from tinynmt.training.trainer import Trainer  # noqa: E402


def memory_mb():
    """(VmRSS, RssAnon) of this process in MB."""
    status = Path("/proc/self/status").read_text()
    return [int(re.search(rf"{key}:\s+(\d+) kB", status).group(1)) / 1024 for key in ("VmRSS", "RssAnon")]


def run_config(folder, max_tokens):
    return config_from_args(vars(build_parser().parse_args(
        ["--data", str(folder), "--preset", "strong", "--max-tokens", str(max_tokens)])))


def first_batch(folder, max_tokens, half):
    """The first batch of epoch 0 of folder's training pairs, as the trainer plans it."""
    config = run_config(folder, max_tokens)
    batches = load_data(config).train.batches(shuffle=True, seed=config.seed, batch_size=config.batch_size,
                                              max_tokens=config.max_tokens)
    idx = batches.plan(0)[0]
    return batches.make_batch(idx[0::2] if half else idx)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("batch_from", nargs="?")
    parser.add_argument("--half", action="store_true", help="every second row (rank 0's share of 2)")
    parser.add_argument("--max-tokens", type=int, default=1500)
    args = parser.parse_args()
    with multiprocessing.get_context("fork").Pool(1) as pool:    # its loading leaves nothing here
        batch = pool.apply(first_batch, (args.batch_from or args.data, args.max_tokens, args.half))
    keep_freed_memory()                              # as python -m tinynmt.train does
    config = run_config(args.data, args.max_tokens)
    trainer = Trainer.create(config, load_data(config))
    idx = trainer.train_batches.plan(0)[0]
    rss, anon = memory_mb()
    trainer.train_batches.make_batch = lambda rows: batch    # the step takes the chosen batch
    trainer.step(idx)
    trainer.sync()
    rss_after, anon_after = memory_mb()
    B, S = batch.src.shape
    print(f"data {Path(args.data).name}, first batch of {Path(args.batch_from or args.data).name}"
          f"{' (half)' if args.half else ''}: B={B} S={S} T={batch.trg.shape[1]}; before the step "
          f"RSS {rss:.0f} anon {anon:.0f} MB, after RSS {rss_after:.0f} anon {anon_after:.0f} MB")


if __name__ == "__main__":
    main()
