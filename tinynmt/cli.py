"""What every command-line program shares: options declared as dataclass fields, one-line
usage errors and one way to report an error.

    @dataclass
    class Options:
        hid_dim: int = option(256, "model width", positive)     # help text and limit beside it
    parser = parser_from_fields(Options, prog="python -m tinynmt.x")  # --hid-dim INT, ...
    options = Options(**vars(parser.parse_args()))               # only the flags given
    check_fields(options)                                        # ConfigError naming the first bad value
    return report_error(f"cannot read {path}")                   # `error: ...` on stderr -> 2

Standard library only, so any layer's program (`python -m tinynmt.data` too) can use it.
"""
import argparse
import sys
from dataclasses import field, fields
from typing import get_args, get_type_hints

USAGE_ERROR = 2      # bad input: flags, files, data, checkpoints


class ConfigError(ValueError):
    """A config value is out of range, of the wrong type, or unknown."""


# The limits a field's value must keep, declared beside the field: each returns the error
# message for a bad value, or None.
def positive(name, value):
    return None if value >= 1 else f"{name} must be a positive integer, got {value}"


def probability(name, value):
    return None if 0 <= value < 1 else f"{name} must be in [0, 1), got {value}"


def above_zero(name, value):
    return None if value > 0 else f"{name} must be positive, got {value}"


def not_negative(name, value):
    return None if value >= 0 else f"{name} must be >= 0, got {value}"


def one_of(choices):
    """A limit: the value is one of `choices`."""
    def check(name, value):
        return None if value in choices else f"unknown {name} {value!r}; valid: {', '.join(choices)}"
    return check


def option(default, help, limit=None):
    """A dataclass field with its command-line help text and the limit its value keeps."""
    return field(default=default, metadata={"help": help, "limit": limit})


def base_type(annotation):
    """The plain type of a field: int for both int and Optional[int] (the first of a Union)."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    return args[0] if args else annotation


def is_optional(annotation):
    return type(None) in get_args(annotation)


def check_fields(options):
    """Raise ConfigError naming the first field of the dataclass `options` whose value has the
    wrong type or breaks its limit; a float field given an int (JSON writes 1.0 as 1) becomes a float."""
    types = get_type_hints(type(options))
    for f in fields(options):
        value, kind = getattr(options, f.name), base_type(types[f.name])
        if value is None and is_optional(types[f.name]):
            continue
        expected = (int, float) if kind is float else kind
        if not isinstance(value, expected) or (kind is not bool and isinstance(value, bool)):
            raise ConfigError(f"{f.name} must be {kind.__name__}, got {value!r}")
        if kind is float:
            object.__setattr__(options, f.name, float(value))
        limit = f.metadata["limit"]
        problem = limit(f.name, value) if limit is not None else None
        if problem:
            raise ConfigError(problem)


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
