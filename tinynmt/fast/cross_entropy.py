"""Speed corner: CrossEntropy's softmax in cache-sized row blocks, and its gradient in place.

Plain (autograd/ops_nn.py CrossEntropy, beside the call):
    row_max = logits.max(axis=1); exps = xp.exp(logits - row_max[:, None])
    total = exps.sum(axis=1); probs = exps / total[:, None]
and in backward `d = probs - e / V; d[rows, target] -= 1 - e; d * weight[:, None]`, new arrays.
Legend: N rows, V classes, R rows of one block.
"""
import numpy as np

# rows per block on the CPU (32 x 7,704 float32: about 1 MB, L2-sized)
CE_BLOCK_ROWS = 32


def softmax_rows_blocked(xp, logits, block_rows=CE_BLOCK_ROWS):
    """softmax over the last axis of (N, V) logits in a new array, and each row's max (N,) and
    sum of exps (N,) -> (probs, row_max, total).

    On the CPU the rows go in blocks of `block_rows`, so that each block's four passes (max,
    subtract, exp, divide) hit the L2 cache instead of memory, writing into one output with
    `out=`. Measured on the tutorial's logits (682 x 7,704 float32, 2-core Xeon, 2026-12-02),
    CrossEntropy's whole forward: 7.0 ms in one block, 5.8-5.9 ms in blocks of 8, 16 or 32
    rows, 6.8 ms in blocks of 64. On the GPU one block: there, blocks only add kernel launches.
    """
    n_rows = logits.shape[0]
    step = n_rows if xp is not np else max(block_rows, 1)
    probs = xp.empty_like(logits)                                # (N, V)
    row_max = xp.empty(n_rows, dtype=logits.dtype)               # (N,)
    total = xp.empty(n_rows, dtype=logits.dtype)                 # (N,)
    for start in range(0, n_rows, max(step, 1)):
        rows = slice(start, start + step)
        block, out = logits[rows], probs[rows]                   # (R, V)
        block_max = block.max(axis=1, keepdims=True)             # (R, 1): exp cannot overflow
        xp.subtract(block, block_max, out=out)
        xp.exp(out, out=out)
        block_total = out.sum(axis=1, keepdims=True)             # (R, 1)
        out /= block_total
        row_max[rows], total[rows] = block_max[:, 0], block_total[:, 0]
    return probs, row_max, total


def cross_entropy_grad_in_place(probs, rows, target, label_smoothing, row_scale):
    """d loss / d logits written over `probs` (N, V), which the caller gives up -> probs.

    softmax - target distribution ((1 - e) on the target, e / V everywhere), each row times
    row_scale (N,). The plain lines make two (N, V) arrays; this makes none: on the
    tutorial's (682, 7,704) logits each is 21 MB to write.
    """
    e = label_smoothing
    probs[rows, target] -= probs.dtype.type(1 - e)
    if e:
        probs -= probs.dtype.type(e / probs.shape[1])
    probs *= row_scale[:, None]
    return probs
