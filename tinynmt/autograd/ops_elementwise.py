"""Elementwise primitives: arithmetic with broadcasting, and pointwise functions.

Every binary op checks that its operands broadcast (the error names both shapes) and hands
its gradients to `unbroadcast`, which sums them back to each input's shape.
"""
from ..backend import get_array_module
from .function import Function, unbroadcast


def broadcast_shape(op, a, b):
    """The broadcast result shape of two arrays, or a ValueError naming the op and both shapes."""
    xp = get_array_module(a, b)
    try:
        return xp.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"{op}: shapes {a.shape} and {b.shape} do not broadcast") from None


class Add(Function):
    def forward(self, a, b):
        broadcast_shape("add", a, b)
        self.a_shape, self.b_shape = a.shape, b.shape
        return a + b

    def backward(self, grad):
        # d(a + b)/da = 1, d(a + b)/db = 1
        return unbroadcast(grad, self.a_shape), unbroadcast(grad, self.b_shape)


class Sub(Function):
    def forward(self, a, b):
        broadcast_shape("sub", a, b)
        self.a_shape, self.b_shape = a.shape, b.shape
        return a - b

    def backward(self, grad):
        # d(a - b)/da = 1, d(a - b)/db = -1
        return unbroadcast(grad, self.a_shape), unbroadcast(-grad, self.b_shape)


class Mul(Function):
    def forward(self, a, b):
        broadcast_shape("mul", a, b)
        self.a, self.b = a, b
        return a * b

    def backward(self, grad):
        # d(a * b)/da = b, d(a * b)/db = a
        grad_a = unbroadcast(grad * self.b, self.a.shape) if self.needs_input_grad[0] else None
        grad_b = unbroadcast(grad * self.a, self.b.shape) if self.needs_input_grad[1] else None
        return grad_a, grad_b


class Div(Function):
    def forward(self, a, b):
        broadcast_shape("div", a, b)
        self.a, self.b = a, b
        return a / b

    def backward(self, grad):
        # d(a / b)/da = 1 / b, d(a / b)/db = -a / b^2
        grad_a = unbroadcast(grad / self.b, self.a.shape) if self.needs_input_grad[0] else None
        grad_b = (unbroadcast(-grad * self.a / (self.b * self.b), self.b.shape)
                  if self.needs_input_grad[1] else None)
        return grad_a, grad_b


class Neg(Function):
    def forward(self, x):
        return -x

    def backward(self, grad):
        # d(-x)/dx = -1
        return (-grad,)


class Pow(Function):
    """x ** p for a Python scalar exponent p."""

    def forward(self, x, exponent):
        self.x, self.exponent = x, exponent
        return x ** x.dtype.type(exponent)

    def backward(self, grad):
        # d(x^p)/dx = p * x^(p - 1)
        p = self.x.dtype.type(self.exponent)
        return (grad * p * self.x ** (p - 1),)


class Exp(Function):
    def forward(self, x):
        self.y = get_array_module(x).exp(x)
        return self.y

    def backward(self, grad):
        # d(e^x)/dx = e^x
        return (grad * self.y,)


class Log(Function):
    def forward(self, x):
        self.x = x
        return get_array_module(x).log(x)

    def backward(self, grad):
        # d(log x)/dx = 1 / x
        return (grad / self.x,)


class Sqrt(Function):
    def forward(self, x):
        self.y = get_array_module(x).sqrt(x)
        return self.y

    def backward(self, grad):
        # d(sqrt x)/dx = 1 / (2 sqrt x)
        return (grad / (2 * self.y),)


class ReLU(Function):
    def forward(self, x):
        y = get_array_module(x).maximum(x, 0)
        self.positive = y > 0
        return y

    def backward(self, grad):
        # d relu(x)/dx = 1 where x > 0, else 0
        return (grad * self.positive,)


class Tanh(Function):
    def forward(self, x):
        self.y = get_array_module(x).tanh(x)
        return self.y

    def backward(self, grad):
        # d tanh(x)/dx = 1 - tanh(x)^2
        return (grad * (1 - self.y * self.y),)


class MaskedFill(Function):
    """x with `value` wherever the boolean `mask` (broadcastable to x) is True."""

    def forward(self, x, mask, value):
        broadcast_shape("masked_fill", x, mask)
        xp = get_array_module(x)
        mask = mask.astype(bool, copy=False)   # a 0/1 mask must not be bit-inverted by ~
        self.mask, self.x_shape = mask, x.shape
        return xp.where(mask, x.dtype.type(value), x)

    def backward(self, grad):
        # filled positions no longer depend on x
        return unbroadcast(grad * ~self.mask, self.x_shape), None


class Where(Function):
    """Elementwise choice: a where cond is True, b elsewhere (cond carries no gradient)."""

    def forward(self, cond, a, b):
        xp = get_array_module(a, b)
        self.cond, self.a_shape, self.b_shape = cond, a.shape, b.shape
        return xp.where(cond, a, b)

    def backward(self, grad):
        # d/da = cond, d/db = not cond
        zero = grad.dtype.type(0)
        xp = get_array_module(grad)
        grad_a = unbroadcast(xp.where(self.cond, grad, zero), self.a_shape)
        grad_b = unbroadcast(xp.where(self.cond, zero, grad), self.b_shape)
        return None, grad_a, grad_b
