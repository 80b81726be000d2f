"""The backward engine: accumulation, deep graphs, no_grad, freeing the graph, bad input."""
import gc
import sys
import weakref

import numpy as np
import pytest

from tinynmt import Tensor, fast, no_grad, tensor
from tinynmt.autograd import Function, is_grad_enabled, layer_norm
from tinynmt.backend import BackendError, to_numpy


@pytest.fixture(autouse=True, params=["fast", "plain"])
def engine_path(request):
    """Every test here runs twice: with the speed corner's tricks (tinynmt/fast/) and without."""
    with fast.use_fast(request.param == "fast"):
        yield request.param


# ----- accumulation

def test_reused_node_accumulates(xp, rng, leaf):
    a = rng.standard_normal((2, 3))
    x = leaf(a)
    (x * x + x).sum().backward()                          # d/dx (x^2 + x) = 2x + 1
    np.testing.assert_allclose(to_numpy(x.grad), 2 * a + 1, rtol=1e-12)


def test_leaf_added_to_itself(xp, leaf):
    x = leaf(np.array([1.0, -2.0]))
    (x + x + x).sum().backward()
    np.testing.assert_array_equal(to_numpy(x.grad), [3.0, 3.0])


def test_intermediate_used_by_two_branches(xp, rng, leaf):
    a = rng.standard_normal(4)
    x = leaf(a)
    h = x.exp()                                           # feeds both branches
    ((h * 2).sum() + (h.tanh() * h).sum()).backward()
    e = np.exp(a)
    expected = 2 * e + ((1 - np.tanh(e) ** 2) * e + np.tanh(e)) * e
    np.testing.assert_allclose(to_numpy(x.grad), expected, rtol=1e-12)


def test_diamond_with_broadcast_branches(xp, rng, leaf):
    a = rng.standard_normal((3, 1))
    x = leaf(a)
    h = x * 3                                             # (3, 1)
    y = (h + leaf(np.ones((1, 4)), requires_grad=False)) * h   # (3, 4): h used twice
    y.sum().backward()
    # y = (3x + 1) * 3x summed over 4 columns: dy/dx = 4 * (18x + 3)
    np.testing.assert_allclose(to_numpy(x.grad), 4 * (18 * a + 3), rtol=1e-12)


def test_two_backward_calls_accumulate_into_grad(xp, rng, leaf):
    a = rng.standard_normal(3)
    x = leaf(a)
    (x * x).sum().backward()
    first = to_numpy(x.grad).copy()
    (x * x).sum().backward()                              # a new graph, the same leaf
    np.testing.assert_allclose(first, 2 * a, rtol=1e-12)
    np.testing.assert_allclose(to_numpy(x.grad), 4 * a, rtol=1e-12)


def test_backward_does_not_write_into_the_given_gradient(xp, leaf):
    x = leaf(np.ones((2, 2)))
    g = xp.asarray(np.full((2, 2), 5.0))
    y = x + 0
    y.backward(g)
    (x + 0).backward(g)                                   # accumulates into x.grad in place
    np.testing.assert_array_equal(to_numpy(g), np.full((2, 2), 5.0))
    np.testing.assert_array_equal(to_numpy(x.grad), np.full((2, 2), 10.0))


def test_only_leaves_that_require_grad_get_one(xp, leaf):
    x, c = leaf(np.ones(3)), leaf(np.ones(3), requires_grad=False)
    (x * c).sum().backward()
    assert c.grad is None and x.grad is not None


def test_deep_chain_needs_no_recursion(xp, leaf):
    assert sys.getrecursionlimit() < 10_000               # else the test proves nothing
    x = leaf(np.array([0.5, -1.0]))
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.sum().backward()
    np.testing.assert_allclose(to_numpy(x.grad), np.full(2, 1.0001 ** 10_000), rtol=1e-9)


# ----- no_grad

def test_no_grad_context_builds_no_graph(xp, leaf):
    x = leaf(np.ones(3))
    with no_grad():
        assert not is_grad_enabled()
        y = (x * 2).exp().sum()
    assert is_grad_enabled()
    assert y.grad_fn is None and not y.requires_grad


def test_no_grad_decorator(xp, leaf):
    @no_grad()
    def double(t):
        assert not is_grad_enabled()
        return t * 2

    y = double(leaf(np.ones(3)))
    assert y.grad_fn is None and not y.requires_grad
    assert is_grad_enabled()
    assert double.__name__ == "double"


def test_no_grad_restores_the_flag_after_an_exception():
    with pytest.raises(ZeroDivisionError):
        with no_grad():
            1 / 0
    assert is_grad_enabled()

    @no_grad()
    def fails():
        raise KeyError("boom")

    with pytest.raises(KeyError):
        fails()
    assert is_grad_enabled()


def test_no_grad_nests():
    with no_grad():
        with no_grad():
            pass
        assert not is_grad_enabled()
    assert is_grad_enabled()


# ----- the graph is freed after backward

