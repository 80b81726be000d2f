"""Before/after: the tinynmt NumPy training step at several git revisions, in one run.

    python benchmarks/bench_commits.py 49c37ff HEAD --batches 8 --rounds 5
    python benchmarks/bench_commits.py b7ecbcd HEAD --preset tiny-ende --ranks 2   # a recipe's step

Each revision is checked out with `git worktree` into a temporary folder and timed in its own
process on the same saved batches; rounds alternate between revisions so that a change in
the machine's load hits them all alike. Reports the median (and the best) seconds per step of each, and
the BLAS library, version, kernel and threads the children ran with; writes them to --out.
The children run without OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, as a user's machine does.
The step is the trainer's loss (nn.teacher_forced_loss, where the revision has it). By default
the tutorial's model and batches; --preset NAME times a recipe's: its model, label smoothing,
Adam betas and data (Multi30k, its tokenizer), each step one rank's share of the recipe's
batch (every --ranks-th sentence, as the trainer shards it).
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.blas_env import clean_env, describe  # noqa: E402

# Runs inside the worktree; uses only APIs every revision has had, and where the revision has
# them keep_freed_memory (the allocator setting the programs use) and the optimizer and clip the
# trainer uses (FlatAdam and its clip; before them tinynmt.optim's Adam was the flat one), so a
# before/after comparison times the step the trainer runs, not the plain Adam.
STEP = r"""
import json, sys, time
import numpy as np
import tinynmt
assert tinynmt.__file__.startswith(sys.argv[2]), tinynmt.__file__
from tinynmt.backend import Generator
from tinynmt.nn import CrossEntropyLoss, build_transformer, set_dropout_generator
try:
    from tinynmt.fast.flat_adam import FlatAdam as Adam, flat_clip_grad_norm_ as clip_grad_norm_
except ImportError:
    from tinynmt.optim import Adam, clip_grad_norm_
keep_freed_memory = lambda: None
for where in ("tinynmt.fast.cpu", "tinynmt.speed", "tinynmt.backend"):   # newest layout first
    try:   # as the programs and bench.py do, where the revision has it
        keep_freed_memory = __import__(where, fromlist=["keep_freed_memory"]).keep_freed_memory
        break
    except (ImportError, AttributeError):
        continue
keep_freed_memory()
saved = np.load(sys.argv[1])
n = int(saved["n"]); vocab = saved["vocab"].tolist()
batches = [(saved[f"src{i}"], saved[f"trg{i}"]) for i in range(n)]
recipe = json.loads(str(saved["recipe"])) if "recipe" in saved else None
if recipe is None:                     # the tutorial's model, loss and Adam
    model = build_transformer(vocab[0], vocab[1], 1, 1, seed=1234)
    opt, crit = Adam(model.parameters(), lr=5e-4), CrossEntropyLoss(ignore_index=1)
else:
    from tinynmt.nn import ModelConfig
    model = build_transformer(vocab[0], vocab[1], 1, 1, ModelConfig(**recipe["model"]), seed=1234)
    opt = Adam(model.parameters(), lr=1e-4, betas=tuple(recipe["betas"]))
    crit = CrossEntropyLoss(ignore_index=1, label_smoothing=recipe["label_smoothing"])
set_dropout_generator(model, Generator(1234))
try:
    from tinynmt.nn import teacher_forced_loss as loss_of
except ImportError:                    # before the trainer's loss had a name
    def loss_of(model, crit, src, trg):
        out, _ = model(src, trg[:, :-1])
        return crit(out.reshape(-1, out.shape[-1]), trg[:, 1:].reshape(-1))
def step(src, trg):
    loss = loss_of(model, crit, src, trg)
    opt.zero_grad(); loss.backward(); clip_grad_norm_(opt.params, 1.0); opt.step()
for b in batches: step(*b)
start = time.perf_counter()
for b in batches: step(*b)
seconds = (time.perf_counter() - start) / n
try:
    from threadpoolctl import threadpool_info
    keys = ("user_api", "internal_api", "prefix", "version", "architecture", "num_threads", "threading_layer")
    pools = [{k: p.get(k) for k in keys} for p in threadpool_info()]
