"""`python -m tinynmt.data`: load a dataset and print split and vocabulary sizes.

    python -m tinynmt.data --src de --trg en [--data-dir DIR] [--tokenizer unicode]

Bad input prints one line `error: ...` to stderr and exits with status 2.
"""
from __future__ import annotations

import sys
from typing import List, Optional

from .cli import flush_stdout, parser_from_fields, report_error, report_os_error
from ..data.dataset import DataConfig, load_dataset
from ..data.errors import DataError


def build_parser():
    """One flag per DataConfig field: the fields load_dataset takes."""
    return parser_from_fields(DataConfig, prog="python -m tinynmt.data",
                              description="Load a translation dataset and print its sizes.")


def main(argv: Optional[List[str]] = None) -> int:
    """Run the CLI; return the exit status."""
    config = DataConfig(**vars(build_parser().parse_args(argv)))
    if sys.stdout is None:
        return report_error("standard output is closed: the sizes have nowhere to go; redirect it")
    try:
        data = load_dataset(config)
        print("\n".join(data.summary()))
        return flush_stdout(0)
    except DataError as err:
        return report_error(err)
    except OSError as err:
        return report_os_error(err)
    except KeyboardInterrupt:
        return report_error("interrupted", 130)


if __name__ == "__main__":
    sys.exit(main())
