"""Functions on tensors that are not methods: joining, choosing, and the fused nn primitives."""
from ..backend import get_array_module
from .ops_elementwise import ReLU, Where
from .ops_nn import CrossEntropy, Dropout, Embedding, LayerNorm, Linear, LogSoftmax, Softmax
from .ops_shape import Concatenate, Stack
from .tensor import Tensor, as_array


def index_array(ids, like):
    """Integer ids as an array on `like`'s device: lists stay integers (as_array would make
    them float32, which cannot index)."""
    if isinstance(ids, Tensor):
        return ids.data
    return ids if hasattr(ids, "dtype") else get_array_module(like).asarray(ids)


def concatenate(tensors, axis=0):
    """Join tensors along an existing axis."""
    return Concatenate.apply(*tensors, axis=axis)


def stack(tensors, axis=0):
    """Join tensors along a new axis."""
    return Stack.apply(*tensors, axis=axis)


def where(cond, a, b):
    """a where cond is True, b elsewhere."""
    a = a if isinstance(a, Tensor) else Tensor(as_array(a, like=b.data if isinstance(b, Tensor) else None))
    b = b if isinstance(b, Tensor) else Tensor(as_array(b, like=a.data))
    return Where.apply(Tensor(as_array(cond)), a, b)


def softmax(x, axis=-1):
    return Softmax.apply(x, axis=axis)


def log_softmax(x, axis=-1):
    return LogSoftmax.apply(x, axis=axis)


def relu(x):
    return ReLU.apply(x)


def dropout(x, p, generator, training=True):
    """Inverted dropout with probability p, drawing the mask from `generator`."""
    if not training or p == 0:
        return x
    if not 0 <= p < 1:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    return Dropout.apply(x, p=p, generator=generator)


def linear(x, weight, bias=None):
    """x @ weight.T + bias: (..., in) -> (..., out)."""
    if bias is None:
        return Linear.apply(x, weight)
    return Linear.apply(x, weight, bias)


def embedding(ids, weight):
    """Rows of weight (V, D) at integer ids (...) -> (..., D)."""
    return Embedding.apply(weight, ids=index_array(ids, weight.data))


def layer_norm(x, weight, bias, eps=1e-5):
    """Layer normalization over the last axis."""
    return LayerNorm.apply(x, weight, bias, eps=eps)


def cross_entropy(logits, target, ignore_index=-100, label_smoothing=0.0):
    """Mean cross-entropy of logits (N, V) against class ids (N,), skipping ignore_index."""
    return CrossEntropy.apply(logits, target=index_array(target, logits.data),
                                ignore_index=ignore_index,
                                label_smoothing=label_smoothing)
