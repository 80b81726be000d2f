"""Each trick of the speed corner (tinynmt/fast/) against the plain lines it replaces, and the
whole training step with the switch on and off.

    python benchmarks/bench_fast.py                          # every trick, then the step
    python benchmarks/bench_fast.py --repeats 50 --step-batches 8 --step-rounds 5
    python benchmarks/bench_fast.py --only cross-entropy,layer-norm --no-step

Each trick runs through the op (or helper) that calls it, once with `fast.use_fast(True)` and
once with `fast.use_fast(False)`, on the tutorial's shapes (batches of 64, 13 tokens, hidden
256, pf 512, 9,597 German and 7,704 English words, beams of 5); the two alternate and each
reports its best of `--repeats` (time.perf_counter). The whole step (forward, loss, backward,
clip, Adam on real Multi30k batches, as bench_commits.py runs it) is timed in child processes:
tricks on with the programs' allocator setting, tricks on with glibc's default allocator, and
TINYNMT_PLAIN=1; rounds alternate and each reports its median. Runs without
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE; prints the BLAS that did the work; writes JSON to --out.
Legend: B batch, T tokens, D hidden, V vocabulary, K beams.
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.blas_env import blas_info, clean_env, describe, reexec_clean  # noqa: E402

if __name__ == "__main__":
    reexec_clean()  # before NumPy loads OpenBLAS, which reads the overrides once

import numpy as np  # noqa: E402

from tinynmt import Tensor, fast  # noqa: E402
from tinynmt.autograd.ops_matmul import MatMul  # noqa: E402
from tinynmt.autograd.ops_nn import CrossEntropy, Embedding, LayerNorm, Linear  # noqa: E402
from tinynmt.backend import Generator, synchronize, xp_for  # noqa: E402

B, T, D, PF, V_SRC, V_TRG, K = 64, 13, 256, 512, 9597, 7704, 5
N = 682                          # target positions of a typical batch: the logits are (N, V_TRG)


def forward_backward(function, inputs, grad, **options):
    """A call of function's forward then backward on raw arrays, all inputs wanting a gradient."""
    def run():
        fn = function()
        fn.needs_input_grad = (True,) * len(inputs)
        fn.forward(*inputs, **options)
        fn.backward(grad)
    return run


def cases(xp, device, rng):
    """{name: (shapes, run)}: run() goes through the switch, so it times plain or fast."""
    def array(*shape, scale=1.0):
        return xp.asarray((rng.standard_normal(shape) * scale).astype(np.float32))
    act, pf = array(B, T, D), array(B, T, PF)
    logits, target = array(N, V_TRG, scale=3.0), rng.integers(2, V_TRG, N)
    target[::7] = 1                                                      # padding, ignored
    ce_target = xp.asarray(target)
    ids = xp.asarray(rng.integers(0, V_SRC, (B, T)))
    x, w, b = array(N, D), array(V_TRG, D), array(V_TRG)
    generator = Generator(0, device)
    found = {
        "dropout mask": ("(B, T, PF) p=0.1", lambda: generator.keep_mask(pf.shape, 0.1)),
        "cross-entropy": ("(N, V) fwd+bwd", forward_backward(
            CrossEntropy, [logits], xp.ones((), np.float32), target=ce_target, ignore_index=1)),
        "layer-norm": ("(B, T, D) fwd+bwd", forward_backward(LayerNorm, [act, array(D), array(D)], act)),
        "linear bias grad": ("(N, V) rows summed", linear_bias_grad(x, w, b, array(N, V_TRG))),
        "matmul fold": ("(B, T, D) @ (D, D) fwd+bwd", forward_backward(MatMul, [act, array(D, D)], act)),
        "embedding grad": ("(V_src, D) from (B, T)", embedding_grad(array(V_SRC, D), ids, act)),
        "engine sums": ("(B, T, D) used 4 times", reused_node(act)),
        "scalar operand": ("x * 0.5, x (8,), 100 ops", scalar_ops(Tensor(array(8)))),
    }
    from tinynmt.decoding.search import _top_k
    scores = array(2 * B, K * V_TRG)
    found["beam top-k"] = ("(2B, K*V) k=2K", lambda: _top_k(scores, 2 * K))
    return found


def linear_bias_grad(x, w, b, grad):
    """Linear's backward asked for the bias gradient alone (the one trick in it)."""
    fn = Linear()
    fn.forward(x, w, b)

    def run():
        fn.needs_input_grad = (False, False, True)
        fn.backward(grad)
    return run


def embedding_grad(weight, ids, grad):
    fn = Embedding()
    fn.forward(weight, ids=ids)
    return lambda: fn.backward(grad)


def reused_node(x):
    """Forward and backward of x * a + x * b + x * c + x: four gradients summed into x's."""
    def run():
        leaves = [Tensor(x, requires_grad=True) for _ in range(4)]
        x_, a, b, c = leaves
        (x_ * a + x_ * b + x_ * c + x_).sum().backward()
    return run


def scalar_ops(x):
    def run():
        for _ in range(100):
            x * 0.5
    return run


