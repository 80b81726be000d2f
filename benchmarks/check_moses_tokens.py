"""Does moses_tokenize remake Multi30k's official tokenized files? Compare them line by line.

    python benchmarks/check_moses_tokens.py REF_TOK_FILE [--lang de] [--split test_2016_flickr]
        [--raw RAW_FILE] [--remove-bpe] [--show 5]

REF_TOK_FILE: e.g. data/task1/tok/test_2016_flickr.lc.norm.tok.de of
https://github.com/multi30k/dataset, or with --remove-bpe ("@@ " joins) the BPE files a paper
trained on (LividWo/Revisit-MMT's data/multi30k-en-de/test.2016.de). Such files belong to their
repositories and are never committed here. The raw side is --raw, else our Multi30k file of
--split in --lang (both read off a file name like `test_2016_flickr.lc.norm.tok.de`).
tinynmt.decoding.metrics.moses_tokenize tokenizes the raw lines; the two token sequences of
each line are compared. Prints: identical lines out of N, tokens (ours, theirs) on the lines
that differ and the tokens a minimal edit changes there, then the first --show differences.
"""
import argparse
import difflib
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from tinynmt.data import read_lines  # noqa: E402
from tinynmt.data.multi30k import SPLITS, find_file  # noqa: E402
from tinynmt.decoding.metrics import moses_tokenize  # noqa: E402


def edited_tokens(ours, theirs):
    """Tokens of either sequence outside the longest matching blocks (0 when equal)."""
    matched = sum(block.size for block in difflib.SequenceMatcher(None, ours, theirs, autojunk=False)
                  .get_matching_blocks())
    return len(ours) + len(theirs) - 2 * matched


def compare(raw_lines, ref_lines, lang):
    """[(line number, our tokens, their tokens)] of the lines whose tokens differ."""
    if len(raw_lines) != len(ref_lines):
        sys.exit(f"error: {len(raw_lines)} raw lines but {len(ref_lines)} tokenized ones")
    ours = moses_tokenize(raw_lines, lang)
    return [(i + 1, a.split(), b.split()) for i, (a, b) in enumerate(zip(ours, ref_lines)) if a.split() != b.split()]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ref", type=Path, help="the official tokenized file")
    parser.add_argument("--lang", help="language (default: the file name's last suffix)")
    parser.add_argument("--split", choices=SPLITS, help="Multi30k split (default: from the file name)")
    parser.add_argument("--raw", type=Path, help="raw file instead of our Multi30k split")
    parser.add_argument("--remove-bpe", action="store_true", help='join BPE pieces ("@@ ") first, as fairseq does')
    parser.add_argument("--show", type=int, default=5, help="differences to print")
    args = parser.parse_args()
    lang = args.lang or args.ref.suffix.lstrip(".")
    ref_lines = read_lines(args.ref)
    if args.remove_bpe:
        ref_lines = [re.sub(r"@@( |$)", "", line) for line in ref_lines]
    if args.raw is None:
        split = args.split or args.ref.name.split(".")[0]
        args.raw = find_file(split, lang)[0]
    differ = compare(read_lines(args.raw), ref_lines, lang)
    ours = sum(len(a) for _, a, _ in differ)
    theirs = sum(len(b) for _, _, b in differ)
    edits = sum(edited_tokens(a, b) for _, a, b in differ)
    total = sum(len(line.split()) for line in ref_lines)
    print(f"{args.raw} ({lang}) against {args.ref}{' (BPE removed)' if args.remove_bpe else ''}")
    print(f"identical: {len(ref_lines) - len(differ):,} of {len(ref_lines):,} lines; "
          f"{len(differ):,} differ, holding {ours:,} of our tokens and {theirs:,} of theirs "
          f"({total:,} in all), {edits:,} tokens edited")
    for number, a, b in differ[:args.show]:
        print(f"line {number}:\n  ours:   {' '.join(a)}\n  theirs: {' '.join(b)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
