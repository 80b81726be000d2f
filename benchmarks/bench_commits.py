"""Before/after: the tinynmt NumPy training step at several git revisions, in one run.

    python benchmarks/bench_commits.py 49c37ff HEAD --batches 8 --rounds 5

Each revision is checked out with `git worktree` into a temporary folder and timed in its own
process on the same saved batches; rounds alternate between revisions so that a change in
the machine's load hits them all alike. Reports the median seconds per step of each.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Runs inside the worktree; uses only APIs every revision has had.
STEP = r"""
import json, sys, time
import numpy as np
import tinynmt
assert tinynmt.__file__.startswith(sys.argv[2]), tinynmt.__file__
from tinynmt.backend import Generator
from tinynmt.nn import CrossEntropyLoss, build_transformer, set_dropout_generator
from tinynmt.optim import Adam, clip_grad_norm_
saved = np.load(sys.argv[1])
n = int(saved["n"]); vocab = saved["vocab"].tolist()
batches = [(saved[f"src{i}"], saved[f"trg{i}"]) for i in range(n)]
model = build_transformer(vocab[0], vocab[1], 1, 1, seed=1234)
set_dropout_generator(model, Generator(1234))
opt, crit = Adam(model.parameters(), lr=5e-4), CrossEntropyLoss(ignore_index=1)
def step(src, trg):
    out, _ = model(src, trg[:, :-1])
    loss = crit(out.reshape(-1, out.shape[-1]), trg[:, 1:].reshape(-1))
    opt.zero_grad(); loss.backward(); clip_grad_norm_(model.parameters(), 1.0); opt.step()
for b in batches: step(*b)
start = time.perf_counter()
for b in batches: step(*b)
print(json.dumps((time.perf_counter() - start) / n))
"""


def save_batches(path, n):
    """The first n training batches of epoch 0, as every revision will see them."""
    from tinynmt.data import load_dataset
    data = load_dataset(progress=False)
    batches = list(data.train.batches(batch_size=64, shuffle=True, seed=1234).epoch(0))[:n]
    arrays = {f"src{i}": b.src for i, b in enumerate(batches)}
    arrays.update({f"trg{i}": b.trg for i, b in enumerate(batches)})
    np.savez(path, n=n, vocab=np.array([len(data.src_vocab), len(data.trg_vocab)]), **arrays)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("revs", nargs="+")
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        batches = Path(tmp) / "batches.npz"
        save_batches(batches, args.batches)
        trees = {}
        for rev in args.revs:
            tree = Path(tmp) / f"tree-{len(trees)}"
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), rev],
                           check=True, capture_output=True)
            trees[rev] = tree
        times = {rev: [] for rev in args.revs}
        try:
            for _ in range(args.rounds):
                for rev, tree in trees.items():
                    out = subprocess.run([sys.executable, "-c", STEP, str(batches), str(tree)], cwd=tree,
                                         check=True, capture_output=True, text=True,
                                         env={**os.environ, "PYTHONPATH": str(tree)})
                    times[rev].append(json.loads(out.stdout))
        finally:
            for tree in trees.values():
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                               capture_output=True)
    for rev in args.revs:
        print(f"{rev:>12}  {np.median(times[rev]):.4f} s/step  (rounds: "
              + ", ".join(f"{t:.3f}" for t in times[rev]) + ")")


if __name__ == "__main__":
    main()
