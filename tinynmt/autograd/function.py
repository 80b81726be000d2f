"""The Function base class, the grad-mode flag and `unbroadcast`.

A Function is one primitive: `forward` computes on raw arrays and saves what `backward`
needs; `backward` turns the gradient of the output into gradients of the inputs. `apply`
wires a call into the graph: the output Tensor remembers the Function, and the Function
remembers where each input came from (its `parents`): the Function that made it, or the
leaf Tensor itself. Not the input Tensors: an intermediate array that no backward saved
(a sum, a dropout's output) is freed as soon as the forward pass drops it, as in PyTorch.
"""
import functools
import weakref

_grad_enabled = True  # the one piece of global state: whether calls build a graph


def is_grad_enabled():
    """True when operations record a graph for backward."""
    return _grad_enabled


class no_grad:
    """Context manager and decorator: operations inside build no graph."""

    def __enter__(self):
        global _grad_enabled
        self._previous = _grad_enabled
        _grad_enabled = False

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self._previous

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with no_grad():
                return fn(*args, **kwargs)
        return wrapper


def unbroadcast(grad, shape):
    """Sum `grad` down to `shape`, undoing NumPy broadcasting (serves every binary op)."""
    if grad.shape == tuple(shape):
        return grad
    extra = grad.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(
        extra + i for i, n in enumerate(shape) if n == 1 and grad.shape[extra + i] != 1)
    return grad.sum(axis=axes, keepdims=True).reshape(shape)


class Function:
    """One differentiable primitive; subclasses define `forward` and `backward`."""

    def __init__(self):
        self.parents = ()                # per input: the Function that made it, the leaf, or None
        self.input_shapes = ()           # per input: its shape (a gradient must have it)
        self.needs_input_grad = ()       # which inputs want a gradient

    @property
    def name(self):
        """The op's name for error messages."""
        return type(self).__name__

    @classmethod
    def apply(cls, *inputs, **options):
        """Run forward on the inputs' arrays and, when a gradient is wanted, link the graph."""
        from .tensor import Tensor
        fn = cls()
        fn.needs_input_grad = tuple(t.requires_grad for t in inputs)
        data = fn.forward(*(t.data for t in inputs), **options)
        requires_grad = _grad_enabled and any(fn.needs_input_grad)
        out = Tensor(data, requires_grad=requires_grad)
        if requires_grad:
            # a leaf, or a result whose graph backward already freed, is its own node
            fn.parents = tuple((t.grad_fn or t) if t.requires_grad else None for t in inputs)
            fn.input_shapes = tuple(t.shape for t in inputs)
            fn.output = weakref.ref(out)     # to cut it from the graph after backward
            out.grad_fn = fn
            out.is_leaf = False
        return out

    def forward(self, *arrays, **options):
        """Compute the output array from input arrays."""
        raise NotImplementedError

    def backward(self, grad):
        """Return one gradient (or None) per input, given the output's gradient."""
        raise NotImplementedError

    def release(self):
        """Drop the saved arrays and the links to its parents once backward has run."""
        self.__dict__.clear()

    @property
    def released(self):
        """True once backward has run through this Function (its graph is gone)."""
        return "parents" not in self.__dict__
