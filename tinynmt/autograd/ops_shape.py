"""Shape primitives: reshape, permute, indexing, concatenate, stack.

None of these do arithmetic; their backward moves the gradient back to where each input
element came from.
"""
from ..backend import get_array_module, index_add
from .function import Function


class Reshape(Function):
    def forward(self, x, shape):
        self.shape = x.shape
        try:
            return x.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape {x.shape} into {tuple(shape)}") from None

    def backward(self, grad):
        # a reshape moves no values: reshape the gradient back
        return (grad.reshape(self.shape),)


class Permute(Function):
    def forward(self, x, axes):
        if sorted(a % x.ndim for a in axes) != list(range(x.ndim)):
            raise ValueError(f"permute: {tuple(axes)} is not a permutation of the axes of {x.shape}")
        axes = [a % x.ndim for a in axes]
        self.inverse = tuple(sorted(range(x.ndim), key=axes.__getitem__))
        return x.transpose(axes)

    def backward(self, grad):
        # undo the permutation with its inverse
        return (grad.transpose(self.inverse),)


def is_advanced(index):
    """True if an index holds an integer or boolean array (gathered, may repeat)."""
    parts = index if isinstance(index, tuple) else (index,)
    return any(not isinstance(p, (int, slice, type(None), type(Ellipsis))) for p in parts)


class GetItem(Function):
    """x[index] for basic slices and integer arrays."""

    def forward(self, x, index):
        self.shape, self.dtype, self.index = x.shape, x.dtype, index
        return x[index]

    def backward(self, grad):
        # each selected element passes its gradient back to where it was read
        xp = get_array_module(grad)
        out = xp.zeros(self.shape, dtype=self.dtype)
        if is_advanced(self.index):
            index_add(out, self.index, grad)       # an element read twice gets both gradients
        else:
            out[self.index] = grad
        return (out,)


class Concatenate(Function):
    def forward(self, *arrays, axis=0):
        xp = get_array_module(*arrays)
        self.axis = axis
        self.sizes = [a.shape[axis] for a in arrays]
        return xp.concatenate(arrays, axis=axis)

    def backward(self, grad):
        # split the gradient at the same boundaries
        xp = get_array_module(grad)
        bounds = [sum(self.sizes[:i + 1]) for i in range(len(self.sizes) - 1)]
        return tuple(xp.split(grad, bounds, axis=self.axis))


class Stack(Function):
    def forward(self, *arrays, axis=0):
        xp = get_array_module(*arrays)
        self.axis = axis
        return xp.stack(arrays, axis=axis)

    def backward(self, grad):
        # each input gets its slice of the new axis
        xp = get_array_module(grad)
        return tuple(xp.moveaxis(grad, self.axis, 0))