def best_times(run, sync, repeats):
    """{"plain": s, "fast": s}: best of `repeats`, the two paths alternating, one warm-up each."""
    times = {"plain": [], "fast": []}
    for _ in range(repeats + 1):
        for path in times:
            with fast.use_fast(path == "fast"):
                sync()
                start = time.perf_counter()
                run()
                sync()
                times[path].append(time.perf_counter() - start)
    return {path: min(t[1:]) for path, t in times.items()}


# One child per setting; the step is bench_commits.py's, on its saved batches.
STEP = r"""
import json, sys, time
import numpy as np
from tinynmt import fast
from tinynmt.backend import Generator, synchronize, xp_for
from tinynmt.nn import CrossEntropyLoss, build_transformer, set_dropout_generator
from tinynmt.optim import Adam, clip_grad_norm_
batches_path, device, allocator = sys.argv[1:4]
if allocator == "keep":
    fast.keep_freed_memory()          # as the programs do; a no-op under TINYNMT_PLAIN=1
saved = np.load(batches_path)
n = int(saved["n"]); vocab = saved["vocab"].tolist()
batches = [(saved[f"src{i}"], saved[f"trg{i}"]) for i in range(n)]
model = build_transformer(vocab[0], vocab[1], 1, 1, seed=1234).to(device)
set_dropout_generator(model, Generator(1234, device))
opt, crit = Adam(model.parameters(), lr=5e-4), CrossEntropyLoss(ignore_index=1)
def step(src, trg):
    out, _ = model(src, trg[:, :-1])
    loss = crit(out.reshape(-1, out.shape[-1]), trg[:, 1:].reshape(-1))
    opt.zero_grad(); loss.backward(); clip_grad_norm_(model.parameters(), 1.0); opt.step()
for b in batches: step(*b)
xp = xp_for(device); synchronize(xp)
start = time.perf_counter()
for b in batches: step(*b)
synchronize(xp)
print(json.dumps({"seconds": (time.perf_counter() - start) / n, "fast": fast.enabled()}))
"""

SETTINGS = {"fast": ("keep", False), "fast, glibc allocator": ("default", False), "plain": ("keep", True)}


def step_times(device, n_batches, rounds):
    """{setting: [seconds per step, one per round]} from child processes, rounds alternating."""
    from benchmarks.bench_commits import save_batches
    env = {k: v for k, v in clean_env().items() if k != "TINYNMT_PLAIN"}
    env["PYTHONPATH"] = str(ROOT)
    times = {name: [] for name in SETTINGS}
    with tempfile.TemporaryDirectory() as tmp:
        batches = Path(tmp) / "batches.npz"
        save_batches(batches, n_batches)
        for _ in range(rounds):
            for name, (allocator, plain) in SETTINGS.items():
                child_env = {**env, "TINYNMT_PLAIN": "1"} if plain else env
                out = subprocess.run([sys.executable, "-c", STEP, str(batches), device, allocator],
                                     cwd=ROOT, env=child_env, check=True, capture_output=True, text=True)
                result = json.loads(out.stdout)
                assert result["fast"] is not plain, result
                times[name].append(result["seconds"])
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--repeats", type=int, default=30, help="timed calls of each trick, each path (best is kept)")
    parser.add_argument("--only", help="comma list of trick names (default: all)")
    parser.add_argument("--no-step", action="store_true", help="skip the whole-step timing")
    parser.add_argument("--step-batches", type=int, default=8)
    parser.add_argument("--step-rounds", type=int, default=5)
    parser.add_argument("--out", default="benchmarks/out/fast.json", help="where the JSON goes")
    args = parser.parse_args()
    xp = xp_for(args.device)
    sync = lambda: synchronize(xp)   # noqa: E731
    results = {"command": " ".join(["python", "benchmarks/bench_fast.py", *sys.argv[1:]]),
               "date": time.strftime("%Y-%m-%d"), "device": args.device, "tricks": {}}
    every = cases(xp, args.device, np.random.default_rng(0))
    wanted = args.only.split(",") if args.only else list(every)
    print(f"{'trick':<18}{'shapes':<28}{'plain ms':>10}{'fast ms':>10}{'plain/fast':>12}")
    for name in wanted:
        shapes, run = every[name]
        t = best_times(run, sync, args.repeats)
        results["tricks"][name] = {"shapes": shapes, "plain_s": t["plain"], "fast_s": t["fast"]}
        print(f"{name:<18}{shapes:<28}{1e3 * t['plain']:>10.3f}{1e3 * t['fast']:>10.3f}"
              f"{t['plain'] / t['fast']:>11.2f}x")
    if not args.no_step:
        times = step_times(args.device, args.step_batches, args.step_rounds)
        results["step"] = {name: {"median_s": float(np.median(t)), "rounds_s": t} for name, t in times.items()}
        base = np.median(times["fast"])
        print(f"\nwhole training step, {args.step_batches} batches x {args.step_rounds} rounds (median s/step):")
        for name, t in times.items():
            print(f"  {name:<24}{np.median(t):.4f}  ({np.median(t) / base:.3f} of fast; rounds: "
                  + ", ".join(f"{s:.3f}" for s in t) + ")")
    results["threadpools"] = blas_info()
    for line in describe(results["threadpools"]):
        print(f"thread pool: {line}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
