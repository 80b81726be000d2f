"""float32 stays float32: through every op, its gradients, and Python or NumPy scalar operands.

NumPy 2 promotes `float32_array * np.float64(2)` to float64; a tensor must not.
"""
import numpy as np
import pytest

from tinynmt import fast
from tinynmt.autograd import (Tensor, concatenate, cross_entropy, dropout, embedding, layer_norm, log_softmax, relu, softmax, stack, where)
from tinynmt.backend import Generator, to_numpy


@pytest.fixture(autouse=True, params=["fast", "plain"])
def engine_path(request):
    """Every test here runs twice: with the speed corner's tricks (tinynmt/fast/) and without."""
    with fast.use_fast(request.param == "fast"):
        yield request.param


F64 = np.float64(1.5)
EYE = np.eye(2, 3, dtype=bool)

OPS = {   # name: op on x (2, 3) and w (3, 3), both positive float32
    "x + w[0]": lambda x, w, xp: x + w[0],
    "x - w[:2]": lambda x, w, xp: x - w[:2],
    "x * w[0]": lambda x, w, xp: x * w[0],
    "x / w[0]": lambda x, w, xp: x / w[0],
    "-x": lambda x, w, xp: -x * w[0],
    "x * 2.0": lambda x, w, xp: x * 2.0 + w[0],
    "2 * x": lambda x, w, xp: 2 * x + w[0],
    "x + 1": lambda x, w, xp: x + 1 + w[0],
    "2 - x": lambda x, w, xp: 2 - x + w[0],
    "2 / x": lambda x, w, xp: 2 / x + w[0],
    "x ** 2": lambda x, w, xp: x ** 2 + w[0],
    "x ** 0.5": lambda x, w, xp: x ** 0.5 + w[0],
    "x * np.float64": lambda x, w, xp: x * F64 + w[0],
    "np.float64 * x": lambda x, w, xp: F64 * x + w[0],
    "x + np.float64": lambda x, w, xp: x + F64 + w[0],
    "np.float64 - x": lambda x, w, xp: F64 - x + w[0],
    "x / np.float64": lambda x, w, xp: x / F64 + w[0],
    "np.float64 / x": lambda x, w, xp: F64 / x + w[0],
    "x ** np.float64": lambda x, w, xp: x ** F64 + w[0],
    "exp": lambda x, w, xp: x.exp() + w[0],
    "log": lambda x, w, xp: x.log() + w[0],
    "sqrt": lambda x, w, xp: x.sqrt() + w[0],
    "relu": lambda x, w, xp: relu(x - 1) + w[0],
    "tanh": lambda x, w, xp: x.tanh() + w[0],
    "matmul": lambda x, w, xp: x @ w,
    "batched matmul": lambda x, w, xp: stack([x, x]) @ stack([w, w]),
    "sum": lambda x, w, xp: x.sum() * w,
    "mean axis": lambda x, w, xp: x.mean(axis=0) * w,
    "max": lambda x, w, xp: x.max(axis=-1, keepdims=True) * w[:2],
    "reshape": lambda x, w, xp: x.reshape(3, 2) @ w[:2],
    "transpose": lambda x, w, xp: x.transpose(0, 1) * w[:, :2],
    "getitem": lambda x, w, xp: x[xp.asarray(np.array([1, 1, 0]))] * w,
    "concatenate": lambda x, w, xp: concatenate([x, w]),
    "masked_fill": lambda x, w, xp: x.masked_fill(xp.asarray(EYE), -1e10) * w[0],
    "where": lambda x, w, xp: where(xp.asarray(EYE), x, 0.0) * w[0],
    "softmax": lambda x, w, xp: softmax(x) * w[0],
    "log_softmax": lambda x, w, xp: log_softmax(x, axis=0) * w[0],
    "dropout": lambda x, w, xp: dropout(x, 0.5, Generator(0, "cpu" if xp is np else "cuda")) * w[0],
    "embedding": lambda x, w, xp: embedding(xp.asarray(np.array([2, 0, 2])), w) * x[0],
    "layer_norm": lambda x, w, xp: layer_norm(x, w[0], w[1]),
    "cross_entropy": lambda x, w, xp: cross_entropy(x @ w, xp.asarray(np.array([2, -100])),
                                                    label_smoothing=0.1) * w,
}


@pytest.mark.parametrize("name", OPS)
def test_float32_in_float32_out_and_float32_gradients(xp, rng, leaf, name):
    x = leaf(rng.uniform(0.5, 2.0, (2, 3)), dtype=np.float32)
    w = leaf(rng.uniform(0.5, 2.0, (3, 3)), dtype=np.float32)
    out = OPS[name](x, w, xp)
    assert out.dtype == np.float32
    out.sum().backward()
    for t in (x, w):
        assert t.grad.dtype == np.float32 and np.isfinite(to_numpy(t.grad)).all()


def test_numpy_scalar_operands_take_the_tensor_dtype():
    x = Tensor(np.ones(3, dtype=np.float32))
    for y in (x * np.float64(2), np.float64(2) * x, x + np.float32(1), x * np.int64(3)):
        assert isinstance(y, Tensor) and y.dtype == np.float32
    h = Tensor(np.ones(3))                                     # float64 stays float64
    assert (h * np.float32(2)).dtype == np.float64 and (h * 2).dtype == np.float64


def test_new_tensors_default_to_float32_and_arrays_keep_their_dtype():
    assert Tensor([1, 2]).dtype == np.float32 and Tensor(3.0).dtype == np.float32
    assert Tensor(np.zeros(2)).dtype == np.float64
    assert Tensor(np.arange(3)).dtype == np.arange(3).dtype


@pytest.mark.parametrize("reduce", ["sum", "mean"])
def test_full_reductions_keep_float64(reduce):
    # NumPy returns a scalar, not an array, for a full reduction: it must keep its dtype
    x = Tensor(np.full(3, 1 / 3), requires_grad=True)
    out = getattr(x, reduce)()
    assert out.dtype == np.float64 and out.item() == getattr(np.full(3, 1 / 3), reduce)()


def test_cross_entropy_keeps_float64():
    loss = cross_entropy(Tensor(np.array([[0.1, 0.2, 0.3]])), np.array([1]))
    assert loss.dtype == np.float64


def test_backward_with_a_float64_gradient_keeps_float32_grads(xp, leaf):
    x = leaf(np.ones((2, 2)), dtype=np.float32)
    (x * 3).backward(xp.ones((2, 2), dtype=np.float64))
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(to_numpy(x.grad), np.full((2, 2), 3.0))
