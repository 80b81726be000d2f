"""`python -m tinynmt.data`: load a dataset and print split and vocabulary sizes.

    python -m tinynmt.data --src de --trg en [--data-dir DIR] [--tokenizer unicode]

Bad input prints one line `error: ...` to stderr and exits with status 2.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, fields
from typing import List, Optional

from ..cli import OneLineParser, report_error
from .dataset import DataConfig, load_dataset
from .errors import DataError

_HELP = {
    "src": "source language: cs, de, en or fr",
    "trg": "target language: cs, de, en or fr",
    "tokenizer": "whitespace (the tutorial's) or unicode",
    "lower": "lowercase before tokenizing",
    "min_freq": "keep tokens seen at least this often in train",
    "max_size": "cap on vocabulary tokens after the 4 specials",
    "max_len": "drop training pairs longer than this many ids (<sos>/<eos> included)",
    "data_dir": "folder with hand-placed {split}.{lang}[.gz] files, looked in first",
    "test": "test split: test_2016_flickr, test_2017_flickr, test_2017_mscoco, test_2018_flickr",
    "download": "download missing files into the cache",
}
_INT_FIELDS = {"min_freq", "max_size", "max_len"}


def build_parser() -> argparse.ArgumentParser:
    """Build the command line from DataConfig's fields."""
    parser = OneLineParser(prog="python -m tinynmt.data",
                            description="Load a translation dataset and print its sizes.")
    for f in fields(DataConfig):
        flag = "--" + f.name.replace("_", "-")
        if isinstance(f.default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, help=_HELP[f.name])
        else:
            kind = int if f.name in _INT_FIELDS else str
            parser.add_argument(flag, type=kind, default=f.default, help=f"{_HELP[f.name]} (default: {f.default})")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Run the CLI; return the exit status."""
    config = DataConfig(**vars(build_parser().parse_args(argv)))
    try:
        data = load_dataset(**asdict(config))
    except DataError as err:
        return report_error(err)
    except KeyboardInterrupt:
        return report_error("interrupted", 130)
    print("\n".join(data.summary()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
