"""What every command-line program shares: one-line usage errors and one way to report an error.

    parser = OneLineParser(prog="python -m tinynmt.translate")   # bad flags: one line, exit 2
    return report_error(f"cannot read {path}")                   # `error: ...` on stderr -> 2

Standard library only, so any layer's program (`python -m tinynmt.data` too) can use it.
"""
import argparse
import sys

USAGE_ERROR = 2      # bad input: flags, files, data, checkpoints


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line, like every other error here."""

    def error(self, message):
        self.exit(USAGE_ERROR, f"error: {message} (see --help)\n")


def report_error(message, status=USAGE_ERROR):
    """Print `error: message` on stderr; return the exit status to leave with."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    return status
