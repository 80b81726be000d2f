"""Share of the tinynmt NumPy training step spent in matrix products.

    python benchmarks/matmul_share.py --batches 8 --rounds 3

Times every `np.dot` (the Linear layers' GEMMs) and every MatMul op (the attention
products) inside the tutorial step on real Multi30k batches, and prints their total against
the step's wall time. The timing wrappers are this script's alone; the library is unchanged.
Runs without OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, as bench.py does.
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.blas_env import blas_info, describe, reexec_clean  # noqa: E402

if __name__ == "__main__":
    reexec_clean()

import numpy as np  # noqa: E402

import tinynmt.autograd.ops_matmul as ops_matmul  # noqa: E402
from benchmarks.runners import TinynmtRunner  # noqa: E402
from tinynmt.fast.cpu import keep_freed_memory  # noqa: E402
from tinynmt.data import PAD_IDX, load_dataset  # noqa: E402
from tinynmt.nn import build_transformer  # noqa: E402

spent = [0.0]   # seconds inside matrix products since the last reset


def timed(fn):
    """fn, adding its wall time to `spent`."""
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - start
    return wrapper


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    keep_freed_memory()
    np.dot = timed(np.dot)                       # ops_nn.Linear calls xp.dot, xp being numpy
    ops_matmul.MatMul.forward = timed(ops_matmul.MatMul.forward)
    ops_matmul.MatMul.backward = timed(ops_matmul.MatMul.backward)
    data = load_dataset(progress=False)
    batches = list(data.train.batches(batch_size=64, shuffle=True, seed=1234).epoch(0))[:args.batches]
    model = build_transformer(len(data.src_vocab), len(data.trg_vocab), PAD_IDX, PAD_IDX, seed=1234)
    runner = TinynmtRunner(model, "cpu", PAD_IDX)
    for b in batches:                            # warm-up round
        runner.train_step(b)
    for _ in range(args.rounds):
        spent[0] = 0.0
        start = time.perf_counter()
        for b in batches:
            runner.train_step(b)
        total = time.perf_counter() - start
        print(f"step {total / len(batches):.4f} s, matrix products {spent[0] / len(batches):.4f} s "
              f"= {100 * spent[0] / total:.0f}% of the step")
    for line in describe(blas_info()):
        print(f"thread pool: {line}")


if __name__ == "__main__":
    main()
