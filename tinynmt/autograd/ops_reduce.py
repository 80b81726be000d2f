"""Reductions (sum, mean, max) and matrix multiplication."""
from ..backend import get_array_module
from .function import Function, unbroadcast


def normalize_axis(axis, ndim):
    """A tuple of non-negative axes (all of them for None)."""
    if axis is None:
        return tuple(range(ndim))
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    return tuple(sorted(a % ndim for a in axes))


def expand_reduced(grad, shape, axes):
    """Give a reduced gradient its size-1 axes back so it broadcasts against `shape`."""
    kept = [1 if i in axes else n for i, n in enumerate(shape)]
    return grad.reshape(kept)


class Sum(Function):
    def forward(self, x, axis=None, keepdims=False):
        self.shape, self.axes = x.shape, normalize_axis(axis, x.ndim)
        return x.sum(axis=self.axes, keepdims=keepdims)

    def backward(self, grad):
        # d sum(x)/dx = 1 for every summed element
        xp = get_array_module(grad)
        return (xp.broadcast_to(expand_reduced(grad, self.shape, self.axes), self.shape),)


class Mean(Function):
    def forward(self, x, axis=None, keepdims=False):
        self.shape, self.axes = x.shape, normalize_axis(axis, x.ndim)
        self.count = 1
        for a in self.axes:
            self.count *= x.shape[a]
        return x.mean(axis=self.axes, keepdims=keepdims)

    def backward(self, grad):
        # d mean(x)/dx = 1 / n for every averaged element
        xp = get_array_module(grad)
        scaled = expand_reduced(grad, self.shape, self.axes) / grad.dtype.type(self.count)
        return (xp.broadcast_to(scaled, self.shape),)


class Max(Function):
    """Maximum over axes; tied maxima share the gradient equally."""

    def forward(self, x, axis=None, keepdims=False):
        self.axes = normalize_axis(axis, x.ndim)
        y = x.max(axis=self.axes, keepdims=True)
        self.is_max = x == y
        return y if keepdims else y.reshape([n for i, n in enumerate(y.shape) if i not in self.axes])

    def backward(self, grad):
        # d max(x)/dx = 1 at the maximum (split between ties), 0 elsewhere
        share = self.is_max / self.is_max.sum(axis=self.axes, keepdims=True).astype(grad.dtype)
        return (expand_reduced(grad, self.is_max.shape, self.axes) * share,)


class MatMul(Function):
    """Batched a @ b: (..., n, k) @ (..., k, m) -> (..., n, m), leading dims broadcast.

    A stack of rows times one matrix, (..., n, k) @ (k, m), is folded into one 2-D
    product: a single large GEMM is much faster than a loop of small ones.
    """

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
        if b.ndim == 2 and a.ndim > 2:
            return (a.reshape(-1, a.shape[-1]) @ b).reshape(*a.shape[:-1], b.shape[-1])
        return a @ b

    def backward(self, grad):
        # d(a @ b)/da = grad @ b^T, d(a @ b)/db = a^T @ grad
        a, b = self.a, self.b
        grad_a = grad_b = None
        if b.ndim == 2 and a.ndim > 2:
            grad2 = grad.reshape(-1, grad.shape[-1])                  # (N, m)
            if self.needs_input_grad[0]:
                grad_a = (grad2 @ b.T).reshape(a.shape)               # (N, m) @ (m, k)
            if self.needs_input_grad[1]:
                grad_b = a.reshape(-1, a.shape[-1]).T @ grad2         # (k, N) @ (N, m)
            return grad_a, grad_b
        if self.needs_input_grad[0]:
            grad_a = unbroadcast(grad @ b.swapaxes(-1, -2), a.shape)
        if self.needs_input_grad[1]:
            grad_b = unbroadcast(a.swapaxes(-1, -2) @ grad, b.shape)
        return grad_a, grad_b
