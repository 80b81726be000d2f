"""Options declared as dataclass fields: a default, a help line and a limit side by side.

    @dataclass
    class Options:
        hid_dim: int = option(256, "model width", positive)     # help text and limit beside it
    check_fields(options)                                        # ConfigError naming the first bad value
    value_problem("lr", float("nan"))                            # "lr must be a finite number, got nan"

The model (nn.ModelConfig), the data (data.DataConfig) and training (training.Config)
declare their fields with these; the programs build their command lines from the same
fields (programs/cli.py), whose converters refuse at parse time what check_fields refuses
(value_problem: a float that is nan or inf, a value outside the field's limit), so a new field
is covered without a new line of code. Standard library only, so every layer may use it.
"""
import math
from dataclasses import field, fields
from typing import get_args, get_type_hints


class ConfigError(ValueError):
    """A config value is out of range, of the wrong type, or unknown."""


# The limits a field's value must keep, declared beside the field: each returns the error
# message for a bad value, or None.
BIGGEST = 2**31 - 1    # no count or size here is larger; arrays, C ints and JSON readers take it


def positive(name, value):
    if value < 1:
        return f"{name} must be a positive integer, got {value}"
    return None if value <= BIGGEST else f"{name} must be at most {BIGGEST:,}, got {value}"


def probability(name, value):
    return None if 0 <= value < 1 else f"{name} must be in [0, 1), got {value}"


def above_zero(name, value):
    return None if value > 0 else f"{name} must be positive, got {value}"


def not_negative(name, value):
    if value < 0:
        return f"{name} must be >= 0, got {value}"
    return None if isinstance(value, float) or value <= BIGGEST else f"{name} must be at most {BIGGEST:,}, got {value}"


def seed_range(name, value):
    return None if 0 <= value < 2**32 else f"{name} must be in [0, 2**32), got {value}"


def within(low, high):
    """A limit: low <= value <= high."""
    def check(name, value):
        return None if low <= value <= high else f"{name} must be in [{low:g}, {high:g}], got {value}"
    return check


def length_ratio(name, value):
    """Moses' clean-corpus-n ratio: at least 1; above BIGGEST (no sentence is longer) it drops
    nothing, and ratio * length would overflow."""
    return None if 1 <= value <= BIGGEST else f"{name} must be in [1, {BIGGEST:,}], got {value}"


def check_choice(name, value, choices):
    """`value` if it is one of `choices`, else a ValueError naming them: the check of a layer's
    or builder's string argument, where no Config (and its one_of limit) stands in front."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


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


def value_problem(name, value, limit=None):
    """The message for a value no field takes (a float that is nan or inf) or that breaks
    `limit`; None when it is fine."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{name} must be a finite number, got {value}"
    return limit(name, value) if limit is not None else None


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
        problem = value_problem(f.name, value, f.metadata["limit"])
        if problem:
            raise ConfigError(problem)