def test_backward_frees_the_graph(xp, rng, leaf):
    x = leaf(rng.standard_normal((2, 3)))
    h = x.tanh()
    z = h * 2
    fns = [h.grad_fn, z.grad_fn]
    saved = weakref.ref(h.grad_fn.y)                       # Tanh keeps its output for backward
    loss = z.sum()
    assert all(fn.__dict__ for fn in fns)
    loss.backward()
    assert h.grad_fn is None and z.grad_fn is None and loss.grad_fn is None
    assert all(fn.__dict__ == {} for fn in fns)
    del h
    gc.collect()
    assert saved() is None


def test_saved_arrays_die_with_the_graph(xp, rng, leaf):
    x, g, b = leaf(rng.standard_normal((4, 5))), leaf(np.ones(5)), leaf(np.zeros(5))
    out = layer_norm(x, g, b)
    rstd = weakref.ref(out.grad_fn.rstd)                   # held by nothing but the Function
    loss = out.sum()
    del out
    gc.collect()
    assert rstd() is not None
    loss.backward()
    gc.collect()
    assert rstd() is None


def test_an_array_no_backward_saved_is_freed_by_the_forward(xp, rng, leaf):
    x = leaf(rng.standard_normal((4, 5)))
    s = x * 3.0                     # Mul saves its inputs; its result s is saved by no one:
    y = s.tanh()                    # Tanh keeps its own output, not s
    result = weakref.ref(s.data)
    del s
    gc.collect()
    assert result() is None         # freed before backward, as PyTorch frees it
    y.sum().backward()
    expected = 3.0 * (1 - np.tanh(3.0 * to_numpy(x.data)) ** 2)
    np.testing.assert_allclose(to_numpy(x.grad), expected, rtol=1e-5)


def test_a_result_used_after_its_graph_was_walked_still_says_so(xp, rng, leaf):
    x = leaf(rng.standard_normal(3))
    h = x.tanh()
    (h * 2).sum().backward()        # frees h's graph
    with pytest.raises(RuntimeError, match="already freed"):
        (h * 3).sum().backward()
    h2 = x.tanh()
    a, b = h2 * 2, h2 * 3           # two results that share h2's Function
    a.sum().backward()
    with pytest.raises(RuntimeError, match="already freed"):
        b.sum().backward()


# ----- bad input

def test_backward_on_a_non_scalar_needs_a_gradient(xp, leaf):
    y = leaf(np.ones((2, 3))) * 2
    with pytest.raises(RuntimeError) as info:
        y.backward()
    assert "(2, 3)" in str(info.value) and "gradient" in str(info.value)


def test_backward_on_a_non_scalar_with_a_gradient(xp, leaf):
    x = leaf(np.ones((2, 3)))
    (x * 2).backward(xp.asarray(np.arange(6.0).reshape(2, 3)))
    np.testing.assert_array_equal(to_numpy(x.grad), 2 * np.arange(6.0).reshape(2, 3))


def test_backward_gradient_of_the_wrong_shape_names_both(xp, leaf):
    y = leaf(np.ones((2, 3))) * 2
    with pytest.raises(ValueError) as info:
        y.backward(xp.ones(3))
    assert "(3,)" in str(info.value) and "(2, 3)" in str(info.value)


class WrongShapeGrad(Function):
    """Returns a gradient of the wrong shape on purpose."""

    def forward(self, x):
        return x * 2

    def backward(self, grad):
        return (grad.sum(axis=0),)


def test_a_gradient_of_the_wrong_shape_names_the_op(xp, leaf):
    y = WrongShapeGrad.apply(leaf(np.ones((2, 3))))
    with pytest.raises(RuntimeError) as info:
        y.sum().backward()
    message = str(info.value)
    assert "WrongShapeGrad" in message and "(3,)" in message and "(2, 3)" in message


def test_to_cuda_without_cupy_gives_the_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)        # `import cupy` fails, as without it
    with pytest.raises(BackendError) as info:
        tensor([1.0, 2.0]).to("cuda")
    assert "pip install" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["gpu", "cuda:0", "tpu"])
def test_unknown_device_errors(name):
    with pytest.raises(BackendError) as info:
        tensor([1.0]).to(name)
    assert repr(name) in str(info.value) and "cpu" in str(info.value)


def test_to_the_same_device_is_a_no_op():
    t = tensor([1.0, 2.0])
    assert t.to("cpu") is t and t.device == "cpu"


@pytest.mark.gpu
def test_to_cuda_and_back():
    t = tensor([[1.0, 2.0]], requires_grad=True)
    g = t.to("cuda")
    assert g.device == "cuda" and g.requires_grad and g.dtype == np.float32
    back = g.to("cpu")
    assert isinstance(back.data, np.ndarray)
    np.testing.assert_array_equal(back.data, t.data)


def test_second_backward_through_a_freed_graph_raises():
    x = Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    y = x * 3.0
    y.sum().backward()
    with pytest.raises(RuntimeError, match="already freed"):
        (y * 2.0).sum().backward()
