"""The one switch of the speed corner: tricks on (the default) or the plain path everywhere."""
import os

# TINYNMT_PLAIN=1 (any value but "" or "0") runs the plain path from the start
_fast = os.environ.get("TINYNMT_PLAIN", "") in ("", "0")


def enabled():
    """True when the ops run the speed corner's tricks, False on the plain path."""
    return _fast


class use_fast:
    """Turn every trick on (True) or off (False): `use_fast(False)` for the rest of the run,
    or `with use_fast(False):` for a block, after which the previous setting comes back."""

    def __init__(self, flag):
        global _fast
        self.previous = _fast
        _fast = bool(flag)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        global _fast
        _fast = self.previous


def plain():
    """`with plain():` runs a block on the plain path (use_fast(False), restored after)."""
    return use_fast(False)
