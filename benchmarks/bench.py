"""Benchmark the tutorial Transformer on real Multi30k batches, engine against engine.

    python benchmarks/bench.py                     # every backend present, step + forward + decode
    python benchmarks/bench.py --what step --repeats 5 --batches 8

For each backend present (tinynmt NumPy, tinynmt CuPy, PyTorch CPU, PyTorch CUDA) it times
the training step (forward, backward, clip, Adam) and an eval-mode forward pass over the same
`--batches` training batches, and decoding of test sentences (greedy and beam 5). Each figure
is the median of `--repeats` rounds after a warm-up round (the training-step rounds alternate
between backends); GPU timings synchronise. It also
measures this machine's NumPy float32 matmul peak in the same run and reports each step's
matrix-multiply FLOP rate against it. Prints a table, writes JSON and a PNG chart.

It times what a user's machine runs: with OPENBLAS_CORETYPE or OPENBLAS_L2_SIZE set it
restarts itself without them, and it records the BLAS library, its version, its kernel and
its thread count (threadpoolctl) in the JSON and under the table.
"""
import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.blas_env import blas_info, describe, reexec_clean  # noqa: E402

if __name__ == "__main__":
    reexec_clean()  # before NumPy loads OpenBLAS, which reads the overrides once

import numpy as np  # noqa: E402

from benchmarks.flops import step_matmul_flops  # noqa: E402
from benchmarks.runners import (TinynmtRunner, TorchRunner, interleaved_median_times,  # noqa: E402
                                median_time)
from benchmarks.decoding import decode_timings  # noqa: E402
from tinynmt.training.checkpoint import load_checkpoint  # noqa: E402
from tinynmt.data import PAD_IDX, load_dataset  # noqa: E402
from tinynmt.fast.cpu import keep_freed_memory  # noqa: E402
from tinynmt.nn import build_transformer  # noqa: E402


def matmul_peak(n=2048, repeats=5):
    """NumPy float32 GEMM rate on this machine, in GFLOP/s (best of `repeats`)."""
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
    np.dot(a, b)
    best = min(_timed(lambda: np.dot(a, b)) for _ in range(repeats))
    return 2 * n ** 3 / best / 1e9


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def available_backends(wanted):
    """(engine, device) pairs that can run here, among those asked for."""
    pairs = [("tinynmt", "cpu")]
    try:
        from tinynmt.backend import cupy_module
        cupy_module()
        pairs.append(("tinynmt", "cuda"))
    except Exception:
        pass
    try:
        import torch
        pairs.append(("torch", "cpu"))
        if torch.cuda.is_available():
            pairs.append(("torch", "cuda"))
    except ImportError:
        pass
    return [p for p in pairs if f"{p[0]}-{p[1]}" in wanted or "all" in wanted]


