"""Scale of a prepared corpus: `prepare` time and memory, then training's start from it.

    python benchmarks/bench_corpus.py                          # 100k, 300k and 1M pairs
    python benchmarks/bench_corpus.py --sizes 100000 --ranks 1 # one size, no mpiexec run

For each size N it writes a synthetic corpus to a temporary folder (never kept unless
--keep): each training pair is the concatenation of two random Multi30k training pairs
(seed 1234), about 25 words a side; val and test are the first --eval-pairs pairs of
Multi30k's val and test_2016_flickr. Then, each as its own child process, with
OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE removed (benchmarks/blas_env.py):

1. `python -m tinynmt.prepare ... --tokenizer bpe --bpe-merges 8000 --share-vocab --min-freq 1`:
   wall time and peak RSS (os.wait4's ru_maxrss of that child).
2. `python -m tinynmt.train --data DIR --preset strong --max-steps S --log-every 1
   --limit-eval P` (validation is not what is timed), alone
   and under `mpiexec -n R` (R = --ranks): seconds from the start of the command to the
   first step's record in metrics.jsonl (its "time"), the resident memory of every
   training process when that record appears (VmRSS from /proc, polled every 20 ms), the
   model and Adam's arrays (parameters x 4 bytes x 4: weights, gradients, m, v), and the
   mean target tokens per second of steps 2..S.
3. The same training on Multi30k itself, as it loads today and prepared, for comparison.

The RSS at the first step holds that step's activations too, which grow with the sentences'
length (the synthetic pairs are twice Multi30k's): the data path's own cost shows as the
difference between the synthetic rows (flat from 100k to 1M if it costs nothing per pair);
the Multi30k rows give the same model on Multi30k's lengths. Targets (issue 23, on a 2-core
machine): prepare 1M pairs in <= 90 s and <= 1 GB; the first step within 10 s; RSS at the
first step <= the arrays + 0.5 GB, flat from 100k to 1M, per rank too; tokens/s as on
Multi30k. Prints a table and writes benchmarks/out/corpus.json.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.blas_env import clean_env  # noqa: E402
from tinynmt.data import read_multi30k  # noqa: E402

PREPARE = ["--tokenizer", "bpe", "--bpe-merges", "8000", "--share-vocab", "--min-freq", "1"]
GB = 1e9


def write_side(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def make_corpus(folder, n_pairs, eval_pairs, seed=1234):
    """Write train/val/test .de/.en files of the synthetic corpus; return the prefix folder."""
    src, trg = read_multi30k("train", "de", "en")
    first, second = np.random.default_rng(seed).integers(0, len(src), size=(2, n_pairs))
    for lang, lines in (("de", src), ("en", trg)):
        write_side(folder / f"train.{lang}", [lines[a] + " " + lines[b] for a, b in zip(first.tolist(), second.tolist())])
    for name, split in (("val", "val"), ("test", "test_2016_flickr")):
        for lang, lines in zip(("de", "en"), read_multi30k(split, "de", "en")):
            write_side(folder / f"{name}.{lang}", lines[:eval_pairs])
    return folder


def run_measured(cmd, env):
    """Run cmd as a child -> (wall seconds, peak RSS bytes of the child, stdout); raise on failure."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(map(str, cmd))}\n{out[-3000:]}")
    return seconds, usage.ru_maxrss * 1024, out


