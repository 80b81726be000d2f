"""Speed corner: a stack of rows times one matrix, (..., n, k) @ (k, m), as one 2-D GEMM.

Plain (autograd/ops_matmul.py MatMul, beside the call): `a @ b`, and in backward
`unbroadcast(grad @ b.T, a.shape)`, `unbroadcast(a.swapaxes(-1, -2) @ grad, b.shape)`.
NumPy runs a broadcast matmul as one small GEMM per leading index, and b's gradient as one
(k, m) product per leading index summed afterwards; folding the leading axes into the rows
makes each a single large GEMM. Not in the tutorial's step (its layers are Linear, its
attention products are 4-D by 4-D); a user's `x @ w` takes it.
Measured: see benchmarks/bench_fast.py (the row "MatMul fold").
Legend: ... leading axes (N rows in all with n), k inner size, m columns.
"""


def folds(a, b):
    """True when a @ b is a stack of rows times one matrix: a (..., n, k) with ... nonempty, b (k, m)."""
    return b.ndim == 2 and a.ndim > 2


def matmul_folded(a, b):
    """a @ b for a (..., n, k), b (k, m) -> (..., n, m)."""
    return (a.reshape(-1, a.shape[-1]) @ b).reshape(*a.shape[:-1], b.shape[-1])   # (N, k) @ (k, m)


def matmul_folded_grads(grad, a, b, needs_input_grad):
    """(grad_a or None, grad_b or None) of a @ b, grad (..., n, m)."""
    grad2 = grad.reshape(-1, grad.shape[-1])                          # (N, m)
    grad_a = grad_b = None
    if needs_input_grad[0]:
        grad_a = (grad2 @ b.T).reshape(a.shape)                       # (N, m) @ (m, k) -> (N, k)
    if needs_input_grad[1]:
        grad_b = a.reshape(-1, a.shape[-1]).T @ grad2                 # (k, N) @ (N, m) -> (k, m)
    return grad_a, grad_b
