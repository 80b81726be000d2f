"""Speed corner: NumPy-only tricks (and the allocator), each replacing one plain line.

Read the plain version first (each docstring quotes it, and the caller has it beside the
call); these functions do the same thing faster on NumPy arrays. Nothing here changes a
result beyond float rounding (the dropout mask draws other random numbers, with the same
odds), and tests/test_fast.py checks each against its plain version. Timings: the 2-core
Intel Xeon of benchmarks/RESULTS.md, NumPy 2.4, best of 30 calls, 2026-12-02; rerun with
benchmarks/bench_fast.py.

backend.py calls keep_mask_from_bits and scatter_add_sorted for NumPy arrays only, when the
switch is on (its CuPy path is the plain one). keep_freed_memory and top_k_blocked are called
from outside the engine, so they read the switch themselves.
"""
import ctypes

import numpy as np

from .switch import enabled


def keep_freed_memory():
    """Ask glibc's malloc to keep freed memory for reuse instead of returning it to the OS.

    Plain: glibc's defaults. A training step allocates and frees the same large temporaries
    (logits, gradients) at every step; by default each is a fresh mmap whose pages the kernel
    zeroes on first touch, which cost 10-25% of a tutorial step (benchmarks/RESULTS.md,
    "Allocator"). Raising the mmap threshold stops at 32 MiB, the most glibc accepts, and the
    tiny recipe's logits are larger (4,096 tokens x 9,725 words x 4 bytes = 160 MB): mmap is
    turned off altogether (M_MMAP_MAX 0), so every block comes from the heap and stays there.
    Process-wide, so the programs call it, not the library; returns False where it does not
    apply (no glibc) and, doing nothing, when the switch is off (TINYNMT_PLAIN=1). Once set it
    stays set: `use_fast(False)` later does not undo it.
    """
    if not enabled():
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -2, -3, -4
    return bool(libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)       # the largest glibc accepts
                and libc.mallopt(M_MMAP_MAX, 0)                # larger blocks too: no mmap at all
                and libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)
                and libc.mallopt(M_TOP_PAD, 256 << 20))


def return_freed_memory():
    """Give the heap's free memory back to the OS now (glibc's malloc_trim); False without glibc.

    Plain: nothing. keep_freed_memory keeps freed memory for the training step's reuse, so the
    temporaries of loading a large corpus (sorts, masks, copies of per-sentence arrays) would
    stay resident for the whole run; the trainer calls this once, after loading its data.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(libc.malloc_trim(0))


def keep_mask_from_bits(bit_generator, shape, p):
    """A boolean mask, True with probability 1 - p, from 16 raw random bits per element.

    Plain: `rng.random(shape, dtype=np.float32) >= p`. Raw bits compared with
    round(p * 2^16) are 3.1x cheaper (0.50 against 1.56 ms for a (64, 20, 512) mask), and
    p is exact to 1/65536.
    """
    n = int(np.prod(shape))
    bits = bit_generator.random_raw((n + 3) // 4).view(np.uint16)[:n]
    return (bits >= np.uint16(min(round(p * 65536), 65535))).reshape(shape)


def scatter_add_sorted(out, ids, values):
    """out[ids[i]] += values[i] for every row i, repeated ids summed; returns out.

    Plain: `np.add.at(out, ids, values)`. Sorting the ids and summing runs of equal ids with
    `np.add.reduceat` took 1.70 against 2.26 ms for an embedding gradient (900 ids, 9,597
    rows of 256); with 4,000 ids the two are level (NumPy 2's add.at is much faster than
    NumPy 1's, against which this was once 3x).
    """
    if ids.size == 0:
        return out
    order = np.argsort(ids, kind="stable")                                  # (N,)
    sorted_ids = ids[order]
    starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
    out[sorted_ids[starts]] += np.add.reduceat(values[order], starts, axis=0)
    return out


def _block_size(m, k):
    """A block length that divides m into at least 4k blocks, or None (then select directly)."""
    for size in (64, 60, 56, 50, 48, 45, 42, 40, 36, 32):
        if m % size == 0 and m // size >= 4 * k:
            return size
    return None


def top_k_blocked(xp, scores, k, top_k):
    """What top_k(scores, k) returns (indices of each row's k largest, best first), faster.

    Plain: `top_k` itself, argpartition over all n x M scores, ~13 ns an element and most of
    a beam step over K * V scores. The k best all lie in the k blocks with the largest
    maxima (a block holding one of them has a maximum at least as large as it), so: block
    maxima (a fast reduction), the best k blocks, then select among their k * C entries.
    10.6 against 18.2 ms for (128, 5 x 7,704) scores and k = 10. With the switch off it is
    `top_k` itself.
    """
    n, m = scores.shape
    size = _block_size(m, k)
    if size is None or not enabled():
        return top_k(scores, k)
    blocks = scores.reshape(n, m // size, size)                            # (n, m/C, C)
    best_blocks = top_k(blocks.max(axis=2), k)                             # (n, k)
    candidates = xp.take_along_axis(blocks, best_blocks[:, :, None], axis=1).reshape(n, k * size)
    best = top_k(candidates, k)                                            # (n, k) into (n, k*C)
    return xp.take_along_axis(best_blocks, best // size, axis=1) * size + best % size
