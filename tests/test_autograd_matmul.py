"""Matrix multiplication (batched, broadcast): forward against NumPy, then gradcheck."""
import numpy as np
import pytest

from tinynmt import fast
from tinynmt.autograd import Tensor, gradcheck
from tinynmt.backend import to_numpy


@pytest.fixture(autouse=True, params=["fast", "plain"])
def engine_path(request):
    """Every test here runs twice: with the speed corner's tricks (tinynmt/fast/) and without."""
    with fast.use_fast(request.param == "fast"):
        yield request.param


MATMUL_SHAPES = [
    ((3, 4), (4, 2)),                   # plain 2-D
    ((2, 3, 2), (2, 2, 3)),             # batched
    ((2, 1, 2, 3), (3, 3, 2)),          # leading dims broadcast: (2, 1) with (3,)
    ((1, 2, 3), (2, 3, 2)),             # a size-1 batch broadcast against 2
    ((2, 3), (2, 3, 2)),                # 2-D @ batched
    ((2, 3, 4), (4, 2)),                # (..., n, k) @ (k, m): fast.matmul_folded
    ((2, 2, 1, 3), (3, 2)),             # folded, 4-D
]


@pytest.mark.parametrize("a_shape, b_shape", MATMUL_SHAPES, ids=str)
def test_matmul_forward_and_gradcheck(xp, rng, leaf, a_shape, b_shape):
    a, b = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
    out = leaf(a) @ leaf(b)
    assert out.shape == np.matmul(a, b).shape
    np.testing.assert_allclose(to_numpy(out.data), a @ b, rtol=1e-12)
    assert gradcheck(lambda s, t: s @ t, [leaf(a), leaf(b)])


@pytest.mark.parametrize("a_shape, b_shape", [((4, 8, 16), (16, 8)), ((3, 1, 8, 16), (5, 16, 6))],
                         ids=["fast_path", "broadcast"])
def test_matmul_gradcheck_random_directions(xp, rng, leaf, a_shape, b_shape):
    a, b = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
    assert gradcheck(lambda s, t: s @ t, [leaf(a), leaf(b)])


def test_matmul_fast_path_on_a_permuted_operand(xp, rng, leaf):
    a, b = rng.standard_normal((3, 2, 4)), rng.standard_normal((2, 3))
    op = lambda s, t: s.permute(0, 2, 1) @ t                     # (3, 4, 2) @ (2, 3)
    np.testing.assert_allclose(to_numpy(op(leaf(a), leaf(b)).data),
                               a.transpose(0, 2, 1) @ b, rtol=1e-12)
    assert gradcheck(op, [leaf(a), leaf(b)])


def test_matmul_only_one_side_needs_a_gradient(xp, rng, leaf):
    a, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((4, 5))
    x, w = leaf(a), leaf(b, requires_grad=False)
    (x @ w).sum().backward()
    np.testing.assert_allclose(to_numpy(x.grad), np.ones((2, 3, 5)) @ b.T, rtol=1e-12)
    assert w.grad is None


def test_matmul_with_a_numpy_array_on_either_side(rng):
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((3, 4))
    np.testing.assert_allclose((Tensor(a) @ b).data, a @ b, rtol=1e-12)
    np.testing.assert_allclose((a @ Tensor(b)).data, a @ b, rtol=1e-12)
    assert gradcheck(lambda t: a @ t, [Tensor(b, requires_grad=True)])


@pytest.mark.parametrize("a_shape, b_shape", [((2, 3), (4, 5)),           # inner dims differ
                                              ((2, 3, 4), (5, 4, 6)),      # batch dims differ
                                              ((3,), (3, 2))],             # a vector
                         ids=str)
def test_matmul_mismatch_names_both_shapes(xp, leaf, a_shape, b_shape):
    with pytest.raises(ValueError) as info:
        leaf(np.ones(a_shape)) @ leaf(np.ones(b_shape))
    message = str(info.value)
    assert "matmul" in message and str(a_shape) in message and str(b_shape) in message
