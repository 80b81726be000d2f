"""Time byte-pair encoding on Multi30k de+en train: learn 10k joint merges, then apply them.

    python benchmarks/bench_bpe.py [--merges 10000]

One run (learning is deterministic; no repeats). The target for learning 10k merges is
well under a minute.
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from tinynmt.data import BPETokenizer, read_multi30k  # noqa: E402
from tinynmt.data.bpe import count_words, learn_merges  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--merges", type=int, default=10000)
    args = parser.parse_args()
    de, en = read_multi30k("train", "de", "en", progress=False)
    lines = de + en
    start = time.perf_counter()
    counts = count_words(lines, lower=True)
    counted = time.perf_counter()
    merges = learn_merges(counts, args.merges)
    learned = time.perf_counter()
    tok = BPETokenizer(lower=True, merges=merges)
    n_tokens = sum(len(tok.tokenize(line)) for line in lines)
    applied = time.perf_counter()
    n_words = sum(counts.values())
    print(f"{len(lines)} lines, {n_words} words, {len(counts)} word types")
    print(f"count words:    {counted - start:6.2f} s")
    print(f"learn {len(merges)} merges: {learned - counted:6.2f} s")
    print(f"apply (tokenize all lines): {applied - learned:6.2f} s -> {n_tokens} tokens "
          f"({n_tokens / n_words:.3f} per word)")


if __name__ == "__main__":
    main()
