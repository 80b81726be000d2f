"""`python -m tinynmt.prepare`: prepare your own parallel corpus once, then train from it.

    python -m tinynmt.prepare --train corpus/train --valid corpus/dev --test corpus/test \\
        --src xx --trg yy --tokenizer bpe --bpe-merges 8000 --share-vocab --out data/xx-yy
    python -m tinynmt.train --data data/xx-yy --preset strong

Each split is a PREFIX: PREFIX.xx and PREFIX.yy (or PREFIX.xx.gz, ...), line i of one the
translation of line i of the other; any language labels (letters, digits, '-', '_'). The
corpus is read once, streaming; pairs are cleaned as Moses' clean-corpus-n does (invalid
UTF-8, empty, longer than --max-len, length ratio over --max-len-ratio: training pairs
only) and counted by reason; BPE merges and vocabularies are learned from the training
split; every split is encoded into memory-mappable arrays. The folder (--out, never written
over) holds manifest.json (sources with sizes and SHA-256, options, counts), tokenizer.json
(the merges), vocab.<lang>.json, <split>.<lang>.ids.npy/.offsets.npy and the val/test text
(tinynmt/data/prepare_io.py). Bad input: one line `error: ...` on stderr, exit status 2.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

from .cli import flush_stdout, parser_from_fields, report_error, report_os_error
from ..data.corpus import SHOW_INVALID
from ..data.errors import DataError
from ..data.encode_corpus import PrepareOptions, prepare_corpus
from ..data.prepare_io import save_prepared

CORPUS_FLAGS = ("train", "valid", "test", "src", "trg", "out")


def build_parser():
    """One flag per PrepareOptions field, and the corpus: prefixes, languages, output folder."""
    parser = parser_from_fields(PrepareOptions, prog="python -m tinynmt.prepare",
                                description="Prepare a parallel corpus for python -m tinynmt.train --data.")
    parser.add_argument("--train", required=True, metavar="PREFIX", help="training files PREFIX.SRC, PREFIX.TRG")
    parser.add_argument("--valid", required=True, metavar="PREFIX", help="validation files PREFIX.SRC, PREFIX.TRG")
    parser.add_argument("--test", nargs="+", metavar="PREFIX", help="test files, one prefix per test set "
                        "(splits test, test1, ...)")
    parser.add_argument("--src", required=True, metavar="LANG", help="source language label, e.g. de or xx-a")
    parser.add_argument("--trg", required=True, metavar="LANG", help="target language label")
    parser.add_argument("--out", required=True, metavar="DIR", help="the folder to write (must not exist)")
    return parser


def say(message):
    print(message, flush=True)


def warn_invalid(data):
    """One warning per invalid line among the first few of each split, then how many there were."""
    for name, info in data.manifest["splits"].items():
        n = info["counts"].get("invalid_utf8", 0)
        for where in info["invalid_utf8_first"]:
            print(f"warning: {where}: not valid UTF-8; its pair is dropped", file=sys.stderr)
        if n > SHOW_INVALID:
            print(f"warning: {name}: {n:,} pairs dropped for invalid UTF-8 in all", file=sys.stderr)


def main(argv: Optional[List[str]] = None) -> int:
    """Run the CLI; return the exit status."""
    args = vars(build_parser().parse_args(argv))
    corpus = {k: args.pop(k, None) for k in CORPUS_FLAGS}
    try:
        out = Path(corpus["out"]).expanduser()
        if out.exists() and not (out.is_dir() and not any(out.iterdir())):
            raise DataError(f"--out {out} already exists; remove it or pick another folder")
        data = prepare_corpus(corpus["src"], corpus["trg"], corpus["train"], corpus["valid"],
                              corpus["test"] or (), PrepareOptions(**args), log=say)
        warn_invalid(data)
        save_prepared(data, out)
        print("\n".join(data.summary()))
        size = sum(p.stat().st_size for p in out.iterdir())
        print(f"wrote {out} ({size / 1e6:,.1f} MB); train from it with: python -m tinynmt.train --data {out}")
        return flush_stdout(0)
    except DataError as err:
        return report_error(err)
    except OSError as err:                  # a full disk, a closed pipe: one line (tinynmt/programs/cli.py)
        return report_os_error(err)
    except KeyboardInterrupt:
        return report_error("interrupted; nothing was written", 130)


if __name__ == "__main__":
    sys.exit(main())