except ImportError:
    pools = [{"note": "threadpoolctl is not installed (pip install threadpoolctl)"}]
print(json.dumps({"seconds": seconds, "threadpools": pools, "optimizer": type(opt).__name__}))
"""


def save_batches(path, n, preset=None, ranks=1):
    """The first n training batches of epoch 0 (rank 0's share of each), as every revision will
    see them, and the preset's model, loss and Adam settings (JSON) when one is named."""
    if preset is None:
        from tinynmt.data import load_dataset
        data, sizes, recipe = load_dataset(progress=False), dict(batch_size=64), {}
    else:
        from dataclasses import fields
        from tinynmt.nn import ModelConfig
        from tinynmt.training.build import load_data
        from tinynmt.training.config import Config
        config = Config.from_preset(preset)
        data, sizes = load_data(config), dict(batch_size=config.batch_size, max_tokens=config.max_tokens)
        model = {f.name: getattr(config, f.name) for f in fields(ModelConfig)}
        recipe = dict(recipe=json.dumps({"model": model, "label_smoothing": config.label_smoothing,
                                         "betas": [config.adam_beta1, config.adam_beta2]}))
    plan = data.train.batches(shuffle=True, seed=1234, **sizes)
    batches = [plan.make_batch(idx[::ranks]) for idx in plan.plan(0)[:n]]
    arrays = {f"src{i}": b.src for i, b in enumerate(batches)}
    arrays.update({f"trg{i}": b.trg for i, b in enumerate(batches)})
    np.savez(path, n=n, vocab=np.array([len(data.src_vocab), len(data.trg_vocab)]), **recipe, **arrays)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("revs", nargs="+")
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--preset", help="time this recipe's step (default: the tutorial's)")
    parser.add_argument("--ranks", type=int, default=1, help="each step is one of this many ranks' share")
    parser.add_argument("--out", default="benchmarks/out/commits.json", help="where the JSON goes")
    args = parser.parse_args()
    env = clean_env()
    with tempfile.TemporaryDirectory() as tmp:
        batches = Path(tmp) / "batches.npz"
        save_batches(batches, args.batches, args.preset, args.ranks)
        trees = {}
        for rev in args.revs:
            tree = Path(tmp) / f"tree-{len(trees)}"
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), rev],
                           check=True, capture_output=True)
            trees[rev] = tree
        times = {rev: [] for rev in args.revs}
        pools, optimizers = {}, {}
        try:
            for _ in range(args.rounds):
                for rev, tree in trees.items():
                    out = subprocess.run([sys.executable, "-c", STEP, str(batches), str(tree)], cwd=tree,
                                         check=True, capture_output=True, text=True,
                                         env={**env, "PYTHONPATH": str(tree)})
                    result = json.loads(out.stdout)
                    times[rev].append(result["seconds"])
                    pools[rev] = result["threadpools"]
                    optimizers[rev] = result["optimizer"]
        finally:
            for tree in trees.values():
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                               capture_output=True)
    for rev in args.revs:
        print(f"{rev:>12}  {np.median(times[rev]):.4f} s/step, best {min(times[rev]):.4f}  (rounds: "
              + ", ".join(f"{t:.3f}" for t in times[rev]) + f"; {optimizers[rev]})")
    for line in describe(pools[args.revs[-1]]):
        print(f"thread pool: {line}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"command": " ".join(["python", "benchmarks/bench_commits.py", *sys.argv[1:]]),
                               "date": time.strftime("%Y-%m-%d"), "batches": args.batches,
                               "preset": args.preset, "ranks": args.ranks,
                               "revisions": {rev: {"median_s": float(np.median(times[rev])), "rounds_s": times[rev],
                                                   "optimizer": optimizers[rev], "threadpools": pools[rev]}
                                             for rev in args.revs}}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
