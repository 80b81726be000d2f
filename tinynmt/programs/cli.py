"""What every command-line program shares: a parser built from declared fields, one-line
usage errors and one way to report an error.

    parser = parser_from_fields(Options, prog="python -m tinynmt.x")  # --hid-dim INT, ...
    options = Options(**vars(parser.parse_args()))               # only the flags given
    return report_error(f"cannot read {path}")                   # `error: ...` on stderr -> 2

The fields themselves (option, limits, check_fields) are declared with tinynmt/options.py.
"""
import argparse
import sys
from dataclasses import fields
from typing import get_type_hints

from ..options import base_type, is_optional

USAGE_ERROR = 2      # bad input: flags, files, data, checkpoints


def _or_none(convert):
    """An argparse type that also accepts 'none' (for Optional fields)."""
    def parse(text):
        return None if text.lower() == "none" else convert(text)
    parse.__name__ = convert.__name__  # argparse names the type in its error messages
    return parse


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line, like every other error here."""

    def error(self, message):
        self.exit(USAGE_ERROR, f"error: {message} (see --help)\n")


def parser_from_fields(cls, prog, description=None):
    """One flag per field of the dataclass `cls` (`hid_dim` -> `--hid-dim`, booleans as
    `--x/--no-x`, optional numbers accept `none`); only the flags given are parsed."""
    parser = OneLineParser(prog=prog, description=description, argument_default=argparse.SUPPRESS)
    types = get_type_hints(cls)
    for f in fields(cls):
        flag = "--" + f.name.replace("_", "-")
        kind = base_type(types[f.name])
        shown = "none" if f.default is None else f.default
        help_text = f"{f.metadata['help']} (default: {shown})".replace("%", "%%")
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, help=help_text)
            continue
        convert = _or_none(kind) if is_optional(types[f.name]) else kind
        parser.add_argument(flag, type=convert, metavar=kind.__name__.upper(), help=help_text)
    return parser


def report_error(message, status=USAGE_ERROR):
    """Print `error: message` on stderr; return the exit status to leave with."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    return status
