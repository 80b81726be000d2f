"""Speed corner: dropout keeps its boolean mask and scales in place.

Plain (autograd/ops_nn.py Dropout, beside the calls): `mask = keep * scale`, a float array
saved for backward, then `x * mask` and `grad * mask`. Keeping the boolean `keep` instead
and scaling the product in place makes one (...) float array fewer per dropout and holds a
quarter of the memory until backward, with the same numbers (x * keep is x or 0 exactly).
Measured 0.28 -> 0.20 ms for the forward on (64, 13, 512), 2-core Xeon, 2026-12-02.
"""


def scale_kept(x, keep, scale):
    """x * keep * scale, in place on the product (x itself is not written) -> (...)."""
    y = x * keep
    y *= scale
    return y