def descendants(pid):
    """Every process below pid (children of children too)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                kids = [int(k) for k in (task / "children").read_text().split()]
            except OSError:
                kids = []
            found += kids
            todo += kids
    return found


def training_rss(pid, field="VmRSS"):
    """{pid: bytes} of the python processes running tinynmt.train at and below pid: their VmRSS,
    or RssAnon (the same without file-backed pages, such as the memory-mapped ids read so far,
    which the page cache holds and can drop)."""
    out = {}
    for p in [pid, *descendants(pid)]:
        try:
            cmdline = Path(f"/proc/{p}/cmdline").read_bytes()
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        match = re.search(rf"{field}:\s+(\d+) kB", status)
        if b"tinynmt.train" in cmdline and b"python" in cmdline and match and b"mpiexec" not in cmdline:
            out[p] = int(match.group(1)) * 1024
    return out


def step_records(run_dir):
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            pass                                  # a line being written
    return [r for r in records if r.get("kind") == "step"]


def train_start(args, data_args, run_dir, ranks, env):
    """Start a short training run; measure time and RSS at its first step and its tokens/s."""
    cmd = [sys.executable, "-m", "tinynmt.train", *data_args, "--preset", "strong", "--max-steps", str(args.steps),
           "--log-every", "1", "--limit-eval", str(args.eval_pairs), "--no-progress", "--no-plot",
           "--out", str(run_dir), *args.train_flag]
    if ranks > 1:
        cmd = ["mpiexec", "-n", str(ranks), *cmd]
    start_wall = time.time()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    rss_at_first = anon_at_first = None
    while proc.poll() is None:
        rss, anon = training_rss(proc.pid), training_rss(proc.pid, "RssAnon")
        if rss_at_first is None and step_records(run_dir):
            rss_at_first, anon_at_first = rss, anon
        time.sleep(0.02)
    out = proc.stdout.read()
    if proc.returncode:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{out[-3000:]}")
    steps = step_records(run_dir)
    params = int(re.search(r"The model has ([\d,]+) trainable parameters", out).group(1).replace(",", ""))
    rates = [r["tokens_per_s"] for r in steps[1:]]
    return {"ranks": ranks, "first_step_s": round(steps[0]["time"] - start_wall, 2),
            "rss_first_step_gb": [round(v / GB, 3) for v in (rss_at_first or {}).values()],
            "anon_first_step_gb": [round(v / GB, 3) for v in (anon_at_first or {}).values()],
            "arrays_gb": round(params * 4 * 4 / GB, 3), "parameters": params,
            "tokens_per_s": round(float(np.mean(rates)), 1) if rates else None}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    parser.add_argument("--ranks", type=int, default=2, help="also train under mpiexec -n RANKS (1: not)")
    parser.add_argument("--steps", type=int, default=3, help="training steps per run (tokens/s from step 2)")
    parser.add_argument("--eval-pairs", type=int, default=100, help="val and test pairs (validation is not timed)")
    parser.add_argument("--tmp", default=None, help="where the temporary corpora go (default: the system's)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (its path is printed)")
    parser.add_argument("--train-flag", action="append", default=[], metavar="FLAG",
                        help="one more flag for every training run, e.g. --train-flag=--max-tokens=900 "
                             "(batches of equal tokens: the first step's activations then match "
                             "Multi30k's, and the RSS compares the data paths alone)")
    args = parser.parse_args()
    env = clean_env(dict(os.environ, PYTHONPATH=str(ROOT)))
    ranks = [1] + ([args.ranks] if args.ranks > 1 and shutil.which("mpiexec") else [])
    work = Path(tempfile.mkdtemp(prefix="bench_corpus.", dir=args.tmp))
    rows = []
    try:
        m30k = ["--src", "de", "--trg", "en"]
        base = work / "multi30k"
        seconds, peak, _ = run_measured([sys.executable, "-m", "tinynmt.prepare", "--train", "data/multi30k/train",
                                         "--valid", "data/multi30k/val", *m30k, *PREPARE, "--out", str(base)], env)
        rows.append({"corpus": "multi30k raw", **train_start(args, [], work / "run-m30k-raw", 1, env)})
        rows.append({"corpus": "multi30k prepared", "prepare_s": round(seconds, 1), "prepare_peak_gb": round(peak / GB, 3),
                     **train_start(args, ["--data", str(base)], work / "run-m30k", 1, env)})
        for n in args.sizes:
            corpus = make_corpus(Path(tempfile.mkdtemp(prefix=f"corpus{n}.", dir=work)), n, args.eval_pairs)
            out = work / f"prepared{n}"
            seconds, peak, _ = run_measured([sys.executable, "-m", "tinynmt.prepare", "--train", str(corpus / "train"),
                                             "--valid", str(corpus / "val"), "--test", str(corpus / "test"), *m30k,
                                             *PREPARE, "--out", str(out)], env)
            shutil.rmtree(corpus)
            for r in ranks:
                rows.append({"corpus": f"{n:,} pairs", "prepare_s": round(seconds, 1),
                             "prepare_peak_gb": round(peak / GB, 3),
                             **train_start(args, ["--data", str(out)], work / f"run{n}-{r}", r, env)})
                print(json.dumps(rows[-1]), flush=True)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\n{'corpus':20s} {'prepare s':>9s} {'peak GB':>8s} {'ranks':>5s} {'1st step s':>10s} "
          f"{'RSS GB (each rank)':>20s} {'anon GB':>12s} {'arrays+0.5':>10s} {'tok/s':>8s}")
    for r in rows:
        rss = ", ".join(f"{v:.2f}" for v in r["rss_first_step_gb"])
        anon = ", ".join(f"{v:.2f}" for v in r["anon_first_step_gb"])
        print(f"{r['corpus']:20s} {r.get('prepare_s', ''):>9} {r.get('prepare_peak_gb', ''):>8} {r['ranks']:>5d} "
              f"{r['first_step_s']:>10.2f} {rss:>20s} {anon:>12s} {r['arrays_gb'] + 0.5:>10.2f} {r['tokens_per_s'] or 0:>8.0f}")
    (ROOT / "benchmarks" / "out").mkdir(exist_ok=True)
    (ROOT / "benchmarks" / "out" / "corpus.json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
