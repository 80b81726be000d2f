"""What every command-line program shares: a parser built from declared fields, checked
number types, one-line usage errors and one way to report an error.

    parser = parser_from_fields(Options, prog="python -m tinynmt.x")  # --hid-dim INT, ...
    options = Options(**vars(parser.parse_args()))               # only the flags given
    parser.add_argument("--beam", type=checked(int, positive, "beam"))  # hand-written flags too
    return report_error(f"cannot read {path}")                   # `error: ...` on stderr -> 2
    return report_os_error(err)                                  # a file's or stdout's OSError

Every number a flag takes goes through `checked`: nan, inf and values outside the field's
declared limit are one `error:` line (exit 2) at parse time, before any work. The fields
themselves (option, limits, check_fields, value_problem) are declared with tinynmt/options.py.
"""
import argparse
import os
import sys
from dataclasses import fields
from typing import get_type_hints

from ..options import base_type, is_optional, value_problem

USAGE_ERROR = 2      # bad input: flags, files, data, checkpoints


def checked(kind, limit=None, name="value"):
    """An argparse type: text -> `kind` (int or float), refused as check_fields would refuse the
    value: not a number, a float that is nan or inf, a value outside `limit`."""
    def convert(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {kind.__name__} value: {text!r}") from None
        problem = value_problem(name, value, limit)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return value
    convert.__name__ = kind.__name__
    return convert


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
        convert = checked(kind, f.metadata["limit"], f.name) if kind in (int, float) else kind
        convert = _or_none(convert) if is_optional(types[f.name]) else convert
        parser.add_argument(flag, type=convert, metavar=kind.__name__.upper(), help=help_text)
    return parser


def checkpoint_file(path):
    """The file a checkpoint argument names (a run folder: its best.npz), for the same-file checks
    of outputs; the path as given when it names none (loading it will say what is wrong)."""
    from ..training.checkpoint import CheckpointError, resolve_checkpoint
    try:
        return str(resolve_checkpoint(path))
    except CheckpointError:
        return path


def report_error(message, status=USAGE_ERROR):
    """Print `error: message` on stderr; return the exit status to leave with."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    return status


def report_os_error(err, status=1):
    """The exit status for an OSError that reached a program's main: one line naming the file
    (err.filename), or standard output when it names none (a full disk under `> FILE`); a broken
    pipe (the reader stopped reading, as `| head -1` does) ends quietly with 0."""
    if err.filename is None:
        quiet_stdout()
    if isinstance(err, BrokenPipeError):
        return 0
    return report_error(f"cannot write {err.filename or 'standard output'}: {err.strerror or err}", status)


def flush_stdout(status):
    """Flush stdout before returning `status`, so that a failure to write it is raised inside the
    program (and reported by report_os_error) instead of at exit."""
    if sys.stdout is not None:
        sys.stdout.flush()
    return status


def quiet_stdout():
    """Point stdout at os.devnull once it failed, so Python's own flush at exit adds no second
    message for the bytes still buffered."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, AttributeError, ValueError):    # no stdout, or not a real file (tests)
        pass
