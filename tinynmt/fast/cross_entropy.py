"""Speed corner: CrossEntropy's softmax in cache-sized row blocks, and its gradient in place.

Plain (autograd/ops_nn.py CrossEntropy, beside the call):
    row_max = logits.max(axis=1); exps = xp.exp(logits - row_max[:, None])
    total = exps.sum(axis=1); probs = exps / total[:, None]; with label smoothing row_mean = logits.mean(axis=1)
and in backward `d = probs - e / V; d[rows, target] -= 1 - e; d * weight[:, None]`, new arrays.
Legend: N rows, V classes, R rows of one block.
"""
import numpy as np

# rows per block on the CPU (32 x 7,704 float32: about 1 MB, L2-sized)
CE_BLOCK_ROWS = 32


def row_blocks(n_rows, block_rows, on_cpu):
    """Slices of `block_rows` rows covering n_rows on the CPU; one slice on the GPU, where
    blocks only add kernel launches."""
    step = max(block_rows, 1) if on_cpu else n_rows
    return [slice(start, start + step) for start in range(0, n_rows, max(step, 1))]


def softmax_rows_blocked(xp, logits, block_rows=CE_BLOCK_ROWS, row_means=False):
    """softmax over the last axis of (N, V) logits in a new array, each row's max (N,) and sum
    of exps (N,), and with row_means the rows' means of the logits (N,) (label smoothing's
    term; else None) -> (probs, row_max, total, row_mean).

    On the CPU the rows go in blocks of `block_rows`, so that each block's passes (max,
    mean, subtract, exp, divide) hit the L2 cache instead of memory, writing into one output
    with `out=`. Measured on the tutorial's logits (682 x 7,704 float32, 2-core Xeon, 2026-12-02),
    CrossEntropy's whole forward: 7.0 ms in one block, 5.8-5.9 ms in blocks of 8, 16 or 32
    rows, 6.8 ms in blocks of 64.
    """
    n_rows = logits.shape[0]
    probs = xp.empty_like(logits)                                # (N, V)
    row_max = xp.empty(n_rows, dtype=logits.dtype)               # (N,)
    total = xp.empty(n_rows, dtype=logits.dtype)                 # (N,)
    row_mean = xp.empty(n_rows, dtype=logits.dtype) if row_means else None
    for rows in row_blocks(n_rows, block_rows, on_cpu=xp is np):
        block, out = logits[rows], probs[rows]                   # (R, V)
        block_max = block.max(axis=1, keepdims=True)             # (R, 1): exp cannot overflow
        if row_means:
            row_mean[rows] = block.mean(axis=1)
        xp.subtract(block, block_max, out=out)
        xp.exp(out, out=out)
        block_total = out.sum(axis=1, keepdims=True)             # (R, 1)
        out /= block_total
        row_max[rows], total[rows] = block_max[:, 0], block_total[:, 0]
    return probs, row_max, total, row_mean


def cross_entropy_grad_in_place(probs, rows, target, label_smoothing, row_scale, block_rows=CE_BLOCK_ROWS):
    """d loss / d logits written over `probs` (N, V), which the caller gives up -> probs.

    softmax - target distribution ((1 - e) on the target, e / V everywhere), each row times
    row_scale (N,). The plain lines make two (N, V) arrays; this makes none, and on the CPU
    subtracts and scales one cache-sized block of rows at a time: one pass over memory.
    """
    e = label_smoothing
    probs[rows, target] -= probs.dtype.type(1 - e)
    spread = probs.dtype.type(e / probs.shape[1])                # e / V, on every class
    for block in row_blocks(probs.shape[0], block_rows, on_cpu=isinstance(probs, np.ndarray)):
        if e:
            probs[block] -= spread
        probs[block] *= row_scale[block, None]
    return probs
