"""Matrix multiplication, batched over leading axes that broadcast.

Legend: ... leading (batch) axes, n rows, k inner size, m columns.
"""
from .. import fast
from ..backend import get_array_module
from .function import Function, unbroadcast


class MatMul(Function):
    """Batched a @ b: (..., n, k) @ (..., k, m) -> (..., n, m), leading axes broadcast."""

    def forward(self, a, b):
        if a.ndim < 2 or b.ndim < 2 or a.shape[-1] != b.shape[-2]:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} are not aligned "
                             f"(need (..., n, k) @ (..., k, m))")
        try:
            get_array_module(a, b).broadcast_shapes(a.shape[:-2], b.shape[:-2])
        except ValueError:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape}: the leading (batch) "
                             f"dims do not broadcast") from None
        self.a, self.b = a, b
        if fast.enabled() and fast.folds(a, b):       # (..., n, k) @ (k, m) as one 2-D GEMM
            return fast.matmul_folded(a, b)
        return a @ b                                  # (..., n, k) @ (..., k, m) -> (..., n, m)

    def backward(self, grad):
        # d(a @ b)/da = grad @ b^T, d(a @ b)/db = a^T @ grad, each summed over broadcast axes
        a, b = self.a, self.b
        if fast.enabled() and fast.folds(a, b):
            return fast.matmul_folded_grads(grad, a, b, self.needs_input_grad)
        grad_a = grad_b = None
        if self.needs_input_grad[0]:
            grad_a = unbroadcast(grad @ b.swapaxes(-1, -2), a.shape)     # (..., n, m) @ (..., m, k)
        if self.needs_input_grad[1]:
            grad_b = unbroadcast(a.swapaxes(-1, -2) @ grad, b.shape)     # (..., k, n) @ (..., n, m)
        return grad_a, grad_b
