"""Which sentence pairs of a corpus are kept, and how many are dropped for what, with arrays.

    keep, counts = clean_pairs(src_len, trg_len, src_bad, trg_bad, max_len=100,
                               max_len_ratio=9.0, is_train=True)
    counts   # {'lines': 5, 'kept': 2, 'invalid_utf8': 1, 'empty': 1, 'too_long': 1, 'ratio': 0}

The policy of Moses' clean-corpus-n.perl, in tokens (the units the model reads), each
dropped pair counted under the first reason that applies:
- invalid_utf8: a side is not valid UTF-8 (the reader names the first few file:line);
- empty: a side has no tokens (an empty or blank line);
- too_long: a side has more than max_len ids, <sos> and <eos> included (the model's positions);
- ratio: one side has more than max_len_ratio times the other's tokens (a misaligned pair).
Only the training split loses long or lopsided pairs; validation and test pairs are kept so
that scores stay comparable (over-long ones are counted in "too_long_kept"), as
tinynmt.data.dataset does. None turns a limit off.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np

from .errors import DataError

REASONS = ("invalid_utf8", "empty", "too_long", "ratio")


def check_limits(max_len: Optional[int], max_len_ratio: Optional[float]) -> None:
    """Raise DataError for a limit that would keep no pair."""
    if max_len is not None and (isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 3):
        raise DataError(f"max_len must be an int >= 3 (<sos>, one token, <eos>), got {max_len!r}")
    if max_len_ratio is not None and not (isinstance(max_len_ratio, (int, float)) and max_len_ratio >= 1
                                          and np.isfinite(max_len_ratio)):
        raise DataError(f"max_len_ratio must be a number >= 1, got {max_len_ratio!r}")


def clean_pairs(src_len: np.ndarray, trg_len: np.ndarray, src_bad: np.ndarray, trg_bad: np.ndarray,
                max_len: Optional[int], max_len_ratio: Optional[float],
                is_train: bool) -> Tuple[np.ndarray, Dict[str, int]]:
    """(L,) tokens per side and (L,) invalid flags -> ((L,) bool keep mask, counts by reason)."""
    check_limits(max_len, max_len_ratio)
    src_len, trg_len = np.asarray(src_len, dtype=np.int64), np.asarray(trg_len, dtype=np.int64)
    left = np.ones(len(src_len), dtype=bool)          # not dropped for an earlier reason
    counts: Dict[str, int] = {"lines": len(src_len)}

    def drop(reason, mask):
        hit = left & mask
        counts[reason] = int(hit.sum())
        left[hit] = False

    drop("invalid_utf8", src_bad | trg_bad)
    drop("empty", (src_len == 0) | (trg_len == 0))
    too_long = np.zeros_like(left) if max_len is None else (np.maximum(src_len, trg_len) > max_len - 2)
    if is_train:
        drop("too_long", too_long)
        ratio = max_len_ratio if max_len_ratio is not None else np.inf
        shorter = np.maximum(np.minimum(src_len, trg_len), 1)
        drop("ratio", np.maximum(src_len, trg_len) > ratio * shorter)
    else:
        counts["too_long"] = counts["ratio"] = 0
        counts["too_long_kept"] = int((left & too_long).sum())
    counts["kept"] = int(left.sum())
    return left, counts


def describe(counts: Dict[str, int]) -> str:
    """'29,000 of 29,010 pairs kept; dropped 7 empty, 3 too_long' (what a summary line says)."""
    dropped = [f"{counts[r]:,} {r}" for r in REASONS if counts.get(r)]
    text = f"{counts['kept']:,} of {counts['lines']:,} pairs kept"
    if dropped:
        text += "; dropped " + ", ".join(dropped)
    if counts.get("too_long_kept"):
        text += f"; {counts['too_long_kept']:,} over max_len kept"
    return text


def require_pairs(name: str, counts: Dict[str, int]) -> None:
    """A DataError when a split has no pair left."""
    if counts["kept"] == 0:
        raise DataError(f"the {name} split has no sentence pairs left ({describe(counts)})")
