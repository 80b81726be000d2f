"""Time the data pipeline on Multi30k de-en: read, tokenize, build vocabularies, batch.

    python benchmarks/bench_data.py [--repeat 5]

Prints the best and median of `repeat` runs per stage (seconds). The target for
load_dataset() with the tutorial's settings (read + tokenize + vocab + encode) is < 3 s.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from tinynmt.data import Vocab, encode_sentences, get_tokenizer, load_dataset, read_multi30k  # noqa: E402


def timed(fn, repeat):
    """Run fn `repeat` times; return (best, median, last result)."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times), result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rows = []

    def stage(name, fn):
        best, median, result = timed(fn, args.repeat)
        rows.append((name, best, median))
        return result

    pairs = stage("read 6 gz files (train/val/test)",
                  lambda: [read_multi30k(s, "de", "en") for s in ("train", "val", "test_2016_flickr")])
    src_train, trg_train = pairs[0]
    for name in ("whitespace", "unicode"):
        tok = get_tokenizer(name)
        toks = stage(f"tokenize train de+en ({name})",
                     lambda: ([tok.tokenize(s) for s in src_train], [tok.tokenize(t) for t in trg_train]))
    toks = [get_tokenizer("whitespace").tokenize(s) for s in src_train]
    vocab = stage("build vocab train de (min_freq 2)", lambda: Vocab.build(toks, min_freq=2))
    stage("encode train de", lambda: encode_sentences(toks, vocab))
    data = stage("load_dataset() whitespace, end to end", lambda: load_dataset(src="de", trg="en", progress=False))
    stage("load_dataset() unicode, end to end", lambda: load_dataset(src="de", trg="en", tokenizer="unicode", progress=False))
    batches = data.train.batches(batch_size=64, shuffle=True, seed=1234)
    stage("one training epoch of batches (454 x 64)", lambda: sum(len(b) for b in batches.epoch(0)))
    tokens = data.train.batches(batch_size=None, max_tokens=2000, shuffle=True, seed=1234)
    stage("one epoch, max_tokens=2000", lambda: sum(len(b) for b in tokens.epoch(0)))

    print(f"{'stage':45s} {'best s':>8s} {'median s':>9s}")
    for name, best, median in rows:
        print(f"{name:45s} {best:8.3f} {median:9.3f}")
    print(f"vocab sizes: de {len(data.src_vocab)}, en {len(data.trg_vocab)}; python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
