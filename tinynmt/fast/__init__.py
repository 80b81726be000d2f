"""The speed corner: every trick that replaces a plain line of the engine, behind one switch.

The engine, the ops and the backend are written in plain NumPy. Where a faster formulation
runs instead, the op says so at that spot, with the plain lines right below it:

    if fast.enabled():
        probs, row_max, total, row_mean = fast.softmax_rows_blocked(xp, logits)
    else:
        row_max = logits.max(axis=1)
        ...

`enabled()` is True by default. TINYNMT_PLAIN=1 in the environment turns every trick off
when tinynmt is imported (`TINYNMT_PLAIN=1 python -m tinynmt.train ...`); in Python,
`fast.use_fast(False)` does it for the rest of the run and `with fast.plain():` for a block.
Both paths give the same numbers to float rounding, except that dropout masks come from
other random numbers (the same odds). tests/test_fast.py checks each pair, and
benchmarks/bench_fast.py times each trick against its plain lines.

| trick | used in | plain line |
| --- | --- | --- |
| keep_freed_memory (allocator) | the programs | glibc's defaults |
| return_freed_memory | training/build.py, after loading a prepared corpus | nothing (the loading's freed temporaries stay resident) |
| keep_mask_from_bits | backend.Generator.keep_mask | `random(shape) >= p` |
| softmax_rows_blocked, cross_entropy_grad_in_place | ops_nn.CrossEntropy | one-block softmax, new arrays, two passes |
| scored_logits | nn.teacher_forced_loss | teacher_forced_logits: logits for padding too |
| layer_norm_forward/_backward, sum_rows | ops_nn.LayerNorm, ops_nn.Linear | `.mean(axis=-1)`, `.sum(axis=0)` |
| folds, matmul_folded(_grads) | ops_matmul.MatMul | `a @ b`, `unbroadcast(...)` |
| host_scalar | tensor.Tensor._pair | `xp.asarray(value, dtype)` (on CuPy: one upload per number) |
| scale_kept | ops_nn.Dropout | `mask = keep * scale; x * mask` |
| InPlaceSums | engine.run_backward | `grads[key] = grads[key] + g` |
| scatter_add_sorted | backend.scatter_add_rows | `xp.add.at(out, ids, values)` |
| top_k_blocked | decoding/search.py | `top_k(scores, k)` |

These modules import only NumPy and the standard library, never tinynmt.

Gains: benchmarks/RESULTS.md, "2026-12-07". host_scalar is level on NumPy (0.96x) and kept for
CuPy, where the plain line copies every Python number to the
device (tests/test_cupy_api.py checks a step and decoding make no such copy); no GPU has
measured it yet. scale_kept measured 1.02x alone (bench_fast.py) but 0.23 ms a call inside
the step (cProfile, one thread: 0.158 against 0.275 s over 512 calls), so it stays.
"""
from .cpu import (keep_freed_memory, keep_mask_from_bits, return_freed_memory, scatter_add_sorted,
                  top_k_blocked)
from .cross_entropy import CE_BLOCK_ROWS, cross_entropy_grad_in_place, softmax_rows_blocked
from .dropout import scale_kept
from .grad_sums import InPlaceSums
from .matmul import folds, matmul_folded, matmul_folded_grads
from .rowstats import layer_norm_backward, layer_norm_forward, sum_rows
from .scalars import host_scalar
from .scored import scored_logits
from .switch import enabled, plain, use_fast

__all__ = ["CE_BLOCK_ROWS", "InPlaceSums", "cross_entropy_grad_in_place", "enabled", "folds",
           "host_scalar", "keep_freed_memory", "keep_mask_from_bits", "layer_norm_backward",
           "layer_norm_forward", "matmul_folded", "matmul_folded_grads", "plain",
           "return_freed_memory", "scale_kept", "scatter_add_sorted", "scored_logits", "softmax_rows_blocked",
           "sum_rows", "top_k_blocked", "use_fast"]
