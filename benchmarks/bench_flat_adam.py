"""The flat Adam and clip (tinynmt/fast/flat_adam.py) against the plain ones (tinynmt/optim/),
on the tutorial model's parameters, in one run.

    python benchmarks/bench_flat_adam.py                       # NumPy
    python benchmarks/bench_flat_adam.py --device cuda --repeats 50

Times one optimizer step and one clip of each, with the same random gradients, in
alternating rounds; prints the medians and the ratios. The step includes what the trainer's
step does around it: zero_grad, the gradients arriving (copied into .grad, as backward
accumulates them), the clip and the update.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks.runners import interleaved_median_times  # noqa: E402
from tinynmt.backend import synchronize, to_device, xp_for  # noqa: E402
from tinynmt.fast.flat_adam import FlatAdam, flat_clip_grad_norm_  # noqa: E402
from tinynmt.nn import build_transformer  # noqa: E402
from tinynmt.optim import Adam, clip_grad_norm_  # noqa: E402


VOCABS = (9597, 7704)     # the tutorial's de and en vocabularies: 10.4 M parameters


def setup(cls, clip, device, grads):
    """A model on `device` and its optimizer -> one training step's optimizer work, as a call."""
    model = build_transformer(*VOCABS, 1, 1, seed=1234).to(device)
    optimizer = cls(model.parameters(), lr=5e-4)

    def step():
        optimizer.zero_grad()
        for p, g in zip(optimizer.params, grads):
            if p.grad is None:
                p.grad = g.copy()             # plain: backward makes a fresh array
            else:
                p.grad += g                   # flat: backward accumulates into the view
        clip(optimizer.params, 1.0)
        optimizer.step()
    return step


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    xp = xp_for(args.device)
    shapes = [p.shape for p in build_transformer(*VOCABS, 1, 1, seed=1234).parameters()]
    rng = np.random.default_rng(0)
    grads = [to_device(rng.standard_normal(s).astype(np.float32), args.device) for s in shapes]
    sync = lambda: synchronize(xp)  # noqa: E731
    calls = {"plain Adam + clip_grad_norm_": (setup(Adam, clip_grad_norm_, args.device, grads), sync),
             "FlatAdam + flat_clip_grad_norm_": (setup(FlatAdam, flat_clip_grad_norm_, args.device, grads), sync)}
    times, _ = interleaved_median_times(calls, args.repeats, warmup=2)
    base = times["plain Adam + clip_grad_norm_"]
    print(f"{len(shapes)} parameters, {sum(int(np.prod(s)) for s in shapes):,} numbers, {args.device}")
    for name, seconds in times.items():
        print(f"{name:>34}  {seconds * 1e3:8.2f} ms   {seconds / base:.2f} x plain")


if __name__ == "__main__":
    main()
