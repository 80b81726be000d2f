"""Reductions: sum, mean and max over axes."""
from ..backend import get_array_module
from .function import Function


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
