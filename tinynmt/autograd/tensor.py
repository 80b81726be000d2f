"""Tensor: an array (NumPy or CuPy) that remembers how it was made, for reverse-mode autograd."""
import numpy as np

from .. import fast
from ..backend import get_array_module, device_of, to_device, to_numpy
from .ops_elementwise import Add, Div, Exp, Log, MaskedFill, Mul, Neg, Pow, ReLU, Sqrt, Sub, Tanh
from .ops_matmul import MatMul
from .ops_nn import LogSoftmax, Softmax
from .ops_reduce import Max, Mean, Sum
from .ops_shape import GetItem, Permute, Reshape


def as_array(value, like=None):
    """An xp array: arrays keep their dtype; Python numbers and lists become float32
    (or the dtype of `like`, so that `x * 2` never promotes x)."""
    if isinstance(value, Tensor):
        return value.data
    if hasattr(value, "dtype") and hasattr(value, "shape") and not np.isscalar(value):
        return value
    if like is not None:
        return get_array_module(like).asarray(value, dtype=like.dtype)
    if isinstance(value, np.generic):   # a NumPy scalar, e.g. a full reduction: keep its dtype
        return np.asarray(value)
    return np.asarray(value, dtype=np.float32)


class Tensor:
    """An n-dimensional array with an optional gradient and the Function that produced it."""

    __array_ufunc__ = None  # make NumPy defer `ndarray * Tensor` to Tensor.__rmul__

    def __init__(self, data, requires_grad=False):
        self.data = as_array(data)
        self.grad = None
        self.requires_grad = requires_grad
        self.grad_fn = None              # the Function that made this tensor, None for leaves
        self.is_leaf = True              # False for results of operations, even once freed

    # ----- array facts and conversions
    @property
    def shape(self):
        return self.data.shape

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def size(self):
        return self.data.size

    @property
    def device(self):
        return device_of(self.data)

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({to_numpy(self.data)!r}{grad}, device={self.device!r})"

    def numpy(self):
        """The data as a NumPy array on the host."""
        return to_numpy(self.data)

    def item(self):
        """The value of a one-element tensor as a Python number (a host sync on the GPU)."""
        return self.numpy().item()

    def to(self, device):
        """A copy on `device` ("cpu" or "cuda"), or self if it is already there."""
        if self.device == device:
            return self
        return Tensor(to_device(self.data, device), requires_grad=self.requires_grad)

    def detach(self):
        """The same data, cut from the graph."""
        return Tensor(self.data)

    def astype(self, dtype):
        """A detached copy with another dtype (float64 for gradcheck)."""
        return Tensor(self.data.astype(dtype), requires_grad=self.requires_grad)

    # ----- backward
    def backward(self, grad=None):
        """Accumulate d(self)/d(leaf) into every leaf's `.grad`, then free the graph."""
        from .engine import run_backward
        if grad is None:
            if self.size != 1:
                raise RuntimeError(f"backward() on a tensor of shape {self.shape} needs a "
                                   f"gradient argument; only a scalar can start it alone")
            grad = get_array_module(self.data).ones_like(self.data)
        grad = as_array(grad, like=self.data).astype(self.dtype, copy=False)
        if grad.shape != self.shape:
            raise ValueError(f"backward(): gradient of shape {grad.shape} for a tensor of "
                             f"shape {self.shape}")
        run_backward(self, grad)

    # ----- arithmetic (Python numbers take the tensor's dtype)
    def _pair(self, other):
        """`other` as the second operand of a binary op; a Python number takes self's dtype."""
        if isinstance(other, Tensor):
            return other
        if isinstance(other, (int, float)) and fast.enabled():
            return scalar_tensor(other, self.dtype)
        return Tensor(as_array(other, like=self.data))      # a number: a 0-d array on self's device

    def __add__(self, other):
        return Add.apply(self, self._pair(other))

    def __radd__(self, other):
        return Add.apply(self._pair(other), self)

    def __sub__(self, other):
        return Sub.apply(self, self._pair(other))

    def __rsub__(self, other):
        return Sub.apply(self._pair(other), self)

    def __mul__(self, other):
        return Mul.apply(self, self._pair(other))

    def __rmul__(self, other):
        return Mul.apply(self._pair(other), self)

    def __truediv__(self, other):
        return Div.apply(self, self._pair(other))

    def __rtruediv__(self, other):
        return Div.apply(self._pair(other), self)

    def __neg__(self):
        return Neg.apply(self)

    def __pow__(self, exponent):
        return Pow.apply(self, exponent=exponent)

    def __matmul__(self, other):
        return MatMul.apply(self, self._pair(other))

    def __rmatmul__(self, other):
        return MatMul.apply(self._pair(other), self)

    # ----- comparisons: plain boolean tensors, no gradient
    def __eq__(self, other):
        return Tensor(self.data == as_array(other, like=self.data))

    def __ne__(self, other):
        return Tensor(self.data != as_array(other, like=self.data))

    def __lt__(self, other):
        return Tensor(self.data < as_array(other, like=self.data))

    def __le__(self, other):
        return Tensor(self.data <= as_array(other, like=self.data))

    def __gt__(self, other):
        return Tensor(self.data > as_array(other, like=self.data))

    def __ge__(self, other):
        return Tensor(self.data >= as_array(other, like=self.data))

    __hash__ = object.__hash__  # tensors are graph nodes: hashed by identity

    def __invert__(self):
        return Tensor(~self.data)

    # ----- pointwise functions
    def exp(self):
        return Exp.apply(self)

    def log(self):
        return Log.apply(self)

    def sqrt(self):
        return Sqrt.apply(self)

    def relu(self):
        return ReLU.apply(self)

    def tanh(self):
        return Tanh.apply(self)

    def masked_fill(self, mask, value):
        """Fill positions where `mask` (broadcastable) is True with `value`."""
        return MaskedFill.apply(self, Tensor(as_array(mask)), value=value)

    def softmax(self, axis=-1):
        return Softmax.apply(self, axis=axis)

    def log_softmax(self, axis=-1):
        return LogSoftmax.apply(self, axis=axis)

    # ----- reductions
    def sum(self, axis=None, keepdims=False):
        return Sum.apply(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        return Mean.apply(self, axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims=False):
        return Max.apply(self, axis=axis, keepdims=keepdims)

    # ----- shapes
    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return Reshape.apply(self, shape=tuple(shape))

    view = reshape  # the tutorial writes .view(...)

    def permute(self, *axes):
        axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        return Permute.apply(self, axes=tuple(axes))

    def transpose(self, *axes):
        """Two axes: swap them, as PyTorch does. All the axes: permute them, as NumPy does."""
        axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        if len(axes) == 2:
            order = list(range(self.ndim))
            a, b = axes[0] % self.ndim, axes[1] % self.ndim
            order[a], order[b] = order[b], order[a]
            axes = order
        return Permute.apply(self, axes=tuple(axes))

    @property
    def T(self):
        return self.permute(tuple(reversed(range(self.ndim))))

    def unsqueeze(self, axis):
        """A new size-1 axis at `axis`."""
        axis = axis % (self.ndim + 1)
        return self.reshape(self.shape[:axis] + (1,) + self.shape[axis:])

    def __getitem__(self, index):
        if isinstance(index, Tensor):
            index = index.data
        elif isinstance(index, tuple):
            index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
        return GetItem.apply(self, index=index)


def scalar_tensor(value, dtype):
    """A constant Tensor holding fast.host_scalar(value, dtype), a NumPy scalar on the host."""
    constant = Tensor(np.asarray(value, dtype=dtype))
    constant.data = fast.host_scalar(value, dtype)     # Tensor() itself would keep a 0-d array
    return constant


def tensor(data, requires_grad=False, dtype=None, device="cpu"):
    """Build a Tensor from nested lists or an array (float32 unless told otherwise)."""
    array = np.asarray(data, dtype=dtype or getattr(data, "dtype", np.float32))
    return Tensor(to_device(array, device), requires_grad=requires_grad)