def machine_info():
    """CPU model, cores, GPU and library versions, for the record."""
    info = {"python": platform.python_version(), "numpy": np.__version__,
            "cores": os.cpu_count(), "cpu": platform.processor() or platform.machine()}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        import torch
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        # torch links its BLAS statically (threadpoolctl cannot see it): take its build line
        config = torch.__config__.show()
        info["torch_blas"] = next((line.strip(" -") for line in config.splitlines()
                                   if "Math Kernel Library" in line or "OpenBLAS" in line), "unknown")
        info["torch_cpu_capability"] = next((line.split(":", 1)[1].strip() for line in config.splitlines()
                                             if "CPU capability" in line), "unknown")
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    try:
        import cupy
        info["cupy"] = cupy.__version__
    except ImportError:
        pass
    info["threadpools"] = blas_info()   # after torch's import, so its OpenMP pool shows too
    return info


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--what", default="step,forward,decode", help="comma list of step, forward, decode")
    parser.add_argument("--backends", default="all",
                        help="comma list of tinynmt-cpu, tinynmt-cuda, torch-cpu, torch-cuda, or all")
    parser.add_argument("--batches", type=int, default=8, help="training batches per round")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds (the median is reported)")
    parser.add_argument("--decode-sentences", type=int, default=1000, help="test sentences to translate")
    parser.add_argument("--checkpoint", help="use these trained weights (a .npz) instead of a fresh "
                        "model: decoding then stops at <eos> as it does in real use")
    parser.add_argument("--allocator", choices=("keep", "default"), default="keep",
                        help="keep: glibc keeps freed memory (as python -m tinynmt.train does); "
                             "default: glibc's own thresholds")
    parser.add_argument("--out", default="benchmarks/out", help="folder for results.json and chart.png")
    args = parser.parse_args(argv)
    what = set(args.what.split(","))
    if args.allocator == "keep":
        keep_freed_memory()  # one process: PyTorch gets the same allocator as tinynmt

    data = load_dataset(progress=False)
    batches = list(data.train.batches(batch_size=64, shuffle=True, seed=1234).epoch(0))[:args.batches]
    V_src, V_trg = len(data.src_vocab), len(data.trg_vocab)
    flops = sum(step_matmul_flops(b.src.shape[0], b.src.shape[1], b.trg.shape[1] - 1, 256, 512, V_trg)
                for b in batches) / len(batches)
    peak = matmul_peak()
    results = {"machine": machine_info(), "date": time.strftime("%Y-%m-%d"),
               "command": " ".join(["python", "benchmarks/bench.py", *(argv or sys.argv[1:])]),
               "numpy_matmul_peak_gflops": peak, "step_matmul_gflop": flops / 1e9,
               "batches": len(batches), "tokens_per_batch": float(np.mean([b.n_pred_tokens for b in batches])),
               "backends": {}}
    print(f"NumPy float32 matmul peak: {peak:.1f} GFLOP/s; step matmul work: {flops / 1e9:.1f} GFLOP")

    runners = {}
    for engine, device in available_backends(set(args.backends.split(","))):
        model = build_transformer(V_src, V_trg, PAD_IDX, PAD_IDX, seed=1234)
        if args.checkpoint:
            model.load_state_dict(load_checkpoint(args.checkpoint).model.state_dict())
        runner = (TinynmtRunner(model, device, PAD_IDX) if engine == "tinynmt"
                  else TorchRunner(model, device, PAD_IDX))
        runners[runner.name] = (engine, runner)
        results["backends"][runner.name] = {}
    if "step" in what:   # rounds alternate between engines: their ratio survives a change of load
        calls = {name: ((lambda r=runner: [r.train_step(b) for b in batches]), runner.sync)
                 for name, (_, runner) in runners.items()}
        medians, rounds = interleaved_median_times(calls, args.repeats, 1)
        for name, t in medians.items():
            t /= len(batches)
            results["backends"][name].update(step_s=t, step_matmul_gflops=flops / t / 1e9,
                                             step_rounds_s=[r / len(batches) for r in rounds[name]])
    for name, (engine, runner) in runners.items():
        entry = results["backends"][name]
        if "forward" in what:
            entry["forward_s"] = median_time(lambda: [runner.forward(b) for b in batches],
                                             runner.sync, args.repeats, 1) / len(batches)
        if "decode" in what:
            entry.update(decode_timings(engine, runner, data, args.decode_sentences))
        print(name, json.dumps({k: round(v, 4) for k, v in entry.items() if not isinstance(v, list)}))

    report(results, Path(args.out))


def report(results, out):
    """Print the table, write results.json and chart.png."""
    out.mkdir(parents=True, exist_ok=True)
    backends = results["backends"]
    base = backends.get("torch-cpu", {})
    cols = ["step_s", "forward_s", "greedy_sent_s", "beam5_sent_s"]
    print(f"\n{'backend':<15}" + "".join(f"{c:>15}" for c in cols) + f"{'step/torch-cpu':>16}{'% of peak':>11}")
    for name, entry in backends.items():
        ratio = entry["step_s"] / base["step_s"] if "step_s" in entry and "step_s" in base else float("nan")
        pct = 100 * entry.get("step_matmul_gflops", float("nan")) / results["numpy_matmul_peak_gflops"]
        print(f"{name:<15}" + "".join(f"{entry.get(c, float('nan')):>15.4f}" for c in cols)
              + f"{ratio:>16.2f}{pct:>10.0f}%")
    machine = results["machine"]
    for line in describe(machine.get("threadpools", [])):
        print(f"thread pool: {line}")
    if "torch_blas" in machine:
        print(f"torch: {machine['torch_blas']}, {machine['torch_cpu_capability']}, "
              f"{machine['torch_threads']} threads")
    (out / "results.json").write_text(json.dumps(results, indent=2))
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no chart")
        return
    names = list(backends)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, title in ((axes[0], "step_s", "training step (s, lower is better)"),
                           (axes[1], "greedy_sent_s", "greedy decoding (sentences/s, higher is better)")):
        ax.bar(names, [backends[n].get(key, 0) for n in names], color="tab:blue")
        ax.set_title(title)
        ax.tick_params(axis="x", rotation=20)
    fig.suptitle(f"tutorial Transformer, Multi30k batches of 64 ({results['machine']['cpu']})")
    fig.tight_layout()
    fig.savefig(out / "chart.png", dpi=100)
    print(f"wrote {out / 'results.json'} and {out / 'chart.png'}")


if __name__ == "__main__":
    main()
